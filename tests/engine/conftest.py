"""Fixtures shared by the launch tests (`test_launch*.py`, `test_api_and_plugin.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.test_launch import Guard, guarded, reset_logging


@pytest.fixture
def fresh_logging() -> Iterator[None]:
    """Logging as a fresh `policy` process has it, before and after the test."""
    reset_logging()
    yield
    reset_logging()


@pytest.fixture
def launch_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Launch records of the test go to its own file (subprocesses inherit it too)."""
    path = tmp_path / "launches.jsonl"
    monkeypatch.setenv("POLICY_RECORD", str(path))
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The test's project directory: mounted read-only at /src, `test-results` at /results."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def guard(docker_client: Any, project: Path) -> Iterator[Guard]:
    """Removes, and fails on, any container of the test left behind."""
    yield from guarded(docker_client, project)
