"""The built-in rules of the runtime keys of issue 12 (`policy.runtime_keys`), CIS 5.x each.

Part of `policy.rules.RULES` (after the original rules, so their order in reports and docs is
unchanged). Like every rule they judge a `Profile`: a declared one in `policy validate`, or a
container described as one in `policy audit`, so what a profile cannot even declare (a port on
every interface) is still judged on a container started by hand.
"""

from __future__ import annotations

from collections.abc import Iterator

from policy.diagnostics import Severity
from policy.model import Profile
from policy.rule_base import Context, Rule, Violation
from policy.runtime_keys import UNLIMITED

PRIVILEGED_PORTS = 1024  # host ports below it are privileged (CIS 5.8)
# Limits the kernel bounds by default, each guarding a resource of the whole host (processes of
# the user, locked memory, queued signals and messages, scheduling priority): an override that
# lifts one is what CIS 5.19 asks a reviewer to look at. (`nofile` cannot be unlimited at all.)
BOUNDED_ULIMITS = ("memlock", "msgqueue", "nice", "nproc", "rtprio", "sigpending")
ALL_INTERFACES = ("0.0.0.0", "::", "")
PSS_NS_NOTE = "Baseline: Host Namespaces"


def _ulimit_unlimited(p: Profile, ctx: Context) -> Iterator[Violation]:
    for name, limit in sorted(p.ulimits.items()):
        if name in BOUNDED_ULIMITS and limit.hard == UNLIMITED:
            yield Violation(
                f"the {name} ulimit is unlimited: the engine's bound on it is lifted",
                ("ulimits", name),
            )


def _published_port(p: Profile, ctx: Context) -> Iterator[Violation]:
    for i, port in enumerate(p.ports):
        yield Violation(f"publishes a port: {port.text}", ("ports", i))


def _privileged_port(p: Profile, ctx: Context) -> Iterator[Violation]:
    for i, port in enumerate(p.ports):
        if port.host_port is not None and port.host_port < PRIVILEGED_PORTS:
            yield Violation(
                f"publishes on the privileged host port {port.host_port} ({port.text})",
                ("ports", i, "host_port"),
            )


def _all_interfaces(p: Profile, ctx: Context) -> Iterator[Violation]:
    for i, port in enumerate(p.ports):
        if port.host in ALL_INTERFACES:
            yield Violation(
                f"publishes on every interface of the host ({port.text})", ("ports", i, "host")
            )


def _host_device(p: Profile, ctx: Context) -> Iterator[Violation]:
    for i, device in enumerate(p.devices):
        yield Violation(
            f"passes the host device {device.host} in ({device.text})", ("devices", i, "host")
        )


MAX_RESTARTS = 5  # CIS 5.15


def _restart(p: Profile, ctx: Context) -> Iterator[Violation]:
    name, _, count = p.restart.partition(":")
    if name in ("always", "unless-stopped"):
        yield Violation(f"restart policy {name!r}: a failing test restarts forever", ("restart",))
    elif name == "on-failure" and (not count.isdigit() or not 0 < int(count) <= MAX_RESTARTS):
        bound = "no bound" if count in ("", "0") else f"{count} retries"
        yield Violation(
            f"restart policy on-failure with {bound} (at most {MAX_RESTARTS})", ("restart",)
        )
    elif name not in ("no", "on-failure"):
        yield Violation(f"restart policy {p.restart!r}", ("restart",))


