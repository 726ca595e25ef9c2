"""What to launch and how it ended: `LaunchSpec`, `RunResult`, and the refusal to start."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from engine.audit.drift import Drift
from engine.backends.kinds.interface import Refusal
from engine.monitor.figures import Usage
from engine.render.walk import Walked, walk
from policy.errors import EngineError
from policy.model import Profile


class VerificationError(EngineError):
    """The engine created something other than the profile; nothing was started."""

    def __init__(self, profile: str, drifts: list[Drift]) -> None:
        lines = [f"  {d.field}: expected {d.expected!r}, got {d.actual!r}" for d in drifts]
        super().__init__(
            f"the engine created a container that differs from profile '{profile}'; "
            "it was removed without starting:\n" + "\n".join(lines)
        )
        self.drifts = drifts


class UnenforceableError(EngineError):
    """The engine cannot enforce some field of the profile; nothing was created."""

    def __init__(self, profile: str, engine: str, refusals: list[Refusal]) -> None:
        lines = [f"  {r.field}: {r.why}" for r in refusals]
        super().__init__(
            f"profile '{profile}' cannot be enforced by {engine}; nothing was created:\n"
            + "\n".join(lines)
        )
        self.refusals = refusals


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch: a profile, where its relative mounts resolve, and the command."""

    profile: Profile
    project: Path
    policy_file: str
    command: tuple[str, ...] = ()
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the profile's (worker shards)
    launch_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    digest: str | None = None  # the profile's, when the policy knows it already

    @property
    def name(self) -> str:
        return f"policy-{self.profile.name}-{self.launch_id}"

    @functools.cached_property
    def walked(self) -> Walked:
        """The profile resolved for this launch, once (digest, mounts, labels)."""
        return walk(
            self.profile,
            self.project,
            self.policy_file,
            command=self.command,
            image=self.image,
            env=self.env,
            launch_id=self.launch_id,
            digest=self.digest,
            record_project=True,
        )


@dataclass(frozen=True)
class RunResult:
    """How a launched container ended."""

    exit_code: int
    output: str
    duration: float
    timed_out: bool
    oom_killed: bool
    container_id: str
    profile: str
    digest: str
    image: str
    launch_id: str
    interrupted: bool = False
    usage: Usage | None = None  # what it consumed and violated; None when not monitored

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.timed_out:
            return "timeout"
        if self.oom_killed:
            return "oom"
        return "passed" if self.exit_code == 0 else "failed"
