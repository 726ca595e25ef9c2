"""Source positions for the keys of a TOML document.

Policies are read with the standard library's :mod:`tomllib`, which returns
plain dicts and lists and keeps no record of where anything was written.
Validation errors, however, must be reported as ``file:line:col`` so that
editors and CI logs can jump straight to the offending key.  This module
re-scans the (already accepted) TOML text with a small, forgiving scanner and
maps every key path -- using exactly the nesting of the ``tomllib.loads``
result, with integer indexes for array elements and array-of-tables entries --
to the 1-based ``(line, column)`` where that key (or array element) is written.

Design notes:

* The scanner is *not* a validator.  It is only meant to follow text that
  ``tomllib`` accepted, but it never raises: on anything it cannot follow it
  stops and returns the positions found so far.
* It runs in linear time: it is driven by a few compiled regular expressions
  that each consume a whole token (string bodies, comments and whitespace
  included), and nested arrays and inline tables are tracked with an explicit
  stack, not recursion.  Paths longer than ``MAX_DEPTH`` components are not
  recorded (:func:`locate` then falls back to the deepest recorded prefix),
  which keeps pathological nesting cheap.
* Lines are counted by ``\\n`` (so CRLF files work); columns count characters
  (code points), not bytes.  A leading UTF-8 BOM is not counted as a column.
* If a path is written more than once (for example a table prefix that is
  repeated in several headers or dotted keys), the first occurrence wins.
"""

from __future__ import annotations

import contextlib
import re
from bisect import bisect_right
from collections.abc import Sequence
from typing import Final

__all__ = ["MAX_DEPTH", "Path", "key_positions", "locate"]

Path = tuple[str | int, ...]

#: Paths with more components than this are not recorded.
MAX_DEPTH: Final = 256

_BOM: Final = "\ufeff"

# Whitespace, newlines and comments (a comment runs to the end of its line).
# Atomic, so that a failing match never backtracks into a comment.
_WS_BODY = r"(?>[ \t\r\n]*(?:#[^\n]*[ \t\r\n]*)*)"
_WS = r"(?P<ws>" + _WS_BODY + r")"

# One simple key.  TOML 1.0 bare keys are [A-Za-z0-9_-]; any other
# non-delimiter is accepted too, to be forgiving towards newer TOML versions.
_SIMPLE_KEY = (
    r'(?:"(?P<basic>[^"\\\n]*(?:\\.[^"\\\n]*)*)"'
    r"|'(?P<literal>[^'\n]*)'"
    r"|(?P<bare>[^ \t\r\n.=\[\]\"'#,{}]+))"
)

# A simple key, optionally preceded by a table header opener (at the start
# of a statement), and followed by what comes after it (``.``, ``=``, ``]``
# or ``]]``).  ``close`` ends an inline table instead.
_KEY_RE: Final = re.compile(
    _WS
    + r"(?:(?P<close>\})|(?P<hdr>\[\[?)?[ \t]*"
    + _SIMPLE_KEY
    + r"[ \t]*(?P<next>\.|=|\]\]|\]|))"
)

# One value token.  Strings, numbers, booleans and dates ("atoms") are
# consumed together with the separator that follows them, if any.
_ATOM = (
    # Multi-line basic string: escapes (including line-ending backslashes)
    # and lone quotes; up to two extra quotes may precede the delimiter.
    r'"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""(?:"{1,2})?'
    # Multi-line literal string.
    r"|'''[\s\S]*?'''(?:'{1,2})?"
    # Basic and literal strings.
    r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
    r"|'[^'\n]*'"
    # Number, boolean, date or time: up to a separator, comment or line end
    # (a datetime may contain a space).
    r"|[^,\]}#\r\n]+"
)
_VALUE_RE: Final = re.compile(
    _WS
    + r"(?:(?P<close>\])|(?P<table>\{)|(?P<array>\[)|(?P<atom>"
    + _ATOM
    + r")"
    + _WS_BODY
    + r"(?P<sep>[,\]}])?)"
)

# The separator after a closed array or inline table.
_AFTER_RE: Final = re.compile(_WS + r"(?P<sep>[,\]}])")

_NEWLINE: Final = re.compile(r"\n")
_ESCAPE: Final = re.compile(
    r"\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|x([0-9A-Fa-f]{2})|([\s\S]))",
)
_SIMPLE_ESCAPES: Final = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    '"': '"',
    "\\": "\\",
}


def key_positions(text: str) -> dict[Path, tuple[int, int]]:
    """Map every key path in a TOML document to the 1-based (line, column) where that key is written.

    Paths follow the nesting of ``tomllib.loads(text)``: table headers,
    dotted keys and inline tables contribute string components, array
    elements and ``[[array.of.tables]]`` entries contribute integer indexes.
    A table path points at its key in the first header or dotted key that
    mentions it; an array element points at the first character of the
    element (``{``, ``[``, the opening quote, the first digit, ...); an
    array-of-tables entry points at the last key of its ``[[...]]`` header.

    Never raises: on text it cannot follow, the positions found so far are
    returned.
    """
    offsets: dict[Path, int] = {}
    if not isinstance(text, str):
        return {}
    with contextlib.suppress(Exception):
        _scan(text, offsets)
    try:
        return _to_line_col(text, offsets)
    except Exception:
        return {}


def locate(positions: dict[Path, tuple[int, int]], path: Sequence[str | int]) -> tuple[int, int]:
    """Position of `path`, or of its longest prefix that has a position; (1, 1) if none."""
    with contextlib.suppress(Exception):
        key = tuple(path)
        for end in range(len(key), 0, -1):
            found = positions.get(key[:end])
            if found is not None:
                return found
    return (1, 1)


