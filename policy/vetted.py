"""Loading a policy to use it: it must load and validate, or nothing is done with it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from policy.diagnostics import Severity
from policy.errors import PolicyError, UnusablePolicy
from policy.loader import Policy, load_policy
from policy.validate import validate


def load_vetted(
    paths: Sequence[Path | str], project: Path | str | None = None, require_valid: bool = True
) -> Policy:
    """The policy of `paths`; `UnusablePolicy` if it does not load, or (by default) does not
    validate (an unwaived error). The diagnostics say why."""
    try:
        policy = load_policy([Path(p) for p in paths], Path(project) if project else None)
    except PolicyError as exc:
        raise UnusablePolicy(
            "the policy does not load; run `policy validate` for details", exc.diagnostics
        ) from None
    if require_valid:
        problems = [d for d in validate(policy) if d.severity is Severity.ERROR]
        if problems:
            raise UnusablePolicy("the policy does not validate; refusing to use it", problems)
    return policy
