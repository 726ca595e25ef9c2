"""What a Swarm job is checked against: the nodes before, the stored spec and every task after.

There is no verify-before-start on a swarm: the manager stores a spec and each node starts its
tasks' containers without asking anyone. So the checks come in three steps, and any failure of
any of them stops the whole job (`engine.launcher.swarm_job` removes its services):

1. before anything is created, every node Swarm may place a task on must be reachable, have the
   image, and prove what the profile leaves to it (the default seccomp profile: its `docker info`);
2. after creation, the spec the manager stored must hold every key that was sent, with the value
   sent (a manager that silently drops a field it does not know is caught here);
3. each task's container, on its own node's engine, must compare equal to the profile under the
   audit's comparison (`engine.audit.drift.diff`), and, the nodes being on this machine, so must
   the kernel's view of its process (`engine.audit.deep`); no-new-privileges, which no inspect
   document shows for a daemon-wide setting, is proved there or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.audit import deep
from engine.audit.drift import Drift, diff
from engine.audit.observe import observed_settings
from engine.audit.swarm_task import without_swarm_labels
from engine.backends.interface import ContainerInspect, Engine
from engine.backends.swarm import NodeDoc, TaskDoc
from engine.launcher.spec import LaunchSpec
from engine.render.interface import render
from engine.render.settings import ExpectedSettings, Settings
from policy.errors import EngineError, UsageError


class SwarmVerificationError(EngineError):
    """A task or the stored spec differs from the profile: the whole job was stopped."""

    def __init__(self, profile: str, where: str, drifts: list[Drift]) -> None:
        lines = [f"  {d.field}: expected {d.expected!r}, got {d.actual!r}" for d in drifts]
        super().__init__(
            f"{where} differs from profile '{profile}'; the whole job was stopped and its "
            "services removed:\n" + "\n".join(lines)
        )
        self.drifts = drifts


@dataclass(frozen=True)
class Node:
    """A node Swarm may place a task on, and its own engine."""

    doc: NodeDoc
    engine: Engine

    @property
    def label(self) -> str:
        return f"{self.doc.description.hostname} ({self.doc.id[:12]})"


def placeable_nodes(nodes: list[NodeDoc], engines: dict[str, Engine]) -> list[Node]:
    """Every node a task may land on, with its engine; refused when one cannot be reached."""
    out, missing = [], []
    for node in nodes:
        if not node.schedulable:
            continue
        if node.id in engines:
            out.append(Node(node, engines[node.id]))
        else:
            missing.append(f"{node.description.hostname} ({node.id[:12]})")
    if missing:
        raise UsageError(
            "cannot check the swarm's tasks on node(s) whose engine this tool cannot reach: "
            + ", ".join(missing)
            + "; give each node's socket with --swarm-node unix://PATH (or drain the node: "
            "docker node update --availability drain NODE)"
        )
    if not out:
        raise UsageError("the swarm has no node a task can be placed on (ready and active)")
    return out


def prove_nodes(nodes: list[Node], spec: LaunchSpec) -> None:
    """Step 1 (see the module docstring): a `UsageError` naming the node and field, if any."""
    profile, problems = spec.profile, []
    for node in nodes:
        try:
            node.engine.inspect_image(spec.walked.image)
        except EngineError as exc:
            problems.append(f"{node.label}: {exc.message}")
        options = node.engine.info().security_options or []
        if profile.seccomp.mode == "default" and not any(
            o.startswith("name=seccomp") and "profile=default" in o for o in options
        ):
            problems.append(
                f"{node.label}: seccomp: the profile asks for the default seccomp profile and "
                f"this node's engine does not report it (SecurityOptions: {options})"
            )
    if problems:
        raise UsageError(
            f"profile '{profile.name}' cannot be enforced on this swarm:\n  "
            + "\n  ".join(problems)
        )


def stored_spec_drift(sent: Any, stored: Any, path: str = "") -> list[Drift]:
    """Step 2: every key of `sent` that `stored` lacks or holds with another value."""
    if isinstance(sent, dict):
        if not isinstance(stored, dict):
            return [Drift(path or "spec", sent, stored)]
        out: list[Drift] = []
        for key, value in sent.items():
            out += stored_spec_drift(value, stored.get(key), f"{path}.{key}".lstrip("."))
        return out
    if isinstance(sent, list):
        if not isinstance(stored, list) or len(stored) != len(sent):
            return [Drift(path, sent, stored)]
        out = []
        for index, (a, b) in enumerate(zip(sent, stored, strict=True)):
            out += stored_spec_drift(a, b, f"{path}[{index}]")
        return out
    return [] if sent == stored else [Drift(path, sent, stored)]


# Where a key the manager adds by itself sits, and the value it adds: not drift.
MANAGER_DEFAULTS: dict[str, Any] = {
    "TaskTemplate.ContainerSpec.Isolation": "default",
    "TaskTemplate.ContainerSpec.Init": False,
    "TaskTemplate.ContainerSpec.DNSConfig": {},
    "TaskTemplate.Resources.Reservations": {},
}
# The parts of a spec that reach the containers: keys found there and never sent are drift.
WATCHED = ("TaskTemplate.ContainerSpec", "TaskTemplate.Resources", "TaskTemplate.Networks")


def unsent_keys(stored: Any, sent: Any, path: str = "") -> list[Drift]:
    """Keys of `stored` under `WATCHED` that `sent` never had (manager defaults aside)."""
    if not isinstance(stored, dict) or not isinstance(sent, dict):
        return []
    out: list[Drift] = []
    for key, value in stored.items():
        where = f"{path}.{key}".lstrip(".")
        if not any(where.startswith(w) or w.startswith(where) for w in WATCHED):
            continue
        if key not in sent:
            if where not in MANAGER_DEFAULTS or MANAGER_DEFAULTS[where] != value:
                out.append(Drift(where, None, value))
        else:
            out += unsent_keys(value, sent[key], where)
    return out


def spec_drift(sent: dict[str, Any], stored: dict[str, Any]) -> list[Drift]:
    """Both ways: what was sent and is stored otherwise, and what is stored and was not sent."""
    return stored_spec_drift(sent, stored) + unsent_keys(stored, sent)


def expected_for_task(spec: LaunchSpec, image: Any, network: str | None) -> Settings:
    """The profile's settings as a task's container shows them: on the job's network (Swarm
    attaches it; the container's own mode stays `default`), no-new-privileges not on the
    container (the node's daemon applies it; the kernel proves it)."""
    expected = dict(render(ExpectedSettings(image), spec.walked).value)
    expected["network"] = network or "bridge"
    expected["no_new_privileges"] = False
    return expected


def observed_for_task(inspect: ContainerInspect, image: Any) -> Settings:
    observed = observed_settings(inspect, image)
    networks = sorted((inspect.network_settings.networks or {}).keys())
    observed["network"] = "+".join(networks) or "none"
    observed["labels"] = without_swarm_labels(observed["labels"])
    return observed


def task_drift(
    engine: Engine, task: TaskDoc, spec: LaunchSpec, network: str | None
) -> tuple[list[Drift], bool]:
    """Step 3 for one task: its drifts, and whether the kernel's view was read."""
    container = task.status.container.container_id or ""
    inspect = engine.inspect_container(container)
    image = engine.inspect_image(inspect.image).config
    expected = expected_for_task(spec, image, network)
    drifts = diff(expected, observed_for_task(inspect, image))
    kernel = steady_kernel_view(inspect.state.pid, inspect.id)
    if kernel:
        expected["no_new_privileges"] = spec.profile.no_new_privileges
        drifts += [
            Drift(f"{field} (kernel)", want, got)
            for field, want, got in deep.compare_kernel(expected, kernel)
            # A daemon-wide setting stricter than a profile that does not ask for it.
            if not (field == "no_new_privileges" and not want)
        ]
        return drifts, True
    return drifts, False


def _alive(pid: int) -> bool:
    try:
        status = (deep.PROC / str(pid) / "status").read_text()
    except OSError:
        return False
    state = next((ln.split()[1] for ln in status.splitlines() if ln.startswith("State:")), "X")
    return state not in ("Z", "X")


def steady_kernel_view(pid: int, container: str) -> dict[str, Any]:
    """The kernel's view of the task's process, or {} when it cannot be trusted: not this
    machine's, or read while the process was exiting (its mounts and cgroup go one by one, so
    a task read at its end looked unlimited and unmounted). Trusted: read twice, the same both
    times, the mount table there, and the process still alive and the container's after."""
    if not pid or not deep.owned_by(pid, container):
        return {}
    first = deep.kernel_view(pid)
    second = deep.kernel_view(pid)
    if first != second or "read_only" not in first:
        return {}
    if not _alive(pid) or not deep.owned_by(pid, container):
        return {}
    return first


def never_started(engine: Engine, task: TaskDoc) -> bool:
    """Whether the task's container was created and never started (its start failed)."""
    container = task.status.container.container_id
    inspect = engine.inspect_if_exists(container) if container else None
    return inspect is not None and inspect.state.status == "created"


def unproved(spec: LaunchSpec) -> list[Drift]:
    """What a task whose process could not be read leaves unproved."""
    if not spec.profile.no_new_privileges:
        return []
    return [
        Drift(
            "no_new_privileges",
            True,
            "not proved: the task's process ended (or is on another machine) before /proc "
            "could be read; only the kernel shows a node's daemon-wide no-new-privileges",
        )
    ]