def _to_line_col(text: str, offsets: dict[Path, int]) -> dict[Path, tuple[int, int]]:
    starts = [0]
    starts.extend(match.end() for match in _NEWLINE.finditer(text))
    if text.startswith(_BOM):
        starts[0] = 1
    result: dict[Path, tuple[int, int]] = {}
    for path, offset in offsets.items():
        line = max(bisect_right(starts, offset) - 1, 0)
        result[path] = (line + 1, max(offset - starts[line], 0) + 1)
    return result


def _unescape_one(match: re.Match[str]) -> str:
    digits = match.group(1) or match.group(2) or match.group(3)
    if digits:
        code = int(digits, 16)
        if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code)
        return match.group(0)
    return _SIMPLE_ESCAPES.get(match.group(4), match.group(0))


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    return _ESCAPE.sub(_unescape_one, raw)


def _child(parent: Path | None, component: str | int) -> Path | None:
    if parent is None or len(parent) >= MAX_DEPTH:
        return None
    return (*parent, component)


def _key_of(match: re.Match[str]) -> tuple[str, int]:
    """The decoded simple key matched by `_KEY_RE`, and its offset."""
    bare, literal, basic = match.group("bare", "literal", "basic")
    if bare is not None:
        return bare, match.start("bare")
    if literal is not None:
        return literal, match.start("literal") - 1
    return _unescape(basic), match.start("basic") - 1


class _Frame:
    """An open array or inline table while scanning a value."""

    __slots__ = ("index", "is_array", "path")

    def __init__(self, path: Path | None, is_array: bool) -> None:
        self.path = path
        self.is_array = is_array
        self.index = 0


# States of the value scanner.
_VALUE: Final = 0  # a value is expected
_ELEMENT: Final = 1  # inside an array: an element or ``]`` is expected
_KEY: Final = 2  # inside an inline table: a key or ``}`` is expected
_AFTER: Final = 3  # an array or inline table just closed


def _scan(text: str, out: dict[Path, int]) -> None:
    """Record the offset of every key path of `text` into `out`."""
    record = out.setdefault
    key_match = _KEY_RE.match
    aot_counts: dict[Path, int] = {}  # entries so far of each array of tables
    table: Path | None = ()
    pos = 1 if text.startswith(_BOM) else 0
    while True:
        match = key_match(text, pos)
        if match is None or match.group("close") is not None:
            return  # end of the document, or text we cannot follow
        header = match.group("hdr")
        keys = [_key_of(match)]
        while match.group("next") == ".":
            match = key_match(text, match.end())
            if match is None or match.group("close") or match.group("hdr"):
                return
            keys.append(_key_of(match))
        pos = match.end()
        after = match.group("next")
        if header is None:
            if after != "=":
                return
            path = table
            for key, offset in keys:
                path = _child(path, key)
                if path is not None:
                    record(path, offset)
            pos = _scan_value(text, pos, path, out)
            if pos < 0:
                return
            continue
        is_aot = header == "[["
        if after != ("]]" if is_aot else "]"):
            return
        table = ()
        for number, (key, offset) in enumerate(keys, start=1):
            table = _child(table, key)
            if table is None:
                break
            record(table, offset)
            if number == len(keys) and is_aot:
                index = aot_counts.get(table, 0)
                aot_counts[table] = index + 1
                table = _child(table, index)
                if table is not None:
                    record(table, offset)
            elif table in aot_counts:
                # A sub-table of the latest entry of an array of tables.
                table = _child(table, aot_counts[table] - 1)


def _scan_value(text: str, pos: int, path: Path | None, out: dict[Path, int]) -> int:
    """Skip the value at `pos`, recording array elements and inline-table keys under `path`.

    Returns the offset after the value, or -1 if the text cannot be followed.
    """
    record = out.setdefault
    value_match = _VALUE_RE.match
    stack: list[_Frame] = []
    state = _VALUE
    while True:
        sep: str | None = None
        if state in (_VALUE, _ELEMENT):
            match = value_match(text, pos)
            if match is None:
                return -1
            kind = match.lastgroup
            if kind == "close":
                if state != _ELEMENT:
                    return -1
                stack.pop()
                pos = match.end()
                state = _AFTER
                continue
            if state == _ELEMENT:
                top = stack[-1]
                path = _child(top.path, top.index)
                top.index += 1
                if path is not None:
                    record(path, match.end("ws"))
            pos = match.end()
            if kind == "table":
                stack.append(_Frame(path, is_array=False))
                state = _KEY
                continue
            if kind == "array":
                stack.append(_Frame(path, is_array=True))
                state = _ELEMENT
                continue
            if not stack:
                return pos if kind == "atom" else -1
            if kind != "sep":
                return -1
            sep = match.group("sep")
        elif state == _KEY:
            match = _KEY_RE.match(text, pos)
            if match is None or match.group("hdr") is not None:
                return -1
            if match.group("close") is not None:
                stack.pop()
                pos = match.end()
                state = _AFTER
                continue
            path = stack[-1].path
            while True:
                key, offset = _key_of(match)
                path = _child(path, key)
                if path is not None:
                    record(path, offset)
                if match.group("next") != ".":
                    break
                match = _KEY_RE.match(text, match.end())
                if match is None or match.group("close") or match.group("hdr"):
                    return -1
            if match.group("next") != "=":
                return -1
            pos = match.end()
            state = _VALUE
            continue
        else:  # _AFTER
            if not stack:
                return pos
            match = _AFTER_RE.match(text, pos)
            if match is None:
                return -1
            pos = match.end()
            sep = match.group("sep")
        # A separator follows a value inside an array or inline table.
        top = stack[-1]
        if sep == ",":
            state = _ELEMENT if top.is_array else _KEY
        elif (sep == "]") == top.is_array:
            stack.pop()
            state = _AFTER
        else:
            return -1
