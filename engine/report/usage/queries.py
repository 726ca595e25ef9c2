"""`policy report`'s figures, aggregated in SQL over the SQLite history: each ranking, median
and percentile is one query over the window (window functions, no rows loaded into Python
objects beyond the few lines each answers). Percentiles are nearest-rank, as the run summary's
p95: the value at rank ceil(p x n) of the n sorted; the median is the middle value (the mean of
the two middle ones when n is even)."""

from __future__ import annotations

import contextlib
import json
import shlex
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from engine.history.sqlite import SAMPLE_FIELDS, SqliteStore
from engine.monitor.figures import Sample
from engine.report.usage.model import (
    DailyTrend,
    DayPoint,
    Offender,
    Plots,
    RightSize,
    Subject,
    Timeline,
    Trend,
    UsageReport,
)

if TYPE_CHECKING:
    import sqlite3

TOP = 10
BUCKET = 0.05  # the headroom histogram's buckets: 5% of the limit each

# The launches of the window with their summary (a launch without one has NULL figures), and
# the test cases of those launches, named "classname.name": two temporary tables, indexed for
# the percentiles, medians and last runs below (each an index walk rather than a sort).
_WINDOW = """CREATE TEMP TABLE w AS
  SELECT l.id, l.profile, l.command AS name, l.at, l.launch_id, l.duration, l.samples_kept,
         u.memory_peak, u.memory_limit, u.throttled_share
  FROM launches l LEFT JOIN usage u ON u.launch = l.id
  WHERE l.at >= :since AND l.at <= :until AND (:profile IS NULL OR l.profile = :profile)"""
_TESTS = """CREATE TEMP TABLE t AS
  SELECT w.id, w.profile, coalesce(c.classname || '.', '') || c.name AS name, w.at,
         c.time AS duration, c.outcome
  FROM w JOIN test_cases c ON c.launch = w.id"""
_INDEXES = (
    "CREATE INDEX temp.w_duration ON w(profile, name, duration)",
    "CREATE INDEX temp.w_memory ON w(profile, name, memory_peak)",
    "CREATE INDEX temp.w_profile_memory ON w(profile, memory_peak)",
    "CREATE INDEX temp.t_duration ON t(profile, name, duration)",
)


def build(
    store: SqliteStore,
    since: datetime,
    profile: str | None = None,
    *,
    until: datetime | None = None,
    plots: bool = False,
    top: int = TOP,
) -> UsageReport:
    """The report over launches recorded from `since` to `until` (now), of `profile` (all)."""
    end = until or datetime.now(UTC)
    window = {"since": since.timestamp(), "until": end.timestamp(), "profile": profile, "top": top}
    with store.database.open("read the history", create=False) as conn:
        if conn is None:
            return _empty(store, since, end, profile)
        q = _Query(conn, window)
        return UsageReport(
            history=store.name,
            since=since,
            until=end,
            profile=profile,
            launches=int(q.one("SELECT count(*) FROM w")[0]),
            memory=q.ranking(
                "max(memory_peak * 1.0 / memory_limit)",
                "memory_limit > 0 AND memory_peak IS NOT NULL",
            ),
            throttling=q.ranking("max(throttled_share)", "throttled_share IS NOT NULL"),
            duration=q.durations(),
            violations=q.violations(),
            trends=q.trends(),
            right_size=q.right_size(),
            plots=q.plots() if plots else None,
        )


def _empty(
    store: SqliteStore, since: datetime, until: datetime, profile: str | None
) -> UsageReport:
    return UsageReport(store.name, since, until, profile, 0, (), (), (), (), (), ())


def _subject(profile: str, kind: str, name: str) -> Subject:
    if kind == "command":
        with contextlib.suppress(ValueError, TypeError):  # not a JSON array: shown as stored
            name = shlex.join(json.loads(name)) or "(the image's command)"
    return Subject(profile, kind, name)


