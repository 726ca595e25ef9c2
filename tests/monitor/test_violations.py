"""The violation rules, the usage builder's choice of sources, and the summary, without an
engine: each rule on either side of its threshold."""

from __future__ import annotations

import dataclasses
import math

import pytest

from engine.monitor.figures import Figure, Sample, Severity, Source, Usage
from engine.monitor.summary import lines
from engine.monitor.usage import Limits, Observed, build_usage
from engine.monitor.violations import Ending, failing, judge
from policy.model import Monitor

MIB = 1 << 20
DEFAULTS = Monitor()
NONE = Figure.unavailable()
QUIET = Ending()


def usage(**changes: object) -> Usage:
    base = Usage(
        duration=10.0,
        cgroup_version="1",
        memory_peak=Figure(100 * MIB, Source.KERNEL),
        memory_limit=256 * MIB,
        cpu_average=Figure(0.5, Source.KERNEL),
        cpu_p95=Figure(0.9, Source.SAMPLED),
        cpu_quota=1.0,
        throttled_share=Figure(0.0, Source.KERNEL),
        tasks_peak=Figure(3, Source.KERNEL),
        pids_limit=64,
        fork_failures=Figure(0, Source.KERNEL),
        oom_kills=Figure(0, Source.KERNEL),
        open_files=(Figure(3, Source.SAMPLED),) * 3,
        threads=(Figure(1, Source.SAMPLED),) * 3,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def kinds(u: Usage, ending: Ending = QUIET, thresholds: Monitor = DEFAULTS) -> list[str]:
    return [v.kind for v in judge(u, thresholds, ending)]


def test_a_quiet_run_has_no_violations() -> None:
    assert kinds(usage()) == []
    assert not failing(usage(), fail_on_violation=True)


def test_an_oom_kill_is_an_error_and_hides_the_memory_warning() -> None:
    found = judge(
        usage(oom_kills=Figure(1, Source.KERNEL), memory_peak=Figure(256 * MIB, Source.KERNEL)),
        DEFAULTS,
        Ending(),
    )
    assert [(v.kind, v.severity) for v in found] == [("oom", Severity.ERROR)]
    assert "1 OOM kill(s) (kernel counter)" in found[0].evidence
    assert found[0].threshold == "memory 256 MiB"
    # The engine's word alone is enough (a stats-API run has no counter).
    assert kinds(usage(oom_kills=NONE), Ending(oom_killed=True)) == ["oom"]


def test_timeout_is_an_error() -> None:
    found = judge(usage(), DEFAULTS, Ending(timed_out=True, timeout=2.0))
    assert [(v.kind, v.threshold) for v in found] == [("timeout", "timeout 2s")]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"fork_failures": Figure(5, Source.KERNEL)}, ["pids-limit"]),
        ({"tasks_peak": Figure(64, Source.KERNEL)}, ["pids-limit"]),
        ({"tasks_peak": Figure(63, Source.KERNEL)}, []),
    ],
    ids=["forks-refused", "at-the-limit", "below"],
)
def test_pids_limit(changes: dict[str, object], expected: list[str]) -> None:
    assert kinds(usage(**changes)) == expected


@pytest.mark.parametrize(
    ("peak", "expected"),
    [
        (240 * MIB, ["memory-near-limit"]),
        (math.ceil(0.9 * 256 * MIB), ["memory-near-limit"]),
        (200 * MIB, []),
    ],
    ids=["above", "at", "below"],
)
def test_memory_near_the_limit(peak: int, expected: list[str]) -> None:
    assert kinds(usage(memory_peak=Figure(peak, Source.KERNEL))) == expected


def test_memory_threshold_comes_from_the_policy() -> None:
    u = usage(memory_peak=Figure(200 * MIB, Source.KERNEL))
    assert kinds(u, thresholds=Monitor(memory_warn=0.75)) == ["memory-near-limit"]
    assert kinds(usage(memory_limit=None)) == []  # no limit, nothing to be near


def test_throttling_above_the_share() -> None:
    assert kinds(usage(throttled_share=Figure(0.25, Source.KERNEL))) == []
    found = judge(usage(throttled_share=Figure(0.8, Source.KERNEL)), DEFAULTS, Ending())
    assert [v.kind for v in found] == ["cpu-throttled"]
    assert found[0].threshold == "25% of CPU periods" and "80%" in found[0].evidence
    assert kinds(usage(throttled_share=NONE)) == []


def test_open_files_growing() -> None:
    grown = (Figure(3, Source.SAMPLED), Figure(503, Source.SAMPLED), Figure(503, Source.SAMPLED))
    assert kinds(usage(open_files=grown)) == ["fd-growth"]
    few = (Figure(3, Source.SAMPLED), Figure(10, Source.SAMPLED), Figure(10, Source.SAMPLED))
    assert kinds(usage(open_files=few)) == []
    assert kinds(usage(open_files=few), thresholds=Monitor(fd_growth_warn=5)) == ["fd-growth"]
    assert kinds(usage(open_files=(NONE, NONE, NONE))) == []


