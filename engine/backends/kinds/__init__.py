"""Engine kinds: what makes Docker and Podman differ behind the same Engine API.

`detect` reads the kind from the engine's own `/version` (its `Components`: Docker calls its
daemon "Engine", Podman "Podman Engine") and `/info`, never from the URL: the same socket path
can serve either. Each kind is one module (`docker.py`, `podman.py`) behind `interface.EngineKind`;
`common.py` holds what every kind enforces alike (limits the engine says it cannot apply).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.backends.interface import EngineInfo, EngineVersion, PodmanInfo
    from engine.backends.kinds.interface import EngineKind


def detect(
    version: EngineVersion,
    info: EngineInfo,
    podman_info: Callable[[], PodmanInfo] | None = None,
) -> EngineKind:
    """The kind of the engine that sent `version` and `info`; for Podman, `podman_info` reads
    its own /libpod/info (rootless or not: its compat /info does not say)."""
    names = [c.name or "" for c in version.components or []]
    if any(name.startswith("Podman") for name in names):
        from engine.backends.interface import PodmanInfo
        from engine.backends.kinds.podman import Podman

        podman = next(c for c in version.components or [] if (c.name or "").startswith("Podman"))
        own = podman_info() if podman_info is not None else PodmanInfo()
        return Podman(podman.version or version.version or "?", info, own)
    from engine.backends.kinds.docker import Docker

    return Docker(version.version or "?", info)
