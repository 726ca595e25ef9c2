"""Launch a container only through a vetted profile, and verify it before it starts.

create -> inspect -> compare with the profile (the audit's comparison) -> start only if identical,
else remove and fail -> stream output -> wait with the profile's timeout -> stop, then kill, on
timeout -> report exit code, timing, OOM -> remove. An interrupt at any step removes the
container: it is named after the launch id before it exists, so even a create whose reply was
lost can be found and removed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from engine.backends.docker import DockerEngine
from engine.audit.drift import Drift, diff, expected_settings
from engine.audit.observe import observed_settings
from engine.history.record import record_launch
from engine.render.translate import CPU_PERIOD, cpu_quota, reserved_labels, security_options, tmpfs_option
from policy import units
from policy.canonical import digest
from policy.errors import EngineError, UsageError
from policy.loader import resolve_source
from policy.model import Profile

EXIT_TIMEOUT = 124
EXIT_OOM = 137
STOP_GRACE = 1.0  # seconds between SIGTERM and SIGKILL when a timeout stops a container
OUTPUT_KEPT = 1 << 20  # the last MiB of output is kept in RunResult.output

OutputSink = Callable[[str, bytes], None]


class VerificationError(EngineError):
    """The engine created something other than the profile; nothing was started."""

    def __init__(self, profile: str, drifts: list[Drift]) -> None:
        lines = [f"  {d.field}: expected {d.expected!r}, got {d.actual!r}" for d in drifts]
        super().__init__(
            f"the engine created a container that differs from profile '{profile}'; "
            "it was removed without starting:\n" + "\n".join(lines)
        )
        self.drifts = drifts


@dataclass(frozen=True)
class LaunchSpec:
    """What to launch: a profile, where its relative mounts resolve, and the command."""

    profile: Profile
    project: Path
    policy_file: str
    command: tuple[str, ...] = ()
    image: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the profile's (worker shards)
    launch_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def name(self) -> str:
        return f"policy-{self.profile.name}-{self.launch_id}"

    @property
    def effective(self) -> Profile:
        if not self.env:
            return self.profile
        return self.profile.model_copy(update={"env": {**self.profile.env, **self.env}})


@dataclass(frozen=True)
class RunResult:
    """How a launched container ended."""

    exit_code: int
    output: str
    duration: float
    timed_out: bool
    oom_killed: bool
    container_id: str
    profile: str
    digest: str
    image: str
    launch_id: str
    interrupted: bool = False

    @property
    def outcome(self) -> str:
        if self.interrupted:
            return "interrupted"
        if self.timed_out:
            return "timeout"
        if self.oom_killed:
            return "oom"
        return "passed" if self.exit_code == 0 else "failed"


def prepare_mounts(profile: Profile, project: Path) -> None:
    """Read-only sources must exist (Docker would create a root-owned directory in their place);
    writable ones are created, owned by the profile's user where we may change ownership."""
    for mount in profile.mounts:
        source = resolve_source(project, mount.source)
        if not mount.writable:
            if not source.exists():
                raise UsageError(
                    f"profile '{profile.name}': read-only mount source {source} does not exist"
                )
            continue
        if source.exists() and not source.is_dir():
            raise UsageError(
                f"profile '{profile.name}': writable mount source {source} is not a directory"
            )
        try:
            source.mkdir(parents=True, exist_ok=True)
            if profile.uid is not None and os.geteuid() == 0:
                os.chown(source, profile.uid, profile.gid if profile.gid is not None else -1)
            elif profile.uid is not None and source.stat().st_uid != profile.uid:
                os.chmod(source, 0o1777)  # cannot chown: let the container's uid write
        except OSError as exc:
            raise UsageError(
                f"profile '{profile.name}': cannot prepare writable mount "
                f"{source}: {exc.strerror or exc}"
            ) from None


