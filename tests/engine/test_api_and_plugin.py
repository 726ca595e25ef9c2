"""The Python API (`engine.launch`, `engine.container`) and the `vetted_container` pytest fixture
on the real engine. Every test asserts no container of its own is left (`guard`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import engine
from policy.errors import PolicyError
from tests.helpers import POLICIES, ROOT, Guard, mine, write_probe_policy

pytest_plugins = ["pytester"]
# Fixtures from tests/engine/conftest.py: a fresh logging state and a launch record per test.
pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]


def test_launch_returns_how_the_container_ended(guard: Guard, docker_client: Any) -> None:
    # The shipped policy as documented (project = the repository); the command's $0 is the
    # guard's token, so the container is recognisable even if `launch` fails half-way.
    result = engine.launch(
        "isolation", ["sh", "-c", "echo hi; exit 5", guard.token], policies=ROOT / "policies"
    )
    guard.ids.add(result.container_id)
    assert isinstance(result, engine.RunResult)
    assert result.exit_code == 5
    assert result.output == "hi\n"
    assert result.timed_out is False
    assert result.oom_killed is False
    assert result.outcome == "failed"
    assert result.profile == "isolation"
    assert not docker_client.api.containers(all=True, filters={"id": result.container_id})


def test_container_runs_inside_the_block_and_is_gone_after(
    guard: Guard, project: Path, docker_client: Any
) -> None:
    with engine.container(
        "isolation", ["sleep", "60"], policies=POLICIES, project=project
    ) as running:
        guard.ids.add(running.id)
        inspect = docker_client.api.inspect_container(running.id)
        assert inspect["State"]["Running"]
        assert inspect["Name"] == f"/{running.spec.name}"
    assert not docker_client.api.containers(all=True, filters={"id": running.id})
    assert mine(docker_client, guard) == []


def test_api_refuses_a_policy_that_does_not_validate(guard: Guard, project: Path) -> None:
    policies = write_probe_policy(project, "privileged = true\n")
    with pytest.raises(PolicyError, match="does not validate"):
        engine.launch("probe", ["touch", "/results/ran"], policies=policies)
    with pytest.raises(PolicyError), engine.container("probe", ["sleep", "60"], policies=policies):
        pytest.fail("entered a container under an invalid policy")
    assert not (project / "test-results" / "ran").exists()


SUITE = """
import docker

PROJECT = {project!r}


def test_run(vetted_container):
    result = vetted_container.run(
        "isolation", ["sh", "-c", "echo from-plugin; exit 0"], project=PROJECT
    )
    assert result.exit_code == 0, result.output
    assert result.output == "from-plugin\\n"


def test_start(vetted_container):
    running = vetted_container.start("isolation", ["sleep", "60"], project=PROJECT)
    state = docker.from_env().api.inspect_container(running.id)["State"]
    assert state["Running"]
"""


def test_vetted_container_fixture_in_a_test_suite(
    pytester: pytest.Pytester,
    guard: Guard,
    project: Path,
    launch_record: Path,
    docker_client: Any,
) -> None:
    pytester.makepyfile(test_suite=SUITE.format(project=str(project)))
    result = pytester.runpytest("--policies", str(POLICIES), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert mine(docker_client, guard) == []  # `start`'s container went with its test
    # The plugin writes the launch record ($POLICY_RECORD): one line per launch.
    entries = [json.loads(line) for line in launch_record.read_text().splitlines()]
    assert sorted(e["outcome"] for e in entries) == ["detached", "passed"]
    assert {e["profile"] for e in entries} == {"isolation"}
