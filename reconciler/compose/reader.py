"""Reading a Compose file and its `.env` file (I/O).

The Compose file and a `--env-file` are named by the operator and read as named (through
links, as the spec file is); the `.env` beside the Compose file is read without being
named, so never through a symbolic link: one there is refused.

A Compose file is read with ruamel.yaml's round-trip loader, which keeps the line and
column of every key and value and accepts what real Compose files use and the spec
refuses: anchors, aliases and `<<` merge keys. Aliases share their nodes, so the file is
walked with a budget of nodes: a few lines of nested aliases cannot make it walk billions.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from reconciler.compose.interpolate import InterpolationError, parse_env_file
from reconciler.errors import SourceError
from reconciler.spec.document import Document, PathKey
from reconciler.spec.yamlread import MAX_SPEC_SIZE, read_bytes

MAX_NODES = 200_000


class ComposeReadError(SourceError):
    """The Compose or env file cannot be read or parsed; the message names FILE[:LINE:COL]."""


def read_limited(filename: str, what: str) -> str:
    return _decoded(read_bytes(filename), filename, what)


def _decoded(data: bytes, filename: str, what: str) -> str:
    if len(data) > MAX_SPEC_SIZE:
        raise ComposeReadError(f"{filename}: the {what} is larger than {MAX_SPEC_SIZE // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ComposeReadError(f"{filename}: the {what} is not valid UTF-8 (byte offset {e.start})") from None


def parse_compose(text: str, filename: str) -> Document:
    """The Compose text as a Document: plain data with the location of every key and value."""
    yaml = YAML(typ="rt")
    try:
        root = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{filename}:{mark.line + 1}:{mark.column + 1}" if mark else filename
        raise ComposeReadError(f"{where}: invalid YAML: {error.problem or error.context}") from None
    except YAMLError as error:
        raise ComposeReadError(f"{filename}: invalid YAML: {error}") from None
    return _document(root, filename)


def _document(root: Any, filename: str) -> Document:
    doc = Document(filename)
    doc.value_locations[()] = (1, 1)
    budget = MAX_NODES
    # (node, path, container to put the plain value in, key or index there)
    holder: dict[str, Any] = {}
    stack: list[tuple[Any, PathKey, Any, Any]] = [(root, (), holder, "root")]
    while stack:
        node, path, parent, slot = stack.pop()
        budget -= 1
        if budget < 0:
            raise ComposeReadError(f"{filename}: the file has more than {MAX_NODES} values (through aliases?)")
        if isinstance(node, CommentedMap):
            value: Any = dict.fromkeys(str(key) for key in node)  # in the file's order, filled in below
            for key in node:
                child = (*path, str(key))
                _locate(doc, node, key, child)
                stack.append((node[key], child, value, str(key)))
        elif isinstance(node, CommentedSeq):
            value = [None] * len(node)
            for index, item in enumerate(node):
                child = (*path, index)
                _locate(doc, node, index, child)
                stack.append((item, child, value, index))
        elif isinstance(node, (dict, list)):  # not from the round-trip loader: not expected
            value = node
        else:
            value = _scalar(node)
        parent[slot] = value
    doc.data = holder["root"]
    return doc


def _locate(doc: Document, node: Any, key: Any, path: PathKey) -> None:
    """Record where `key` of `node` and its value are; a key merged in by `<<` has no
    place of its own in this mapping: it takes the mapping's."""
    try:
        if isinstance(node, CommentedMap):
            line, col = node.lc.key(key)
            doc.key_locations[path] = (line + 1, col + 1)
            vline, vcol = node.lc.value(key)
        else:
            vline, vcol = node.lc.item(key)
        doc.value_locations[path] = (vline + 1, vcol + 1)
    except (KeyError, TypeError, AttributeError):
        parent = path[:-1]
        if parent in doc.key_locations:
            doc.key_locations.setdefault(path, doc.key_locations[parent])


def _scalar(node: Any) -> Any:
    """A plain value for a scalar of ruamel's round-trip types (ScalarFloat, ...)."""
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, ScalarBoolean):  # an anchored true or false
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return str(node)


def read_compose(filename: str) -> Document:
    return parse_compose(read_limited(filename, "Compose file"), filename)


def environment_for(compose_file: str, env_file: str | None, environment: Mapping[str, str]) -> dict[str, str]:
    """The variables interpolation sees: the environment wins over the env file, which is
    `env_file` or else the `.env` beside the Compose file (if there is one)."""
    chosen = env_file or os.path.join(os.path.dirname(os.path.abspath(compose_file)), ".env")
    text = read_limited(chosen, "env file") if env_file is not None else _read_implicit_env(chosen)
    if text is None:
        return dict(environment)
    try:
        from_file = parse_env_file(text, chosen, environment)
    except InterpolationError as error:
        raise ComposeReadError(str(error)) from None
    return {**from_file, **environment}


def _read_implicit_env(path: str) -> str | None:
    """The `.env` beside the Compose file, which the operator did not name: None when
    there is no regular file of that name; a symbolic link there is refused, never followed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise ComposeReadError(
                f"{path}: the .env beside the Compose file is a symbolic link, and netreconcile follows no link "
                "to a file it was not named: put the file itself there, or name it with --env-file") from None
        raise ComposeReadError(f"cannot read {path}: {error.strerror or error}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None  # a directory (or a pipe) named .env is no env file
        try:
            data = handle.read(MAX_SPEC_SIZE + 1)
        except OSError as error:
            raise ComposeReadError(f"cannot read {path}: {error.strerror or error}") from None
    return _decoded(data, path, "env file")
