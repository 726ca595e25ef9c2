"""A pytest plugin so a test suite starts containers only through vetted profiles.

Installed with the package (entry point `pytest11`). Fixture `vetted_container`:

    def test_suite_passes(vetted_container):
        result = vetted_container.run("isolation", ["sh", "-c", "make test"])
        assert result.exit_code == 0, result.output
        assert not result.usage.violations, result.usage.violations  # what it consumed

    def test_service(vetted_container):
        running = vetted_container.start("full", ["sleep", "600"])  # removed after the test

The policy directory is `--policies DIR` on the pytest command line, or `policy_dir` in the
pytest ini options, default `policies`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("container-policy")
    group.addoption(
        "--policies",
        dest="policy_dir",
        metavar="DIR",
        default=None,
        help="policy directory for the vetted_container fixture",
    )
    parser.addini(
        "policy_dir", "policy directory for the vetted_container fixture", default="policies"
    )


class VettedContainers:
    """Launches containers through profiles for one test, and removes every one it started."""

    def __init__(self, policies: Path) -> None:
        self.policies = policies
        self._stack = contextlib.ExitStack()

    def run(self, profile: str, command: Sequence[str] = (), **kwargs: Any) -> Any:
        from engine.api import launch

        return launch(profile, command, policies=self.policies, **kwargs)

    def start(self, profile: str, command: Sequence[str] = (), **kwargs: Any) -> Any:
        from engine.api import container

        return self._stack.enter_context(
            container(profile, command, policies=self.policies, **kwargs)
        )

    def close(self) -> None:
        self._stack.close()


@pytest.fixture
def vetted_container(request: pytest.FixtureRequest) -> Iterator[VettedContainers]:
    option = request.config.getoption("policy_dir")
    policies = Path(option or request.config.getini("policy_dir"))
    if not policies.is_absolute():
        policies = Path(request.config.rootpath) / policies
    from engine import history
    from engine.history import jsonl, sqlite
    from engine.logs import logger

    # Every launch from a test suite is in the launch record and the history too, and its
    # messages are shown.
    history.use(jsonl.JsonLinesStore(jsonl.default_path()))
    history.use(sqlite.SqliteStore(sqlite.default_path(), sample_days=sqlite.default_sample_days()))
    logger.enable("engine")
    containers = VettedContainers(policies)
    try:
        yield containers
    finally:
        containers.close()
