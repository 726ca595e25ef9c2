"""`policy monitor CONTAINER`: a running container sampled as a launch is (`sampler.Sampler`),
its figures handed out as they come, until its main process ends or the user stops watching.

The limits are the engine's (the container's HostConfig: memory, NanoCpus or CpuQuota/Period,
PidsLimit), so any container can be watched, launched by `policy` or not; the thresholds are
the policy's defaults (`policy.model.Monitor`). Open files "at start" are those at the first
sample after watching began.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from engine.backends.interface import ContainerInspect, Engine
from engine.monitor.figures import Sample, Usage
from engine.monitor.summary import MIB
from engine.monitor.usage import Limits
from policy.errors import EngineError
from policy.units import human_size


@dataclass(frozen=True)
class Watched:
    """How watching ended: the usage over the time watched, and whether the user stopped it."""

    usage: Usage
    interrupted: bool
    name: str


def limits_of(inspect: ContainerInspect) -> Limits:
    """The container's limits as the engine holds them (0 or -1: none)."""
    host = inspect.host_config
    cpus = None
    if host.nano_cpus:
        cpus = host.nano_cpus / 1e9
    elif host.cpu_quota and host.cpu_quota > 0 and host.cpu_period:
        cpus = host.cpu_quota / host.cpu_period
    pids = host.pids_limit if host.pids_limit and host.pids_limit > 0 else None
    return Limits(host.memory or None, cpus, pids)


def running(engine: Engine, container: str) -> ContainerInspect:
    """The container, which must exist and run (else an `EngineError`, exit 2)."""
    inspect = engine.inspect_if_exists(container)
    if inspect is None:
        raise EngineError(f"no container {container!r} on {engine.name}")
    if inspect.state.status != "running" or not inspect.state.pid:
        raise EngineError(
            f"container {container!r} is not running (it is {inspect.state.status or 'unknown'})"
        )
    return inspect


def watch(
    engine: Engine, container: str, on_sample: Callable[[Usage], None], interval: float = 1.0
) -> Watched:
    """Sample `container` every `interval` seconds, calling `on_sample` with the usage so far,
    until its main process ends (then the kernel's counters, as at the end of a launch) or
    Ctrl-C (then the usage so far)."""
    from engine.monitor.sampler import Sampler
    from policy.model import Monitor

    inspect = running(engine, container)
    thresholds = Monitor(interval=interval)
    sampler = Sampler(engine, inspect.id, None, limits=limits_of(inspect), thresholds=thresholds)
    started = time.monotonic()
    sampler.start()
    interrupted = False
    try:
        while sampler.running:
            sampler.wait(interval)
            if sampler.seen.samples:
                on_sample(sampler.snapshot(time.monotonic() - started))
    except KeyboardInterrupt:
        interrupted = True
    ended = engine.inspect_if_exists(inspect.id)
    oom = bool(ended and ended.state.oom_killed) and not interrupted
    usage = sampler.finish(time.monotonic() - started, timed_out=False, oom_killed=oom)
    return Watched(usage, interrupted, inspect.short_name)


def _last(usage: Usage) -> Sample | None:
    return usage.samples[-1] if usage.samples else None


def line(usage: Usage) -> str:
    """One line of the latest sample against the limits (the plain, non-terminal view)."""
    last = _last(usage)
    if last is None:
        return f"{usage.duration:6.1f}s  no sample yet"
    parts = [f"{usage.duration:6.1f}s"]
    if last.memory_bytes is not None:
        limit = usage.memory_limit
        of = f" of {human_size(limit)} ({last.memory_bytes / limit * 100:.0f}%)" if limit else ""
        parts.append(f"memory {last.memory_bytes / MIB:.1f} MiB{of}")
    cpu = usage.samples[-2:] if len(usage.samples) > 1 else ()
    if len(cpu) == 2 and cpu[0].cpu_seconds is not None and cpu[1].cpu_seconds is not None:
        span = cpu[1].t - cpu[0].t
        if span > 0:
            quota = f" of {usage.cpu_quota:g}" if usage.cpu_quota else ""
            parts.append(f"cpu {(cpu[1].cpu_seconds - cpu[0].cpu_seconds) / span:.2f}{quota} cores")
    if last.tasks is not None:
        parts.append(
            f"tasks {last.tasks}" + (f" of {usage.pids_limit}" if usage.pids_limit else "")
        )
    if last.open_files is not None:
        parts.append(f"files {last.open_files}")
    if last.threads is not None:
        parts.append(f"threads {last.threads}")
    if usage.violations:
        parts.append("violations: " + ", ".join(v.kind for v in usage.violations))
    return ", ".join(parts)
