"""`policy run --swarm` on a real three-node swarm (tests/swarm/conftest.py builds it)."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.helpers import has_traceback, wait_for
from tests.processes import policy, spawned
from tests.swarm.conftest import POLICIES, Swarm, task_states

pytestmark = pytest.mark.engine

SHARD = "echo shard $SHARD_INDEX of $SHARD_COUNT; sleep 2"
MIB = 1 << 20


def run(
    swarm: Swarm, profile: str, *command: str, workers: int = 4, nodes: tuple[int, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return policy(
        "run", profile, "--swarm", "--workers", str(workers), "-p", str(POLICIES),
        "--", *command, env=swarm.env(*nodes), timeout=180,
    )  # fmt: skip


def placed(stderr: str) -> dict[int, str]:
    """worker -> the node its task was verified on, from the CLI's lines."""
    return {int(w): n for w, n in re.findall(r"^\[(\d+)\] verified on node (.+)$", stderr, re.M)}


def test_a_job_runs_its_shards_across_nodes_and_passes(
    clean_swarm: Swarm, history_file: Path
) -> None:
    from engine.history.sqlite import SqliteStore

    done = run(clean_swarm, "shard", "sh", "-c", SHARD)
    assert done.returncode == 0, done.stderr
    for index in range(4):
        assert f"[{index}] shard {index} of 4\n" in done.stdout
        assert re.search(rf"^worker {index}: passed, exit 0", done.stderr, re.M), done.stderr
    nodes = placed(done.stderr)
    assert sorted(nodes) == [0, 1, 2, 3]
    assert len(set(nodes.values())) >= 2, f"all tasks on one node: {nodes}"
    # Each worker leaves its launch record, as a local worker does, naming its node's engine.
    urls = {url for _, url in clean_swarm.nodes}
    jobs: dict[str, set[str]] = {}
    for la in SqliteStore(history_file).launches(profile="shard"):
        if la.outcome == "passed" and la.engine in urls:
            group, _, shard = la.launch_id.rpartition("-")
            jobs.setdefault(group, set()).add(shard)
    assert {"0", "1", "2", "3"} in jobs.values(), jobs


def test_the_combined_exit_is_the_first_failing_workers(clean_swarm: Swarm) -> None:
    done = run(clean_swarm, "shard", "sh", "-c", "sleep 1; exit $((SHARD_INDEX + 4))", workers=2)
    assert done.returncode == 4, done.stderr
    assert re.search(r"^worker 1: failed, exit 5", done.stderr, re.M)


def test_a_field_a_service_cannot_carry_is_refused_before_anything_exists(
    clean_swarm: Swarm,
) -> None:
    before = clean_swarm.docker(0, "service", "ls", "-q")
    done = run(clean_swarm, "hardened-tmp", "true")
    assert done.returncode == 2
    assert "tmpfs: tmpfs options" in done.stderr and "API 1.46" in done.stderr
    assert not has_traceback(done.stderr)
    assert clean_swarm.docker(0, "service", "ls", "-q") == before


