"""Organisation guardrails: rules in cerberus' vocabulary over the canonical profile document.

A guardrail file (`guardrails.toml` or `*.guardrails.toml` in the policy directory) holds:

    version = 1
    [guardrails.house-uid]
    description = "Test containers run as a regular user"
    field = "uid"
    rules = { required = true, min = 1000 }

`rules` is a cerberus rule set for that one field of the document `canonical_document` builds.
Sizes and durations may be written as in profiles (`max = "4g"`): they are normalised first.
Each guardrail is checked as a cerberus schema when loaded, so a typo in a rule is a located
error, not a rule that silently never fires.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from policy import units
from policy.diagnostics import Diagnostic, Severity
from policy.model import Profile
from policy.pydantic_errors import did_you_mean, validated
from policy.source import SourceFile

# The canonical fields a guardrail may name (see `policy.canonical.canonical_document`).
FIELDS = tuple(sorted([*Profile.model_fields, "uid", "gid", "capabilities"]))
_SIZE_FIELDS = frozenset({"memory"})
_LOCAL = threading.local()
_DURATION_FIELDS = frozenset({"timeout"})


def is_guardrail_file(path: Path) -> bool:
    return path.name == "guardrails.toml" or path.name.endswith(".guardrails.toml")


class GuardrailInput(BaseModel):
    """One `[guardrails.ID]` table."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    description: Annotated[str, Field(min_length=1)]
    field: str
    rules: Annotated[dict[str, Any], Field(min_length=1)]
    severity: Literal["error", "warning"] = "error"


class GuardrailFileInput(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)

    version: Literal[1]
    guardrails: dict[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,63}$")], dict[str, Any]]


@dataclass(frozen=True)
class Guardrail:
    """A loaded guardrail: a cerberus schema for one field, with its id and origin."""

    id: str
    description: str
    field: str
    schema: dict[str, Any]
    severity: Severity
    source: SourceFile

    def _validator(self) -> Any:
        """One cerberus validator per guardrail and thread (building one costs far more than
        using it; validators keep per-call state, so threads do not share them)."""
        cached = getattr(_LOCAL, "validators", None)
        if cached is None:
            cached = _LOCAL.validators = {}
        key = id(self)
        if key not in cached:
            from cerberus import Validator  # only when a guardrail judges something

            cached[key] = (self, Validator({self.field: self.schema}, allow_unknown=True))
        return cached[key][1]

    @property
    def rule_id(self) -> str:
        return f"guardrail/{self.id}"

    def check(self, document: dict[str, Any]) -> list[str]:
        """Messages for each way `document` breaks this guardrail (empty when it holds)."""
        value = document.get(self.field)
        # Many profiles share a value (inherited from one parent): judge each value once.
        memo = getattr(_LOCAL, "memo", None)
        if memo is None:
            memo = _LOCAL.memo = {}
        key = (id(self), json.dumps(value, sort_keys=True, default=str))
        if key in memo and memo[key][0] is self:
            return list(memo[key][1])
        memo[key] = (self, self._judge(value))
        return list(memo[key][1])

    def _judge(self, value: Any) -> tuple[str, ...]:
        validator = self._validator()
        # Only the guarded field: cerberus then does no work for the rest of the document, and
        # no normalisation (the document is canonical already).
        if validator.validate({} if value is None else {self.field: value}, normalize=False):
            return ()
        return tuple(
            f"{self.field} = {_show(value)}: {_flatten(m)}"
            for m in validator.errors.get(self.field, [])
        )


@dataclass(frozen=True)
class Guardrails:
    """The guardrails of one file."""

    source: SourceFile
    items: tuple[Guardrail, ...]


def _normalise_rules(field: str, rules: dict[str, Any]) -> dict[str, Any]:
    parse = (
        units.parse_size
        if field in _SIZE_FIELDS
        else units.parse_duration
        if field in _DURATION_FIELDS
        else None
    )
    if parse is None:
        return dict(rules)
    return {
        k: parse(v) if k in ("min", "max") and isinstance(v, str) else v for k, v in rules.items()
    }


def load_guardrails(source: SourceFile) -> Guardrails | list[Diagnostic]:
    """Validate a guardrail file (including every cerberus rule in it) and load it."""
    problems: list[Diagnostic] = []
    file = validated(GuardrailFileInput, source.data, source, (), problems)
    if file is None:
        return problems
    items: list[Guardrail] = []
    for gid, raw in file.guardrails.items():
        item = _load_guardrail(gid, raw, source, problems)
        if item is not None:
            items.append(item)
    if not file.guardrails:
        problems.append(
            Diagnostic(
                source.at(("guardrails",)),
                "no-guardrails",
                "guardrail file declares no guardrails; an empty rule set "
                "would pass everything, so it is refused",
            )
        )
    return problems or Guardrails(source, tuple(items))


