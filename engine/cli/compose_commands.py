"""`policy check` and `policy import`: compose files against the policy, and into it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import (
    FINDINGS,
    OK,
    Subparsers,
    add_command,
    add_policy_args,
    check_output_dir,
    load,
    write_output,
)
from policy.diagnostics import Severity


def register(sub: Subparsers) -> None:
    from engine.report import Format

    p = add_command(
        sub,
        "check",
        help="judge compose files by the rules, guardrails and the profiles they name",
        description="Read compose files (Compose Specification or the 2.x format; several are "
        "merged as compose merges them), judge every service by the security rules and "
        "guardrails, and compare a service that names a profile (`x-policy-profile: NAME`, or "
        "the label io.container-policy.profile that `policy render --as compose` writes) field "
        "by field with it. Every finding is located at the compose key (file:line:col).",
        epilog="examples:\n  policy check docker-compose.test.yml\n"
        "  policy check docker-compose.yml docker-compose.ci.yml --format sarif -o check.sarif\n\n"
        "exit: 0 nothing at or above --fail-on, 1 findings, 2 usage error",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="compose files, in order")
    p.add_argument("--format", type=Format, choices=list(Format), default=Format.TABLE)
    p.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the report here")
    p.add_argument(
        "--fail-on",
        choices=["warning", "error"],
        default="error",
        help="lowest severity that makes the exit code 1 (default: error)",
    )
    add_policy_args(p)
    p.set_defaults(func=cmd_check)
    p = add_command(
        sub,
        "import",
        help="write TOML profiles from a compose file's services",
        description="Write a policy file with one profile per service of a compose file: "
        "shared settings factored into a base profile the others extend, each value commented "
        "with the compose line it came from, and every rule the services break listed as a "
        "suggested waiver whose reason you fill in.",
        epilog="example:\n  policy import docker-compose.test.yml --output policies/\n\n"
        "exit: 0 written, 1 a service could not be imported faithfully, 2 usage error",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="compose files, in order")
    p.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="DIR",
        help="write DIR/<compose file name>.toml (default: standard output)",
    )
    add_policy_args(p)
    p.set_defaults(func=cmd_import)


def cmd_check(args: argparse.Namespace) -> int:
    from engine.compose.check import check
    from engine.report import Format, formatter
    from engine.report.table import TableFormat

    check_output_dir(args.output)
    policy = load(args, require_valid=False)
    report = check(args.files, policy)
    color = args.output is None and sys.stdout.isatty()
    if args.format is Format.TABLE:
        text = TableFormat(color=color, locations=True).render(report)
    else:
        text = formatter(args.format).render(report)
    write_output(args.output, text)
    threshold = Severity(args.fail_on)
    failing = report.failing(threshold)
    print(
        f"check: {len(report.containers)} service(s), {len(report.findings)} finding(s), "
        f"{len(failing)} at or above {threshold.value}",
        file=sys.stderr,
    )
    return FINDINGS if failing else OK


def cmd_import(args: argparse.Namespace) -> int:
    from engine.compose.importer import import_compose

    policy = load(args, require_valid=False)
    text, problems = import_compose(args.files, policy)
    if args.output is None:
        print(text, end="")
    else:
        check_output_dir(args.output / "x")
        write_output(args.output / (args.files[0].stem + ".toml"), text.rstrip("\n"))
    for problem in problems:
        print(f"import: {problem}", file=sys.stderr)
    return FINDINGS if problems else OK
