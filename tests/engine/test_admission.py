"""The admission plugin on a real engine: an extra dockerd started with
`--authorization-plugin=NAME` (tests/faults/engines.py, in its own network namespace), and
`policy admission serve` as a separate process on /run/docker/plugins/NAME.sock.

What a user sees is what is checked: the docker CLI's exit status and the engine's "authorization
denied by plugin NAME: container-policy: refused: ..." on its stderr.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine import labels as L
from tests.faults.engines import ExtraEngine, extra_engine
from tests.helpers import POLICIES, ROOT, TEST_IMAGE, wait_for

pytestmark = pytest.mark.engine

POLICY = [sys.executable, "-m", "engine.cli"]


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


@dataclass
class Plugin:
    name: str
    socket: Path
    log: Path
    process: subprocess.Popen[bytes]

    def decisions(self) -> list[dict[str, object]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines]


@contextlib.contextmanager
def plugin(tmp: Path, project: Path, *options: str, policies: Path = POLICIES) -> Iterator[Plugin]:
    """`policy admission serve` on a unique name; stopped and its socket gone afterwards."""
    name = f"cp-admission-{uuid.uuid4().hex[:8]}"
    path = Path("/run/docker/plugins") / f"{name}.sock"
    log = tmp / f"{name}.jsonl"
    argv = [*POLICY, "admission", "serve", "--name", name, "--policies", str(policies)]
    argv += ["--project", str(project), "--log", str(log), *options]
    process = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_for(
            lambda: _answers(path) or process.poll() is not None, f"plugin {name}", deadline=30
        )
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        yield Plugin(name, path, log, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        path.unlink(missing_ok=True)  # a SIGKILLed plugin cannot remove its own socket
        assert not path.exists()


@dataclass
class Setup:
    plugin: Plugin
    engine: ExtraEngine
    project: Path

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "-H", self.engine.url, *args],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def policy(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*POLICY, *args], cwd=ROOT, env=self.engine.env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    def refused(self, result: subprocess.CompletedProcess[str]) -> str:
        """The engine's refusal by our plugin, from the docker CLI's stderr."""
        assert result.returncode != 0, result
        marker = f"authorization denied by plugin {self.plugin.name}: container-policy: refused: "
        assert marker in result.stderr, result.stderr
        return result.stderr.split(marker, 1)[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("admission")
    project = tmp / "project"
    project.mkdir()
    # Unlabelled creates are judged against `isolation`, so their refusals name each field.
    with (
        plugin(tmp, project, "--default-profile", "isolation") as served,
        extra_engine(extra_args=[f"--authorization-plugin={served.name}"]) as engine,
    ):
        yield Setup(served, engine, project)


def test_policy_run_through_a_profile_is_allowed_and_runs(setup: Setup) -> None:
    done = setup.policy("run", "isolation", "--project", str(setup.project), "--", "id", "-u")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1001"
    creates = [d for d in setup.plugin.decisions() if d.get("path") == "/containers/create"]
    assert creates[-1]["allowed"] is True
    assert creates[-1]["profile"] == "isolation"


def test_the_rendered_docker_run_line_is_allowed(setup: Setup) -> None:
    """`policy render`'s line is exactly the profile: the plain docker CLI may run it."""
    done = setup.policy("render", "isolation", "--project", str(setup.project), "--", "true")
    assert done.returncode == 0, done.stderr
    argv = shlex.split(done.stdout.splitlines()[0])
    assert argv[:2] == ["docker", "run"]
    ran = setup.docker(*argv[1:])
    assert ran.returncode == 0, ran.stderr


@pytest.mark.parametrize(
    ("flags", "fields"),
    [
        (["--privileged"], ["privileged"]),
        (["--cap-add", "SYS_ADMIN"], ["capabilities"]),
        (["--pid", "host"], ["pid"]),
    ],
    ids=["privileged", "cap-add-sys-admin", "pid-host"],
)
def test_a_plain_docker_run_is_refused_naming_each_field(
    setup: Setup, flags: list[str], fields: list[str]
) -> None:
    message = setup.refused(setup.docker("run", "--rm", *flags, TEST_IMAGE, "true"))
    assert "profile 'isolation'" in message
    for field in fields:
        assert f"{field}: profile has" in message
    assert not setup.engine.containers()


