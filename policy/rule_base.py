"""What a built-in rule is: `Rule`, the `Violation`s its check yields, and the `Context` it gets.

Apart from `policy.rules` so that the rules of `policy.runtime_rules` can be declared beside
their keys; `policy.rules` re-exports these names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from policy.diagnostics import Severity
from policy.model import Profile


@dataclass(frozen=True)
class Violation:
    """One way a profile breaks a rule; `key` is the profile key to point at."""

    message: str
    key: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Context:
    """What a rule may need besides the profile: the project directory mounts resolve against."""

    project: Path


@dataclass(frozen=True)
class Rule:
    """A security rule. `check` yields nothing when the profile complies."""

    id: str
    title: str
    severity: Severity
    help: str
    cis: str | None
    pss: str | None
    check: Callable[[Profile, Context], Iterator[Violation]]
    # Judges what a policy declares, not what a container shows (a running container has no
    # declared timeout): the audit of running containers skips it.
    declared_only: bool = False
    # Judges what only a running container shows (its health check may come from its image,
    # which a policy file or a compose file does not see): `policy validate` and `policy check`
    # skip it, the audit of running containers applies it.
    running_only: bool = False
