"""Logging (loguru): human lines on stderr, or JSON lines on request.

A library stays quiet unless its user asks (loguru's advice for libraries): the engine's
messages are disabled here, and the CLI and the pytest plugin enable them.

loguru (with the asyncio it imports) costs about 45 ms to import, and a passing `policy run`
logs nothing: so it is imported on the first message, or at once when the process has it
already. `logger` stands for loguru's logger until then; `configure` is applied whenever loguru
arrives.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["configure", "logger"]

_pending: tuple[bool, bool] | None = None  # a `configure` that waits for loguru
_ready = False


def _loguru() -> Any:
    """loguru's logger, with the engine disabled once and any pending configuration applied."""
    global _ready, _pending
    from loguru import logger as real

    if not _ready:
        _ready = True
        real.disable("engine")
    if _pending is not None:
        verbose, log_json = _pending
        _pending = None
        _apply(real, verbose, log_json)
    return real


class _OnFirstUse:
    """Any attribute of loguru's logger; the first one imports loguru."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_loguru(), name)


logger: Any = _OnFirstUse()

if "loguru" in sys.modules:  # already paid for: behave exactly as an eager import would
    _loguru()


def configure(verbose: bool = False, log_json: bool = False) -> None:
    """The CLI's sink: stderr for people, or JSON lines."""
    global _pending
    _pending = (verbose, log_json)
    if _ready or "loguru" in sys.modules:
        _loguru()


def _apply(real: Any, verbose: bool, log_json: bool) -> None:
    real.remove()
    level = "DEBUG" if verbose else "INFO"
    if log_json:
        real.add(sys.stderr, level=level, serialize=True)
    else:
        real.add(
            sys.stderr,
            level=level,
            format="<level>{level: <7}</level> {message}",
            colorize=sys.stderr.isatty(),
        )
    real.enable("engine")
