"""Fixtures shared by the engine tests: a fresh logging state, a launch record and a container
guard per launch test (`test_launch*.py`, `test_api_and_plugin.py`), and the policy the recorded
inspect documents were recorded under (`test_observe.py`, `test_reports.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from policy.loader import Policy
from tests.documents import recorded_policy
from tests.helpers import Guard, guarded, reset_logging


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
def guard(docker_client: Any, project: Path) -> Iterator[Guard]:
    """Removes, and fails on, any container of the test left behind."""
    yield from guarded(docker_client, project)


@pytest.fixture(scope="module")
def policy() -> Policy:
    """The policy the recorded inspect documents (tests/data/inspect) were recorded under."""
    return recorded_policy()
