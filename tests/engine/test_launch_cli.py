"""The `policy` launch commands on the real engine: signals, workers, clean, doctor, detach,
refusals and the launch record. Every test asserts no container of its own is left (`guard`)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from engine import labels
from engine.backends.interface import ContainerSummary
from engine.backends.unix_socket import SocketEngine
from engine.version import version
from policy.canonical import digest
from policy.loader import load_policy
from tests.helpers import (
    POLICIES,
    TEST_IMAGE,
    Guard,
    cli,
    mine,
    new_name,
    shipped_options,
    wait_for,
    write_probe_policy,
)
from tests.processes import policy as policy_run
from tests.processes import spawn

# Fixtures from tests/engine/conftest.py: a fresh logging state and a launch record per test.
pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]


# ---------------------------------------------------------------------------------------------
# interrupts


@pytest.mark.parametrize(
    ("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_signal_mid_run_removes_the_container(
    signum: signal.Signals, expected: int, guard: Guard, project: Path, docker_client: Any
) -> None:
    process = spawn("run", "isolation", *shipped_options(project), "--", "sleep", "60")
    try:
        running = wait_for(
            lambda: mine(docker_client, guard, running=True), "the container to be running"
        )
        sent = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=10)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate()
    assert code == expected, err
    assert took < 10
    assert "interrupted" in err
    assert not docker_client.api.containers(all=True, filters={"id": running[0]["Id"]})
    assert mine(docker_client, guard) == []


# ---------------------------------------------------------------------------------------------
# workers

SHARD = 'touch "/results/shard-$SHARD_INDEX-of-$SHARD_COUNT"; test "$SHARD_INDEX" != "$FAIL"'


@pytest.mark.parametrize(("fail", "expected"), [("none", 0), ("1", 1)], ids=["pass", "one-fails"])
def test_workers_get_their_shard_and_combine_exit_codes(
    fail: str, expected: int, guard: Guard, project: Path
) -> None:
    code, _, err = cli(
        "run",
        "isolation",
        "--workers",
        "3",
        *shipped_options(project),
        "--",
        "sh",
        "-c",
        SHARD.replace("$FAIL", fail),
    )
    assert code == expected, err
    shards = sorted(p.name for p in (project / "test-results").iterdir())
    assert shards == [f"shard-{i}-of-3" for i in range(3)]
    for index in range(3):
        outcome = "failed, exit 1" if str(index) == fail else "passed, exit 0"
        assert f"worker {index}: {outcome}" in err


def test_interrupt_during_workers_removes_them_all(
    guard: Guard, project: Path, docker_client: Any
) -> None:
    options = ("--workers", "3", *shipped_options(project))
    process = spawn("run", "isolation", *options, "--", "sleep", "60")
    try:
        running = wait_for(
            lambda: len(found := mine(docker_client, guard, running=True)) == 3 and found,
            "three running workers",
        )
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate()
    assert code == 130, err
    assert sorted(c["Labels"][labels.LAUNCH_ID][-2:] for c in running) == ["-0", "-1", "-2"]
    assert mine(docker_client, guard) == []


# ---------------------------------------------------------------------------------------------
# clean


def test_clean_removes_only_labelled_containers(
    guard: Guard,
    project: Path,
    docker_client: Any,
    container_names: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`policy clean` lists containers with the engine's own label filter; this test keeps what
    that listing returned, but hands on only its own containers so that it never removes those
    of anyone else sharing the engine (the unlabelled one is checked against the raw listing)."""
    listed: list[dict[str, Any]] = []
    real_containers = SocketEngine.containers

    def own_only(
        self: SocketEngine, filters: dict[str, Any], all: bool = True
    ) -> list[ContainerSummary]:
        found = real_containers(self, filters, all)
        listed.extend(c.model_dump(by_alias=True) for c in found)
        return [c for c in found if guard.owns(c.model_dump(by_alias=True))]

    monkeypatch.setattr(SocketEngine, "containers", own_only)

    code, out, _ = cli(
        "run", "isolation", "--detach", *shipped_options(project), "--", "sleep", "60"
    )
    assert code == 0
    launched = out.strip()
    plain = new_name()
    container_names.append(plain)
    subprocess.run(
        ["docker", "run", "-d", "--name", plain, "--network", "none", TEST_IMAGE, "sleep", "60"],
        check=True,
        capture_output=True,
    )
    plain_id = docker_client.api.inspect_container(plain)["Id"]

    def exists(container: str) -> bool:
        return bool(docker_client.api.containers(all=True, filters={"id": container}))

    code, out, err = cli("clean", "--dry-run")
    assert code == 0
    assert f"would remove {launched[:12]}" in out
    assert "1 container(s) to remove" in err
    assert exists(launched) and exists(plain_id)

    code, out, _ = cli("clean")
    assert code == 0
    assert f"removed {launched[:12]}" in out
    assert not exists(launched)
    assert exists(plain_id)

    ids = {c["Id"] for c in listed}
    assert launched in ids, "the label filter missed a launched container"
    assert plain_id not in ids, "the label filter matched an unlabelled container"
    docker_client.api.remove_container(plain, v=True, force=True)


