"""The spec as read from YAML: plain data with the location of every key and value and the
problems found so far, and `SectionReader`, the base of the section checks that build the `Spec`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address
from typing import Any, NoReturn

from reconciler.errors import Problem, SpecError
from reconciler.spec.ports import PortMapping
from reconciler.spec.types import Location

PathKey = tuple[str | int, ...]


def fail(location: Location, message: str, path: str = "") -> NoReturn:
    raise SpecError([Problem(location, path, message)])


@dataclass
class Document:
    """The spec as plain JSON-like data, with the location of every key and value.

    Collects the problems of every stage; `rejected` holds the paths of values already
    reported as invalid, so that later stages skip them and each mistake is reported once.
    """

    filename: str
    data: Any = None
    # Where each key and value is written: 1-based line and column.
    key_locations: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    value_locations: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    rejected: set[PathKey] = field(default_factory=set)
    _rejected_parents: set[PathKey] = field(default_factory=set)

    def get(self, path: PathKey, default: Any = None) -> Any:
        value = self.data
        for part in path:
            # Looks before it leaps: most lookups are of absent optional keys, and raising
            # and catching an exception would cost more than the rest of the lookup.
            found = (type(value) is dict and part in value) or (
                type(value) is list and type(part) is int and 0 <= part < len(value)
            )
            if not found:
                return default
            value = value[part]
        return value

    def location(self, path: PathKey) -> Location:
        """Where the value at `path` is written: its key for collections, else the value itself."""
        if isinstance(self.get(path), (dict, list)) or path not in self.value_locations:
            return self.key_location(path)
        return Location(self.filename, *self.value_locations[path])

    def key_location(self, path: PathKey) -> Location:
        """Where the key (or list item) naming `path` is written, else the nearest parent's."""
        while path not in self.key_locations and path not in self.value_locations:
            path = path[:-1]
        return Location(self.filename, *(self.key_locations.get(path) or self.value_locations[path]))

    def problem(self, path: PathKey, message: str, *, at_key: bool = False) -> None:
        where = self.key_location(path) if at_key else self.location(path)
        self.problems.append(Problem(where, dotted(path), message))

    def reject(self, path: PathKey, message: str) -> None:
        """Report the value at `path` as invalid; later checks leave it alone."""
        self.problem(path, message)
        self.rejected.add(path)
        self._rejected_parents.update(path[:i] for i in range(len(path)))

    def is_rejected(self, path: PathKey) -> bool:
        """True if the value at `path`, a parent or anything inside it was reported invalid."""
        parents = (path[:i] for i in range(len(path) + 1))
        return path in self._rejected_parents or any(parent in self.rejected for parent in parents)


def dotted(path: PathKey) -> str:
    return ".".join(str(part) for part in path)


def show(value: Any, limit: int = 60) -> str:
    """A short rendering of a spec value for messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


class SectionReader:
    """What every section check shares: the document, typed getters, and the owners of
    values that must be unique across the spec.

    The typed getters return None (or the default) for values of the wrong type: the
    schema has reported those already.
    """

    def __init__(self, doc: Document):
        self.doc = doc
        self.address_owners: dict[IPv4Address, str] = {}
        self.mac_owners: dict[str, str] = {}
        self.links: list[tuple[PathKey, str]] = []  # each link item's path and target name
        self.published: list[tuple[PathKey, PortMapping]] = []  # each ports item's path and mapping
        # host interfaces networks use -> (network, role): "uplink", "parent" or "passthru parent"
        self.interface_users: dict[str, tuple[str, str]] = {}

    def _mapping(self, path: PathKey) -> dict[str, Any]:
        value = self.doc.get(path)
        return value if isinstance(value, dict) else {}

    def _string(self, path: PathKey) -> str | None:
        value = self.doc.get(path)
        return value if isinstance(value, str) else None

    def _bool(self, path: PathKey, default: bool) -> bool:
        value = self.doc.get(path)
        return value if isinstance(value, bool) else default

    def _int(self, path: PathKey, default: int) -> int:
        value = self.doc.get(path)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else default

    def _location_if_set(self, path: PathKey) -> Location | None:
        return self.doc.location(path) if self.doc.get(path) is not None else None

    @staticmethod
    def _claim(owners: dict[Any, str], value: Any, owner: str) -> str | None:
        """Record `owner` as the user of `value`; if it was taken before, say by whom."""
        first = owners.setdefault(value, owner)
        return None if first is owner else f"{value} is already used by {first}"
