"""The architecture, guarded: a pure core (spec, state, drivers, render) and exactly one kernel writer.

`LAYERS` declares the layer of every module of the package. A checker reads the sources with
`ast` and reports:
- a pure module that imports an I/O module of the standard library (`os`, `subprocess`,
  `socket`, `shutil`, ...) or a module of an I/O layer, by any import form (`import a.b`,
  `from a import b`, `from . import b`), or that calls `open`, `__import__` or
  `importlib`, or that reaches such a module as an attribute (`desired.os.unlink`);
- a pure module that reaches I/O indirectly: through any chain of imports inside the
  package (the transitive closure of the import graph), the chain named;
- a module outside the writer that calls a kernel-writing function or imports the writer,
  except the entry points declared in `WRITER_ENTRY_POINTS`;
- a module that `LAYERS` does not declare;
- a codec module (the netlink codec) that does I/O: it may import `socket`, for its
  constants only; only the network drivers (pure) may import it and call its request
  builders, which return bytes the writer sends.
The checker runs on the real package, and on planted violations of each kind.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "reconciler"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE

PURE, IO, WRITER, CODEC = "pure", "io", "writer", "codec"
# Module or package (relative to `reconciler`) -> layer; the longest matching name wins.
LAYERS = {
    "": IO,  # reconciler/__init__.py: the version
    "__main__": IO,
    "cli": IO,
    "errors": PURE,
    "spec": PURE,  # the spec's dataclasses and every check of it
    "spec.yamlread": IO,  # reads the spec file
    "spec.loader": IO,
    "spec.schema_check": IO,  # reads the JSON Schema shipped in the package (importlib.resources)
    "state": PURE,  # kernel objects as values, desired state, IPAM, the planner
    "render": PURE,  # text of /etc/hosts, resolv.conf, the nftables ruleset, the plan
    "drivers": PURE,  # the network drivers: spec options, kernel objects, marks, netlink requests
    "kernel": IO,  # netlink codec and sockets, observing, nft, the state directory, the lock
    "kernel.netlink": CODEC,  # request builders and decoders: bytes in, bytes out
    "kernel.writer": WRITER,  # the one writer and the kind writers it runs
    "kernel.batch": WRITER,
    "kernel.namespaces": WRITER,
    "kernel.links": WRITER,
    "kernel.addresses": WRITER,
    "kernel.entries": WRITER,
    "kernel.files": WRITER,
    "kernel.settings": WRITER,
    "run": IO,  # engine, watch loop, triggers, sources, metrics, logs
    "run.scheduler": PURE,  # when the watch loop runs a pass: a pure decision over events
    "dns": IO,  # the embedded DNS server: its sockets, forwarding, metrics
    "dns.config": PURE,  # per namespace: name table, upstreams
    "dns.answering": PURE,  # a query in, an answer or "forward" out
    "graphviz": IO,  # runs Graphviz's dot for graph -o svg
    "compose": PURE,  # netreconcile import: interpolation, translation, subnet pools
    "compose.reader": IO,  # reads the Compose and env files
    "compose.importer": IO,  # runs the stages, checks the result with the spec loader
}
# Modules outside the writer that may import one writer module: where apply starts.
WRITER_ENTRY_POINTS = {
    "run.engine": {"kernel.writer"},  # converge and rollback apply a plan
    "cli": {"kernel.namespaces"},  # --host-netns: made before apply, or stood in for by an empty one
}
# Pure modules that may import the codec and call its request builders: the drivers build
# the requests of their objects, the writer sends them.
CODEC_USERS = {"drivers"}
REQUEST_BUILDERS = {
    "new_bridge", "new_veth", "new_macvlan", "new_vlan", "set_link", "del_link", "new_addr", "del_addr", "replace_route", "del_route",
    "new_vxlan", "new_fdb", "del_fdb", "new_neigh", "del_neigh",
}
# what the codec may use of an I/O module: its constants (AF_INET) and these pure conversions
CODEC_CONSTANT_MODULES = {"socket": {"inet_aton", "inet_ntoa", "inet_pton", "inet_ntop"}}
# Modules that define the writing functions (the transport, the codec, the record) and may name them.
WRITING_DEFINERS = {"kernel.netlink", "kernel.nlsocket", "kernel.nft", "kernel.statedir"}
WRITING_CALLS = {
    "new_bridge", "new_veth", "new_macvlan", "new_vlan", "set_link", "del_link", "new_addr", "del_addr", "replace_route", "del_route",
    "execute", "unshare", "mount", "umount2", "setns", "create_netns", "bind_netns", "delete_netns",
    "write_netns_record", "write_pending_links", "write_atomically", "load_ruleset", "unlink_regular",
}
IO_STDLIB = {
    "os", "posix", "io", "sys", "subprocess", "socket", "shutil", "ctypes", "fcntl", "time", "random", "secrets",
    "threading", "multiprocessing", "asyncio", "pathlib", "glob", "tempfile", "select", "selectors", "signal",
    "pickle", "shelve", "sqlite3", "mmap", "urllib", "http", "importlib", "builtins", "datetime", "uuid",
    "pyroute2", "watchdog", "dulwich", "prometheus_client", "ruamel", "click", "rich", "structlog", "logging",
}
IO_BUILTINS = {"open", "__import__", "exec", "eval", "compile", "input", "breakpoint"}


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line}: {self.message}"


def layer_of(module: str) -> str | None:
    """The layer `LAYERS` declares for `module` (a name relative to the package)."""
    if module in LAYERS:
        return LAYERS[module]
    name = module.rpartition(".")[0]
    while name:  # the package's own layer ("") covers only its own top-level files
        if name in LAYERS:
            return LAYERS[name]
        name = name.rpartition(".")[0]
    return None


def module_name(path: Path, root: Path) -> str:
    """'state.planner' for root/state/planner.py, 'kernel' for root/kernel/__init__.py."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def read_package(root: Path = PACKAGE_DIR) -> dict[str, str]:
    return {module_name(path, root): path.read_text() for path in sorted(root.rglob("*.py"))}


