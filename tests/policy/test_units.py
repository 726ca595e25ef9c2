"""The spellings people write (sizes, durations, CPUs, capabilities, users) and their one
canonical value, which the digest, the engine request and drift comparison all use."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policy import units
from policy.units import (
    CAPABILITIES,
    ENGINE_DEFAULT_CAPABILITIES,
    MAX_DURATION,
    MAX_SIZE,
    UnitError,
    capabilities_from_mask,
    effective_capabilities,
    format_duration,
    format_size,
    format_user,
    parse_capability,
    parse_cpus,
    parse_duration,
    parse_size,
    parse_user,
)

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


# --- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100m", 100 * MiB),
        ("1g", GiB),
        ("1G", GiB),
        ("1GiB", GiB),
        ("1gib", GiB),
        ("1GB", GiB),
        ("512MB", 512 * MiB),
        ("512 MiB", 512 * MiB),
        ("4k", 4 * KiB),
        ("4kb", 4 * KiB),
        ("2t", 2 * TiB),
        ("4096", 4096),
        ("4096b", 4096),
        (" 64m ", 64 * MiB),
        ("1.5g", 3 * GiB // 2),
        ("0.5k", 512),
        (4096, 4096),
        (1, 1),
        (str(MAX_SIZE), MAX_SIZE),
        (MAX_SIZE, MAX_SIZE),
        (str(2**60 + 1), 2**60 + 1),  # exact, not rounded through a float
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert parse_size(text) == expected


def test_size_spellings_are_one_value() -> None:
    assert parse_size("1024m") == parse_size("1g") == parse_size(GiB) == parse_size("1048576k")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("-1g", "expected a size"),
        ("0", "must be positive"),
        (0, "must be positive"),
        (-5, "must be positive"),
        ("0.0001k", "must be positive"),
        ("1.5.3g", "expected a size"),
        ("1x", "expected a size"),
        ("g", "expected a size"),
        ("", "expected a size"),
        ("1e9", "expected a size"),
        ("1 g b", "expected a size"),
        (2**64, "too large"),
        (MAX_SIZE + 1, "too large"),
        (str(MAX_SIZE + 1), "too large"),
        ("8388608t", "too large"),
        ("9" * 40, "too large"),
        (True, "expected a size"),
        (1.5, "expected a size"),
        (None, "expected a size"),
        ([1], "expected a size"),
    ],
)
def test_parse_size_refuses(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_size(value)


@pytest.mark.parametrize(
    ("n", "text"),
    [(GiB, "1g"), (512 * MiB, "512m"), (1536 * MiB, "1536m"), (TiB, "1t"), (4 * KiB, "4k"),
     (1000, "1000"), (1, "1"), (GiB + 1, str(GiB + 1))],
)  # fmt: skip
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text
    assert parse_size(text) == n


@given(st.integers(min_value=1, max_value=MAX_SIZE))
def test_size_round_trip(n: int) -> None:
    assert parse_size(format_size(n)) == n


@given(st.integers(min_value=1, max_value=MAX_SIZE >> 40), st.sampled_from("kmgt"))
def test_size_round_trip_of_whole_units(count: int, unit: str) -> None:
    n = count * {"k": KiB, "m": MiB, "g": GiB, "t": TiB}[unit]
    assert parse_size(format_size(n)) == n
    assert parse_size(f"{count}{unit}") == n


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2s", 2.0),
        ("10m", 600.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("1h2m3s", 3723.0),
        ("500ms", 0.5),
        ("1s500ms", 1.5),
        ("1.5s", 1.5),
        ("2S", 2.0),
        (" 10m ", 600.0),
        (30, 30.0),
        (0.25, 0.25),
    ],
)
def test_parse_duration(text: object, expected: float) -> None:
    assert parse_duration(text) == expected


def test_duration_is_kept_at_millisecond_precision() -> None:
    assert parse_duration("1.23456s") == 1.235
    assert parse_duration(0.1 + 0.2) == 0.3


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "expected a duration"),
        ("10", "expected a duration"),
        ("1x", "expected a duration"),
        ("1m 30s", "expected a duration"),
        ("-1s", "expected a duration"),
        ("1d", "expected a duration"),
        ("s", "expected a duration"),
        (0, "must be positive"),
        (-1, "must be positive"),
        ("0s", "must be positive"),
        (float("inf"), "must be positive"),
        (float("nan"), "must be positive"),
        ("0.0004s", "at least 1ms"),
        (0.0001, "at least 1ms"),
        ("169h", "longer than 7 days"),
        (MAX_DURATION + 1, "longer than 7 days"),
        (True, "expected a duration"),
        (None, "expected a duration"),
    ],
)
def test_parse_duration_refuses(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2.0, "2s"), (600.0, "10m"), (90.0, "1m30s"), (3600.0, "1h"), (3723.0, "1h2m3s"),
     (0.5, "0.5s"), (1234.567, "1234.567s"), (604799.5, "604799.5s")],
)  # fmt: skip
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@given(st.integers(min_value=1, max_value=int(MAX_DURATION * 1000)))
def test_duration_round_trip(milliseconds: int) -> None:
    seconds = parse_duration(milliseconds / 1000)  # any value the parser can produce
    assert parse_duration(format_duration(seconds)) == seconds


# --- cpus -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(2, 2.0), (0.5, 0.5), ("1.5", 1.5), (" 2 ", 2.0), (1024, 1024.0), (0.0014, 0.001),
     (1.23456, 1.235)],
)  # fmt: skip
def test_parse_cpus(value: object, expected: float) -> None:
    assert parse_cpus(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(0, "positive"), (-1, "positive"), ("0", "positive"), (float("nan"), "positive"),
     (float("inf"), "positive"), (1025, "at most 1024"), (0.0001, "at least 0.001"),
     ("two", "number of CPUs"), ("", "number of CPUs"), (True, "number of CPUs"),
     (None, "number of CPUs")],
)  # fmt: skip
def test_parse_cpus_refuses(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_cpus(value)


def test_nano_cpus() -> None:
    assert units.nano_cpus(1.5) == 1_500_000_000
    assert units.nano_cpus(0.001) == 1_000_000


# --- capabilities -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    ["SYS_PTRACE", "sys_ptrace", "CAP_SYS_PTRACE", "cap_sys_ptrace", "Cap_Sys_Ptrace",
     " SYS_PTRACE "],
)  # fmt: skip
def test_capability_spellings(spelling: str) -> None:
    assert parse_capability(spelling) == "SYS_PTRACE"


def test_all_is_kept() -> None:
    assert parse_capability("all") == "ALL"
    assert parse_capability("ALL") == "ALL"


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("SYS_ADMN", "did you mean SYS_ADMIN?"), ("CAP_NET_RAWW", "did you mean NET_RAW?"),
     ("frobnicate", "unknown capability 'frobnicate'"), ("", "unknown capability"),
     (1, "capability name"), (None, "capability name")],
)  # fmt: skip
def test_unknown_capability(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_capability(value)


def test_capability_table_matches_the_kernel() -> None:
    # Bits from include/uapi/linux/capability.h: a wrong bit would misread /proc/<pid>/status.
    assert CAPABILITIES["CHOWN"] == 0
    assert CAPABILITIES["NET_ADMIN"] == 12
    assert CAPABILITIES["SYS_PTRACE"] == 19
    assert CAPABILITIES["SYS_ADMIN"] == 21
    assert CAPABILITIES["CHECKPOINT_RESTORE"] == 40
    assert sorted(CAPABILITIES.values()) == list(range(41))
    assert set(CAPABILITIES) > ENGINE_DEFAULT_CAPABILITIES
    assert len(ENGINE_DEFAULT_CAPABILITIES) == 14


@pytest.mark.parametrize(
    ("cap_add", "cap_drop", "expected"),
    [
        ((), ("ALL",), set()),
        (("SYS_PTRACE",), ("ALL",), {"SYS_PTRACE"}),
        (("NET_BIND_SERVICE", "SYS_PTRACE"), ("ALL",), {"NET_BIND_SERVICE", "SYS_PTRACE"}),
        ((), (), set(ENGINE_DEFAULT_CAPABILITIES)),
        ((), ("NET_RAW", "MKNOD"), set(ENGINE_DEFAULT_CAPABILITIES) - {"NET_RAW", "MKNOD"}),
        (("SYS_PTRACE",), (), set(ENGINE_DEFAULT_CAPABILITIES) | {"SYS_PTRACE"}),
        (("ALL",), (), set(CAPABILITIES)),
        (("ALL",), ("ALL",), set(CAPABILITIES)),
        (("ALL",), ("SYS_ADMIN",), set(CAPABILITIES)),  # moby: add ALL wins over any drop
        (("NET_RAW",), ("NET_RAW",), set(ENGINE_DEFAULT_CAPABILITIES)),  # explicit add wins
    ],
)
def test_effective_capabilities(
    cap_add: tuple[str, ...], cap_drop: tuple[str, ...], expected: set[str]
) -> None:
    assert effective_capabilities(cap_add, cap_drop) == frozenset(expected)


def test_capabilities_from_mask() -> None:
    assert capabilities_from_mask(0) == frozenset()
    assert capabilities_from_mask(1 << 19) == {"SYS_PTRACE"}
    assert capabilities_from_mask((1 << 0) | (1 << 21)) == {"CHOWN", "SYS_ADMIN"}
    # Docker's default bounding set as the kernel prints it (CapBnd: 00000000a80425fb).
    assert capabilities_from_mask(0xA80425FB) == ENGINE_DEFAULT_CAPABILITIES
    assert capabilities_from_mask((1 << 41) - 1) == set(CAPABILITIES)
    assert capabilities_from_mask(1 << 63) == frozenset()  # unknown bits are ignored


@given(st.sets(st.sampled_from(sorted(CAPABILITIES))))
def test_mask_round_trip(names: set[str]) -> None:
    mask = sum(1 << CAPABILITIES[n] for n in names)
    assert capabilities_from_mask(mask) == names


# --- users ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1001:1001", (1001, 1001)), ("1001", (1001, None)), (1001, (1001, None)),
     ("0:0", (0, 0)), ("1001:0", (1001, 0)), (" 1001:1002 ", (1001, 1002)),
     ("01001:01001", (1001, 1001)), ("4294967294:4294967294", (4294967294, 4294967294))],
)  # fmt: skip
def test_parse_user(value: object, expected: tuple[int, int | None]) -> None:
    assert parse_user(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("app", "user names resolve inside the image"), ("app:app", "numeric user"),
     ("1001:app", "numeric user"), ("root", "numeric user"), ("-1", "numeric user"),
     ("1001:", "numeric user"), (":1001", "numeric user"), ("", "numeric user"),
     ("1:2:3", "numeric user"), ("4294967295", "at most 4294967294"),
     ("1:4294967295", "at most 4294967294"), (True, "expected a user"),
     (1001.0, "expected a user"), (None, "expected a user")],
)  # fmt: skip
def test_parse_user_refuses(value: object, fragment: str) -> None:
    with pytest.raises(UnitError, match=fragment):
        parse_user(value)


@given(st.integers(0, units.MAX_ID), st.none() | st.integers(0, units.MAX_ID))
def test_user_round_trip(uid: int, gid: int | None) -> None:
    assert parse_user(format_user(uid, gid)) == (uid, gid)
