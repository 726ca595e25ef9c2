"""Removing a Swarm job's remains: its tasks' containers on each node (for `policy run --swarm`
when a job ends), and, for `policy clean --swarm`, the services and job networks a killed
`policy run --swarm` (SIGKILL, a machine that went down) could not remove.

Found by the reserved labels only, never by name. The order matters on Docker 20.10: a job's
task containers outlive its service (the agent neither stops nor removes them), so they are
removed on each node; and a network removed while a node still has an endpoint on it stays
listed on that node for good, so the network goes last, and not at all while a node that ran a
task cannot be reached.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engine import labels as L
from engine.backends.interface import Engine
from engine.backends.swarm import ServiceDoc, SwarmEngine
from engine.launcher.swarm_verify import Node
from policy.errors import EngineError, UsageError

POLL = 0.25  # seconds between looks
SETTLE = 1.0  # seconds a node must show no task container of the job before it counts as clean
CLEANUP_PATIENCE = 30.0  # seconds to wait for a network's last task to let go of it


def remove_task_containers(
    nodes: Mapping[str, Node], services: list[str], settle: float = SETTLE
) -> list[str]:
    """Until no node has a task container of `services` left (for `settle` seconds: 0 when every
    task has ended, so that no agent can still be making one); what could not be removed."""
    deadline = time.monotonic() + CLEANUP_PATIENCE
    pending = dict(nodes)
    quiet: dict[str, float] = {}  # node -> since when it has shown none
    while pending:
        for node_id, node in list(pending.items()):
            try:
                if _remove_ended(node.engine, services):
                    quiet.pop(node_id, None)
                # None for a while: an agent may still be creating the container of a task
                # assigned just before its service went, and remove it only later.
                elif time.monotonic() - quiet.setdefault(node_id, time.monotonic()) >= settle:
                    del pending[node_id]
            except EngineError:
                del pending[node_id]  # its agent removes them when it answers again
        if pending and time.monotonic() > deadline:
            return [f"task containers on node {n.label}" for n in pending.values()]
        if pending:
            time.sleep(POLL)  # an agent may still be creating one
    return []


def _remove_ended(engine: Engine, services: list[str]) -> int:
    """Remove the services' task containers on `engine`; how many of them are still there."""
    left = 0
    for service in services:  # an engine that does not answer raises: the caller decides
        for found in engine.containers({"label": f"com.docker.swarm.service.id={service}"}):
            try:
                engine.remove(found.id)  # forced: a running one is killed
            except EngineError:
                left += 1  # its agent is removing it too: look again
    return left


@dataclass(frozen=True)
class Leftovers:
    services: list[ServiceDoc]
    networks: list[dict[str, str]]  # id, name, profile
    nodes: dict[str, Node]  # the nodes that ran their tasks, with their engines
    unreachable: list[str]  # the nodes that ran their tasks whose engine is not given


def leftovers(manager: SwarmEngine, engines: Mapping[str, Engine]) -> Leftovers:
    """What of this project's is on the swarm, and the nodes its tasks ran on."""
    services = manager.services({"label": [L.PROFILE]})
    networks = [
        {"id": str(n["Id"]), "name": str(n.get("Name", "")),
         "profile": str((n.get("Labels") or {}).get(L.PROFILE, "?"))}
        for n in manager.networks({"label": [L.PROFILE]})
    ]  # fmt: skip
    tasks = manager.tasks({"service": [s.id for s in services]}) if services else []
    ran = {t.node_id for t in tasks if t.node_id}  # one list call for all the services
    docs = {n.id: n for n in manager.nodes()}
    nodes = {i: Node(docs[i], engines[i]) for i in sorted(ran) if i in engines and i in docs}
    unreachable = sorted(
        f"{docs[i].description.hostname} ({i[:12]})" if i in docs else i[:12]
        for i in ran
        if i not in engines
    )
    return Leftovers(services, networks, nodes, unreachable)


def remove(manager: SwarmEngine, found: Leftovers, removed: Callable[[str, str], None]) -> None:
    """Remove the services, their task containers on every node, then each network once its
    endpoints are gone; `removed(kind, what)` after each. Refused, before anything is removed,
    when a node that ran a task cannot be reached: its containers would keep the network."""
    if found.unreachable:
        raise UsageError(
            "the services' tasks ran on node(s) whose engine is not given: "
            + ", ".join(found.unreachable)
            + "; give each node's socket with --swarm-node unix://PATH (nothing was removed)"
        )
    ids = [s.id for s in found.services]
    for service in found.services:
        manager.remove_service(service.id)
        removed("service", f"{service.name} ({service.labels.get(L.PROFILE, '?')})")
    left = remove_task_containers(found.nodes, ids)
    if left:
        raise EngineError(
            "could not remove: " + "; ".join(left) + "; the networks were left, so that no "
            "node keeps one for good: run `policy clean --swarm` again"
        )
    for node in found.nodes.values():
        removed("task containers on node", node.label)
    names = {n["id"]: f"{n['name']} ({n['profile']})" for n in found.networks}
    left = remove_networks(manager, names, lambda network: removed("network", names[network]))
    if left:
        raise EngineError(f"the network(s) {', '.join(left)} still have endpoints: run it again")


def remove_networks(
    manager: SwarmEngine, networks: Mapping[str, str], gone: Callable[[str], None] = lambda _: None
) -> list[str]:
    """Remove each network (id -> name) once the nodes have let go of its endpoints, for up to
    `CLEANUP_PATIENCE` seconds; `gone(id)` after each. The names of those still there."""
    waiting = dict(networks)
    until = time.monotonic() + CLEANUP_PATIENCE
    while waiting:
        for network in list(waiting):
            if manager.remove_network(network):
                del waiting[network]
                gone(network)
        if not waiting or time.monotonic() > until:
            break
        time.sleep(POLL)  # the nodes remove the tasks' endpoints after the services go
    return list(waiting.values())
