"""Podman for the tests: a rootful `podman system service` in a store of its own
(scripts/ensure-podman.sh), started once per session and stopped at its end with every
container in that store removed, whatever the tests did.

`podman_url` gives the service's URL; `engine_url` is parametrized over Docker and Podman, for
tests that must hold on both. Outside CI a machine without podman (or not root) skips them; with
CI=true they fail instead, as every engine test does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import labels
from engine.backends.unix_socket import SocketEngine
from tests.helpers import ROOT, unavailable

ENSURE = ROOT / "scripts" / "ensure-podman.sh"
PODMAN_SOCKET = os.environ.get("PODMAN_SOCKET", "/run/container-policy-podman/podman.sock")
PODMAN_URL = "unix://" + PODMAN_SOCKET
DOCKER_URL = "unix:///var/run/docker.sock"


@pytest.fixture(scope="session")
def podman_url(docker_client: Any) -> Iterator[str]:
    """The test Podman service's URL, with the test images in its store (copied from Docker's,
    hence `docker_client`)."""
    if shutil.which("podman") is None and os.geteuid() != 0:
        unavailable("podman is not installed: run scripts/ensure-podman.sh as root")
    if os.geteuid() != 0:
        unavailable("the Podman tests use a rootful service: run them as root")
    started = subprocess.run([str(ENSURE)], capture_output=True, text=True, check=False)
    if started.returncode != 0:
        unavailable(f"podman's service did not start: {started.stderr.strip()[-500:]}")
    try:
        yield PODMAN_URL
    finally:
        subprocess.run([str(ENSURE), "--stop"], capture_output=True, check=False)


@pytest.fixture(scope="session")
def rootless_podman_url(podman_url: str) -> Iterator[str]:
    """Podman's service run by an unprivileged user with subordinate ids (`--rootless`), on this
    machine's cgroup version; stopped, with its containers removed, at the session's end."""
    started = subprocess.run(
        [str(ENSURE), "--rootless"], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        unavailable(f"rootless podman did not start: {started.stderr.strip()[-500:]}")
    user = os.environ.get("PODMAN_ROOTLESS_USER", "policy-rootless")
    import pwd

    try:
        yield f"unix:///run/user/{pwd.getpwnam(user).pw_uid}/podman.sock"
    finally:
        subprocess.run([str(ENSURE), "--stop-rootless"], capture_output=True, check=False)


@pytest.fixture
def podman(podman_url: str) -> Iterator[SocketEngine]:
    engine = SocketEngine(podman_url)
    yield engine
    engine.close()


@pytest.fixture(params=["docker", "podman"])
def engine_url(request: pytest.FixtureRequest, docker_client: Any) -> str:
    """Each engine in turn: Docker's socket, then the test Podman service."""
    if request.param == "podman":
        url: str = request.getfixturevalue("podman_url")
        return url
    return DOCKER_URL


def of_project(engine: SocketEngine, project: Path) -> list[str]:
    """Ids of the containers (any state) on `engine` launched with `project`'s mounts."""
    found = engine.containers({"label": f"{labels.PROJECT}={project.resolve()}"}, all=True)
    return [c.id for c in found]


@pytest.fixture
def none_left_on(project: Path) -> Iterator[Callable[[str], None]]:
    """`none_left_on(url)`: after the test, remove the project's containers on that engine (even
    when the test failed), and fail if there were any."""
    urls: list[str] = []
    yield urls.append
    left: list[str] = []
    for url in urls:
        engine = SocketEngine(url)
        try:
            for container in of_project(engine, project):
                left.append(f"{url}: {container[:12]}")
                engine.remove(container)
        finally:
            engine.close()
    assert not left, f"containers left behind: {left}"
