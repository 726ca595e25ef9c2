"""Profile -> a batch/v1 Job, and a NetworkPolicy beside it when the profile asks for one
(`policy render PROFILE --as kubernetes`).

The Job runs once (`restartPolicy: Never`, `backoffLimit: 0`, `activeDeadlineSeconds` from the
timeout); its container carries the profile's user, read-only root, capabilities, privilege
escalation, seccomp (always explicit), AppArmor (`appArmorProfile`, Kubernetes 1.30+), SELinux
label options (`seLinuxOptions`), limits, tmpfs as memory-backed `emptyDir`s, env, workdir and a
liveness probe from the health check; the pod carries the sysctls of the safe set; the reserved
labels go on as annotations (and as labels where their values are valid label values). What a
cluster cannot express is refused by name unless the profile's `kubernetes` table declares what
it accepts instead. Every other setting, including any the language gains later, is refused
until it is spelled here.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any

from engine import labels as L
from engine.render.interface import Renderer, refusing
from engine.render.walk import Walked
from policy.kubernetes_keys import Kubernetes
from policy.model import Profile

Manifest = dict[str, Any]
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", re.ASCII)
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", re.ASCII)
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _k8s(p: Profile) -> Kubernetes:
    return p.kubernetes or Kubernetes()


def _network(p: Profile) -> str | None:
    if p.network == "bridge":
        return None  # the pod network
    if p.network == "host":
        return None  # hostNetwork (the Pod Security Standards judge it)
    if p.network == "none" and _k8s(p).network == "deny-all-networkpolicy":
        return None
    if p.network == "none":
        return (
            "a pod always has a network; 'none' needs a NetworkPolicy that only some network "
            'plugins enforce: declare kubernetes.network = "deny-all-networkpolicy" to accept one'
        )
    return f"network {p.network!r}: a pod joins the cluster's network, not a named one"


def _mounts(p: Profile) -> str | None:
    k = _k8s(p)
    refused = [
        m.target
        for m in p.mounts
        if (not m.writable and k.source != "image") or (m.writable and k.results != "empty-dir")
    ]
    if not refused:
        return None
    return (
        f"bind mounts at {', '.join(refused)} would be hostPath volumes, which the Pod Security "
        'Standards forbid even at baseline: declare kubernetes.source = "image" (read-only '
        'mounts are baked into the image) and/or kubernetes.results = "empty-dir" (writable '
        "mounts become emptyDir volumes, gone with the pod)"
    )


def _tmpfs(p: Profile) -> str | None:
    lossy = [t for t, spec in sorted(p.tmpfs.items()) if spec.mode is not None or spec.options]
    if not lossy or _k8s(p).tmpfs == "size-only":
        return None
    return (
        f"tmpfs {', '.join(lossy)}: an emptyDir of medium Memory has a size but no mode or mount "
        'options (nosuid, nodev, noexec): declare kubernetes.tmpfs = "size-only" to accept that'
    )


def _pids(p: Profile) -> str | None:
    if p.pids_limit is None or _k8s(p).pids_limit == "node":
        return None
    return (
        "a pids limit is the kubelet's, per pod and per node (podPidsLimit), not a pod's: "
        'declare kubernetes.pids_limit = "node" to accept the node\'s limit instead'
    )


def _seccomp(p: Profile) -> str | None:
    if p.seccomp.mode != "custom" or _k8s(p).seccomp_localhost:
        return None
    return (
        "a custom seccomp profile must be installed on every node: declare "
        "kubernetes.seccomp_localhost = PATH (relative to the kubelet's seccomp directory)"
    )


def _labels(p: Profile) -> str | None:
    bad = [
        k
        for k, v in sorted(p.labels.items())
        if not _label_key_ok(k) or len(v) > 63 or not _LABEL_VALUE.fullmatch(v)
    ]
    if not bad:
        return None
    return f"label(s) {', '.join(bad)}: not a valid Kubernetes label key or value"


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        return False
    return len(name) <= 63 and bool(_LABEL_NAME.fullmatch(name))


def _namespaces(p: Profile) -> str | None:
    if p.uts != "private":
        return "uts 'host': a pod has no host UTS namespace of its own (only hostNetwork)"
    if p.ipc == "none":
        return "ipc 'none': a pod always has an IPC namespace"
    return None


def _uts(p: Profile) -> str | None:
    return "uts 'host': a pod has no host UTS namespace of its own" if p.uts != "private" else None


def _ipc(p: Profile) -> str | None:
    return "ipc 'none': a pod always has an IPC namespace" if p.ipc == "none" else None


# The sysctls a pod may set without the node allowing more (the kubelet's safe set, and what
# pod-security-admission's `sysctls` control allows at baseline): the set of Kubernetes 1.29, the
# oldest release the renderer validates against. Later releases allow a few more; refusing them
# here is the safe side.
POD_SAFE_SYSCTLS = frozenset(
    {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
     "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start",
     "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time",
     "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
)  # fmt: skip


def _sysctls(p: Profile) -> str | None:
    unsafe = sorted(set(p.sysctls) - POD_SAFE_SYSCTLS)
    if not unsafe:
        return None
    return (
        f"sysctl(s) {', '.join(unsafe)}: outside the safe set a pod may set (the kubelet refuses "
        "a pod with others unless its node allows them with --allowed-unsafe-sysctls, and the "
        "Pod Security Standards' baseline forbids them)"
    )


def _selinux(p: Profile) -> str | None:
    if "disable" in p.selinux:
        return 'selinux ["disable"]: a pod cannot turn SELinux labelling off'
    return None


def _apparmor_profile(p: Profile) -> dict[str, str] | None:
    # Docker's own default profile is the runtime's default on a node; any other name must be
    # loaded on every node, as it must be on a Docker host.
    if p.apparmor is None:
        return None
    if p.apparmor == "unconfined":
        return {"type": "Unconfined"}
    if p.apparmor == "docker-default":
        return {"type": "RuntimeDefault"}
    return {"type": "Localhost", "localhostProfile": p.apparmor}


def _selinux_options(p: Profile) -> dict[str, str] | None:
    # "level:s0:c1,c2" keeps its colons: only the first one separates the option's name.
    # ("disable" is refused before; the Job is still built to judge the rest at once.)
    options = dict(o.split(":", 1) for o in p.selinux if o != "disable")
    return options or None


def dns_name(name: str) -> str:
    """`name` as a DNS-1123 label (a Job's name), prefixed so it never starts with a digit."""
    text = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    return ("policy-" + text)[:63].rstrip("-")


def _quantity_cpu(cpus: float) -> str:
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _seccomp_profile(p: Profile) -> dict[str, str]:
    if p.privileged or p.seccomp.mode == "unconfined":
        return {"type": "Unconfined"}
    if p.seccomp.mode == "custom":
        return {"type": "Localhost", "localhostProfile": str(_k8s(p).seccomp_localhost)}
    return {"type": "RuntimeDefault"}


def _security_context(p: Profile) -> dict[str, Any]:
    ctx: dict[str, Any] = {
        "allowPrivilegeEscalation": not p.no_new_privileges or p.privileged,
        "privileged": p.privileged,
        "readOnlyRootFilesystem": p.read_only,
        "seccompProfile": _seccomp_profile(p),
    }
    if p.uid is not None:
        ctx["runAsUser"] = p.uid
        ctx["runAsNonRoot"] = p.uid != 0
    if p.gid is not None:
        ctx["runAsGroup"] = p.gid
    caps = {"drop": list(p.cap_drop), "add": list(p.cap_add)}
    ctx["capabilities"] = {k: v for k, v in caps.items() if v}
    for key, value in (("appArmorProfile", _apparmor_profile(p)),
                       ("seLinuxOptions", _selinux_options(p))):  # fmt: skip
        if value is not None:
            ctx[key] = value
    return ctx


def _probe(p: Profile) -> dict[str, Any] | None:
    hc = p.healthcheck
    if hc is None:
        return None
    probe: dict[str, Any] = {"exec": {"command": list(hc.test)}}
    for key, name in (("interval", "periodSeconds"), ("timeout", "timeoutSeconds"),
                      ("start_period", "initialDelaySeconds")):  # fmt: skip
        value = getattr(hc, key)
        if value is not None:
            probe[name] = max(1, round(value))
    if hc.retries is not None:
        probe["failureThreshold"] = hc.retries
    return probe


def _volumes(walked: Walked) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes, mounts = [], []
    for i, t in enumerate(walked.tmpfs):
        volumes.append(
            {"name": f"tmpfs-{i}", "emptyDir": {"medium": "Memory", "sizeLimit": str(t.size)}}
        )
        mounts.append({"name": f"tmpfs-{i}", "mountPath": t.target})
    for i, m in enumerate(walked.mounts):
        if m.writable:  # kubernetes.results = "empty-dir" (else refused before this)
            volumes.append({"name": f"results-{i}", "emptyDir": {}})
            mounts.append({"name": f"results-{i}", "mountPath": m.target})
    return volumes, mounts


def _metadata(walked: Walked, name: str) -> tuple[dict[str, str], dict[str, str]]:
    reserved = {k: v for k, v in walked.labels.items() if L.is_reserved(k)}
    labels = {k: v for k, v in walked.labels.items() if not L.is_reserved(k)}
    for key, value in reserved.items():
        if len(value) <= 63 and _LABEL_VALUE.fullmatch(value):
            labels[key] = value
    return dict(sorted(labels.items())), dict(sorted(reserved.items()))


class KubernetesJob(Renderer[list[Manifest]]):
    """See `Renderer`: a Job, then a NetworkPolicy when `kubernetes.network` asks for one."""

    target = "a Kubernetes Job"
    refuse_unlisted = True
    cannot_express = refusing(
        ulimits="a pod has no ulimits: its containers get the container runtime's defaults on "
        "the node (set them there, or in the image's entrypoint)",
        ports="a Job publishes no host port (a hostPort fails the Pod Security Standards' "
        "baseline); reach it through a Service",
        devices="a host device reaches a pod only through a device plugin on the node",
        restart="a Job runs its pod once (restartPolicy Never, backoffLimit 0)",
        cgroup_parent="the kubelet chooses a pod's cgroup",
        userns="a pod's user namespace is hostUsers, not rendered",
        oom_kill_disable="a pod cannot turn the OOM killer off",
    )
    expresses = frozenset(
        {"image", "user", "read_only", "privileged", "pid", "cap_drop", "cap_add",
         "no_new_privileges", "memory", "cpus", "timeout", "env", "workdir", "healthcheck",
         "apparmor"}
    )  # fmt: skip
    conditional = MappingProxyType({
        "network": _network,
        "mounts": _mounts,
        "tmpfs": _tmpfs,
        "pids_limit": _pids,
        "seccomp": _seccomp,
        "labels": _labels,
        "uts": _uts,
        "ipc": _ipc,
        "sysctls": _sysctls,
        "selinux": _selinux,
    })  # fmt: skip

    def build(self, walked: Walked) -> list[Manifest]:
        p = walked.profile
        name = dns_name(p.name)
        labels, annotations = _metadata(walked, p.name)
        volumes, volume_mounts = _volumes(walked)
        container: dict[str, Any] = {
            "name": "test",
            "image": walked.image,
            "args": list(walked.command) or None,
            "workingDir": p.workdir,
            "env": [{"name": k, "value": v} for k, v in sorted(walked.env.items())] or None,
            "securityContext": _security_context(p),
            "resources": _resources(p),
            "volumeMounts": volume_mounts or None,
            "livenessProbe": _probe(p),
        }
        pod: dict[str, Any] = {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "hostNetwork": p.network == "host" or None,
            "hostPID": p.pid == "host" or None,
            "hostIPC": p.ipc == "host" or None,
            "securityContext": _drop_none(
                {
                    "seccompProfile": _seccomp_profile(p),
                    "sysctls": [{"name": k, "value": v} for k, v in sorted(p.sysctls.items())]
                    or None,
                }
            ),
            "containers": [_drop_none(container)],
            "volumes": volumes or None,
        }
        meta: dict[str, Any] = {"name": name, "labels": labels or None,
                                "annotations": annotations or None}  # fmt: skip
        if _k8s(p).namespace:
            meta["namespace"] = _k8s(p).namespace
        job: Manifest = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _drop_none(meta),
            "spec": _drop_none(
                {
                    "backoffLimit": 0,
                    "activeDeadlineSeconds": None
                    if p.timeout is None
                    else max(1, round(p.timeout)),
                    "template": {
                        "metadata": _drop_none(
                            {"labels": labels or None, "annotations": annotations or None}
                        ),
                        "spec": _drop_none(pod),
                    },
                }
            ),
        }
        out = [job]
        if p.network == "none":  # kubernetes.network = "deny-all-networkpolicy"
            out.append(_deny_all(name, meta))
        return out


