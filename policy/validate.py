"""Validation of a loaded policy: built-in rules and guardrails, then waivers.

Returns diagnostics rather than printing or exiting: the CLI decides what they mean for the exit
code. Waivers are checked as strictly as rules: an expired waiver, one for an unknown profile or
rule, or one that matches nothing is itself an error, so stale exceptions do not pile up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from policy.diagnostics import Diagnostic, Severity
from policy.evaluate import evaluate
from policy.loader import Policy
from policy.policy_file import Waiver
from policy.pydantic_errors import did_you_mean
from policy.rules import RULES


@dataclass(frozen=True)
class _Pending:
    """A finding not yet located: locating needs the file's key positions, which are only
    scanned for files that end up with something to report (waived findings never are)."""

    policy: Policy
    profile: str
    code: str
    message: str
    severity: Severity
    key: tuple[str | int, ...]

    def located(self) -> Diagnostic:
        return Diagnostic(
            self.policy.where(self.profile, self.key),
            self.code,
            self.message,
            self.severity,
            profile=self.profile,
        )


def _pending_findings(policy: Policy) -> list[_Pending]:
    out: list[_Pending] = []
    for name, profile in policy.profiles.items():
        for v in evaluate(profile, policy):
            text = f"{v.message} ({v.title})" if v.guardrail else v.message
            out.append(
                _Pending(policy, name, v.rule, f"profile '{name}': {text}", v.severity, v.key)
            )
    return out


def rule_findings(policy: Policy) -> list[Diagnostic]:
    """Every built-in rule and guardrail violation of every profile, before waivers."""
    return [p.located() for p in _pending_findings(policy)]


def known_rule_ids(policy: Policy) -> list[str]:
    return [r.id for r in RULES] + [g.rule_id for gs in policy.guardrails for g in gs.items]


_F = TypeVar("_F", Diagnostic, _Pending)


def apply_waivers(
    findings: Iterable[_F],
    waivers: list[Waiver],
    profiles: Iterable[str],
    rule_ids: list[str],
    today: dt.date,
) -> tuple[list[_F], list[Diagnostic]]:
    """(findings no live waiver covers, problems with the waivers themselves)."""
    names = list(profiles)
    live: dict[tuple[str, str], Waiver] = {}
    problems: list[Diagnostic] = []
    for w in waivers:
        problem = _waiver_problem(w, names, rule_ids, today, live)
        if problem is None:
            live[(w.profile, w.rule)] = w
        else:
            problems.append(problem)
    used: set[tuple[str, str]] = set()
    remaining: list[_F] = []
    for finding in findings:
        key = (finding.profile or "", finding.code)
        if key in live:
            used.add(key)
        else:
            remaining.append(finding)
    for key, w in live.items():
        if key not in used:
            problems.append(
                Diagnostic(
                    w.origin.location,
                    "waiver-unused",
                    f"waiver for '{w.rule}' on profile '{w.profile}' matches no finding; remove it",
                    profile=w.profile,
                )
            )
    return remaining, problems


def _waiver_problem(
    w: Waiver,
    profiles: list[str],
    rule_ids: list[str],
    today: dt.date,
    live: dict[tuple[str, str], Waiver],
) -> Diagnostic | None:
    """What is wrong with `w` (the first thing, in this order), or None when it is live."""
    if w.profile not in profiles:
        return _unknown(w, "profile", w.profile, profiles)
    if w.rule not in rule_ids:
        return _unknown(w, "rule", w.rule, rule_ids)
    if w.expires <= today:
        return Diagnostic(
            w.origin.at("expires"),
            "waiver-expired",
            f"waiver for '{w.rule}' on profile '{w.profile}' expired "
            f"on {w.expires.isoformat()}; renew it with a new reason "
            "or fix the profile",
            profile=w.profile,
        )
    if (w.profile, w.rule) in live:
        first = live[(w.profile, w.rule)].origin.location
        return Diagnostic(
            w.origin.location,
            "waiver-duplicate",
            f"waiver for '{w.rule}' on profile '{w.profile}' repeats the one at {first}; keep one",
            profile=w.profile,
        )
    return None


def _unknown(w: Waiver, key: str, name: str, known: list[str]) -> Diagnostic:
    """A waiver naming a profile or rule (`key`) that does not exist."""
    return Diagnostic(
        w.origin.at(key),
        f"waiver-unknown-{key}",
        f"waiver for unknown {key} '{name}'{did_you_mean(name, known)}",
    )


def validate(policy: Policy, today: dt.date | None = None) -> list[Diagnostic]:
    """All unwaived findings and waiver problems of a loaded policy, sorted by location."""
    today = today or dt.date.today()
    remaining, problems = apply_waivers(
        _pending_findings(policy), policy.waivers, policy.profiles, known_rule_ids(policy), today
    )
    return sorted([p.located() for p in remaining] + problems, key=Diagnostic.sort_key)