class ModuleFacts:
    """What one module imports (resolved to full names), calls and reaches as attributes."""

    def __init__(self, name: str, source: str, known: set[str]):
        self.name = name
        self.imports: list[tuple[int, str]] = []  # (line, full dotted name): package modules resolved
        self.names: dict[str, str] = {}  # local name -> full dotted name it was bound to by an import
        self.calls: list[tuple[int, str, bool]] = []  # (line, called function's last name, called by bare name)
        self.attributes: list[tuple[int, str]] = []  # (line, attribute name)
        self.bare_names: list[tuple[int, str]] = []
        is_package = name == "" or any(other.startswith(f"{name}.") for other in known)
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports.append((node.lineno, alias.name))
                    local = alias.asname or alias.name.partition(".")[0]
                    self.names[local] = alias.name if alias.asname else local
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(node, is_package)
                for alias in node.names:
                    full = f"{base}.{alias.name}" if base else alias.name
                    relative = full.removeprefix(f"{PACKAGE}.")
                    # `from package import module` names the module; `from module import name` the module
                    target = full if full.startswith(f"{PACKAGE}.") and relative in known else base
                    self.imports.append((node.lineno, target))
                    self.names[alias.asname or alias.name] = full
            elif isinstance(node, ast.Call):
                function = node.func
                called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
                self.calls.append((node.lineno, called, isinstance(function, ast.Name)))
            elif isinstance(node, ast.Attribute):
                self.attributes.append((node.lineno, node.attr))
            elif isinstance(node, ast.Name):
                self.bare_names.append((node.lineno, node.id))

    def _absolute(self, node: ast.ImportFrom, is_package: bool) -> str:
        if not node.level:
            return node.module or ""
        parts = [PACKAGE, *filter(None, self.name.split("."))]
        if not is_package:
            parts.pop()
        parts = parts[:len(parts) - (node.level - 1)]
        return ".".join([*parts, node.module] if node.module else parts)

    def package_imports(self) -> list[tuple[int, str]]:
        """Imports of modules of the package, as names relative to it ('' for the package itself)."""
        found = []
        for line, full in self.imports:
            if full == PACKAGE:
                found.append((line, ""))
            elif full.startswith(f"{PACKAGE}."):
                found.append((line, full.removeprefix(f"{PACKAGE}.")))
        return found


