"""Compose's variable interpolation and `.env` files (pure).

The forms are Compose's (compose-go's `template` package): `$VAR` and `${VAR}`,
`${VAR:-default}` (unset or empty: default), `${VAR-default}` (unset: default),
`${VAR:?message}` and `${VAR?message}` (an error when unset or empty, or unset),
`${VAR:+replacement}` and `${VAR+replacement}`, and `$$` for a literal `$`. Defaults and
messages may hold interpolations themselves. Only values are interpolated, never keys.
An unset variable without a default is an empty string, with Compose's warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from reconciler.spec.document import Document, PathKey
from reconciler.spec.types import Location

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
ESCAPE_ADVICE = "You may need to escape any $ with another $"


class InterpolationError(ValueError):
    """A template that cannot be interpolated; the message says why (without location)."""


@dataclass
class Substitution:
    """The text after interpolation, and the variables it used that were not set."""

    text: str
    unset: list[str] = field(default_factory=list)


Lookup = Callable[[str], "str | None"]


def substitute(template: str, lookup: Lookup) -> Substitution:
    """`template` with every variable replaced; InterpolationError for a malformed
    template or a required variable that is missing."""
    result = Substitution("")
    result.text = _substitute(template, lookup, result.unset)
    return result


def _substitute(template: str, lookup: Lookup, unset: list[str]) -> str:
    out: list[str] = []
    i = 0
    while True:
        dollar = template.find("$", i)
        if dollar < 0:
            out.append(template[i:])
            return "".join(out)
        out.append(template[i:dollar])
        rest = template[dollar + 1:]
        if rest.startswith("$"):
            out.append("$")
            i = dollar + 2
        elif rest.startswith("{"):
            end = _closing_brace(template, dollar + 2)
            out.append(_braced(template[dollar + 2:end], template, lookup, unset))
            i = end + 1
        elif name := _NAME.match(rest):
            out.append(_value(name.group(), lookup, unset))
            i = dollar + 1 + name.end()
        else:
            raise InterpolationError(f"invalid interpolation format {template!r}: {ESCAPE_ADVICE}")


def _closing_brace(template: str, start: int) -> int:
    """The index of the '}' closing the '${' before `start`, nested ones skipped."""
    depth, i = 1, start
    while i < len(template):
        if template.startswith("$$", i):
            i += 2
            continue
        if template.startswith("${", i):
            depth += 1
            i += 2
            continue
        if template[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"invalid interpolation format {template!r}: a '${{' is not closed")


def _braced(body: str, template: str, lookup: Lookup, unset: list[str]) -> str:
    name = _NAME.match(body)
    if name is None:
        raise InterpolationError(f"invalid interpolation format {template!r}: {ESCAPE_ADVICE}")
    variable, rest = name.group(), body[name.end():]
    if not rest:
        return _value(variable, lookup, unset)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"invalid interpolation format {template!r}: {ESCAPE_ADVICE}")
    argument = rest[len(operator):]
    value = lookup(variable)
    missing = value is None or (operator.startswith(":") and value == "")
    if operator.endswith("-"):
        return _substitute(argument, lookup, unset) if missing else value
    if operator.endswith("+"):
        return "" if missing else _substitute(argument, lookup, unset)
    if missing:  # ? and :?
        message = _substitute(argument, lookup, unset)
        raise InterpolationError(f"required variable {variable} is missing a value" + (f": {message}" if message
                                                                                       else ""))
    return value


def _value(variable: str, lookup: Lookup, unset: list[str]) -> str:
    value = lookup(variable)
    if value is None:
        unset.append(variable)
        return ""
    return value


def unset_warning(variable: str) -> str:
    return f'the "{variable}" variable is not set. Defaulting to a blank string.'


def compose_path(path: PathKey) -> str:
    """'services.web.ports[0]': Compose's way of naming a place in the file."""
    text = ""
    for part in path:
        text += f"[{part}]" if type(part) is int else (f".{part}" if text else str(part))
    return text


@dataclass(frozen=True)
class Note:
    """Something said about a place in the Compose file: ignored, dropped or defaulted."""

    location: Location
    path: str  # compose_path of the key
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.path}: {self.message}" if self.path else f"{self.location}: {self.message}"


def interpolate_document(doc: Document, variables: Mapping[str, str]) -> list[Note]:
    """Interpolate every string value of `doc` in place; the notes are the unset variables.
    InterpolationError names the value's location and path."""
    notes: list[Note] = []
    stack: list[PathKey] = [()]
    while stack:
        path = stack.pop()
        value = doc.get(path)
        if isinstance(value, dict):
            stack.extend((*path, key) for key in reversed(list(value)))
        elif isinstance(value, list):
            stack.extend((*path, index) for index in reversed(range(len(value))))
        elif isinstance(value, str) and "$" in value:
            try:
                done = substitute(value, variables.get)
            except InterpolationError as error:
                raise InterpolationError(f"{doc.location(path)}: {compose_path(path)}: {error}") from None
            _replace(doc, path, done.text)
            notes.extend(Note(doc.location(path), compose_path(path), unset_warning(name)) for name in done.unset)
    return notes


def _replace(doc: Document, path: PathKey, text: str) -> None:
    parent = doc.get(path[:-1])
    parent[path[-1]] = text


# --- .env files -----------------------------------------------------------------------------

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "$": "$$"}


def parse_env_file(text: str, filename: str, environment: Mapping[str, str]) -> dict[str, str]:
    """The variables of a `.env` file: `KEY=VALUE` lines (`export ` allowed), `#` comments;
    a value in single quotes is literal, in double quotes it takes \\n-style escapes; unquoted
    and double-quoted values are interpolated (the environment first, then earlier lines).
    InterpolationError names FILE:LINE."""
    found: dict[str, str] = {}

    def lookup(name: str) -> str | None:
        return environment[name] if name in environment else found.get(name)

    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, equals, value = line.partition("=")
        key = key.strip()
        if not equals or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", key):
            raise InterpolationError(f"{filename}:{number}: {raw.strip()!r} is not a KEY=VALUE line")
        try:
            found[key] = _env_value(value.strip(), lookup)
        except InterpolationError as error:
            raise InterpolationError(f"{filename}:{number}: {key}: {error}") from None
    return found


def _env_value(value: str, lookup: Lookup) -> str:
    if value.startswith("'"):
        end = value.find("'", 1)
        if end < 0:
            raise InterpolationError("a single quote is not closed")
        return value[1:end]
    if value.startswith('"'):
        out, i = [], 1
        while i < len(value) and value[i] != '"':
            if value[i] == "\\" and i + 1 < len(value):
                out.append(_ESCAPES.get(value[i + 1], "\\" + value[i + 1]))
                i += 2
            else:
                out.append(value[i])
                i += 1
        if i >= len(value):
            raise InterpolationError("a double quote is not closed")
        return _substitute("".join(out), lookup, [])
    comment = re.search(r"\s#", value)
    if comment:
        value = value[:comment.start()].rstrip()
    return _substitute(value, lookup, [])
