"""Engine faults: an engine that is missing, dies or restarts mid-run or mid-audit, a missing
image, a results directory that cannot be written or fills up.

Each fault ends with the documented exit code (2 engine/usage error, else the container's own
code), a message that names the engine or the path and says what to do, no traceback, nothing
reported as passed that did not run, and no container or volume of the test left behind.

Faults that kill an engine use an extra engine in a network namespace of its own
(tests/faults/engines.py), never the shared main engine.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.backends.interface import ContainerInspect
from engine.backends.unix_socket import SocketEngine
from engine.launcher.spec import LaunchSpec
from engine.render.interface import render
from engine.render.request import EngineRequest
from policy.loader import load_policy
from tests.faults.engines import ExtraEngine, extra_engine
from tests.helpers import (
    POLICIES,
    PROBE_POLICY,
    TEST_IMAGE,
    cli,
    has_traceback,
    main_env,
    none_left,
    of_project,
    removed,
    shipped_options,
    wait_for,
    write_probe_policy,
)
from tests.processes import policy, spawn, spawned

pytestmark = pytest.mark.engine

# A `sleep 30` that ends promptly on SIGTERM (a bare `sleep` as pid 1 ignores it, and a restarting
# engine then waits 10 s before it kills the container).
TRAPPED_SLEEP = ["sh", "-c", 'trap "exit 99" TERM; sleep 30 & wait $!']
TRAPPED_EXIT = 99  # not 143, which `policy run` itself uses for "interrupted by SIGTERM"
RUN_BOUND = 30.0  # seconds a run may take to end once its engine is gone


@pytest.fixture(scope="module")
def spare(docker_client: Any) -> Iterator[ExtraEngine]:
    """An extra engine of this module's own (killed and restarted by its tests)."""
    with extra_engine() as engine:
        yield engine


# ---------------------------------------------------------------------------------------------
# engine unreachable at start

NOWHERE = "unix:///nonexistent.sock"
ENGINE_HINT = "Is dockerd running?"


def _unreachable_checks(code: int, out: str, err: str, project: Path) -> None:
    assert code == 2, err
    assert not has_traceback(err), err
    assert out == ""  # nothing reported as run, passed or clean
    assert NOWHERE in err, err
    assert "cannot" in err and ENGINE_HINT in err and "DOCKER_HOST" in err, err
    assert not (project / "test-results").exists()  # nothing prepared for a launch that failed


