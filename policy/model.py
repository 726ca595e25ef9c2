"""The policy file format as pydantic models: what a user may write, and the effective profile.

Input models (`ProfileInput`, `PolicyFileInput`, ...) forbid unknown keys and coerce nothing
implicitly: every accepted spelling goes through a parser in `policy.units`, which returns the
canonical value. `Profile` is the effective, fully resolved profile after `extends`.
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
import unicodedata
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from policy import units
from policy.errors import UsageError
from policy.kubernetes_keys import KubernetesField, KubernetesInputField
from policy.runtime_keys import Propagation, RuntimeInput, RuntimeProfile

# Reserved for the labels the engine stamps on launched containers; policy input may not use it.
LABEL_NAMESPACE = "io.container-policy."

SUPPORTED_VERSIONS = (1,)


def _unit(parse: Callable[[object], Any]) -> Callable[[object], Any]:
    """Wrap a `policy.units` parser so its message becomes a `bad-value` validation error."""

    def validate(value: object) -> Any:
        try:
            return parse(value)
        except units.UnitError as exc:
            raise PydanticCustomError("bad-value", str(exc)) from None

    return validate


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("bad-value", message)


def _no_invisible(value: str, what: str) -> None:
    # Control and format characters (NUL, newline, right-to-left marks, zero-width spaces) make a
    # path read differently from what the engine is given.
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise _fail(
            f"{what} may not contain control or invisible characters (found U+{ord(bad):04X})"
        )


def _absolute_path(value: str) -> str:
    if not value.startswith("/"):
        raise _fail(f"container path must be absolute, got {value!r}")
    _no_invisible(value, "container path")
    normal = posixpath.normpath(value)
    if normal.startswith("//"):
        normal = "/" + normal.lstrip("/")
    if any(part == ".." for part in value.split("/")):
        raise _fail(f"container path may not contain '..', got {value!r}")
    if normal in ("/", ""):
        raise _fail("container path may not be / itself")
    return normal


def _user(value: object) -> str:
    uid, gid = units.parse_user(value)
    return units.format_user(uid, gid)


def _unique_sorted(values: list[str]) -> list[str]:
    return sorted(set(values))


# An image reference as the engine accepts it; the leading-character rule is what keeps
# `--privileged` from ever reaching a command line as an "image".
_IMAGE_RE = re.compile(
    r"[a-z0-9][a-z0-9._/:-]*(?:@sha256:[a-f0-9]{64})?|sha256:[a-f0-9]{64}", re.ASCII
)
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re.ASCII)
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,255}", re.ASCII)
_LABEL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_./-]{0,254}", re.ASCII)


def _image(value: str) -> str:
    if len(value) > 255 or not _IMAGE_RE.fullmatch(value):
        raise _fail(
            f"not an image reference: {value!r} (expected name[:tag][@sha256:...], lowercase, "
            "starting with a letter or digit)"
        )
    return value


def checked_image(value: str, what: str = "image") -> str:
    """An image reference given outside a policy file (`--image`, the API's `image=`)."""
    if not isinstance(value, str) or len(value) > 255 or not _IMAGE_RE.fullmatch(value):
        raise UsageError(f"{what}: not an image reference: {value!r}")
    return value


def _network(value: str) -> str:
    if value.startswith("container:"):
        raise _fail("sharing another container's network namespace is not supported")
    if not _NAME_RE.fullmatch(value):
        raise _fail(f"expected none, bridge, host or a network name, got {value!r}")
    return value


def _env_name(value: str) -> str:
    if not _ENV_RE.fullmatch(value):
        raise _fail(f"not an environment variable name: {value!r}")
    if value.lower().startswith(LABEL_NAMESPACE.replace(".", "_").replace("-", "_")):
        raise _fail("environment names in the engine's reserved namespace may not be set")
    return value


def _host_path(value: str) -> str:
    _no_invisible(value, "mount source")
    return value


def _text(value: str) -> str:
    if "\x00" in value:
        raise _fail("text may not contain NUL characters")
    return value


def _label_key(value: str) -> str:
    if not _LABEL_RE.fullmatch(value):
        raise _fail(f"not a label key: {value!r}")
    if value.lower().startswith(LABEL_NAMESPACE):
        raise PydanticCustomError(
            "reserved-label",
            "labels under {ns} are set by the engine and may not be set by a policy",
            {"ns": LABEL_NAMESPACE},
        )
    return value


def _mode(value: object) -> int:
    # Only strings: TOML turns both `1777` and `0o1777` into plain integers, so an integer mode
    # could be a decimal 1777 (which is 0o3361) written by mistake, and nothing could tell.
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value.strip()):
        return int(value.strip(), 8)
    if isinstance(value, int) and not isinstance(value, bool):
        raise _fail(f'write the mode as an octal string such as "1777", got the integer {value}')
    raise _fail(f'expected an octal mode string such as "1777", got {value!r}')


