"""The runtime settings of issue 12 read off an inspect document (`HostConfig`): ulimits, ports,
devices, ...

`observed_settings` (engine.audit.observe) takes these keys from here, in the canonical values
`engine.render.settings` renders for a profile; `engine.audit.as_profile` builds the profile's
runtime fields from the same reading, so the rules judge exactly what is compared.
"""

from __future__ import annotations

from typing import Any

from engine.backends.interface import HostConfigDoc
from policy.runtime_keys import Device, Port, port_text


def _binding(container_port: str, binding: Any) -> Port | str:
    """One `PortBindings` entry; what cannot be read stays text, so it still differs."""
    port, _, protocol = container_port.partition("/")
    if not isinstance(binding, dict) or not port.isdigit():
        return f"unreadable {container_port}: {binding!r}"
    host_port = str(binding.get("HostPort") or "")
    # No address is every interface, as the engine binds it (0.0.0.0, and :: with IPv6).
    host = str(binding.get("HostIp") or "0.0.0.0")
    if host_port and not host_port.isdigit():
        return port_text(host, None, int(port), protocol or "tcp") + f" (host port {host_port})"
    return Port(
        host=host,
        host_port=int(host_port) if host_port else None,
        container=int(port),
        protocol=protocol or "tcp",
    )


def ports(host: HostConfigDoc) -> list[Port | str]:
    out: list[Port | str] = []
    for container_port, bindings in sorted((host.port_bindings or {}).items()):
        for binding in bindings if isinstance(bindings, list) else [bindings]:
            out.append(_binding(container_port, binding))
    return out


def devices(host: HostConfigDoc) -> list[Device]:
    return [
        Device(
            host=d.path_on_host or "",
            container=d.path_in_container or d.path_on_host or "",
            permissions=d.cgroup_permissions or "rwm",
        )
        for d in host.devices or []
    ]


def restart(host: HostConfigDoc) -> str:
    policy = host.restart_policy
    name = (policy.name if policy else None) or "no"
    if name == "on-failure":
        return f"on-failure:{(policy.maximum_retry_count if policy else 0) or 0}"  # 0: no end
    return name


def _security_opts(host: HostConfigDoc, key: str) -> list[str]:
    """The values of `key=VALUE` (or `key:VALUE`) security options, in order."""
    out = []
    for opt in host.security_opt or []:
        name, sep, value = opt.replace(":", "=", 1).partition("=")
        if name == key and sep:
            out.append(value)
    return out


def runtime_scalars(host: HostConfigDoc) -> dict[str, Any]:
    """The keys that are one value each, as `Profile` holds them."""
    return {
        "restart": restart(host),
        "sysctls": dict(sorted((host.sysctls or {}).items())),
        "cgroup_parent": host.cgroup_parent or None,
        "userns": "host" if host.userns_mode == "host" else "private",
        "oom_kill_disable": bool(host.oom_kill_disable),
        # The last one counts, as in the engine.
        "apparmor": next(reversed(_security_opts(host, "apparmor")), None),
        "selinux": sorted(set(_security_opts(host, "label"))),
    }


def runtime_settings(host: HostConfigDoc) -> dict[str, Any]:
    """The runtime keys of `Settings`, from a container's (or a create request's) HostConfig."""
    return {
        "devices": sorted(d.text for d in devices(host)),
        "ports": sorted(p if isinstance(p, str) else p.text for p in ports(host)),
        "ulimits": {
            u.name: {"soft": u.soft, "hard": u.hard}
            for u in sorted(host.ulimits or [], key=lambda u: u.name)
        },
        **runtime_scalars(host),
    }