def create_request(engine: DockerEngine, spec: LaunchSpec, tty: bool = False) -> dict[str, Any]:
    """Keyword arguments for the SDK's `create_container`, from the profile alone."""
    from docker.types import Healthcheck, Mount

    p = spec.effective
    host: dict[str, Any] = {
        "read_only": p.read_only,
        "privileged": p.privileged,
        "network_mode": p.network,
        "cap_drop": list(p.cap_drop) or None,
        "cap_add": list(p.cap_add) or None,
        "security_opt": security_options(p, seccomp_inline=True) or None,
        "tmpfs": {t: tmpfs_option(s) for t, s in p.tmpfs.items()} or None,
        "mounts": [
            Mount(
                target=m.target,
                source=str(resolve_source(spec.project, m.source)),
                type="bind",
                read_only=not m.writable,
            )
            for m in p.mounts
        ]
        or None,
    }
    for ns in ("pid", "ipc", "uts"):
        if getattr(p, ns) != "private":
            host[f"{ns}_mode"] = getattr(p, ns)
    if p.pids_limit is not None:
        host["pids_limit"] = p.pids_limit
    if p.memory is not None:
        host["mem_limit"] = p.memory
    if p.cpus is not None:
        host["cpu_period"], host["cpu_quota"] = CPU_PERIOD, cpu_quota(p.cpus)
    healthcheck = None
    if p.healthcheck is not None:
        hc = p.healthcheck
        healthcheck = Healthcheck(
            test=["CMD", *hc.test],
            interval=_ns(hc.interval),
            timeout=_ns(hc.timeout),
            retries=hc.retries,
            start_period=_ns(hc.start_period),
        )
    return {
        "image": spec.image or p.image,
        "command": list(spec.command) or None,
        "user": p.user,
        "working_dir": p.workdir,
        "environment": dict(p.env) or None,
        "labels": {
            **p.labels,
            **reserved_labels(
                spec.profile, spec.policy_file, spec.launch_id, spec.project, spec.image
            ),
        },
        "name": spec.name,
        "healthcheck": healthcheck,
        "tty": tty,
        "stdin_open": tty,
        "detach": True,
        "host_config": engine.host_config(**host),
    }


def _ns(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1e9)


