"""The SQLite history on the real engine: `policy run --history` writes one row with the
launch's fields, JUnit XML the tests write into the results mount lands as test cases, eight
workers write at once and every row is there, and a damaged history never costs the run its exit
code. Every test asserts no container of its own is left (`guard`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.history.junit import JUnitCase
from engine.history.sqlite import SqliteStore
from tests.helpers import TEST_IMAGE, Guard, cli, has_traceback, shipped_options

# Fixtures from tests/engine/conftest.py: a fresh logging state and a launch record per test.
pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]

COMMIT = "c0ffee" + "0" * 34
JUNIT = (
    '<testsuite name="s"><testcase classname="suite.a" name="test_one" time="0.25"/>'
    '<testcase classname="suite.a" name="test_two"><failure message="no"/></testcase>'
    "</testsuite>"
)


def git_layout(project: Path) -> None:
    """`project` as a git checkout on branch main at COMMIT (files only, no git needed)."""
    heads = project / ".git" / "refs" / "heads"
    heads.mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (heads / "main").write_text(COMMIT + "\n")


def test_a_run_writes_one_row_with_the_launch_fields(
    tmp_path: Path, launch_record: Path, guard: Guard, project: Path
) -> None:
    git_layout(project)
    history = tmp_path / "history.sqlite"
    code, _, err = cli(
        "run", "isolation", "--history", str(history), *shipped_options(project), "--", "sh",
        "-c", "exit 3",
    )  # fmt: skip
    assert code == 3, err

    (launch,) = SqliteStore(history).launches()
    (line,) = [json.loads(x) for x in launch_record.read_text().splitlines()]
    assert launch.launch_id == line["launch_id"] and launch.container_id == line["container_id"]
    assert (launch.profile, launch.image) == ("isolation", TEST_IMAGE)
    assert launch.digest == line["digest"] and launch.digest.startswith("sha256:")
    assert launch.image_id is not None and launch.image_id.startswith("sha256:")
    assert launch.command == ("sh", "-c", "exit 3")
    assert (launch.exit_code, launch.outcome) == (3, "failed")
    assert launch.duration is not None and launch.duration > 0
    assert launch.host and launch.engine and launch.engine.startswith("unix://")
    assert launch.engine_version and launch.cgroup_version in ("1", "2")
    assert launch.git_commit == COMMIT == line["git_commit"]
    assert "usage" not in line and "results" not in line  # the JSON line stays as it was


def test_junit_written_into_the_results_mount_lands_as_test_cases(
    tmp_path: Path, guard: Guard, project: Path
) -> None:
    history = tmp_path / "history.sqlite"
    stale = project / "test-results" / "stale.xml"
    stale.parent.mkdir()
    stale.write_text('<testcase name="from-before"/>')
    os.utime(stale, (0, 0))  # an earlier run's file: not this launch's
    code, _, err = cli(
        "run", "isolation", "--history", str(history), *shipped_options(project), "--", "sh",
        "-c", f"mkdir -p /results/junit && echo '{JUNIT}' > /results/junit/report.xml",
    )  # fmt: skip
    assert code == 0, err

    store = SqliteStore(history)
    (launch,) = store.launches()
    assert store.test_cases() == {
        launch.row: (
            JUnitCase("test_one", "suite.a", 0.25, "passed", "junit/report.xml"),
            JUnitCase("test_two", "suite.a", None, "failed", "junit/report.xml"),
        )
    }


def test_eight_workers_write_the_history_at_once_and_every_row_is_there(
    tmp_path: Path, guard: Guard, project: Path
) -> None:
    history = tmp_path / "history.sqlite"
    code, _, err = cli(
        "run", "isolation", "--workers", "8", "--history", str(history),
        *shipped_options(project), "--", "sh", "-c", 'exit "$SHARD_INDEX"',
    )  # fmt: skip
    assert code == 1, err  # worker 1 is the lowest that did not pass

    launches = SqliteStore(history).launches()
    assert len(launches) == 8
    assert len({x.launch_id for x in launches}) == 8
    by_shard = {int(x.launch_id.rsplit("-", 1)[1]): x for x in launches}
    assert sorted(by_shard) == list(range(8))
    assert all(by_shard[i].exit_code == i for i in range(8))


def test_a_damaged_history_is_reported_and_the_run_keeps_its_exit_code(
    tmp_path: Path, launch_record: Path, guard: Guard, project: Path
) -> None:
    history = tmp_path / "history.sqlite"
    history.write_bytes(b"not a database\n" * 200)
    code, _, err = cli(
        "run", "isolation", "--history", str(history), *shipped_options(project), "--", "sh",
        "-c", "exit 5",
    )  # fmt: skip
    assert code == 5, err
    assert "could not write the launch record" in err and str(history) in err
    assert "not a readable SQLite database" in err
    assert not has_traceback(err)
    assert len(launch_record.read_text().splitlines()) == 1  # the JSON line is still written
