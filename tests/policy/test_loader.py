"""Loading policies: inheritance ([defaults] < parent < child), files and directories, the
project directory, and where each effective setting was written."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from policy.errors import PolicyError
from policy.loader import Policy, load_policy
from policy.mount_sources import resolve_source
from policy.units import parse_size
from tests.helpers import POLICIES, ROOT, write_policies

# Fixture `shipped` (tests/conftest.py): the shipped policy.


# --- inheritance ------------------------------------------------------------------------------

CHAIN = """version = 1

[defaults]
image = "base:1"
user = "1001:1001"
memory = "1g"
cpus = 1
cap_add = ["SYS_PTRACE", "NET_RAW"]
env = { A = "defaults", B = "defaults" }
tmpfs."/tmp" = { size = "100m", mode = "1777", options = ["nosuid", "nodev"] }
mounts = [
  { source = "src", target = "/src" },
  { source = "out", target = "/out", writable = true },
]

[profiles.parent]
memory = "2g"
env = { B = "parent", C = "parent" }
tmpfs."/tmp".size = "200m"
tmpfs."/run" = { size = "1m" }

[profiles.child]
extends = "parent"
cpus = 3
cap_add = ["NET_BIND_SERVICE"]
env.C = "child"
tmpfs."/tmp".options = ["noexec"]
mounts = [{ source = "data", target = "/data" }]
"""


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    return load_policy([write_policies(tmp_path_factory.mktemp("chain"), {"p.toml": CHAIN})])


def test_child_overrides_parent_overrides_defaults(chain: Policy) -> None:
    parent, child = chain.profiles["parent"], chain.profiles["child"]
    assert (parent.image, parent.memory, parent.cpus) == ("base:1", 2 << 30, 1.0)
    assert (child.image, child.memory, child.cpus) == ("base:1", 2 << 30, 3.0)
    assert child.user == "1001:1001"


def test_tables_are_merged_key_by_key(chain: Policy) -> None:
    assert chain.profiles["parent"].env == {"A": "defaults", "B": "parent", "C": "parent"}
    assert chain.profiles["child"].env == {"A": "defaults", "B": "parent", "C": "child"}
    parent_tmp = chain.profiles["parent"].tmpfs["/tmp"]
    # Overriding the size keeps the mode and options written in [defaults].
    assert (parent_tmp.size, parent_tmp.mode, parent_tmp.options) == (
        parse_size("200m"),
        0o1777,
        ("nodev", "nosuid"),
    )
    child_tmp = chain.profiles["child"].tmpfs["/tmp"]
    assert (child_tmp.size, child_tmp.mode, child_tmp.options) == (
        parse_size("200m"),
        0o1777,
        ("noexec",),  # a list inside a merged table still replaces
    )
    assert set(chain.profiles["child"].tmpfs) == {"/tmp", "/run"}


def test_lists_are_replaced_not_appended(chain: Policy) -> None:
    assert chain.profiles["parent"].cap_add == ("NET_RAW", "SYS_PTRACE")
    assert chain.profiles["child"].cap_add == ("NET_BIND_SERVICE",)
    assert [m.target for m in chain.profiles["parent"].mounts] == ["/src", "/out"]
    assert [m.target for m in chain.profiles["child"].mounts] == ["/data"]


def test_shipped_inheritance(shipped: Policy) -> None:
    full, isolation = shipped.profiles["full"], shipped.profiles["isolation"]
    assert full.tmpfs["/tmp"].size == parse_size("500m")
    assert full.tmpfs["/tmp"].mode == isolation.tmpfs["/tmp"].mode == 0o1777
    assert full.tmpfs["/tmp"].options == isolation.tmpfs["/tmp"].options
    assert full.mounts == isolation.mounts
    assert full.cap_add == ("SYS_PTRACE",)
    assert isolation.cap_add == ()
    # tiers.toml extends profiles of base.toml: inheritance crosses files.
    intensive = shipped.profiles["intensive"]
    assert (intensive.image, intensive.cap_add, intensive.network) == (
        full.image,
        ("SYS_PTRACE",),
        "bridge",
    )
    assert intensive.timeout == 300.0
    assert shipped.profiles["fast"].timeout == 2.0


def test_unset_fields_hold_engine_defaults(tmp_path: Path) -> None:
    policy = load_policy(
        [write_policies(tmp_path, {"p.toml": 'version = 1\n[profiles.a]\nimage = "x"\n'})]
    )
    a = policy.profiles["a"]
    assert (a.user, a.read_only, a.privileged, a.network, a.memory, a.seccomp.mode) == (
        None,
        False,
        False,
        "bridge",
        None,
        "default",
    )


@pytest.mark.parametrize("parents_first", [True, False])
def test_long_extends_chain(tmp_path: Path, parents_first: bool) -> None:
    count = 3000
    assert count > sys.getrecursionlimit()
    blocks = ['[profiles.p0]\nimage = "x"\nmemory = "1g"\n'] + [
        f'[profiles.p{i}]\nextends = "p{i - 1}"\ncpus = {i % 7 + 1}\n' for i in range(1, count)
    ]
    if not parents_first:
        blocks.reverse()
    policies = write_policies(tmp_path, {"p.toml": "version = 1\n" + "".join(blocks)})
    start = time.perf_counter()
    policy = load_policy([policies])
    elapsed = time.perf_counter() - start
    assert len(policy.profiles) == count
    last = policy.profiles[f"p{count - 1}"]
    assert (last.image, last.memory, last.cpus) == ("x", 1 << 30, float((count - 1) % 7 + 1))
    # Not a benchmark: a generous bound that only catches quadratic-or-worse behaviour.
    assert elapsed < 15, f"loading a {count}-long chain took {elapsed:.1f}s"


def test_long_cycle_is_reported_not_recursed(tmp_path: Path) -> None:
    count = 2000
    blocks = [f'[profiles.p{i}]\nextends = "p{(i + 1) % count}"\n' for i in range(count)]
    policies = write_policies(tmp_path, {"p.toml": "version = 1\n" + "".join(blocks)})
    with pytest.raises(PolicyError) as info:
        load_policy([policies])
    assert {d.code for d in info.value.diagnostics} == {"extends-cycle"}
    assert len(info.value.diagnostics) == count


# --- files and directories --------------------------------------------------------------------


def test_profiles_spread_over_files_and_subdirectories(tmp_path: Path) -> None:
    policies = write_policies(
        tmp_path,
        {
            "a.toml": 'version = 1\n[defaults]\nimage = "x"\n',
            "teams/b.toml": 'version = 1\n[profiles.b]\nextends = "c"\n',
            "teams/deep/c.toml": 'version = 1\n[profiles.c]\nmemory = "1g"\n',
            ".hidden.toml": "this is not toml and is ignored",
            "notes.txt": "not a policy",
            "README.md": "# not a policy",
        },
    )
    policy = load_policy([policies])
    assert sorted(policy.profiles) == ["b", "c"]
    assert policy.profiles["b"].memory == 1 << 30
    assert [Path(f).name for f in policy.files] == ["a.toml", "b.toml", "c.toml"]


def test_several_paths_and_files(tmp_path: Path) -> None:
    one = write_policies(tmp_path / "one", {"a.toml": 'version = 1\n[profiles.a]\nimage = "x"\n'})
    two = write_policies(tmp_path / "two", {"b.toml": 'version = 1\n[profiles.b]\nextends = "a"\n'})
    policy = load_policy([one, two / "b.toml", one / "a.toml"])  # a file twice: read once
    assert sorted(policy.profiles) == ["a", "b"]
    assert len(policy.files) == 2


def test_project_defaults_to_the_parent_of_the_policy_directory(tmp_path: Path) -> None:
    policies = write_policies(tmp_path, {"p.toml": 'version = 1\n[profiles.a]\nimage = "x"\n'})
    assert load_policy([policies]).project == tmp_path.resolve()
    assert load_policy([policies / "p.toml"]).project == tmp_path.resolve()
    other = tmp_path / "elsewhere"
    other.mkdir()
    assert load_policy([policies], project=other).project == other.resolve()


def test_shipped_project_is_the_repository(shipped: Policy) -> None:
    assert shipped.project == ROOT


def test_mount_sources_resolve_against_the_project(tmp_path: Path) -> None:
    # `link` points out of the default project (repo/) but stays inside tmp_path.
    text = 'version = 1\n[profiles.a]\nimage = "x"\nmounts = [{ source = "link", target = "/u" }]\n'
    policies = write_policies(tmp_path / "repo", {"p.toml": text})
    (tmp_path / "shared").mkdir()
    (tmp_path / "repo" / "link").symlink_to(tmp_path / "shared")
    with pytest.raises(PolicyError) as info:
        load_policy([policies])
    assert [d.code for d in info.value.diagnostics] == ["mount-escape"]
    policy = load_policy([policies], project=tmp_path / "repo" / "..")
    assert policy.project == tmp_path.resolve()
    assert resolve_source(policy.project, policy.profiles["a"].mounts[0].source) == (
        tmp_path.resolve() / "link"
    )


def test_seccomp_paths_are_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    seccomp = '{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []}'
    policies = write_policies(
        tmp_path,
        {
            "team/p.toml": 'version = 1\n[profiles.a]\nimage = "x"\nseccomp = "sec/s.json"\n',
            "team/sec/s.json": seccomp,
        },
    )
    a = load_policy([policies]).profiles["a"]
    assert a.seccomp.mode == "custom"
    assert a.seccomp.path == str((policies / "team" / "sec" / "s.json").resolve())
    assert a.seccomp.digest is not None and a.seccomp.digest.startswith("sha256:")
    assert a.seccomp.default_allow is False


# --- where ------------------------------------------------------------------------------------


def _at(policy: Policy, profile: str, *keypath: str | int) -> tuple[str, int, int]:
    location = policy.where(profile, keypath)
    return Path(location.path).name, location.line, location.col


def test_where_points_to_the_key_that_set_the_value(shipped: Policy) -> None:
    base = (POLICIES / "base.toml").read_text(encoding="utf-8").splitlines()

    def line_of(text: str, after: str = "") -> int:
        start = base.index(after) if after else 0
        return next(i for i, ln in enumerate(base[start:], start + 1) if ln.startswith(text))

    # Written in the profile itself.
    assert _at(shipped, "full", "memory") == ("base.toml", line_of("memory", "[profiles.full]"), 1)
    # Inherited from the parent: the parent's key.
    assert _at(shipped, "parallel", "timeout") == (
        "base.toml",
        line_of("timeout", "[profiles.isolation]"),
        1,
    )
    # Inherited from [defaults].
    assert _at(shipped, "full", "user") == ("base.toml", line_of("user ="), 1)
    # Across files: a tier in tiers.toml that inherits cap_add from `full` in base.toml.
    assert _at(shipped, "intensive", "cap_add") == (
        "base.toml",
        line_of("cap_add", "[profiles.full]"),
        1,
    )
    assert _at(shipped, "intensive", "memory")[0] == "tiers.toml"
    # Inside a merged table: size from `full`, mode from [defaults].
    assert _at(shipped, "full", "tmpfs", "/tmp", "size")[:2] == (
        "base.toml",
        line_of('tmpfs."/tmp".size'),
    )
    assert _at(shipped, "full", "tmpfs", "/tmp", "mode")[:2] == ("base.toml", line_of("tmpfs."))
    # A mount element: the line of that element in the list.
    assert _at(shipped, "isolation", "mounts", 1, "source")[:2] == (
        "base.toml",
        line_of('  { source = "test-results"'),
    )


def test_where_falls_back_to_the_profile_header(shipped: Policy) -> None:
    tiers = (POLICIES / "tiers.toml").read_text(encoding="utf-8").splitlines()
    header = tiers.index("[profiles.fast]") + 1
    assert _at(shipped, "fast", "healthcheck") == ("tiers.toml", header, 11)
    assert _at(shipped, "fast") == ("tiers.toml", header, 11)
