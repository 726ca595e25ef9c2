"""`policy clean --swarm` on a real swarm: what a killed `policy run --swarm` leaves (its
services, its job network and their tasks' containers on every node) is listed, then removed,
and nothing that is not ours is touched. A plain `policy clean` on a node leaves a task's
container to its service."""

from __future__ import annotations

import contextlib
import subprocess
import uuid

import pytest

from tests.helpers import has_traceback, wait_for
from tests.processes import policy, spawned
from tests.swarm.conftest import POLICIES, Swarm, task_states

pytestmark = pytest.mark.engine


def _running(swarm: Swarm, n: int) -> bool:
    return bool(sum(t["CurrentState"].startswith("Running") for t in task_states(swarm)) == n)


def _leave_a_job(swarm: Swarm) -> None:
    """A 2-worker job whose `policy run` is killed (SIGKILL: no clean-up of its own)."""
    args = ("run", "shard", "--swarm", "--workers", "2", "-p", str(POLICIES), "--", "sleep", "300")
    with spawned(*args, env=swarm.env()) as proc:
        wait_for(lambda: _running(swarm, 2), "two running tasks", deadline=90)
        proc.kill()
        proc.wait()


def _remove_by_hand(swarm: Swarm, service: str) -> None:
    """After a failure too: ours by label, and the test's own service by name, with their
    tasks' containers on every node (they outlive their service on 20.10 and would keep the
    network)."""
    label = "label=io.container-policy.profile"
    for ours in swarm.docker(0, "service", "ls", "-q", "--filter", label).split():
        swarm.docker(0, "service", "rm", ours)
    with contextlib.suppress(AssertionError):
        swarm.docker(0, "service", "rm", service)
    swarm.remove_containers("io.container-policy.profile")
    swarm.remove_containers(f"com.docker.swarm.service.name={service}")
    for net in swarm.docker(0, "network", "ls", "-q", "--filter", label).split():
        wait_for(
            lambda net=net: (
                subprocess.run(  # type: ignore[misc]
                    ["docker", "-H", swarm.manager, "network", "rm", net], capture_output=True
                ).returncode
                == 0
            ),
            f"network {net} removed",
        )


def test_clean_swarm_removes_what_a_killed_job_left_and_nothing_else(clean_swarm: Swarm) -> None:
    swarm = clean_swarm
    theirs = f"not-ours-{uuid.uuid4().hex[:6]}"
    try:
        swarm.docker(
            0, "service", "create", "-d", "--name", theirs, "--no-resolve-image",
            "--label", "team=qa", "simple-test-isolation:latest", "sleep", "300",
        )  # fmt: skip
        # The manager drained: both tasks run on node 1, whose engine a clean must be given.
        swarm.docker(0, "node", "update", "--availability", "drain", swarm.nodes[0][0])
        _leave_a_job(swarm)
        left = swarm.ours()
        assert len(left["services"]) == 2 and len(left["networks"]) == 1, left

        # A plain clean on a node leaves the tasks' containers to their services.
        node = next(i for i in range(len(swarm.nodes)) if left[f"containers on node {i}"])
        tasks = left[f"containers on node {node}"]
        plain = policy("clean", env={**swarm.env(), "DOCKER_HOST": swarm.nodes[node][1]})
        assert plain.returncode == 0, plain.stderr
        assert f"left {len(tasks)} Swarm task container(s) to their service" in plain.stderr
        assert "0 container(s) removed" in plain.stderr
        assert swarm.ours()[f"containers on node {node}"] == tasks

        # Without node 1's engine: refused, nothing removed.
        assert len(left["containers on node 1"]) == 2, left
        blind = policy("clean", "--swarm", env={**swarm.env(), "POLICY_SWARM_NODES": ""})
        assert blind.returncode == 2, blind.stderr
        assert "give each node's socket with --swarm-node" in blind.stderr
        assert "nothing was removed" in blind.stderr and not has_traceback(blind.stderr)
        assert swarm.ours() == left

        dry = policy("clean", "--swarm", "--dry-run", env=swarm.env())
        assert dry.returncode == 0, dry.stderr
        assert dry.stdout.count("would remove service ") == 2, dry.stdout
        assert dry.stdout.count("would remove network ") == 1, dry.stdout
        assert "(shard)" in dry.stdout and theirs not in dry.stdout
        assert "2 service(s), 1 network(s) to remove" in dry.stderr
        assert swarm.ours()["services"] == left["services"]  # a dry run removes nothing

        done = policy("clean", "--swarm", env=swarm.env(), timeout=180)
        assert done.returncode == 0, done.stderr
        assert not has_traceback(done.stderr)
        assert done.stdout.count("removed service ") == 2, done.stdout
        assert done.stdout.count("removed network ") == 1, done.stdout
        swarm.nothing_left()  # services, network, and task containers on every node
        assert theirs in swarm.docker(0, "service", "ls", "--format", "{{.Name}}").split()
    finally:
        swarm.docker(0, "node", "update", "--availability", "active", swarm.nodes[0][0])
        _remove_by_hand(swarm, theirs)


def test_clean_swarm_on_an_engine_that_is_no_manager_is_an_engine_error(
    clean_swarm: Swarm,
) -> None:
    done = policy(
        "clean",
        "--swarm",
        "--dry-run",
        env={**clean_swarm.env(), "DOCKER_HOST": clean_swarm.nodes[1][1]},
    )
    assert done.returncode == 2, done.stderr
    assert "not a swarm manager" in done.stderr and not has_traceback(done.stderr)
