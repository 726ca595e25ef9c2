"""Where containers run: the `Engine` interface and its implementations, one module each.

`interface.py` is the Protocol every backend implements and the typed documents it returns;
`unix_socket.py` speaks the Engine API on a local unix socket with the standard library (the
common case, and the fast one); `docker.py` reaches every other engine (tcp, TLS, ssh) through
the docker SDK. `connect` picks the backend for a URL; nothing connects before the first call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.backends.interface import Engine


def connect(url: str | None = None) -> Engine:
    """The engine at `url` (default: DOCKER_HOST, else the local socket), not yet connected."""
    import os

    where = url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    # DOCKER_TLS_VERIFY and DOCKER_CERT_PATH concern tcp only; a unix socket has no TLS.
    if where.startswith("unix://"):
        from engine.backends.unix_socket import SocketEngine

        return SocketEngine(where)
    from engine.backends.docker import DockerEngine

    return DockerEngine(url)
