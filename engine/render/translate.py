"""Translate an effective profile into what the engine is given: SDK arguments, a `docker run`
line, or a compose service. One mapping per target, all fed from the same `Profile`.

No value is ever passed through a shell: the `docker run` line is an argv list (quoted with
`shlex.join` only for display), the compose file escapes `$` against interpolation, and image names
are validated by the model so they cannot start with `-`.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from engine import labels as L
from policy import units
from policy.canonical import digest
from policy.errors import UsageError
from policy.loader import resolve_source
from policy.model import Profile, Tmpfs

__version__ = "0.1.0"
CPU_PERIOD = 100_000  # microseconds, the kernel's default CFS period


def cpu_quota(cpus: float) -> int:
    return round(cpus * CPU_PERIOD)


def reserved_labels(
    profile: Profile,
    policy_file: str,
    launch_id: str | None = None,
    project: Path | None = None,
    image: str | None = None,
) -> dict[str, str]:
    out = {
        L.PROFILE: profile.name,
        L.DIGEST: digest(profile),
        L.POLICY: policy_file,
        L.ENGINE_VERSION: __version__,
    }
    if project is not None:
        out[L.PROJECT] = str(project)
    if launch_id:
        out[L.LAUNCH_ID] = launch_id
    if image is not None and image != profile.image:
        out[L.IMAGE] = image  # `--image`: the audit expects this image, not the profile's
    return out


def tmpfs_option(spec: Tmpfs) -> str:
    """The engine's tmpfs option string (`size=100m,mode=1777,nosuid,...`)."""
    parts = [f"size={units.format_size(spec.size)}"]
    if spec.mode is not None:
        parts.append(f"mode={spec.mode:o}")
    parts.extend(spec.options)
    return ",".join(parts)


def security_options(profile: Profile, seccomp_inline: bool) -> list[str]:
    """`--security-opt` values; the SDK wants the seccomp JSON inline, the CLI a path."""
    out = []
    if profile.no_new_privileges:
        out.append("no-new-privileges:true")
    if profile.seccomp.mode == "unconfined":
        out.append("seccomp=unconfined")
    elif profile.seccomp.mode == "custom" and profile.seccomp.path:
        if seccomp_inline:
            text = Path(profile.seccomp.path).read_text(encoding="utf-8")
            out.append("seccomp=" + json.dumps(json.loads(text)))
        else:
            out.append("seccomp=" + profile.seccomp.path)
    return out


def _check_mount_path(path: Path) -> str:
    text = str(path)
    if any(c in text for c in "\n\r\x00"):
        raise UsageError(f"mount source {text!r} contains a control character")
    return text


def docker_run_argv(
    profile: Profile, project: Path, policy_file: str, command: list[str], image: str | None = None
) -> list[str]:
    """A `docker run` command line equivalent to the profile (see `policy render`)."""
    if profile.healthcheck is not None:
        raise UsageError(
            f"profile '{profile.name}' has an exec-form healthcheck, which `docker run` can "
            "only express through a shell (--health-cmd); use --as compose or `policy run`"
        )
    argv = ["docker", "run", "--rm"]
    if profile.user is not None:
        argv += ["--user", profile.user]
    if profile.read_only:
        argv.append("--read-only")
    if profile.privileged:
        argv.append("--privileged")
    argv += ["--network", profile.network]
    for ns in ("pid", "ipc", "uts"):
        value = getattr(profile, ns)
        if value != "private":
            argv += [f"--{ns}", value]
    for cap in profile.cap_drop:
        argv += ["--cap-drop", cap]
    for cap in profile.cap_add:
        argv += ["--cap-add", cap]
    for opt in security_options(profile, seccomp_inline=False):
        argv += ["--security-opt", opt]
    if profile.pids_limit is not None:
        argv += ["--pids-limit", str(profile.pids_limit)]
    if profile.memory is not None:
        argv += ["--memory", units.format_size(profile.memory)]
    if profile.cpus is not None:
        # Quota and period rather than --cpus: the same limit, but the engine does not refuse
        # a profile that allows more CPUs than this particular host has.
        argv += ["--cpu-period", str(CPU_PERIOD), "--cpu-quota", str(cpu_quota(profile.cpus))]
    for target, spec in sorted(profile.tmpfs.items()):
        argv += ["--tmpfs", f"{target}:{tmpfs_option(spec)}"]
    for mount in profile.mounts:
        source = _check_mount_path(resolve_source(project, mount.source))
        fields = ["type=bind", f"source={source}", f"target={mount.target}"]
        if not mount.writable:
            fields.append("readonly")
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(fields)  # --mount is parsed as CSV
        argv += ["--mount", buffer.getvalue()]
    for key, value in sorted(profile.env.items()):
        argv += ["--env", f"{key}={value}"]
    if profile.workdir is not None:
        argv += ["--workdir", profile.workdir]
    all_labels = {**profile.labels, **reserved_labels(profile, policy_file, image=image)}
    for key, value in sorted(all_labels.items()):
        argv += ["--label", f"{key}={value}"]
    argv.append(image or profile.image)
    argv += command
    return argv


