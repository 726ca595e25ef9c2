"""Profile -> a compose file with one service (`policy render --as compose`).

Format 2.4, which has `mem_limit`, `cpu_quota` and `pids_limit` for a plain `docker-compose up`.
Every string has `$` escaped, so compose cannot interpolate a value.
"""

from __future__ import annotations

from typing import Any

from engine.render.interface import Renderer, leaving, swarm_only_note, timeout_note
from engine.render.request import security_options
from engine.render.walk import CPU_PERIOD, SETTINGS, SWARM_ONLY, Walked
from policy import units


def _escape(value: Any) -> Any:
    """Compose interpolates `$VAR` in every string; `$$` is a literal dollar."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    return value


def _healthcheck(walked: Walked) -> dict[str, Any] | None:
    hc = walked.profile.healthcheck
    if hc is None:
        return None
    check: dict[str, Any] = {"test": ["CMD", *hc.test]}
    for key in ("interval", "timeout", "start_period"):
        value = getattr(hc, key)
        if value is not None:
            check[key] = units.format_duration(value)
    if hc.retries is not None:
        check["retries"] = hc.retries
    return check


class Compose(Renderer[dict[str, Any]]):
    """See `Renderer`."""

    target = "a compose service"
    expresses = frozenset(SETTINGS) - {"timeout"} - SWARM_ONLY
    leaves = leaving(timeout=timeout_note, swarm_network=swarm_only_note)

    def build(self, walked: Walked) -> dict[str, Any]:
        p = walked.profile
        opts = [o.replace("seccomp=", "seccomp:", 1) for o in security_options(p, p.seccomp.path)]
        service: dict[str, Any] = {
            "image": walked.image,
            "user": p.user,
            "read_only": p.read_only,
            "privileged": p.privileged or None,
            "network_mode": p.network,
            **walked.namespaces,
            "cap_drop": list(p.cap_drop) or None,
            "cap_add": list(p.cap_add) or None,
            "security_opt": opts or None,
            "pids_limit": p.pids_limit,
            "mem_limit": p.memory,
            "cpu_period": CPU_PERIOD if walked.cpu_quota is not None else None,
            "cpu_quota": walked.cpu_quota,
            "ports": [x.text for x in p.ports] or None,
            "restart": None if p.restart == "no" else p.restart,
            "sysctls": dict(sorted(p.sysctls.items())) or None,
            "cgroup_parent": p.cgroup_parent,
            "userns_mode": "host" if p.userns == "host" else None,
            "oom_kill_disable": p.oom_kill_disable or None,
            "devices": [d.text for d in p.devices] or None,
            "ulimits": {
                name: {"soft": u.soft, "hard": u.hard} for name, u in sorted(p.ulimits.items())
            }
            or None,
            "tmpfs": [f"{t.target}:{t.option_string}" for t in walked.tmpfs] or None,
            "volumes": [
                {
                    "type": "bind",
                    "source": m.source,
                    "target": m.target,
                    "read_only": not m.writable,
                    **({"bind": {"propagation": m.propagation}} if m.propagation else {}),
                }
                for m in walked.mounts
            ]
            or None,
            "environment": dict(sorted(walked.env.items())) or None,
            "working_dir": p.workdir,
            "healthcheck": _healthcheck(walked),
            "labels": dict(sorted(walked.labels.items())),
            "command": list(walked.command) or None,
        }
        service = {k: v for k, v in service.items() if v is not None}
        return {"version": "2.4", "services": {p.name: _escape(service)}}
