"""Expected settings of a profile, and the field-by-field comparison with observed settings.

`diff` is the one comparison behind launch verification (`policy run` refuses to start a
container with any difference) and the audit's drift findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.labels import user_labels
from engine.audit.observe import (
    ALL_CAPABILITIES,
    Settings,
    env_dict,
    net_of_image,
    normalise_healthcheck,
)
from policy.loader import resolve_source
from policy.model import Profile


@dataclass(frozen=True)
class Drift:
    """One setting that differs: what the profile declares and what the container has."""

    field: str
    expected: Any
    actual: Any


def expected_settings(
    profile: Profile, project: Path, image_config: dict[str, Any] | None, image: str | None = None
) -> Settings:
    """The settings a container launched under `profile` must have (see `observed_settings`)."""
    img = image_config or {}
    healthcheck: dict[str, Any] | None = None
    if profile.healthcheck is not None:
        hc = profile.healthcheck
        healthcheck = {"test": ["CMD", *hc.test]}
        for key in ("interval", "timeout", "start_period"):
            if getattr(hc, key) is not None:
                healthcheck[key] = getattr(hc, key)
        if hc.retries is not None:
            healthcheck["retries"] = hc.retries
    else:
        healthcheck = normalise_healthcheck(img.get("Healthcheck"))
    image_env = env_dict(img.get("Env"))
    image_labels = user_labels(img.get("Labels"))
    return {
        "image": image or profile.image,
        "user": profile.user or img.get("User") or None,
        "read_only": profile.read_only,
        "privileged": profile.privileged,
        "network": profile.network,
        "pid": profile.pid,
        "ipc": profile.ipc,
        "uts": profile.uts,
        "capabilities": ALL_CAPABILITIES if profile.privileged else sorted(profile.capabilities),
        "no_new_privileges": profile.no_new_privileges,
        "seccomp": "unconfined" if profile.privileged else profile.seccomp.canonical,
        "pids_limit": profile.pids_limit,
        "memory": profile.memory,
        "cpus": profile.cpus,
        "tmpfs": {
            path: {
                "size": spec.size,
                "mode": None if spec.mode is None else f"{spec.mode:o}",
                "options": sorted(spec.options),
            }
            for path, spec in sorted(profile.tmpfs.items())
        },
        "mounts": sorted(
            (
                {
                    "type": "bind",
                    "source": str(resolve_source(project, m.source).resolve()),
                    "target": m.target,
                    "writable": m.writable,
                }
                for m in profile.mounts
            ),
            key=lambda m: str(m["target"]),
        ),
        "env": net_of_image({**image_env, **profile.env}, image_env),
        "workdir": profile.workdir or img.get("WorkingDir") or None,
        "healthcheck": healthcheck,
        "labels": net_of_image({**image_labels, **profile.labels}, image_labels),
        "devices": [],
        "ports": [],
    }


def diff(expected: Settings, actual: Settings) -> list[Drift]:
    """Every field whose values differ, in a stable order."""
    return [
        Drift(key, expected[key], actual.get(key))
        for key in expected
        if expected[key] != actual.get(key)
    ]
