"""The runtime keys of issue 12 (CIS Docker Benchmark 1.6, section 5): `ulimits`, ...

Kept beside `policy.model` rather than in it: `RuntimeInput` is a base of `ProfileInput` (what a
file may write) and `RuntimeProfile` a base of `Profile` (the effective profile), so each key is
declared once here with its parser and its canonical form. Every key defaults to what a test
container should have (no ulimit override, ...), and a profile that leaves them all at their
default keeps the digest it had before they existed (`RUNTIME_FIELDS`, `policy.canonical`).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator
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


UlimitName = Annotated[str, AfterValidator(_ulimit_name)]
Ulimits = Annotated[
    dict[UlimitName, Annotated[UlimitInput, BeforeValidator(_ulimit_table)]],
    AfterValidator(_finite),
]


class RuntimeInput(_Input):
    """The runtime keys as a profile (or `[defaults]`) writes them: a base of `ProfileInput`."""

    ulimits: Ulimits | None = None


class Ulimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    soft: int
    hard: int


class RuntimeProfile(BaseModel):
    """The runtime keys of an effective profile: a base of `Profile`."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    ulimits: dict[str, Ulimit] = {}  # resource name -> limits; none overrides the engine's


# The fields above: left out of the digest while they hold their default.
RUNTIME_FIELDS = tuple(RuntimeProfile.model_fields)
