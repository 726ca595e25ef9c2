"""The reader a compose service's keys are read with, and the findings (`Note`s) it collects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.compose.project import Service
from policy import units
from policy.diagnostics import Location

NO_NEW_PRIVILEGES = ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")


@dataclass(frozen=True)
class Note:
    """A finding about one key of one service."""

    location: Location
    code: str
    message: str
    field: str | None = None


class Reader:
    def __init__(self, s: Service, directory: Path, env: dict[str, str]) -> None:
        self.s, self.directory, self.env = s, directory, env
        self.notes: list[Note] = []
        self.data: dict[str, Any] = s.data  # `shapes.checked` replaces it before any read

    def note(self, code: str, message: str, *path: str | int, field: str | None = None) -> None:
        self.notes.append(Note(self.s.at(*path), code, message, field))

    def get(self, *path: str) -> Any:
        value: Any = self.data
        for key in path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value

    def parsed(self, parse: Any, value: Any, *path: str) -> Any:
        if value is None:
            return None
        try:
            return parse(value)
        except (units.UnitError, ValueError, TypeError) as exc:
            self.note("bad-value", f"{'.'.join(path)}: {exc}", *path)
            return None

    def first(self, parse: Any, *paths: tuple[str, ...]) -> Any:
        """The value of the first path set (compose 2.x keys, then `deploy.resources`)."""
        set_ = [p for p in paths if self.get(*p) is not None]
        if len(set_) > 1:
            values = {p: self.parsed(parse, self.get(*p), *p) for p in set_}
            if len(set(map(repr, values.values()))) > 1:
                shown = ", ".join(f"{'.'.join(p)}={v}" for p, v in values.items())
                self.note("conflict", f"the service sets one limit twice, differently: {shown}",
                          *set_[-1])  # fmt: skip
        return self.parsed(parse, self.get(*set_[0]), *set_[0]) if set_ else None


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {value!r}")
