"""The monitor on the real engine (issue 11): what a run consumed, read from the kernel's own
counters, and the violations it earns.

Every launch goes through the Python API or `policy run` in-process, under the probe policy
(tests/helpers.py) with one limit changed per test; the fixture `guard` removes, and fails on,
any container a test leaves. Memory is held in the profile's tmpfs (shmem pages are charged to
the container's memory cgroup), open files by busybox `tail -f`, which keeps every file it
follows open.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from engine import api
from engine.backends.docker import DockerEngine
from engine.backends.interface import Engine
from engine.backends.unix_socket import SocketEngine
from engine.launcher.run import detached
from engine.launcher.spec import RunResult
from engine.monitor.figures import Source, Usage
from engine.monitor.sampler import Sampler
from policy.loader import load_policy
from tests.helpers import PROBE_POLICY, Guard, cli, wait_for, write_probe_policy

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]

MIB = 1 << 20


def probe(project: Path, extra: str = "", **replace: str) -> Path:
    """The probe policy with `key = value` lines of its defaults or profile replaced."""
    header = PROBE_POLICY
    for key, value in replace.items():
        start = header.index(f"\n{key} = ") + 1
        end = header.index("\n", start)
        header = header[:start] + f"{key} = {value}" + header[end:]
    return write_probe_policy(project, extra, header=header)


def launch(policies: Path, project: Path, script: str) -> tuple[RunResult, Usage]:
    result = api.launch("probe", ["sh", "-c", script], policies=policies, project=project)
    assert result.usage is not None, "every launch is measured"
    return result, result.usage


def kinds(usage: Usage) -> list[str]:
    return [v.kind for v in usage.violations]


def test_a_held_100_mib_shows_as_the_kernel_peak(guard: Guard, project: Path) -> None:
    policies = probe(project, 'tmpfs."/tmp" = { size = "200m" }\n')
    result, usage = launch(
        policies, project, "dd if=/dev/zero of=/tmp/fill bs=1M count=100 2>/dev/null; sleep 1"
    )
    assert result.exit_code == 0, result.output
    assert usage.cgroup_version in ("1", "2")
    peak = usage.memory_peak
    assert peak.value is not None and peak.source is Source.KERNEL
    assert 100 * MIB <= peak.value <= 106 * MIB, peak.value / MIB
    assert usage.memory_limit == 256 * MIB and peak.value < usage.memory_limit
    sampled = max(s.memory_bytes or 0 for s in usage.samples)
    assert sampled >= 100 * MIB  # the samples saw it held, too
    assert kinds(usage) == []
    assert usage.sampling_cpu_seconds is not None and usage.sampling_cpu_seconds < 0.5


OOM = 'a=x; while true; do a="$a$a"; done'


def test_exceeding_memory_exits_137_with_an_oom_violation(guard: Guard, project: Path) -> None:
    policies = probe(project, memory='"64m"')
    result, usage = launch(policies, project, OOM)
    assert result.exit_code == 137
    oom = [v for v in usage.violations if v.kind == "oom"]
    assert oom and oom[0].severity == "error" and oom[0].threshold == "memory 64 MiB"
    assert usage.failed
    # The kernel's counter, read the moment the main process ended. On a loaded machine the
    # engine can remove the cgroup before that read: then the figure is the last sample's, says
    # so ("sampled", never "kernel counter"), and the violation rests on the engine's word.
    if usage.oom_kills.source is Source.KERNEL:
        assert (usage.oom_kills.value or 0) >= 1
        assert "OOM kill(s) (kernel counter)" in oom[0].evidence
    else:
        assert usage.oom_kills.source is Source.SAMPLED
        assert oom[0].evidence in (
            "the engine reports the container killed for memory",
            f"{int(usage.oom_kills.value or 0)} OOM kill(s) (sampled)",
        )


def test_a_fork_loop_under_a_small_pids_limit_is_a_pids_violation(
    guard: Guard, project: Path
) -> None:
    policies = probe(project, pids_limit="16")
    # The inner shell gives up at its first refused fork; the outer one outlives it.
    script = "sh -c 'for i in $(seq 40); do sleep 2 & done; wait' 2>/dev/null; sleep 1"
    _, usage = launch(policies, project, script)
    assert usage.fork_failures.source is Source.KERNEL
    assert (usage.fork_failures.value or 0) > 0
    assert usage.tasks_peak.value == 16
    violation = next(v for v in usage.violations if v.kind == "pids-limit")
    assert violation.severity == "error" and violation.threshold == "pids_limit 16"
    assert "fork(s) refused (kernel counter)" in violation.evidence


def test_spinners_beyond_the_cpu_quota_are_throttled(guard: Guard, project: Path) -> None:
    # A small quota, so that four spinners exhaust it in every period even on a busy machine
    # where they get only part of a core each (0.5 was throttled in a minority of periods there).
    policies = probe(project, cpus="0.1")
    spin = "for i in 1 2 3 4; do timeout 3 sh -c 'while :; do :; done' & done; wait"
    result, usage = launch(policies, project, spin)
    assert result.exit_code == 0, result.output
    share = usage.throttled_share
    assert share.source is Source.KERNEL and share.value is not None and share.value > 0.5
    assert usage.cpu_average.value is not None and usage.cpu_average.value < 0.15
    assert usage.cpu_quota == 0.1
    assert "cpu-throttled" in kinds(usage)


def test_500_files_kept_open_show_as_fd_growth(guard: Guard, project: Path) -> None:
    policies = probe(project)
    # The first sample is taken while the shell sleeps; `tail -f` keeps all 500 files open
    # through the last samples, until the shell ends.
    script = (
        "sleep 1; for i in $(seq 500); do : > /tmp/f$i; done; "
        "tail -f /tmp/f* >/dev/null & sleep 2.5"
    )
    result, usage = launch(policies, project, script)
    assert result.exit_code == 0, result.output
    start, peak, end = usage.open_files
    assert start.value is not None and end.value is not None and peak.value is not None
    assert start.value < 20 and end.value - start.value >= 500, usage.open_files
    assert end.source is Source.SAMPLED
    assert "fd-growth" in kinds(usage)
    threads = usage.threads
    assert threads[1].value is not None and threads[1].value >= 2  # sh and tail


@pytest.mark.parametrize("backend", [SocketEngine, DockerEngine], ids=["socket", "sdk"])
def test_the_stats_stream_of_both_backends(
    backend: type[SocketEngine | DockerEngine], guard: Guard, project: Path
) -> None:
    engine: Engine = backend()
    policy = load_policy([probe(project)], project)
    spec = api.spec_for("probe", ["sleep", "30"], policy=policy)
    with detached(engine, spec) as container:
        stream = engine.stats(container)
        frames = []
        for frame in stream:
            frames.append(frame)
            if len(frames) == 2:
                break
        assert frames[-1].memory_stats.usage and frames[-1].pids_stats.current == 1
        assert frames[-1].cpu_stats.cpu_usage.total_usage is not None
        stream.close()
        # Sampled through the stream, as for an engine on another machine.
        sampler = Sampler(engine, container, spec.profile, local=False).start()
        wait_for(lambda: len(sampler.seen.samples) >= 2, "two stats frames")
        usage = sampler.finish(2.0, timed_out=False, oom_killed=False)
    assert usage.cgroup_version is None
    assert usage.cpu_average.source is Source.STATS_API
    assert usage.memory_peak.measured and usage.tasks_peak.value == 1
    assert not usage.open_files[0].measured and not usage.fork_failures.measured
    engine.close()


def test_closing_a_stats_stream_ends_its_reader(guard: Guard, project: Path) -> None:
    engine = SocketEngine()
    policy = load_policy([probe(project)], project)
    spec = api.spec_for("probe", ["sleep", "30"], policy=policy)
    with detached(engine, spec) as container:
        stream = engine.stats(container)
        seen: list[object] = []
        reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
        reader.start()
        wait_for(lambda: seen, "a first frame")
        stream.close()
        reader.join(5)
        assert not reader.is_alive()


def test_policy_run_summary_no_monitor_and_fail_on_violation(guard: Guard, project: Path) -> None:
    options = ("--policies", str(probe(project)), "--project", str(project))
    code, _, err = cli("run", "probe", *options, "--", "true")
    assert code == 0
    assert "monitor: " in err and "  memory   peak " in err and "no violations" in err
    code, _, err = cli("run", "probe", *options, "--no-monitor", "--", "true")
    assert code == 0 and "monitor: " not in err
    # Any run warns at a 1% memory threshold: a warning fails it only when asked.
    warned = probe(project, "monitor = { memory_warn = 0.0001 }\n")
    options = ("--policies", str(warned), "--project", str(project))
    code, _, err = cli("run", "probe", *options, "--", "sleep", "0.5")
    assert code == 0 and "warning  memory-near-limit" in err, err
    code, _, _ = cli("run", "probe", *options, "--fail-on-violation", "--", "sleep", "0.5")
    assert code == 3
    failing = probe(project, "monitor = { memory_warn = 0.0001, fail_on_violation = true }\n")
    options = ("--policies", str(failing), "--project", str(project))
    code, _, _ = cli("run", "probe", *options, "--", "sleep", "0.5")
    assert code == 3
