"""Docker (dockerd): the engine the Engine API describes, so a kind with no quirks."""

from __future__ import annotations

from engine.backends.interface import EngineInfo
from engine.backends.kinds.common import BaseKind


class Docker(BaseKind):
    """Docker Engine: creates exactly what a create request asks for; see `BaseKind`."""

    name = "Docker"


# The kind assumed where no engine is at hand (documents recorded from a Docker engine).
DOCKER = Docker("?", EngineInfo())
