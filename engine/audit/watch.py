"""`policy audit --watch`: audit each container as it starts (or is updated), until stopped.

`Watcher.events()` yields what happens (ready, a container audited, an error) and never prints;
the CLI prints and picks the exit code.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from engine.audit.auditor import Auditor, ImageConfigs
from engine.audit.findings import ContainerReport
from engine.backends.interface import Engine, EventStream
from policy.errors import EngineError

EVENTS = {"type": ["container"], "event": ["start", "update"]}


@dataclass(frozen=True)
class Ready:
    """Every engine's event stream is open: a container started from now on is seen."""

    engines: int


@dataclass(frozen=True)
class Audited:
    report: ContainerReport


@dataclass(frozen=True)
class WatchError:
    message: str


WatchEvent = Ready | Audited | WatchError


class Watcher:
    """Follows the events of `engines` and audits each container that starts."""

    def __init__(self, auditor: Auditor, engines: list[Engine], filters: dict[str, Any]) -> None:
        self.auditor = auditor
        self.engines = engines
        self.filters = filters
        self._queue: queue.Queue[WatchEvent | None] = queue.Queue()
        self._streams: list[EventStream] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def events(self) -> Iterator[WatchEvent]:
        """Until every stream has ended (or `stop`). Waits in short steps so Ctrl-C is seen."""
        ready = [threading.Event() for _ in self.engines]
        threads = [
            threading.Thread(target=self._follow, args=(e, r), daemon=True)
            for e, r in zip(self.engines, ready, strict=True)
        ]
        for t in threads:
            t.start()
        for event in ready:
            event.wait()
        yield Ready(len(self.engines))
        ended = 0
        while ended < len(threads):
            try:
                item = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                ended += 1
            else:
                yield item

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for stream in self._streams:
                stream.close()

    def _check(self, engine: Engine, images: ImageConfigs, container: str) -> None:
        # The events API filters by label but not by name or id: apply the audit's own
        # filters through the container list, exactly as a one-shot audit does.
        if self.filters and not engine.containers({**self.filters, "id": [container]}):
            return
        inspect = engine.inspect_if_exists(container)
        if inspect is not None:
            report = self.auditor.evaluate(
                engine.name,
                inspect,
                images.config(inspect.image),
                engine.kind(),
                engine.network_scope,
            )
            self._queue.put(Audited(report))

    def _follow(self, engine: Engine, ready: threading.Event) -> None:
        try:
            labels = {k: v for k, v in self.filters.items() if k == "label"}
            stream = engine.events({**EVENTS, **labels})
        except EngineError as exc:
            self._queue.put(WatchError(exc.message))
            ready.set()
            self._queue.put(None)
            return
        with self._lock:
            self._streams.append(stream)
        ready.set()
        images = ImageConfigs(engine)
        try:
            for event in stream:
                if event.container:
                    try:
                        self._check(engine, images, event.container)
                    except EngineError as exc:  # one event that cannot be audited: go on
                        self._queue.put(WatchError(f"{event.container[:12]}: {exc.message}"))
        except Exception as exc:  # the stream ends: closed by stop(), or the engine went away
            if not self._stopping.is_set():
                self._queue.put(WatchError(f"lost the event stream of {engine.name}: {exc}"))
        finally:
            self._queue.put(None)
