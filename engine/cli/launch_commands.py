"""`policy run`, `shell`, `clean`, `doctor`: launching through profiles on an engine."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import TYPE_CHECKING

from engine.cli.common import (
    FINDINGS,
    OK,
    Subparsers,
    add_command,
    add_host_arg,
    add_log_args,
    add_policy_args,
    add_swarm_node_arg,
    configure_logs,
    launch_spec,
    load,
    positive_int,
)
from policy.errors import Error

if TYPE_CHECKING:
    from engine.launcher.spec import RunResult
    from policy.model import Profile

# `policy run`: the container exited 0, but the monitor saw an error-severity violation (or,
# with --fail-on-violation, any violation). Below the codes a shell or the engine gives (124+).
EXIT_VIOLATION = 3


def register(sub: Subparsers) -> None:
    _add_run(sub)
    p = add_command(
        sub,
        "shell",
        help="an interactive shell under a profile",
        usage="policy shell PROFILE [options] [-- CMD ...]",
        epilog="examples:\n  policy shell full\n  policy shell isolation -- sh -l",
    )
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--image", metavar="IMG", help="use this image instead of the profile's")
    add_host_arg(p)
    add_policy_args(p)
    add_log_args(p)
    p.set_defaults(func=cmd_shell, launches=True)
    p = add_command(
        sub,
        "clean",
        help="remove the containers this engine launched",
        description="Remove every container carrying this project's reserved "
        "labels, with its anonymous volumes, and nothing else. A Swarm task's container is "
        "left to its service: with --swarm, on a swarm manager, the services and job networks "
        "`policy run --swarm` left (found by the same labels) are removed instead.",
        epilog="examples:\n  policy clean --dry-run\n"
        "  DOCKER_HOST=unix:///run/manager.sock policy clean --swarm --swarm-node unix:///run/node-2.sock",
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument(
        "--swarm",
        action="store_true",
        help="the swarm whose manager is --host (or DOCKER_HOST): remove the services and "
        "networks `policy run --swarm` left there, with their tasks' containers on every node",
    )
    add_host_arg(p)
    add_swarm_node_arg(p)
    p.set_defaults(func=cmd_clean)
    p = add_command(
        sub,
        "doctor",
        help="check the engine, cgroups, seccomp, images and mounts",
        epilog="example:\n  policy doctor isolation\n\nexit: 0 all checks pass, 1 a check fails",
    )
    p.add_argument(
        "profiles", nargs="*", metavar="PROFILE", help="profiles to check (default: all)"
    )
    p.add_argument(
        "--swarm",
        action="store_true",
        help="the swarm's nodes, their engines and which profile fields each can enforce",
    )
    add_swarm_node_arg(p)
    add_host_arg(p)
    add_policy_args(p)
    p.set_defaults(func=cmd_doctor)


def _add_run(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "run",
        help="launch a container through a vetted profile",
        usage="policy run PROFILE [options] [-- CMD ...]",
        description="Create the container with exactly the profile's settings, "
        "verify what the engine created, start it only if identical, "
        "stream its output, enforce the timeout, remove it.",
        epilog="examples:\n  policy run isolation -- sh -c 'make test'\n"
        "  policy run parallel --workers 4 -- sh run-shard.sh\n"
        "  policy run full --detach -- sleep 600\n\n"
        "exit: the container's code; 124 timeout; 137 out of memory; "
        "2 refused (policy, verification, engine); 3 the container passed but the monitor "
        "saw an error (or, with --fail-on-violation, any violation); 130/143 interrupted",
    )
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--image", metavar="IMG", help="use this image instead of the profile's")
    p.add_argument(
        "--detach", action="store_true", help="leave it running under the profile and print its id"
    )
    p.add_argument("--keep", action="store_true", help="do not remove the container afterwards")
    p.add_argument(
        "--workers",
        type=positive_int,
        default=0,
        metavar="N",
        help="run N containers at once, each told SHARD_INDEX and SHARD_COUNT",
    )
    p.add_argument(
        "--no-monitor",
        dest="monitor",
        action="store_false",
        help="do not sample the container's usage (no summary, no violations)",
    )
    p.add_argument(
        "--fail-on-violation",
        action="store_true",
        help="exit 3 when the container passed but the monitor saw a warning (as the "
        "profile's monitor.fail_on_violation does); errors always do",
    )
    p.add_argument(
        "--swarm",
        action="store_true",
        help="run the workers as Swarm jobs on the swarm whose manager is DOCKER_HOST "
        "(README: Swarm)",
    )
    add_swarm_node_arg(p)
    add_host_arg(p)
    add_policy_args(p)
    add_log_args(p)
    p.set_defaults(func=cmd_run, launches=True)


def fail_on_violation(args: argparse.Namespace, profile: Profile) -> bool:
    return bool(args.fail_on_violation or profile.monitor.fail_on_violation)


def _exit_code(result: RunResult, fail_on_violation: bool) -> int:
    """The container's own code, or EXIT_VIOLATION when it passed but its violations fail it."""
    from engine.monitor.violations import failing

    if result.exit_code == OK and failing(result.usage, fail_on_violation):
        return EXIT_VIOLATION
    return result.exit_code


def _print_usage(result: RunResult, prefix: str = "") -> None:
    from engine.monitor.summary import lines

    # Printed, not logged: a passing run must not import the logger (tests/test_imports.py).
    if result.usage is not None:
        print("\n".join(lines(result.usage, prefix)), file=sys.stderr)