def _resources(p: Profile) -> dict[str, Any] | None:
    limits = {}
    if p.memory is not None:
        limits["memory"] = str(p.memory)
    if p.cpus is not None:
        limits["cpu"] = _quantity_cpu(p.cpus)
    return {"limits": limits} if limits else None


def _deny_all(job: str, meta: dict[str, Any]) -> Manifest:
    """No traffic in or out of the Job's pods (enforced only by network plugins that do)."""
    policy_meta = {k: v for k, v in meta.items() if k != "name"}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{job}-deny-all"[:63].rstrip("-"), **policy_meta},
        "spec": {
            "podSelector": {"matchLabels": {"job-name": job}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def kubernetes_manifests(walked: Walked, pss: str | None = None) -> list[Manifest]:
    """The Job (and NetworkPolicy) of `walked`, refused by name if the profile declares what a
    cluster cannot express, or if the Job fails a control of `pss` (default: the level the
    profile's `kubernetes.level` claims)."""
    from engine.render.interface import Unexpressible, render
    from engine.render.pss import failures

    renderer = KubernetesJob()
    refused = renderer.refusals(walked)
    level = pss or _k8s(walked.profile).level
    if level and level != "privileged":
        # Judged even when settings are refused, so every reason is given at once: the Job as
        # it would be with the replacements the refusals ask for.
        job = renderer.build(walked)[0]
        refused += [
            (f"Pod Security Standards {level}: {c}", why) for c, why in failures(job, level)
        ]
    if refused:
        raise Unexpressible(renderer.target, walked.profile.name, refused)
    return render(renderer, walked).value


def to_text(manifests: list[Manifest]) -> str:
    """The manifests as one YAML stream (JSON-quoted scalars: no value can change structure)."""
    from engine.render.yaml import to_yaml

    return "\n---\n".join(to_yaml(m) for m in manifests) + "\n"


__all__ = ["KubernetesJob", "dns_name", "kubernetes_manifests", "to_text"]
