"""The history of every launch in one SQLite file, the embedded default (see
`interface.HistoryStore`): a row per launch with its usage summary, violations, samples and the
test cases of the JUnit XML its tests wrote, and the read side `policy report` is built on.

Many workers write at once: the file is in WAL mode, each connection waits `busy_timeout`
seconds for a lock, and a launch is one `BEGIN IMMEDIATE` transaction, so a row is there whole or
not at all. The schema is versioned (`PRAGMA user_version`); `MIGRATIONS` takes a file of any
earlier version to the current one. A damaged, foreign, newer or locked file is a
`HistoryError` with the path and what to do, never a traceback.

Samples are kept `sample_days` (14) days and pruned on every write; the summaries (launch,
usage, violations, test cases) stay until `prune(launch_days=...)` removes them.

The parts: `schema.py` (tables, migrations, opening and its errors), `write.py` (one launch),
`queries.py` (the read side and pruning). `sqlite3` is imported by the first call that opens the
file, not by importing this package.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.history.junit import JUnitCase
from engine.history.sqlite import queries, write
from engine.history.sqlite.queries import Pruned, StoredLaunch
from engine.history.sqlite.schema import (
    APPLICATION_ID,
    BUSY_TIMEOUT,
    DAY,
    DEFAULT_SAMPLE_DAYS,
    FIGURES,
    HISTORY_ENV,
    LAUNCH_FIELDS,
    MIGRATIONS,
    SAMPLE_DAYS_ENV,
    SAMPLE_FIELDS,
    SOURCE_CODES,
    USAGE_FIELDS,
    VERSION,
    Database,
    default_path,
    default_sample_days,
)
from engine.monitor.figures import Sample, Usage, Violation

if TYPE_CHECKING:
    from engine.history.interface import LaunchRecord

__all__ = [
    "APPLICATION_ID",
    "BUSY_TIMEOUT",
    "DAY",
    "DEFAULT_SAMPLE_DAYS",
    "FIGURES",
    "HISTORY_ENV",
    "LAUNCH_FIELDS",
    "MIGRATIONS",
    "SAMPLE_DAYS_ENV",
    "SAMPLE_FIELDS",
    "SOURCE_CODES",
    "USAGE_FIELDS",
    "VERSION",
    "Database",
    "Pruned",
    "SqliteStore",
    "StoredLaunch",
    "default_path",
    "default_sample_days",
]


class SqliteStore:
    """See `HistoryStore`; and the read side (`launches`, `usages`, `violations`, `test_cases`,
    `samples`), each over a window: launches recorded at or after `since`, of `profile`."""

    def __init__(
        self,
        path: Path,
        sample_days: float | None = DEFAULT_SAMPLE_DAYS,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        self.path = path.absolute()
        self.sample_days = sample_days  # None: never prune on write
        self.busy_timeout = busy_timeout

    @property
    def database(self) -> Database:
        """The file, for queries of its own (`engine.report.usage` aggregates in SQL)."""
        return Database(self.path, self.busy_timeout)

    @property
    def name(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqliteStore) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def append(self, record: LaunchRecord) -> None:
        write.append(self.database, record, self.sample_days)

    def prune(
        self, sample_days: float | None = DEFAULT_SAMPLE_DAYS, launch_days: float | None = None
    ) -> Pruned:
        """Remove the samples of launches older than `sample_days` days and, if `launch_days`
        is given, launches older than that with everything of theirs. One transaction."""
        return queries.prune(self.database, sample_days, launch_days)

    def records(self) -> Iterator[LaunchRecord]:
        from engine.history.interface import LaunchRecord

        for launch in self.launches():
            yield LaunchRecord(
                time=launch.time.isoformat(timespec="milliseconds"),
                host_user=launch.host_user or "",
                profile=launch.profile,
                digest=launch.digest,
                image=launch.image,
                container_id=launch.container_id,
                launch_id=launch.launch_id,
                command=list(launch.command),
                outcome=launch.outcome,
                policy=launch.policy or "",
                image_id=launch.image_id,
                exit_code=launch.exit_code,
                duration=launch.duration,
                left_behind=launch.left_behind,
                host=launch.host,
                engine=launch.engine,
                engine_version=launch.engine_version,
                cgroup_version=launch.cgroup_version,
                git_commit=launch.git_commit,
            )

    def launches(
        self, since: datetime | None = None, profile: str | None = None
    ) -> list[StoredLaunch]:
        """The launches of the window, oldest first."""
        return queries.launches(self.database, since, profile)

    def usages(self, since: datetime | None = None, profile: str | None = None) -> dict[int, Usage]:
        """The usage summary of each launch of the window that has one, by row, with its
        violations (its samples: `samples(row)`)."""
        return queries.usages(self.database, since, profile)

    def violations(
        self, since: datetime | None = None, profile: str | None = None
    ) -> dict[int, tuple[Violation, ...]]:
        """The violations of each launch of the window that had any, by row, in order."""
        return queries.violations(self.database, since, profile)

    def test_cases(
        self, since: datetime | None = None, profile: str | None = None
    ) -> dict[int, tuple[JUnitCase, ...]]:
        """The JUnit test cases of each launch of the window that left any, by row."""
        return queries.test_cases(self.database, since, profile)

    def samples(self, row: int) -> tuple[Sample, ...]:
        """The samples of one launch (none once pruned)."""
        return queries.samples(self.database, row)
