"""Located findings: one type for syntax errors, schema errors, rule violations and guardrails.

Every message the user sees about a policy file is a `Diagnostic`, printed as
`path:line:col: code: message`, so editors and CI annotate the offending key.
"""

from __future__ import annotations

import enum
import unicodedata
from dataclasses import dataclass

MAX_PATH_SHOWN = 1000
MAX_MESSAGE = 2000  # a message quoting a 1 MB key is still one readable line


_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def printable(text: str) -> str:
    """`text` safe for a terminal and a line-based log: control characters, bidirectional and
    other invisible format characters, and line separators become escapes, so policy input can
    neither forge an output line nor reorder what a reviewer reads."""
    if text.isprintable():
        return text
    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in _UNSAFE else c
        for c in text
    )


class Severity(enum.StrEnum):
    """How bad a finding is; `error` fails validation, `warning` only with `--fail-on warning`,
    and a `note` (something a reviewer may want to see that is not a weakness of a test
    container, such as CIS 5.27's missing health check) only with `--fail-on note`."""

    NOTE = "note"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.NOTE: 0, Severity.WARNING: 1, Severity.ERROR: 2}


@dataclass(frozen=True, order=True)
class Location:
    """A position in a source file (1-based line and column)."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        path = printable(self.path)
        if len(path) > MAX_PATH_SHOWN:  # a legal 4 KiB path, each odd byte escaped 6-fold
            path = path[:200] + "..." + path[-(MAX_PATH_SHOWN - 203) :]
        return f"{path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One located message about a policy; `code` is a stable id (a rule id or an error id)."""

    location: Location
    code: str
    message: str
    severity: Severity = Severity.ERROR
    profile: str | None = None

    def __str__(self) -> str:
        message = printable(self.message)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 20] + f"... ({len(message)} chars)"
        return f"{self.location}: {self.code}: {message}"

    def sort_key(self) -> tuple[Location, str, str]:
        return (self.location, self.code, self.message)
