"""Read a spec file into a validated `Spec`, or raise one `SpecError` listing every problem.

This module owns everything between the YAML text and the `Spec` dataclasses:
parsing (with line and column of every key and value), validation against the JSON
Schema in ``reconciler/spec/schema.json`` (the one source of truth for field
names), the semantic checks (names, subnets, addresses, references), the defaults,
and the list of fields that are designed but not supported yet (`NOT_SUPPORTED_YET`).

Parsing reads the event stream of ruamel.yaml's parser (libyaml, from ruamel.yaml.clib,
where installed) and builds plain data from it without recursion: scalars are resolved
with the YAML 1.2 core schema, and aliases, deep nesting and duplicate keys are refused.

Nothing here touches the machine: `load_spec_text` is pure.
"""

from __future__ import annotations

import bisect
import difflib
import functools
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from ipaddress import AddressValueError, IPv4Address, IPv4Network, NetmaskValueError
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.errors import Problem, SourceError, SpecError
from reconciler.render.hostsfile import (
    ExtraHostError,
    extra_host_from_mapping,
    parse_extra_host,
    validate_hostname,
)
from reconciler.spec.ports import PortError, PortMapping, overlaps, parse_port
from reconciler.render.resolvconf import validate_dns_search, validate_nameserver
from reconciler.spec.types import (
    Attachment,
    ContainerSpec,
    HostSpec,
    Location,
    NetworkSpec,
    Spec,
)

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

try:  # libyaml, some 20 times faster than ruamel.yaml's pure-Python parser
    from _ruamel_yaml import CParser
except ImportError:
    CParser = None

SCHEMA_RESOURCE = "schema.json"  # shipped inside this package, read through importlib.resources

# Bytes in a file, characters in a text. A spec made of the smallest values possible takes
# some 4 s per MiB to load with libyaml (the pure-Python parser takes 10 times longer).
MAX_SPEC_SIZE = 2 * 1024 * 1024
TOO_LARGE = f"the spec is larger than {MAX_SPEC_SIZE // (1024 * 1024)} MiB"
MAX_NESTING = 32  # the spec needs 6 levels of nodes; the schema checks recurse per level

# Fields that the design and the schema know but this version does not implement yet.
# Refusing them keeps anyone from believing they work. Key: dotted path, '*' matching
# any one name. Value: None to refuse any value, or the values that are accepted (the
# defaults). Lift an entry once the planner implements the field.
NOT_SUPPORTED_YET: dict[str, tuple[Any, ...] | None] = {}

NETWORK_MODES = ("bridge", "none", "host", "container:<name>")
# settings that network modes without networks of their own cannot have, and why
_MODE_CONFLICTS: dict[str, tuple[frozenset[str], str]] = {
    "none": (frozenset({"networks", "ports", "links", "mac_address"}), "the container has no network"),
    "host": (frozenset({"networks", "ports", "links", "mac_address", "hostname", "domainname"}),
             "the container uses the host's network and hostname"),
    "container": (frozenset({"networks", "ports", "links", "mac_address", "hostname", "domainname", "dns",
                             "dns_search", "dns_opt", "extra_hosts"}),
                  "the container uses the network, hostname and files of the one it joins"),
}

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
NAME_MAX = 63
IFNAMSIZ = 16  # including the terminating NUL: 15 usable characters
VETH_PREFIX = "veth"  # netreconcile names its host-side veth ends veth<7 hex>
MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")

PathKey = tuple[str | int, ...]

_YAML_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
}


def load_spec(path: str | os.PathLike) -> Spec:
    """Read and validate the spec file at `path`; SourceError when it cannot be read."""
    filename = os.fsdecode(path)
    return load_spec_text(_read_text(filename), filename)


def load_spec_text(text: str, filename: str) -> Spec:
    """Validate spec `text`; `filename` is used in locations. Raises only `SpecError`."""
    if len(text) > MAX_SPEC_SIZE:
        _fail(Location(filename, 1, 1), TOO_LARGE)
    doc = _parse_yaml(text, filename)
    if doc.data is None and not doc.problems:
        _fail(Location(filename, 1, 1), "the spec is empty")
    _check_schema(doc)
    spec = _Builder(doc).build()
    if doc.problems:
        raise SpecError(doc.problems)
    return spec


def _fail(location: Location, message: str, path: str = "") -> NoReturn:
    raise SpecError([Problem(location, path, message)])


# --- reading and parsing ---------------------------------------------------------


