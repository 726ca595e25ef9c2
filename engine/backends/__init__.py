"""Where containers run: the `Engine` interface and its implementations, one module each.

`interface.py` is the Protocol every backend implements and the typed documents it returns;
`docker.py` reaches a Docker engine through the docker SDK. `connect` picks the backend for a
URL; nothing connects before the first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.backends.interface import Engine


def connect(url: str | None = None) -> Engine:
    """The engine at `url` (default: DOCKER_HOST, else the local socket), not yet connected."""
    from engine.backends.docker import DockerEngine

    return DockerEngine(url)
