"""Unit tests of observing a container, without an engine: recorded inspect documents
(tests/data/inspect, see tests/data/README.md) through `observed_settings`, `expected_settings`,
`diff`, `profile_from_inspect`, `capture_toml` and `Auditor.audit_container`; and `--deep`'s
reading of /proc and the cgroup filesystem from fake trees (cgroup v1, v2 and the hybrid layout).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import pytest

from engine import labels as L
from engine.audit import as_profile
from engine.audit.auditor import Auditor
from engine.audit.deep import compare_kernel, kernel_view
from engine.audit.drift import diff
from engine.audit.findings import Kind
from engine.audit.observe import parse_tmpfs_options
from engine.render.settings import ALL_CAPABILITIES
from policy import units
from policy.canonical import digest
from policy.diagnostics import Severity
from policy.errors import UsageError
from policy.loader import Policy, load_policy
from tests.documents import (
    RECORDED_PROJECT,
    capture_toml,
    expected_settings,
    image_config,
    inspect_doc,
    observed_settings,
    profile_from_inspect,
    recorded,
)

MIB = 1 << 20
# Fixture `policy` (tests/engine/conftest.py): the policy the documents were recorded under.


@pytest.fixture(scope="module")
def image() -> dict[str, Any]:
    config: dict[str, Any] = recorded("image-simple-test-isolation")["Config"]
    return config


# -- observed_settings ----------------------------------------------------------------------------


def test_launched_container_in_canonical_form(image: dict[str, Any]) -> None:
    s = observed_settings(recorded("isolation-launched"), image)
    assert s["image"] == "simple-test-isolation:latest"
    assert s["user"] == "1001:1001"
    assert s["read_only"] is True and s["privileged"] is False
    assert (s["network"], s["pid"], s["ipc"], s["uts"]) == ("none", "private", "private", "private")
    assert s["capabilities"] == []
    assert s["no_new_privileges"] is True and s["seccomp"] == "default"
    assert (s["pids_limit"], s["memory"], s["cpus"]) == (256, 1024 * MIB, 2.0)
    assert s["tmpfs"] == {
        "/tmp": {"size": 100 * MIB, "mode": "1777", "options": ["nodev", "noexec", "nosuid"]}
    }
    assert s["mounts"] == [
        {
            "type": "bind",
            "source": "/work/main/test-results",
            "target": "/results",
            "writable": True,
        },
        {"type": "bind", "source": "/work/main", "target": "/src", "writable": False},
    ]
    # The reserved labels and the image's own env and workdir are not the container's additions.
    assert s["env"] == {} and s["labels"] == {}
    assert s["workdir"] == "/src"
    assert (s["healthcheck"], s["devices"], s["ports"]) == (None, [], [])


def test_custom_seccomp_is_a_content_hash(policy: Policy, image: dict[str, Any]) -> None:
    s = observed_settings(recorded("jit-launched"), image)
    assert s["seccomp"].startswith("sha256:")
    assert s["seccomp"] == policy.profiles["jit"].seccomp.canonical
    # The same JSON given to the docker CLI as a path hashes the same.
    assert observed_settings(recorded("unmanaged-mixed"), image)["seccomp"] == s["seccomp"]


def test_privileged_means_every_capability_and_no_seccomp(image: dict[str, Any]) -> None:
    s = observed_settings(recorded("unmanaged-privileged"), image)
    assert s["privileged"] is True
    assert s["capabilities"] == ALL_CAPABILITIES
    assert s["seccomp"] == "unconfined"
    assert (s["network"], s["pid"]) == ("host", "host")
    assert (s["memory"], s["cpus"], s["pids_limit"]) == (None, None, None)
    assert s["mounts"] == [
        {
            "type": "bind",
            "source": "/var/run/docker.sock",
            "target": "/var/run/docker.sock",
            "writable": True,
        }
    ]


def test_docker_cli_flags_in_canonical_form(image: dict[str, Any]) -> None:
    """--cpus (NanoCpus), --cap-add/--cap-drop over the default set, --tmpfs and --mount tmpfs,
    devices, published ports, a shell healthcheck, env and labels net of the image's."""
    s = observed_settings(recorded("unmanaged-mixed"), image)
    defaults = units.effective_capabilities((), ())
    assert s["capabilities"] == sorted((defaults - {"CHOWN"}) | {"NET_ADMIN"})
    assert (s["cpus"], s["memory"], s["pids_limit"]) == (1.5, 256 * MIB, 50)
    assert s["no_new_privileges"] is True  # written as no-new-privileges=true
    assert s["tmpfs"] == {
        "/cache": {"size": MIB, "mode": "755", "options": []},
        "/tmp": {"size": 10 * MIB, "mode": "700", "options": ["noexec"]},
    }
    assert s["mounts"] == [
        {"type": "bind", "source": "/work/main/docs", "target": "/docs", "writable": False}
    ]
    assert s["devices"] == ["/dev/null:/dev/xnull:rwm"]
    assert s["ports"] == ["127.0.0.1::8080/tcp"]  # -p 127.0.0.1::8080: the engine picks the port
    assert s["healthcheck"] == {"test": ["CMD-SHELL", "true"], "interval": 5.0, "retries": 2}
    assert s["env"] == {"EXTRA": "1"}  # PATH=/bin is the image's own
    assert s["labels"] == {"team": "ci"}
    assert (s["user"], s["workdir"], s["ipc"]) == ("1001", "/tmp", "private")  # shareable


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("size=100m,mode=1777,nosuid", {"size": 100 * MIB, "mode": "1777", "options": ["nosuid"]}),
        ("noexec,nodev,noexec", {"size": None, "mode": None, "options": ["nodev", "noexec"]}),
        ("mode=0700", {"size": None, "mode": "700", "options": []}),
        ("size=lots", {"size": "lots", "mode": None, "options": []}),
        ("", {"size": None, "mode": None, "options": []}),
    ],
)
def test_tmpfs_options(text: str, parsed: dict[str, Any]) -> None:
    assert parse_tmpfs_options(text) == parsed


