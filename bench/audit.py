"""Audit cost against `docker inspect` of the same containers, cold and warm cache.

N containers (`sleep 3600`) are launched detached through the real `isolation` profile
(`engine.launcher.verify.create_verified` + `engine.start`, so they audit clean; the profile copy
only adds our `bench=<run id>` labels). Then, alternating over the rounds:

  A  `policy audit --filter label=bench=<id> --format json` (CLI subprocess, stdout /dev/null),
     warm: the bench's policy cache holds the policy (the command ran once, untimed, before)
  B  the same with `--no-cache` (cold: the policy is loaded and validated afresh)
  C  `Auditor(policy).audit([engine.backends.connect()], filters)` in this process: what a user
     of the Python API gets (the stdlib unix-socket backend, `SocketEngine`)
  D  the same audit through the docker SDK backend, `DockerEngine()`, explicitly
  E  raw SDK: `APIClient.inspect_container(id)` for each id, sequentially (ids known)
  F  `docker inspect <all ids>`, one CLI call (stdout /dev/null): the baseline
  G  `policy audit` (warm) with a filter that matches nothing: the CLI's fixed cost

Peak memory: ru_maxrss of the subprocess (A, B, F, G); for C, D and E the growth of this
process's peak RSS during the call (VmHWM reset before each call) and, in one extra untimed call
each, the tracemalloc peak of Python allocations.

Targets (issue 13): warm `policy audit` <= 2.0x `docker inspect` at 100 containers, <= 1.5x at
500; at 500 the audit's CPU per container is reported. C, D, E and the cold CLI are information.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench.common import (
    BENCH_LABELS,
    LABEL,
    POLICY,
    ROOT,
    RUN_ID,
    cache_snapshot,
    cache_writes,
    cleanup,
    dockerd_cpu,
    http_trace,
    log,
    measure_in_process,
    mem_available_mib,
    no_cache,
    paired_ratio,
    ratio,
    remove_containers,
    run_proc,
    summary,
    target,
    timed_rounds,
)
from bench.profiling import profile_command

# containers -> target of warm `policy audit` / `docker inspect`; a quick run measures smaller
# sizes against the same targets, in the same order.
SIZES = {100: 2.0, 500: 1.5}
QUICK_SIZES = {20: 2.0, 50: 1.5}
START_WORKERS = 8
HEADROOM_MIB = 3072  # left free on the host after the estimated cost of the containers
CLI_VARIANTS = ("cli", "cli_no_cache", "docker_inspect", "cli_no_match")


def start_containers(policy: Any, n: int, ids: list[str]) -> None:
    """n detached, verified `isolation` containers running `sleep 3600`, started in parallel;
    each id is appended to `ids` as soon as it exists (so a failure half-way loses none)."""
    from engine.api import spec_for
    from engine.backends import connect
    from engine.launcher.verify import create_verified

    local = threading.local()
    lock = threading.Lock()

    def one(_: int) -> None:
        if not hasattr(local, "engine"):
            local.engine = connect()
        spec = spec_for("isolation", ["sleep", "3600"], policy=policy)
        assert all(spec.profile.labels.get(k) == v for k, v in BENCH_LABELS.items())
        container = create_verified(local.engine, spec)
        with lock:
            ids.append(container)
        local.engine.start(container)

    started = time.perf_counter()
    with cf.ThreadPoolExecutor(max_workers=START_WORKERS) as pool:
        list(pool.map(one, range(n)))
    log(f"  started {n} containers in {time.perf_counter() - started:.1f}s")


def _argv(policies: Path, label: str) -> list[str]:
    return [
        *POLICY,
        "audit",
        "--filter",
        f"label={label}",
        "--format",
        "json",
        "--policies",
        str(policies),
        "--project",
        str(ROOT),
    ]


def _variants(policy: Any, policies: Path, ids: list[str]) -> dict[str, Any]:
    import docker

    from engine.audit.auditor import Auditor
    from engine.backends import connect
    from engine.backends.docker import DockerEngine

    filters = {"label": [f"{LABEL}={RUN_ID}"]}
    cli = _argv(policies, f"{LABEL}={RUN_ID}")
    cli_cold = no_cache(cli)
    cli_none = _argv(policies, f"{LABEL}={RUN_ID}-matches-nothing")

    def engine_cpu(fn: Any) -> Any:
        def go() -> dict[str, Any]:
            before = dockerd_cpu()
            out: dict[str, Any] = fn()
            after = dockerd_cpu()
            out["engine_cpu"] = None if before is None or after is None else after - before
            return out

        return go

    def subprocess_of(argv: list[str], what: str, ok: tuple[int, ...] = (0, 1)) -> Any:
        def go() -> dict[str, Any]:
            p = run_proc(argv)
            if p.rc not in ok:
                log(f"  {what} exit {p.rc}: {p.stderr[-300:]}")
            return {"wall": p.wall, "cpu": p.cpu, "mem_mib": p.maxrss_kb / 1024, "rc": p.rc}

        return go

    def in_process_with(make_engine: Any) -> Any:
        def go() -> dict[str, Any]:
            with measure_in_process() as m:
                engine = make_engine()
                report = Auditor(policy).audit([engine], filters)
                engine.close()
            return {
                "wall": m["wall"],
                "cpu": m["cpu"],
                "mem_mib": m["rss_growth_kb"] / 1024,
                "containers": len(report.containers),
                "findings": len(report.findings) + len(report.host_findings),
            }

        return go

    def raw_sdk() -> dict[str, Any]:
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

    return {
        "cli": engine_cpu(subprocess_of(cli, "audit CLI")),
        "cli_no_cache": engine_cpu(subprocess_of(cli_cold, "audit CLI --no-cache")),
        "in_process": engine_cpu(in_process_with(connect)),
        "in_process_sdk": engine_cpu(in_process_with(DockerEngine)),
        "raw_sdk": engine_cpu(raw_sdk),
        "docker_inspect": engine_cpu(
            subprocess_of(["docker", "inspect", *ids], "docker inspect", (0,))
        ),
        "cli_no_match": engine_cpu(subprocess_of(cli_none, "audit CLI (no match)")),
        "_argv": {"cli": cli, "cli_no_cache": cli_cold, "cli_no_match": cli_none},
        "_filters": filters,
    }


def _tracemalloc_peak(fn: Any) -> float:
    tracemalloc.start()
    try:
        fn()
        return float(tracemalloc.get_traced_memory()[1] / 1024 / 1024)
    finally:
        tracemalloc.stop()


def _check(argv: list[str], n: int) -> dict[str, Any]:
    """Run the CLI once, untimed (for the warm variant this fills the cache); what it saw."""
    p = run_proc(argv, capture=True)
    try:
        doc = json.loads(p.stdout)["summary"]
    except (ValueError, KeyError):
        log(f"  audit CLI exit {p.rc}, no JSON report: {p.stderr[-300:]}")
        return {"containers": None, "findings": None, "exit": p.rc, "clean": False}
    return {
        "containers": doc["containers"],
        "findings": doc["findings"],
        "exit": p.rc,
        "clean": doc["containers"] == n and doc["findings"] == 0,
    }


def bench_size(
    api: Any,
    policy: Any,
    policies: Path,
    n: int,
    limit: float,
    stands_for: int,
    rounds: int,
    profile_missed: bool,
) -> dict[str, Any]:
    import docker

    from engine.audit.auditor import Auditor
    from engine.backends import connect
    from engine.backends.docker import DockerEngine

    log(f"audit: starting {n} containers (profile isolation, sleep 3600)")
    avail_before = mem_available_mib()
    ids: list[str] = []
    try:
        start_containers(policy, n, ids)
        avail_after = mem_available_mib()
        variants = _variants(policy, policies, ids)
        argvs, filters = variants.pop("_argv"), variants.pop("_filters")

        # Correctness first: both CLI variants see exactly our n containers, all clean. The
        # warm one's check is its first run: it leaves the policy in the bench's cache.
        checks = {"cli": _check(argvs["cli"], n), "cli_no_cache": _check(argvs["cli_no_cache"], n)}
        for name, chk in checks.items():
            log(
                f"  check {name}: saw {chk['containers']} containers, {chk['findings']} "
                f"findings (exit {chk['exit']})"
            )
        for fn in variants.values():  # warm-up (and the no-match command's cache entry)
            fn()

        log(f"audit: N={n}, {rounds} rounds, alternating {' '.join(variants)}")
        cache_before = cache_snapshot()
        measured = timed_rounds(rounds, variants)
        missed_cache = cache_writes(cache_before, cache_snapshot())
        if missed_cache:
            log(f"  warning: {missed_cache} cache entries written during the timed rounds")

        traces: dict[str, Any] = {}
        with http_trace() as traces["in_process"]:
            Auditor(policy).audit([connect()], filters)
        with http_trace() as traces["in_process_sdk"]:
            Auditor(policy).audit([DockerEngine()], filters)
        with http_trace() as traces["raw_sdk"]:
            raw = docker.from_env(timeout=120).api
            for i in ids:
                raw.inspect_container(i)
            raw.close()
        engine_api = {
            k: {"requests": len(v["requests"]), "connections": v["connections"]}
            for k, v in traces.items()
        }
        log(f"  Engine API traffic: {engine_api}")

        peaks = {
            "in_process": _tracemalloc_peak(lambda: Auditor(policy).audit([connect()], filters)),
            "in_process_sdk": _tracemalloc_peak(
                lambda: Auditor(policy).audit([DockerEngine()], filters)
            ),
            "raw_sdk": _tracemalloc_peak(lambda: [api.inspect_container(i) for i in ids]),
        }

        def med(name: str, key: str = "wall") -> float | None:
            value: float | None = summary([m[key] for m in measured[name]])["median"]
            return value

        walls = {k: [m["wall"] for m in v] for k, v in measured.items()}
        rows: dict[str, Any] = {}
        for name, series in measured.items():
            rows[name] = {
                "wall_s": summary([m["wall"] for m in series]),
                "cpu_s": summary([m["cpu"] for m in series]),
                "engine_cpu_s": summary(
                    [m["engine_cpu"] for m in series if m["engine_cpu"] is not None]
                ),
                "peak_mem_mib": summary([m["mem_mib"] for m in series], 1),
            }
            if name in CLI_VARIANTS:
                rows[name]["peak_mem_kind"] = "ru_maxrss of the process"
            else:
                rows[name]["peak_mem_kind"] = "peak RSS growth of this process during the call"
                rows[name]["tracemalloc_peak_mib"] = round(peaks[name], 1)
        cpu_per_container_ms = {
            name: round(cpu * 1000 / n, 3)
            for name in ("cli", "cli_no_cache", "in_process", "in_process_sdk", "docker_inspect")
            if (cpu := med(name, "cpu")) is not None
        }

        def both(a: str, b: str) -> dict[str, Any]:
            return {"of_medians": ratio(med(a), med(b)), "paired": paired_ratio(walls[a], walls[b])}

        ratios = {
            f"{a}/{b}": both(a, b)
            for b in ("docker_inspect", "raw_sdk")
            for a in ("cli", "cli_no_cache", "in_process", "in_process_sdk")
        }
        ratios["cli_no_cache/cli"] = both("cli_no_cache", "cli")
        ratios["in_process_sdk/in_process"] = both("in_process_sdk", "in_process")
        seen = {
            name: {
                "containers": sorted({m["containers"] for m in measured[name]}),
                "findings": sorted({m["findings"] for m in measured[name]}),
            }
            for name in ("in_process", "in_process_sdk")
        }
        result: dict[str, Any] = {
            "containers": n,
            "stands_for": stands_for,
            "rounds": rounds,
            "check": {
                "cli_containers": checks["cli"]["containers"],
                "cli_findings": checks["cli"]["findings"],
                "cli": checks["cli"],
                "cli_no_cache": checks["cli_no_cache"],
                "clean": all(c["clean"] for c in checks.values()),
                "in_process_seen": seen,
            },
            "commands": {
                "cli": " ".join(argvs["cli"]),
                "cli_no_cache": " ".join(argvs["cli_no_cache"]),
                "cli_no_match": " ".join(argvs["cli_no_match"]),
                "docker_inspect": f"docker inspect <the {n} ids>",
            },
            "cache_writes_during_rounds": missed_cache,
            "host_mem_available_mib": {"before": avail_before, "after_start": avail_after},
            "variants": rows,
            "cli_fixed_cost_s": med("cli_no_match"),
            "cpu_per_container_ms": cpu_per_container_ms,
            "engine_api": engine_api,
            "backends": {"in_process": type(connect()).__name__, "in_process_sdk": "DockerEngine"},
            "ratios": ratios,
            "targets": {
                "cli/docker_inspect": target(ratios["cli/docker_inspect"]["of_medians"], limit)
            },
        }
        if profile_missed and any(t["met"] is False for t in result["targets"].values()):
            log("  profiling the audit CLI, warm (py-spy, all threads, CPU samples) ...")
            result["profile_cli"] = profile_command(argvs["cli"], rate=250, repeat=2)
            log("  profiling the audit CLI, warm (py-spy, all threads, idle included) ...")
            result["profile_cli_wall"] = profile_command(
                argvs["cli"], rate=250, idle=True, repeat=2
            )
        return result
    finally:
        log(f"  removing {len(ids)} containers (parallel)")
        started = time.perf_counter()
        remove_containers(api, ids)  # ours: started above, each carrying the bench labels
        cleanup(api)  # and any of this run a failure left behind, found by those labels
        log(f"  removed in {time.perf_counter() - started:.1f}s")


def main(api: Any, policies: Path, quick: bool, profile_missed: bool = True) -> dict[str, Any]:
    from policy.loader import load_policy

    policy = load_policy([policies], ROOT)
    sizes = QUICK_SIZES if quick else SIZES
    rounds = 2 if quick else 7
    out: dict[str, Any] = {"sizes": {}, "skipped": {}, "targets_by_size": {}}
    per_container_mib: float | None = None
    for (n, limit), stands_for in zip(sizes.items(), SIZES, strict=True):
        out["targets_by_size"][str(n)] = {"limit": limit, "stands_for": stands_for}
        if per_container_mib is not None:
            need = n * per_container_mib + HEADROOM_MIB
            if mem_available_mib() < need:
                out["skipped"][str(n)] = (
                    f"host memory: {mem_available_mib()} MiB available, about {need:.0f} MiB needed"
                )
                log(f"audit: skipping N={n}: {out['skipped'][str(n)]}")
                continue
        result = bench_size(api, policy, policies, n, limit, stands_for, rounds, profile_missed)
        mem = result["host_mem_available_mib"]
        per_container_mib = max(1.0, (mem["before"] - mem["after_start"]) / n)
        result["host_mem_per_container_mib"] = round(per_container_mib, 1)
        out["sizes"][str(n)] = result
    return out
