"""A container create body (`POST /containers/create`) as the settings the audit compares.

The request is turned into the documents an inspect of the container would give (`Config`,
`HostConfig`, the engine's `Mounts`), read by the engine's own case-insensitive rules
(`engine_json`), and `engine.audit.observe.observed_settings` makes the canonical settings of
them: the very function launch verification and the audit use, so the plugin, the launcher and
the audit cannot disagree about what a field means.

What the comparison does not cover must be absent: every other `HostConfig` field has to be the
engine's default (`--cgroupns host`, `--device-cgroup-rule`, `--group-add`,
`--volumes-from`, unmasked `/proc` paths...), because no
profile can ask for it. And nothing of `HostConfig` may sit at the top level of the body: the
engine reads HostConfig fields there too (`{"Image": ..., "Privileged": true}` with no
`HostConfig` is a privileged container).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from engine.admission.engine_json import Folded, fold, is_zero, pick
from engine.admission.errors import UnreadableRequest
from engine.audit.observe import observed_settings
from engine.backends.interface import (
    ContainerConfig,
    ContainerInspect,
    DeviceDoc,
    HealthcheckDoc,
    HostConfigDoc,
    HostMount,
    RestartPolicyDoc,
    TmpfsOptionsDoc,
    UlimitDoc,
)
from engine.render.settings import Settings, env_dict

# `Config` fields of API 1.41 that no profile constrains (the command, the terminal, names).
FREE_CONFIG = (
    "Hostname", "Domainname", "AttachStdin", "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
    "StdinOnce", "Cmd", "Entrypoint", "ArgsEscaped", "OnBuild", "StopSignal", "StopTimeout",
    "Shell", "ExposedPorts", "NetworkDisabled", "MacAddress",
)  # fmt: skip
# `Config` fields the comparison reads (`Volumes` become anonymous volume mounts).
COMPARED_CONFIG = ("Image", "User", "Env", "WorkingDir", "Healthcheck", "Labels", "Volumes")
TOP_LEVEL = frozenset(n.lower() for n in (*FREE_CONFIG, *COMPARED_CONFIG)) | {
    "hostconfig",
    "networkingconfig",
}
# `HostConfig` fields the comparison reads (`Binds` become bind mounts).
COMPARED_HOST = (*(f.alias for f in HostConfigDoc.model_fields.values() if f.alias), "Binds")
# `HostConfig` fields with no bearing on isolation, sent by `docker run` as it pleases.
HARMLESS_HOST = (
    "AutoRemove", "ConsoleSize", "ContainerIDFile", "LogConfig", "Dns",
    "DnsOptions", "DnsSearch", "ExtraHosts", "Init",
)  # fmt: skip
# Defaults that are not Go's zero value: `null` means the engine's masked paths, `[]` none.
NULL_ONLY = frozenset({"maskedpaths", "readonlypaths"})
UNSET = {"memoryswappiness": (None, -1)}
SECURITY_OPTIONS = (
    "no-new-privileges", "seccomp=", "seccomp:", "apparmor=", "apparmor:", "label=", "label:",
)  # fmt: skip
BIND_OPTIONS = frozenset(
    {"ro", "rw", "shared", "slave", "private", "rshared", "rslave", "rprivate"}
)


@dataclass(frozen=True)
class CreateRequest:
    """What a create asks for: its labels (reserved ones included) and its canonical settings."""

    labels: dict[str, str]
    settings: Settings


def _aliases(model: Any) -> tuple[str, ...]:
    return tuple(f.alias for f in model.model_fields.values() if f.alias)


def _not_default(name: str, value: Any) -> bool:
    low = name.lower()
    if low in NULL_ONLY:
        return value is not None
    if low in UNSET:
        return value not in UNSET[low]
    return not is_zero(value)


def _refuse_extras(folded: Folded, allowed: set[str], where: str, why: str) -> None:
    extra = sorted(k for k, v in folded.items() if k not in allowed and _not_default(k, v))
    if extra:
        raise UnreadableRequest(f"{where} sets {', '.join(extra)}: {why}")


def _host_mount(item: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One `HostConfig.Mounts` entry: (as requested, as the engine's `Mounts` would show it)."""
    m = fold(item, "HostConfig.Mounts[]")
    bind = fold(m.get("bindoptions"), "HostConfig.Mounts[].BindOptions")
    _refuse_extras(bind, {"propagation"}, "a mount's BindOptions", "no profile declares it")
    _refuse_extras(
        m,
        {"type", "source", "target", "readonly", "tmpfsoptions", "bindoptions", "consistency"},
        "a mount",
        "no profile declares it (a volume's driver options can bind any host path)",
    )
    requested = pick(m, _aliases(HostMount))
    if "tmpfsoptions" in m:
        requested["TmpfsOptions"] = pick(
            fold(m["tmpfsoptions"], "TmpfsOptions"), _aliases(TmpfsOptionsDoc)
        )
    kind = str(m.get("type") or "")
    if kind == "tmpfs":
        return requested, None  # the comparison reads tmpfs mounts off HostConfig.Mounts
    made = {
        "Type": kind,
        "Source": m.get("source"),
        "Destination": m.get("target"),
        "RW": not m.get("readonly", False),
        "Propagation": bind.get("propagation") or None,
    }
    return requested, made


