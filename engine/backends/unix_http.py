"""HTTP/1.1 over a unix socket, with the standard library: what the Engine API needs of it.

Pooled kept-alive requests with a JSON body and a JSON answer, the `Upgrade: tcp` hijack that
joins a container's streams, a long-lived streaming answer (events), and the attach stream's
frames. Nothing here knows about containers or engines' messages: `unix_socket.py` does.
"""

from __future__ import annotations

import http.client
import json
import socket
import struct
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

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


class Unreachable(Exception):
    """The request did not get an answer: no socket, a refused or broken connection."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class NotJson(Exception):
    """A successful answer whose body is not JSON."""


class UnixConnection(http.client.HTTPConnection):
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


class UnixHttp:
    """Requests to the HTTP server on the unix socket `path`, under the URL prefix `prefix`."""

    def __init__(self, path: str, timeout: float, prefix: str = "") -> None:
        self.path = path
        self.timeout = timeout
        self.prefix = prefix
        self._idle: list[UnixConnection] = []
        self._lock = threading.Lock()

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        url = self.prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        return url

    def request(
        self,
        method: str,
        path: str,
        query: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON answer (None for an empty one). An error status is an `ApiError`, no
        answer `Unreachable`, a socket timeout `TimeoutError`, a body that is not JSON `NotJson`."""
        url = self.url(path, query)
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        # A kept-alive connection the engine closed in the meantime fails on first use: one retry
        # on a fresh connection, and only for that failure (nothing was sent that took effect).
        for attempt in (0, 1):
            conn = self._take() if attempt == 0 else UnixConnection(self.path, self.timeout)
            reused = conn.sock is not None
            try:
                if timeout is not None or reused:
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
                raise Unreachable(exc) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise Unreachable(exc) from None
            if timeout is not None:
                self._set_timeout(conn, None)
            if response.will_close:
                conn.close()
            else:
                self._give_back(conn)
            return decoded(response.status, data)
        raise AssertionError("unreachable")  # pragma: no cover

    def head(self, path: str, query: dict[str, Any]) -> tuple[int, http.client.HTTPMessage]:
        """The status and headers of a HEAD request (its own connection: no body to read)."""
        conn = UnixConnection(self.path, self.timeout)
        try:
            conn.request("HEAD", self.url(path, query))
            response = conn.getresponse()
            response.read()
            return response.status, response.headers
        except (OSError, http.client.HTTPException) as exc:
            raise Unreachable(exc) from None
        finally:
            conn.close()

    def upgrade(self, path: str, query: dict[str, Any]) -> socket.socket:
        """A socket joined to the stream `path` answers with (`Upgrade: tcp`), from its start."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            request = (
                f"POST {self.url(path, query)} HTTP/1.1\r\nHost: localhost\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
            )
            sock.sendall(request.encode())
            head = _read_head(sock)
        except OSError as exc:
            sock.close()
            raise Unreachable(exc) from None
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
            raise ApiError(status, message or f"HTTP {status}")
        sock.settimeout(None)
        return sock

    def stream(
        self, path: str, query: dict[str, Any]
    ) -> tuple[UnixConnection, http.client.HTTPResponse]:
        """A GET whose answer goes on as long as the connection (events), on a connection of its
        own and without a read timeout."""
        conn = UnixConnection(self.path, self.timeout)
        try:
            conn.request("GET", self.url(path, query))
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise Unreachable(exc) from None
        if response.status >= 400:
            data = response.read()
            conn.close()
            decoded(response.status, data)
        if conn.sock is not None:
            conn.sock.settimeout(None)
        return conn, response

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> UnixConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return UnixConnection(self.path, self.timeout)

    def _give_back(self, conn: UnixConnection) -> None:
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    def _set_timeout(self, conn: UnixConnection, timeout: float | None) -> None:
        conn.timeout = self.timeout if timeout is None else timeout
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)


def decoded(status: int, data: bytes) -> Any:
    """The JSON of an answer; an `ApiError` with the engine's message for an error status."""
    document: Any = None
    if data:
        try:
            document = json.loads(data)
        except ValueError:
            if status < 400:
                raise NotJson from None
            document = {"message": data.decode(errors="replace").strip()}
    if status >= 400:
        message = document.get("message") if isinstance(document, dict) else None
        raise ApiError(status, str(message or f"HTTP {status}"))
    return document


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


def frames(sock: socket.socket) -> Iterator[tuple[bytes | None, bytes | None]]:
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