def _share(value: object) -> float:
    # A share of a limit: 0.9 (TOML may give the integer 1), or "90%" as people say it.
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*%\s*", value):
        share = float(value.strip().rstrip("%")) / 100
    elif isinstance(value, int | float) and not isinstance(value, bool):
        share = float(value)
    else:
        raise _fail(f'expected a share such as 0.9 or "90%", got {value!r}')
    if not 0 < share <= 1:
        raise _fail(f"a share must be above 0 and at most 1 (100%), got {value!r}")
    return round(share, 4)


def _interval(value: object) -> float:
    seconds = _unit(units.parse_duration)(value)
    assert isinstance(seconds, float)
    # Faster than 10 samples a second costs more than it tells; slower than a minute misses
    # everything a test run does.
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise _fail(f"a sampling interval must be between 100ms and 60s, got {value!r}")
    return seconds


MIN_INTERVAL, MAX_INTERVAL = 0.1, 60.0

Size = Annotated[int, BeforeValidator(_unit(units.parse_size))]
Duration = Annotated[float, BeforeValidator(_unit(units.parse_duration))]
Cpus = Annotated[float, BeforeValidator(_unit(units.parse_cpus))]
Capability = Annotated[str, BeforeValidator(_unit(units.parse_capability))]
Capabilities = Annotated[list[Capability], AfterValidator(_unique_sorted)]
User = Annotated[str, BeforeValidator(_unit(_user))]
ContainerPath = Annotated[str, AfterValidator(_absolute_path)]
Image = Annotated[str, AfterValidator(_image)]
Text = Annotated[str, AfterValidator(_text)]
Mode = Annotated[int, BeforeValidator(_mode)]
EnvName = Annotated[str, AfterValidator(_env_name)]
LabelKey = Annotated[str, AfterValidator(_label_key)]
TmpfsOption = Literal["nosuid", "suid", "nodev", "dev", "noexec", "exec", "ro", "rw"]
PositiveInt = Annotated[int, Field(gt=0, le=(1 << 31) - 1)]
Share = Annotated[float, BeforeValidator(_share)]
Interval = Annotated[float, BeforeValidator(_interval)]


class _Input(BaseModel):
    """Shared config for everything read from a policy file: strict, closed, no coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class TmpfsInput(_Input):
    """`tmpfs."/tmp" = { size = "100m", mode = "1777", options = ["nosuid"] }` (partial)."""

    size: Size | None = None
    mode: Mode | None = None
    options: Annotated[list[TmpfsOption], AfterValidator(_unique_sorted)] | None = None


class MountInput(_Input):
    """A bind mount; read-only unless `writable = true`."""

    source: Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_host_path)]
    target: ContainerPath
    writable: bool = False
    propagation: Propagation | None = None  # see policy.runtime_keys


class HealthcheckInput(_Input):
    """The engine's health check: `test` is an exec array (no shell), as `["CMD", ...]` is."""

    test: Annotated[list[Text], Field(min_length=1)]
    interval: Duration | None = None
    timeout: Duration | None = None
    retries: PositiveInt | None = None
    start_period: Duration | None = None


class MonitorInput(_Input):
    """`monitor = { ... }`: how a launch is sampled and what its summary calls a violation
    (partial; see `Monitor`). Not sent to the engine, so not part of the digest."""

    interval: Interval | None = None
    memory_warn: Share | None = None
    throttle_warn: Share | None = None
    fd_growth_warn: PositiveInt | None = None
    fail_on_violation: bool | None = None


class ProfileInput(_Input, RuntimeInput, KubernetesInputField):
    """One `[profiles.NAME]` table (or `[defaults]`) as written: every key optional (the
    runtime keys of `policy.runtime_keys` too)."""

    extends: Annotated[str, Field(min_length=1)] | None = None
    description: Text | None = None
    image: Image | None = None
    user: User | None = None
    read_only: bool | None = None
    privileged: bool | None = None
    network: Annotated[str, AfterValidator(_network)] | None = None
    pid: Literal["private", "host"] | None = None
    ipc: Literal["private", "host", "none"] | None = None
    uts: Literal["private", "host"] | None = None
    cap_drop: Capabilities | None = None
    cap_add: Capabilities | None = None
    no_new_privileges: bool | None = None
    seccomp: Annotated[str, Field(min_length=1), AfterValidator(_text)] | None = None
    pids_limit: PositiveInt | None = None
    memory: Size | None = None
    cpus: Cpus | None = None
    timeout: Duration | None = None
    tmpfs: dict[ContainerPath, TmpfsInput] | None = None
    mounts: list[MountInput] | None = None
    env: dict[EnvName, Text] | None = None
    workdir: ContainerPath | None = None
    healthcheck: HealthcheckInput | None = None
    labels: dict[LabelKey, Text] | None = None
    monitor: MonitorInput | None = None
    swarm_network: Literal["internal"] | None = None


