"""Test workers as a Swarm job: one replicated-job service per shard, placed by Swarm.

render every shard's spec (refused by name before anything exists) -> prove the nodes -> create
the job's internal network and the services -> compare the stored specs -> follow each
service's log, worker by worker -> verify each task's container on its node and its process in
/proc -> sample each task's container on its node (`engine.monitor.sampler`: its cgroup files
when the node's processes are this machine's, else the node's stats stream) -> wait with the
profile's timeout -> the per-worker results, with their usage and violations. Whatever ends
it (the last task, a drift, the timeout, a node's engine that stops answering, Ctrl-C or
SIGTERM), the `finally` removes the services and the network and says loudly what it could not
remove (`policy clean --swarm` removes it later).

One service per shard, not one job of N tasks: Swarm's `{{.Task.Slot}}` of a job's first task is
its node id, not 0 (seen on 20.10), so each shard is told its index literally.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine import labels as L
from engine.backends.interface import Engine
from engine.backends.swarm import ServiceLogs, SwarmEngine, TaskDoc
from engine.launcher import swarm_verify as sv
from engine.launcher.mounts import prepare_mounts
from engine.launcher.run import EXIT_OOM, EXIT_TIMEOUT
from engine.launcher.spec import LaunchSpec, RunResult
from engine.launcher.swarm_clean import SETTLE, remove_networks, remove_task_containers
from engine.launcher.workers import WorkerOutcome
from engine.logs import logger
from engine.render.swarm import job_network, service_spec
from policy.errors import EngineError

if TYPE_CHECKING:
    from engine.monitor.figures import Usage
    from engine.monitor.sampler import Sampler

POLL = 0.25  # seconds between looks at the tasks
# (worker number, stream: 1 stdout / 2 stderr, text) of each line the job writes.
LineSink = Callable[[int, int, str], None]


@dataclass
class _Worker:
    spec: LaunchSpec
    body: dict[str, object]
    service: str = ""
    task: TaskDoc | None = None
    verified: bool = False
    awaiting_proof: bool = False  # ended unread: proved by another task on its node, or not
    ended: bool = False
    exit_code: int = -1
    oom: bool = False
    error: str | None = None
    output: list[str] = field(default_factory=list)
    last_line: float = 0.0
    sampler: Sampler | None = None
    ended_at: float | None = None  # when the job saw its task end


@dataclass
class _Job:
    manager: SwarmEngine
    nodes: dict[str, sv.Node]
    workers: list[_Worker]
    network: str | None
    sink: LineSink | None
    on_verified: Callable[[int, str], None] | None = None
    monitor: bool = True
    started: float = field(default_factory=time.monotonic)
    network_id: str = ""
    logs: list[ServiceLogs] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    timed_out: bool = False
    proved: set[str] = field(default_factory=set)  # nodes whose daemon-wide settings a task proved


def run_job(
    manager: SwarmEngine,
    engines: dict[str, Engine],
    specs: list[LaunchSpec],
    sink: LineSink | None = None,
    on_verified: Callable[[int, str], None] | None = None,
    monitor: bool = True,
) -> list[WorkerOutcome]:
    """Run `specs` (from `workers.shard_specs`) as a job; see the module docstring.
    `on_verified(worker, node)` is told where each worker's task was verified; each task is
    sampled unless `monitor=False`."""
    profile = specs[0].profile
    group = specs[0].launch_id.rsplit("-", 1)[0]
    network = job_network(specs[0].launch_id) if profile.swarm_network else None
    workers = [_Worker(s, service_spec(s.walked, s.name, 1, network)) for s in specs]
    nodes = sv.placeable_nodes(manager.nodes(), engines)
    sv.prove_nodes(nodes, specs[0])
    prepare_mounts(profile, specs[0].project)
    job = _Job(manager, {n.doc.id: n for n in nodes}, workers, network, sink, on_verified, monitor)
    try:
        _create(job, group)
        _watch(job, profile.timeout)
        outcomes = [_outcome(job, w) for w in job.workers]
    finally:
        _clean_up(job)
    for worker, outcome in zip(job.workers, outcomes, strict=True):
        if isinstance(outcome, RunResult):
            _record(job, worker, outcome)
    return outcomes


def _record(job: _Job, worker: _Worker, result: RunResult) -> None:
    """The worker's launch record, as a local worker's (the engine: its node's)."""
    from engine import history
    from engine.history.interface import LaunchRecord

    spec, task = worker.spec, worker.task
    node = job.nodes.get(task.node_id or "") if task else None
    history.record(
        LaunchRecord(
            profile=spec.profile.name,
            digest=spec.walked.digest,
            image=spec.walked.image,
            container_id=result.container_id,
            launch_id=spec.launch_id,
            command=list(spec.command),
            outcome=result.outcome,
            policy=spec.policy_file,
            exit_code=result.exit_code,
            duration=round(result.duration, 3),
            engine=node.engine.name if node else job.manager.name,
            cgroup_version=result.usage.cgroup_version if result.usage else None,
            usage=result.usage,
        )
    )


def _create(job: _Job, group: str) -> None:
    first = job.workers[0].spec
    if job.network is not None:
        # Internal: no gateway, no route out; attachable by no one but the job's services.
        job.network_id = job.manager.create_network(
            {
                "Name": job.network,
                "Driver": "overlay",
                "Internal": True,
                "Attachable": False,
                "CheckDuplicate": True,
                "Labels": {**first.walked.labels, L.LAUNCH_ID: group},
            }
        )
    for worker in job.workers:
        if job.network_id:  # the manager stores the network's id, whatever it was given
            template = worker.body["TaskTemplate"]
            assert isinstance(template, dict)
            template["Networks"] = [{"Target": job.network_id}]
        worker.service = job.manager.create_service(worker.body)
    for index, worker in enumerate(job.workers):
        stored = job.manager.service(worker.service).spec
        drifts = sv.spec_drift(worker.body, stored)
        if drifts:
            raise sv.SwarmVerificationError(
                first.profile.name, f"the spec the manager stored for worker {index}", drifts
            )
    for index, worker in enumerate(job.workers):
        stream = job.manager.service_logs(worker.service)
        job.logs.append(stream)
        thread = threading.Thread(target=_follow, args=(job, index, stream), daemon=True)
        thread.start()
        job.threads.append(thread)


def _follow(job: _Job, index: int, stream: ServiceLogs) -> None:
    worker = job.workers[index]
    for _task, kind, text in stream:
        worker.output.append(text)
        worker.last_line = time.monotonic()
        if job.sink is not None:
            job.sink(index, kind, text)


def _watch(job: _Job, timeout: float | None) -> None:
    """Poll until every worker's task has ended, verifying each one as soon as it can."""
    deadline = None if timeout is None else job.started + timeout
    while not all(w.ended for w in job.workers):
        if deadline is not None and time.monotonic() > deadline:
            job.timed_out = True
            logger.warning(f"timeout: the profile allows {timeout:g}s; removing the job's services")
            return
        tasks = job.manager.tasks({"service": [w.service for w in job.workers]})
        for index, worker in enumerate(job.workers):
            mine = [t for t in tasks if t.service_id == worker.service]
            # The task Swarm means to run: a spec changed under the job (`docker service
            # update`) shuts the old one down and starts another, which is verified again.
            current = [t for t in mine if t.desired_state not in ("shutdown", "remove")]
            if current or mine:
                _look_at(job, index, worker, (current or mine)[-1])
        _unprovable(job)
        time.sleep(POLL)  # the manager has no event for a task's end that a job can wait on
    _drain(job)


def _look_at(job: _Job, index: int, worker: _Worker, task: TaskDoc) -> None:
    if worker.task is not None and worker.task.id != task.id and worker.verified:
        worker.verified = False  # another task: verified from the start, spec included
        drifts = sv.spec_drift(worker.body, job.manager.service(worker.service).spec)
        if drifts:
            raise sv.SwarmVerificationError(
                worker.spec.profile.name, f"the spec of worker {index}'s service", drifts
            )
    worker.task = task
    node = job.nodes.get(task.node_id or "")
    if task.node_id and node is None:
        raise EngineError(f"worker {index} was placed on node {task.node_id[:12]}, not checked")
    if node is not None and not task.ended:
        try:
            node.engine.version()
        except EngineError as exc:
            raise _stopped_answering(index, node, exc) from None
    try:
        if node is not None and not worker.verified and task.status.container.container_id:
            _sample(job, worker, node, task)
            _verify(job, index, worker, node, task)
        if task.ended and worker.verified:
            _ended(node, worker, task)
        elif task.ended and task.status.container.container_id is None:
            worker.ended, worker.error = True, task.status.err or task.status.state
    except sv.SwarmVerificationError:
        raise  # a drift is a drift, whatever the node does next
    except EngineError as exc:
        # The node may stop between the look above and these reads: say so, not just the read.
        if node is None or _answers(node.engine):
            raise
        raise _stopped_answering(index, node, exc) from None


def _answers(engine: Engine) -> bool:
    try:
        engine.version()
    except EngineError:
        return False
    return True


def _stopped_answering(index: int, node: sv.Node, exc: EngineError) -> EngineError:
    return EngineError(
        f"worker {index}'s node {node.label} stopped answering mid-job ({exc.message}); "
        "its task can be neither watched nor verified"
    )


def _verify(job: _Job, index: int, worker: _Worker, node: sv.Node, task: TaskDoc) -> None:
    """Step 3 of `swarm_verify` for one task; a drift stops the job."""
    drifts, kernel = sv.task_drift(node.engine, task, worker.spec, job.network)
    read = kernel
    if not read and task.ended and sv.never_started(node.engine, task):
        # The node could not start it (nothing ran): that worker's error, not a drift.
        worker.ended, worker.verified = True, True
        worker.error = f"node {node.label} could not start it: {task.status.err}"
        return
    if not read and task.ended:
        # Ended before its process could be read. What only the kernel shows is a daemon-wide
        # setting of its node: proved by another task of this job on that node (the daemon
        # applies it to every container it makes, and a service cannot ask otherwise at 1.41),
        # or not at all (`_unprovable`).
        read = node.doc.id in job.proved or not sv.unproved(worker.spec)
        worker.awaiting_proof = not read
    if drifts:
        raise sv.SwarmVerificationError(
            worker.spec.profile.name, f"worker {index}'s task on node {node.label}", drifts
        )
    if kernel:
        job.proved.add(node.doc.id)  # its process was read, and showed the profile's settings
    worker.verified = read
    if read:
        worker.awaiting_proof = False
        if job.on_verified is not None:
            job.on_verified(index, node.label)


def _sample(job: _Job, worker: _Worker, node: sv.Node, task: TaskDoc) -> None:
    """Start sampling the task's container on its node, once, as soon as it is known (before
    its verification: the kernel's counters then cover most of its life). A task that ended
    before it was seen has no figures: they are reported unavailable, never made up."""
    container = task.status.container.container_id
    if not job.monitor or worker.sampler is not None or task.ended or not container:
        return
    from engine.monitor.sampler import Sampler

    worker.sampler = Sampler(node.engine, container, worker.spec.profile).start()


def _usage(job: _Job, worker: _Worker, *, timed_out: bool) -> Usage | None:
    """Stop the worker's sampler (once) and judge its run."""
    sampler, worker.sampler = worker.sampler, None
    if sampler is None:
        return None
    duration = (worker.ended_at or time.monotonic()) - job.started
    return sampler.finish(duration, timed_out=timed_out, oom_killed=worker.oom)


def _unprovable(job: _Job) -> None:
    """Stop the job when a worker awaits a proof that no task of its node can still give."""
    for index, worker in enumerate(job.workers):
        if not worker.awaiting_proof or worker.ended or worker.task is None:
            continue
        node = worker.task.node_id
        hopeful = [
            w
            for w in job.workers
            if not w.ended
            and not w.awaiting_proof
            and (w.task is None or w.task.node_id in (None, node))
        ]
        if not hopeful:
            where = f"worker {index}'s task on node {(node or '?')[:12]}"
            raise sv.SwarmVerificationError(
                worker.spec.profile.name, where, sv.unproved(worker.spec)
            )


def _ended(node: sv.Node | None, worker: _Worker, task: TaskDoc) -> None:
    worker.ended, worker.ended_at = True, time.monotonic()
    if task.status.state == "complete":
        worker.exit_code = 0
        return
    code = task.status.container.exit_code
    worker.exit_code = code if code is not None else -1
    if node is not None and task.status.container.container_id:
        inspect = node.engine.inspect_if_exists(task.status.container.container_id)
        worker.oom = bool(inspect and inspect.state.oom_killed)
    if task.status.state not in ("complete", "failed"):
        worker.error = f"task {task.status.state}: {task.status.err or task.status.message}"


def _drain(job: _Job, quiet: float = 0.3, patience: float = 3.0) -> None:
    """Let the log streams deliver the last lines: until each has been quiet for `quiet`."""
    end = time.monotonic() + patience
    while time.monotonic() < end:
        if all(time.monotonic() - w.last_line >= quiet for w in job.workers):
            return
        time.sleep(0.05)


def _outcome(job: _Job, worker: _Worker) -> WorkerOutcome:
    spec = worker.spec
    if worker.error is not None:
        return EngineError(f"{spec.name}: {worker.error}")
    timed_out = job.timed_out and not worker.ended
    usage = _usage(job, worker, timed_out=timed_out)
    code = EXIT_TIMEOUT if timed_out else (EXIT_OOM if worker.oom else worker.exit_code)
    task = worker.task
    return RunResult(
        exit_code=code,
        output="".join(worker.output),
        duration=time.monotonic() - job.started,
        timed_out=timed_out,
        oom_killed=worker.oom,
        container_id=(task.status.container.container_id or "") if task else "",
        profile=spec.profile.name,
        digest=spec.walked.digest,
        image=spec.walked.image,
        launch_id=spec.launch_id,
        usage=usage,
    )


@contextlib.contextmanager
def _shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the clean-up is done (a second Ctrl-C, pressed because
    the first seems slow, must not leave the job's services behind); then they take effect."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {s: signal.signal(s, lambda n, _f: received.append(n)) for s in _SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _clean_up(job: _Job) -> None:
    """Remove every service and the network, however the job ended; say what is left."""
    with _shielded():
        _remove_all(job)


def _remove_all(job: _Job) -> None:
    for stream in job.logs:
        stream.close()
    for worker in job.workers:  # a job that did not end by itself (a drift, Ctrl-C): stopped
        _usage(job, worker, timed_out=False)
    left: list[str] = []
    for worker in job.workers:
        name = worker.service or str(worker.body["Name"])
        try:
            job.manager.remove_service(name)
        except EngineError as exc:
            left.append(f"service {name} ({exc.message})")
    left += _wait_for_tasks(job)
    if job.network is not None:
        left += _remove_network(job)
    for thread in job.threads:
        thread.join(timeout=2.0)
    if left:
        logger.error(
            "could not remove: " + "; ".join(left) + ". Remove them with `policy clean "
            "--swarm` on the manager once it answers"
        )


def _wait_for_tasks(job: _Job) -> list[str]:
    services = [w.service for w in job.workers if w.service]
    # Every task seen ended: a job's service runs one task and never restarts it (condition
    # none), so no agent can still be making a container of it, and a node that shows none is
    # clean at once. A job stopped early waits for the agents (`SETTLE`).
    ended = all(w.ended and w.task is not None and w.task.ended for w in job.workers)
    return remove_task_containers(job.nodes, services, 0.0 if ended else SETTLE)


def _remove_network(job: _Job) -> list[str]:
    assert job.network is not None
    try:
        left = remove_networks(job.manager, {job.network_id or job.network: job.network})
    except EngineError as exc:
        return [f"network {job.network} ({exc.message})"]
    return [f"network {name} (its tasks did not let go of it)" for name in left]
