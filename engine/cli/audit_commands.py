"""`policy audit` (once or `--watch`) and `policy capture`: what runs, against the policy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from engine.cli.common import (
    FINDINGS,
    OK,
    Subparsers,
    add_command,
    add_policy_args,
    add_swarm_node_arg,
    check_output_dir,
    host_url,
    load,
    write_output,
)
from policy.diagnostics import Severity
from policy.errors import EngineError, UsageError

if TYPE_CHECKING:
    from engine.audit.auditor import Auditor
    from engine.audit.watch import Audited
    from engine.backends.interface import Engine


def register(sub: Subparsers) -> None:
    from engine.report import Format

    p = add_command(
        sub,
        "audit",
        help="report drift, unmanaged and stale containers",
        description="Inspect running containers and report every field that differs from the "
        "declared profile (drift), containers launched under an older profile "
        "(stale) or an unknown one, and containers started outside any profile "
        "that break a security rule or guardrail (unmanaged).",
        epilog="examples:\n  policy audit\n  policy audit --format sarif --output audit.sarif\n"
        "  policy audit --filter label=team=ci --deep\n"
        "  policy audit --host unix:///var/run/docker.sock --host ssh://ci@runner2\n"
        "  policy audit --watch --format json\n\n"
        "exit: 0 nothing at or above --fail-on, 1 findings, 2 usage or engine error",
    )

    p.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="engine filter, as `docker ps --filter` (id=, name=, label=, status=)",
    )
    p.add_argument("--format", type=Format, choices=list(Format), default=Format.TABLE)
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write the report here (atomically) instead of stdout",
    )
    p.add_argument(
        "--deep",
        action="store_true",
        help="also compare the kernel's view (/proc, cgroups); local engines only",
    )
    p.add_argument(
        "--watch",
        action="store_true",
        help="follow the engine's events and audit each container as it starts",
    )
    p.add_argument(
        "--host",
        action="append",
        type=host_url,
        default=[],
        metavar="URL",
        help="engine to audit (unix://, tcp://, ssh://); repeat for many "
        "(default: DOCKER_HOST or the local socket)",
    )
    p.add_argument(
        "--fail-on",
        choices=["note", "warning", "error"],
        default="error",
        help="lowest severity that makes the exit code 1 (default: error; a note is what a "
        "reviewer may want to see but is no weakness of a test container, e.g. no health check)",
    )
    p.add_argument(
        "--swarm",
        action="store_true",
        help="audit the swarm whose manager is DOCKER_HOST: its services against their "
        "profiles, their tasks on every reachable node, and services started outside any",
    )
    add_swarm_node_arg(p)
    add_policy_args(p)
    p.set_defaults(func=cmd_audit)
    _add_capture(sub)


def _add_capture(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "capture",
        help="write the TOML profile that describes a running container",
        epilog="example:\n  policy capture my-test-container --name legacy > policies/legacy.toml",
    )
    p.add_argument("container", metavar="CONTAINER", help="container id or name")
    p.add_argument("--name", metavar="PROFILE", help="profile name (default: the container's)")
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write the TOML here (atomically); a custom seccomp profile goes beside it as "
        "FILE's name + .seccomp.json (required for such a container)",
    )
    p.add_argument(
        "--host", type=host_url, metavar="URL", help="engine (default: DOCKER_HOST or local)"
    )
    p.set_defaults(func=cmd_capture)


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """`KEY=VALUE` strings in `docker ps --filter` syntax, as the Engine API wants them."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--filter {item!r}: expected KEY=VALUE, for example label=team=ci")
        out.setdefault(key, []).append(value)
    return out


