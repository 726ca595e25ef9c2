"""The plugin's HTTP server on a unix socket (standard library: `http.server`, one thread per
connection), answering the engine's AuthZ calls with the current judge's decisions.

The socket is made mode 0600 from the start (only root, that is the engine, may ask), a stale
socket left by a killed plugin is replaced, and a live one (another plugin serving that name) is
never taken over. `serve_forever` returns on `shutdown()`; `close()` removes the socket.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from engine.admission.decision import PREFIX, Decision, Mode
from engine.admission.decision_log import DecisionLog
from engine.admission.errors import AdmissionError, UnreadableRequest
from engine.admission.policy_holder import PolicyHolder
from engine.admission.protocol import (
    ACTIVATE,
    ACTIVATION,
    AUTHZ_REQUEST,
    AUTHZ_RESPONSE,
    CONTENT_TYPE,
    answer,
    parse_request,
)

PLUGIN_DIR = Path("/run/docker/plugins")
MAX_REQUEST = 4 * 1024 * 1024  # the engine sends bodies of at most 1 MiB, base64 in JSON


def default_socket(name: str) -> Path:
    """Where the engine looks for a legacy plugin called `name`."""
    return PLUGIN_DIR / f"{name}.sock"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the engine keeps its connection to the plugin alive
    server: AdmissionServer

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_REQUEST:
            self._reply(400, answer(False, f"{PREFIX}: unreadable plugin call", "bad length"))
            return
        raw = self.rfile.read(length)
        if self.path == ACTIVATE:
            self._reply(200, ACTIVATION)
        elif self.path == AUTHZ_REQUEST:
            self._reply(200, self.server.authorize(raw))
        elif self.path == AUTHZ_RESPONSE:
            # Decided before the engine acted; refusing its answer now would undo nothing.
            self._reply(200, answer(True))
        else:
            self._reply(404, {"Err": f"unknown plugin call {self.path[:80]}"})

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # every decision is in the decision log; access lines would only repeat it

    def address_string(self) -> str:
        return "engine"  # a unix socket has no peer address


class AdmissionServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The plugin: `holder` judges, `log` records, `mode` says whether a refusal refuses."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, path: Path, holder: PolicyHolder, mode: Mode, log: DecisionLog) -> None:
        self.socket_path = path
        self.holder = holder
        self.mode = mode
        self.log = log
        _claim(path)
        old = os.umask(0o177)
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)

    def authorize(self, raw: bytes) -> dict[str, Any]:
        """The answer to one AuthZReq: the judge's decision, logged, in this mode."""
        user = ""
        try:
            from engine.admission.engine_json import decode

            request = parse_request(decode(raw, "the engine's AuthZ request"))
            user = request.user
            decision = self.holder.judge.judge(request)
        except UnreadableRequest as exc:
            decision = Decision(False, exc.message)
        except Exception as exc:  # fail closed
            decision = Decision(False, f"internal error: {type(exc).__name__}: {exc}")
        try:
            self.log.decision(user, decision, self.mode)
        except Exception as exc:  # an unlogged decision is refused: the log is the audit trail
            return answer(False, f"{PREFIX}: refused: the decision could not be logged ({exc})")
        if decision.allowed:
            return answer(True, f"{PREFIX}: {decision.why}")
        if self.mode is Mode.AUDIT:
            return answer(True, f"{PREFIX}: would refuse: {decision.why}")
        return answer(False, f"{PREFIX}: refused: {decision.why}")

    def close(self) -> None:
        self.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def _claim(path: Path) -> None:
    """Make `path` free to bind: create its directory, remove a socket nobody answers on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_socket():
        raise AdmissionError(f"{path} exists and is not a socket; not replacing it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1)
        probe.connect(str(path))
    except OSError:
        path.unlink()  # stale: left by a plugin that was killed
        return
    finally:
        probe.close()
    raise AdmissionError(f"another plugin is serving {path}; stop it first")


def serve_in_thread(server: AdmissionServer) -> threading.Thread:
    """Serve in a daemon thread (tests, benchmarks); stop with `server.shutdown()`."""
    thread = threading.Thread(target=server.serve_forever, name="admission", daemon=True)
    thread.start()
    return thread