def _bind(spec: Any) -> dict[str, Any]:
    """One `HostConfig.Binds` entry (`-v SRC:DST[:OPTS]`) as the engine's `Mounts` would show it."""
    if not isinstance(spec, str):
        raise UnreadableRequest(f"HostConfig.Binds: expected strings, got {spec!r}")
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not all(parts[:2]):
        raise UnreadableRequest(
            f"HostConfig.Binds: cannot read {spec!r} as SOURCE:TARGET[:OPTIONS]"
        )
    options = parts[2].split(",") if len(parts) == 3 else []
    unknown = [o for o in options if o not in BIND_OPTIONS]
    if unknown:
        raise UnreadableRequest(f"HostConfig.Binds: {spec!r}: option {unknown[0]!r} is refused")
    propagation = next((o for o in options if o not in ("ro", "rw")), None)
    return {
        "Type": "bind" if parts[0].startswith("/") else "volume",
        "Source": parts[0],
        "Destination": parts[1],
        "RW": "ro" not in options,
        "Propagation": propagation,
    }


def _host_config(host: Folded) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the `HostConfig` document, the engine `Mounts` its mounts and binds would make)."""
    _refuse_extras(
        host,
        {n.lower() for n in (*COMPARED_HOST, *HARMLESS_HOST)},
        "HostConfig",
        "no profile declares it, so it must be the engine's default",
    )
    for opt in host.get("securityopt") or []:
        if not isinstance(opt, str) or not opt.startswith(SECURITY_OPTIONS):
            raise UnreadableRequest(
                f"HostConfig.SecurityOpt {opt!r}: only no-new-privileges, seccomp, apparmor "
                "and label can be declared by a profile"
            )
    doc = pick(host, _aliases(HostConfigDoc))
    made: list[dict[str, Any]] = []
    if host.get("mounts"):
        if not isinstance(host["mounts"], list):
            raise UnreadableRequest("HostConfig.Mounts: expected a list")
        doc["Mounts"] = []
        for item in host["mounts"]:
            requested, shown = _host_mount(item)
            doc["Mounts"].append(requested)
            if shown is not None:
                made.append(shown)
    if host.get("restartpolicy") is not None:
        # The engine reads nested fields case-insensitively too: fold before picking.
        doc["RestartPolicy"] = pick(
            fold(host["restartpolicy"], "HostConfig.RestartPolicy"), _aliases(RestartPolicyDoc)
        )
    if host.get("ulimits"):
        if not isinstance(host["ulimits"], list):
            raise UnreadableRequest("HostConfig.Ulimits: expected a list")
        doc["Ulimits"] = [
            pick(fold(u, "HostConfig.Ulimits[]"), _aliases(UlimitDoc)) for u in host["ulimits"]
        ]
    if host.get("devices"):
        doc["Devices"] = [
            pick(fold(d, "HostConfig.Devices[]"), _aliases(DeviceDoc)) for d in host["devices"]
        ]
    made.extend(_bind(b) for b in host.get("binds") or [])
    return doc, made


def _networking(folded: Folded, network: Any) -> None:
    """Extra networks: a profile names one network; endpoints on others are refused."""
    endpoints = fold(folded.get("networkingconfig"), "NetworkingConfig").get("endpointsconfig")
    if endpoints is None:
        return
    if not isinstance(endpoints, dict):
        raise UnreadableRequest("NetworkingConfig.EndpointsConfig: expected an object")
    others = sorted(set(endpoints) - {str(network or "default")})
    if others:
        raise UnreadableRequest(
            f"NetworkingConfig connects networks {', '.join(others)} besides the network mode "
            f"{network!r}"
        )


def _config(top: Folded) -> dict[str, Any]:
    config = pick(top, _aliases(ContainerConfig))
    if "healthcheck" in top:
        config["Healthcheck"] = pick(
            fold(top["healthcheck"], "Healthcheck"), _aliases(HealthcheckDoc)
        )
    env = top.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise UnreadableRequest("Env: expected a list of strings")
    names = [e.partition("=")[0] for e in env]
    if len(set(names)) != len(names):
        raise UnreadableRequest("Env sets a variable twice (the process would see both)")
    return config


def read_create(body: bytes | None) -> CreateRequest:
    """The create request of `body`, or `UnreadableRequest` saying why it cannot be judged."""
    if not body:
        raise UnreadableRequest(
            "the engine sent the create request without its body (it sends none above 1 MiB or "
            "without a JSON content type), so it cannot be judged"
        )
    from engine.admission.engine_json import decode

    top = fold(decode(body, "the create body"), "the create body")
    _refuse_extras(
        top,
        set(TOP_LEVEL),
        "the create body",
        "not a container config field (the engine reads HostConfig fields at the top level too)",
    )
    host = fold(top.get("hostconfig"), "HostConfig")
    _networking(top, host.get("networkmode"))
    host_doc, mounts = _host_config(host)
    for target in fold(top.get("volumes"), "Volumes"):
        mounts.append({"Type": "volume", "Source": "", "Destination": target, "RW": True})
    try:
        inspect = ContainerInspect.model_validate(
            {"Id": "(request)", "Config": _config(top), "HostConfig": host_doc, "Mounts": mounts}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UnreadableRequest(f"the create body: {where}: {first['msg']}") from None
    # The request is judged as sent, not net of its image: it must ask for what the profile asks.
    settings = observed_settings(inspect, None)
    labels = dict(inspect.config.labels or {})
    if len(env_dict(inspect.config.env)) != len(inspect.config.env or []):
        raise UnreadableRequest("Env sets a variable twice")
    return CreateRequest(labels, settings)
