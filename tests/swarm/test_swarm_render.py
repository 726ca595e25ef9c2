"""The Swarm renderer's contract without an engine: every setting is spelled, proved by a node,
kept by the launcher or refused by name, and a setting nobody declared is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.launcher.swarm_verify import stored_spec_drift
from engine.render import swarm as S
from engine.render.interface import Unexpressible
from engine.render.walk import NOT_SETTINGS, SETTINGS, walk
from policy.loader import load_policy
from policy.model import Profile
from tests.swarm.conftest import POLICIES


def test_every_setting_is_spelled_proved_kept_or_refused() -> None:
    groups = [S.EXPRESSES, set(S.PROVED_BY_NODE), set(S.LEAVES), set(S.CANNOT_EXPRESS)]
    assert set().union(*groups) == set(SETTINGS)
    assert sum(len(g) for g in groups) == len(SETTINGS), "a setting in two groups"
    # Every field of the model that reaches a container is one of SETTINGS: a key another
    # branch adds to Profile (ulimits, ports, devices...) lands in CANNOT_EXPRESS by default.
    assert set(Profile.model_fields) - NOT_SETTINGS == set(SETTINGS)


def test_a_setting_no_one_spelled_is_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    # The keys issue 12 added after this renderer was written are refused, none dropped...
    for late in ("ports", "devices", "restart", "userns", "apparmor", "selinux"):
        assert late in S.CANNOT_EXPRESS, late
    # ... and so is one added tomorrow: the Swarm renderer, rebuilt, refuses it.
    import importlib

    from engine.render import walk as W

    monkeypatch.setattr(W, "SETTINGS", (*W.SETTINGS, "future_key"))
    try:
        rebuilt = importlib.reload(S)
        assert "future_key" in rebuilt.CANNOT_EXPRESS
        assert "not spelled by the Swarm renderer" in rebuilt.CANNOT_EXPRESS["future_key"]
    finally:
        monkeypatch.undo()
        importlib.reload(S)
    assert "future_key" not in S.CANNOT_EXPRESS


@pytest.fixture(scope="module")
def policy():  # type: ignore[no-untyped-def]
    return load_policy([POLICIES])


def test_the_spec_spells_the_profile(policy) -> None:  # type: ignore[no-untyped-def]
    walked = walk(policy.profiles["shard"], Path("."), "swarm.toml", env={"SHARD_INDEX": "0"})
    spec = S.service_spec(walked, "job-0", 1, "job-net")
    container = spec["TaskTemplate"]["ContainerSpec"]
    assert container["User"] == "1001:1001" and container["ReadOnly"] is True
    assert container["CapabilityDrop"] == ["ALL"] and "SHARD_INDEX=0" in container["Env"]
    assert container["Mounts"] == [
        {"Type": "tmpfs", "Target": "/tmp", "TmpfsOptions": {"SizeBytes": 16 << 20, "Mode": 0o1777}}
    ]
    assert spec["TaskTemplate"]["Resources"]["Limits"] == {
        "NanoCPUs": 500_000_000,
        "MemoryBytes": 256 << 20,
        "Pids": 128,
    }
    assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == "none"
    assert spec["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    assert spec["Labels"]["io.container-policy.profile"] == "shard"


def test_everything_refused_is_named_at_once(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(
        'version = 1\n[profiles.p]\nimage = "app:1"\nprivileged = true\npid = "host"\n'
        'seccomp = "unconfined"\ntmpfs."/t" = { size = "1m", options = ["noexec"] }\n'
        'env = { X = "{{.Node.ID}}" }\n'
    )
    profile = load_policy([tmp_path]).profiles["p"]
    with pytest.raises(Unexpressible) as caught:
        S.service_spec(walk(profile, tmp_path, "p.toml"), "x", 1, None)
    assert [f for f, _ in caught.value.refused] == [
        "env",
        "network",
        "pid",
        "privileged",
        "seccomp",
        "tmpfs",
    ]
    assert "API 1.44" in caught.value.message and "template" in caught.value.message


def test_the_stored_spec_comparison_names_a_dropped_or_changed_field() -> None:
    sent = {"TaskTemplate": {"ContainerSpec": {"ReadOnly": True, "CapabilityDrop": ["ALL"]}}}
    stored = {"TaskTemplate": {"ContainerSpec": {"CapabilityDrop": ["NET_RAW"], "Init": False}}}
    drifts = stored_spec_drift(sent, stored)
    assert [(d.field, d.expected, d.actual) for d in drifts] == [
        ("TaskTemplate.ContainerSpec.ReadOnly", True, None),
        ("TaskTemplate.ContainerSpec.CapabilityDrop[0]", "ALL", "NET_RAW"),
    ]
    assert (
        stored_spec_drift(
            sent,
            {
                **stored,
                "TaskTemplate": {
                    "ContainerSpec": {**sent["TaskTemplate"]["ContainerSpec"], "Init": False}
                },
            },
        )
        == []
    )


def test_what_a_2010_manager_adds_by_itself_is_not_drift_and_a_later_key_is() -> None:
    from engine.launcher.swarm_verify import spec_drift

    # Recorded from a 20.10 manager: the spec stored for one that was sent without Isolation,
    # ForceUpdate, Runtime (the manager's own defaults).
    stored = json.loads((Path(__file__).parent / "data" / "stored-spec-20.10.json").read_text())
    sent = json.loads(json.dumps(stored))
    for key in ("Isolation",):
        del sent["TaskTemplate"]["ContainerSpec"][key]
    for key in ("ForceUpdate", "Runtime"):
        del sent["TaskTemplate"][key]
    assert spec_drift(sent, stored) == []
    stored["TaskTemplate"]["ContainerSpec"]["CapabilityAdd"] = ["CAP_SYS_ADMIN"]
    stored["TaskTemplate"]["ContainerSpec"]["Isolation"] = "hyperv"
    assert [(d.field, d.actual) for d in spec_drift(sent, stored)] == [
        ("TaskTemplate.ContainerSpec.Isolation", "hyperv"),
        ("TaskTemplate.ContainerSpec.CapabilityAdd", ["CAP_SYS_ADMIN"]),
    ]