# ---------------------------------------------------------------------------------------------
# doctor, detach, refusals


def test_doctor_passes_for_the_shipped_isolation_profile(guard: Guard) -> None:
    code, out, err = cli("doctor", "isolation", "--policies", str(POLICIES))
    assert code == 0, out
    lines = out.splitlines()
    assert lines and all(line.startswith("ok ") for line in lines), out
    for check in ("engine:", "cgroup memory:", "cgroup pids:", "seccomp:", f"image {TEST_IMAGE}:"):
        assert any(check in line for line in lines), check
    assert "all checks passed" in err


def test_detach_prints_a_running_labelled_container(
    guard: Guard, project: Path, docker_client: Any
) -> None:
    code, out, _ = cli(
        "run", "isolation", "--detach", *shipped_options(project), "--", "sleep", "60"
    )
    assert code == 0
    container = out.strip()
    guard.ids.add(container)
    try:
        inspect = docker_client.api.inspect_container(container)
        assert inspect["State"]["Running"]
        found = inspect["Config"]["Labels"]
        profile = load_policy([POLICIES], project).profiles["isolation"]
        assert found[labels.PROFILE] == "isolation"
        assert found[labels.DIGEST] == digest(profile)
        assert found[labels.POLICY].endswith("base.toml")
        assert found[labels.ENGINE_VERSION] == version()
        assert inspect["Name"] == f"/policy-isolation-{found[labels.LAUNCH_ID]}"
    finally:
        docker_client.api.remove_container(container, v=True, force=True)


@pytest.mark.parametrize(
    "option", [["--image", "--privileged"], ["--image=--privileged"]], ids=["split", "joined"]
)
def test_image_that_is_an_option_is_refused(option: list[str], guard: Guard, project: Path) -> None:
    code, out, err = cli("run", "isolation", *option, *shipped_options(project), "--", "true")
    assert code == 2
    assert "--image" in err and out == ""


def test_missing_readonly_source_is_refused_before_any_container(
    guard: Guard, project: Path
) -> None:
    policies = write_probe_policy(
        project,
        mounts='mounts = [\n  { source = "missing-dir", target = "/data" },\n'
        '  { source = "test-results", target = "/results", writable = true },\n]\n',
    )
    code, out, err = cli("run", "probe", "--policies", str(policies), "--", "touch", "/results/ran")
    assert code == 2
    missing = project / "missing-dir"
    assert f"read-only mount source {missing} does not exist" in err
    assert out == ""
    assert not missing.exists()  # the engine would have created it, owned by root
    assert not (project / "test-results" / "ran").exists()

    code, out, _ = cli("doctor", "probe", "--policies", str(policies))
    assert code == 1
    assert f"FAIL  source {missing}: missing" in out


def test_policy_that_does_not_validate_is_refused(guard: Guard, project: Path) -> None:
    policies = write_probe_policy(project, "privileged = true\n")
    code, out, err = cli("run", "probe", "--policies", str(policies), "--", "touch", "/results/ran")
    assert code == 2
    assert "does not validate" in err and "privileged" in err
    assert out == ""
    assert not (project / "test-results" / "ran").exists()


# ---------------------------------------------------------------------------------------------
# launch record

RECORD_FIELDS = {
    "time",
    "host_user",
    "profile",
    "digest",
    "image",
    "image_id",
    "container_id",
    "command",
    "exit_code",
    "duration",
    "outcome",
}


def test_launch_record_has_one_line_per_launch(
    launch_record: Path, guard: Guard, project: Path
) -> None:
    first = policy_run("run", "isolation", *shipped_options(project), "--", "sh", "-c", "exit 3")
    assert first.returncode == 3, first.stderr
    second = policy_run(
        "run", "isolation", "--record", str(launch_record), *shipped_options(project), "--", "true"
    )
    assert second.returncode == 0, second.stderr

    assert launch_record.exists()
    lines = launch_record.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2, lines
    entries = [json.loads(line) for line in lines]
    for entry in entries:
        assert not RECORD_FIELDS - set(entry), sorted(RECORD_FIELDS - set(entry))
        assert entry["profile"] == "isolation"
        assert entry["digest"].startswith("sha256:")
        assert entry["image"] == TEST_IMAGE
        assert entry["image_id"].startswith("sha256:")
        assert len(entry["container_id"]) == 64
        assert entry["duration"] >= 0
    assert [(e["command"], e["exit_code"], e["outcome"]) for e in entries] == [
        (["sh", "-c", "exit 3"], 3, "failed"),
        (["true"], 0, "passed"),
    ]


def test_shell_runs_under_the_profile_and_leaves_nothing(
    guard: Guard, project: Path, docker_client: Any
) -> None:
    # Without a terminal (as in CI) the shell's output still comes through, and the container
    # is verified, run under the profile, and removed like any other.
    done = policy_run(
        "shell", "isolation", *shipped_options(project), "--", "sh", "-c", "id -u; echo shell-ok"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1001", "shell-ok"]
    assert mine(docker_client, guard) == []
