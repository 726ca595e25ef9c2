"""The history store interface, and the one record every launch leaves.

A store keeps `LaunchRecord`s in order. `jsonl.py` is the append-only JSON-lines file the CLI
writes by default; `sqlite.py` is the queryable history (usage, violations, samples, test
cases) the CLI writes beside it.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from engine.history.errors import HistoryError

if TYPE_CHECKING:
    from engine.monitor.figures import Usage


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


class LaunchRecord(BaseModel):
    """One launch: when, who, which profile and digest, image, container, command, how it ended."""

    model_config = ConfigDict(extra="ignore", frozen=True, defer_build=True)

    time: str = Field(default_factory=_now)
    host_user: str = Field(default_factory=_user)
    profile: str
    digest: str
    image: str
    container_id: str
    launch_id: str
    command: list[str]
    outcome: str  # passed, failed, timeout, oom, interrupted, detached
    policy: str
    image_id: str | None = None
    exit_code: int | None = None
    duration: float | None = None
    left_behind: bool = False
    # Where and under what it ran (optional: records of earlier versions have none of these).
    host: str | None = None  # the machine `policy` ran on
    engine: str | None = None  # the engine's URL
    engine_version: str | None = None
    cgroup_version: str | None = None
    git_commit: str | None = None  # of the project directory's repository, when it is one
    # For stores that keep more than the JSON line (sqlite.py); never written to the JSON line.
    # The writable mounts' host directories, where the tests may have left JUnit XML:
    results: tuple[str, ...] = Field((), exclude=True)
    # An `engine.monitor.figures.Usage` (or None). Typed `object` on purpose: a pydantic schema
    # of the dataclass costs every launch about 5 ms to build; `usage_summary` narrows it.
    usage: object = Field(None, exclude=True)

    @property
    def usage_summary(self) -> Usage | None:
        from engine.monitor.figures import Usage

        return self.usage if isinstance(self.usage, Usage) else None


__all__ = ["HistoryError", "HistoryStore", "LaunchRecord"]


class HistoryStore(Protocol):
    """Where launch records are kept."""

    @property
    def name(self) -> str:
        """Where the store is, for messages."""
        ...

    def append(self, record: LaunchRecord) -> None:
        """Keep `record` after every earlier one; never rewrite what is there."""
        ...

    def records(self) -> Iterator[LaunchRecord]:
        """Every record, oldest first (entries this version cannot read are skipped)."""
        ...
