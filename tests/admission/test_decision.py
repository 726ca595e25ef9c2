"""The judge on request bodies recorded from a real engine (fixtures/, captured from Docker 20.10
with the docker CLI and `policy run`), and on the tricks that make a plugin and the engine read
one body two ways."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine import labels as L
from engine.admission.decision import Judge, Mode
from engine.admission.decision_log import DecisionLog
from engine.admission.install import plan
from engine.admission.policy_holder import PolicyHolder
from engine.admission.protocol import parse_request
from engine.admission.server import AdmissionServer
from policy.errors import UnusablePolicy
from policy.loader import Policy, load_policy
from tests.documents import RECORDED_PROJECT
from tests.helpers import ROOT

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def policy() -> Policy:
    # The recorded `policy run` was launched from a checkout at /work/main: this checkout's
    # policies with that project, wherever this checkout is (a fresh clone in CI is elsewhere).
    return load_policy([ROOT / "policies"], RECORDED_PROJECT)


def recorded(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return document


def with_body(document: dict[str, Any], body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {**document, "RequestBody": base64.b64encode(raw).decode()}


def body_of(document: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(document["RequestBody"]))


def policy_run(policy: Policy) -> dict[str, Any]:
    """The recorded `policy run isolation` create, stamped with today's digest of `isolation`
    (the recording keeps the digest of the day it was made) and the ulimits it sends now (the
    recording predates the `ulimits` key)."""
    document = recorded("policy_run_isolation")
    body = body_of(document)
    body["Labels"][L.DIGEST] = policy.digest("isolation")
    body["HostConfig"]["Ulimits"] = [
        {"Name": name, "Soft": u.soft, "Hard": u.hard}
        for name, u in sorted(policy.profiles["isolation"].ulimits.items())
    ]
    return with_body(document, body)


def judge(policy: Policy, document: dict[str, Any], default: str | None = None) -> Any:
    return Judge(policy, default).judge(parse_request(document))


def test_the_recorded_policy_run_create_is_allowed(policy: Policy) -> None:
    decision = judge(policy, policy_run(policy))
    assert decision.allowed, decision.why
    assert decision.profile == "isolation"


def test_an_unlabelled_create_is_refused_unless_a_default_profile_is_named(policy: Policy) -> None:
    plain = recorded("docker_run_plain")
    assert "no profile" in judge(policy, plain).why
    decision = judge(policy, plain, default="isolation")
    assert not decision.allowed
    assert decision.why.startswith("the request differs from profile 'isolation'")
    for field in ("user", "read_only", "network", "capabilities", "memory", "mounts"):
        assert f"{field}: profile has" in decision.why


def test_the_policy_run_body_without_labels_matches_the_default_profile(policy: Policy) -> None:
    body = body_of(policy_run(policy))
    body["Labels"] = {}
    assert judge(policy, with_body(recorded("policy_run_isolation"), body), "isolation").allowed


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["HostConfig"].update(Privileged=True), "privileged"),
        (lambda b: b["HostConfig"].update(CapAdd=["SYS_ADMIN"]), "capabilities"),
        (lambda b: b["HostConfig"].update(PidMode="host"), "pid"),
        (lambda b: b["HostConfig"].update(Memory=2 * 1024**3), "memory"),
        (lambda b: b["HostConfig"]["Mounts"][0].update(ReadOnly=False), "mounts"),
        (lambda b: b.update(User="0"), "user"),
        (lambda b: b["HostConfig"]["Ulimits"][1].update(Hard=-1, Soft=-1), "ulimits"),
        # Spelled in lower case: the engine reads nested fields case-insensitively too.
        (lambda b: b["HostConfig"].update(RestartPolicy={"name": "always"}), "restart"),
        (lambda b: b["HostConfig"].update(UsernsMode="host"), "userns"),
        (lambda b: b["HostConfig"].update(Sysctls={"net.ipv4.ip_forward": "1"}), "sysctls"),
    ],
    ids=[
        "privileged",
        "cap-add",
        "pid-host",
        "memory",
        "writable-source",
        "root",
        "ulimits",
        "restart-lowercase",
        "userns-host",
        "sysctls",
    ],
)
def test_a_labelled_create_with_one_other_setting_names_that_field(
    policy: Policy, change: Any, field: str
) -> None:
    body = body_of(policy_run(policy))
    change(body)
    decision = judge(policy, with_body(recorded("policy_run_isolation"), body))
    assert not decision.allowed
    assert "in 1 field(s)" in decision.why or field == "privileged"
    assert f"{field}: profile has" in decision.why


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # Go matches fields case-insensitively and the last key wins.
        (lambda b: b["HostConfig"].update(privileged=True), "twice in different cases"),
        (lambda b: b["HostConfig"].update({"Privi\u017fleged": True}), "not ASCII"),
        # The engine reads HostConfig fields at the top level of the body too.
        (lambda b: b.update(Privileged=True), "not a container config field"),
        (lambda b: b["HostConfig"].update(CgroupnsMode="host"), "CgroupnsMode".lower()),
        (lambda b: b["HostConfig"].update(MaskedPaths=[]), "maskedpaths"),
        (lambda b: b["HostConfig"].update(Capabilities=["CAP_SYS_ADMIN"]), "capabilities"),
        (lambda b: b["HostConfig"].update(SecurityOpt=["apparmor=unconfined"]), "apparmor"),
        (lambda b: b["HostConfig"].update(Binds=["/:/host:z"]), "option 'z'"),
        (lambda b: b.update(Env=["A=1", "A=2"]), "twice"),
        (
            lambda b: b.update(NetworkingConfig={"EndpointsConfig": {"bridge": {}}}),
            "connects networks bridge",
        ),
    ],
    ids=[
        "case-duplicate", "non-ascii-key", "top-level-hostconfig-field", "cgroupns-host",
        "unmasked-paths", "capabilities-field", "apparmor", "relabel-bind", "env-twice",
        "extra-network",
    ],
)  # fmt: skip
def test_what_the_engine_could_read_otherwise_is_refused(
    policy: Policy, change: Any, reason: str
) -> None:
    body = body_of(policy_run(policy))
    change(body)
    decision = judge(policy, with_body(recorded("policy_run_isolation"), body))
    assert not decision.allowed
    assert reason in decision.why


@pytest.mark.parametrize(
    "body",
    [None, b"", b"{", b'{"Image": NaN}', b'{"A": 1, "A": 2}', b"[]", b"\xff"],
    ids=["no-body", "empty", "truncated", "nan", "duplicate-key", "not-an-object", "binary"],
)
def test_an_unreadable_create_is_refused_with_a_reason(policy: Policy, body: bytes | None) -> None:
    document = dict(recorded("policy_run_isolation"))
    document.pop("RequestBody")
    if body is not None:
        document = with_body(document, body)
    decision = judge(policy, document)
    assert not decision.allowed
    assert decision.why


@pytest.mark.parametrize(
    ("uri", "judged"),
    [
        ("/v1.41/containers/create", True),
        ("/containers/create", True),
        ("/v1.41/containers/%63reate", True),  # the engine's router decodes the path
        ("/v1.41//containers/./create", True),
        ("/v1.41/containers/json", False),
    ],
)
def test_the_path_is_read_as_the_engine_routes_it(policy: Policy, uri: str, judged: bool) -> None:
    document = {**recorded("docker_run_plain"), "RequestUri": uri}
    assert judge(policy, document).allowed is not judged


def test_old_api_versions_are_refused_for_changes(policy: Policy) -> None:
    start = {**recorded("docker_start"), "RequestUri": "/v1.23/containers/c1/start"}
    assert "before 1.24" in judge(policy, start).why
    assert judge(policy, {**recorded("ping"), "RequestUri": "/v1.12/_ping"}).allowed


@pytest.mark.parametrize(
    ("name", "allowed", "reason"),
    [
        ("docker_update_memory", False, "memory=2147483648"),
        ("docker_exec_privileged", False, "privileged exec"),
        ("docker_commit", False, "commit is refused"),
        ("docker_start", True, ""),
        ("docker_inspect", True, ""),
        ("ping", True, ""),
    ],
)
def test_requests_on_running_containers(
    policy: Policy, name: str, allowed: bool, reason: str
) -> None:
    decision = judge(policy, recorded(name))
    assert decision.allowed is allowed
    assert reason in decision.why


@pytest.mark.parametrize("user", ["0", "root", "0:0", "1001:1001", "nobody"])
def test_an_exec_as_a_named_user_is_refused(policy: Policy, user: str) -> None:
    body = {"User": user, "Privileged": False, "Cmd": ["true"]}
    decision = judge(policy, with_body(recorded("docker_exec_privileged"), body))
    assert not decision.allowed
    assert f"an exec as user '{user}' is refused" in decision.why


def test_an_exec_as_the_containers_own_user_is_allowed(policy: Policy) -> None:
    body = {"User": "", "Privileged": False, "Cmd": ["true"]}  # as `docker exec` sends it
    assert judge(policy, with_body(recorded("docker_exec_privileged"), body)).allowed


def test_an_update_of_the_restart_policy_alone_is_allowed(policy: Policy) -> None:
    body = {"RestartPolicy": {"Name": "always"}, "MemorySwappiness": None}
    assert judge(policy, with_body(recorded("docker_update_memory"), body)).allowed


def test_an_internal_error_is_a_refusal(policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr("engine.admission.decision.read_create", broken)
    decision = judge(policy, policy_run(policy))
    assert not decision.allowed
    assert decision.why == "internal error: ZeroDivisionError: boom"


def _server(tmp_path: Path, mode: Mode, holder: PolicyHolder) -> AdmissionServer:
    return AdmissionServer(tmp_path / "p.sock", holder, mode, DecisionLog(tmp_path / "log.jsonl"))


def test_audit_mode_allows_and_logs_would_refuse(tmp_path: Path) -> None:
    holder = PolicyHolder([ROOT / "policies"], ROOT, None, lambda *_: None)
    server = _server(tmp_path, Mode.AUDIT, holder)
    try:
        reply = server.authorize(json.dumps(recorded("docker_create_privileged")).encode())
        garbage = server.authorize(b"not json")
    finally:
        server.close()
    assert reply["Allow"] is True
    assert reply["Msg"].startswith("container-policy: would refuse: ")
    assert garbage["Allow"] is True  # audit mode: recorded, not refused
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [line["verdict"] for line in lines] == ["would-refuse", "would-refuse"]
    assert set(lines[0]) >= {"time", "user", "method", "path", "profile", "allowed", "why"}
    assert not (tmp_path / "p.sock").exists()


def test_enforce_mode_refuses_an_unreadable_plugin_call(tmp_path: Path) -> None:
    holder = PolicyHolder([ROOT / "policies"], ROOT, None, lambda *_: None)
    server = _server(tmp_path, Mode.ENFORCE, holder)
    try:
        reply = server.authorize(b'{"RequestMethod": 5}')
    finally:
        server.close()
    assert reply["Allow"] is False
    assert reply["Msg"].startswith("container-policy: refused: ")


def test_a_failed_reload_keeps_the_last_good_policy(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", policies)
    good = (policies / "base.toml").read_text()
    events: list[tuple[str, str]] = []
    holder = PolicyHolder([policies], ROOT, None, lambda *e: events.append(e))
    first = holder.judge
    (policies / "base.toml").write_text(good + "\n[profiles.broken]\nimage = 5\n")
    assert holder.check() is False
    assert holder.judge is first
    assert events[-1][0] == "reload-failed"
    assert "keeping the last good policy" in events[-1][1]
    (policies / "base.toml").write_text(good.replace('memory = "1g"', 'memory = "2g"', 1))
    assert holder.check() is True
    assert holder.judge is not first
    assert events[-1][0] == "reloaded"


def test_a_policy_that_does_not_validate_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text(
        'version = 1\n[profiles.x]\nimage = "a"\nprivileged = true\n'
    )
    with pytest.raises(UnusablePolicy):
        PolicyHolder([tmp_path], tmp_path, None, lambda *_: None)


def test_install_and_uninstall_are_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "daemon.json"
    path.write_text('{"log-level": "info"}')
    added = plan(path, "cp", install=True)
    assert added.after == {"log-level": "info", "authorization-plugins": ["cp"]}
    path.write_text(added.text)
    assert not plan(path, "cp", install=True).changed
    removed = plan(path, "cp", install=False)
    assert removed.after == {"log-level": "info"}
    path.write_text(removed.text)
    assert not plan(path, "cp", install=False).changed
