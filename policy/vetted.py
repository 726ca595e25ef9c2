"""Loading a policy to use it (it must load and validate, or nothing is done with it), and checking
one (`policy validate`): both through the exact cache when the caller gives one (`policy.cache`).

The loader and the validator are imported only on a cache miss: a warm `policy validate` never
imports pydantic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from policy.diagnostics import Diagnostic, Severity
from policy.errors import PolicyError, UnusablePolicy

if TYPE_CHECKING:
    from policy.cache import Cache
    from policy.loader import Policy


@dataclass(frozen=True)
class Checked:
    """What `policy validate` reports: every diagnostic, and what was loaded."""

    diagnostics: list[Diagnostic]
    summary: str  # "8 profile(s) in 2 file(s)", or that the policy does not load


def check(
    paths: Sequence[Path | str], project: Path | str | None = None, cache: Cache | None = None
) -> Checked:
    """Load and validate the policy of `paths`, reporting every problem (nothing is raised)."""
    files = [Path(p) for p in paths] or [Path("policies")]
    where = Path(project) if project else None

    def compute() -> Checked:
        from policy.loader import load_policy
        from policy.validate import validate

        try:
            policy = load_policy(files, where)
        except PolicyError as exc:
            return Checked(list(exc.diagnostics), "the policy does not load")
        summary = f"{len(policy.profiles)} profile(s) in {len(policy.files)} file(s)"
        return Checked(validate(policy), summary)

    if cache is None:
        return compute()
    return cache.cached("validate", (tuple(map(str, files)), str(where)), compute)


def load_vetted(
    paths: Sequence[Path | str],
    project: Path | str | None = None,
    require_valid: bool = True,
    cache: Cache | None = None,
) -> Policy:
    """The policy of `paths`; `UnusablePolicy` if it does not load, or (by default) does not
    validate (an unwaived error). The diagnostics say why."""
    files = [Path(p) for p in paths]
    where = Path(project) if project else None

    def compute() -> Policy | UnusablePolicy:
        from policy.loader import load_policy
        from policy.validate import validate

        try:
            policy = load_policy(files, where)
        except PolicyError as exc:
            return UnusablePolicy(
                "the policy does not load; run `policy validate` for details", exc.diagnostics
            )
        if require_valid:
            problems = [d for d in validate(policy) if d.severity is Severity.ERROR]
            if problems:
                return UnusablePolicy("the policy does not validate; refusing to use it", problems)
        for name in policy.profiles:
            policy.digest(name)
        return policy

    if cache is None:
        loaded = compute()
    else:
        request = (tuple(map(str, files)), str(where), require_valid)
        loaded = cache.cached("policy", request, compute)
    if isinstance(loaded, UnusablePolicy):
        raise loaded
    return loaded
