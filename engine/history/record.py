"""Logging (loguru): human lines on stderr, JSON lines on request, and the launch record.

The launch record is an append-only JSON-lines file with one entry per launch: when, who, which
profile and digest, which image, which container, the command, exit code, duration and outcome.
Loguru opens it in append mode; nothing in the project rewrites it.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loguru import logger

RECORD_ENV = "POLICY_RECORD"

# A library stays quiet unless its user asks (the CLI and the pytest plugin enable it).
logger.disable("engine")


def default_record_path() -> Path:
    if os.environ.get(RECORD_ENV):
        return Path(os.environ[RECORD_ENV])
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "container-policy" / "launches.jsonl"


_record_sinks: dict[Path, int] = {}


def add_record_sink(record: Path | None = None) -> Path:
    """Append launch records to `record` (default: `default_record_path()`); idempotent.

    The engine's messages are disabled for library users (loguru's advice for libraries); adding
    a record sink enables them, so the CLI and the pytest plugin write the record.
    """
    path = (record or default_record_path()).absolute()
    if path not in _record_sinks:
        path.parent.mkdir(parents=True, exist_ok=True)
        _record_sinks[path] = logger.add(
            path,
            mode="a",
            format="{message}",
            level="TRACE",
            encoding="utf-8",
            filter=lambda r: "launch_record" in r["extra"],
            catch=True,
        )
    logger.enable("engine")
    return path


def configure(verbose: bool = False, log_json: bool = False, record: Path | None = None) -> None:
    """Set up the CLI's sinks: stderr for people (or JSON lines), and the launch record."""
    logger.remove()
    _record_sinks.clear()
    level = "DEBUG" if verbose else "INFO"
    not_record = lambda r: "launch_record" not in r["extra"]  # noqa: E731
    if log_json:
        logger.add(sys.stderr, level=level, serialize=True, filter=not_record)
    else:
        logger.add(
            sys.stderr,
            level=level,
            format="<level>{level: <7}</level> {message}",
            colorize=sys.stderr.isatty(),
            filter=not_record,
        )
    add_record_sink(record)


def record_launch(**fields: Any) -> None:
    """Append one launch to the record (if a record sink is configured)."""
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "host_user": _user(),
        **fields,
    }
    # Newlines are escaped by json.dumps, so one launch is always exactly one line.
    # TRACE: below loguru's default stderr handler (DEBUG), so API users do not see the record
    # echoed; only the record sink takes it.
    logger.bind(launch_record=True).trace(json.dumps(entry, sort_keys=True))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
