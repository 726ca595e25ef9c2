"""SARIF 2.1.0 for code scanning: each result located where its profile (or rule) is declared."""

from __future__ import annotations

import json
from typing import Any

from engine.audit.findings import AuditReport, Finding, Kind
from engine.report.base import rule_help
from policy.rules import RULES, RULES_BY_ID

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "note": "note"}


def _rule(rule_id: str, level: str) -> dict[str, Any]:
    rule = RULES_BY_ID.get(rule_id)
    name = rule.title if rule else rule_id
    out: dict[str, Any] = {
        "id": rule_id,
        "name": "".join(w.capitalize() for w in name.replace("/", " ").replace("-", " ").split()),
        "shortDescription": {"text": name},
        "help": {"text": rule_help(rule_id)},
        "defaultConfiguration": {"level": level},
    }
    if rule is not None and (rule.cis or rule.pss):
        out["properties"] = {"cis": rule.cis, "pss": rule.pss}
    return out


class SarifFormat:
    """See `Formatter.render`."""

    def render(self, report: AuditReport) -> str:
        rules = [_rule(k.value, "warning" if k is Kind.STALE else "error") for k in Kind]
        rules += [_rule(r.id, r.severity.value) for r in RULES]
        known = {r["id"] for r in rules}
        for f in report.findings:
            if f.rule not in known:
                rules.append(_rule(f.rule, f.severity.value))
                known.add(f.rule)
        index = {r["id"]: i for i, r in enumerate(rules)}
        doc = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "container-policy",
                            "version": "0.1.0",
                            "informationUri": "https://example.invalid/container-policy",
                            "rules": rules,
                        }
                    },
                    "results": [self._result(f, index[f.rule]) for f in report.findings],
                }
            ],
        }
        return json.dumps(doc, indent=2, default=str)

    @staticmethod
    def _result(f: Finding, rule_index: int) -> dict[str, Any]:
        where = f"{f.name or f.container[:12]} on {f.host}" if f.container else f.host
        result: dict[str, Any] = {
            "ruleId": f.rule,
            "ruleIndex": rule_index,
            "level": _LEVEL[f.severity.value],
            "message": {"text": f"{where}: {f.message}"},
            "properties": {
                "host": f.host,
                "container": f.container,
                "profile": f.profile,
                "kind": f.kind.value,
            },
        }
        location: dict[str, Any] = {}
        if f.location is not None:
            location["physicalLocation"] = {
                "artifactLocation": {"uri": f.location.path},
                "region": {"startLine": f.location.line, "startColumn": f.location.col},
            }
        if f.container:
            location["logicalLocations"] = [
                {
                    "name": f.name or f.container,
                    "kind": "resource",
                    "fullyQualifiedName": f"{f.host}/{f.container}",
                }
            ]
        if location:
            result["locations"] = [location]
        return result
