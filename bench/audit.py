"""Audit cost against the raw inspect of the same containers.

N containers (`sleep 3600`) are launched detached through the real `isolation` profile
(`engine.launcher.run.create_verified` + `engine.start`, so they audit clean; the profile copy only
adds our `bench=<run id>` labels). Then, alternating over the rounds:

  A  `policy audit --filter label=bench=<id> --format json` (CLI subprocess, stdout /dev/null)
  B  `Auditor(policy).audit([DockerEngine()], filters)` in this process
  C  raw SDK: `APIClient.inspect_container(id)` for each id, sequentially (ids known)
  D  `docker inspect <all ids>`, one CLI call (stdout /dev/null)
  E  `policy audit` with a filter that matches nothing: the CLI's fixed cost (information)

Peak memory: ru_maxrss of the subprocess (A, D); for B and C the growth of this process's peak
RSS during the call (VmHWM reset before each call) and, in one extra untimed call each, the
tracemalloc peak of Python allocations.

Target: audit <= 1.2x the raw SDK inspect, at 100 and at 500 containers.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_LABELS,
    CLI,
    LABEL,
    ROOT,
    RUN_ID,
    cleanup,
    dockerd_cpu,
    log,
    measure_in_process,
    mem_available_mib,
    paired_ratio,
    ratio,
    remove_containers,
    run_proc,
    summary,
    target,
    timed_rounds,
)
from bench.profiling import profile_command

TARGET_RATIO = 1.2
START_WORKERS = 8
HEADROOM_MIB = 3072  # left free on the host after the estimated cost of the containers


def start_containers(policy: Any, n: int) -> list[str]:
    """n detached, verified `isolation` containers running `sleep 3600`, started in parallel."""
    from engine.api import spec_for
    from engine.backends.docker import DockerEngine
    from engine.launcher.verify import create_verified

    local = threading.local()

    def one(_: int) -> str:
        if not hasattr(local, "engine"):
            local.engine = DockerEngine()
        spec = spec_for("isolation", ["sleep", "3600"], policy=policy)
        assert all(spec.profile.labels.get(k) == v for k, v in BENCH_LABELS.items())
        container = create_verified(local.engine, spec)
        local.engine.start(container)
        return container

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=START_WORKERS) as pool:
        ids = list(pool.map(one, range(n)))
    log(f"  started {n} containers in {time.perf_counter() - started:.1f}s")
    return ids


def _variants(policy: Any, policies: Path, ids: list[str]) -> dict[str, Any]:
    import docker

    from engine.audit.auditor import Auditor
    from engine.backends.docker import DockerEngine

    filters = {"label": [f"{LABEL}={RUN_ID}"]}
    cli = [
        *CLI,
        "audit",
        "--filter",
        f"label={LABEL}={RUN_ID}",
        "--format",
        "json",
        "--policies",
        str(policies),
        "--project",
        str(ROOT),
    ]

    def engine_cpu(fn: Any) -> dict[str, Any]:
        before = dockerd_cpu()
        out = fn()
        after = dockerd_cpu()
        out["engine_cpu"] = None if before is None or after is None else after - before
        return out

    cli_none = [*cli]
    cli_none[cli_none.index(f"label={LABEL}={RUN_ID}")] = f"label={LABEL}={RUN_ID}-matches-nothing"

    def e_cli_none() -> dict[str, Any]:
        p = run_proc(cli_none)
        return {"wall": p.wall, "cpu": p.cpu, "mem_mib": p.maxrss_kb / 1024, "rc": p.rc}

    def a_cli() -> dict[str, Any]:
        p = run_proc(cli)
        if p.rc not in (0, 1):
            log(f"  audit CLI exit {p.rc}: {p.stderr[-300:]}")
        return {"wall": p.wall, "cpu": p.cpu, "mem_mib": p.maxrss_kb / 1024, "rc": p.rc}

    def b_in_process() -> dict[str, Any]:
        with measure_in_process() as m:
            engine = DockerEngine()
            report = Auditor(policy).audit([engine], filters)
            engine.close()
        return {
            "wall": m["wall"],
            "cpu": m["cpu"],
            "mem_mib": m["rss_growth_kb"] / 1024,
            "containers": len(report.containers),
            "findings": len(report.findings) + len(report.host_findings),
        }

    def c_raw_sdk() -> dict[str, Any]:
        with measure_in_process() as m:
            api = docker.from_env(timeout=120).api  # as DockerEngine builds its client
            docs = [api.inspect_container(i) for i in ids]
            api.close()
        return {
            "wall": m["wall"],
            "cpu": m["cpu"],
            "mem_mib": m["rss_growth_kb"] / 1024,
            "containers": len(docs),
        }

    def d_docker_inspect() -> dict[str, Any]:
        p = run_proc(["docker", "inspect", *ids])
        if p.rc:
            log(f"  docker inspect exit {p.rc}: {p.stderr[-300:]}")
        return {"wall": p.wall, "cpu": p.cpu, "mem_mib": p.maxrss_kb / 1024, "rc": p.rc}

    return {
        "cli": lambda: engine_cpu(a_cli),
        "in_process": lambda: engine_cpu(b_in_process),
        "raw_sdk": lambda: engine_cpu(c_raw_sdk),
        "docker_inspect": lambda: engine_cpu(d_docker_inspect),
        "cli_no_match": lambda: engine_cpu(e_cli_none),
        "_cli_argv": cli,
        "_filters": filters,
    }


def _tracemalloc_peak(fn: Any) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 1024 / 1024
    finally:
        tracemalloc.stop()


def bench_size(
    api: Any, policy: Any, policies: Path, n: int, rounds: int, profile_missed: bool
) -> dict[str, Any]:
    import json

    import docker

    from engine.audit.auditor import Auditor
    from engine.backends.docker import DockerEngine

    log(f"audit: starting {n} containers (profile isolation, sleep 3600)")
    avail_before = mem_available_mib()
    ids = start_containers(policy, n)
    try:
        avail_after = mem_available_mib()
        variants = _variants(policy, policies, ids)
        cli_argv, filters = variants.pop("_cli_argv"), variants.pop("_filters")

        # Correctness first: the audit sees exactly our n containers, all clean.
        check = run_proc(cli_argv, capture=True)
        doc = json.loads(check.stdout)
        clean = doc["summary"]["containers"] == n and doc["summary"]["findings"] == 0
        log(
            f"  check: CLI audit saw {doc['summary']['containers']} containers, "
            f"{doc['summary']['findings']} findings (exit {check.rc})"
        )
        for fn in variants.values():  # warm-up
            fn()

        log(f"audit: N={n}, {rounds} rounds, alternating A B C D")
        measured = timed_rounds(rounds, variants)

        from bench.common import http_trace

        with http_trace() as audit_trace:
            Auditor(policy).audit([DockerEngine()], filters)
        with http_trace() as raw_trace:
            raw = docker.from_env(timeout=120).api
            for i in ids:
                raw.inspect_container(i)
            raw.close()
        connections = {
            "in_process": {
                "requests": len(audit_trace["requests"]),
                "connections": audit_trace["connections"],
            },
            "raw_sdk": {
                "requests": len(raw_trace["requests"]),
                "connections": raw_trace["connections"],
            },
        }
        log(
            f"  connections opened: audit {connections['in_process']}, raw {connections['raw_sdk']}"
        )

        peaks = {
            "in_process": round(
                _tracemalloc_peak(lambda: Auditor(policy).audit([DockerEngine()], filters)), 1
            ),
            "raw_sdk": round(_tracemalloc_peak(lambda: [api.inspect_container(i) for i in ids]), 1),
        }

        def med(name: str, key: str = "wall") -> float | None:
            return summary([m[key] for m in measured[name]])["median"]

        walls = {k: [m["wall"] for m in v] for k, v in measured.items()}
        rows = {}
        for name, series in measured.items():
            rows[name] = {
                "wall_s": summary([m["wall"] for m in series]),
                "cpu_s": summary([m["cpu"] for m in series]),
                "engine_cpu_s": summary(
                    [m["engine_cpu"] for m in series if m["engine_cpu"] is not None]
                ),
                "peak_mem_mib": summary([m["mem_mib"] for m in series], 1),
            }
        rows["cli"]["peak_mem_kind"] = "ru_maxrss of the process"
        rows["docker_inspect"]["peak_mem_kind"] = "ru_maxrss of the docker CLI process"
        rows["cli_no_match"]["peak_mem_kind"] = "ru_maxrss of the process"
        for name in ("in_process", "raw_sdk"):
            rows[name]["peak_mem_kind"] = "peak RSS growth of this process during the call"
            rows[name]["tracemalloc_peak_mib"] = peaks[name]
        counts = sorted({m["containers"] for m in measured["in_process"]})
        findings = sorted({m["findings"] for m in measured["in_process"]})
        ratios = {
            f"{a}/{b}": {
                "of_medians": ratio(med(a), med(b)),
                "paired": paired_ratio(walls[a], walls[b]),
            }
            for a in ("cli", "in_process")
            for b in ("raw_sdk", "docker_inspect")
        }
        result: dict[str, Any] = {
            "containers": n,
            "rounds": rounds,
            "check": {
                "cli_containers": doc["summary"]["containers"],
                "cli_findings": doc["summary"]["findings"],
                "clean": clean,
                "in_process_containers_seen": counts,
                "in_process_findings_seen": findings,
            },
            "host_mem_available_mib": {"before": avail_before, "after_start": avail_after},
            "variants": rows,
            "cli_fixed_cost_s": med("cli_no_match"),
            "engine_api": connections,
            "ratios": ratios,
            "targets": {
                "cli/raw_sdk": target(ratios["cli/raw_sdk"]["of_medians"], TARGET_RATIO),
                "in_process/raw_sdk": target(
                    ratios["in_process/raw_sdk"]["of_medians"], TARGET_RATIO
                ),
            },
        }
        if profile_missed and any(t["met"] is False for t in result["targets"].values()):
            log("  profiling the audit CLI (py-spy, all threads, CPU samples) ...")
            result["profile_cli"] = profile_command(cli_argv, rate=250, repeat=2)
            log("  profiling the audit CLI (py-spy, all threads, idle included) ...")
            result["profile_cli_wall"] = profile_command(cli_argv, rate=250, idle=True, repeat=2)
        return result
    finally:
        log(f"  removing {len(ids)} containers (parallel)")
        started = time.perf_counter()
        remove_containers(api, ids)
        cleanup(api)
        log(f"  removed in {time.perf_counter() - started:.1f}s")


def main(api: Any, policies: Path, quick: bool, profile_missed: bool = True) -> dict[str, Any]:
    from policy.loader import load_policy

    policy = load_policy([policies], ROOT)
    sizes = [20] if quick else [100, 500]
    rounds = 2 if quick else 7
    out: dict[str, Any] = {"sizes": {}, "skipped": {}}
    per_container_mib: float | None = None
    for n in sizes:
        if per_container_mib is not None:
            need = n * per_container_mib + HEADROOM_MIB
            if mem_available_mib() < need:
                out["skipped"][str(n)] = (
                    f"host memory: {mem_available_mib()} MiB available, about {need:.0f} MiB needed"
                )
                log(f"audit: skipping N={n}: {out['skipped'][str(n)]}")
                continue
        result = bench_size(api, policy, policies, n, rounds, profile_missed)
        mem = result["host_mem_available_mib"]
        per_container_mib = max(1.0, (mem["before"] - mem["after_start"]) / n)
        result["host_mem_per_container_mib"] = round(per_container_mib, 1)
        out["sizes"][str(n)] = result
    return out