def test_forged_reserved_labels_with_other_settings_are_refused(setup: Setup) -> None:
    shown = setup.policy("show", "isolation")
    digest = next(
        line.split('"')[1] for line in shown.stdout.splitlines() if line.startswith("digest")
    )
    forged = ["--label", f"{L.PROFILE}=isolation", "--label", f"{L.DIGEST}={digest}"]
    message = setup.refused(
        setup.docker("run", "--rm", *forged, "--privileged", TEST_IMAGE, "true")
    )
    assert message.startswith("the request differs from profile 'isolation'")
    assert "privileged: profile has False, request has True" in message
    assert not setup.engine.containers()


def test_update_beyond_the_profile_is_refused_and_reads_keep_working(setup: Setup) -> None:
    started = setup.policy(
        "run", "isolation", "--project", str(setup.project), "--detach", "--",
        "sh", "-c", "echo ready; sleep 60",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip()
    try:
        message = setup.refused(setup.docker("update", "--memory", "2g", container))
        assert "memory=2147483648" in message
        inspect = setup.docker("inspect", container)
        assert inspect.returncode == 0, inspect.stderr
        assert json.loads(inspect.stdout)[0]["HostConfig"]["Memory"] == 1024**3
        ps = setup.docker("ps", "-q", "--no-trunc")
        assert container in ps.stdout.split(), ps.stderr
        wait_for(
            lambda: "ready" in setup.docker("logs", container).stdout,
            "the container's log",
            deadline=30,
        )
        refused_exec = setup.docker("exec", "--privileged", container, "true")
        assert "privileged exec is refused" in setup.refused(refused_exec)
        as_root = setup.docker("exec", "--user", "0", container, "id", "-u")
        assert "an exec as user '0' is refused" in setup.refused(as_root)
        own = setup.docker("exec", container, "id", "-u")
        assert own.returncode == 0 and own.stdout.strip() == "1001", own.stderr
        assert "commit is refused" in setup.refused(setup.docker("commit", container, "x:y"))
    finally:
        assert setup.docker("rm", "-f", container).returncode == 0


def test_the_plugin_judges_by_a_changed_policy_once_reloaded_and_keeps_the_last_good_one(
    tmp_path: Path,
) -> None:
    """Edited while it serves: the old `docker run` line (the old digest) is refused and the new
    one allowed; then a policy that no longer validates leaves the last good one judging."""
    project = tmp_path / "project"
    (project / "test-results").mkdir(parents=True)  # a `docker run` line does not make it
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES, policies)
    base = policies / "base.toml"
    with (
        plugin(tmp_path, project, policies=policies) as served,
        extra_engine(extra_args=[f"--authorization-plugin={served.name}"]) as engine,
    ):
        setup = Setup(served, engine, project)

        def line() -> list[str]:
            done = setup.policy(
                "render", "isolation", "--policies", str(policies), "--project", str(project),
                "--", "true",
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return shlex.split(done.stdout.splitlines()[0])[1:]

        def events(kind: str) -> int:
            return sum(d.get("event") == kind for d in served.decisions())

        old = line()
        ran = setup.docker(*old)
        assert ran.returncode == 0, ran.stderr
        base.write_text(base.read_text().replace('memory = "1g"', 'memory = "768m"', 1))
        wait_for(lambda: events("reloaded") == 1, "the plugin's reload", deadline=30)
        assert "launch it again with `policy run`" in setup.refused(setup.docker(*old))
        new = line()
        assert "--memory 768m" in " ".join(new), new
        ran = setup.docker(*new)
        assert ran.returncode == 0, ran.stderr

        base.write_text(base.read_text().replace('memory = "768m"', 'memory = "lots"', 1))
        wait_for(lambda: events("reload-failed") == 1, "the failed reload", deadline=30)
        ran = setup.docker(*new)  # the last good policy still judges
        assert ran.returncode == 0, ran.stderr
        assert served.process.poll() is None


def test_killing_the_plugin_makes_the_engine_refuse(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    with (
        plugin(tmp_path, project) as served,
        extra_engine(extra_args=[f"--authorization-plugin={served.name}"]) as engine,
    ):
        # Destroyed afterwards with the plugin dead: still nothing left behind.
        ok = subprocess.run(["docker", "-H", engine.url, "ps"], capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        served.process.kill()
        served.process.wait(30)
        ps = subprocess.run(
            ["docker", "-H", engine.url, "ps"], capture_output=True, text=True, timeout=120
        )
        assert ps.returncode != 0
        assert served.name in ps.stderr, ps.stderr
