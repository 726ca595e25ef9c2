"""Lines shown on a terminal and redrawn in place (`policy monitor`, `policy run --workers`):
each `show` moves the cursor back over the previous block and clears it. Only for a TTY: the
callers print plain lines otherwise."""

from __future__ import annotations

import threading
from typing import TextIO

CLEAR_BELOW = "\x1b[J"


class InPlace:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.height = 0
        self.lock = threading.Lock()  # workers' threads and the refresher share it

    def show(self, lines: list[str]) -> None:
        with self.lock:
            up = f"\x1b[{self.height}F" if self.height else "\r"
            self.stream.write(up + CLEAR_BELOW + "".join(f"{line}\n" for line in lines))
            self.stream.flush()
            self.height = len(lines)

    def keep(self) -> None:
        """Leave what is shown as it is: the next output goes below it."""
        with self.lock:
            self.height = 0