def _escape_compose(value: Any) -> Any:
    """Compose interpolates `$VAR` in every string; `$$` is a literal dollar."""
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, list):
        return [_escape_compose(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape_compose(v) for k, v in value.items()}
    return value


def compose_document(
    profile: Profile, project: Path, policy_file: str, command: list[str], image: str | None = None
) -> dict[str, Any]:
    """A compose file (format 2.4, which has mem_limit, cpus and pids_limit) with one service."""
    service: dict[str, Any] = {"image": image or profile.image}
    if profile.user is not None:
        service["user"] = profile.user
    service["read_only"] = profile.read_only
    if profile.privileged:
        service["privileged"] = True
    service["network_mode"] = profile.network
    for ns in ("pid", "ipc", "uts"):
        if getattr(profile, ns) != "private":
            service[ns] = getattr(profile, ns)
    if profile.cap_drop:
        service["cap_drop"] = list(profile.cap_drop)
    if profile.cap_add:
        service["cap_add"] = list(profile.cap_add)
    opts = [o.replace("seccomp=", "seccomp:", 1) for o in security_options(profile, False)]
    if opts:
        service["security_opt"] = opts
    if profile.pids_limit is not None:
        service["pids_limit"] = profile.pids_limit
    if profile.memory is not None:
        service["mem_limit"] = profile.memory
    if profile.cpus is not None:
        service["cpu_period"] = CPU_PERIOD
        service["cpu_quota"] = cpu_quota(profile.cpus)
    if profile.tmpfs:
        service["tmpfs"] = [f"{t}:{tmpfs_option(s)}" for t, s in sorted(profile.tmpfs.items())]
    if profile.mounts:
        service["volumes"] = [
            {
                "type": "bind",
                "source": _check_mount_path(resolve_source(project, m.source)),
                "target": m.target,
                "read_only": not m.writable,
            }
            for m in profile.mounts
        ]
    if profile.env:
        service["environment"] = dict(sorted(profile.env.items()))
    if profile.workdir is not None:
        service["working_dir"] = profile.workdir
    if profile.healthcheck is not None:
        hc = profile.healthcheck
        check: dict[str, Any] = {"test": ["CMD", *hc.test]}
        for key in ("interval", "timeout", "start_period"):
            value = getattr(hc, key)
            if value is not None:
                check[key] = units.format_duration(value)
        if hc.retries is not None:
            check["retries"] = hc.retries
        service["healthcheck"] = check
    service["labels"] = dict(
        sorted({**profile.labels, **reserved_labels(profile, policy_file, image=image)}.items())
    )
    if command:
        service["command"] = command
    return {"version": "2.4", "services": {profile.name: _escape_compose(service)}}


def to_yaml(value: Any, indent: int = 0) -> str:
    """YAML for plain data. Every string is a JSON (double-quoted YAML) scalar, so no value can
    change the document's structure however hostile it is."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            head = f"{pad}{json.dumps(str(key))}:"
            if isinstance(item, dict | list) and item:
                lines.append(head)
                lines.append(to_yaml(item, indent + 1))
            else:
                lines.append(f"{head} {_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = to_yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {nested}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return "\n".join(lines)


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value)
