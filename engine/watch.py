"""`policy audit --watch`: audit each container as it starts (or is updated), until Ctrl-C."""

from __future__ import annotations

import json
import sys
import threading
from typing import Any

from engine.audit import Auditor
from engine.docker_engine import DockerEngine
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

    def follow(engine: DockerEngine) -> None:
        try:
            events = engine.events(
                {**EVENTS, **{k: v for k, v in filters.items() if k in ("label", "name", "id")}}
            )
            with lock:
                streams.append(events)
            for event in events:
                container = event.get("id") or (event.get("Actor") or {}).get("ID")
                if not container:
                    continue
                inspect = engine.inspect_if_exists(container)
                if inspect is None:
                    continue
                try:
                    image = engine.inspect_image(inspect["Image"]).get("Config") or {}
                except EngineError:
                    image = {}
                report = auditor.audit_container(
                    engine.name, inspect, image, local=engine.url is None
                )
                with lock:
                    for f in report.findings:
                        if f.severity.rank >= threshold.rank:
                            failed.set()
                        if as_json:
                            print(json.dumps(finding_dict(f), default=str), flush=True)
                        else:
                            print(
                                f"{f.host} {report.name} ({report.id[:12]}): "
                                f"{f.severity.value} {f.rule}: {f.message}",
                                flush=True,
                            )
                    if not report.findings and not as_json:
                        print(f"{engine.name} {report.name} ({report.id[:12]}): clean", flush=True)
        except EngineError as exc:
            with lock:
                print(f"policy: error: {exc.message}", file=sys.stderr, flush=True)
            failed.set()
        except Exception:  # the stream is closed on Ctrl-C
            return

    threads = [threading.Thread(target=follow, args=(e,), daemon=True) for e in engines]
    for t in threads:
        t.start()
    print(f"watching {len(engines)} engine(s); Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    except KeyboardInterrupt:
        for s in streams:
            s.close()
        print("stopped watching", file=sys.stderr)
    return 1 if failed.is_set() else 0
