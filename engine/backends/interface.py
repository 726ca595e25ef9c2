"""The engine interface: what the project asks of a container engine, and the typed documents it
gets back.

A backend (one module in this folder) implements `Engine`. The documents are pydantic models with
`extra="ignore"`: they name exactly the fields the project reads, under the Engine API's own
spelling as aliases, so an engine that adds fields changes nothing and a field the project reads
is one attribute, typed, instead of a `dict.get` chain. The create request goes the other way as
the Engine API's own JSON body (`ContainerCreateRequest` of API 1.41), which every backend posts
as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy.errors import EngineError

if TYPE_CHECKING:
    from engine.backends.kinds.interface import EngineKind
    from engine.backends.podman_documents import PodmanInfo

# The Engine API's JSON body for `POST /containers/create`, as rendered by `engine.render.request`.
CreateBody = dict[str, Any]
# (stdout, stderr) chunks of a container's output; one of the two is None in each chunk.
OutputChunks = Iterable[tuple[bytes | None, bytes | None]]


class DocumentError(EngineError):
    """The engine answered with a document this project cannot read (a field of the wrong type)."""


class _Document(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)


class HealthcheckDoc(_Document):
    test: list[str] | None = Field(None, alias="Test")
    interval: int | None = Field(None, alias="Interval")  # nanoseconds
    timeout: int | None = Field(None, alias="Timeout")
    retries: int | None = Field(None, alias="Retries")
    start_period: int | None = Field(None, alias="StartPeriod")


class ImageConfig(_Document):
    """What an image gives the containers made from it (`Config` of an image inspect)."""

    user: str | None = Field(None, alias="User")
    env: list[str] | None = Field(None, alias="Env")
    labels: dict[str, str] | None = Field(None, alias="Labels")
    working_dir: str | None = Field(None, alias="WorkingDir")
    healthcheck: HealthcheckDoc | None = Field(None, alias="Healthcheck")


class ContainerConfig(ImageConfig):
    """`Config` of a container inspect: the image's fields plus the image it was created from."""

    image: str | None = Field(None, alias="Image")
    hostname: str | None = Field(None, alias="Hostname")


class TmpfsOptionsDoc(_Document):
    size_bytes: int | None = Field(None, alias="SizeBytes")
    mode: int | None = Field(None, alias="Mode")


class HostMount(_Document):
    """A mount as requested (`HostConfig.Mounts`)."""

    type: str | None = Field(None, alias="Type")
    source: str | None = Field(None, alias="Source")
    target: str = Field(alias="Target")
    read_only: bool = Field(False, alias="ReadOnly")
    tmpfs_options: TmpfsOptionsDoc | None = Field(None, alias="TmpfsOptions")


class DeviceDoc(_Document):
    path_on_host: str | None = Field(None, alias="PathOnHost")
    path_in_container: str | None = Field(None, alias="PathInContainer")
    cgroup_permissions: str | None = Field(None, alias="CgroupPermissions")


class UlimitDoc(_Document):
    name: str = Field(alias="Name")
    soft: int = Field(alias="Soft")
    hard: int = Field(alias="Hard")


class RestartPolicyDoc(_Document):
    name: str | None = Field(None, alias="Name")
    maximum_retry_count: int | None = Field(None, alias="MaximumRetryCount")


class HostConfigDoc(_Document):
    privileged: bool = Field(False, alias="Privileged")
    readonly_rootfs: bool = Field(False, alias="ReadonlyRootfs")
    network_mode: str | None = Field(None, alias="NetworkMode")
    pid_mode: str | None = Field(None, alias="PidMode")
    ipc_mode: str | None = Field(None, alias="IpcMode")
    uts_mode: str | None = Field(None, alias="UTSMode")
    cap_add: list[str] | None = Field(None, alias="CapAdd")
    cap_drop: list[str] | None = Field(None, alias="CapDrop")
    security_opt: list[str] | None = Field(None, alias="SecurityOpt")
    pids_limit: int | None = Field(None, alias="PidsLimit")
    memory: int | None = Field(None, alias="Memory")
    nano_cpus: int | None = Field(None, alias="NanoCpus")
    cpu_quota: int | None = Field(None, alias="CpuQuota")
    cpu_period: int | None = Field(None, alias="CpuPeriod")
    tmpfs: dict[str, str] | None = Field(None, alias="Tmpfs")
    mounts: list[HostMount] | None = Field(None, alias="Mounts")
    devices: list[DeviceDoc] | None = Field(None, alias="Devices")
    port_bindings: dict[str, Any] | None = Field(None, alias="PortBindings")
    ulimits: list[UlimitDoc] | None = Field(None, alias="Ulimits")
    restart_policy: RestartPolicyDoc | None = Field(None, alias="RestartPolicy")
    sysctls: dict[str, str] | None = Field(None, alias="Sysctls")
    cgroup_parent: str | None = Field(None, alias="CgroupParent")
    userns_mode: str | None = Field(None, alias="UsernsMode")
    oom_kill_disable: bool | None = Field(None, alias="OomKillDisable")


