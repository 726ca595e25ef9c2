"""What `policy check` costs against what a user runs instead (issue 15).

`docker-compose config` is what people run to "check" a compose file: it parses, interpolates,
merges and validates it against compose's schema, and judges nothing. `policy check` does all of
that, then judges every service by the rules and guardrails and compares it with its profile.
Rounds alternate the two (one first, then the other), so each pair shares its moment's load:

  C  `policy check FILE` (the policy cache warm: run once, untimed, first)
  D  `docker-compose -f FILE config -q`

on the seed's compose file (3 services) and on a generated file of N services. Also timed,
without a baseline: `policy render --all --as compose` and `policy render PROFILE --as
kubernetes` of the example cluster policy.

    python bench/compose.py                  # 7 rounds, 100 generated services
    python bench/compose.py --rounds 2 --services 20      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import POLICY, ROOT, log, paired_ratio, policy_cache_dir, run_proc, summary

SEED = ROOT / "examples" / "seed-compose" / "docker-compose.test.yml"


def generated(directory: Path, services: int) -> Path:
    """`services` copies of the seed's test-parallel service, each naming its profile."""
    seed = SEED.read_text().split("services:")[0].replace("../..", str(ROOT))
    body = "".join(
        f"  worker-{i}:\n    <<: *hardening\n    x-policy-profile: parallel\n"
        "    image: simple-test-isolation:latest\n    network_mode: none\n"
        "    mem_limit: 512m\n    cpus: 1\n"
        for i in range(services)
    )
    path = directory / "docker-compose.generated.yml"
    path.write_text(seed + "services:\n" + body)
    return path


def _pair(check: list[str], compose: list[str], rounds: int) -> dict[str, Any]:
    run_proc(check)  # the policy cache's entry, untimed
    c, d = [], []
    for i in range(rounds):
        order = [(check, c), (compose, d)] if i % 2 == 0 else [(compose, d), (check, c)]
        for argv, out in order:
            proc = run_proc(argv)
            if proc.rc not in (0, 1):
                raise RuntimeError(f"{argv}: exit {proc.rc}: {proc.stderr}")
            out.append(proc.wall)
    return {"policy check": summary(c), "docker-compose config": summary(d),
            "ratio": paired_ratio(c, d)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--services", type=int, default=100)
    args = parser.parse_args()
    if shutil.which("docker-compose") is None:
        log("docker-compose is not installed (scripts/ensure-compose.sh)")
        return 2
    policies = ["--policies", str(ROOT / "policies")]
    results: dict[str, Any] = {}
    with policy_cache_dir(), tempfile.TemporaryDirectory(prefix="bench-compose-") as tmp:
        for label, path in (("seed (3 services)", SEED),
                            (f"generated ({args.services} services)",
                             generated(Path(tmp), args.services))):  # fmt: skip
            log(f"{label}: {args.rounds} paired rounds")
            results[label] = _pair(
                [*POLICY, "check", str(path), *policies],
                ["docker-compose", "-f", str(path), "config", "-q"],
                args.rounds,
            )
        cluster = ["--policies", str(ROOT / "examples" / "kubernetes" / "policies")]
        for label, argv in (
            ("render --all --as compose",
             [*POLICY, "render", "--all", "--as", "compose", *policies]),
            ("render isolation --as kubernetes",
             [*POLICY, "render", "isolation", "--as", "kubernetes", *cluster]),
        ):  # fmt: skip
            run_proc(argv)
            results[label] = summary([run_proc(argv).wall for _ in range(args.rounds)])
    print(json.dumps(results, indent=2))
    for label, r in results.items():
        if "ratio" in r:
            print(f"{label}: policy check {r['policy check']['median'] * 1000:.0f} ms, "
                  f"docker-compose config {r['docker-compose config']['median'] * 1000:.0f} ms, "
                  f"{r['ratio']}x", file=sys.stderr)  # fmt: skip
        else:
            print(f"{label}: {r['median'] * 1000:.0f} ms", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
