"""The Pod Security Standards, level by level, over a rendered Job (`--pss`, `kubernetes.level`).

Each check is named as kubernetes/pod-security-admission names its control (policy/check_*.go),
so a refusal says which control failed; the admission controller would refuse the pod for the
same reason. Only the fields a rendered Job can have are looked at.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")
BASELINE_CAPS = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
     "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
)  # fmt: skip
RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image",
     "persistentVolumeClaim", "projected", "secret"}
)  # fmt: skip
# Kubernetes 1.0's set (1.31 adds container_engine_t): the oldest, so the safe side.
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
Pod = dict[str, Any]


def _containers(pod: Pod) -> list[dict[str, Any]]:
    return list(pod.get("containers", [])) + list(pod.get("initContainers", []))


def _sc(c: dict[str, Any]) -> dict[str, Any]:
    return dict(c.get("securityContext") or {})


def host_namespaces(pod: Pod) -> Iterator[str]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            yield f"{key}=true"


def privileged(pod: Pod) -> Iterator[str]:
    for c in _containers(pod):
        if _sc(c).get("privileged"):
            yield f"container {c['name']} is privileged"


def capabilities_baseline(pod: Pod) -> Iterator[str]:
    for c in _containers(pod):
        extra = sorted(set(_sc(c).get("capabilities", {}).get("add", [])) - BASELINE_CAPS)
        if extra:
            yield f"container {c['name']} adds {', '.join(extra)}"


def host_path_volumes(pod: Pod) -> Iterator[str]:
    for v in pod.get("volumes", []):
        if "hostPath" in v:
            yield f"volume {v['name']} is a hostPath"


def host_ports(pod: Pod) -> Iterator[str]:
    for c in _containers(pod):
        for port in c.get("ports", []):
            if port.get("hostPort"):
                yield f"container {c['name']} uses hostPort {port['hostPort']}"


def _seccomp_types(pod: Pod) -> list[tuple[str, str | None]]:
    pod_type = (pod.get("securityContext") or {}).get("seccompProfile", {}).get("type")
    return [(c["name"], _sc(c).get("seccompProfile", {}).get("type", pod_type))
            for c in _containers(pod)]  # fmt: skip


def seccomp_baseline(pod: Pod) -> Iterator[str]:
    for name, kind in _seccomp_types(pod):
        if kind == "Unconfined":
            yield f"container {name} has seccompProfile Unconfined"


def seccomp_restricted(pod: Pod) -> Iterator[str]:
    for name, kind in _seccomp_types(pod):
        if kind not in ("RuntimeDefault", "Localhost"):
            yield f"container {name} has seccompProfile {kind or 'unset'}"


def app_armor_profile(pod: Pod) -> Iterator[str]:
    for c in _containers(pod):
        kind = _sc(c).get("appArmorProfile", {}).get("type")
        if kind not in (None, "RuntimeDefault", "Localhost"):
            yield f"container {c['name']} has appArmorProfile {kind}"


def se_linux_options(pod: Pod) -> Iterator[str]:
    for c in _containers(pod):
        options = _sc(c).get("seLinuxOptions", {})
        if options.get("type", "") not in SELINUX_TYPES:
            yield f"container {c['name']} has seLinuxOptions type {options['type']}"
        for key in ("user", "role"):
            if options.get(key):
                yield f"container {c['name']} sets seLinuxOptions {key} {options[key]}"


def sysctls(pod: Pod) -> Iterator[str]:
    from engine.render.kubernetes import POD_SAFE_SYSCTLS

    forbidden = [s["name"] for s in (pod.get("securityContext") or {}).get("sysctls", [])
                 if s["name"] not in POD_SAFE_SYSCTLS]  # fmt: skip
    if forbidden:
        yield f"sysctls {', '.join(forbidden)}"


def restricted_volumes(pod: Pod) -> Iterator[str]:
    for v in pod.get("volumes", []):
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            yield f"volume {v['name']} is of type {', '.join(sorted(kinds))}"


def allow_privilege_escalation(pod: Pod) -> Iterator[str]:
    for c in _containers(pod):
        if _sc(c).get("allowPrivilegeEscalation") is not False:
            yield f"container {c['name']} does not set allowPrivilegeEscalation=false"


def run_as_non_root(pod: Pod) -> Iterator[str]:
    pod_value = (pod.get("securityContext") or {}).get("runAsNonRoot")
    for c in _containers(pod):
        if _sc(c).get("runAsNonRoot", pod_value) is not True:
            yield f"container {c['name']} does not set runAsNonRoot=true"


def run_as_user(pod: Pod) -> Iterator[str]:
    pod_value = (pod.get("securityContext") or {}).get("runAsUser")
    for c in _containers(pod):
        if _sc(c).get("runAsUser", pod_value) == 0:
            yield f"container {c['name']} sets runAsUser=0"


def capabilities_restricted(pod: Pod) -> Iterator[str]:
    for c in _containers(pod):
        caps = _sc(c).get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            yield f"container {c['name']} does not drop ALL capabilities"
        extra = sorted(set(caps.get("add", [])) - {"NET_BIND_SERVICE"})
        if extra:
            yield f"container {c['name']} adds {', '.join(extra)} (only NET_BIND_SERVICE)"


Check = Callable[[Pod], Iterator[str]]
# (control id as pod-security-admission names it, check), by level (the ids checked against its
# policy/check_*.go). The controls a rendered Job cannot fail (windowsHostProcess, procMount,
# procMount_restricted, hostProbesAndHostLifecycle: its probe is exec) are never set by the
# renderer, and every setting it does not list is refused before rendering.
CONTROLS: dict[str, list[tuple[str, Check]]] = {
    "baseline": [
        ("hostNamespaces", host_namespaces),
        ("privileged", privileged),
        ("capabilities_baseline", capabilities_baseline),
        ("hostPathVolumes", host_path_volumes),
        ("hostPorts", host_ports),
        ("seccompProfile_baseline", seccomp_baseline),
        ("appArmorProfile", app_armor_profile),
        ("seLinuxOptions", se_linux_options),
        ("sysctls", sysctls),
    ],
    "restricted": [
        ("restrictedVolumes", restricted_volumes),
        ("allowPrivilegeEscalation", allow_privilege_escalation),
        ("runAsNonRoot", run_as_non_root),
        ("runAsUser", run_as_user),
        ("seccompProfile_restricted", seccomp_restricted),
        ("capabilities_restricted", capabilities_restricted),
    ],
}


def failures(job: dict[str, Any], level: str) -> list[tuple[str, str]]:
    """(control, why) for every control of `level` (and the levels below) the Job fails."""
    pod = job["spec"]["template"]["spec"]
    out: list[tuple[str, str]] = []
    for lvl in LEVELS[1 : LEVELS.index(level) + 1]:
        for control, check in CONTROLS[lvl]:
            out.extend((control, why) for why in check(pod))
    return out
