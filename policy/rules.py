"""Built-in security rules: each a small object with a stable id, a severity and a `check()`.

Ids never change once released (waivers, SARIF results and CI configs refer to them). Each rule
names the CIS Docker Benchmark v1.6 check and/or the Kubernetes Pod Security Standards control it
corresponds to; `docs/rules.md` is generated from this table (`policy rules --format markdown`).
Rules judge a `Profile`, so the same rules apply to a declared profile and, in an audit, to a
container observed on a host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator

from policy.diagnostics import Severity
from policy.model import Profile
from policy.rule_base import Context, Rule, Violation
from policy.runtime_rules import RUNTIME_RULES

__all__ = ["RULES", "RULES_BY_ID", "Context", "Rule", "Violation"]

# Sub-paths of these are as sensitive as the path itself (CIS 5.5).
SENSITIVE_HOST_PATHS = (
    "/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/run", "/sbin",
    "/sys", "/usr", "/var/lib/docker", "/var/lib/containerd", "/var/run",
)  # fmt: skip
DOCKER_SOCKETS = ("/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run")
ALLOWED_CAP_ADD = frozenset({"NET_BIND_SERVICE"})  # what PSS "restricted" allows adding


def _host_path(source: str, ctx: Context) -> str:
    path = source if source.startswith("/") else posixpath.join(str(ctx.project), source)
    return posixpath.normpath(path)


def _within(path: str, roots: tuple[str, ...]) -> bool:
    # "/" itself is sensitive, but not everything below it.
    return any(path == r or (r != "/" and path.startswith(r + "/")) for r in roots)


def _root_user(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.user is None:
        yield Violation("no user is set, so the image's user (often root) applies", ("user",))
    elif p.uid is None:
        yield Violation(
            f"runs as the user name {p.user!r}, which resolves inside the image and may be root",
            ("user",),
        )
    elif p.uid == 0:
        yield Violation("runs as uid 0 (root)", ("user",))


def _privileged(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.privileged:
        yield Violation("privileged: every capability, every device, no seccomp", ("privileged",))


def _cap_drop_all(p: Profile, ctx: Context) -> Iterator[Violation]:
    if "ALL" not in p.cap_drop:
        yield Violation(
            "cap_drop does not include ALL, so Docker's default capabilities remain", ("cap_drop",)
        )


def _cap_add(p: Profile, ctx: Context) -> Iterator[Violation]:
    extra = sorted(set(p.cap_add) - ALLOWED_CAP_ADD)
    if extra:
        yield Violation(
            f"adds capabilities {', '.join(extra)} (only NET_BIND_SERVICE is allowed "
            "without a waiver)",
            ("cap_add",),
        )


def _seccomp(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.seccomp.mode == "unconfined":
        yield Violation("seccomp is unconfined: every system call is allowed", ("seccomp",))
    elif p.seccomp.default_allow:
        yield Violation(
            "the custom seccomp profile allows every system call by default", ("seccomp",)
        )


def _no_new_privileges(p: Profile, ctx: Context) -> Iterator[Violation]:
    if not p.no_new_privileges:
        yield Violation(
            "no_new_privileges is off: setuid binaries can gain privileges", ("no_new_privileges",)
        )


def _host_namespace(field: str) -> Callable[[Profile, Context], Iterator[Violation]]:
    def check(p: Profile, ctx: Context) -> Iterator[Violation]:
        if getattr(p, field) == "host":
            yield Violation(f"shares the host's {field} namespace", (field,))

    return check


def _writable_root(p: Profile, ctx: Context) -> Iterator[Violation]:
    if not p.read_only:
        yield Violation("the root filesystem is writable", ("read_only",))


def _unset(field: str, message: str) -> Callable[[Profile, Context], Iterator[Violation]]:
    """A check that the limit `field` is set; `message` is the finding when it is not."""

    def check(p: Profile, ctx: Context) -> Iterator[Violation]:
        if getattr(p, field) is None:
            yield Violation(message, (field,))

    return check


_no_memory = _unset("memory", "no memory limit")
_no_cpus = _unset("cpus", "no CPU limit")
_no_pids = _unset("pids_limit", "no pids limit: a fork bomb can exhaust the host")
_no_timeout = _unset("timeout", "no timeout: a hung test holds its container forever")


def _docker_socket(p: Profile, ctx: Context) -> Iterator[Violation]:
    for i, m in enumerate(p.mounts):
        path = _host_path(m.source, ctx)
        if path in DOCKER_SOCKETS or path.endswith("/docker.sock"):
            yield Violation(
                f"mounts the Docker socket ({path}): root on the host", ("mounts", i, "source")
            )


def _sensitive_mount(p: Profile, ctx: Context) -> Iterator[Violation]:
    for i, m in enumerate(p.mounts):
        path = _host_path(m.source, ctx)
        if _within(path, SENSITIVE_HOST_PATHS) and not path.endswith("/docker.sock"):
            yield Violation(f"mounts the sensitive host path {path}", ("mounts", i, "source"))


def _project_writable(p: Profile, ctx: Context) -> Iterator[Violation]:
    project = posixpath.normpath(str(ctx.project))
    for i, m in enumerate(p.mounts):
        path = _host_path(m.source, ctx)
        if m.writable and (project == path or project.startswith(path.rstrip("/") + "/")):
            yield Violation(
                f"mounts the project directory {path} writable: tests could rewrite "
                "the code under test",
                ("mounts", i, "writable"),
            )


E, W = Severity.ERROR, Severity.WARNING
PSS_NS = "Baseline: Host Namespaces"
RULES: tuple[Rule, ...] = (
    Rule(
        "root-user",
        "Runs as root",
        E,
        'Set a numeric, non-zero user, for example `user = "1001:1001"`.',
        "4.1",
        "Restricted: Running as Non-root user",
        _root_user,
    ),
    Rule(
        "privileged",
        "Privileged container",
        E,
        "Remove `privileged = true`.",
        "5.5",
        "Baseline: Privileged Containers",
        _privileged,
    ),
    Rule(
        "cap-drop-all",
        "Capabilities not dropped",
        E,
        'Set `cap_drop = ["ALL"]`.',
        "5.4",
        "Restricted: Capabilities",
        _cap_drop_all,
    ),
    Rule(
        "cap-add",
        "Capability added",
        E,
        "Remove the capability, or waive it with a reason and an expiry date.",
        "5.4",
        "Restricted: Capabilities",
        _cap_add,
    ),
    Rule(
        "seccomp-unconfined",
        "Seccomp disabled",
        E,
        'Use `seccomp = "default"` or a custom JSON profile that denies by default.',
        "5.22",
        "Restricted: Seccomp",
        _seccomp,
    ),
    Rule(
        "no-new-privileges",
        "Privilege escalation allowed",
        E,
        "Set `no_new_privileges = true`.",
        "5.26",
        "Restricted: Privilege Escalation",
        _no_new_privileges,
    ),
    Rule(
        "host-network",
        "Host network namespace",
        E,
        'Use `network = "none"` or "bridge".',
        "5.10",
        PSS_NS,
        _host_namespace("network"),
    ),
    Rule(
        "host-pid",
        "Host PID namespace",
        E,
        'Remove `pid = "host"`.',
        "5.16",
        PSS_NS,
        _host_namespace("pid"),
    ),
    Rule(
        "host-ipc",
        "Host IPC namespace",
        E,
        'Remove `ipc = "host"`.',
        "5.17",
        PSS_NS,
        _host_namespace("ipc"),
    ),
    Rule(
        "host-uts",
        "Host UTS namespace",
        E,
        'Remove `uts = "host"`.',
        "5.21",
        PSS_NS,
        _host_namespace("uts"),
    ),
    Rule(
        "writable-root",
        "Writable root filesystem",
        E,
        "Set `read_only = true` and give writable paths as tmpfs or writable mounts.",
        "5.13",
        None,
        _writable_root,
    ),
    Rule(
        "no-memory-limit",
        "No memory limit",
        E,
        'Set `memory`, for example `memory = "1g"`.',
        "5.11",
        None,
        _no_memory,
    ),
    Rule(
        "no-cpu-limit",
        "No CPU limit",
        W,
        "Set `cpus`, for example `cpus = 2`.",
        "5.12",
        None,
        _no_cpus,
    ),
    Rule(
        "no-pids-limit",
        "No pids limit",
        E,
        "Set `pids_limit`, for example 256.",
        "5.29",
        None,
        _no_pids,
    ),
    Rule(
        "no-timeout",
        "No timeout",
        W,
        'Set `timeout`, for example `timeout = "10m"`.',
        None,
        None,
        _no_timeout,
        declared_only=True,
    ),
    Rule(
        "docker-socket",
        "Docker socket mounted",
        E,
        "Never mount the Docker socket into a test container.",
        "5.32",
        "Baseline: HostPath Volumes",
        _docker_socket,
    ),
    Rule(
        "sensitive-mount",
        "Sensitive host path mounted",
        E,
        "Mount only project directories.",
        "5.6",
        "Baseline: HostPath Volumes",
        _sensitive_mount,
    ),
    Rule(
        "project-writable",
        "Project directory mounted writable",
        E,
        "Mount the project read-only; give tests a separate writable results directory.",
        None,
        None,
        _project_writable,
    ),
    *RUNTIME_RULES,
)
RULES_BY_ID = {rule.id: rule for rule in RULES}
