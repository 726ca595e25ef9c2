"""The renderer interface, and the one place a profile a target cannot express is refused.

A renderer turns a `Walked` profile into its target's form. Beside its `build` it declares, for
every setting of a profile, one of three things: it `expresses` it, it `cannot_express` it (a
profile that declares it is refused, by name, before anything is built), or it `leaves` it to
`policy run` (rendered without it, and the user is told so). A target that can spell a setting
only in some of its forms lists it in `conditional`, with a function that gives the reason a
profile's value is refused (or None). A renderer with `refuse_unlisted` refuses every setting it
does not list at all, so a key added to the language later is refused there until it is spelled.
`tests/engine/test_renderers.py` checks that every renderer accounts for every setting, so a new
profile key cannot be dropped silently by a target that forgot it.
The Swarm renderer (`engine.render.swarm`) has a fourth declaration, `proved_by_node`:
settings each node enforces itself, which the launcher proves on every node or stops the job;
anything it does not declare it refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar, Generic, TypeVar

from engine.render.walk import Walked
from policy.errors import UsageError
from policy.model import Profile
from policy.units import format_duration

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Unexpressible(UsageError):
    """The profile declares settings the target cannot express; nothing was rendered."""

    def __init__(self, target: str, profile: str, refused: list[tuple[str, str]]) -> None:
        reasons = "; ".join(f"{field}: {why}" for field, why in refused)
        super().__init__(f"profile '{profile}' cannot be rendered as {target}: {reasons}")
        self.target = target
        self.refused = refused


def leaving(**notes: Callable[[Profile], str]) -> Mapping[str, Callable[[Profile], str]]:
    """A renderer's `leaves`: setting -> the note it prints about it (read-only)."""
    return MappingProxyType(notes)


def refusing(**reasons: str) -> Mapping[str, str]:
    """A renderer's `cannot_express`: setting -> why (read-only)."""
    return MappingProxyType(reasons)


def timeout_note(profile: Profile) -> str:
    """What a renderer that leaves the timeout to `policy run` tells the user."""
    return (
        f"the profile's timeout ({format_duration(profile.timeout or 0)}) is enforced by "
        "`policy run`, not by docker"
    )


def swarm_only_note(profile: Profile) -> str:
    """What a one-engine renderer says of `swarm_network`: it has `network = "none"`."""
    return (
        f"swarm_network = {profile.swarm_network!r} applies to `policy run --swarm` only; "
        "one engine gives the profile no network at all"
    )


class Renderer(Generic[T_co]):
    """Base of every renderer; see the module docstring for the three declarations."""

    target: ClassVar[str]
    expresses: ClassVar[frozenset[str]]
    cannot_express: ClassVar[Mapping[str, str]] = {}
    leaves: ClassVar[Mapping[str, Callable[[Profile], str]]] = {}
    conditional: ClassVar[Mapping[str, Callable[[Profile], str | None]]] = {}
    refuse_unlisted: ClassVar[bool] = False

    @classmethod
    def listed(cls) -> frozenset[str]:
        """Every setting one of the declarations names."""
        return cls.expresses | set(cls.cannot_express) | set(cls.leaves) | set(cls.conditional)

    def refusals(self, walked: Walked) -> list[tuple[str, str]]:
        """Each declared setting this target refuses for `walked`, with why, by name."""
        out = []
        for name in sorted(walked.declared):
            if name in self.cannot_express:
                out.append((name, self.cannot_express[name]))
            elif name in self.conditional:
                why = self.conditional[name](walked.profile)
                if why is not None:
                    out.append((name, why))
            elif self.refuse_unlisted and name not in self.listed():
                out.append((name, f"{self.target} has no spelling for this setting yet"))
        return out

    def build(self, walked: Walked) -> T_co:
        """The target's form of `walked`; called only when nothing declared is refused."""
        raise NotImplementedError


@dataclass(frozen=True)
class Rendered(Generic[T]):
    """What a renderer built, and what it left to `policy run` (one note per setting)."""

    value: T
    notes: tuple[str, ...]


def render(renderer: Renderer[T], walked: Walked) -> Rendered[T]:
    """`renderer.build(walked)`, unless the profile declares a setting the target cannot
    express: then `Unexpressible`, naming every such setting."""
    refused = renderer.refusals(walked)
    if refused:
        raise Unexpressible(renderer.target, walked.profile.name, refused)
    notes = tuple(
        renderer.leaves[n](walked.profile) for n in sorted(walked.declared) if n in renderer.leaves
    )
    return Rendered(renderer.build(walked), notes)
