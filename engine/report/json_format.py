"""JSON report, schema `container-policy/audit/v1` (documented in docs/audit-json.md)."""

from __future__ import annotations

import json
from typing import Any

from engine.audit.findings import AuditReport, Finding

SCHEMA = "container-policy/audit/v1"


def finding_dict(f: Finding) -> dict[str, Any]:
    return {
        "kind": f.kind.value,
        "rule": f.rule,
        "severity": f.severity.value,
        "message": f.message,
        "host": f.host,
        "container": f.container or None,
        "name": f.name or None,
        "profile": f.profile,
        "field": f.field,
        "expected": f.expected,
        "actual": f.actual,
        "location": None
        if f.location is None
        else {"path": f.location.path, "line": f.location.line, "col": f.location.col},
    }


class JsonFormat:
    """See `Formatter.render`."""

    def render(self, report: AuditReport) -> str:
        findings = report.findings
        doc = {
            "schema": SCHEMA,
            "hosts": report.hosts,
            "summary": {
                "containers": len(report.containers),
                "findings": len(findings),
                "errors": sum(f.severity.value == "error" for f in findings),
                "warnings": sum(f.severity.value == "warning" for f in findings),
                "notes": sum(f.severity.value == "note" for f in findings),
            },
            "containers": [
                {
                    "host": c.host,
                    "id": c.id,
                    "name": c.name,
                    "image": c.image,
                    "profile": c.profile,
                    "findings": [finding_dict(f) for f in c.findings],
                }
                for c in report.containers
            ],
            "host_findings": [finding_dict(f) for f in report.host_findings],
        }
        return json.dumps(doc, indent=2, default=str)
