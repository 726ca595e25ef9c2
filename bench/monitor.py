"""What monitoring costs a run (issue 11): a monitored `policy run` of a CPU-bound test against
the same run with `--no-monitor`, and the cost of one sample.

Rounds alternate the two variants (monitored first, then unmonitored first), so each pair shares
its moment's load:

  M  `policy run isolation -- sh -c 'timeout -s KILL S sh -c "while :; do :; done"; true'`
  U  the same with `--no-monitor`

Reported: the paired ratio of wall times M/U; the sampler's own CPU time (the summary line's
"sampling N ms CPU", `Usage.sampling_cpu_seconds`) as a share of one core over the run; and
one sample's cost (CPU and wall, `CgroupReader.sample` on a running container, N times).
Targets (issue 11): at most 1.03x wall, at most 1% of one core.

    python bench/monitor.py                       # 5 rounds of a 10 s test
    python bench/monitor.py --rounds 1 --seconds 2 --samples 50   # a smoke run
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    POLICY,
    ROOT,
    cleanup,
    docker_api,
    emit,
    install_sigterm,
    log,
    make_policy_copy,
    paired_ratio,
    policy_cache_dir,
    run_proc,
    summary,
    target,
)

TARGET_WALL = 1.03
TARGET_CORE_SHARE = 0.01
_COST = re.compile(r"sampling ([0-9.]+) ms CPU")


def _spin(seconds: float) -> list[str]:
    return ["sh", "-c", f'timeout -s KILL {seconds:g} sh -c "while :; do :; done"; true']


def _run(policies: Path, seconds: float, monitored: bool) -> dict[str, Any]:
    argv = [*POLICY, "run", "isolation", "--policies", str(policies), "--project", str(ROOT)]
    if not monitored:
        argv.append("--no-monitor")
    done = run_proc([*argv, "--", *_spin(seconds)])
    if done.rc != 0:
        raise SystemExit(f"bench: the run failed ({done.rc}): {done.stderr}")
    found = _COST.search(done.stderr)
    if monitored and not found:
        raise SystemExit(f"bench: no sampling cost in the summary: {done.stderr}")
    return {
        "wall": done.wall,
        "sampling_cpu": float(found.group(1)) / 1000 if found else None,
    }


def one_sample_cost(policies: Path, count: int) -> dict[str, Any]:
    """CPU and wall seconds of `CgroupReader.sample` on a running container, `count` times."""
    from engine.api import spec_for
    from engine.audit.deep import owned_by
    from engine.backends import connect
    from engine.launcher.run import detached
    from engine.monitor.cgroups import locate
    from engine.monitor.local import CgroupReader
    from policy.vetted import load_vetted

    policy = load_vetted([policies], ROOT)
    engine = connect()
    spec = spec_for("isolation", ["sleep", "600"], policy=policy)
    with detached(engine, spec) as container:
        pid = engine.inspect_container(container).state.pid
        if not owned_by(pid, container):
            return {"local": False}
        dirs = locate(
            Path(f"/proc/{pid}/cgroup").read_text(), Path("/proc/self/mountinfo").read_text()
        )
        assert dirs is not None
        reader = CgroupReader(dirs, pid)
        cpu, wall = [], []
        for i in range(count):
            c, w = time.thread_time(), time.perf_counter()
            reader.sample(float(i))
            cpu.append(time.thread_time() - c)
            wall.append(time.perf_counter() - w)
        c = time.thread_time()
        reader.counters()
        counters_cpu = time.thread_time() - c
        reader.close()
    return {
        "local": True,
        "cgroup_version": dirs.version,
        # Without the per-sample values: hundreds of them tell no more than the spread.
        "cpu_ms": {k: v for k, v in summary([x * 1000 for x in cpu], 3).items() if k != "values"},
        "wall_ms": {k: v for k, v in summary([x * 1000 for x in wall], 3).items() if k != "values"},
        "final_counters_cpu_ms": round(counters_cpu * 1000, 3),
    }


def run(rounds: int = 5, seconds: float = 10.0, samples: int = 500) -> dict[str, Any]:
    """The paired rounds and the cost of one sample (inside `bench.common.policy_cache_dir`)."""
    api = docker_api()
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        policies = make_policy_copy(Path(tmp))
        try:
            _run(policies, 0.5, monitored=True)  # warm the policy cache, untimed
            monitored: list[dict[str, Any]] = []
            unmonitored: list[dict[str, Any]] = []
            for r in range(rounds):
                order = [True, False] if r % 2 == 0 else [False, True]
                for flag in order:
                    (monitored if flag else unmonitored).append(_run(policies, seconds, flag))
                log(
                    f"  round {r + 1}/{rounds}: monitored {monitored[-1]['wall']:.3f}s, "
                    f"--no-monitor {unmonitored[-1]['wall']:.3f}s, sampling "
                    f"{monitored[-1]['sampling_cpu'] * 1000:.1f} ms CPU"
                )
            sample = one_sample_cost(policies, samples)
        finally:
            cleanup(api)
    walls_m = [m["wall"] for m in monitored]
    walls_u = [u["wall"] for u in unmonitored]
    shares = [m["sampling_cpu"] / m["wall"] for m in monitored]
    wall_ratio = paired_ratio(walls_m, walls_u)
    share = summary(shares, 6)["median"]
    return {
        "rounds": rounds,
        "seconds": seconds,
        "monitored_wall": summary(walls_m),
        "unmonitored_wall": summary(walls_u),
        "wall_ratio": target(wall_ratio, TARGET_WALL),
        "sampling_core_share": target(share, TARGET_CORE_SHARE),
        "sampling_cpu_seconds": summary([m["sampling_cpu"] for m in monitored], 5),
        "one_sample": sample,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="the test's CPU-bound run")
    parser.add_argument("--samples", type=int, default=500, help="samples timed for one's cost")
    parser.add_argument("--output", type=Path, help="also write the results (JSON) here")
    args = parser.parse_args(argv)
    install_sigterm()
    with policy_cache_dir():
        results = run(args.rounds, args.seconds, args.samples)
    emit(results, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
