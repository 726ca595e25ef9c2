"""The swarm the swarm tests run on: three engines in network namespaces of their own, built by
scripts/swarm.sh for the session and torn down after it, whatever happened.

Node 0 is the manager, node 1 a worker, both with daemon-wide no-new-privileges; node 2 is a
worker WITHOUT it, drained: the drift test makes it the only active worker, to show a node that
differs in a way no API document shows. The host's engine is never put into swarm mode.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import IN_CI, ROOT, TEST_IMAGE, unavailable, wait_for

SCRIPT = ROOT / "scripts" / "swarm.sh"
POLICIES = Path(__file__).parent / "policies"


@dataclass(frozen=True)
class Swarm:
    name: str
    nodes: list[tuple[str, str]]  # (node id, engine URL), manager first

    @property
    def manager(self) -> str:
        return self.nodes[0][1]

    def env(self, *nodes: int) -> dict[str, str]:
        """The environment of a `policy` process on this swarm (nodes 0 and 1 unless told)."""
        urls = [self.nodes[n][1] for n in (nodes or (0, 1))]
        return {
            **os.environ,
            "DOCKER_HOST": self.manager,
            "POLICY_SWARM_NODES": " ".join(urls[1:]),
        }

    def docker(self, node: int, *args: str) -> str:
        done = subprocess.run(
            ["docker", "-H", self.nodes[node][1], *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def script(self, *args: str) -> None:
        done = subprocess.run(
            [str(SCRIPT), args[0], self.name, *args[1:]],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr

    def ours(self) -> dict[str, list[str]]:
        """Everything of this project's on the swarm: services, networks, and task containers
        on every node, by name."""
        label = "label=io.container-policy.profile"
        found = {
            "services": self.docker(0, "service", "ls", "-q", "--filter", label).split(),
            "networks": self.docker(0, "network", "ls", "-q", "--filter", label).split(),
        }
        for index in range(len(self.nodes)):
            found[f"containers on node {index}"] = self.docker(
                index, "ps", "-aq", "--filter", label
            ).split()
        return found

    def remove_containers(self, label: str) -> None:
        """Remove, on every node, the containers carrying `label` (a test's own service's)."""
        for index in range(len(self.nodes)):
            for container in self.docker(index, "ps", "-aq", "--filter", f"label={label}").split():
                self.docker(index, "rm", "-f", container)

    def nothing_left(self) -> None:
        wait_for(lambda: not any(self.ours().values()), f"nothing left on the swarm: {self.ours()}")


@pytest.fixture(scope="session")
def swarm() -> Iterator[Swarm]:
    if os.geteuid() != 0:
        unavailable("the swarm tests build engines in network namespaces: they need root")
    name = f"psw{uuid.uuid4().hex[:5]}"
    env = {**os.environ, "SWARM_PLAIN_NODES": "2"}
    try:
        done = subprocess.run(
            [str(SCRIPT), "up", name, "3", TEST_IMAGE],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            message = f"could not build the test swarm: {done.stderr[-2000:]}"
            pytest.fail(message) if IN_CI else unavailable(message)
        nodes = [tuple(line.split()) for line in done.stdout.splitlines() if line.strip()]
        yield Swarm(name, [(n[0], n[1]) for n in nodes])
    finally:
        subprocess.run([str(SCRIPT), "down", name], capture_output=True, timeout=300, check=False)


@pytest.fixture
def clean_swarm(swarm: Swarm) -> Iterator[Swarm]:
    """The swarm, checked to hold nothing of ours before and after the test."""
    swarm.nothing_left()
    yield swarm
    swarm.nothing_left()


def task_states(swarm: Swarm) -> list[dict[str, Any]]:
    import json

    out = swarm.docker(0, "service", "ls", "-q", "--filter", "label=io.container-policy.profile")
    tasks: list[dict[str, Any]] = []
    for service in out.split():
        listed = swarm.docker(0, "service", "ps", service, "--format", "{{json .}}")
        tasks += [json.loads(line) for line in listed.splitlines() if line.strip()]
    return tasks
