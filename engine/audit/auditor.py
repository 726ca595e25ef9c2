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
from collections.abc import Callable
from typing import Any

from engine import labels as L
from engine.audit.drift import Drift, diff
from engine.audit.findings import AuditReport, ContainerReport, Finding, Kind
from engine.audit.observe import observed_settings
from engine.backends.interface import ContainerInspect, DocumentError, Engine, ImageConfig
from engine.backends.kinds.docker import DOCKER
from engine.backends.kinds.interface import EngineKind
from engine.render.interface import render
from engine.render.settings import ExpectedSettings, Settings
from engine.render.walk import walk
from policy.canonical import SOURCE_KEY
from policy.diagnostics import Location, Severity
from policy.errors import EngineError
from policy.loader import Policy

INSPECT_WORKERS = 16
# Environment the launcher itself adds (parallel workers), accepted when numeric.
LAUNCHER_ENV = ("SHARD_INDEX", "SHARD_COUNT")


class Auditor:
    """Audits the containers of one or more engines against one policy."""

    def __init__(self, policy: Policy, deep: bool = False, today: dt.date | None = None) -> None:
        self.policy = policy
        self.deep = deep
        self.today = today or dt.date.today()
        self._digests = {name: policy.digest(name) for name in policy.profiles}
        self._waivers = {(w.profile, w.rule) for w in policy.waivers if w.expires > self.today}
        self._rule_location = Location(policy.files[0]) if policy.files else Location("policies")
        self._expected: dict[tuple[Any, ...], dict[str, Any]] = {}

    # -- many hosts -----------------------------------------------------------------------------

    def audit(self, engines: list[Engine], filters: dict[str, Any] | None = None) -> AuditReport:
        report = AuditReport(hosts=[e.name for e in engines])
        with cf.ThreadPoolExecutor(max_workers=max(1, len(engines))) as pool:
            futures = {pool.submit(self.audit_host, e, filters): e for e in engines}
            for future in cf.as_completed(futures):
                engine = futures[future]
                try:
                    report.containers.extend(future.result())
                except EngineError as exc:
                    report.host_findings.append(
                        Finding.error(
                            Kind.HOST_UNREACHABLE,
                            exc.message,
                            host=engine.name,
                        )
                    )
        report.containers.sort(key=lambda c: (c.host, c.name, c.id))
        return report

    # -- one host ---------------------------------------------------------------------------------

    def audit_host(
        self, engine: Engine, filters: dict[str, Any] | None = None
    ) -> list[ContainerReport]:
        listed = engine.containers(filters or {}, all=False)
        images = ImageConfigs(engine)
        kind = engine.kind()

        def one(container_id: str) -> ContainerReport | None:
            try:
                inspect = engine.inspect_if_exists(container_id)
            except DocumentError as exc:
                return _unreadable(engine.name, container_id, exc)
            if inspect is None:
                return None
            return self.evaluate(
                engine.name, inspect, images.config(inspect.image), kind, engine.network_scope
            )

        with cf.ThreadPoolExecutor(max_workers=INSPECT_WORKERS) as pool:
            results = pool.map(one, [c.id for c in listed])
            return [r for r in results if r is not None]

    def evaluate(
        self,
        host: str,
        inspect: ContainerInspect,
        image: ImageConfig,
        kind: EngineKind = DOCKER,
        scope: Callable[[str], str] | None = None,
    ) -> ContainerReport:
        """`audit_container`, but a container that cannot be evaluated becomes a finding of its
        own instead of ending the audit of every other container."""
        try:
            return self.audit_container(host, inspect, image, kind, scope)
        except Exception as exc:
            return _unreadable(host, inspect.id, exc, _report(host, inspect))

    # -- one container ----------------------------------------------------------------------------

    def audit_container(
        self,
        host: str,
        inspect: ContainerInspect,
        image: ImageConfig,
        kind: EngineKind = DOCKER,
        scope: Callable[[str], str] | None = None,
    ) -> ContainerReport:
        """The findings of one container; `kind` is its engine's (`Engine.kind`), whose own
        harmless spellings are read back before the comparison; `scope` its `network_scope`,
        for a Swarm task's container (`swarm_task.py`)."""
        labels = inspect.labels
        report = _report(host, inspect)
        name = report.name
        base = {"host": host, "container": inspect.id, "name": name}
        profile_name = labels.get(L.PROFILE)
        if profile_name is None:
            report.findings = self._unmanaged(inspect, image, base)
            return report
        if profile_name not in self.policy.profiles:
            report.findings = [
                Finding.error(
                    Kind.UNKNOWN_PROFILE,
                    f"labelled with profile '{profile_name}', which the policy does not have",
                    profile=profile_name,
                    location=self._rule_location,
                    **base,
                )
            ]
            return report
        observed = observed_settings(inspect, image)
        expected = self._expected_for(profile_name, inspect, image, observed)
        in_kernel = expected
        daemon_wide: tuple[str, ...] = ()
        if L.SWARM_TASK in labels:
            from engine.audit.swarm_task import as_task

            profile = self.policy.profiles[profile_name]
            expected, observed = as_task(profile, inspect, expected, observed, scope)
            # The node's daemon gives the process no-new-privileges: the kernel proves it.
            in_kernel = {**expected, "no_new_privileges": profile.no_new_privileges}
            daemon_wide = ("no_new_privileges",)
        observed = kind.observed(observed, expected, inspect)
        drifts = diff(expected, observed)
        findings: list[Finding] = []
        if labels.get(L.DIGEST) != self._digests[profile_name]:
            findings.append(self._stale(profile_name, str(labels.get(L.DIGEST)), drifts, base))
            # Labels are only a claim: whatever they say, what runs must meet the rules. (Two
            # hand-set labels must not turn a privileged container into a mere warning.)
            findings.extend(self._rule_findings(inspect, image, base, profile_name))
        else:
            findings.extend(self._drift(profile_name, d, base) for d in drifts)
        if self.deep:
            findings.extend(self._kernel(inspect, in_kernel, profile_name, base, kind, daemon_wide))
        report.findings = [f for f in findings if (f.profile, f.rule) not in self._waivers]
        return report

    def _expected_for(
        self, profile_name: str, inspect: ContainerInspect, image: ImageConfig, observed: Settings
    ) -> Settings:
        """What a container of `profile_name` must have, with the shard env a worker got."""
        profile = self.policy.profiles[profile_name]
        env = observed["env"]
        extra_env = {k: env[k] for k in LAUNCHER_ENV if str(env.get(k, "x")).isdigit()}
        if extra_env:
            profile = profile.model_copy(update={"env": {**profile.env, **extra_env}})
        # Containers of one profile and image share their expected settings (which resolve
        # mount sources on disk): computed once per audit, not once per container.
        override = inspect.labels.get(L.IMAGE)
        memo = (profile_name, inspect.image, tuple(sorted(extra_env.items())), override)
        expected = self._expected.get(memo)
        if expected is None:
            walked = walk(profile, self.policy.project, image=override)
            expected = render(ExpectedSettings(image), walked).value
            self._expected[memo] = expected
        return expected

    def _stale(
        self, profile: str, launched: str, drifts: list[Drift], base: dict[str, Any]
    ) -> Finding:
        changed = ", ".join(d.field for d in drifts) or "no field this container shows"
        return Finding(
            Kind.STALE,
            Kind.STALE.value,
            Severity.WARNING,
            f"launched under an older version of profile '{profile}' (digest "
            f"{launched[:19]}, now {self._digests[profile][:19]}); differs in: {changed}",
            profile=profile,
            location=self.policy.where(profile),
            **base,
        )

    def _drift(self, profile: str, d: Drift, base: dict[str, Any]) -> Finding:
        message = f"{d.field}: expected {_show(d.expected)}, found {_show(d.actual)}"
        where = self.policy.where(profile, (SOURCE_KEY.get(d.field, d.field),))
        return _differs(Kind.DRIFT, message, profile, d, where, base)

    def _kernel(
        self,
        inspect: ContainerInspect,
        expected: dict[str, Any],
        profile: str,
        base: dict[str, Any],
        kind: EngineKind,
        daemon_wide: tuple[str, ...] = (),
    ) -> list[Finding]:
        """The kernel's view against `expected`; a setting in `daemon_wide` that the node's
        daemon turns on for every container is not drift where the profile leaves it off."""
        from engine.audit.deep import compare_kernel, kernel_view, owned_by

        # Only where this machine's /proc shows the container's own process: proven from the
        # process's cgroup, not guessed from the engine's URL.
        pid = inspect.state.pid
        if pid <= 0 or not owned_by(pid, inspect.id):
            return []
        where = self.policy.where(profile)
        view = kernel_view(pid)
        return [
            _differs(
                Kind.KERNEL,
                f"kernel {field}: expected {_show(want)}, the kernel has {_show(got)}",
                profile,
                Drift(field, want, got),
                where,
                base,
            )
            for field, want, got in compare_kernel(expected, view) + kind.kernel(expected, view)
            if not (field in daemon_wide and not want)
        ]

    def _unmanaged(
        self, inspect: ContainerInspect, image: ImageConfig, base: dict[str, Any]
    ) -> list[Finding]:
        return self._rule_findings(inspect, image, base, None)

    def _rule_findings(
        self,
        inspect: ContainerInspect,
        image: ImageConfig,
        base: dict[str, Any],
        declared: str | None,
    ) -> list[Finding]:
        """The security rules and guardrails applied to a container as it is (one evaluation,
        `policy.evaluate`, shared with `policy validate`). Imported here: an audit of managed
        containers only never pays for the rules, the guardrails or the capture."""
        from engine.audit.as_profile import profile_from_inspect
        from policy.evaluate import evaluate

        profile = profile_from_inspect(inspect, image)
        # The rules only a running container answers (a note on its health check) are for one
        # started by hand; one launched through a profile, even an older one, is a test
        # container whose profile says whether it has a check.
        running = declared is None
        return [
            Finding(
                Kind.UNMANAGED,
                v.rule,
                v.severity,
                f"{v.title}: {v.message}",
                location=v.guardrail.source.at(("guardrails", v.guardrail.id))
                if v.guardrail
                else self._rule_location,
                profile=declared,
                **base,
            )
            for v in evaluate(profile, self.policy, declared=False, running=running)
        ]


