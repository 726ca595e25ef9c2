"""The live views on the real engine (issue 11, item 6): `policy monitor CONTAINER` and the
board of `policy run --workers N`, each as a user runs it, in a separate process: in a pipe (a
CI log: plain lines, no escape sequences) and on a terminal (a pty from the `pty` module:
redrawn in place). A detached container of each test is removed by the test itself."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import Guard, cli, has_traceback, wait_for, write_probe_policy
from tests.processes import policy, policy_command

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]

ESCAPE = "\x1b["
REDRAW = re.compile(r"\x1b\[\d+F\x1b\[J")  # cursor up N lines, clear below: a redraw in place


@pytest.fixture
def options(project: Path) -> tuple[str, ...]:
    return ("--policies", str(write_probe_policy(project)), "--project", str(project))


@pytest.fixture
def detach(options: tuple[str, ...], guard: Guard) -> Iterator[Callable[[str], str]]:
    """Start a detached container running a script; every one is removed afterwards."""
    started: list[str] = []

    def start(script: str) -> str:
        code, out, err = cli("run", "probe", "--detach", *options, "--", "sh", "-c", script)
        assert code == 0, err
        started.append(out.strip())
        return started[-1]

    yield start
    for container in started:
        subprocess.run(["docker", "rm", "-f", "-v", container], capture_output=True, check=False)


def on_a_terminal(
    args: list[str], interrupt_when: Callable[[str], bool] | None = None, deadline: float = 60
) -> tuple[int, str]:
    """`policy ARGS...` with a pty for stdin, stdout and stderr: its exit code and all it wrote.
    With `interrupt_when`, Ctrl-C (SIGINT) once what it wrote so far satisfies it."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes `policy`, its terminal the pty
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        command = policy_command()
        os.execv(command[0], [*command, *args])
    chunks: list[bytes] = []
    end = time.monotonic() + deadline
    interrupted = False
    try:
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            text = b"".join(chunks).decode(errors="replace")
            if interrupt_when and not interrupted and interrupt_when(text):
                os.kill(pid, signal.SIGINT)
                interrupted = True
        else:
            pytest.fail(f"policy {' '.join(args)} on a terminal did not end in {deadline:.0f}s")
    finally:
        # It closed the terminal as it exits: give it a moment to be reaped, and if it is still
        # there (the test failed before it ended), kill it: it must not outlive the test.
        reaped, status = os.waitpid(pid, os.WNOHANG)
        until = time.monotonic() + 10
        while reaped == 0 and time.monotonic() < until:
            time.sleep(0.05)
            reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == 0:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# policy monitor

HOLD = "dd if=/dev/zero of=/tmp/fill bs=1M count=30 2>/dev/null; sleep 3"
LINE = re.compile(r"^ *[0-9.]+s, memory [0-9.]+ MiB of 256 MiB \(\d+%\)", re.MULTILINE)


def test_monitor_in_a_pipe_prints_a_line_a_sample_until_the_container_ends(
    detach: Callable[[str], str],
) -> None:
    container = detach(HOLD)
    done = policy("monitor", container, "--interval", "500ms", timeout=60)
    assert done.returncode == 0, done.stderr
    assert ESCAPE not in done.stdout and not has_traceback(done.stderr)
    assert len(LINE.findall(done.stdout)) >= 2, done.stdout
    assert "tasks 1 of 256" in done.stdout or "tasks 2 of 256" in done.stdout, done.stdout
    summary = done.stdout[done.stdout.index("the container's main process ended") :]
    peak = re.search(r"memory   peak ([0-9.]+) MiB of 256 MiB", summary)
    assert peak and 30 <= float(peak.group(1)) < 50, summary  # the kernel's counter, at the end
    assert "no violations" in summary


def test_monitor_on_a_terminal_redraws_in_place_and_ctrl_c_exits_0(
    detach: Callable[[str], str],
) -> None:
    container = detach("sleep 60")
    code, out = on_a_terminal(
        ["monitor", container, "--interval", "200ms"],
        interrupt_when=lambda text: len(REDRAW.findall(text)) >= 2,
    )
    assert code == 0, out
    assert len(REDRAW.findall(out)) >= 2 and "memory   peak" in out
    assert "stopped watching; the container goes on" in out
    assert not has_traceback(out)
    state = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Status}}", container],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert state.stdout.strip() == "running"  # watching never touches the container


def test_monitor_of_a_missing_or_stopped_container_is_exit_2(
    detach: Callable[[str], str],
) -> None:
    done = policy("monitor", "report-no-such-container-0", timeout=30)
    assert done.returncode == 2
    assert "no container 'report-no-such-container-0'" in done.stderr
    assert not has_traceback(done.stderr)
    container = detach("true")

    def status() -> str:
        return subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Status}}", container],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip

    wait_for(lambda: status() == "exited", "the container to exit")
    done = policy("monitor", container, timeout=30)
    assert done.returncode == 2 and "is not running (it is exited)" in done.stderr
    assert not has_traceback(done.stderr)
    done = policy("monitor", container, "--interval", "1ms", timeout=30)
    assert done.returncode == 2 and "between 100ms and 1h" in done.stderr


# ---------------------------------------------------------------------------------------------
# policy run --workers N

WORKERS = 'sleep 1; test "$SHARD_INDEX" != 2'


def test_workers_in_a_ci_log_print_one_line_per_finished_worker(
    options: tuple[str, ...], guard: Guard
) -> None:
    done = policy("run", "probe", "--workers", "3", *options, "--", "sh", "-c", WORKERS)
    assert done.returncode == 1, done.stderr
    assert ESCAPE not in done.stderr and "\r" not in done.stderr
    lines = [x for x in done.stderr.splitlines() if x.startswith("worker ")]
    assert len(lines) == 3, done.stderr
    assert sorted(x.split(":")[0] for x in lines) == ["worker 0", "worker 1", "worker 2"]
    for line in lines:
        failed = line.startswith("worker 2")
        expected = "failed, exit 1" if failed else "passed, exit 0"
        assert f": {expected}, " in line and "memory peak" in line and "of 256 MiB" in line
    assert "running" not in done.stderr and "workers done" not in done.stderr


def test_workers_on_a_terminal_show_state_elapsed_and_memory(
    options: tuple[str, ...], guard: Guard
) -> None:
    code, out = on_a_terminal(
        ["run", "probe", "--workers", "3", *options, "--", "sh", "-c", "sleep 2"]
    )
    assert code == 0, out
    assert len(REDRAW.findall(out)) >= 2, out
    running = re.findall(r"worker (\d): running, [0-9.]+s, memory [0-9.]+ MiB of 256 MiB", out)
    assert set(running) == {"0", "1", "2"}, out
    final = out[out.rindex("3/3 workers done") :]
    assert all(f"worker {i}: passed, exit 0" in final for i in range(3)), final
    assert not has_traceback(out)
