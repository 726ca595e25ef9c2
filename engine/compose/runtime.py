"""The runtime keys of issue 12 (`restart`, `sysctls`, `cgroup_parent`, `userns`,
`oom_kill_disable`, `apparmor`, `selinux`, and `ports`, `devices`, `ulimits` as a profile holds
them), read from compose as `engine.audit.observe_runtime` reads them off a container."""

from __future__ import annotations

from typing import Any

from engine.compose.reader import Reader


def _security_opts(r: Reader, key: str) -> list[str]:
    out = []
    for opt in r.get("security_opt") or []:
        name, sep, value = str(opt).replace(":", "=", 1).partition("=")
        if name == key and sep:
            out.append(value)
    return out


def _restart(r: Reader) -> str:
    value = str(r.get("restart") or "no")
    if value.startswith("on-failure"):
        count = value.partition(":")[2]
        return f"on-failure:{count or 0}"  # 0: retried without end, as the engine reads it
    return value


def settings(r: Reader, privileged: bool) -> dict[str, Any]:
    """The scalar runtime keys of `Settings`."""
    from policy.model import Profile
    from policy.runtime_rules import engine_disables_labels

    labels = sorted(set(_security_opts(r, "label")))
    ns = Profile(name="n", image="i", privileged=privileged, pid=str(r.get("pid") or "private"),
                 ipc=str(r.get("ipc") or "private"))  # fmt: skip
    return {
        "restart": _restart(r),
        "sysctls": {str(k): str(v) for k, v in sorted((r.get("sysctls") or {}).items())},
        "cgroup_parent": None if r.get("cgroup_parent") is None else str(r.get("cgroup_parent")),
        "userns": "host" if r.get("userns_mode") == "host" else "private",
        "oom_kill_disable": r.get("oom_kill_disable") is True,
        "apparmor": next(reversed(_security_opts(r, "apparmor")), None),
        "selinux": labels or (["disable"] if engine_disables_labels(ns) else []),
    }


def profile_fields(st: dict[str, Any]) -> dict[str, Any]:
    """The runtime keys as `Profile` holds them, from `Settings` (for the rules and import)."""
    from policy.runtime_keys import Device, Port, Ulimit

    ports = []
    for text in st["ports"]:
        spec, _, protocol = text.rpartition("/")
        rest, _, container = spec.rpartition(":")
        host, _, host_port = rest.rpartition(":")
        ports.append(
            Port(
                host=host.strip("[]"),
                host_port=int(host_port) if host_port else None,
                container=int(container),
                protocol=protocol,
            )
        )
    devices = [Device(**dict(zip(("host", "container", "permissions"), d.split(":"), strict=True)))
               for d in st["devices"]]  # fmt: skip
    return {
        "ulimits": {n: Ulimit(soft=u["soft"], hard=u["hard"]) for n, u in st["ulimits"].items()},
        "ports": tuple(ports),
        "devices": tuple(devices),
        "restart": st["restart"],
        "sysctls": st["sysctls"],
        "cgroup_parent": st["cgroup_parent"],
        "userns": st["userns"],
        "oom_kill_disable": st["oom_kill_disable"],
        "apparmor": st["apparmor"],
        "selinux": tuple(_declared_labels(st)),
    }


def _declared_labels(st: dict[str, Any]) -> list[str]:
    # The engine adds `label=disable` itself to a privileged container or one sharing the host's
    # PID or IPC namespace: that one is not the file's, and the rule for the cause fires.
    engine_adds = st["privileged"] or st["pid"] == "host" or st["ipc"] == "host"
    labels: list[str] = st["selinux"]
    return [] if engine_adds and labels == ["disable"] else labels
