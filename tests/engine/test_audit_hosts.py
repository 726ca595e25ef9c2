"""`policy audit --host A --host B`: two real engines at once.

The second engine runs in a network namespace of its own, started by scripts/second-engine.sh
(`nsenter --net=... dockerd`, never `ip netns exec`, never `--bridge=none` in the host's
namespace; see DESIGN.md). Outside CI the tests skip when that is impossible here (not root, or
ip/nsenter/dockerd missing); with CI=true they fail instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import POLICIES, ROOT, TEST_IMAGE, cli, new_name, unavailable

pytestmark = pytest.mark.engine
SCRIPT = ROOT / "scripts" / "second-engine.sh"
MAIN = "unix:///var/run/docker.sock"


@dataclass
class Engine:
    name: str
    url: str

    @property
    def directory(self) -> Path:
        return Path("/tmp") / self.name

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", "-H", self.url, *args], capture_output=True, text=True, timeout=60
        )
        if check:
            assert done.returncode == 0, (args, done.stderr)
        return done

    def stop(self) -> None:
        done = subprocess.run(
            [str(SCRIPT), "stop", self.name], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr

    def running(self) -> bool:
        return (
            subprocess.run(
                [str(SCRIPT), "status", self.name], capture_output=True, timeout=30
            ).returncode
            == 0
        )


@pytest.fixture(scope="module")
def start_engine(docker_client: Any) -> Iterator[Callable[[], Engine]]:
    """`start()`: a new extra engine with the test image; every engine started is stopped and
    removed (socket, data, namespace) when the module ends, whatever happened."""
    missing = [tool for tool in ("ip", "nsenter", "dockerd") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        unavailable(
            "a second engine needs root and ip, nsenter and dockerd "
            f"(euid {os.geteuid()}, missing: {', '.join(missing) or 'nothing'})"
        )
    engines: list[Engine] = []

    def start() -> Engine:
        name = f"cpa{uuid.uuid4().hex[:8]}"
        engine = Engine(name, f"unix:///tmp/{name}/docker.sock")
        engines.append(engine)
        done = subprocess.run(
            [str(SCRIPT), "start", name, TEST_IMAGE], capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, f"second engine did not start: {done.stderr}"
        assert done.stdout.strip() == engine.url
        return engine

    try:
        yield start
    finally:
        for engine in engines:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                engine.stop()
    for engine in engines:
        assert not engine.running(), f"engine {engine.name} still answers"
        assert not engine.directory.exists(), f"{engine.directory} left behind"
        assert not Path(f"/var/run/netns/{engine.name}").exists(), engine.name


@pytest.fixture(scope="module")
def second_engine(start_engine: Callable[[], Engine]) -> Engine:
    return start_engine()


@pytest.fixture
def on_both(container_names: list[str]) -> Iterator[Callable[[Engine], tuple[str, str, str]]]:
    """`run(engine)`: an unmanaged container on the main engine and one on `engine`, both
    labelled for this test: (label, main id, other id). All are removed afterwards (on the
    other engine only while it still runs)."""
    label = f"cp-hosts={uuid.uuid4().hex[:12]}"
    started: list[tuple[Engine, str]] = []
    args = ["-d", "--label", label, "--network", "none", TEST_IMAGE, "sleep", "300"]

    def run(engine: Engine) -> tuple[str, str, str]:
        name_main, name_other = new_name("cp-host-main"), new_name("cp-host-other")
        container_names.append(name_main)
        main_id = subprocess.run(
            ["docker", "run", "--name", name_main, *args], capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        started.append((engine, name_other))
        other_id = engine.docker("run", "--name", name_other, *args).stdout.strip()
        return label, main_id, other_id

    try:
        yield run
    finally:
        for engine, name in started:
            if engine.running():
                engine.docker("rm", "-f", name, check=False)
                left = engine.docker("ps", "-aq", "--filter", f"name={name}").stdout
                assert not left.strip(), f"left behind on {engine.name}: {left}"


def test_audit_of_two_engines(
    second_engine: Engine, on_both: Callable[[Engine], tuple[str, str, str]]
) -> None:
    label, main_id, second_id = on_both(second_engine)
    code, out, err = cli(
        "audit", "--format", "json", "--policies", str(POLICIES),
        "--host", MAIN, "--host", second_engine.url, "--filter", f"label={label}",
    )  # fmt: skip
    assert code == 1, err
    report = json.loads(out)
    assert report["hosts"] == [MAIN, second_engine.url]
    assert report["host_findings"] == []
    where = {c["id"]: c["host"] for c in report["containers"]}
    assert where == {main_id: MAIN, second_id: second_engine.url}
    for c in report["containers"]:
        assert c["findings"], c
        assert {f["host"] for f in c["findings"]} == {c["host"]}
        assert {f["container"] for f in c["findings"]} == {c["id"]}
    # The same image and settings: the same rules broken on both hosts.
    rules = [sorted(f["rule"] for f in c["findings"]) for c in report["containers"]]
    assert rules[0] == rules[1]

    # The table names the host of each container too.
    code, out, _ = cli(
        "audit", "--policies", str(POLICIES), "--host", MAIN, "--host", second_engine.url,
        "--filter", f"label={label}",
    )  # fmt: skip
    assert code == 1
    assert f"on {MAIN}" in out and f"on {second_engine.url}" in out
    assert out.strip().splitlines()[-1].startswith("2 container(s) on 2 host(s)")


def test_a_stopped_engine_is_a_host_finding(
    start_engine: Callable[[], Engine], on_both: Callable[[Engine], tuple[str, str, str]]
) -> None:
    engine = start_engine()  # its own: this test stops it
    label, main_id, other_id = on_both(engine)
    engine.docker("rm", "-f", other_id)  # so that the engine stops without waiting for it
    engine.stop()
    assert not engine.running()
    code, out, err = cli(
        "audit", "--format", "json", "--policies", str(POLICIES),
        "--host", MAIN, "--host", engine.url, "--filter", f"label={label}",
    )  # fmt: skip
    assert code == 1, err
    assert "Traceback" not in err
    report = json.loads(out)
    [unreachable] = report["host_findings"]
    assert (unreachable["kind"], unreachable["rule"], unreachable["severity"]) == (
        "host-unreachable",
        "host-unreachable",
        "error",
    )
    assert unreachable["host"] == engine.url
    assert engine.url in unreachable["message"]
    # The first engine was still audited.
    assert [(c["id"], c["host"]) for c in report["containers"]] == [(main_id, MAIN)]
    assert report["containers"][0]["findings"]


def test_a_single_unreachable_engine_is_an_engine_error(tmp_path: Path) -> None:
    url = f"unix://{tmp_path}/nonexistent.sock"
    code, out, err = cli("audit", "--policies", str(POLICIES), "--host", url)
    assert code == 2
    assert out == ""
    assert url in err and "Traceback" not in err
    code, out, err = cli("audit", "--policies", str(POLICIES), "--host", "unix:///nonexistent.sock")
    assert code == 2 and "unix:///nonexistent.sock" in err
