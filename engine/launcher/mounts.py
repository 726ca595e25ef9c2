"""The host side of a profile's bind mounts, made ready before the container is created."""

from __future__ import annotations

import os
from pathlib import Path

from policy.errors import UsageError
from policy.model import Profile
from policy.mount_sources import resolve_source


def prepare_mounts(profile: Profile, project: Path) -> None:
    """Read-only sources must exist (Docker would create a root-owned directory in their place);
    writable ones are created, owned by the profile's user where we may change ownership."""
    for mount in profile.mounts:
        source = resolve_source(project, mount.source)
        if not mount.writable:
            if not source.exists():
                raise UsageError(
                    f"profile '{profile.name}': read-only mount source {source} does not exist"
                )
            continue
        if source.exists() and not source.is_dir():
            raise UsageError(
                f"profile '{profile.name}': writable mount source {source} is not a directory"
            )
        try:
            source.mkdir(parents=True, exist_ok=True)
            if profile.uid is not None and os.geteuid() == 0:
                os.chown(source, profile.uid, profile.gid if profile.gid is not None else -1)
            elif profile.uid is not None and source.stat().st_uid != profile.uid:
                os.chmod(source, 0o1777)  # cannot chown: let the container's uid write
        except OSError as exc:
            raise UsageError(
                f"profile '{profile.name}': cannot prepare writable mount "
                f"{source}: {exc.strerror or exc}"
            ) from None


def missing_writable_sources(profile: Profile, project: Path) -> list[Path]:
    """Writable mount sources that do not exist yet (`policy run` creates them; a rendered
    `docker run` line would fail on them)."""
    return [
        resolve_source(project, m.source)
        for m in profile.mounts
        if m.writable and not resolve_source(project, m.source).exists()
    ]
