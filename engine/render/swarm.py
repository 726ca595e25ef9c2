"""Profile -> a Swarm service spec (`POST /services/create`, Engine API 1.41): a replicated job.

A service is not a container: the manager stores the spec and each node makes the containers,
from what API 1.41 can say. So this renderer declares, for every setting, one of four things:
it spells it in the spec (`expresses`), the nodes enforce it themselves and the launcher proves
it on each node (`proved_by_node`), the launcher keeps it (`leaves`: the timeout), or it is
refused by name before anything is created (`cannot_express`). Any setting not named in the
first three is refused: a key added to `Profile` later is refused here until someone spells it.

Values the spec cannot carry are refused too, by field: tmpfs options (API 1.46), a network
other than "none" (with `swarm_network`), and `{{` in env, labels and mount paths, which Swarm
would expand as templates.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from engine.render.interface import Renderer, Unexpressible, leaving, render
from engine.render.request import _drop_none, _ns
from engine.render.walk import SETTINGS, Walked

API_VERSION = "1.41"
STOP_GRACE_NS = 1_000_000_000
TARGET = f"a Swarm service (Engine API {API_VERSION})"

EXPRESSES = frozenset(
    {
        "image",
        "user",
        "read_only",
        "network",  # "none" only, as the `swarm_network` it names; see `_refusals`
        "swarm_network",
        "cap_drop",
        "cap_add",
        "pids_limit",
        "memory",
        "cpus",
        "tmpfs",  # size and mode; options are refused by value
        "mounts",
        "env",
        "workdir",
        "healthcheck",
        "labels",
        "ulimits",  # ContainerSpec.Ulimits, new in API 1.41
        "sysctls",  # ContainerSpec.Sysctls (API 1.40)
    }
)
# Enforced by each node's daemon for every container it makes, never by the spec: proved per
# node by the launcher (`engine.launcher.swarm_verify`), or the job is stopped.
PROVED_BY_NODE = MappingProxyType(
    {
        "no_new_privileges": "a node's daemon-wide no-new-privileges (dockerd --no-new-privileges "
        'or daemon.json `"no-new-privileges": true`), read from each task\'s process in /proc',
    }
)
_REASONS = {
    "privileged": "a service cannot run privileged",
    "pid": "a service cannot join the host's pid namespace",
    "ipc": "a service cannot set the ipc namespace",
    "uts": "a service cannot join the host's uts namespace",
    "seccomp": f"a service has no seccomp profile of its own before API 1.44 (the manager "
    f"speaks {API_VERSION}); only the node's default profile can be proved",
    "apparmor": "a service has no AppArmor profile of its own before API 1.44",
    "ports": "a job's tasks publish nothing (a service publishes through the routing mesh)",
    "devices": "a service cannot be given host devices at API 1.41",
    "restart": "a job's tasks never restart: a failed shard is a failed shard",
    "userns": "a service cannot choose its user namespace",
    "cgroup_parent": "a service cannot choose its cgroup parent",
    "oom_kill_disable": "a service cannot disable the OOM killer",
    "selinux": "not spelled by the Swarm renderer yet (Privileges.SELinuxContext)",
}
LEAVES = leaving(timeout=lambda _: "the launcher enforces the timeout: a service has none")
# Everything else: refused, named, with the reason below unless `_REASONS` has a better one.
CANNOT_EXPRESS = MappingProxyType(
    {
        name: _REASONS.get(name, "not spelled by the Swarm renderer (engine.render.swarm)")
        for name in SETTINGS
        if name not in EXPRESSES and name not in PROVED_BY_NODE and name not in LEAVES
    }
)


def _template_free(walked: Walked) -> list[tuple[str, str]]:
    """Settings whose text Swarm would expand as a template (`{{...}}`)."""
    refused = []
    p = walked.profile
    for field, texts in (
        ("env", [*walked.env.values(), *walked.env]),
        ("labels", [*p.labels.values(), *p.labels]),
        ("mounts", [t for m in walked.mounts for t in (m.source, m.target)]),
    ):
        if any("{{" in text for text in texts):
            refused.append((field, "Swarm would expand '{{' in it as a template"))
    return refused


def _refusals(walked: Walked) -> list[tuple[str, str]]:
    """Declared values this spec cannot carry, by field."""
    p = walked.profile
    refused = []
    if p.network != "none":
        refused.append(
            (
                "network",
                f"{p.network!r}: a job gets no network of its own choosing here; declare "
                'network = "none" with swarm_network = "internal"',
            )
        )
    elif p.swarm_network is None:
        refused.append(
            (
                "network",
                '"none" cannot be expressed by a service (every task gets an interface); say '
                'what the profile accepts instead: swarm_network = "internal" (an overlay '
                "network with no route out)",
            )
        )
    if any(t.options for t in walked.tmpfs):
        refused.append(("tmpfs", "tmpfs options (nosuid, noexec, ...) arrive in API 1.46"))
    return refused + _template_free(walked)


class SwarmService(Renderer[dict[str, Any]]):
    """See the module docstring. `workers` tasks, all at once, on the network `network` (the
    job's internal overlay network), named `name`."""

    target = TARGET
    expresses = EXPRESSES
    cannot_express = CANNOT_EXPRESS
    leaves = LEAVES
    proved_by_node: ClassVar[Mapping[str, str]] = PROVED_BY_NODE

    def __init__(self, name: str, workers: int, network: str | None) -> None:
        self.name, self.workers, self.network = name, workers, network

    def build(self, walked: Walked) -> dict[str, Any]:
        refused = _refusals(walked)
        if refused:
            raise Unexpressible(self.target, walked.profile.name, refused)
        p = walked.profile
        container = _drop_none(
            {
                "Image": walked.image,
                "Args": list(walked.command) or None,
                "Labels": walked.labels,
                "Env": [f"{k}={v}" for k, v in walked.env.items()] or None,
                "User": p.user,
                "Dir": p.workdir,
                "ReadOnly": p.read_only or None,
                "Mounts": _mounts(walked) or None,
                # Stored and returned as `Healthcheck` (the OpenAPI document says `HealthCheck`;
                # the daemon's JSON decoding accepts either, its encoding gives this one).
                "Healthcheck": _healthcheck(walked),
                "CapabilityDrop": list(p.cap_drop) or None,
                "CapabilityAdd": list(p.cap_add) or None,
                "Ulimits": [
                    {"Name": name, "Soft": u.soft, "Hard": u.hard}
                    for name, u in sorted(p.ulimits.items())
                ]
                or None,
                "Sysctls": dict(sorted(p.sysctls.items())) or None,
                # As a local run's timeout does: SIGTERM, then SIGKILL a second later.
                "StopGracePeriod": STOP_GRACE_NS,
            }
        )
        limits = _drop_none(
            {
                "NanoCPUs": None if p.cpus is None else round(p.cpus * 1e9),
                "MemoryBytes": p.memory,
                "Pids": p.pids_limit,
            }
        )
        template: dict[str, Any] = {
            "ContainerSpec": container,
            "Resources": {"Limits": limits},
            # A worker that fails is a failed shard, as a local worker is: never run again.
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
        }
        if self.network is not None:
            template["Networks"] = [{"Target": self.network}]
        return {
            "Name": self.name,
            "Labels": walked.labels,
            "TaskTemplate": template,
            "Mode": {
                "ReplicatedJob": {"MaxConcurrent": self.workers, "TotalCompletions": self.workers}
            },
        }


def _mounts(walked: Walked) -> list[dict[str, Any]]:
    binds: list[dict[str, Any]] = [
        # The manager stores no `ReadOnly: false` (omitted when false): sent only when true.
        _drop_none(
            {
                "Type": "bind",
                "Source": m.source,
                "Target": m.target,
                "ReadOnly": None if m.writable else True,
                "BindOptions": {"Propagation": m.propagation} if m.propagation else None,
            }
        )
        for m in walked.mounts
    ]
    tmpfs: list[dict[str, Any]] = [
        {
            "Type": "tmpfs",
            "Target": t.target,
            "TmpfsOptions": _drop_none({"SizeBytes": t.size, "Mode": t.mode}),
        }
        for t in walked.tmpfs
    ]
    return binds + tmpfs


def _healthcheck(walked: Walked) -> dict[str, Any] | None:
    hc = walked.profile.healthcheck
    if hc is None:
        return None
    return _drop_none(
        {
            "Test": ["CMD", *hc.test],
            "Interval": _ns(hc.interval),
            "Timeout": _ns(hc.timeout),
            "Retries": hc.retries,
            "StartPeriod": _ns(hc.start_period),
        }
    )


def job_network(launch_id: str) -> str:
    """The name of the internal network of the job whose worker has `launch_id` (the job's
    group, then the worker's shard number): the job creates it, the audit expects it."""
    return f"policy-{launch_id.rsplit('-', 1)[0]}-net"


def service_spec(walked: Walked, name: str, workers: int, network: str | None) -> dict[str, Any]:
    """The spec, or `Unexpressible` naming every setting it cannot carry, all at once (nothing
    is created)."""
    refused = [(n, CANNOT_EXPRESS[n]) for n in sorted(walked.declared) if n in CANNOT_EXPRESS]
    refused += _refusals(walked)
    if refused:
        raise Unexpressible(TARGET, walked.profile.name, sorted(refused))
    return render(SwarmService(name, workers, network), walked).value
