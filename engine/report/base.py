"""The interface every audit report format implements."""

from __future__ import annotations

from typing import Protocol

from engine.audit.findings import AuditReport, Finding, Kind
from policy.rules import RULES_BY_ID


class Formatter(Protocol):
    def render(self, report: AuditReport) -> str:
        """The whole report as text, ready to print or write to a file."""
        ...


def rule_title(finding: Finding) -> str:
    rule = RULES_BY_ID.get(finding.rule)
    return rule.title if rule else finding.kind.value


def rule_help(rule_id: str) -> str:
    rule = RULES_BY_ID.get(rule_id)
    if rule is not None:
        return rule.help
    from engine.audit.findings import COMPOSE_HELP

    if rule_id in COMPOSE_HELP:
        return COMPOSE_HELP[rule_id]
    try:
        from engine.audit.findings import KIND_HELP

        return KIND_HELP[Kind(rule_id)]
    except ValueError:
        return "An organisation guardrail (see the guardrail file)."