class MountPoint(_Document):
    """A mount as the engine made it (`Mounts` of a container inspect)."""

    type: str | None = Field(None, alias="Type")
    source: str | None = Field(None, alias="Source")
    destination: str = Field(alias="Destination")
    rw: bool = Field(False, alias="RW")
    propagation: str | None = Field(None, alias="Propagation")


class ContainerState(_Document):
    status: str | None = Field(None, alias="Status")
    pid: int = Field(0, alias="Pid")
    oom_killed: bool = Field(False, alias="OOMKilled")
    exit_code: int | None = Field(None, alias="ExitCode")


class NetworkSettingsDoc(_Document):
    """`NetworkSettings` of a container inspect: the networks it is attached to, by name."""

    networks: dict[str, Any] | None = Field(None, alias="Networks")


class ContainerInspect(_Document):
    """`GET /containers/{id}/json`: the parts launch verification and the audit read."""

    id: str = Field(alias="Id")
    name: str = Field("", alias="Name")
    image: str = Field("", alias="Image")  # the image id
    config: ContainerConfig = Field(default_factory=ContainerConfig, alias="Config")
    host_config: HostConfigDoc = Field(default_factory=HostConfigDoc, alias="HostConfig")
    mounts: list[MountPoint] | None = Field(None, alias="Mounts")
    state: ContainerState = Field(default_factory=ContainerState, alias="State")
    network_settings: NetworkSettingsDoc = Field(
        default_factory=NetworkSettingsDoc, alias="NetworkSettings"
    )

    @property
    def short_name(self) -> str:
        return self.name.lstrip("/")

    @property
    def labels(self) -> dict[str, str]:
        return self.config.labels or {}


class ImageInspect(_Document):
    """`GET /images/{name}/json`."""

    id: str = Field(alias="Id")
    config: ImageConfig = Field(default_factory=ImageConfig, alias="Config")


class ContainerSummary(_Document):
    """One entry of `GET /containers/json`."""

    id: str = Field(alias="Id")
    names: list[str] | None = Field(None, alias="Names")
    labels: dict[str, str] | None = Field(None, alias="Labels")
    state: str | None = Field(None, alias="State")
    command: str | None = Field(None, alias="Command")

    @property
    def name(self) -> str:
        return (self.names or ["?"])[0].lstrip("/")


class VersionComponent(_Document):
    name: str | None = Field(None, alias="Name")
    version: str | None = Field(None, alias="Version")


class EngineVersion(_Document):
    version: str | None = Field(None, alias="Version")
    api_version: str | None = Field(None, alias="ApiVersion")
    # What answers: Docker names its daemon "Engine", Podman "Podman Engine".
    components: list[VersionComponent] | None = Field(None, alias="Components")


class EngineInfo(_Document):
    """`GET /info`: what `policy doctor` checks."""

    name: str | None = Field(None, alias="Name")
    cgroup_version: str | None = Field(None, alias="CgroupVersion")
    memory_limit: bool = Field(False, alias="MemoryLimit")
    cpu_cfs_quota: bool = Field(False, alias="CpuCfsQuota")
    pids_limit: bool = Field(False, alias="PidsLimit")
    security_options: list[str] | None = Field(None, alias="SecurityOptions")

    @property
    def rootless(self) -> bool:
        """Whether the engine runs as a user other than root (Docker and Podman both say so with
        `name=rootless` among the security options)."""
        return "name=rootless" in (self.security_options or [])


class EventActor(_Document):
    id: str | None = Field(None, alias="ID")


class EngineEvent(_Document):
    """One entry of `GET /events`."""

    id: str | None = None
    type: str | None = Field(None, alias="Type")
    action: str | None = Field(None, alias="Action")
    actor: EventActor | None = Field(None, alias="Actor")

    @property
    def container(self) -> str | None:
        return self.id or (self.actor.id if self.actor else None)


class EventStream(Protocol):
    """The engine's event stream: iterate it; `close()` ends it from another thread."""

    def __iter__(self) -> Iterator[EngineEvent]: ...

    def close(self) -> None: ...


class CpuUsageDoc(_Document):
    total_usage: int | None = None  # nanoseconds of CPU, cumulative


class ThrottlingDoc(_Document):
    periods: int | None = None
    throttled_periods: int | None = None


class CpuStatsDoc(_Document):
    cpu_usage: CpuUsageDoc = Field(default_factory=CpuUsageDoc)
    throttling_data: ThrottlingDoc = Field(default_factory=ThrottlingDoc)


