"""The state directory: what the kernel cannot tell us, one folder per host namespace.

It records the container namespaces netreconcile made (namespaces carry no label
of their own), each with its namespace cookie (SO_NETNS_COOKIE: unique for the
boot, never reused, unlike nsfs inode numbers), so that a namespace someone else
later creates under a recorded name is not taken for ours. The record is written
before a namespace is created (cookie 0: being created) and after it is deleted,
atomically, so a crash never leaves a namespace we made unrecorded. Names that are
aliases (a second /run/netns name for a container's namespace or the host's, for
network_mode container:<name> and host) are recorded the same way, and also listed
with the container they name ("" for the host): the kernel shows that two names lead
to one namespace, but not which of them came first. The records of the other host
namespaces in the same state root are read too, only to say whose a namespace in the
way is.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from pathlib import Path

from reconciler.errors import PrerequisiteError

DEFAULT_STATE_ROOT = "/var/lib/netreconcile"
ROOT_NAMESPACE_DIR = "_root"
HOST_DIR_PREFIX = "netns-"


def state_root() -> Path:
    return Path(os.environ.get("NETRECONCILE_STATE_DIR", DEFAULT_STATE_ROOT))


class StateDir:
    def __init__(self, root: Path | str, host_netns: str | None):
        self.path = Path(root) / (f"{HOST_DIR_PREFIX}{host_netns}" if host_netns else ROOT_NAMESPACE_DIR)

    @property
    def git_cache(self) -> Path:
        """Bare clones of the repositories `sync` follows."""
        return self.path / "git"

    @property
    def _git_file(self) -> Path:
        return self.path / "git.json"

    @property
    def _pending_file(self) -> Path:
        return self.path / "pending-links.json"

    @property
    def _netns_file(self) -> Path:
        return self.path / "namespaces.json"

    # reading and writing the files

    def _load(self, path: Path) -> dict | None:
        """The JSON mapping in `path`, None when there is no such file."""
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as error:
            raise self._damaged(path, error) from error
        if not isinstance(data, dict):
            raise self._damaged(path, TypeError(f"a {type(data).__name__}, not a mapping"))
        return data

    def _store(self, path: Path, document: dict) -> None:
        """Write atomically: a reader sees the old record or the new one."""
        self.store_text(path.name, json.dumps(document, indent=1) + "\n")

    def store_text(self, name: str, text: str) -> None:
        """Write the state file `name` whole or not at all (a reader sees the old file or
        the new one): a temporary file created exclusively, never through a link, mode
        0600, renamed over it."""
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.path / f".{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):  # left by a crashed process of this pid; unlink follows nothing
            os.unlink(temporary)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            try:
                data = memoryview(text.encode())
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
            os.replace(temporary, self.path / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def read_own(self, name: str) -> str | None:
        """The text of the state file `name`; None when it is absent, a link, not a regular
        file, not this user's, or writable by others (then it is not to be trusted)."""
        try:
            fd = os.open(self.path / name, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            return None
        try:
            found = os.fstat(fd)
            if not stat.S_ISREG(found.st_mode) or found.st_uid != os.geteuid() or found.st_mode & 0o022:
                return None
            with open(fd, encoding="utf-8", closefd=False) as handle:
                return handle.read()
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        """No state file `name` (a link there is removed, never followed)."""
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(self.path / name)

    def _damaged(self, path: Path, error: Exception) -> PrerequisiteError:
        advice = " (netreconcile then treats every existing namespace as not its own)" if path == self._netns_file \
            else ""
        return PrerequisiteError(f"the state file {path} is damaged ({error}); move it away to start afresh{advice}")

    # what sync applied

    def git_record(self) -> dict | None:
        """What `sync` applied and attempted last: {"applied", "attempted", "error", ...}."""
        return self._load(self._git_file)

    def write_git_record(self, record: dict) -> None:
        self._store(self._git_file, dict(sorted(record.items())))

    # host interfaces being created

    def pending_links(self) -> dict[str, str]:
        """Host interfaces being created, {name: kind}: written before they exist and
        cleared once they carry netreconcile's mark, so that one left unmarked by a
        crash is known as ours."""
        return {str(name): str(kind) for name, kind in (self._load(self._pending_file) or {}).items()}

    def write_pending_links(self, links: dict[str, str]) -> None:
        if links:
            self._store(self._pending_file, dict(sorted(links.items())))
        else:
            with contextlib.suppress(FileNotFoundError):
                self._pending_file.unlink()

    # the namespaces netreconcile made, and the second names it gave

    def recorded_netns(self) -> dict[str, int]:
        """{namespace name: namespace cookie, 0 while being created}."""
        data = self._load(self._netns_file)
        if not data:
            return {}
        try:
            namespaces = data["namespaces"]
            if isinstance(namespaces, list):  # the first format: names only
                return {str(name): 0 for name in namespaces}
            return {str(name): int(cookie) for name, cookie in namespaces.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise self._damaged(self._netns_file, error) from error

    def recorded_aliases(self) -> dict[str, str]:
        """{alias name: the container whose namespace it names, "" for the host's}."""
        try:
            aliases = (self._load(self._netns_file) or {}).get("aliases", {})
            return {str(name): str(target) for name, target in aliases.items()}
        except (TypeError, AttributeError) as error:
            raise self._damaged(self._netns_file, error) from error

    def other_hosts_netns(self) -> dict[str, dict[str, int]]:
        """The namespace records of the other host namespaces in the same state root:
        {host namespace ("" for the root one): {namespace name: cookie}}. A record that
        cannot be read is left out: it is reported when its own host namespace is used."""
        try:
            directories = sorted(self.path.parent.iterdir())
        except FileNotFoundError:
            return {}
        records = {}
        for directory in directories:
            if directory == self.path:
                continue
            if directory.name == ROOT_NAMESPACE_DIR:
                host = ""
            elif directory.name.startswith(HOST_DIR_PREFIX):
                host = directory.name.removeprefix(HOST_DIR_PREFIX)
            else:
                continue
            try:
                records[host] = StateDir(self.path.parent, host or None).recorded_netns()
            except PrerequisiteError:
                continue
        return records

    def write_netns_record(self, record: dict[str, int], aliases: dict[str, str] | None = None) -> None:
        """Record the namespaces (and aliases; None: those recorded before) still in
        `record`; an empty record is no file, so that destroy leaves nothing behind."""
        if not record:
            with contextlib.suppress(FileNotFoundError):
                self._netns_file.unlink()
            return
        if aliases is None:
            aliases = self.recorded_aliases()
        aliases = {name: target for name, target in aliases.items() if name in record}
        self._store(self._netns_file, {"namespaces": dict(sorted(record.items())),
                                       "aliases": dict(sorted(aliases.items()))})