def test_threads_left_unless_the_main_process_waits_for_them() -> None:
    assert kinds(usage(), Ending(threads_left=2)) == ["threads-left"]
    assert kinds(usage(), Ending(threads_left=2, main_waiting=True)) == []
    assert kinds(usage(), Ending(threads_left=0)) == []


def test_errors_come_first_and_warnings_fail_only_when_asked() -> None:
    u = usage(throttled_share=Figure(0.9, Source.KERNEL), fork_failures=Figure(1, Source.KERNEL))
    found = judge(u, DEFAULTS, Ending())
    assert [v.kind for v in found] == ["pids-limit", "cpu-throttled"]
    warned = dataclasses.replace(usage(), violations=found[1:])
    assert not failing(warned, fail_on_violation=False)
    assert failing(warned, fail_on_violation=True)
    assert failing(dataclasses.replace(usage(), violations=found), fail_on_violation=False)
    assert not failing(None, fail_on_violation=True)


def test_the_kernel_counter_beats_the_samples_and_sources_are_kept() -> None:
    samples = [
        Sample(0.0, memory_bytes=10 * MIB, cpu_seconds=0.0, tasks=1, open_files=3, threads=1),
        Sample(1.0, memory_bytes=90 * MIB, cpu_seconds=1.0, tasks=4, open_files=9, threads=5),
        Sample(2.0, memory_bytes=50 * MIB, cpu_seconds=1.5, tasks=2, open_files=5, threads=2),
    ]
    seen = Observed(
        cgroup_version="1",
        counter_source=Source.KERNEL,
        samples=samples,
        live=samples,
        lifetime=2.0,
        memory_peak=120 * MIB,
        nr_periods=20,
        nr_throttled=5,
        cpu_seconds=1.6,
        oom_kills=0,
        fork_failures=0,
    )
    u = build_usage(seen, Limits(256 * MIB, 1.0, 64), duration=2.5, interval=1.0)
    assert u.memory_peak == Figure(120 * MIB, Source.KERNEL)
    assert u.cpu_average == Figure(0.8, Source.KERNEL)
    assert u.cpu_p95 == Figure(1.0, Source.SAMPLED)
    assert u.throttled_share == Figure(0.25, Source.KERNEL)
    assert u.tasks_peak == Figure(4, Source.SAMPLED)  # no pids.peak: the samples' largest
    assert u.open_files == (
        Figure(3, Source.SAMPLED),
        Figure(9, Source.SAMPLED),
        Figure(5, Source.SAMPLED),
    )
    # Without the kernel's peak (v2 before memory.peak) the sampled largest, and it says so.
    sampled = build_usage(
        dataclasses.replace(seen, memory_peak=None), Limits(), duration=2.5, interval=1.0
    )
    assert sampled.memory_peak == Figure(90 * MIB, Source.SAMPLED)
    nothing = build_usage(Observed(), Limits(), duration=1.0, interval=1.0)
    assert not any(
        f.measured
        for f in (nothing.memory_peak, nothing.cpu_average, nothing.cpu_p95, nothing.tasks_peak)
    )


def test_the_summary_names_sources_and_unavailable_figures() -> None:
    u = usage(cpu_p95=NONE, tasks_peak=Figure(3, Source.SAMPLED))
    text = "\n".join(lines(u))
    assert "peak 100.0 MiB of 256 MiB (39%)" in text
    assert "p95 unavailable" in text
    assert "peak 3 of 64 (5%) (sampled)" in text
    assert "3 at start, 3 peak, 3 at end (sampled)" in text
    assert "no violations" in text
    remote_usage = usage(
        cgroup_version=None, open_files=(NONE, NONE, NONE), samples=(Sample(0.0, tasks=1),)
    )
    remote = "\n".join(lines(remote_usage))
    assert "engine stats" in remote and "files    unavailable" in remote


def test_a_counter_the_end_missed_is_the_last_samples_and_says_so() -> None:
    # The engine removed the cgroup before the last read: the counter as of the last sample.
    seen = Observed(
        cgroup_version="1",
        counter_source=Source.KERNEL,
        memory_peak=50 * MIB,
        cpu_seconds=1.0,
        lifetime=1.0,
        stale={"memory_peak"},
    )
    u = build_usage(seen, Limits(), duration=1.0, interval=1.0)
    assert u.memory_peak == Figure(50 * MIB, Source.SAMPLED)
    assert u.cpu_average == Figure(1.0, Source.KERNEL)
