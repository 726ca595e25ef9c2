"""Engine kinds: what makes Docker and Podman differ behind the same Engine API.

`detect` reads the kind from the engine's own answers (its `/_ping` headers, then Podman's
/libpod/info or Docker's /info), never from the URL: the same socket path can serve either.
Each kind is one module (`docker.py`, `podman.py`) behind `interface.EngineKind`;
`common.py` holds what every kind enforces alike (limits the engine says it cannot apply);
`podman_info_cache.py` remembers Podman's slow /libpod/info per running service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.backends.interface import Engine
    from engine.backends.kinds.interface import EngineKind


def detect(engine: Engine) -> EngineKind:
    """The kind of `engine`, from its own answers: the `/_ping` headers say which product it is
    (Podman sends `Libpod-Api-Version`; Docker its version in `Server`); then Podman's own
    /libpod/info (rootless, the cgroup controllers it has: its compat /version and /info cost a
    second each and say neither), or Docker's /info."""
    headers = {k.lower(): v for k, v in engine.ping().items()}
    if "libpod-api-version" in headers:
        from engine.backends.kinds.podman import Podman
        from engine.backends.kinds.podman_info_cache import cached_podman_info

        own = cached_podman_info(engine.name, engine.podman_info)
        return Podman(own.version.version or headers["libpod-api-version"], own)
    from engine.backends.kinds.docker import Docker

    # `Server: Docker/20.10.24+dfsg1 (linux)` names the version; /version only when it does not.
    server = headers.get("server", "")
    version = server.partition("/")[2].partition(" ")[0] if server.startswith("Docker/") else ""
    return Docker(version or engine.version().version or "?", engine.info())
