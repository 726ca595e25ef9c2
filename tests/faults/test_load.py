"""Load: a 500-container audit, an audit of 5 engines at once, 20 rounds of parallel workers.

Marked `load` (the default `-m "not load"` leaves them out; run them with `pytest -m load`).
They run on extra engines (tests/faults/engines.py), so the shared main engine carries none of
the load and "nothing left behind" can be checked engine-wide. Durations are printed, never
asserted: this is not a benchmark (see bench/).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.backends.unix_socket import SocketEngine
from engine.launcher.run import detached
from engine.launcher.spec import LaunchSpec
from policy.loader import Policy, load_policy
from tests.faults.engines import ExtraEngine, extra_engines
from tests.helpers import TEST_IMAGE, has_traceback, shipped_options, write_policies
from tests.processes import policy

pytestmark = [pytest.mark.load, pytest.mark.engine]

SMALL = f"""\
version = 1

[profiles.small]
image = "{TEST_IMAGE}"
user = "1001:1001"
read_only = true
network = "none"
cap_drop = ["ALL"]
no_new_privileges = true
pids_limit = 16
memory = "16m"
cpus = 0.1
timeout = "2h"
tmpfs."/tmp" = {{ size = "1m", options = ["nosuid", "nodev", "noexec"] }}
"""


def small_policy(root: Path) -> tuple[Path, Policy]:
    policies = write_policies(root, {"small.toml": SMALL})
    return policies, load_policy([policies])


def launch_detached(
    engine: SocketEngine, loaded: Policy, count: int, workers: int = 8
) -> list[str]:
    """`count` verified `sleep 3600` containers under profile `small` (the launcher's own
    create -> inspect -> compare -> start path), left running."""
    profile = loaded.profiles["small"]

    def one(_: int) -> str:
        spec = LaunchSpec(profile, loaded.project, "policies/small.toml", ("sleep", "3600"))
        with detached(engine, spec, remove=False) as container:
            return container

    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        return sorted(pool.map(one, range(count)))


def remove_everything(engine: ExtraEngine, workers: int = 8) -> None:
    client = engine.client(timeout=120)
    try:
        ids = [c["Id"] for c in client.containers(all=True)]

        def rm(cid: str) -> None:
            with contextlib.suppress(Exception):
                client.remove_container(cid, v=True, force=True)

        with cf.ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(rm, ids))
        assert client.containers(all=True) == []
    finally:
        client.close()


@contextlib.contextmanager
def emptied(engines: list[ExtraEngine]) -> Iterator[None]:
    """Every container of `engines` removed afterwards, even on failure, and checked gone."""
    try:
        yield
    finally:
        for e in engines:
            if not e.running():
                e.start()
            remove_everything(e)


def test_audit_of_500_containers_completes(docker_client: Any, tmp_path: Path) -> None:
    count = 500
    policies, loaded = small_policy(tmp_path)
    with extra_engines(1) as engines, emptied(engines):
        host = engines[0]
        api = SocketEngine(host.url, timeout=120)
        started = time.monotonic()
        ids = launch_detached(api, loaded, count)
        launched = time.monotonic() - started
        api.close()
        assert len(ids) == count

        started = time.monotonic()
        done = policy(
            "audit",
            "--policies",
            str(policies),
            "--host",
            host.url,
            "--format",
            "json",
            timeout=600,
        )
        took = time.monotonic() - started
        print(f"\n500 containers: launched (verified) in {launched:.1f}s, audited in {took:.1f}s")
        assert done.returncode == 0, done.stderr[-2000:]
        assert not has_traceback(done.stderr)
        report = json.loads(done.stdout)
        assert report["hosts"] == [host.url]
        assert report["summary"] == {
            "containers": count,
            "findings": 0,
            "errors": 0,
            "warnings": 0,
            "notes": 0,
        }
        assert sorted(c["id"] for c in report["containers"]) == ids
        assert {c["profile"] for c in report["containers"]} == {"small"}


def test_audit_of_5_engines_at_once_names_each_host(docker_client: Any, tmp_path: Path) -> None:
    per_host = 4
    policies, loaded = small_policy(tmp_path)
    with extra_engines(5) as engines, emptied(engines):
        expected: dict[str, list[str]] = {}
        for e in engines:
            api = SocketEngine(e.url)
            managed = launch_detached(api, loaded, per_host // 2, workers=2)
            unmanaged = []
            for _ in range(per_host - per_host // 2):
                body = {"Image": TEST_IMAGE, "Cmd": ["sleep", "3600"]}
                cid = api.create(body, f"cp-load-{uuid.uuid4().hex[:10]}")
                api.start(cid)
                unmanaged.append(cid)
            api.close()
            expected[e.url] = sorted(managed + unmanaged)

        hosts = [arg for e in engines for arg in ("--host", e.url)]
        started = time.monotonic()
        done = policy("audit", "--policies", str(policies), *hosts, "--format", "json")
        took = time.monotonic() - started
        print(f"\n5 engines x {per_host} containers audited in {took:.1f}s")
        assert done.returncode == 1, done.stderr  # the unmanaged ones break rules
        assert not has_traceback(done.stderr)
        report = json.loads(done.stdout)
        assert sorted(report["hosts"]) == sorted(expected)
        assert report["host_findings"] == []
        for url, ids in expected.items():
            on_host = [c for c in report["containers"] if c["host"] == url]
            assert sorted(c["id"] for c in on_host) == ids, url
            assert all(f["host"] == url for c in on_host for f in c["findings"])
            clean = [c for c in on_host if c["profile"] == "small"]
            assert len(clean) == per_host // 2 and all(c["findings"] == [] for c in clean)

        table = policy("audit", "--policies", str(policies), *hosts)
        assert table.returncode == 1, table.stderr
        for e in engines:
            assert e.url in table.stdout
        assert "on 5 host(s)" in table.stdout


def test_20_rounds_of_8_parallel_workers_leave_no_container(
    docker_client: Any, tmp_path: Path, project: Path
) -> None:
    rounds, workers = 20, 8
    with extra_engines(1) as engines, emptied(engines):
        host = engines[0]
        env = {**host.env, "POLICY_RECORD": str(tmp_path / "launches.jsonl")}
        durations = []
        for i in range(rounds):
            started = time.monotonic()
            options = ("--workers", str(workers), *shipped_options(project))
            done = policy("run", "parallel", *options, "--", "true", env=env, timeout=300)
            durations.append(time.monotonic() - started)
            assert done.returncode == 0, (i, done.stderr[-2000:])
            assert not has_traceback(done.stderr)
            left = host.containers()
            assert left == [], (i, [(c["Names"], c["Status"]) for c in left])
        records = (tmp_path / "launches.jsonl").read_text().splitlines()
        assert len(records) == rounds * workers
        assert all(json.loads(r)["exit_code"] == 0 for r in records)
        print(
            f"\n{rounds} rounds x {workers} workers: {sum(durations):.1f}s "
            f"(round min {min(durations):.1f}s, max {max(durations):.1f}s)"
        )
