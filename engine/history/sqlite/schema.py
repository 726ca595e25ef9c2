"""The history file's schema and how it is opened: the tables, `MIGRATIONS` from any earlier
`PRAGMA user_version` to the current one, WAL and the busy timeout, and every sqlite3 failure as
a `HistoryError` that names the file and what to do (damaged, foreign, newer, locked).

`sqlite3` is imported by the first call that opens the file, not by importing this module.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from engine.history.errors import HistoryError
from engine.monitor.figures import Source

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
SOURCE_OF_CODE = {code: source for source, code in SOURCE_CODES.items()}

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


class Database:
    """One history file: `open` gives a connection with the schema current."""

    def __init__(self, path: Path, busy_timeout: float = BUSY_TIMEOUT) -> None:
        self.path = path
        self.busy_timeout = busy_timeout

    @contextlib.contextmanager
    def open(self, doing: str, create: bool = True) -> Iterator[sqlite3.Connection | None]:
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


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One `BEGIN IMMEDIATE` transaction: committed whole, or rolled back on any failure."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(Exception):
            conn.execute("ROLLBACK")
        raise
