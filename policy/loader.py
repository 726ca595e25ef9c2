"""Load a policy (one or more TOML files) into effective profiles, reporting every error at once.

Order of work: find the files (`policy.discovery`); read and parse every file; validate each part
of each file on its own, so one bad profile does not hide the others (`policy.policy_file`);
check names across files (here); resolve `extends` chains, `[defaults]` < parent < child, tables
merged, lists replaced (`policy.inheritance`); build each profile, resolving seccomp files and
mount sources (`policy.profile_builder`). Any diagnostic raises one `PolicyError` carrying all of
them.

Mount sources that are relative resolve against the *project directory*: by default the parent of
the policy directory (for `policies/`, the directory that holds it), or `--project DIR`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from policy import observed
from policy.diagnostics import Diagnostic, Location
from policy.discovery import default_project, policy_files
from policy.errors import PolicyError, UsageError
from policy.guardrails import Guardrails, is_guardrail_file, load_guardrails
from policy.inheritance import inherit
from policy.model import Profile, ProfileInput
from policy.origin import KeyPath, Origin
from policy.policy_file import DeclaredProfile, PolicyFile, Waiver, read_policy_file
from policy.profile_builder import ProfileBuilder
from policy.pydantic_errors import did_you_mean
from policy.source import SourceFile, display_path, read_toml


@dataclass
class Policy:
    """Everything a policy directory declares, resolved and ready for rules and the engine."""

    project: Path
    files: list[str]
    profiles: dict[str, Profile]
    origins: dict[str, dict[KeyPath, Origin]]  # per profile: field path -> where it was set
    declared: dict[str, Origin]  # per profile: its table header
    waivers: list[Waiver] = field(default_factory=list)
    guardrails: list[Guardrails] = field(default_factory=list)
    # Profile name -> digest, filled by `digest()`; a vetted policy has them all (and keeps them
    # in the cache, so that a warm `run` or `audit` never serialises a profile to know them).
    digests: dict[str, str] = field(default_factory=dict)

    def digest(self, name: str) -> str:
        """The digest of profile `name` (`policy.canonical.digest`), computed once."""
        if name not in self.digests:
            from policy.canonical import digest

            self.digests[name] = digest(self.profiles[name])
        return self.digests[name]

    def profile(self, name: str) -> Profile:
        """The profile called `name`, or a `UsageError` with the nearest names."""
        if name not in self.profiles:
            hint = did_you_mean(name, list(self.profiles))
            raise UsageError(f"no profile '{name}'{hint}; `policy list` shows them")
        return self.profiles[name]

    def where(self, profile: str, keypath: Sequence[str | int] = ()) -> Location:
        """The location of `keypath` of `profile`: where it was set, else the profile's header."""
        origins = self.origins.get(profile, {})
        path = tuple(keypath)
        while path:
            if path in origins:
                return origins[path].at(*tuple(keypath)[len(path) :])
            path = path[:-1]
        return self.declared[profile].location


def load_policy(paths: Sequence[Path], project: Path | None = None) -> Policy:
    """Load and resolve a policy; raise `PolicyError` with every diagnostic if anything is wrong."""
    paths = list(paths) or [Path("policies")]
    chosen = project or default_project(paths)
    observed.path_resolved(chosen)
    project = chosen.resolve()
    files, problems = policy_files(paths)
    sources, guardrails = _read_files(files, problems)
    declared = _Declarations()
    for source in sources:
        declared.add(source, read_policy_file(source, problems), problems)
    if not sources and not problems:
        problems.append(
            Diagnostic(
                Location(display_path(paths[0])),
                "no-policy",
                "no policy files (only guardrails) found",
            )
        )
    builder = ProfileBuilder(project, problems)
    profiles: dict[str, Profile] = {}
    origins: dict[str, dict[KeyPath, Origin]] = {}
    for decl, settings, where in inherit(
        declared.profiles, declared.defaults, declared.broken, problems
    ):
        built = builder.build(decl, settings, where)
        if built is not None:
            profiles[decl.name], origins[decl.name] = built, where
    if problems:
        problems.sort(key=Diagnostic.sort_key)
        raise PolicyError(f"{len(problems)} error(s) in the policy", problems)
    return Policy(
        project=project,
        files=[s.display for s in sources],
        profiles=profiles,
        origins=origins,
        declared={n: d.origin for n, d in declared.profiles.items()},
        waivers=declared.waivers,
        guardrails=guardrails,
    )


def _read_files(
    files: list[Path], problems: list[Diagnostic]
) -> tuple[list[SourceFile], list[Guardrails]]:
    """The parsed policy files and the loaded guardrail files; the rest is reported."""
    sources: list[SourceFile] = []
    guardrails: list[Guardrails] = []
    for path in files:
        parsed = read_toml(path)
        if isinstance(parsed, Diagnostic):
            problems.append(parsed)
        elif is_guardrail_file(path):
            loaded = load_guardrails(parsed)
            if isinstance(loaded, Guardrails):
                guardrails.append(loaded)
            else:
                problems.extend(loaded)
        else:
            sources.append(parsed)
    return sources, guardrails


@dataclass
class _Declarations:
    """What all the policy files declare together; a name declared twice is reported."""

    profiles: dict[str, DeclaredProfile] = field(default_factory=dict)
    defaults: tuple[SourceFile, ProfileInput] | None = None
    waivers: list[Waiver] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # declared, but already reported as invalid

    def add(self, source: SourceFile, read: PolicyFile, problems: list[Diagnostic]) -> None:
        if read.defaults is not None:
            if self.defaults is not None:
                first = self.defaults[0].at(("defaults",))
                problems.append(
                    Diagnostic(
                        source.at(("defaults",)),
                        "duplicate-defaults",
                        f"[defaults] is already declared at {first}",
                    )
                )
            else:
                self.defaults = (source, read.defaults)
        for decl in read.profiles:
            if decl.name in self.profiles:
                _report_duplicate(decl, self.profiles[decl.name], problems)
            else:
                self.profiles[decl.name] = decl
        self.waivers.extend(read.waivers)
        self.broken |= read.broken


def _report_duplicate(
    decl: DeclaredProfile, other: DeclaredProfile, problems: list[Diagnostic]
) -> None:
    """Report a profile declared twice at both places, each pointing at the other."""
    here, there = decl.origin.location, other.origin.location
    for at, elsewhere in ((here, there), (there, here)):
        problems.append(
            Diagnostic(
                at, "duplicate-profile", f"profile '{decl.name}' is also declared at {elsewhere}"
            )
        )
