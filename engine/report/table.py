"""Human report: findings grouped per container, severity coloured on a TTY, a summary line."""

from __future__ import annotations

from engine.audit.findings import AuditReport, Finding

_COLORS = {"error": "\033[31m", "warning": "\033[33m"}
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
        clean = sum(1 for c in report.containers if not c.findings)
        findings = report.findings
        errors = sum(f.severity.value == "error" for f in findings)
        where = (
            f"in {len(report.hosts)} file set(s)"
            if self.locations
            else f"on {len(report.hosts)} host(s)"
        )
        things = "service(s)" if self.locations else "container(s)"
        lines.append(
            f"{len(report.containers)} {things} {where}: "
            f"{clean} clean, {errors} error(s), {len(findings) - errors} warning(s)"
        )
        return "\n".join(lines)
