"""`policy report` (worst offenders, trends and right-size hints over the history; pruning) and
`policy monitor` (a running container's figures, live)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.common import (
    OK,
    Subparsers,
    add_command,
    check_output_dir,
    positive_int,
    write_output,
)
from policy.errors import UsageError

if TYPE_CHECKING:
    from engine.history.sqlite import SqliteStore
    from engine.monitor.figures import Usage

DEFAULT_LAUNCH_DAYS = 90.0  # what --prune keeps of whole launches unless --keep-launches says


def register(sub: Subparsers) -> None:
    _add_report(sub)
    _add_monitor(sub)


def _add_report(sub: Subparsers) -> None:
    from engine.report.usage.formats import Format

    p = add_command(
        sub,
        "report",
        help="worst offenders, trends and right-size hints from the launch history",
        description="Read the SQLite launch history: the worst commands and test cases of a "
        "window by memory share of the limit, CPU throttling, duration p95 and violations; "
        "each one's last run against the window's median (flagged above +20%%); a memory "
        "limit per profile (the p99 peak x 1.25). --prune removes old samples and launches "
        "instead.",
        epilog="examples:\n  policy report\n  policy report --since 2w --profile isolation\n"
        "  policy report --format html --output usage.html\n"
        "  policy report --prune --keep-samples 14 --keep-launches 90\n\n"
        "exit: 0 ok, 2 usage error or a history that cannot be read",
    )
    p.add_argument(
        "--since",
        default="7d",
        metavar="SPAN|DATE",
        help="the window's start: a span back from now (7d, 12h, 2w) or a date "
        "(2026-11-25, UTC unless an offset is given); default 7d",
    )
    p.add_argument("--profile", metavar="NAME", help="only this profile's launches")
    p.add_argument("--format", type=Format, choices=list(Format), default=Format.TABLE)
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the report here")
    p.add_argument(
        "--top", type=positive_int, default=10, metavar="N", help="lines per ranking (10)"
    )
    _add_history(p)
    p.add_argument(
        "--prune",
        action="store_true",
        help="remove samples older than --keep-samples and launches older than "
        "--keep-launches, then exit",
    )
    p.add_argument(
        "--keep-samples",
        type=_days,
        metavar="DAYS",
        help="with --prune: days of samples kept ($POLICY_HISTORY_SAMPLE_DAYS, else 14)",
    )
    p.add_argument(
        "--keep-launches",
        type=_days,
        default=DEFAULT_LAUNCH_DAYS,
        metavar="DAYS",
        help=f"with --prune: days of launch summaries kept ({DEFAULT_LAUNCH_DAYS:g})",
    )
    p.set_defaults(func=cmd_report)


def _add_monitor(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "monitor",
        help="a running container's usage, live",
        usage="policy monitor CONTAINER [options]",
        description="The figures of the run summary (memory against the limit, CPU against "
        "the quota, throttling, tasks against the pids limit, open files, threads) for a "
        "running container, refreshed in place on a terminal and a line per sample "
        "otherwise, until the container ends or Ctrl-C; then its summary.",
        epilog="example:\n  policy monitor my-container --interval 2s\n\n"
        "exit: 0 the container ended or Ctrl-C, 2 no such container, not running, or an "
        "engine error",
    )
    p.add_argument("container", metavar="CONTAINER", help="the container's name or id")
    p.add_argument(
        "--interval",
        type=_interval,
        default=1.0,
        metavar="DURATION",
        help="time between samples (1s; 100ms to 1h)",
    )
    p.set_defaults(func=cmd_monitor)


def _add_history(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="the SQLite launch history (default $POLICY_HISTORY or "
        "~/.local/state/container-policy/history.sqlite)",
    )


def _days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of days, got {text!r}") from None
    if not 0 <= days <= 36_600:
        raise argparse.ArgumentTypeError(f"must be between 0 and 36600 days, got {text}")
    return days


def _interval(text: str) -> float:
    from policy.units import UnitError, parse_duration

    try:
        seconds = parse_duration(text)
    except UnitError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    if not 0.1 <= seconds <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 100ms and 1h, got {text}")
    return seconds


def cmd_report(args: argparse.Namespace) -> int:
    from engine.history.sqlite import SqliteStore, default_path
    from engine.report.usage.formats import formatter
    from engine.report.usage.queries import build
    from engine.report.usage.window import parse_since

    store = SqliteStore(args.history or default_path(), sample_days=None)
    if args.prune:
        return _prune(args, store)
    if args.keep_samples is not None:
        raise UsageError("--keep-samples only applies with --prune")
    since = parse_since(args.since)
    check_output_dir(args.output)
    if args.history and not store.path.exists():
        raise UsageError(f"--history {args.history}: no such file")
    if not store.path.exists():
        print(f"policy: no launch history yet at {store.path}", file=sys.stderr)
    render = formatter(args.format)
    report = build(store, since, args.profile, plots=render.needs_plots, top=args.top)
    write_output(args.output, render.render(report))
    return OK


def _prune(args: argparse.Namespace, store: SqliteStore) -> int:
    from engine.history.sqlite import default_sample_days

    if not store.path.exists():
        raise UsageError(f"history {store.path}: no such file, nothing to prune")
    samples = args.keep_samples if args.keep_samples is not None else default_sample_days()
    pruned = store.prune(sample_days=samples, launch_days=args.keep_launches)
    print(
        f"pruned {store.path}: {pruned.samples} sample(s) older than {samples:g} days, "
        f"{pruned.launches} launch(es) older than {args.keep_launches:g} days",
        file=sys.stderr,
    )
    return OK


def cmd_monitor(args: argparse.Namespace) -> int:
    from engine.backends import connect
    from engine.monitor.live import line, watch
    from engine.monitor.summary import lines
    from engine.monitor.view import InPlace

    engine = connect()
    out = sys.stdout
    tty = out.isatty()
    view = InPlace(out)
    title = f"policy monitor {args.container} (Ctrl-C stops watching; the container goes on)"

    def show(usage: Usage) -> None:
        if tty:
            view.show([title, *lines(usage)])
        else:
            print(line(usage), file=out, flush=True)

    watched = watch(engine, args.container, show, interval=args.interval)
    ending = (
        "stopped watching; the container goes on"
        if watched.interrupted
        else "the container's main process ended"
    )
    final = [f"policy monitor {watched.name}: {ending}", *lines(watched.usage)]
    if tty:
        view.show(final)
    else:
        print("\n".join(final), file=out, flush=True)
    return OK
