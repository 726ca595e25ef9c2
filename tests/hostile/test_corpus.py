"""Hostile-input corpus for `policy validate`: malformed and malicious policy inputs.

Each case writes an input into a temporary project (static inputs from `corpus/`, huge, binary
and special-file inputs from `generate.py`), runs `main(["validate", PATH])` and checks what a
user and a CI log would see:

* the exit code (1: problems found; 2: usage),
* every stdout line is `path:line:col: id: message`, with a path inside the project, positive
  line and column, and an id matching `[a-z0-9/-]+`; the path is printed escaped (a newline in a
  file name is a backslash and an `n`) and may itself hold `:1:1: id: `, so a line is split
  where the text before `:LINE:COL: ID: ` names an existing file (see `parse_line`),
* the expected id is there, with message fragments that say what is wrong, and where the case
  names a position (`at`, `line`) or a printed path (`shown`), the diagnostic is there,
* no traceback, and no raw control, bidirectional or invisible characters in the output (a
  hostile key must not rewrite the terminal or make a CI log lie), no line longer than 16 KiB,
* within a time bound and a memory bound (behaviour bounds for "does not hang" and "does not eat
  the machine", not performance assertions).

Each case runs in a forked child of the test process (no re-import: the child starts with the
parent's modules loaded), so that a case that hangs is killed after its time bound, a case that
eats memory hits an address-space limit instead of the machine, and its peak memory is
measured on its own (`os.wait4` returns the child's peak resident set size).

Cases whose current behaviour is wrong are `xfail(strict=True)` with the reason (what happens,
where in our code, the suggested fix), and must fail with that bug's signature (`fails_with`):
failing for any other reason is a real failure. When the code is fixed, strict xfail flags it.

The 100k-profile case takes 15 s on an idle machine and is marked `load` (run it with
`pytest tests/hostile -m load`); everything else runs in the default selection.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import resource
import shutil
import signal
import sys
import time
import traceback
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.cli import main
from tests.helpers import text_of
from tests.hostile import generate as g

# Import everything `policy validate` needs before forking, so children only run it.
for _module in (
    "cerberus",
    "policy.canonical",
    "policy.guardrails",
    "policy.loader",
    "policy.validate",
):
    importlib.import_module(_module)

CORPUS = Path(__file__).resolve().parent / "corpus"

# What follows the path on an output line; the path (escaped) may contain this text too.
HEAD_RE = re.compile(r":(?P<line>\d+):(?P<col>\d+): (?P<id>[a-z0-9/-]+): ")
# The escapes the output uses for characters it must not print raw (`\udcXX`: an undecodable
# byte XX in a file name).
ESCAPE_RE = re.compile(r"\\(?:x([0-9a-f]{2})|u([0-9a-f]{4})|U([0-9a-f]{8})|([ntr]))")
MAX_LINE = 16 * 1024
MEMORY_BOUND = 1536 << 20  # peak RSS of the child running one case
ADDRESS_SPACE = 4 << 30  # the child's hard limit: a runaway read fails instead of swapping
DEFAULT_SECONDS = 10.0  # generous: the machines running this are often heavily loaded
SCALED_SECONDS = 30.0  # 10k mounts, a 100k-entry array, ...: a few seconds when loaded
IS_ROOT = os.geteuid() == 0

# How each kind of known bug shows in `check`'s failure message (see `Case.signature`).
_SIGNATURES = (
    ("traceback", "traceback on"),
    ("hangs", "killed (hang)"),
    ("accepted (exit 0)", "exit=0 "),
    ("unlocated", "expected at"),
    ("mislocated", "expected at"),
    ("eats memory", "MemoryError"),
    ("an output line", "output line of"),
)


@dataclass(frozen=True)
class Case:
    """One hostile input and what `policy validate` must say about it."""

    id: str
    ids: tuple[str, ...]  # a diagnostic with one of these ids must carry `fragment`
    fragment: str
    write: g.Writer | None = None  # None: the static input corpus/<id>.toml or corpus/<id>/
    says: tuple[str, ...] = ()  # more fragments that same diagnostic carries
    at: str | None = None  # that diagnostic sits where this text starts in its file
    line: int | None = None  # or at least on this line
    shown: str | None = None  # that diagnostic's path as printed, relative to the project
    also: tuple[str, ...] = ()  # other ids this input rightly produces
    count: int | None = None  # how many diagnostics carry the (first) expected id
    exit: int = 1
    seconds: float = DEFAULT_SECONDS
    xfail: str | None = None  # the known bug: what happens, where, how to fix it
    fails_with: str = ""  # how the known bug shows in the check (derived from `xfail` if empty)
    skip: str | None = None
    address_space: int = ADDRESS_SPACE  # the child's limit; lower only to fail a runaway fast
    load: bool = False  # a long run: marked `load` (pytest -m load)

    def signature(self) -> str:
        """The text the failing check must contain, so a case cannot xfail for another reason."""
        if self.fails_with:
            return self.fails_with
        assert self.xfail, self.id
        for prefix, shows in _SIGNATURES:
            if self.xfail.startswith(prefix):
                return shows
        raise AssertionError(f"test bug: no failure signature for {self.id}")


def static(case_id: str) -> g.Writer:
    def write(project: Path) -> Path:
        directory = g.policies(project)
        single = CORPUS / f"{case_id}.toml"
        if single.is_file():
            shutil.copyfile(single, directory / "policy.toml")
        else:
            shutil.copytree(CORPUS / case_id, directory, dirs_exist_ok=True)
        return directory

    return write


# ---------------------------------------------------------------------------------------------
# the corpus

B = g.BASE
S = g.SENTINEL

CASES: list[Case] = [
    # --- empty, structure, version ----------------------------------------------------------
    Case("empty", ("missing-key",), "version = 1", line=1),
    Case("whitespace-only", ("missing-key",), "version = 1", line=1),
    Case("comment-only", ("missing-key",), "version = 1", line=1),
    Case("version-missing", ("missing-key",), "version = 1", line=1),
    Case("version-two", ("bad-value",), "unsupported version 2", at="version = 2"),
    Case("version-string", ("bad-value",), "unsupported version '1'", at="version ="),
    Case("version-float", ("bad-value",), "unsupported version 1.0", at="version ="),
    Case("version-bool", ("bad-value",), "unsupported version true", at="version ="),
    Case(
        "toplevel-typo",
        ("unknown-key",),
        "did you mean 'version'",
        at="verison",
        also=("missing-key",),
    ),
    Case("profiles-not-table", ("wrong-type",), "[profiles.NAME]", at="profiles = 1"),
    Case("profiles-array-of-tables", ("wrong-type",), "[profiles.NAME]", at="profiles]]"),
    Case("profile-not-table", ("wrong-type",), "expected dictionary", at='app = "app:1"'),
    Case("defaults-not-table", ("wrong-type",), "expected dictionary", at="defaults = ["),
    Case("defaults-extends", ("bad-value",), "cannot extend", at='extends = "app"'),
    Case("waivers-not-array", ("wrong-type",), "[[waivers]]", at="waivers ="),
    Case(
        "duplicate-profile-across-files",
        ("duplicate-profile",),
        "also declared at",
        at="app]",
        count=2,
    ),
    Case("duplicate-defaults", ("duplicate-defaults",), "already declared", at="defaults]\nnet"),
    # --- TOML syntax ----------------------------------------------------------------------------
    Case("duplicate-key", ("syntax",), "cannot overwrite", line=14),
    Case("duplicate-dotted-key", ("syntax",), "cannot overwrite", line=15),
    Case("duplicate-table", ("syntax",), "twice", line=15),
    Case("unterminated-string", ("syntax",), "illegal character", line=14),
    Case("unterminated-array", ("syntax",), "end of file", line=15),
    Case("unterminated-inline-table", ("syntax",), "unclosed inline table", line=14),
    Case("invalid-escape-in-key", ("syntax",), "unescaped", line=14),
    Case("bare-key-cyrillic", ("syntax",), "expected '='", line=14),
    Case("bare-key-fullwidth", ("syntax",), "invalid statement", line=14),
    Case("key-without-value", ("syntax",), "invalid value", line=14),
    Case("table-header-garbage", ("syntax",), "expected ']'", line=15),
    # --- hostile keys -----------------------------------------------------------------------
    Case("key-quote-backslash", ("unknown-key",), 'me"mo\\ry', at='"me\\"mo'),
    Case("key-empty", ("unknown-key",), "unknown key ''", at='"" = 1'),
    Case("key-cyrillic-quoted", ("unknown-key",), "did you mean 'memory'", at='"mem\u043ery"'),
    Case("key-fullwidth-quoted", ("unknown-key",), "\uff4d\uff45\uff4d", at='"\uff4d'),
    # The output escapes what it must not print raw (as \n, \x1b, \u202e, ...).
    Case("key-newline", ("unknown-key",), "unknown key 'memory = 1\\nfake'", at='"memory = 1'),
    Case("key-rtl", ("unknown-key",), "unknown key '\\u202eyromem'", at='"\u202e'),
    Case(
        "key-zero-width",
        ("unknown-key",),
        "unknown key 'mem\\u200bory'",
        says=("did you mean 'memory'",),
        at='"mem\u200b',
    ),
    Case(
        "key-nul-escape",
        ("unknown-key",),
        "unknown key 'mem\\x00ory'",
        says=("did you mean 'memory'",),
        at='"mem\\u0000',
    ),
    Case(
        "key-line-separator",
        ("unknown-key",),
        "unknown key 'memory\\u2028fake: ok'",
        at='"memory\u2028',
    ),
    Case(
        "key-ansi-escape",
        ("unknown-key",),
        "unknown key '\\x1b]0;pwned\\x07\\x1b[2Jmemory'",
        at='"\\u001b',
    ),
    # A key holding a forged `:LINE:COL: ID: ` header: the line still parses at the real path.
    Case(
        "key-forged-location",
        ("unknown-key",),
        "unknown key 'memory:1:1: ok: fine'",
        at='"memory:1:1',
        shown="policies/policy.toml",
    ),
    Case(
        "toplevel-key-rtl",
        ("unknown-key",),
        "unknown top-level key '\\u202esnoitpecxe'",
        at='"\u202e',
    ),
    Case("toplevel-key-newline", ("unknown-key",), "unknown top-level key 'a\\nb'", at='"a\\nb"'),
    Case(
        "long-key",
        ("unknown-key",),
        "unknown key 'kkkk",
        g.long_key(),
        # 13 + 1 MiB + 1 characters, cut to 2000 (Diagnostic.__str__, MAX_MESSAGE)
        says=("k... (1048590 chars)",),
        at='"kkkk',
        seconds=SCALED_SECONDS,
    ),
    # --- profile names ------------------------------------------------------------------------
    Case("profile-name-empty", ("bad-value",), "profile name ''", at='""]'),
    Case("profile-name-long", ("bad-value",), "1-128", at="a" * 129),
    Case("profile-name-dotdot", ("bad-value",), "profile name '../", at='"../../etc/passwd"'),
    Case("profile-name-flag", ("bad-value",), "'--privileged'", at='"--privileged"'),
    Case("profile-name-rtl", ("bad-value",), "\\u202e", at='"app\u202e'),
    Case("profile-name-cyrillic", ("bad-value",), "profile name", at='"\u0430pp"'),
    Case("profile-name-newline", ("bad-value",), "'app\\nevil'", at='"app\\nevil"'),
    # --- images -------------------------------------------------------------------------------
    *(
        Case(f"image-{name}", ("bad-value",), "not an image reference", at="image =")
        for name in (
            "privileged-flag",
            "space-flag",
            "newline",
            "semicolon",
            "subshell",
            "backtick",
            "too-long",
            "uppercase",
            "empty",
            "cyrillic",
            "rtl",
        )
    ),
    Case("image-int", ("wrong-type",), "expected string", at="image ="),
    # --- env ----------------------------------------------------------------------------------
    Case("env-reserved-upper", ("bad-value",), "reserved namespace", at="IO_CONTAINER_POLICY_"),
    Case("env-reserved-lower", ("bad-value",), "reserved namespace", at="io_container_policy_"),
    Case("env-reserved-mixed", ("bad-value",), "reserved namespace", at="Io_Container_Policy_"),
    Case("env-name-equals", ("bad-value",), "not an environment variable name", at='"A=B"'),
    Case("env-name-digit", ("bad-value",), "not an environment variable name", at='"1A"'),
    Case("env-name-cyrillic", ("bad-value",), "not an environment variable", at='"P\u0410TH"'),
    Case("env-name-empty", ("bad-value",), "not an environment variable name", at='"" = "x"'),
    Case("env-value-nul", ("bad-value",), "NUL", at='A = "a'),
    Case("env-value-int", ("wrong-type",), "expected string", at="A = 1"),
    Case("env-not-table", ("wrong-type",), "expected dictionary", at="env = ["),
    Case("env-hostile-values-then-typo", ("unknown-key",), "did you mean 'memory'", at="memroy"),
    Case(
        "env-10k",
        ("unknown-key",),
        "did you mean 'memory'",
        g.many_env(),
        at="memroy",
        seconds=SCALED_SECONDS,
    ),
    # --- labels -------------------------------------------------------------------------------
    Case("label-reserved", ("reserved-label",), "set by the engine", at='"io.container'),
    Case("label-reserved-case", ("reserved-label",), "set by the engine", at='"IO.Container'),
    Case("label-reserved-upper", ("reserved-label",), "set by the engine", at='"IO.CONTAINER'),
    Case("label-reserved-fullwidth", ("bad-value",), "not a label key", at='"io\uff0e'),
    Case("label-reserved-cyrillic", ("bad-value",), "not a label key", at='"io.c\u043e'),
    Case("label-reserved-dotted", ("wrong-type",), "expected string", at="io.container-policy."),
    Case("label-value-nul", ("bad-value",), "NUL", at="team ="),
    Case(
        "label-key-newline",
        ("bad-value",),
        "labels.team\\nio.container-policy.profile: not a label key: "
        "'team\\nio.container-policy.profile'",
        at='"team\\n',
    ),
    # --- mounts -------------------------------------------------------------------------------
    Case("mount-dotdot", ("mount-escape",), "leaves the project directory", at='source = ".."'),
    Case("mount-dotdot-etc", ("mount-escape",), "leaves the project directory", at="source ="),
    Case("mount-dotdot-hidden", ("mount-escape",), "leaves the project directory", at="source ="),
    Case(
        "mount-symlink-escape",
        ("mount-escape",),
        "resolves through a symlink",
        g.with_mount("hostroot/etc", g.link("hostroot", "/")),
        at="source =",
    ),
    Case(
        "mount-symlink-relative-escape",
        ("mount-escape",),
        "resolves through a symlink",
        g.with_mount("up/x", g.link("up", "../..")),
        at="source =",
    ),
    Case(
        "mount-symlink-chain",
        ("mount-escape",),
        "outside the project directory",
        g.with_mount("a", g.chain_links),
        at="source =",
    ),
    Case(
        "mount-symlink-loop",
        ("mount-escape",),
        "symlink loop",
        g.with_mount("loop", g.loop_links),
        says=("mount source 'loop' cannot be resolved",),
        at='source = "loop"',
    ),
    Case("mount-root", ("sensitive-mount",), "sensitive host path /", at='source = "/"'),
    Case("mount-docker-socket", ("docker-socket",), "Docker socket", at="source ="),
    Case("mount-docker-socket-disguised", ("docker-socket",), "Docker socket", at="source ="),
    Case(
        "mount-source-nul",
        ("bad-value",),
        "mounts.0.source: mount source may not contain control or invisible characters",
        says=("(found U+0000)",),
        at="source =",
    ),
    Case("mount-source-empty", ("bad-value",), "at least 1 character", at="source ="),
    Case("mount-source-long", ("bad-value",), "at most 4096", at="source ="),
    Case(
        "mount-source-rtl",
        ("bad-value",),
        "mounts.0.source: mount source may not contain control or invisible characters",
        says=("(found U+202E)",),
        at="source =",
    ),
    Case("mount-target-relative", ("bad-value",), "must be absolute", at='target = "app"'),
    Case("mount-target-dotdot", ("bad-value",), "may not contain '..'", at="target ="),
    Case("mount-target-root", ("bad-value",), "may not be / itself", at="target ="),
    Case(
        "mount-target-newline",
        ("bad-value",),
        "mounts.0.target: container path may not contain control or invisible characters",
        says=("(found U+000A)",),
        at="target =",
    ),
    Case(
        "mount-target-rtl",
        ("bad-value",),
        "mounts.0.target: container path may not contain control or invisible characters",
        says=("(found U+202E)",),
        at="target =",
    ),
    Case(
        "mount-target-duplicate", ("duplicate-target",), "more than once", at='target = "/app", w'
    ),
    Case(
        "mount-target-duplicate-spelling",
        ("duplicate-target",),
        "more than once",
        at='target = "//app/"',
        count=2,
    ),
    Case("mount-target-tmpfs-collision", ("duplicate-target",), "/tmp", at='target = "/tmp"'),
    Case("mount-project-writable", ("project-writable",), "writable", at="writable = true"),
    Case("mount-writable-string", ("wrong-type",), "expected boolean", at="writable ="),
    Case(
        "mount-propagation-shared",
        ("mount-propagation-shared",),
        "shared propagation",
        at="propagation",
    ),
    Case("mixed-array-mounts", ("wrong-type",), "expected dictionary", at='"/:/host"'),
    Case(
        "mounts-10k-same-target",
        ("duplicate-target",),
        "more than once",
        g.many_mounts(),
        line=15,
        count=9999,
        seconds=SCALED_SECONDS,
    ),
    # --- tmpfs --------------------------------------------------------------------------------
    Case("tmpfs-root", ("bad-value",), "may not be / itself", at='"/" ='),
    Case("tmpfs-double-slash", ("bad-value",), "may not be / itself", at='"//"'),
    Case("tmpfs-dot", ("bad-value",), "may not be / itself", at='"/."'),
    Case("tmpfs-dotdot", ("bad-value",), "may not contain '..'", at='"/tmp/.."'),
    Case("tmpfs-relative", ("bad-value",), "must be absolute", at="tmp = {"),
    Case("tmpfs-no-size", ("missing-key",), "a size is required", at='"/tmp"'),
    Case("tmpfs-size-2-64", ("bad-value",), "too large", at="size = 1844"),
    Case("tmpfs-mode-decimal", ("bad-value",), "octal string", at="mode = 1777"),
    Case("tmpfs-option-injection", ("bad-value",), "input should be", at='"nosuid,exec"'),
    Case("mixed-array-tmpfs-options", ("bad-value",), "input should be", at="7]"),
    # --- extreme numbers ----------------------------------------------------------------------
    *(
        Case(f"memory-{name}", ("bad-value",), fragment, at="memory =")
        for name, fragment in (
            ("2-64", "too large"),
            ("2-63", "too large"),
            ("huge-string", "too large"),
            ("1e400-float", "expected a size"),
            ("1e400-string", "expected a size"),
            ("minus-zero", "must be positive"),
            ("negative", "must be positive"),
            ("nan", "expected a size"),
            ("fraction-to-zero", "must be positive"),
            ("bool", "expected a size"),
        )
    ),
    Case(
        "memory-lookalike-digit",
        ("bad-value",),
        "memory: expected a size such as 100m, 1g or 1GiB, got '\u09eag'",
        at="memory =",
    ),
    *(
        Case(f"cpus-{name}", ("bad-value",), fragment, at="cpus =")
        for name, fragment in (
            ("nan", "positive number"),
            ("inf", "positive number"),
            ("neg-inf", "positive number"),
            ("negative", "positive number"),
            ("minus-zero", "positive number"),
            ("1e400", "positive number"),
            # ASCII digits only (units.parse_cpus): "NaN" is not a number at all
            ("string-nan", "expected a number of CPUs such as 1, 2 or 0.5, got 'NaN'"),
            ("string-infinity", "expected a number of CPUs such as 1, 2 or 0.5, got 'Infinity'"),
            ("tiny", "at least 0.001"),
            ("huge", "at most 1024"),
            ("2-64", "at most 1024"),
            ("bool", "expected a number of CPUs"),
        )
    ),
    *(
        Case(f"pids-{name}", (code,), fragment, at="pids_limit =")
        for name, code, fragment in (
            ("zero", "bad-value", "greater than 0"),
            ("negative", "bad-value", "greater than 0"),
            ("huge", "bad-value", "less than or equal to 2147483647"),
            ("2-64", "bad-value", "less than or equal to 2147483647"),
            ("hex", "bad-value", "less than or equal to 2147483647"),
            ("float", "wrong-type", "expected integer"),
            ("string", "wrong-type", "expected integer"),
        )
    ),
    Case(
        "pids-5000-digits",
        ("syntax",),
        "number too long",
        g.huge_number(),
        says=("more than 4300 digits",),
        at="9999",
    ),
    Case(
        "pids-5000-digits-after-long-string",
        ("syntax",),
        "number too long",
        g.huge_number(before='description = "' + "1" * 4500 + '"\n'),
        at="9999",
    ),
    *(
        Case(f"timeout-{name}", ("bad-value",), fragment, at="timeout =")
        for name, fragment in (
            ("nan", "must be positive"),
            ("zero", "must be positive"),
            ("huge", "longer than 7 days"),
            ("negative", "must be positive"),
            ("inf", "must be positive"),
            ("tiny", "at least 1ms"),
            ("garbage", "expected a duration"),
        )
    ),
    Case(
        "timeout-1mb",
        ("bad-value",),
        "longer than 7 days",
        g.long_duration(),
        at="timeout =",
        seconds=SCALED_SECONDS,
    ),
    Case("user-root", ("root-user",), "uid 0", at="user ="),
    Case("user-root-int", ("root-user",), "uid 0", at="user ="),
    Case("user-max", ("bad-value",), "at most 4294967294", at="user ="),
    Case("user-negative", ("bad-value",), "expected a numeric user", at="user ="),
    Case("user-name", ("bad-value",), "expected a numeric user", at="user ="),
    Case("user-fullwidth-colon", ("bad-value",), "expected a numeric user", at="user ="),
    Case("user-injection", ("bad-value",), "expected a numeric user", at="user ="),
    Case("mixed-array-caps", ("bad-value",), "capability name", at="1, 2.5", count=3),
    Case("mixed-array-nested", ("bad-value",), "capability name", at='["NET_RAW"]]'),
    Case(
        "cap-drop-100k",
        ("bad-value",),
        "NOT_A_CAP",
        g.long_array(),
        at='"NOT_A_CAP"',
        seconds=SCALED_SECONDS,
    ),
    Case("healthcheck-retries-zero", ("bad-value",), "greater than 0", at="retries"),
    # --- ports and devices -----------------------------------------------------------------
    Case("ports-all-interfaces", ("bad-value",), "every interface", at='host = "0.0.0.0"'),
    Case(
        "ports-host-injection", ("bad-value",), "expected an IP address", at='host = "127.0.0.1 -p'
    ),
    Case("ports-mapped-unspecified", ("bad-value",), "every interface", at='host = "::ffff'),
    Case("devices-dotdot", ("bad-value",), "absolute device path", at='host = "/dev/..'),
    Case("devices-newline", ("bad-value",), "absolute device path", says=("\\n",), line=15),
    # --- restart, sysctls, cgroup_parent, userns --------------------------------------------
    Case("restart-always", ("bad-value",), "without end", at="restart ="),
    Case("restart-injection", ("bad-value",), "got 'no --privileged'", at="restart ="),
    Case("sysctl-core-pattern", ("bad-value",), "not namespaced", at='"kernel.core_pattern"'),
    Case("sysctl-value-newline", ("bad-value",), "control or invisible", line=14),
    Case("cgroup-parent-dotdot", ("bad-value",), "not a cgroup path", at="cgroup_parent ="),
    Case("userns-container", ("bad-value",), "'private' or 'host'", at="userns ="),
    Case("apparmor-injection", ("bad-value",), "AppArmor profile name", at="apparmor ="),
    Case("selinux-disable-hidden", ("bad-value",), "cannot be combined", at="selinux ="),
    Case("mount-propagation-list", ("bad-value",), "expected one of rprivate", at="propagation ="),
    # --- ulimits ---------------------------------------------------------------------------
    Case("ulimits-2-64", ("bad-value",), "from 0 to 9223372036854775807", at="nofile = 1844"),
    Case("ulimits-nofile-unlimited", ("bad-value",), "nofile cannot be unlimited", at="ulimits"),
    Case("ulimits-name-cyrillic", ("bad-value",), "did you mean 'nofile'", at='"n\\u043efile"'),
    Case("ulimits-name-nul", ("bad-value",), "unknown ulimit", says=("\\x00",), line=14),
    Case("ulimits-name-injection", ("bad-value",), "unknown ulimit 'nofile=1:2,nproc'", line=14),
    Case("ulimits-soft-above-hard", ("bad-value",), "soft limit (unlimited) is above", line=14),
    Case("healthcheck-test-empty", ("bad-value",), "at least 1 item", at="test = []"),
    # --- security rules on loadable profiles --------------------------------------------------
    # The kubernetes table (issue 15): what a cluster is given in place of what it cannot do.
    Case("kubernetes-localhost-traversal", ("bad-value",), "without '..'", at="seccomp_localhost"),
    Case("kubernetes-localhost-bidi", ("bad-value",), "U+202E", at="seccomp_localhost"),
    Case("kubernetes-network-unknown", ("bad-value",), "deny-all-networkpolicy", at="network ="),
    Case("kubernetes-level-list", ("bad-value",), "'restricted', 'baseline'", at="level ="),
    Case("kubernetes-namespace-newline", ("bad-value",), "a Kubernetes name", at="namespace ="),
    Case("cap-add-all", ("cap-add",), "ALL", at="cap_add ="),
    Case("cap-add-sys-admin-spelling", ("cap-add",), "SYS_ADMIN", at="cap_add ="),
    Case("cap-add-nul", ("bad-value",), "unknown capability", at='"SYS_ADMIN'),
    Case("cap-add-string", ("wrong-type",), "expected list", at="cap_add ="),
    Case("privileged", ("privileged",), "every capability", at="privileged = true"),
    Case("privileged-string", ("wrong-type",), "expected boolean", at="privileged ="),
    Case("network-host", ("host-network",), "host's network", at="network ="),
    Case("swarm-network-bridge-spelled", ("bad-value",), "'internal'", at="swarm_network ="),
    Case(
        "swarm-network-beside-host",
        ("bad-value",),
        'instead of network = "none"',
        at="swarm_network =",
        also=("host-network",),
    ),
    Case("network-container", ("bad-value",), "not supported", at="network ="),
    Case("pid-host", ("host-pid",), "host's pid", at="pid ="),
    # --- seccomp ------------------------------------------------------------------------------
    Case("seccomp-unconfined", ("seccomp-unconfined",), "unconfined", at="seccomp ="),
    Case("seccomp-not-json-path", ("bad-value",), "path to a JSON profile", at="seccomp ="),
    Case("seccomp-empty-string", ("bad-value",), "at least 1 character", at="seccomp ="),
    Case("seccomp-missing-file", ("seccomp-file",), "no such file", at="seccomp ="),
    Case("seccomp-malformed", ("seccomp-file",), "not valid JSON", at="seccomp ="),
    Case("seccomp-empty", ("seccomp-file",), "not valid JSON", at="seccomp ="),
    *(
        Case(f"seccomp-{name}", ("seccomp-file",), "not a seccomp profile", at="seccomp =")
        for name in ("array", "string", "null", "unknown-action", "syscalls-object", "nan-action")
    ),
    *(
        Case(f"seccomp-{name}", ("seccomp-unconfined",), "allows every system call", at="seccomp =")
        for name in ("allow-default", "log-default", "duplicate-default")
    ),
    Case(
        "seccomp-5mb",
        ("seccomp-file",),
        "larger than 4 MiB",
        g.with_seccomp(g.seccomp_document(5 * g.MIB)),
        at="seccomp =",
    ),
    Case(
        "seccomp-deep-nesting",
        ("seccomp-file",),
        "not valid JSON",
        g.with_seccomp(g.seccomp_deep()),
        at="seccomp =",
    ),
    Case(
        "seccomp-invalid-utf8",
        ("seccomp-file",),
        "seccomp seccomp.json: not valid UTF-8",
        g.with_seccomp(b'{"defaultAction": "SCMP_ACT_\xff"}'),
        at="seccomp =",
    ),
    Case(
        "seccomp-bom",
        ("seccomp-file",),
        "BOM",
        g.with_seccomp(b'\xef\xbb\xbf{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}'),
        at="seccomp =",
    ),
    Case(
        "seccomp-directory",
        ("seccomp-file",),
        "/policies/seccomp.json: is a directory, expected a regular file",
        g.with_seccomp(None),
        at="seccomp =",
    ),
    Case(
        "seccomp-symlink-loop",
        ("seccomp-file",),
        "symbolic links",
        g.with_seccomp(None, link="seccomp.json"),
        at="seccomp =",
    ),
    Case(
        "seccomp-huge-int",
        ("seccomp-file",),
        "seccomp seccomp.json: not usable JSON",
        says=("a number in it is too long",),
        at="seccomp =",
    ),
    Case(
        "seccomp-fifo",
        ("seccomp-file",),
        "/policies/seccomp.json: is a FIFO (named pipe), expected a regular file",
        g.with_seccomp(None, fifo=True),
        at="seccomp =",
        seconds=3,
    ),
    Case(
        "seccomp-dev-zero",
        ("seccomp-file",),
        "/policies/seccomp.json: is a character device, expected a regular file",
        g.with_seccomp(None, link="/dev/zero"),
        at="seccomp =",
        address_space=1 << 30,  # a runaway read fails fast
    ),
    # --- guardrail files ----------------------------------------------------------------------
    Case("guardrail-unknown-rule", ("bad-guardrail",), "unknown rule", at="maxx"),
    Case("guardrail-rules-string", ("wrong-type",), "expected dictionary", at="rules ="),
    Case("guardrail-rules-empty", ("bad-value",), "at least 1 item", at="rules ="),
    Case("guardrail-unknown-field", ("unknown-field",), "did you mean 'memory'", at="field ="),
    Case("guardrail-field-int", ("wrong-type",), "expected string", at="field ="),
    Case("guardrail-empty-file", ("missing-key",), "version", line=1, count=2),
    Case("guardrail-no-table", ("missing-key",), "guardrails", line=1),
    Case("guardrail-empty-table", ("no-guardrails",), "no guardrails", at="guardrails]"),
    Case("guardrail-bad-regex", ("bad-guardrail",), "regex", at="regex ="),
    Case("guardrail-nested-bad-regex", ("bad-guardrail",), "nothing to repeat", at="schema"),
    Case("guardrail-max-lots", ("bad-value",), "'lots'", at="rules ="),
    Case(
        "guardrail-max-type",
        ("bad-guardrail",),
        "guardrail g: max for cpus must be a number, got '4'",
        at="rules =",  # the guardrail's rules (regex problems point at the rule itself)
    ),
    Case("guardrail-unknown-key", ("unknown-key",), "did you mean 'severity'", at="severty"),
    Case("guardrail-severity", ("bad-value",), "'error' or 'warning'", at="severity ="),
    Case("guardrail-id-uppercase", ("bad-value",), "pattern", at="Memory_Ceiling]"),
    Case("guardrail-version-two", ("bad-value",), "input should be 1", at="version = 2"),
    Case("guardrail-not-table", ("wrong-type",), "expected dictionary", at="memory ="),
    Case("guardrail-check-with", ("bad-guardrail",), "check_with", at="check_with"),
    Case(
        "guardrail-redos",
        ("bad-guardrail",),
        "rule regex = '(a+)+b' is not a valid cerberus rule",
        says=("can take exponential time",),
        at="regex =",
        seconds=3,
    ),
    # Patterns that backtrack exponentially without a quantifier directly inside a quantified
    # group: refused by structure (a repeated group that repeats or branches), at `regex =`.
    *(
        Case(
            f"guardrail-redos-{name}",
            ("bad-guardrail",),
            "can take exponential time",
            at="regex =",
            seconds=3,
        )
        for name in ("alternation", "nested-group")
    ),
    Case(
        "guardrails-dev-zero",
        ("not-a-file",),
        "is a character device, expected a regular file",
        g.guardrails_symlink("/dev/zero"),
        line=1,
        shown="policies/guardrails.toml",
    ),
    Case(
        "guardrails-fifo",
        ("not-a-file",),
        "is a FIFO (named pipe), expected a regular file",
        g.guardrails_fifo,
        line=1,
        shown="policies/guardrails.toml",
        seconds=3,
    ),
    Case(
        "guardrails-binary",
        ("encoding",),
        "not valid UTF-8",
        g.guardrails_bytes(b"version = 1\n\xff\xfe\x00\x01"),
        line=2,
    ),
    Case("only-guardrails", ("no-policy",), "only guardrails"),
    # --- extends ------------------------------------------------------------------------------
    Case("extends-self", ("extends-cycle",), "app -> app", at="extends ="),
    Case("extends-missing", ("extends-missing",), "'isolaton'", at="extends ="),
    Case("extends-empty", ("bad-value",), "at least 1 character", at="extends ="),
    Case("extends-int", ("wrong-type",), "expected string", at="extends ="),
    Case("extends-cyrillic", ("extends-missing",), "did you mean 'app'", at="extends ="),
    Case(
        "extends-rtl",
        ("extends-missing",),
        "profile 'app' extends unknown profile '\\u202eppa'",
        at="extends =",
    ),
    Case(
        "extends-nul",
        ("extends-missing",),
        "profile 'app' extends unknown profile 'app\\x00'",
        says=("did you mean 'app'",),
        at="extends =",
    ),
    Case("extends-cross-file-cycle", ("extends-cycle",), "a -> b -> a", at="extends =", count=2),
    Case("extends-broken-parent", ("unknown-key",), "memroy", at="memroy"),
    Case(
        "extends-chain-5000",
        ("seccomp-unconfined",),
        "profile 'p4999'",
        g.extends_chain(5000, tip='seccomp = "unconfined"\n'),
        at='seccomp = "unconfined"',
        count=1,
        seconds=20,
    ),
    Case(
        "extends-chain-5000-missing-root",
        ("extends-missing",),
        "unknown profile 'nowhere'",
        g.extends_chain(5000, root_extends="nowhere"),
        at='extends = "nowhere"',
        count=1,
        seconds=20,
    ),
    Case(
        "extends-cycle-1000",
        ("extends-cycle",),
        "p0 -> p1 -> p2",
        g.extends_cycle(1000),
        at='extends = "p1"',
        count=1000,
        seconds=20,
    ),
    # --- waivers ------------------------------------------------------------------------------
    Case(
        "waiver-expired",
        ("waiver-expired",),
        "expired on 2000-01-01",
        at="expires =",
        also=("cap-add",),
    ),
    Case("waiver-expires-string", ("wrong-type",), "expected date", at="expires ="),
    Case("waiver-expires-datetime", ("wrong-type",), "expected date", at="expires ="),
    Case("waiver-short-reason", ("bad-value",), "at least 10 characters", at="reason ="),
    Case(
        "waiver-unknown-rule",
        ("waiver-unknown-rule",),
        "did you mean 'cap-add'",
        at='rule = "cap-ad"',
        also=("cap-add",),
    ),
    Case(
        "waiver-unknown-profile-rtl",
        ("waiver-unknown-profile",),
        "waiver for unknown profile '\\u202eppa'",
        at='profile = "\u202e',
        also=("cap-add",),
    ),
    Case(
        "waiver-everything", ("waiver-unknown-rule",), "'*'", at='rule = "*"', also=("privileged",)
    ),
    # --- bytes: binary, NUL, encodings, line ends -----------------------------------------------
    Case(
        "binary-png", ("encoding",), "0x89", g.data(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), line=1
    ),
    Case(
        "binary-elf",
        ("encoding",),
        "not valid UTF-8",
        g.data(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256))),
        line=2,
    ),
    Case("binary-random", ("encoding",), "not valid UTF-8", g.binary_random()),
    Case("nul-only", ("syntax",), "invalid statement", g.data(b"\x00" * 4096), line=1),
    Case("nul-first", ("syntax",), "invalid statement", g.data(b"\x00" + B.encode()), line=1),
    Case(
        "nul-in-string",
        ("syntax",),
        "illegal character",
        g.data((B + 'description = "a\x00b"\n').encode()),
        line=13,
    ),
    Case(
        "nul-in-comment",
        ("syntax",),
        "invalid character",
        g.data(("# a comment \x00 with NUL\n" + B).encode()),
        line=1,
    ),
    Case(
        "invalid-utf8",
        ("encoding",),
        "0xe9",
        g.data((B + 'description = "caf').encode() + b'\xe9"\n'),
        line=13,
    ),
    Case("overlong-utf8", ("encoding",), "0xc0", g.data(B.encode() + b"# \xc0\xaf\n"), line=13),
    Case("utf16", ("encoding",), "0xff", g.data(B.encode("utf-16")), line=1),
    Case(
        "utf8-surrogate", ("encoding",), "0xed", g.data(B.encode() + b"# \xed\xa0\x80\n"), line=13
    ),
    Case("utf8-truncated", ("encoding",), "0xe2", g.data(B.encode() + b"# \xe2\x82"), line=13),
    Case(
        "bom-then-error",
        ("bad-value",),
        "unsupported version 2",
        g.data(b"\xef\xbb\xbf" + B.replace("version = 1", "version = 2").encode()),
        at="version = 2",
    ),
    Case(
        "bom-then-typo",
        ("unknown-key",),
        "memroy",
        g.data(b"\xef\xbb\xbf" + (B + S).encode()),
        at="memroy",
    ),
    Case(
        "double-bom",
        ("syntax",),
        "invalid statement",
        g.data(b"\xef\xbb\xbf\xef\xbb\xbf" + B.encode()),
        line=1,
    ),
    Case("crlf-then-typo", ("unknown-key",), "memroy", g.crlf(B + S), at="memroy"),
    Case(
        "crlf-multiline-string-then-typo",
        ("unknown-key",),
        "memroy",
        g.crlf(B + 'description = """\nline one\n[profiles.fake]\n"""\n' + S),
        at="memroy",
    ),
    Case("bare-cr", ("syntax",), "expected newline", g.bare_cr(B + S), line=1),
    # --- huge inputs --------------------------------------------------------------------------
    Case("string-1mb", ("unknown-key",), "memroy", g.huge_string(g.MIB), at="memroy"),
    Case("huge-10mb-string", ("unknown-key",), "memroy", g.huge_string(), at="memroy", seconds=20),
    Case(
        "huge-10mb-comments", ("unknown-key",), "memroy", g.huge_comments(), at="memroy", seconds=20
    ),
    Case(
        "huge-100k-profiles",
        ("unknown-key",),
        "memroy",
        g.many_profiles(),
        at="memroy",
        seconds=120,  # 15 s on an idle machine; four times that seen on a loaded one
        load=True,
    ),
    Case("over-cap-sparse", ("too-large",), "32 MiB", g.over_cap_sparse(), line=1),
    *(
        Case(
            f"dev-{name}",
            ("not-a-file",),
            "is a character device, expected a regular file",
            g.symlink(f"/dev/{name}"),
            line=1,
            shown="policies/policy.toml",  # the user's name for it, not /dev/...
        )
        for name in ("zero", "urandom", "null")
    ),
    # --- deep nesting -------------------------------------------------------------------------
    Case(
        "deep-arrays-100", ("wrong-type",), "expected string", g.deep_arrays(100), at="description"
    ),
    Case(
        "deep-arrays-10k",
        ("syntax",),
        "nesting too deep",
        g.deep_arrays(10_000),
        at="description",
    ),
    Case(
        "deep-inline-tables-10k",
        ("syntax",),
        "nesting too deep",
        g.deep_inline_tables(10_000),
        at="description",
    ),
    Case("deep-header-5000", ("unknown-key",), "unknown key 'a'", g.deep_header(5000), at="a.a.a"),
    # --- not a regular file -------------------------------------------------------------------
    Case(
        "fifo",
        ("not-a-file",),
        "is a FIFO (named pipe), expected a regular file",
        g.fifo,
        line=1,
        shown="policies/policy.toml",
        seconds=3,
    ),
    Case(
        "socket",
        ("not-a-file",),
        "is a socket, expected a regular file",
        g.unix_socket,
        line=1,
        shown="policies/policy.toml",
    ),
    # A directory named policy.toml is a directory: it is walked (and holds nothing).
    Case(
        "directory-named-toml",
        ("not-a-file",),
        "is a directory, expected a TOML file",
        g.directory_named_toml,
        line=1,
    ),
    Case(
        "unreadable",
        ("unreadable",),
        "permission denied",
        g.unreadable,
        line=1,
        skip="running as root: chmod 000 does not stop root from reading (the fifo and socket "
        "cases cover files that cannot be read)"
        if IS_ROOT
        else None,
    ),
    Case(
        "symlink-loop-argument",
        ("unreadable",),
        "symbolic links",
        g.symlink("policy.toml", as_argument=True),
        line=1,
    ),
    Case(
        "symlink-loop-in-directory",
        ("unreadable",),
        "symbolic links",
        g.symlink("policy.toml"),
        line=1,
    ),
    Case(
        "dangling-symlink",
        ("not-found",),
        "no such file or directory",
        g.symlink("nowhere.toml"),
        line=1,
        shown="policies/policy.toml",
    ),
    Case("empty-directory", ("no-policy",), "no .toml policy files", g.empty_directory, line=1),
    Case("nonexistent", ("not-found",), "no such file", g.nonexistent, line=1),
    Case("hidden-only", ("no-policy",), "no .toml policy files", g.hidden_only, line=1),
    Case(
        "deep-directories-32",
        ("unknown-key",),
        "memroy",
        g.deep_directories(32, B + S),
        at="memroy",
        shown="policies/" + "d/" * 32 + "policy.toml",
    ),
    *(
        # One too-deep for the first directory past the cap; the walk goes no further.
        Case(
            f"deep-directories-{depth}",
            ("too-deep",),
            "policy directories may be at most 32 levels deep",
            g.deep_directories(depth, B + S),
            line=1,
            shown="policies" + "/d" * 33,
            count=1,
            also=("no-policy",),
        )
        for depth in (33, 50, 1200)
    ),
    Case(
        "deep-directories-long-names",
        ("unknown-key",),
        "memroy",
        # 14 levels of 250 undecodable bytes: a path of 3.5 KB, within PATH_MAX
        g.deep_directories(14, B + S, name=b"\xff" * 250),
        line=13,
    ),
    Case(
        "filename-newline",
        ("unknown-key",),
        "memroy",
        g.named("evil\nx.toml:1:1: ok: all good.toml"),
        at="memroy",
        # one line, and a name holding a forged `:1:1: ok: ` header is still the path
        shown="policies/evil\\nx.toml:1:1: ok: all good.toml",
    ),
    Case(
        "filename-rtl",
        ("unknown-key",),
        "memroy",
        g.named("policy\u202elmot.toml"),
        at="memroy",
        shown="policies/policy\\u202elmot.toml",
    ),
    Case(
        "filename-invalid-utf8",
        ("unknown-key",),
        "memroy",
        g.named(b"policy-\xff.toml"),
        at="memroy",
        shown="policies/policy-\\udcff.toml",  # the byte 0xff, as Python's surrogate escape
    ),
]


# ---------------------------------------------------------------------------------------------
# running a case in a forked child


@dataclass
class Run:
    exit: int | None
    stdout: str
    stderr: str
    raw_output: str  # whatever reached the real file descriptors 1 and 2
    seconds: float
    peak_rss: int  # bytes
    hung: bool


def run_validate(
    argv: list[str], seconds: float, workdir: Path, address_space: int = ADDRESS_SPACE
) -> Run:
    """`main(argv)` in a forked child; killed (and reported as hung) after `seconds`."""
    result_file = workdir / "result.json"
    fd_file = workdir / "fd-output.txt"
    sys.stdout.flush()
    sys.stderr.flush()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 0
        try:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
            sink = os.open(fd_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(sink, 1)
            os.dup2(sink, 2)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            # What a UTF-8 terminal gives: strict encoding, so unprintable paths fail as they
            # would for a user.
            out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
            err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
            code: int | None = None
            began = time.monotonic()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(argv)
                except BaseException:
                    traceback.print_exc()
            elapsed = time.monotonic() - began
            stdout, stderr = text_of(out, "backslashreplace"), text_of(err, "backslashreplace")
            result = {"exit": code, "stdout": stdout, "stderr": stderr, "seconds": elapsed}
            result_file.write_text(json.dumps(result))
        except BaseException:
            status = 3
            with contextlib.suppress(BaseException):
                result_file.write_text(json.dumps({"crash": traceback.format_exc()}))
        finally:
            os._exit(status)
    hung = False
    usage: resource.struct_rusage | None = None
    while True:
        done, _, usage = os.wait4(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > seconds:
            hung = True
            os.kill(pid, signal.SIGKILL)
            _, _, usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    elapsed = time.monotonic() - start
    raw_output = fd_file.read_text("utf-8", "backslashreplace") if fd_file.exists() else ""
    peak = usage.ru_maxrss * 1024 if usage is not None else 0
    if hung or not result_file.exists():
        return Run(None, "", "", raw_output, elapsed, peak, hung)
    result = json.loads(result_file.read_text())
    if "crash" in result:
        return Run(None, "", result["crash"], raw_output, elapsed, peak, False)
    return Run(result["exit"], result["stdout"], result["stderr"], raw_output, elapsed, peak, False)


# ---------------------------------------------------------------------------------------------
# checks


@dataclass(frozen=True)
class Line:
    path: str  # as printed (escaped)
    line: int
    col: int
    id: str
    message: str
    file: bytes | None  # the file or directory on disk that `path` names, if it exists


def unescape(text: str) -> str:
    """`text` with the output's escapes undone (`\\udcXX` gives back the undecodable byte)."""

    def one(match: re.Match[str]) -> str:
        if match[4]:
            return {"n": "\n", "t": "\t", "r": "\r"}[match[4]]
        return chr(int(match[1] or match[2] or match[3], 16))

    return ESCAPE_RE.sub(one, text)


