"""A 4-worker Swarm job through a profile against the same job by hand with the docker CLI
(issue 14), on a swarm of its own (scripts/swarm.sh: two engines in network namespaces).

Rounds alternate the order of the two variants, so each pair shares its moment's load:

  P  `policy run shard --swarm --workers 4 -- sh -c 'sleep 1'` (tests/swarm/policies): render,
     prove the nodes, internal network, 4 services, stored specs and every task verified (on its
     node and in /proc), logs followed, everything removed
  H  what a user would type for the same job: `docker network create --internal`, four
     `docker service create --mode replicated-job` with the same settings at once (each waits
     for its job to complete), `docker service rm`, `docker network rm`

Reported: the wall time of each, the paired ratio P/H. No target: the point is what the checks
cost next to the job itself. H leaves the ended task containers behind on the nodes (Swarm 20.10
does not remove them); they are removed after each round, untimed.

    python bench/swarm.py               # 5 rounds
    python bench/swarm.py --rounds 2    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import POLICY, ROOT, log, paired_ratio, summary

SCRIPT = ROOT / "scripts" / "swarm.sh"
POLICIES = ROOT / "tests" / "swarm" / "policies"
IMAGE = "simple-test-isolation:latest"
WORKERS = 4
COMMAND = ["sh", "-c", "sleep 1"]


def _by_hand_args(name: str, index: int, network: str) -> list[str]:
    return [
        "service", "create", "--name", f"{name}-{index}", "--mode", "replicated-job",
        "--no-resolve-image", "--restart-condition", "none", "--user", "1001:1001",
        "--read-only", "--cap-drop", "ALL", "--limit-memory", "256m", "--limit-pids", "128",
        "--limit-cpu", "0.5", "--mount", "type=tmpfs,dst=/tmp,tmpfs-size=16m,tmpfs-mode=1777",
        "--network", network, "--env", f"SHARD_INDEX={index}", "--env",
        f"SHARD_COUNT={WORKERS}", "--stop-grace-period", "1s", "--quiet", IMAGE, *COMMAND,
    ]  # fmt: skip


def _docker(url: str, *args: str) -> str:
    done = subprocess.run(["docker", "-H", url, *args], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {done.stderr.strip()}")
    return done.stdout


def by_hand(nodes: list[str]) -> float:
    manager, name = nodes[0], f"bsw-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    _docker(manager, "network", "create", "-d", "overlay", "--internal", f"{name}-net")
    procs = [
        subprocess.Popen(
            ["docker", "-H", manager, *_by_hand_args(name, i, f"{name}-net")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(WORKERS)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    _docker(manager, "service", "rm", *[f"{name}-{i}" for i in range(WORKERS)])
    deadline = time.monotonic() + 60
    while True:  # the network goes once its tasks' endpoints have
        done = subprocess.run(["docker", "-H", manager, "network", "rm", f"{name}-net"],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    wall = time.perf_counter() - started
    for url in nodes:  # untimed: what the CLI leaves behind
        left = _docker(url, "ps", "-aq", "--filter", "label=com.docker.swarm.service.name")
        for line in left.split():
            subprocess.run(["docker", "-H", url, "rm", "-f", line], capture_output=True)
    if any(codes):
        raise RuntimeError(f"a hand-made job failed: {codes}")
    return wall


def through_policy(nodes: list[str]) -> float:
    env = {**os.environ, "DOCKER_HOST": nodes[0], "POLICY_SWARM_NODES": " ".join(nodes[1:])}
    argv = [*POLICY, "run", "shard", "--swarm", "--workers", str(WORKERS),
            "-p", str(POLICIES), "--", *COMMAND]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"policy run --swarm exited {done.returncode}: {done.stderr[-800:]}")
    return wall


def main(rounds: int) -> dict[str, Any]:
    name = f"bsw{uuid.uuid4().hex[:5]}"
    up = subprocess.run([str(SCRIPT), "up", name, "2", IMAGE], capture_output=True, text=True,
                        timeout=300)  # fmt: skip
    try:
        if up.returncode != 0:
            raise RuntimeError(f"could not build the swarm: {up.stderr[-800:]}")
        nodes = [line.split()[1] for line in up.stdout.splitlines() if line.strip()]
        policy_walls: list[float] = []
        hand_walls: list[float] = []
        for index in range(rounds):
            order = [through_policy, by_hand] if index % 2 == 0 else [by_hand, through_policy]
            for variant in order:
                wall = variant(nodes)
                (policy_walls if variant is through_policy else hand_walls).append(wall)
            log(f"round {index + 1}: policy {policy_walls[-1]:.2f}s, by hand {hand_walls[-1]:.2f}s")
    finally:
        subprocess.run([str(SCRIPT), "down", name], capture_output=True, timeout=300)
    ratio = paired_ratio(policy_walls, hand_walls)
    return {
        "what": f"{WORKERS}-worker Swarm job of `{' '.join(COMMAND)}` on 2 nodes",
        "policy_run_swarm": summary(policy_walls),
        "docker_service_create": summary(hand_walls),
        "ratio_policy_over_hand": ratio,
        "rounds": rounds,
    }


def run(quick: bool) -> dict[str, Any]:
    """For bench/run.py."""
    return main(2 if quick else 5)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    data = main(parser.parse_args().rounds)
    print(json.dumps(data, indent=2))
    print(f"policy run --swarm / docker service create: {data['ratio_policy_over_hand']:.2f}x")
