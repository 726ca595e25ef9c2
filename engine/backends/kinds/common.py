"""What every engine kind enforces alike: a limit the engine cannot apply is refused.

`BaseKind` implements `interface.EngineKind` for an engine with no quirks (Docker); a kind with
quirks (`podman.py`) extends it.
"""

from __future__ import annotations

from typing import Any

from engine.backends.interface import ContainerInspect, CreateBody, EngineInfo, ImageConfig
from engine.backends.kinds.interface import KindCheck, Refusal, Settings
from policy.model import Profile


class BaseKind:
    """An engine kind with no additions of its own."""

    name = "Docker"

    def __init__(self, version: str, info: EngineInfo) -> None:
        self.version = version
        self.info = info

    @property
    def rootless(self) -> bool:
        return self.info.rootless

    def describe(self) -> str:
        mode = "rootless" if self.rootless else "rootful"
        return f"{self.name} {self.version} ({mode}, cgroup v{self.info.cgroup_version or '?'})"

    def refusals(self, profile: Profile) -> list[Refusal]:
        return self.limit_refusals(profile)

    def supports(self, controller: str) -> bool:
        """Whether the engine says it can apply limits of cgroup `controller` (its /info)."""
        return {
            "memory": self.info.memory_limit,
            "cpu": self.info.cpu_cfs_quota,
            "pids": self.info.pids_limit,
        }[controller]

    def limit_refusals(self, profile: Profile) -> list[Refusal]:
        """Each limit the profile sets that this engine says it cannot apply. A rootless engine
        on cgroup v1 gets no cgroup of its own to limit, whatever its /info claims."""
        v1_rootless = self.rootless and self.info.cgroup_version == "1"
        out = []
        for field, value, supported in (
            ("memory", profile.memory, self.supports("memory")),
            ("cpus", profile.cpus, self.supports("cpu")),
            ("pids_limit", profile.pids_limit, self.supports("pids")),
        ):
            if value is None:
                continue
            if v1_rootless:
                out.append(
                    Refusal(
                        field,
                        f"{self.name} runs rootless on cgroup v1, which gives a rootless "
                        "container no cgroup limits: run the engine as root, or on cgroup v2 "
                        "with the controllers delegated to its user",
                    )
                )
            elif not supported:
                out.append(
                    Refusal(
                        field,
                        f"{self.name} says it cannot enforce {field} limits here (its /info): "
                        "enable that cgroup controller for the engine",
                    )
                )
        return out

    def request(self, body: CreateBody, image: ImageConfig | None = None) -> CreateBody:
        return body

    def observed(
        self, settings: Settings, expected: Settings | None, inspect: ContainerInspect
    ) -> Settings:
        return settings

    def captured(self, inspect: ContainerInspect) -> ContainerInspect:
        return inspect

    def kernel(self, expected: Settings, kernel: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        return []

    def checks(self) -> list[KindCheck]:
        if self.rootless and self.info.cgroup_version == "1":
            return [
                KindCheck(
                    "rootless",
                    False,
                    f"{self.name} runs rootless on cgroup v1: memory, cpus and pids_limit "
                    "cannot be enforced, and profiles that set them are refused",
                    "run the engine as root, or move to cgroup v2 with delegated controllers",
                )
            ]
        return []
