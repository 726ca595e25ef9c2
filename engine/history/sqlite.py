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
`sqlite3` is imported by the first call that opens the file, not by importing this module.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.history.interface import HistoryError, LaunchRecord
from engine.history.junit import JUnitCase
from engine.monitor.figures import Figure, Sample, Severity, Source, Usage, Violation

if TYPE_CHECKING:
    import sqlite3

HISTORY_ENV = "POLICY_HISTORY"
SAMPLE_DAYS_ENV = "POLICY_HISTORY_SAMPLE_DAYS"
DEFAULT_SAMPLE_DAYS = 14.0
BUSY_TIMEOUT = 10.0  # seconds a writer waits for another's transaction
APPLICATION_ID = 0x43504F4C  # "CPOL": this file is a container-policy history
DAY = 86_400.0


def default_path() -> Path:
    """$POLICY_HISTORY, else $XDG_STATE_HOME (or ~/.local/state)/container-policy/history.sqlite."""
    if os.environ.get(HISTORY_ENV):
        return Path(os.environ[HISTORY_ENV])
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "container-policy" / "history.sqlite"


def default_sample_days() -> float:
    """$POLICY_HISTORY_SAMPLE_DAYS (a number of days, 0 keeps none), else 14."""
    text = os.environ.get(SAMPLE_DAYS_ENV, "")
    try:
        days = float(text)
    except ValueError:
        return DEFAULT_SAMPLE_DAYS
    return days if 0 <= days < 1e6 else DEFAULT_SAMPLE_DAYS


# The usage summary's figures, each stored as two columns: NAME (the value) and NAME_source.
FIGURES = (
    "memory_peak",
    "cpu_average",
    "cpu_p95",
    "throttled_share",
    "tasks_peak",
    "fork_failures",
    "oom_kills",
    "open_files_start",
    "open_files_peak",
    "open_files_end",
    "threads_start",
    "threads_peak",
    "threads_end",
)
SAMPLE_FIELDS = (
    "memory_bytes",
    "working_set_bytes",
    "cpu_seconds",
    "tasks",
    "open_files",
    "threads",
)
LAUNCH_FIELDS = (
    "launch_id",
    "time",
    "at",
    "host_user",
    "host",
    "engine",
    "engine_version",
    "cgroup_version",
    "profile",
    "digest",
    "policy",
    "image",
    "image_id",
    "command",
    "container_id",
    "exit_code",
    "outcome",
    "duration",
    "left_behind",
    "git_commit",
    "samples_kept",
)
USAGE_FIELDS = (
    "duration",
    "cgroup_version",
    "memory_limit",
    "cpu_quota",
    "pids_limit",
    "interval",
    "sampling_cpu_seconds",
    *(f"{name}{suffix}" for name in FIGURES for suffix in ("", "_source")),
)

_FIGURE_COLUMNS = ",\n  ".join(
    f"{n} REAL, {n}_source INTEGER NOT NULL REFERENCES sources(code)" for n in FIGURES
)
# A figure's source as a small integer: a report reads 1.3 million of them, and Python shares
# small ints where it would build a string each. The `sources` table says what each code means.
SOURCE_CODES = {Source.UNAVAILABLE: 0, Source.KERNEL: 1, Source.SAMPLED: 2, Source.STATS_API: 3}
_SOURCES = {code: source for source, code in SOURCE_CODES.items()}

