"""Human report: findings grouped per container, severity coloured on a TTY, a summary line."""

from __future__ import annotations

from engine.audit.findings import AuditReport, Finding
from policy.diagnostics import Severity

_COLORS = {"error": "\033[31m", "warning": "\033[33m", "note": "\033[36m"}
_RESET = "\033[0m"


class TableFormat:
    """See `Formatter.render`."""

    def __init__(self, color: bool = False, locations: bool = False) -> None:
        self.color = color
        self.locations = locations  # `policy check`: each finding at its file:line:col

    def _sev(self, f: Finding) -> str:
        text = f"{f.severity.value:<7}"
        return f"{_COLORS[f.severity.value]}{text}{_RESET}" if self.color else text

    def render(self, report: AuditReport) -> str:
        lines: list[str] = []
        for f in report.host_findings:
            where = f"{f.location}" if self.locations and f.location else f.host
            lines.append(f"{where}: {self._sev(f)} {f.rule}: {f.message}")
        for c in report.containers:
            if not c.findings:
                continue
            profile = f"profile {c.profile}" if c.profile else "unmanaged"
            ident = f"{c.id[:12]}, " if c.id else ""
            lines.append(f"{c.name} ({ident}{c.image}, {profile}) on {c.host}")
            for f in c.findings:
                where = f"{f.location}: " if self.locations and f.location else ""
                lines.append(f"  {where}{self._sev(f)} {f.rule:<18} {f.message}")
        # A note is not a weakness: a container with only notes is still clean.
        clean = sum(1 for c in report.containers if not _above_notes(c.findings))
        findings = report.findings
        errors = sum(f.severity is Severity.ERROR for f in findings)
        notes = sum(f.severity is Severity.NOTE for f in findings)
        where = (
            f"in {len(report.hosts)} file set(s)"
            if self.locations
            else f"on {len(report.hosts)} host(s)"
        )
        things = "service(s)" if self.locations else "container(s)"
        lines.append(
            f"{len(report.containers)} {things} {where}: "
            f"{clean} clean, {errors} error(s), {len(findings) - errors - notes} warning(s)"
            + (f", {notes} note(s)" if notes else "")
        )
        return "\n".join(lines)


def _above_notes(findings: list[Finding]) -> bool:
    return any(f.severity is not Severity.NOTE for f in findings)
