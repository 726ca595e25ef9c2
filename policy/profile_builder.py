"""Building an effective profile from its merged settings: the checks that need the whole chain.

A profile's image, tmpfs sizes, seccomp file and mount targets may each come from `[defaults]`, a
parent or the profile itself, so they are checked here, after merging. Seccomp files and mount
sources are resolved once for all the profiles that share them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policy.diagnostics import Diagnostic, Location
from policy.inheritance import Origins, Settings
from policy.model import Profile, Seccomp
from policy.mount_sources import check_source
from policy.origin import KeyPath
from policy.policy_file import DeclaredProfile
from policy.pydantic_errors import diagnostics_from
from policy.seccomp import resolve_seccomp


@dataclass
class ProfileBuilder:
    """Builds the effective profiles of one policy, reporting into `problems`."""

    project: Path
    problems: list[Diagnostic]
    # Keyed by the directory of the file that names it, and the name: a relative path resolves
    # against that directory.
    _seccomp: dict[str, Seccomp | None] = field(default_factory=dict)
    _sources: dict[str, str] = field(default_factory=dict)  # mount source -> canonical

    def build(self, decl: DeclaredProfile, settings: Settings, origins: Origins) -> Profile | None:
        """The effective profile, or None when something about it was reported.

        `settings` is shared with the children of `decl`: it is copied before it changes.
        """
        merged = dict(settings)
        before = len(self.problems)
        self._check_image(decl, merged)
        self._check_tmpfs(decl, merged, origins)
        self._check_swarm_network(decl, merged, origins)
        self._check_ports(decl, merged, origins)
        if "seccomp" in merged:
            seccomp = self._resolve_seccomp(decl.name, merged["seccomp"], origins)
            if seccomp is None:
                return None  # the broken seccomp file was reported where it is named
            merged["seccomp"] = seccomp
        merged["mounts"] = self._mounts(decl.name, merged, origins)
        if len(self.problems) > before:
            return None
        try:
            return Profile.model_validate({"name": decl.name, **merged})
        except ValidationError as exc:  # pragma: no cover - inputs were validated field by field
            self.problems.extend(
                diagnostics_from(exc, decl.source, decl.keypath, Profile, decl.name)
            )
            return None

    def _check_image(self, decl: DeclaredProfile, merged: Settings) -> None:
        if "image" not in merged:
            self.problems.append(
                Diagnostic(
                    decl.origin.location,
                    "missing-key",
                    f"profile '{decl.name}' has no image (set it here, in a parent or in "
                    "[defaults])",
                    profile=decl.name,
                )
            )

    def _check_tmpfs(self, decl: DeclaredProfile, merged: Settings, origins: Origins) -> None:
        for target, spec in merged.get("tmpfs", {}).items():
            if "size" not in spec:
                self.problems.append(
                    Diagnostic(
                        _where(("tmpfs", target), origins, decl),
                        "missing-key",
                        f"tmpfs {target}: a size is required (for example "
                        'size = "100m"), or it may fill the host\'s memory',
                        profile=decl.name,
                    )
                )

    def _check_swarm_network(
        self, decl: DeclaredProfile, merged: Settings, origins: Origins
    ) -> None:
        # It stands in for "none" and only for it: beside a bridge or host network it would
        # read as a restriction the profile does not have anywhere else.
        if "swarm_network" in merged and merged.get("network", "bridge") != "none":
            self.problems.append(
                Diagnostic(
                    _where(("swarm_network",), origins, decl),
                    "bad-value",
                    'swarm_network says what a Swarm job gets instead of network = "none"; '
                    f"this profile's network is {merged.get('network', 'bridge')!r}",
                    profile=decl.name,
                )
            )

    def _check_ports(self, decl: DeclaredProfile, merged: Settings, origins: Origins) -> None:
        # The engine refuses to publish a port of a container without a network of its own, and
        # a namespaced sysctl in a namespace shared with the host would set the host's own.
        network = merged.get("network", "bridge")
        problems: list[tuple[KeyPath, str]] = []
        if merged.get("ports") and network in ("none", "host"):
            problems.append(
                (
                    ("ports",),
                    f'ports: a container on network "{network}" cannot publish ports; use '
                    '"bridge" or a named network',
                )
            )
        shared = {"net.": network == "host", "kernel.": merged.get("ipc") == "host"}
        for name in sorted(merged.get("sysctls", {})):
            if any(name.startswith(prefix) and on for prefix, on in shared.items()):
                problems.append(
                    (
                        ("sysctls", name),
                        f"sysctls.{name}: the container shares that namespace with the host, "
                        "so this would set the host's own",
                    )
                )
        for path, message in problems:
            self.problems.append(
                Diagnostic(_where(path, origins, decl), "bad-value", message, profile=decl.name)
            )

    def _resolve_seccomp(self, profile: str, value: str, origins: Origins) -> Seccomp | None:
        origin = origins[("seccomp",)]
        key = f"{origin.source.path.parent}\0{value}"
        if key not in self._seccomp:
            self._seccomp[key] = resolve_seccomp(value, origin, profile, self.problems)
        return self._seccomp[key]

    def _mounts(self, profile: str, merged: Settings, origins: Origins) -> list[dict[str, Any]]:
        """The mounts with canonical sources; escaping sources and repeated targets reported."""
        mounts = [dict(m) for m in merged.get("mounts", [])]
        targets: set[str] = set()
        for index, mount in enumerate(mounts):
            origin = origins[("mounts",)]
            where = functools.partial(origin.at, index, "source")
            mount["source"] = self._mount_source(profile, mount["source"], where)
            if mount["target"] in targets or mount["target"] in merged.get("tmpfs", {}):
                self.problems.append(
                    Diagnostic(
                        origin.at(index, "target"),
                        "duplicate-target",
                        f"{mount['target']} is mounted more than once",
                        profile=profile,
                    )
                )
            targets.add(mount["target"])
        return mounts

    def _mount_source(self, profile: str, source: str, where: Callable[[], Location]) -> str:
        if source not in self._sources:
            before = len(self.problems)
            canonical = check_source(source, self.project, where, profile, self.problems)
            if len(self.problems) > before:
                return source  # not cached: reported for every profile that uses it
            self._sources[source] = canonical
        return self._sources[source]


def _where(path: KeyPath, origins: Origins, decl: DeclaredProfile) -> Location:
    """Where `path` (or the longest prefix of it that was set as a whole) was written."""
    for end in range(len(path), 0, -1):
        origin = origins.get(path[:end])
        if origin is not None:
            return origin.source.at((*origin.keypath, *path[end:]))
    return decl.origin.location
