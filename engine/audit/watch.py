"""`policy audit --watch`: audit each container as it starts (or is updated), until Ctrl-C."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from engine.audit.auditor import Auditor
from engine.backends.docker import DockerEngine
from engine.report.json_format import finding_dict
from policy.diagnostics import Severity
from policy.errors import EngineError

EVENTS = {"type": ["container"], "event": ["start", "update"]}


def watch(
    auditor: Auditor,
    engines: list[DockerEngine],
    filters: dict[str, Any],
    as_json: bool,
    threshold: Severity,
) -> int:
    """Follow every engine's events; one line per finding. Returns 1 if anything failed."""
    lock = threading.Lock()
    failed = threading.Event()
    streams: list[Any] = []
    ready = [threading.Event() for _ in engines]

    def say(line: str, stream: Any = sys.stdout) -> None:
        with lock:
            print(line, file=stream, flush=True)

    def check(engine: DockerEngine, container: str) -> None:
        # The events API filters by label but not by name or id: apply the audit's own
        # filters through the container list, exactly as a one-shot audit does.
        if filters and not engine.containers({**filters, "id": [container]}):
            return
        inspect = engine.inspect_if_exists(container)
        if inspect is None:
            return
        try:
            image = engine.inspect_image(inspect["Image"]).get("Config") or {}
        except EngineError:
            image = {}
        report = auditor.evaluate(engine.name, inspect, image, local=auditor.is_local(engine))
        for f in report.findings:
            if f.severity.rank >= threshold.rank:
                failed.set()
            if as_json:
                say(json.dumps(finding_dict(f), default=str))
            else:
                say(
                    f"{f.host} {report.name} ({report.id[:12]}): "
                    f"{f.severity.value} {f.rule}: {f.message}"
                )
        if not report.findings and not as_json:
            say(f"{engine.name} {report.name} ({report.id[:12]}): clean")

    def follow(index: int, engine: DockerEngine) -> None:
        try:
            events = engine.events({**EVENTS, **{k: v for k, v in filters.items() if k == "label"}})
        except EngineError as exc:
            say(f"policy: error: {exc.message}", sys.stderr)
            failed.set()
            ready[index].set()
            return
        with lock:
            streams.append(events)
        ready[index].set()
        try:
            for event in events:
                container = event.get("id") or (event.get("Actor") or {}).get("ID")
                if not container:
                    continue
                try:
                    check(engine, container)
                except EngineError as exc:  # one event that cannot be audited: say so, go on
                    say(f"policy: error: {container[:12]}: {exc.message}", sys.stderr)
                    failed.set()
        except Exception as exc:  # the stream ends: closed by Ctrl-C, or the engine went away
            if not stopping.is_set():
                say(f"policy: error: lost the event stream of {engine.name}: {exc}", sys.stderr)
                failed.set()

    stopping = threading.Event()
    threads = [
        threading.Thread(target=follow, args=(i, e), daemon=True) for i, e in enumerate(engines)
    ]
    for t in threads:
        t.start()
    for event in ready:
        event.wait()
    # Only now: a container started after this line is seen.
    say(f"watching {len(engines)} engine(s); Ctrl-C to stop", sys.stderr)
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        stopping.set()
        for s in streams:
            s.close()
        say("stopped watching", sys.stderr)
    return 1 if failed.is_set() else 0