def on_disk(shown: str) -> bytes | None:
    """What a printed path names on disk: the path as printed, or with its escapes undone (a
    backslash in a file name is printed as is, so both are tried); None if neither exists."""
    for candidate in (shown, unescape(shown)):
        try:
            path = os.fsencode(candidate)
        except UnicodeEncodeError:  # a surrogate that is no escaped byte
            continue
        if os.path.lexists(path):
            return path
    return None


def parse_line(text: str) -> Line | None:
    """One output line, split after its path.

    `:LINE:COL: ID: ` may occur in the path (a file name holding it) and in the message (a key
    holding it), so neither the first nor the last occurrence is reliably the separator: the
    path is the longest prefix that names an existing file (the first, for a path that does
    not exist, such as a missing argument).
    """
    heads = [
        head
        for start in range(1, len(text))
        if text[start] == ":" and (head := HEAD_RE.match(text, start))
    ]
    if not heads:
        return None
    named = [(head, on_disk(text[: head.start()])) for head in heads]
    existing = [(head, file) for head, file in named if file is not None]
    head, file = existing[-1] if existing else named[0]
    return Line(
        text[: head.start()],
        int(head["line"]),
        int(head["col"]),
        head["id"],
        text[head.end() :],
        file,
    )


def _bad_characters(text: str) -> list[str]:
    """Characters a diagnostic must not print raw: controls, bidi and invisible formatting."""
    found = []
    for char in text:
        if char == "\n":
            continue
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            found.append(f"U+{ord(char):04X}")
    return sorted(set(found))


