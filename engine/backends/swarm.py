"""A Swarm manager: the engine of one node, plus the cluster's services, tasks, nodes, networks.

`SwarmEngine` is a `SocketEngine` (every `Engine` call, for the manager's own node) with the
Swarm endpoints of Engine API 1.41 beside it, on the same standard-library client. The documents
are typed as the interface's are (`extra="ignore"`, the API's spelling as aliases), except a
service's `Spec`, kept as the JSON the manager stored: `engine.launcher.swarm_verify` compares it,
key by key, with the spec that was sent. Unix sockets only, as `SocketEngine`: a manager elsewhere
is reached through an ssh-forwarded socket (`ssh -L`), said in the README.
"""

from __future__ import annotations

import http.client
import struct
from collections.abc import Iterator
from typing import Any

from pydantic import Field

from engine.backends import interface as doc
from engine.backends.unix_http import ApiError, Unreachable
from engine.backends.unix_socket import SocketEngine, _filters, _Lines, _q
from policy.errors import EngineError

_FRAME = struct.Struct(">BxxxL")
# The prefix `details=1` gives every line of a service's log: `k=v,k=v message`.
_TASK_KEY = "com.docker.swarm.task.id"


class SwarmInfo(doc._Document):
    node_id: str = Field("", alias="NodeID")
    local_node_state: str = Field("inactive", alias="LocalNodeState")
    control_available: bool = Field(False, alias="ControlAvailable")


class NodeEngineDoc(doc._Document):
    engine_version: str | None = Field(None, alias="EngineVersion")


class NodeDescription(doc._Document):
    hostname: str = Field("", alias="Hostname")
    engine: NodeEngineDoc = Field(default_factory=NodeEngineDoc, alias="Engine")


class NodeSpecDoc(doc._Document):
    role: str = Field("worker", alias="Role")
    availability: str = Field("active", alias="Availability")


class NodeStatusDoc(doc._Document):
    state: str = Field("unknown", alias="State")
    addr: str | None = Field(None, alias="Addr")


class NodeDoc(doc._Document):
    """One entry of `GET /nodes`."""

    id: str = Field(alias="ID")
    description: NodeDescription = Field(default_factory=NodeDescription, alias="Description")
    spec: NodeSpecDoc = Field(default_factory=NodeSpecDoc, alias="Spec")
    status: NodeStatusDoc = Field(default_factory=NodeStatusDoc, alias="Status")

    @property
    def schedulable(self) -> bool:
        """Whether Swarm may place a task here (ready and active)."""
        return self.status.state == "ready" and self.spec.availability == "active"


class TaskContainerDoc(doc._Document):
    container_id: str | None = Field(None, alias="ContainerID")
    exit_code: int | None = Field(None, alias="ExitCode")


class TaskStatusDoc(doc._Document):
    state: str = Field("new", alias="State")
    message: str | None = Field(None, alias="Message")
    err: str | None = Field(None, alias="Err")
    container: TaskContainerDoc = Field(default_factory=TaskContainerDoc, alias="ContainerStatus")


class TaskDoc(doc._Document):
    """One entry of `GET /tasks`."""

    id: str = Field(alias="ID")
    service_id: str = Field("", alias="ServiceID")
    node_id: str | None = Field(None, alias="NodeID")
    slot: int = Field(0, alias="Slot")  # omitted for slot 0
    desired_state: str | None = Field(None, alias="DesiredState")
    status: TaskStatusDoc = Field(default_factory=TaskStatusDoc, alias="Status")

    @property
    def ended(self) -> bool:
        return self.status.state in ENDED


ENDED = frozenset({"complete", "failed", "shutdown", "rejected", "orphaned", "remove"})


class ServiceDoc(doc._Document):
    """`GET /services/{id}`: the stored spec as JSON, and what identifies it."""

    id: str = Field(alias="ID")
    spec: dict[str, Any] = Field(default_factory=dict, alias="Spec")

    @property
    def name(self) -> str:
        return str(self.spec.get("Name", ""))

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.get("Labels") or {})


