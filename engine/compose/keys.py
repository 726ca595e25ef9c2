"""One reader per compose key (or family of keys), each in every form compose accepts, giving
the canonical values of `engine.render.settings`; what it cannot read is a `Note`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from engine.compose.reader import NO_NEW_PRIVILEGES, Reader
from policy import units
from policy.model import Seccomp


def cpus_of_quota(r: Reader) -> float | None:
    quota = r.get("cpu_quota")
    if quota is None:
        return None
    period = r.get("cpu_period") or 100_000
    if not isinstance(quota, int) or not isinstance(period, int) or period <= 0:
        r.note("bad-value", "cpu_quota and cpu_period are microseconds (integers)", "cpu_quota")
        return None
    return round(quota / period, 3)


def security(r: Reader) -> tuple[bool, Seccomp]:
    nnp, seccomp = False, Seccomp(mode="default")
    for i, opt in enumerate(r.get("security_opt") or []):
        text = str(opt)
        key, _, value = text.replace(":", "=", 1).partition("=")
        if text in NO_NEW_PRIVILEGES:
            nnp = True
        elif key == "no-new-privileges" and value == "false":
            nnp = False
        elif key == "seccomp" and value == "unconfined":
            seccomp = Seccomp(mode="unconfined")
        elif key == "seccomp" and value:
            seccomp = seccomp_file(r, value, i)
        elif key in ("apparmor", "label") and value:
            pass  # read by `engine.compose.runtime`
        elif key == "systempaths":
            r.note("not-in-profile", f"security_opt {text!r}: a profile has no {key} setting "
                   "(its default is the engine's)", "security_opt", i)  # fmt: skip
        else:
            r.note("unknown-key", f"security_opt {text!r} is not understood", "security_opt", i)
    return nnp, seccomp


def seccomp_file(r: Reader, value: str, i: int) -> Seccomp:
    from policy.seccomp import read_seccomp_document

    path = Path(value) if value.startswith("/") else r.directory / value
    read = read_seccomp_document(path)
    if isinstance(read, str):
        r.note("bad-value", f"security_opt seccomp: {read}", "security_opt", i)
        return Seccomp(mode="custom", path=str(path), digest="unreadable")
    return read[0].model_copy(update={"path": str(path)})


def tmpfs_entry(r: Reader, text: str, *path: str | int) -> tuple[str, dict[str, Any]]:
    from engine.audit.observe import parse_tmpfs_options

    target, _, opts = text.partition(":")
    spec = parse_tmpfs_options(opts)
    if isinstance(spec["size"], str):
        r.note("bad-value", f"tmpfs {target}: size {spec['size']!r} is not a size", *path)
        spec["size"] = None
    if spec["mode"] is not None and not re.fullmatch(r"[0-7]{1,4}", spec["mode"]):
        r.note("bad-value", f"tmpfs {target}: mode {spec['mode']!r} is not an octal mode", *path)
        spec["mode"] = None
    return target, spec


def volumes(r: Reader) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    mounts, tmpfs = [], {}
    for i, v in enumerate(r.get("volumes") or []):
        if isinstance(v, str):
            entry = short_volume(r, v, i)
        elif isinstance(v, dict):
            entry = long_volume(r, v, i)
        else:
            r.note("bad-value", f"volumes entry {v!r} is neither a string nor a mapping",
                   "volumes", i)  # fmt: skip
            continue
        if entry is None:
            continue
        if entry["type"] == "tmpfs":
            tmpfs[entry["target"]] = entry["spec"]
        else:
            mounts.append(entry)
    return sorted(mounts, key=lambda m: str(m["target"])), tmpfs


def host(r: Reader, source: str) -> str:
    return str((r.directory / source).resolve()) if not source.startswith("/") else source


def short_volume(r: Reader, text: str, i: int) -> dict[str, Any] | None:
    parts = text.split(":")
    if len(parts) == 1:
        r.note("not-in-profile", f"volumes {text!r}: an anonymous volume; a profile mounts only "
               "bind mounts and tmpfs", "volumes", i, field="mounts")  # fmt: skip
        return {"type": "volume", "source": "", "target": parts[0], "writable": True}
    source, target, mode = parts[0], parts[1], ":".join(parts[2:])
    options = set(filter(None, mode.split(",")))
    unknown = options - {"ro", "rw"}
    if unknown:
        r.note("unknown-key", f"volumes {text!r}: option(s) {', '.join(sorted(unknown))} are "
               "not understood (SELinux relabelling, propagation)", "volumes", i)  # fmt: skip
    bind = source.startswith(("/", ".", "~"))
    if not bind:
        r.note("not-in-profile", f"volumes {text!r}: named volume '{source}'; a profile mounts "
               "only bind mounts and tmpfs", "volumes", i, field="mounts")  # fmt: skip
    return {
        "type": "bind" if bind else "volume",
        "source": host(r, str(Path(source).expanduser())) if bind else source,
        "target": target,
        "writable": "ro" not in options,
    }


def _octal(mode: Any) -> str:
    """A tmpfs mode as the audit spells it (octal digits): YAML gives an integer (`0o1777`, or
    `01777` in YAML 1.1) or a string of octal digits."""
    if isinstance(mode, bool) or not isinstance(mode, int | str):
        raise ValueError(f"expected an octal mode such as 1777, got {mode!r}")
    return f"{mode if isinstance(mode, int) else int(mode, 8):o}"


def long_volume(r: Reader, v: dict[str, Any], i: int) -> dict[str, Any] | None:
    kind, target = v.get("type"), v.get("target")
    known = {"type", "source", "target", "read_only", "bind", "tmpfs", "volume", "consistency"}
    for key in sorted(set(v) - known):
        r.note("unknown-key", f"volumes: key '{key}' is not understood", "volumes", i, key)
    if not isinstance(target, str):
        r.note("bad-value", "volumes: a long-syntax volume needs a target", "volumes", i)
        return None
    if kind == "tmpfs":
        opts = v.get("tmpfs") or {}
        if not isinstance(opts, dict):
            r.note("bad-value", f"volumes: tmpfs options must be a mapping, got {opts!r}",
                   "volumes", i, "tmpfs")  # fmt: skip
            opts = {}
        size = r.parsed(units.parse_size, opts.get("size"), "volumes", str(i), "tmpfs", "size")
        mode = r.parsed(_octal, opts.get("mode"), "volumes", str(i), "tmpfs", "mode")
        return {"type": "tmpfs", "target": target,
                "spec": {"size": size, "mode": mode, "options": []}}  # fmt: skip
    bind_opts = v.get("bind") or {}
    if not isinstance(bind_opts, dict):
        r.note("bad-value", f"volumes: bind options must be a mapping, got {bind_opts!r}",
               "volumes", i, "bind")  # fmt: skip
        bind_opts = {}
    read_only = v.get("read_only", False)
    if not isinstance(read_only, bool):
        r.note("bad-value", f"volumes: read_only must be true or false, got {read_only!r}",
               "volumes", i, "read_only")  # fmt: skip
        read_only = True  # what the file meant is unknown; never read as writable
    for key in sorted(set(bind_opts) - {"create_host_path"}):
        r.note("unknown-key", f"volumes: bind option '{key}' is not understood (a profile "
               "has the engine's default propagation)", "volumes", i, "bind", key)  # fmt: skip
    source = str(v.get("source") or "")
    if kind != "bind":
        r.note("not-in-profile", f"volumes: a {kind} mount at {target}; a profile mounts only "
               "bind mounts and tmpfs", "volumes", i, field="mounts")  # fmt: skip
    return {
        "type": str(kind),
        "source": host(r, source) if kind == "bind" else source,
        "target": target,
        "writable": not read_only,
    }


def env(r: Reader) -> dict[str, str]:
    out: dict[str, str] = {}
    files = r.get("env_file") or []
    for i, name in enumerate([files] if isinstance(files, str) else files):
        path = r.directory / str(name.get("path") if isinstance(name, dict) else name)
        from engine.compose.document import dotenv_file

        read = dotenv_file(path)
        if read is None:
            r.note("bad-value", f"env_file {path}: cannot be read", "env_file", i)
        else:
            out.update(read)
    for key, value in (r.get("environment") or {}).items():
        if value is None:  # `- NAME`: the value comes from the shell running compose
            if key not in r.env:
                r.note("unset-variable", f"environment {key} takes its value from the shell, "
                       "where it is not set", "environment", key, field="env")  # fmt: skip
                continue
            value = r.env[key]
        out[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def healthcheck(r: Reader) -> dict[str, Any] | None:
    hc = r.get("healthcheck")
    if not isinstance(hc, dict) or hc.get("disable"):
        return None
    test = hc.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    if not isinstance(test, list) or not test:
        r.note("bad-value", "healthcheck.test must be a list or a string", "healthcheck", "test")
        return None
    if test == ["NONE"]:
        return None
    out: dict[str, Any] = {"test": [str(t) for t in test]}
    for key in ("interval", "timeout", "start_period"):
        seconds = r.parsed(units.parse_duration, hc.get(key), "healthcheck", key)
        if seconds:
            out[key] = round(seconds, 3)
    if hc.get("retries"):
        out["retries"] = hc["retries"]
    for key in sorted(set(hc) - {"test", "interval", "timeout", "start_period", "retries",
                                 "disable"}):  # fmt: skip
        r.note("unknown-key", f"healthcheck.{key} is not understood", "healthcheck", key)
    return out


def devices(r: Reader) -> list[str]:
    """`host:container:permissions`, as the audit spells a device (permissions `rwm` unless
    given)."""
    out = []
    for i, d in enumerate(r.get("devices") or []):
        if isinstance(d, dict):
            host, container = str(d.get("source")), str(d.get("target") or d.get("source"))
            perms = str(d.get("permissions") or "rwm")
        else:
            host, container, perms = [*str(d).split(":"), "", ""][:3]
            container, perms = container or host, perms or "rwm"
        if not (_DEVICE.fullmatch(host) and _DEVICE.fullmatch(container)) or set(perms) - set(
            "rwm"
        ):
            r.note("bad-value", f"devices {d!r} is not HOST[:CONTAINER[:rwm]]", "devices", i)
            continue
        out.append(f"{host}:{container}:{''.join(c for c in 'rwm' if c in perms)}")
    return sorted(out)


_DEVICE = re.compile(r"/[^:,\s]+")
_PORT = re.compile(r"[0-9]{1,5}")


def _port_text(host: str, host_port: str, container: str, protocol: str) -> str:
    """`docker run --publish` spelling, as the audit spells a published port."""
    address = f"[{host}]" if ":" in host else host
    return f"{address}:{host_port}:{container}/{protocol}"


def _ports_of(text: str) -> list[str]:
    spec, _, protocol = text.partition("/")
    parts = spec.rsplit(":", 2) if not spec.startswith("[") else _bracketed(spec)
    host, host_port, container = (["0.0.0.0", "", *parts][-3:]) if len(parts) < 3 else parts
    host = host.strip("[]") or "0.0.0.0"
    numbers = [n for n in (*host_port.split("-"), *container.split("-")) if n]
    if not container or not all(_PORT.fullmatch(n) and 0 < int(n) < 65536 for n in numbers):
        raise ValueError(text)
    if protocol not in ("", "tcp", "udp", "sctp"):
        raise ValueError(text)
    if "-" in container:  # a range: one entry per port, as the engine binds them
        first, _, last = container.partition("-")
        h_first = host_port.partition("-")[0]
        return [
            _port_text(host, str(int(h_first) + i) if h_first else "", str(port), protocol or "tcp")
            for i, port in enumerate(range(int(first), int(last) + 1))
        ]
    return [_port_text(host, host_port, container, protocol or "tcp")]


def _bracketed(spec: str) -> list[str]:
    host, _, rest = spec[1:].partition("]")  # "[::1]:8080:80": the rest is ":8080:80"
    return [host, *rest.removeprefix(":").split(":", 1)]


def ports(r: Reader) -> list[str]:
    out = []
    for i, p in enumerate(r.get("ports") or []):
        try:
            if isinstance(p, dict):
                host = str(p.get("host_ip") or "")
                spec = f"[{host}]" if ":" in host else host
                text = f"{spec}:{p.get('published') or ''}:{p.get('target')}"
                out.extend(_ports_of(f"{text}/{p.get('protocol') or 'tcp'}"))
                continue
            out.extend(_ports_of(str(p)))
        except ValueError:
            r.note("bad-value", f"ports {p!r} is not a port mapping", "ports", i)
    return sorted(set(out))


def ulimits(r: Reader) -> dict[str, dict[str, int]]:
    """`{name: {"soft": N, "hard": M}}`, as the audit reads a container's ulimits."""
    out: dict[str, dict[str, int]] = {}
    for name, value in sorted((r.get("ulimits") or {}).items()):
        pair = (value.get("soft"), value.get("hard")) if isinstance(value, dict) else (value, value)
        soft, hard = pair
        if not isinstance(soft, int) or not isinstance(hard, int) or bool in map(type, pair):
            r.note("bad-value", f"ulimits.{name}: expected numbers, got {value!r}", "ulimits", name)
            continue
        out[str(name)] = {"soft": soft, "hard": hard}
    return out


