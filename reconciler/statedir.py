"""The state directory: what the kernel cannot tell us, one folder per host namespace.

It records the container namespaces netreconcile made (namespaces carry no label
of their own), each with its namespace cookie (SO_NETNS_COOKIE: unique for the
boot, never reused, unlike nsfs inode numbers), so that a namespace someone else
later creates under a recorded name is not taken for ours. The record is written
before a namespace is created (cookie 0: being created) and after it is deleted,
atomically, so a crash never leaves a namespace we made unrecorded.
"""

from __future__ import annotations

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
    def _netns_file(self) -> Path:
        return self.path / "namespaces.json"

    def recorded_netns(self) -> dict[str, int]:
        """{namespace name: namespace cookie, 0 while being created}."""
        try:
            data = json.loads(self._netns_file.read_text())
            namespaces = data["namespaces"]
            if isinstance(namespaces, list):  # the first format: names only
                return {str(name): 0 for name in namespaces}
            return {str(name): int(cookie) for name, cookie in namespaces.items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise PrerequisiteError(
                f"the state file {self._netns_file} is damaged ({error}); move it away to start afresh "
                "(netreconcile then treats every existing namespace as not its own)"
            ) from error

    def write_netns_record(self, record: dict[str, int]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self._netns_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"namespaces": dict(sorted(record.items()))}, indent=1) + "\n")
        os.replace(temporary, self._netns_file)
