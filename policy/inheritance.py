"""Inheritance: `[defaults]` < parent < child, tables merged key by key, lists replaced.

Profiles are merged in an order where every parent comes before its children, so each profile's
settings build on its parent's and a long chain is merged once. Cycles and unknown parents are
reported at the `extends` key. Both steps are iterative: chains thousands long cost no recursion.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from policy.diagnostics import Diagnostic
from policy.model import ProfileInput
from policy.origin import KeyPath, Origin
from policy.policy_file import DeclaredProfile
from policy.pydantic_errors import did_you_mean
from policy.source import SourceFile

Settings = dict[str, Any]
Origins = dict[KeyPath, Origin]  # field path -> where it was set


def inherit(
    declared: dict[str, DeclaredProfile],
    defaults: tuple[SourceFile, ProfileInput] | None,
    broken: set[str],
    problems: list[Diagnostic],
) -> Iterator[tuple[DeclaredProfile, Settings, Origins]]:
    """Each profile that has a sound chain with its merged settings and where each was set,
    parents first. The settings are shared with the children: do not mutate them."""
    base: Settings = {}
    base_origins: Origins = {}
    if defaults is not None:
        source, values = defaults
        base = merge(
            base,
            values.model_dump(exclude_none=True),
            Origin(source, ("defaults",)),
            (),
            base_origins,
        )
    merged: dict[str, tuple[Settings, Origins]] = {}
    for name in resolve_chains(declared, broken, problems):
        decl = declared[name]
        parent = decl.data.extends
        settings, where = merged[parent] if parent is not None else (base, base_origins)
        where = dict(where)
        settings = merge(settings, decl.data.model_dump(exclude_none=True), decl.origin, (), where)
        settings.pop("extends", None)
        merged[name] = (settings, where)
        yield decl, settings, where


def resolve_chains(
    declared: dict[str, DeclaredProfile], broken: set[str], problems: list[Diagnostic]
) -> list[str]:
    """Profiles in an order where every parent comes before its children.

    Profiles on a cycle or below a missing parent are reported (at their `extends` key) and left
    out; profiles below a `broken` parent (one already reported as invalid) are left out quietly.
    """
    done: set[str] = set()
    bad: set[str] = set()
    order: list[str] = []
    for start in declared:
        path, ok = _follow(start, declared, broken, done, bad, problems)
        if ok:
            order.extend(reversed(path))
            done.update(path)
        else:
            bad.update(path)
    return order


def _follow(
    start: str,
    declared: dict[str, DeclaredProfile],
    broken: set[str],
    done: set[str],
    bad: set[str],
    problems: list[Diagnostic],
) -> tuple[list[str], bool]:
    """The profiles from `start` up to a root or to one already judged (in `done` or `bad`), and
    whether the chain is sound; a cycle or a missing parent on it is reported."""
    path: list[str] = []
    on_path: set[str] = set()  # `path` as a set: a long chain costs linear time
    name = start
    while name not in done:
        if name in bad:
            return path, False
        if name in on_path:
            _report_cycle([*path[path.index(name) :], name], declared, problems)
            return path, False
        path.append(name)
        on_path.add(name)
        parent = declared[name].data.extends
        if parent is None:
            return path, True
        if parent not in declared:
            if parent not in broken:
                _report_missing(declared[name], parent, list(declared), problems)
            return path, False
        name = parent
    return path, True


def _report_cycle(
    cycle: list[str], declared: dict[str, DeclaredProfile], problems: list[Diagnostic]
) -> None:
    """Report every member of `cycle` (which ends with its first member again)."""
    for member in cycle[:-1]:
        decl = declared[member]
        problems.append(
            Diagnostic(
                decl.source.at((*decl.keypath, "extends")),
                "extends-cycle",
                "extends cycle: " + _chain_text(cycle),
                profile=member,
            )
        )


def _report_missing(
    decl: DeclaredProfile, parent: str, names: list[str], problems: list[Diagnostic]
) -> None:
    hint = did_you_mean(parent, names)
    problems.append(
        Diagnostic(
            decl.source.at((*decl.keypath, "extends")),
            "extends-missing",
            f"profile '{decl.name}' extends unknown profile '{parent}'{hint}",
            profile=decl.name,
        )
    )


def _chain_text(names: list[str]) -> str:
    """A cycle for a message; long ones are shortened so 2,000 members do not print 4 million."""
    if len(names) <= 12:
        return " -> ".join(names)
    return " -> ".join(names[:6]) + f" -> ... ({len(names) - 9} more) -> " + " -> ".join(names[-3:])


def merge(
    base: Settings, over: Settings, origin: Origin, prefix: KeyPath, origins: Origins
) -> Settings:
    """`base` with `over` merged in: tables merge key by key, anything else replaces.

    Copy-on-write: `base` is left as it is (a parent shares it with all its children), and only
    the tables on the path of a change are copied, so long chains cost no deep copies.
    """
    out = dict(base)
    for key, value in over.items():
        path = (*prefix, key)
        here = Origin(origin.source, (*origin.keypath, key))
        origins[path] = here
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = merge(base[key], value, here, path, origins)
        else:
            out[key] = value
            if isinstance(value, dict):
                # Record every key of a new table, so a later merge into it does not make the
                # keys it keeps look as if they were written by that later table.
                merge({}, value, here, path, origins)
    return out
