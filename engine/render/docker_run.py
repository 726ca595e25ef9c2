"""Profile -> a `docker run` argv (`policy render --as docker-run`).

An argv list, never a shell string: `shlex.join` quotes it only for display, and the printed line
runs as printed, hostile words intact.
"""

from __future__ import annotations

import csv
import io

from engine.render.interface import Renderer, leaving, refusing, swarm_only_note, timeout_note
from engine.render.request import security_options
from engine.render.walk import CPU_PERIOD, SETTINGS, SWARM_ONLY, Walked
from policy import units


def _csv(fields: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(fields)  # --mount is parsed as CSV
    return buffer.getvalue()


class DockerRun(Renderer[list[str]]):
    """See `Renderer`."""

    target = "a docker run line"
    expresses = frozenset(SETTINGS) - {"timeout", "healthcheck", "restart"} - SWARM_ONLY
    cannot_express = refusing(
        healthcheck="an exec-form healthcheck can only be given to `docker run` through a "
        "shell (--health-cmd); use --as compose or `policy run`",
        restart="`docker run --rm` cannot be combined with --restart; use --as compose or "
        "`policy run`",
    )
    leaves = leaving(timeout=timeout_note, swarm_network=swarm_only_note)

    def build(self, walked: Walked) -> list[str]:
        p = walked.profile
        argv = ["docker", "run", "--rm"]
        if p.user is not None:
            argv += ["--user", p.user]
        if p.read_only:
            argv.append("--read-only")
        if p.privileged:
            argv.append("--privileged")
        argv += ["--network", p.network]
        for ns, mode in walked.namespaces.items():
            argv += [f"--{ns}", mode]
        argv += [x for cap in p.cap_drop for x in ("--cap-drop", cap)]
        argv += [x for cap in p.cap_add for x in ("--cap-add", cap)]
        argv += [x for opt in security_options(p, p.seccomp.path) for x in ("--security-opt", opt)]
        if p.pids_limit is not None:
            argv += ["--pids-limit", str(p.pids_limit)]
        if p.memory is not None:
            argv += ["--memory", units.format_size(p.memory)]
        if walked.cpu_quota is not None:
            # Quota and period rather than --cpus: the same limit, but the engine does not refuse
            # a profile that allows more CPUs than this particular host has.
            argv += ["--cpu-period", str(CPU_PERIOD), "--cpu-quota", str(walked.cpu_quota)]
        argv += [x for port in p.ports for x in ("--publish", port.text)]
        argv += [x for k, v in sorted(p.sysctls.items()) for x in ("--sysctl", f"{k}={v}")]
        if p.cgroup_parent is not None:
            argv += ["--cgroup-parent", p.cgroup_parent]
        if p.userns == "host":
            argv += ["--userns", "host"]
        if p.oom_kill_disable:
            argv.append("--oom-kill-disable")
        argv += [x for d in p.devices for x in ("--device", d.text)]
        argv += [
            x
            for name, u in sorted(p.ulimits.items())
            for x in ("--ulimit", f"{name}={u.soft}:{u.hard}")
        ]
        argv += [x for t in walked.tmpfs for x in ("--tmpfs", f"{t.target}:{t.option_string}")]
        for m in walked.mounts:
            fields = ["type=bind", f"source={m.source}", f"target={m.target}"]
            if m.propagation:
                fields.append(f"bind-propagation={m.propagation}")
            argv += ["--mount", _csv(fields if m.writable else [*fields, "readonly"])]
        argv += [x for k, v in sorted(walked.env.items()) for x in ("--env", f"{k}={v}")]
        if p.workdir is not None:
            argv += ["--workdir", p.workdir]
        argv += [x for k, v in sorted(walked.labels.items()) for x in ("--label", f"{k}={v}")]
        return [*argv, walked.image, *walked.command]
