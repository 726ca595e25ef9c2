"""`policy render --as kubernetes`: every manifest strict-valid for each Kubernetes version the
README claims, every shipped profile refused with the reasons, the example cluster policy
rendered at the level it claims, and the Pod Security Standards controls named as
pod-security-admission names them. Offline: kubernetes-validate ships the schemas."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from engine.render.interface import Unexpressible, render
from engine.render.kubernetes import KubernetesJob, kubernetes_manifests
from engine.render.pss import failures
from engine.render.walk import walk
from policy.loader import Policy, load_policy
from tests.helpers import POLICIES, ROOT, cli

# The versions README.md claims (Kubernetes section); each validated in strict mode.
VERSIONS = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0", "1.34.0", "1.35.0"]
CLUSTER = ROOT / "examples" / "kubernetes" / "policies"


def strict_valid(manifest: dict[str, Any]) -> None:
    for version in VERSIONS:
        kubernetes_validate.validate(manifest, version, strict=True)


def rendered(policy: Policy, name: str, pss: str | None = None) -> list[dict[str, Any]]:
    profile = policy.profiles[name]
    w = walk(profile, policy.project, "cluster.toml", command=("make", "test"))
    return kubernetes_manifests(w, pss)


@pytest.fixture(scope="module")
def cluster() -> Policy:
    return load_policy([CLUSTER])


def test_the_example_profiles_render_strict_valid_jobs_at_their_level(cluster: Policy) -> None:
    for name in ("isolation", "parallel", "jit"):
        manifests = rendered(cluster, name)
        for m in manifests:
            strict_valid(m)
        job, netpol = manifests
        assert failures(job, "restricted") == []
        assert job["kind"] == "Job" and netpol["kind"] == "NetworkPolicy"
        spec = job["spec"]
        assert spec["backoffLimit"] == 0
        assert spec["template"]["spec"]["restartPolicy"] == "Never"
        container = spec["template"]["spec"]["containers"][0]
        ctx = container["securityContext"]
        assert ctx["runAsUser"] == 1001 and ctx["runAsGroup"] == 1001 and ctx["runAsNonRoot"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert container["args"] == ["make", "test"]
        assert netpol["spec"]["podSelector"]["matchLabels"] == {"job-name": job["metadata"]["name"]}
        assert netpol["spec"]["policyTypes"] == ["Ingress", "Egress"]
    iso = rendered(cluster, "isolation")[0]
    assert iso["spec"]["activeDeadlineSeconds"] == 600
    pod = iso["spec"]["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits == {"memory": str(1 << 30), "cpu": "2"}
    assert {"name": "tmpfs-0", "emptyDir": {"medium": "Memory", "sizeLimit": str(100 << 20)}} in (
        pod["volumes"]
    )
    assert pod["containers"][0]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    jit = rendered(cluster, "jit")[0]["spec"]["template"]["spec"]["containers"][0]
    assert jit["securityContext"]["seccompProfile"] == {
        "type": "Localhost",
        "localhostProfile": "container-policy/test-runner.json",
    }


def test_full_is_refused_at_baseline_naming_the_control(cluster: Policy) -> None:
    with pytest.raises(Unexpressible) as caught:
        rendered(cluster, "full")
    assert caught.value.refused == [
        ("Pod Security Standards baseline: capabilities_baseline", "container test adds SYS_PTRACE")
    ]
    # Without a level to meet it renders, strict-valid, with the capability it declares.
    declared = cluster.profiles["full"].kubernetes
    assert declared is not None and declared.level == "baseline"
    profile = cluster.profiles["full"].model_copy(
        update={"kubernetes": declared.model_copy(update={"level": None})}
    )
    job = render(KubernetesJob(), walk(profile, cluster.project, "cluster.toml")).value[0]
    strict_valid(job)
    caps = job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"]
    assert caps == {"drop": ["ALL"], "add": ["SYS_PTRACE"]}


def test_every_shipped_profile_is_refused_with_its_reasons() -> None:
    policy = load_policy([POLICIES])
    for name, profile in policy.profiles.items():
        with pytest.raises(Unexpressible) as caught:
            render(KubernetesJob(), walk(profile, policy.project, "base.toml"))
        fields = {field for field, _ in caught.value.refused}
        # The project's bind mounts would be hostPath; pids and tmpfs options have no spelling.
        assert {"mounts", "pids_limit", "tmpfs"} <= fields, name
        assert ("network" in fields) == (profile.network == "none"), name
        assert ("seccomp" in fields) == (profile.seccomp.mode == "custom"), name


def test_the_cli_refuses_by_name_and_renders_nothing() -> None:
    code, out, err = cli("render", "isolation", "--as", "kubernetes", "--policies", str(POLICIES))
    assert code == 2 and out == ""
    assert "pids_limit: a pids limit is the kubelet's" in err
    assert 'kubernetes.network = "deny-all-networkpolicy"' in err
    assert "Traceback" not in err


def test_the_cli_renders_a_stream_that_validates(tmp_path: Path) -> None:
    code, out, err = cli(
        "render", "--all", "--as", "kubernetes", "--pss", "baseline", "--policies", str(CLUSTER)
    )
    assert code == 2 and "capabilities_baseline" in err  # full, with everything else
    code, out, err = cli(
        "render", "isolation", "jit", "--as", "kubernetes", "--pss", "restricted",
        "--policies", str(CLUSTER),
    )  # fmt: skip
    assert code == 0, err
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Job", "NetworkPolicy"] * 2
    for d in docs:
        strict_valid(d)


@pytest.mark.parametrize(
    ("change", "control"),
    [
        ({"user": "0:0"}, "runAsUser"),
        ({"no_new_privileges": False}, "allowPrivilegeEscalation"),
        ({"seccomp": "unconfined"}, "seccompProfile_baseline"),
        ({"cap_drop": []}, "capabilities_restricted"),
        ({"cap_add": ["NET_RAW"]}, "capabilities_baseline"),
        ({"pid": "host"}, "hostNamespaces"),
        ({"privileged": True}, "privileged"),
    ],
)
def test_a_job_failing_restricted_is_refused_naming_the_control(
    tmp_path: Path, change: dict[str, Any], control: str
) -> None:
    shutil.copytree(CLUSTER, tmp_path / "policies")
    lines = "".join(f"{k} = {_toml(v)}\n" for k, v in change.items())
    path = tmp_path / "policies" / "probe.toml"
    path.write_text(f'version = 1\n[profiles.probe]\nextends = "isolation"\n{lines}')
    policy = load_policy([tmp_path / "policies"])
    with pytest.raises(Unexpressible) as caught:
        rendered(policy, "probe", "restricted")
    assert control in {c.split(": ")[1] for c, _ in caught.value.refused}


def _toml(value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({"v": value})[4:].strip()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('kubernetes.network = "deny"', "deny-all-networkpolicy"),
        ('kubernetes.seccomp_localhost = "../etc/x.json"', "without '..'"),
        ('kubernetes.seccomp_localhost = "/abs.json"', "relative to the kubelet"),
        ('kubernetes.level = "strict"', "restricted"),
        ("kubernetes.nope = 1", "unknown key"),
        ('kubernetes.namespace = "Not_A_Name"', "a Kubernetes name"),
    ],
)
def test_a_bad_kubernetes_table_is_located(tmp_path: Path, table: str, message: str) -> None:
    (tmp_path / "p.toml").write_text(
        f'version = 1\n[profiles.probe]\nimage = "busybox:latest"\n{table}\n'
    )
    code, out, err = cli("validate", str(tmp_path))
    assert code == 1, err
    assert f"{tmp_path / 'p.toml'}:4:" in out and message in out, out
    assert "Traceback" not in out + err


def test_env_probe_labels_and_namespace_are_carried(tmp_path: Path) -> None:
    shutil.copytree(CLUSTER, tmp_path / "policies")
    (tmp_path / "policies" / "probe.toml").write_text(
        'version = 1\n[profiles.probe]\nextends = "isolation"\nenv = { CI = "1", LANG = "C" }\n'
        'labels = { team = "qa", "example.com/tier" = "1" }\n'
        'healthcheck = { test = ["test", "-f", "/tmp/ok"], interval = "5s", timeout = "2s", '
        'retries = 3, start_period = "10s" }\nkubernetes.namespace = "ci"\n'
    )
    policy = load_policy([tmp_path / "policies"])
    job, netpol = rendered(policy, "probe")
    strict_valid(job)
    strict_valid(netpol)
    assert job["metadata"]["namespace"] == netpol["metadata"]["namespace"] == "ci"
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "qa" and labels["example.com/tier"] == "1"
    assert labels["io.container-policy.profile"] == "probe"
    annotations = job["metadata"]["annotations"]
    assert annotations["io.container-policy.digest"] == policy.digest("probe")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == [{"name": "CI", "value": "1"}, {"name": "LANG", "value": "C"}]
    assert container["livenessProbe"] == {
        "exec": {"command": ["test", "-f", "/tmp/ok"]},
        "periodSeconds": 5,
        "timeoutSeconds": 2,
        "initialDelaySeconds": 10,
        "failureThreshold": 3,
    }
    assert container["workingDir"] == "/src"
    # A label Kubernetes would refuse is refused by name, not dropped or rewritten.
    (tmp_path / "policies" / "probe.toml").write_text(
        'version = 1\n[profiles.probe]\nextends = "isolation"\nlabels = { team = "q a" }\n'
    )
    with pytest.raises(Unexpressible) as caught:
        rendered(load_policy([tmp_path / "policies"]), "probe")
    assert caught.value.refused[0][0] == "labels" and "team" in caught.value.refused[0][1]


@pytest.mark.parametrize(
    ("pod", "level", "control"),
    [
        ({"volumes": [{"name": "v", "hostPath": {"path": "/"}}]}, "baseline", "hostPathVolumes"),
        ({"volumes": [{"name": "v", "nfs": {}}]}, "restricted", "restrictedVolumes"),
        ({"hostNetwork": True}, "baseline", "hostNamespaces"),
        ({"ports": [{"containerPort": 80, "hostPort": 80}]}, "baseline", "hostPorts"),
        ({"securityContext": {"runAsNonRoot": False}}, "restricted", "runAsNonRoot"),
    ],
)
def test_each_control_fails_the_pod_it_describes(
    pod: dict[str, Any], level: str, control: str
) -> None:
    container: dict[str, Any] = {
        "name": "test",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if "ports" in pod:
        container["ports"] = pod.pop("ports")
    if "securityContext" in pod:
        del container["securityContext"]["runAsNonRoot"]
    spec = {"containers": [container], **pod}
    job = {"spec": {"template": {"spec": spec}}}
    assert [c for c, _ in failures(job, level)] == [control]
    bare = {k: v for k, v in container.items() if k != "ports"}
    clean = {"spec": {"template": {"spec": {"containers": [bare]}}}}
    if "securityContext" not in pod:
        assert failures(clean, "restricted") == []


def test_the_shipped_full_is_told_that_ptrace_fails_baseline_too() -> None:
    policy = load_policy([POLICIES])
    for name in ("full", "intensive"):
        w = walk(policy.profiles[name], policy.project, "base.toml")
        with pytest.raises(Unexpressible) as caught:
            kubernetes_manifests(w, "baseline")
        assert (
            "Pod Security Standards baseline: capabilities_baseline",
            "container test adds SYS_PTRACE",
        ) in caught.value.refused
        assert "mounts" in {field for field, _ in caught.value.refused}  # and the rest, at once
    w = walk(policy.profiles["isolation"], policy.project, "base.toml")
    with pytest.raises(Unexpressible) as caught:
        kubernetes_manifests(w, "restricted")
    assert not [f for f, _ in caught.value.refused if f.startswith("Pod Security")]


def test_two_profiles_with_one_kubernetes_name_are_refused(tmp_path: Path) -> None:
    shutil.copytree(CLUSTER, tmp_path / "policies")
    (tmp_path / "policies" / "twins.toml").write_text(
        'version = 1\n[profiles.a_b]\nextends = "isolation"\n'
        '[profiles."a.b"]\nextends = "isolation"\n'
    )
    code, out, err = cli(
        "render", "a_b", "a.b", "--as", "kubernetes", "--policies", str(tmp_path / "policies")
    )
    assert code == 2 and out == ""
    assert "Job/policy-a-b" in err


def test_show_prints_the_kubernetes_table() -> None:
    code, out, err = cli("show", "jit", "--policies", str(CLUSTER))
    assert code == 0, err
    assert '[kubernetes]\nlevel = "restricted"' in out
    assert 'seccomp_localhost = "container-policy/test-runner.json"' in out
    code, out, _ = cli("show", "jit", "--policies", str(CLUSTER), "--format", "json")
    assert '"namespace"' not in out  # only what is declared


def _probe_policy(tmp_path: Path, lines: str) -> Policy:
    shutil.copytree(CLUSTER, tmp_path / "policies")
    path = tmp_path / "policies" / "probe.toml"
    path.write_text(f'version = 1\n[profiles.probe]\nextends = "isolation"\n{lines}')
    return load_policy([tmp_path / "policies"])


def test_apparmor_selinux_and_safe_sysctls_are_rendered(tmp_path: Path) -> None:
    policy = _probe_policy(
        tmp_path,
        'apparmor = "ci-tests"\nselinux = ["type:container_t", "level:s0:c1,c2"]\n'
        'sysctls = { "net.ipv4.ping_group_range" = "0 1", "net.ipv4.tcp_syncookies" = 1 }\n',
    )
    job, _ = rendered(policy, "probe", "restricted")
    pod = job["spec"]["template"]["spec"]
    ctx = pod["containers"][0]["securityContext"]
    assert ctx["appArmorProfile"] == {"type": "Localhost", "localhostProfile": "ci-tests"}
    assert ctx["seLinuxOptions"] == {"type": "container_t", "level": "s0:c1,c2"}
    assert pod["securityContext"]["sysctls"] == [
        {"name": "net.ipv4.ping_group_range", "value": "0 1"},
        {"name": "net.ipv4.tcp_syncookies", "value": "1"},
    ]
    # appArmorProfile is a field from Kubernetes 1.30 on (before, an annotation).
    for version in VERSIONS[1:]:
        kubernetes_validate.validate(job, version, strict=True)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[0], strict=True)


def test_dockers_default_apparmor_profile_is_the_runtimes_default(tmp_path: Path) -> None:
    job, _ = rendered(_probe_policy(tmp_path, 'apparmor = "docker-default"\n'), "probe")
    ctx = job["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert ctx["appArmorProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(
    ("lines", "refused"),
    [
        # Rendered, but the Pod Security Standards' baseline refuses them, by control.
        ('apparmor = "unconfined"\n', "Pod Security Standards restricted: appArmorProfile"),
        ('selinux = ["user:system_u"]\n', "Pod Security Standards restricted: seLinuxOptions"),
        ('selinux = ["type:spc_t"]\n', "Pod Security Standards restricted: seLinuxOptions"),
        # Not expressible at all: refused by name.
        ('sysctls = { "net.core.somaxconn" = 1024 }\n', "sysctls"),
        ('selinux = ["disable"]\n', "selinux"),
    ],
)
def test_what_a_pod_cannot_have_is_refused_by_name(
    tmp_path: Path, lines: str, refused: str
) -> None:
    with pytest.raises(Unexpressible) as caught:
        rendered(_probe_policy(tmp_path, lines), "probe", "restricted")
    assert refused in {field for field, _ in caught.value.refused}, caught.value.refused


def test_the_baseline_controls_of_security_modules_and_sysctls() -> None:
    def job(container_ctx: dict[str, Any], pod_ctx: dict[str, Any]) -> dict[str, Any]:
        container = {"name": "test", "securityContext": container_ctx}
        spec = {"containers": [container], "securityContext": pod_ctx}
        return {"spec": {"template": {"spec": spec}}}

    unsafe = [{"name": "kernel.msgmax", "value": "1"}]
    assert [c for c, _ in failures(job({}, {"sysctls": unsafe}), "baseline")] == ["sysctls"]
    safe = [{"name": "net.ipv4.ip_local_port_range", "value": "1024 65535"}]
    assert failures(job({}, {"sysctls": safe}), "baseline") == []
    for kind, fails in (("Unconfined", True), ("RuntimeDefault", False), ("Localhost", False)):
        got = failures(job({"appArmorProfile": {"type": kind}}, {}), "baseline")
        assert [c for c, _ in got] == (["appArmorProfile"] if fails else []), kind
    for options, fails in (
        ({"type": "container_t", "level": "s0:c1"}, False),
        ({"type": "unconfined_t"}, True),
        ({"role": "system_r"}, True),
    ):
        got = failures(job({"seLinuxOptions": options}, {}), "baseline")
        assert [c for c, _ in got] == (["seLinuxOptions"] if fails else []), options
