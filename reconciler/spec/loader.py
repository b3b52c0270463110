"""Read a spec file into a validated `Spec`, or raise one `SpecError` listing every problem.

The stages, each in its own module of this package: `yamlread` (text to a `Document` with
the line and column of every key and value), `schema_check` (the JSON Schema in
``reconciler/spec/schema.json``, the one source of truth for field names), then the
section checks that build the dataclasses of `types` (`networks`, `containers`, with the
single-value checks of `values`). Every stage adds to the document's problems, so that one
run reports every mistake. This module runs the stages, and owns the list of fields that
are designed but not supported yet (`NOT_SUPPORTED_YET`).

Nothing here touches the machine but reading the spec file: `load_spec_text` is pure.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any

from reconciler.errors import SpecError
from reconciler.spec.document import PathKey, fail
from reconciler.spec.nodes import NodeChoice, NodeSection
from reconciler.spec.schema_check import check_schema
from reconciler.spec.types import Location, Spec
from reconciler.spec.yamlread import MAX_SPEC_SIZE, TOO_LARGE, parse_yaml, read_text

# Fields that the design and the schema know but this version does not implement yet.
# Refusing them keeps anyone from believing they work. Key: dotted path, '*' matching
# any one name. Value: None to refuse any value, or the values that are accepted (the
# defaults). Lift an entry once the planner implements the field.
NOT_SUPPORTED_YET: dict[str, tuple[Any, ...] | None] = {}


def load_spec(path: str | os.PathLike, node: NodeChoice | None = None) -> Spec:
    """Read and validate the spec file at `path`; SourceError when it cannot be read."""
    filename = os.fsdecode(path)
    return load_spec_text(read_text(filename), filename, node)


def load_spec_text(text: str, filename: str, node: NodeChoice | None = None) -> Spec:
    """Validate spec `text`; `filename` is used in locations. Raises only `SpecError`.
    `node`: the node this host applies a multi-host spec as (which containers it builds)."""
    if len(text) > MAX_SPEC_SIZE:
        fail(Location(filename, 1, 1), TOO_LARGE)
    _refuse_compose_file(text, filename)
    doc = parse_yaml(text, filename)
    if doc.data is None and not doc.problems:
        fail(Location(filename, 1, 1), "the spec is empty")
    check_schema(doc)
    spec = _Builder(doc).build(node)
    if doc.problems:
        raise SpecError(doc.problems)
    return spec


_COMPOSE_SERVICES = re.compile(r"^services[ \t]*:", re.MULTILINE)
_SPEC_CONTAINERS = re.compile(r"^containers[ \t]*:", re.MULTILINE)
COMPOSE_HINT = ("this is a Compose file (top-level services:, no containers:), not a netreconcile spec: "
                "translate it with `netreconcile import {file} -o spec.yaml`")


def _refuse_compose_file(text: str, filename: str) -> None:
    """A Compose file gets one line saying what it is and what to run, instead of a
    problem per key (found in the text, so that Compose's YAML anchors do not hide it)."""
    services = _COMPOSE_SERVICES.search(text)
    if services is None or _SPEC_CONTAINERS.search(text):
        return
    line = text.count("\n", 0, services.start()) + 1
    fail(Location(filename, line, 1), COMPOSE_HINT.format(file=filename))


def _not_supported_rule(path: PathKey) -> str | None:
    """The NOT_SUPPORTED_YET pattern matching `path`, if any."""
    # This runs for every value: look at the patterns of the path's length only, and at
    # their last part first, which tells most paths apart.
    for pattern, parts in _patterns_by_length(tuple(NOT_SUPPORTED_YET)).get(len(path), ()):
        if parts[-1] in ("*", path[-1]) and all(p in ("*", part) for p, part in zip(parts, path)):
            return pattern
    return None


@functools.cache
def _patterns_by_length(patterns: tuple[str, ...]) -> dict[int, list[tuple[str, list[str]]]]:
    by_length: dict[int, list[tuple[str, list[str]]]] = {}
    for pattern in patterns:
        parts = pattern.split(".")
        by_length.setdefault(len(parts), []).append((pattern, parts))
    return by_length


def _not_supported_message(path: PathKey, value: Any, accepted: tuple[Any, ...] | None) -> str | None:
    if accepted is not None and any(type(value) is type(ok) and value == ok for ok in accepted):
        return None
    shown = str(path[-1])
    if accepted is not None and not isinstance(value, (dict, list)):
        shown += ": " + (str(value).lower() if isinstance(value, bool) else str(value))
    return f"'{shown}' is not supported yet by this version of netreconcile"


class _Builder(NodeSection):
    """Runs the section checks over the document and builds the Spec."""

    def build(self, node: NodeChoice | None = None) -> Spec:
        nodes = self._nodes()
        networks = self._networks()
        containers = self._containers({network.name: network for network in networks})
        self._check_container_nodes(nodes, containers)
        self._check_capacity(networks, containers)
        self._check_links(containers)
        self._check_network_modes(containers)
        self._check_published_ports(networks, containers)
        self._check_host_gateway(networks, containers)
        self._check_not_supported_yet()
        return Spec(
            path=self.doc.filename,
            version=self._int(("version",), 1),
            host=self._host(),
            networks=tuple(networks),
            containers=tuple(containers),
            nodes=tuple(nodes),
            node=self._chosen_node(nodes, node),
        )

    def _check_not_supported_yet(self) -> None:
        for path in list(self.doc.value_locations):
            pattern = _not_supported_rule(path)
            if pattern is None or self.doc.is_rejected(path):
                continue
            message = _not_supported_message(path, self.doc.get(path), NOT_SUPPORTED_YET[pattern])
            if message:
                self.doc.problem(path, message, at_key=True)
