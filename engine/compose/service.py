"""A merged compose service read into the settings a profile has (`engine.render.settings`).

`read_service` reads every key compose can say that matters to a profile, each in all the
forms compose accepts, into the canonical `Settings` the audit compares, and into a `Profile`
that the security rules and guardrails judge. A key it does not understand, a value it cannot
read and a key the profile language has no setting for are `Note`s (findings), never skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.compose import keys, runtime
from engine.compose.project import Service
from engine.compose.reader import Note, Reader, as_bool
from engine.compose.shapes import checked
from engine.labels import PROFILE, is_reserved
from policy import units
from policy.model import Healthcheck, Mount, Profile, Seccomp, Tmpfs

# Keys that change nothing a profile (or the engine's isolation) holds: what runs, how compose
# orders and names things.
INERT = frozenset(
    {"build", "command", "container_name", "depends_on", "entrypoint", "stdin_open", "tty",
     "profiles", "scale", "stop_signal", "stop_grace_period", "hostname", "domainname",
     "extends", "x-policy-profile", "pull_policy", "platform", "logging", "init", "networks"}
)  # fmt: skip
# Keys compose has and a profile does not (its default is none): present, they are findings.
LACKING: dict[str, str] = {
    "ulimits": "resource limits per process",
    "oom_score_adj": "an OOM score",
    "group_add": "supplementary groups",
    "shm_size": "the size of /dev/shm",
    "runtime": "an OCI runtime",
    "cgroup": "a cgroup namespace mode",
    "devices": "devices",
    "ports": "published ports",
    "expose": "exposed ports",
    "extra_hosts": "extra /etc/hosts entries",
    "dns": "DNS servers",
    "dns_search": "DNS search domains",
    "dns_opt": "DNS options",
    "links": "links to other services",
    "external_links": "links to other containers",
    "volumes_from": "another container's volumes",
    "memswap_limit": "a swap limit",
    "mem_reservation": "a memory reservation",
    "mem_swappiness": "swappiness",
    "cpu_shares": "CPU shares",
    "cpuset": "a CPU set",
    "cpu_count": "a CPU count (Windows)",
    "cpu_percent": "a CPU percentage (Windows)",
    "blkio_config": "block I/O limits",
    "storage_opt": "storage driver options",
    "isolation": "an isolation technology (Windows)",
    "mac_address": "a MAC address",
}
READ = frozenset(
    {"image", "user", "read_only", "privileged", "network_mode", "pid", "ipc", "uts", "cap_add",
     "cap_drop", "security_opt", "pids_limit", "mem_limit", "cpus", "cpu_quota", "cpu_period",
     "deploy", "tmpfs", "volumes", "environment", "env_file", "working_dir", "healthcheck",
     "labels", "devices", "ports", "ulimits", "restart", "sysctls", "cgroup_parent",
     "userns_mode", "oom_kill_disable"}
)  # fmt: skip


# Settings a profile holds exactly as `Settings` spells them.
AS_IS = (
    "user", "read_only", "privileged", "network", "pid", "ipc", "uts", "no_new_privileges",
    "pids_limit", "memory", "cpus", "env", "workdir", "labels",
)  # fmt: skip


@dataclass
class Read:
    """A service as settings, as a profile, and what could not be read."""

    settings: dict[str, Any]
    profile: Profile
    profile_name: str | None
    notes: list[Note] = field(default_factory=list)
    # Keys a profile has no setting for (or that the rules cannot judge yet), by key: findings,
    # unless the named profile's settings compare that key.
    lacking: dict[str, Note] = field(default_factory=dict)

    def all_notes(self, compared: frozenset[str] | None = None) -> list[Note]:
        """Every note, but those about keys in `compared` (the named profile's settings; None
        for a service that names none, whose profile the rules judge)."""
        skip = PROFILED if compared is None else compared
        return self.notes + [n for k, n in self.lacking.items() if k not in skip]


def _unknown_keys(r: Reader) -> dict[str, Note]:
    """Notes for keys not understood (in `r.notes`), and, by key, the notes for keys a profile
    may not have: `policy check` drops those the named profile's settings compare."""
    lacking = {}
    for key in r.s.data:
        if key in READ - LACKING.keys() or key in INERT or key.startswith("x-"):
            if key == "deploy":
                _deploy_keys(r)
            continue
        if key in LACKING:
            message = (
                f"'{key}' sets {LACKING[key]}, which a profile does not have (a profile's "
                "default is none)"
            )
            lacking[key] = Note(r.s.at(key), "not-in-profile", message, key)
        else:
            r.note("unknown-key", f"compose key '{key}' is not understood; it is not judged "
                   "and nothing is assumed about it", key)  # fmt: skip
    return lacking


def _deploy_keys(r: Reader) -> None:
    deploy = r.get("deploy") or {}
    for key in deploy:
        if key != "resources":
            r.note("not-in-profile", f"deploy.{key} is for swarm; a profile has no such "
                   "setting", "deploy", key)  # fmt: skip
    for key, value in (deploy.get("resources") or {}).items():
        if key != "limits":
            r.note("not-in-profile", f"deploy.resources.{key}: a profile has limits only",
                   "deploy", "resources", key)  # fmt: skip
            continue
        for limit in value or {}:
            if limit not in ("memory", "cpus", "pids"):
                r.note("unknown-key", f"deploy.resources.limits.{limit} is not understood",
                       "deploy", "resources", "limits", limit)  # fmt: skip


