"""A Docker engine through the docker SDK's low-level client (see `interface.Engine`).

Constructing a `DockerEngine` makes no network call and changes no environment; the first call
connects. Engine failures surface as `EngineError` with a message that says which engine and what
to do, never as a docker SDK traceback; documents come back typed (`interface`), and no SDK type
leaves this module.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from engine.backends.interface import (
    ContainerInspect,
    ContainerStats,
    ContainerSummary,
    CreateBody,
    EngineEvent,
    EngineInfo,
    EngineVersion,
    ImageInspect,
    OutputChunks,
    parse,
    unix_mode,
)
from engine.backends.podman_documents import PodmanInfo
from policy.errors import EngineError

if TYPE_CHECKING:
    from engine.backends.kinds.interface import EngineKind

POOL_SIZE = 32
API_VERSION = "1.41"


def _keep_alive(api: Any) -> None:
    """One connection pool per unix socket, so concurrent inspects reuse kept-alive connections.

    docker-py's unix adapter keys its pools by the full request URL: every container inspect
    (a different URL) would open a new connection. Keying by the socket instead is the whole fix.
    """
    from docker.transport import UnixHTTPAdapter

    adapter = api.adapters.get("http+docker://")
    if not isinstance(adapter, UnixHTTPAdapter):
        return

    class OnePoolPerSocket(UnixHTTPAdapter):  # type: ignore[misc]
        def get_connection(self, url: str, proxies: Any = None) -> Any:
            return super().get_connection("http+docker://localhost", proxies)

    shared = OnePoolPerSocket(
        "http+unix://" + adapter.socket_path, timeout=adapter.timeout, max_pool_size=POOL_SIZE
    )
    api.mount("http+docker://", shared)
    api._custom_adapter = shared  # what APIClient.close() closes


def _describe(url: str | None) -> str:
    return url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class DockerEngine:
    """A Docker engine reached through the docker SDK's low-level API client."""

    def __init__(self, url: str | None = None, timeout: int = 60) -> None:
        self.url = url
        self.timeout = timeout
        self._api: Any = None
        self._lock = threading.Lock()
        self._kind: EngineKind | None = None

    @property
    def name(self) -> str:
        return _describe(self.url)

    @property
    def api(self) -> Any:
        """The docker SDK `APIClient`, connected on first use (once, even from many threads)."""
        with self._lock:
            if self._api is None:
                import docker

                with self.errors("connect to"):
                    kwargs: dict[str, Any] = (
                        {"base_url": self.url} if self.url else docker.utils.kwargs_from_env()
                    )
                    if self.url and self.url.startswith("ssh://"):
                        kwargs["use_ssh_client"] = True
                    # A pinned API version saves the /version round trip of "auto" on every
                    # client; 1.41 is Docker 20.10, and later engines still accept it.
                    api = docker.APIClient(
                        timeout=self.timeout,
                        version=os.environ.get("DOCKER_API_VERSION", API_VERSION),
                        max_pool_size=POOL_SIZE,
                        **kwargs,
                    )
                    _keep_alive(api)
                    self._api = api
        return self._api

    @contextlib.contextmanager
    def errors(self, action: str) -> Iterator[None]:
        """Turn docker SDK and connection failures into an `EngineError` naming this engine."""
        import docker.errors
        import requests.exceptions
        import urllib3.exceptions

        try:
            yield
        except docker.errors.APIError as exc:
            detail = exc.explanation or str(exc)
            if isinstance(detail, bytes):
                detail = detail.decode(errors="replace")
            raise EngineError(f"engine {self.name} refused to {action}: {detail}") from None
        except (
            docker.errors.DockerException,
            # Any transport failure, including an engine that dies mid-response
            # (ChunkedEncodingError, urllib3's ProtocolError).
            requests.exceptions.RequestException,
            urllib3.exceptions.HTTPError,
            ConnectionError,
            FileNotFoundError,
            PermissionError,
        ) as exc:
            raise EngineError(
                f"cannot {action} the Docker engine at {self.name}: {exc}. Is dockerd running? "
                "Start it (as root: scripts/ensure-engine.sh; Podman's service: "
                "scripts/ensure-podman.sh), "
                "or point DOCKER_HOST or --host at one; "
                "a non-root user needs access to the socket (which is root on the host)."
            ) from None

    def version(self) -> EngineVersion:
        with self.errors("reach"):
            return parse(EngineVersion, self.api.version(), "version", self.name)

    def info(self) -> EngineInfo:
        with self.errors("reach"):
            return parse(EngineInfo, self.api.info(), "system info", self.name)

    def ping(self) -> dict[str, str]:
        with self.errors("reach"):
            response = self.api._get(self.api._url("/_ping"))
            self.api._raise_for_status(response)
            return dict(response.headers.items())

    def podman_info(self) -> PodmanInfo:
        with self.errors("read Podman's info from"):
            document = self.api._result(self.api._get(self.api._url("/libpod/info")), True)
            return parse(PodmanInfo, document, "Podman info", self.name)

    def kind(self) -> EngineKind:
        """See `Engine.kind`."""
        if self._kind is None:
            from engine.backends.kinds import detect

            self._kind = detect(self)
        return self._kind

    def inspect_container(self, container: str) -> ContainerInspect:
        with self.errors("inspect container"):
            document = self.api.inspect_container(container)
        return parse(ContainerInspect, document, "container inspect", self.name)

    def inspect_if_exists(self, container: str) -> ContainerInspect | None:
        """See `Engine.inspect_if_exists`."""
        import docker.errors

        try:
            document = self.api.inspect_container(container)
        except docker.errors.NotFound:
            return None
        except Exception:
            with self.errors("inspect container"):
                raise
        return parse(ContainerInspect, document, "container inspect", self.name)

    def events(self, filters: dict[str, Any]) -> _Events:
        """See `Engine.events`."""
        with self.errors("follow the events of"):
            return _Events(self.api.events(filters=filters, decode=True), self.name)

    def stats(self, container: str) -> _Stats:
        """See `Engine.stats`. The SDK's `stats()` is a bare generator that cannot be closed
        from another thread; its own request, wrapped as `events()` wraps its stream, can."""
        from docker.types.daemon import CancellableStream

        with self.errors("follow the stats of"):
            api = self.api
            response = api._get(
                api._url("/containers/{0}/stats", container), params={"stream": True}, stream=True
            )
            api._raise_for_status(response)
            stream = CancellableStream(api._stream_helper(response, decode=True), response)
        return _Stats(stream, self.name)

    def network_scope(self, network: str) -> str:
        """See `Engine.network_scope`."""
        import docker.errors

        try:
            document = self.api.inspect_network(network)
        except docker.errors.NotFound:
            return ""
        except Exception:
            with self.errors("inspect network"):
                raise
            raise  # pragma: no cover - errors() always raises
        return str(document.get("Scope") or "") if isinstance(document, dict) else ""

    def inspect_image(self, image: str) -> ImageInspect:
        import docker.errors

        api = self.api
        try:
            document = api.inspect_image(image)
        except docker.errors.NotFound:
            raise EngineError(
                f"image {image} is not available on {self.name}; build it (for the shipped test "
                "images: scripts/build-test-images.sh) or pull it where a registry is reachable"
            ) from None
        except Exception:
            with self.errors("inspect image"):
                raise
            raise  # pragma: no cover - errors() always raises
        return parse(ImageInspect, document, "image inspect", self.name)

    def create(self, body: CreateBody, name: str) -> str:
        with self.errors("create the container"):
            return str(self.api.create_container_from_config(body, name)["Id"])

    def start(self, container: str) -> None:
        with self.errors("start the container"):
            self.api.start(container)

    def attach(self, container: str) -> OutputChunks:
        """See `Engine.attach`."""
        with self.errors("attach to the container"):
            chunks: OutputChunks = self.api.attach(container, stream=True, logs=False, demux=True)
            return chunks

    def attach_socket(self, container: str) -> Any:
        """See `Engine.attach_socket`: the raw socket under the SDK's wrapper."""
        with self.errors("attach to the container"):
            params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            sock = self.api.attach_socket(container, params=params)
            return getattr(sock, "_sock", sock)

    def resize(self, container: str, height: int, width: int) -> None:
        with self.errors("resize the terminal of"):
            self.api.resize(container, height=height, width=width)

    def path_mode(self, container: str, path: str) -> int | None:
        """See `Engine.path_mode`. The SDK has no HEAD of the archive: start the GET, read its
        stat header, and close the stream unread."""
        import docker.errors

        try:
            bits, stat = self.api.get_archive(container, path)
        except docker.errors.NotFound:
            return None
        except Exception:
            with self.errors("read a path of the container"):
                raise
            raise  # pragma: no cover - errors() always raises
        close = getattr(bits, "close", None)
        if close is not None:
            close()
        return unix_mode(int(stat["mode"]))

    def wait(self, container: str, timeout: float | None) -> int:
        """See `Engine.wait`."""
        import requests.exceptions

        with self.errors("wait for the container"):
            try:
                result = self.api.wait(container, timeout=timeout)
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
                # Over a unix socket a read timeout arrives as a ConnectionError.
                if "timed out" in str(exc).lower():
                    raise TimeoutError from None
                raise
        return int(result.get("StatusCode", -1))

    def stop(self, container: str, grace: float) -> None:
        with self.errors("stop the container"):
            self.api.stop(container, timeout=max(1, round(grace)))

    def remove(self, container: str) -> None:
        """Remove a container and its anonymous volumes; a container already gone is fine."""
        import docker.errors

        with self.errors("remove the container"):
            try:
                self.api.remove_container(container, v=True, force=True)
            except docker.errors.NotFound:
                pass  # inside errors(), which would otherwise turn it into a failure
            except docker.errors.APIError as exc:
                if "already in progress" not in str(exc.explanation or ""):
                    raise

    def containers(self, filters: dict[str, Any], all: bool = True) -> list[ContainerSummary]:
        with self.errors("list containers"):
            listed = self.api.containers(all=all, filters=filters)
        return [parse(ContainerSummary, c, "container list", self.name) for c in listed]

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


class _Stats:
    """The SDK's decoded stats frames as a `StatsStream` of typed frames."""

    def __init__(self, stream: Any, engine: str) -> None:
        self._stream = stream
        self._engine = engine

    def __iter__(self) -> Iterator[ContainerStats]:
        # The stream ends abruptly when it is closed from another thread: that is its end.
        with contextlib.suppress(Exception):
            for frame in self._stream:
                yield parse(ContainerStats, frame, "stats frame", self._engine)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._stream.close()


class _Events:
    """The SDK's decoded event generator as an `EventStream` of typed events."""

    def __init__(self, stream: Any, engine: str) -> None:
        self._stream = stream
        self._engine = engine

    def __iter__(self) -> Iterator[EngineEvent]:
        for event in self._stream:
            yield parse(EngineEvent, event, "event", self._engine)

    def close(self) -> None:
        self._stream.close()
