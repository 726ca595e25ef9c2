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
import struct
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

from engine.backends.interface import (
    ContainerInspect,
    ContainerSummary,
    CreateBody,
    EngineEvent,
    EngineInfo,
    EngineVersion,
    ImageInspect,
    OutputChunks,
    parse,
)
from policy.errors import EngineError

API_VERSION = "1.41"
DEFAULT_URL = "unix:///var/run/docker.sock"
POOL_SIZE = 32
# The attach stream's frame header: stream type (1 stdout, 2 stderr), 3 zero bytes, length.
_FRAME = struct.Struct(">BxxxL")
_HEAD_LIMIT = 64 * 1024


class ApiError(Exception):
    """The engine answered a request with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


class SocketEngine:
    """A Docker-compatible engine at `unix://PATH`, through `http.client`."""

    def __init__(self, url: str | None = None, timeout: int = 60) -> None:
        # No URL: DOCKER_HOST when it is a unix socket, else the engine's default socket.
        host = os.environ.get("DOCKER_HOST", "")
        self.url = url or (host if host.startswith("unix://") else DEFAULT_URL)
        self.path = self.url.removeprefix("unix://")
        self.timeout = timeout
        self.version_prefix = "/v" + os.environ.get("DOCKER_API_VERSION", API_VERSION)
        self._idle: list[_UnixConnection] = []
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.url

    # -- transport ---------------------------------------------------------------------------

    def _url(self, path: str, query: dict[str, Any] | None = None) -> str:
        url = self.version_prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def _take(self) -> _UnixConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return _UnixConnection(self.path, self.timeout)

    def _give_back(self, conn: _UnixConnection) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    def _call(
        self,
        method: str,
        path: str,
        action: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """One request; the decoded JSON answer (None for an empty one). An error status is an
        `ApiError`; a transport failure an `EngineError` saying what to do."""
        url = self._url(path, query)
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        # A kept-alive connection the engine closed in the meantime fails on first use: one retry
        # on a fresh connection, and only for that failure (nothing was sent that took effect).
        for attempt in (0, 1):
            conn = self._take() if attempt == 0 else _UnixConnection(self.path, self.timeout)
            reused = conn.sock is not None
            try:
                if timeout is not None or conn.sock is not None:
                    self._set_timeout(conn, timeout)
                conn.request(method, url, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except TimeoutError:
                conn.close()
                raise
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                conn.close()
                if reused and attempt == 0:
                    continue
                raise self._unreachable(action, exc) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise self._unreachable(action, exc) from None
            if timeout is not None:
                self._set_timeout(conn, None)
            if response.will_close:
                conn.close()
            else:
                self._give_back(conn)
            return self._decoded(response.status, data, action)
        raise AssertionError("unreachable")  # pragma: no cover

    def _set_timeout(self, conn: _UnixConnection, timeout: float | None) -> None:
        conn.timeout = self.timeout if timeout is None else timeout
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)

    def _decoded(self, status: int, data: bytes, action: str) -> Any:
        document: Any = None
        if data:
            try:
                document = json.loads(data)
            except ValueError:
                if status < 400:
                    raise EngineError(
                        f"engine {self.name} answered {action} with something that is not JSON"
                    ) from None
                document = {"message": data.decode(errors="replace").strip()}
        if status >= 400:
            message = document.get("message") if isinstance(document, dict) else None
            raise ApiError(status, str(message or f"HTTP {status}"))
        return document

    def _unreachable(self, action: str, exc: BaseException) -> EngineError:
        return EngineError(
            f"cannot {action} the Docker engine at {self.name}: {exc}. Is dockerd running? "
            "Start it (as root: scripts/ensure-engine.sh), or point DOCKER_HOST at one; "
            "a non-root user needs access to the socket (which is root on the host)."
        )

    def _refused(self, action: str, exc: ApiError) -> EngineError:
        return EngineError(f"engine {self.name} refused to {action}: {exc.message}")

    def _json(self, method: str, path: str, action: str, **kw: Any) -> Any:
        try:
            return self._call(method, path, action, **kw)
        except ApiError as exc:
            raise self._refused(action, exc) from None

    def _hijack(self, path: str, query: dict[str, Any], action: str) -> socket.socket:
        """A socket joined to a container's streams (`Upgrade: tcp`), read from its first byte."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            request = (
                f"POST {self._url(path, query)} HTTP/1.1\r\nHost: localhost\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
            )
            sock.sendall(request.encode())
            head = _read_head(sock)
        except OSError as exc:
            sock.close()
            raise self._unreachable(action, exc) from None
        status_line, _, rest = head.partition(b"\r\n")
        parts = status_line.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if status not in (101, 200):
            sock.close()
            body = rest.partition(b"\r\n\r\n")[2]
            try:
                message = json.loads(body).get("message", "")
            except (ValueError, AttributeError):
                message = body.decode(errors="replace").strip()
            raise self._refused(action, ApiError(status, message or f"HTTP {status}"))
        sock.settimeout(None)
        return sock

    # -- the Engine interface --------------------------------------------------------------------

    def version(self) -> EngineVersion:
        return parse(EngineVersion, self._json("GET", "/version", "reach"), "version", self.name)

    def info(self) -> EngineInfo:
        return parse(EngineInfo, self._json("GET", "/info", "reach"), "system info", self.name)

    def inspect_container(self, container: str) -> ContainerInspect:
        document = self._json("GET", f"/containers/{_q(container)}/json", "inspect container")
        return parse(ContainerInspect, document, "container inspect", self.name)

    def inspect_if_exists(self, container: str) -> ContainerInspect | None:
        """See `Engine.inspect_if_exists`."""
        try:
            document = self._call("GET", f"/containers/{_q(container)}/json", "inspect container")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise self._refused("inspect container", exc) from None
        return parse(ContainerInspect, document, "container inspect", self.name)

    def inspect_image(self, image: str) -> ImageInspect:
        try:
            document = self._call("GET", f"/images/{_q(image)}/json", "inspect image")
        except ApiError as exc:
            if exc.status == 404:
                raise EngineError(
                    f"image {image} is not available on {self.name}; build it (for the shipped "
                    "test images: scripts/build-test-images.sh) or pull it where a registry is "
                    "reachable"
                ) from None
            raise self._refused("inspect image", exc) from None
        return parse(ImageInspect, document, "image inspect", self.name)

    def containers(self, filters: dict[str, Any], all: bool = True) -> list[ContainerSummary]:
        query = {"all": int(all), "filters": _filters(filters)} if filters else {"all": int(all)}
        listed = self._json("GET", "/containers/json", "list containers", query=query)
        return [parse(ContainerSummary, c, "container list", self.name) for c in listed or []]

    def create(self, body: CreateBody, name: str) -> str:
        created = self._json(
            "POST", "/containers/create", "create the container", query={"name": name}, body=body
        )
        return str(created["Id"])

    def start(self, container: str) -> None:
        self._json("POST", f"/containers/{_q(container)}/start", "start the container")

    def attach(self, container: str) -> OutputChunks:
        """See `Engine.attach`: the multiplexed stream, frame by frame, from its beginning."""
        query = {"logs": 1, "stream": 1, "stdout": 1, "stderr": 1}
        sock = self._hijack(f"/containers/{_q(container)}/attach", query, "attach to the container")
        return _frames(sock)

    def attach_socket(self, container: str) -> Any:
        """See `Engine.attach_socket`."""
        query = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1, "logs": 1}
        return self._hijack(f"/containers/{_q(container)}/attach", query, "attach to the container")

    def resize(self, container: str, height: int, width: int) -> None:
        self._json(
            "POST",
            f"/containers/{_q(container)}/resize",
            "resize the terminal of",
            query={"h": height, "w": width},
        )

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
            self._call(
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
        conn = _UnixConnection(self.path, self.timeout)
        try:
            conn.request("GET", self._url("/events", {"filters": _filters(filters)}))
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise self._unreachable("follow the events of", exc) from None
        if response.status >= 400:
            data = response.read()
            conn.close()
            try:
                self._decoded(response.status, data, "follow the events of")
            except ApiError as exc:
                raise self._refused("follow the events of", exc) from None
        if conn.sock is not None:
            conn.sock.settimeout(None)  # events come when they come
        return _Events(conn, response, self.name)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Events:
    """The engine's event stream (one JSON document per line) as typed events."""

    def __init__(
        self, conn: _UnixConnection, response: http.client.HTTPResponse, engine: str
    ) -> None:
        self._conn = conn
        self._response = response
        self._engine = engine
        self._reading = False

    def __iter__(self) -> Iterator[EngineEvent]:
        self._reading = True
        try:
            while line := self._response.readline():
                if line.strip():
                    yield parse(EngineEvent, json.loads(line), "event", self._engine)
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


def _read_head(sock: socket.socket) -> bytes:
    """The response head, read byte by byte so that nothing of the stream after it is consumed."""
    head = bytearray()
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionResetError("the engine closed the connection during the upgrade")
        head += byte
        if len(head) > _HEAD_LIMIT:
            raise ConnectionError("the engine's answer to the upgrade has no end")
    status = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
    if status[:1] in (b"3", b"4", b"5"):
        # An error answer carries a body after its head: read what its length says.
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        body = b""
        while len(body) < length:
            more = sock.recv(length - len(body))
            if not more:
                break
            body += more
        head += body
    return bytes(head)


def _frames(sock: socket.socket) -> Iterator[tuple[bytes | None, bytes | None]]:
    """(stdout, stderr) chunks of the multiplexed attach stream, until the container ends."""
    reader = sock.makefile("rb")
    try:
        while True:
            header = reader.read(_FRAME.size)
            if len(header) < _FRAME.size:
                return
            kind, length = _FRAME.unpack(header)
            data = reader.read(length)
            if kind == 2:
                yield None, data
            else:
                yield data, None
            if len(data) < length:
                return
    finally:
        reader.close()
        sock.close()
