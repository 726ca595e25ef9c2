"""An append-only JSON-lines file of launch records (see `interface.HistoryStore`).

One record is one line: `json.dumps` escapes newlines, and each record is one `write` to a file
opened in append mode, so concurrent workers never interleave within a line and nothing already
in the file is rewritten.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from engine.history.interface import LaunchRecord

RECORD_ENV = "POLICY_RECORD"


def default_path() -> Path:
    """$POLICY_RECORD, else $XDG_STATE_HOME (or ~/.local/state)/container-policy/launches.jsonl."""
    if os.environ.get(RECORD_ENV):
        return Path(os.environ[RECORD_ENV])
    state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "container-policy" / "launches.jsonl"


class JsonLinesStore:
    """See `HistoryStore`."""

    def __init__(self, path: Path) -> None:
        self.path = path.absolute()

    @property
    def name(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonLinesStore) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def append(self, record: LaunchRecord) -> None:
        line = json.dumps(record.model_dump(mode="json"), sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    def records(self) -> Iterator[LaunchRecord]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    yield LaunchRecord.model_validate(json.loads(line))
                except (ValueError, ValidationError):
                    continue  # a line of another tool, or a torn last line
