"""Parsers that turn the spellings people write into one canonical value.

Sizes, durations, CPU counts, capability names and users each have several accepted spellings;
the canonical value is what the digest, the engine request and the drift comparison all use, so
`1g` and `1024m` are the same policy.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

from policy.errors import Error

# Binary multipliers, as Docker uses them (`--memory 1g` is 1 GiB): `k`, `kb`, `kib` all mean KiB.
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE | re.ASCII)
# The engine stores sizes as signed 64-bit integers.
MAX_SIZE = (1 << 63) - 1

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)", re.ASCII)
MAX_DURATION = 7 * 24 * 3600.0

MAX_CPUS = 1024

# Messages for a value that is not positive, above the maximum, or zero once rounded; `{}` is
# the value as written.
_DURATION_LIMITS = (
    "duration must be positive, got {}",
    "duration {} is longer than 7 days",
    "duration must be at least 1ms, got {}",
)
_CPUS_LIMITS = (
    "cpus must be a positive number, got {}",
    f"cpus must be at most {MAX_CPUS}, got {{}}",
    "cpus must be at least 0.001, got {}",
)

# Linux capability numbers (include/uapi/linux/capability.h), needed both to validate names and to
# decode the CapEff/CapBnd bit masks the kernel reports in /proc/<pid>/status.
CAPABILITIES: dict[str, int] = {
    name: bit
    for bit, name in enumerate(
        [
            "CHOWN",
            "DAC_OVERRIDE",
            "DAC_READ_SEARCH",
            "FOWNER",
            "FSETID",
            "KILL",
            "SETGID",
            "SETUID",
            "SETPCAP",
            "LINUX_IMMUTABLE",
            "NET_BIND_SERVICE",
            "NET_BROADCAST",
            "NET_ADMIN",
            "NET_RAW",
            "IPC_LOCK",
            "IPC_OWNER",
            "SYS_MODULE",
            "SYS_RAWIO",
            "SYS_CHROOT",
            "SYS_PTRACE",
            "SYS_PACCT",
            "SYS_ADMIN",
            "SYS_BOOT",
            "SYS_NICE",
            "SYS_RESOURCE",
            "SYS_TIME",
            "SYS_TTY_CONFIG",
            "MKNOD",
            "LEASE",
            "AUDIT_WRITE",
            "AUDIT_CONTROL",
            "SETFCAP",
            "MAC_OVERRIDE",
            "MAC_ADMIN",
            "SYSLOG",
            "WAKE_ALARM",
            "BLOCK_SUSPEND",
            "AUDIT_READ",
            "PERFMON",
            "BPF",
            "CHECKPOINT_RESTORE",
        ]
    )
}

# What Docker grants a container when nothing is dropped (moby oci/caps/defaults.go).
ENGINE_DEFAULT_CAPABILITIES = frozenset(
    {
        "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
        "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
    }
)  # fmt: skip


class UnitError(Error, ValueError):
    """A value that does not parse; the message says what was expected."""


def parse_size(value: object) -> int:
    """Bytes from an integer or a string such as `100m`, `1g`, `1GiB`, `512MB`, `4096`."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UnitError(f"expected a size such as 100m, 1g or 1GiB, got {_show(value)}")
    if isinstance(value, int):
        number = value
    else:
        match = _SIZE_RE.fullmatch(value.strip())
        if not match:
            raise UnitError(f"expected a size such as 100m, 1g or 1GiB, got {value!r}")
        number_text, unit = match.groups()
        if len(number_text) > 30:
            raise UnitError(f"size {value!r} is too large (at most {MAX_SIZE} bytes)")
        # Exact arithmetic: a float would round byte counts above 2**53 (and refuse MAX_SIZE).
        number = math.floor(Fraction(number_text) * _SIZE_UNITS[unit.lower()])
    if number <= 0:
        raise UnitError(f"size must be positive, got {_show(value)}")
    if number > MAX_SIZE:
        raise UnitError(f"size {_show(value)} is too large (at most {MAX_SIZE} bytes)")
    return number


def format_size(n: int) -> str:
    """The shortest exact Docker spelling of `n` bytes (`1073741824` -> `1g`)."""
    for unit in ("t", "g", "m", "k"):
        if n % _SIZE_UNITS[unit] == 0:
            return f"{n // _SIZE_UNITS[unit]}{unit}"
    return str(n)


def human_size(n: int) -> str:
    """`128 MiB`, `4 GiB`, `1536 KiB`: for messages, not for the engine."""
    for unit, name in (("t", "TiB"), ("g", "GiB"), ("m", "MiB"), ("k", "KiB")):
        if n >= _SIZE_UNITS[unit] and n % _SIZE_UNITS[unit] == 0:
            return f"{n // _SIZE_UNITS[unit]} {name}"
    return f"{n} bytes"


def _positive_rounded(
    number: float, value: object, maximum: float, messages: tuple[str, str, str]
) -> float:
    """`number` rounded to 3 decimals, if it is positive, finite and at most `maximum`."""
    not_positive, too_large, rounds_to_zero = messages
    if not math.isfinite(number) or number <= 0:
        raise UnitError(not_positive.format(_show(value)))
    if number > maximum:
        raise UnitError(too_large.format(_show(value)))
    rounded = round(number, 3)
    if rounded == 0:
        raise UnitError(rounds_to_zero.format(_show(value)))
    return rounded


