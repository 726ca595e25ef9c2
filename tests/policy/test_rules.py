"""The built-in security rules: each fires on a minimal bad profile and not on the vetted one,
and each has the metadata (stable id, help, CIS/PSS reference) reviewers and SARIF rely on."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from policy.diagnostics import Severity
from policy.loader import Policy
from policy.model import Profile, Seccomp
from policy.rules import RULES, RULES_BY_ID, Context, Rule
from policy.validate import validate
from tests.helpers import ROOT

PROJECT = Path("/srv/project")
CTX = Context(PROJECT)

# A profile that complies with every rule; each bad case changes as little as possible.
GOOD: dict[str, Any] = {
    "name": "good",
    "image": "app:1",
    "user": "1001:1001",
    "read_only": True,
    "network": "none",
    "cap_drop": ("ALL",),
    "no_new_privileges": True,
    "pids_limit": 64,
    "memory": 1 << 30,
    "cpus": 1.0,
    "timeout": 60.0,
    "healthcheck": {"test": ("/bin/true",)},
    "mounts": (
        {"source": ".", "target": "/src"},
        {"source": "results", "target": "/results", "writable": True},
    ),
}

BAD: dict[str, list[dict[str, Any]]] = {
    "root-user": [{"user": "0:0"}, {"user": "0"}, {"user": None}],
    "privileged": [{"privileged": True}],
    "cap-drop-all": [{"cap_drop": ()}, {"cap_drop": ("NET_RAW",)}],
    "cap-add": [{"cap_add": ("SYS_ADMIN",)}, {"cap_add": ("ALL",)}, {"cap_add": ("SYS_PTRACE",)}],
    "seccomp-unconfined": [
        {"seccomp": Seccomp(mode="unconfined")},
        {"seccomp": Seccomp(mode="custom", digest="sha256:0", default_allow=True)},
    ],
    "no-new-privileges": [{"no_new_privileges": False}],
    "host-network": [{"network": "host"}],
    "host-pid": [{"pid": "host"}],
    "host-ipc": [{"ipc": "host"}],
    "host-uts": [{"uts": "host"}],
    "writable-root": [{"read_only": False}],
    "no-memory-limit": [{"memory": None}],
    "no-cpu-limit": [{"cpus": None}],
    "no-pids-limit": [{"pids_limit": None}],
    "no-timeout": [{"timeout": None}],
    "ulimit-unlimited": [
        {"ulimits": {"nproc": {"soft": 64, "hard": -1}}},
        {"ulimits": {"nofile": {"soft": 64, "hard": 64}, "memlock": {"soft": -1, "hard": -1}}},
    ],
    "published-port": [{"ports": ({"host": "127.0.0.1", "container": 80},)}],
    "privileged-port": [{"ports": ({"host": "127.0.0.1", "host_port": 80, "container": 80},)}],
    "port-all-interfaces": [
        {"ports": ({"host": "0.0.0.0", "container": 80},)},
        {"ports": ({"host": "::", "host_port": 8080, "container": 80},)},
    ],
    "host-device": [{"devices": ({"host": "/dev/fuse"},)}],
    "restart-policy": [
        {"restart": "always"},
        {"restart": "unless-stopped"},
        {"restart": "on-failure:0"},
        {"restart": "on-failure:6"},
    ],
    "sysctl": [{"sysctls": {"net.ipv4.ping_group_range": "0 1"}}],
    "cgroup-parent": [{"cgroup_parent": "/ci"}],
    "host-userns": [{"userns": "host"}],
    "oom-kill-disabled": [{"oom_kill_disable": True}],
    "apparmor-unconfined": [{"apparmor": "unconfined"}],
    "mount-propagation-shared": [
        {"mounts": ({"source": ".", "target": "/src", "propagation": "shared"},)},
        {"mounts": ({"source": ".", "target": "/src", "propagation": "rshared"},)},
    ],
    "selinux-disabled": [{"selinux": ("disable",)}],
    "no-healthcheck": [{"healthcheck": None}],
    "docker-socket": [
        {"mounts": ({"source": "/var/run/docker.sock", "target": "/var/run/docker.sock"},)},
        {"mounts": ({"source": "/run/docker.sock", "target": "/d.sock"},)},
        {"mounts": ({"source": "/var/run", "target": "/host-run"},)},
        {"mounts": ({"source": "/home/me/.docker/run/docker.sock", "target": "/d.sock"},)},
    ],
    "sensitive-mount": [
        {"mounts": ({"source": "/etc", "target": "/host-etc"},)},
        {"mounts": ({"source": "/etc/ssl", "target": "/ssl"},)},
        {"mounts": ({"source": "/", "target": "/host"},)},
        {"mounts": ({"source": "/proc", "target": "/host-proc"},)},
        {"mounts": ({"source": "/var/lib/docker", "target": "/d"},)},
    ],
    "project-writable": [
        {"mounts": ({"source": ".", "target": "/src", "writable": True},)},
        {"mounts": ({"source": str(PROJECT), "target": "/src", "writable": True},)},
        {"mounts": ({"source": "/srv", "target": "/srv", "writable": True},)},  # holds the project
    ],
}

# Rules that are the project's own: no CIS Docker Benchmark or Pod Security Standards control.
OWN_RULES = {"no-timeout", "project-writable", "oom-kill-disabled"}


def make(**changes: Any) -> Profile:
    return Profile.model_validate({**GOOD, **changes})


def fired(profile: Profile, ctx: Context = CTX) -> set[str]:
    return {rule.id for rule in RULES for _ in rule.check(profile, ctx)}


# Fixture `shipped` (tests/conftest.py): the shipped policy.


def test_the_good_profile_breaks_no_rule() -> None:
    assert fired(make()) == set()


def test_unlimited_ulimits_that_are_unlimited_by_default_do_not_fire() -> None:
    # core, cpu, fsize, ...: the kernel leaves them unlimited (core's hard limit) anyway.
    unlimited = {"soft": -1, "hard": -1}
    assert fired(make(ulimits={"core": unlimited, "cpu": unlimited, "stack": unlimited})) == set()
    assert fired(make(ulimits={"nproc": {"soft": 4096, "hard": 4096}})) == set()


def test_a_bounded_restart_breaks_no_rule() -> None:
    assert fired(make(restart="on-failure:5")) == set()
    assert fired(make(restart="no")) == set()


def test_every_rule_has_a_bad_case() -> None:
    assert set(BAD) == {rule.id for rule in RULES}


@pytest.mark.parametrize(
    ("rule_id", "changes"),
    [(rule_id, changes) for rule_id, cases in BAD.items() for changes in cases],
    ids=[f"{rule_id}-{i}" for rule_id, cases in BAD.items() for i in range(len(cases))],
)
def test_rule_fires_on_a_minimal_bad_profile(rule_id: str, changes: dict[str, Any]) -> None:
    profile = make(**changes)
    rule = RULES_BY_ID[rule_id]
    violations = list(rule.check(profile, CTX))
    assert violations, f"{rule_id} did not fire on {changes}"
    for violation in violations:
        assert violation.message
        # The key names a field of the profile, so a diagnostic can point at it.
        assert violation.key and violation.key[0] in Profile.model_fields


DECLARED_RULES = [r for r in RULES if not r.running_only]


@pytest.mark.parametrize("rule", DECLARED_RULES, ids=[r.id for r in DECLARED_RULES])
def test_rule_is_quiet_on_the_shipped_isolation_profile(rule: Rule, shipped: Policy) -> None:
    assert list(rule.check(shipped.profiles["isolation"], Context(shipped.project))) == []


def test_shipped_policy_validates_on_a_fixed_date(shipped: Policy) -> None:
    # On a date before the shipped waivers expire, the shipped policy is clean.
    assert validate(shipped, today=dt.date(2026, 11, 28)) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"cap_add": ("NET_BIND_SERVICE",)},  # PSS restricted allows adding this one
        {"user": "1001"},
        {"mounts": ({"source": "results", "target": "/results", "writable": True},)},
        {"mounts": ({"source": "/var/cache/app", "target": "/cache", "writable": True},)},
        {"mounts": ({"source": "/etcetera", "target": "/x"},)},  # only a prefix of /etc
        {"mounts": ({"source": "/srv/project-other", "target": "/x", "writable": True},)},
        {"mounts": ({"source": "/srv/project/sub", "target": "/x", "writable": True},)},
        {"seccomp": Seccomp(mode="custom", digest="sha256:0", default_allow=False)},
        {"network": "bridge"},
        {"ipc": "none"},
    ],
)
def test_acceptable_settings_do_not_fire(changes: dict[str, Any]) -> None:
    assert fired(make(**changes)) == set()


def test_rules_judge_relative_sources_against_the_project() -> None:
    inside = make(mounts=({"source": "../../etc", "target": "/e"},))
    assert fired(inside, Context(Path("/srv/project"))) == {"sensitive-mount"}
    assert fired(inside, Context(Path("/srv/a/b/c"))) == set()


def test_rule_ids_are_unique_and_stable_looking() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids)) == len(RULES_BY_ID)
    for rule_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", rule_id), rule_id


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_metadata(rule: Rule) -> None:
    assert rule.title.strip()
    assert rule.help.strip()
    assert isinstance(rule.severity, Severity)
    if rule.id in OWN_RULES:
        assert rule.cis is None and rule.pss is None
    else:
        assert rule.cis or rule.pss, f"{rule.id} names no CIS or PSS control"
    if rule.cis is not None:
        assert re.fullmatch(r"\d+\.\d+", rule.cis), rule.cis
    if rule.pss is not None:
        assert rule.pss.startswith(("Baseline: ", "Restricted: ")), rule.pss


def test_limits_that_only_warn() -> None:
    warnings = {rule.id for rule in RULES if rule.severity is Severity.WARNING}
    assert warnings == {
        "no-cpu-limit",
        "no-timeout",
        "ulimit-unlimited",
        "published-port",
        "sysctl",
        "cgroup-parent",
    }


def test_a_missing_health_check_is_a_note_judged_only_on_running_containers() -> None:
    # CIS 5.27: a profile without a check keeps its image's, which a policy file does not show,
    # so only the audit of a running container (`evaluate(running=True)`) can answer it; and a
    # test container needs none, so it is a note, below every warning.
    rule = RULES_BY_ID["no-healthcheck"]
    assert rule.running_only and rule.cis == "5.27"
    assert rule.severity is Severity.NOTE
    assert Severity.NOTE.rank < Severity.WARNING.rank < Severity.ERROR.rank
    assert {r.id for r in RULES if r.running_only} == {"no-healthcheck"}


def test_docs_list_every_rule() -> None:
    docs = ROOT / "docs" / "rules.md"
    if not docs.exists():
        pytest.skip("docs/rules.md is not written yet")
    text = docs.read_text(encoding="utf-8")
    missing = [
        rule.id
        for rule in RULES
        if not re.search(rf"(?<![\w-]){re.escape(rule.id)}(?![\w-])", text)
    ]
    assert not missing, f"docs/rules.md does not list {missing}"
