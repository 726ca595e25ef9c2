"""What `policy report` costs over a large history (issue 11: under 2 s over 100,000 launches).

A history of N launches (default 100,000), all in the last 7 days, is generated once into a
temporary file through the store's own schema: 4 profiles, 200 commands, a usage summary for
each launch, violations for one in 10, three JUnit test cases for one in 5, and 60 samples for
the latest 50. Then, alternating round by round:

  T  `policy report --history H` (the table, the default window of 7 days: every launch)
  J  `policy report --history H --format json`
  H  `policy report --history H --format html --output FILE` (with the plots: matplotlib)
  B  the baseline, what a report without SQL aggregation would start with: every launch's
     typed usage summary loaded into Python (`SqliteStore.usages`), in a fresh interpreter

and in-process: `queries.build` alone (no interpreter start-up), and the store's read side
(`launches`, `usages`, `test_cases`) that tests/history/test_sqlite.py used to time.

    python bench/usage_report.py                  # 100,000 launches, 5 rounds
    python bench/usage_report.py --launches 20000 --rounds 2   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    POLICY,
    emit,
    log,
    paired_ratio,
    policy_cache_dir,
    run_proc,
    summary,
    target,
)

TARGET_SECONDS = 2.0
PROFILES = ("isolation", "full", "parallel", "fast")
DAY = 86_400.0
LOAD_ALL = (
    "import sys; from pathlib import Path; from engine.history.sqlite import SqliteStore; "
    "print(len(SqliteStore(Path(sys.argv[1])).usages()))"
)


def generate(path: Path, launches: int) -> None:
    """`launches` launches of the last 7 days in a history file of the current schema."""
    from engine.history.sqlite import LAUNCH_FIELDS, SqliteStore

    SqliteStore(path).prune()  # creates the file with the current schema
    rng = random.Random(11)
    now = time.time()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        rows = []
        for i in range(launches):
            at = now - 7 * DAY * (1 - (i + 1) / (launches + 1))
            values = {
                "launch_id": f"bench-{i}", "time": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                time.gmtime(at)), "at": at, "host_user": "ci", "host": "runner",
                "engine": "unix:///var/run/docker.sock", "engine_version": "20.10.24",
                "cgroup_version": "2", "profile": PROFILES[i % 4], "digest": "sha256:d",
                "policy": "policies/base.toml", "image": "img", "image_id": "sha256:e",
                "command": json.dumps(["sh", "-c", f"make test-{i % 200}"]),
                "container_id": "c" * 64, "exit_code": int(i % 7 == 0),
                "outcome": "failed" if i % 7 == 0 else "passed",
                "duration": round(1 + rng.random() * 30, 3), "left_behind": 0,
                "git_commit": "a" * 40, "samples_kept": int(i >= launches - 50),
            }  # fmt: skip
            rows.append([i + 1, *(values[f] for f in LAUNCH_FIELDS)])
        marks = ", ".join("?" * (len(LAUNCH_FIELDS) + 1))
        conn.executemany(
            f"INSERT INTO launches (id, {', '.join(LAUNCH_FIELDS)}) VALUES ({marks})", rows
        )
        _summaries(conn, launches, rng)
    conn.close()


def _summaries(conn: sqlite3.Connection, launches: int, rng: random.Random) -> None:
    """Each launch's usage summary, and the violations, test cases and samples of some."""
    from engine.history.sqlite import SAMPLE_FIELDS, USAGE_FIELDS

    usage = []
    for i in range(launches):
        limit = (512, 1024, 2048, 4096)[i % 4] << 20
        figures = {
            "memory_peak": limit * rng.uniform(0.05, 0.98), "cpu_average": rng.random() * 2,
            "cpu_p95": rng.random() * 2, "throttled_share": rng.random() * 0.5,
            "tasks_peak": 12, "fork_failures": 0, "oom_kills": 0, "open_files_start": 3,
            "open_files_peak": 9, "open_files_end": 3, "threads_start": 1,
            "threads_peak": 4, "threads_end": 1,
        }  # fmt: skip
        value: dict[str, Any] = {
            "duration": 10.0, "cgroup_version": "2", "memory_limit": limit,
            "cpu_quota": 2.0, "pids_limit": 256, "interval": 1.0,
            "sampling_cpu_seconds": 0.002,
            **figures, **{f"{k}_source": 1 for k in figures},
        }  # fmt: skip
        usage.append([i + 1, *(value[f] for f in USAGE_FIELDS)])
    conn.executemany(f"INSERT INTO usage VALUES (?{', ?' * len(USAGE_FIELDS)})", usage)
    conn.executemany(
        "INSERT INTO violations VALUES (?, 0, 'memory-near-limit', 'warning', '90%', 'x')",
        ((i + 1,) for i in range(0, launches, 10)),
    )
    conn.executemany(
        "INSERT INTO test_cases VALUES (?, ?, 'junit.xml', 'suite', ?, ?, ?)",
        (
            (i + 1, k, f"test_{i % 50}_{k}", rng.random() * 5, "failed" if k == 2 else "passed")
            for i in range(0, launches, 5)
            for k in range(3)
        ),
    )
    conn.executemany(
        f"INSERT INTO samples VALUES (?, ?, ?{', ?' * len(SAMPLE_FIELDS)})",
        (
            (i + 1, s, float(s), (s + 1) << 20, s << 19, s * 0.8, 3, 5, 2)
            for i in range(launches - 50, launches)
            for s in range(60)
        ),
    )


