"""The Python API: launch test containers through vetted profiles from Python code.

    import engine
    result = engine.launch("isolation", ["sh", "-c", "make test"])
    assert result.exit_code == 0, result.output

    with engine.container("full", ["sleep", "600"]) as running:
        ...  # running.id is verified against the profile; removed on exit

Both load and validate the policy first and refuse exactly what `policy run` refuses.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

from engine.backends.docker import DockerEngine
from engine.launcher.run import LaunchSpec, OutputSink, RunResult, detached, run
from policy.diagnostics import Severity
from policy.errors import PolicyError, UsageError
from policy.loader import Policy, load_policy
from policy.model import checked_image
from policy.validate import validate


def load_vetted(policies: Path | str = "policies", project: Path | str | None = None) -> Policy:
    """Load a policy and refuse it unless it validates (no unwaived error)."""
    policy = load_policy([Path(policies)], Path(project) if project else None)
    problems = [d for d in validate(policy) if d.severity is Severity.ERROR]
    if problems:
        raise PolicyError("the policy does not validate; refusing to launch", problems)
    return policy


def spec_for(
    profile: str,
    command: Sequence[str] = (),
    *,
    policy: Policy,
    image: str | None = None,
    env: dict[str, str] | None = None,
) -> LaunchSpec:
    if profile not in policy.profiles:
        raise UsageError(f"no profile '{profile}' in the policy")
    if image is not None:
        image = checked_image(image, "image=")
    return LaunchSpec(
        profile=policy.profiles[profile],
        project=policy.project,
        policy_file=policy.declared[profile].source.display,
        command=tuple(command),
        image=image,
        env=dict(env or {}),
    )


def launch(
    profile: str,
    command: Sequence[str] = (),
    *,
    policies: Path | str = "policies",
    project: Path | str | None = None,
    image: str | None = None,
    env: dict[str, str] | None = None,
    on_output: OutputSink | None = None,
    engine: DockerEngine | None = None,
) -> RunResult:
    """Run `command` in a container under `profile`, wait for it, remove it, return how it ended."""
    policy = load_vetted(policies, project)
    spec = spec_for(profile, command, policy=policy, image=image, env=env)
    return run(engine or DockerEngine(), spec, on_output)


@dataclasses.dataclass(frozen=True)
class Running:
    """A verified container running under a profile."""

    id: str
    spec: LaunchSpec
    engine: DockerEngine


@contextlib.contextmanager
def container(
    profile: str,
    command: Sequence[str] = (),
    *,
    policies: Path | str = "policies",
    project: Path | str | None = None,
    image: str | None = None,
    env: dict[str, str] | None = None,
    engine: DockerEngine | None = None,
) -> Iterator[Running]:
    """A detached container under `profile`, verified before start, removed on exit."""
    policy = load_vetted(policies, project)
    spec = spec_for(profile, command, policy=policy, image=image, env=env)
    eng = engine or DockerEngine()
    with detached(eng, spec) as container_id:
        yield Running(container_id, spec, eng)