def direct_io(facts: ModuleFacts) -> list[tuple[int, str]]:
    """The I/O a module does itself, as (line, what) pairs."""
    found = []
    for line, full in facts.imports:
        if full.partition(".")[0] in IO_STDLIB:
            found.append((line, f"imports {full}"))
    io_locals = {local for local, full in facts.names.items() if full.rpartition(".")[2] in IO_STDLIB
                 or full.partition(".")[0] in IO_STDLIB}
    for line, called, bare in facts.calls:
        if bare and called in IO_BUILTINS and called not in facts.names:
            found.append((line, f"calls {called}()"))
    for line, attribute in facts.attributes:
        if attribute in IO_STDLIB:
            found.append((line, f"reaches the module {attribute} as an attribute"))
    for line, name in facts.bare_names:
        if name in io_locals and name not in IO_STDLIB:  # bound by `from x import os as name` or similar
            found.append((line, f"uses {name} ({facts.names[name]})"))
        elif name in IO_STDLIB and name not in facts.names:  # the import itself is reported where there is one
            found.append((line, f"uses the module {name}"))
    return found


def check(sources: dict[str, str]) -> list[Violation]:
    """Every layering violation in the package whose modules (relative name -> source) are given."""
    known = set(sources)
    facts = {name: ModuleFacts(name, source, known) for name, source in sources.items()}
    violations: list[Violation] = []
    for name in sorted(known):
        if layer_of(name) is None:
            violations.append(Violation(name, 1, "is in no layer: declare it in LAYERS"))
    graph = {name: [(line, target) for line, target in fact.package_imports() if target in known]
             for name, fact in facts.items()}
    codec_io = {name: _codec_io(facts[name], sources[name]) for name in known if layer_of(name) == CODEC}
    io_modules = {name for name in known if layer_of(name) not in (PURE, CODEC) or direct_io(facts[name])
                  or codec_io.get(name)}
    io_modules -= {name for name in codec_io if not codec_io[name]}
    for name in sorted(known):
        if layer_of(name) == PURE:
            violations += _pure_violations(name, facts[name], graph, io_modules)
        violations += [Violation(name, line, f"codec {what}") for line, what in codec_io.get(name, ())]
        violations += _writer_violations(name, facts[name])
    return violations


def _is_codec_user(name: str) -> bool:
    return any(name == user or name.startswith(f"{user}.") for user in CODEC_USERS)


def _codec_io(facts: ModuleFacts, source: str) -> list[tuple[int, str]]:
    """The I/O a codec module does: its direct I/O, except importing a module of
    `CODEC_CONSTANT_MODULES` and using that module's constants (upper-case names) and the
    conversions listed there."""
    allowed = {f"imports {module}" for module in CODEC_CONSTANT_MODULES}
    found = [(line, what) for line, what in direct_io(facts) if what not in allowed]
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in CODEC_CONSTANT_MODULES and not node.attr.isupper()
                and node.attr not in CODEC_CONSTANT_MODULES[node.value.id]):
            found.append((node.lineno, f"uses {node.value.id}.{node.attr}, not a constant"))
    return found


