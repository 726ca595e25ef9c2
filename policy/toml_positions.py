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

# One simple key (bare, "basic" or 'literal').  TOML 1.0 bare keys are
# [A-Za-z0-9_-]; any other non-delimiter is accepted too, to be forgiving
# towards newer TOML versions.
_SIMPLE_KEY = (
    r'(?P<key>"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
    r"|'[^'\n]*'"
    r"|[^ \t\r\n.=\[\]\"'#,{}]+)"
)
_AFTER_KEY = r"[ \t]*(?P<next>\.|=|\]\]|\]|)"

# The start of a statement or of an inline-table entry: a simple key,
# optionally preceded by a table header opener, and followed by what comes
# after it (``.``, ``=``, ``]`` or ``]]``).  ``close`` ends an inline table.
_KEY_RE: Final = re.compile(
    _WS + r"(?:(?P<close>\})|(?P<hdr>\[\[?)?[ \t]*" + _SIMPLE_KEY + _AFTER_KEY + ")"
)
# A further part of a dotted key.
_PART_RE: Final = re.compile(r"[ \t]*" + _SIMPLE_KEY + _AFTER_KEY)

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
    """Map every key path in a TOML document to the 1-based (line, column) where that key
    is written.

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
    # starts[i] is the offset of line i + 1; every recorded offset is >= starts[0].
    starts = [1 if text.startswith(_BOM) else 0]
    starts.extend(match.end() for match in _NEWLINE.finditer(text))
    return {
        path: (line := bisect_right(starts, offset), offset - starts[line - 1] + 1)
        for path, offset in offsets.items()
    }


def _unescape_one(match: re.Match[str]) -> str:
    digits = match.group(1) or match.group(2) or match.group(3)
    if digits:
        code = int(digits, 16)
        if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code)
        return match.group(0)
    return _SIMPLE_ESCAPES.get(match.group(4), match.group(0))


def _decode_key(raw: str) -> str:
    """The key written as `raw` (bare, "basic" with escapes, or 'literal')."""
    quote = raw[0]
    if quote == '"':
        body = raw[1:-1]
        return _ESCAPE.sub(_unescape_one, body) if "\\" in body else body
    if quote == "'":
        return raw[1:-1]
    return raw


class _Frame:
    """An open array or inline table."""

    __slots__ = ("index", "is_array", "path")

    def __init__(self, path: Path | None, is_array: bool) -> None:
        self.path = path  # None: too deep to record
        self.is_array = is_array
        self.index = 0  # next element index of an array


# Scanner states: what the scanner expects next.
_STATEMENT: Final = 0  # top level: a table header or a key/value pair
_VALUE: Final = 1  # a value is expected
_ELEMENT: Final = 2  # inside an array: an element or ``]`` is expected
_KEY: Final = 3  # inside an inline table: a key or ``}`` is expected
_AFTER: Final = 4  # an array or inline table just closed


def _scan(text: str, out: dict[Path, int]) -> None:
    """Record into `out` the offset of every key path of `text`.

    Returns when the text ends or cannot be followed any further.
    """
    _Scanner(text, out).run()


class _Scanner:
    """The state of one scan. Each step consumes one token (with the whitespace and comments
    around it) and returns the next state, or None where the text cannot be followed."""

    __slots__ = ("aot_counts", "out", "path", "pos", "stack", "table", "text")

    def __init__(self, text: str, out: dict[Path, int]) -> None:
        self.text = text
        self.out = out
        self.aot_counts: dict[Path, int] = {}  # entries so far of each array of tables
        self.table: Path | None = ()  # the current [table]
        self.path: Path | None = ()  # the path of the value being scanned (None: too deep)
        self.stack: list[_Frame] = []  # open arrays and inline tables
        self.pos = 1 if text.startswith(_BOM) else 0

    def run(self) -> None:
        steps = (self._statement, self._value, self._element, self._key, self._after)
        state: int | None = _STATEMENT
        while state is not None:
            state = steps[state]()

    def _statement(self) -> int | None:
        return self._key_or_close(in_table=False)

    def _key(self) -> int | None:
        return self._key_or_close(in_table=True)

    def _value(self) -> int | None:
        return self._value_or_close(in_array=False)

    def _element(self) -> int | None:
        return self._value_or_close(in_array=True)

    def _value_or_close(self, in_array: bool) -> int | None:
        """A value (of a key, or an element of the innermost array), or the ``]`` closing it."""
        match = _VALUE_RE.match(self.text, self.pos)
        if match is None:
            return None
        kind = match.lastgroup
        if kind == "close":
            if not in_array:
                return None
            self.stack.pop()
            self.pos = match.end()
            return _AFTER
        if in_array:
            top = self.stack[-1]
            parent = top.path
            if parent is not None and len(parent) < MAX_DEPTH:
                self.path = (*parent, top.index)
                self.out.setdefault(self.path, match.end(1))
            else:
                self.path = None
            top.index += 1
        self.pos = match.end()
        if kind == "table":
            self.stack.append(_Frame(self.path, is_array=False))
            return _KEY
        if kind == "array":
            self.stack.append(_Frame(self.path, is_array=True))
            return _ELEMENT
        if not self.stack:
            return _STATEMENT if kind == "atom" else None
        if kind != "sep":
            return None
        return self._separator(match.group("sep"))

    def _key_or_close(self, in_table: bool) -> int | None:
        """A table header, a (dotted) key and its ``=``, or the ``}`` closing an inline table."""
        match = _KEY_RE.match(self.text, self.pos)
        if match is None:
            return None
        if match.lastgroup == "close":
            if not in_table:
                return None
            self.stack.pop()
            self.pos = match.end()
            return _AFTER
        header = match.group("hdr")
        if header is not None:
            return None if in_table else self._header(match, is_aot=header == "[[")
        # The key's path, which is also the path of the value that follows it.
        path = self.stack[-1].path if self.stack else self.table
        while True:
            if path is not None:
                if len(path) < MAX_DEPTH:
                    path = (*path, _decode_key(match.group("key")))
                    self.out.setdefault(path, match.start("key"))
                else:
                    path = None
            if match.group("next") != ".":
                break
            match = _PART_RE.match(self.text, match.end())
            if match is None:
                return None
        self.path = path
        if match.group("next") != "=":
            return None
        self.pos = match.end()
        return _VALUE

    def _header(self, match: re.Match[str], is_aot: bool) -> int | None:
        """The rest of a ``[table]`` or ``[[array.of.tables]]`` header whose first key matched."""
        keys = [(match.group("key"), match.start("key"))]
        while match.group("next") == ".":
            part = _PART_RE.match(self.text, match.end())
            if part is None:
                return None
            match = part
            keys.append((match.group("key"), match.start("key")))
        if match.group("next") != ("]]" if is_aot else "]"):
            return None
        self.pos = match.end()
        self.table = _header_path(keys, is_aot, self.aot_counts, self.out)
        return _STATEMENT

    def _after(self) -> int | None:
        """What follows a closed array or inline table: a separator, unless it was a value."""
        if not self.stack:
            return _STATEMENT
        match = _AFTER_RE.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return self._separator(match.group("sep"))

    def _separator(self, sep: str) -> int | None:
        """A separator after a value inside an array or inline table."""
        top = self.stack[-1]
        if sep == ",":
            return _ELEMENT if top.is_array else _KEY
        if (sep == "]") == top.is_array:
            self.stack.pop()
            return _AFTER
        return None


def _header_path(
    keys: list[tuple[str, int]], is_aot: bool, aot_counts: dict[Path, int], out: dict[Path, int]
) -> Path | None:
    """Record the keys of a ``[table]`` or ``[[array.of.tables]]`` header; return its path.

    `keys` holds the raw simple keys of the header and their offsets;
    `aot_counts` the number of entries seen so far of each array of tables.
    """
    path: Path = ()
    last = len(keys) - 1
    for number, (raw, offset) in enumerate(keys):
        if len(path) >= MAX_DEPTH:
            return None
        path = (*path, _decode_key(raw))
        out.setdefault(path, offset)
        if number == last and is_aot:
            index = aot_counts.get(path, 0)
            aot_counts[path] = index + 1
        elif path in aot_counts:
            # A sub-table of the latest entry of an array of tables.
            index = aot_counts[path] - 1
        else:
            continue
        if len(path) >= MAX_DEPTH:
            return None
        path = (*path, index)
        out.setdefault(path, offset)
    return path
