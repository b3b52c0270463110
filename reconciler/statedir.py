"""The state directory: what the kernel cannot tell us, one folder per host namespace.

It records the container namespaces netreconcile made (namespaces carry no label
of their own). The record is written before a namespace is created and after it
is deleted, atomically, so a crash never leaves a namespace we made unrecorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

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

    def owned_netns(self) -> set[str]:
        try:
            data = json.loads(self._netns_file.read_text())
        except FileNotFoundError:
            return set()
        return set(data.get("namespaces", []))

    def write_owned_netns(self, names: set[str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self._netns_file.with_suffix(".tmp")
        temporary.write_text(json.dumps({"namespaces": sorted(names)}, indent=1) + "\n")
        os.replace(temporary, self._netns_file)
