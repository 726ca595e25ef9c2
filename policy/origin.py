"""Where a setting was written: the file and the key path inside it.

A profile's settings come from `[defaults]`, its parents and itself, often in other files; each
effective setting keeps its `Origin`, so a message about it points at the line that wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from policy.diagnostics import Location
from policy.source import SourceFile

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Origin:
    """Where a setting was written: the file and the key path inside it."""

    source: SourceFile
    keypath: KeyPath

    @property
    def location(self) -> Location:
        return self.source.at(self.keypath)

    def at(self, *keys: str | int) -> Location:
        """The location of `keys` below this setting (a field of a table, an array element)."""
        return self.source.at((*self.keypath, *keys))
