"""The one evaluation of a profile: built-in rules, then the organisation's guardrails.

`policy validate` judges declared profiles with it, and `policy audit` judges running containers
(described as profiles) with it; each only words and locates the verdicts for its own output.
Waivers are applied by the caller: validation also reports problems with the waivers themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from policy.canonical import SOURCE_KEY, canonical_document
from policy.diagnostics import Severity
from policy.guardrails import Guardrail
from policy.loader import Policy
from policy.model import Profile
from policy.rules import RULES, Context


@dataclass(frozen=True)
class Verdict:
    """One rule or guardrail that `profile` breaks, and the profile key that breaks it."""

    rule: str
    severity: Severity
    message: str
    key: tuple[str | int, ...]
    title: str  # the rule's title, or the guardrail's description
    guardrail: Guardrail | None = None


def evaluate(
    profile: Profile, policy: Policy, *, declared: bool = True, running: bool = False
) -> Iterator[Verdict]:
    """Every violation of `profile`; `declared=False` for what is not a declaration (a running
    container, a compose service), which skips the rules that judge only declarations, and
    `running=True` for a running container, which adds the rules only it can answer."""
    ctx = Context(policy.project)
    for rule in RULES:
        if (rule.declared_only and not declared) or (rule.running_only and not running):
            continue
        for violation in rule.check(profile, ctx):
            yield Verdict(rule.id, rule.severity, violation.message, violation.key, rule.title)
    document = canonical_document(profile)
    for guardrails in policy.guardrails:
        for g in guardrails.items:
            key = SOURCE_KEY.get(g.field, g.field)
            for message in g.check(document):
                yield Verdict(g.rule_id, g.severity, message, (key,), g.description, g)
