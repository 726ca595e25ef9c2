"""`policy import`: a policy file from a compose file's services.

Each service becomes a profile (`engine.compose.service` reads it, `engine.render.toml` spells
it). Settings every service shares go into `[defaults]` once, which each profile inherits (the
language's root of `extends`); a service that `extends` another of the file becomes a profile
that `extends` its profile, writing only what it changes. Every value carries a comment naming
the compose line it came from; each rule a service breaks is listed as a suggested waiver,
commented out, with a reason to fill in. What cannot be imported faithfully (a key no profile
has, a variable not set, a user name) is written as a comment too and returned, so nothing the
file said disappears silently."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from engine.compose.project import Service, load
from engine.compose.service import Read, read_service
from engine.render.interface import render
from engine.render.toml import TomlProfile, profile_name, spelled
from engine.render.walk import walk
from policy.diagnostics import printable
from policy.evaluate import evaluate
from policy.loader import Policy

# The compose key each profile key is read from (for the comment naming its line).
FROM = {
    "network": "network_mode", "cap_drop": "cap_drop", "cap_add": "cap_add",
    "no_new_privileges": "security_opt", "seccomp": "security_opt", "memory": "mem_limit",
    "env": "environment", "workdir": "working_dir", "mounts": "volumes",
    "apparmor": "security_opt", "selinux": "security_opt", "userns": "userns_mode",
}  # fmt: skip
DEPLOY = {"memory": "memory", "cpus": "cpus", "pids_limit": "pids"}


def inline(value: Any) -> str:
    """`value` as one line of TOML (inline tables and arrays)."""
    import tomli_w

    if isinstance(value, dict):
        items = ", ".join(f"{_key(k)} = {inline(v)}" for k, v in value.items())
        return "{ " + items + " }" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(inline(v) for v in value) + "]"
    return tomli_w.dumps({"v": value})[4:].rstrip("\n")


def _key(key: str) -> str:
    import tomli_w

    return tomli_w.dumps({key: 1}).split(" = ")[0]


def _line(s: Service, key: str) -> str:
    path: tuple[str, ...] = (FROM.get(key, key),)
    if path[0] not in s.data and key in DEPLOY:
        path = ("deploy", "resources", "limits", DEPLOY[key])
    if path[0] not in s.data and key == "tmpfs":
        path = ("volumes",)
    loc = s.at(*path)
    return f"{Path(loc.path).name}:{loc.line}" if loc is not s.header or path[0] in s.data else ""


def _body(read: Read, project: Path) -> dict[str, Any]:
    body = render(TomlProfile(), walk(read.profile, None)).value
    body.pop("image", None)
    mounts = body.get("mounts") or []
    for m in mounts:
        source = Path(m["source"])
        if source.is_absolute() and source.is_relative_to(project):
            m["source"] = str(source.relative_to(project)) or "."
        if not m["writable"]:
            del m["writable"]
    return {"image": read.profile.image, **body}


def import_compose(files: list[Path], policy: Policy) -> tuple[str, list[str]]:
    """(the policy file's text, what could not be imported faithfully)."""
    project = load(files)
    env = dict(os.environ)
    reads = {name: read_service(s, project.directory, env) for name, s in project.services.items()}
    bodies = {name: _body(r, policy.project) for name, r in reads.items()}
    shared = _shared(list(bodies.values())) if len(bodies) > 1 else {}
    problems: list[str] = []
    out = [
        f"# Imported from {', '.join(str(f) for f in files)} by `policy import`.",
        "# Review before use: each value names the compose line it came from.",
        "version = 1",
        "",
    ]
    if shared:
        first = next(iter(project.services.values()))
        out.append("[defaults]  # what every service shares")
        out += [f"{_key(k)} = {inline(v)}  # {_line(first, k)}" for k, v in shared.items()]
        out.append("")
    for name, read in reads.items():
        s = project.services[name]
        pname = profile_name(name)
        out.append(f"[profiles.{_key(pname)}]  # service {name}, {Path(s.header.path).name}:"
                   f"{s.header.line}")  # fmt: skip
        body, parent = bodies[name], s.base if s.base in bodies else None
        if parent is not None:
            # compose's `extends` as the language's: only what the service changes is written.
            out.append(f"extends = {inline(profile_name(parent))}  # {_line(s, 'extends')}")
        for k, v in body.items():
            if k in shared or (parent is not None and bodies[parent].get(k) == v):
                continue
            out.append(f"{_key(k)} = {inline(v)}  # {_line(s, k)}".rstrip(" #"))
        for k in sorted(set(bodies[parent]) - set(body) - set(shared)) if parent else []:
            # The parent sets it, this service has the default: say so, or it would inherit.
            value = spelled(read.profile, k)
            if value is None:
                problems.append(f"service {name}: '{k}' of {parent} cannot be unset in a profile")
            else:
                out.append(f"{_key(k)} = {inline(value)}  # the default, not {parent}'s")
        for note in read.all_notes():  # what the profile holds (PROFILED) is written above
            text = f"service {name}: {note.location}: {note.message}"
            problems.append(text)
            out.append(f"# NOT IMPORTED: {note.location}: {note.message}")
        if read.profile.user is not None and read.profile.uid is None:
            problems.append(f"service {name}: user {read.profile.user!r} is a name; a profile "
                            "needs a numeric uid[:gid]")  # fmt: skip
        out.append("")
        out += _waivers(pname, read, policy)
    # One line each, whatever the compose file holds: a newline in a key or a message would
    # otherwise end a comment and write policy (escaped in a TOML string, the value is the same).
    text = "\n".join(printable(line) for line in out).rstrip("\n") + "\n"
    return text, [printable(p) for p in problems]


def _shared(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k in bodies[0] if k not in ("image", "description")]
    return {k: bodies[0][k] for k in keys if all(k in b and b[k] == bodies[0][k] for b in bodies)}


def _waivers(name: str, read: Read, policy: Policy) -> list[str]:
    expires = dt.date.today() + dt.timedelta(days=90)
    out = []
    seen = set()
    # As `policy validate` will judge the profile: the rules on declarations included.
    for v in evaluate(read.profile.model_copy(update={"name": name}), policy):
        if v.rule in seen:
            continue
        seen.add(v.rule)
        out += [
            f"# Suggested waiver: {v.message}. Fix the profile, or uncomment and give a reason:",
            "# [[waivers]]",
            f"# profile = {inline(name)}",
            f"# rule = {inline(v.rule)}",
            '# reason = "FILL IN: why this profile needs it"',
            f"# expires = {expires.isoformat()}",
            "",
        ]
    return out
