"""Located findings: one type for syntax errors, schema errors, rule violations and guardrails.

Every message the user sees about a policy file is a `Diagnostic`, printed as
`path:line:col: code: message`, so editors and CI annotate the offending key.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    """How bad a finding is; `error` fails validation, `warning` only with `--fail-on warning`."""

    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return 1 if self is Severity.WARNING else 2


@dataclass(frozen=True, order=True)
class Location:
    """A position in a source file (1-based line and column)."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True)
class Diagnostic:
    """One located message about a policy; `code` is a stable id (a rule id or an error id)."""

    location: Location
    code: str
    message: str
    severity: Severity = Severity.ERROR
    profile: str | None = None

    def __str__(self) -> str:
        return f"{self.location}: {self.code}: {self.message}"

    def sort_key(self) -> tuple[Location, str, str]:
        return (self.location, self.code, self.message)
