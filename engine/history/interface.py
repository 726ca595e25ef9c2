"""The history store interface, and the one record every launch leaves.

A store keeps `LaunchRecord`s in order. `jsonl.py` is the append-only JSON-lines file the CLI
writes by default; a store of another kind (SQLite) is one more module implementing `HistoryStore`.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


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
