"""What `policy run` costs on Podman (issue 14): `policy run isolation --host PODMAN -- true`
against the `podman run` a user would type instead, in paired rounds.

  P  `policy run isolation --host unix://SOCKET -- true` (create through Podman's compat
     service, verify, start, stream, wait, remove; monitored)
  R  `podman run` with the same flags as `policy render isolation` prints for docker, on the
     same store (`podman --root ... --runroot ...`), `--rm`; Podman adds its writable /run and
     /var/tmp there, which `policy run` masks

Rounds alternate which goes first, so each pair shares its moment's load. Needs the test
service of scripts/ensure-podman.sh (started here if it is not running) and root.

    python bench/podman.py                 # 10 rounds
    python bench/podman.py --rounds 3      # a smoke run
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    POLICY,
    ROOT,
    emit,
    install_sigterm,
    log,
    make_policy_copy,
    paired_ratio,
    policy_cache_dir,
    run_proc,
    summary,
)

SOCKET = os.environ.get("PODMAN_SOCKET", "/run/container-policy-podman/podman.sock")
STORE = [
    "--root",
    os.environ.get("PODMAN_ROOT", "/var/lib/container-policy-podman/storage"),
    "--runroot",
    os.environ.get("PODMAN_RUNROOT", "/run/container-policy-podman/runroot"),
]


def podman_line(policies: Path) -> list[str]:
    """`policy render`'s docker line for isolation, run by podman on the test store."""
    render = [*POLICY, "render", "isolation", "--policies", str(policies), "--project"]
    done = run_proc([*render, str(ROOT), "--", "true"], capture=True)
    if done.rc != 0:
        raise SystemExit(f"bench: policy render failed: {done.stderr}")
    argv = shlex.split(done.stdout.splitlines()[0])
    if argv[:2] != ["docker", "run"]:
        raise SystemExit(f"bench: unexpected render: {argv[:3]}")
    return ["podman", *STORE, *argv[1:]]


def run(quick: bool) -> dict[str, Any]:
    """For bench/run.py."""
    return measure(3 if quick else 10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--output", type=Path, help="also write the results (JSON) here")
    args = parser.parse_args(argv)
    install_sigterm()
    emit(measure(args.rounds), args.output)
    return 0


def measure(rounds: int) -> dict[str, Any]:
    """`rounds` paired rounds on the test service (started here if it is not running)."""
    subprocess.run([str(ROOT / "scripts" / "ensure-podman.sh")], check=True)
    with tempfile.TemporaryDirectory(prefix="bench-podman-") as tmp, policy_cache_dir():
        policies = make_policy_copy(Path(tmp))
        ours = [*POLICY, "run", "isolation", "--policies", str(policies), "--project", str(ROOT)]
        ours += ["--host", f"unix://{SOCKET}", "--", "true"]
        theirs = podman_line(policies)
        walls: dict[str, list[float]] = {"policy": [], "podman": []}
        for variant, line in (("policy", ours), ("podman", theirs)):  # warm both, untimed
            if run_proc(line).rc != 0:
                raise SystemExit(f"bench: {variant} run failed: {shlex.join(line)}")
        for r in range(rounds):
            order = ["policy", "podman"] if r % 2 == 0 else ["podman", "policy"]
            for variant in order:
                done = run_proc(ours if variant == "policy" else theirs)
                if done.rc != 0:
                    raise SystemExit(f"bench: {variant} run failed: {done.stderr}")
                walls[variant].append(done.wall)
            log(
                f"  round {r + 1}/{rounds}: policy run {walls['policy'][-1]:.3f}s, "
                f"podman run {walls['podman'][-1]:.3f}s"
            )
    return {
        "rounds": rounds,
        "policy_run_wall": summary(walls["policy"]),
        "podman_run_wall": summary(walls["podman"]),
        "ratio_policy_over_podman": paired_ratio(walls["policy"], walls["podman"]),
        "podman_line": shlex.join(theirs),
    }


if __name__ == "__main__":
    sys.exit(main())
