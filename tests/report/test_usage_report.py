"""`policy report`'s figures over a synthetic history whose every number is worked out by hand
below: the rankings, the last run against the window's median (+20% flagged), the right-size
hint (p99 peak x 1.25), the window and profile filters, the formats, pruning, and bad input
(options, --since values, a corrupt file) as clear errors with exit 2.

Profile `p` (limit 100 MiB), command A, five runs in this order (the last is the latest):
  duration 10, 20, 30, 40, 50 s; memory peak 10, 20, 30, 40, 90 MiB; throttled 0.1 but 0.6 once;
  the last run has one memory-near-limit warning.
  -> duration p95: rank ceil(0.95 x 5) = 5 -> 50 s; median 30 s, last 50 s: +67%, flagged;
     memory median 30 MiB, last 90 MiB: +200%, flagged; largest memory share 0.9.
Profile `p`, command B, four runs: duration 10, 10, 12, 11 s; memory 50 MiB each; throttled
  0.3; two runs with an oom error each.
  -> p95: rank ceil(0.95 x 4) = 4 -> 12 s; median of 10, 10, 11, 12 is (10 + 11) / 2 = 10.5 s,
     last 11 s: +4.8%, not flagged; memory median = last = 50 MiB.
Profile p right size: peaks 10, 20, 30, 40, 50, 50, 50, 50, 90 MiB, p99 rank ceil(8.91) = 9
  -> 90 MiB; x 1.25 = 112.5 MiB above the 100 MiB declared: raise.
Profile `q` (limit 1 GiB), twenty runs of C peaking at 1..20 MiB: p99 rank ceil(19.8) = 20 ->
  20 MiB; x 1.25 = 25 MiB, under half of 1 GiB: lower. Its memory: last 20 MiB against the
  median (10 + 11) / 2 = 10.5 MiB: flagged.
Test case suite.t_slow (in A's runs 2..5): 1, 2, 3, 10 s, the third failed: p95 10 s; median
  (2 + 3) / 2 = 2.5 s, last 10 s: flagged; one failure.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.history.interface import LaunchRecord
from engine.history.sqlite import SqliteStore
from engine.monitor.figures import Figure, Severity, Source, Usage, Violation
from engine.report.usage.queries import build
from engine.report.usage.window import parse_since
from policy.errors import UsageError
from tests.helpers import cli, has_traceback

MIB = 1 << 20
NOW = datetime.now(UTC)
NEAR = Violation("memory-near-limit", Severity.WARNING, "90% of 100 MiB", "peak 90 MiB")
OOM = Violation("oom", Severity.ERROR, "memory 100 MiB", "1 OOM kill")


def usage(peak_mib: float, limit: int, throttled: float, *violations: Violation) -> Usage:
    return Usage(
        duration=1.0,
        cgroup_version="2",
        memory_peak=Figure(peak_mib * MIB, Source.KERNEL),
        memory_limit=limit,
        cpu_average=Figure(0.5, Source.KERNEL),
        cpu_p95=Figure(0.9, Source.SAMPLED),
        cpu_quota=1.0,
        throttled_share=Figure(throttled, Source.KERNEL),
        tasks_peak=Figure(3, Source.KERNEL),
        pids_limit=64,
        fork_failures=Figure(0, Source.KERNEL),
        oom_kills=Figure(0, Source.KERNEL),
        open_files=(Figure.unavailable(),) * 3,
        threads=(Figure.unavailable(),) * 3,
        violations=violations,
    )


def record(
    when: datetime, profile: str, command: list[str], duration: float, **more: object
) -> LaunchRecord:
    return LaunchRecord.model_validate(
        {
            "time": when.isoformat(timespec="milliseconds"),
            "profile": profile,
            "digest": "sha256:" + "d" * 64,
            "image": "img",
            "container_id": "c" * 64,
            "launch_id": f"{profile}-{when.timestamp()}",
            "command": command,
            "outcome": "passed",
            "policy": "policies/base.toml",
            "exit_code": 0,
            "duration": duration,
            **more,
        }
    )


A, B, C = ["sh", "-c", "make a"], ["make", "b"], ["make", "c"]
JUNIT = '<testsuite><testcase classname="suite" name="t_slow" time="{t}">{f}</testcase></testsuite>'


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> SqliteStore:
    root = tmp_path_factory.mktemp("report")
    store = SqliteStore(root / "history.sqlite", sample_days=None)
    results = root / "results"
    results.mkdir()
    start = NOW - timedelta(days=3)
    a = [(10, 10, 0.1), (20, 20, 0.6), (30, 30, 0.1), (40, 40, 0.1), (50, 90, 0.1)]
    tests = [None, (1, ""), (2, ""), (3, "<failure/>"), (10, "")]
    b = [10, 10, 12, 11]
    for i, (duration, peak, throttled) in enumerate(a):
        extra: dict[str, object] = {}
        if tests[i] is not None:
            seconds, failure = tests[i]  # type: ignore[misc]
            (results / "junit.xml").write_text(JUNIT.format(t=seconds, f=failure))
            extra["results"] = (str(results),)
        violations = (NEAR,) if i == 4 else ()
        when = start + timedelta(hours=2 * i)
        summary = usage(peak, 100 * MIB, throttled, *violations)
        store.append(record(when, "p", A, duration, usage=summary, **extra))
        if tests[i] is not None:
            (results / "junit.xml").unlink()
    for i, duration in enumerate(b):
        violations = (OOM,) if i < 2 else ()
        when = start + timedelta(hours=2 * i + 1)
        store.append(record(when, "p", B, duration, usage=usage(50, 100 * MIB, 0.3, *violations)))
    for i in range(20):
        when = start + timedelta(minutes=i)
        store.append(record(when, "q", C, 1.0, usage=usage(i + 1, 1 << 30, 0.0)))
    # Outside the window: would top every ranking if counted.
    old = usage(99, 100 * MIB, 0.99, OOM, OOM, OOM)
    store.append(record(NOW - timedelta(days=30), "p", A, 999.0, usage=old))
    return store


def test_rankings_by_memory_share_throttling_duration_p95_and_violations(
    history: SqliteStore,
) -> None:
    report = build(history, NOW - timedelta(days=7))
    assert report.launches == 5 + 4 + 20
    memory = [(o.subject.profile, o.subject.name, o.runs, round(o.value, 9)) for o in report.memory]
    assert memory == [
        ("p", "sh -c 'make a'", 5, 0.9),
        ("p", "make b", 4, 0.5),
        ("q", "make c", 20, round(20 / 1024, 9)),
    ]
    assert [(o.subject.name, o.value) for o in report.throttling][:2] == [
        ("sh -c 'make a'", 0.6),
        ("make b", 0.3),
    ]
    duration = [(o.subject.kind, o.subject.name, o.runs, o.value) for o in report.duration]
    assert duration[:3] == [
        ("command", "sh -c 'make a'", 5, 50.0),
        ("command", "make b", 4, 12.0),
        ("test", "suite.t_slow", 4, 10.0),
    ]
    violations = [
        (o.subject.kind, o.subject.name, o.runs, o.value, o.detail) for o in report.violations
    ]
    assert violations == [
        ("command", "make b", 2, 2, "oom"),
        ("command", "sh -c 'make a'", 1, 1, "memory-near-limit"),
        ("test", "suite.t_slow", 1, 1, "failed"),
    ]


def test_the_last_run_against_the_median_is_flagged_above_20_percent(
    history: SqliteStore,
) -> None:
    report = build(history, NOW - timedelta(days=7))
    trends = {(t.subject.name, t.figure): t for t in report.trends}
    a = trends[("sh -c 'make a'", "duration")]
    assert (a.runs, a.last, a.median, a.flagged) == (5, 50.0, 30.0, True)
    assert a.ratio == pytest.approx(50 / 30)
    memory = trends[("sh -c 'make a'", "memory")]
    assert (memory.last, memory.median, memory.flagged) == (90 * MIB, 30 * MIB, True)
    b = trends[("make b", "duration")]
    assert (b.runs, b.last, b.median, b.flagged) == (4, 11.0, 10.5, False)
    assert trends[("make b", "memory")].flagged is False
    test = trends[("suite.t_slow", "duration")]
    assert (test.runs, test.last, test.median, test.flagged) == (4, 10.0, 2.5, True)
    c = trends[("make c", "memory")]
    assert (c.last, c.median, c.flagged) == (20 * MIB, 10.5 * MIB, True)
    # The flagged ones first, the largest change first: 10 / 2.5, 90 / 30, 20 / 10.5, 50 / 30.
    flagged = [(t.subject.name, t.figure) for t in report.trends if t.flagged]
    assert flagged == [
        ("suite.t_slow", "duration"),
        ("sh -c 'make a'", "memory"),
        ("make c", "memory"),
        ("sh -c 'make a'", "duration"),
    ]
    assert [t.flagged for t in report.trends[:4]] == [True] * 4


def test_the_right_size_hint_is_the_p99_peak_times_1_25(history: SqliteStore) -> None:
    report = build(history, NOW - timedelta(days=7))
    hints = {r.profile: r for r in report.right_size}
    p, q = hints["p"], hints["q"]
    assert (p.runs, p.p99_peak, p.declared) == (9, 90 * MIB, 100 * MIB)
    assert (p.suggested, p.verdict) == (112.5 * MIB, "raise")
    assert (q.runs, q.p99_peak, q.suggested, q.verdict) == (20, 20 * MIB, 25 * MIB, "lower")


def test_the_window_and_the_profile_filter(history: SqliteStore) -> None:
    month = build(history, NOW - timedelta(days=60))
    assert month.launches == 30
    assert month.memory[0].value == pytest.approx(0.99) and month.duration[0].value == 999.0
    only_q = build(history, NOW - timedelta(days=7), "q")
    assert only_q.launches == 20 and {o.subject.profile for o in only_q.memory} == {"q"}
    assert [r.profile for r in only_q.right_size] == ["q"]
    assert build(history, NOW - timedelta(days=7), "nobody").launches == 0


def test_the_cli_formats(history: SqliteStore) -> None:
    code, out, err = cli("report", "--history", str(history.path), "--format", "json")
    assert code == 0, err
    document = json.loads(out)
    assert document["schema"] == "container-policy/usage-report/v1"
    assert document["launches"] == 29
    assert document["worst"]["memory"][0]["value"] == pytest.approx(0.9)
    p = next(r for r in document["right_size"] if r["profile"] == "p")
    assert (p["p99_peak"], p["suggested"], p["verdict"]) == (90 * MIB, round(112.5 * MIB), "raise")
    code, out, err = cli("report", "--history", str(history.path), "--profile", "p")
    assert code == 0, err
    assert "Right size" in out and "112.5 MiB" in out and "raise" in out
    assert "+67%" in out and "FLAG" in out


def test_since_spans_and_dates() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("1d12h", now) == now - timedelta(hours=36)
    assert parse_since("2w", now) == now - timedelta(days=14)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2026-11-25", now) == datetime(2026, 11, 25, tzinfo=UTC)
    assert parse_since("2026-11-25T08:00+01:00", now) == datetime(2026, 11, 25, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("since", "message"),
    [
        ("yesterday", "expected a span back from now"),
        ("7x", "expected a span back from now"),
        ("-7d", "expected a span back from now"),
        ("0d", "more than nothing"),
        ("2099-01-01", "in the future"),
        ("", "expected a span back from now"),
    ],
)
def test_bad_since_values_are_usage_errors(since: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=message):
        parse_since(since)
    code, _, err = cli("report", "--history", str(tmp_path / "h.sqlite"), f"--since={since}")
    assert code == 2 and message in err and not has_traceback(err)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--format", "pdf"], "invalid Format value: 'pdf'"),
        (["--top", "0"], "must be between 1 and 256"),
        (["--keep-launches", "-1", "--prune"], "must be between 0 and 36600 days"),
        (["--keep-samples", "3"], "--keep-samples only applies with --prune"),
        (["--output", "/nonexistent/dir/r.html"], "directory /nonexistent/dir does not exist"),
    ],
)
def test_bad_options_are_usage_errors(
    options: list[str], message: str, history: SqliteStore
) -> None:
    code, out, err = cli("report", "--history", str(history.path), *options)
    assert code == 2, out
    assert message in err and not has_traceback(err)


def test_a_missing_named_history_is_an_error_and_the_default_one_an_empty_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = cli("report", "--history", str(tmp_path / "typo.sqlite"))
    assert code == 2 and "no such file" in err
    monkeypatch.setenv("POLICY_HISTORY", str(tmp_path / "fresh.sqlite"))
    code, out, err = cli("report")
    assert code == 0 and "no launch history yet" in err and "0 launch(es)" in out
    assert not (tmp_path / "fresh.sqlite").exists()  # reading creates nothing


@pytest.mark.parametrize(
    "content", [b"not a database\n" * 300, b"SQLite format 3\x00" + b"\xff" * 4000]
)
def test_a_corrupt_history_is_a_clear_error(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    path.write_bytes(content)
    for options in ([], ["--format", "html"], ["--prune"]):
        code, out, err = cli("report", "--history", str(path), *options)
        assert code == 2, out
        assert str(path) in err and "not a readable SQLite database" in err, err
        assert not has_traceback(err)


def test_prune_keeps_summaries_longer_than_samples(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "h.sqlite", sample_days=None)
    with_samples = usage(10, 100 * MIB, 0.0)
    from dataclasses import replace

    from engine.monitor.figures import Sample

    with_samples = replace(with_samples, samples=(Sample(t=0.0, memory_bytes=1), Sample(t=1.0)))
    for days in (1, 20, 200):
        store.append(record(NOW - timedelta(days=days), "p", A, 1.0, usage=with_samples))
    code, _, err = cli(
        "report", "--history", str(store.path), "--prune", "--keep-samples", "14",
        "--keep-launches", "90",
    )  # fmt: skip
    assert code == 0, err
    assert "4 sample(s) older than 14 days, 1 launch(es) older than 90 days" in err
    launches = store.launches()
    assert len(launches) == 2
    assert [len(store.samples(x.row)) for x in launches] == [0, 2]  # oldest first


def test_hostile_names_from_the_tests_cannot_script_the_page_or_forge_a_line(
    tmp_path: Path,
) -> None:
    """Test names come from JUnit XML the tests wrote, commands from the user: in the HTML page
    they are text (escaped, and the page's policy allows no script anyway); in the table a
    control character is an escape, so no name can forge or recolour a line."""
    results = tmp_path / "results"
    results.mkdir()
    (results / "junit.xml").write_text(
        '<testsuite><testcase classname="c" name="&lt;script&gt;alert(1)&lt;/script&gt;" '
        'time="1"/></testsuite>'
    )
    store = SqliteStore(tmp_path / "h.sqlite", sample_days=None)
    command = ["sh", "-c", "echo '<img src=x onerror=alert(1)>'\nforged line \x1b[31mred"]
    for _ in range(2):
        store.append(
            record(NOW, "p", command, 1.0, usage=usage(10, 100 * MIB, 0.0), results=(str(results),))
        )
    code, out, err = cli("report", "--history", str(store.path), "--format", "html")
    assert code == 0, err
    assert "<script>alert" not in out and "<img src=x" not in out
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out and "&lt;img src=x" in out
    assert "default-src 'none'" in out
    code, out, err = cli("report", "--history", str(store.path))
    assert code == 0, err
    assert "c.<script>alert(1)</script>" in out  # as text: a terminal runs no script
    assert "\x1b" not in out and "red" in out
    assert not any(line.startswith("forged line") for line in out.splitlines())
