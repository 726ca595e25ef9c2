"""`policy validate`, `list`, `show`, `render`, `rules`: the policy on its own, no engine needed
(except that `render` names the paths a rendered line will mount)."""

from __future__ import annotations

import argparse
import enum
import json
import shlex
import sys
from pathlib import Path
from typing import Any, assert_never

from engine.cli.common import (
    FINDINGS,
    OK,
    Subparsers,
    add_cache_arg,
    add_command,
    add_policy_args,
    checked_image,
    load,
    policy_cache,
    print_diagnostics,
)
from policy.diagnostics import Diagnostic, Severity
from policy.errors import UsageError


class DiagnosticsFormat(enum.StrEnum):
    TEXT = "text"
    JSON = "json"


class ShowFormat(enum.StrEnum):
    TOML = "toml"
    JSON = "json"


class RenderTarget(enum.StrEnum):
    DOCKER_RUN = "docker-run"
    COMPOSE = "compose"
    KUBERNETES = "kubernetes"


def register(sub: Subparsers) -> None:
    _add_validate(sub)
    p = add_command(
        sub, "list", help="list the profiles of a policy", epilog="example:\n  policy list"
    )
    add_policy_args(p)
    p.set_defaults(func=cmd_list)
    p = add_command(
        sub,
        "show",
        help="print a profile's effective settings and digest",
        description="Print the effective profile ([defaults], then each parent, "
        "then the profile) in canonical units, with its digest.",
        epilog="examples:\n  policy show full\n  policy show fast --format json",
    )
    p.add_argument("profile", metavar="PROFILE")
    p.add_argument("--format", type=ShowFormat, choices=list(ShowFormat), default=ShowFormat.TOML)
    add_policy_args(p)
    p.set_defaults(func=cmd_show)
    _add_render(sub)
    p = add_command(
        sub, "rules", help="list the built-in security rules", epilog="example:\n  policy rules"
    )
    p.add_argument("--format", choices=["text", "markdown"], default="text")
    p.set_defaults(func=cmd_rules)


# -- validate ---------------------------------------------------------------------------------