def test_the_shipped_isolation_profile_is_refused_by_name(clean_swarm: Swarm) -> None:
    from tests.helpers import POLICIES as SHIPPED

    done = policy(
        "run", "isolation", "--swarm", "-p", str(SHIPPED), "--", "true",
        env=clean_swarm.env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert 'network: "none" cannot be expressed by a service' in done.stderr
    assert 'swarm_network = "internal"' in done.stderr
    assert "tmpfs: tmpfs options" in done.stderr


def test_a_node_whose_engine_is_not_given_is_refused(clean_swarm: Swarm) -> None:
    done = policy(
        "run", "shard", "--swarm", "-p", str(POLICIES), "--", "true",
        env={**clean_swarm.env(), "POLICY_SWARM_NODES": ""}, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--swarm-node" in done.stderr and clean_swarm.nodes[1][0][:12] in done.stderr


def test_a_task_on_a_node_that_differs_stops_the_whole_job(clean_swarm: Swarm) -> None:
    # Node 2's daemon has no daemon-wide no-new-privileges: nothing in `docker info` says so,
    # its tasks' inspect documents look the same; only /proc shows it.
    plain, worker = clean_swarm.nodes[2][0], clean_swarm.nodes[1][0]
    clean_swarm.docker(0, "node", "update", "--availability", "active", plain)
    clean_swarm.docker(0, "node", "update", "--availability", "drain", worker)
    clean_swarm.docker(0, "node", "update", "--availability", "drain", clean_swarm.nodes[0][0])
    try:
        done = run(clean_swarm, "shard", "sh", "-c", "sleep 30", workers=2, nodes=(0, 1, 2))
    finally:
        for node in (clean_swarm.nodes[0][0], worker):
            clean_swarm.docker(0, "node", "update", "--availability", "active", node)
        clean_swarm.docker(0, "node", "update", "--availability", "drain", plain)
    assert done.returncode == 2, done.stderr
    assert "the whole job was stopped" in done.stderr
    assert "no_new_privileges (kernel): expected True, got False" in done.stderr
    assert plain[:12] in done.stderr


def test_the_profiles_timeout_removes_the_job(clean_swarm: Swarm) -> None:
    done = run(clean_swarm, "short", "sh", "-c", "echo started; sleep 60", workers=2)
    assert done.returncode == 124, done.stderr
    assert re.search(r"^worker 0: timeout, exit 124", done.stderr, re.M), done.stderr


@pytest.mark.parametrize(
    ("signum", "times"),
    [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 2)],
    ids=["SIGINT", "SIGTERM", "SIGINT-twice"],
)
def test_an_interrupt_leaves_nothing_behind(clean_swarm: Swarm, signum: int, times: int) -> None:
    # Twice: a second Ctrl-C, pressed while the first one's clean-up runs, waits for it.
    args = ("run", "shard", "--swarm", "--workers", "3", "-p", str(POLICIES), "--", "sleep", "60")
    with spawned(*args, env=clean_swarm.env()) as proc:
        wait_for(
            lambda: (
                sum(t["CurrentState"].startswith("Running") for t in task_states(clean_swarm)) == 3
            ),
            "three running tasks",
            deadline=60,
        )
        for _ in range(times):
            proc.send_signal(signum)
        _, err = proc.communicate(timeout=90)
    assert proc.returncode == (130 if signum == signal.SIGINT else 143), err
    assert not has_traceback(err)


def test_a_node_engine_stopping_mid_job_stops_it_and_leaves_nothing(clean_swarm: Swarm) -> None:
    args = ("run", "shard", "--swarm", "--workers", "4", "-p", str(POLICIES), "--", "sleep", "60")
    node = clean_swarm.nodes[1][0]
    with spawned(*args, env=clean_swarm.env()) as proc:
        # Node 1 runs at least one of the four tasks (Swarm spreads them over the two nodes).
        wait_for(
            lambda: clean_swarm.docker(
                1, "ps", "-q", "--filter", "label=io.container-policy.profile"
            ).strip(),
            "a running task container on node 1",
            deadline=60,
        )
        clean_swarm.script("stop-node", "1")
        try:
            _, err = proc.communicate(timeout=120)
        finally:
            clean_swarm.script("start-node", "1")
    assert proc.returncode == 2, err
    assert "stopped answering mid-job" in err
    wait_for(
        lambda: (
            clean_swarm.docker(0, "node", "inspect", node, "--format", "{{.Status.State}}").strip()
            == "ready"
        ),
        "node 1 ready again",
        deadline=90,
    )


def test_mounts_env_labels_and_healthcheck_reach_every_task(
    clean_swarm: Swarm, tmp_path: Path
) -> None:
    # Every key the Swarm renderer spells, at once: the stored spec and each task's container
    # must match (a field the manager stored otherwise would stop the job, exit 2).
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.toml").write_text(
        (POLICIES / "swarm.toml").read_text()
        + '\n[profiles.everything]\nimage = "simple-test-isolation:latest"\nworkdir = "/src"\n'
        'env = { CI = "1" }\nlabels = { team = "ci" }\n'
        'sysctls = { "net.ipv4.ping_group_range" = "0 0" }\n'
        'healthcheck = { test = ["true"], interval = "5s", retries = 2 }\n'
        'mounts = [{ source = ".", target = "/src" }, '
        '{ source = "results", target = "/results", writable = true }]\n'
    )
    done = policy(
        "run", "everything", "--swarm", "--workers", "2", "-p", str(tmp_path / "policies"),
        "--", "sh", "-c", "grep -q ' /src ro' /proc/self/mountinfo && echo src-ro; "
        "cat /proc/sys/net/ipv4/ping_group_range; "
        "echo $CI > /results/out-$SHARD_INDEX; sleep 1",
        env=clean_swarm.env(), timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[0] src-ro\n" in done.stdout and "[1] src-ro\n" in done.stdout
    assert "[0] 0\t0\n" in done.stdout  # the sysctl, in the task's own network namespace
    for index in (0, 1):
        assert (tmp_path / "results" / f"out-{index}").read_text() == "1\n"


def test_a_task_its_node_cannot_start_is_that_workers_error(
    clean_swarm: Swarm, tmp_path: Path
) -> None:
    # rslave propagation needs a shared or slave mount on the node: here it is not one, so the
    # node fails the start; nothing ran, so nothing was left unproved: the worker's error.
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "p.toml").write_text(
        (POLICIES / "swarm.toml").read_text() + '\n[profiles.slave]\nextends = "shard"\n'
        'mounts = [{ source = ".", target = "/src", propagation = "rslave" }]\n'
    )
    done = policy(
        "run", "slave", "--swarm", "-p", str(tmp_path / "policies"), "--", "true",
        env=clean_swarm.env(), timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "could not start it" in done.stderr and "shared or slave mount" in done.stderr
    assert not has_traceback(done.stderr)


def test_a_quick_worker_is_proved_by_its_nodes_other_task(clean_swarm: Swarm) -> None:
    # One active node: both tasks land there. Worker 1 ends at once, before its process can be
    # read; worker 0 lives long enough to show the node's daemon-wide no-new-privileges.
    manager, worker = clean_swarm.nodes[0][0], clean_swarm.nodes[1][0]
    clean_swarm.docker(0, "node", "update", "--availability", "drain", manager)
    try:
        done = run(
            clean_swarm, "shard", "sh", "-c", '[ "$SHARD_INDEX" = 0 ] && sleep 3; true', workers=2
        )
    finally:
        clean_swarm.docker(0, "node", "update", "--availability", "active", manager)
    assert done.returncode == 0, done.stderr
    nodes = placed(done.stderr)
    assert sorted(nodes) == [0, 1] and all(worker[:12] in n for n in nodes.values()), nodes


FILL = "dd if=/dev/zero of=/tmp/fill bs=1M count=12 2>/dev/null; sleep 2"


def test_each_task_is_sampled_on_its_node_and_recorded(
    clean_swarm: Swarm, history_file: Path
) -> None:
    """12 MiB held in the tmpfs (charged to the task's memory cgroup) shows as each worker's
    peak, from its node's kernel counters, in the CLI's lines and in the history."""
    from engine.history.sqlite import SqliteStore
    from engine.monitor.figures import Source

    store = SqliteStore(history_file)
    before = {la.row for la in store.launches()}
    done = run(clean_swarm, "shard", "sh", "-c", FILL, workers=2)
    assert done.returncode == 0, done.stderr
    for index in range(2):
        line = re.search(rf"^worker {index}: passed, exit 0, .*$", done.stderr, re.M)
        assert line and re.search(r"memory peak \d+\.\d MiB of 256 MiB$", line[0]), done.stderr
    ours = [la for la in store.launches() if la.row not in before]
    assert len(ours) == 2, ours
    usages = store.usages()
    for la in ours:
        assert la.engine in {url for _, url in clean_swarm.nodes}
        usage = usages[la.row]
        peak = usage.memory_peak
        assert peak.source is Source.KERNEL and peak.value is not None, usage
        assert 12 * MIB <= peak.value < 256 * MIB, peak.value / MIB
        assert usage.memory_limit == 256 * MIB


def test_a_swarm_workers_violation_fails_it_only_when_asked(clean_swarm: Swarm) -> None:
    done = run(clean_swarm, "watched", "sh", "-c", FILL, workers=2)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^worker 0: passed, .*violations: memory-near-limit$", done.stderr, re.M)
    assert "warning  memory-near-limit" in done.stderr, done.stderr
    failing = policy(
        "run", "watched", "--swarm", "--workers", "1", "-p", str(POLICIES), "--fail-on-violation",
        "--", "sh", "-c", FILL, env=clean_swarm.env(), timeout=180,
    )  # fmt: skip
    assert failing.returncode == 3, failing.stderr
    quiet = policy(
        "run", "watched", "--swarm", "--workers", "1", "-p", str(POLICIES), "--no-monitor",
        "--", "sh", "-c", FILL, env=clean_swarm.env(), timeout=180,
    )  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr
    assert "memory peak" not in quiet.stderr and "violations" not in quiet.stderr
