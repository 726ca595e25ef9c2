"""The runtime keys of issue 12 (CIS Docker Benchmark 1.6, section 5): `ulimits`, `ports`,
`devices`, `restart`, `sysctls`, `cgroup_parent`, `userns`, `oom_kill_disable`, `apparmor`,
`selinux` (and `propagation` of a mount, in `policy.model`).

Kept beside `policy.model` rather than in it: `RuntimeInput` is a base of `ProfileInput` (what a
file may write) and `RuntimeProfile` a base of `Profile` (the effective profile), so each key is
declared once here with its parser and its canonical form. Every key defaults to what a test
container should have (no ulimit override, ...), and a profile that leaves them all at their
default keeps the digest it had before they existed (`RUNTIME_FIELDS`, `policy.canonical`).
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from policy.pydantic_errors import did_you_mean

# The names `docker run --ulimit` knows (go-units), which are the kernel's RLIMIT_* resources.
ULIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip
UNLIMITED = -1  # the engine's spelling of RLIM_INFINITY
MAX_ULIMIT = (1 << 63) - 1  # the engine keeps a limit as a signed 64-bit integer
# The kernel refuses an infinite open-files limit (it is capped by fs.nr_open), so the container
# would fail to start after it was verified: refused at validation instead.
NO_INFINITY = frozenset({"nofile"})


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("bad-value", message)


def _ulimit_name(value: str) -> str:
    if value not in ULIMIT_NAMES:
        raise _fail(
            f"unknown ulimit {value!r}{did_you_mean(value.lower(), ULIMIT_NAMES)}; "
            f"known: {', '.join(ULIMIT_NAMES)}"
        )
    return value


def _ulimit_value(value: object) -> int:
    if value == "unlimited":
        return UNLIMITED
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ULIMIT:
        return value
    raise _fail(f'expected a limit from 0 to {MAX_ULIMIT} or "unlimited", got {value!r}')


def _ulimit_table(value: object) -> object:
    # `nofile = 4096` is soft and hard at once; a table gives both, explicitly.
    if isinstance(value, dict):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        _ulimit_value(value)  # one message for a bad limit, not one for soft and one for hard
        return {"soft": value, "hard": value}
    raise _fail(
        f'expected a limit (4096 or "unlimited") or a table {{ soft = N, hard = M }}, got {value!r}'
    )


def _finite(limits: dict[str, Any]) -> dict[str, Any]:
    for name in sorted(NO_INFINITY & set(limits)):
        if UNLIMITED in (limits[name].soft, limits[name].hard):
            raise _fail(f"{name} cannot be unlimited: the kernel refuses it (fs.nr_open caps it)")
    return limits


def _above(a: int, b: int) -> bool:
    """Whether limit `a` is above limit `b`, unlimited being above everything."""
    if a == b:
        return False
    return a == UNLIMITED or (b != UNLIMITED and a > b)


def format_ulimit(value: int) -> int | str:
    """A limit as the policy language writes it."""
    return "unlimited" if value == UNLIMITED else value


def _host_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _fail(
            f"expected an IP address of this host such as 127.0.0.1, got {value!r}"
        ) from None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:0.0.0.0 is 0.0.0.0 as well
    if address.is_unspecified or (mapped is not None and mapped.is_unspecified):
        raise _fail(
            f"{value} is every interface of the host (CIS 5.14): give the one address to "
            "publish on, for example 127.0.0.1"
        )
    return str(address)  # canonical: "::1" for "0:0::1"


_DEVICE_RE = re.compile(r"/[A-Za-z0-9_./+-]+", re.ASCII)


def _path(value: str, under: str | None = None) -> str:
    # No ':' or ',': the docker CLI splits a --device argument at them; no invisible characters.
    if not _DEVICE_RE.fullmatch(value) or ".." in value.split("/"):
        raise _fail(f"expected an absolute device path such as /dev/fuse, got {value!r}")
    normal = posixpath.normpath(value)
    if normal in ("/", "//"):
        raise _fail(f"a device path names a device, not {value!r}")
    if under is not None and not normal.startswith(under):
        raise _fail(f"a host device must be below {under}, got {value!r}")
    return normal


def _permissions(value: str) -> str:
    if not value or set(value) - set("rwm") or len(set(value)) != len(value):
        raise _fail(f'expected device permissions made of r, w and m such as "rw", got {value!r}')
    return "".join(c for c in "rwm" if c in value)


def port_text(host: str, host_port: int | None, container: int, protocol: str) -> str:
    """`docker run --publish` spelling: `127.0.0.1:8080:80/tcp`, `[::1]::80/udp`."""
    address = f"[{host}]" if ":" in host else host
    return f"{address}:{host_port or ''}:{container}/{protocol}"


def _no_invisible(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value):
        raise _fail("may not contain control or invisible characters")
    return value


PortNumber = Annotated[int, Field(ge=1, le=65535)]
MAX_RETRIES = (1 << 31) - 1


def _restart(value: str) -> str:
    if value == "no":
        return value
    name, sep, count = value.partition(":")
    if name == "on-failure" and sep and count.isdigit() and 1 <= int(count) <= MAX_RETRIES:
        return f"on-failure:{int(count)}"
    if name in ("always", "unless-stopped") or value in ("on-failure", "on-failure:0"):
        raise _fail(
            f"{value!r} restarts a failing test container without end (CIS 5.15): use "
            '"no" or a bounded "on-failure:N", for example "on-failure:3"'
        )
    raise _fail(f'expected "no" or "on-failure:N" (N from 1), got {value!r}')


# The sysctls the engine namespaces per container; any other would change the host itself.
NAMESPACED_SYSCTLS = frozenset({
    "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
    "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
})  # fmt: skip
NAMESPACED_PREFIXES = ("fs.mqueue.", "net.")
_SYSCTL_RE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_-]+)+", re.ASCII)


def _sysctl_name(value: str) -> str:
    if not _SYSCTL_RE.fullmatch(value):
        raise _fail(f"not a sysctl name such as net.ipv4.ping_group_range: {value!r}")
    if value not in NAMESPACED_SYSCTLS and not value.startswith(NAMESPACED_PREFIXES):
        raise _fail(
            f"{value} is not namespaced per container: setting it would change the host "
            "(only net.*, fs.mqueue.* and the kernel IPC sysctls are)"
        )
    return value


def _sysctl_value(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= 256:
        return _no_invisible(value)
    raise _fail(f"expected a sysctl value (a string or an integer), got {value!r}")


_APPARMOR_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
_LABEL_RE = re.compile(r"(user|role|type|level):[A-Za-z0-9_.:,-]{1,255}", re.ASCII)


def _apparmor(value: str) -> str:
    if not _APPARMOR_RE.fullmatch(value):
        raise _fail(f'expected an AppArmor profile name or "unconfined", got {value!r}')
    return value


def _selinux(values: list[str]) -> list[str]:
    for value in values:
        if value != "disable" and not _LABEL_RE.fullmatch(value):
            raise _fail(
                f'expected SELinux label options such as "type:container_t" or "level:s0:c1,c2",'
                f' or "disable", got {value!r}'
            )
    if "disable" in values and len(values) > 1:
        raise _fail('"disable" turns labelling off: it cannot be combined with other options')
    return sorted(set(values))


def _propagation(value: str) -> str | None:
    if value not in PROPAGATIONS:
        raise _fail(f"expected one of {', '.join(PROPAGATIONS)}, got {value!r}")
    return None if value == "rprivate" else value  # the engine's default, written out


PROPAGATIONS = ("rprivate", "private", "rslave", "slave", "rshared", "shared")
# A bind mount's propagation (`policy.model.MountInput`); rprivate, the default, is None.
Propagation = Annotated[str, AfterValidator(_propagation)]

_CGROUP_RE = re.compile(r"[A-Za-z0-9_.:@/-]{1,255}", re.ASCII)


def _cgroup_parent(value: str) -> str:
    if not _CGROUP_RE.fullmatch(value) or ".." in value.split("/"):
        raise _fail(f"not a cgroup path such as /ci or ci.slice: {value!r}")
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


class UlimitInput(_Input):
    """`nofile = { soft = 1024, hard = 4096 }` (both required; `nofile = 4096` sets both)."""

    soft: Annotated[int, BeforeValidator(_ulimit_value)]
    hard: Annotated[int, BeforeValidator(_ulimit_value)]

    @model_validator(mode="after")
    def _soft_not_above_hard(self) -> UlimitInput:
        if _above(self.soft, self.hard):
            raise _fail(
                f"the soft limit ({format_ulimit(self.soft)}) is above the hard limit "
                f"({format_ulimit(self.hard)})"
            )
        return self


class PortInput(_Input):
    """`{ host = "127.0.0.1", host_port = 8080, container = 80, protocol = "tcp" }`."""

    host: Annotated[str, AfterValidator(_host_address)]
    host_port: PortNumber | None = None  # none: the engine picks a free one
    container: PortNumber
    protocol: Literal["tcp", "udp", "sctp"] = "tcp"


class DeviceInput(_Input):
    """`{ host = "/dev/fuse", container = "/dev/fuse", permissions = "rwm" }`."""

    host: Annotated[str, AfterValidator(lambda v: _path(v, "/dev/"))]
    container: Annotated[str, AfterValidator(_path)] | None = None  # the host path
    permissions: Annotated[str, AfterValidator(_permissions)] = "rwm"


UlimitName = Annotated[str, AfterValidator(_ulimit_name)]
Ulimits = Annotated[
    dict[UlimitName, Annotated[UlimitInput, BeforeValidator(_ulimit_table)]],
    AfterValidator(_finite),
]


class RuntimeInput(_Input):
    """The runtime keys as a profile (or `[defaults]`) writes them: a base of `ProfileInput`."""

    ulimits: Ulimits | None = None
    ports: list[PortInput] | None = None
    devices: list[DeviceInput] | None = None
    restart: Annotated[str, AfterValidator(_restart)] | None = None
    sysctls: (
        dict[
            Annotated[str, AfterValidator(_sysctl_name)],
            Annotated[str, BeforeValidator(_sysctl_value)],
        ]
        | None
    ) = None
    cgroup_parent: Annotated[str, AfterValidator(_cgroup_parent)] | None = None
    userns: Literal["private", "host"] | None = None
    oom_kill_disable: bool | None = None
    apparmor: Annotated[str, AfterValidator(_apparmor)] | None = None
    selinux: Annotated[list[str], AfterValidator(_selinux)] | None = None


class Ulimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    soft: int
    hard: int


class Port(BaseModel):
    """A published port; `host` may be an unspecified address only on an observed container."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    host: str
    host_port: int | None = None
    container: int
    protocol: str = "tcp"

    @property
    def text(self) -> str:
        return port_text(self.host, self.host_port, self.container, self.protocol)


class Device(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    host: str
    container: str
    permissions: str = "rwm"

    @model_validator(mode="before")
    @classmethod
    def _same_path(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("container") is None:
            return {**data, "container": data.get("host")}
        return data

    @property
    def text(self) -> str:
        return f"{self.host}:{self.container}:{self.permissions}"


class RuntimeProfile(BaseModel):
    """The runtime keys of an effective profile: a base of `Profile`."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    ulimits: dict[str, Ulimit] = {}  # resource name -> limits; none overrides the engine's
    ports: tuple[Port, ...] = ()  # none published
    devices: tuple[Device, ...] = ()  # no host device
    restart: str = "no"  # or "on-failure:N"; an observed container may show "always"
    sysctls: dict[str, str] = {}
    cgroup_parent: str | None = None  # the engine's own parent
    userns: str = "private"  # the engine's (remapped when the daemon remaps)
    oom_kill_disable: bool = False
    apparmor: str | None = None  # the engine's default profile (where it has AppArmor)
    selinux: tuple[str, ...] = ()  # label options; the engine's default labels


# The fields above: left out of the digest while they hold their default.
RUNTIME_FIELDS = tuple(RuntimeProfile.model_fields)