@pytest.mark.parametrize(
    "command",
    [
        pytest.param("run"),
        pytest.param("audit"),
    ],
)
def test_unreachable_engine_exits_2_naming_the_engine_and_the_fix(
    command: str, project: Path
) -> None:
    """As a user runs it: `DOCKER_HOST=unix:///nonexistent.sock policy run isolation -- true`."""
    argv = [command, *shipped_options(project)]
    if command == "run":
        argv += ["isolation", "--", "true"]
    done = policy(*argv, env=main_env(project, DOCKER_HOST=NOWHERE), timeout=60)
    _unreachable_checks(done.returncode, done.stdout, done.stderr, project)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["run", "parallel", "--workers", "2", "--", "true"], id="run-workers"),
        pytest.param(["shell", "isolation", "--", "true"], id="shell"),
        pytest.param(["audit", "--host", NOWHERE], id="audit-host"),
        pytest.param(["audit", "--format", "sarif"], id="audit-sarif"),
        pytest.param(["clean", "--dry-run"], id="clean"),
    ],
)
def test_unreachable_engine_other_commands(
    argv: list[str], project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same, in-process (quicker) for the other commands that need an engine."""
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)
    monkeypatch.setenv("POLICY_RECORD", str(project / "launches.jsonl"))
    command, rest = argv[0], argv[1:]
    options = () if command == "clean" else shipped_options(project)
    split = rest.index("--") if "--" in rest else len(rest)
    code, out, err = cli(command, *rest[:split], *options, *rest[split:])
    _unreachable_checks(code, out, err, project)


# ---------------------------------------------------------------------------------------------
# the engine dies (SIGKILL) or shuts down (SIGTERM) while `policy run` waits for its container


@dataclass
class RunOutcome:
    sig: str
    returncode: int
    stdout: str
    stderr: str
    ended_after: float  # seconds between the engine's death and the end of `policy run`
    hung: bool
    left: list[dict[str, Any]] = field(default_factory=list)  # after the engine restarted
    records: list[dict[str, Any]] = field(default_factory=list)  # the launch record's entries


@pytest.fixture(scope="module", params=["SIGKILL", "SIGTERM"])
def run_through_engine_death(
    request: pytest.FixtureRequest, spare: ExtraEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunOutcome]:
    sig = getattr(signal, request.param)
    project = tmp_path_factory.mktemp(f"run-{request.param}")
    if not spare.running():
        spare.start()
    env = {**spare.env, "POLICY_RECORD": str(project / "launches.jsonl")}
    argv = ("run", "isolation", *shipped_options(project), "--", *TRAPPED_SLEEP)
    try:
        with spawned(*argv, env=env) as proc:
            client = spare.client()
            wait_for(
                lambda: [c for c in of_project(client, project) if c.get("State") == "running"],
                "the run's container to be running",
                deadline=30,
            )
            client.close()
            spare.kill(sig)
            died = time.monotonic()
            try:
                out, err = proc.communicate(timeout=RUN_BOUND)
                hung = False
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                hung = True
            ended = time.monotonic() - died
            spare.start()
            client = spare.client()
            left = of_project(client, project)
            record = project / "launches.jsonl"
            lines = record.read_text().splitlines() if record.exists() else []
            yield RunOutcome(
                request.param,
                proc.returncode,
                out,
                err,
                ended,
                hung,
                left,
                [json.loads(x) for x in lines],
            )
    finally:
        if not spare.running():
            spare.start()
        client = spare.client()
        removed(client, project)
        remaining = of_project(client, project)
        volumes = (client.volumes() or {}).get("Volumes") or []
        client.close()
        assert not remaining, f"could not remove {remaining}"
        assert not volumes, f"volumes left on {spare.name}: {volumes}"


TRACEBACK_BUG = (
    "BUG engine/backends/docker.py DockerEngine.errors (lines 52-75): only "
    "requests.exceptions.ConnectionError is mapped; an engine that dies while `wait` streams "
    "its reply raises requests.exceptions.ChunkedEncodingError (urllib3 ProtocolError "
    "'Response ended prematurely'), which escapes `policy run` as a traceback with exit 1. "
    "Fix: catch requests.exceptions.RequestException (and urllib3.exceptions.HTTPError) in "
    "`errors` and raise EngineError('the engine at ... went away while ...')."
)
LEFT_BEHIND_BUG = (
    "BUG engine/launcher/run.py run() finally block (lines 277-284; detached() 340-343 likewise): "
    "when the engine is down at "
    "clean-up, `engine.remove(container)` fails and the EngineError is suppressed silently; the "
    "container is still there (Exited) when the engine comes back, and nothing tells the "
    "user. Fix: retry the removal for a bounded time (the engine may be restarting), and if it "
    "still fails, say so on stderr with the container name and `policy clean` as the remedy "
    "(and record it in the launch record)."
)


def _bug_applies(request: pytest.FixtureRequest, outcome: RunOutcome, bugs: dict[str, str]) -> None:
    if outcome.sig in bugs:
        request.applymarker(pytest.mark.xfail(strict=True, reason=bugs[outcome.sig]))


def test_run_ends_within_a_bound_when_its_engine_dies(run_through_engine_death: RunOutcome) -> None:
    outcome = run_through_engine_death
    assert not outcome.hung, f"`policy run` still running {RUN_BOUND:.0f}s after the engine died"
    assert outcome.ended_after < RUN_BOUND


def test_run_whose_engine_dies_exits_nonzero_with_a_clear_message(
    request: pytest.FixtureRequest, run_through_engine_death: RunOutcome
) -> None:
    outcome = run_through_engine_death
    assert not has_traceback(outcome.stderr), outcome.stderr
    # 2 (engine error), or the container's own code if the engine reported its end in time.
    assert outcome.returncode in (2, TRAPPED_EXIT, 137), (outcome.returncode, outcome.stderr)
    if outcome.returncode == 2:
        assert "policy: error:" in outcome.stderr and "docker.sock" in outcome.stderr
    assert all(r.get("outcome") != "passed" for r in outcome.records), outcome.records


def test_a_container_the_dead_engine_kept_is_named_and_cleaned_afterwards(
    spare: ExtraEngine, run_through_engine_death: RunOutcome
) -> None:
    """While the engine is down its containers cannot be removed. The run keeps trying for a
    while, then says which container it left and how to remove it, records it, and `policy
    clean` removes it once the engine is back: never a silent leftover."""
    outcome = run_through_engine_death
    for container in outcome.left:
        assert container["Id"][:12] in outcome.stderr, outcome.stderr
        assert "policy clean" in outcome.stderr
        assert any(r.get("left_behind") for r in outcome.records), outcome.records
    if outcome.left:
        done = policy("clean", env=spare.env)
        assert done.returncode == 0, done.stderr
        client = spare.client()
        try:
            ids = {c["Id"] for c in outcome.left}
            still = [c for c in client.containers(all=True) if c["Id"] in ids]
        finally:
            client.close()
        assert still == []


# ---------------------------------------------------------------------------------------------
# the engine restarts during an audit of many containers

# Inspected all at once by the audit's 16 threads, so the kill lands among requests in flight.
# Each container costs 0.5-2 s to start here; the load tests audit 500.
AUDIT_CONTAINERS = 8
SLEEPER = ["sh", "-c", 'trap "exit 0" TERM; sleep 3600 & wait $!']


def start_many(engine: SocketEngine, count: int, project: Path) -> list[str]:
    """`count` running containers: half launched under the shipped profile `isolation` with
    mounts in `project` (its create request, not verified, to be quick), half unmanaged."""
    (project / "test-results").mkdir(parents=True, exist_ok=True)
    shipped = load_policy([POLICIES], project)
    ids: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        if i % 2:
            spec = LaunchSpec(
                shipped.profiles["isolation"],
                shipped.project,
                "policies/base.toml",
                tuple(SLEEPER),
            )
            cid = engine.create(render(EngineRequest(), spec.walked).value, spec.name)
        else:
            body = {"Image": TEST_IMAGE, "Cmd": SLEEPER, "HostConfig": {"NetworkMode": "none"}}
            cid = engine.create(body, f"cp-unmanaged-{uuid.uuid4().hex[:10]}")
        engine.start(cid)
        with lock:
            ids.append(cid)

    with cf.ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(count)))
    assert len(ids) == count
    return sorted(ids)


@dataclass
class Fleet:
    engine: ExtraEngine
    ids: list[str]
    project: Path

    @property
    def policy_args(self) -> tuple[str, ...]:
        return shipped_options(self.project)

    def running(self) -> list[str]:
        client = self.engine.client()
        try:
            return sorted(c["Id"] for c in client.containers(filters={"status": "running"}))
        finally:
            client.close()


@pytest.fixture(scope="module")
def fleet(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """An extra engine with --live-restore (its containers survive its restarts) running
    AUDIT_CONTAINERS containers; all removed with it at the end."""
    project = tmp_path_factory.mktemp("fleet")
    with extra_engine(extra_args=("--live-restore",)) as engine:
        api = SocketEngine(engine.url)
        try:
            yield Fleet(engine, start_many(api, AUDIT_CONTAINERS, project), project)
        finally:
            api.close()
            engine.remove_all_containers()
            assert engine.containers() == []


@pytest.fixture
def audited(fleet: Fleet) -> Iterator[Fleet]:
    """The fleet, up, with all its containers running before and after the test."""
    if not fleet.engine.running():
        fleet.engine.start()
    assert fleet.running() == fleet.ids
    yield fleet
    if not fleet.engine.running():
        fleet.engine.start()
    assert fleet.running() == fleet.ids, "the audit or the restart lost containers"


def test_audit_ends_with_engine_error_when_the_engine_dies_before_answering(
    audited: Fleet,
) -> None:
    """Deterministic: the engine is frozen (SIGSTOP) so the audit's request is in flight, then
    killed and restarted."""
    engine = audited.engine
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGSTOP)
    try:
        proc = spawn("audit", *audited.policy_args, env=engine.env)
        try:
            time.sleep(2.0)  # the CLI has started and sent its first request by now
            assert proc.poll() is None, "the audit ended although its engine was frozen"
        finally:
            engine.kill(signal.SIGKILL)  # a stopped process dies of SIGKILL too
        out, err = proc.communicate(timeout=60)
    finally:
        engine.start()
    assert proc.returncode == 2, (proc.returncode, err)
    assert not has_traceback(err), err
    assert engine.url in err and "policy: error:" in err, err
    assert "container(s) on" not in out  # no report of a half-done audit


def test_audit_ends_cleanly_when_the_engine_dies_mid_inspection(
    audited: Fleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic: the engine is killed from inside the 6th inspect, while other inspects
    are in flight on the audit's threads; then restarted."""
    engine = audited.engine
    original = SocketEngine.inspect_if_exists
    calls = 0
    lock = threading.Lock()

    def inspect_then_die(self: SocketEngine, container: str) -> ContainerInspect | None:
        nonlocal calls
        with lock:
            calls += 1
            if calls == 6:
                engine.kill(signal.SIGKILL)
        return original(self, container)

    monkeypatch.setattr(SocketEngine, "inspect_if_exists", inspect_then_die)
    try:
        code, out, err = cli("audit", *audited.policy_args, "--host", engine.url)
    finally:
        monkeypatch.undo()
        if not engine.running():
            engine.start()
    assert calls >= 6
    assert code == 2, (code, out, err)
    assert "policy: error:" in err and engine.url in err, err
    assert "container(s) on" not in out


def test_audit_after_the_engine_restarted_reports_every_container(audited: Fleet) -> None:
    """The same containers audit fine once the engine is back (exit 1: the unmanaged half
    breaks rules; the managed half is clean), and the report names its host."""
    engine = audited.engine
    engine.restart(signal.SIGKILL)
    done = policy("audit", *audited.policy_args, "--format", "json", env=engine.env, timeout=60)
    assert done.returncode == 1, done.stderr
    assert not has_traceback(done.stderr)
    report = json.loads(done.stdout)
    assert report["hosts"] == [engine.url]
    assert sorted(c["id"] for c in report["containers"]) == audited.ids
    managed = [c for c in report["containers"] if c["profile"] == "isolation"]
    assert len(managed) == AUDIT_CONTAINERS // 2
    assert all(c["findings"] == [] for c in managed), managed
    unmanaged = [c for c in report["containers"] if c["profile"] is None]
    assert all(c["findings"] for c in unmanaged)


# ---------------------------------------------------------------------------------------------
# image missing; results directory unwritable or full


@pytest.fixture
def main_engine(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process `policy` calls go to the main engine; the launch record to the project."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("POLICY_RECORD", str(project / "launches.jsonl"))


RESULTS_MOUNT = 'mounts = [{ source = "test-results", target = "/results", writable = true }]\n'


def run_probe(
    client: Any, project: Path, mounts: str, *command: str, header: str = PROBE_POLICY
) -> tuple[int, str, str]:
    """`policy run probe -- COMMAND` in-process under `header` (the probe policy) with `mounts`
    for its mounts; no container of `project` may be left."""
    policies = write_probe_policy(project, header=header, mounts=mounts)
    with none_left(client, lambda: of_project(client, project)):
        return cli("run", "probe", "--policies", str(policies), "--", *command)


def test_missing_image_exits_2_says_build_it_and_creates_nothing(
    docker_client: Any, project: Path, main_engine: None
) -> None:
    missing = PROBE_POLICY.replace(TEST_IMAGE, "no-such-image:latest")
    code, out, err = run_probe(docker_client.api, project, RESULTS_MOUNT, "true", header=missing)
    assert code == 2, err
    assert not has_traceback(err)
    assert "no-such-image:latest" in err and "build it" in err, err
    assert out == ""
    assert not (project / "test-results").exists()


def test_writable_mount_under_a_file_exits_2_and_creates_nothing(
    docker_client: Any, project: Path, main_engine: None
) -> None:
    (project / "afile").write_text("not a directory\n")
    mounts = 'mounts = [{ source = "afile/results", target = "/results", writable = true }]\n'
    code, out, err = run_probe(docker_client.api, project, mounts, "true")
    assert code == 2, err
    assert not has_traceback(err)
    assert "afile/results" in err and "Not a directory" in err, err
    assert out == ""
    assert (project / "afile").read_text() == "not a directory\n"


def test_full_results_dir_passes_the_containers_failure_through(
    docker_client: Any, project: Path, main_engine: None
) -> None:
    results = project / "test-results"
    results.mkdir()
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root; these tests run as root here")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(results)],
        capture_output=True,
        text=True,
    )
    assert mounted.returncode == 0, mounted.stderr
    try:
        script = "dd if=/dev/zero of=/results/big bs=1024 count=1024 || exit 7"
        code, out, err = run_probe(docker_client.api, project, RESULTS_MOUNT, "sh", "-c", script)
        assert code == 7, (code, out, err)  # the container's own code, passed through
        assert "No space left on device" in err, err
        assert not has_traceback(err)
        assert (results / "big").stat().st_size <= 64 * 1024
    finally:
        subprocess.run(["umount", str(results)], capture_output=True, check=False)
    assert str(results) not in Path("/proc/self/mounts").read_text()
