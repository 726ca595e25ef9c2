"""Audit findings: what `policy audit` reports, independent of the output format."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from policy.diagnostics import Location, Severity


class Kind(enum.StrEnum):
    """What a finding is about; each kind is also a SARIF rule (with the rule id for unmanaged)."""

    DRIFT = "drift"
    UNMANAGED = "unmanaged"
    UNKNOWN_PROFILE = "unknown-profile"
    STALE = "stale"
    KERNEL = "kernel"  # --deep: the kernel's view differs from the profile
    HOST_UNREACHABLE = "host-unreachable"
    AUDIT_ERROR = "audit-error"  # one container could not be evaluated; the audit goes on
    COMPOSE = "compose"  # `policy check`: a compose key not understood, unset, or not a setting


KIND_HELP = {
    Kind.DRIFT: "A setting of a running container differs from its declared profile.",
    Kind.UNMANAGED: "A container started outside any profile breaks a security rule or guardrail.",
    Kind.UNKNOWN_PROFILE: "A container names a profile the policy no longer has.",
    Kind.STALE: "A container was launched under an older version of its profile.",
    Kind.KERNEL: "The kernel's view of a container (/proc, cgroups) differs from its profile.",
    Kind.HOST_UNREACHABLE: "An engine to audit could not be reached.",
    Kind.AUDIT_ERROR: "A container could not be evaluated; it is reported, never skipped.",
    Kind.COMPOSE: "A compose key is not understood, not set, or says what no profile can.",
}

# `policy check`'s own findings about a compose file, `compose/<code>`.
COMPOSE_HELP = {
    "compose/unknown-key": "A compose key the tool does not understand: it is not judged, and "
    "nothing is assumed about it. Remove it, or bring it under a profile by hand.",
    "compose/not-in-profile": "A compose key sets something no profile has (its default is "
    "none), so no profile matches the service.",
    "compose/unset-variable": "A variable the file interpolates is not set and has no default.",
    "compose/bad-value": "A compose value that cannot be read.",
    "compose/conflict": "The service says one thing twice, differently.",
    "compose/bad-extends": "An `extends` that names no service, or a cycle.",
    "compose/duplicate-key": "A mapping key written twice (YAML keeps the last, silently).",
    "compose/bad-merge": "A YAML merge key (`<<`) that names no mapping.",
}


@dataclass(frozen=True)
class Finding:
    """One problem with one container (or one host)."""

    kind: Kind
    rule: str  # a stable id: the kind, or the security rule / guardrail id for unmanaged
    severity: Severity
    message: str
    host: str
    container: str = ""  # id
    name: str = ""
    profile: str | None = None
    field: str | None = None
    expected: Any = None
    actual: Any = None
    location: Location | None = None  # where the profile (or rule) is declared

    @classmethod
    def error(cls, kind: Kind, message: str, **about: Any) -> Finding:
        """An error whose rule id is its kind (every kind but unmanaged, whose id is the rule's)."""
        return cls(kind, kind.value, Severity.ERROR, message, **about)


@dataclass
class ContainerReport:
    """Everything found about one container, including that nothing was found."""

    host: str
    id: str
    name: str
    image: str
    profile: str | None
    findings: list[Finding] = field(default_factory=list)


@dataclass
class AuditReport:
    """The result of one audit over one or more hosts."""

    containers: list[ContainerReport] = field(default_factory=list)
    host_findings: list[Finding] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:
        return [f for c in self.containers for f in c.findings] + self.host_findings

    def failing(self, threshold: Severity) -> list[Finding]:
        return [f for f in self.findings if f.severity.rank >= threshold.rank]
