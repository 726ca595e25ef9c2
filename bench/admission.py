#!/usr/bin/env python
"""What the admission plugin adds: latency per API request and per `docker run`, paired.

    python bench/admission.py [--requests 300] [--runs 15]

Two extra engines of the same kind (tests/faults/engines.py: each its own dockerd in its own
network namespace), one started with `--authorization-plugin=NAME` and `policy admission serve`
as a separate process, one without. Every round measures the same request on both, in alternating
order, so drift of the machine hits both alike; the figures are medians of the rounds and the
median of the paired differences. Requests: `GET /containers/json` (a read the plugin passes) and
`POST /containers/create` of the `isolation` profile's body (the one the plugin judges in full),
over a kept-alive unix-socket connection; then the rendered `docker run` line, whole. Target (issue
16): at most 5 ms added per request. Both engines are destroyed at the end, on failure too.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faults.engines import ExtraEngine, extra_engine  # noqa: E402

TARGET_MS = 5.0


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def _call(conn: _UnixConnection, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    reply = conn.getresponse()
    payload = reply.read()
    if reply.status >= 300:
        raise RuntimeError(f"{method} {path}: {reply.status} {payload[:300]!r}")
    return json.loads(payload) if payload else None


def _timed(action: Callable[[], Any]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def paired(
    label: str, rounds: int, on: Callable[[], Any], off: Callable[[], Any]
) -> dict[str, Any]:
    with_plugin, without = [], []
    for i in range(rounds):
        first, second = (on, off) if i % 2 == 0 else (off, on)
        a, b = _timed(first), _timed(second)
        (with_plugin if first is on else without).append(a)
        (without if first is on else with_plugin).append(b)
    added = statistics.median(w - o for w, o in zip(with_plugin, without, strict=True))
    row = {
        "what": label,
        "rounds": rounds,
        "with_plugin_ms": round(statistics.median(with_plugin), 3),
        "without_ms": round(statistics.median(without), 3),
        "added_ms": round(added, 3),
        "ratio": round(statistics.median(with_plugin) / statistics.median(without), 3),
    }
    print(
        f"{label:<40} with {row['with_plugin_ms']:9.3f} ms  without {row['without_ms']:9.3f} ms"
        f"  added {row['added_ms']:8.3f} ms  ratio {row['ratio']:.3f}",
        flush=True,
    )
    return row


def _start_plugin(tmp: Path, project: Path) -> tuple[str, subprocess.Popen[bytes]]:
    name = f"cp-bench-{uuid.uuid4().hex[:8]}"
    sock = Path("/run/docker/plugins") / f"{name}.sock"
    argv = [sys.executable, "-m", "engine.cli", "admission", "serve", "--name", name]
    argv += ["--policies", str(ROOT / "policies"), "--project", str(project)]
    argv += ["--log", str(tmp / "decisions.jsonl")]
    process = subprocess.Popen(argv, cwd=ROOT)
    end = time.monotonic() + 30
    while True:  # until the plugin answers on its socket
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(sock))
            return name, process
        except OSError:
            if process.poll() is not None or time.monotonic() > end:
                raise RuntimeError("the plugin did not start") from None
            time.sleep(0.05)
        finally:
            probe.close()


def _create_body(project: Path) -> dict[str, Any]:
    """The `isolation` create body exactly as `policy run` sends it (the judged path)."""
    from engine.launcher.spec import LaunchSpec
    from engine.render.interface import render
    from engine.render.request import EngineRequest
    from policy.vetted import load_vetted

    policy = load_vetted([ROOT / "policies"], project)
    profile = policy.profile("isolation")
    spec = LaunchSpec(profile, policy.project, str(policy.files[0]), ("true",))
    return render(EngineRequest(), spec.walked).value


def measure(
    on: ExtraEngine, off: ExtraEngine, project: Path, requests: int, runs: int
) -> list[Any]:
    rows = []
    conns = {e.name: _UnixConnection(str(e.socket)) for e in (on, off)}

    def read(e: ExtraEngine) -> Callable[[], Any]:
        return lambda: _call(conns[e.name], "GET", "/v1.41/containers/json")

    rows.append(paired("GET /containers/json", requests, read(on), read(off)))
    body = _create_body(project)

    def create(e: ExtraEngine) -> Callable[[], Any]:
        def go() -> None:
            made = _call(conns[e.name], "POST", "/v1.41/containers/create", body)
            created_ids[e.name].append(made["Id"])

        return go

    created_ids: dict[str, list[str]] = {on.name: [], off.name: []}
    rows.append(paired("POST /containers/create (judged)", requests // 3, create(on), create(off)))
    for e in (on, off):
        for cid in created_ids[e.name]:
            _call(conns[e.name], "DELETE", f"/v1.41/containers/{cid}?force=1")
    line = subprocess.run(
        [sys.executable, "-m", "engine.cli", "render", "isolation", "--project", str(project),
         "--", "true"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()[0]  # fmt: skip
    argv = shlex.split(line)

    def docker_run(e: ExtraEngine) -> Callable[[], Any]:
        return lambda: subprocess.run(["docker", "-H", e.url, *argv[1:]], check=True)

    rows.append(paired("docker run --rm (rendered isolation line)", runs, docker_run(on),
                       docker_run(off)))  # fmt: skip
    return rows


def run(requests: int = 300, runs: int = 15) -> dict[str, Any]:
    """Every row, and the target: what `bench/run.py` keeps (`--only admission`)."""
    with tempfile.TemporaryDirectory(prefix="bench-admission-") as tmp_name:
        tmp = Path(tmp_name)
        project = tmp / "project"
        (project / "test-results").mkdir(parents=True)  # the profile's writable mount
        name, plugin = _start_plugin(tmp, project)
        try:
            with (
                extra_engine(extra_args=[f"--authorization-plugin={name}"]) as on,
                extra_engine() as off,
            ):
                rows = measure(on, off, project, requests, runs)
        finally:
            plugin.send_signal(signal.SIGTERM)
            plugin.wait(30)
    worst = max(r["added_ms"] for r in rows[:2])
    return {
        "rows": rows,
        "target_ms": TARGET_MS,
        "worst_added_ms": worst,
        "met": worst <= TARGET_MS,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="paired rounds per request")
    parser.add_argument("--runs", type=int, default=15, help="paired rounds of `docker run`")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows here")
    args = parser.parse_args()
    result = run(args.requests, args.runs)
    verdict = "met" if result["met"] else "NOT met"
    print(
        f"target: at most {TARGET_MS} ms added per request: {verdict} "
        f"(worst {result['worst_added_ms']} ms)"
    )
    if args.json:
        args.json.write_text(json.dumps(result["rows"], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