def cmd_audit(args: argparse.Namespace) -> int:
    from engine.audit.auditor import Auditor
    from engine.backends import connect
    from engine.report import Format, formatter

    filters = parse_filters(args.filter)
    check_output_dir(args.output)
    if args.swarm:
        from engine.cli.swarm_commands import audit_swarm

        if args.watch or args.deep or args.host or filters:
            raise UsageError("--swarm audits the whole swarm: no --watch, --deep, --host, --filter")
        return audit_swarm(args)
    if args.watch and args.output is not None:
        raise UsageError("--watch prints findings as they come; it cannot write --output")
    policy = load(args, require_valid=False)
    engines = [connect(url) for url in args.host] or [connect()]
    auditor = Auditor(policy, deep=args.deep)
    threshold = Severity(args.fail_on)
    if args.watch:
        return _watch(auditor, engines, filters, args.format is Format.JSON, threshold)
    report = auditor.audit(engines, filters)
    if len(engines) == 1 and report.host_findings:
        # One engine and it is unreachable: that is an engine error, not a finding.
        raise EngineError(report.host_findings[0].message)
    color = args.output is None and sys.stdout.isatty()
    write_output(args.output, formatter(args.format, color=color).render(report))
    failing = report.failing(threshold)
    print(
        f"audit: {len(report.containers)} container(s), {len(report.findings)} finding(s), "
        f"{len(failing)} at or above {threshold.value}",
        file=sys.stderr,
    )
    return FINDINGS if failing else OK


def _watch(
    auditor: Auditor,
    engines: list[Engine],
    filters: dict[str, list[str]],
    as_json: bool,
    threshold: Severity,
) -> int:
    """Print each event of the watch as it comes; 1 if anything failed."""
    from engine.audit.watch import Audited, Ready, Watcher, WatchError

    watcher = Watcher(auditor, engines, filters)
    failed = False
    try:
        for event in watcher.events():
            if isinstance(event, Ready):
                # Only now: a container started after this line is seen.
                print(f"watching {event.engines} engine(s); Ctrl-C to stop", file=sys.stderr)
            elif isinstance(event, WatchError):
                print(f"policy: error: {event.message}", file=sys.stderr, flush=True)
                failed = True
            elif isinstance(event, Audited):
                failed |= _print_audited(event, as_json, threshold)
    except KeyboardInterrupt:
        watcher.stop()
        print("stopped watching", file=sys.stderr)
    return FINDINGS if failed else OK


def _print_audited(event: Audited, as_json: bool, threshold: Severity) -> bool:
    """One line per finding (or `clean`); whether any is at or above `threshold`."""
    from engine.report.json_format import finding_dict

    report = event.report
    for f in report.findings:
        if as_json:
            print(json.dumps(finding_dict(f), default=str), flush=True)
        else:
            print(
                f"{f.host} {report.name} ({report.id[:12]}): "
                f"{f.severity.value} {f.rule}: {f.message}",
                flush=True,
            )
    if not report.findings and not as_json:
        print(f"{report.host} {report.name} ({report.id[:12]}): clean", flush=True)
    return any(f.severity.rank >= threshold.rank for f in report.findings)


def cmd_capture(args: argparse.Namespace) -> int:
    from engine.audit.as_profile import capture_toml, custom_seccomp_json
    from engine.backends import connect

    engine = connect(args.host)
    inspect = engine.inspect_if_exists(args.container)
    if inspect is None:
        raise UsageError(f"no container {args.container!r} on {engine.name}")
    image = engine.inspect_image(inspect.image).config
    inspect = engine.kind().captured(inspect)
    if args.output is None:
        print(capture_toml(inspect, image, args.name), end="")
        return OK
    check_output_dir(args.output)
    custom = custom_seccomp_json(inspect)
    # Beside the TOML, named after it: a relative seccomp path resolves against its file.
    seccomp_path = args.output.with_name(args.output.stem + ".seccomp.json")
    text = capture_toml(inspect, image, args.name, seccomp_path.name if custom else None)
    if custom is not None:
        write_output(seccomp_path, json.dumps(json.loads(custom), indent=2))
    write_output(args.output, text.rstrip("\n"))
    return OK