# -- expected_settings and diff -------------------------------------------------------------------


@pytest.mark.parametrize(("profile", "doc"), [("isolation", "isolation"), ("jit", "jit")])
def test_launched_container_matches_its_profile(
    profile: str, doc: str, policy: Policy, image: dict[str, Any]
) -> None:
    expected = expected_settings(policy.profiles[profile], policy.project, image)
    assert diff(expected, observed_settings(recorded(f"{doc}-launched"), image)) == []


def _mutated(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(recorded("isolation-launched"))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "field", "actual"),
    [
        (("HostConfig", "Memory"), 512 * MIB, "memory", 512 * MIB),
        (("HostConfig", "Memory"), 0, "memory", None),
        (("HostConfig", "PidsLimit"), -1, "pids_limit", None),
        (("HostConfig", "CpuQuota"), 50000, "cpus", 0.5),
        (("HostConfig", "CapAdd"), ["cap_net_raw"], "capabilities", ["NET_RAW"]),
        (("HostConfig", "ReadonlyRootfs"), False, "read_only", False),
        (("HostConfig", "NetworkMode"), "default", "network", "bridge"),
        (("HostConfig", "PidMode"), "host", "pid", "host"),
        (("HostConfig", "IpcMode"), "shareable", None, None),  # a private namespace still
        (("HostConfig", "SecurityOpt"), [], "no_new_privileges", False),
        (("HostConfig", "Tmpfs"), {}, "tmpfs", {}),
        (("Config", "User"), "0", "user", "0"),
        (("Config", "WorkingDir"), "/", "workdir", "/"),
        (("Config", "Env"), ["PATH=/bin", "X=1"], "env", {"X": "1"}),
        (("Config", "Image"), "other:tag", "image", "other:tag"),
    ],
)
def test_one_changed_field_is_one_drift(
    path: tuple[str, ...],
    value: Any,
    field: str | None,
    actual: Any,
    policy: Policy,
    image: dict[str, Any],
) -> None:
    expected = expected_settings(policy.profiles["isolation"], policy.project, image)
    drifts = diff(expected, observed_settings(_mutated(path, value), image))
    if field is None:
        assert drifts == []
    else:
        assert [(d.field, d.actual) for d in drifts] == [(field, actual)]
        assert drifts[0].expected == expected[field]