def capabilities(r: Reader, key: str) -> tuple[str, ...]:
    out = []
    for i, cap in enumerate(r.get(key) or []):
        parsed = r.parsed(units.parse_capability, cap, key, str(i))
        if parsed:
            out.append(parsed)
    return tuple(sorted(set(out)))


def user(r: Reader) -> str | None:
    user = r.get("user")
    if user is None:
        return None
    try:
        return units.format_user(*units.parse_user(user))
    except units.UnitError:
        return str(user)  # a name: kept, and the rules say what that means


def network(r: Reader) -> str:
    mode = r.get("network_mode")
    if mode is not None:
        return str(mode)
    networks = r.get("networks")
    names = list(networks) if isinstance(networks, dict | list) else []
    if len(names) > 1:
        r.note("not-in-profile", "the service joins several networks; a profile has one",
               "networks", field="network")  # fmt: skip
    # Without either, compose attaches the project's own network, not the default bridge: the
    # engine network it creates is named after the project (and so is every network it joins).
    return f"{project_name(r)}_{names[0] if names else 'default'}"


def project_name(r: Reader) -> str:
    """The project name docker-compose gives the directory: `COMPOSE_PROJECT_NAME`, else the
    directory's name lowercased, without what compose strips."""
    name = r.env.get("COMPOSE_PROJECT_NAME") or r.directory.resolve().name
    return re.sub(r"[^-_a-z0-9]", "", name.lower()) or "default"
