"""`policy audit --swarm`: the swarm's services against their profiles, and their tasks' containers.

A service launched through a profile (it carries the reserved labels) is rendered again from that
profile, as `policy run --swarm` rendered it, and the stored spec is compared both ways: a key
sent and changed or dropped, and a key the spec has that was never sent (`docker service update
--cap-add` after the launch). Each running task's container is compared on its own node's engine
with the comparison `policy run --swarm` verifies with (and the kernel's view where the node is
on this machine). A service started outside any profile is described as a profile and judged by
the rules and guardrails, as an unmanaged container is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import labels as L
from engine.audit.drift import Drift
from engine.audit.findings import AuditReport, ContainerReport, Finding, Kind
from engine.backends.interface import Engine
from engine.backends.swarm import ServiceDoc, SwarmEngine
from engine.launcher import swarm_verify as sv
from engine.launcher.spec import LaunchSpec
from engine.render.interface import Unexpressible
from engine.render.swarm import service_spec
from policy.diagnostics import Location, Severity
from policy.errors import EngineError
from policy.loader import Policy
from policy.model import Profile

SHARD_ENV = ("SHARD_INDEX", "SHARD_COUNT")


def _launch_of(service: ServiceDoc, profile: Profile, policy: Policy) -> LaunchSpec:
    """The launch that created `service`, as far as its labels and spec tell."""
    labels = service.labels
    container = service.spec.get("TaskTemplate", {}).get("ContainerSpec", {})
    env = dict(e.partition("=")[::2] for e in container.get("Env") or [])
    return LaunchSpec(
        profile=profile,
        project=Path(labels.get(L.PROJECT) or policy.project),
        policy_file=labels.get(L.POLICY, ""),
        command=tuple(container.get("Args") or ()),
        image=labels.get(L.IMAGE),
        env={k: env[k] for k in SHARD_ENV if env.get(k, "x").isdigit()},
        launch_id=labels.get(L.LAUNCH_ID, ""),
        digest=labels.get(L.DIGEST),
    )


def _finding(kind: Kind, d: Drift, base: dict[str, Any], where: Location | None) -> Finding:
    return Finding.error(
        kind,
        f"{d.field}: expected {d.expected!r}, found {d.actual!r}",
        field=d.field,
        expected=d.expected,
        actual=d.actual,
        location=where,
        **base,
    )


def _managed(
    manager: SwarmEngine, engines: dict[str, Engine], policy: Policy, service: ServiceDoc
) -> list[ContainerReport]:
    name = service.labels[L.PROFILE]
    image = str(service.spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""))
    report = ContainerReport(manager.name, service.id, f"service {service.name}", image, name)
    base = {"host": manager.name, "container": service.id, "name": report.name, "profile": name}
    if name not in policy.profiles:
        report.findings.append(
            Finding.error(
                Kind.UNKNOWN_PROFILE,
                f"names profile '{name}', which the policy does not have",
                **base,
            )
        )
        return [report]
    spec = _launch_of(service, policy.profiles[name], policy)
    where = policy.where(name)
    if service.labels.get(L.DIGEST) != policy.digest(name):
        report.findings.append(
            Finding(
                Kind.STALE,
                Kind.STALE.value,
                Severity.WARNING,
                f"launched under an older version of profile '{name}'",
                location=where,
                **base,
            )
        )
    try:
        sent = service_spec(spec.walked, service.name, 1, None)
    except Unexpressible as exc:
        report.findings.append(Finding.error(Kind.AUDIT_ERROR, exc.message, **base))
        return [report]
    networks = service.spec.get("TaskTemplate", {}).get("Networks")
    if networks is not None:
        sent["TaskTemplate"]["Networks"] = networks  # the job's own, checked on each task
    drifts = sv.spec_drift(sent, service.spec)
    report.findings += [_finding(Kind.DRIFT, d, base, where) for d in drifts]
    return [report, *_tasks(manager, engines, service, spec, networks, where)]


def _network_name(manager: SwarmEngine, networks: Any) -> str | None:
    if not networks:
        return None
    target = str(networks[0].get("Target", ""))
    found = manager.networks({"id": target})
    return str(found[0]["Name"]) if found else target


def _tasks(
    manager: SwarmEngine,
    engines: dict[str, Engine],
    service: ServiceDoc,
    spec: LaunchSpec,
    networks: Any,
    where: Location | None,
) -> list[ContainerReport]:
    network = _network_name(manager, networks)
    out = []
    for task in manager.tasks({"service": service.id}):
        container = task.status.container.container_id
        if task.ended or not container:
            continue
        name = f"task {service.name}.{task.slot} on {(task.node_id or '?')[:12]}"
        report = ContainerReport(
            manager.name, container, name, spec.walked.image, spec.profile.name
        )
        base = {"host": manager.name, "container": container, "name": name,
                "profile": spec.profile.name}  # fmt: skip
        engine = engines.get(task.node_id or "")
        if engine is None:
            report.findings.append(
                Finding.error(
                    Kind.HOST_UNREACHABLE,
                    f"node {task.node_id}: its engine is not "
                    "given (--swarm-node unix://PATH); its task is not checked",
                    **base,
                )
            )
        else:
            try:
                drifts, _ = sv.task_drift(engine, task, spec, network)
            except EngineError as exc:
                drifts, report.findings = [], [Finding.error(Kind.AUDIT_ERROR, exc.message, **base)]
            report.findings += [
                _finding(Kind.KERNEL if "(kernel)" in d.field else Kind.DRIFT, d, base, where)
                for d in drifts
            ]
        out.append(report)
    return out


def _as_profile(service: ServiceDoc) -> Profile:
    """An unmanaged service described as a profile (what its containers get from the spec)."""
    template = service.spec.get("TaskTemplate", {})
    c = template.get("ContainerSpec", {})
    limits = template.get("Resources", {}).get("Limits", {})
    cpus = limits.get("NanoCPUs")
    return Profile(
        name=service.name or service.id[:12],
        image=str(c.get("Image", "unknown")).split("@")[0],
        user=c.get("User") or None,
        read_only=bool(c.get("ReadOnly")),
        network="bridge",
        cap_add=tuple(sorted(x.removeprefix("CAP_") for x in c.get("CapabilityAdd") or [])),
        cap_drop=tuple(sorted(x.removeprefix("CAP_") for x in c.get("CapabilityDrop") or [])),
        pids_limit=limits.get("Pids") or None,
        memory=limits.get("MemoryBytes") or None,
        cpus=None if not cpus else round(cpus / 1e9, 3),
    )


def _unmanaged(manager: SwarmEngine, policy: Policy, service: ServiceDoc) -> ContainerReport:
    from policy.evaluate import evaluate

    profile = _as_profile(service)
    report = ContainerReport(
        manager.name, service.id, f"service {service.name}", profile.image, None
    )
    location = Location(policy.files[0]) if policy.files else Location("policies")
    for v in evaluate(profile, policy, declared=False):
        report.findings.append(
            Finding(
                Kind.UNMANAGED,
                v.rule,
                v.severity,
                f"{v.title}: {v.message}",
                host=manager.name,
                container=service.id,
                name=report.name,
                location=v.guardrail.source.at(("guardrails", v.guardrail.id))
                if v.guardrail
                else location,
            )
        )
    return report


def audit(manager: SwarmEngine, engines: dict[str, Engine], policy: Policy) -> AuditReport:
    """Every service of the swarm, and the running tasks of those launched through profiles."""
    report = AuditReport(hosts=[manager.name])
    for service in manager.services({}):
        if L.PROFILE in service.labels:
            report.containers += _managed(manager, engines, policy, service)
        else:
            report.containers.append(_unmanaged(manager, policy, service))
    report.containers.sort(key=lambda c: (c.name, c.id))
    return report
