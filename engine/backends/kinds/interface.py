"""What differs between the engines that speak the Docker Engine API: the `EngineKind` interface.

Docker and Podman answer the same endpoints, but Podman's compatibility layer creates containers
with additions of its own (writable tmpfs mounts on a read-only root, environment entries, its own
default limits), names images differently, and cannot take some fields at all. A kind says, for
its engine, which profile fields it cannot enforce (`refusals`, checked before anything is
created), how a create request must be worded so the engine makes exactly the profile
(`request`), which of its own harmless spellings an inspect document carries (`observed`), what
the kernel must show beyond the common checks (`kernel`), and what `policy doctor` reports
(`checks`). Nothing outside this folder asks which engine it is talking to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from engine.backends.interface import ContainerInspect, CreateBody, EngineInfo, ImageConfig
from policy.model import Profile

Settings = dict[str, Any]  # canonical settings (`engine.render.settings`)


@dataclass(frozen=True)
class Refusal:
    """A profile field this engine cannot enforce, why, and what would make it enforceable."""

    field: str
    why: str


@dataclass(frozen=True)
class KindCheck:
    """One line of `policy doctor` about what this engine can enforce."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


class EngineKind(Protocol):
    """An engine product (Docker, Podman) as the project has to treat it."""

    @property
    def name(self) -> str:
        """The product's name, for messages: "Docker", "Podman"."""
        ...

    @property
    def version(self) -> str:
        """The product's own version (Podman's, not the API version it emulates)."""
        ...

    @property
    def info(self) -> EngineInfo:
        """What the engine said about itself (`/info`), read once with the kind."""
        ...

    @property
    def rootless(self) -> bool:
        """Whether the engine runs as a user other than root."""
        ...

    def describe(self) -> str:
        """For messages and `policy doctor`: "Podman 4.3.1 (rootful, cgroup v1)"."""
        ...

    def refusals(self, profile: Profile) -> list[Refusal]:
        """The fields of `profile` this engine cannot enforce: the launch is refused, naming
        each, before anything is created."""
        ...

    def request(self, body: CreateBody, image: ImageConfig | None = None) -> CreateBody:
        """The create request worded so this engine makes exactly what `body` asks for (`image`:
        the config of the image it names, whose own settings the request must not undo)."""
        ...

    def observed(
        self, settings: Settings, expected: Settings | None, inspect: ContainerInspect
    ) -> Settings:
        """Observed settings with this engine's harmless, documented spellings put back into the
        canonical form (never anything that changes what the container may do)."""
        ...

    def captured(self, inspect: ContainerInspect) -> ContainerInspect:
        """`inspect` with this engine's own additions and spellings taken out, for `policy
        capture` (which writes what a profile would have to declare)."""
        ...

    def kernel(self, expected: Settings, kernel: dict[str, Any]) -> list[tuple[str, Any, Any]]:
        """(field, expected, kernel) for what the kernel shows against this engine's
        additions, beyond the checks every engine gets (`engine.audit.deep`)."""
        ...

    def checks(self) -> list[KindCheck]:
        """What `policy doctor` says about this engine's limits and additions."""
        ...
