"""The canonical form and its digest: what launched containers carry as a label.

The digest must not change when a policy is reformatted, reordered, split over files or written
with equivalent spellings, and must change whenever a setting that reaches the engine changes.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.canonical import canonical_document, digest
from policy.loader import Policy, load_policy
from policy.model import Profile
from tests.helpers import without_none, write_policies

# A profile using every field, as a TOML-ready dict.
FULL: dict[str, Any] = {
    "description": "every field",
    "image": "app:1",
    "user": "1001:1001",
    "read_only": True,
    "privileged": False,
    "network": "none",
    "pid": "private",
    "ipc": "private",
    "uts": "private",
    "cap_drop": ["ALL"],
    "cap_add": ["SYS_PTRACE"],
    "no_new_privileges": True,
    "seccomp": "default",
    "pids_limit": 256,
    "memory": "1g",
    "cpus": 2,
    "timeout": "10m",
    "tmpfs": {"/tmp": {"size": "100m", "mode": "1777", "options": ["nosuid", "nodev"]}},
    "mounts": [
        {"source": ".", "target": "/src"},
        {"source": "results", "target": "/results", "writable": True},
    ],
    "env": {"LANG": "C.UTF-8", "CI": "1"},
    "workdir": "/src",
    "healthcheck": {"test": ["true"], "interval": "5s", "retries": 3},
    "labels": {"team": "qa"},
    "ulimits": {"nofile": {"soft": 1024, "hard": 4096}, "nproc": 512},
    "devices": [{"host": "/dev/fuse", "permissions": "rw"}],
    "restart": "on-failure:2",
    "sysctls": {"kernel.shmmax": "1024"},
    "cgroup_parent": "/ci",
    "userns": "host",
    "oom_kill_disable": True,
    "apparmor": "docker-default",
    "selinux": ["type:container_t", "level:s0:c1,c2"],
}


def load_dicts(
    root: Path, files: dict[str, dict[str, Any]], extra: dict[str, str] | None = None
) -> Policy:
    texts = {name: tomli_w.dumps({"version": 1, **data}) for name, data in files.items()}
    return load_policy([write_policies(root, {**texts, **(extra or {})})])


def load_text(root: Path, text: str) -> Policy:
    return load_policy([write_policies(root, {"p.toml": text})])


def profile_digest(root: Path, settings_: dict[str, Any], name: str = "a") -> str:
    return digest(load_dicts(root, {"p.toml": {"profiles": {name: settings_}}}).profiles[name])


def test_digest_format(tmp_path: Path) -> None:
    value = profile_digest(tmp_path, FULL)
    assert value.startswith("sha256:")
    assert len(value) == len("sha256:") + 64
    int(value.removeprefix("sha256:"), 16)


def test_digest_is_stable_across_key_order(tmp_path: Path) -> None:
    reordered = dict(reversed(list(FULL.items())))
    reordered["tmpfs"] = {"/tmp": dict(reversed(list(FULL["tmpfs"]["/tmp"].items())))}
    reordered["env"] = dict(reversed(list(FULL["env"].items())))
    reordered["mounts"] = [dict(reversed(list(m.items()))) for m in FULL["mounts"]]
    assert profile_digest(tmp_path / "a", FULL) == profile_digest(tmp_path / "b", reordered)


def test_digest_is_stable_across_toml_layout(tmp_path: Path) -> None:
    inline = (
        'version = 1\n[profiles.a]\nimage = "app:1"\n'
        'tmpfs = { "/tmp" = { size = "100m", mode = "1777" } }\nenv = { A = "1", B = "2" }\n'
    )
    dotted = (
        'version = 1\n[profiles.a]\nimage = "app:1"\ntmpfs."/tmp".mode = "1777"\n'
        'env.B = "2"\ntmpfs."/tmp".size = "100m"\nenv.A = "1"\n'
    )
    tables = (
        "# a comment\nversion = 1\n\n[profiles.a.env]\nB = '2'\nA = \"1\"\n\n"
        '[profiles.a.tmpfs."/tmp"]\nsize = "100m"   # inline comment\nmode = "1777"\n\n'
        '[profiles.a]\nimage = "app:1"\n'
    )
    digests = {
        digest(load_text(tmp_path / name, text).profiles["a"])
        for name, text in [("inline", inline), ("dotted", dotted), ("tables", tables)]
    }
    assert len(digests) == 1


def test_digest_is_stable_across_file_splits(tmp_path: Path) -> None:
    defaults: dict[str, Any] = {
        "user": "1001:1001",
        "read_only": True,
        "memory": "1g",
        "image": "app:1",
    }
    profiles: dict[str, dict[str, Any]] = {
        "parent": {"cpus": 2, "tmpfs": {"/tmp": {"size": "100m"}}},
        "child": {"extends": "parent", "memory": "2g"},
    }
    together = load_dicts(
        tmp_path / "one", {"all.toml": {"defaults": defaults, "profiles": profiles}}
    )
    split = load_dicts(
        tmp_path / "three",
        {
            "0-defaults.toml": {"defaults": defaults},
            "sub/child.toml": {"profiles": {"child": profiles["child"]}},
            "z-parent.toml": {"profiles": {"parent": profiles["parent"]}},
        },
    )
    # The same settings written into the profile itself, without [defaults] or extends.
    flat = load_dicts(
        tmp_path / "flat",
        {"p.toml": {"profiles": {"child": {**defaults, **profiles["parent"], "memory": "2g"}}}},
    )
    for name in profiles:
        assert digest(together.profiles[name]) == digest(split.profiles[name])
    assert digest(flat.profiles["child"]) == digest(together.profiles["child"])


EQUIVALENT: list[tuple[str, list[Any]]] = [
    ("memory", ["1g", "1024m", 1073741824, "1GiB", "1gb", "1048576k", " 1G "]),
    ("cpus", [2, 2.0, "2", "2.0004"]),
    ("timeout", ["10m", 600, "600s", "9m60s", "600000ms", 600.0]),
    ("user", ["1001:1001", "01001:1001", " 1001:1001"]),
    ("user", ["1001", 1001]),
    ("cap_add", [["SYS_PTRACE"], ["CAP_sys_ptrace"], ["sys_ptrace", "SYS_PTRACE"]]),
    ("cap_add", [["NET_RAW", "SYS_PTRACE"], ["SYS_PTRACE", "NET_RAW"]]),
    ("cap_drop", [["ALL"], ["all"], ["CAP_ALL"]]),
    (
        "tmpfs",
        [{"/tmp": {"size": "1m", "mode": "1777"}}, {"/tmp": {"size": 1048576, "mode": "01777"}}],
    ),
    (
        "tmpfs",
        [
            {"/tmp": {"size": "1m", "options": ["nosuid", "nodev"]}},
            {"/tmp": {"size": "1m", "options": ["nodev", "nosuid", "nodev"]}},
            {"/tmp/": {"size": "1m", "options": ["nodev", "nosuid"]}},
            {"//tmp/.": {"size": "1m", "options": ["nodev", "nosuid"]}},
        ],
    ),
    (
        "mounts",
        [
            [{"source": "src", "target": "/app/src"}],
            [{"source": "./src/", "target": "/app/src/"}],
            [{"source": "src", "target": "/app/src", "writable": False}],
            [{"source": "src", "target": "/app/src", "propagation": "rprivate"}],
        ],
    ),
    ("workdir", ["/src", "/src/", "/src/."]),
    (
        "healthcheck",
        [{"test": ["true"], "interval": "1m"}, {"test": ["true"], "interval": 60}],
    ),
    (
        "ulimits",
        [
            {"nofile": {"soft": 1024, "hard": 4096}, "nproc": 512},
            {"nproc": {"hard": 512, "soft": 512}, "nofile": {"hard": 4096, "soft": 1024}},
        ],
    ),
    ("ulimits", [{"core": "unlimited"}, {"core": {"soft": "unlimited", "hard": "unlimited"}}]),
    ("restart", ["on-failure:2", "on-failure:02"]),
    ("sysctls", [{"kernel.shmmax": "1024"}, {"kernel.shmmax": 1024}]),
    ("selinux", [["type:container_t", "level:s0:c1,c2"], ["level:s0:c1,c2", "type:container_t"]]),
    (
        "devices",
        [
            [{"host": "/dev/fuse", "permissions": "rw"}],
            [{"host": "/dev/fuse", "container": "/dev/fuse", "permissions": "wr"}],
            [{"host": "/dev//fuse", "permissions": "rw"}],
        ],
    ),
]


@pytest.mark.parametrize(
    ("field", "spellings"),
    EQUIVALENT,
    ids=[f"{f}-{i}" for i, (f, _) in enumerate(EQUIVALENT)],
)
def test_equivalent_spellings_have_one_digest(
    tmp_path: Path, field: str, spellings: list[Any]
) -> None:
    digests = [
        profile_digest(tmp_path / str(i), {**FULL, field: spelling})
        for i, spelling in enumerate(spellings)
    ]
    assert len(set(digests)) == 1, dict(zip(map(repr, spellings), digests, strict=True))


CHANGES: list[tuple[str, Any]] = [
    ("image", "app:2"),
    ("user", "1002:1001"),
    ("user", "1001:1002"),
    ("user", "1001"),  # the image's group instead of 1001
    ("read_only", False),
    ("privileged", True),
    ("network", "bridge"),
    ("pid", "host"),
    ("ipc", "none"),
    ("uts", "host"),
    ("cap_drop", ["NET_RAW"]),
    ("cap_add", ["SYS_PTRACE", "NET_BIND_SERVICE"]),
    ("cap_add", []),
    ("no_new_privileges", False),
    ("seccomp", "unconfined"),
    ("pids_limit", 257),
    ("memory", "1025m"),
    ("memory", 1073741825),
    ("cpus", 2.001),
    ("timeout", "10m1s"),
    ("timeout", 600.001),
    ("tmpfs", {"/tmp": {"size": "101m", "mode": "1777", "options": ["nosuid", "nodev"]}}),
    ("tmpfs", {"/tmp": {"size": "100m", "mode": "777", "options": ["nosuid", "nodev"]}}),
    ("tmpfs", {"/tmp": {"size": "100m", "options": ["nosuid", "nodev"]}}),
    ("tmpfs", {"/tmp": {"size": "100m", "mode": "1777", "options": ["nosuid"]}}),
    ("tmpfs", {"/var/tmp": {"size": "100m", "mode": "1777", "options": ["nosuid", "nodev"]}}),
    ("mounts", [{"source": ".", "target": "/src"}]),
    ("mounts", [{"source": "lib", "target": "/src"}, FULL["mounts"][1]]),
    ("mounts", [{"source": ".", "target": "/code"}, FULL["mounts"][1]]),
    ("mounts", [FULL["mounts"][0], {"source": "results", "target": "/results"}]),
    ("mounts", list(reversed(FULL["mounts"]))),
    ("mounts", [{**FULL["mounts"][0], "propagation": "rslave"}, FULL["mounts"][1]]),
    ("env", {"LANG": "C.UTF-8", "CI": "0"}),
    ("env", {"LANG": "C.UTF-8", "CI": "1", "X": ""}),
    ("env", {"LANG": "C.UTF-8", "ci": "1"}),
    ("workdir", "/results"),
    ("healthcheck", {"test": ["false"], "interval": "5s", "retries": 3}),
    ("healthcheck", {"test": ["true"], "interval": "6s", "retries": 3}),
    ("healthcheck", {"test": ["true"], "interval": "5s", "retries": 4}),
    ("healthcheck", {"test": ["true"], "interval": "5s", "retries": 3, "timeout": "1s"}),
    ("labels", {"team": "dev"}),
    ("labels", {"team": "qa", "tier": "1"}),
    ("swarm_network", "internal"),  # digested when set; unset, digests stay as they were
    ("ulimits", {"nofile": {"soft": 1024, "hard": 4096}}),
    ("ulimits", {"nofile": {"soft": 1024, "hard": 4096}, "nproc": 513}),
    ("ulimits", {"nofile": {"soft": 1023, "hard": 4096}, "nproc": 512}),
    ("ulimits", {"nofile": {"soft": 1024, "hard": 4096}, "nproc": "unlimited"}),
    ("ulimits", {}),
    ("devices", []),
    ("devices", [{"host": "/dev/fuse", "permissions": "rwm"}]),
    ("devices", [{"host": "/dev/fuse", "container": "/dev/f", "permissions": "rw"}]),
    ("restart", "on-failure:3"),
    ("restart", "no"),
    ("sysctls", {"kernel.shmmax": "1"}),
    ("sysctls", {}),
    ("cgroup_parent", "/other"),
    ("userns", "private"),
    ("oom_kill_disable", False),
    ("apparmor", "other-profile"),
    ("selinux", ["type:container_t", "level:s0:c1,c3"]),
    # What a profile accepts on a cluster changes what runs there (issue 15).
    ("kubernetes", {"level": "restricted"}),
    ("kubernetes", {"source": "image"}),
    ("kubernetes", {"network": "deny-all-networkpolicy"}),
    ("kubernetes", {"seccomp_localhost": "profiles/a.json"}),
]


@pytest.fixture(scope="module")
def full_digest(tmp_path_factory: pytest.TempPathFactory) -> str:
    return profile_digest(tmp_path_factory.mktemp("full"), FULL)


@pytest.mark.parametrize(
    ("field", "value"), CHANGES, ids=[f"{f}-{i}" for i, (f, _) in enumerate(CHANGES)]
)
def test_any_setting_change_changes_the_digest(
    tmp_path: Path, full_digest: str, field: str, value: Any
) -> None:
    assert profile_digest(tmp_path, {**FULL, field: value}) != full_digest


def test_every_engine_field_is_covered_by_a_change() -> None:
    # `monitor` is the launcher's sampling, not the engine's: see the test below.
    presentation = {"name", "description", "monitor"}
    # `ports` needs a network, which FULL does not have: see the ports test below.
    covered = {field for field, _ in CHANGES} | {"ports"}
    assert set(Profile.model_fields) - presentation <= covered


@pytest.mark.parametrize(
    "changes", [{"description": "another text"}, {"description": None}], ids=["other", "none"]
)
def test_description_does_not_change_the_digest(
    tmp_path: Path, full_digest: str, changes: dict[str, Any]
) -> None:
    data = {k: v for k, v in {**FULL, **changes}.items() if v is not None}
    assert profile_digest(tmp_path, data) == full_digest


def test_monitor_thresholds_do_not_change_the_digest(tmp_path: Path, full_digest: str) -> None:
    monitor = {"memory_warn": 0.5, "interval": "2s", "fail_on_violation": True}
    policy = load_dicts(tmp_path, {"p.toml": {"profiles": {"a": {**FULL, "monitor": monitor}}}})
    assert policy.profiles["a"].monitor.memory_warn == 0.5
    assert digest(policy.profiles["a"]) == full_digest


def test_monitor_tables_merge_key_by_key_down_the_chain(tmp_path: Path) -> None:
    policy = load_dicts(
        tmp_path,
        {
            "p.toml": {
                "defaults": {"monitor": {"memory_warn": "80%", "interval": "500ms"}},
                "profiles": {"a": {**FULL, "monitor": {"throttle_warn": 0.5}}},
            }
        },
    )
    monitor = policy.profiles["a"].monitor
    assert (monitor.memory_warn, monitor.interval, monitor.throttle_warn) == (0.8, 0.5, 0.5)
    assert monitor.fd_growth_warn == 16 and not monitor.fail_on_violation


def test_renaming_a_profile_does_not_change_the_digest(tmp_path: Path, full_digest: str) -> None:
    assert profile_digest(tmp_path, FULL, name="renamed") == full_digest


def test_seccomp_digest_follows_content_not_path(tmp_path: Path) -> None:
    document: dict[str, Any] = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}],
    }
    reformatted = json.dumps(dict(reversed(list(document.items()))), indent=4)
    changed = copy.deepcopy(document)
    changed["syscalls"][0]["names"] = ["read", "write"]

    def seccomp_digest(root: Path, file: str, text: str) -> str:
        data = {"profiles": {"a": {**FULL, "seccomp": file}}}
        return digest(load_dicts(root, {"p.toml": data}, {file: text}).profiles["a"])

    first = seccomp_digest(tmp_path / "1", "one.json", json.dumps(document))
    assert seccomp_digest(tmp_path / "2", "two.json", reformatted) == first
    assert seccomp_digest(tmp_path / "3", "one.json", json.dumps(changed)) != first
    assert first != profile_digest(tmp_path / "4", FULL)  # "default" differs from custom


def test_canonical_document_contents(tmp_path: Path) -> None:
    doc = canonical_document(
        load_dicts(tmp_path, {"p.toml": {"profiles": {"a": FULL}}}).profiles["a"]
    )
    assert doc["memory"] == 1 << 30
    assert doc["timeout"] == 600.0
    assert doc["cpus"] == 2.0
    assert (doc["uid"], doc["gid"], doc["user"]) == (1001, 1001, "1001:1001")
    assert doc["capabilities"] == ["SYS_PTRACE"]
    assert doc["cap_drop"] == ["ALL"]
    assert doc["seccomp"] == "default"
    assert doc["tmpfs"] == {
        "/tmp": {"size": 100 << 20, "mode": "1777", "options": ["nodev", "nosuid"]}
    }
    json.dumps(doc)  # JSON-ready


# --- idempotence ------------------------------------------------------------------------------

_DERIVED = ("name", "uid", "gid", "capabilities")


def _as_input(document: dict[str, Any]) -> dict[str, Any]:
    """Profile settings written back from a canonical document."""
    settings_: dict[str, Any] = without_none(
        {k: v for k, v in document.items() if k not in _DERIVED}
    )
    return settings_


_CAPS = ["SYS_PTRACE", "NET_RAW", "NET_BIND_SERVICE", "CHOWN", "SYS_ADMIN", "ALL"]
_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
_size = st.integers(1, 1 << 40) | st.builds(
    lambda n, u: f"{n}{u}", st.integers(1, 4096), st.sampled_from(["k", "m", "g", "MiB", "GB"])
)
_duration = (
    st.integers(1, 604800)
    | st.builds(lambda ms: ms / 1000, st.integers(1, 10**6))
    | st.builds(lambda m, s: f"{m}m{s}s", st.integers(1, 59), st.integers(1, 59))
)
_cap = st.builds(
    lambda name, style: [name, "CAP_" + name, name.lower()][style],
    st.sampled_from(_CAPS[:-1]),
    st.integers(0, 2),
) | st.just("ALL")
_user = st.builds(
    lambda uid, gid, pad: (("0" if pad else "") + str(uid)) + ("" if gid is None else f":{gid}"),
    st.integers(0, 70000),
    st.none() | st.integers(0, 70000),
    st.booleans(),
)
_tmpfs = st.dictionaries(
    st.sampled_from(["/tmp", "/run", "/var/tmp"]),
    st.fixed_dictionaries(
        {"size": _size},
        optional={
            "mode": st.sampled_from(["1777", "0755", "700"]),
            "options": st.lists(st.sampled_from(["nosuid", "nodev", "noexec", "ro"])),
        },
    ),
    max_size=2,
)
_mounts = st.lists(
    st.fixed_dictionaries(
        {"source": st.sampled_from([".", "src", "./results/", "/opt/data"])},
        optional={"writable": st.booleans()},
    ),
    max_size=3,
).map(lambda ms: [{**m, "target": f"/m/{i}"} for i, m in enumerate(ms)])
_profile = st.fixed_dictionaries(
    {"image": st.sampled_from(["app:1", "registry.example.com/team/app:2.1", "busybox"])},
    optional={
        "description": _text,
        "user": _user,
        "read_only": st.booleans(),
        "privileged": st.booleans(),
        "network": st.sampled_from(["none", "bridge", "host", "corp-net"]),
        "pid": st.sampled_from(["private", "host"]),
        "ipc": st.sampled_from(["private", "host", "none"]),
        "uts": st.sampled_from(["private", "host"]),
        "cap_drop": st.lists(_cap, max_size=3),
        "cap_add": st.lists(_cap, max_size=3),
        "no_new_privileges": st.booleans(),
        "seccomp": st.sampled_from(["default", "unconfined"]),
        "pids_limit": st.integers(1, 100000),
        "memory": _size,
        "cpus": st.integers(1, 64) | st.floats(0.001, 1024) | st.sampled_from(["0.5", "3"]),
        "timeout": _duration,
        "tmpfs": _tmpfs,
        "mounts": _mounts,
        "env": st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,6}", fullmatch=True), _text),
        "workdir": st.sampled_from(["/src", "/work/dir/", "/tmp"]),
        "healthcheck": st.fixed_dictionaries(
            {"test": st.lists(_text, min_size=1, max_size=3)},
            optional={"interval": _duration, "retries": st.integers(1, 10)},
        ),
        "labels": st.dictionaries(st.from_regex(r"[a-z][a-z0-9./-]{0,8}", fullmatch=True), _text),
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_profile)
def test_canonical_document_is_idempotent(settings_: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "results").mkdir()
        first = load_dicts(root / "1", {"p.toml": {"profiles": {"a": settings_}}}).profiles["a"]
        document = canonical_document(first)
        again = load_dicts(
            root / "2", {"p.toml": {"profiles": {"a": _as_input(document)}}}
        ).profiles["a"]
    assert canonical_document(again) == document
    assert digest(again) == digest(first)


def test_a_profile_without_the_runtime_keys_keeps_its_digest(tmp_path: Path) -> None:
    """The runtime keys of issue 12 at their default are not digested: a profile that does not
    use them has the digest it had before they existed, so its running containers are not
    stale. (The literal is the digest of this profile before `ulimits` was added.)"""
    text = 'version = 1\n[profiles.a]\nimage = "app:1"\nmemory = "1g"\n'
    profile = load_text(tmp_path, text).profiles["a"]
    assert profile.ulimits == {}
    assert digest(profile) == BEFORE_RUNTIME_KEYS


def test_ulimits_are_canonical_in_show(tmp_path: Path) -> None:
    text = (
        'version = 1\n[profiles.a]\nimage = "app:1"\n'
        'ulimits = { nproc = 512, core = "unlimited", nofile = { soft = 1024, hard = 4096 } }\n'
    )
    doc = canonical_document(load_text(tmp_path, text).profiles["a"])
    assert doc["ulimits"] == {
        "core": {"soft": "unlimited", "hard": "unlimited"},
        "nofile": {"soft": 1024, "hard": 4096},
        "nproc": {"soft": 512, "hard": 512},
    }
    assert list(doc["ulimits"]) == ["core", "nofile", "nproc"]


BEFORE_RUNTIME_KEYS = "sha256:1b023588f93e519e37f2acb831f7db5a86b94dc4a0c07a54b634bbeb8dfcb858"


def test_ports_have_one_digest_for_equivalent_spellings(tmp_path: Path) -> None:
    base = {**FULL, "network": "bridge"}
    spellings = [
        [{"host": "::1", "container": 80}],
        [{"host": "0:0::1", "container": 80, "protocol": "tcp"}],
    ]
    digests = {
        profile_digest(tmp_path / str(i), {**base, "ports": p}) for i, p in enumerate(spellings)
    }
    assert len(digests) == 1
    other = profile_digest(tmp_path / "o", {**base, "ports": [{"host": "::1", "container": 81}]})
    assert other not in digests
