"""Normalise a container's inspect document into the same canonical settings a profile yields.

`observed_settings` returns the keys and canonical values of `engine.render.settings` (bytes,
CPUs, capability names without `CAP_`, seccomp as default / unconfined / content hash), so
launch verification and the audit share one comparison. Values the engine fills in from the
image (env, labels, workdir, user, healthcheck) are compared net of the image's own.
"""

from __future__ import annotations

import json
from typing import Any

from engine.audit.observe_runtime import runtime_settings
from engine.backends.interface import ContainerInspect, HostConfigDoc, ImageConfig
from engine.labels import user_labels
from engine.render.settings import (
    ALL_CAPABILITIES,
    Settings,
    env_dict,
    net_of_image,
    normalise_healthcheck,
)
from policy import units
from policy.seccomp import seccomp_from_json


def parse_tmpfs_options(text: str) -> dict[str, Any]:
    """`size=100m,mode=1777,nosuid` -> {"size": 104857600, "mode": "1777", "options": [...]}."""
    spec: dict[str, Any] = {"size": None, "mode": None, "options": []}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if sep and key == "size":
            try:
                spec["size"] = units.parse_size(value)
            except units.UnitError:
                spec["size"] = value
        elif sep and key == "mode":
            spec["mode"] = f"{int(value, 8):o}" if value.isdigit() else value
        else:
            spec["options"].append(part)
    spec["options"] = sorted(set(spec["options"]))
    return spec


def _seccomp(security_opt: list[str], privileged: bool) -> str:
    if privileged:
        return "unconfined"
    for opt in security_opt:
        key, sep, value = (
            opt.replace(":", "=", 1).partition("=")
            if opt.startswith("seccomp:")
            else opt.partition("=")
        )
        if key != "seccomp" or not sep:
            continue
        if value == "unconfined":
            return "unconfined"
        try:
            seccomp = seccomp_from_json(json.loads(value))
        except (json.JSONDecodeError, RecursionError):
            seccomp = None
        return seccomp.canonical if seccomp else "invalid"
    return "default"


def _namespace(mode: str | None, private: tuple[str, ...] = ("", "private")) -> str:
    return "private" if (mode or "") in private else str(mode)


def _limit(value: int | None) -> int | None:
    return value if value and value > 0 else None


def _cpus(host: HostConfigDoc) -> float | None:
    if host.nano_cpus:
        return round(host.nano_cpus / 1e9, 3)
    if (host.cpu_quota or 0) > 0:
        return round((host.cpu_quota or 0) / (host.cpu_period or 100000), 3)
    return None


def _capabilities(host: HostConfigDoc) -> list[str]:
    if host.privileged:
        return ALL_CAPABILITIES
    cap_add = tuple(units.parse_capability(c) for c in host.cap_add or [])
    cap_drop = tuple(units.parse_capability(c) for c in host.cap_drop or [])
    return sorted(units.effective_capabilities(cap_add, cap_drop))


def _mounts(inspect: ContainerInspect) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(bind and volume mounts, tmpfs mounts) as the engine made them."""
    host = inspect.host_config
    tmpfs = {path: parse_tmpfs_options(opts) for path, opts in (host.tmpfs or {}).items()}
    mounts = []
    for m in inspect.mounts or []:
        if m.type == "tmpfs":
            continue
        entry: dict[str, Any] = {
            "type": m.type,
            "source": m.source,
            "target": m.destination,
            "writable": m.rw,
        }
        if m.propagation not in (None, "", "rprivate"):
            entry["propagation"] = m.propagation
        mounts.append(entry)
    for hm in host.mounts or []:
        if hm.type == "tmpfs":
            options = hm.tmpfs_options
            tmpfs[hm.target] = {
                "size": options.size_bytes if options else None,
                "mode": f"{options.mode:o}" if options and options.mode else None,
                "options": ["ro"] if hm.read_only else [],
            }
    return sorted(mounts, key=lambda m: str(m["target"])), dict(sorted(tmpfs.items()))


def observed_settings(inspect: ContainerInspect, image: ImageConfig | None) -> Settings:
    """The canonical settings of a container, from its inspect document."""
    config, host = inspect.config, inspect.host_config
    image = image or ImageConfig()
    security_opt = host.security_opt or []
    mounts, tmpfs = _mounts(inspect)
    return {
        "image": config.image,
        "user": config.user or None,
        "read_only": host.readonly_rootfs,
        "privileged": host.privileged,
        "network": "bridge" if host.network_mode in (None, "", "default") else host.network_mode,
        "pid": _namespace(host.pid_mode),
        "ipc": _namespace(host.ipc_mode, ("", "private", "shareable")),
        "uts": _namespace(host.uts_mode),
        "capabilities": _capabilities(host),
        "no_new_privileges": any(
            o in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")
            for o in security_opt
        ),
        "seccomp": _seccomp(security_opt, host.privileged),
        "pids_limit": _limit(host.pids_limit),
        "memory": _limit(host.memory),
        "cpus": _cpus(host),
        "tmpfs": tmpfs,
        "mounts": mounts,
        "env": net_of_image(env_dict(config.env), env_dict(image.env)),
        "workdir": config.working_dir or None,
        "healthcheck": normalise_healthcheck(config.healthcheck),
        "labels": net_of_image(user_labels(config.labels), user_labels(image.labels)),
        **runtime_settings(host),
    }
