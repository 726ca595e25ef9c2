"""From what a sampler observed to the `Usage` of a run: pure, so every figure's source is
decided in one place and tested without an engine.

A kernel counter read at the end beats anything sampled (it saw every moment, the sampler saw
one a second); a sampled figure says so; a figure nobody measured is `Figure.unavailable()`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.monitor.figures import Figure, Sample, Source, Usage


@dataclass
class Observed:
    """Everything one sampler saw of a run (filled in by the sampler's thread)."""

    cgroup_version: str | None = None  # None: through the Engine API
    counter_source: Source = Source.UNAVAILABLE  # KERNEL (cgroup files) or STATS_API
    samples: list[Sample] = field(default_factory=list)
    live: list[Sample] = field(default_factory=list)  # taken while the main process ran
    lifetime: float | None = None  # seconds from start to the main process's end
    memory_peak: int | None = None  # the kernel's peak counter, if it has one
    tasks_peak: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    oom_kills: int | None = None
    fork_failures: int | None = None
    cpu_seconds: float | None = None  # cumulative, at the end
    threads_left: int | None = None
    main_waiting: bool = False
    sampling_cpu_seconds: float | None = None
    # Counters read at the last sample, not the end (the engine removed the cgroup first).
    stale: set[str] = field(default_factory=set)

    def source_of(self, counter: str) -> Source:
        return Source.SAMPLED if counter in self.stale else self.counter_source


@dataclass(frozen=True)
class Limits:
    """The profile's limits the figures are read against."""

    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None


def _largest(samples: Sequence[Sample], value: Callable[[Sample], float | None]) -> Figure:
    values = [v for v in (value(s) for s in samples) if v is not None]
    return Figure(float(max(values)), Source.SAMPLED) if values else Figure.unavailable()


def _counter(value: float | None, source: Source) -> Figure:
    return Figure(float(value), source) if value is not None else Figure.unavailable()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _cpu_rates(samples: Sequence[Sample]) -> list[float]:
    """Cores used between consecutive samples."""
    rates = []
    timed = [s for s in samples if s.cpu_seconds is not None]
    for before, after in itertools.pairwise(timed):
        assert before.cpu_seconds is not None and after.cpu_seconds is not None
        if after.t > before.t:
            rates.append(max(0.0, (after.cpu_seconds - before.cpu_seconds) / (after.t - before.t)))
    return rates


def _at(samples: Sequence[Sample], value: Callable[[Sample], int | None]) -> tuple[Figure, ...]:
    """At the start, the peak, at the end, of the samples that have the value."""
    values = [v for v in (value(s) for s in samples) if v is not None]
    if not values:
        return (Figure.unavailable(),) * 3
    return (
        Figure(float(values[0]), Source.SAMPLED),
        Figure(float(max(values)), Source.SAMPLED),
        Figure(float(values[-1]), Source.SAMPLED),
    )


def build_usage(seen: Observed, limits: Limits, duration: float, interval: float) -> Usage:
    """The run's `Usage` (without violations: `violations.with_violations` adds them)."""
    source = seen.source_of
    if seen.memory_peak is not None:
        memory_peak = Figure(float(seen.memory_peak), source("memory_peak"))
    else:  # v2 before memory.peak (Linux 5.19), or a stats stream without max_usage
        memory_peak = _largest(seen.samples, lambda s: s.memory_bytes)
    lifetime = seen.lifetime if seen.lifetime else duration
    if seen.cpu_seconds is not None and lifetime > 0:
        cpu_average = Figure(seen.cpu_seconds / lifetime, source("cpu_seconds"))
    else:
        cpu_average = Figure.unavailable()
    rates = _cpu_rates(seen.samples)
    cpu_p95 = Figure(_p95(rates), Source.SAMPLED) if rates else Figure.unavailable()
    if seen.nr_periods is not None and seen.nr_throttled is not None:
        share = seen.nr_throttled / seen.nr_periods if seen.nr_periods else 0.0
        throttled = Figure(share, source("nr_throttled"))
    else:
        throttled = Figure.unavailable()
    if seen.tasks_peak is not None:
        tasks_peak = Figure(float(seen.tasks_peak), source("tasks_peak"))
    else:
        tasks_peak = _largest(seen.samples, lambda s: s.tasks)
    open_files = _at(seen.live, lambda s: s.open_files)
    threads = _at(seen.live, lambda s: s.threads)
    return Usage(
        duration=duration,
        cgroup_version=seen.cgroup_version,
        memory_peak=memory_peak,
        memory_limit=limits.memory,
        cpu_average=cpu_average,
        cpu_p95=cpu_p95,
        cpu_quota=limits.cpus,
        throttled_share=throttled,
        tasks_peak=tasks_peak,
        pids_limit=limits.pids,
        fork_failures=_counter(seen.fork_failures, source("fork_failures")),
        oom_kills=_counter(seen.oom_kills, source("oom_kills")),
        open_files=(open_files[0], open_files[1], open_files[2]),
        threads=(threads[0], threads[1], threads[2]),
        samples=tuple(seen.samples),
        interval=interval,
        sampling_cpu_seconds=seen.sampling_cpu_seconds,
    )
