"""The Python API: launch test containers through vetted profiles from Python code.

    import engine
    result = engine.launch("isolation", ["sh", "-c", "make test"])
    assert result.exit_code == 0, result.output
    print(result.usage.memory_peak)  # what it consumed (engine.monitor.figures.Usage)

    with engine.container("full", ["sleep", "600"]) as running:
        ...  # running.id is verified against the profile; removed on exit

Both load and validate the policy first and refuse exactly what `policy run` refuses, with the
same error: `policy.errors.UnusablePolicy` (a `PolicyError`) for a policy that does not load
or validate.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine.backends import connect
from engine.backends.interface import Engine
from engine.launcher.output import OutputSink
from engine.launcher.run import detached, run
from engine.launcher.spec import LaunchSpec, RunResult
from policy.loader import Policy
from policy.model import checked_image
from policy.vetted import load_vetted


def spec_for(
    profile: str,
    command: Sequence[str] = (),
    *,
    policy: Policy,
    image: str | None = None,
    env: dict[str, str] | None = None,
) -> LaunchSpec:
    policy.profile(profile)  # a clear error, with a hint, for a name it does not have
    if image is not None:
        image = checked_image(image, "image=")
    return LaunchSpec(
        profile=policy.profiles[profile],
        project=policy.project,
        policy_file=policy.declared[profile].source.display,
        digest=policy.digest(profile),
        command=tuple(command),
        image=image,
        env=dict(env or {}),
    )


# `launch` and `container` spell out the same keyword parameters on purpose: they are the public
# API, and `help()`, IDEs and type checkers show a signature only when it is written out.
def launch(
    profile: str,
    command: Sequence[str] = (),
    *,
    policies: Path | str = "policies",
    project: Path | str | None = None,
    image: str | None = None,
    env: dict[str, str] | None = None,
    on_output: OutputSink | None = None,
    engine: Engine | None = None,
    host: str | None = None,
    monitor: bool = True,
) -> RunResult:
    """Run `command` in a container under `profile`, wait for it, remove it, return how it ended
    (`result.usage`: what it consumed and violated, unless `monitor=False`). The engine is
    `engine`, else the one at `host` (a URL as `--host` takes it: Docker or Podman), else
    DOCKER_HOST's or the local Docker socket."""
    policy = load_vetted([policies], project)
    spec = spec_for(profile, command, policy=policy, image=image, env=env)
    return run(engine or connect(host), spec, on_output, monitor=monitor)


@dataclasses.dataclass(frozen=True)
class Running:
    """A verified container running under a profile."""

    id: str
    spec: LaunchSpec
    engine: Engine


@contextlib.contextmanager
def container(
    profile: str,
    command: Sequence[str] = (),
    *,
    policies: Path | str = "policies",
    project: Path | str | None = None,
    image: str | None = None,
    env: dict[str, str] | None = None,
    engine: Engine | None = None,
    host: str | None = None,
) -> Iterator[Running]:
    """A detached container under `profile`, verified before start, removed on exit (the
    engine as `launch` picks it)."""
    policy = load_vetted([policies], project)
    spec = spec_for(profile, command, policy=policy, image=image, env=env)
    eng = engine or connect(host)
    with detached(eng, spec) as container_id:
        yield Running(container_id, spec, eng)