def _load_guardrail(
    gid: str, raw: dict[str, Any], source: SourceFile, problems: list[Diagnostic]
) -> Guardrail | None:
    """The guardrail `[guardrails.<gid>]`, or None with what is wrong with it reported."""
    keypath: tuple[str | int, ...] = ("guardrails", gid)
    spec = validated(GuardrailInput, raw, source, keypath, problems)
    if spec is None:
        return None
    if spec.field not in FIELDS:
        problems.append(
            Diagnostic(
                source.at((*keypath, "field")),
                "unknown-field",
                f"guardrail {gid}: no canonical field '{spec.field}'"
                f"{did_you_mean(spec.field, FIELDS)}",
            )
        )
        return None
    try:
        schema = _normalise_rules(spec.field, spec.rules)
    except units.UnitError as exc:
        problems.append(
            Diagnostic(source.at((*keypath, "rules")), "bad-value", f"guardrail {gid}: {exc}")
        )
        return None
    before = len(problems)
    bounds = _check_bounds(spec.field, schema)
    if bounds is not None:
        problems.append(
            Diagnostic(
                source.at((*keypath, "rules")), "bad-guardrail", f"guardrail {gid}: {bounds}"
            )
        )
    _check_rules(gid, spec.field, schema, source, problems)
    if len(problems) > before:
        return None
    return Guardrail(gid, spec.description, spec.field, schema, Severity(spec.severity), source)


def _check_rules(
    gid: str, field: str, schema: dict[str, Any], source: SourceFile, problems: list[Diagnostic]
) -> None:
    """Report each rule of `schema` that cerberus refuses, or whose regex is bad or may hang."""
    from cerberus import SchemaError, Validator

    for rule, value in schema.items():
        try:
            Validator({field: {rule: value}})
            # Cerberus compiles patterns only when it validates: check them now.
            _check_patterns({rule: value})
        except (SchemaError, re.error) as exc:
            why = _flatten(exc.args[0]) if isinstance(exc, SchemaError) else f"regex: {exc}"
            problems.append(
                Diagnostic(
                    source.at(("guardrails", gid, "rules", rule)),
                    "bad-guardrail",
                    f"guardrail {gid}: rule {rule} = {_show(value)} is not a "
                    f"valid cerberus rule: {why}",
                )
            )


def _can_backtrack(pattern: str) -> bool:
    """Whether `pattern` repeats (more than once) something that itself repeats or branches:
    the shape of every catastrophic-backtracking regex. Conservative: some safe patterns, such
    as `([a-z]+/)*`, are refused too, which costs a rewrite, never a hang."""
    import re._parser as sre  # type: ignore[import-not-found]  # the parser `re` uses itself

    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)

    def risky(items: Any, inside_repeat: bool) -> bool:
        for op, arg in items:
            if op in repeats:
                _low, high, sub = arg
                if inside_repeat or risky(sub, inside_repeat=high > 1):
                    return True
            elif op is sre.BRANCH:
                if inside_repeat or any(risky(b, inside_repeat) for b in arg[1]):
                    return True
            elif op is sre.SUBPATTERN:
                if risky(arg[-1], inside_repeat):
                    return True
            elif op in (sre.ASSERT, sre.ASSERT_NOT) and risky(arg[1], inside_repeat):
                return True
        return False

    return risky(sre.parse(pattern), inside_repeat=False)


NUMERIC_FIELDS = frozenset({"uid", "gid", "memory", "cpus", "pids_limit", "timeout"})


def _check_bounds(field: str, rules: dict[str, Any]) -> str | None:
    """min/max must compare like with like: cerberus swallows the TypeError of comparing a
    number with a string, and such a guardrail would silently never fire."""
    for rule in ("min", "max"):
        if rule not in rules:
            continue
        value = rules[rule]
        if field not in NUMERIC_FIELDS:
            return (
                f"{rule} applies only to the numeric fields "
                f"({', '.join(sorted(NUMERIC_FIELDS))}), not to {field}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{rule} for {field} must be a number, got {_show(value)}"
    return None


def _check_patterns(rules: object) -> None:
    """Compile every `regex` in a (possibly nested) rule set; raise `re.error` on a bad one."""
    stack = [rules]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("regex"), str):
                re.compile(item["regex"])
                if _can_backtrack(item["regex"]):
                    # Python's regex engine backtracks: `(a+)+b` or `(a|a)+b` take exponential
                    # time on a long non-matching value, and a guardrail must never hang.
                    raise re.error(
                        "a repeated group that itself repeats or alternates, such as (a+)+ or "
                        "(a|b)+, can take exponential time; rewrite it without the nesting"
                    )
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _flatten(message: object) -> str:
    """Cerberus nests messages in dicts and lists; flatten to one readable line."""
    if isinstance(message, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in message.items())
    if isinstance(message, list):
        return "; ".join(_flatten(m) for m in message)
    return str(message)


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
