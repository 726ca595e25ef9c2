"""What the shipped custom seccomp profile (`policies/seccomp/test-runner.json`, the `jit`
profile's) denies, proven on the real engine rather than only that a filter is installed.

A static probe (tests/probes/syscalls.c, built here with gcc) tries each call in the container.
Under the profile, root with CAP_SYS_ADMIN and CAP_SYS_PTRACE is still refused `unshare`,
`mount`, `ptrace` of a process that is not its child, `keyctl` and `bpf` (EPERM), and `clone3`
(ENOSYS), while what a JIT and a test runner need (executable memory, threads, fork and exec)
works. With the engine's default profile and the same capabilities, `unshare`, `mount` and
`ptrace` get through: the custom filter is what refuses them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import POLICIES, TEST_IMAGE, new_name, shipped_options, unavailable
from tests.processes import policy

pytestmark = pytest.mark.engine

PROBE_SOURCE = Path(__file__).resolve().parent.parent / "probes" / "syscalls.c"
PROFILE = POLICIES / "seccomp" / "test-runner.json"
DENIED = ["unshare", "mount", "ptrace", "keyctl", "bpf"]
NEEDED = ["jit", "thread", "fork"]
# What the filter has to stop even for a process that holds the capabilities.
POWERFUL = [
    "--user",
    "0:0",
    "--cap-drop",
    "ALL",
    "--cap-add",
    "SYS_ADMIN",
    "--cap-add",
    "SYS_PTRACE",
]


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the static probe (mounted read-only into the containers)."""
    if shutil.which("gcc") is None:
        unavailable("gcc is needed to build the seccomp probe (Debian: gcc, libc6-dev)")
    out = tmp_path_factory.mktemp("probe")
    built = subprocess.run(
        ["gcc", "-static", "-O1", "-o", str(out / "sysprobe"), str(PROBE_SOURCE), "-lpthread"],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0:
        unavailable(f"could not build the seccomp probe statically: {built.stderr[-500:]}")
    return out


@pytest.fixture
def container_name(docker_client: object) -> Iterator[str]:
    name = new_name("cp-seccomp")
    yield name
    subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)
    left = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"name={name}"], capture_output=True, text=True
    ).stdout.strip()
    assert not left, f"container {name} left behind"


def probe(probe_dir: Path, name: str, options: list[str], calls: list[str]) -> dict[str, str]:
    """Run the probe for `calls` in a container with `options`; call -> "ok" or "errno=N ..."."""
    done = subprocess.run(
        [
            "docker", "run", "--rm", "--name", name, "--network", "none",
            "-v", f"{probe_dir}:/probe:ro", *options, TEST_IMAGE, "/probe/sysprobe", *calls,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert sorted(answers) == sorted(calls), done.stdout
    return answers


def test_the_custom_profile_denies_what_its_readme_says_even_with_capabilities(
    probe_dir: Path, container_name: str
) -> None:
    options = [*POWERFUL, "--security-opt", f"seccomp={PROFILE}"]
    answers = probe(probe_dir, container_name, options, [*DENIED, "clone3", *NEEDED])
    for call in DENIED:
        assert answers[call].startswith("errno=1 "), (call, answers[call])  # EPERM
    assert answers["clone3"].startswith("errno=38 "), answers["clone3"]  # ENOSYS: fall back
    for call in NEEDED:
        assert answers[call] == "ok", (call, answers[call])


def test_without_the_custom_filter_the_same_calls_get_through(
    probe_dir: Path, container_name: str
) -> None:
    # The control: the engine's default profile, the same capabilities. What gets through here
    # and not above was refused by the custom filter, not by a missing capability.
    answers = probe(probe_dir, container_name, POWERFUL, ["unshare", "mount", "ptrace"])
    assert answers == {"unshare": "ok", "mount": "ok", "ptrace": "ok"}, answers


def test_the_jit_profile_runs_a_jit_and_refuses_the_rest(
    probe_dir: Path, project: Path, guard: object
) -> None:
    # Through `policy run jit` itself: the probe sits in the project, mounted read-only at /src.
    shutil.copy(probe_dir / "sysprobe", project / "sysprobe")
    done = policy(
        "run", "jit", *shipped_options(project), "--", "/src/sysprobe", *DENIED, *NEEDED,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    for call in DENIED:
        assert answers[call].startswith("errno=1 "), (call, answers)
    for call in NEEDED:
        assert answers[call] == "ok", (call, answers)
