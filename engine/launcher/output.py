"""A container's output, collected in a thread and passed on chunk by chunk as it arrives."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from engine.backends.interface import OutputChunks

OUTPUT_KEPT = 1 << 20  # the last MiB of output is kept in RunResult.output

OutputSink = Callable[[str, bytes], None]


class OutputPump:
    """Reads `chunks` until they end, keeping the last `OUTPUT_KEPT` bytes for the result."""

    def __init__(self, chunks: OutputChunks, sink: OutputSink | None) -> None:
        self.kept = bytearray()
        self.sink = sink
        self.thread = threading.Thread(target=self._pump, args=(chunks,), daemon=True)
        self.thread.start()

    def _pump(self, chunks: OutputChunks) -> None:
        with contextlib.suppress(Exception):  # the stream ends abruptly when a container is killed
            for out, err in chunks:
                for name, data in (("stdout", out), ("stderr", err)):
                    if data:
                        self.kept += data
                        del self.kept[:-OUTPUT_KEPT]
                        if self.sink:
                            self.sink(name, data)

    def text(self, wait: float = 5.0) -> str:
        self.thread.join(wait)
        return self.kept.decode(errors="replace")
