"""The short summary of a run's `Usage` that `policy run` prints on stderr: lines, no I/O.

A figure from the kernel's own counter is printed bare; any other says where it came from
("sampled", "engine stats"), and one nobody measured reads "unavailable".
"""

from __future__ import annotations

from engine.monitor.figures import Figure, Source, Usage
from policy.units import format_duration, human_size

MIB = 1 << 20


def _tag(figure: Figure) -> str:
    return "" if figure.source is Source.KERNEL else f" ({figure.source.value})"


def _mib(figure: Figure) -> str:
    assert figure.value is not None
    return f"{figure.value / MIB:.1f} MiB"


def _of(figure: Figure, limit: float | None, show: str, unit_limit: str) -> str:
    if not figure.measured or figure.value is None:
        return "unavailable"
    if not limit:
        return f"{show}{_tag(figure)}, no limit"
    return f"{show} of {unit_limit} ({figure.value / limit * 100:.0f}%){_tag(figure)}"


def _cores(figure: Figure) -> str:
    if not figure.measured or figure.value is None:
        return "unavailable"
    return f"{figure.value:.2f}{_tag(figure)}"


def _three(figures: tuple[Figure, Figure, Figure]) -> str:
    start, peak, _ = figures
    if not any(f.measured for f in figures):
        return "unavailable"
    show = [str(int(f.value)) if f.measured and f.value is not None else "?" for f in figures]
    sources = {f.source for f in figures if f.measured}
    tag = _tag(start if start.measured else peak) if len(sources) == 1 else ""
    return f"{show[0]} at start, {show[1]} peak, {show[2]} at end{tag}"


def lines(usage: Usage, prefix: str = "") -> list[str]:
    """The summary, one figure a line, then the violations."""
    if usage.cgroup_version:
        cgroup = f"cgroup v{usage.cgroup_version}"
    else:
        cgroup = "engine stats" if usage.samples else "ended before its first sample"
    memory = usage.memory_peak
    limit = usage.memory_limit
    memory_text = _of(
        memory, limit, _mib(memory) if memory.measured else "", human_size(limit) if limit else ""
    )
    quota = f"quota {usage.cpu_quota:g} cores" if usage.cpu_quota else "no quota"
    throttled = usage.throttled_share
    throttled_text = (
        f"throttled in {throttled.value * 100:.0f}% of periods{_tag(throttled)}"
        if throttled.measured and throttled.value is not None
        else "throttling unavailable"
    )
    tasks = usage.tasks_peak
    tasks_text = _of(
        tasks,
        usage.pids_limit,
        str(int(tasks.value)) if tasks.measured and tasks.value is not None else "",
        str(usage.pids_limit),
    )
    cost = usage.sampling_cpu_seconds
    cost_text = f", sampling {cost * 1000:.1f} ms CPU" if cost is not None else ""
    out = [
        f"monitor: {format_duration(round(usage.duration, 1))}, {cgroup}, "
        f"a sample every {format_duration(usage.interval)}{cost_text}",
        f"  memory   peak {memory_text}",
        f"  cpu      average {_cores(usage.cpu_average)} cores, p95 {_cores(usage.cpu_p95)}; "
        f"{quota}; {throttled_text}",
        f"  tasks    peak {tasks_text}",
        f"  files    {_three(usage.open_files)}",
        f"  threads  {_three(usage.threads)}",
    ]
    if not usage.violations:
        out.append("  no violations")
    for v in usage.violations:
        out.append(f"  {v.severity.value:<8} {v.kind}: {v.evidence} (threshold: {v.threshold})")
    return [prefix + line for line in out]
