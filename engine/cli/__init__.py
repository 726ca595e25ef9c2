"""The `policy` command line: parses arguments, calls `policy`/`engine`, prints, picks exit codes.

Exit codes: 0 ok, 1 findings (the policy or a container breaks a rule), 2 usage or engine error.
Results go to stdout, progress and summaries to stderr. The one `except Error` is in `main`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO, assert_never

from policy.diagnostics import Diagnostic, Severity, printable
from policy.errors import EngineError, Error, PolicyError, UsageError

OK, FINDINGS, USAGE = 0, 1, 2
VERSION = "0.1.0"


class RenderTarget(enum.StrEnum):
    DOCKER_RUN = "docker-run"
    COMPOSE = "compose"


class ShowFormat(enum.StrEnum):
    TOML = "toml"
    JSON = "json"


class DiagnosticsFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 through our own path with a one-line hint."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def _add_policy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policies",
        "-p",
        type=Path,
        default=Path("policies"),
        metavar="DIR",
        help="policy directory or file (default: ./policies)",
    )
    parser.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="directory relative mount sources resolve against "
        "(default: the parent of the policy directory)",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be between 1 and 256, got {value}")
    return value


def _add_log_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="launch record (JSON lines; default $POLICY_RECORD or "
        "~/.local/state/container-policy/launches.jsonl)",
    )
    parser.add_argument("--log-json", action="store_true", help="logs on stderr as JSON lines")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logs")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="policy",
        formatter_class=_formatter,
        description="Vetted container profiles: validate them, render them, launch tests "
        "through them, audit what runs.",
        epilog="exit codes: 0 ok, 1 findings, 2 usage or engine error\n"
        "example: policy validate policies/ && policy show isolation",
    )
    parser.add_argument("--version", action="version", version=f"policy {VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "validate",
        help="check policy files: schema, inheritance, rules, guardrails, waivers",
        formatter_class=_formatter,
        description="Check policy files and report every problem as path:line:col: id: message.",
        epilog="examples:\n  policy validate\n  policy validate policies/ "
        "other/team.toml --format json\n\nexit: 0 valid, 1 problems found",
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="policy directories or files (default: ./policies)",
    )
    p.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="directory relative mount sources resolve against",
    )
    p.add_argument(
        "--format",
        type=DiagnosticsFormat,
        choices=list(DiagnosticsFormat),
        default=DiagnosticsFormat.TEXT,
        help="output format (default: text)",
    )
    p.add_argument(
        "--fail-on",
        choices=["warning", "error"],
        default="error",
        help="lowest severity that fails (default: error)",
    )
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser(
        "list",
        help="list the profiles of a policy",
        formatter_class=_formatter,
        epilog="example:\n  policy list --policies policies/",
    )
    _add_policy_args(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "show",
        help="print a profile's effective settings and digest",
        formatter_class=_formatter,
        description="Print the effective profile ([defaults], then each parent, "
        "then the profile) in canonical units, with its digest.",
        epilog="examples:\n  policy show full\n  policy show fast --format json",
    )
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--format", type=ShowFormat, choices=list(ShowFormat), default=ShowFormat.TOML)
    _add_policy_args(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser(
        "render",
        help="print a docker run line or compose file for a profile",
        formatter_class=_formatter,
        description="Render a profile as a `docker run` line (safely quoted; it "
        "runs as printed) or a compose service.",
        epilog="examples:\n  policy render isolation -- sh -c 'make test'\n"
        "  policy render full --as compose > docker-compose.test.yml\n\n"
        "The profile's timeout is enforced by `policy run`, not by docker.",
    )
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument(
        "--as",
        dest="target",
        type=RenderTarget,
        choices=list(RenderTarget),
        default=RenderTarget.DOCKER_RUN,
        help="what to render (default: docker-run)",
    )
    p.add_argument("--image", metavar="IMG", help="use this image instead of the profile's")
    _add_policy_args(p)
    p.set_defaults(func=cmd_render)

    _add_launch_commands(sub)
    _add_audit_commands(sub)

    p = sub.add_parser(
        "rules",
        help="list the built-in security rules",
        formatter_class=_formatter,
        epilog="example:\n  policy rules",
    )
    p.add_argument("--format", choices=["text", "markdown"], default="text")
    p.set_defaults(func=cmd_rules)
    return parser


def _add_launch_commands(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="launch a container through a vetted profile",
        formatter_class=_formatter,
        usage="policy run PROFILE [options] [-- CMD ...]",
        description="Create the container with exactly the profile's settings, "
        "verify what the engine created, start it only if identical, "
        "stream its output, enforce the timeout, remove it.",
        epilog="examples:\n  policy run isolation -- sh -c 'make test'\n"
        "  policy run parallel --workers 4 -- sh run-shard.sh\n"
        "  policy run full --detach -- sleep 600\n\n"
        "exit: the container's code; 124 timeout; 137 out of memory; "
        "2 refused (policy, verification, engine); 130/143 interrupted",
    )
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--image", metavar="IMG", help="use this image instead of the profile's")
    p.add_argument(
        "--detach", action="store_true", help="leave it running under the profile and print its id"
    )
    p.add_argument("--keep", action="store_true", help="do not remove the container afterwards")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=0,
        metavar="N",
        help="run N containers at once, each told SHARD_INDEX and SHARD_COUNT",
    )
    _add_policy_args(p)
    _add_log_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "shell",
        help="an interactive shell under a profile",
        formatter_class=_formatter,
        usage="policy shell PROFILE [options] [-- CMD ...]",
        epilog="examples:\n  policy shell full\n  policy shell isolation -- sh -l",
    )
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--image", metavar="IMG", help="use this image instead of the profile's")
    _add_policy_args(p)
    _add_log_args(p)
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser(
        "clean",
        help="remove the containers this engine launched",
        formatter_class=_formatter,
        description="Remove every container carrying this project's reserved "
        "labels, with its anonymous volumes, and nothing else.",
        epilog="example:\n  policy clean --dry-run",
    )
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed")
    p.set_defaults(func=cmd_clean)

    p = sub.add_parser(
        "doctor",
        help="check the engine, cgroups, seccomp, images and mounts",
        formatter_class=_formatter,
        epilog="example:\n  policy doctor isolation\n\nexit: 0 all checks pass, 1 a check fails",
    )
    p.add_argument(
        "profiles", nargs="*", metavar="PROFILE", help="profiles to check (default: all)"
    )
    _add_policy_args(p)
    p.set_defaults(func=cmd_doctor)


def _add_audit_commands(sub: Any) -> None:
    from engine.report import Format

    p = sub.add_parser(
        "audit",
        help="report drift, unmanaged and stale containers",
        formatter_class=_formatter,
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
        default=[],
        metavar="URL",
        help="engine to audit (unix://, tcp://, ssh://); repeat for many "
        "(default: DOCKER_HOST or the local socket)",
    )
    p.add_argument(
        "--fail-on",
        choices=["warning", "error"],
        default="error",
        help="lowest severity that makes the exit code 1 (default: error)",
    )
    _add_policy_args(p)
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "capture",
        help="write the TOML profile that describes a running container",
        formatter_class=_formatter,
        epilog="example:\n  policy capture my-test-container --name legacy > policies/legacy.toml",
    )
    p.add_argument("container", metavar="CONTAINER", help="container id or name")
    p.add_argument("--name", metavar="PROFILE", help="profile name (default: the container's)")
    p.add_argument("--host", metavar="URL", help="engine (default: DOCKER_HOST or local)")
    p.set_defaults(func=cmd_capture)


# ---------------------------------------------------------------------------------------------
# helpers


def _print_diagnostics(diagnostics: Sequence[Diagnostic], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for d in diagnostics:
        tag = "" if d.severity is Severity.ERROR else " (warning)"
        print(f"{d}{tag}", file=out)


def _load(
    args: argparse.Namespace, paths: list[Path] | None = None, require_valid: bool = True
) -> object:
    """Load (and by default validate) the policy; a broken policy is a usage error here."""
    from policy.loader import load_policy
    from policy.validate import validate

    try:
        policy = load_policy(paths or [args.policies], args.project)
    except PolicyError as exc:
        raise UsageError(
            "the policy does not load; run `policy validate` for details", exc.diagnostics
        ) from None
    if require_valid:
        problems = [d for d in validate(policy) if d.severity is Severity.ERROR]
        if problems:
            raise UsageError("the policy does not validate; refusing to use it", problems)
    return policy


def _profile(policy: object, name: str) -> object:
    from policy.loader import Policy
    from policy.pydantic_errors import did_you_mean

    assert isinstance(policy, Policy)
    if name not in policy.profiles:
        hint = did_you_mean(name, list(policy.profiles))
        raise UsageError(f"no profile '{name}'{hint}; `policy list` shows them")
    return policy.profiles[name]


# ---------------------------------------------------------------------------------------------
# commands


def cmd_validate(args: argparse.Namespace) -> int:
    from policy.loader import load_policy
    from policy.validate import validate

    paths = args.paths or [Path("policies")]
    try:
        policy = load_policy(paths, args.project)
        diagnostics = validate(policy)
    except PolicyError as exc:
        diagnostics = list(exc.diagnostics)
        policy = None
    fail_rank = Severity(args.fail_on).rank
    failing = [d for d in diagnostics if d.severity.rank >= fail_rank]
    if args.format is DiagnosticsFormat.JSON:
        print(
            json.dumps(
                {
                    "schema": "container-policy/validate/v1",
                    "valid": not failing,
                    "diagnostics": [
                        {
                            "path": d.location.path,
                            "line": d.location.line,
                            "col": d.location.col,
                            "id": d.code,
                            "severity": d.severity.value,
                            "profile": d.profile,
                            "message": d.message,
                        }
                        for d in diagnostics
                    ],
                },
                indent=2,
            )
        )
    elif args.format is DiagnosticsFormat.TEXT:
        _print_diagnostics(diagnostics)
    else:
        assert_never(args.format)
    if policy is not None:
        summary = f"{len(policy.profiles)} profile(s) in {len(policy.files)} file(s)"
    else:
        summary = "the policy does not load"
    verdict = "invalid" if failing else "valid"
    print(f"{verdict}: {summary}, {len(diagnostics)} problem(s)", file=sys.stderr)
    return FINDINGS if failing else OK


def cmd_list(args: argparse.Namespace) -> int:
    from policy.canonical import digest
    from policy.loader import Policy

    policy = _load(args, require_valid=False)
    assert isinstance(policy, Policy)
    width = max((len(n) for n in policy.profiles), default=4)
    for name, profile in sorted(policy.profiles.items()):
        print(
            f"{name:<{width}}  {digest(profile)[:19]}  {profile.image}  "
            f"{profile.description or ''}".rstrip()
        )
    return OK


def cmd_show(args: argparse.Namespace) -> int:
    import tomli_w

    from policy.canonical import canonical_document, digest
    from policy.model import Profile

    policy = _load(args, require_valid=False)
    profile = _profile(policy, args.profile)
    assert isinstance(profile, Profile)
    doc = canonical_document(profile)
    doc["digest"] = digest(profile)
    if args.format is ShowFormat.JSON:
        print(json.dumps(doc, indent=2, sort_keys=True))
    elif args.format is ShowFormat.TOML:
        # TOML has no null: unset settings are simply absent.
        clean = {k: v for k, v in doc.items() if v is not None and v != {} and v != []}
        print(f"# effective profile '{profile.name}' (canonical units: bytes, seconds, CPUs)")
        print(tomli_w.dumps(clean), end="")
    else:
        assert_never(args.format)
    return OK


def cmd_render(args: argparse.Namespace) -> int:
    from engine.render.translate import compose_document, docker_run_argv, to_yaml
    from policy.loader import Policy
    from policy.model import Profile

    policy = _load(args)
    assert isinstance(policy, Policy)
    profile = _profile(policy, args.profile)
    assert isinstance(profile, Profile)
    image = _checked_image(args.image)
    policy_file = policy.declared[profile.name].source.display
    if args.target is RenderTarget.DOCKER_RUN:
        argv = docker_run_argv(profile, policy.project, policy_file, args.cmd, image)
        print(shlex.join(argv))
    elif args.target is RenderTarget.COMPOSE:
        doc = compose_document(profile, policy.project, policy_file, args.cmd, image)
        print(to_yaml(doc))
    else:
        assert_never(args.target)
    if profile.timeout is not None:
        from policy.units import format_duration

        print(
            f"note: the profile's timeout ({format_duration(profile.timeout)}) is enforced by "
            "`policy run`, not by docker",
            file=sys.stderr,
        )
    return OK


def _spec(
    args: argparse.Namespace, extra_env: dict[str, str] | None = None, launch_id: str | None = None
) -> object:
    from engine.launcher.run import LaunchSpec
    from policy.loader import Policy
    from policy.model import Profile

    policy = _load(args)
    assert isinstance(policy, Policy)
    profile = _profile(policy, args.profile)
    assert isinstance(profile, Profile)
    image = _checked_image(args.image)
    spec = LaunchSpec(
        profile=profile,
        project=policy.project,
        policy_file=policy.declared[profile.name].source.display,
        command=tuple(args.cmd),
        image=image,
        env=extra_env or {},
    )
    return dataclasses.replace(spec, launch_id=launch_id) if launch_id else spec


def _checked_image(image: str | None) -> str | None:
    from policy.model import checked_image

    return None if image is None else checked_image(image, "--image")


def _write_chunk(stream: str, data: bytes) -> None:
    out = sys.stdout if stream == "stdout" else sys.stderr
    out.buffer.write(data)
    out.buffer.flush()


def cmd_run(args: argparse.Namespace) -> int:
    from loguru import logger

    from engine.history import record
    from engine.backends.docker import DockerEngine
    from engine.launcher.run import EXIT_OOM, LaunchSpec, describe_oom, detached, run

    record.configure(args.verbose, args.log_json, args.record)
    if args.workers:
        return _run_workers(args)
    spec = _spec(args)
    assert isinstance(spec, LaunchSpec)
    engine = DockerEngine()
    if args.detach:
        with detached(engine, spec, remove=False) as container:
            print(container)
        logger.info(f"running detached under '{spec.profile.name}': {container[:12]}")
        return OK
    result = run(
        engine,
        spec,
        _write_chunk,
        keep=args.keep,
        on_timeout=lambda t: logger.warning(
            f"timeout: '{spec.profile.name}' allows {units_duration(t)}; "
            f"stopping the container (SIGTERM, then SIGKILL)"
        ),
    )
    if result.timed_out:
        logger.error(f"timed out after {units_duration(result.duration)}; exit {result.exit_code}")
    elif result.exit_code == EXIT_OOM and result.oom_killed:
        logger.error(describe_oom(spec.profile))
    if args.keep:
        logger.info(f"kept container {result.container_id[:12]}")
    return result.exit_code


def units_duration(seconds: float) -> str:
    from policy.units import format_duration

    return format_duration(round(seconds, 1))


def _run_workers(args: argparse.Namespace) -> int:
    import concurrent.futures as cf
    import contextlib
    import uuid

    from loguru import logger

    from engine.backends.docker import DockerEngine
    from engine.launcher.run import LaunchSpec, RunResult, run
    from policy.errors import EngineError

    count = args.workers
    group = uuid.uuid4().hex[:10]
    base = _spec(args)  # the policy is loaded and validated once for all workers
    assert isinstance(base, LaunchSpec)
    specs = [
        dataclasses.replace(
            base,
            env={"SHARD_INDEX": str(index), "SHARD_COUNT": str(count)},
            launch_id=f"{group}-{index}",
        )
        for index in range(count)
    ]
    engine = DockerEngine()
    engine.version()  # connect (and fail clearly) once, before the workers start
    results: dict[int, RunResult | BaseException] = {}
    tty = sys.stderr.isatty()
    pool = cf.ThreadPoolExecutor(max_workers=count)
    try:
        futures = {pool.submit(run, engine, spec): i for i, spec in enumerate(specs)}
        for future in cf.as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except EngineError as exc:
                results[index] = exc
            if tty:
                print(f"\r{len(results)}/{count} workers done", end="", file=sys.stderr)
        if tty:
            print(file=sys.stderr)
    except KeyboardInterrupt:
        logger.warning(f"interrupted: stopping {count} workers")
        for spec in specs:
            with contextlib.suppress(EngineError):
                engine.remove(spec.name)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    worst = OK
    for index in range(count):
        outcome = results[index]
        if isinstance(outcome, BaseException):
            print(f"worker {index}: error: {outcome}", file=sys.stderr)
            worst = worst or USAGE
            continue
        print(
            f"worker {index}: {outcome.outcome}, exit {outcome.exit_code}, {outcome.duration:.1f}s",
            file=sys.stderr,
        )
        if outcome.exit_code != 0:
            for line in outcome.output.splitlines()[-10:]:
                print(f"  | {line}", file=sys.stderr)
            worst = worst or outcome.exit_code
    return worst


def cmd_shell(args: argparse.Namespace) -> int:
    import contextlib
    import subprocess

    from engine.history import record
    from engine.backends.docker import DockerEngine
    from engine.launcher.run import LaunchSpec, create_verified
    from policy.errors import EngineError

    record.configure(args.verbose, args.log_json, args.record)
    if not args.cmd:
        args.cmd = ["/bin/sh"]
    spec = _spec(args)
    assert isinstance(spec, LaunchSpec)
    engine = DockerEngine()
    container = create_verified(engine, spec, tty=sys.stdin.isatty())
    try:
        # The docker CLI owns the terminal (raw mode, resizes); it gets an argv, never a shell.
        interactive = ["-ai"] if sys.stdin.isatty() else ["-a"]
        done = subprocess.run(["docker", "start", *interactive, container], check=False)
        return done.returncode
    finally:
        with contextlib.suppress(EngineError):
            engine.remove(container)


def cmd_clean(args: argparse.Namespace) -> int:
    from engine import labels
    from engine.backends.docker import DockerEngine

    engine = DockerEngine()
    found = engine.containers({"label": labels.PROFILE})
    for c in found:
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        profile = (c.get("Labels") or {}).get(labels.PROFILE, "?")
        verb = "would remove" if args.dry_run else "removed"
        if not args.dry_run:
            engine.remove(c["Id"])
        print(f"{verb} {c['Id'][:12]} {name} (profile {profile}, {c.get('State', '?')})")
    print(
        f"{len(found)} container(s) {'to remove' if args.dry_run else 'removed'}", file=sys.stderr
    )
    return OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from engine.launcher.doctor import run_checks
    from policy.loader import Policy

    policy = _load(args, require_valid=False)
    assert isinstance(policy, Policy)
    names = args.profiles or sorted(policy.profiles)
    for name in names:
        _profile(policy, name)
    failed = 0
    for check in run_checks(policy, names):
        print(f"{'ok  ' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
        if not check.ok:
            failed += 1
            print(f"      fix: {check.fix}")
    print(f"{failed} check(s) failed" if failed else "all checks passed", file=sys.stderr)
    return FINDINGS if failed else OK


def _write_output(path: Path | None, text: str) -> None:
    """Stdout, or `path` written atomically: a failed run never leaves half a report."""
    if path is None:
        print(text)
        return
    import os
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
        raise UsageError(f"--output {path}: {exc.strerror or exc}") from None


def cmd_audit(args: argparse.Namespace) -> int:
    from engine.audit.auditor import Auditor, parse_filters
    from engine.backends.docker import DockerEngine
    from engine.report import Format, formatter
    from policy.loader import Policy

    filters = parse_filters(args.filter)
    if args.output is not None and not args.output.parent.is_dir():
        raise UsageError(f"--output {args.output}: directory {args.output.parent} does not exist")
    policy = _load(args, require_valid=False)
    assert isinstance(policy, Policy)
    engines = [DockerEngine(url) for url in args.host] or [DockerEngine()]
    auditor = Auditor(policy, deep=args.deep)
    threshold = Severity(args.fail_on)
    if args.watch:
        from engine.audit.watch import watch

        if args.output is not None:
            raise UsageError("--watch prints findings as they come; it cannot write --output")
        return watch(auditor, engines, filters, args.format is Format.JSON, threshold)
    report = auditor.audit(engines, filters)
    if len(engines) == 1 and report.host_findings:
        # One engine and it is unreachable: that is an engine error, not a finding.
        raise EngineError(report.host_findings[0].message)
    color = args.output is None and sys.stdout.isatty()
    _write_output(args.output, formatter(args.format, color=color).render(report))
    failing = report.failing(threshold)
    print(
        f"audit: {len(report.containers)} container(s), {len(report.findings)} finding(s), "
        f"{len(failing)} at or above {threshold.value}",
        file=sys.stderr,
    )
    return FINDINGS if failing else OK


def cmd_capture(args: argparse.Namespace) -> int:
    from engine.render.toml import capture_toml
    from engine.backends.docker import DockerEngine

    engine = DockerEngine(args.host)
    inspect = engine.inspect_if_exists(args.container)
    if inspect is None:
        raise UsageError(f"no container {args.container!r} on {engine.name}")
    image = engine.inspect_image(inspect["Image"]).get("Config") or {}
    print(capture_toml(inspect, image, args.name), end="")
    return OK


def cmd_rules(args: argparse.Namespace) -> int:
    from policy.rules import RULES

    if args.format == "markdown":
        print("| id | severity | title | CIS Docker Benchmark | Pod Security Standards | fix |")
        print("|---|---|---|---|---|---|")
        for r in RULES:
            print(
                f"| `{r.id}` | {r.severity} | {r.title} | {r.cis or '-'} | {r.pss or '-'} "
                f"| {r.help} |"
            )
    else:
        for r in RULES:
            refs = ", ".join(x for x in (f"CIS {r.cis}" if r.cis else "", r.pss or "") if x)
            print(f"{r.id:<20} {r.severity:<8} {r.title}" + (f"  [{refs}]" if refs else ""))
    return OK


_terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends a run like Ctrl-C does: the container is stopped and removed."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    # Everything after the first `--` is the container's command, never an option of ours
    # (argparse mishandles `--` after a subcommand's optional arguments).
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(argv)
        args.cmd = command
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return USAGE
        code: int = args.func(args)
        return code
    except Error as exc:
        # Line by line: some messages are several lines on purpose (a verification report).
        message = "\n".join(printable(line) for line in exc.message.split("\n"))
        print(f"policy: error: {message}", file=sys.stderr)
        _print_diagnostics(exc.diagnostics, sys.stderr)
        return exc.exit_code if not isinstance(exc, PolicyError) else FINDINGS
    except KeyboardInterrupt:
        launched = args is not None and args.func in (cmd_run, cmd_shell)
        print(
            "policy: interrupted" + ("; the container was stopped and removed" if launched else ""),
            file=sys.stderr,
        )
        return 143 if _terminated else 130
    except BrokenPipeError:
        return OK


if __name__ == "__main__":
    raise SystemExit(main())