def _read_text(filename: str) -> str:
    try:
        with open(filename, "rb") as f:
            data = f.read(MAX_SPEC_SIZE + 1)
    except OSError as e:
        raise SourceError(f"cannot read {filename}: {e.strerror or e}") from None
    if len(data) > MAX_SPEC_SIZE:
        _fail(Location(filename, 0, 0), TOO_LARGE)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        valid = data[: e.start].decode("utf-8")
        where = Location(filename, *_line_col(valid, len(valid)))
        _fail(where, f"the spec is not valid UTF-8 (byte offset {e.start})")


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index` in `text`."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _parse_yaml(text: str, filename: str) -> _Document:
    # CParser is None without ruamel.yaml.clib; ruamel.yaml's own parser is 20 times slower.
    parsed, stand_in = (text, None) if CParser is None else _hide_inner_colons(text)
    events = YAML(typ="safe", pure=CParser is None).parse(parsed)
    try:
        return _TreeBuilder(filename, stand_in).build(events)
    except _ParserFailed as failed:
        raise SpecError([_parser_problem(failed.error, parsed, filename)]) from None


# libyaml implements YAML 1.1, which refuses a ':' followed by other than a space in an
# unquoted scalar inside a flow collection, as in {mac_address: 02:42:ac:11:00:02}; YAML
# 1.2 allows it. So libyaml gets such colons as a character that the text does not
# contain, and the scalars get them back: one character for one, no column moves. A ':'
# right after a quote or a bracket is a value indicator ({"a":1}) and stays, as do the
# colons of tags and directives, which libyaml reads itself.
_COLON_BEFORE_NON_SPACE = re.compile(r":[^ \t\r\n\x85\u2028\u2029,\[\]{}]")
_INNER_COLON_OR_KEPT = re.compile(
    r"(^%.*|[!&*]\S*)"  # directives, tags, anchors, aliases: kept
    r"|(?<![\"'\]}]):(?=[^ \t\r\n\x85\u2028\u2029,\[\]{}])",
    re.MULTILINE,
)
_STAND_INS = range(0xE000, 0xF900)  # the Private Use Area, which a spec has no use for


def _hide_inner_colons(text: str) -> tuple[str, str | None]:
    """`text` for libyaml, and the character standing in for its inner colons, if any."""
    if not _COLON_BEFORE_NON_SPACE.search(text):  # the common case, in a tenth of the time
        return text, None
    stand_in = next((chr(code) for code in _STAND_INS if chr(code) not in text), None)
    if stand_in is None:
        return text, None
    return _INNER_COLON_OR_KEPT.sub(lambda match: match[1] or stand_in, text), stand_in


class _ParserFailed(Exception):
    """The YAML parser cannot read the text; `error` says why."""

    def __init__(self, error: Exception):
        super().__init__(error)
        self.error = error


TAB_PROBLEM = "invalid YAML: a tab character; YAML indentation uses spaces, not tabs"


def _parser_problem(error: Exception, text: str, filename: str) -> Problem:
    if isinstance(error, MarkedYAMLError):
        tab = _tab_location(error.problem_mark, text, filename)
        return Problem(tab, "", TAB_PROBLEM) if tab else _marked_yaml_problem(error, filename)
    position = _error_position(error, text)
    line, col = (1, 1) if position is None else _line_col(text, position)
    first_line = str(error).partition("\n")[0]  # the rest repeats the position
    return Problem(Location(filename, line, col), "", f"invalid YAML: {first_line}")


def _tab_location(mark: Any, text: str, filename: str) -> Location | None:
    """Where the parser stopped, if at a tab: its own messages do not all say "tab"."""
    if mark is None:
        return None
    lines = text.split("\n")
    if mark.line < len(lines) and lines[mark.line][mark.column:mark.column + 1] == "\t":
        return Location(filename, mark.line + 1, mark.column + 1)
    return None


def _error_position(error: Exception, text: str) -> int | None:
    """The index of the character that an error without a mark (ReaderError) is about."""
    if isinstance(error, UnicodeEncodeError):  # libyaml encodes the text to UTF-8 first
        return error.start
    position = getattr(error, "position", None)
    if not isinstance(position, int):
        return None
    if CParser is not None:  # libyaml counts bytes
        position = len(text.encode("utf-8")[:position].decode("utf-8", "ignore"))
    return position


def _marked_yaml_problem(error: MarkedYAMLError, filename: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = error.problem or error.context or "invalid YAML"
    context = error.context_mark
    if error.problem and error.context and context and context.line != (mark.line if mark else -1):
        message += f" ({error.context} at line {context.line + 1}, column {context.column + 1})"
    return Problem(Location(filename, line, col), "", "invalid YAML: " + message)


_NO_KEY: Any = object()


@dataclass(eq=False, slots=True)
class _Open:
    """A mapping or sequence whose events are still arriving."""

    value: dict[Any, Any] | list[Any]
    path: PathKey
    mark: Any  # where it starts
    record: bool  # record locations and problems: False inside keys and dropped values
    keep: bool = True  # False: replaced by None once complete (its tag is refused)
    key: Any = _NO_KEY  # of a mapping: the key whose value is being read
    key_mark: Any = None
    other_keys: dict[Any, Any] = field(default_factory=dict)  # of a mapping: keys not strings


class _TreeBuilder:
    """Builds a `_Document` from the parser's events.

    Iterative (the open collections are on `stack`), so that no nesting can overflow a
    stack; aliases (a few lines of them expand to gigabytes), deep nesting, duplicate
    keys and further documents are refused as soon as their event arrives.
    """

    def __init__(self, filename: str, stand_in: str | None):
        self.doc = _Document(filename)
        self.stand_in = stand_in  # for ':' in scalars, see _hide_inner_colons
        self.doc.value_locations[()] = (1, 1)
        self.stack: list[_Open] = []
        self.root_mark: Any = None
        self.handlers: dict[type, Callable[[Any], None]] = {
            ScalarEvent: self._scalar,
            MappingStartEvent: self._start,
            SequenceStartEvent: self._start,
            MappingEndEvent: self._end,
            SequenceEndEvent: self._end,
            AliasEvent: self._alias,
            DocumentStartEvent: self._document_start,
        }

    def build(self, events: Iterator[Any]) -> _Document:
        """Consume the parser's `events`; raises _ParserFailed if the parser fails."""
        handlers = self.handlers
        while True:
            try:
                event = next(events)
            except StopIteration:
                return self.doc
            # The parsers raise assorted exception types on malformed input (ReaderError,
            # UnicodeEncodeError for a lone surrogate, ...); none may escape as a traceback.
            except Exception as e:
                raise _ParserFailed(e) from e
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)

    def _scalar(self, event: ScalarEvent) -> None:
        path, record = self._node_path(event)
        text = event.value
        if self.stand_in is not None and self.stand_in in text:
            text = text.replace(self.stand_in, ":")
        value = self._resolve(text, event)
        if type(value) is _Unsupported and not self._reading_key():
            if record:
                self.doc.reject(path, value.message)
            value = None
        self._add(value, event.start_mark)

    def _resolve(self, text: str, event: ScalarEvent) -> Any:
        try:
            return _scalar_value(text, event.tag, event.implicit[0])
        except ValueError as e:  # an impossible date such as 2023-02-30
            mark = event.start_mark
            where = f"{text!r} at line {mark.line + 1}, column {mark.column + 1}"
            _fail(Location(self.doc.filename, 1, 1), f"invalid YAML: {e} ({where})")

    def _start(self, event: MappingStartEvent | SequenceStartEvent) -> None:
        path, record = self._node_path(event)
        is_mapping = type(event) is MappingStartEvent
        issue = _collection_tag_issue(event.tag, "map" if is_mapping else "seq")
        if issue and record:
            self.doc.reject(path, issue)
        value: dict[Any, Any] | list[Any] = {} if is_mapping else []
        self.stack.append(_Open(value, path, event.start_mark, record and not issue, not issue))

    def _end(self, event: MappingEndEvent | SequenceEndEvent) -> None:
        node = self.stack.pop()
        self._add(node.value if node.keep else None, node.mark)

    def _alias(self, event: AliasEvent) -> NoReturn:
        message = f"YAML aliases (*{event.anchor}) are not supported; write the value out"
        _fail(self._at(event.start_mark), message)

    def _document_start(self, event: DocumentStartEvent) -> None:
        if self.root_mark is not None:
            error = MarkedYAMLError(
                "expected a single document in the stream", self.root_mark,
                "but found another document", event.start_mark,
            )
            raise SpecError([_marked_yaml_problem(error, self.doc.filename)])

    def _node_path(self, event: Any) -> tuple[PathKey, bool]:
        """The path of the node that `event` starts, and whether to record it there."""
        if len(self.stack) >= MAX_NESTING:
            _fail(self._at(event.start_mark), f"the spec nests deeper than {MAX_NESTING} levels")
        if not self.stack:
            self.root_mark = event.start_mark
            return (), True
        parent = self.stack[-1]
        if type(parent.value) is list:
            path = (*parent.path, len(parent.value))
        elif type(parent.key) is str:
            path = (*parent.path, parent.key)
        else:  # a key, or the value of a key that is not a string
            return parent.path, False
        if parent.record:
            mark = event.start_mark
            self.doc.value_locations[path] = (mark.line + 1, mark.column + 1)
        return path, parent.record

    def _reading_key(self) -> bool:
        parent = self.stack[-1] if self.stack else None
        return parent is not None and type(parent.value) is dict and parent.key is _NO_KEY

    def _add(self, value: Any, mark: Any) -> None:
        """Put a complete node into the collection it belongs to."""
        if not self.stack:
            self.doc.data = value
            return
        parent = self.stack[-1]
        if type(parent.value) is list:
            parent.value.append(value)
        elif parent.key is _NO_KEY:
            self._add_key(parent, value, mark)
        else:
            self._add_entry(parent, value)

    def _add_key(self, mapping: _Open, key: Any, mark: Any) -> None:
        mapping.key, mapping.key_mark = key, mark
        if not mapping.record:
            return
        if type(key) is str:
            self.doc.key_locations[(*mapping.path, key)] = (mark.line + 1, mark.column + 1)
        else:
            message = f"key {_show(key)} is not a string; quote it"
            self.doc.problems.append(Problem(self._at(mark), _dotted(mapping.path), message))

    def _add_entry(self, mapping: _Open, value: Any) -> None:
        key, mapping.key = mapping.key, _NO_KEY
        if isinstance(key, (dict, list)):  # unhashable, and reported as not a string
            return
        entries = mapping.value if type(key) is str else mapping.other_keys
        if key in entries:
            self._duplicate(mapping, key, value, entries[key])
        entries[key] = value

    def _duplicate(self, mapping: _Open, key: Any, value: Any, original: Any) -> NoReturn:
        problem = f'found duplicate key "{key}" with value "{value}" (original value: "{original}")'
        error = MarkedYAMLError("while constructing a mapping", mapping.mark, problem, mapping.key_mark)
        raise SpecError([_marked_yaml_problem(error, self.doc.filename)])

    def _at(self, mark: Any) -> Location:
        return Location(self.doc.filename, mark.line + 1, mark.column + 1)


# --- scalars: the YAML 1.2 core schema ---------------------------------------------------

_CORE_TAG = "tag:yaml.org,2002:"
_CORE_TYPES: dict[str, type] = {
    _CORE_TAG + "null": type(None),
    _CORE_TAG + "bool": bool,
    _CORE_TAG + "int": int,
    _CORE_TAG + "float": float,
}
_WORDS = {
    **dict.fromkeys(["", "~", "null", "Null", "NULL"]),
    **dict.fromkeys(["true", "True", "TRUE"], True),
    **dict.fromkeys(["false", "False", "FALSE"], False),
}
_NUMBER_START = frozenset("-+.0123456789")
_MAX_INT_LENGTH = 100
_INT = re.compile(r"[-+]?[0-9]+")
_OCT_HEX_INT = re.compile(r"0(?:o[0-7]+|x[0-9a-fA-F]+)")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?"
)


@dataclass(frozen=True)
class _Unsupported:
    """A scalar value that the spec has no use for, kept as written for messages."""

    text: str
    message: str

    def __repr__(self) -> str:
        return self.text


def _unsupported(text: str, kind: str) -> _Unsupported:
    return _Unsupported(text, f"unsupported YAML value of type {kind}; quote it if it is a string")


def _scalar_value(text: str, tag: str | None, plain: bool) -> Any:
    """The value of a scalar; `plain`: written without quotes. Raises ValueError for an
    impossible date."""
    if tag is None:
        return _plain_value(text) if plain else text
    if tag in ("!", _CORE_TAG + "str"):
        return text
    expected = _CORE_TYPES.get(tag)
    if expected is None:
        return _unsupported(text, _short_tag(tag))
    value = _core_value(text)
    if expected is float and type(value) is int and _INT.fullmatch(text):
        value = float(text)
    if type(value) is not expected:
        return _Unsupported(text, f"{text!r} is not a valid {_short_tag(tag)}")
    return value


def _plain_value(text: str) -> Any:
    value = _core_value(text)
    if type(value) is str and text[0] in _NUMBER_START:
        return _timestamp(text) or value
    return value


def _core_value(text: str) -> Any:
    """`text` resolved by the YAML 1.2 core schema: None, a bool, an int, a float or `text`."""
    if text in _WORDS:
        return _WORDS[text]
    if text[0] not in _NUMBER_START:  # most scalars are names: spare them the patterns
        return text
    if _INT.fullmatch(text) or _OCT_HEX_INT.fullmatch(text):
        return _int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INFINITY.fullmatch(text):
        return -math.inf if text[0] == "-" else math.inf
    if _NAN.fullmatch(text):
        return math.nan
    return text


def _int(text: str) -> int | _Unsupported:
    # No spec value needs more digits, and Python refuses to print an int of more than
    # 4300 digits (sys.get_int_max_str_digits), as messages and jsonschema would.
    if len(text) > _MAX_INT_LENGTH:
        message = f"integer of {len(text)} characters is too long; quote it if it is a string"
        return _Unsupported(text, message)
    if text.startswith(("0o", "0x")):
        return int(text[2:], 8 if text[1] == "o" else 16)
    return int(text)


def _timestamp(text: str) -> _Unsupported | None:
    """A date or date and time as YAML 1.1 has them, refused rather than read as a string
    because YAML 1.1 tools read it as a date. Raises ValueError for an impossible one."""
    if match := _DATE.fullmatch(text):
        date(*map(int, match.groups()))
        kind = "date"
    elif match := _DATETIME.fullmatch(text):
        datetime(*map(int, match.groups()))
        kind = "datetime"
    else:
        return None
    return _unsupported(text, kind)


def _collection_tag_issue(tag: str | None, kind: str) -> str | None:
    if tag is None or tag == "!" or tag == _CORE_TAG + kind:
        return None
    return f"unsupported YAML value of type {_short_tag(tag)}"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE_TAG) :] if tag.startswith(_CORE_TAG) else tag


# --- the document: plain data plus locations ----------------------------------------


@dataclass
class _Document:
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
        self.problems.append(Problem(where, _dotted(path), message))

    def reject(self, path: PathKey, message: str) -> None:
        """Report the value at `path` as invalid; later checks leave it alone."""
        self.problem(path, message)
        self.rejected.add(path)
        self._rejected_parents.update(path[:i] for i in range(len(path)))

    def is_rejected(self, path: PathKey) -> bool:
        """True if the value at `path`, a parent or anything inside it was reported invalid."""
        parents = (path[:i] for i in range(len(path) + 1))
        return path in self._rejected_parents or any(parent in self.rejected for parent in parents)


def _dotted(path: PathKey) -> str:
    return ".".join(str(part) for part in path)


def _show(value: Any, limit: int = 60) -> str:
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


# --- JSON Schema validation -----------------------------------------------------------


@functools.cache
def schema() -> dict[str, Any]:
    """The spec's JSON Schema, loaded from the package data file `SCHEMA_RESOURCE`."""
    from importlib.resources import files

    return json.loads(files(__package__).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8"))


@functools.cache
def _validator() -> Draft202012Validator:
    # imported here: jsonschema costs 60 ms of start-up, and a valid spec never needs it
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def _check_schema(doc: _Document) -> None:
    # jsonschema takes some 0.1 ms per container; _fits clears a valid spec in a tenth of that.
    if _fits(schema(), doc.data):
        return
    for error in _validator().iter_errors(doc.data):
        for leaf in _leaf_errors(error):
            _report_schema_error(doc, leaf)


def _fits(node: Any, instance: Any) -> bool:
    """True if `instance` is valid against the (sub)schema `node`. False if it is not, or if
    `node` has a keyword or a case that this quick check leaves to jsonschema."""
    if type(node) is bool:
        return node
    for keyword, value in node.items():
        if keyword not in _ANNOTATIONS:
            check = _KEYWORD_CHECKS.get(keyword)
            if check is None or not check(value, instance, node):
                return False
    return True


# Keywords that do not constrain instances: 'format' only annotates without a format checker.
_ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "default", "format"})

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),  # 1.0 is an integer too: left to jsonschema
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}

# The checks below run for every value of a spec: loops, not generator expressions, which
# would double the time.


def _fits_type(types: str | list[str], instance: Any, node: Any) -> bool:
    for name in [types] if type(types) is str else types:
        if type(instance) in _JSON_TYPES.get(name, ()):
            return True
    return False


def _fits_properties(properties: dict[str, Any], instance: Any, node: Any) -> bool:
    if type(instance) is dict:
        for key, value in instance.items():
            if key in properties and not _fits(properties[key], value):
                return False
    return True


def _fits_additional(additional: Any, instance: Any, node: Any) -> bool:
    if type(instance) is dict:
        known = node.get("properties", {})
        for key, value in instance.items():
            if key not in known and not _fits(additional, value):
                return False
    return True


def _fits_items(items: Any, instance: Any, node: Any) -> bool:
    if type(instance) is list:
        for value in instance:
            if not _fits(items, value):
                return False
    return True


def _fits_any_of(branches: list[Any], instance: Any, node: Any) -> bool:
    for branch in branches:
        if _fits(branch, instance):
            return True
    return False


def _fits_required(keys: list[str], instance: Any, node: Any) -> bool:
    return type(instance) is not dict or all(key in instance for key in keys)


def _fits_ref(ref: str, instance: Any, node: Any) -> bool:
    target = schema()["$defs"].get(ref.removeprefix("#/$defs/")) if ref.startswith("#/$defs/") else None
    return target is not None and _fits(target, instance)


def _same(expected: Any, value: Any) -> bool:
    """Equal scalars of the same type (jsonschema's equality has more cases)."""
    return type(expected) is type(value) and type(value) in (str, int, float, bool) and expected == value


_KEYWORD_CHECKS: dict[str, Callable[[Any, Any, Any], bool]] = {
    "type": _fits_type,
    "properties": _fits_properties,
    "additionalProperties": _fits_additional,
    "$ref": _fits_ref,
    "items": _fits_items,
    "anyOf": _fits_any_of,
    "required": _fits_required,
    "const": lambda expected, instance, node: _same(expected, instance),
    "enum": lambda values, instance, node: any(_same(value, instance) for value in values),
    "minimum": lambda low, instance, node: type(instance) not in (int, float) or instance >= low,
    "maximum": lambda high, instance, node: type(instance) not in (int, float) or instance <= high,
}


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """Replace an anyOf failure by the errors of the one branch whose type fits, if one does."""
    if error.validator != "anyOf" or not error.context:
        yield error
        return
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [subs for subs in branches.values() if not any(_is_own_type_error(sub) for sub in subs)]
    if len(fitting) == 1:
        for sub in fitting[0]:
            yield from _leaf_errors(sub)
    else:
        yield error


def _is_own_type_error(error: ValidationError) -> bool:
    return error.validator == "type" and not error.relative_path


def _report_schema_error(doc: _Document, error: ValidationError) -> None:
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                doc.problem((*path, key), _unknown_key_message(key, allowed), at_key=True)
    elif error.validator == "required":
        # jsonschema reports each missing key separately but names it only in prose.
        for key in error.validator_value:
            if key not in error.instance and f"{key!r}" in error.message:
                doc.problem(path, f"missing required key {key!r}", at_key=True)
    elif path not in doc.rejected:  # one problem per value: 'true' for version breaks type and const
        doc.reject(path, _schema_message(error))


def _unknown_key_message(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "expected one of: " + ", ".join(allowed)
    return f"unknown key {key!r}; {hint}"


def _schema_message(error: ValidationError) -> str:
    got = _show(error.instance)
    if error.validator == "type":
        return f"expected {_type_names([error.validator_value])}, got {got}"
    if error.validator == "anyOf":
        types = [sub.validator_value for sub in error.context if _is_own_type_error(sub)]
        return f"expected {_type_names(types)}, got {got}"
    if error.validator in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        return f"must be between {low} and {high}, got {got}"
    if error.validator == "const":
        return f"must be {_show(error.validator_value)}, got {got}"
    if error.validator == "enum":
        return f"must be one of {', '.join(_show(v) for v in error.validator_value)}, got {got}"
    return error.message


def _type_names(types: list[str | list[str]]) -> str:
    """'a list or a mapping' from JSON Schema type names, each a name or a list of names."""
    flat = [name for entry in types for name in ([entry] if isinstance(entry, str) else entry)]
    return " or ".join(_YAML_TYPE_NAMES.get(name, name) for name in dict.fromkeys(flat))


# --- names and addresses ---------------------------------------------------------------


def _name_issue(name: str) -> str | None:
    if len(name) > NAME_MAX or not NAME_RE.fullmatch(name):
        return f"use 1 to {NAME_MAX} letters, digits, '_', '.' or '-', starting with a letter or digit"
    return None


def _ifname_issue(name: str) -> str | None:
    """What makes `name` unusable as a Linux interface name, if anything."""
    if not NAME_RE.fullmatch(name):
        return "use letters, digits, '_', '.' or '-', starting with a letter or digit"
    if len(name) >= IFNAMSIZ:
        return f"at most {IFNAMSIZ - 1} characters"
    return None


def _interface_name_issue(name: str) -> str | None:
    """A host-side name (a bridge): also not one of netreconcile's veth names."""
    if name.startswith(VETH_PREFIX) and not _ifname_issue(name):
        return f"names starting with {VETH_PREFIX!r} are reserved for netreconcile's veth pairs"
    return _ifname_issue(name)


def _container_ifname_issue(name: str) -> str | None:
    """A name inside a container: also not its loopback."""
    if name == "lo":
        return "'lo' is the namespace's loopback interface"
    return _ifname_issue(name)


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


# A resolv.conf option token: printable ASCII without whitespace, and no '#': no
# option has one, and to people and some parsers reading the file it starts a comment.
_DNS_OPTION_RE = re.compile(r"[!-\"$-~]+")


def _dns_option_issue(option: str) -> str | None:
    if _DNS_OPTION_RE.fullmatch(option):
        return None
    return (f"{_show(option)} is not a resolver option: write one word of printable ASCII without whitespace "
            "or '#', such as 'ndots:2'")


def _nameserver_issue(text: str) -> str | None:
    """Docker's rule (an IP address, an IPv6 zone allowed), and a zone that is an
    interface name or index: Docker takes any text after '%' into resolv.conf."""
    issue = validate_nameserver(text)
    _, percent, zone = text.partition("%")
    if issue or not percent or NAME_RE.fullmatch(zone):
        return issue
    return f"{_show(text)}: the zone after '%' must be an interface name or index"


def _absolute_path_issue(text: str) -> str | None:
    if not text.startswith("/"):
        return f"{_show(text)} is not an absolute path"
    if "\0" in text:
        return f"{_show(text)} contains a NUL character"
    return None


def _parse_subnet(text: str) -> tuple[IPv4Network | None, str | None]:
    """The subnet, or None and why not."""
    try:
        subnet = IPv4Network(text, strict=True)
    except (AddressValueError, NetmaskValueError):
        return None, f"{text!r} is not an IPv4 network"
    except ValueError:
        # Valid apart from host bits: name the network the user probably meant.
        meant = IPv4Network(text, strict=False)
        return None, f"{text!r} is not an IPv4 network: host bits must be zero (did you mean '{meant}'?)"
    if subnet.prefixlen > 30:
        return None, f"{text!r} is too small: the prefix length must be at most 30"
    return subnet, None


def _parse_address(text: str) -> IPv4Address | None:
    try:
        return IPv4Address(text)
    except AddressValueError:
        return None


def _host_address_issue(address: IPv4Address, subnet: IPv4Network) -> str | None:
    """Why `address` cannot be a host address in `subnet`, or None."""
    if address not in subnet:
        return f"{address} is outside the subnet {subnet}"
    if address == subnet.network_address:
        return f"{address} is the network address of {subnet}"
    if address == subnet.broadcast_address:
        return f"{address} is the broadcast address of {subnet}"
    return None


def _reserved_issue(address: IPv4Address, network: NetworkSpec) -> str | None:
    if address == network.gateway:
        return f"{address} is the gateway of network {network.name!r}"
    if address in network.aux_addresses:
        return f"{address} is reserved in aux_addresses of network {network.name!r}"
    return None


def _mac_issue(mac: str) -> str | None:
    if not MAC_RE.fullmatch(mac):
        return f"{mac!r} is not a MAC address (expected xx:xx:xx:xx:xx:xx)"
    if int(mac[:2], 16) & 1:
        return f"{mac} is a multicast MAC address; use a unicast one"
    if mac == "00:00:00:00:00:00":
        return f"{mac} is not a usable MAC address"
    return None


def _free_addresses(network: NetworkSpec) -> int:
    """Addresses the dynamic pool can hand out (static ones included)."""
    subnet = network.subnet
    outside_pool = {subnet.network_address, subnet.broadcast_address}
    reserved = {network.gateway, *network.aux_addresses} - outside_pool
    return subnet.num_addresses - 2 - len(reserved)


# ports published through ranges moved to other container ports, in one spec (see
# _check_moved_range_budget): each is one firewall map element, so this bounds what a
# spec can make the firewall hold
MAX_MOVED_RANGE_PORTS = 4096


def _port_clashes(
    published: list[tuple[PathKey, PortMapping]],
) -> Iterator[tuple[PathKey, PortMapping, PathKey]]:
    """(path, mapping, path of an earlier mapping it clashes with) for each mapping, in
    spec order, that overlaps one accepted before it (a clashing one is not accepted).
    Each check costs O(log 65536), however many ports the spec publishes."""
    indexes: dict[tuple[str, IPv4Address | None | str], _PortIndex] = {}
    for path, mapping in published:
        key = mapping.host_ip
        # a wildcard mapping clashes with any address; a specific one with itself and wildcards
        others = [(mapping.protocol, None), (mapping.protocol, "any address" if key is None else key)]
        earlier = None
        for other in others:
            index = indexes.get(other)
            earlier = index.overlapping(mapping.host_first, mapping.host_last) if index else None
            if earlier is not None:
                break
        if earlier is not None:
            yield path, mapping, earlier
            continue
        for own in {(mapping.protocol, key), (mapping.protocol, "any address")}:
            indexes.setdefault(own, _PortIndex()).add(mapping.host_first, mapping.host_last, path)


class _PortIndex:
    """Port ranges, asked whether any overlaps a given range: a Fenwick tree over the
    first port keeping the largest last port (and its owner) of the ranges starting
    at or below each point. Sparse: only the nodes a range touches exist."""

    SIZE = 65536

    def __init__(self) -> None:
        self.tree: dict[int, tuple[int, PathKey]] = {}

    def add(self, first: int, last: int, owner: PathKey) -> None:
        node = first
        while node <= self.SIZE:
            if self.tree.get(node, (0, ()))[0] < last:
                self.tree[node] = (last, owner)
            node += node & -node

    def overlapping(self, first: int, last: int) -> PathKey | None:
        """The owner of a range starting at or below `last` that ends at or after `first`."""
        best: tuple[int, PathKey] = (0, ())
        node = last
        while node > 0:
            candidate = self.tree.get(node)
            if candidate is not None and candidate[0] > best[0]:
                best = candidate
            node -= node & -node
        return best[1] if best[0] >= first else None


def _port_claim(mapping: PortMapping) -> str:
    address = mapping.host_ip if mapping.host_ip is not None else "0.0.0.0"
    return f"{address}:{mapping.host_ports}/{mapping.protocol}"


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


# --- semantic checks and building the Spec -----------------------------------------------


class _EarlierNetworks:
    """Networks seen so far, indexed so that checking a new one costs O(log n), not
    O(n): a spec with thousands of networks must not take minutes to validate.

    CIDR blocks are either disjoint or nested, so the earlier blocks overlapping a new
    one are the (at most 33) blocks that contain it, found by their exact key, plus
    the blocks that start inside it, found by bisection."""

    def __init__(self) -> None:
        self.by_bridge: dict[str, NetworkSpec] = {}
        self._by_block: dict[tuple[int, int], list[tuple[int, NetworkSpec]]] = {}
        self._starts: list[int] = []  # sorted first addresses of the subnets
        self._inside: list[tuple[int, NetworkSpec]] = []  # (prefix length, network) by start
        self._count = 0

    def add(self, network: NetworkSpec) -> None:
        self.by_bridge.setdefault(network.bridge, network)
        start, prefix = int(network.subnet.network_address), network.subnet.prefixlen
        self._by_block.setdefault((start, prefix), []).append((self._count, network))
        index = bisect.bisect_right(self._starts, start)
        self._starts.insert(index, start)
        self._inside.insert(index, (prefix, network))
        self._count += 1

    def overlapping(self, subnet: IPv4Network) -> list[NetworkSpec]:
        """Earlier networks whose subnet overlaps `subnet`, in spec order."""
        start, prefix = int(subnet.network_address), subnet.prefixlen
        found: dict[int, NetworkSpec] = {}
        for length in range(prefix + 1):  # blocks containing (or equal to) this one
            mask = (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF
            for _, network in self._by_block.get((start & mask, length), ()):
                found[id(network)] = network
        low = bisect.bisect_left(self._starts, start)
        high = bisect.bisect_right(self._starts, int(subnet.broadcast_address))
        for other_prefix, network in self._inside[low:high]:  # blocks strictly inside it
            if other_prefix > prefix:
                found[id(network)] = network
        return sorted(found.values(), key=self._order)

    def _order(self, network: NetworkSpec) -> int:
        key = (int(network.subnet.network_address), network.subnet.prefixlen)
        return next(order for order, other in self._by_block[key] if other is network)


class _Builder:
    """Runs the semantic checks over the document and builds the Spec.

    The typed getters return None (or the default) for values of the wrong type: the
    schema has reported those already.
    """

    def __init__(self, doc: _Document):
        self.doc = doc
        self.address_owners: dict[IPv4Address, str] = {}
        self.mac_owners: dict[str, str] = {}
        self.links: list[tuple[PathKey, str]] = []  # each link item's path and target name
        self.published: list[tuple[PathKey, PortMapping]] = []  # each ports item's path and mapping

    def build(self) -> Spec:
        networks = self._networks()
        containers = self._containers({network.name: network for network in networks})
        self._check_capacity(networks, containers)
        self._check_links(containers)
        self._check_network_modes(containers)
        self._check_published_ports(networks, containers)
        self._check_not_supported_yet()
        return Spec(
            path=self.doc.filename,
            version=self._int(("version",), 1),
            host=self._host(),
            networks=tuple(networks),
            containers=tuple(containers),
        )

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

    def _host(self) -> HostSpec:
        path = ("host",)
        return HostSpec(
            ip_forward=self._bool((*path, "ip_forward"), HostSpec.ip_forward),
            resolv_conf=self._resolv_conf((*path, "resolv_conf")),
            location=self.doc.key_location(path),
            resolv_conf_location=self._location_if_set((*path, "resolv_conf")),
        )

    def _location_if_set(self, path: PathKey) -> Location | None:
        return self.doc.location(path) if self.doc.get(path) is not None else None

    def _resolv_conf(self, path: PathKey) -> str:
        text = self._string(path)
        if text is None:
            return HostSpec.resolv_conf
        issue = _absolute_path_issue(text)
        if issue:
            self.doc.problem(path, issue)
        return text

    # networks

    def _networks(self) -> list[NetworkSpec]:
        networks: list[NetworkSpec] = []
        earlier = _EarlierNetworks()
        for name in self._mapping(("networks",)):
            path = ("networks", name)
            self._check_name(path, "network")
            network = self._network(path) if isinstance(self.doc.get(path), dict) else None
            if network is not None:
                self._check_against_earlier(path, network, earlier)
                earlier.add(network)
                networks.append(network)
        return networks

    def _network(self, path: PathKey) -> NetworkSpec | None:
        bridge = self._bridge_name(path)
        subnet = self._subnet((*path, "subnet"))
        if subnet is None:
            return None
        return NetworkSpec(
            name=str(path[-1]),
            bridge=bridge,
            subnet=subnet,
            gateway=self._gateway((*path, "gateway"), subnet),
            mtu=self._int((*path, "mtu"), NetworkSpec.mtu),
            icc=self._bool((*path, "icc"), NetworkSpec.icc),
            masquerade=self._bool((*path, "masquerade"), NetworkSpec.masquerade),
            internal=self._bool((*path, "internal"), NetworkSpec.internal),
            aux_addresses=self._aux_addresses((*path, "aux_addresses"), subnet),
            driver=self._string((*path, "driver")) or NetworkSpec.driver,
            location=self.doc.key_location(path),
        )

    def _bridge_name(self, path: PathKey) -> str:
        explicit = self._string((*path, "bridge"))
        name = str(path[-1]) if explicit is None else explicit
        issue = _interface_name_issue(name)
        if issue and explicit is not None:
            self.doc.problem((*path, "bridge"), f"{name!r} is not a valid bridge name: {issue}")
        elif issue and _name_issue(name) is None:  # an invalid network name is reported as such
            message = (
                f"the network name {name!r} cannot be the bridge name ({issue}); "
                "set 'bridge:' to a valid interface name"
            )
            self.doc.problem(path, message, at_key=True)
        return name

    def _subnet(self, path: PathKey) -> IPv4Network | None:
        text = self._string(path)
        if text is None:
            return None
        subnet, issue = _parse_subnet(text)
        if issue:
            self.doc.problem(path, issue)
        return subnet

    def _gateway(self, path: PathKey, subnet: IPv4Network) -> IPv4Address:
        default = subnet.network_address + 1
        gateway = self._address(path, subnet)
        return default if gateway is None else gateway

    def _address(self, path: PathKey, subnet: IPv4Network | None) -> IPv4Address | None:
        """The IPv4 address at `path`, if valid and (given a subnet) a host address in it."""
        text = self._string(path)
        if text is None:
            return None
        address = _parse_address(text)
        issue = f"{text!r} is not an IPv4 address" if address is None else None
        if address is not None and subnet is not None:
            issue = _host_address_issue(address, subnet)
        if issue:
            self.doc.problem(path, issue)
            return None
        return address

    def _aux_addresses(self, path: PathKey, subnet: IPv4Network) -> tuple[IPv4Address, ...]:
        raw = self.doc.get(path)
        keys = list(raw) if isinstance(raw, dict) else range(len(raw)) if isinstance(raw, list) else []
        addresses = (self._address((*path, key), subnet) for key in keys)
        return tuple(dict.fromkeys(address for address in addresses if address is not None))

    def _check_against_earlier(self, path: PathKey, network: NetworkSpec, earlier: _EarlierNetworks) -> None:
        defaulted_bridge = self._string((*path, "bridge")) is None
        bridge_path = path if defaulted_bridge else (*path, "bridge")
        for other in earlier.overlapping(network.subnet):
            message = f"{network.subnet} overlaps {other.subnet} of network {other.name!r}"
            self.doc.problem((*path, "subnet"), message)
        other = earlier.by_bridge.get(network.bridge)
        if other is not None:
            message = f"bridge name {network.bridge!r} is already used by network {other.name!r}"
            self.doc.problem(bridge_path, message, at_key=defaulted_bridge)

    # containers

    def _containers(self, networks: dict[str, NetworkSpec]) -> list[ContainerSpec]:
        containers = []
        for name in self._mapping(("containers",)):
            path = ("containers", name)
            self._check_name(path, "container")
            if isinstance(self.doc.get(path), dict):
                containers.append(self._container(path, networks))
        return containers

    def _container(self, path: PathKey, networks: dict[str, NetworkSpec]) -> ContainerSpec:
        mode = self._network_mode((*path, "network_mode"))
        attachments = self._attachments(path, networks)
        networks_path = (*path, "networks")
        unattached = not self.doc.get(networks_path) and not self.doc.is_rejected(networks_path)
        if mode == "bridge" and unattached:
            self.doc.problem(path, "container has no networks", at_key=True)
        name = str(path[-1])
        settings = self._mapping(path)  # looked up once: most containers set few of these
        return ContainerSpec(
            name=name,
            networks=tuple(attachments),
            network_mode=mode,
            hostname=self._hostname((*path, "hostname"), settings.get("hostname")),
            domainname=self._domainname((*path, "domainname"), settings.get("domainname")),
            links=self._links((*path, "links"), settings.get("links")),
            dns=self._checked_strings((*path, "dns"), settings.get("dns"), _nameserver_issue),
            dns_search=self._checked_strings((*path, "dns_search"), settings.get("dns_search"), validate_dns_search),
            dns_opt=self._checked_strings((*path, "dns_opt"), settings.get("dns_opt"), _dns_option_issue),
            extra_hosts=self._extra_hosts((*path, "extra_hosts"), settings.get("extra_hosts")),
            ports=self._ports((*path, "ports"), settings.get("ports")),
            location=self.doc.key_location(path),
        )

    def _network_mode(self, path: PathKey) -> str:
        mode = self._string(path)
        if mode is None:
            return ContainerSpec.network_mode
        kind, colon, target = mode.partition(":")
        if (kind in ("bridge", "none", "host") and not colon) or (kind == "container" and target):
            return mode
        self.doc.problem(path, f"{_show(mode)} is not a network mode: use {', '.join(NETWORK_MODES)}")
        return ContainerSpec.network_mode

    def _hostname(self, path: PathKey, value: Any) -> str:
        """The hostname set, else the container name (not checked as a hostname: Docker
        resolves names such as 'my_db' too, and the name is checked as a container name)."""
        if type(value) is not str:
            return str(path[-2])
        issue = validate_hostname(value)
        if issue:
            self.doc.problem(path, issue)
        return value

    def _domainname(self, path: PathKey, value: Any) -> str | None:
        if type(value) is not str:
            return None
        issue = validate_hostname(value)
        if issue:
            self.doc.problem(path, issue)
        return value

    def _checked_strings(
        self, path: PathKey, value: Any, issue_of: Callable[[str], str | None]
    ) -> tuple[str, ...]:
        """The strings of the list `value` at `path`, each checked by `issue_of`."""
        if type(value) is not list:
            return ()
        for index, item in enumerate(value):
            if type(item) is str:
                issue = issue_of(item)
                if issue:
                    self.doc.problem((*path, index), issue)
        return tuple(item for item in value if type(item) is str)

    def _links(self, path: PathKey, value: Any) -> tuple[str, ...]:
        """Links as 'target:alias'; their targets are checked once all containers are read."""
        if type(value) is not list:
            return ()
        links: dict[str, str] = {}  # alias -> target
        for index, item in enumerate(value):
            if type(item) is not str:
                continue
            item_path = (*path, index)
            target, colon, alias = item.partition(":")
            alias = alias if colon else target
            if not target or not alias:
                self.doc.problem(item_path, f"{_show(item)} is not a link: write 'name' or 'name:alias'")
                continue
            issue = validate_hostname(alias) if colon else None
            if issue:
                self.doc.problem(item_path, issue)
            elif alias in links:
                self.doc.problem(item_path, f"link alias {alias!r} is listed twice")
                continue
            links[alias] = target
            self.links.append((item_path, target))
        return tuple(f"{target}:{alias}" for alias, target in links.items())

    def _extra_hosts(self, path: PathKey, value: Any) -> tuple[str, ...]:
        """Extra /etc/hosts entries as 'name:address', the address canonical ('host-gateway' kept)."""
        if type(value) is list:
            items = [((*path, i), parse_extra_host, (item,)) for i, item in enumerate(value) if type(item) is str]
        elif type(value) is dict:
            items = [((*path, k), extra_host_from_mapping, (k, v)) for k, v in value.items() if type(v) is str]
        else:
            return ()
        entries: list[str] = []
        for item_path, parse, args in items:
            try:
                entry = parse(*args)
            except ExtraHostError as e:
                self.doc.problem(item_path, str(e))
                continue
            for name in entry.names:
                # Docker writes any name without whitespace into /etc/hosts, where '#' starts a comment
                issue = validate_hostname(name)
                if issue:
                    self.doc.problem(item_path, issue)
                else:
                    entries.append(f"{name}:{entry.address}")
        return tuple(entries)

    def _ports(self, path: PathKey, value: Any) -> tuple[PortMapping, ...]:
        if type(value) is not list:
            return ()
        mappings = []
        for index, item in enumerate(value):
            if type(item) not in (str, int):
                continue
            try:
                mapping = parse_port(item)
            except PortError as error:
                self.doc.problem((*path, index), str(error))
                continue
            mappings.append(mapping)
            self.published.append(((*path, index), mapping))
        return tuple(mappings)

    def _attachment_entries(self, path: PathKey) -> list[tuple[PathKey, str]]:
        """Each entry naming a network (list item or mapping key), with the network name."""
        networks_path = (*path, "networks")
        raw = self.doc.get(networks_path)
        if isinstance(raw, list):
            return [((*networks_path, i), item) for i, item in enumerate(raw) if isinstance(item, str)]
        if isinstance(raw, dict):
            return [((*networks_path, name), name) for name in raw]
        return []

    def _attachments(self, path: PathKey, networks: dict[str, NetworkSpec]) -> list[Attachment]:
        attachments: list[Attachment] = []
        for entry, name in self._attachment_entries(path):
            if any(attachment.network == name for attachment in attachments):
                self.doc.problem(entry, f"network {name!r} is listed twice", at_key=True)
                continue
            self._check_network_known(entry, name)
            # The container-level mac_address belongs to the first network (Compose).
            fallback_mac = None if attachments else (*path, "mac_address")
            attachment = self._attachment(entry, name, networks.get(name), fallback_mac)
            earlier = next((a for a in attachments if attachment.interface_name and
                            a.interface_name == attachment.interface_name), None)
            if earlier is not None:
                self.doc.problem((*entry, "interface_name"),
                                 f"interface {attachment.interface_name!r} is already the one on network "
                                 f"{earlier.network!r}")
            attachments.append(attachment)
        return attachments

    def _check_network_known(self, entry: PathKey, name: str) -> None:
        known = self._mapping(("networks",))
        if name not in known:
            self.doc.problem(entry, f"unknown network {name!r}{_did_you_mean(name, known)}", at_key=True)

    def _attachment(
        self, entry: PathKey, name: str, network: NetworkSpec | None, fallback_mac: PathKey | None
    ) -> Attachment:
        container = f"container {entry[1]!r}"
        mac_path = (*entry, "mac_address")
        if self._string(mac_path) is None and fallback_mac is not None:
            mac_path = fallback_mac
        aliases_path = (*entry, "aliases")
        return Attachment(
            network=name,
            ipv4_address=self._static_address((*entry, "ipv4_address"), network, container),
            mac_address=self._mac(mac_path, container),
            aliases=self._checked_strings(aliases_path, self.doc.get(aliases_path), validate_hostname),
            interface_name=self._container_ifname((*entry, "interface_name")),
            gw_priority=self._int((*entry, "gw_priority"), Attachment.gw_priority),
            location=self.doc.key_location(entry),
        )

    def _container_ifname(self, path: PathKey) -> str | None:
        name = self._string(path)
        if name is None:
            return None
        issue = _container_ifname_issue(name)
        if issue:
            self.doc.problem(path, f"{name!r} is not a valid interface name: {issue}")
        return name

    def _static_address(
        self, path: PathKey, network: NetworkSpec | None, owner: str
    ) -> IPv4Address | None:
        address = self._address(path, network.subnet if network else None)
        if address is None or network is None:
            return address
        issue = _reserved_issue(address, network) or self._claim(self.address_owners, address, owner)
        if issue:
            self.doc.problem(path, issue)
        return address

    def _mac(self, path: PathKey, owner: str) -> str | None:
        text = self._string(path)
        if text is None:
            return None
        mac = text.lower()
        issue = _mac_issue(mac) or self._claim(self.mac_owners, mac, owner)
        if issue:
            self.doc.problem(path, issue)
        return mac

    @staticmethod
    def _claim(owners: dict[Any, str], value: Any, owner: str) -> str | None:
        """Record `owner` as the user of `value`; if it was taken before, say by whom."""
        first = owners.setdefault(value, owner)
        return None if first is owner else f"{value} is already used by {first}"

    # whole-spec checks

    def _check_name(self, path: PathKey, kind: str) -> None:
        issue = _name_issue(str(path[-1]))
        if issue:
            self.doc.problem(path, f"{path[-1]!r} is not a valid {kind} name: {issue}", at_key=True)

    def _check_capacity(self, networks: list[NetworkSpec], containers: list[ContainerSpec]) -> None:
        attached = Counter(a.network for container in containers for a in container.networks)
        for network in networks:
            count, free = attached[network.name], _free_addresses(network)
            if count > free:
                message = (
                    f"{count} containers are attached but the subnet {network.subnet} "
                    f"has only {free} free addresses"
                )
                self.doc.problem(("networks", network.name), message, at_key=True)

    def _check_links(self, containers: list[ContainerSpec]) -> None:
        if not self.links:
            return
        known = self._mapping(("containers",))  # invalid containers too: reported as such
        networks_of = {c.name: {a.network for a in c.networks} for c in containers}
        modes = {c.name: c.network_mode for c in containers}
        for path, target in self.links:
            owner = str(path[1])
            if target == owner:
                self.doc.problem(path, "a container cannot link to itself")
            elif target not in known:
                message = f"link target {target!r} is not a container of this spec{_did_you_mean(target, known)}"
                self.doc.problem(path, message)
            elif modes.get(target, "bridge") != "bridge":
                self.doc.problem(path, f"link target {target!r} has network_mode {modes[target]}: "
                                 "links need a network both containers are on")
            else:
                mine, theirs = networks_of.get(owner), networks_of.get(target)
                if mine and theirs and mine.isdisjoint(theirs):  # no networks: reported already
                    self.doc.problem(path, f"link target {target!r} does not share a network with {owner!r}")

    def _check_network_modes(self, containers: list[ContainerSpec]) -> None:
        """Settings a mode cannot have; container:<name> targets that exist and do not
        lead back to themselves."""
        by_name = {container.name: container for container in containers}
        known = self._mapping(("containers",))
        for container in containers:
            path = ("containers", container.name)
            conflicts = _MODE_CONFLICTS.get(container.mode)
            if conflicts is not None:
                fields, why = conflicts
                for key in self._mapping(path):
                    if key in fields:
                        self.doc.problem((*path, key), f"'{key}' cannot be used with network_mode "
                                         f"{container.network_mode}: {why}", at_key=True)
            if container.mode in ("none", "host") and any(e.endswith(":host-gateway") for e in container.extra_hosts):
                self.doc.problem((*path, "extra_hosts"), f"host-gateway needs a network; network_mode "
                                 f"{container.mode} has none", at_key=True)
            target = container.shares
            if target is None:
                continue
            mode_path = (*path, "network_mode")
            if target == container.name:
                self.doc.problem(mode_path, "a container cannot join its own network namespace")
            elif target not in known:
                self.doc.problem(mode_path, f"{target!r} is not a container of this spec"
                                 f"{_did_you_mean(target, known)}")
            elif self._leads_back(container, by_name):
                self.doc.problem(mode_path, f"network_mode container:{target} leads back to {container.name!r} "
                                 "(a cycle): one of them needs a network namespace of its own")

    @staticmethod
    def _leads_back(container: ContainerSpec, by_name: dict[str, ContainerSpec]) -> bool:
        seen, current = {container.name}, container
        while current.shares is not None:
            current = by_name.get(current.shares)
            if current is None:
                return False
            if current.name in seen:
                return current.name == container.name
            seen.add(current.name)
        return False

    def _check_published_ports(self, networks: list[NetworkSpec], containers: list[ContainerSpec]) -> None:
        """No host port, protocol and address published twice (a wildcard address takes
        the port on every address), and every publisher has a network with a way out."""
        internal = {network.name for network in networks if network.internal}
        for container in containers:
            if container.ports and container.networks and all(a.network in internal for a in container.networks):
                message = f"container {container.name!r} is only on internal networks: its ports cannot be published"
                self.doc.problem(("containers", container.name, "ports"), message, at_key=True)
        for path, mapping, earlier_path in _port_clashes(self.published):
            earlier = f"{_dotted(earlier_path)} ({self.doc.location(earlier_path)})"
            self.doc.problem(path, f"host port {_port_claim(mapping)} is already published by {earlier}")
        self._check_moved_range_budget()

    def _check_moved_range_budget(self) -> None:
        """A range moved to other container ports costs the firewall one map element per
        port (nft cannot express the kernel's port offset), so the spec gets a budget of
        such ports; a range on the same ports costs one rule whatever its size."""
        spent = 0
        for path, mapping in self.published:
            if mapping.offset == 0 or mapping.host_first == mapping.host_last:
                continue
            spent += mapping.host_last - mapping.host_first + 1
            if spent > MAX_MOVED_RANGE_PORTS:
                self.doc.problem(path, f"ranges moved to other container ports may publish at most "
                                       f"{MAX_MOVED_RANGE_PORTS} ports in one spec (each is one firewall map "
                                       f"element), and this entry brings them to {spent}; publish the range on "
                                       f"the same ports ('{mapping.host_ports}:{mapping.host_ports}'), which "
                                       "costs one rule whatever its size")
                return

    def _check_not_supported_yet(self) -> None:
        for path in list(self.doc.value_locations):
            pattern = _not_supported_rule(path)
            if pattern is None or self.doc.is_rejected(path):
                continue
            message = _not_supported_message(path, self.doc.get(path), NOT_SUPPORTED_YET[pattern])
            if message:
                self.doc.problem(path, message, at_key=True)
