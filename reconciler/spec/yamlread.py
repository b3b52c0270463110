"""YAML text to a `Document`: reading the file within the size limit, and parsing.

Parsing reads the event stream of ruamel.yaml's parser (libyaml, from ruamel.yaml.clib,
where installed) and builds plain data from it without recursion: scalars are resolved
with the YAML 1.2 core schema, and aliases, deep nesting and duplicate keys are refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NoReturn

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
from reconciler.spec.document import Document, PathKey, dotted, fail, show
from reconciler.spec.types import Location

try:  # libyaml, some 20 times faster than ruamel.yaml's pure-Python parser
    from _ruamel_yaml import CParser
except ImportError:
    CParser = None

# Bytes in a file, characters in a text. A spec made of the smallest values possible takes
# some 4 s per MiB to load with libyaml (the pure-Python parser takes 10 times longer).
MAX_SPEC_SIZE = 2 * 1024 * 1024
TOO_LARGE = f"the spec is larger than {MAX_SPEC_SIZE // (1024 * 1024)} MiB"
MAX_NESTING = 32  # the spec needs 6 levels of nodes; the schema checks recurse per level


def read_bytes(filename: str) -> bytes:
    """The file's bytes, one more than MAX_SPEC_SIZE at most (so that a larger file shows)."""
    try:
        with open(filename, "rb") as f:
            return f.read(MAX_SPEC_SIZE + 1)
    except OSError as e:
        raise SourceError(f"cannot read {filename}: {e.strerror or e}") from None


def read_text(filename: str) -> str:
    data = read_bytes(filename)
    if len(data) > MAX_SPEC_SIZE:
        fail(Location(filename, 0, 0), TOO_LARGE)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        valid = data[: e.start].decode("utf-8")
        where = Location(filename, *_line_col(valid, len(valid)))
        fail(where, f"the spec is not valid UTF-8 (byte offset {e.start})")


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of character `index` in `text`."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def parse_yaml(text: str, filename: str) -> Document:
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
    """Builds a `Document` from the parser's events.

    Iterative (the open collections are on `stack`), so that no nesting can overflow a
    stack; aliases (a few lines of them expand to gigabytes), deep nesting, duplicate
    keys and further documents are refused as soon as their event arrives.
    """

    def __init__(self, filename: str, stand_in: str | None):
        self.doc = Document(filename)
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

    def build(self, events: Iterator[Any]) -> Document:
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
            fail(Location(self.doc.filename, 1, 1), f"invalid YAML: {e} ({where})")

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
        fail(self._at(event.start_mark), message)

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
            fail(self._at(event.start_mark), f"the spec nests deeper than {MAX_NESTING} levels")
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
            message = f"key {show(key)} is not a string; quote it"
            self.doc.problems.append(Problem(self._at(mark), dotted(mapping.path), message))

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