def position_of(path: bytes, marker: str) -> tuple[int, int]:
    """1-based (line, column) where `marker` first starts in `path`, outside comment lines.

    A leading BOM is not a column (editors do not show it).
    """
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8", "surrogateescape")
    text = text.removeprefix("\ufeff")
    index = text.find(marker)
    while index >= 0:
        start = text.rfind("\n", 0, index) + 1
        if not text.startswith("#", start):
            return text.count("\n", 0, index) + 1, index - start + 1
        index = text.find(marker, index + 1)
    raise AssertionError(f"test bug: {marker!r} is not in {path!r}")


def check(case: Case, run: Run, project: Path) -> None:
    summary = f"exit={run.exit} stdout={run.stdout[:2000]!r} stderr={run.stderr[-3000:]!r}"
    assert not run.hung, f"still running after {case.seconds:.0f} s: killed (hang)"
    for name, stream in (("stdout", run.stdout), ("stderr", run.stderr), ("fds", run.raw_output)):
        assert "Traceback" not in stream, f"traceback on {name}:\n{stream[-4000:]}"
    assert run.seconds <= case.seconds, f"took {run.seconds:.1f} s (bound {case.seconds} s)"
    assert run.peak_rss <= MEMORY_BOUND, f"peak RSS {run.peak_rss >> 20} MiB"
    assert run.exit == case.exit, summary
    assert run.exit in (1, 2)
    if run.exit == 1:
        assert "invalid:" in run.stderr, summary

    lines: list[Line] = []
    for text in run.stdout.split("\n"):
        if not text:
            continue
        assert len(text) <= MAX_LINE, f"output line of {len(text)} characters: {text[:200]!r}..."
        parsed = parse_line(text)
        assert parsed, f"not a path:line:col: id: message line: {text[:300]!r}"
        lines.append(parsed)
    assert lines, f"no diagnostics: {summary}"
    bad = _bad_characters(run.stdout + run.stderr)
    assert not bad, f"raw {', '.join(bad)} in the output: {run.stdout[:500]!r}"

    root = os.path.abspath(project)
    for found in lines:
        assert found.line >= 1 and found.col >= 1, found
        # The path as given (a symlink is not followed: /dev/zero is not the user's file).
        where = os.path.abspath(found.path)
        assert where == root or where.startswith(root + os.sep), (
            f"path outside the project: {found}"
        )

    allowed = set(case.ids) | set(case.also)
    unexpected = [f for f in lines if f.id not in allowed]
    assert not unexpected, f"unexpected diagnostics: {unexpected[:5]}"
    fragments = [part.casefold() for part in (case.fragment, *case.says)]
    matching = [
        f
        for f in lines
        if f.id in case.ids and all(part in f.message.casefold() for part in fragments)
    ]
    assert matching, (
        f"no {case.ids} diagnostic mentions {(case.fragment, *case.says)!r}: {lines[:5]}"
    )
    if case.count is not None:
        same = [f for f in lines if f.id == matching[0].id]
        assert len(same) == case.count, f"{len(same)} {matching[0].id} diagnostics"
    if case.shown is not None:
        printed = os.path.join(root, case.shown)
        assert any(os.path.abspath(f.path) == printed for f in matching), (
            f"expected the path printed as {case.shown!r}: {matching[:3]}"
        )
    if case.at is not None:
        for f in matching:
            assert f.file is not None, f"the printed path names no file: {f}"
        wanted = [(f, position_of(f.file, case.at)) for f in matching if f.file is not None]
        assert any((f.line, f.col) == pos for f, pos in wanted), (
            f"expected at {wanted[0][1]} (where {case.at[:40]!r} is): {matching[:3]}"
        )
    elif case.line is not None:
        assert any(f.line == case.line for f in matching), (
            f"expected line {case.line}: {matching[:3]}"
        )


def _params() -> Iterator[object]:
    seen: set[str] = set()
    for case in CASES:
        assert case.id not in seen, f"duplicate case id {case.id}"
        seen.add(case.id)
        marks: list[pytest.MarkDecorator] = []
        if case.xfail:
            case.signature()
            # raises=AssertionError: a case failing for another reason than the known one
            # (pytest.fail below) is a real failure.
            marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.xfail))
        if case.load:
            marks.append(pytest.mark.load)
        if case.skip:
            marks.append(pytest.mark.skip(reason=case.skip))
        yield pytest.param(case, id=case.id, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    write: Callable[[Path], Path] = case.write or static(case.id)
    try:
        target = write(project)
        run = run_validate(["validate", str(target)], case.seconds, tmp_path, case.address_space)
        try:
            check(case, run, project)
        except AssertionError as exc:
            if case.xfail and case.signature() not in str(exc):
                pytest.fail(f"fails, but not with the known bug ({case.signature()!r}): {exc}")
            raise
    finally:
        g.remove_tree(project)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 100
    static_ids = {c.id for c in CASES if c.write is None}
    on_disk = {p.name.removesuffix(".toml") for p in CORPUS.iterdir()}
    assert static_ids == on_disk, static_ids ^ on_disk
