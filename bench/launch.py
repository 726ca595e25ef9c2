"""Launch cost against `docker run` with the same flags, cold and warm cache.

Alternating over the rounds (each launches `true` and removes the container):

  A  `policy run isolation -- true` (CLI subprocess), warm: the bench's policy cache holds the
     policy (the command ran once, untimed, before)
  B  the same with `--no-cache` (cold: the policy is loaded and validated afresh)
  C  `engine.launch("isolation", ["true"], policies=...)` in this process (loads and validates
     the policy on every call, as it does for its users; `engine.backends.connect()`)
  D  `docker run --rm ...` with the flags `policy render isolation -- true` prints (shlex.split)

and, for parallel workers:

  P  `policy run parallel --workers 4 -- true`
  Q  four `docker run --rm ...` rendered from `parallel` (with the SHARD_INDEX / SHARD_COUNT
     environment the workers get), started at once (Popen x4, wait for all)

The profiles come from a copy of policies/ whose isolation profile only adds our labels, so every
container is ours to find and remove; the project directory is the real one.

Target (issue 13): warm `policy run` <= 1.3x `docker run` (applied to the parallel case too, as
a check of its own); the cold CLI and engine.launch are information.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    POLICY,
    PY,
    ROOT,
    after_python,
    cache_snapshot,
    cache_writes,
    dockerd_cpu,
    http_trace,
    log,
    measure_in_process,
    no_cache,
    paired_ratio,
    ratio,
    run_proc,
    run_procs_at_once,
    summary,
    target,
    timed_rounds,
)
from bench.profiling import importtime, profile_command

TARGET_CLI = 1.3
WORKERS = 4


def rendered(policies: Path, profile: str, command: list[str]) -> list[str]:
    p = run_proc(
        [
            *POLICY,
            "render",
            profile,
            "--policies",
            str(policies),
            "--project",
            str(ROOT),
            "--",
            *command,
        ],
        capture=True,
    )
    if p.rc != 0:
        raise SystemExit(f"bench: policy render {profile} failed: {p.stderr}")
    return shlex.split(p.stdout.strip())


def _with_env(argv: list[str], env: dict[str, str], command: list[str]) -> list[str]:
    """Insert --env flags before the image (the argv ends with image + command)."""
    image_at = len(argv) - len(command) - 1
    extra = [x for k, v in env.items() for x in ("--env", f"{k}={v}")]
    return argv[:image_at] + extra + argv[image_at:]


def main(policies: Path, quick: bool, profile_missed: bool = True) -> dict[str, Any]:
    record_dir = Path(tempfile.mkdtemp(prefix="bench-record-"))
    env = {"POLICY_RECORD": str(record_dir / "launches.jsonl")}  # not the user's own record
    saved = os.environ.get("POLICY_RECORD")
    os.environ.update(env)
    try:
        return _main(policies, quick, profile_missed, env)
    finally:
        shutil.rmtree(record_dir, ignore_errors=True)
        if saved is None:
            os.environ.pop("POLICY_RECORD", None)
        else:
            os.environ["POLICY_RECORD"] = saved


def _main(policies: Path, quick: bool, profile_missed: bool, env: dict[str, str]) -> dict[str, Any]:
    import engine

    rounds = 3 if quick else 25
    par_rounds = 2 if quick else 10
    common = ["--policies", str(policies), "--project", str(ROOT)]
    cli_run = [*POLICY, "run", "isolation", *common, "--", "true"]
    cli_run_cold = no_cache(cli_run)
    docker_run = rendered(policies, "isolation", ["true"])
    cli_par = [*POLICY, "run", "parallel", "--workers", str(WORKERS), *common, "--", "true"]
    par_base = rendered(policies, "parallel", ["true"])
    docker_par = [
        _with_env(par_base, {"SHARD_INDEX": str(i), "SHARD_COUNT": str(WORKERS)}, ["true"])
        for i in range(WORKERS)
    ]

    def with_engine_cpu(fn: Any) -> Any:
        def go() -> dict[str, Any]:
            before = dockerd_cpu()
            out: dict[str, Any] = fn()
            after = dockerd_cpu()
            out["engine_cpu"] = None if before is None or after is None else after - before
            return out

        return go

    def cli_of(argv: list[str], what: str) -> Any:
        def go() -> dict[str, Any]:
            p = run_proc(argv)
            if p.rc:
                log(f"  {what} exit {p.rc}: {p.stderr[-300:]}")
            return {"wall": p.wall, "cpu": p.cpu, "rc": p.rc}

        return go

    def b_api() -> dict[str, Any]:
        with measure_in_process() as m:
            result = engine.launch("isolation", ["true"], policies=policies, project=ROOT)
        if result.exit_code:
            log(f"  engine.launch exit {result.exit_code}: {result.output[-300:]}")
        return {"wall": m["wall"], "cpu": m["cpu"], "rc": result.exit_code}

    def c_docker() -> dict[str, Any]:
        p = run_proc(docker_run)
        if p.rc:
            log(f"  docker run exit {p.rc}: {p.stderr[-300:]}")
        return {"wall": p.wall, "cpu": p.cpu, "rc": p.rc}

    def p_cli_workers() -> dict[str, Any]:
        p = run_proc(cli_par)
        if p.rc:
            log(f"  policy run --workers exit {p.rc}: {p.stderr[-300:]}")
        return {"wall": p.wall, "cpu": p.cpu, "rc": p.rc}

    def q_docker_x4() -> dict[str, Any]:
        wall, codes = run_procs_at_once(docker_par)
        return {"wall": wall, "cpu": None, "rc": max(codes)}

    single = {
        "policy_run": with_engine_cpu(cli_of(cli_run, "policy run")),
        "policy_run_no_cache": with_engine_cpu(cli_of(cli_run_cold, "policy run --no-cache")),
        "engine_launch": with_engine_cpu(b_api),
        "docker_run": with_engine_cpu(c_docker),
    }
    log("launch: warm-up (one of each; fills the policy cache for the warm `policy run`)")
    for fn in single.values():
        fn()
    log(f"launch: {rounds} rounds, alternating A B C D")
    cache_before = cache_snapshot()
    measured = timed_rounds(rounds, single)
    missed_cache = cache_writes(cache_before, cache_snapshot())
    if missed_cache:
        log(f"  warning: {missed_cache} cache entries written during the timed rounds")

    with http_trace() as trace:
        engine.launch("isolation", ["true"], policies=policies, project=ROOT)
    log(
        f"  engine.launch: {len(trace['requests'])} Engine API requests, "
        f"{trace['connections']} connections"
    )

    parallel = {
        "policy_run_workers": with_engine_cpu(p_cli_workers),
        "docker_run_x4": with_engine_cpu(q_docker_x4),
    }
    for fn in parallel.values():
        fn()
    log(f"launch: parallel, {par_rounds} rounds, alternating")
    measured_par = timed_rounds(par_rounds, parallel)

    def rows(data: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
        out = {}
        for name, series in data.items():
            cpus = [m["cpu"] for m in series if m["cpu"] is not None]
            engine_cpu = [m["engine_cpu"] for m in series if m["engine_cpu"] is not None]
            out[name] = {
                "wall_s": summary([m["wall"] for m in series]),
                "cpu_s": summary(cpus) if cpus else None,
                "engine_cpu_s": summary(engine_cpu) if engine_cpu else None,
                "failures": sum(1 for m in series if m["rc"]),
            }
        return out

    def walls(data: dict[str, list[dict[str, Any]]], name: str) -> list[float]:
        return [m["wall"] for m in data[name]]

    def both(data: dict[str, list[dict[str, Any]]], a: str, b: str) -> dict[str, Any]:
        wa, wb = walls(data, a), walls(data, b)
        return {
            "of_medians": ratio(summary(wa)["median"], summary(wb)["median"]),
            "paired": paired_ratio(wa, wb),
        }

    single_ratios = {
        "policy_run/docker_run": both(measured, "policy_run", "docker_run"),
        "policy_run_no_cache/docker_run": both(measured, "policy_run_no_cache", "docker_run"),
        "engine_launch/docker_run": both(measured, "engine_launch", "docker_run"),
        "policy_run_no_cache/policy_run": both(measured, "policy_run_no_cache", "policy_run"),
    }
    par_ratios = {
        "policy_run_workers/docker_run_x4": both(
            measured_par, "policy_run_workers", "docker_run_x4"
        )
    }
    result: dict[str, Any] = {
        "single": {
            "rounds": rounds,
            "commands": {
                "policy_run": " ".join(cli_run),
                "policy_run_no_cache": " ".join(cli_run_cold),
                "engine_launch": f'engine.launch("isolation", ["true"], policies="{policies}", '
                f'project="{ROOT}")',
                "docker_run": shlex.join(docker_run),
            },
            "variants": rows(measured),
            "cache_writes_during_rounds": missed_cache,
            "engine_launch_requests": trace,
            "ratios": single_ratios,
            "targets": {
                "policy_run/docker_run": target(
                    single_ratios["policy_run/docker_run"]["of_medians"], TARGET_CLI
                ),
            },
        },
        "parallel": {
            "rounds": par_rounds,
            "workers": WORKERS,
            "commands": {
                "policy_run_workers": " ".join(cli_par),
                "docker_run_x4": f"{WORKERS} x " + shlex.join(docker_par[0]) + " (SHARD_INDEX "
                "0..3), started at once",
            },
            "variants": rows(measured_par),
            "ratios": par_ratios,
            "targets": {
                "policy_run_workers/docker_run_x4": target(
                    par_ratios["policy_run_workers/docker_run_x4"]["of_medians"], TARGET_CLI
                )
            },
        },
    }
    if profile_missed:
        missed = [k for k, t in result["single"]["targets"].items() if t["met"] is False]
        missed += [k for k, t in result["parallel"]["targets"].items() if t["met"] is False]
        if missed:
            log("  profiling `policy run` (py-spy, all threads, idle included) ...")
            result["profile_policy_run_wall"] = profile_command(
                cli_run, rate=250, idle=True, repeat=5, env=env
            )
            log("  profiling `policy run` (py-spy, CPU samples) ...")
            result["profile_policy_run_cpu"] = profile_command(
                cli_run, rate=250, idle=False, repeat=5, env=env
            )
            log("  profiling `policy run` imports (python -X importtime) ...")
            result["importtime_policy_run"] = importtime(after_python(cli_run), env=env)
            log("  profiling engine.launch in a process of its own (py-spy, idle included) ...")
            script = (
                "import engine, pathlib\n"
                "for _ in range(6):\n"
                f"    engine.launch('isolation', ['true'], policies={str(policies)!r}, "
                f"project={str(ROOT)!r})\n"
            )
            result["profile_engine_launch_wall"] = profile_command(
                [PY, "-c", script], rate=250, idle=True, env=env
            )
        if any(k.startswith("policy_run_workers") for k in missed):
            log("  profiling `policy run --workers 4` (py-spy, idle included) ...")
            result["profile_policy_run_workers_wall"] = profile_command(
                cli_par, rate=250, idle=True, repeat=3, env=env
            )
    return result
