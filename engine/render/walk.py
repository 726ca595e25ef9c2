"""The one walk over a profile that every renderer reads.

`walk` resolves what a profile means for one launch (mount sources on disk, the image, the
command, the reserved labels, the CPU quota, tmpfs option strings) and which of its fields are
declared at all, that is, differ from what the engine does by default. Renderers
(`engine.render.*`) only spell the result for their target; which fields they can spell is
declared beside them and enforced by `engine.render.interface.render`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from engine import labels as L
from policy import units
from policy.canonical import digest as profile_digest_of
from policy.errors import UsageError
from policy.model import Profile
from policy.mount_sources import resolve_source
from policy.runtime_keys import RUNTIME_FIELDS

CPU_PERIOD = 100_000  # microseconds, the kernel's default CFS period
NAMESPACES = ("pid", "ipc", "uts")
# Presentation, and the launcher's own sampling (`monitor`), not settings of the container:
# never rendered, never refused.
# `kubernetes` declares what the Kubernetes renderer may put in place of what a cluster cannot
# express; that renderer reads it, no container has it (it is digested all the same).
NOT_SETTINGS = frozenset({"name", "description", "monitor", "kubernetes"})
# The runtime keys of issue 12 last (they are the first fields of `Profile`, from its base).
SETTINGS = (
    *(f for f in Profile.model_fields if f not in NOT_SETTINGS and f not in RUNTIME_FIELDS),
    *RUNTIME_FIELDS,
)
# Settings only a Swarm service reads (`engine.render.swarm`): one engine's targets leave them.
SWARM_ONLY = frozenset({"swarm_network"})


@functools.cache
def _defaults() -> dict[str, object]:
    return {
        name: info.get_default(call_default_factory=True)
        for name, info in Profile.model_fields.items()
        if name in SETTINGS and not info.is_required()
    }


def declared_fields(profile: Profile) -> frozenset[str]:
    """The settings `profile` gives a value other than the engine's default (image always)."""
    defaults = _defaults()
    return frozenset(
        name
        for name in SETTINGS
        if name not in defaults or getattr(profile, name) != defaults[name]
    )


@dataclass(frozen=True)
class BindMount:
    source: str  # absolute host path
    target: str
    writable: bool
    propagation: str | None = None  # the engine's rprivate


@dataclass(frozen=True)
class TmpfsMount:
    target: str
    size: int
    mode: int | None
    options: tuple[str, ...]

    @property
    def option_string(self) -> str:
        """The engine's tmpfs option string (`size=100m,mode=1777,nosuid,...`)."""
        parts = [f"size={units.format_size(self.size)}"]
        if self.mode is not None:
            parts.append(f"mode={self.mode:o}")
        parts.extend(self.options)
        return ",".join(parts)


@dataclass(frozen=True)
class Walked:
    """A profile resolved for one launch (or one rendering): what every renderer reads."""

    profile: Profile
    image: str
    command: tuple[str, ...]
    env: dict[str, str]
    mounts: tuple[BindMount, ...]
    tmpfs: tuple[TmpfsMount, ...]  # sorted by target
    namespaces: dict[str, str]  # the host namespaces joined (pid, ipc, uts), if any
    labels: dict[str, str]  # the profile's labels and the reserved ones
    declared: frozenset[str]
    digest: str
    image_override: str | None = None  # `--image`, when it replaced the profile's
    extra: dict[str, str] = field(default_factory=dict)  # env the launcher added (shards)

    @property
    def cpu_quota(self) -> int | None:
        cpus = self.profile.cpus
        return None if cpus is None else round(cpus * CPU_PERIOD)


def _mount_source(project: Path | None, source: str) -> str:
    path = Path(source) if project is None else resolve_source(project, source)
    text = str(path)
    if any(c in text for c in "\n\r\x00"):
        raise UsageError(f"mount source {text!r} contains a control character")
    return text


def walk(
    profile: Profile,
    project: Path | None,
    policy_file: str | None = None,
    *,
    command: tuple[str, ...] = (),
    image: str | None = None,
    env: dict[str, str] | None = None,
    launch_id: str | None = None,
    record_project: bool = False,
    digest: str | None = None,
) -> Walked:
    """Resolve `profile` once. Without `policy_file` no reserved label is added (capture).
    `digest` is the profile's when the caller has it (the vetted policy keeps them)."""
    profile_digest = digest or profile_digest_of(profile)
    reserved: dict[str, str] = {}
    if policy_file is not None:
        reserved = L.reserved(
            profile.name,
            profile_digest,
            policy_file,
            launch_id=launch_id,
            project=str(project) if record_project and project is not None else None,
            image=image if image is not None and image != profile.image else None,
        )
    return Walked(
        profile=profile,
        image=image or profile.image,
        command=command,
        env={**profile.env, **(env or {})},
        mounts=tuple(
            BindMount(_mount_source(project, m.source), m.target, m.writable, m.propagation)
            for m in profile.mounts
        ),
        tmpfs=tuple(
            TmpfsMount(target, spec.size, spec.mode, spec.options)
            for target, spec in sorted(profile.tmpfs.items())
        ),
        namespaces={
            ns: getattr(profile, ns) for ns in NAMESPACES if getattr(profile, ns) != "private"
        },
        labels={**profile.labels, **reserved},
        declared=declared_fields(profile),
        digest=profile_digest,
        image_override=image if image != profile.image else None,
        extra=dict(env or {}),
    )