def _pure_violations(name: str, fact: ModuleFacts, graph: dict, io_modules: set[str]) -> list[Violation]:
    found = [Violation(name, line, f"pure module {what}") for line, what in direct_io(fact)]
    for line, target in graph[name]:
        if layer_of(target) == CODEC and _is_codec_user(name):
            continue
        if layer_of(target) != PURE:
            found.append(Violation(name, line, f"pure module imports {PACKAGE}.{target} ({layer_of(target)} layer)"))
    for line, chain in _indirect_io(name, graph, io_modules):
        found.append(Violation(name, line, "pure module reaches I/O through " + " -> ".join(chain)))
    return found


def _indirect_io(start: str, graph: dict, io_modules: set[str]) -> list[tuple[int, list[str]]]:
    """Chains start -> ... -> an I/O module, through modules that are pure themselves: the transitive
    closure of the import graph, each I/O module reported once with the first chain found."""
    found, seen = [], {start}
    frontier = [(line, [start, target]) for line, target in graph[start] if layer_of(target) == PURE]
    while frontier:
        line, chain = frontier.pop(0)
        module = chain[-1]
        if module in seen:
            continue
        seen.add(module)
        if module in io_modules:
            found.append((line, chain))
            continue
        frontier += [(line, [*chain, target]) for _, target in graph[module]]
    return found


def _writer_violations(name: str, fact: ModuleFacts) -> list[Violation]:
    if layer_of(name) == WRITER:
        return []
    found = []
    if name not in WRITING_DEFINERS:
        builds_requests = _is_codec_user(name)
        for line, called, _ in fact.calls:
            if called in WRITING_CALLS and not (builds_requests and called in REQUEST_BUILDERS):
                found.append(Violation(name, line, f"calls {called}(); only the writer modules write to the kernel"))
    allowed = WRITER_ENTRY_POINTS.get(name, set())
    for line, target in fact.package_imports():
        if layer_of(target) == WRITER and target not in allowed:
            found.append(Violation(name, line, f"imports the writer module {PACKAGE}.{target}"))
    return found


# --- the real package ------------------------------------------------------------------


def test_the_package_keeps_its_layers():
    violations = check(read_package())
    assert not violations, "\n".join(map(str, violations))


def test_every_layer_has_modules():
    layers = {name: layer_of(name) for name in read_package()}
    assert {PURE, IO, WRITER} <= set(layers.values())
    assert len([name for name, layer in layers.items() if layer == PURE]) >= 10


# --- planted violations: the checker must report each --------------------------------------


def planted(module: str, code: str, extra: dict[str, str] | None = None) -> list[str]:
    """The violations in the real package with `code` appended to `module` (and `extra` modules added)."""
    sources = read_package()
    sources[module] = sources[module] + "\n" + code + "\n"
    sources.update(extra or {})
    return [str(violation) for violation in check(sources)]


