"""`policy doctor`: can this machine launch the policy's profiles? One check per line.

Each check says what it found and, when it fails, how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from engine.backends import connect
from engine.backends.interface import Engine
from policy.errors import EngineError
from policy.loader import Policy
from policy.mount_sources import resolve_source


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def run_checks(
    policy: Policy, profiles: list[str], engine: Engine | None = None
) -> Iterator[Check]:
    engine = engine or connect()
    try:
        version = engine.version()
        info = engine.info()
        kind = engine.kind()
    except EngineError as exc:
        yield Check(
            "engine",
            False,
            exc.message,
            "start dockerd (as root: scripts/ensure-engine.sh), or Podman's service "
            "(scripts/ensure-podman.sh), or set DOCKER_HOST / --host",
        )
        return
    yield Check(
        "engine",
        True,
        f"{engine.name} answers, {kind.name} {kind.version} (API {version.api_version}), "
        f"cgroup v{info.cgroup_version or '?'}{', rootless' if kind.rootless else ''}",
    )
    for check in kind.checks():
        yield Check(check.name, check.ok, check.detail, check.fix)
    for name in profiles:
        for refusal in kind.refusals(policy.profiles[name]):
            yield Check(
                f"profile {name}: {refusal.field}",
                False,
                f"cannot be enforced by {kind.name}",
                refusal.why,
            )
    limits = (("memory", info.memory_limit), ("cpu", info.cpu_cfs_quota), ("pids", info.pids_limit))
    for what, ok in limits:
        yield Check(
            f"cgroup {what}",
            ok,
            "limits are enforced" if ok else "limits are NOT enforced",
            f"enable the {what} cgroup controller for dockerd (kernel and cgroup mount)",
        )
    options = " ".join(info.security_options or [])
    yield Check(
        "seccomp",
        "seccomp" in options,
        "supported" if "seccomp" in options else "not supported by this engine",
        "use a kernel and dockerd built with seccomp support",
    )
    # AppArmor and SELinux only where a profile declares them: a launch is refused otherwise.
    enabled = {o.split(",")[0].removeprefix("name=") for o in info.security_options or []}
    for module in ("apparmor", "selinux"):
        users = sorted(n for n in profiles if getattr(policy.profiles[n], module))
        if users:
            yield Check(
                module,
                module in enabled,
                "supported"
                if module in enabled
                else f"not supported: {', '.join(users)} would be refused at launch",
                f"run the engine on a host with {module} enabled, or drop the profile's {module}",
            )
    images = sorted({policy.profiles[n].image for n in profiles})
    for image in images:
        try:
            engine.inspect_image(image)
            yield Check(f"image {image}", True, "present locally")
        except EngineError:
            yield Check(
                f"image {image}",
                False,
                "missing",
                "build it (shipped test images: scripts/build-test-images.sh)",
            )
    yield from _mount_checks(policy, profiles)


def _mount_checks(policy: Policy, profiles: list[str]) -> Iterator[Check]:
    """Each mount source once: read-only ones exist, writable ones can be written."""
    seen: set[str] = set()
    for name in profiles:
        for mount in policy.profiles[name].mounts:
            path = resolve_source(policy.project, mount.source)
            if str(path) in seen:
                continue
            seen.add(str(path))
            if mount.writable:
                probe = path if path.exists() else path.parent
                ok = probe.is_dir() and os.access(probe, os.W_OK)
                yield Check(
                    f"results {path}",
                    ok,
                    "writable" if ok else "not writable or its parent is missing",
                    f"create {path} and make it writable by you",
                )
            else:
                yield Check(
                    f"source {path}",
                    path.exists(),
                    "exists" if path.exists() else "missing",
                    f"create {path} or fix the profile's mount source",
                )
