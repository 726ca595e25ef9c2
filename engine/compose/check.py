"""`policy check`: compose files judged as the audit judges containers, without an engine.

Every service is read (`engine.compose.service`), judged by the built-in rules and guardrails
(`policy.evaluate`, waivers of the profile it names applied), and, when it names a profile,
compared field by field with what that profile renders to (`engine.audit.drift.diff`, the
comparison launch verification and the audit use). Findings are the audit's, in its formats,
located at the compose key's `file:line:col`.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import replace
from pathlib import Path

from engine.audit.drift import diff
from engine.audit.findings import AuditReport, ContainerReport, Finding, Kind
from engine.compose.project import Project, Service, load
from engine.compose.service import Read, read_service
from engine.render.interface import render
from engine.render.settings import ExpectedSettings, Settings
from engine.render.walk import walk
from policy.diagnostics import Location, Severity, printable
from policy.evaluate import evaluate
from policy.loader import Policy
from policy.model import Profile

# Compose key (or key path) each setting is read from, to locate a drift finding.
SOURCE = {
    "network": ("network_mode",), "capabilities": ("cap_add",),
    "no_new_privileges": ("security_opt",), "seccomp": ("security_opt",),
    "memory": ("mem_limit",), "pids_limit": ("pids_limit",), "env": ("environment",),
    "workdir": ("working_dir",), "mounts": ("volumes",), "apparmor": ("security_opt",),
    "selinux": ("security_opt",), "userns": ("userns_mode",),
}  # fmt: skip
DEPLOY = {"memory": "memory", "cpus": "cpus", "pids_limit": "pids"}


def _where(s: Service, field: str) -> Location:
    path: tuple[str, ...] = SOURCE.get(field, (field,))
    if path[0] not in s.data and field in DEPLOY:
        path = ("deploy", "resources", "limits", DEPLOY[field])
    if field == "capabilities" and "cap_add" not in s.data:
        path = ("cap_drop",)
    return s.at(*path)


def _rules(read: Read, s: Service, policy: Policy, host: str) -> list[Finding]:
    today = dt.date.today()
    waived = {
        w.rule
        for w in policy.waivers
        if read.profile_name is not None and w.profile == read.profile_name and w.expires >= today
    }
    out = []
    for v in evaluate(read.profile, policy, declared=False):
        if v.rule in waived:
            continue
        key = str(v.key[0]) if v.key else ""
        out.append(
            Finding(
                Kind.UNMANAGED, v.rule, v.severity, f"service {s.name}: {v.message}", host,
                name=s.name, profile=read.profile_name, field=key or None,
                location=_where(s, key) if key else s.header,
            )
        )  # fmt: skip
    return out


def _drift(read: Read, s: Service, policy: Policy, host: str) -> list[Finding]:
    name = read.profile_name
    assert name is not None
    if name not in policy.profiles:
        return [Finding.error(Kind.UNKNOWN_PROFILE, f"service {s.name} names profile '{name}', "
                              "which the policy does not have", host=host, name=s.name,
                              profile=name, location=s.header)]  # fmt: skip
    digest = policy.digest(name)
    expected = _expected(policy, name)
    # A setting this reader does not take from compose is one the service leaves at the
    # engine's default (a key it sets but cannot be read is a `not-in-profile` finding).
    defaults = _defaults(policy, expected["image"])
    actual = {**{k: defaults.get(k) for k in expected if k not in read.settings}, **read.settings}
    out = [
        Finding.error(
            Kind.DRIFT, f"{d.field}: profile has {d.expected!r}, service has {d.actual!r}",
            host=host, name=s.name, profile=name, field=d.field, expected=d.expected,
            actual=d.actual, location=_where(s, d.field),
        )
        for d in diff(expected, actual)
    ]  # fmt: skip
    from engine.labels import DIGEST

    label = (s.data.get("labels") or {}).get(DIGEST)
    if label is not None and label != digest:
        out.append(Finding(Kind.STALE, Kind.STALE.value, Severity.WARNING,
                           f"service {s.name} carries digest {label}, profile '{name}' is now "
                           f"{digest}", host, name=s.name, profile=name,
                           location=s.at("labels", DIGEST)))  # fmt: skip
    return out


def _expected(policy: Policy, name: str) -> Settings:
    """The settings a container of profile `name` must have (`engine.render.settings`)."""
    profile, digest = policy.profiles[name], policy.digest(name)
    return render(ExpectedSettings(None), walk(profile, policy.project, digest=digest)).value


def _defaults(policy: Policy, image: str) -> Settings:
    """The settings of a profile that declares nothing but its image."""
    bare = Profile(name="defaults", image=image)
    return render(ExpectedSettings(None), walk(bare, policy.project)).value


def check(files: list[Path], policy: Policy, env: dict[str, str] | None = None) -> AuditReport:
    """Every finding about the services of `files` merged, one `ContainerReport` per service."""
    project = load(files, env)
    host = ",".join(str(f) for f in files)
    report = AuditReport(hosts=[host])
    report.host_findings = [
        Finding(
            Kind.COMPOSE, f"compose/{p.code}", Severity.ERROR, p.message, host, location=p.location
        )
        for p in project.problems
    ]
    shell = dict(os.environ) if env is None else env
    for s in project.services.values():
        report.containers.append(_service(project, s, policy, host, shell))
    return _printable(report)


def _printable(report: AuditReport) -> AuditReport:
    """Every text a compose file put in the report with control, bidirectional and invisible
    characters escaped: a hostile key or service name cannot forge or reorder an output line
    (nor make the JUnit XML invalid)."""

    def clean(f: Finding) -> Finding:
        return replace(f, message=printable(f.message), name=printable(f.name),
                       profile=None if f.profile is None else printable(f.profile))  # fmt: skip

    report.host_findings = [clean(f) for f in report.host_findings]
    for c in report.containers:
        c.name, c.image = printable(c.name), printable(c.image)
        c.profile = None if c.profile is None else printable(c.profile)
        c.findings = [clean(f) for f in c.findings]
    return report


def _service(
    project: Project, s: Service, policy: Policy, host: str, env: dict[str, str]
) -> ContainerReport:
    read = read_service(s, project.directory, env)
    compared: frozenset[str] | None = None
    if read.profile_name is not None:
        compared = frozenset()
    if read.profile_name in policy.profiles:
        # Only what this reader takes from compose can be compared; the rest stays a finding.
        compared = frozenset(_expected(policy, read.profile_name)) & read.settings.keys()
    findings = [
        Finding(Kind.COMPOSE, f"compose/{n.code}", Severity.ERROR,
                f"service {s.name}: {n.message}", host, name=s.name,
                profile=read.profile_name, field=n.field, location=n.location)
        for n in read.all_notes(compared)
    ]  # fmt: skip
    findings += _rules(read, s, policy, host)
    if read.profile_name is not None:
        findings += _drift(read, s, policy, host)
    findings.sort(key=lambda f: (f.location.line, f.location.col) if f.location else (0, 0))
    return ContainerReport(host, "", s.name, read.settings["image"], read.profile_name, findings)
