"""The `policy` launch commands on Podman's service, as on Docker (tests/engine/test_launch_cli.py):
Ctrl-C and SIGTERM mid-run, workers with their shards and combined exit, Ctrl-C during workers,
`--detach`, and `policy clean`, which removes only what carries the reserved labels. Every test
removes, and fails on, any container of its project left on Podman (`none_left_on`)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import labels
from engine.backends.unix_socket import SocketEngine
from tests.helpers import TEST_IMAGE, cli, new_name, wait_for, write_probe_policy
from tests.podman import of_project
from tests.processes import spawn

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]

LeftCheck = Callable[[str], None]
ULIMITS = "ulimits = { nofile = 1024, nproc = 1024 }\n"  # Podman needs both declared
SHARD = 'touch "/results/shard-$SHARD_INDEX-of-$SHARD_COUNT"; test "$SHARD_INDEX" != "$FAIL"'


def options(project: Path, url: str) -> tuple[str, ...]:
    policies = write_probe_policy(project, ULIMITS)
    return ("--policies", str(policies), "--project", str(project), "--host", url)


def running(engine: SocketEngine, project: Path) -> list[str]:
    return [
        c
        for c in of_project(engine, project)
        if engine.inspect_container(c).state.status == "running"
    ]


@pytest.mark.parametrize(
    ("signum", "expected"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["INT", "TERM"]
)
def test_a_signal_mid_run_removes_the_container_on_podman(
    signum: signal.Signals,
    expected: int,
    project: Path,
    podman: SocketEngine,
    podman_url: str,
    none_left_on: LeftCheck,
) -> None:
    none_left_on(podman_url)
    process = spawn("run", "probe", *options(project, podman_url), "--", "sleep", "60")
    try:
        wait_for(lambda: running(podman, project), "the container running on Podman")
        sent = time.monotonic()
        process.send_signal(signum)
        code = process.wait(timeout=30)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate()
    assert code == expected, err
    assert "interrupted" in err
    assert took < 30, took  # Podman stops and removes more slowly than Docker, never forever
    assert of_project(podman, project) == []


@pytest.mark.parametrize(("fail", "expected"), [("none", 0), ("1", 1)], ids=["pass", "one-fails"])
def test_workers_get_their_shard_and_combine_exit_codes_on_podman(
    fail: str, expected: int, project: Path, podman_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(podman_url)
    code, _, err = cli(
        "run", "probe", "--workers", "2", *options(project, podman_url),
        "--", "sh", "-c", SHARD.replace("$FAIL", fail),
    )  # fmt: skip
    assert code == expected, err
    shards = sorted(p.name for p in (project / "test-results").iterdir())
    assert shards == ["shard-0-of-2", "shard-1-of-2"]
    for index in range(2):
        outcome = "failed, exit 1" if str(index) == fail else "passed, exit 0"
        assert f"worker {index}: {outcome}" in err, err


def test_an_interrupt_during_workers_removes_them_all_on_podman(
    project: Path, podman: SocketEngine, podman_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(podman_url)
    args = ("run", "probe", "--workers", "2", *options(project, podman_url), "--", "sleep", "60")
    process = spawn(*args)
    try:
        wait_for(lambda: len(running(podman, project)) == 2, "two running workers on Podman")
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        _, err = process.communicate()
    assert code == 130, err
    assert of_project(podman, project) == []


def test_detach_and_clean_remove_only_labelled_containers_on_podman(
    project: Path, podman: SocketEngine, podman_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(podman_url)
    code, out, err = cli("run", "probe", "--detach", *options(project, podman_url), "--",
                         "sleep", "60")  # fmt: skip
    assert code == 0, err
    launched = out.strip()
    inspect = podman.inspect_container(launched)
    assert inspect.state.status == "running"
    assert inspect.labels[labels.PROFILE] == "probe"
    plain = new_name()
    body = {"Image": TEST_IMAGE, "Cmd": ["sleep", "60"], "HostConfig": {"NetworkMode": "none"}}
    plain_id = podman.create(body, plain)
    try:
        code, out, err = cli("clean", "--dry-run", "--host", podman_url)
        assert code == 0, err
        assert f"would remove {launched[:12]}" in out and plain_id[:12] not in out
        assert podman.inspect_if_exists(launched) is not None
        code, out, err = cli("clean", "--host", podman_url)
        assert code == 0, err
        assert f"removed {launched[:12]}" in out
        assert podman.inspect_if_exists(launched) is None
        assert podman.inspect_if_exists(plain_id) is not None  # unlabelled: not ours
    finally:
        podman.remove(plain_id)
