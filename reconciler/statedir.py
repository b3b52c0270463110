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
to one namespace, but not which of them came first.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from reconciler.errors import PrerequisiteError

DEFAULT_STATE_ROOT = "/var/lib/netreconcile"
ROOT_NAMESPACE_DIR = "_root"


def state_root() -> Path:
    return Path(os.environ.get("NETRECONCILE_STATE_DIR", DEFAULT_STATE_ROOT))


class StateDir:
    def __init__(self, root: Path | str, host_netns: str | None):
        self.path = Path(root) / (f"netns-{host_netns}" if host_netns else ROOT_NAMESPACE_DIR)

    @property
    def git_cache(self) -> Path:
        """Bare clones of the repositories `sync` follows."""
        return self.path / "git"

    @property
    def _git_file(self) -> Path:
        return self.path / "git.json"

    def git_record(self) -> dict | None:
        """What `sync` applied and attempted last: {"applied", "attempted", "error", ...}."""
        try:
            record = json.loads(self._git_file.read_text())
        except FileNotFoundError:
            return None
        except ValueError as error:
            raise PrerequisiteError(f"the state file {self._git_file} is damaged ({error}); move it away") from error
        if not isinstance(record, dict):
            raise PrerequisiteError(f"the state file {self._git_file} is damaged (not a mapping); move it away")
        return record

    def write_git_record(self, record: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self._git_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        os.replace(temporary, self._git_file)

    @property
    def _pending_file(self) -> Path:
        return self.path / "pending-links.json"

    def pending_links(self) -> dict[str, str]:
        """Host interfaces being created, {name: kind}: written before they exist and
        cleared once they carry netreconcile's mark, so that one left unmarked by a
        crash is known as ours."""
        try:
            data = json.loads(self._pending_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as error:
            raise self._damaged(error) from error
        return {str(name): str(kind) for name, kind in data.items()} if isinstance(data, dict) else {}

    def write_pending_links(self, links: dict[str, str]) -> None:
        if not links:
            with contextlib.suppress(FileNotFoundError):
                self._pending_file.unlink()
            return
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self._pending_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(dict(sorted(links.items()))) + "\n")
        os.replace(temporary, self._pending_file)

    @property
    def _netns_file(self) -> Path:
        return self.path / "namespaces.json"

    def _read(self) -> dict:
        """The record ({} when there is none yet)."""
        try:
            data = json.loads(self._netns_file.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as error:
            raise self._damaged(error) from error
        if not isinstance(data, dict):
            raise self._damaged(TypeError(f"a {type(data).__name__}, not a mapping"))
        return data

    def _damaged(self, error: Exception) -> PrerequisiteError:
        return PrerequisiteError(
            f"the state file {self._netns_file} is damaged ({error}); move it away to start afresh "
            "(netreconcile then treats every existing namespace as not its own)"
        )

    def recorded_netns(self) -> dict[str, int]:
        """{namespace name: namespace cookie, 0 while being created}."""
        data = self._read()
        if not data:
            return {}
        try:
            namespaces = data["namespaces"]
            if isinstance(namespaces, list):  # the first format: names only
                return {str(name): 0 for name in namespaces}
            return {str(name): int(cookie) for name, cookie in namespaces.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise self._damaged(error) from error

    def recorded_aliases(self) -> dict[str, str]:
        """{alias name: the container whose namespace it names, "" for the host's}."""
        try:
            return {str(name): str(target) for name, target in self._read().get("aliases", {}).items()}
        except (TypeError, AttributeError) as error:
            raise self._damaged(error) from error

    def write_netns_record(self, record: dict[str, int], aliases: dict[str, str] | None = None) -> None:
        """Record the namespaces (and aliases; None: those recorded before) still in `record`."""
        if aliases is None:
            aliases = self.recorded_aliases()
        aliases = {name: target for name, target in aliases.items() if name in record}
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self._netns_file.with_suffix(".tmp")
        document = {"namespaces": dict(sorted(record.items())), "aliases": dict(sorted(aliases.items()))}
        temporary.write_text(json.dumps(document, indent=1) + "\n")
        os.replace(temporary, self._netns_file)
