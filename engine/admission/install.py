"""What the engine needs to use the plugin: the `authorization-plugins` key of daemon.json (or
the `--authorization-plugin=NAME` flag), and the socket where it looks for `NAME`.

Both directions are idempotent: installing a name that is there, or removing one that is not,
changes nothing (and `--write` then writes nothing). A daemon.json that is not a JSON object is
never overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.admission.errors import AdmissionError

KEY = "authorization-plugins"
DAEMON_JSON = Path("/etc/docker/daemon.json")


@dataclass(frozen=True)
class Change:
    """daemon.json before and after; `changed` False when it already says what is wanted."""

    path: Path
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def text(self) -> str:
        return json.dumps(self.after, indent=2, sort_keys=True)


def read_daemon_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError) as exc:
        raise AdmissionError(f"{path}: cannot read it as JSON ({exc}); not changing it") from None
    if not isinstance(document, dict):
        raise AdmissionError(f"{path}: not a JSON object; not changing it")
    return document


def plan(path: Path, name: str, install: bool) -> Change:
    """daemon.json with `name` added to (or removed from) its authorization plugins."""
    before = read_daemon_json(path)
    plugins = before.get(KEY, [])
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        raise AdmissionError(f"{path}: {KEY} is not a list of names; not changing it")
    after = dict(before)
    if install and name not in plugins:
        after[KEY] = [*plugins, name]
    elif not install and name in plugins:
        rest = [p for p in plugins if p != name]
        if rest:
            after[KEY] = rest
        else:
            del after[KEY]
    return Change(path, before, after)


def write(change: Change) -> None:
    """Write daemon.json atomically (a failed write leaves the old file), keeping its mode."""
    import os
    import tempfile

    path = change.path
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(change.text + "\n")
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise AdmissionError(f"{path}: {exc.strerror or exc}") from None
