"""Launch, verification, audit and `--deep` on each real engine: Docker's socket and Podman's
service (`engine_url`, tests/podman.py), through `--host` and the Python API's `host=`, with the
kernel's own view of the container's process read from this machine's /proc. Every test removes
what it started on that engine and fails if anything is left (`none_left_on`)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import engine as api
from engine.audit.deep import kernel_view
from engine.backends.unix_socket import SocketEngine
from engine.launcher.run import run
from engine.launcher.spec import LaunchSpec, UnenforceableError, VerificationError
from engine.render.interface import render
from engine.render.request import EngineRequest
from policy.loader import load_policy
from tests.helpers import POLICIES, cli, status_fields, write_probe_policy
from tests.podman import DOCKER_URL, of_project

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]

LeftCheck = Callable[[str], None]
# Podman needs both declared (its own defaults exceed this machine's hard limit).
ULIMITS = "ulimits = { nofile = 1024, nproc = 1024 }\n"
# What the probe prints: who it is, its environment, and which of Podman's paths it can write.
PROBE = (
    "id -u; env; for d in /run /var/tmp /tmp; do "
    "touch $d/probe 2>/dev/null && echo writable:$d || echo read-only:$d; done"
)


def options(policies: Path, project: Path, url: str) -> tuple[str, ...]:
    return ("--policies", str(policies), "--project", str(project), "--host", url)


def test_policy_run_gives_the_profile_on_each_engine(
    project: Path, engine_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(engine_url)
    policies = write_probe_policy(project, ULIMITS)
    code, out, err = cli(
        "run", "probe", *options(policies, project, engine_url), "--", "sh", "-c", PROBE
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "1001"
    # Podman's own additions are gone: no container=podman or TERM, no writable /run, /var/tmp.
    assert not any(ln.startswith(("container=", "TERM=")) for ln in lines), out
    assert "writable:/tmp" in lines
    assert "writable:/run" not in lines and "writable:/var/tmp" not in lines


def test_the_kernel_shows_the_profile_on_each_engine(
    project: Path, engine_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(engine_url)
    policies = write_probe_policy(project, ULIMITS)
    with api.container(
        "probe", ["sleep", "60"], policies=policies, project=project, host=engine_url
    ) as running:
        pid = running.engine.inspect_container(running.id).state.pid
        status = status_fields(Path(f"/proc/{pid}/status").read_text())
        view = kernel_view(pid)
        limits = Path(f"/proc/{pid}/limits").read_text()
    assert status["Uid"].split()[1] == "1001" and status["Gid"].split()[1] == "1001"
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"
    assert re.search(r"Max open files\s+1024\s+1024", limits), limits
    assert re.search(r"Max processes\s+1024\s+1024", limits), limits
    assert view["read_only"] is True
    assert (view["memory"], view["pids_limit"], view["cpus"]) == (256 * 2**20, 256, 1.0)
    assert view["tmpfs_read_only"]["/tmp"] is False
    assert all(view["tmpfs_read_only"].get(p, True) for p in ("/run", "/var/tmp"))


def test_the_python_api_launches_on_the_engine_it_is_given(
    project: Path, engine_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(engine_url)
    policies = write_probe_policy(project, ULIMITS)
    result = api.launch(
        "probe",
        ["sh", "-c", "echo from $(id -u)"],
        policies=policies,
        project=project,
        host=engine_url,
    )
    assert (result.exit_code, result.output) == (0, "from 1001\n")


def test_audit_and_deep_are_clean_then_catch_a_raised_kernel_limit(
    project: Path, engine_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(engine_url)
    policies = write_probe_policy(project, ULIMITS)
    opts = options(policies, project, engine_url)
    only = ("--filter", f"label=io.container-policy.project={project.resolve()}")
    with api.container(
        "probe", ["sleep", "60"], policies=policies, project=project, host=engine_url
    ) as running:
        code, out, err = cli("audit", *opts, *only, "--deep")
        assert code == 0, out + err
        assert "1 clean" in out
        # Someone raises the memory limit behind the engine's back: only the kernel shows it.
        pid = running.engine.inspect_container(running.id).state.pid
        memory = next(
            ln.split(":", 2)[2]
            for ln in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            if ":memory:" in ln
        )
        Path(f"/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes").write_text(str(512 * 2**20))
        code, out, _ = cli("audit", *opts, *only)
        assert code == 0, out  # the engine's inspect still says 256 MiB
        code, out, _ = cli("audit", *opts, *only, "--deep")
    assert code == 1
    assert "kernel memory: expected 268435456, the kernel has 536870912" in out


def test_a_forged_container_with_podmans_additions_is_drift(
    project: Path, podman: SocketEngine, podman_url: str, none_left_on: LeftCheck
) -> None:
    """A container created on Podman with the profile's labels but the plain request (as anyone
    can): Podman's writable /run and /var/tmp and its env are found, never accepted."""
    none_left_on(podman_url)
    policies = write_probe_policy(project, ULIMITS)
    policy = load_policy([policies], project)
    spec = LaunchSpec(
        profile=policy.profiles["probe"],
        project=project,
        policy_file=policy.declared["probe"].source.display,
        digest=policy.digest("probe"),
        command=("sleep", "60"),
    )
    (project / "test-results").mkdir()
    forged = podman.create(render(EngineRequest(), spec.walked).value, spec.name)
    try:
        podman.start(forged)
        code, out, _ = cli("audit", *options(policies, project, podman_url), "--format", "json")
    finally:
        podman.remove(forged)
    assert code == 1
    found = {f["field"]: f for c in json.loads(out)["containers"] for f in c["findings"]}
    assert set(found) == {"tmpfs", "env"}
    assert set(found["tmpfs"]["actual"]) == {"/run", "/tmp", "/var/tmp"}
    assert found["env"]["actual"] == {"TERM": "xterm", "container": "podman"}