class SwarmEngine(SocketEngine):
    """The manager at `unix://PATH`: see the module docstring."""

    def __init__(self, url: str, timeout: int = 60) -> None:
        if not url.startswith("unix://"):
            raise EngineError(
                f"a swarm manager is reached on a unix socket, got {url}; forward the manager's "
                "socket (ssh -L /tmp/manager.sock:/var/run/docker.sock HOST) and use unix://"
            )
        super().__init__(url, timeout)

    def swarm(self) -> SwarmInfo:
        info = self._json("GET", "/info", "reach")
        return doc.parse(SwarmInfo, (info or {}).get("Swarm") or {}, "swarm info", self.name)

    def nodes(self) -> list[NodeDoc]:
        listed = self._json("GET", "/nodes", "list the swarm's nodes")
        return [doc.parse(NodeDoc, n, "node list", self.name) for n in listed or []]

    def tasks(self, filters: dict[str, Any]) -> list[TaskDoc]:
        query = {"filters": _filters(filters)}
        listed = self._json("GET", "/tasks", "list tasks", query=query)
        return [doc.parse(TaskDoc, t, "task list", self.name) for t in listed or []]

    def services(self, filters: dict[str, Any]) -> list[ServiceDoc]:
        query = {"filters": _filters(filters)} if filters else None
        listed = self._json("GET", "/services", "list services", query=query)
        return [doc.parse(ServiceDoc, s, "service list", self.name) for s in listed or []]

    def service(self, service: str) -> ServiceDoc:
        found = self._json("GET", f"/services/{_q(service)}", "inspect the service")
        return doc.parse(ServiceDoc, found, "service inspect", self.name)

    def create_service(self, spec: dict[str, Any]) -> str:
        # No registry is asked (`--no-resolve-image`): the image must be on the nodes.
        created = self._json("POST", "/services/create", "create the service", body=spec)
        return str(created["ID"])

    def remove_service(self, service: str) -> None:
        """Remove a service (its tasks' containers go with it); one already gone is fine."""
        self._gone_ok("DELETE", f"/services/{_q(service)}", "remove the service")

    def create_network(self, body: dict[str, Any]) -> str:
        created = self._json("POST", "/networks/create", "create the network", body=body)
        return str(created["Id"])

    def networks(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        query = {"filters": _filters(filters)}
        return list(self._json("GET", "/networks", "list networks", query=query) or [])

    def remove_network(self, network: str) -> bool:
        """Remove a network; False while tasks still use it (the caller tries again)."""
        try:
            self._answer("DELETE", f"/networks/{_q(network)}", "remove the network")
        except ApiError as exc:
            if exc.status == 404:
                return True
            if exc.status in (403, 409, 500) and "active endpoints" in exc.message:
                return False
            raise self._refused("remove the network", exc) from None
        return True

    def service_logs(self, service: str) -> ServiceLogs:
        """The service's output as it comes, line by line, with the task that wrote it."""
        query = {"follow": 1, "stdout": 1, "stderr": 1, "details": 1}
        try:
            conn, response = self._http.stream(f"/services/{_q(service)}/logs", query)
        except ApiError as exc:
            raise self._refused("follow the service's logs", exc) from None
        except Unreachable as exc:
            raise self._unreachable("follow the service's logs", exc.cause) from None
        return ServiceLogs(conn, response, self.name)

    def _gone_ok(self, method: str, path: str, action: str) -> None:
        try:
            self._answer(method, path, action)
        except ApiError as exc:
            if exc.status != 404:
                raise self._refused(action, exc) from None


class ServiceLogs(_Lines):
    """(task id, stream, text) of each line of a service's log; `close()` from another thread.

    A multiplexed stream of frames, not JSON lines, but closed the way every stream of the
    engine is (`_Lines.close`).
    """

    def __iter__(self) -> Iterator[tuple[str, int, str]]:
        self._reading = True
        try:
            while len(header := self._response.read(_FRAME.size)) == _FRAME.size:
                kind, length = _FRAME.unpack(header)
                data = self._response.read(length).decode(errors="replace")
                details, _, text = data.partition(" ")
                attrs = dict(kv.partition("=")[::2] for kv in details.split(","))
                yield attrs.get(_TASK_KEY, ""), kind, text
        except (OSError, ValueError, http.client.HTTPException):
            return  # closed (by `close()` or the manager): the stream ends
        finally:
            self._conn.close()


def node_engines(manager: SwarmEngine, urls: list[str]) -> dict[str, doc.Engine]:
    """Node id -> that node's engine: the manager's own, and one for each of `urls`."""
    here = manager.swarm()
    if here.local_node_state != "active" or not here.control_available:
        raise EngineError(
            f"engine {manager.name} is not a swarm manager (swarm state: "
            f"{here.local_node_state}); point DOCKER_HOST at a manager's socket"
        )
    engines: dict[str, doc.Engine] = {here.node_id: manager}
    for url in dict.fromkeys(urls):
        if not url.startswith("unix://"):
            raise EngineError(f"--swarm-node {url}: a node's engine is given as unix://PATH")
        engine = SocketEngine(url)
        info = engine._json("GET", "/info", "reach")
        node = str(((info or {}).get("Swarm") or {}).get("NodeID") or "")
        if not node:
            raise EngineError(f"--swarm-node {url}: that engine is in no swarm")
        engines.setdefault(node, engine)
    return engines
