"""The compose file `policy render --all --as compose` writes, accepted by `docker-compose config`
and run service by service by `docker-compose run` on the real engine: the kernel inside each
container shows its profile (user, capabilities, no_new_privileges, seccomp, read-only root,
tmpfs)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.audit.drift import diff
from policy import units
from policy.loader import Policy
from tests.documents import expected_settings, observed_settings
from tests.helpers import POLICIES, ROOT, cli, status_fields, unavailable

pytestmark = pytest.mark.engine
PROBE = "cat /proc/1/status; echo ---; cat /proc/1/mountinfo; echo ---; touch /x 2>&1 || true"


@pytest.fixture(params=[("sh", "-c", PROBE)], ids=["probe"])
def compose_project(
    request: pytest.FixtureRequest, tmp_path: Path, docker_client: object
) -> Iterator[tuple[Path, list[str]]]:
    """The rendered file (with the command of the fixture's parameter) and the docker-compose
    command for a project of this test's own, taken down (containers, networks) even when the
    test fails."""
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (scripts/ensure-compose.sh)")
    (ROOT / "test-results").mkdir(exist_ok=True)
    code, out, err = cli("render", "--all", "--as", "compose", "-p", str(POLICIES), "--",
                         *request.param)  # fmt: skip
    assert code == 0, err
    path = tmp_path / "docker-compose.yml"
    path.write_text(out)
    command = ["docker-compose", "-p", f"kube-{uuid.uuid4().hex[:10]}", "-f", str(path)]
    try:
        yield path, command
    finally:
        subprocess.run([*command, "down", "--remove-orphans", "-t", "1"], capture_output=True)


def test_docker_compose_runs_every_profile_as_declared(
    compose_project: tuple[Path, list[str]], shipped: Policy
) -> None:
    _, command = compose_project
    config = subprocess.run([*command, "config"], capture_output=True, text=True)
    assert config.returncode == 0, config.stderr
    for name, profile in sorted(shipped.profiles.items()):
        done = subprocess.run(
            [*command, "run", "--rm", "-T", name], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, (name, done.stderr)
        status_text, mountinfo, touch = done.stdout.split("---\n")
        status = status_fields(status_text)
        assert status["Uid"].split()[0] == str(profile.uid), name
        assert status["Gid"].split()[0] == str(profile.gid), name
        assert status["NoNewPrivs"] == "1", name
        assert status["Seccomp"] == "2", name  # a filter: the default or the custom profile
        assert units.capabilities_from_mask(int(status["CapBnd"], 16)) == profile.capabilities
        mounts = [line.split() for line in mountinfo.splitlines()]
        root = next(m for m in mounts if m[4] == "/")
        assert "ro" in root[5].split(","), name
        assert "Read-only file system" in touch, name
        tmp = next(m for m in mounts if m[4] == "/tmp")
        assert f"size={profile.tmpfs['/tmp'].size // 1024}k" in " ".join(tmp), name
        assert {"nosuid", "nodev", "noexec"} <= set(tmp[5].split(",")), name


@pytest.mark.parametrize("compose_project", [("sleep", "60")], indirect=True, ids=["sleep"])
def test_docker_compose_up_creates_exactly_the_declared_containers(
    compose_project: tuple[Path, list[str]], shipped: Policy, docker_client: Any
) -> None:
    """The audit's own comparison, field by field, of each container compose created (custom
    seccomp profile included: docker-compose reads the file and sends its JSON)."""
    _, command = compose_project
    up = subprocess.run([*command, "up", "-d"], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stderr
    for name, profile in sorted(shipped.profiles.items()):
        ids = subprocess.run([*command, "ps", "-q", name], capture_output=True, text=True)
        inspect = docker_client.api.inspect_container(ids.stdout.strip())
        image = docker_client.api.inspect_image(inspect["Image"])["Config"]
        observed = observed_settings(inspect, image)
        # compose adds its own labels (project, service, ...): they are not the profile's.
        observed["labels"] = {
            k: v for k, v in observed["labels"].items() if not k.startswith("com.docker.compose.")
        }
        assert diff(expected_settings(profile, shipped.project, image), observed) == [], name