class WaiverInput(_Input):
    """`[[waivers]]`: an accepted, dated exception to one rule for one profile."""

    profile: Annotated[str, Field(min_length=1)]
    rule: Annotated[str, Field(min_length=1)]
    reason: Annotated[str, Field(min_length=10), AfterValidator(_text)]
    expires: dt.date


class PolicyFileInput(_Input):
    """A whole policy file."""

    version: int
    defaults: ProfileInput | None = None
    profiles: dict[Annotated[str, Field(pattern=_NAME_RE.pattern)], ProfileInput] = {}
    waivers: list[WaiverInput] = []


# --- The effective profile -------------------------------------------------------------------


class _Canonical(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Tmpfs(_Canonical):
    size: int
    mode: int | None = None
    options: tuple[str, ...] = ()


class Mount(_Canonical):
    source: str
    target: str
    writable: bool = False
    propagation: str | None = None  # the engine's rprivate


class Healthcheck(_Canonical):
    test: tuple[str, ...]
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None


class Monitor(_Canonical):
    """How launches of a profile are sampled and judged (`engine.monitor`): the defaults of
    issue 11, each overridable in `[defaults]` or a profile's `monitor` table."""

    interval: float = 1.0  # seconds between samples
    memory_warn: float = 0.9  # warn when the memory peak reaches this share of `memory`
    throttle_warn: float = 0.25  # warn when more than this share of CPU periods was throttled
    fd_growth_warn: int = 16  # warn when this many more files are open at the end than at start
    fail_on_violation: bool = False  # a warning fails the run (as --fail-on-violation does)


class Seccomp(_Canonical):
    """`default`, `unconfined`, or a custom JSON profile known by its content hash."""

    mode: Literal["default", "unconfined", "custom"]
    path: str | None = None  # where the custom profile was read from (not part of the digest)
    digest: str | None = None  # "sha256:..." of the canonical JSON
    default_allow: bool = False  # a custom profile whose default action allows every syscall

    @property
    def canonical(self) -> str:
        return self.digest if self.mode == "custom" and self.digest else self.mode


class Profile(_Canonical, RuntimeProfile, KubernetesField):
    """An effective profile: `[defaults]`, then each parent, then the profile itself, merged.

    Unset fields hold the engine's own default (no limit, default seccomp, Docker's default
    capability set), so security rules judge what would actually run.
    """

    name: str
    description: str | None = None
    image: str
    user: str | None = None
    read_only: bool = False
    privileged: bool = False
    network: str = "bridge"
    pid: str = "private"
    ipc: str = "private"
    uts: str = "private"
    cap_drop: tuple[str, ...] = ()
    cap_add: tuple[str, ...] = ()
    no_new_privileges: bool = False
    # Constructed, not validated: a literal known to be valid, and validating it here would
    # build Seccomp's validator at import time (`defer_build` keeps that for first use).
    seccomp: Seccomp = Seccomp.model_construct(mode="default")
    pids_limit: int | None = None
    memory: int | None = None
    cpus: float | None = None
    timeout: float | None = None
    tmpfs: dict[str, Tmpfs] = {}
    mounts: tuple[Mount, ...] = ()
    env: dict[str, str] = {}
    workdir: str | None = None
    healthcheck: Healthcheck | None = None
    labels: dict[str, str] = {}
    # What a Swarm job (`policy run --swarm`) gets instead of `network = "none"`, which a
    # service cannot express: "internal", an overlay network with no route out, made for the
    # job and removed with it. None: such a profile is refused on a swarm.
    swarm_network: str | None = None
    # Launcher-side only (never rendered, not digested): see `Monitor`. Constructed, as
    # `seccomp` is, so that importing the model builds no validator.
    monitor: Monitor = Monitor.model_construct()

    @property
    def uid(self) -> int | None:
        """The numeric uid, or None when unset or a name (only observed containers have names:
        policy input refuses them)."""
        return self._ids()[0]

    @property
    def gid(self) -> int | None:
        return self._ids()[1]

    def _ids(self) -> tuple[int | None, int | None]:
        if self.user is None:
            return None, None
        try:
            return units.parse_user(self.user)
        except units.UnitError:
            return None, None

    @property
    def capabilities(self) -> frozenset[str]:
        return units.effective_capabilities(self.cap_add, self.cap_drop)
