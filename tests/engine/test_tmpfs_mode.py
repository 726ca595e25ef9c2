"""A tmpfs gets the profile's mode, or the launch is refused: Docker gives a tmpfs mounted over a
directory the image already has that directory's mode (it copies it up; seen on Docker 20.10:
`mode = "700"` on /etc gives 755). `policy run` reads the image's mode before start; `policy
audit --deep` compares the mode the kernel shows."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import pytest

from tests.helpers import Guard, new_name, write_probe_policy
from tests.processes import policy

pytestmark = pytest.mark.engine

OVER_ETC = 'tmpfs."/etc" = { size = "10m", mode = "700" }\n'
NEW_DIR = 'tmpfs."/scratch" = { size = "10m", mode = "700" }\n'


def _options(project: Path) -> tuple[str, ...]:
    return ("--policies", str(project / "policies"), "--project", str(project))


def test_a_tmpfs_over_an_image_directory_with_another_mode_is_refused_before_start(
    project: Path, guard: Guard
) -> None:
    write_probe_policy(project, OVER_ETC)
    done = policy("run", "probe", *_options(project), "--", "touch", "/results/started")
    assert done.returncode == 2, done.stderr
    assert "tmpfs./etc.mode: expected '700'" in done.stderr, done.stderr
    assert "755 (the image's /etc: the engine gives the tmpfs that mode)" in done.stderr
    assert "removed without starting" in done.stderr
    assert not (project / "test-results" / "started").exists()


def test_a_tmpfs_on_a_new_path_gets_the_profile_mode(project: Path, guard: Guard) -> None:
    write_probe_policy(project, NEW_DIR)
    done = policy("run", "probe", *_options(project), "--", "stat", "-c", "%a", "/scratch", "/tmp")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["700", "1777"]


def test_deep_audit_reports_the_mode_the_kernel_shows(project: Path, guard: Guard) -> None:
    # The line `policy render` prints, run by hand and detached: the same labels and settings,
    # but nothing read the image's mode before it started.
    write_probe_policy(project, OVER_ETC)
    line = policy("render", "probe", *_options(project), "--", "sleep", "60")
    assert line.returncode == 0, line.stderr
    argv = shlex.split(line.stdout.strip())
    assert argv[:3] == ["docker", "run", "--rm"]
    (project / "test-results").mkdir(exist_ok=True)
    name = new_name("cp-tmpfs-mode")
    started = subprocess.run(
        ["docker", "run", "-d", "--rm", "--name", name, *argv[3:]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        audit = policy("audit", *_options(project), "--deep", "--format", "json",
                       "--filter", f"id={started.stdout.strip()}")  # fmt: skip
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)
    assert audit.returncode == 1, audit.stderr
    findings = json.loads(audit.stdout)["containers"][0]["findings"]
    kernel = [f for f in findings if f["kind"] == "kernel"]
    assert [(f["field"], f["expected"], f["actual"]) for f in kernel] == [
        ("tmpfs /etc mode", "700", "755")
    ], findings