def _duration(seconds: float) -> str:
    from policy.units import format_duration

    return format_duration(round(seconds, 1))


def cmd_run(args: argparse.Namespace) -> int:
    from engine.backends import connect
    from engine.launcher.run import EXIT_OOM, describe_oom, detached, run
    from engine.launcher.terminal import write_chunk
    from engine.logs import logger

    configure_logs(args)
    if args.swarm:
        from engine.cli.swarm_commands import run_swarm

        return run_swarm(args)
    if args.workers:
        return _run_workers(args)
    spec = launch_spec(args)
    engine = connect(args.host)
    if args.detach:
        with detached(engine, spec, remove=False) as container:
            print(container)
        logger.info(f"running detached under '{spec.profile.name}': {container[:12]}")
        return OK
    result = run(
        engine,
        spec,
        write_chunk,
        keep=args.keep,
        on_timeout=lambda t: logger.warning(
            f"timeout: '{spec.profile.name}' allows {_duration(t)}; "
            f"stopping the container (SIGTERM, then SIGKILL)"
        ),
        monitor=args.monitor,
    )
    _print_usage(result)
    if result.timed_out:
        logger.error(f"timed out after {_duration(result.duration)}; exit {result.exit_code}")
    elif result.exit_code == EXIT_OOM and result.oom_killed:
        logger.error(describe_oom(spec.profile))
    if args.keep:
        logger.info(f"kept container {result.container_id[:12]}")
    return _exit_code(result, fail_on_violation(args, spec.profile))


def _run_workers(args: argparse.Namespace) -> int:
    from engine.backends import connect
    from engine.launcher.board import Board
    from engine.launcher.workers import run_workers, shard_specs

    specs = shard_specs(launch_spec(args), args.workers)  # the policy is loaded once for all
    failing = fail_on_violation(args, specs[0].profile)
    engine = connect(args.host)
    engine.kind()  # connect (and fail clearly) once, before the workers start
    # A terminal gets the board redrawn in place; a CI log one line per finished worker.
    with Board(len(specs), sys.stderr, sys.stderr.isatty()) as board:
        outcomes = run_workers(
            engine, specs, board.done, monitor=args.monitor, on_start=board.started
        )
    return summarise(outcomes, failing)


def summarise(outcomes: list[RunResult | Error], fail_on_violation: bool) -> int:
    """A failing worker's last output (and violations) on stderr; the combined exit. Each
    worker's own line was printed as it ended (`engine.launcher.board`)."""
    from engine.launcher.workers import combined_exit

    for index, outcome in enumerate(outcomes):
        if isinstance(outcome, Error):
            continue  # its line said it
        tail = outcome.output.splitlines()[-10:] if outcome.exit_code != 0 else []
        if tail:
            print(f"worker {index}: the last lines of its output:", file=sys.stderr)
            for line in tail:
                print(f"  | {line}", file=sys.stderr)
        if outcome.usage is not None and outcome.usage.violations:
            print(f"worker {index}:", file=sys.stderr)
            _print_usage(outcome, "  ")
    return combined_exit(outcomes, lambda result: _exit_code(result, fail_on_violation))


def cmd_shell(args: argparse.Namespace) -> int:
    from engine.backends import connect
    from engine.launcher.terminal import attached
    from engine.launcher.verify import create_verified, remove_reliably

    configure_logs(args)
    spec = launch_spec(args)
    if not spec.command:
        spec = dataclasses.replace(spec, command=("/bin/sh",))
    engine = connect(args.host)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    container = create_verified(engine, spec, tty=tty)
    try:
        return attached(engine, container, tty)
    finally:
        remove_reliably(engine, container)


def cmd_clean(args: argparse.Namespace) -> int:
    from engine import labels
    from engine.backends import connect

    if args.swarm:
        from engine.cli.swarm_commands import clean_swarm

        return clean_swarm(args)
    engine = connect(args.host)
    listed = engine.containers({"label": labels.PROFILE})
    found = [c for c in listed if labels.SWARM_TASK not in (c.labels or {})]
    tasks = len(listed) - len(found)
    if tasks:
        print(
            f"left {tasks} Swarm task container(s) to their service (their swarm would start "
            "them again): `policy clean --swarm` on the manager removes the services",
            file=sys.stderr,
        )
    for c in found:
        profile = (c.labels or {}).get(labels.PROFILE, "?")
        verb = "would remove" if args.dry_run else "removed"
        if not args.dry_run:
            engine.remove(c.id)
        print(f"{verb} {c.id[:12]} {c.name} (profile {profile}, {c.state or '?'})")
    print(
        f"{len(found)} container(s) {'to remove' if args.dry_run else 'removed'}", file=sys.stderr
    )
    return OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.backends import connect
    from engine.launcher.doctor import run_checks

    if args.swarm:
        from engine.cli.swarm_commands import doctor_swarm

        return doctor_swarm(args)
    policy = load(args, require_valid=False)
    names = args.profiles or sorted(policy.profiles)
    for name in names:
        policy.profile(name)
    failed = 0
    for check in run_checks(policy, names, connect(args.host)):
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if not check.ok:
            failed += 1
            print(f"      fix: {check.fix}")
    print(f"{failed} check(s) failed" if failed else "all checks passed", file=sys.stderr)
    return FINDINGS if failed else OK
