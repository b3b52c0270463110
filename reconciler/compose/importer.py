"""`netreconcile import`: a Compose file in, a spec that validates out (I/O: reads files).

The translation is checked with the spec loader itself. What it refuses (a port
published twice, an address outside its subnet, a link to a container left out) is left
out of the spec with a note at the Compose line it came from, and the spec is checked
again, until it validates; what cannot be left out (a subnet) stops the import.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.representer import SafeRepresenter

from reconciler.compose.interpolate import InterpolationError, Note, interpolate_document
from reconciler.compose.reader import environment_for, read_compose
from reconciler.compose.translate import ComposeError, Origin, SpecPath, Translation, translate
from reconciler.errors import SourceError, SpecError
from reconciler.spec.document import dotted
from reconciler.spec.loader import load_spec_text
from reconciler.spec.types import Location

MAX_ROUNDS = 20
_DROPPED: Any = object()  # a list item left out, until the spec is written
# keys of a network that nothing else can stand in for: a problem with them stops the import
_ESSENTIAL_NETWORK_KEYS = {"subnet", "driver"}
_IPV6_KEYS = ("enable_ipv6", "subnet6", "gateway6", "masquerade6")


class ComposeImportError(SourceError):
    """The Compose file cannot become a spec; the message names the Compose locations."""


@dataclass
class ImportResult:
    text: str  # the spec, YAML
    notes: list[Note] = field(default_factory=list)
    spec: dict[str, Any] = field(default_factory=dict)


def import_compose(compose_file: str, env_file: str | None = None,
                   environment: Mapping[str, str] | None = None) -> ImportResult:
    environment = os.environ if environment is None else environment
    doc = read_compose(compose_file)
    variables = environment_for(compose_file, env_file, environment)
    try:
        notes = interpolate_document(doc, variables)
        project_dir = os.path.basename(os.path.dirname(os.path.abspath(compose_file)))
        translation = translate(doc, project_dir, variables.get("COMPOSE_PROJECT_NAME") or None)
    except (InterpolationError, ComposeError) as error:
        raise ComposeImportError(str(error)) from None
    notes.extend(translation.notes)
    spec, settled_notes = settle(translation, compose_file)
    notes.extend(settled_notes)
    notes.sort(key=lambda note: (note.location.line, note.location.col))
    return ImportResult(render(spec, compose_file, translation.project), notes, spec)


def settle(translation: Translation, label: str) -> tuple[dict[str, Any], list[Note]]:
    """The translated spec with what the loader refuses left out, and a note for each."""
    notes: list[Note] = []
    spec = translation.spec
    for _ in range(MAX_ROUNDS):
        clean, internal_paths = _clean(spec)
        try:
            load_spec_text(_dump(clean), label)
            return clean, notes
        except SpecError as error:
            problems = error.problems
        fatal = []
        drops: list[tuple[SpecPath, Note]] = []
        for problem in problems:
            path = internal_paths.get(problem.path)
            origin = _origin(translation.origins, path or (), label)
            message = _in_compose_terms(problem.message, label, internal_paths, translation.origins)
            target = _droppable(path)
            whole_container = target is not None and len(target) == 2 and target != path
            left_out = "the container is left out" if whole_container else "left out"
            note = Note(origin.location, origin.path, f"{message}; {left_out}")
            if target is None:
                fatal.append(Note(origin.location, origin.path, message))
            else:
                drops.append((target, note))
        if fatal:
            lines = "\n".join(str(note) for note in fatal)
            raise ComposeImportError(f"{lines}\nthe Compose file cannot be imported as it is: fix the values above")
        for target, note in sorted(drops, key=lambda drop: [str(part) for part in drop[0]], reverse=True):
            if _drop(spec, target):
                notes.append(note)
    raise ComposeImportError(f"{label}: the spec did not validate after leaving out what netreconcile refused")


def _origin(origins: dict[SpecPath, Origin], path: SpecPath, label: str) -> Origin:
    while path and path not in origins:
        path = path[:-1]
    return origins.get(path) or Origin(Location(label, 1, 1), "")


def _in_compose_terms(message: str, label: str, internal_paths: dict[str, SpecPath],
                      origins: dict[SpecPath, Origin]) -> str:
    """`message` with the spec places it names (`containers.a.ports.0 (FILE:3:7)`, in the
    spec the user never saw) named as the Compose places they came from."""
    def compose_place(match: re.Match) -> str:
        path = internal_paths.get(match[1])
        if path is None:
            return match[0]
        origin = _origin(origins, path, label)
        return f"{origin.path} ({origin.location})"

    return re.sub(r"([\w.-]+) \(" + re.escape(label) + r":\d+:\d+\)", compose_place, message)


def _droppable(path: SpecPath | None) -> SpecPath | None:
    """What to leave out for a problem at spec `path`; None when nothing can be."""
    if path is None or len(path) < 2:
        return None
    section, *rest = path
    if section == "containers":
        # a container whose namespace is another's cannot stand without it
        return path[:2] if len(path) == 3 and path[2] == "network_mode" else path
    if section == "networks" and len(rest) >= 2:
        if rest[1] in _ESSENTIAL_NETWORK_KEYS:
            return None
        return path[:3] if rest[1] in _IPV6_KEYS else path
    return None


def _drop(spec: dict[str, Any], path: SpecPath) -> bool:
    """Leave out the value at `path` (IPv6 keys of a network all together); False if gone already."""
    parent: Any = spec
    for part in path[:-1]:
        try:
            parent = parent[part]
        except (KeyError, IndexError, TypeError):
            return False
    last = path[-1]
    if path[0] == "networks" and last in _IPV6_KEYS:
        found = False
        for key in _IPV6_KEYS:
            found = parent.pop(key, None) is not None or found
        return found
    if isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        dropped, parent[last] = parent[last] is not _DROPPED, _DROPPED
        return dropped
    if isinstance(parent, dict) and last in parent:
        del parent[last]
        return True
    return False


def _clean(spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, SpecPath]]:
    """The spec as written (left-out items gone, attachments without settings as a list),
    and for each dotted path of it the path in `spec`."""
    paths: dict[str, SpecPath] = {}

    def walk(value: Any, internal: SpecPath, written: SpecPath) -> Any:
        paths[dotted(written)] = internal
        if isinstance(value, dict):
            if len(internal) == 3 and internal[0] == "containers" and internal[2] == "networks" \
                    and not any(value.values()):  # no settings, or all of them left out
                for index, name in enumerate(value):
                    paths[dotted((*written, index))] = (*internal, name)
                return list(value)
            return {key: walk(item, (*internal, key), (*written, key)) for key, item in value.items()
                    if not _emptied(item, internal)}
        if isinstance(value, list):
            kept = [(index, item) for index, item in enumerate(value) if item is not _DROPPED]
            return [walk(item, (*internal, index), (*written, position))
                    for position, (index, item) in enumerate(kept)]
        return value

    return walk(spec, (), ()), paths


def _emptied(value: Any, parent: SpecPath) -> bool:
    """A container setting whose every entry was left out: not written at all."""
    if len(parent) != 2 or parent[0] != "containers":
        return False
    if isinstance(value, list):
        return all(item is _DROPPED for item in value)
    return isinstance(value, dict) and not value


class _SpecRepresenter(SafeRepresenter):
    """Keys in the order given; strings with a ':' (ports, MACs, IPv6 addresses) quoted,
    so that no YAML 1.1 reader takes `8080:80` for a number in base 60."""


def _represent_string(representer: SafeRepresenter, data: str) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:str", data, style='"' if ":" in data else None)


_SpecRepresenter.add_representer(str, _represent_string)


def _dump(data: dict[str, Any]) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = _SpecRepresenter
    yaml.sort_base_mapping_type_on_output = False
    yaml.default_flow_style = False
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def render(spec: dict[str, Any], compose_file: str, project: str) -> str:
    header = (f"# Made by `netreconcile import` from {os.path.basename(compose_file)} (project {project}).\n"
              "# What netreconcile cannot express was listed on stderr at its Compose line.\n")
    return header + _dump(spec)
