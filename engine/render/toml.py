"""A running container described as a profile: for `policy capture` and unmanaged audits.

Rules and guardrails judge `Profile`s; describing an unmanaged container as one lets the same
rules judge what actually runs, as docker-bench-security does for every container.
"""

from __future__ import annotations

from typing import Any

from engine.audit.observe import observed_settings
from policy import units
from policy.model import Mount, Profile, Seccomp, Tmpfs


def profile_from_inspect(
    inspect: dict[str, Any], image_config: dict[str, Any] | None, name: str | None = None
) -> Profile:
    """The profile that describes a container as it is (capabilities as add/drop from ALL)."""
    s = observed_settings(inspect, image_config)
    host = inspect.get("HostConfig") or {}
    # As the engine was asked (not the effective set), so `cap-drop-all` and `cap-add` judge
    # exactly what the container's creator wrote.
    cap_add = sorted({units.parse_capability(c) for c in host.get("CapAdd") or []})
    cap_drop = sorted({units.parse_capability(c) for c in host.get("CapDrop") or []})
    seccomp = s["seccomp"]
    if seccomp.startswith("sha256:"):
        sc = Seccomp(mode="custom", digest=seccomp)
    else:
        sc = Seccomp(mode="unconfined" if seccomp == "unconfined" else "default")
    tmpfs = {
        path: Tmpfs(
            size=spec["size"] if isinstance(spec["size"], int) else 0,
            mode=int(spec["mode"], 8) if spec.get("mode") else None,
            options=tuple(spec.get("options") or ()),
        )
        for path, spec in s["tmpfs"].items()
    }
    mounts = tuple(
        Mount(source=str(m["source"]), target=str(m["target"]), writable=m["writable"])
        for m in s["mounts"]
    )
    return Profile(
        name=name or (inspect.get("Name") or "container").lstrip("/"),
        image=s["image"] or "unknown",
        user=s["user"],
        read_only=s["read_only"],
        privileged=s["privileged"],
        network=s["network"],
        pid=s["pid"],
        ipc=s["ipc"],
        uts=s["uts"],
        cap_drop=tuple(cap_drop),
        cap_add=tuple(cap_add),
        no_new_privileges=s["no_new_privileges"],
        seccomp=sc,
        pids_limit=s["pids_limit"],
        memory=s["memory"],
        cpus=s["cpus"],
        tmpfs=tmpfs,
        mounts=mounts,
        env=s["env"],
        workdir=s["workdir"],
        labels=s["labels"],
    )


def capture_toml(
    inspect: dict[str, Any], image_config: dict[str, Any] | None, name: str | None = None
) -> str:
    """A policy file with one profile describing the container, in the policy format."""
    import re

    import tomli_w

    p = profile_from_inspect(inspect, image_config, name)
    profile_name = re.sub(r"[^A-Za-z0-9_.-]", "-", p.name).strip("-.") or "captured"
    body: dict[str, Any] = {"image": p.image}
    if p.user:
        body["user"] = p.user
    body["read_only"] = p.read_only
    if p.privileged:
        body["privileged"] = True
    body["network"] = p.network
    for ns in ("pid", "ipc", "uts"):
        if getattr(p, ns) != "private":
            body[ns] = getattr(p, ns)
    if p.cap_drop:
        body["cap_drop"] = list(p.cap_drop)
    if p.cap_add:
        body["cap_add"] = list(p.cap_add)
    body["no_new_privileges"] = p.no_new_privileges
    body["seccomp"] = "unconfined" if p.seccomp.mode == "unconfined" else "default"
    for key in ("pids_limit",):
        if getattr(p, key) is not None:
            body[key] = getattr(p, key)
    if p.memory is not None:
        body["memory"] = units.format_size(p.memory)
    if p.cpus is not None:
        body["cpus"] = p.cpus
    if p.tmpfs:
        body["tmpfs"] = {
            path: {
                k: v
                for k, v in {
                    "size": units.format_size(t.size) if t.size else None,
                    "mode": None if t.mode is None else f"{t.mode:o}",
                    "options": list(t.options) or None,
                }.items()
                if v is not None
            }
            for path, t in p.tmpfs.items()
        }
    if p.mounts:
        body["mounts"] = [
            {"source": m.source, "target": m.target, "writable": m.writable} for m in p.mounts
        ]
    if p.env:
        body["env"] = dict(p.env)
    if p.workdir:
        body["workdir"] = p.workdir
    if p.labels:
        body["labels"] = dict(p.labels)
    header = (
        f"# Captured from container {inspect['Id'][:12]} "
        f"({(inspect.get('Name') or '').lstrip('/')}). Review before use: a custom seccomp "
        'profile cannot be recovered and is written as "default".\n'
    )
    return header + tomli_w.dumps({"version": 1, "profiles": {profile_name: body}})