def test_seccomp_unconfined_is_a_drift(policy: Policy, image: dict[str, Any]) -> None:
    doc = _mutated(("HostConfig", "SecurityOpt"), ["no-new-privileges:true", "seccomp=unconfined"])
    expected = expected_settings(policy.profiles["isolation"], policy.project, image)
    assert [(d.field, d.actual) for d in diff(expected, observed_settings(doc, image))] == [
        ("seccomp", "unconfined")
    ]


def test_an_inline_seccomp_that_is_not_json_is_invalid(image: dict[str, Any]) -> None:
    doc = _mutated(("HostConfig", "SecurityOpt"), ["seccomp={not json"])
    assert observed_settings(doc, image)["seccomp"] == "invalid"


# -- Auditor.audit_container on recorded documents ------------------------------------------------


@pytest.mark.parametrize("doc", ["isolation-launched", "jit-launched"])
def test_recorded_launches_audit_clean(doc: str, policy: Policy, image: dict[str, Any]) -> None:
    report = Auditor(policy).audit_container(
        "unix:///test.sock", inspect_doc(recorded(doc)), image_config(image)
    )
    assert report.profile == doc.split("-")[0]
    assert report.findings == []


def test_a_drift_finding_says_where_the_key_is_declared(
    policy: Policy, image: dict[str, Any]
) -> None:
    doc = _mutated(("HostConfig", "Memory"), 512 * MIB)
    report = Auditor(policy).audit_container("h", inspect_doc(doc), image_config(image))
    [finding] = report.findings
    assert (finding.kind, finding.rule, finding.severity) == (Kind.DRIFT, "drift", Severity.ERROR)
    assert (finding.field, finding.expected, finding.actual) == ("memory", 1024 * MIB, 512 * MIB)
    assert finding.location is not None
    line = Path(finding.location.path).read_text().splitlines()[finding.location.line - 1]
    assert line.startswith("memory")
    assert (finding.host, finding.container, finding.profile) == ("h", doc["Id"], "isolation")


def test_worker_shard_env_is_accepted_only_when_numeric(
    policy: Policy, image: dict[str, Any]
) -> None:
    auditor = Auditor(policy)
    ok = _mutated(("Config", "Env"), ["PATH=/bin", "SHARD_INDEX=1", "SHARD_COUNT=4"])
    assert auditor.audit_container("h", inspect_doc(ok), image_config(image)).findings == []
    bad = _mutated(("Config", "Env"), ["PATH=/bin", "SHARD_INDEX=x"])
    assert [
        f.field
        for f in auditor.audit_container("h", inspect_doc(bad), image_config(image)).findings
    ] == ["env"]


def test_an_older_digest_is_stale_not_drift(policy: Policy, image: dict[str, Any]) -> None:
    doc = _mutated(("HostConfig", "Memory"), 512 * MIB)
    doc["Config"]["Labels"][L.DIGEST] = "sha256:" + "0" * 64
    [finding] = Auditor(policy).audit_container("h", inspect_doc(doc), image_config(image)).findings
    assert (finding.kind, finding.severity) == (Kind.STALE, Severity.WARNING)
    assert "memory" in finding.message


def test_an_unknown_profile_label(policy: Policy, image: dict[str, Any]) -> None:
    doc = copy.deepcopy(recorded("isolation-launched"))
    doc["Config"]["Labels"][L.PROFILE] = "retired"
    [finding] = Auditor(policy).audit_container("h", inspect_doc(doc), image_config(image)).findings
    assert (finding.kind, finding.severity) == (Kind.UNKNOWN_PROFILE, Severity.ERROR)
    assert "retired" in finding.message


def test_recorded_digest_labels_match_the_recorded_policy(policy: Policy) -> None:
    for name in ("isolation", "jit"):
        labels = recorded(f"{name}-launched")["Config"]["Labels"]
        assert labels[L.DIGEST] == digest(policy.profiles[name])


