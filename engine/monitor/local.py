"""A container's figures read from this machine's cgroup files and /proc (a local engine).

Each counter file is opened once and re-read with `pread`: a sample is a handful of reads of
already-open files, not a path walk per file. The process list (`cgroup.procs`) gives the
container's processes, whose `/proc/<pid>/fd` and `/proc/<pid>/task` are counted for open files
and threads. A file the kernel does not have (v2 `memory.peak` before Linux 5.19, v1
`oom_kill` before 4.13) reads as None, and the figure built on it says so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from engine.monitor.cgroups import CgroupDirs
from engine.monitor.figures import Sample

PROC = Path("/proc")

# (controller, file) per quantity and cgroup version.
_V1 = {
    "usage": ("memory", "memory.usage_in_bytes"),
    "peak": ("memory", "memory.max_usage_in_bytes"),
    "memory_stat": ("memory", "memory.stat"),
    "oom": ("memory", "memory.oom_control"),
    "cpu_usage": ("cpuacct", "cpuacct.usage"),
    "cpu_stat": ("cpu", "cpu.stat"),
    "pids": ("pids", "pids.current"),
    "pids_peak": ("pids", "pids.peak"),
    "pids_events": ("pids", "pids.events"),
    "procs": ("pids", "cgroup.procs"),
}
_V2 = {
    "usage": ("memory", "memory.current"),
    "peak": ("memory", "memory.peak"),
    "memory_stat": ("memory", "memory.stat"),
    "oom": ("memory", "memory.events"),
    "cpu_stat": ("cpu", "cpu.stat"),
    "pids": ("pids", "pids.current"),
    "pids_peak": ("pids", "pids.peak"),
    "pids_events": ("pids", "pids.events"),
    "procs": ("pids", "cgroup.procs"),
}


@dataclass(frozen=True)
class Counters:
    """The kernel's own cumulative counters at one moment (None: the kernel has no such file)."""

    memory_peak: int | None = None
    tasks_peak: int | None = None
    nr_periods: int | None = None
    nr_throttled: int | None = None
    oom_kills: int | None = None
    fork_failures: int | None = None
    cpu_seconds: float | None = None


@dataclass(frozen=True)
class Processes:
    """The container's processes at one moment, as open files and threads count them."""

    open_files: int | None
    threads: int | None
    others: int  # threads of processes other than the main one
    main_waiting: bool  # the main process was blocked waiting for a child


def _keyed(text: str | None) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat, memory.events, pids.events) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        with contextlib.suppress(ValueError):
            out[key] = int(value)
    return out


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None  # "max" where a number was expected: not a measurement


class CgroupReader:
    """Reads one container's cgroup (directories `dirs`) and its processes' /proc entries."""

    def __init__(self, dirs: CgroupDirs, main_pid: int, proc: Path = PROC) -> None:
        self.dirs = dirs
        self.main_pid = main_pid
        self.proc = proc
        self._fds: dict[str, int] = {}
        self._procs: Path | None = None
        for name, (controller, filename) in (_V2 if dirs.version == "2" else _V1).items():
            directory = dirs.directory(controller)
            if directory is None and name == "procs":
                directory = dirs.directory("memory")  # any hierarchy lists the processes
            if directory is None:
                continue
            if name == "procs":
                # Opened afresh for each sample: re-read through one open file, the kernel's
                # task iterator goes on from where it was and misses processes started since.
                self._procs = directory / filename
                continue
            with contextlib.suppress(OSError):
                self._fds[name] = os.open(directory / filename, os.O_RDONLY | os.O_CLOEXEC)

    @property
    def readable(self) -> bool:
        """Whether any counter file could be opened (the cgroup was there)."""
        return bool(self._fds)

    def _read(self, name: str) -> str | None:
        fd = self._fds.get(name)
        if fd is None:
            return None
        try:
            data = os.pread(fd, 1 << 16, 0)
        except OSError:
            return None  # the cgroup was removed under us (ENODEV): the container has gone
        return data.decode(errors="replace")

    def sample(self, t: float) -> tuple[Sample, Processes]:
        """The container now, `t` seconds after it started."""
        usage = _number(self._read("usage"))
        stat = _keyed(self._read("memory_stat"))
        # Working set as the engine and kubelet count it: usage minus the inactive file cache.
        inactive = stat.get("total_inactive_file", stat.get("inactive_file"))
        working = None if usage is None else max(0, usage - (inactive or 0))
        processes = self.processes()
        return (
            Sample(
                t=t,
                memory_bytes=usage,
                working_set_bytes=working,
                cpu_seconds=self._cpu_seconds(),
                tasks=_number(self._read("pids")),
                open_files=processes.open_files,
                threads=processes.threads,
            ),
            processes,
        )

    def _cpu_seconds(self) -> float | None:
        if self.dirs.version == "2":
            usec = _keyed(self._read("cpu_stat")).get("usage_usec")
            return None if usec is None else usec / 1e6
        nanoseconds = _number(self._read("cpu_usage"))
        return None if nanoseconds is None else nanoseconds / 1e9

    def counters(self) -> Counters:
        """The kernel's cumulative counters now."""
        cpu = _keyed(self._read("cpu_stat"))
        # v1 memory.oom_control and v2 memory.events both carry an `oom_kill` line.
        oom = _keyed(self._read("oom"))
        events = _keyed(self._read("pids_events"))
        return Counters(
            memory_peak=_number(self._read("peak")),
            tasks_peak=_number(self._read("pids_peak")),
            nr_periods=cpu.get("nr_periods"),
            nr_throttled=cpu.get("nr_throttled"),
            oom_kills=oom.get("oom_kill"),
            fork_failures=events.get("max") if "pids_events" in self._fds else None,
            cpu_seconds=self._cpu_seconds(),
        )

    def processes(self) -> Processes:
        """Open files and threads of every process in the cgroup; a process that exits while
        it is counted counts as what was read of it."""
        try:
            listed = self._procs.read_text() if self._procs else None
        except OSError:
            listed = None
        if listed is None:
            return Processes(None, None, 0, False)
        files = threads = others = 0
        counted_files = False  # another user's fds may be unreadable: then unavailable, not 0
        for pid in (int(p) for p in listed.split() if p.isdigit()):
            with contextlib.suppress(OSError):
                files += len(os.listdir(self.proc / str(pid) / "fd"))
                counted_files = True
            try:
                count = len(os.listdir(self.proc / str(pid) / "task"))
            except OSError:
                continue
            threads += count
            if pid != self.main_pid:
                others += count
        return Processes(files if counted_files else None, threads, others, self._main_waiting())

    def _main_waiting(self) -> bool:
        # Children are expected while the main process waits for them (a shell running the
        # tests): only those it is not waiting for are left behind when it ends.
        try:
            wchan = (self.proc / str(self.main_pid) / "wchan").read_text()
        except OSError:
            return False
        # do_wait: wait(2) and its kin; sigsuspend: a shell's `wait` builtin (busybox ash, dash)
        # sleeps there until SIGCHLD.
        return "wait" in wchan or "sigsuspend" in wchan

    def close(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()