def _add_validate(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "validate",
        help="check policy files: schema, inheritance, rules, guardrails, waivers",
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
    add_cache_arg(p)
    p.set_defaults(func=cmd_validate)


def _diagnostics_json(diagnostics: list[Diagnostic], valid: bool) -> str:
    return json.dumps(
        {
            "schema": "container-policy/validate/v1",
            "valid": valid,
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


def cmd_validate(args: argparse.Namespace) -> int:
    from policy.vetted import check

    checked = check(args.paths, args.project, policy_cache(args))
    diagnostics, summary = checked.diagnostics, checked.summary
    fail_rank = Severity(args.fail_on).rank
    failing = [d for d in diagnostics if d.severity.rank >= fail_rank]
    if args.format is DiagnosticsFormat.JSON:
        print(_diagnostics_json(diagnostics, not failing))
    elif args.format is DiagnosticsFormat.TEXT:
        print_diagnostics(diagnostics)
    else:
        assert_never(args.format)
    verdict = "invalid" if failing else "valid"
    print(f"{verdict}: {summary}, {len(diagnostics)} problem(s)", file=sys.stderr)
    return FINDINGS if failing else OK


# -- list, show, rules ------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from policy.canonical import digest

    policy = load(args, require_valid=False)
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

    profile = load(args, require_valid=False).profile(args.profile)
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


# -- render -----------------------------------------------------------------------------------


def _add_render(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "render",
        help="print a docker run line, a compose file or a Kubernetes Job for profiles",
        description="Render a profile as a `docker run` line (safely quoted; it runs as "
        "printed), profiles as one compose file (a service each) or as Kubernetes Jobs. A "
        "setting the target cannot express is refused by name, never dropped.",
        epilog="examples:\n  policy render isolation -- sh -c 'make test'\n"
        "  policy render --all --as compose > docker-compose.test.yml\n"
        "  policy render isolation --as kubernetes --pss restricted | kubectl apply -f -\n\n"
        "The profile's timeout is enforced by `policy run`, not by docker (a Job's "
        "activeDeadlineSeconds on Kubernetes).",
    )
    p.add_argument("profiles", nargs="*", metavar="PROFILE")
    p.add_argument("--all", action="store_true", help="every profile of the policy")
    p.add_argument(
        "--as",
        dest="target",
        type=RenderTarget,
        choices=list(RenderTarget),
        default=RenderTarget.DOCKER_RUN,
        help="what to render (default: docker-run)",
    )
    p.add_argument(
        "--pss",
        choices=["baseline", "restricted"],
        help="with --as kubernetes: refuse a Job that fails a control of this Pod Security "
        "Standards level (default: the level the profile's kubernetes.level claims)",
    )
    p.add_argument("--image", metavar="IMG", help="use this image instead of the profile's")
    add_policy_args(p)
    p.set_defaults(func=cmd_render)


def _rendered(target: RenderTarget, walked: list[Any], pss: str | None) -> tuple[str, list[str]]:
    from engine.render.interface import Unexpressible, render

    if target is RenderTarget.DOCKER_RUN:
        from engine.render.docker_run import DockerRun

        if len(walked) != 1:
            raise UsageError("--as docker-run renders one profile; use --as compose for several")
        argv = render(DockerRun(), walked[0])
        return shlex.join(argv.value), list(argv.notes)
    refused: list[str] = []
    notes: list[str] = []
    if target is RenderTarget.COMPOSE:
        from engine.render.compose import Compose
        from engine.render.yaml import to_yaml

        services: dict[str, Any] = {}
        for w in walked:
            try:
                doc = render(Compose(), w)
            except Unexpressible as exc:
                refused.append(exc.message)
                continue
            services.update(doc.value["services"])
            notes.extend(f"{w.profile.name}: {n}" if len(walked) > 1 else n for n in doc.notes)
        _refuse(refused)
        return to_yaml({"version": "2.4", "services": services}), notes
    if target is RenderTarget.KUBERNETES:
        from engine.render.kubernetes import kubernetes_manifests, to_text

        manifests: list[Any] = []
        for w in walked:
            try:
                manifests += kubernetes_manifests(w, pss)
            except Unexpressible as exc:
                refused.append(exc.message)
        _refuse(refused)
        names = [f"{m['kind']}/{m['metadata']['name']}" for m in manifests]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:  # kubectl apply would keep only the last of each
            raise UsageError(f"profiles render to the same Kubernetes names: {', '.join(clashes)}")
        return to_text(manifests).rstrip("\n"), notes
    assert_never(target)


def _refuse(refused: list[str]) -> None:
    if refused:
        raise UsageError("\n".join(refused) + "\nnothing was rendered")


def cmd_render(args: argparse.Namespace) -> int:
    from engine.launcher.mounts import missing_writable_sources
    from engine.render.walk import walk

    policy = load(args)
    if args.all == bool(args.profiles):
        raise UsageError(
            "render: name the profiles to render, or give --all (see `policy render --help`)"
        )
    if args.pss is not None and args.target is not RenderTarget.KUBERNETES:
        raise UsageError("--pss judges Kubernetes manifests: use it with --as kubernetes")
    names = sorted(policy.profiles) if args.all else list(dict.fromkeys(args.profiles))
    profiles = [policy.profile(name) for name in names]
    walked = [
        walk(
            profile,
            policy.project,
            policy.declared[profile.name].source.display,
            command=tuple(args.cmd),
            image=checked_image(args.image),
            digest=policy.digest(profile.name),
        )
        for profile in profiles
    ]
    text, notes = _rendered(args.target, walked, args.pss)
    print(text)
    for note in dict.fromkeys(notes):
        print(f"note: {note}", file=sys.stderr)
    if args.target is RenderTarget.KUBERNETES:
        return OK  # no host path is mounted on a cluster
    for path in {
        p for profile in profiles for p in missing_writable_sources(profile, policy.project)
    }:
        # docker would refuse the line: "bind source path does not exist" (exit 125).
        print(
            f"note: writable mount source {path} does not exist yet; create it first "
            f"(mkdir -p {shlex.quote(str(path))}), or use `policy run`, which does",
            file=sys.stderr,
        )
    return OK