def verify(
    engine: DockerEngine,
    spec: LaunchSpec,
    container: str,
    image_document: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Inspect what the engine created and compare it with the profile; the inspect if equal."""
    inspect = engine.inspect_container(container)
    if image_document is None or image_document.get("Id") != inspect["Image"]:
        image_document = engine.inspect_image(inspect["Image"])
    image = image_document.get("Config") or {}
    expected = expected_settings(spec.effective, spec.project, image, spec.image)
    drifts = diff(expected, observed_settings(inspect, image))
    if drifts:
        raise VerificationError(spec.profile.name, drifts)
    return inspect


def create_verified(engine: DockerEngine, spec: LaunchSpec, tty: bool = False) -> str:
    """Create the container and verify it; on any failure it is removed and nothing started."""
    image = engine.inspect_image(spec.image or spec.profile.image)  # a clear error first
    prepare_mounts(spec.profile, spec.project)
    try:
        container = engine.create(**create_request(engine, spec, tty))
        verify(engine, spec, container, image)
    except BaseException:
        # By name: the id is unknown if the create call itself was interrupted.
        remove_reliably(engine, spec.name)
        raise
    return container


class _Output:
    """Collects a container's output in a thread, passing each chunk on as it arrives."""

    def __init__(self, chunks: Any, sink: OutputSink | None) -> None:
        self.kept = bytearray()
        self.sink = sink
        self.thread = threading.Thread(target=self._pump, args=(chunks,), daemon=True)
        self.thread.start()

    def _pump(self, chunks: Any) -> None:
        with contextlib.suppress(Exception):  # the stream ends abruptly when a container is killed
            for out, err in chunks:
                for name, data in (("stdout", out), ("stderr", err)):
                    if data:
                        self.kept += data
                        del self.kept[:-OUTPUT_KEPT]
                        if self.sink:
                            self.sink(name, data)

    def text(self, wait: float = 5.0) -> str:
        self.thread.join(wait)
        return self.kept.decode(errors="replace")


def run(
    engine: DockerEngine,
    spec: LaunchSpec,
    sink: OutputSink | None = None,
    keep: bool = False,
    on_timeout: Callable[[float], None] | None = None,
) -> RunResult:
    """Launch, stream, wait (with the profile's timeout) and remove; see the module docstring."""
    started = time.monotonic()
    container = ""
    timed_out = interrupted = False
    exit_code = -1
    output: _Output | None = None
    inspect: dict[str, Any] = {}
    running = False
    left_behind = False
    try:
        container = create_verified(engine, spec)
        output = _Output(engine.attach(container), sink)
        engine.start(container)
        running = True
        try:
            exit_code = engine.wait(container, spec.profile.timeout)
        except TimeoutError:
            timed_out = True
            if on_timeout and spec.profile.timeout:
                on_timeout(spec.profile.timeout)
            engine.stop(container, STOP_GRACE)
            exit_code = EXIT_TIMEOUT
        inspect = engine.inspect_container(container)
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        duration = time.monotonic() - started
        if container and (interrupted or not keep):
            left_behind = not remove_reliably(engine, container)
        elif interrupted:
            left_behind = not remove_reliably(engine, spec.name)
        oom = bool((inspect.get("State") or {}).get("OOMKilled"))
        if oom and not timed_out:
            exit_code = EXIT_OOM
        result = RunResult(
            exit_code=exit_code,
            # A stream that never started never ends: do not wait for it.
            output=output.text(wait=5.0 if running else 0.0) if output else "",
            duration=duration,
            timed_out=timed_out,
            oom_killed=oom and not timed_out,
            container_id=container,
            profile=spec.profile.name,
            digest=digest(spec.profile),
            image=spec.image or spec.profile.image,
            launch_id=spec.launch_id,
            interrupted=interrupted,
        )
        if container:
            record_launch(
                profile=result.profile,
                digest=result.digest,
                image=result.image,
                image_id=inspect.get("Image"),
                container_id=container,
                launch_id=spec.launch_id,
                command=list(spec.command),
                exit_code=result.exit_code,
                duration=round(duration, 3),
                outcome=result.outcome,
                policy=spec.policy_file,
                left_behind=left_behind,
            )
    return result


REMOVE_PATIENCE = 20.0  # seconds to keep trying when the engine is briefly unreachable


def remove_reliably(engine: DockerEngine, container: str) -> bool:
    """Remove `container`, retrying while the engine is unreachable (a restart); on giving up,
    say so loudly with what to run, rather than leave it behind in silence."""
    deadline = time.monotonic() + REMOVE_PATIENCE
    delay = 0.2
    while True:
        try:
            engine.remove(container)
            return True
        except EngineError as exc:
            if time.monotonic() + delay > deadline:
                logger.error(
                    f"could not remove container {container[:12]} ({exc.message}); "
                    "it is left behind: remove it with `policy clean` once the engine "
                    "answers"
                )
                return False
            time.sleep(delay)  # back-off between attempts while the engine restarts
            delay = min(delay * 2, 2.0)


def describe_oom(profile: Profile) -> str:
    limit = f"limit {units.human_size(profile.memory)}" if profile.memory else "no limit"
    return f"killed: out of memory, {limit}"


@contextlib.contextmanager
def detached(engine: DockerEngine, spec: LaunchSpec, remove: bool = True) -> Iterator[str]:
    """A verified container running under the profile, removed on exit (unless `remove=False`)."""
    container = create_verified(engine, spec)
    try:
        engine.start(container)
        record_launch(
            profile=spec.profile.name,
            digest=digest(spec.profile),
            image=spec.image or spec.profile.image,
            container_id=container,
            launch_id=spec.launch_id,
            command=list(spec.command),
            outcome="detached",
            policy=spec.policy_file,
        )
        yield container
    finally:
        if remove:
            remove_reliably(engine, container)
