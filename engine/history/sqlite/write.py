"""Writing one launch to the history: its row, usage summary, violations, samples and test
cases in one `BEGIN IMMEDIATE` transaction (a row is there whole or not at all), and the
pruning of old samples that every write does."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.history.junit import JUnitCase
from engine.history.sqlite.schema import (
    DAY,
    LAUNCH_FIELDS,
    SAMPLE_FIELDS,
    SOURCE_CODES,
    USAGE_FIELDS,
    Database,
    transaction,
)
from engine.monitor.figures import Figure, Usage

if TYPE_CHECKING:
    import sqlite3

    from engine.history.interface import LaunchRecord


def append(db: Database, record: LaunchRecord, sample_days: float | None) -> None:
    """Keep `record`; then drop the samples older than `sample_days` days (None: none)."""
    at = _epoch(record.time)
    cases = _test_cases(record, at)
    usage = record.usage_summary
    with db.open("write the launch") as conn:
        assert conn is not None
        with transaction(conn):
            _insert(conn, record, at, usage, cases)
            if sample_days is not None:
                prune_samples(conn, time.time() - sample_days * DAY)


def prune_samples(conn: sqlite3.Connection, before: float) -> int:
    """Remove the samples of launches recorded before `before` (epoch seconds); how many."""
    old = "SELECT id FROM launches WHERE samples_kept = 1 AND at < ?"
    removed = conn.execute(f"DELETE FROM samples WHERE launch IN ({old})", (before,)).rowcount
    conn.execute(
        "UPDATE launches SET samples_kept = 0 WHERE samples_kept = 1 AND at < ?", (before,)
    )
    return int(removed)


def _test_cases(record: LaunchRecord, at: float) -> list[JUnitCase]:
    if not record.results:
        return []
    from engine.history.junit import collect

    cases, problems = collect(record.results, since=at - (record.duration or 0.0))
    if problems:
        from engine.logs import logger

        for problem in problems:
            logger.warning(f"JUnit XML skipped: {problem}")
    return cases


def _insert(
    conn: sqlite3.Connection,
    record: LaunchRecord,
    at: float,
    usage: Usage | None,
    cases: list[JUnitCase],
) -> int:
    values: dict[str, Any] = {
        **record.model_dump(include=set(LAUNCH_FIELDS)),
        "at": at,
        "command": json.dumps(record.command),
        "left_behind": int(record.left_behind),
        "samples_kept": int(bool(usage and usage.samples)),
    }
    row = _insert_row(conn, "launches", LAUNCH_FIELDS, values)
    conn.executemany(
        "INSERT INTO test_cases VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(row, i, c.file, c.classname, c.name, c.time, c.outcome) for i, c in enumerate(cases)],
    )
    if usage is None:
        return row
    conn.execute(
        f"INSERT INTO usage (launch, {', '.join(USAGE_FIELDS)}) "
        f"VALUES (?{', ?' * len(USAGE_FIELDS)})",
        (row, *_usage_values(usage)),
    )
    conn.executemany(
        "INSERT INTO violations VALUES (?, ?, ?, ?, ?, ?)",
        [
            (row, i, v.kind, v.severity.value, v.threshold, v.evidence)
            for i, v in enumerate(usage.violations)
        ],
    )
    conn.executemany(
        f"INSERT INTO samples VALUES (?, ?, ?{', ?' * len(SAMPLE_FIELDS)})",
        [
            (row, i, s.t, *(getattr(s, f) for f in SAMPLE_FIELDS))
            for i, s in enumerate(usage.samples)
        ],
    )
    return row


def _epoch(iso: str) -> float:
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        return time.time()
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _insert_row(
    conn: sqlite3.Connection, table: str, fields: tuple[str, ...], values: dict[str, Any]
) -> int:
    cursor = conn.execute(
        f"INSERT INTO {table} ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
        [values.get(f) for f in fields],
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _figures(usage: Usage) -> tuple[Figure, ...]:
    return (
        usage.memory_peak,
        usage.cpu_average,
        usage.cpu_p95,
        usage.throttled_share,
        usage.tasks_peak,
        usage.fork_failures,
        usage.oom_kills,
        *usage.open_files,
        *usage.threads,
    )


def _usage_values(usage: Usage) -> list[Any]:
    values: list[Any] = [
        usage.duration,
        usage.cgroup_version,
        usage.memory_limit,
        usage.cpu_quota,
        usage.pids_limit,
        usage.interval,
        usage.sampling_cpu_seconds,
    ]
    for figure in _figures(usage):
        values += [figure.value, SOURCE_CODES[figure.source]]
    return values
