"""Plain helpers shared by the test modules; the fixtures are in the conftest files.

`policy` in-process (`cli`), polling (`wait_for`), policy directories written for a test, and
finding and removing the containers a test started. `policy` as a separate process is in
tests/processes.py, recorded engine documents in tests/documents.py, extra engines in
tests/faults/engines.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine import labels

ROOT = Path(__file__).resolve().parent.parent
POLICIES = ROOT / "policies"
TEST_IMAGE = "simple-test-isolation:latest"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEADLINE = 20.0  # seconds a polled condition may take before the test fails, unless it says


def unavailable(reason: str) -> None:
    """Skip the test, or fail it under CI=true (engine tests are never skipped in CI)."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: engine tests are never skipped)")
    pytest.skip(reason)


def new_name(prefix: str = "cp-test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------------------------------------
# `policy` in-process (as a separate process: tests.processes)


def reset_logging() -> None:
    """Loguru as a fresh `policy` process has it: the engine's messages disabled, no sinks, and
    launches recorded nowhere.

    The CLI, the pytest plugin and the API enable them for the whole process; `cli` resets
    before and after each call so in-process runs behave as the console script does, whatever
    ran before.
    """
    from loguru import logger

    from engine import history

    logger.remove()
    history.reset()
    logger.disable("engine")


def _captured() -> io.TextIOWrapper:
    # With a binary `.buffer`, as `policy run` writes the container's output there.
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="replace", write_through=True)


def text_of(stream: io.TextIOWrapper, errors: str = "replace") -> str:
    """What was written to `stream`, a text wrapper over a BytesIO, text and bytes alike."""
    stream.flush()
    raw = stream.buffer
    assert isinstance(raw, io.BytesIO)
    return raw.getvalue().decode("utf-8", errors=errors)


def cli(*args: str) -> tuple[int, str, str]:
    """`policy ARGS...` in-process: exit code, stdout, stderr. The SIGTERM handler `main`
    installs, and loguru's state, are restored afterwards."""
    from engine.cli import main

    previous = signal.getsignal(signal.SIGTERM)
    out, err = _captured(), _captured()
    reset_logging()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        reset_logging()
    return code, text_of(out), text_of(err)


def has_traceback(text: str) -> bool:
    return "Traceback (most recent call last)" in text


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll `condition` until it returns something truthy; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"gave up after {deadline:.0f}s waiting for {what}")
        time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# policy directories


def write_policies(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write `files` (name -> content, names may have directories) into `root/policies` and
    return that directory."""
    policies = root / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = policies / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return policies


def shipped_options(project: Path) -> tuple[str, ...]:
    """The options of a launch under the shipped policy, with mounts in `project`."""
    return ("--policies", str(POLICIES), "--project", str(project))


def without_none(value: Any) -> Any:
    """`value` with every None in it dropped (TOML has no null), at any depth."""
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


# A policy like the shipped one, with one profile, `probe`, on the test image.
PROBE_POLICY = f"""\
version = 1

[defaults]
user = "1001:1001"
read_only = true
network = "none"
cap_drop = ["ALL"]
no_new_privileges = true
seccomp = "default"
pids_limit = 256
workdir = "/src"
tmpfs."/tmp" = {{ size = "100m", mode = "1777", options = ["nosuid", "nodev", "noexec"] }}
mounts = [
  {{ source = ".", target = "/src" }},
  {{ source = "test-results", target = "/results", writable = true }},
]

[profiles.probe]
image = "{TEST_IMAGE}"
memory = "256m"
cpus = 1
timeout = "30s"
"""


def write_probe_policy(
    project: Path, extra: str = "", header: str = PROBE_POLICY, mounts: str | None = None
) -> Path:
    """`project/policies` with `header` (the probe policy) and `extra` appended to profile
    `probe`; `mounts`, if given, replaces the defaults' `mounts = [...]`."""
    if mounts is not None:
        start = header.index("mounts = [")
        end = header.index("]\n", start) + 2
        header = header[:start] + mounts + header[end:]
    return write_policies(project, {"probe.toml": header + extra})


# ---------------------------------------------------------------------------------------------
# the containers a test started


def main_env(project: Path, **extra: str) -> dict[str, str]:
    """A `policy` subprocess environment for the main engine, its launch record in `project`."""
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    return {**env, "POLICY_RECORD": str(project / "launches.jsonl"), **extra}


def of_project(client: Any, project: Path) -> list[dict[str, Any]]:
    """Containers (any state) launched with `project` as their project directory."""
    found: list[dict[str, Any]] = client.containers(
        all=True, filters={"label": f"{labels.PROJECT}={project.resolve()}"}
    )
    return found


def remove_containers(client: Any, containers: list[dict[str, Any]]) -> None:
    """Remove `containers` (summaries from a listing) and their volumes, whatever their state."""
    for c in containers:
        with contextlib.suppress(Exception):
            client.remove_container(c["Id"], v=True, force=True)


def removed(client: Any, project: Path) -> list[dict[str, Any]]:
    """Remove the containers of `project`; those there were."""
    left = of_project(client, project)
    remove_containers(client, left)
    return left


@contextlib.contextmanager
def none_left(client: Any, find: Callable[[], list[dict[str, Any]]]) -> Iterator[None]:
    """Afterwards (even on failure) remove the containers `find()` lists, and fail if any."""
    try:
        yield
    finally:
        left = find()
        remove_containers(client, left)
    assert not left, f"containers left behind: {[c['Names'] for c in left]}"


@dataclass
class Guard:
    """What makes a container this test's own: its project directory, its id, a command token."""

    projects: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)
    token: str = field(default_factory=lambda: f"cp-{uuid.uuid4().hex[:12]}")

    def owns(self, container: dict[str, Any]) -> bool:
        found = container.get("Labels") or {}
        return (
            found.get(labels.PROJECT) in self.projects
            or container["Id"] in self.ids
            or self.token in (container.get("Command") or "")
        )


def labelled(docker_client: Any) -> list[dict[str, Any]]:
    """Every container carrying the reserved profile label, running or not."""
    found: list[dict[str, Any]] = docker_client.api.containers(
        all=True, filters={"label": labels.PROFILE}
    )
    return found


def guarded(docker_client: Any, project: Path) -> Iterator[Guard]:
    """Yield a `Guard`; afterwards remove the test's leftover containers and fail if any."""
    before = {c["Id"] for c in labelled(docker_client)}
    guard = Guard(projects={str(project.resolve())})
    yield guard
    left = [c for c in labelled(docker_client) if c["Id"] not in before and guard.owns(c)]
    remove_containers(docker_client.api, left)
    names = [(c.get("Names") or ["?"])[0] for c in left]
    assert not left, f"containers left behind by the test: {names}"


def mine(docker_client: Any, guard: Guard, running: bool = False) -> list[dict[str, Any]]:
    """The test's own labelled containers that exist now."""
    return [
        c
        for c in labelled(docker_client)
        if guard.owns(c) and (not running or c.get("State") == "running")
    ]


def status_fields(text: str) -> dict[str, str]:
    """`/proc/PID/status` as {field: value}."""
    return {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in text.splitlines())}
