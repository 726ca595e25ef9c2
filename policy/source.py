"""Reading one TOML file into data plus key positions, with every failure as a diagnostic.

Nothing here raises for bad input: a file that cannot be read, decoded or parsed yields a
located `Diagnostic` and no data, so the loader can go on and report every file at once.
"""

from __future__ import annotations

import re
import stat
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy import observed
from policy.diagnostics import Diagnostic, Location
from policy.toml_positions import key_positions, locate

# Far above any real policy, low enough that a runaway file cannot exhaust memory.
MAX_FILE_BYTES = 32 * 1024 * 1024

_TOML_POS_RE = re.compile(r"\(at line (\d+), column (\d+)\)")


@dataclass
class SourceFile:
    """A parsed TOML file: its display path, data and (on demand) the position of every key."""

    path: Path
    display: str
    data: dict[str, Any]
    text: str = field(repr=False)
    _positions: dict[tuple[str | int, ...], tuple[int, int]] | None = field(
        default=None, repr=False
    )

    @property
    def positions(self) -> dict[tuple[str | int, ...], tuple[int, int]]:
        # Scanned only when a message needs a location: a valid policy never pays for it.
        if self._positions is None:
            self._positions = key_positions(self.text)
        return self._positions

    def at(self, keypath: Sequence[str | int]) -> Location:
        line, col = locate(self.positions, keypath)
        return Location(self.display, line, col)


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it.

    Bytes that are not UTF-8 (kept by Python as surrogates) are shown as escapes, so printing the
    name can never fail.
    """
    try:
        text = str(path.relative_to(Path.cwd()))
    except ValueError:
        text = str(path)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def read_regular(path: Path, limit: int) -> bytes | tuple[str, str]:
    """At most `limit` bytes of a regular file, or (error id, message).

    Anything but a regular file is refused before it is opened: a FIFO would block forever and a
    device such as /dev/zero never ends. What was read is reported to `policy.observed`.
    """
    read = _read_limited(path, limit)
    observed.file_read(path, limit, read)
    return read


def _read_limited(path: Path, limit: int) -> bytes | tuple[str, str]:
    try:
        info = path.stat()
    except FileNotFoundError:
        return ("not-found", "no such file or directory")
    except PermissionError:
        return ("unreadable", "permission denied")
    except OSError as exc:  # a symlink loop, a name too long, ...
        return ("unreadable", exc.strerror or str(exc))
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        return ("not-a-file", f"is {kind}, expected a regular file")
    if info.st_size > limit:
        return ("too-large", f"file is larger than {limit >> 20} MiB")
    try:
        with path.open("rb") as handle:
            raw = handle.read(limit + 1)
    except PermissionError:
        return ("unreadable", "permission denied")
    except OSError as exc:
        return ("unreadable", exc.strerror or str(exc))
    if len(raw) > limit:
        return ("too-large", f"file is larger than {limit >> 20} MiB")
    return raw


def _deep_nesting_at(text: str, limit: int = 100) -> tuple[int, int]:
    """The start of the line whose value nests `[`/`{` deeper than `limit` (strings and comments
    skipped roughly: this only places an error the parser has already found)."""
    depth, line, col, quote, comment = 0, 1, 0, "", False
    start = (1, 1)
    lines = text.split("\n")
    for char in text:
        col += 1
        if char == "\n":
            line, col, comment = line + 1, 0, False
        elif comment:
            continue
        elif quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            comment = True
        elif char in "[{":
            if depth == 0:
                here = lines[line - 1]
                start = (line, len(here) - len(here.lstrip()) + 1)
            depth += 1
            if depth > limit:
                return start
        elif char in "]}":
            depth -= 1
    return 1, 1


def read_toml(path: Path) -> SourceFile | Diagnostic:
    """Parse `path`; return the file, or the one diagnostic that says why it could not be read."""
    display = display_path(path)
    here = Location(display)
    raw = read_regular(path, MAX_FILE_BYTES)
    if isinstance(raw, tuple):
        return Diagnostic(here, raw[0], raw[1])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return Diagnostic(
            Location(display, line, col),
            "encoding",
            f"not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
        )
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_POS_RE.search(message)
        if match:
            line, col = int(match.group(1)), int(match.group(2))
            message = message[: match.start()].strip()
        else:  # "(at end of document)"
            line = text.count("\n") + 1
            col = len(text) - (text.rfind("\n") + 1) + 1
            message = re.sub(r"\s*\(at end of document\)", "", message) + " at end of file"
        return Diagnostic(Location(display, line, col), "syntax", message[:1].lower() + message[1:])
    except RecursionError:
        line, col = _deep_nesting_at(text)
        return Diagnostic(Location(display, line, col), "syntax", "nesting too deep")
    except ValueError:  # an integer longer than Python converts (4300 digits)
        # The value, not any long digit run (which could sit inside a string earlier on).
        match = re.search(r"=[ \t]*[+-]?([0-9_]{4000,})", text)
        start = match.start(1) if match else 0
        line = text.count("\n", 0, start) + 1
        col = start - (text.rfind("\n", 0, start) + 1) + 1
        return Diagnostic(
            Location(display, line, col), "syntax", "number too long (more than 4300 digits)"
        )
    return SourceFile(path, display, data, text)
