"""A running container described as a profile: for `policy capture` and unmanaged audits.

Rules and guardrails judge `Profile`s; describing an unmanaged container as one lets the same
rules judge what actually runs, as docker-bench-security does for every container.
"""

from __future__ import annotations

from typing import Any

from engine.audit import observe_runtime
from engine.audit.observe import observed_settings
from engine.backends.interface import ContainerInspect, ImageConfig
from engine.render.settings import normalise_healthcheck
from policy import units
from policy.errors import UsageError
from policy.model import Healthcheck, Mount, Profile, Seccomp, Tmpfs
from policy.runtime_keys import Ulimit


def _seccomp(canonical: str) -> Seccomp:
    if canonical.startswith("sha256:"):
        return Seccomp(mode="custom", digest=canonical)
    return Seccomp(mode="unconfined" if canonical == "unconfined" else "default")


def _healthcheck(check: dict[str, Any] | None) -> Healthcheck | None:
    """The container's health check (its own or its image's) as a profile's exec array. A
    `CMD-SHELL` check is what the engine runs for it: the command under `/bin/sh -c`."""
    if check is None:
        return None
    kind, *words = check["test"]
    test = ("/bin/sh", "-c", " ".join(words)) if kind == "CMD-SHELL" else tuple(words)
    return Healthcheck(test=test, **{k: v for k, v in check.items() if k != "test"})


def profile_from_inspect(
    inspect: ContainerInspect, image: ImageConfig | None, name: str | None = None
) -> Profile:
    """The profile that describes a container as it is (capabilities as add/drop from ALL; the
    health check it runs, whether its own or its image's)."""
    s = observed_settings(inspect, image)
    host = inspect.host_config
    # As the engine was asked (not the effective set), so `cap-drop-all` and `cap-add` judge
    # exactly what the container's creator wrote.
    cap_add = sorted({units.parse_capability(c) for c in host.cap_add or []})
    cap_drop = sorted({units.parse_capability(c) for c in host.cap_drop or []})
    tmpfs = {
        path: Tmpfs(
            size=spec["size"] if isinstance(spec["size"], int) else 0,
            mode=int(spec["mode"], 8) if spec.get("mode") else None,
            options=tuple(spec.get("options") or ()),
        )
        for path, spec in s["tmpfs"].items()
    }
    mounts = tuple(
        Mount(
            source=str(m["source"]),
            target=str(m["target"]),
            writable=m["writable"],
            propagation=m.get("propagation"),
        )
        for m in s["mounts"]
    )
    return Profile(
        name=name or inspect.short_name or "container",
        image=s["image"] or "unknown",
        user=s["user"],
        read_only=s["read_only"],
        privileged=s["privileged"],
        network=s["network"],
        pid=s["pid"],
        ipc=s["ipc"],
        uts=s["uts"],
        cap_drop=tuple(cap_drop),
        cap_add=tuple(cap_add),
        no_new_privileges=s["no_new_privileges"],
        seccomp=_seccomp(s["seccomp"]),
        pids_limit=s["pids_limit"],
        memory=s["memory"],
        cpus=s["cpus"],
        tmpfs=tmpfs,
        mounts=mounts,
        env=s["env"],
        workdir=s["workdir"],
        labels=s["labels"],
        healthcheck=_healthcheck(s["healthcheck"]),
        ulimits={name: Ulimit(**limits) for name, limits in s["ulimits"].items()},
        # A binding that cannot be read is left to the drift comparison (it shows as text).
        ports=tuple(x for x in observe_runtime.ports(host) if not isinstance(x, str)),
        devices=tuple(observe_runtime.devices(host)),
        **{**observe_runtime.runtime_scalars(host), "selinux": tuple(s["selinux"])},
    )


def custom_seccomp_json(inspect: ContainerInspect) -> str | None:
    """The custom seccomp profile the container was created with, as the engine keeps it (the
    JSON itself, in its security options), or None when it has none."""
    for opt in inspect.host_config.security_opt or []:
        spelled = opt.replace(":", "=", 1) if opt.startswith("seccomp:") else opt
        key, sep, value = spelled.partition("=")
        if key == "seccomp" and sep and value.lstrip().startswith("{"):
            return value
    return None


def _own_healthcheck(
    profile: Profile, inspect: ContainerInspect, image: ImageConfig | None
) -> Profile:
    """`profile` with the health check a policy must declare: none where the container runs its
    image's own (a profile without one keeps the image's); a container that turned its image's
    check off is refused, since a profile cannot declare that."""
    image_check = normalise_healthcheck(image.healthcheck) if image is not None else None
    if image_check is None or normalise_healthcheck(inspect.config.healthcheck) != image_check:
        if profile.healthcheck is None and image_check is not None:
            raise UsageError(
                f"container {inspect.short_name} turns off its image's health check "
                "(--no-healthcheck), which a profile cannot declare: it cannot be captured"
            )
        return profile
    return profile.model_copy(update={"healthcheck": None})


def capture_toml(
    inspect: ContainerInspect,
    image: ImageConfig | None,
    name: str | None = None,
    seccomp_file: str | None = None,
) -> str:
    """A policy file with one profile describing the container (`policy capture`). A custom
    seccomp profile is referred to as `seccomp_file` (where the caller writes
    `custom_seccomp_json`); without one, capturing it is refused rather than written as
    something else."""
    from engine.render.interface import render
    from engine.render.toml import TomlProfile, document
    from engine.render.walk import walk

    profile = _own_healthcheck(profile_from_inspect(inspect, image, name), inspect, image)
    if profile.seccomp.mode == "custom":
        if seccomp_file is None:
            raise UsageError(
                f"container {inspect.short_name} runs under a custom seccomp profile "
                f"({profile.seccomp.digest}); it cannot go on standard output with the TOML: "
                "give --output FILE, and the profile is written beside it"
            )
        seccomp = profile.seccomp.model_copy(update={"path": seccomp_file})
        profile = profile.model_copy(update={"seccomp": seccomp})
    body = render(TomlProfile(), walk(profile, None)).value
    header = (
        f"# Captured from container {inspect.id[:12]} ({inspect.short_name}). Review before use.\n"
    )
    if seccomp_file is not None and profile.seccomp.mode == "custom":
        header += f"# Its custom seccomp profile, as the engine had it, is in {seccomp_file}.\n"
    return header + document(profile.name, body)
