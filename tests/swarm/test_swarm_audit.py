"""`policy audit --swarm` and `policy doctor --swarm` on the real swarm, and a spec changed under
a running job (`docker service update --cap-add`)."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.backends.swarm import SwarmEngine
from engine.launcher.spec import LaunchSpec
from engine.render.swarm import service_spec
from policy.loader import load_policy
from tests.helpers import has_traceback, wait_for
from tests.processes import policy, spawned
from tests.swarm.conftest import POLICIES, Swarm, task_states

pytestmark = pytest.mark.engine


@pytest.fixture
def launched(clean_swarm: Swarm) -> Iterator[str]:
    """A service made as `policy run --swarm` makes one (its rendered spec), removed after."""
    profile = load_policy([POLICIES]).profiles["shard"]
    spec = LaunchSpec(profile, POLICIES.parent, "swarm.toml", ("sleep", "60"), launch_id="t-0")
    manager = SwarmEngine(clean_swarm.manager)
    service = manager.create_service(service_spec(spec.walked, spec.name, 1, None))
    try:
        yield service
    finally:
        manager.remove_service(service)
        clean_swarm.remove_containers(f"com.docker.swarm.service.id={service}")


def audit(swarm: Swarm) -> tuple[int, str, str]:
    done = policy("audit", "--swarm", "-p", str(POLICIES), env=swarm.env(), timeout=60)
    assert not has_traceback(done.stderr)
    return done.returncode, done.stdout, done.stderr


def test_a_service_updated_after_launch_is_drift_in_spec_and_task(
    clean_swarm: Swarm, launched: str
) -> None:
    code, out, _ = audit(clean_swarm)
    assert code == 0, out
    clean_swarm.docker(0, "service", "update", "--detach", "--cap-add", "SYS_ADMIN", launched)

    def drifted() -> str | None:
        code, out, _ = audit(clean_swarm)
        return out if code == 1 and "found ['SYS_ADMIN']" in out else None

    out = wait_for(drifted, "the updated task in the audit", deadline=60)
    assert "TaskTemplate.ContainerSpec.CapabilityAdd: expected None, found ['CAP_SYS_ADMIN']" in out
    assert re.search(r"drift\s+capabilities: expected \[\], found \['SYS_ADMIN'\]", out)
    assert re.search(r"kernel\s+capabilities \(kernel\)", out)


def test_a_service_outside_any_profile_is_judged_by_the_rules(clean_swarm: Swarm) -> None:
    name = "psw-rogue"
    clean_swarm.docker(0, "service", "create", "--detach", "--name", name, "--mode",
                       "replicated-job", "--no-resolve-image", "simple-test-isolation:latest",
                       "true")  # fmt: skip
    try:
        code, out, _ = audit(clean_swarm)
    finally:
        clean_swarm.docker(0, "service", "rm", name)
        clean_swarm.remove_containers(f"com.docker.swarm.service.name={name}")
    assert code == 1
    assert f"service {name}" in out and "unmanaged" in out
    for rule in ("root-user", "cap-drop-all", "writable-root", "no-memory-limit"):
        assert rule in out


def test_a_spec_changed_under_a_running_job_stops_it(clean_swarm: Swarm) -> None:
    args = ("run", "shard", "--swarm", "-p", str(POLICIES), "--", "sleep", "60")
    with spawned(*args, env=clean_swarm.env()) as proc:
        wait_for(
            lambda: any(t["CurrentState"].startswith("Running") for t in task_states(clean_swarm)),
            "the job's task running",
            deadline=60,
        )
        service = clean_swarm.docker(
            0, "service", "ls", "-q", "--filter", "label=io.container-policy.profile"
        ).split()[0]
        clean_swarm.docker(0, "service", "update", "--detach", "--cap-add", "SYS_ADMIN", service)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == 2, err
    assert "the whole job was stopped" in err
    assert "TaskTemplate.ContainerSpec.CapabilityAdd: expected None, got ['CAP_SYS_ADMIN']" in err


def test_doctor_lists_the_nodes_and_what_each_profile_gets(clean_swarm: Swarm) -> None:
    done = policy("doctor", "--swarm", "-p", str(POLICIES), env=clean_swarm.env(), timeout=60)
    assert done.returncode == 1  # hardened-tmp is refused
    out = done.stdout
    for node_id, _ in clean_swarm.nodes[:2]:
        assert re.search(rf"^ok    node \S+ {node_id[:12]} .*engine 20\.10", out, re.M), out
    assert re.search(
        rf"^ok    node \S+ {clean_swarm.nodes[2][0][:12]} .*drain.*not reachable", out, re.M
    )
    assert "seccomp default: reported by docker info" in out
    assert "refused: tmpfs: tmpfs options" in out
    assert "ok    profile shard: can run with --swarm" in out
    only = policy("doctor", "--swarm", "shard", "-p", str(POLICIES), env=clean_swarm.env())
    assert only.returncode == 0, only.stdout


def test_swarm_commands_on_an_engine_that_is_no_manager_say_so(tmp_path: Path) -> None:
    import os

    done = policy(
        "doctor", "--swarm", "-p", str(POLICIES),
        env={**os.environ, "DOCKER_HOST": "unix:///var/run/docker.sock"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "is not a swarm manager" in done.stderr and not has_traceback(done.stderr)


@pytest.mark.parametrize(
    ("extra", "env", "says"),
    [
        (("--detach",), {}, "--detach cannot be combined with --swarm"),
        (("--swarm-node", "tcp://127.0.0.1:2375"), {}, "a node's engine is given as unix://PATH"),
        ((), {"DOCKER_HOST": "tcp://127.0.0.1:2375"}, "a swarm manager is reached on a unix"),
        ((), {"POLICY_SWARM_NODES": "unix:///nonexistent.sock"}, "/nonexistent.sock"),
    ],
    ids=["detach", "tcp-node", "tcp-manager", "node-unreachable"],
)
def test_bad_swarm_options_exit_2_with_a_message_and_create_nothing(
    clean_swarm: Swarm, extra: tuple[str, ...], env: dict[str, str], says: str
) -> None:
    done = policy(
        "run", "shard", "--swarm", *extra, "-p", str(POLICIES), "--", "true",
        env={**clean_swarm.env(), **env}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert says in done.stderr and not has_traceback(done.stderr)
    assert not clean_swarm.docker(0, "service", "ls", "-q")


def test_an_image_the_nodes_lack_is_refused_by_run_and_failed_by_doctor(
    clean_swarm: Swarm, tmp_path: Path
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.toml").write_text(
        (POLICIES / "swarm.toml").read_text()
        + '\n[profiles.ghost]\nextends = "shard"\nimage = "no-such-image:1"\n'
    )
    options = ("-p", str(tmp_path / "policies"))
    doctor = policy("doctor", "--swarm", "ghost", *options, env=clean_swarm.env())
    assert doctor.returncode == 1
    assert "FAIL  profile ghost: image no-such-image:1 missing on" in doctor.stdout
    run = policy("run", "ghost", "--swarm", *options, "--", "true", env=clean_swarm.env())
    assert run.returncode == 2 and "no-such-image:1 is not available" in run.stderr, run.stderr
    assert not has_traceback(run.stderr)
    assert not clean_swarm.docker(0, "service", "ls", "-q")


def _node_audit(swarm: Swarm, node: int, *extra: str) -> tuple[int, dict[str, Any]]:
    env = {**swarm.env(), "DOCKER_HOST": swarm.nodes[node][1]}
    done = policy("audit", "-p", str(POLICIES), "--format", "json", *extra, env=env, timeout=60)
    assert not has_traceback(done.stderr) and done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_plain_audit_of_a_node_holds_its_task_containers_to_the_profile_as_tasks(
    clean_swarm: Swarm,
) -> None:
    """On each node, a running job's task containers are clean for `policy audit` (and
    `--deep`): their job network and the daemon's no-new-privileges are not drift. A container
    started by hand with a task's labels copied (`com.docker.swarm.task.id` included) is not
    taken for one: its network is drift."""
    args = ("run", "shard", "--swarm", "--workers", "2", "-p", str(POLICIES), "--", "sleep", "300")
    forged = f"forged-task-{uuid.uuid4().hex[:6]}"
    with spawned(*args, env=clean_swarm.env()) as proc:
        try:
            wait_for(
                lambda: (
                    sum(t["CurrentState"].startswith("Running") for t in task_states(clean_swarm))
                    == 2
                ),
                "two running tasks",
                deadline=90,
            )
            seen = 0
            for node in (0, 1):
                for extra in ((), ("--deep",)):
                    code, report = _node_audit(clean_swarm, node, *extra)
                    tasks = [c for c in report["containers"] if c["profile"] == "shard"]
                    assert all(c["findings"] == [] for c in tasks), report
                    assert code == 0, report
                seen += len(tasks)
            assert seen == 2
            node = next(n for n in (0, 1) if clean_swarm.docker(n, "ps", "-q"))
            task = clean_swarm.docker(
                node, "ps", "-q", "--filter", "label=io.container-policy.profile"
            ).split()[0]
            labels = json.loads(
                clean_swarm.docker(node, "inspect", "--format", "{{json .Config.Labels}}", task)
            )
            flags = [f"--label={k}={v}" for k, v in labels.items()]
            clean_swarm.docker(
                node, "run", "-d", "--name", forged, *flags, "--user", "1001:1001", "--read-only",
                "--cap-drop", "ALL", "simple-test-isolation:latest", "sleep", "300",
            )  # fmt: skip
            code, report = _node_audit(clean_swarm, node)
            assert code == 1
            found = next(c for c in report["containers"] if c["name"] == forged)
            network = [f for f in found["findings"] if f["field"] == "network"]
            assert network and network[0]["kind"] == "drift", found
            assert network[0]["expected"].startswith("policy-") and network[0]["expected"].endswith(
                "-net"
            )
            assert network[0]["actual"] == "bridge (scope local)", network
        finally:
            for index in (0, 1):
                with contextlib.suppress(AssertionError):  # not made on that node
                    clean_swarm.docker(index, "rm", "-f", forged)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)


def test_a_daemon_stricter_than_the_profile_is_not_kernel_drift_for_a_task(
    clean_swarm: Swarm,
) -> None:
    """Nodes 0 and 1 run with a daemon-wide no-new-privileges: a task of a profile that leaves
    it off has it in the kernel, which `--deep` on its node does not call drift."""
    args = ("run", "lenient", "--swarm", "-p", str(POLICIES), "--", "sleep", "300")
    with spawned(*args, env=clean_swarm.env()) as proc:
        try:
            wait_for(
                lambda: any(
                    t["CurrentState"].startswith("Running") for t in task_states(clean_swarm)
                ),
                "a running task",
                deadline=90,
            )
            label = "label=io.container-policy.profile=lenient"
            node = next(n for n in (0, 1) if clean_swarm.docker(n, "ps", "-q", "--filter", label))
            code, report = _node_audit(clean_swarm, node, "--deep")
            tasks = [c for c in report["containers"] if c["profile"] == "lenient"]
            assert len(tasks) == 1 and tasks[0]["findings"] == [], report
            assert code == 0
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
