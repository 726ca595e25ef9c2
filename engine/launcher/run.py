"""Launch a container only through a vetted profile: `run` to its end, or `detached`.

create -> verify (`verify.create_verified`) -> start only if identical -> stream output and
sample usage (`engine.monitor.sampler`) -> wait with the profile's timeout -> stop, then kill, on
timeout -> report exit code, timing, OOM, usage and violations -> remove. An interrupt at any
step removes the container.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine import history
from engine.backends.interface import ContainerInspect, Engine
from engine.history.facts import launch_facts
from engine.history.interface import LaunchRecord
from engine.launcher.output import OutputPump, OutputSink
from engine.launcher.spec import LaunchSpec, RunResult
from engine.launcher.verify import create_verified, remove_reliably
from policy import units
from policy.model import Profile

if TYPE_CHECKING:
    from engine.monitor.sampler import Sampler

EXIT_TIMEOUT = 124
EXIT_OOM = 137
STOP_GRACE = 1.0  # seconds between SIGTERM and SIGKILL when a timeout stops a container


@dataclass
class _Progress:
    """What a run has reached so far, for the result and the record whatever ends it."""

    started: float = field(default_factory=time.monotonic)
    container: str = ""
    exit_code: int = -1
    timed_out: bool = False
    interrupted: bool = False
    running: bool = False
    inspect: ContainerInspect | None = None
    output: OutputPump | None = None
    sampler: Sampler | None = None


def run(
    engine: Engine,
    spec: LaunchSpec,
    sink: OutputSink | None = None,
    keep: bool = False,
    on_timeout: Callable[[float], None] | None = None,
    monitor: bool = True,
    on_start: Callable[[Sampler | None], None] | None = None,
) -> RunResult:
    """Launch, stream, sample (unless `monitor=False`), wait (with the profile's timeout) and
    remove; see the module docstring. `on_start` is told the container started (and its
    sampler, for a live view: `launcher/board.py`)."""
    at = _Progress()
    try:
        at.container = create_verified(engine, spec)
        at.output = OutputPump(engine.attach(at.container), sink)
        engine.start(at.container)
        at.running = True
        if monitor:
            from engine.monitor.sampler import Sampler

            at.sampler = Sampler(engine, at.container, spec.profile).start()
        if on_start:
            on_start(at.sampler)
        try:
            at.exit_code = engine.wait(at.container, spec.profile.timeout)
        except TimeoutError:
            at.timed_out = True
            if on_timeout and spec.profile.timeout:
                on_timeout(spec.profile.timeout)
            engine.stop(at.container, STOP_GRACE)
            at.exit_code = EXIT_TIMEOUT
        at.inspect = engine.inspect_container(at.container)
    except KeyboardInterrupt:
        at.interrupted = True
        raise
    finally:
        result = _finish(engine, spec, at, keep)
    return result


def _finish(engine: Engine, spec: LaunchSpec, at: _Progress, keep: bool) -> RunResult:
    """Remove the container (unless kept), then the result and its record."""
    duration = time.monotonic() - at.started
    oom = at.inspect is not None and at.inspect.state.oom_killed and not at.timed_out
    # Between the wait and the removal: the sampler has read the cgroup's last counters the
    # moment the main process ended, and is stopped here before its container goes.
    usage = (
        at.sampler.finish(duration, timed_out=at.timed_out, oom_killed=oom) if at.sampler else None
    )
    facts = launch_facts(engine, spec) if at.container else None  # asked while it is removed
    left_behind = False
    if at.container and (at.interrupted or not keep):
        left_behind = not remove_reliably(engine, at.container)
    elif at.interrupted:
        left_behind = not remove_reliably(engine, spec.name)
    result = RunResult(
        exit_code=EXIT_OOM if oom else at.exit_code,
        # A stream that never started never ends: do not wait for it.
        output=at.output.text(wait=5.0 if at.running else 0.0) if at.output else "",
        duration=duration,
        timed_out=at.timed_out,
        oom_killed=oom,
        container_id=at.container,
        profile=spec.profile.name,
        digest=spec.walked.digest,
        image=spec.walked.image,
        launch_id=spec.launch_id,
        interrupted=at.interrupted,
        usage=usage,
    )
    if at.container:
        history.record(
            _record(
                spec,
                at.container,
                result.outcome,
                image_id=at.inspect.image if at.inspect else None,
                exit_code=result.exit_code,
                duration=round(duration, 3),
                left_behind=left_behind,
                **(facts.fields(usage) if facts else {}),
            )
        )
    return result


def _record(spec: LaunchSpec, container: str, outcome: str, **ending: object) -> LaunchRecord:
    return LaunchRecord.model_validate(
        {
            "profile": spec.profile.name,
            "digest": spec.walked.digest,
            "image": spec.walked.image,
            "container_id": container,
            "launch_id": spec.launch_id,
            "command": list(spec.command),
            "outcome": outcome,
            "policy": spec.policy_file,
            **ending,
        }
    )


def describe_oom(profile: Profile) -> str:
    limit = f"limit {units.human_size(profile.memory)}" if profile.memory else "no limit"
    return f"killed: out of memory, {limit}"


@contextlib.contextmanager
def detached(engine: Engine, spec: LaunchSpec, remove: bool = True) -> Iterator[str]:
    """A verified container running under the profile, removed on exit (unless `remove=False`)."""
    container = create_verified(engine, spec)
    try:
        engine.start(container)
        history.record(_record(spec, container, "detached"))
        yield container
    finally:
        if remove:
            remove_reliably(engine, container)
