"""Parallel workers: one profile, N containers at once, each told its shard.

Returns how each worker ended and never prints: the CLI reports them. One worker that cannot be
launched (its engine refuses, its mounts cannot be prepared) is that worker's error, not the end
of the others.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from engine.backends.interface import Engine
from engine.launcher.run import run
from engine.launcher.spec import LaunchSpec, RunResult
from engine.logs import logger
from policy.errors import EngineError, Error

if TYPE_CHECKING:
    from engine.monitor.sampler import Sampler

USAGE = 2

WorkerOutcome = RunResult | Error


def shard_specs(base: LaunchSpec, count: int) -> list[LaunchSpec]:
    """`count` launches of `base`, each with SHARD_INDEX and SHARD_COUNT and its own launch id."""
    group = uuid.uuid4().hex[:10]
    return [
        dataclasses.replace(
            base,
            env={**base.env, "SHARD_INDEX": str(index), "SHARD_COUNT": str(count)},
            launch_id=f"{group}-{index}",
        )
        for index in range(count)
    ]


def run_workers(
    engine: Engine,
    specs: list[LaunchSpec],
    on_done: Callable[[int, WorkerOutcome], None] | None = None,
    monitor: bool = True,
    on_start: Callable[[int, Sampler | None], None] | None = None,
) -> list[WorkerOutcome]:
    """Run every spec at once (each sampled unless `monitor=False`); the outcomes in the order
    of `specs`. `on_start(index, sampler)` when a worker's container starts, `on_done(index,
    outcome)` as each ends (from the workers' threads). Ctrl-C removes them all."""
    results: dict[int, WorkerOutcome] = {}
    pool = cf.ThreadPoolExecutor(max_workers=len(specs))

    def started(index: int) -> Callable[[Sampler | None], None] | None:
        if on_start is None:
            return None
        return lambda sampler: on_start(index, sampler)

    try:
        futures = {
            pool.submit(run, engine, spec, monitor=monitor, on_start=started(i)): i
            for i, spec in enumerate(specs)
        }
        for future in cf.as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except Error as exc:
                results[index] = exc
            if on_done:
                on_done(index, results[index])
    except KeyboardInterrupt:
        logger.warning(f"interrupted: stopping {len(specs)} workers")
        for spec in specs:
            with contextlib.suppress(EngineError):
                engine.remove(spec.name)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return [results[i] for i in range(len(specs))]


def combined_exit(
    outcomes: list[WorkerOutcome], exit_of: Callable[[RunResult], int] | None = None
) -> int:
    """The first failing worker's exit code (2 for a worker that could not launch), else 0.
    `exit_of` gives a worker's code (default: its container's)."""
    for outcome in outcomes:
        if isinstance(outcome, Error):
            code = USAGE
        else:
            code = exit_of(outcome) if exit_of else outcome.exit_code
        if code != 0:
            return code
    return 0
