"""The history's read side, each query over a window (launches recorded at or after `since`,
of `profile`), in the types of `engine/monitor/figures.py`, and pruning on demand.

A read over 100,000 launches builds over a million small objects: `_building` keeps the cyclic
collector off meanwhile and `_Figures` shares the figures that repeat.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.history.junit import JUnitCase
from engine.history.sqlite.schema import (
    DAY,
    LAUNCH_FIELDS,
    SAMPLE_FIELDS,
    SOURCE_OF_CODE,
    USAGE_FIELDS,
    Database,
    transaction,
)
from engine.history.sqlite.write import prune_samples
from engine.monitor.figures import Figure, Sample, Severity, Source, Usage, Violation


@dataclass(frozen=True)
class StoredLaunch:
    """One launch as the history has it. `row` keys its usage, violations and test cases."""

    row: int
    launch_id: str
    time: datetime
    profile: str
    digest: str
    policy: str | None
    image: str
    image_id: str | None
    command: tuple[str, ...]
    container_id: str
    exit_code: int | None
    outcome: str
    duration: float | None
    host_user: str | None
    host: str | None
    engine: str | None
    engine_version: str | None
    cgroup_version: str | None
    git_commit: str | None
    left_behind: bool


@dataclass(frozen=True)
class Pruned:
    """What a prune removed."""

    samples: int
    launches: int


def prune(db: Database, sample_days: float | None, launch_days: float | None) -> Pruned:
    """Remove the samples of launches older than `sample_days` days and, if `launch_days`
    is given, launches older than that with everything of theirs. One transaction."""
    now = time.time()
    with db.open("prune") as conn:
        assert conn is not None
        with transaction(conn):
            samples = 0 if sample_days is None else prune_samples(conn, now - sample_days * DAY)
            launches = 0
            if launch_days is not None:
                launches = conn.execute(
                    "DELETE FROM launches WHERE at < ?", (now - launch_days * DAY,)
                ).rowcount
    return Pruned(samples=samples, launches=launches)


def launches(
    db: Database, since: datetime | None = None, profile: str | None = None
) -> list[StoredLaunch]:
    """The launches of the window, oldest first."""
    columns = ", ".join(f"l.{c}" for c in LAUNCH_FIELDS if c not in ("time", "samples_kept"))
    rows = _select(
        db, f"SELECT l.id, {columns} FROM launches l", since, profile, "ORDER BY l.at, l.id"
    )
    commands: dict[str, tuple[str, ...]] = {}  # one parse per distinct command
    with _building():
        return [_launch(r, commands) for r in rows]


def _launch(r: tuple[Any, ...], commands: dict[str, tuple[str, ...]]) -> StoredLaunch:
    command = commands.get(r[13])
    if command is None:
        command = commands[r[13]] = tuple(json.loads(r[13]))
    return StoredLaunch(
        row=r[0],
        launch_id=r[1],
        time=datetime.fromtimestamp(r[2], UTC),
        host_user=r[3],
        host=r[4],
        engine=r[5],
        engine_version=r[6],
        cgroup_version=r[7],
        profile=r[8],
        digest=r[9],
        policy=r[10],
        image=r[11],
        image_id=r[12],
        command=command,
        container_id=r[14],
        exit_code=r[15],
        outcome=r[16],
        duration=r[17],
        left_behind=bool(r[18]),
        git_commit=r[19],
    )


def usages(
    db: Database, since: datetime | None = None, profile: str | None = None
) -> dict[int, Usage]:
    """The usage summary of each launch of the window that has one, by row, with its
    violations (its samples: `samples(row)`)."""
    found = violations(db, since, profile)
    rows = _select(
        db,
        f"SELECT u.launch, {', '.join(f'u.{c}' for c in USAGE_FIELDS)} "  # as `_usage` reads
        "FROM launches l JOIN usage u ON u.launch = l.id",
        since,
        profile,
    )
    figure = _Figures()
    none: tuple[Violation, ...] = ()
    with _building():
        return {r[0]: _usage(r[1:], found.get(r[0], none), figure) for r in rows}


def violations(
    db: Database, since: datetime | None = None, profile: str | None = None
) -> dict[int, tuple[Violation, ...]]:
    """The violations of each launch of the window that had any, by row, in order."""
    found: dict[int, list[Violation]] = {}
    rows = _select(
        db,
        "SELECT v.launch, v.kind, v.severity, v.threshold, v.evidence "
        "FROM launches l JOIN violations v ON v.launch = l.id",
        since,
        profile,
        "ORDER BY v.launch, v.position",
    )
    for row, kind, severity, threshold, evidence in rows:
        found.setdefault(row, []).append(Violation(kind, Severity(severity), threshold, evidence))
    return {row: tuple(vs) for row, vs in found.items()}


def test_cases(
    db: Database, since: datetime | None = None, profile: str | None = None
) -> dict[int, tuple[JUnitCase, ...]]:
    """The JUnit test cases of each launch of the window that left any, by row."""
    found: dict[int, list[JUnitCase]] = {}
    rows = _select(
        db,
        "SELECT t.launch, t.name, t.classname, t.time, t.outcome, t.file "
        "FROM launches l JOIN test_cases t ON t.launch = l.id",
        since,
        profile,
        "ORDER BY t.launch, t.position",
    )
    with _building():
        for row, name, classname, seconds, outcome, file in rows:
            found.setdefault(row, []).append(JUnitCase(name, classname, seconds, outcome, file))
        return {row: tuple(cs) for row, cs in found.items()}


def samples(db: Database, row: int) -> tuple[Sample, ...]:
    """The samples of one launch (none once pruned)."""
    with db.open("read the history", create=False) as conn:
        if conn is None:
            return ()
        rows = conn.execute(
            f"SELECT t, {', '.join(SAMPLE_FIELDS)} FROM samples WHERE launch = ? ORDER BY position",
            (row,),
        ).fetchall()
    return tuple(Sample(*r) for r in rows)


def _select(
    db: Database, query: str, since: datetime | None, profile: str | None, order: str = ""
) -> list[Any]:
    where: list[str] = []
    parameters: list[float | str] = []
    if since is not None:
        where.append("l.at >= ?")
        parameters.append(since.timestamp())
    if profile is not None:
        where.append("l.profile = ?")
        parameters.append(profile)
    if where:
        query += " WHERE " + " AND ".join(where)
    with db.open("read the history", create=False) as conn:
        if conn is None:
            return []
        return conn.execute(f"{query} {order}", parameters).fetchall()


@contextlib.contextmanager
def _building() -> Iterator[None]:
    """No cyclic garbage collection while a read builds its many small objects (none of them
    cyclic): the collector's passes over them took a third of the time of 100,000 launches."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Figures:
    """Builds the `Figure`s of many rows. A report over 100,000 launches builds 1.3 million of
    them, so the counts (tasks, fork failures, OOM kills, files, threads), which repeat from
    launch to launch, share one instance per distinct (value, source); the measured amounts
    (memory, CPU, throttling) rarely repeat and are built directly."""

    SHARED_FROM = 4  # FIGURES[4:] are the counts

    def __init__(self) -> None:
        self.known: dict[tuple[float | None, int], Figure] = {}

    def row(self, pairs: tuple[Any, ...]) -> list[Figure]:
        sources, known = SOURCE_OF_CODE, self.known
        unknown = Source.UNAVAILABLE
        figures = [
            Figure(pairs[i], sources.get(pairs[i + 1], unknown))
            for i in range(0, 2 * self.SHARED_FROM, 2)
        ]
        for i in range(2 * self.SHARED_FROM, len(pairs), 2):
            key = (pairs[i], pairs[i + 1])
            found = known.get(key)
            if found is None:
                found = known[key] = Figure(key[0], sources.get(key[1], unknown))
            figures.append(found)
        return figures


def _usage(row: tuple[Any, ...], violations: tuple[Violation, ...], figure: _Figures) -> Usage:
    (duration, cgroup, memory_limit, cpu_quota, pids_limit, interval, sampling) = row[:7]
    f = figure.row(row[7:])
    return Usage(
        duration=duration,
        cgroup_version=cgroup,
        memory_peak=f[0],
        memory_limit=memory_limit,
        cpu_average=f[1],
        cpu_p95=f[2],
        cpu_quota=cpu_quota,
        throttled_share=f[3],
        tasks_peak=f[4],
        pids_limit=pids_limit,
        fork_failures=f[5],
        oom_kills=f[6],
        open_files=(f[7], f[8], f[9]),
        threads=(f[10], f[11], f[12]),
        violations=violations,
        interval=interval,
        sampling_cpu_seconds=sampling,
    )
