"""Reading one policy file: its version, `[defaults]`, profiles and waivers.

Each part is validated on its own, so one bad profile does not hide the others; names that are
declared but invalid are remembered as *broken*, so profiles extending them are not reported
again as extending an unknown profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from policy.diagnostics import Diagnostic
from policy.model import _NAME_RE, SUPPORTED_VERSIONS, PolicyFileInput, ProfileInput, WaiverInput
from policy.origin import KeyPath, Origin
from policy.pydantic_errors import did_you_mean, validated
from policy.source import SourceFile

_TOP_KEYS = tuple(PolicyFileInput.model_fields)


@dataclass
class DeclaredProfile:
    """A profile as one file declares it, before inheritance."""

    name: str
    source: SourceFile
    keypath: KeyPath
    data: ProfileInput

    @property
    def origin(self) -> Origin:
        return Origin(self.source, self.keypath)


@dataclass(frozen=True)
class Waiver:
    """A waiver as declared, with where it was declared."""

    profile: str
    rule: str
    reason: str
    expires: Any  # datetime.date
    origin: Origin


@dataclass
class PolicyFile:
    """What one policy file declares (the parts that are valid)."""

    defaults: ProfileInput | None = None
    profiles: list[DeclaredProfile] = field(default_factory=list)
    waivers: list[Waiver] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # declared, but reported as invalid


def read_policy_file(source: SourceFile, problems: list[Diagnostic]) -> PolicyFile:
    """The valid parts of `source`; what is wrong with the rest is added to `problems`."""
    _check_top_level(source, problems)
    read = PolicyFile(defaults=_read_defaults(source, problems))
    _read_profiles(source, problems, read)
    read.waivers = _read_waivers(source, problems)
    return read


def _check_top_level(source: SourceFile, problems: list[Diagnostic]) -> None:
    data = source.data
    for key in data:
        if key not in _TOP_KEYS:
            hint = did_you_mean(key, _TOP_KEYS)
            problems.append(
                Diagnostic(source.at((key,)), "unknown-key", f"unknown top-level key '{key}'{hint}")
            )
    version = data.get("version")
    if version is None:
        problems.append(
            Diagnostic(source.at(()), "missing-key", "missing 'version = 1' at the top of the file")
        )
    elif type(version) is not int or version not in SUPPORTED_VERSIONS:
        problems.append(
            Diagnostic(
                source.at(("version",)),
                "bad-value",
                f"unsupported version {version!r} (supported: 1)",
            )
        )


def _read_defaults(source: SourceFile, problems: list[Diagnostic]) -> ProfileInput | None:
    if "defaults" not in source.data:
        return None
    raw = source.data["defaults"]
    if isinstance(raw, dict) and "extends" in raw:
        problems.append(
            Diagnostic(
                source.at(("defaults", "extends")),
                "bad-value",
                "[defaults] cannot extend a profile",
            )
        )
        return None
    return validated(ProfileInput, raw, source, ("defaults",), problems)


def _read_profiles(source: SourceFile, problems: list[Diagnostic], read: PolicyFile) -> None:
    raw_profiles = source.data.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        problems.append(
            Diagnostic(
                source.at(("profiles",)),
                "wrong-type",
                "profiles: expected a table of [profiles.NAME] tables",
            )
        )
        raw_profiles = {}
    for name, raw in raw_profiles.items():
        keypath: KeyPath = ("profiles", name)
        if not _NAME_RE.fullmatch(name):
            problems.append(
                Diagnostic(
                    source.at(keypath),
                    "bad-value",
                    f"profile name {name!r} must be 1-128 letters, digits, "
                    "'_', '.' or '-', starting with a letter or digit",
                )
            )
            read.broken.add(name)
            continue
        profile = validated(ProfileInput, raw, source, keypath, problems, name)
        if profile is not None:
            read.profiles.append(DeclaredProfile(name, source, keypath, profile))
        else:
            read.broken.add(name)


def _read_waivers(source: SourceFile, problems: list[Diagnostic]) -> list[Waiver]:
    raw_waivers = source.data.get("waivers", [])
    if not isinstance(raw_waivers, list):
        problems.append(
            Diagnostic(
                source.at(("waivers",)), "wrong-type", "waivers: expected [[waivers]] tables"
            )
        )
        raw_waivers = []
    waivers: list[Waiver] = []
    for index, raw in enumerate(raw_waivers):
        keypath = ("waivers", index)
        waiver = validated(WaiverInput, raw, source, keypath, problems)
        if waiver is not None:
            waivers.append(
                Waiver(
                    waiver.profile,
                    waiver.rule,
                    waiver.reason,
                    waiver.expires,
                    Origin(source, keypath),
                )
            )
    return waivers
