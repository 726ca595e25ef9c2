"""The sampler that runs beside a launch: one thread per container, from its start to its end.

When the container's main process is in this machine's /proc (`engine.audit.deep.owned_by`),
the thread reads the cgroup files directly (`local.py`) and waits on a pidfd of the main
process between samples: the moment it exits, the thread reads the kernel's counters one last
time, before the engine removes the cgroup (on Docker that happens before `wait` returns, so the
launcher could not do it after). Otherwise it follows the Engine API's stats stream, one frame a
second on one connection. `finish` stops it and gives the run's `Usage`.

What sampling costs is the CPU time of this thread (`time.thread_time`), in
`Usage.sampling_cpu_seconds`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine.monitor.figures import Sample, Source, Usage
from engine.monitor.usage import Limits, Observed, build_usage
from engine.monitor.violations import Ending, with_violations

if TYPE_CHECKING:
    from engine.backends.interface import ContainerStats, Engine, StatsStream
    from engine.monitor.local import CgroupReader
    from policy.model import Monitor, Profile

PROC = Path("/proc")
# The kernel's counters `Observed` takes from `local.Counters`.
_COUNTERS = (
    "memory_peak",
    "tasks_peak",
    "nr_periods",
    "nr_throttled",
    "oom_kills",
    "fork_failures",
    "cpu_seconds",
)
JOIN = 5.0  # seconds `finish` waits for the thread's last reads


class Sampler:
    """Samples container `container` on `engine` every `thresholds.interval` seconds, judged
    against `profile` (a launch), or against `limits` and `thresholds` (`policy monitor`, for
    a container already running, whose limits are read from the engine)."""

    def __init__(
        self,
        engine: Engine,
        container: str,
        profile: Profile | None,
        *,
        local: bool | None = None,  # None: local when the process is visible here
        proc: Path = PROC,
        limits: Limits | None = None,
        thresholds: Monitor | None = None,
    ) -> None:
        self.engine = engine
        self.container = container
        if profile is not None:
            self.thresholds: Monitor = profile.monitor
            self.limits = Limits(profile.memory, profile.cpus, profile.pids_limit)
            self.timeout = profile.timeout
        else:
            assert limits is not None and thresholds is not None
            self.thresholds, self.limits, self.timeout = thresholds, limits, None
        self.interval = self.thresholds.interval
        self.local = local
        self.proc = proc
        self.seen = Observed()
        self.started = time.monotonic()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._stream: StatsStream | None = None
        self._thread = threading.Thread(target=self._run, name="policy-sampler", daemon=True)

    def start(self) -> Sampler:
        self.started = time.monotonic()
        self._thread.start()
        return self

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        begun = time.thread_time()
        try:
            state = self.engine.inspect_container(self.container).state
            if state.status != "running" or not state.pid:
                return  # it ended before the first sample: nothing was measured
            if self.local is not False and self._sample_locally(state.pid):
                return
            if self.local is not True and not self._ended_already(state.pid):
                self._follow_stats()
        except Exception:  # a sampler that fails leaves its figures unavailable
            pass  # never the launch: what was not measured is reported as unavailable
        finally:
            self.seen.sampling_cpu_seconds = time.thread_time() - begun

    def _now(self) -> float:
        return time.monotonic() - self.started

    def _sample_locally(self, pid: int) -> bool:
        """Sample through the cgroup files until the main process ends; False when they are not
        this machine's (an engine elsewhere, or a process that has already gone)."""
        from engine.audit.deep import owned_by
        from engine.monitor.cgroups import locate
        from engine.monitor.local import CgroupReader

        try:
            # The pidfd first: it is this very process (a pid number could be reused).
            pidfd = os.pidfd_open(pid)
        except OSError:
            return False
        try:
            if not owned_by(pid, self.container, self.proc):
                return False
            try:
                dirs = locate(
                    (self.proc / str(pid) / "cgroup").read_text(),
                    (self.proc / "self" / "mountinfo").read_text(),
                )
            except OSError:
                return False
            if dirs is None:
                return False
            reader = CgroupReader(dirs, pid, self.proc)
            if not reader.readable:
                return False
            try:
                self.seen.cgroup_version = dirs.version
                self.seen.counter_source = Source.KERNEL
                self._local_loop(reader, pidfd)
            finally:
                reader.close()
            return True
        finally:
            os.close(pidfd)

    def _local_loop(self, reader: CgroupReader, pidfd: int) -> None:
        from engine.monitor.local import Counters

        ended = False
        last = Counters()
        while not ended:
            sample, processes = reader.sample(self._now())
            # Exited while it was being sampled? Then its processes were not all counted.
            ended = _readable(pidfd, 0)
            self.seen.samples.append(sample)
            if not ended:
                self.seen.live.append(sample)
                self.seen.threads_left = processes.others
                self.seen.main_waiting = processes.main_waiting
                # Kept in case the last read loses the race with the engine's removal.
                last = reader.counters()
            if not ended:
                ready = select.select([pidfd, self._wake_r], [], [], self.interval)[0]
                ended = pidfd in ready
                if self._wake_r in ready:
                    break  # `finish` was called while the main process still runs
        if ended:
            self.seen.lifetime = self._now()
        # Right after the main process ended, before the engine removes the cgroup.
        final = reader.counters()
        for name in _COUNTERS:
            value = getattr(final, name)
            if value is None and getattr(last, name) is not None:
                # The engine removed the cgroup first: the last sample's reading, said so.
                value = getattr(last, name)
                self.seen.stale.add(name)
            setattr(self.seen, name, value)

    def _ended_already(self, pid: int) -> bool:
        # Its process was visible here but has gone: a local container that ended before its
        # first sample, not an engine elsewhere.
        return not (self.proc / str(pid)).exists() and (
            self.engine.inspect_container(self.container).state.status != "running"
        )

    def _follow_stats(self) -> None:
        """Sample through the Engine API's stats stream (an engine on another machine)."""
        self._stream = stream = self.engine.stats(self.container)
        if self._stop.is_set():
            stream.close()
            return
        self.seen.counter_source = Source.STATS_API
        # The engine's pace is one frame a second whatever `interval` asks: it is what the
        # Engine API offers without a request per sample.
        for frame in stream:
            if self._stop.is_set():
                break
            if frame.memory_stats.usage is None and not frame.pids_stats.current:
                break  # the engine's frames of a stopped container are empty
            self._take_frame(frame, self._now())

    def _take_frame(self, frame: ContainerStats, now: float) -> None:
        memory = frame.memory_stats
        usage = memory.usage
        stat = memory.stats or {}
        inactive = stat.get("total_inactive_file", stat.get("inactive_file"))
        total = frame.cpu_stats.cpu_usage.total_usage
        sample = Sample(
            t=now,
            memory_bytes=usage,
            working_set_bytes=None if usage is None else max(0, usage - (inactive or 0)),
            cpu_seconds=None if total is None else total / 1e9,
            tasks=frame.pids_stats.current,
        )
        self.seen.samples.append(sample)
        self.seen.live.append(sample)
        self.seen.memory_peak = memory.max_usage or None  # cgroup v1 engines only
        throttling = frame.cpu_stats.throttling_data
        self.seen.nr_periods = throttling.periods
        self.seen.nr_throttled = throttling.throttled_periods
        self.seen.cpu_seconds = sample.cpu_seconds
        self.seen.lifetime = now

    # -- the launcher's side ---------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the thread still samples (it ends with the container's main process)."""
        return self._thread.is_alive()

    def wait(self, seconds: float) -> None:
        """Return after `seconds`, or sooner when sampling ends."""
        self._thread.join(seconds)

    def snapshot(self, duration: float) -> Usage:
        """The usage so far, while it runs: sampled figures (the kernel's counters are read at
        the end), and the violations they show already."""
        seen = self.seen
        now = dataclasses.replace(
            seen, samples=list(seen.samples), live=list(seen.live), stale=set(seen.stale)
        )
        usage = build_usage(now, self.limits, duration, self.interval)
        return with_violations(usage, self.thresholds, Ending(timeout=self.timeout))

    def finish(self, duration: float, *, timed_out: bool, oom_killed: bool) -> Usage:
        """Stop sampling (the container has ended or is about to be removed) and judge the run."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        if self._stream is not None:
            self._stream.close()
        self._thread.join(JOIN)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        seen = self.seen
        usage = build_usage(seen, self.limits, duration, self.interval)
        ending = Ending(
            timed_out=timed_out,
            oom_killed=oom_killed,
            timeout=self.timeout,
            threads_left=seen.threads_left,
            main_waiting=seen.main_waiting,
        )
        return with_violations(usage, self.thresholds, ending)


def _readable(fd: int, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])
