"""The architecture, guarded: a pure planning core and exactly one kernel writer."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"
PURE_MODULES = ["spec/types", "state/model", "state/desired", "state/planner", "render/plantext", "errors",
                "render/resolvconf", "render/hostsfile", "spec/ports", "render/firewall", "run/scheduler"]
FORBIDDEN_IN_PURE = {
    "os", "socket", "subprocess", "time", "ctypes", "pyroute2", "threading", "pathlib", "datetime", "random",
    "reconciler.kernel", "reconciler.spec.loader", "reconciler.cli", "reconciler.run.engine",
}
WRITING_CALLS = {
    "new_bridge", "new_veth", "set_link", "del_link", "new_addr", "del_addr", "replace_route", "del_route",
    "execute", "unshare", "mount", "umount2", "create_netns", "delete_netns", "write_netns_record", "write_atomically",
    "load_ruleset",
}
WRITER = "writer"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def called_names(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            function = node.func
            names.add(function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", ""))
    return names


@pytest.mark.parametrize("module", PURE_MODULES)
def test_planning_core_does_no_io(module):
    imports = imported_modules(PACKAGE / f"{module}.py")
    offending = {name for name in imports if name in FORBIDDEN_IN_PURE or name.split(".")[0] in FORBIDDEN_IN_PURE}
    offending |= {name for name in imports if name.startswith("reconciler.kernel")}
    assert not offending, f"reconciler/{module}.py imports {sorted(offending)}"


def test_only_the_writer_changes_the_kernel():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.stem in (WRITER, "batch", "namespaces", "links", "addresses", "files", "settings", "nlsocket", "netlink", "statedir", "nft"):
            continue  # the writer, and the transport/codec/record it uses
        used = called_names(path) & WRITING_CALLS
        assert not used, f"{path.name} calls {sorted(used)}; only reconciler/kernel/{WRITER}.py may write"
