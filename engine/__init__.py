"""Everything that talks to a container engine: translate a profile into an engine request,
observe a container, compare the two, launch, audit and report. Imports `policy`, never the
other way round.

The public API is `engine.launch(...)` and `engine.container(...)` (see `engine.api`); they are
imported lazily so that `policy --version` and `policy validate` never pay for the docker SDK.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RunResult", "container", "launch"]


def __getattr__(name: str) -> Any:
    if name in ("launch", "container"):
        from engine import api

        return getattr(api, name)
    if name == "RunResult":
        from engine.launcher.spec import RunResult

        return RunResult
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
