"""`policy shell`: a verified container joined to this terminal, through the engine's API.

No `docker` binary is involved. With a terminal, stdin goes to the container in raw mode and the
container's size follows the window; without one, the container's output is streamed and its
exit code returned, as `docker start -a` does.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sys
from collections.abc import Iterator
from typing import Any

from engine.backends.interface import Engine
from engine.launcher.output import OutputPump, OutputSink

CHUNK = 65536


def write_chunk(stream: str, data: bytes) -> None:
    """An `OutputSink` to this process's stdout and stderr."""
    out = sys.stdout if stream == "stdout" else sys.stderr
    out.buffer.write(data)
    out.buffer.flush()


def attached(engine: Engine, container: str, tty: bool, sink: OutputSink = write_chunk) -> int:
    """Start `container` joined to this terminal (or just its output); its exit code."""
    if not tty:
        pump = OutputPump(engine.attach(container), sink)
        engine.start(container)
        code = engine.wait(container, None)
        pump.text()
        return code
    sock = engine.attach_socket(container)
    try:
        engine.start(container)
        with _raw_terminal(), _following_size(engine, container):
            _pump_terminal(sock)
    finally:
        with contextlib.suppress(OSError):
            sock.close()
    return engine.wait(container, None)


def _pump_terminal(sock: Any) -> None:
    """Copy stdin to the container and its output to stdout until the container ends."""
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    while True:
        readable, _, _ = select.select([sock, stdin], [], [])
        if sock in readable:
            data = sock.recv(CHUNK)
            if not data:
                return
            os.write(stdout, data)
        if stdin in readable:
            data = os.read(stdin, CHUNK)
            if not data:
                with contextlib.suppress(OSError):
                    sock.shutdown(1)  # EOF on our side: the shell sees it too
                continue
            sock.sendall(data)


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _following_size(engine: Engine, container: str) -> Iterator[None]:
    def resize(*_: object) -> None:
        size = shutil.get_terminal_size()
        with contextlib.suppress(Exception):  # a resize that fails only costs the layout
            engine.resize(container, size.lines, size.columns)

    resize()
    previous = signal.signal(signal.SIGWINCH, resize)
    try:
        yield
    finally:
        signal.signal(signal.SIGWINCH, previous)
