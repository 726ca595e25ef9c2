"""`policy render` output run by the real docker CLI gives exactly the declared container.

For every shipped profile: the printed `docker run` line, executed as printed, yields a container
whose inspect document matches the profile field by field, and the kernel inside agrees.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from typing import Any

import pytest

from engine.audit.drift import diff
from policy import units
from policy.loader import Policy
from tests.documents import expected_settings, observed_settings
from tests.helpers import POLICIES, ROOT, cli, new_name, status_fields

pytestmark = pytest.mark.engine
PROFILES = ["isolation", "full", "parallel", "jit", "fast", "standard", "slow", "intensive"]


def render(*args: str) -> str:
    code, out, err = cli("render", "--policies", str(POLICIES), *args)
    assert code == 0, err
    return out.strip()


def test_every_shipped_profile_is_tested(shipped: Policy) -> None:
    assert sorted(shipped.profiles) == sorted(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_rendered_line_gives_the_declared_container(
    name: str, shipped: Policy, docker_client: Any, container_names: list[str]
) -> None:
    profile = shipped.profiles[name]
    argv = shlex.split(render(name, "--", "sleep", "60"))
    container = new_name()
    container_names.append(container)
    # Detach and name it so it can be inspected; every other flag is exactly as rendered.
    argv[2:2] = ["--detach", "--name", container]
    subprocess.run(argv, check=True, capture_output=True, cwd=ROOT)

    inspect = docker_client.api.inspect_container(container)
    image = docker_client.api.inspect_image(inspect["Image"])["Config"]
    observed = observed_settings(inspect, image)
    assert diff(expected_settings(profile, shipped.project, image), observed) == []
    assert observed["memory"] == profile.memory and observed["pids_limit"] == profile.pids_limit

    def sh(script: str) -> str:
        done = subprocess.run(
            ["docker", "exec", container, "sh", "-c", script], capture_output=True, text=True
        )
        assert done.returncode == 0, (script, done.stdout, done.stderr)
        return done.stdout

    status = status_fields(sh("cat /proc/1/status"))
    assert status["Uid"].split()[0] == str(profile.uid)
    assert status["Gid"].split()[0] == str(profile.gid)
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    # A non-root process has no effective capabilities; the bounding set is what was granted.
    assert int(status["CapEff"], 16) == 0
    assert units.capabilities_from_mask(int(status["CapBnd"], 16)) == profile.capabilities

    mounts = sh("cat /proc/1/mountinfo").splitlines()
    root = next(line.split() for line in mounts if line.split()[4] == "/")
    assert "ro" in root[5].split(",")
    tmp = next(line for line in mounts if line.split()[4] == "/tmp")
    assert f"size={profile.tmpfs['/tmp'].size // 1024}k" in tmp
    for option in ("nosuid", "nodev", "noexec"):
        assert option in tmp.split()[5].split(",")
    assert (
        "Read-only file system"
        in subprocess.run(
            ["docker", "exec", container, "touch", "/forbidden"], capture_output=True, text=True
        ).stderr
    )
    limit = sh(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
        "|| cat /sys/fs/cgroup/memory.max"
    ).strip()
    assert int(limit) == profile.memory
    links = sh("ls /sys/class/net").split()
    assert (links == ["lo"]) == (profile.network == "none")


def test_printed_line_runs_as_printed(container_names: list[str], docker_client: Any) -> None:
    """The text itself, through a shell, with hostile-looking command words kept intact."""
    line = render(
        "isolation",
        "--",
        "sh",
        "-c",
        "grep -E '^(Uid|NoNewPrivs|Seccomp)' /proc/1/status; echo \"$0\"",
        "a;b 'c'",
    )
    done = subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, cwd=ROOT, check=True
    )
    status = status_fields(done.stdout)
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    assert status["Uid"].split()[0] == "1001"
    assert done.stdout.splitlines()[-1] == "a;b 'c'"


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not installed")
def test_compose_render_is_accepted_by_docker_compose(tmp_path: Any) -> None:
    for name in PROFILES:
        text = render(name, "--as", "compose", "--", "echo", "$HOME")
        path = tmp_path / f"{name}.yml"
        path.write_text(text)
        done = subprocess.run(
            ["docker-compose", "-f", str(path), "config"], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "read_only: true" in done.stdout
        assert "$$HOME" in text  # compose would otherwise interpolate it
