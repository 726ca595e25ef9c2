"""`policy run --swarm`, `policy doctor --swarm`, `policy audit --swarm`, `policy clean --swarm`:
wiring only."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from engine.cli.common import FINDINGS, OK, launch_spec, load

if TYPE_CHECKING:
    from engine.backends.interface import Engine
    from engine.backends.swarm import SwarmEngine


def _manager(args: argparse.Namespace) -> SwarmEngine:
    from engine.backends.swarm import SwarmEngine

    url = (
        getattr(args, "host", None)
        or os.environ.get("DOCKER_HOST")
        or "unix:///var/run/docker.sock"
    )
    return SwarmEngine(url)


def _connect(args: argparse.Namespace) -> tuple[SwarmEngine, dict[str, Engine]]:
    from engine.backends.swarm import node_engines

    urls = [*args.swarm_node, *os.environ.get("POLICY_SWARM_NODES", "").split()]
    manager = _manager(args)
    return manager, node_engines(manager, urls)


def clean_swarm(args: argparse.Namespace) -> int:
    from engine import labels as L
    from engine.launcher.swarm_clean import leftovers, remove

    manager, engines = _connect(args)
    found = leftovers(manager, engines)
    if args.dry_run:
        for s in found.services:
            print(f"would remove service {s.name} ({s.labels.get(L.PROFILE, '?')})")
        for n in found.networks:
            print(f"would remove network {n['name']} ({n['profile']})")
        for node in found.nodes.values():
            print(f"would remove their task containers on node {node.label}")
        for name in found.unreachable:
            print(f"cannot reach node {name}: give its engine with --swarm-node")
    else:
        remove(manager, found, lambda kind, what: print(f"removed {kind} {what}", flush=True))
    verb = "to remove" if args.dry_run else "removed"
    print(
        f"{len(found.services)} service(s), {len(found.networks)} network(s) {verb}",
        file=sys.stderr,
    )
    return OK


def run_swarm(args: argparse.Namespace) -> int:
    from engine.cli.launch_commands import fail_on_violation, summarise
    from engine.launcher.board import finished_line
    from engine.launcher.swarm_job import run_job
    from engine.launcher.workers import shard_specs
    from policy.errors import UsageError

    for option in ("detach", "keep"):
        if getattr(args, option):
            raise UsageError(f"--{option} cannot be combined with --swarm")
    specs = shard_specs(launch_spec(args), args.workers or 1)
    manager, engines = _connect(args)

    def line(worker: int, stream: int, text: str) -> None:
        print(f"[{worker}] {text}", end="", file=sys.stderr if stream == 2 else sys.stdout)

    def verified(worker: int, node: str) -> None:
        print(f"[{worker}] verified on node {node}", file=sys.stderr, flush=True)

    outcomes = run_job(manager, engines, specs, line, verified, monitor=args.monitor)
    for index, outcome in enumerate(outcomes):  # after the output: no board between its lines
        print(finished_line(index, outcome), file=sys.stderr)
    return summarise(list(outcomes), fail_on_violation(args, specs[0].profile))


def doctor_swarm(args: argparse.Namespace) -> int:
    from engine.launcher.swarm_doctor import report

    policy = load(args, require_valid=False)
    names = args.profiles or sorted(policy.profiles)
    manager, engines = _connect(args)
    lines, failed = report(manager, engines, policy, names)
    print("\n".join(lines))
    print(f"{failed} check(s) failed" if failed else "all checks passed", file=sys.stderr)
    return FINDINGS if failed else OK


def audit_swarm(args: argparse.Namespace) -> int:
    from engine.audit.swarm import audit
    from engine.cli.common import write_output
    from engine.report import formatter
    from policy.diagnostics import Severity

    policy = load(args, require_valid=False)
    manager, engines = _connect(args)
    report = audit(manager, engines, policy)
    color = args.output is None and sys.stdout.isatty()
    write_output(args.output, formatter(args.format, color=color).render(report))
    threshold = Severity(args.fail_on)
    failing = report.failing(threshold)
    print(
        f"audit: {len(report.containers)} service(s) and task(s), {len(report.findings)} "
        f"finding(s), {len(failing)} at or above {threshold.value}",
        file=sys.stderr,
    )
    return FINDINGS if failing else OK
