"""Shared fixtures: the real Docker engine, the shipped policy, the test's project directory and
container clean-up (plain helpers are in tests/helpers.py).

Engine tests are marked `engine`. Outside CI they skip when no engine answers; with CI=true they
fail instead, so CI can never pass without having run them.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policy.loader import Policy, load_policy
from tests.helpers import POLICIES, ROOT, TEST_IMAGE, unavailable

# Podman's test service (`podman_url`, `engine_url`), started once and stopped at the end.
pytest_plugins = ["tests.podman"]


@pytest.fixture(scope="session", autouse=True)
def policy_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own policy cache (processes they start inherit it): never the user's."""
    path = tmp_path_factory.mktemp("policy-cache")
    before = os.environ.get("POLICY_CACHE_DIR")
    os.environ["POLICY_CACHE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("POLICY_CACHE_DIR", None)
    else:
        os.environ["POLICY_CACHE_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The tests' own launch history (processes they start inherit it): never the user's."""
    path = tmp_path_factory.mktemp("history") / "history.sqlite"
    before = os.environ.get("POLICY_HISTORY")
    os.environ["POLICY_HISTORY"] = str(path)
    yield path
    if before is None:
        os.environ.pop("POLICY_HISTORY", None)
    else:
        os.environ["POLICY_HISTORY"] = before


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A docker SDK client for the local engine, with the test image present."""
    import docker

    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:
        unavailable(f"no Docker engine answers: {exc}; run scripts/ensure-engine.sh")
    try:
        client.images.get(TEST_IMAGE)
    except Exception:
        unavailable(f"test image {TEST_IMAGE} missing; run scripts/build-test-images.sh")
    return client


@pytest.fixture(scope="session")
def shipped() -> Policy:
    (ROOT / "test-results").mkdir(exist_ok=True)
    return load_policy([POLICIES])


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The test's project directory (empty): mounted read-only at /src, `test-results` (made by
    a launch) at /results."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def local(project: Path) -> Policy:
    """The shipped policy with mounts resolved against the test's project directory."""
    return load_policy([POLICIES], project)


@pytest.fixture
def run_label() -> str:
    """A label value unique to this test; containers it starts carry it for clean-up checks."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def container_names(docker_client: Any) -> Iterator[list[str]]:
    """Names of containers the test starts; all are removed afterwards, and none may remain."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)
    left = [n for n in names if docker_client.api.containers(all=True, filters={"name": n})]
    assert not left, f"containers left behind: {left}"
