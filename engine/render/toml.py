"""Profile -> a policy file in the policy language (`policy capture`).

The output is TOML that `policy validate` reads back: sizes and durations in the language's own
units, only the settings that differ from the engine's defaults (plus the security-relevant ones
written out even at their default, so a reviewer sees them).
"""

from __future__ import annotations

import re
from typing import Any

from engine.render.interface import Renderer
from engine.render.walk import SETTINGS, Walked
from policy import units
from policy.model import Profile, Tmpfs
from policy.runtime_keys import format_ulimit

# Written even when they hold the engine's default: a reviewer reads them first.
ALWAYS = ("read_only", "network", "no_new_privileges", "seccomp")


def profile_name(name: str) -> str:
    """`name` as a valid profile name (what a container name may hold, a profile may not)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", name).strip("-.") or "captured"


def _seccomp(profile: Profile) -> str:
    if profile.seccomp.mode == "custom":
        # A custom profile known only by its hash (a running container) cannot be written back.
        return profile.seccomp.path or "default"
    return profile.seccomp.mode


def _tmpfs(spec: Tmpfs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.size:
        out["size"] = units.format_size(spec.size)
    if spec.mode is not None:
        out["mode"] = f"{spec.mode:o}"
    if spec.options:
        out["options"] = list(spec.options)
    return out


def _value(profile: Profile, name: str) -> Any:
    """One setting in the policy language's spelling."""
    value = getattr(profile, name)
    if name == "seccomp":
        return _seccomp(profile)
    if name == "memory":
        return units.format_size(value)
    if name == "timeout":
        return units.format_duration(value)
    if name in ("cap_drop", "cap_add", "selinux"):
        return list(value)
    if name == "tmpfs":
        return {path: _tmpfs(spec) for path, spec in value.items()}
    if name == "mounts":
        return [
            {"source": m.source, "target": m.target, "writable": m.writable}
            | ({"propagation": m.propagation} if m.propagation else {})
            for m in value
        ]
    if name == "healthcheck":
        check = value.model_dump(exclude_none=True)
        check["test"] = list(value.test)
        for key in ("interval", "timeout", "start_period"):
            if key in check:
                check[key] = units.format_duration(check[key])
        return check
    if name in ("env", "labels", "sysctls"):
        return dict(value)
    if name in ("ports", "devices"):
        return [item.model_dump(exclude_none=True) for item in value]
    if name == "ulimits":
        return {
            n: format_ulimit(u.soft)
            if u.soft == u.hard
            else {"soft": format_ulimit(u.soft), "hard": format_ulimit(u.hard)}
            for n, u in sorted(value.items())
        }
    return value


class TomlProfile(Renderer[dict[str, Any]]):
    """See `Renderer`. Builds the profile's table; `document` wraps it as a policy file."""

    target = "a policy file"
    expresses = frozenset(SETTINGS)

    def build(self, walked: Walked) -> dict[str, Any]:
        p = walked.profile
        return {
            name: _value(p, name) for name in SETTINGS if name in walked.declared or name in ALWAYS
        }


def document(name: str, body: dict[str, Any]) -> str:
    """A policy file holding one profile."""
    import tomli_w

    return tomli_w.dumps({"version": 1, "profiles": {profile_name(name): body}})
