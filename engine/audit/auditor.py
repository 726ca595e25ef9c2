"""`policy audit`: compare what runs with what was declared.

Per container: the profile named by the reserved labels; the container's inspect document in
canonical form; then drift (a field differs), stale (launched under an older digest of the
profile), unknown-profile, or, without labels, unmanaged (the security rules and guardrails
applied to the container as it is). Inspects run concurrently over kept-alive connections, so an
audit costs about what the raw inspects cost. A container that disappears mid-audit is skipped.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from engine import labels as L
from engine.render.toml import profile_from_inspect
from engine.audit.deep import compare_kernel, kernel_view
from engine.backends.docker import DockerEngine
from engine.audit.drift import diff, expected_settings
from engine.audit.findings import AuditReport, ContainerReport, Finding, Kind
from engine.audit.observe import observed_settings
from policy.canonical import SOURCE_KEY, canonical_document, digest
from policy.diagnostics import Location, Severity
from policy.errors import EngineError
from policy.loader import Policy
from policy.model import Profile
from policy.rules import RULES, Context

INSPECT_WORKERS = 16
# Environment the launcher itself adds (parallel workers), accepted when numeric.
LAUNCHER_ENV = ("SHARD_INDEX", "SHARD_COUNT")


class Auditor:
    """Audits the containers of one or more engines against one policy."""

    def __init__(self, policy: Policy, deep: bool = False, today: dt.date | None = None) -> None:
        self.policy = policy
        self.deep = deep
        self.today = today or dt.date.today()
        self._digests = {name: digest(p) for name, p in policy.profiles.items()}
        self._waivers = {(w.profile, w.rule) for w in policy.waivers if w.expires > self.today}
        self._rule_location = Location(policy.files[0]) if policy.files else Location("policies")
        self._expected: dict[tuple[Any, ...], dict[str, Any]] = {}

    # -- many hosts -----------------------------------------------------------------------------

    def audit(
        self, engines: list[DockerEngine], filters: dict[str, Any] | None = None
    ) -> AuditReport:
        report = AuditReport(hosts=[e.name for e in engines])
        with cf.ThreadPoolExecutor(max_workers=max(1, len(engines))) as pool:
            futures = {pool.submit(self.audit_host, e, filters): e for e in engines}
            for future in cf.as_completed(futures):
                engine = futures[future]
                try:
                    report.containers.extend(future.result())
                except EngineError as exc:
                    report.host_findings.append(
                        Finding(
                            Kind.HOST_UNREACHABLE,
                            Kind.HOST_UNREACHABLE.value,
                            Severity.ERROR,
                            exc.message,
                            host=engine.name,
                        )
                    )
        report.containers.sort(key=lambda c: (c.host, c.name, c.id))
        return report

    # -- one host ---------------------------------------------------------------------------------

    def audit_host(
        self, engine: DockerEngine, filters: dict[str, Any] | None = None
    ) -> list[ContainerReport]:
        listed = engine.containers(filters or {}, all=False)
        images: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()

        def one(container_id: str) -> ContainerReport | None:
            inspect = engine.inspect_if_exists(container_id)
            if inspect is None:
                return None
            image_id = inspect.get("Image") or ""
            with lock:
                cached = images.get(image_id)
            if cached is None:
                try:
                    cached = engine.inspect_image(image_id).get("Config") or {}
                except EngineError:
                    cached = {}  # image removed since: compare without its defaults
                with lock:
                    images[image_id] = cached
            return self.evaluate(engine.name, inspect, cached, local=self.is_local(engine))

        with cf.ThreadPoolExecutor(max_workers=INSPECT_WORKERS) as pool:
            results = pool.map(one, [c["Id"] for c in listed])
            return [r for r in results if r is not None]

    @staticmethod
    def is_local(engine: DockerEngine) -> bool:
        """Whether /proc on this machine shows the engine's containers (for `--deep`)."""
        return engine.url is None or engine.url.startswith("unix://")

    def evaluate(
        self, host: str, inspect: dict[str, Any], image: dict[str, Any], local: bool = True
    ) -> ContainerReport:
        """`audit_container`, but a container that cannot be evaluated becomes a finding of its
        own instead of ending the audit of every other container."""
        try:
            return self.audit_container(host, inspect, image, local)
        except Exception as exc:
            report = _report(host, inspect)
            report.findings = [
                Finding(
                    Kind.AUDIT_ERROR,
                    Kind.AUDIT_ERROR.value,
                    Severity.ERROR,
                    f"could not be evaluated: {type(exc).__name__}: {exc}",
                    host=host,
                    container=report.id,
                    name=report.name,
                    profile=report.profile,
                )
            ]
            return report

    # -- one container ----------------------------------------------------------------------------

    def audit_container(
        self, host: str, inspect: dict[str, Any], image: dict[str, Any], local: bool = True
    ) -> ContainerReport:
        labels = (inspect.get("Config") or {}).get("Labels") or {}
        report = _report(host, inspect)
        name = report.name
        base = {"host": host, "container": inspect["Id"], "name": name}
        profile_name = labels.get(L.PROFILE)
        if profile_name is None:
            report.findings = self._unmanaged(inspect, image, base)
            return report
        if profile_name not in self.policy.profiles:
            report.findings = [
                Finding(
                    Kind.UNKNOWN_PROFILE,
                    Kind.UNKNOWN_PROFILE.value,
                    Severity.ERROR,
                    f"labelled with profile '{profile_name}', which the policy does not have",
                    profile=profile_name,
                    location=self._rule_location,
                    **base,
                )
            ]
            return report
        profile = self.policy.profiles[profile_name]
        observed = observed_settings(inspect, image)
        extra_env = {
            k: observed["env"][k]
            for k in LAUNCHER_ENV
            if str(observed["env"].get(k, "x")).isdigit()
        }
        if extra_env:
            profile = profile.model_copy(update={"env": {**profile.env, **extra_env}})
        # Containers of one profile and image share their expected settings (which resolve
        # mount sources on disk): computed once per audit, not once per container.
        memo = (
            profile_name,
            inspect.get("Image"),
            tuple(sorted(extra_env.items())),
            labels.get(L.IMAGE),
        )
        expected = self._expected.get(memo)
        if expected is None:
            expected = expected_settings(profile, self.policy.project, image, labels.get(L.IMAGE))
            self._expected[memo] = expected
        drifts = diff(expected, observed)
        findings: list[Finding] = []
        if labels.get(L.DIGEST) != self._digests[profile_name]:
            changed = ", ".join(d.field for d in drifts) or "no field this container shows"
            findings.append(
                Finding(
                    Kind.STALE,
                    Kind.STALE.value,
                    Severity.WARNING,
                    f"launched under an older version of profile '{profile_name}' (digest "
                    f"{str(labels.get(L.DIGEST))[:19]}, now {self._digests[profile_name][:19]}); "
                    f"differs in: {changed}",
                    profile=profile_name,
                    location=self.policy.where(profile_name),
                    **base,
                )
            )
            # Labels are only a claim: whatever they say, what runs must meet the rules. (Two
            # hand-set labels must not turn a privileged container into a mere warning.)
            findings.extend(
                self._rule_findings(profile_from_inspect(inspect, image), base, profile_name)
            )
        else:
            for d in drifts:
                key = SOURCE_KEY.get(d.field, d.field)
                findings.append(
                    Finding(
                        Kind.DRIFT,
                        Kind.DRIFT.value,
                        Severity.ERROR,
                        f"{d.field}: expected {_show(d.expected)}, found {_show(d.actual)}",
                        profile=profile_name,
                        field=d.field,
                        expected=d.expected,
                        actual=d.actual,
                        location=self.policy.where(profile_name, (key,)),
                        **base,
                    )
                )
        if self.deep:
            findings.extend(self._kernel(inspect, expected, profile_name, local, base))
        report.findings = [f for f in findings if (f.profile, f.rule) not in self._waivers]
        return report

    def _kernel(
        self,
        inspect: dict[str, Any],
        expected: dict[str, Any],
        profile: str,
        local: bool,
        base: dict[str, Any],
    ) -> list[Finding]:
        pid = (inspect.get("State") or {}).get("Pid") or 0
        if not local or pid <= 0 or not Path(f"/proc/{pid}").exists():
            return []
        return [
            Finding(
                Kind.KERNEL,
                Kind.KERNEL.value,
                Severity.ERROR,
                f"kernel {field}: expected {_show(want)}, the kernel has {_show(got)}",
                profile=profile,
                field=field,
                expected=want,
                actual=got,
                location=self.policy.where(profile),
                **base,
            )
            for field, want, got in compare_kernel(expected, kernel_view(pid))
        ]

    def _unmanaged(
        self, inspect: dict[str, Any], image: dict[str, Any], base: dict[str, Any]
    ) -> list[Finding]:
        return self._rule_findings(profile_from_inspect(inspect, image), base, None)

    def _rule_findings(
        self, profile: Profile, base: dict[str, Any], declared: str | None
    ) -> list[Finding]:
        """The security rules and guardrails applied to a container as it is."""
        ctx = Context(self.policy.project)
        findings = [
            Finding(
                Kind.UNMANAGED,
                rule.id,
                rule.severity,
                f"{rule.title}: {v.message}",
                location=self._rule_location,
                profile=declared,
                **base,
            )
            for rule in RULES
            for v in rule.check(profile, ctx)
            if rule.id != "no-timeout"  # a running container has no declared timeout
        ]
        document = canonical_document(profile)
        for guardrails in self.policy.guardrails:
            for g in guardrails.items:
                for message in g.check(document):
                    findings.append(
                        Finding(
                            Kind.UNMANAGED,
                            g.rule_id,
                            g.severity,
                            f"{g.description}: {message}",
                            location=g.source.at(("guardrails", g.id)),
                            profile=declared,
                            **base,
                        )
                    )
        return findings


def _report(host: str, inspect: dict[str, Any]) -> ContainerReport:
    """A container's report, before any finding."""
    config = inspect.get("Config") or {}
    return ContainerReport(
        host=host,
        id=str(inspect.get("Id")),
        name=(inspect.get("Name") or "").lstrip("/"),
        image=config.get("Image") or "",
        profile=(config.get("Labels") or {}).get(L.PROFILE),
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def parse_filters(items: Iterable[str]) -> dict[str, list[str]]:
    """`KEY=VALUE` strings in `docker ps --filter` syntax, as the Engine API wants them."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            from policy.errors import UsageError

            raise UsageError(f"--filter {item!r}: expected KEY=VALUE, for example label=team=ci")
        out.setdefault(key, []).append(value)
    return out
