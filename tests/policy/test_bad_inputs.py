"""Bad policy inputs: each gives a located diagnostic with a stable code and a useful message.

Every case is written to a temporary policy directory and loaded the way `policy validate` loads
it. Load-time problems (syntax, schema, inheritance, files) raise `PolicyError`; rule and waiver
problems of a loadable policy come from `validate()`. Each case asserts the code, the exact line
(and column where it is meaningful) and a fragment of the message.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from policy.diagnostics import Diagnostic
from policy.errors import PolicyError
from policy.loader import load_policy
from policy.validate import validate
from tests.helpers import write_policies

TODAY = dt.date(2026, 11, 28)

# A profile that breaks no built-in rule. Cases replace one of its values (the line numbers
# stay put), drop a key, or append lines after it (starting at line EXTRA).
HEAD = "version = 1\n\n[profiles.app]\n"
HEADER = (3, 11)  # where `app` is written in `[profiles.app]`
CLEAN: dict[str, str] = {
    "image": '"app:1"',
    "user": '"1001:1001"',
    "read_only": "true",
    "cap_drop": '["ALL"]',
    "no_new_privileges": "true",
    "pids_limit": "64",
    "memory": '"512m"',
    "cpus": "1",
    "timeout": '"5m"',
}
LINE = {key: 4 + index for index, key in enumerate(CLEAN)}
EXTRA = 4 + len(CLEAN)


def profile(extra: str = "", drop: tuple[str, ...] = (), **values: str) -> str:
    """The clean policy with `values` replaced, `drop` keys removed and `extra` lines appended."""
    assert set(values) <= set(CLEAN), values
    lines = [f"{key} = {values.get(key, value)}" for key, value in CLEAN.items() if key not in drop]
    return HEAD + "\n".join(lines) + "\n" + extra


def waiver(rule: str = "cap-add", expires: str = "2027-06-30", name: str = "app") -> str:
    return (
        f'[[waivers]]\nprofile = "{name}"\nrule = "{rule}"\n'
        f'reason = "the debugger needs it for now"\nexpires = {expires}\n'
    )


def load_errors(policies: Path) -> list[Diagnostic]:
    with pytest.raises(PolicyError) as info:
        load_policy([policies])
    assert info.value.diagnostics, "a PolicyError must say what is wrong"
    return list(info.value.diagnostics)


def findings(policies: Path) -> list[Diagnostic]:
    return validate(load_policy([policies]), today=TODAY)


@dataclass(frozen=True)
class Case:
    id: str
    files: dict[str, str | bytes]
    code: str
    line: int
    col: int | None  # None: the column is not meaningful for this case
    fragment: str
    stage: str = "load"  # "load": PolicyError; "validate": findings of a loadable policy
    file: str = "p.toml"  # the file the diagnostic points into
    also: tuple[str, ...] = ()  # other codes the same input rightly produces
    setup: Callable[[Path], None] | None = field(default=None, compare=False)


def one(text: str | bytes) -> dict[str, str | bytes]:
    return {"p.toml": text}


def _symlink_to_etc(root: Path) -> None:
    (root / "hostetc").symlink_to("/etc")


def _directory_named_toml(root: Path) -> None:
    (root / "policies" / "x.toml").mkdir()


SECCOMP_ALLOW = json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": []})
SECCOMP_ERRNO = json.dumps({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []})

CASES: list[Case] = [
    # --- TOML syntax --------------------------------------------------------------------------
    Case(
        "syntax-unclosed-header",
        one('version = 1\n[profiles.app\nimage = "x"\n'),
        "syntax",
        2,
        14,
        "expected ']'",
    ),
    Case("syntax-missing-value", one("version = 1\nfoo = \n"), "syntax", 2, 7, "invalid value"),
    Case(
        "syntax-unterminated-string",
        one('version = 1\nx = "abc\n'),
        "syntax",
        2,
        9,
        "illegal character",
    ),
    Case(
        "syntax-unclosed-array-at-eof",
        one("version = 1\nx = [1, 2\n"),
        "syntax",
        3,
        1,
        "at end of file",
    ),
    Case("syntax-missing-equals", one('version = 1\nx "a"\n'), "syntax", 2, 3, "expected '='"),
    Case("syntax-bad-escape", one('version = 1\nx = "\\q"\n'), "syntax", 2, 8, "unescaped"),
    Case(
        "syntax-two-values",
        one("version = 1\nx = 1 2\n"),
        "syntax",
        2,
        7,
        "expected newline",
    ),
    Case(
        "duplicate-key",
        one(profile('image = "other:1"\n')),
        "syntax",
        EXTRA,
        None,
        "cannot overwrite",
    ),
    Case(
        "duplicate-dotted-key",
        one(profile('tmpfs."/tmp".size = "1m"\ntmpfs."/tmp".size = "2m"\n')),
        "syntax",
        EXTRA + 1,
        None,
        "cannot overwrite",
    ),
    Case(
        "duplicate-table",
        one(profile('[profiles.app]\nimage = "x"\n')),
        "syntax",
        EXTRA,
        None,
        "twice",
    ),
    Case("nul-byte", one(b"version = 1\n\x00\n"), "syntax", 2, 1, "invalid statement"),
    Case(
        "nul-in-string",
        one(profile('description = "a\x00b"\n')),
        "syntax",
        EXTRA,
        17,
        "illegal character",
    ),
    Case("invalid-utf8", one(b"version = 1\n# caf\xe9\n"), "encoding", 2, 6, "0xe9"),
    Case("empty-file", one(""), "missing-key", 1, 1, "version = 1"),
    # --- unknown keys -------------------------------------------------------------------------
    Case(
        "unknown-top-level-key",
        one("version = 1\nprofile = {}\n"),
        "unknown-key",
        2,
        1,
        "did you mean 'profiles'?",
    ),
    Case(
        "unknown-profile-key",
        one(profile('memroy = "1g"\n')),
        "unknown-key",
        EXTRA,
        1,
        "did you mean 'memory'?",
    ),
    Case(
        "unknown-extends-key",
        one(profile('extend = "base"\n')),
        "unknown-key",
        EXTRA,
        1,
        "did you mean 'extends'?",
    ),
    Case(
        "unknown-defaults-key",
        one('version = 1\n[defaults]\nnetwrk = "none"\n'),
        "unknown-key",
        3,
        1,
        "did you mean 'network'?",
    ),
    Case(
        "unknown-tmpfs-key",
        one(profile('tmpfs."/tmp" = { size = "1m", sise = "2m" }\n')),
        "unknown-key",
        EXTRA,
        31,
        "did you mean 'size'?",
    ),
    Case(
        "unknown-mount-key",
        one(profile('mounts = [{ source = "src", target = "/a", writeable = true }]\n')),
        "unknown-key",
        EXTRA,
        44,
        "did you mean 'writable'?",
    ),
    Case(
        "unknown-healthcheck-key",
        one(profile('healthcheck = { test = ["true"], intervall = "5s" }\n')),
        "unknown-key",
        EXTRA,
        34,
        "did you mean 'interval'?",
    ),
    Case(
        "unknown-waiver-key",
        one(profile(waiver().replace("expires", "expire"))),
        "unknown-key",
        EXTRA + 4,
        1,
        "did you mean 'expires'?",
        also=("missing-key",),
    ),
    # --- wrong types --------------------------------------------------------------------------
    Case(
        "string-for-bool",
        one(profile(read_only='"true"')),
        "wrong-type",
        LINE["read_only"],
        1,
        "expected boolean, got a string",
    ),
    Case(
        "int-for-string",
        one(profile(image="5")),
        "wrong-type",
        LINE["image"],
        1,
        "expected string, got an integer",
    ),
    Case(
        "table-for-list",
        one(profile("cap_add = { SYS_PTRACE = true }\n")),
        "wrong-type",
        EXTRA,
        1,
        "got a table",
    ),
    Case(
        "table-for-mount-list",
        one(profile('mounts = { source = "src", target = "/src" }\n')),
        "wrong-type",
        EXTRA,
        1,
        "expected list, got a table",
    ),
    Case(
        "array-for-table",
        one(profile('env = ["A=1"]\n')),
        "wrong-type",
        EXTRA,
        1,
        "got an array",
    ),
    Case(
        "bool-for-int",
        one(profile(pids_limit="true")),
        "wrong-type",
        LINE["pids_limit"],
        1,
        "got true or false",
    ),
    Case(
        "string-for-date",
        one(profile(waiver(expires='"2027-06-30"'))),
        "wrong-type",
        EXTRA + 4,
        1,
        "expected date",
    ),
    Case(
        "datetime-for-date",
        one(profile(waiver(expires="2027-06-30T12:00:00"))),
        "wrong-type",
        EXTRA + 4,
        1,
        "expected date",
    ),
    Case(
        "array-for-profiles",
        one("version = 1\nprofiles = [1]\n"),
        "wrong-type",
        2,
        1,
        "[profiles.NAME]",
    ),
    # --- users, sizes, durations, cpus, capabilities ------------------------------------------
    Case(
        "user-name",
        one(profile(user='"app"')),
        "bad-value",
        LINE["user"],
        1,
        "user names resolve inside the image",
    ),
    Case(
        "user-negative",
        one(profile(user='"-1"')),
        "bad-value",
        LINE["user"],
        1,
        "numeric user",
    ),
    Case(
        "user-too-large",
        one(profile(user='"4294967295"')),
        "bad-value",
        LINE["user"],
        1,
        "at most 4294967294",
    ),
    Case(
        "user-float",
        one(profile(user="1001.0")),
        "bad-value",
        LINE["user"],
        1,
        "expected a user",
    ),
    Case(
        "memory-negative",
        one(profile(memory='"-1g"')),
        "bad-value",
        LINE["memory"],
        1,
        "expected a size",
    ),
    Case(
        "memory-zero",
        one(profile(memory="0")),
        "bad-value",
        LINE["memory"],
        1,
        "must be positive",
    ),
    Case(
        "memory-2**64",
        one(profile(memory=str(2**64))),
        "bad-value",
        LINE["memory"],
        1,
        "too large",
    ),
    Case(
        "memory-too-large-with-unit",
        one(profile(memory='"16777216t"')),
        "bad-value",
        LINE["memory"],
        1,
        "too large",
    ),
    Case(
        "memory-1.5.3g",
        one(profile(memory='"1.5.3g"')),
        "bad-value",
        LINE["memory"],
        1,
        "'1.5.3g'",
    ),
    Case(
        "memory-float",
        one(profile(memory="1.5")),
        "bad-value",
        LINE["memory"],
        1,
        "expected a size",
    ),
    Case(
        "timeout-unknown-unit",
        one(profile(timeout='"1x"')),
        "bad-value",
        LINE["timeout"],
        1,
        "expected a duration",
    ),
    Case(
        "timeout-zero",
        one(profile(timeout="0")),
        "bad-value",
        LINE["timeout"],
        1,
        "must be positive",
    ),
    Case(
        "timeout-negative",
        one(profile(timeout='"-1s"')),
        "bad-value",
        LINE["timeout"],
        1,
        "expected a duration",
    ),
    Case(
        "timeout-over-a-week",
        one(profile(timeout='"169h"')),
        "bad-value",
        LINE["timeout"],
        1,
        "longer than 7 days",
    ),
    Case(
        "cpus-zero",
        one(profile(cpus="0")),
        "bad-value",
        LINE["cpus"],
        1,
        "positive",
    ),
    Case(
        "cpus-negative",
        one(profile(cpus="-1")),
        "bad-value",
        LINE["cpus"],
        1,
        "positive",
    ),
    Case(
        "cpus-word",
        one(profile(cpus='"two"')),
        "bad-value",
        LINE["cpus"],
        1,
        "number of CPUs",
    ),
    Case(
        "cpus-too-many",
        one(profile(cpus="2000")),
        "bad-value",
        LINE["cpus"],
        1,
        "at most 1024",
    ),
    Case("cpus-nan", one(profile(cpus="nan")), "bad-value", LINE["cpus"], 1, "positive"),
    Case(
        "cap-typo",
        one(profile('cap_add = ["SYS_ADMN"]\n')),
        "bad-value",
        EXTRA,
        12,
        "did you mean SYS_ADMIN?",
    ),
    Case(
        "cap-second-element",
        one(profile(cap_drop='["ALL", "CAP_NOPE"]')),
        "bad-value",
        LINE["cap_drop"],
        20,
        "unknown capability 'CAP_NOPE'",
    ),
    Case(
        "cap-int",
        one(profile("cap_add = [1]\n")),
        "bad-value",
        EXTRA,
        12,
        "capability name",
    ),
    Case(
        "pids-negative",
        one(profile(pids_limit="-1")),
        "bad-value",
        LINE["pids_limit"],
        1,
        "greater than 0",
    ),
    # --- tmpfs, paths, mounts -----------------------------------------------------------------
    Case(
        "mode-not-octal",
        one(profile('tmpfs."/tmp" = { size = "1m", mode = "999" }\n')),
        "bad-value",
        EXTRA,
        31,
        "octal mode",
    ),
    Case(
        "mode-too-large",
        one(profile('tmpfs."/tmp" = { size = "1m", mode = "17777" }\n')),
        "bad-value",
        EXTRA,
        31,
        "octal mode",
    ),
    Case(
        "mode-bool",
        one(profile('tmpfs."/tmp" = { size = "1m", mode = true }\n')),
        "bad-value",
        EXTRA,
        31,
        "octal mode",
    ),
    Case(
        "tmpfs-relative",
        one(profile('tmpfs."tmp" = { size = "1m" }\n')),
        "bad-value",
        EXTRA,
        7,
        "must be absolute",
    ),
    Case(
        "tmpfs-missing-size",
        one(profile('tmpfs."/tmp" = { mode = "1777" }\n')),
        "missing-key",
        EXTRA,
        7,
        "a size is required",
    ),
    Case(
        "tmpfs-bad-option",
        one(profile('tmpfs."/tmp" = { size = "1m", options = ["nosuid", "bogus"] }\n')),
        "bad-value",
        EXTRA,
        52,
        "'bogus'",
    ),
    Case(
        "tmpfs-root",
        one(profile('tmpfs."/" = { size = "1m" }\n')),
        "bad-value",
        EXTRA,
        7,
        "may not be / itself",
    ),
    Case(
        "tmpfs-dotdot",
        one(profile('tmpfs."/a/../etc" = { size = "1m" }\n')),
        "bad-value",
        EXTRA,
        7,
        "'..'",
    ),
    Case(
        "workdir-dotdot",
        one(profile('workdir = "/a/../b"\n')),
        "bad-value",
        EXTRA,
        1,
        "'..'",
    ),
    Case(
        "mount-target-relative",
        one(profile('mounts = [{ source = "src", target = "app" }]\n')),
        "bad-value",
        EXTRA,
        29,
        "must be absolute",
    ),
    Case(
        "mount-target-newline",
        one(profile('mounts = [{ source = "src", target = "/a\\nb" }]\n')),
        "bad-value",
        EXTRA,
        29,
        "U+000A",
    ),
    Case(
        "mount-source-dotdot",
        one(profile('mounts = [{ source = "../outside", target = "/app" }]\n')),
        "mount-escape",
        EXTRA,
        13,
        "leaves the project directory",
    ),
    Case(
        "mount-source-dotdot-inside",
        one(profile('mounts = [{ source = "src/../../outside", target = "/app" }]\n')),
        "mount-escape",
        EXTRA,
        13,
        "leaves the project directory",
    ),
    Case(
        "mount-source-symlink",
        one(profile('mounts = [{ source = "hostetc", target = "/app" }]\n')),
        "mount-escape",
        EXTRA,
        13,
        "resolves through a symlink",
        setup=_symlink_to_etc,
    ),
    Case(
        "mount-target-twice",
        one(
            profile(
                'mounts = [{ source = "a", target = "/x" }, { source = "b", target = "/x/" }]\n'
            )
        ),
        "duplicate-target",
        EXTRA,
        60,
        "mounted more than once",
    ),
    # --- reserved namespace, names, images ----------------------------------------------------
    Case(
        "reserved-label",
        one(profile('labels = { "io.container-policy.profile" = "other" }\n')),
        "reserved-label",
        EXTRA,
        12,
        "io.container-policy.",
    ),
    Case(
        "reserved-label-any-case",
        one(profile('labels = { "IO.Container-Policy.digest" = "sha256:0" }\n')),
        "reserved-label",
        EXTRA,
        12,
        "set by the engine",
    ),
    Case(
        "reserved-env",
        one(profile('env = { IO_CONTAINER_POLICY_PROFILE = "other" }\n')),
        "bad-value",
        EXTRA,
        9,
        "reserved namespace",
    ),
    Case(
        "env-bad-name",
        one(profile('env = { "1A" = "x" }\n')),
        "bad-value",
        EXTRA,
        9,
        "not an environment variable name",
    ),
    Case(
        "image-option",
        one(profile(image='"--privileged"')),
        "bad-value",
        LINE["image"],
        1,
        "not an image reference: '--privileged'",
    ),
    Case(
        "image-space",
        one(profile(image='"app latest"')),
        "bad-value",
        LINE["image"],
        1,
        "not an image reference",
    ),
    Case(
        "image-uppercase",
        one(profile(image='"Ubuntu:22.04"')),
        "bad-value",
        LINE["image"],
        1,
        "lowercase",
    ),
    Case(
        "image-empty",
        one(profile(image='""')),
        "bad-value",
        LINE["image"],
        1,
        "not an image reference",
    ),
    Case(
        "profile-name",
        one(profile('[profiles."-x"]\nimage = "x"\n')),
        "bad-value",
        EXTRA,
        11,
        "profile name '-x'",
    ),
    Case(
        "network-container",
        one(profile('network = "container:db"\n')),
        "bad-value",
        EXTRA,
        1,
        "not supported",
    ),
    Case(
        "pid-typo",
        one(profile('pid = "hst"\n')),
        "bad-value",
        EXTRA,
        1,
        "'private' or 'host'",
    ),
    Case(
        "healthcheck-empty-test",
        one(profile("healthcheck = { test = [] }\n")),
        "bad-value",
        EXTRA,
        17,
        "at least 1 item",
    ),
    # --- ulimits ------------------------------------------------------------------------------
    Case(
        "ulimit-unknown-name",
        one(profile("ulimits = { nofle = 1024 }\n")),
        "bad-value",
        EXTRA,
        13,
        "did you mean 'nofile'",
    ),
    Case(
        "ulimit-negative",
        one(profile("ulimits = { nproc = -1 }\n")),
        "bad-value",
        EXTRA,
        13,
        'or "unlimited", got -1',
    ),
    Case(
        "ulimit-soft-above-hard",
        one(profile("ulimits = { nofile = { soft = 4096, hard = 1024 } }\n")),
        "bad-value",
        EXTRA,
        13,
        "soft limit (4096) is above the hard limit (1024)",
    ),
    Case(
        "ulimit-soft-only",
        one(profile("ulimits = { nofile = { soft = 4096 } }\n")),
        "missing-key",
        EXTRA,
        13,
        "ulimits.nofile.hard",
    ),
    Case(
        "ulimit-unknown-key",
        one(profile("ulimits = { nofile = { soft = 1, hard = 2, max = 3 } }\n")),
        "unknown-key",
        EXTRA,
        44,
        "unknown key 'max'",
    ),
    Case(
        "ulimit-bool",
        one(profile("ulimits = { nproc = true }\n")),
        "bad-value",
        EXTRA,
        13,
        "got True",
    ),
    Case(
        "ulimit-nofile-unlimited",
        one(profile('ulimits = { nofile = "unlimited" }\n')),
        "bad-value",
        EXTRA,
        1,
        "nofile cannot be unlimited",
    ),
    Case(
        "ulimit-docker-spelling",
        one(profile('ulimits = ["nofile=1024:2048"]\n')),
        "wrong-type",
        EXTRA,
        1,
        "ulimits: expected dictionary",
    ),
    Case(
        "rule-ulimit-unlimited",
        one(profile('ulimits = { nproc = { soft = 64, hard = "unlimited" } }\n')),
        "ulimit-unlimited",
        EXTRA,
        13,
        "nproc ulimit is unlimited",
        "validate",
    ),
    # --- ports and devices ---------------------------------------------------------------------
    Case(
        "port-every-interface",
        one(profile('network = "bridge"\nports = [{ host = "0.0.0.0", container = 80 }]\n')),
        "bad-value",
        EXTRA + 1,
        12,
        "every interface of the host (CIS 5.14)",
    ),
    Case(
        "port-every-interface-v6",
        one(profile('network = "bridge"\nports = [{ host = "::", container = 80 }]\n')),
        "bad-value",
        EXTRA + 1,
        12,
        "every interface",
    ),
    Case(
        "port-host-name",
        one(profile('network = "bridge"\nports = [{ host = "localhost", container = 80 }]\n')),
        "bad-value",
        EXTRA + 1,
        12,
        "expected an IP address",
    ),
    Case(
        "port-no-host",
        one(profile('network = "bridge"\nports = [{ container = 80 }]\n')),
        "missing-key",
        EXTRA + 1,
        10,
        "ports.0.host",
    ),
    Case(
        "port-out-of-range",
        one(
            profile(
                'network = "bridge"\nports = [{ host = "127.0.0.1", container = 80, '
                "host_port = 70000 }]\n"
            )
        ),
        "bad-value",
        EXTRA + 1,
        48,
        "less than or equal to 65535",
    ),
    Case(
        "port-without-network",
        one(profile('network = "none"\nports = [{ host = "127.0.0.1", container = 80 }]\n')),
        "bad-value",
        EXTRA + 1,
        1,
        'network "none" cannot publish ports',
    ),
    Case(
        "rule-privileged-port",
        one(
            profile(
                'network = "bridge"\nports = [{ host = "127.0.0.1", container = 80, '
                "host_port = 80 }]\n"
            )
        ),
        "privileged-port",
        EXTRA + 1,
        48,
        "privileged host port 80",
        "validate",
        also=("published-port",),
    ),
    Case(
        "device-outside-dev",
        one(profile('devices = [{ host = "/etc/shadow" }]\n')),
        "bad-value",
        EXTRA,
        14,
        "below /dev/",
    ),
    Case(
        "device-colon",
        one(profile('devices = [{ host = "/dev/null:/dev/x:rwm" }]\n')),
        "bad-value",
        EXTRA,
        14,
        "absolute device path",
    ),
    Case(
        "device-permissions",
        one(profile('devices = [{ host = "/dev/fuse", permissions = "rwx" }]\n')),
        "bad-value",
        EXTRA,
        34,
        "made of r, w and m",
    ),
    Case(
        "rule-host-device",
        one(profile('devices = [{ host = "/dev/fuse" }]\n')),
        "host-device",
        EXTRA,
        14,
        "passes the host device /dev/fuse",
        "validate",
    ),
    # --- restart, sysctls, cgroup_parent, userns, oom_kill_disable ----------------------------
    Case(
        "restart-always", one(profile('restart = "always"\n')), "bad-value", EXTRA, 1, "without end"
    ),
    Case(
        "restart-unbounded",
        one(profile('restart = "on-failure"\n')),
        "bad-value",
        EXTRA,
        1,
        "on-failure:3",
    ),
    Case(
        "restart-garbage",
        one(profile('restart = "on-failure:x"\n')),
        "bad-value",
        EXTRA,
        1,
        'expected "no" or "on-failure:N"',
    ),
    Case(
        "rule-restart-many",
        one(profile('restart = "on-failure:10"\n')),
        "restart-policy",
        EXTRA,
        1,
        "10 retries",
        "validate",
    ),
    Case(
        "sysctl-host-wide",
        one(profile('sysctls = { "kernel.randomize_va_space" = "0" }\n')),
        "bad-value",
        EXTRA,
        13,
        "not namespaced per container",
    ),
    Case(
        "sysctl-bad-name",
        one(profile('sysctls = { "net ipv4" = "1" }\n')),
        "bad-value",
        EXTRA,
        13,
        "not a sysctl name",
    ),
    Case(
        "sysctl-host-network",
        one(profile('network = "host"\nsysctls = { "net.ipv4.ip_forward" = "1" }\n')),
        "bad-value",
        EXTRA + 1,
        13,
        "shares that namespace with the host",
    ),
    Case(
        "sysctl-bool",
        one(profile('sysctls = { "net.ipv4.ip_forward" = true }\n')),
        "bad-value",
        EXTRA,
        13,
        "expected a sysctl value",
    ),
    Case(
        "rule-sysctl",
        one(profile('sysctls = { "net.ipv4.ping_group_range" = "0 2147483647" }\n')),
        "sysctl",
        EXTRA,
        1,
        "net.ipv4.ping_group_range",
        "validate",
    ),
    Case(
        "cgroup-parent-dotdot",
        one(profile('cgroup_parent = "/../../sys"\n')),
        "bad-value",
        EXTRA,
        1,
        "not a cgroup path",
    ),
    Case(
        "rule-cgroup-parent",
        one(profile('cgroup_parent = "/ci"\n')),
        "cgroup-parent",
        EXTRA,
        1,
        "outside the engine's own",
        "validate",
    ),
    Case(
        "userns-other",
        one(profile('userns = "remap"\n')),
        "bad-value",
        EXTRA,
        1,
        "'private' or 'host'",
    ),
    Case(
        "rule-host-userns",
        one(profile('userns = "host"\n')),
        "host-userns",
        EXTRA,
        1,
        "user namespace",
        "validate",
    ),
    Case(
        "oom-kill-disable-string",
        one(profile('oom_kill_disable = "yes"\n')),
        "wrong-type",
        EXTRA,
        1,
        "expected boolean",
    ),
    Case(
        "rule-oom-kill-disabled",
        one(profile("oom_kill_disable = true\n")),
        "oom-kill-disabled",
        EXTRA,
        1,
        "OOM killer is disabled",
        "validate",
    ),
    # --- apparmor, selinux ---------------------------------------------------------------------
    Case(
        "apparmor-injection",
        one(profile('apparmor = "unconfined,seccomp=unconfined"\n')),
        "bad-value",
        EXTRA,
        1,
        "AppArmor profile name",
    ),
    Case(
        "rule-apparmor-unconfined",
        one(profile('apparmor = "unconfined"\n')),
        "apparmor-unconfined",
        EXTRA,
        1,
        "AppArmor is unconfined",
        "validate",
    ),
    Case(
        "selinux-unknown-option",
        one(profile('selinux = ["filetype:x"]\n')),
        "bad-value",
        EXTRA,
        1,
        "SELinux label options",
    ),
    Case(
        "selinux-disable-and-more",
        one(profile('selinux = ["disable", "type:container_t"]\n')),
        "bad-value",
        EXTRA,
        1,
        "cannot be combined",
    ),
    Case(
        "rule-selinux-disabled",
        one(profile('selinux = ["disable"]\n')),
        "selinux-disabled",
        EXTRA,
        1,
        "labelling is disabled",
        "validate",
    ),
    Case(
        "mount-propagation-unknown",
        one(profile('mounts = [{ source = ".", target = "/src", propagation = "recursive" }]\n')),
        "bad-value",
        EXTRA,
        44,
        "expected one of rprivate",
    ),
    Case(
        "rule-mount-propagation-shared",
        one(profile('mounts = [{ source = ".", target = "/src", propagation = "shared" }]\n')),
        "mount-propagation-shared",
        EXTRA,
        44,
        "appear on the host",
        "validate",
    ),
    # --- version and required keys ------------------------------------------------------------
    Case(
        "missing-version",
        one(profile().removeprefix("version = 1\n")),
        "missing-key",
        1,
        1,
        "missing 'version = 1'",
    ),
    Case(
        "version-2",
        one(profile().replace("version = 1", "version = 2")),
        "bad-value",
        1,
        1,
        "unsupported version 2",
    ),
    Case(
        "version-string",
        one('\nversion = "1"\n'),
        "bad-value",
        2,
        1,
        "unsupported version '1'",
    ),
    Case(
        "missing-image",
        one(profile(drop=("image",))),
        "missing-key",
        *HEADER,
        "has no image",
    ),
    # --- extends ------------------------------------------------------------------------------
    Case(
        "extends-unknown",
        one(profile('[profiles.child]\nextends = "ap"\n')),
        "extends-missing",
        EXTRA + 1,
        1,
        "unknown profile 'ap' (did you mean 'app'?)",
    ),
    Case(
        "extends-self",
        one(profile('[profiles.loop]\nextends = "loop"\n')),
        "extends-cycle",
        EXTRA + 1,
        1,
        "loop -> loop",
    ),
    Case(
        "extends-cycle-2",
        one(profile('[profiles.b]\nextends = "c"\n[profiles.c]\nextends = "b"\n')),
        "extends-cycle",
        EXTRA + 3,
        1,
        "b -> c -> b",
    ),
    Case(
        "extends-cycle-3",
        one(
            profile(
                '[profiles.b]\nextends = "c"\n[profiles.c]\nextends = "d"\n'
                '[profiles.d]\nextends = "b"\n'
            )
        ),
        "extends-cycle",
        EXTRA + 5,
        1,
        "b -> c -> d -> b",
    ),
    Case(
        "defaults-extends",
        one('version = 1\n[defaults]\nextends = "app"\n'),
        "bad-value",
        3,
        1,
        "cannot extend",
    ),
    # --- files --------------------------------------------------------------------------------
    Case(
        "directory-named-toml",
        {"p.toml": profile()},
        "not-a-file",
        1,
        1,
        "is a directory",
        file="x.toml",
        setup=_directory_named_toml,
    ),
    Case(
        "two-defaults",
        {
            "a.toml": 'version = 1\n[defaults]\nuser = "1001"\n',
            "b.toml": 'version = 1\n\n[defaults]\nuser = "1002"\n',
        },
        "duplicate-defaults",
        3,
        2,
        "already declared at",
        file="b.toml",
    ),
    # --- seccomp ------------------------------------------------------------------------------
    Case(
        "seccomp-word",
        one(profile('seccomp = "strict"\n')),
        "bad-value",
        EXTRA,
        1,
        '"default", "unconfined" or a path',
    ),
    Case(
        "seccomp-missing-file",
        one(profile('seccomp = "nope.json"\n')),
        "seccomp-file",
        EXTRA,
        1,
        "no such file",
    ),
    Case(
        "seccomp-malformed-json",
        {"p.toml": profile('seccomp = "s.json"\n'), "s.json": '{"defaultAction": '},
        "seccomp-file",
        EXTRA,
        1,
        "not valid JSON",
    ),
    Case(
        "seccomp-not-a-profile",
        {"p.toml": profile('seccomp = "s.json"\n'), "s.json": '{"syscalls": []}'},
        "seccomp-file",
        EXTRA,
        1,
        "not a seccomp profile",
    ),
    # --- security rules (validate) ------------------------------------------------------------
    Case(
        "rule-root-user",
        one(profile(user='"0:0"')),
        "root-user",
        LINE["user"],
        1,
        "uid 0",
        "validate",
    ),
    Case(
        "rule-root-user-uid-only",
        one(profile(user="0")),
        "root-user",
        LINE["user"],
        1,
        "uid 0",
        "validate",
    ),
    Case(
        "rule-no-user",
        one(profile(drop=("user",))),
        "root-user",
        *HEADER,
        "no user is set",
        "validate",
    ),
    Case(
        "rule-privileged",
        one(profile("privileged = true\n")),
        "privileged",
        EXTRA,
        1,
        "privileged",
        "validate",
    ),
    Case(
        "rule-cap-drop-without-all",
        one(profile(cap_drop='["NET_RAW", "MKNOD"]')),
        "cap-drop-all",
        LINE["cap_drop"],
        1,
        "does not include ALL",
        "validate",
    ),
    Case(
        "rule-no-cap-drop",
        one(profile(drop=("cap_drop",))),
        "cap-drop-all",
        *HEADER,
        "does not include ALL",
        "validate",
    ),
    Case(
        "rule-cap-add-sys-admin",
        one(profile('cap_add = ["CAP_SYS_ADMIN"]\n')),
        "cap-add",
        EXTRA,
        1,
        "SYS_ADMIN",
        "validate",
    ),
    Case(
        "rule-cap-add-all",
        one(profile('cap_add = ["all"]\n')),
        "cap-add",
        EXTRA,
        1,
        "ALL",
        "validate",
    ),
    Case(
        "rule-seccomp-unconfined",
        one(profile('seccomp = "unconfined"\n')),
        "seccomp-unconfined",
        EXTRA,
        1,
        "unconfined",
        "validate",
    ),
    Case(
        "rule-seccomp-default-allow",
        {"p.toml": profile('seccomp = "s.json"\n'), "s.json": SECCOMP_ALLOW},
        "seccomp-unconfined",
        EXTRA,
        1,
        "allows every system call by default",
        "validate",
    ),
    Case(
        "rule-no-new-privileges-false",
        one(profile(no_new_privileges="false")),
        "no-new-privileges",
        LINE["no_new_privileges"],
        1,
        "setuid",
        "validate",
    ),
    Case(
        "rule-no-new-privileges-unset",
        one(profile(drop=("no_new_privileges",))),
        "no-new-privileges",
        *HEADER,
        "setuid",
        "validate",
    ),
    Case(
        "rule-host-network",
        one(profile('network = "host"\n')),
        "host-network",
        EXTRA,
        1,
        "network namespace",
        "validate",
    ),
    Case(
        "rule-host-pid",
        one(profile('pid = "host"\n')),
        "host-pid",
        EXTRA,
        1,
        "pid namespace",
        "validate",
    ),
    Case(
        "rule-host-ipc",
        one(profile('ipc = "host"\n')),
        "host-ipc",
        EXTRA,
        1,
        "ipc namespace",
        "validate",
    ),
    Case(
        "rule-host-uts",
        one(profile('uts = "host"\n')),
        "host-uts",
        EXTRA,
        1,
        "uts namespace",
        "validate",
    ),
    Case(
        "rule-writable-root",
        one(profile(read_only="false")),
        "writable-root",
        LINE["read_only"],
        1,
        "writable",
        "validate",
    ),
    Case(
        "rule-no-memory",
        one(profile(drop=("memory",))),
        "no-memory-limit",
        *HEADER,
        "no memory limit",
        "validate",
    ),
    Case(
        "rule-no-pids",
        one(profile(drop=("pids_limit",))),
        "no-pids-limit",
        *HEADER,
        "fork bomb",
        "validate",
    ),
    Case(
        "rule-no-cpus",
        one(profile(drop=("cpus",))),
        "no-cpu-limit",
        *HEADER,
        "no CPU limit",
        "validate",
    ),
    Case(
        "rule-no-timeout",
        one(profile(drop=("timeout",))),
        "no-timeout",
        *HEADER,
        "no timeout",
        "validate",
    ),
    Case(
        "rule-docker-socket",
        one(profile('mounts = [{ source = "/var/run/docker.sock", target = "/s" }]\n')),
        "docker-socket",
        EXTRA,
        13,
        "Docker socket",
        "validate",
    ),
    Case(
        "rule-docker-socket-run",
        one(profile('mounts = [{ source = "/run/docker.sock", target = "/s" }]\n')),
        "docker-socket",
        EXTRA,
        13,
        "/run/docker.sock",
        "validate",
    ),
    Case(
        "rule-etc-mount",
        one(profile('mounts = [{ source = "/etc", target = "/e" }]\n')),
        "sensitive-mount",
        EXTRA,
        13,
        "/etc",
        "validate",
    ),
    Case(
        "rule-etc-subdir-mount",
        one(profile('mounts = [{ source = "/etc/ssl/", target = "/e" }]\n')),
        "sensitive-mount",
        EXTRA,
        13,
        "/etc/ssl",
        "validate",
    ),
    Case(
        "rule-project-writable",
        one(profile('mounts = [{ source = ".", target = "/src", writable = true }]\n')),
        "project-writable",
        EXTRA,
        44,
        "project directory",
        "validate",
    ),
    Case(
        "rule-project-parent-writable",
        one(profile('mounts = [{ source = "/", target = "/host", writable = true }]\n')),
        "project-writable",
        EXTRA,
        45,
        "project directory",
        "validate",
        also=("sensitive-mount",),
    ),
    # --- waivers ------------------------------------------------------------------------------
    Case(
        "waiver-expired",
        one(profile('cap_add = ["SYS_PTRACE"]\n' + waiver(expires="2026-01-31"))),
        "waiver-expired",
        EXTRA + 5,
        1,
        "expired on 2026-01-31",
        "validate",
        also=("cap-add",),
    ),
    Case(
        "waiver-unknown-profile",
        one(profile(waiver(name="ap"))),
        "waiver-unknown-profile",
        EXTRA + 1,
        1,
        "unknown profile 'ap' (did you mean 'app'?)",
        "validate",
    ),
    Case(
        "waiver-unknown-rule",
        one(profile(waiver(rule="cap-ad"))),
        "waiver-unknown-rule",
        EXTRA + 2,
        1,
        "unknown rule 'cap-ad' (did you mean 'cap-add'?)",
        "validate",
    ),
    Case(
        "waiver-unused",
        one(profile(waiver())),
        "waiver-unused",
        EXTRA,
        3,
        "matches no finding",
        "validate",
    ),
    # --- the monitor table (issue 11): thresholds, located like every other key -------------
    Case(
        "monitor-unknown-key",
        one(profile("monitor = { memory_wran = 0.9 }\n")),
        "unknown-key",
        EXTRA,
        13,
        "did you mean 'memory_warn'?",
    ),
    Case(
        "monitor-share-above-one",
        one(profile("monitor = { memory_warn = 1.5 }\n")),
        "bad-value",
        EXTRA,
        13,
        "at most 1 (100%)",
    ),
    Case(
        "monitor-share-zero-in-defaults",
        one('version = 1\n[defaults]\nmonitor.throttle_warn = "0%"\n'),
        "bad-value",
        3,
        9,
        "above 0",
    ),
    Case(
        "monitor-share-not-a-number",
        one(profile('monitor = { throttle_warn = "lots" }\n')),
        "bad-value",
        EXTRA,
        13,
        "a share such as 0.9",
    ),
    Case(
        "monitor-share-bool",
        one(profile("monitor = { memory_warn = true }\n")),
        "bad-value",
        EXTRA,
        13,
        "a share such as 0.9",
    ),
    Case(
        "monitor-interval-too-short",
        one(profile('monitor = { interval = "1ms" }\n')),
        "bad-value",
        EXTRA,
        13,
        "between 100ms and 60s",
    ),
    Case(
        "monitor-interval-not-a-duration",
        one(profile('monitor = { interval = "often" }\n')),
        "bad-value",
        EXTRA,
        13,
        "expected a duration",
    ),
    Case(
        "swarm-network-unknown-value",
        one(profile('network = "none"\nswarm_network = "bridge"\n')),
        "bad-value",
        EXTRA + 1,
        1,
        "internal",
    ),
    Case(
        "swarm-network-not-a-string",
        one(profile('network = "none"\nswarm_network = true\n')),
        "bad-value",
        EXTRA + 1,
        1,
        "internal",
    ),
    Case(
        "swarm-network-beside-a-bridge",
        one(profile('network = "bridge"\nswarm_network = "internal"\n')),
        "bad-value",
        EXTRA + 1,
        1,
        'instead of network = "none"',
    ),
    Case(
        "monitor-fail-not-bool",
        one(profile('monitor = { fail_on_violation = "yes" }\n')),
        "wrong-type",
        EXTRA,
        13,
        "expected",
    ),
    Case(
        "monitor-fd-growth-negative",
        one(profile("monitor = { fd_growth_warn = -1 }\n")),
        "bad-value",
        EXTRA,
        13,
        "greater than 0",
    ),
    Case(
        "monitor-not-a-table",
        one(profile('monitor = "on"\n')),
        "wrong-type",
        EXTRA,
        1,
        "expected",
    ),
    Case(
        "waiver-reason-too-short",
        one(profile(waiver().replace("the debugger needs it for now", "ptrace"))),
        "bad-value",
        EXTRA + 3,
        1,
        "at least 10 characters",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_located(case: Case, tmp_path: Path) -> None:
    policies = write_policies(tmp_path, case.files)
    if case.setup is not None:
        case.setup(tmp_path)
    diagnostics = load_errors(policies) if case.stage == "load" else findings(policies)
    assert sorted({d.code for d in diagnostics}) == sorted({case.code, *case.also}), diagnostics
    matching = [d for d in diagnostics if d.code == case.code]
    assert len(matching) >= 1
    d = matching[-1]  # the last one: cycles report every member, and we point at the last
    assert Path(d.location.path).name == case.file
    assert d.location.line == case.line, str(d)
    if case.col is not None:
        assert d.location.col == case.col, str(d)
    assert case.fragment in d.message, str(d)
    assert str(d).startswith(f"{d.location.path}:{d.location.line}:{d.location.col}: {d.code}: ")


def test_there_are_enough_distinct_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(CASES) >= 45
    assert len({c.code for c in CASES}) >= 25


def test_every_member_of_a_cycle_is_reported(tmp_path: Path) -> None:
    text = profile(
        '[profiles.b]\nextends = "c"\n[profiles.c]\nextends = "d"\n[profiles.d]\nextends = "b"\n'
        '[profiles.below]\nextends = "b"\n'
    )
    errors = load_errors(write_policies(tmp_path, {"p.toml": text}))
    assert [(d.code, d.location.line) for d in errors] == [
        ("extends-cycle", EXTRA + 1),
        ("extends-cycle", EXTRA + 3),
        ("extends-cycle", EXTRA + 5),
    ]
    assert {d.profile for d in errors} == {"b", "c", "d"}


def test_same_profile_in_two_files_reports_both_locations(tmp_path: Path) -> None:
    errors = load_errors(write_policies(tmp_path, {"a.toml": profile(), "b.toml": profile()}))
    assert [d.code for d in errors] == ["duplicate-profile", "duplicate-profile"]
    a, b = errors
    assert (Path(a.location.path).name, a.location.line, a.location.col) == ("a.toml", *HEADER)
    assert (Path(b.location.path).name, b.location.line, b.location.col) == ("b.toml", *HEADER)
    assert f"{b.location}" in a.message
    assert f"{a.location}" in b.message


def test_errors_of_several_files_are_reported_at_once(tmp_path: Path) -> None:
    policies = write_policies(
        tmp_path,
        {
            "a.toml": "version = 2\n",
            "b.toml": "version = 1\n\nfoo = 1\n",
            "sub/c.toml": profile(image='"App"'),
            "d.toml": 'version = 1\nx = "unterminated\n',
        },
    )
    errors = load_errors(policies)
    got = {(Path(d.location.path).name, d.location.line, d.code) for d in errors}
    assert got == {
        ("a.toml", 1, "bad-value"),
        ("b.toml", 3, "unknown-key"),
        ("c.toml", LINE["image"], "bad-value"),
        ("d.toml", 2, "syntax"),
    }


def test_all_errors_of_one_file_are_reported_at_once(tmp_path: Path) -> None:
    text = profile(
        'memroy = "1g"\n'
        '[profiles.b]\nimage = "B"\n'
        '[profiles.c]\nimage = "c"\ncpus = 0\n'
        '[profiles.d]\nextends = "nowhere"\n'
    )
    errors = load_errors(write_policies(tmp_path, {"p.toml": text}))
    assert [(d.location.line, d.code) for d in errors] == [
        (EXTRA, "unknown-key"),
        (EXTRA + 2, "bad-value"),
        (EXTRA + 5, "bad-value"),
        (EXTRA + 7, "extends-missing"),
    ]


def test_an_invalid_parent_is_reported_once_not_as_missing(tmp_path: Path) -> None:
    # The child extends a profile that exists but is broken: one error, at the parent.
    text = profile('memroy = "1g"\n[profiles.child]\nextends = "app"\n')
    errors = load_errors(write_policies(tmp_path, {"p.toml": text}))
    assert [(d.code, d.location.line) for d in errors] == [("unknown-key", EXTRA)]


def test_decimal_tmpfs_mode_is_not_silently_misread(tmp_path: Path) -> None:
    policies = write_policies(
        tmp_path, {"p.toml": profile('tmpfs."/tmp" = { size = "1m", mode = 1777 }\n')}
    )
    with pytest.raises(PolicyError) as exc:
        load_policy([policies])
    assert [d.code for d in exc.value.diagnostics] == ["bad-value"]
    assert "octal string" in exc.value.diagnostics[0].message


def test_octal_tmpfs_mode_spellings_are_accepted(tmp_path: Path) -> None:
    text = profile(
        'tmpfs."/a" = { size = "1m", mode = "1777" }\n'
        'tmpfs."/c" = { size = "1m", mode = "01777" }\n'
    )
    policy = load_policy([write_policies(tmp_path, {"p.toml": text})])
    assert {t: s.mode for t, s in policy.profiles["app"].tmpfs.items()} == {
        "/a": 0o1777,
        "/c": 0o1777,
    }


def test_missing_and_empty_policy_paths(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PolicyError) as info:
        load_policy([tmp_path / "empty", tmp_path / "nothing-here"])
    assert sorted(d.code for d in info.value.diagnostics) == ["no-policy", "not-found"]


def test_errors_never_escape_as_other_exceptions(tmp_path: Path) -> None:
    # A grab bag of hostile values in one file: still one PolicyError, never a traceback.
    text = profile(
        "memory = { a = 1 }\n"
        "tmpfs = [1, 2]\n"
        'mounts = [1, "x", { source = 1, target = 2 }]\n'
        "env = { A = 1 }\n"
        "labels = []\n"
        'healthcheck = "true"\n',
        drop=("memory",),
    )
    errors = load_errors(write_policies(tmp_path, {"p.toml": text}))
    assert {d.location.line for d in errors} == set(range(EXTRA - 1, EXTRA + 5))
    assert all(d.code in ("wrong-type", "bad-value") for d in errors), errors
