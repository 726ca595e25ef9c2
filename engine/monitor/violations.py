"""The violations of one run: pure rules over its `Usage` and how it ended.

Errors are limits the kernel enforced (an OOM kill, refused forks) or the profile's timeout;
warnings are runs that came close (memory peak near the limit, heavy CPU throttling) or left
something behind (files still open, processes still running when the main process ended).
Each names its threshold as the user wrote it and the evidence with where it came from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from engine.monitor.figures import Figure, Severity, Usage, Violation
from policy.model import Monitor
from policy.units import format_duration, human_size


@dataclass(frozen=True)
class Ending:
    """How the run ended, beyond its usage: what the launcher and the last sample saw."""

    timed_out: bool = False
    oom_killed: bool = False  # the engine's word (inspect's OOMKilled)
    timeout: float | None = None  # the profile's, seconds
    threads_left: int | None = None  # threads besides the main process at its end
    main_waiting: bool = False  # ... while the main process was waiting for its children


def _source(figure: Figure) -> str:
    return figure.source.value


def _pct(share: float) -> str:
    return f"{share * 100:.0f}%"


def judge(usage: Usage, thresholds: Monitor, ending: Ending) -> tuple[Violation, ...]:
    """Every violation of the run, errors first."""
    found: list[Violation] = []
    limit = usage.memory_limit
    oom_kills = usage.oom_kills.value if usage.oom_kills.measured else None
    if ending.oom_killed or (oom_kills or 0) > 0:
        evidence = (
            f"{int(oom_kills)} OOM kill(s) ({_source(usage.oom_kills)})"
            if oom_kills
            else "the engine reports the container killed for memory"
        )
        found.append(
            Violation(
                "oom",
                Severity.ERROR,
                f"memory {human_size(limit)}" if limit else "no memory limit",
                evidence,
            )
        )
    if ending.timed_out:
        allowed = format_duration(ending.timeout) if ending.timeout else "the timeout"
        found.append(
            Violation(
                "timeout",
                Severity.ERROR,
                f"timeout {allowed}",
                f"still running after {format_duration(round(usage.duration, 1))}",
            )
        )
    found.extend(_pids(usage))
    peak = usage.memory_peak
    if limit and peak.measured and not found_kind(found, "oom"):
        assert peak.value is not None
        share = peak.value / limit
        if share >= thresholds.memory_warn:
            found.append(
                Violation(
                    "memory-near-limit",
                    Severity.WARNING,
                    f"{_pct(thresholds.memory_warn)} of {human_size(limit)}",
                    f"peak {_mib(peak.value)} ({_pct(share)}, {_source(peak)})",
                )
            )
    throttled = usage.throttled_share
    if throttled.value is not None and throttled.value > thresholds.throttle_warn:
        found.append(
            Violation(
                "cpu-throttled",
                Severity.WARNING,
                f"{_pct(thresholds.throttle_warn)} of CPU periods",
                f"throttled in {_pct(throttled.value)} of periods ({_source(throttled)})",
            )
        )
    start, _, end = usage.open_files
    if start.measured and end.measured and start.value is not None and end.value is not None:
        growth = end.value - start.value
        if growth >= thresholds.fd_growth_warn:
            found.append(
                Violation(
                    "fd-growth",
                    Severity.WARNING,
                    f"{thresholds.fd_growth_warn} more open files at the end than at the start",
                    f"{int(start.value)} at the start, {int(end.value)} at the end "
                    f"(+{int(growth)}, {_source(end)})",
                )
            )
    if ending.threads_left and not ending.main_waiting and not ending.timed_out:
        found.append(
            Violation(
                "threads-left",
                Severity.WARNING,
                "no threads besides the main process when it ends",
                f"{ending.threads_left} thread(s) of other processes still running in the "
                "last sample before the main process ended, which was not waiting for them",
            )
        )
    return tuple(sorted(found, key=lambda v: v.severity is not Severity.ERROR))


def _pids(usage: Usage) -> list[Violation]:
    refused = usage.fork_failures
    peak = usage.tasks_peak
    limit = usage.pids_limit
    refusals = int(refused.value) if refused.measured and refused.value else 0
    at_limit = bool(limit and peak.measured and peak.value is not None and peak.value >= limit)
    if not refusals and not at_limit:
        return []
    parts = []
    if refusals:
        parts.append(f"{refusals} fork(s) refused ({_source(refused)})")
    if peak.measured and peak.value is not None:
        parts.append(f"peak {int(peak.value)} tasks ({_source(peak)})")
    return [
        Violation(
            "pids-limit",
            Severity.ERROR,
            f"pids_limit {limit}" if limit else "the engine's task limit",
            ", ".join(parts),
        )
    ]


def found_kind(violations: list[Violation], kind: str) -> bool:
    return any(v.kind == kind for v in violations)


def _mib(value: float) -> str:
    return f"{value / (1 << 20):.1f} MiB"


def with_violations(usage: Usage, thresholds: Monitor, ending: Ending) -> Usage:
    """`usage` carrying its violations."""
    return dataclasses.replace(usage, violations=judge(usage, thresholds, ending))


def failing(usage: Usage | None, fail_on_violation: bool) -> bool:
    """Whether the run's violations fail it: any error, and with `fail_on_violation` any
    warning too."""
    if usage is None:
        return False
    return usage.failed or (fail_on_violation and bool(usage.violations))