def _named(r: Reader) -> str | None:
    """The profile a service names: `x-policy-profile`, or the reserved profile label that
    `policy render --as compose` writes."""
    ext = r.get("x-policy-profile")
    label = (r.get("labels") or {}).get(PROFILE)
    if ext is not None and label is not None and str(ext) != str(label):
        r.note("conflict", f"x-policy-profile '{ext}' and label {PROFILE}='{label}' name "
               "different profiles", "x-policy-profile")  # fmt: skip
    name = ext if ext is not None else label
    return None if name is None else str(name)


def read_service(s: Service, directory: Path, env: dict[str, str]) -> Read:
    """`s` as settings and as a profile, with every key it could not read as a `Note`."""
    r = Reader(s, directory, env)
    r.data = checked(r)
    named = _named(r)
    lacking = _unknown_keys(r)
    settings, cap_add, cap_drop, seccomp = _settings(r)
    if not settings["image"]:
        r.note("bad-value", "the service has no image; what it builds is not judged", "image")
    hc = settings["healthcheck"]
    if hc is not None and hc["test"][0] != "CMD":
        lacking["healthcheck"] = Note(
            s.at("healthcheck", "test"), "not-in-profile", "healthcheck: a shell-form test "
            "(CMD-SHELL, or a string) runs through a shell; a profile's test is an exec array",
            "healthcheck",
        )  # fmt: skip
    profile = _as_profile(s.name, settings, cap_add, cap_drop, seccomp)
    return Read(settings, profile, named, r.notes, lacking)


def _settings(r: Reader) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...], Seccomp]:
    """The service's `Settings`, and what a profile keeps that they do not (the capabilities as
    written, the seccomp profile itself)."""
    nnp, seccomp = keys.security(r)
    privileged = bool(r.parsed(as_bool, r.get("privileged"), "privileged"))
    mounts, tmpfs = keys.volumes(r)
    for i, entry in enumerate(r.get("tmpfs") or []):
        target, spec = keys.tmpfs_entry(r, str(entry), "tmpfs", i)
        tmpfs[target] = spec
    cap_add, cap_drop = keys.capabilities(r, "cap_add"), keys.capabilities(r, "cap_drop")
    cpus = r.first(units.parse_cpus, ("cpus",), ("deploy", "resources", "limits", "cpus"))
    pids = r.first(int, ("pids_limit",), ("deploy", "resources", "limits", "pids"))
    labels = {str(k): str(v) for k, v in (r.get("labels") or {}).items() if not is_reserved(k)}
    settings = {
        "image": str(r.get("image") or ""),
        "user": keys.user(r),
        "read_only": bool(r.parsed(as_bool, r.get("read_only"), "read_only")),
        "privileged": privileged,
        "network": keys.network(r),
        **{
            k: "private" if r.get(k) in (None, "private", "shareable", "") else str(r.get(k))
            for k in ("pid", "ipc", "uts")
        },
        "capabilities": sorted(units.CAPABILITIES)
        if privileged
        else sorted(units.effective_capabilities(cap_add, cap_drop)),
        "no_new_privileges": nnp,
        "seccomp": "unconfined" if privileged else seccomp.canonical,
        "pids_limit": pids if pids and pids > 0 else None,
        "memory": r.first(
            units.parse_size, ("mem_limit",), ("deploy", "resources", "limits", "memory")
        ),
        "cpus": cpus if cpus is not None else keys.cpus_of_quota(r),
        "tmpfs": dict(sorted(tmpfs.items())),
        "mounts": mounts,
        "env": dict(sorted(keys.env(r).items())),
        "workdir": r.get("working_dir"),
        "healthcheck": keys.healthcheck(r),
        "labels": dict(sorted(labels.items())),
        "devices": keys.devices(r),
        "ports": keys.ports(r),
        "ulimits": keys.ulimits(r),
        **runtime.settings(r, privileged),
    }
    return settings, cap_add, cap_drop, seccomp


def _as_profile(
    name: str, st: dict[str, Any], cap_add: tuple[str, ...], cap_drop: tuple[str, ...],
    seccomp: Seccomp,
) -> Profile:  # fmt: skip
    """The settings as a profile, for the rules, the guardrails and `policy import`."""
    hc = st["healthcheck"]
    return Profile(
        name=name,
        image=st["image"] or "unknown",
        **{k: st[k] for k in AS_IS},
        cap_drop=cap_drop,
        cap_add=cap_add,
        seccomp=seccomp,
        tmpfs={
            t: Tmpfs(
                size=v["size"] or 0,
                mode=int(v["mode"], 8) if v["mode"] else None,
                options=tuple(v["options"]),
            )
            for t, v in st["tmpfs"].items()
        },
        mounts=tuple(
            Mount(source=m["source"], target=m["target"], writable=m["writable"])
            for m in st["mounts"]
            if m["type"] == "bind"
        ),
        healthcheck=None if hc is None or hc["test"][0] != "CMD" else _profile_healthcheck(hc),
        **runtime.profile_fields(st),
    )


# The keys of `LACKING` that `_as_profile` gives the profile: the rules judge them, so a service
# that names no profile is not flagged for them.
PROFILED = frozenset({"ulimits", "ports", "devices"})


def _profile_healthcheck(hc: dict[str, Any]) -> Healthcheck:
    test = hc["test"][1:] if hc["test"][0] == "CMD" else hc["test"]
    return Healthcheck(test=tuple(test), **{k: v for k, v in hc.items() if k != "test"})