class MemoryStatsDoc(_Document):
    usage: int | None = None
    max_usage: int | None = None  # cgroup v1 only: the kernel's peak
    failcnt: int | None = None
    stats: dict[str, int] | None = None  # memory.stat (v1 or v2 names)


class PidsStatsDoc(_Document):
    current: int | None = None
    limit: int | None = None


class ContainerStats(_Document):
    """One frame of `GET /containers/{id}/stats?stream=1` (the engine sends one a second):
    the figures of a container whose cgroup this machine cannot read (`engine.monitor`)."""

    read: str | None = None  # the engine's clock, RFC 3339
    cpu_stats: CpuStatsDoc = Field(default_factory=CpuStatsDoc)
    memory_stats: MemoryStatsDoc = Field(default_factory=MemoryStatsDoc)
    pids_stats: PidsStatsDoc = Field(default_factory=PidsStatsDoc)


class StatsStream(Protocol):
    """A container's stats frames: iterate them; `close()` ends them from another thread."""

    def __iter__(self) -> Iterator[ContainerStats]: ...

    def close(self) -> None: ...


D = TypeVar("D", bound="_Document")


def unix_mode(go_mode: int) -> int:
    """The Unix permission bits (setuid, setgid, sticky included) of a Go `os.FileMode`, as the
    engine's path stats carry it: Go keeps those three flags far above 0o7777 (1<<23, 1<<22,
    1<<20), so `mode & 0o7777` would lose /tmp's sticky bit."""
    bits = go_mode & 0o777
    for flag, unix in ((1 << 23, 0o4000), (1 << 22, 0o2000), (1 << 20, 0o1000)):
        if go_mode & flag:
            bits |= unix
    return bits


def parse(model: type[D], document: Any, what: str, engine: str) -> D:
    """`document` as `model`, or a `DocumentError` saying which engine sent what."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise DocumentError(
            f"engine {engine} sent a {what} this tool cannot read: {where}: {first['msg']}"
        ) from None


class Engine(Protocol):
    """A container engine. Constructing one makes no network call; the first call connects.
    Every failure is an `EngineError` that names the engine."""

    @property
    def name(self) -> str:
        """How the user names this engine (its URL), for messages and reports."""
        ...

    def version(self) -> EngineVersion: ...

    def info(self) -> EngineInfo: ...

    def ping(self) -> dict[str, str]:
        """The headers of the engine's `/_ping` (`Server`, `Libpod-Api-Version`...): which engine
        answers, for the price of one empty request."""
        ...

    def podman_info(self) -> PodmanInfo:
        """Podman's own /libpod/info (an `EngineError` from an engine that is not Podman)."""
        ...

    def kind(self) -> EngineKind:
        """What answers here (Docker, Podman) and how to treat it (`engine.backends.kinds`),
        from the engine's own /version and /info, asked once per engine object."""
        ...

    def containers(self, filters: dict[str, Any], all: bool = True) -> list[ContainerSummary]: ...

    def inspect_container(self, container: str) -> ContainerInspect: ...

    def inspect_if_exists(self, container: str) -> ContainerInspect | None:
        """The inspect document, or None when the container is gone (removed mid-audit)."""
        ...

    def inspect_image(self, image: str) -> ImageInspect:
        """The image, or an `EngineError` that says how to get it."""
        ...

    def network_scope(self, network: str) -> str:
        """The scope of network `network` (id or name): "local", "swarm" or "global"; "" when
        the engine has no such network."""
        ...

    def create(self, body: CreateBody, name: str) -> str:
        """Create (not start) a container from an Engine API body; its id."""
        ...

    def start(self, container: str) -> None: ...

    def attach(self, container: str) -> OutputChunks:
        """The container's output from now on, as it comes: attach before `start` to get all of
        it. (Not with the engine's `logs=1`: the engine subscribes the stream before it replays
        the log, so a line written during the replay would arrive twice.)"""
        ...

    def attach_socket(self, container: str) -> Any:
        """A socket joined to the container's stdin and output (for an interactive shell), from
        now on, as `attach`."""
        ...

    def resize(self, container: str, height: int, width: int) -> None: ...

    def path_mode(self, container: str, path: str) -> int | None:
        """The permission bits of `path` in the container's file system (for a created, not yet
        started container: the image's), or None when there is nothing at `path`."""
        ...

    def wait(self, container: str, timeout: float | None) -> int:
        """The exit code; raises `TimeoutError` if the container runs longer than `timeout`."""
        ...

    def stop(self, container: str, grace: float) -> None: ...

    def remove(self, container: str) -> None:
        """Remove a container and its anonymous volumes; one already gone is fine."""
        ...

    def events(self, filters: dict[str, Any]) -> EventStream: ...

    def stats(self, container: str) -> StatsStream:
        """The container's resource figures, one frame a second on one connection, until it
        stops or the stream is closed (the monitor of an engine on another machine)."""
        ...

    def close(self) -> None: ...