@pytest.mark.parametrize(
    ("doc", "rules"),
    [
        (
            "unmanaged-privileged",
            {
                "privileged",
                "cap-drop-all",
                "seccomp-unconfined",
                "no-new-privileges",
                "host-network",
                "host-pid",
                "writable-root",
                "no-memory-limit",
                "no-cpu-limit",
                "no-pids-limit",
                "docker-socket",
                "no-healthcheck",  # a note: the mixed one runs a CMD-SHELL check
                "guardrail/memory-ceiling",
                "guardrail/cpu-ceiling",
                "guardrail/networks",
            },
        ),
        (
            "unmanaged-mixed",
            {
                "cap-drop-all",
                "cap-add",
                "writable-root",
                "guardrail/ptrace-only",
                "published-port",
                "host-device",
            },
        ),
    ],
)
def test_unmanaged_containers_are_judged_by_the_rules(
    doc: str, rules: set[str], policy: Policy, image: dict[str, Any]
) -> None:
    findings = (
        Auditor(policy)
        .audit_container("h", inspect_doc(recorded(doc)), image_config(image))
        .findings
    )
    assert {f.rule for f in findings} == rules
    assert len(findings) == len(rules)
    assert all(f.kind is Kind.UNMANAGED for f in findings)
    no_cpu = [f for f in findings if f.rule == "no-cpu-limit"]
    assert all(f.severity is Severity.WARNING for f in no_cpu)


# -- capture --------------------------------------------------------------------------------------


def test_capture_describes_the_container(image: dict[str, Any], tmp_path: Path) -> None:
    # It runs under a custom seccomp profile: capture refers to the file it goes in.
    text = capture_toml(recorded("unmanaged-mixed"), image, "mixed", "mixed.seccomp.json")
    assert text.startswith("# Captured from container ")
    doc = tomllib.loads(text)
    assert doc["version"] == 1
    body = doc["profiles"]["mixed"]
    assert body["memory"] == "256m" and body["cpus"] == 1.5 and body["pids_limit"] == 50
    assert body["cap_add"] == ["NET_ADMIN"] and body["cap_drop"] == ["CHOWN"]
    assert body["network"] == "bridge" and body["read_only"] is False
    assert body["tmpfs"]["/tmp"] == {"size": "10m", "mode": "700", "options": ["noexec"]}
    assert body["labels"] == {"team": "ci"} and body["env"] == {"EXTRA": "1"}
    # Loads as a policy, and describes the same settings.
    (tmp_path / "captured.toml").write_text(text)
    seccomp = as_profile.custom_seccomp_json(inspect_doc(recorded("unmanaged-mixed")))
    (tmp_path / "mixed.seccomp.json").write_text(seccomp or "")
    loaded = load_policy([tmp_path], RECORDED_PROJECT).profiles["mixed"]
    again = profile_from_inspect(recorded("unmanaged-mixed"), image, "mixed")
    for key in ("memory", "cpus", "pids_limit", "cap_add", "cap_drop", "network", "read_only"):
        assert getattr(loaded, key) == getattr(again, key), key


def test_capture_of_a_custom_seccomp_profile_writes_it_or_refuses(
    image: dict[str, Any], tmp_path: Path
) -> None:
    # Never written as something else: without a file to put the profile in, capture refuses.
    with pytest.raises(UsageError, match="custom seccomp profile"):
        capture_toml(recorded("jit-launched"), image, "jit")
    text = capture_toml(recorded("jit-launched"), image, "jit", "jit.seccomp.json")
    assert tomllib.loads(text)["profiles"]["jit"]["seccomp"] == "jit.seccomp.json"
    (tmp_path / "jit.toml").write_text(text)
    json_text = as_profile.custom_seccomp_json(inspect_doc(recorded("jit-launched")))
    assert json_text is not None
    (tmp_path / "jit.seccomp.json").write_text(json_text)
    loaded = load_policy([tmp_path], RECORDED_PROJECT).profiles["jit"]
    # The same profile, by its digest, as the container runs under.
    assert loaded.seccomp.canonical == observed_settings(recorded("jit-launched"), image)["seccomp"]
    assert loaded.seccomp.canonical.startswith("sha256:")