@pytest.mark.parametrize(("module", "code", "expected"), [
    ("state.planner", "from reconciler import kernel", "pure module imports reconciler.kernel (io"),
    ("state.planner", "from reconciler.kernel import writer",
     "pure module imports reconciler.kernel.writer (writer"),
    ("state.planner", "from reconciler.kernel import writer", "imports the writer module"),
    ("state.planner", "from ..kernel import observe", "pure module imports reconciler.kernel.observe"),
    ("state.planner", "import reconciler.run.engine", "pure module imports reconciler.run.engine"),
    ("render.firewall", "from reconciler.kernel import nft", "pure module imports reconciler.kernel.nft"),
    ("render.firewall", "from reconciler.kernel.nft import load_ruleset", "pure module imports"),
    ("state.planner", "import shutil", "pure module imports shutil"),
    ("state.planner", "def f(path):\n    open(path, 'w').write('x')", "pure module calls open()"),
    ("state.planner", "def f(path):\n    shutil.rmtree(path)", "pure module uses the module shutil"),
    ("state.planner", "import os.path", "pure module imports os.path"),
    ("state.planner", "from os import unlink", "pure module imports os"),
    ("state.planner", "from subprocess import run as go", "pure module imports subprocess"),
    ("render.hostsfile", "import socket", "pure module imports socket"),
    ("spec.values", "import ctypes", "pure module imports ctypes"),
    ("spec.types", "import fcntl", "pure module imports fcntl"),
    ("state.desired", "import time", "pure module imports time"),
    ("state.model", "import random", "pure module imports random"),
    ("run.scheduler", "import threading", "pure module imports threading"),
    ("state.planner", "def f(path):\n    desired.os.unlink(path)", "pure module reaches the module os"),
    ("state.planner", "m = __import__('os')", "pure module calls __import__()"),
    ("state.planner", "import importlib", "pure module imports importlib"),
    ("run.watch", "def f(dir_fd):\n    write_atomically(dir_fd, 'hosts', '')",
     "calls write_atomically(); only the writer modules"),
    ("kernel.observe", "def f(sock):\n    sock.execute([])", "calls execute()"),
    ("run.watch", "from reconciler.kernel.writer import KernelWriter", "imports the writer module"),
    ("cli", "from reconciler.kernel import files", "imports the writer module reconciler.kernel.files"),
    ("state.planner", "from reconciler.kernel import netlink", "pure module imports reconciler.kernel.netlink (codec"),
    ("render.firewall", "from reconciler.kernel.netlink import new_addr", "pure module imports reconciler.kernel"),
    ("kernel.netlink", "def f():\n    return socket.socket()", "codec uses socket.socket, not a constant"),
    ("kernel.netlink", "import os", "codec imports os"),
    ("kernel.netlink", "def f(path):\n    open(path)", "codec calls open()"),
    ("drivers.bridge", "def f(sock):\n    sock.execute([])", "calls execute()"),
    ("drivers.bridge", "import os", "pure module imports os"),
    ("drivers.bridge", "from reconciler.kernel import nlsocket", "pure module imports reconciler.kernel.nlsocket"),
    ("drivers.bridge", "from reconciler.kernel import links", "imports the writer module"),
    ("state.desired", "def f():\n    return nl.new_bridge(1, 'b', '', 1500)", "calls new_bridge()"),
])
def test_a_planted_violation_is_reported(module, code, expected):
    first = read_package()[module].count("\n") + 2  # the planted code's first line
    planted_lines = {f"{module}:{line}: " for line in range(first, first + code.count("\n") + 1)}
    reported = planted(module, code)
    assert any(report.partition(" ")[0] + " " in planted_lines and report.partition(" ")[2].startswith(expected)
               for report in reported), reported


def test_io_reached_through_a_chain_of_pure_modules_is_reported():
    # state.planner -> state.helper (clean itself) -> state.sockets_inside (imports socket): the
    # planner's own imports are all pure modules, so only the transitive closure finds its I/O
    helper = "from reconciler.state import sockets_inside\n"
    inner = "import socket\n"
    reported = planted("state.planner", "from reconciler.state import helper",
                       {"state.helper": helper, "state.sockets_inside": inner})
    assert any(report.startswith("state.planner:") and "reaches I/O through state.planner -> state.helper -> "
               "state.sockets_inside" in report for report in reported), reported


def test_io_that_a_pure_module_imports_from_an_io_module_by_name_is_reported():
    reported = planted("render.plantext", "from reconciler.kernel.observe import os as system\nsystem.unlink('x')")
    assert any(report.startswith("render.plantext:") and "uses system (reconciler.kernel.observe.os)" in report
               for report in reported), reported


def test_io_in_the_codec_reaches_the_pure_modules_that_import_a_driver():
    reported = planted("kernel.netlink", "import subprocess")
    assert any(report.startswith("state.desired:") and "reaches I/O through state.desired -> drivers" in report
               and "kernel.netlink" in report for report in reported), reported


def test_a_module_in_no_layer_is_reported():
    reported = check({**read_package(), "extras.tool": "x = 1\n"})
    assert [str(v) for v in reported] == ["extras.tool:1: is in no layer: declare it in LAYERS"]
