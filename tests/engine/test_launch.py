"""`policy run` on the real engine: what the kernel shows inside, and how a launch ends.

Every test asserts that no container of its own is left, even when it fails (fixture `guard`):
containers are recognised by the reserved labels, and as the test's own by its project directory
(label `io.container-policy.project`), a container id or a token in the command. Containers that
existed before the test, or that belong to someone else, are never touched.

The helpers (`guarded`, `cli`, `write_probe_policy`, ...) are in tests/helpers.py, shared with
the other modules of the launch feature's tests.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from engine.backends.unix_socket import SocketEngine
from engine.launcher.run import run
from engine.launcher.spec import LaunchSpec, VerificationError
from policy import units
from policy.loader import Policy, load_policy
from tests.helpers import POLICIES, Guard, cli, mine, shipped_options, status_fields
from tests.processes import policy as policy_run

# Fixtures from tests/engine/conftest.py: a fresh logging state and a launch record per test.
pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]


# ---------------------------------------------------------------------------------------------
# helpers


def run_shipped(profile: str, project: Path, *command: str) -> tuple[int, str, str]:
    """`policy run PROFILE -- COMMAND` with the shipped policy, mounts in `project`."""
    return cli("run", profile, *shipped_options(project), "--", *command)


def sections(text: str) -> dict[str, str]:
    """Output split at lines `@@name` into {name: text}."""
    out: dict[str, str] = {}
    name = "head"
    for line in text.splitlines(keepends=True):
        if line.startswith("@@"):
            name = line[2:].strip()
            out[name] = ""
        else:
            out[name] = out.get(name, "") + line
    return out


def proc_limits(text: str) -> dict[str, tuple[str, str]]:
    """`/proc/PID/limits` as {name: (soft, hard)}; names hold single spaces, columns two or more."""
    rows = (re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line) for line in text.splitlines()[1:])
    return {m[1]: (m[2], m[3]) for m in rows if m}


PROBE = """
echo @@status; cat /proc/1/status
echo @@mountinfo; cat /proc/self/mountinfo
echo @@tmpmode; stat -c %a /tmp
echo @@net; ls /sys/class/net
echo @@memory
cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max
echo @@pids
cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max
echo @@write; touch /forbidden 2>&1; echo "exit=$?"
echo @@limits; cat /proc/1/limits
"""


# ---------------------------------------------------------------------------------------------
# inside the container


def test_isolation_confines_the_process(guard: Guard, project: Path, local: Policy) -> None:
    profile = local.profiles["isolation"]
    code, out, _ = run_shipped("isolation", project, "sh", "-c", PROBE)
    assert code == 0, out
    part = sections(out)

    status = status_fields(part["status"])
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # filter mode
    assert status["Uid"].split() == ["1001"] * 4
    assert status["Gid"].split() == ["1001"] * 4

    assert "Read-only file system" in part["write"]
    assert "exit=1" in part["write"]

    mounts = [line.split() for line in part["mountinfo"].splitlines()]
    root = next(m for m in mounts if m[4] == "/")
    assert "ro" in root[5].split(",")
    tmp = next(m for m in mounts if m[4] == "/tmp")
    fstype = tmp[tmp.index("-") + 1]
    assert fstype == "tmpfs"
    tmpfs = profile.tmpfs["/tmp"]
    assert f"size={tmpfs.size // 1024}k" in tmp[tmp.index("-") + 3].split(",")
    assert set(tmpfs.options) <= set(tmp[5].split(","))  # nosuid, nodev, noexec
    assert part["tmpmode"].strip() == f"{tmpfs.mode:o}"

    assert part["net"].split() == ["lo"]
    assert int(part["memory"]) == profile.memory == 1 << 30
    assert int(part["pids"]) == profile.pids_limit == 256

    # The profile's ulimits, as the kernel applies them to the container's process.
    limits = proc_limits(part["limits"])
    assert profile.ulimits["nofile"].soft == profile.ulimits["nofile"].hard == 4096
    assert limits["Max open files"] == ("4096", "4096")
    assert limits["Max processes"] == ("4096", "4096")


def test_full_grants_ptrace_in_the_bounding_set_and_a_network(guard: Guard, project: Path) -> None:
    """A non-root uid gets no effective capabilities even with --cap-add (the kernel clears
    them on exec for uid != 0): what `cap_add` grants shows in the bounding set, CapBnd."""
    code, out, _ = run_shipped(
        "full", project, "sh", "-c", "cat /proc/1/status; echo @@net; ls /sys/class/net"
    )
    assert code == 0, out
    part = sections(out)
    status = status_fields(part["head"])
    assert units.capabilities_from_mask(int(status["CapBnd"], 16)) == {"SYS_PTRACE"}
    assert int(status["CapEff"], 16) == 0
    assert status["Uid"].split()[0] == "1001"
    links = part["net"].split()
    assert "lo" in links and "eth0" in links


# ---------------------------------------------------------------------------------------------
# how a launch ends


@pytest.mark.parametrize("status", [0, 3, 42])
def test_exit_code_passes_through(status: int, guard: Guard, project: Path) -> None:
    code, out, _ = run_shipped("isolation", project, "sh", "-c", f"echo before-exit; exit {status}")
    assert code == status
    assert out == "before-exit\n"


def test_timeout_stops_the_container_and_exits_124(guard: Guard, project: Path) -> None:
    started = time.monotonic()
    code, _, err = run_shipped("fast", project, "sleep", "30")
    elapsed = time.monotonic() - started
    assert code == 124
    # The monitor's summary names it as a violation, with its threshold.
    assert "error    timeout: " in err and "(threshold: timeout 2s)" in err, err
    # The profile allows 2 s, then SIGTERM and SIGKILL after a 1 s grace: a bound on behaviour
    # (the container did not run its 30 s), not a performance assertion.
    assert elapsed < 10, f"took {elapsed:.1f}s"


OOM = ["sh", "-c", 'a=x; while true; do a="$a$a"; done']


@pytest.fixture
def oom_policy(project: Path) -> Path:
    """The shipped policy plus `fast-oom`: the `fast` tier (128 MiB) with a 60 s timeout.

    `fast` itself allows 2 s, and on a loaded machine (cpus = 1) the loop can take longer than
    that to fill 128 MiB: the launch then ends as a timeout, 124, which is right but not what
    these tests are about. Only the timeout differs from `fast`.
    """
    policies = project / "policies"
    shutil.copytree(POLICIES, policies)
    (policies / "zz-oom.toml").write_text(
        'version = 1\n\n[profiles.fast-oom]\nextends = "fast"\ntimeout = "60s"\n',
        encoding="utf-8",
    )
    return policies


def test_out_of_memory_exits_137(guard: Guard, oom_policy: Path) -> None:
    profile = load_policy([oom_policy]).profiles["fast-oom"]
    assert profile.memory == 128 << 20 and profile.timeout == 60
    code, _, _ = cli("run", "fast-oom", "--policies", str(oom_policy), "--", *OOM)
    assert code == 137


def test_out_of_memory_is_explained_on_stderr(guard: Guard, oom_policy: Path) -> None:
    done = policy_run("run", "fast-oom", "--policies", str(oom_policy), "--", *OOM)
    assert done.returncode == 137
    assert "out of memory" in done.stderr and "128 MiB" in done.stderr, done.stderr


class TamperingEngine(SocketEngine):
    """The real engine, but the create request is altered on the way: a stand-in for an engine
    (or a proxy, or a daemon default) that does not create what it was asked for."""

    def __init__(self, change: dict[str, Any]) -> None:
        super().__init__()
        self.change = change
        self.started: list[str] = []

    def create(self, body: dict[str, Any], name: str) -> str:
        body = {**body, "HostConfig": {**body["HostConfig"], **self.change}}
        return super().create(body, name)

    def start(self, container: str) -> None:
        self.started.append(container)
        super().start(container)


@pytest.mark.parametrize(
    ("change", "drift", "expected", "actual"),
    [
        ({"CapAdd": ["NET_RAW"]}, "capabilities", [], ["NET_RAW"]),
        ({"PidsLimit": 4096}, "pids_limit", 256, 4096),
        (
            {"Ulimits": [{"Name": "nofile", "Soft": 1048576, "Hard": 1048576}]},
            "ulimits",
            {"nofile": {"soft": 4096, "hard": 4096}, "nproc": {"soft": 4096, "hard": 4096}},
            {"nofile": {"soft": 1048576, "hard": 1048576}},
        ),
    ],
    ids=["capability-added", "pids-limit-changed", "ulimits-changed"],
)
def test_verification_mismatch_starts_nothing(
    change: dict[str, Any],
    drift: str,
    expected: Any,
    actual: Any,
    guard: Guard,
    project: Path,
    local: Policy,
    docker_client: Any,
) -> None:
    engine = TamperingEngine(change)
    spec = LaunchSpec(
        profile=local.profiles["isolation"],
        project=local.project,
        policy_file="policies/base.toml",
        command=("sh", "-c", f"touch /results/ran; echo {guard.token}"),
    )
    output: list[bytes] = []
    with pytest.raises(VerificationError) as caught:
        run(engine, spec, lambda _stream, data: output.append(data))

    assert [(d.field, d.expected, d.actual) for d in caught.value.drifts] == [
        (drift, expected, actual)
    ]
    assert f"{drift}: expected {expected!r}, got {actual!r}" in str(caught.value)
    assert engine.started == []
    assert output == []
    assert not (project / "test-results" / "ran").exists()
    assert not docker_client.api.containers(all=True, filters={"name": spec.name})
    assert mine(docker_client, guard) == []


def test_writable_results_dir_is_created_for_the_container_user(
    guard: Guard, project: Path
) -> None:
    results = project / "test-results"
    assert not results.exists()
    code, out, _ = run_shipped("isolation", project, "sh", "-c", "id -u > /results/written-by")
    assert code == 0, out
    assert results.is_dir()
    if os.geteuid() == 0:
        assert (results.stat().st_uid, results.stat().st_gid) == (1001, 1001)
    else:  # cannot chown: the directory is opened to everyone instead (sticky)
        assert results.stat().st_mode & 0o1777 == 0o1777
    assert (results / "written-by").read_text() == "1001\n"