def test_capture_keeps_the_containers_own_health_check(image: dict[str, Any]) -> None:
    # `--health-cmd true --health-interval 5s --health-retries 2`, recorded: a CMD-SHELL check,
    # captured as what the engine runs for it (an exec array, as a profile declares one).
    body = tomllib.loads(capture_toml(recorded("unmanaged-mixed"), image, "m", "m.json"))
    assert body["profiles"]["m"]["healthcheck"] == {
        "test": ["/bin/sh", "-c", "true"],
        "interval": "5s",
        "retries": 2,
    }


def test_capture_leaves_the_images_own_health_check_to_the_image(image: dict[str, Any]) -> None:
    # The same check, but the image's: a captured profile without one keeps tracking the image.
    container = recorded("unmanaged-mixed")
    with_check = {**image, "Healthcheck": container["Config"]["Healthcheck"]}
    body = tomllib.loads(capture_toml(container, with_check, "m", "m.json"))["profiles"]["m"]
    assert "healthcheck" not in body
    # For the audit, though, the container runs a check: the image's.
    assert profile_from_inspect(container, with_check).healthcheck is not None


def test_capture_refuses_a_container_that_turned_its_images_check_off(
    image: dict[str, Any],
) -> None:
    container = copy.deepcopy(recorded("unmanaged-mixed"))
    with_check = {**image, "Healthcheck": container["Config"]["Healthcheck"]}
    container["Config"]["Healthcheck"] = {"Test": ["NONE"]}  # `--no-healthcheck`
    with pytest.raises(UsageError, match="turns off its image's health check"):
        capture_toml(container, with_check, "m", "m.json")


def test_capture_names_the_profile_after_the_container(image: dict[str, Any]) -> None:
    doc = tomllib.loads(capture_toml(recorded("unmanaged-privileged"), image))
    [(name, body)] = doc["profiles"].items()
    assert name == recorded("unmanaged-privileged")["Name"].lstrip("/")
    assert body["privileged"] is True and body["pid"] == "host"
    assert body["seccomp"] == "unconfined"


# -- deep: the kernel's view from fake /proc and cgroup trees -------------------------------------

CONTAINER = "c0ffee" * 10 + "abcd"
STATUS = """\
Name:\tsleep
Umask:\t0022
State:\tS (sleeping)
Uid:\t1001\t1001\t1001\t1001
Gid:\t1001\t1001\t1001\t1001
CapInh:\t0000000000000000
CapPrm:\t0000000000000000
CapEff:\t0000000000000000
CapBnd:\t0000000000000000
CapAmb:\t0000000000000000
NoNewPrivs:\t1
Seccomp:\t2
Seccomp_filters:\t1
"""
MOUNTINFO = """\
1500 1400 0:120 / / ro,relatime master:1 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1501 1500 0:121 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1502 1500 0:122 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1503 1500 0:123 / /tmp rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=102400k,mode=1777
1504 1500 8:1 /work/main /src ro,relatime - ext4 /dev/sda1 rw
1505 1500 0:124 / /sys/firmware ro,relatime - tmpfs tmpfs ro
"""
CGROUP_V1 = "\n".join(
    f"{i}:{c}:/docker/{CONTAINER}"
    for i, c in enumerate(
        ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids"], start=1
    )
)
CGROUP_HYBRID = CGROUP_V1 + f"\n9:name=systemd:/docker/{CONTAINER}\n0::/docker/{CONTAINER}\n"
CGROUP_V2 = f"0::/system.slice/docker-{CONTAINER}.scope\n"


def fake_proc(
    tmp_path: Path,
    cgroup: str,
    status: str = STATUS,
    mountinfo: str = MOUNTINFO,
    pid: int = 4242,
) -> tuple[Path, Path]:
    proc = tmp_path / "proc"
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "status").write_text(status)
    (proc / str(pid) / "mountinfo").write_text(mountinfo)
    (proc / str(pid) / "cgroup").write_text(cgroup)
    return proc, tmp_path / "cgroup"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def cgroup_v1_files(root: Path, cpu_dir: str = "cpu", memory: int = 1024 * MIB) -> None:
    base = f"docker/{CONTAINER}"
    write(root / "memory" / base / "memory.limit_in_bytes", f"{memory}\n")
    write(root / "pids" / base / "pids.max", "256\n")
    write(root / cpu_dir / base / "cpu.cfs_quota_us", "200000\n")
    write(root / cpu_dir / base / "cpu.cfs_period_us", "100000\n")


