"""Profile -> the settings a container launched under it must have (`Settings`).

The other side of the one comparison: `engine.audit.observe.observed_settings` reads the same
keys off an inspect document, and `engine.audit.drift.diff` compares the two, for launch
verification and for the audit alike. Values the engine takes from the image when the profile is
silent (user, workdir, healthcheck, env, labels) come from the image's config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.backends.interface import ImageConfig
from engine.labels import user_labels
from engine.render.interface import Renderer, leaving, swarm_only_note
from engine.render.walk import SETTINGS, SWARM_ONLY, Walked
from policy import units
from policy.runtime_rules import engine_disables_labels

Settings = dict[str, Any]
ALL_CAPABILITIES = sorted(units.CAPABILITIES)


def env_dict(entries: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries or []:
        key, _, value = entry.partition("=")
        out[key] = value
    return out


def net_of_image(values: dict[str, str], image: dict[str, str]) -> dict[str, str]:
    """The entries the container adds to (or changes from) its image."""
    return {k: v for k, v in sorted(values.items()) if image.get(k) != v}


def normalise_healthcheck(check: Any) -> dict[str, Any] | None:
    """An engine healthcheck (`HealthcheckDoc`, durations in ns) in canonical form; NONE means
    no check."""
    if check is None or not check.test or check.test == ["NONE"]:
        return None
    out: dict[str, Any] = {"test": list(check.test)}
    for name in ("interval", "timeout", "start_period"):
        if getattr(check, name):
            out[name] = round(getattr(check, name) / 1e9, 3)
    if check.retries:
        out["retries"] = check.retries
    return out


def _healthcheck(walked: Walked, image: ImageConfig) -> dict[str, Any] | None:
    hc = walked.profile.healthcheck
    if hc is None:
        return normalise_healthcheck(image.healthcheck)
    out: dict[str, Any] = {"test": ["CMD", *hc.test]}
    for key in ("interval", "timeout", "start_period"):
        if getattr(hc, key) is not None:
            out[key] = getattr(hc, key)
    if hc.retries is not None:
        out["retries"] = hc.retries
    return out


class ExpectedSettings(Renderer[Settings]):
    """See `Renderer`; `image` is the config of the image the container runs."""

    target = "expected settings"
    expresses = frozenset(SETTINGS) - {"timeout"} - SWARM_ONLY
    leaves = leaving(
        timeout=lambda _: "a container shows no timeout; the launcher keeps it",
        swarm_network=swarm_only_note,
    )

    def __init__(self, image: ImageConfig | None) -> None:
        self.image = image or ImageConfig()

    def build(self, walked: Walked) -> Settings:
        p, img = walked.profile, self.image
        image_env = env_dict(img.env)
        image_labels = user_labels(img.labels)
        return {
            "image": walked.image,
            "user": p.user or img.user or None,
            "read_only": p.read_only,
            "privileged": p.privileged,
            "network": p.network,
            "pid": p.pid,
            "ipc": p.ipc,
            "uts": p.uts,
            "capabilities": ALL_CAPABILITIES if p.privileged else sorted(p.capabilities),
            "no_new_privileges": p.no_new_privileges,
            "seccomp": "unconfined" if p.privileged else p.seccomp.canonical,
            "pids_limit": p.pids_limit,
            "memory": p.memory,
            "cpus": p.cpus,
            "tmpfs": {
                t.target: {
                    "size": t.size,
                    "mode": None if t.mode is None else f"{t.mode:o}",
                    "options": sorted(t.options),
                }
                for t in walked.tmpfs
            },
            "mounts": sorted(
                (
                    {
                        "type": "bind",
                        "source": str(Path(m.source).resolve()),
                        "target": m.target,
                        "writable": m.writable,
                        **({"propagation": m.propagation} if m.propagation else {}),
                    }
                    for m in walked.mounts
                ),
                key=lambda m: str(m["target"]),
            ),
            "env": net_of_image({**image_env, **walked.env}, image_env),
            "workdir": p.workdir or img.working_dir or None,
            "healthcheck": _healthcheck(walked, img),
            "labels": net_of_image({**image_labels, **p.labels}, image_labels),
            "devices": sorted(d.text for d in p.devices),
            "ports": sorted(x.text for x in p.ports),
            "restart": p.restart,
            "sysctls": dict(sorted(p.sysctls.items())),
            "cgroup_parent": p.cgroup_parent,
            "userns": p.userns,
            "oom_kill_disable": p.oom_kill_disable,
            "apparmor": p.apparmor,
            "selinux": list(p.selinux) or (["disable"] if engine_disables_labels(p) else []),
            "ulimits": {
                name: {"soft": u.soft, "hard": u.hard} for name, u in sorted(p.ulimits.items())
            },
        }