def test_a_field_podman_cannot_enforce_is_refused_before_anything_exists(
    project: Path, podman: SocketEngine, podman_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(podman_url)
    policies = write_probe_policy(project, ULIMITS + 'seccomp = "seccomp/test-runner.json"\n')
    (policies / "seccomp").mkdir()
    shutil.copy(POLICIES / "seccomp" / "test-runner.json", policies / "seccomp")
    code, out, err = cli("run", "probe", *options(policies, project, podman_url), "--", "true")
    assert code == 2
    assert "profile 'probe' cannot be enforced by Podman 4" in err
    assert "  seccomp: Podman's Docker-compatible API takes a seccomp profile only as a path" in err
    assert of_project(podman, project) == []
    with pytest.raises(UnenforceableError) as refused:
        api.launch("probe", ["true"], policies=policies, project=project, host=podman_url)
    assert [r.field for r in refused.value.refusals] == ["seccomp"]
    code, out, _ = cli("doctor", "probe", *options(policies, project, podman_url))
    assert code == 1
    assert "Podman 4.3.1 (API 1.41)" in out
    assert "FAIL  profile probe: seccomp: cannot be enforced by Podman" in out


def test_a_tmpfs_podman_would_mount_otherwise_is_refused_and_one_it_keeps_runs(
    project: Path, podman: SocketEngine, podman_url: str, none_left_on: LeftCheck
) -> None:
    """Podman mounts every tmpfs nosuid and nodev: a profile's tmpfs without them is refused by
    name before anything exists; with them the container gets the profile's mode."""
    none_left_on(podman_url)
    bare = write_probe_policy(
        project, ULIMITS + 'tmpfs."/scratch" = { size = "10m", mode = "700" }\n'
    )
    code, _, err = cli("run", "probe", *options(bare, project, podman_url), "--", "true")
    assert code == 2, err
    assert "  tmpfs: Podman mounts every tmpfs nosuid and nodev" in err
    assert "/scratch lacks nodev, nosuid" in err
    assert of_project(podman, project) == []
    kept = write_probe_policy(
        project,
        ULIMITS
        + 'tmpfs."/scratch" = { size = "10m", mode = "700", options = ["nodev", "nosuid"] }\n',
    )
    code, out, err = cli(
        "run", "probe", *options(kept, project, podman_url), "--", "stat", "-c", "%a", "/scratch"
    )
    assert code == 0, err
    assert out.split() == ["700"]


def test_doctor_names_the_engine_kind(project: Path, engine_url: str) -> None:
    policies = write_probe_policy(project, ULIMITS)
    code, out, _ = cli("doctor", "probe", *options(policies, project, engine_url))
    assert code == 0, out
    name = "Podman" if "podman" in engine_url else "Docker"
    assert f"ok    engine: {engine_url} answers, {name} " in out


@pytest.mark.parametrize(
    "url", ["podman.sock", "unix://relative.sock", "unix://", "ftp://host", "-x"]
)
@pytest.mark.parametrize("command", [("run", "probe"), ("audit",), ("doctor",), ("clean",)])
def test_a_host_that_is_not_an_engine_url_is_a_usage_error(
    project: Path, url: str, command: tuple[str, ...]
) -> None:
    policies = ("--policies", str(write_probe_policy(project, ULIMITS)))
    code, _, err = cli(*command, *(policies if command[0] != "clean" else ()), f"--host={url}")
    assert code == 2
    assert "--host" in err and "Traceback" not in err


def test_a_profile_without_nofile_and_nproc_is_refused_on_podman(
    project: Path, podman: SocketEngine, podman_url: str, none_left_on: LeftCheck
) -> None:
    none_left_on(podman_url)
    policies = write_probe_policy(project, "ulimits = { nofile = 1024 }\n")
    code, _, err = cli("run", "probe", *options(policies, project, podman_url), "--", "true")
    assert code == 2
    assert "  ulimits: Podman gives every container nproc limits of its own" in err
    assert "declare both" in err
    assert of_project(podman, project) == []


def test_rootless_podman_is_refused_what_it_cannot_enforce(
    project: Path, rootless_podman_url: str, none_left_on: LeftCheck
) -> None:
    """Rootless Podman's compat API creates a container without the request's memory limit and
    ulimits (both dropped silently, on cgroup v1): refused by name before anything exists."""
    none_left_on(rootless_podman_url)
    engine = SocketEngine(rootless_podman_url)
    try:
        kind = engine.kind()
        # Its compat /info claims every limit and no rootless; its own /libpod/info says so.
        assert engine.info().memory_limit and not engine.info().rootless
        assert kind.rootless
        dropped = engine.create(
            {
                "Image": "simple-test-isolation:latest",
                "HostConfig": {
                    "Memory": 256 * 2**20,
                    "Ulimits": [{"Name": "nofile", "Soft": 512, "Hard": 512}],
                },
            },
            f"cp-rootless-{project.name}",
        )
        try:
            made = engine.inspect_container(dropped).host_config
        finally:
            engine.remove(dropped)
        assert (made.memory, made.ulimits) == (0, [])
    finally:
        engine.close()
    policies = write_probe_policy(project, ULIMITS)
    code, _, err = cli(
        "run", "probe", *options(policies, project, rootless_podman_url), "--", "true"
    )
    assert code == 2
    refused = [ln.split(":")[0].strip() for ln in err.splitlines() if ln.startswith("  ")]
    if not Path("/sys/fs/cgroup/cgroup.controllers").exists():  # cgroup v1: no limits at all
        assert refused == ["memory", "cpus", "pids_limit", "ulimits"], err
    else:
        assert "ulimits" in refused, err
    assert "(rootless, cgroup v" in err
    code, out, _ = cli("doctor", "probe", *options(policies, project, rootless_podman_url))
    assert code == 1
    assert ", rootless" in out.splitlines()[0]
    assert "FAIL  profile probe: ulimits: cannot be enforced by Podman" in out


class Tampering(SocketEngine):
    """The engine at `url`, but its create gets `change` applied to the request as the kind
    worded it: an engine (or a proxy, a daemon default) that does not make what was asked."""

    def __init__(self, url: str, change: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(url)
        self.change = change
        self.started: list[str] = []

    def create(self, body: dict[str, Any], name: str) -> str:
        body = {**body, "HostConfig": dict(body["HostConfig"])}
        self.change(body)
        return super().create(body, name)

    def start(self, container: str) -> None:
        self.started.append(container)
        super().start(container)


def _add_net_raw(body: dict[str, Any]) -> None:
    body["HostConfig"]["CapAdd"] = ["NET_RAW"]


def _drop_the_run_mask(body: dict[str, Any]) -> None:
    # Without the mask Podman mounts its own writable tmpfs on /run; Docker mounts nothing.
    body["HostConfig"]["Tmpfs"] = {
        k: v for k, v in (body["HostConfig"].get("Tmpfs") or {}).items() if k != "/run"
    }


def _keep_podmans_env(body: dict[str, Any]) -> None:
    body.pop("UnsetEnv", None)


@pytest.mark.parametrize(
    ("engine_name", "change", "drift"),
    [
        ("docker", _add_net_raw, "capabilities"),
        ("podman", _add_net_raw, "capabilities"),
        ("podman", _drop_the_run_mask, "tmpfs"),  # Podman's additions, Podman only
        ("podman", _keep_podmans_env, "env"),
    ],
    ids=["docker-capability-added", "podman-capability-added", "podman-run-mask", "podman-env"],
)
def test_verification_mismatch_starts_nothing_on_each_engine(
    request: pytest.FixtureRequest,
    project: Path,
    none_left_on: LeftCheck,
    engine_name: str,
    change: Callable[[dict[str, Any]], None],
    drift: str,
) -> None:
    engine_url = DOCKER_URL
    request.getfixturevalue("docker_client")
    if engine_name == "podman":
        engine_url = request.getfixturevalue("podman_url")
    none_left_on(engine_url)
    policies = write_probe_policy(project, ULIMITS)
    policy = load_policy([policies], project)
    spec = LaunchSpec(
        profile=policy.profiles["probe"],
        project=project,
        policy_file="policies/probe.toml",
        command=("sh", "-c", "touch /results/ran"),
    )
    engine = Tampering(engine_url, change)
    with pytest.raises(VerificationError) as caught:
        run(engine, spec)
    assert [d.field for d in caught.value.drifts] == [drift]
    assert engine.started == []
    assert not (project / "test-results" / "ran").exists()
    assert of_project(engine, project) == []


def test_docker_host_points_every_path_at_podman(
    project: Path, podman_url: str, none_left_on: LeftCheck, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --host: DOCKER_HOST, as the docker CLI takes it, for the CLI and the Python API."""
    none_left_on(podman_url)
    monkeypatch.setenv("DOCKER_HOST", podman_url)
    policies = write_probe_policy(project, ULIMITS)
    here = ("--policies", str(policies), "--project", str(project))
    code, out, err = cli("run", "probe", *here, "--", "sh", "-c", "echo $container; id -u")
    assert (code, out) == (0, "\n1001\n"), err
    code, out, _ = cli("doctor", "probe", *here)
    assert code == 0 and f"{podman_url} answers, Podman " in out
    result = api.launch("probe", ["true"], policies=policies, project=project)
    assert result.exit_code == 0
