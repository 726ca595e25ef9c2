"""A Docker-compatible engine on a local unix socket, spoken with the standard library.

The docker SDK (`docker.py`) costs about 100 ms to import (requests, urllib3) and about 2 ms of
Python per request; on the paths a user waits for (`policy run`, `policy audit` of hundreds of
containers) that is more than the engine's own work. Over a unix socket the Engine API is plain
HTTP/1.1 with JSON, so `http.client` with a small pool of kept-alive connections does the same
job at a fraction of the cost (figures in docs/benchmarks.md). TCP, TLS and ssh engines still go
through the SDK: `engine.backends.connect` picks.

Same contract as every backend (`interface.Engine`): no network call before the first use,
typed documents back, every failure an `EngineError` naming the engine, and the messages the SDK
backend gives, so a user cannot tell the two apart except by their speed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from engine.backends import interface as doc
from engine.backends.podman_documents import PodmanInfo
from engine.backends.unix_http import (
    ApiError,
    NotJson,
    UnixConnection,
    UnixHttp,
    Unreachable,
    frames,
)
from policy.errors import EngineError

if TYPE_CHECKING:
    from engine.backends.kinds.interface import EngineKind

API_VERSION = "1.41"
DEFAULT_URL = "unix:///var/run/docker.sock"


class SocketEngine:
    """A Docker-compatible engine at `unix://PATH`, through `http.client`."""

    def __init__(self, url: str | None = None, timeout: int = 60) -> None:
        # No URL: DOCKER_HOST when it is a unix socket, else the engine's default socket.
        host = os.environ.get("DOCKER_HOST", "")
        self.url = url or (host if host.startswith("unix://") else DEFAULT_URL)
        self.timeout = timeout
        prefix = "/v" + os.environ.get("DOCKER_API_VERSION", API_VERSION)
        self._http = UnixHttp(self.url.removeprefix("unix://"), timeout, prefix)
        self._kind: EngineKind | None = None

    @property
    def name(self) -> str:
        return self.url

    # -- errors as every backend words them -------------------------------------------------------

    def _unreachable(self, action: str, exc: BaseException) -> EngineError:
        return EngineError(
            f"cannot {action} the Docker engine at {self.name}: {exc}. Is dockerd running? "
            "Start it (as root: scripts/ensure-engine.sh; Podman's service: "
            "scripts/ensure-podman.sh), "
            "or point DOCKER_HOST or --host at one; "
            "a non-root user needs access to the socket (which is root on the host)."
        )

    def _refused(self, action: str, exc: ApiError) -> EngineError:
        return EngineError(f"engine {self.name} refused to {action}: {exc.message}")

    def _answer(self, method: str, path: str, action: str, **kw: Any) -> Any:
        """The engine's answer; an `ApiError` for an error status (for callers that tell a 404
        from a refusal), an `EngineError` for anything else that went wrong."""
        try:
            return self._http.request(method, path, **kw)
        except Unreachable as exc:
            raise self._unreachable(action, exc.cause) from None
        except NotJson:
            raise EngineError(
                f"engine {self.name} answered {action} with something that is not JSON"
            ) from None

    def _json(self, method: str, path: str, action: str, **kw: Any) -> Any:
        try:
            return self._answer(method, path, action, **kw)
        except ApiError as exc:
            raise self._refused(action, exc) from None

    def _upgrade(self, path: str, query: dict[str, Any]) -> socket.socket:
        action = "attach to the container"
        try:
            return self._http.upgrade(path, query)
        except ApiError as exc:
            raise self._refused(action, exc) from None
        except Unreachable as exc:
            raise self._unreachable(action, exc.cause) from None

    # -- the Engine interface --------------------------------------------------------------------

    def version(self) -> doc.EngineVersion:
        return doc.parse(
            doc.EngineVersion, self._json("GET", "/version", "reach"), "version", self.name
        )

    def info(self) -> doc.EngineInfo:
        return doc.parse(
            doc.EngineInfo, self._json("GET", "/info", "reach"), "system info", self.name
        )

    def ping(self) -> dict[str, str]:
        try:
            status, headers = self._http.head("/_ping", {})
        except Unreachable as exc:
            raise self._unreachable("reach", exc.cause) from None
        if status >= 400:
            raise EngineError(f"engine {self.name} refused to answer a ping: HTTP {status}")
        return dict(headers.items())

    def podman_info(self) -> PodmanInfo:
        document = self._json("GET", "/libpod/info", "read Podman's info from")
        return doc.parse(PodmanInfo, document, "Podman info", self.name)

    def kind(self) -> EngineKind:
        """See `Engine.kind`."""
        if self._kind is None:
            from engine.backends.kinds import detect

            self._kind = detect(self)
        return self._kind

    def inspect_container(self, container: str) -> doc.ContainerInspect:
        document = self._json("GET", f"/containers/{_q(container)}/json", "inspect container")
        return doc.parse(doc.ContainerInspect, document, "container inspect", self.name)

    def inspect_if_exists(self, container: str) -> doc.ContainerInspect | None:
        """See `Engine.inspect_if_exists`."""
        try:
            document = self._answer("GET", f"/containers/{_q(container)}/json", "inspect container")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise self._refused("inspect container", exc) from None
        return doc.parse(doc.ContainerInspect, document, "container inspect", self.name)

    def network_scope(self, network: str) -> str:
        """See `Engine.network_scope`."""
        try:
            document = self._answer("GET", f"/networks/{_q(network)}", "inspect network")
        except ApiError as exc:
            if exc.status == 404:
                return ""
            raise self._refused("inspect network", exc) from None
        return str(document.get("Scope") or "") if isinstance(document, dict) else ""

    def inspect_image(self, image: str) -> doc.ImageInspect:
        try:
            document = self._answer("GET", f"/images/{_q(image)}/json", "inspect image")
        except ApiError as exc:
            if exc.status == 404:
                raise EngineError(
                    f"image {image} is not available on {self.name}; build it (for the shipped "
                    "test images: scripts/build-test-images.sh) or pull it where a registry is "
                    "reachable"
                ) from None
            raise self._refused("inspect image", exc) from None
        return doc.parse(doc.ImageInspect, document, "image inspect", self.name)

    def containers(self, filters: dict[str, Any], all: bool = True) -> list[doc.ContainerSummary]:
        query = {"all": int(all), "filters": _filters(filters)} if filters else {"all": int(all)}
        listed = self._json("GET", "/containers/json", "list containers", query=query)
        return [
            doc.parse(doc.ContainerSummary, c, "container list", self.name) for c in listed or []
        ]

    def create(self, body: doc.CreateBody, name: str) -> str:
        created = self._json(
            "POST", "/containers/create", "create the container", query={"name": name}, body=body
        )
        return str(created["Id"])

    def start(self, container: str) -> None:
        self._json("POST", f"/containers/{_q(container)}/start", "start the container")

    def attach(self, container: str) -> doc.OutputChunks:
        """See `Engine.attach`: the multiplexed stream, frame by frame, from its beginning."""
        query = {"stream": 1, "stdout": 1, "stderr": 1}
        return frames(self._upgrade(f"/containers/{_q(container)}/attach", query))

    def attach_socket(self, container: str) -> Any:
        """See `Engine.attach_socket`."""
        query = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        return self._upgrade(f"/containers/{_q(container)}/attach", query)

    def resize(self, container: str, height: int, width: int) -> None:
        self._json(
            "POST",
            f"/containers/{_q(container)}/resize",
            "resize the terminal of",
            query={"h": height, "w": width},
        )

    def path_mode(self, container: str, path: str) -> int | None:
        """See `Engine.path_mode`: the archive endpoint's HEAD, which stats `path` without
        sending the tree under it."""
        action = "read a path of the container"
        try:
            status, headers = self._http.head(
                f"/containers/{_q(container)}/archive", {"path": path}
            )
        except Unreachable as exc:
            raise self._unreachable(action, exc.cause) from None
        if status == 404:
            return None
        stat = headers.get("X-Docker-Container-Path-Stat")
        if status >= 400 or not stat:
            raise EngineError(f"engine {self.name} refused to {action}: HTTP {status}")
        return _permission_bits(stat, self.name)

    def wait(self, container: str, timeout: float | None) -> int:
        """See `Engine.wait`."""
        # Without a profile timeout the wait lasts as long as the container runs (a year stands
        # for "no deadline": a socket timeout must be finite).
        result = self._json(
            "POST",
            f"/containers/{_q(container)}/wait",
            "wait for the container",
            timeout=timeout if timeout is not None else 365 * 24 * 3600.0,
        )
        return int(result.get("StatusCode", -1)) if isinstance(result, dict) else -1

    def stop(self, container: str, grace: float) -> None:
        seconds = max(1, round(grace))
        self._json(
            "POST",
            f"/containers/{_q(container)}/stop",
            "stop the container",
            query={"t": seconds},
            timeout=self.timeout + seconds,
        )

    def remove(self, container: str) -> None:
        """Remove a container and its anonymous volumes; a container already gone is fine."""
        try:
            self._answer(
                "DELETE",
                f"/containers/{_q(container)}",
                "remove the container",
                query={"v": 1, "force": 1},
            )
        except ApiError as exc:
            if exc.status == 404 or "already in progress" in exc.message:
                return
            raise self._refused("remove the container", exc) from None

    def events(self, filters: dict[str, Any]) -> _Events:
        """See `Engine.events`."""
        action = "follow the events of"
        try:
            conn, response = self._http.stream("/events", {"filters": _filters(filters)})
        except ApiError as exc:
            raise self._refused(action, exc) from None
        except Unreachable as exc:
            raise self._unreachable(action, exc.cause) from None
        return _Events(conn, response, self.name)

    def stats(self, container: str) -> _Stats:
        """See `Engine.stats`."""
        action = "follow the stats of"
        try:
            conn, response = self._http.stream(f"/containers/{_q(container)}/stats", {"stream": 1})
        except ApiError as exc:
            raise self._refused(action, exc) from None
        except Unreachable as exc:
            raise self._unreachable(action, exc.cause) from None
        return _Stats(conn, response, self.name)

    def close(self) -> None:
        self._http.close()


class _Lines:
    """A streaming answer of one JSON document per line, closable from another thread."""

    def __init__(
        self, conn: UnixConnection, response: http.client.HTTPResponse, engine: str
    ) -> None:
        self._conn = conn
        self._response = response
        self._engine = engine
        self._reading = False

    def documents(self) -> Iterator[Any]:
        self._reading = True
        try:
            while line := self._response.readline():
                if line.strip():
                    yield json.loads(line)
        except (OSError, ValueError, http.client.HTTPException):
            return  # closed (by `close()` or the engine): the stream ends
        finally:
            self._conn.close()

    def close(self) -> None:
        # shutdown() wakes a reader blocked in readline() in another thread, which then closes
        # the connection itself; closing it under the reader would pull its buffer away.
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if not self._reading:
            self._conn.close()


class _Stats(_Lines):
    """The stats stream (`Engine.stats`) as typed frames."""

    def __iter__(self) -> Iterator[doc.ContainerStats]:
        for document in self.documents():
            yield doc.parse(doc.ContainerStats, document, "stats frame", self._engine)


class _Events(_Lines):
    """The engine's event stream (one JSON document per line) as typed events."""

    def __iter__(self) -> Iterator[doc.EngineEvent]:
        for document in self.documents():
            yield doc.parse(doc.EngineEvent, document, "event", self._engine)


def _permission_bits(encoded: str, engine: str) -> int:
    """The permission bits of a Go `os.FileMode` in the engine's base64 JSON path stat."""
    import base64

    try:
        mode = json.loads(base64.b64decode(encoded))["mode"]
    except (ValueError, KeyError, TypeError):
        raise EngineError(f"engine {engine} sent a path stat this tool cannot read") from None
    if not isinstance(mode, int):
        raise EngineError(f"engine {engine} sent a path stat this tool cannot read")
    return doc.unix_mode(mode)


def _filters(filters: dict[str, Any]) -> str:
    """Filters as the engine reads them: every value a list of strings (`{"label": "x"}` is
    `{"label": ["x"]}`), as the docker CLI and SDK send them."""
    normal: dict[str, list[str]] = {}
    for key, value in filters.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        values = value if isinstance(value, list) else [value]
        normal[key] = [v if isinstance(v, str) else str(v) for v in values]
    return json.dumps(normal)


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="/:")
