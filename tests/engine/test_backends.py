"""Every backend keeps the same contract on the real engines: the stdlib unix-socket backend (what
`connect()` gives for a local engine) and the docker SDK backend (tcp, TLS, ssh) answer each call
alike, with the same typed documents and the same errors, on Docker and on Podman's service."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.backends import connect
from engine.backends.docker import DockerEngine
from engine.backends.interface import Engine, EngineEvent
from engine.backends.unix_socket import SocketEngine
from policy.errors import EngineError
from tests.helpers import TEST_IMAGE, new_name, wait_for

pytestmark = pytest.mark.engine

LOCAL = "unix:///var/run/docker.sock"
BACKENDS: dict[str, type[SocketEngine] | type[DockerEngine]] = {
    "socket": SocketEngine,
    "sdk": DockerEngine,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, engine_url: str) -> Iterator[Engine]:
    engine: Engine = BACKENDS[request.param](engine_url)
    yield engine
    engine.close()


@pytest.fixture
def made(backend: Engine) -> Iterator[Any]:
    """`made(command)`: a created (not started) container of the test image; removed after
    through the same backend, on whichever engine it is, and none may remain."""
    names: list[str] = []

    def make(command: list[str], **extra: Any) -> str:
        name = new_name("cp-backend")
        names.append(name)
        # Explicit ulimits: Podman's own defaults exceed this machine's hard limit.
        ulimits = [{"Name": n, "Soft": 1024, "Hard": 1024} for n in ("nofile", "nproc")]
        host: dict[str, Any] = {"NetworkMode": "none", "Ulimits": ulimits}
        body = {"Image": TEST_IMAGE, "Cmd": command, "HostConfig": host}
        body.update(extra)
        return backend.create(body, name)

    yield make
    for name in names:
        backend.remove(name)
    left = [n for n in names if backend.inspect_if_exists(n) is not None]
    assert not left, f"containers left behind: {left}"


def test_version_and_info_are_typed(backend: Engine) -> None:
    assert backend.version().api_version
    assert backend.info().name


def test_output_both_streams_in_order_and_the_exit_code(backend: Engine, made: Any) -> None:
    container = made(["sh", "-c", "echo one; echo two >&2; echo three; exit 7"])
    chunks = backend.attach(container)
    backend.start(container)
    assert backend.wait(container, 30) == 7
    # Read after the end: the stream ends with the container, and loses nothing.
    assert b"".join(o for o, _ in chunks if o) == b"one\nthree\n"
    assert backend.inspect_container(container).state.exit_code == 7


def test_stderr_arrives_as_stderr(backend: Engine, made: Any) -> None:
    container = made(["sh", "-c", "echo oops >&2"])
    chunks = backend.attach(container)
    backend.start(container)
    backend.wait(container, 30)
    pairs = list(chunks)
    assert b"".join(e for _, e in pairs if e) == b"oops\n"
    assert not any(o for o, _ in pairs)


def test_wait_past_its_timeout_raises_timeout_error(backend: Engine, made: Any) -> None:
    container = made(["sleep", "30"])
    backend.start(container)
    with pytest.raises(TimeoutError):
        backend.wait(container, 0.5)
    backend.stop(container, 1)
    assert backend.wait(container, 30) != 0  # the connection after a timeout still works


def test_inspect_list_and_remove(backend: Engine, made: Any) -> None:
    label = new_name("cp-label")
    container = made(["true"], Labels={"io.test.backend": label})
    inspect = backend.inspect_container(container)
    assert inspect.id == container
    assert inspect.labels["io.test.backend"] == label
    listed = backend.containers({"label": f"io.test.backend={label}"}, all=True)
    assert [c.id for c in listed] == [container]
    assert backend.containers({"label": f"io.test.backend={label}"}, all=False) == []
    backend.remove(container)
    backend.remove(container)  # already gone is fine
    assert backend.inspect_if_exists(container) is None
    with pytest.raises(EngineError, match="refused to inspect container"):
        backend.inspect_container(container)


def test_the_same_documents_from_both_backends(made: Any, engine_url: str) -> None:
    container = made(["true"])
    socket_doc = SocketEngine(engine_url).inspect_container(container)
    sdk_doc = DockerEngine(engine_url).inspect_container(container)
    assert socket_doc == sdk_doc
    assert SocketEngine(engine_url).inspect_image(TEST_IMAGE) == DockerEngine(
        engine_url
    ).inspect_image(TEST_IMAGE)


def test_the_engine_kind_comes_from_the_engine(backend: Engine, engine_url: str) -> None:
    # Both URLs are unix sockets: only the engine's own /version tells them apart.
    kind = backend.kind()
    assert kind.name == ("Podman" if "podman" in engine_url else "Docker")
    assert kind.version == backend.version().version or kind.name == "Podman"
    assert backend.kind() is kind  # asked once


def test_a_missing_image_says_how_to_get_it(backend: Engine) -> None:
    with pytest.raises(EngineError, match=r"build-test-images\.sh"):
        backend.inspect_image("no-such-image-" + new_name() + ":latest")


def test_a_refused_create_names_the_engine_and_the_reason(backend: Engine) -> None:
    with pytest.raises(EngineError, match=r"refused to create the container: .*"):
        # Refused by both engines (Podman takes a negative memory limit without a word).
        backend.create(
            {
                "Image": TEST_IMAGE,
                "HostConfig": {"Memory": -5, "NanoCpus": 10**8, "CpuQuota": 1000},
            },
            new_name(),
        )


def test_events_arrive_and_close_ends_the_stream(backend: Engine, made: Any) -> None:
    container = made(["true"])
    stream = backend.events({"type": ["container"], "event": ["start"], "container": [container]})
    seen: list[EngineEvent] = []
    reader = threading.Thread(target=lambda: seen.extend(stream), daemon=True)
    reader.start()
    backend.start(container)
    backend.wait(container, 30)
    # The engine may deliver the event after the container has ended: wait for it.
    wait_for(lambda: bool(seen), "the start event")
    stream.close()
    reader.join(10)
    assert not reader.is_alive(), "close() did not end the event stream"
    assert seen[0].container == container and seen[0].action == "start"


def test_an_engine_that_does_not_answer_says_what_to_do(tmp_path: Path) -> None:
    nobody = tmp_path / "nobody.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(nobody))  # bound, never listening: connections are refused
    try:
        for kind in BACKENDS.values():
            with pytest.raises(EngineError, match="Is dockerd running"):
                kind(f"unix://{nobody}").version()
    finally:
        listener.close()


def test_connect_picks_the_socket_backend_for_unix_and_the_sdk_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert isinstance(connect(), SocketEngine)
    assert isinstance(connect("unix:///run/other.sock"), SocketEngine)
    assert isinstance(connect("tcp://127.0.0.1:2375"), DockerEngine)
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:2375")
    assert isinstance(connect(), DockerEngine)
