"""The spec checked against its JSON Schema (`schema.json`, shipped in this package: the
one source of truth for field names), with messages that name the YAML location. The
`driver:` values it accepts are the registered drivers' (reconciler.drivers).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from reconciler import drivers
from reconciler.spec.document import Document, show

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

SCHEMA_RESOURCE = "schema.json"  # shipped inside this package, read through importlib.resources

_YAML_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "null": "null",
}


@functools.cache
def schema() -> dict[str, Any]:
    """The spec's JSON Schema, loaded from the package data file `SCHEMA_RESOURCE`, with
    the registered drivers as the accepted `driver:` values."""
    from importlib.resources import files

    loaded = json.loads(files(__package__).joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8"))
    loaded["$defs"]["network"]["properties"]["driver"]["enum"] = list(drivers.names())
    return loaded


@functools.cache
def _validator() -> Draft202012Validator:
    # imported here: jsonschema costs 60 ms of start-up, and a valid spec never needs it
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def check_schema(doc: Document) -> None:
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


def _report_schema_error(doc: Document, error: ValidationError) -> None:
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
    import difflib  # only a spec with a mistake needs it: no import on the way of every run

    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "expected one of: " + ", ".join(allowed)
    return f"unknown key {key!r}; {hint}"


def _schema_message(error: ValidationError) -> str:
    got = show(error.instance)
    if error.validator == "type":
        return f"expected {_type_names([error.validator_value])}, got {got}"
    if error.validator == "anyOf":
        types = [sub.validator_value for sub in error.context if _is_own_type_error(sub)]
        return f"expected {_type_names(types)}, got {got}"
    if error.validator in ("minimum", "maximum"):
        low, high = error.schema.get("minimum"), error.schema.get("maximum")
        return f"must be between {low} and {high}, got {got}"
    if error.validator == "const":
        return f"must be {show(error.validator_value)}, got {got}"
    if error.validator == "enum":
        return f"must be one of {', '.join(show(v) for v in error.validator_value)}, got {got}"
    return error.message


def _type_names(types: list[str | list[str]]) -> str:
    """'a list or a mapping' from JSON Schema type names, each a name or a list of names."""
    flat = [name for entry in types for name in ([entry] if isinstance(entry, str) else entry)]
    return " or ".join(_YAML_TYPE_NAMES.get(name, name) for name in dict.fromkeys(flat))