def parse_duration(value: object) -> float:
    """Seconds from an integer (seconds) or a string such as `2s`, `10m`, `1m30s`, `500ms`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UnitError(f"expected a duration such as 2s, 10m or 1h, got {_show(value)}")
    if isinstance(value, str):
        text = value.strip().lower()
        parts = _DURATION_PART_RE.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise UnitError(f"expected a duration such as 2s, 10m or 1m30s, got {value!r}")
        seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    else:
        seconds = float(value)
    # Millisecond precision keeps the canonical form (and the digest) free of float noise.
    return _positive_rounded(seconds, value, MAX_DURATION, _DURATION_LIMITS)


def format_duration(seconds: float) -> str:
    """A compact spelling (`2s`, `10m`, `1m30s`, `0.5s`) that `parse_duration` reads back."""
    if seconds != int(seconds):
        # Every digit, never an exponent (`:g` would turn 1234.567 into 1234.57).
        return format(Decimal(repr(float(seconds))), "f") + "s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")
    return out + (f"{secs}s" if secs or not out else "")


def parse_cpus(value: object) -> float:
    """A CPU count from a number or a numeric string, at millicpu precision (`1.5`, `"2"`)."""
    if isinstance(value, bool):
        raise UnitError(f"expected a number of CPUs such as 1, 2 or 0.5, got {_show(value)}")
    number: float
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        # ASCII digits only: float() would also take look-alikes such as Bengali digits.
        if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", value.strip(), re.ASCII):
            raise UnitError(f"expected a number of CPUs such as 1, 2 or 0.5, got {value!r}")
        number = float(value.strip())
    else:
        raise UnitError(f"expected a number of CPUs such as 1, 2 or 0.5, got {_show(value)}")
    return _positive_rounded(number, value, MAX_CPUS, _CPUS_LIMITS)


def nano_cpus(cpus: float) -> int:
    """The engine's NanoCpus for a canonical CPU count."""
    return round(cpus * 1e9)


def parse_capability(value: object) -> str:
    """`SYS_PTRACE` from `sys_ptrace`, `CAP_SYS_PTRACE` or `Cap_Sys_Ptrace`; `ALL` is kept."""
    if not isinstance(value, str):
        raise UnitError(f"expected a capability name such as NET_RAW, got {_show(value)}")
    name = value.strip().upper()
    name = name.removeprefix("CAP_")
    if name == "ALL" or name in CAPABILITIES:
        return name
    from difflib import get_close_matches

    hint = get_close_matches(name, [*CAPABILITIES, "ALL"], n=1)
    suffix = f" (did you mean {hint[0]}?)" if hint else ""
    raise UnitError(f"unknown capability {value!r}{suffix}")


def effective_capabilities(cap_add: tuple[str, ...], cap_drop: tuple[str, ...]) -> frozenset[str]:
    """The bounding set Docker gives a container: its defaults plus `cap_add` minus `cap_drop`.

    Mirrors moby's TweakCapabilities: `ALL` in cap_add grants everything, `ALL` in cap_drop
    removes the defaults, and an explicit add wins over a drop of ALL.
    """
    if "ALL" in cap_add:
        base = set(CAPABILITIES)
    elif "ALL" in cap_drop:
        base = set()
    else:
        base = set(ENGINE_DEFAULT_CAPABILITIES)
    base |= {c for c in cap_add if c != "ALL"}
    if "ALL" not in cap_add:
        base -= {c for c in cap_drop if c != "ALL" and c not in cap_add}
    return frozenset(base)


def capabilities_from_mask(mask: int) -> frozenset[str]:
    """Capability names from a /proc/<pid>/status bit mask (CapEff, CapBnd)."""
    return frozenset(name for name, bit in CAPABILITIES.items() if mask >> bit & 1)


_ID_RE = re.compile(r"[0-9]{1,10}")
MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "no change" to the kernel


def parse_user(value: object) -> tuple[int, int | None]:
    """`(uid, gid)` from `"1001:1001"`, `"1001"` or `1001`.

    Names are refused on purpose: they resolve inside the image at start, so a reviewer could not
    tell from the policy whether `app` is uid 0.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise UnitError(f'expected a user such as "1001:1001" or 1001, got {_show(value)}')
    text = str(value).strip()
    uid_text, sep, gid_text = text.partition(":")
    for part in (uid_text, gid_text) if sep else (uid_text,):
        if not _ID_RE.fullmatch(part):
            raise UnitError(
                f'expected a numeric user such as "1001:1001" or "1001", got {value!r}; '
                "user names resolve inside the image, so the policy could not be checked"
            )
    uid = int(uid_text)
    gid = int(gid_text) if sep else None
    if uid > MAX_ID or (gid is not None and gid > MAX_ID):
        raise UnitError(f"user and group ids must be at most {MAX_ID}, got {value!r}")
    return uid, gid


def format_user(uid: int, gid: int | None) -> str:
    return f"{uid}" if gid is None else f"{uid}:{gid}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
