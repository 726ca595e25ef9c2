"""`policy run --workers N` while it runs: each worker's state (starting, running, passed,
failed, ...), elapsed time and memory (the latest sample of its sampler).

On a terminal the board is redrawn in place twice a second (`engine.monitor.view.InPlace`);
otherwise (a CI log) it prints nothing until a worker ends, then that worker's one line.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from engine.launcher.workers import WorkerOutcome
from policy.errors import Error
from policy.units import human_size

if TYPE_CHECKING:
    from engine.monitor.sampler import Sampler

MIB = float(1 << 20)
REFRESH = 0.5  # seconds between redraws on a terminal


@dataclass
class _Worker:
    started: float | None = None
    sampler: Sampler | None = None
    outcome: WorkerOutcome | None = None
    ended: float | None = None


def finished_line(index: int, outcome: WorkerOutcome) -> str:
    """A finished worker in one line: how it ended, its exit code, time and memory peak."""
    if isinstance(outcome, Error):
        return f"worker {index}: error: {outcome}"
    text = f"worker {index}: {outcome.outcome}, exit {outcome.exit_code}, {outcome.duration:.1f}s"
    usage = outcome.usage
    if usage is not None and usage.memory_peak.value is not None:
        limit = f" of {human_size(usage.memory_limit)}" if usage.memory_limit else ""
        text += f", memory peak {usage.memory_peak.value / MIB:.1f} MiB{limit}"
    if usage is not None and usage.violations:
        text += ", violations: " + ", ".join(v.kind for v in usage.violations)
    return text


class Board:
    """What the workers are doing, for `run_workers`' `on_start` and `on_done`."""

    def __init__(self, count: int, stream: TextIO, tty: bool) -> None:
        from engine.monitor.view import InPlace

        self.workers = [_Worker() for _ in range(count)]
        self.stream = stream
        self.tty = tty
        self.view = InPlace(stream)
        self.began = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="policy-board", daemon=True)

    def __enter__(self) -> Board:
        if self.tty:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self.tty:
            self._thread.join(2 * REFRESH)
            self.view.show(self.lines())
            self.view.keep()

    def started(self, index: int, sampler: Sampler | None) -> None:
        self.workers[index].started = time.monotonic()
        self.workers[index].sampler = sampler

    def done(self, index: int, outcome: WorkerOutcome) -> None:
        worker = self.workers[index]
        worker.outcome, worker.ended = outcome, time.monotonic()
        if not self.tty:
            with self.view.lock:
                print(finished_line(index, outcome), file=self.stream, flush=True)

    def lines(self) -> list[str]:
        now = time.monotonic()
        done = sum(w.outcome is not None for w in self.workers)
        out = [f"{done}/{len(self.workers)} workers done, {now - self.began:.1f}s"]
        for index, w in enumerate(self.workers):
            if w.outcome is not None:
                out.append("  " + finished_line(index, w.outcome))
                continue
            state = "running" if w.started is not None else "starting"
            elapsed = now - (w.started if w.started is not None else self.began)
            out.append(f"  worker {index}: {state}, {elapsed:.1f}s{_memory(w.sampler)}")
        return out

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH):
            self.view.show(self.lines())


def _memory(sampler: Sampler | None) -> str:
    if sampler is None or not sampler.seen.samples:
        return ""
    last = sampler.seen.samples[-1].memory_bytes
    if last is None:
        return ""
    limit = sampler.limits.memory
    return f", memory {last / MIB:.1f} MiB" + (f" of {human_size(limit)}" if limit else "")
