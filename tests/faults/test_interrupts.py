"""SIGINT and SIGTERM at each step of a launch: the interrupt propagates and no container remains.

In-process and deterministic: a `SocketEngine` wrapping the real engine raises KeyboardInterrupt
at a chosen step (that is what the CLI's SIGTERM handler does, and what SIGINT does), and
`engine.launcher.run.run` must let it through after removing the container, found by its name and by
its launch-id label. Then real signals to a `policy run` subprocess while its output streams:
SIGINT -> 130, SIGTERM -> 143.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from engine import labels
from engine.backends.interface import ContainerInspect
from engine.backends.unix_socket import SocketEngine
from engine.launcher.run import run
from engine.launcher.spec import LaunchSpec
from policy.loader import Policy
from tests.helpers import (
    has_traceback,
    main_env,
    none_left,
    of_project,
    removed,
    shipped_options,
    wait_for,
)
from tests.processes import spawned

pytestmark = pytest.mark.engine

READY = "ready-to-be-interrupted"
STREAMING = ["sh", "-c", f"echo {READY}; sleep 30"]


class InterruptingEngine(SocketEngine):
    """The real (main) engine, but KeyboardInterrupt is raised at `step`."""

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step
        self.reached: list[str] = []
        self.output: list[bytes] = []
        self.stopper: threading.Thread | None = None
        self.raised_at: float | None = None

    def _at(self, step: str) -> None:
        self.reached.append(step)
        if step == self.step:
            self.raised_at = time.monotonic()
            raise KeyboardInterrupt

    def create(self, body: dict[str, Any], name: str) -> str:
        self._at("before-create")
        container = super().create(body, name)
        self._at("after-create")  # the reply (the id) is lost: only the name finds it
        return container

    def inspect_container(self, container: str) -> ContainerInspect:
        self._at("while-verifying")
        return super().inspect_container(container)

    def attach(self, container: str) -> Any:
        self._at("before-attach")
        return super().attach(container)

    def start(self, container: str) -> None:
        self._at("before-start")
        super().start(container)
        self._at("after-start")

    def wait(self, container: str, timeout: float | None) -> int:
        if self.step == "while-streaming":
            wait_for(
                lambda: READY.encode() in b"".join(self.output),
                "the container's output",
                deadline=30,
            )
            self._at("while-streaming")
        return super().wait(container, timeout)

    def stop(self, container: str, grace: float) -> None:
        self._at("before-stop")
        if self.step == "while-stopping":
            # The stop is under way (SIGTERM sent, the grace period running) when the signal
            # arrives.
            def stop() -> None:
                with contextlib.suppress(Exception):
                    SocketEngine.stop(self, container, grace)

            self.stopper = threading.Thread(target=stop, daemon=True)
            self.stopper.start()
            time.sleep(0.3)
            self._at("while-stopping")
        super().stop(container, grace)


STEPS = [
    "before-create",
    "after-create",
    "while-verifying",
    "before-attach",
    "before-start",
    "after-start",
    "while-streaming",
    "before-stop",
    "while-stopping",
]


def remaining(client: Any, spec: LaunchSpec) -> list[dict[str, Any]]:
    by_name: list[dict[str, Any]] = client.containers(all=True, filters={"name": spec.name})
    by_label: list[dict[str, Any]] = client.containers(
        all=True, filters={"label": f"{labels.LAUNCH_ID}={spec.launch_id}"}
    )
    return by_name + by_label


PROMPT = 3.0  # seconds from the interrupt to `run` giving it back: a bound, not a benchmark


@pytest.mark.parametrize(
    "step",
    [
        pytest.param(
            s,
            marks=(),
        )
        for s in STEPS
    ],
)
def test_interrupt_at_each_step_propagates_and_removes_the_container(
    step: str, local: Policy, docker_client: Any
) -> None:
    profile = local.profiles["isolation"]
    command: tuple[str, ...] = tuple(STREAMING)
    if step in ("before-stop", "while-stopping"):
        # The profile's timeout ends a bare `sleep` (which ignores SIGTERM as pid 1).
        profile = profile.model_copy(update={"timeout": 1.0})
        command = ("sleep", "30")
    spec = LaunchSpec(
        profile=profile, project=local.project, policy_file="policies/base.toml", command=command
    )
    engine = InterruptingEngine(step)
    with none_left(docker_client.api, lambda: remaining(docker_client.api, spec)):
        with pytest.raises(KeyboardInterrupt):
            run(engine, spec, lambda _stream, data: engine.output.append(data))
        returned = time.monotonic()
        assert engine.reached[-1] == step, engine.reached
        assert remaining(docker_client.api, spec) == []
    if engine.stopper is not None:
        engine.stopper.join(15)
    if step in ("before-create", "after-create", "while-verifying", "before-attach"):
        assert engine.output == []  # never started
    assert engine.raised_at is not None
    took = returned - engine.raised_at
    assert took < PROMPT, f"the interrupt took {took:.1f}s to come back"


# ---------------------------------------------------------------------------------------------
# real signals to `policy run`


def lines_of(stream: Any) -> queue.Queue[str]:
    """The lines of `stream`, as they come, read by a thread."""
    out: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


@pytest.mark.parametrize(("sig", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_while_streaming_exits_128_plus_signal_and_removes_the_container(
    sig: str, code: int, project: Path, docker_client: Any
) -> None:
    argv = ("run", "isolation", *shipped_options(project), "--", *STREAMING)
    try:
        with spawned(*argv, env=main_env(project)) as proc:
            assert proc.stdout is not None
            seen = lines_of(proc.stdout)
            line = seen.get(timeout=60)
            assert line.strip() == READY
            assert of_project(docker_client.api, project), "no container while streaming"
            proc.send_signal(getattr(signal, sig))
            _, err = proc.communicate(timeout=30)
    finally:
        left = removed(docker_client.api, project)
    assert proc.returncode == code, (proc.returncode, err)
    assert "interrupted" in err and not has_traceback(err), err
    assert not left, f"containers left behind: {[c['Names'] for c in left]}"
    records = [json.loads(x) for x in (project / "launches.jsonl").read_text().splitlines()]
    assert [r["outcome"] for r in records] == ["interrupted"], records


@pytest.mark.parametrize(("sig", "code"), [("SIGTERM", 143)])
def test_signal_to_parallel_workers_removes_every_worker(
    sig: str, code: int, project: Path, docker_client: Any
) -> None:
    workers = 2
    argv = ("run", "parallel", "--workers", str(workers), *shipped_options(project), "--")
    try:
        with spawned(*argv, "sleep", "30", env=main_env(project)) as proc:
            wait_for(
                lambda: (
                    len(
                        [
                            c
                            for c in of_project(docker_client.api, project)
                            if c["State"] == "running"
                        ]
                    )
                    == workers
                ),
                f"{workers} running workers",
                deadline=60,
            )
            proc.send_signal(getattr(signal, sig))
            _, err = proc.communicate(timeout=60)
    finally:
        left = removed(docker_client.api, project)
    assert proc.returncode == code, (proc.returncode, err)
    assert not has_traceback(err), err
    assert not left, f"containers left behind: {[c['Names'] for c in left]}"


def test_sigterm_handler_is_what_the_in_process_tests_assume() -> None:
    """The in-process tests stand in for signals with KeyboardInterrupt: check that `main`
    really turns SIGTERM into KeyboardInterrupt (and marks it for exit 143)."""
    from engine.cli import app as cli

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, cli._on_sigterm)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode boundary
    finally:
        signal.signal(signal.SIGTERM, previous)
        cli._terminated = False
