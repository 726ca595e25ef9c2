"""`policy` as a separate process, as a user runs it: shared by the engine and fault tests."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def policy_command() -> list[str]:
    """The installed console script `policy` next to this interpreter (else `python -c`)."""
    script = Path(sys.executable).parent / "policy"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from engine.cli import main; sys.exit(main())"]


def default_sigint() -> None:
    # A child of a shell that ignores SIGINT would inherit SIG_IGN; Python would then keep it.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def spawn(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[str]:
    """`policy ARGS...` as a separate process, its output piped."""
    return subprocess.Popen(
        [*policy_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        preexec_fn=default_sigint,
    )


@contextlib.contextmanager
def spawned(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """`spawn(ARGS...)`, killed (if it still runs) and reaped afterwards."""
    proc = spawn(*args, env=env, cwd=cwd)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def policy(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`policy ARGS...` run to its end: exit code, stdout, stderr."""
    return subprocess.run(
        [*policy_command(), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        preexec_fn=default_sigint,
        check=False,
    )