@pytest.mark.parametrize("cpu_dir", ["cpu", "cpu,cpuacct"])
@pytest.mark.parametrize("cgroup", [CGROUP_V1, CGROUP_HYBRID], ids=["v1", "hybrid"])
def test_kernel_view_cgroup_v1(tmp_path: Path, cgroup: str, cpu_dir: str) -> None:
    proc, root = fake_proc(tmp_path, cgroup)
    cgroup_v1_files(root, cpu_dir)
    view = kernel_view(4242, proc, root)
    assert view == {
        "uid": 1001,
        "gid": 1001,
        "no_new_privileges": True,
        "seccomp_filtered": True,
        "capabilities": [],
        "read_only": True,
        "tmpfs_sizes": {"/dev": 64 * MIB, "/tmp": 100 * MIB, "/sys/firmware": None},
        "tmpfs_read_only": {"/dev": False, "/tmp": False, "/sys/firmware": True},
        "memory": 1024 * MIB,
        "pids_limit": 256,
        "cpus": 2.0,
    }


def test_kernel_view_cgroup_v1_unlimited(tmp_path: Path) -> None:
    proc, root = fake_proc(tmp_path, CGROUP_V1)
    base = f"docker/{CONTAINER}"
    write(root / "memory" / base / "memory.limit_in_bytes", "9223372036854771712\n")
    write(root / "pids" / base / "pids.max", "max\n")
    write(root / "cpu" / base / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu" / base / "cpu.cfs_period_us", "100000\n")
    view = kernel_view(4242, proc, root)
    assert (view["memory"], view["pids_limit"], view["cpus"]) == (None, None, None)


def test_kernel_view_cgroup_v2(tmp_path: Path) -> None:
    proc, root = fake_proc(tmp_path, CGROUP_V2)
    base = root / "system.slice" / f"docker-{CONTAINER}.scope"
    write(base / "memory.max", "1073741824\n")
    write(base / "pids.max", "256\n")
    write(base / "cpu.max", "150000 100000\n")
    view = kernel_view(4242, proc, root)
    assert (view["memory"], view["pids_limit"], view["cpus"]) == (1024 * MIB, 256, 1.5)
    write(base / "memory.max", "max\n")
    write(base / "pids.max", "max\n")
    write(base / "cpu.max", "max 100000\n")
    view = kernel_view(4242, proc, root)
    assert (view["memory"], view["pids_limit"], view["cpus"]) == (None, None, None)


def test_kernel_view_of_a_root_process_with_capabilities(tmp_path: Path) -> None:
    status = (
        STATUS.replace("1001\t1001\t1001\t1001", "0\t0\t0\t0")
        .replace("CapBnd:\t0000000000000000", "CapBnd:\t00000000a80425fb")
        .replace("NoNewPrivs:\t1", "NoNewPrivs:\t0")
        .replace("Seccomp:\t2", "Seccomp:\t0")
    )
    mountinfo = MOUNTINFO.replace(" / / ro,relatime", " / / rw,relatime")
    proc, root = fake_proc(tmp_path, CGROUP_V1, status=status, mountinfo=mountinfo)
    view = kernel_view(4242, proc, root)
    assert (view["uid"], view["gid"]) == (0, 0)
    assert view["capabilities"] == sorted(units.ENGINE_DEFAULT_CAPABILITIES)
    assert view["no_new_privileges"] is False and view["seccomp_filtered"] is False
    assert view["read_only"] is False
    assert "memory" not in view  # no cgroup files: unknown, not "unlimited"


def test_kernel_view_of_a_vanished_process_is_empty(tmp_path: Path) -> None:
    assert kernel_view(999999, tmp_path / "proc", tmp_path / "cgroup") == {}


def test_compare_kernel(policy: Policy, image: dict[str, Any], tmp_path: Path) -> None:
    expected = expected_settings(policy.profiles["isolation"], policy.project, image)
    proc, root = fake_proc(tmp_path, CGROUP_V1)
    cgroup_v1_files(root)
    view = kernel_view(4242, proc, root)
    assert compare_kernel(expected, view) == []

    changed = {
        **view,
        "uid": 0,
        "memory": 256 * MIB,
        "capabilities": ["NET_RAW"],
        "read_only": False,
        "seccomp_filtered": False,
        "tmpfs_sizes": {"/tmp": 50 * MIB},
    }
    assert compare_kernel(expected, changed) == [
        ("uid", 1001, 0),
        ("seccomp_filtered", True, False),
        ("capabilities", [], ["NET_RAW"]),
        ("read_only", True, False),
        ("memory", 1024 * MIB, 256 * MIB),
        ("tmpfs /tmp size", 100 * MIB, 50 * MIB),
    ]
    assert compare_kernel(expected, {**view, "tmpfs_sizes": {}}) == [
        ("tmpfs /tmp", 100 * MIB, "not mounted")
    ]
    assert compare_kernel(expected, {**view, "gid": 0}) == [("gid", 1001, 0)]


def test_compare_kernel_with_nothing_known_claims_nothing(
    policy: Policy, image: dict[str, Any]
) -> None:
    expected = expected_settings(policy.profiles["isolation"], policy.project, image)
    assert compare_kernel(expected, {}) == []


def test_capture_writes_the_ulimits_back(image: dict[str, Any], tmp_path: Path) -> None:
    doc = copy.deepcopy(recorded("isolation-launched"))
    doc["HostConfig"]["Ulimits"] = [
        {"Name": "nproc", "Soft": 512, "Hard": 1024},
        {"Name": "nofile", "Soft": 4096, "Hard": 4096},
        {"Name": "core", "Soft": -1, "Hard": -1},
    ]
    text = capture_toml(doc, image, "limited")
    body = tomllib.loads(text)["profiles"]["limited"]
    assert body["ulimits"] == {
        "core": "unlimited",
        "nofile": 4096,
        "nproc": {"soft": 512, "hard": 1024},
    }
    (tmp_path / "captured.toml").write_text(text)
    loaded = load_policy([tmp_path], RECORDED_PROJECT).profiles["limited"]
    assert loaded.ulimits == profile_from_inspect(doc, image, "limited").ulimits
    assert observed_settings(doc, image)["ulimits"]["nproc"] == {"soft": 512, "hard": 1024}


# /proc/<pid>/limits of a container launched with --ulimit nofile=1024:2048 --ulimit nproc=300,
# as this engine's kernel printed it.
PROC_LIMITS = """\
Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max file size             unlimited            unlimited            bytes
Max data size             unlimited            unlimited            bytes
Max stack size            8388608              unlimited            bytes
Max core file size        0                    unlimited            bytes
Max resident set          unlimited            unlimited            bytes
Max processes             300                  300                  processes
Max open files            1024                 2048                 files
Max locked memory         8388608              8388608              bytes
Max address space         unlimited            unlimited            bytes
Max file locks            unlimited            unlimited            locks
Max pending signals       96363                96363                signals
Max msgqueue size         819200               819200               bytes
Max nice priority         0                    0
Max realtime priority     0                    0
Max realtime timeout      unlimited            unlimited            us
"""


def test_kernel_view_reads_the_ulimits_and_compares_only_the_declared(tmp_path: Path) -> None:
    proc, root = fake_proc(tmp_path, CGROUP_V1)
    cgroup_v1_files(root)
    write(proc / "4242" / "limits", PROC_LIMITS)
    view = kernel_view(4242, proc, root)
    assert len(view["ulimits"]) == 16
    assert view["ulimits"]["nofile"] == {"soft": 1024, "hard": 2048}
    assert view["ulimits"]["core"] == {"soft": 0, "hard": -1}
    assert view["ulimits"]["nice"] == {"soft": 0, "hard": 0}
    expected = {
        "no_new_privileges": True, "seccomp": "default", "capabilities": [], "read_only": True,
        "memory": 1024 * MIB, "pids_limit": 256, "cpus": 2.0,
        "ulimits": {"nofile": {"soft": 1024, "hard": 4096}, "nproc": {"soft": 300, "hard": 300}},
    }  # fmt: skip
    assert compare_kernel(expected, view) == [
        ("ulimits nofile", {"soft": 1024, "hard": 4096}, {"soft": 1024, "hard": 2048})
    ]
