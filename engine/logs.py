"""Logging (loguru): human lines on stderr, or JSON lines on request.

A library stays quiet unless its user asks (loguru's advice for libraries): the engine's
messages are disabled here, and the CLI and the pytest plugin enable them.
"""

from __future__ import annotations

import sys

from loguru import logger

logger.disable("engine")

__all__ = ["configure", "logger"]


def configure(verbose: bool = False, log_json: bool = False) -> None:
    """The CLI's sink: stderr for people, or JSON lines."""
    logger.remove()
    level = "DEBUG" if verbose else "INFO"
    if log_json:
        logger.add(sys.stderr, level=level, serialize=True)
    else:
        logger.add(
            sys.stderr,
            level=level,
            format="<level>{level: <7}</level> {message}",
            colorize=sys.stderr.isatty(),
        )
    logger.enable("engine")