# Each step is a list of statements; step i takes a file from user_version i to i + 1.
MIGRATIONS: list[list[str]] = [
    # 1: the tables
    [
        f"PRAGMA application_id = {APPLICATION_ID}",
        "CREATE TABLE sources (code INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "INSERT INTO sources VALUES "
        + ", ".join(f"({code}, '{source.value}')" for source, code in SOURCE_CODES.items()),
        """CREATE TABLE launches (
  id INTEGER PRIMARY KEY,
  launch_id TEXT NOT NULL,
  time TEXT NOT NULL,            -- ISO 8601 in UTC: when the run ended and was recorded
  at REAL NOT NULL,              -- the same in seconds since the epoch, what windows compare
  host_user TEXT, host TEXT, engine TEXT, engine_version TEXT, cgroup_version TEXT,
  profile TEXT NOT NULL, digest TEXT NOT NULL, policy TEXT,
  image TEXT NOT NULL, image_id TEXT,
  command TEXT NOT NULL,         -- a JSON array
  container_id TEXT NOT NULL,
  exit_code INTEGER, outcome TEXT NOT NULL, duration REAL,
  left_behind INTEGER NOT NULL DEFAULT 0,
  git_commit TEXT,
  samples_kept INTEGER NOT NULL DEFAULT 0  -- 1 while its samples are stored
)""",
        f"""CREATE TABLE usage (
  launch INTEGER PRIMARY KEY REFERENCES launches(id) ON DELETE CASCADE,
  duration REAL NOT NULL, cgroup_version TEXT,
  memory_limit INTEGER, cpu_quota REAL, pids_limit INTEGER,
  interval REAL NOT NULL, sampling_cpu_seconds REAL,
  {_FIGURE_COLUMNS}
)""",
        """CREATE TABLE violations (
  launch INTEGER NOT NULL REFERENCES launches(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  kind TEXT NOT NULL, severity TEXT NOT NULL, threshold TEXT NOT NULL, evidence TEXT NOT NULL,
  PRIMARY KEY (launch, position)
) WITHOUT ROWID""",
        """CREATE TABLE samples (
  launch INTEGER NOT NULL REFERENCES launches(id) ON DELETE CASCADE,
  position INTEGER NOT NULL, t REAL NOT NULL,
  memory_bytes INTEGER, working_set_bytes INTEGER, cpu_seconds REAL,
  tasks INTEGER, open_files INTEGER, threads INTEGER,
  PRIMARY KEY (launch, position)
) WITHOUT ROWID""",
        """CREATE TABLE test_cases (
  launch INTEGER NOT NULL REFERENCES launches(id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  file TEXT NOT NULL, classname TEXT, name TEXT NOT NULL, time REAL, outcome TEXT NOT NULL,
  PRIMARY KEY (launch, position)
) WITHOUT ROWID""",
    ],
    # 2: what the read side's windows and the pruning on every write look up
    [
        "CREATE INDEX launches_at ON launches(at)",
        "CREATE INDEX launches_profile_at ON launches(profile, at)",
        "CREATE INDEX launches_with_samples ON launches(at) WHERE samples_kept = 1",
        "CREATE INDEX launches_launch_id ON launches(launch_id)",
    ],
]
VERSION = len(MIGRATIONS)


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
    def name(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqliteStore) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # -- opening, migrating, errors -------------------------------------------------------------

    @contextlib.contextmanager
    def _open(self, doing: str, create: bool = True) -> Iterator[sqlite3.Connection | None]:
        """A connection with the schema current, closed afterwards; every sqlite3 failure as a
        `HistoryError`. None when `create` is false and there is no file yet."""
        import sqlite3

        if not create and not self.path.exists():
            yield None
            return
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"history {self.path}: cannot open it: {exc}") from None
        try:
            self._prepare(conn)
            yield conn
        except sqlite3.Error as exc:
            raise self._error(exc, doing) from None
        finally:
            conn.close()

    def _error(self, exc: Exception, doing: str) -> HistoryError:
        code = getattr(exc, "sqlite_errorname", "")
        if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return HistoryError(
                f"history {self.path}: cannot {doing}: the database is locked (another process "
                f"held it for more than {self.busy_timeout:g}s); try again, or point --history "
                "elsewhere"
            )
        if code.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
            return HistoryError(
                f"history {self.path}: cannot {doing}: the file is not a readable SQLite "
                f"database ({exc}); move it aside (a new one is then started) or point "
                "--history elsewhere"
            )
        return HistoryError(f"history {self.path}: cannot {doing}: {exc}")

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: once per file
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == VERSION:
            return
        self._check_ours(conn, version)
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another migrated?
            for step in MIGRATIONS[version:]:
                for statement in step:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            raise

    def _check_ours(self, conn: sqlite3.Connection, version: int) -> None:
        application = conn.execute("PRAGMA application_id").fetchone()[0]
        foreign = application not in (0, APPLICATION_ID) or (
            version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
        )
        if foreign:
            raise HistoryError(
                f"history {self.path}: the file is an SQLite database of another program; "
                "point --history elsewhere"
            )
        if version > VERSION:
            raise HistoryError(
                f"history {self.path}: written by a newer version of container-policy "
                f"(schema {version}, this one reads up to {VERSION}); upgrade, or point "
                "--history elsewhere"
            )

    # -- writing ---------------------------------------------------------------------------------

    def append(self, record: LaunchRecord) -> None:
        at = _epoch(record.time)
        cases = self._test_cases(record, at)
        usage = record.usage_summary
        with self._open("write the launch") as conn:
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._insert(conn, record, at, usage, cases)
                if self.sample_days is not None:
                    self._prune_samples(conn, time.time() - self.sample_days * DAY)
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
                raise

    def _test_cases(self, record: LaunchRecord, at: float) -> list[JUnitCase]:
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
        self,
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

    def _prune_samples(self, conn: sqlite3.Connection, before: float) -> int:
        old = "SELECT id FROM launches WHERE samples_kept = 1 AND at < ?"
        removed = conn.execute(f"DELETE FROM samples WHERE launch IN ({old})", (before,)).rowcount
        conn.execute(
            "UPDATE launches SET samples_kept = 0 WHERE samples_kept = 1 AND at < ?", (before,)
        )
        return int(removed)

    def prune(
        self, sample_days: float | None = DEFAULT_SAMPLE_DAYS, launch_days: float | None = None
    ) -> Pruned:
        """Remove the samples of launches older than `sample_days` days and, if `launch_days`
        is given, launches older than that with everything of theirs. One transaction."""
        now = time.time()
        with self._open("prune") as conn:
            assert conn is not None
            conn.execute("BEGIN IMMEDIATE")
            try:
                samples = (
                    0 if sample_days is None else self._prune_samples(conn, now - sample_days * DAY)
                )
                launches = 0
                if launch_days is not None:
                    launches = conn.execute(
                        "DELETE FROM launches WHERE at < ?", (now - launch_days * DAY,)
                    ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.execute("ROLLBACK")
                raise
        return Pruned(samples=samples, launches=launches)

    # -- reading ---------------------------------------------------------------------------------

    def records(self) -> Iterator[LaunchRecord]:
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
        columns = ", ".join(f"l.{c}" for c in LAUNCH_FIELDS if c not in ("time", "samples_kept"))
        rows = self._select(
            f"SELECT l.id, {columns} FROM launches l", since, profile, "ORDER BY l.at, l.id"
        )
        commands: dict[str, tuple[str, ...]] = {}  # one parse per distinct command
        with _building():
            return [self._launch(r, commands) for r in rows]

    @staticmethod
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

    def usages(self, since: datetime | None = None, profile: str | None = None) -> dict[int, Usage]:
        """The usage summary of each launch of the window that has one, by row, with its
        violations (its samples: `samples(row)`)."""
        violations = self.violations(since, profile)
        rows = self._select(
            f"SELECT u.launch, {', '.join(f'u.{c}' for c in USAGE_FIELDS)} "  # as `_usage` reads
            "FROM launches l JOIN usage u ON u.launch = l.id",
            since,
            profile,
        )
        figure = _Figures()
        none: tuple[Violation, ...] = ()
        with _building():
            return {r[0]: _usage(r[1:], violations.get(r[0], none), figure) for r in rows}

    def violations(
        self, since: datetime | None = None, profile: str | None = None
    ) -> dict[int, tuple[Violation, ...]]:
        """The violations of each launch of the window that had any, by row, in order."""
        found: dict[int, list[Violation]] = {}
        rows = self._select(
            "SELECT v.launch, v.kind, v.severity, v.threshold, v.evidence "
            "FROM launches l JOIN violations v ON v.launch = l.id",
            since,
            profile,
            "ORDER BY v.launch, v.position",
        )
        for row, kind, severity, threshold, evidence in rows:
            found.setdefault(row, []).append(
                Violation(kind, Severity(severity), threshold, evidence)
            )
        return {row: tuple(vs) for row, vs in found.items()}

    def test_cases(
        self, since: datetime | None = None, profile: str | None = None
    ) -> dict[int, tuple[JUnitCase, ...]]:
        """The JUnit test cases of each launch of the window that left any, by row."""
        found: dict[int, list[JUnitCase]] = {}
        rows = self._select(
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

    def samples(self, row: int) -> tuple[Sample, ...]:
        """The samples of one launch (none once pruned)."""
        with self._open("read the history", create=False) as conn:
            if conn is None:
                return ()
            rows = conn.execute(
                f"SELECT t, {', '.join(SAMPLE_FIELDS)} FROM samples WHERE launch = ? "
                "ORDER BY position",
                (row,),
            ).fetchall()
        return tuple(Sample(*r) for r in rows)

    def _select(
        self, query: str, since: datetime | None, profile: str | None, order: str = ""
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
        with self._open("read the history", create=False) as conn:
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


class _Figures:
    """Builds the `Figure`s of many rows. A report over 100,000 launches builds 1.3 million of
    them, so the counts (tasks, fork failures, OOM kills, files, threads), which repeat from
    launch to launch, share one instance per distinct (value, source); the measured amounts
    (memory, CPU, throttling) rarely repeat and are built directly."""

    SHARED_FROM = 4  # FIGURES[4:] are the counts

    def __init__(self) -> None:
        self.known: dict[tuple[float | None, int], Figure] = {}

    def row(self, pairs: tuple[Any, ...]) -> list[Figure]:
        sources, known = _SOURCES, self.known
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