def _sysctls(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.sysctls:
        yield Violation(f"sets kernel parameters: {', '.join(sorted(p.sysctls))}", ("sysctls",))


def _cgroup_parent(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.cgroup_parent is not None:
        yield Violation(
            f"runs in the cgroup parent {p.cgroup_parent!r}, outside the engine's own",
            ("cgroup_parent",),
        )


def _host_userns(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.userns == "host":
        yield Violation("shares the host's user namespace", ("userns",))


def _oom_kill_disabled(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.oom_kill_disable:
        yield Violation(
            "the OOM killer is disabled: at its memory limit the container hangs instead of "
            "being killed (and without a limit it can exhaust the host)",
            ("oom_kill_disable",),
        )


def _apparmor_unconfined(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.apparmor == "unconfined":
        yield Violation("AppArmor is unconfined", ("apparmor",))


def engine_disables_labels(p: Profile) -> bool:
    """The engine itself adds `label=disable` to a container that is privileged or shares the
    host's PID or IPC namespace, unless label options were given (its `generateSecurityOpt`)."""
    return p.privileged or p.pid == "host" or p.ipc == "host"


def _selinux_disabled(p: Profile, ctx: Context) -> Iterator[Violation]:
    # Where the engine disabled labels itself, the rule for the cause (privileged, host-pid,
    # host-ipc) already fires.
    if "disable" in p.selinux and not engine_disables_labels(p):
        yield Violation("SELinux labelling is disabled", ("selinux",))


def _shared_propagation(p: Profile, ctx: Context) -> Iterator[Violation]:
    for i, m in enumerate(p.mounts):
        if m.propagation in ("shared", "rshared"):
            yield Violation(
                f"mounts {m.source} with {m.propagation} propagation: mounts made in the "
                "container appear on the host",
                ("mounts", i, "propagation"),
            )


def _no_healthcheck(p: Profile, ctx: Context) -> Iterator[Violation]:
    if p.healthcheck is None:
        yield Violation(
            "no health check, its own or its image's (for a test container, which runs one "
            "command to completion, a note only)",
            ("healthcheck",),
        )


E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTE
RUNTIME_RULES: tuple[Rule, ...] = (
    Rule(
        "ulimit-unlimited",
        "Ulimit lifted",
        W,
        'Give the ulimit a bound, for example `ulimits = { nproc = 4096 }`, not "unlimited".',
        "5.19",
        None,
        _ulimit_unlimited,
    ),
    Rule(
        "published-port",
        "Port published",
        W,
        "Publish no port from a test container; if one is needed, bind it to 127.0.0.1.",
        "5.9",
        None,
        _published_port,
    ),
    Rule(
        "privileged-port",
        "Privileged host port",
        E,
        "Publish on a host port of 1024 or above.",
        "5.8",
        None,
        _privileged_port,
    ),
    Rule(
        "port-all-interfaces",
        "Port on every host interface",
        E,
        'Bind the port to one address, for example `host = "127.0.0.1"`.',
        "5.14",
        None,
        _all_interfaces,
    ),
    Rule(
        "host-device",
        "Host device passed in",
        E,
        "Remove the device, or waive it with a reason and an expiry date.",
        "5.18",
        "Baseline: HostPath Volumes",
        _host_device,
    ),
    Rule(
        "restart-policy",
        "Unbounded restart policy",
        E,
        'Use `restart = "no"` (the default) or a bounded `"on-failure:N"` with N at most 5.',
        "5.15",
        None,
        _restart,
    ),
    Rule(
        "sysctl",
        "Kernel parameters set",
        W,
        "Remove `sysctls`, or waive the finding with a reason and an expiry date.",
        None,
        "Baseline: Sysctls",
        _sysctls,
    ),
    Rule(
        "cgroup-parent",
        "Cgroup parent of its own",
        W,
        "Remove `cgroup_parent`: the engine's own parent carries its limits and accounting.",
        "5.25",
        None,
        _cgroup_parent,
    ),
    Rule(
        "host-userns",
        "Host user namespace",
        E,
        'Remove `userns = "host"`.',
        "5.31",
        PSS_NS_NOTE,
        _host_userns,
    ),
    Rule(
        "oom-kill-disabled",
        "OOM killer disabled",
        E,
        "Remove `oom_kill_disable = true`.",
        None,
        None,
        _oom_kill_disabled,
    ),
    Rule(
        "apparmor-unconfined",
        "AppArmor unconfined",
        E,
        'Remove `apparmor = "unconfined"` (the engine\'s default profile applies) or name one.',
        "5.2",
        "Baseline: AppArmor",
        _apparmor_unconfined,
    ),
    Rule(
        "selinux-disabled",
        "SELinux labelling disabled",
        E,
        'Remove `selinux = ["disable"]`, or give label options such as "type:container_t".',
        "5.3",
        "Baseline: SELinux",
        _selinux_disabled,
    ),
    Rule(
        "mount-propagation-shared",
        "Shared mount propagation",
        E,
        'Remove `propagation = "shared"` from the mount (rprivate, the default, is safe).',
        "5.20",
        None,
        _shared_propagation,
    ),
    Rule(
        "no-healthcheck",
        "No health check",
        N,
        "A test container needs none; a long-running one declares one (`healthcheck = { test = "
        '["/bin/probe"] }`, an exec array) or its image has a HEALTHCHECK.',
        "5.27",
        None,
        _no_healthcheck,
        running_only=True,
    ),
)
