"""Normalise a container's inspect document into the same canonical settings a profile yields.

Both `expected_settings` (engine.drift) and `observed_settings` return a dict with the same keys
and canonical values (bytes, CPUs, capability names without `CAP_`, seccomp as default /
unconfined / content hash), so launch verification and the audit share one comparison.
Values the engine fills in from the image (env, labels, workdir, user, healthcheck) are compared
net of the image's own, which the caller passes as `image_config`.
"""

from __future__ import annotations

import json
from typing import Any

from engine.labels import user_labels
from policy import units
from policy.loader import seccomp_from_json

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


def normalise_healthcheck(check: dict[str, Any] | None) -> dict[str, Any] | None:
    """Engine healthcheck (durations in ns) in canonical form; NONE means no check."""
    if not check or not check.get("Test") or check["Test"] == ["NONE"]:
        return None
    out: dict[str, Any] = {"test": list(check["Test"])}
    for key, name in (
        ("Interval", "interval"),
        ("Timeout", "timeout"),
        ("StartPeriod", "start_period"),
    ):
        if check.get(key):
            out[name] = round(check[key] / 1e9, 3)
    if check.get("Retries"):
        out["retries"] = check["Retries"]
    return out


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


def observed_settings(inspect: dict[str, Any], image_config: dict[str, Any] | None) -> Settings:
    """The canonical settings of a container, from its inspect document."""
    config = inspect.get("Config") or {}
    host = inspect.get("HostConfig") or {}
    image = image_config or {}
    privileged = bool(host.get("Privileged"))
    cap_add = tuple(units.parse_capability(c) for c in host.get("CapAdd") or [])
    cap_drop = tuple(units.parse_capability(c) for c in host.get("CapDrop") or [])
    caps = (
        ALL_CAPABILITIES if privileged else sorted(units.effective_capabilities(cap_add, cap_drop))
    )
    security_opt = host.get("SecurityOpt") or []
    cpus: float | None = None
    if host.get("NanoCpus"):
        cpus = round(host["NanoCpus"] / 1e9, 3)
    elif (host.get("CpuQuota") or 0) > 0:
        cpus = round(host["CpuQuota"] / (host.get("CpuPeriod") or 100000), 3)
    tmpfs = {path: parse_tmpfs_options(opts) for path, opts in (host.get("Tmpfs") or {}).items()}
    mounts = []
    for m in inspect.get("Mounts") or []:
        if m.get("Type") == "tmpfs":
            continue
        entry: dict[str, Any] = {
            "type": m.get("Type"),
            "source": m.get("Source"),
            "target": m.get("Destination"),
            "writable": bool(m.get("RW")),
        }
        if m.get("Propagation") not in (None, "", "rprivate"):
            entry["propagation"] = m["Propagation"]
        mounts.append(entry)
    for m in host.get("Mounts") or []:
        if m.get("Type") == "tmpfs":
            options = m.get("TmpfsOptions") or {}
            tmpfs[m["Target"]] = {
                "size": options.get("SizeBytes"),
                "mode": f"{options['Mode']:o}" if options.get("Mode") else None,
                "options": ["ro"] if m.get("ReadOnly") else [],
            }
    return {
        "image": config.get("Image"),
        "user": config.get("User") or None,
        "read_only": bool(host.get("ReadonlyRootfs")),
        "privileged": privileged,
        "network": "bridge"
        if host.get("NetworkMode") in (None, "", "default")
        else host["NetworkMode"],
        "pid": _namespace(host.get("PidMode")),
        "ipc": _namespace(host.get("IpcMode"), ("", "private", "shareable")),
        "uts": _namespace(host.get("UTSMode")),
        "capabilities": caps,
        "no_new_privileges": any(
            o in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true")
            for o in security_opt
        ),
        "seccomp": _seccomp(security_opt, privileged),
        "pids_limit": _limit(host.get("PidsLimit")),
        "memory": _limit(host.get("Memory")),
        "cpus": cpus,
        "tmpfs": dict(sorted(tmpfs.items())),
        "mounts": sorted(mounts, key=lambda m: str(m["target"])),
        "env": net_of_image(env_dict(config.get("Env")), env_dict(image.get("Env"))),
        "workdir": config.get("WorkingDir") or None,
        "healthcheck": normalise_healthcheck(config.get("Healthcheck")),
        "labels": net_of_image(user_labels(config.get("Labels")), user_labels(image.get("Labels"))),
        "devices": sorted(
            f"{d.get('PathOnHost')}:{d.get('PathInContainer')}" for d in host.get("Devices") or []
        ),
        "ports": sorted((host.get("PortBindings") or {}).keys()),
    }