class _Query:
    """The window's temporary tables on one connection, and the queries over them."""

    def __init__(self, conn: sqlite3.Connection, window: dict[str, Any]) -> None:
        self.conn = conn
        self.top = window["top"]
        self._durations: tuple[Offender, ...] | None = None
        conn.execute("PRAGMA temp_store = MEMORY")
        # Room for the window's indexes while they are built (the default 2 MiB spills and
        # took the build of four indexes over 100,000 launches from 0.6 s to 1.1 s).
        conn.execute("PRAGMA temp.cache_size = -65536")
        conn.execute("PRAGMA main.cache_size = -16384")
        conn.execute(_WINDOW, window)
        conn.execute(_TESTS)
        for statement in _INDEXES:
            conn.execute(statement)

    def all(self, query: str, *parameters: Any, **named: Any) -> list[Any]:
        return self.conn.execute(query, named or parameters or {"top": self.top}).fetchall()

    def one(self, query: str) -> Any:
        return self.all(query)[0]

    def at_rank(
        self, table: str, column: str, group: tuple[str, ...], key: tuple[Any, ...], rank: int
    ) -> float:
        """The value at `rank` (1 is the least) of `column` in the group, through its index."""
        where = " AND ".join(f"{g} = ?" for g in group)
        (value,) = self.conn.execute(
            f"SELECT {column} FROM {table} WHERE {where} AND {column} IS NOT NULL "
            f"ORDER BY {column} LIMIT 1 OFFSET ?",
            (*key, rank - 1),
        ).fetchone()
        return float(value)

    def groups(self, table: str, column: str, group: tuple[str, ...]) -> list[Any]:
        """Each group's key and how many values of `column` it has."""
        by = ", ".join(group)
        return self.all(
            f"SELECT {by}, count({column}) FROM {table} WHERE {column} IS NOT NULL "
            f"GROUP BY {by} ORDER BY {by}"
        )

    def ranking(self, value: str, where: str) -> tuple[Offender, ...]:
        rows = self.all(
            f"SELECT profile, name, count(*), {value} AS v FROM w WHERE {where} "
            "GROUP BY profile, name ORDER BY v DESC, profile, name LIMIT :top"
        )
        return tuple(Offender(_subject(p, "command", n), runs, v) for p, n, runs, v in rows)

    def durations(self) -> tuple[Offender, ...]:
        """Duration p95 of each command and each test case, the longest first (asked twice
        with the plots: worked out once)."""
        if self._durations is None:
            self._durations = self._p95_durations()
        return self._durations

    def _p95_durations(self) -> tuple[Offender, ...]:
        found = [
            Offender(
                _subject(profile, kind, name),
                n,
                self.at_rank(table, "duration", ("profile", "name"), (profile, name), _rank(95, n)),
            )
            for table, kind in (("w", "command"), ("t", "test"))
            for profile, name, n in self.groups(table, "duration", ("profile", "name"))
        ]
        found.sort(key=lambda o: (-o.value, o.subject.profile, o.subject.kind, o.subject.name))
        return tuple(found[: self.top])

    def violations(self) -> tuple[Offender, ...]:
        """Commands by their violations (count), and test cases by their failures."""
        rows = self.all(
            """SELECT * FROM (
              SELECT w.profile, 'command', w.name, count(DISTINCT w.id), count(*),
                     group_concat(DISTINCT v.kind)
              FROM w JOIN main.violations v ON v.launch = w.id GROUP BY w.profile, w.name
              UNION ALL
              SELECT profile, 'test', name, count(*), count(*), 'failed'
              FROM t WHERE outcome IN ('failed', 'error') GROUP BY profile, name)
            ORDER BY 5 DESC, 1, 2, 3 LIMIT :top"""
        )
        return tuple(
            Offender(_subject(p, k, name), runs, count, ", ".join(sorted(kinds.split(","))))
            for p, k, name, runs, count, kinds in rows
        )

    def trends(self) -> tuple[Trend, ...]:
        """Each subject's last run against the window's median, the flagged ones first."""
        found: list[Trend] = []
        for table, kind, figure, column in (
            ("w", "command", "duration", "duration"),
            ("w", "command", "memory", "memory_peak"),
            ("t", "test", "duration", "duration"),
        ):
            # SQLite gives the other columns of the row where max() is found: the last run.
            last = {
                (p, name): x
                for p, name, _, x in self.all(
                    f"SELECT profile, name, max(at), {column} FROM {table} "
                    f"WHERE {column} IS NOT NULL GROUP BY profile, name"
                )
            }
            for profile, name, n in self.groups(table, column, ("profile", "name")):
                if n < 2:
                    continue
                key = (profile, name)
                middle = {(n + 1) // 2, (n + 2) // 2}  # one rank when n is odd, two when even
                median = sum(
                    self.at_rank(table, column, ("profile", "name"), key, r) for r in middle
                ) / len(middle)
                found.append(Trend(_subject(profile, kind, name), figure, n, last[key], median))
        found.sort(key=lambda t: (not t.flagged, -t.ratio, t.subject.profile, t.subject.name))
        return tuple(found[: self.top * 3])

    def right_size(self) -> tuple[RightSize, ...]:
        declared = {
            p: limit
            for p, _, limit in self.all(
                "SELECT profile, max(at), memory_limit FROM w WHERE memory_peak IS NOT NULL "
                "GROUP BY profile"
            )
        }
        return tuple(
            RightSize(
                profile,
                n,
                self.at_rank("w", "memory_peak", ("profile",), (profile,), _rank(99, n)),
                declared.get(profile),
            )
            for profile, n in self.groups("w", "memory_peak", ("profile",))
        )

    def plots(self) -> Plots:
        buckets = self.all(
            f"""SELECT min(CAST(memory_peak * 1.0 / memory_limit / {BUCKET} AS INTEGER),
                      {round(1 / BUCKET)}) AS b, count(*)
            FROM w WHERE memory_limit > 0 AND memory_peak IS NOT NULL GROUP BY b ORDER BY b"""
        )
        return Plots(
            timeline=self.timeline(),
            trend=self.daily(),
            headroom=tuple((b * BUCKET, count) for b, count in buckets),
            bucket=BUCKET,
        )

    def timeline(self) -> Timeline | None:
        """The samples of the run that came closest to its memory limit among those whose
        samples are still kept (the latest such run on a tie)."""
        rows = self.all(
            """SELECT w.id, w.launch_id, w.profile, w.name, w.at, u.memory_limit, u.cpu_quota,
                      u.pids_limit
            FROM w JOIN main.usage u ON u.launch = w.id WHERE w.samples_kept = 1
            ORDER BY coalesce(w.memory_peak * 1.0 / w.memory_limit, 0) DESC, w.at DESC
            LIMIT 1"""
        )
        if not rows:
            return None
        row, launch_id, profile, name, at, memory, quota, pids = rows[0]
        samples = tuple(
            Sample(*r)
            for r in self.all(
                f"SELECT t, {', '.join(SAMPLE_FIELDS)} FROM main.samples WHERE launch = ? "
                "ORDER BY position",
                row,
            )
        )
        when = datetime.fromtimestamp(at, UTC)
        subject = _subject(profile, "command", name)
        return Timeline(launch_id, subject, when, memory, quota, pids, samples)

    def daily(self) -> DailyTrend | None:
        """Day by day, the subject with the longest duration p95 (a test case if any)."""
        worst = self.durations()
        pick = next((o for o in worst if o.subject.kind == "test"), worst[0] if worst else None)
        if pick is None:
            return None
        table = "t" if pick.subject.kind == "test" else "w"
        names = {
            name
            for (name,) in self.all(
                f"SELECT DISTINCT name FROM {table} WHERE profile = ?", pick.subject.profile
            )
            if _subject(pick.subject.profile, pick.subject.kind, name) == pick.subject
        }
        name = min(names)
        rows = self.all(
            f"""SELECT date(at, 'unixepoch'), count(*), avg(duration), max(duration)
            FROM {table} WHERE profile = ? AND name = ? AND duration IS NOT NULL
            GROUP BY 1 ORDER BY 1""",
            pick.subject.profile,
            name,
        )
        return DailyTrend(pick.subject, tuple(DayPoint(*r) for r in rows))


def _rank(percent: int, n: int) -> int:
    """The nearest rank of the `percent`th percentile of n values: ceil(percent/100 x n)."""
    return max(1, (percent * n + 99) // 100)
