"""What a launch's record says about where it ran: the host, the engine and its version, the
cgroup version, the project's git commit, the writable mounts (for JUnit XML) and the usage.

The engine's version and cgroup version cost two Engine API calls (about 9 ms each on Docker
20.10), so they are asked once per engine and process, in a thread started before the
container is removed: a launch waits for them only if the removal was quicker.
"""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.backends.interface import Engine
    from engine.launcher.spec import LaunchSpec
    from engine.monitor.figures import Usage

WAIT = 3.0  # seconds a record waits for the engine's answers before it goes without them

_lock = threading.Lock()
_engines: dict[str, _EngineFacts] = {}


class _EngineFacts:
    """The version and cgroup version of one engine, asked in the background."""

    def __init__(self, engine: Engine) -> None:
        self.version: str | None = None
        self.cgroup_version: str | None = None
        self.done = threading.Event()
        threading.Thread(target=self._ask, args=(engine,), daemon=True).start()

    def _ask(self, engine: Engine) -> None:
        # Best effort, and in a thread whose exception nobody would see: an engine that has
        # gone (or a fake without these calls) leaves the facts unknown, never the launch failed.
        try:
            # The kind the launch already read (no more calls: Podman's /version and /info cost
            # about a second each).
            kind = engine.kind()
            self.version = kind.version
            self.cgroup_version = kind.info.cgroup_version
        except Exception:
            pass
        finally:
            self.done.set()


class LaunchFacts:
    """Started as a launch ends; `fields` gives the record's optional fields."""

    def __init__(self, engine: Engine, spec: LaunchSpec) -> None:
        self.engine_name = engine.name
        self.spec = spec
        with _lock:
            known = _engines.get(engine.name)
            if known is None or (known.done.is_set() and known.version is None):
                known = _engines[engine.name] = _EngineFacts(engine)
        self.engine = known

    def fields(self, usage: Usage | None) -> dict[str, object]:
        from engine.history.git import commit_of

        self.engine.done.wait(WAIT)
        cgroup = usage.cgroup_version if usage and usage.cgroup_version else None
        return {
            "host": socket.gethostname(),
            "engine": self.engine_name,
            "engine_version": self.engine.version,
            "cgroup_version": cgroup or self.engine.cgroup_version,
            "git_commit": commit_of(self.spec.project),
            "results": tuple(m.source for m in self.spec.walked.mounts if m.writable),
            "usage": usage,
        }


def launch_facts(engine: Engine, spec: LaunchSpec) -> LaunchFacts | None:
    """The facts of a launch ending now, or None when nothing records launches."""
    from engine import history

    return LaunchFacts(engine, spec) if history.active() else None
