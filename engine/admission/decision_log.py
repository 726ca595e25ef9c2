"""Every decision as one JSON line, the launch record's style: one `write` per line, in append
mode, so concurrent requests never interleave within a line and nothing is rewritten."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from engine.admission.decision import Decision, Mode


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class DecisionLog:
    """Appends decisions and plugin events to `path` (stderr when None)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path.absolute() if path else None
        self._lock = threading.Lock()
        self._handle: TextIO | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8", buffering=1)

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True) + "\n"
        with self._lock:
            (self._handle or sys.stderr).write(line)

    def decision(self, user: str, decision: Decision, mode: Mode) -> None:
        verdict = "allow" if decision.allowed else "refuse"
        if not decision.allowed and mode is Mode.AUDIT:
            verdict = "would-refuse"
        self._write(
            {
                "time": _now(),
                "user": user or None,
                "method": decision.method,
                "path": decision.path,
                "profile": decision.profile,
                "allowed": decision.allowed or mode is Mode.AUDIT,
                "verdict": verdict,
                "mode": mode.value,
                "why": decision.why,
            }
        )

    def event(self, event: str, message: str) -> None:
        self._write({"time": _now(), "event": event, "message": message})
        if self._handle is not None:  # and for whoever watches the plugin's terminal
            print(f"policy admission: {message}", file=sys.stderr)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