class ImageConfigs:
    """Image configs of one engine, each inspected once per audit (many threads share it)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._configs: dict[str, ImageConfig] = {}
        self._lock = threading.Lock()

    def config(self, image_id: str) -> ImageConfig:
        with self._lock:
            cached = self._configs.get(image_id)
        if cached is None:
            try:
                cached = self.engine.inspect_image(image_id).config
            except EngineError:
                cached = ImageConfig()  # image removed since: compare without its defaults
            with self._lock:
                self._configs[image_id] = cached
        return cached


def _report(host: str, inspect: ContainerInspect) -> ContainerReport:
    """A container's report, before any finding."""
    return ContainerReport(
        host=host,
        id=inspect.id,
        name=inspect.short_name,
        image=inspect.config.image or "",
        profile=inspect.labels.get(L.PROFILE),
    )


def _unreadable(
    host: str, container: str, exc: Exception, report: ContainerReport | None = None
) -> ContainerReport:
    """A container that could not be evaluated: reported as such, never skipped."""
    report = report or ContainerReport(host, container, "", "", None)
    reason = exc.message if isinstance(exc, DocumentError) else f"{type(exc).__name__}: {exc}"
    report.findings = [
        Finding.error(
            Kind.AUDIT_ERROR,
            f"could not be evaluated: {reason}",
            host=host,
            container=report.id,
            name=report.name,
            profile=report.profile,
        )
    ]
    return report


def _differs(
    kind: Kind, message: str, profile: str, d: Drift, where: Location, base: dict[str, Any]
) -> Finding:
    """A field whose value is not the profile's (in the engine's view, or the kernel's)."""
    return Finding.error(
        kind,
        message,
        profile=profile,
        field=d.field,
        expected=d.expected,
        actual=d.actual,
        location=where,
        **base,
    )


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