def _timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `argv`."""
    done = run_proc(argv)
    if done.rc != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({done.rc}): {done.stderr[-2000:]}")
    return done.wall, done.cpu


def in_process(path: Path) -> dict[str, float]:
    from datetime import UTC, datetime, timedelta

    from engine.history.sqlite import SqliteStore
    from engine.report.usage.queries import build

    store = SqliteStore(path)
    week = datetime.now(UTC) - timedelta(days=7)
    took: dict[str, float] = {}
    for name, call in (
        ("build", lambda: build(store, week)),
        ("build_with_plots", lambda: build(store, week, plots=True)),
        ("read_launches", lambda: store.launches(since=week)),
        ("read_usages", lambda: store.usages(since=week)),
        ("read_test_cases", lambda: store.test_cases(since=week)),
    ):
        started = time.perf_counter()
        call()
        took[name] = round(time.perf_counter() - started, 4)
    return took


def run(launches: int = 100_000, rounds: int = 5) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-usage-report-") as tmp:
        path = Path(tmp) / "history.sqlite"
        started = time.perf_counter()
        generate(path, launches)
        generated = time.perf_counter() - started
        log(f"usage report: {launches} launches generated in {generated:.1f}s")
        page = Path(tmp) / "report.html"
        variants = {
            "table": [*POLICY, "report", "--history", str(path)],
            "json": [*POLICY, "report", "--history", str(path), "--format", "json"],
            "html": [*POLICY, "report", "--history", str(path), "--format", "html",
                     "--output", str(page)],
            "load_all": [sys.executable, "-c", LOAD_ALL, str(path)],
        }  # fmt: skip
        _timed(variants["table"])  # warm the file's pages, untimed
        walls: dict[str, list[float]] = {k: [] for k in variants}
        cpus: dict[str, list[float]] = {k: [] for k in variants}
        for r in range(rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                wall, cpu = _timed(variants[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
            log(
                f"  round {r + 1}/{rounds}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in walls.items())
            )
        inside = in_process(path)
        size = path.stat().st_size
    median = {k: summary(v)["median"] for k, v in walls.items()}
    return {
        "launches": launches,
        "rounds": rounds,
        "file_mib": round(size / 2**20, 1),
        "walls": {k: summary(v) for k, v in walls.items()},
        # The CPU the command itself used: what the machine's other load does not inflate.
        "cpus": {k: summary(v) for k, v in cpus.items()},
        "ratios_vs_load_all": {k: paired_ratio(walls[k], walls["load_all"]) for k in variants},
        "targets": {k: target(median[k], TARGET_SECONDS) for k in ("table", "json", "html")},
        "in_process_s": inside,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", type=Path, help="also write the results (JSON) here")
    args = parser.parse_args(argv)
    with policy_cache_dir():
        results = run(args.launches, args.rounds)
    emit(results, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
