"""Podman's own documents, beside the Engine API's (`interface.py`): what its compat layer does
not say (rootless, the cgroup controllers it can use), from `GET /libpod/info`."""

from __future__ import annotations

from pydantic import Field

from engine.backends.interface import EngineInfo, _Document


class PodmanSecurity(_Document):
    rootless: bool = False


class PodmanHost(_Document):
    security: PodmanSecurity = Field(default_factory=PodmanSecurity)
    cgroup_version: str | None = Field(None, alias="cgroupVersion")
    cgroup_controllers: list[str] | None = Field(None, alias="cgroupControllers")


class PodmanVersion(_Document):
    version: str | None = Field(None, alias="Version")


class PodmanInfo(_Document):
    """Podman's own `GET /libpod/info`: whether it runs rootless, and which cgroup controllers
    it has (its Docker-compatible /info says neither: rootless, it claims every limit)."""

    host: PodmanHost = Field(default_factory=PodmanHost)
    version: PodmanVersion = Field(default_factory=PodmanVersion)

    def as_engine_info(self) -> EngineInfo:
        """The limits this Podman can apply, in the terms of the Engine API's /info."""
        controllers = self.host.cgroup_controllers or []
        return EngineInfo.model_validate(
            {
                "CgroupVersion": (self.host.cgroup_version or "").removeprefix("v") or None,
                "MemoryLimit": "memory" in controllers,
                "CpuCfsQuota": "cpu" in controllers,
                "PidsLimit": "pids" in controllers,
                "SecurityOptions": ["name=rootless"] if self.host.security.rootless else [],
            }
        )
