"""`policy shell` on a terminal, on Docker and on Podman's service: joined to the container
through the engine's API (no `docker` binary), under the profile, its exit code returned,
nothing left behind."""

from __future__ import annotations

import os
import pty
import subprocess
import time

import pytest

from engine.backends.unix_socket import SocketEngine
from engine.labels import PROJECT
from tests.helpers import POLICIES, ROOT
from tests.processes import default_sigint, policy_command

pytestmark = pytest.mark.engine


def _read_all(fd: int, deadline: float) -> bytes:
    out = b""
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the other side closed: the shell ended
            break
        if not chunk:
            break
        out += chunk
    return out


def test_shell_on_a_terminal_runs_under_the_profile(engine_url: str) -> None:
    (ROOT / "test-results").mkdir(exist_ok=True)
    engine = SocketEngine(engine_url)
    # Only this project's containers: other projects on the same engine come and go meanwhile.
    mine = {"label": f"{PROJECT}={ROOT}"}
    before = {c.id for c in engine.containers(mine, all=True)}
    main, child = pty.openpty()
    # No `docker` binary on the PATH: the terminal is joined through the engine's API.
    path = "/nonexistent:" + os.path.dirname(policy_command()[0])
    proc = subprocess.Popen(
        [
            *policy_command(),
            "shell",
            "isolation",
            "--policies",
            str(POLICIES),
            "--host",
            engine_url,
            "--",
            "sh",
            "-c",
            "id -u; tty; exit 3",
        ],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "PATH": path},
        preexec_fn=default_sigint,
    )
    os.close(child)
    try:
        text = _read_all(main, time.monotonic() + 60).decode(errors="replace")
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    assert code == 3, text
    lines = [line.strip() for line in text.splitlines()]
    assert "1001" in lines, text  # the profile's user, on the container's own terminal
    assert any(line.startswith("/dev/pts/") for line in lines), text
    after = {c.id for c in engine.containers(mine, all=True)}
    engine.close()
    assert after <= before, "the shell's container was left behind"
