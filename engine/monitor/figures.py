"""The shared vocabulary of monitoring: samples, figures with their source, violations, and the
usage summary of one run. Plain frozen dataclasses (no pydantic, no I/O), so that a launch pays
nothing to import them and a store or report can rebuild them from rows."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Source(enum.StrEnum):
    """Where a figure came from: a summary never prints a number that was not measured."""

    KERNEL = (
        "kernel counter"  # the kernel's own counter (memory peak, throttled periods, OOM kills)
    )
    SAMPLED = "sampled"  # the largest (or mean) of the samples taken while it ran
    STATS_API = "engine stats"  # the Engine API's stats stream (a remote engine)
    UNAVAILABLE = "unavailable"  # not measured: the summary says so instead of a number


@dataclass(frozen=True)
class Figure:
    """One measured value (bytes, cores, a count or a share), or None with why not."""

    value: float | None
    source: Source

    @classmethod
    def unavailable(cls) -> Figure:
        return cls(None, Source.UNAVAILABLE)

    @property
    def measured(self) -> bool:
        return self.value is not None and self.source is not Source.UNAVAILABLE


@dataclass(frozen=True)
class Sample:
    """The container at one moment, `t` seconds after it started. None: not readable then."""

    t: float
    memory_bytes: int | None = None  # usage (v1: usage_in_bytes; v2: memory.current)
    working_set_bytes: int | None = None  # usage minus inactive file cache
    cpu_seconds: float | None = None  # cumulative CPU time of the container
    tasks: int | None = None  # pids.current
    open_files: int | None = None  # file descriptors of the container's processes
    threads: int | None = None  # threads of the container's processes


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Violation:
    """A limit reached or a leak seen, with the threshold it crossed and the evidence."""

    kind: str  # oom, timeout, pids-limit, memory-near-limit, cpu-throttled, fd-growth, threads-left
    severity: Severity
    threshold: str  # as the user reads it: "90% of 1 GiB", "25% of CPU periods"
    evidence: str  # what was measured: "peak 980 MiB (kernel counter)"


@dataclass(frozen=True)
class Usage:
    """What one run consumed, against its profile's limits, and what it violated."""

    duration: float
    cgroup_version: str | None  # "1", "2", or None when read through the Engine API
    memory_peak: Figure  # bytes
    memory_limit: int | None  # bytes, from the profile
    cpu_average: Figure  # cores
    cpu_p95: Figure  # cores
    cpu_quota: float | None  # cores, from the profile
    throttled_share: Figure  # share (0..1) of CPU periods throttled
    tasks_peak: Figure
    pids_limit: int | None
    fork_failures: Figure  # pids.events max: forks the kernel refused
    oom_kills: Figure
    open_files: tuple[Figure, Figure, Figure]  # at start, peak, at end
    threads: tuple[Figure, Figure, Figure]  # at start, peak, at end
    samples: tuple[Sample, ...] = ()
    violations: tuple[Violation, ...] = field(default_factory=tuple)
    interval: float = 1.0  # seconds between samples
    sampling_cpu_seconds: float | None = None  # what sampling cost this process

    @property
    def failed(self) -> bool:
        """A violation at error severity."""
        return any(v.severity is Severity.ERROR for v in self.violations)
