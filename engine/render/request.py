"""Profile -> the Engine API's create body (`POST /containers/create`, API 1.41).

The body is plain JSON that every backend posts as it is, so no SDK type leaves the backend.
The custom seccomp profile goes inline, read again now: if the file changed since the policy
was loaded, the launch is refused rather than run under a profile nobody validated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.backends.interface import CreateBody
from engine.render.interface import Renderer, leaving, swarm_only_note
from engine.render.walk import CPU_PERIOD, SETTINGS, SWARM_ONLY, Walked
from policy.errors import UsageError
from policy.model import Profile
from policy.seccomp import read_seccomp_document


def security_options(profile: Profile, seccomp: str | None) -> list[str]:
    """`--security-opt` values; `seccomp` is how the custom profile is given (inline or a path)."""
    out = []
    if profile.no_new_privileges:
        out.append("no-new-privileges:true")
    if profile.seccomp.mode == "unconfined":
        out.append("seccomp=unconfined")
    elif profile.seccomp.mode == "custom" and seccomp is not None:
        out.append("seccomp=" + seccomp)
    if profile.apparmor is not None:
        out.append("apparmor=" + profile.apparmor)
    out.extend("label=" + option for option in profile.selinux)
    return out


def inline_seccomp(profile: Profile) -> str | None:
    """The custom seccomp JSON as loaded now, refused if it is not what was validated."""
    if profile.seccomp.mode != "custom" or not profile.seccomp.path:
        return None
    path = Path(profile.seccomp.path)
    # One read: the text sent is the text whose digest was checked.
    read = read_seccomp_document(path)
    if isinstance(read, str) or read[0].digest != profile.seccomp.digest:
        why = read if isinstance(read, str) else f"its digest is now {read[0].digest}"
        raise UsageError(
            f"profile '{profile.name}': seccomp profile {path} changed since the policy was "
            f"loaded ({why}); validate the policy again and rerun"
        )
    return json.dumps(read[1])


NAMESPACE_KEYS = {"pid": "PidMode", "ipc": "IpcMode", "uts": "UTSMode"}


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1e9)


def _restart_policy(restart: str) -> dict[str, Any] | None:
    if restart == "no":
        return None
    name, _, count = restart.partition(":")
    return {"Name": name, "MaximumRetryCount": int(count or 0)}


def _port_bindings(p: Profile) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for x in p.ports:
        out.setdefault(f"{x.container}/{x.protocol}", []).append(
            {"HostIp": x.host, "HostPort": str(x.host_port or "")}
        )
    return out


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


class EngineRequest(Renderer[CreateBody]):
    """See `Renderer`. `tty` asks for an interactive container (`policy shell`)."""

    target = "an Engine API create request"
    expresses = frozenset(SETTINGS) - {"timeout"} - SWARM_ONLY
    leaves = leaving(
        timeout=lambda _: "the launcher enforces the timeout, not the engine",
        swarm_network=swarm_only_note,
    )

    def __init__(self, tty: bool = False) -> None:
        self.tty = tty

    def build(self, walked: Walked) -> CreateBody:
        p = walked.profile
        host = _drop_none(
            {
                "ReadonlyRootfs": p.read_only,
                "Privileged": p.privileged,
                "NetworkMode": p.network,
                "CapDrop": list(p.cap_drop) or None,
                "CapAdd": list(p.cap_add) or None,
                "SecurityOpt": security_options(p, inline_seccomp(p)) or None,
                "Tmpfs": {t.target: t.option_string for t in walked.tmpfs} or None,
                "Mounts": [
                    {
                        "Target": m.target,
                        "Source": m.source,
                        "Type": "bind",
                        "ReadOnly": not m.writable,
                        **(
                            {"BindOptions": {"Propagation": m.propagation}} if m.propagation else {}
                        ),
                    }
                    for m in walked.mounts
                ]
                or None,
                "PidsLimit": p.pids_limit,
                "Memory": p.memory,
                "CpuPeriod": CPU_PERIOD if p.cpus is not None else None,
                "CpuQuota": walked.cpu_quota,
                "PortBindings": _port_bindings(p) or None,
                "RestartPolicy": _restart_policy(p.restart),
                "Sysctls": dict(p.sysctls) or None,
                "CgroupParent": p.cgroup_parent,
                "UsernsMode": "host" if p.userns == "host" else None,
                "OomKillDisable": p.oom_kill_disable or None,
                "Devices": [
                    {
                        "PathOnHost": d.host,
                        "PathInContainer": d.container,
                        "CgroupPermissions": d.permissions,
                    }
                    for d in p.devices
                ]
                or None,
                "Ulimits": [
                    {"Name": name, "Soft": u.soft, "Hard": u.hard}
                    for name, u in sorted(p.ulimits.items())
                ]
                or None,
                **{NAMESPACE_KEYS[ns]: mode for ns, mode in walked.namespaces.items()},
            }
        )
        healthcheck = None
        if p.healthcheck is not None:
            hc = p.healthcheck
            healthcheck = _drop_none(
                {
                    "Test": ["CMD", *hc.test],
                    "Interval": _ns(hc.interval),
                    "Timeout": _ns(hc.timeout),
                    "Retries": hc.retries,
                    "StartPeriod": _ns(hc.start_period),
                }
            )
        return _drop_none(
            {
                "Image": walked.image,
                "Cmd": list(walked.command) or None,
                "User": p.user,
                "WorkingDir": p.workdir,
                "Env": [f"{k}={v}" for k, v in walked.env.items()] or None,
                "Labels": walked.labels,
                "Healthcheck": healthcheck,
                "ExposedPorts": {f"{x.container}/{x.protocol}": {} for x in p.ports} or None,
                "Tty": self.tty,
                "OpenStdin": self.tty,
                "StdinOnce": False,
                "AttachStdin": False,
                "AttachStdout": False,
                "AttachStderr": False,
                "HostConfig": host,
            }
        )
