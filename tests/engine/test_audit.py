"""`policy audit` against the real engine.

Containers launched through `policy run` audit clean; a container labelled like a launched one
but with one setting changed yields exactly one drift finding on that field; unmanaged
containers are judged by the security rules; containers vanishing mid-audit do not break it;
stale and unknown profiles; `--deep`; `--watch`; and `policy capture`.

Every audit here is restricted with `--filter` to the test's own containers, so whatever else
runs on the engine does not disturb the assertions.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import json
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine import labels as L
from engine.audit.auditor import Auditor
from engine.backends.interface import ContainerSummary
from engine.backends.unix_socket import SocketEngine
from policy.canonical import digest
from policy.loader import Policy
from policy.rules import RULES_BY_ID, SENSITIVE_HOST_PATHS
from tests.helpers import POLICIES, ROOT, TEST_IMAGE, cli
from tests.helpers import new_name as _new_name

pytestmark = pytest.mark.engine
MIB = 1 << 20
DEADLINE = 30.0  # seconds, for anything that is polled
# Every container name this module gives contains TOKEN, so a module-end check can prove that
# nothing of this run is left behind, whatever a test forgot.
TOKEN = f"t{uuid.uuid4().hex[:6]}"


def name_for(prefix: str) -> str:
    return _new_name(f"{prefix}-{TOKEN}")


@pytest.fixture(scope="module", autouse=True)
def nothing_left_behind(docker_client: Any) -> Iterator[None]:
    yield
    left = [c["Id"] for c in docker_client.api.containers(all=True, filters={"name": TOKEN})]
    remove_all(docker_client, left)
    assert not left, f"containers of this module left behind: {left}"


# -- helpers --------------------------------------------------------------------------------------


def audit(*args: str, policies: Path = POLICIES) -> tuple[int, dict[str, Any], str]:
    """`policy audit --format json ARGS`: (exit code, the report, stderr)."""
    code, out, err = cli("audit", "--format", "json", "--policies", str(policies), *args)
    assert code in (0, 1), err
    assert "Traceback" not in err
    report: dict[str, Any] = json.loads(out)
    return code, report, err


def findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [f for c in report["containers"] for f in c["findings"]]
    return out + list(report["host_findings"])


def exactly(name: str) -> str:
    """An engine name filter matching this one container name only."""
    return f"name=^/{re.escape(name)}$"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, cwd=ROOT)
    if check:
        assert done.returncode == 0, (args, done.stderr)
    return done


def remove_all(docker_client: Any, refs: list[str]) -> list[str]:
    """Remove the containers (names or ids) and return those still present afterwards."""

    def remove(ref: str) -> None:
        with contextlib.suppress(Exception):
            docker_client.api.remove_container(ref, v=True, force=True)

    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(remove, refs))
    left = []
    for ref in refs:
        with contextlib.suppress(Exception):
            docker_client.api.inspect_container(ref)
            left.append(ref)
    return left


def render_argv(profile: str = "isolation", policies: Path = POLICIES) -> list[str]:
    code, out, err = cli("render", profile, "--policies", str(policies), "--", "sleep", "300")
    assert code == 0, err
    return shlex.split(out.strip())


def detached(argv: list[str], name: str) -> list[str]:
    """A rendered `docker run --rm ...` line as a named, detached container."""
    argv = list(argv)
    i = argv.index("--rm")
    argv[i : i + 1] = ["-d", "--name", name]
    return argv


def without_reserved_labels(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, word in enumerate(argv):
        if skip:
            skip = False
            continue
        if word == "--label" and L.is_reserved(argv[i + 1]):
            skip = True
            continue
        out.append(word)
    return out


def with_launch_labels(argv: list[str], profile: str, policy: Policy) -> list[str]:
    """Add the labels a `policy run` launch carries beyond the rendered ones (launch id and
    project), so the container is labelled exactly like a launched one."""
    labels = L.reserved(
        profile,
        digest(policy.profiles[profile]),
        policy.declared[profile].source.display,
        launch_id=uuid.uuid4().hex[:16],
        project=str(policy.project),
    )
    image = argv.index(policy.profiles[profile].image)
    argv = list(argv)
    for key in (L.LAUNCH_ID, L.PROJECT):
        argv[image:image] = ["--label", f"{key}={labels[key]}"]
        image += 2
    return argv


@pytest.fixture
def launched(docker_client: Any, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """`launch(profile, *cmd)`: `policy run PROFILE --detach` in-process; returns the id.
    Every container launched is removed afterwards, and none may remain."""
    ids: list[str] = []
    record = tmp_path / "launches.jsonl"

    def launch(profile: str, *cmd: str, policies: Path = POLICIES, image: str | None = None) -> str:
        extra = ("--image", image) if image else ()
        code, out, err = cli(
            "run", profile, "--detach", "--policies", str(policies), "--record",
            str(record), *extra, "--", *(cmd or ("sleep", "300")),
        )  # fmt: skip
        assert code == 0, err
        container = out.strip()
        assert re.fullmatch(r"[0-9a-f]{64}", container), out
        ids.append(container)
        return container

    try:
        yield launch
    finally:
        left = remove_all(docker_client, ids)
    assert not left, f"containers left behind: {left}"


@pytest.fixture
def started(
    docker_client: Any, container_names: list[str]
) -> Callable[[list[str]], subprocess.CompletedProcess[str]]:
    """`start(argv)`: run a `docker run -d --name NAME ...` argv; NAME is removed afterwards."""

    def start(argv: list[str]) -> subprocess.CompletedProcess[str]:
        container_names.append(argv[argv.index("--name") + 1])
        return docker(*argv[1:])

    return start


# -- 1. launched containers audit clean -----------------------------------------------------------


@pytest.mark.parametrize("profile", ["isolation", "full", "jit"])
def test_launched_containers_audit_clean(
    profile: str, launched: Callable[..., str], docker_client: Any
) -> None:
    container = launched(profile)
    code, report, err = audit("--filter", f"id={container}")
    assert code == 0, report
    [entry] = report["containers"]
    assert (entry["id"], entry["profile"], entry["findings"]) == (container, profile, [])
    assert report["summary"] == {
        "containers": 1,
        "findings": 0,
        "errors": 0,
        "warnings": 0,
        "notes": 0,
    }
    assert "1 container(s), 0 finding(s)" in err
    # The table says the same.
    code, out, _ = cli("audit", "--policies", str(POLICIES), "--filter", f"id={container}")
    assert code == 0
    assert out.strip().splitlines()[-1] == (
        "1 container(s) on 1 host(s): 1 clean, 0 error(s), 0 warning(s)"
    )


# -- 2. one field changed by hand: exactly one drift on that field --------------------------------

Mutation = Callable[[list[str]], list[str]]


def _set(flag: str, value: str) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        argv[argv.index(flag) + 1] = value
        return argv

    return mutate


def _replace(word: str, new: str) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        argv[argv.index(word)] = new
        return argv

    return mutate


def _drop(flag: str, count: int = 1, containing: str = "") -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        i = next(
            i for i, w in enumerate(argv) if w == flag and (count == 1 or containing in argv[i + 1])
        )
        del argv[i : i + count]
        return argv

    return mutate


def _add(*words: str) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        image = argv.index(TEST_IMAGE)
        argv[image:image] = list(words)
        return argv

    return mutate


def _edit(flag: str, change: Callable[[str], str], containing: str = "") -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        i = next(i for i, w in enumerate(argv) if w == flag and containing in argv[i + 1])
        new = change(argv[i + 1])
        assert new != argv[i + 1], f"{flag} {argv[i + 1]} unchanged"
        argv[i + 1] = new
        return argv

    return mutate


def _tmpfs_size(value: str) -> str:
    return re.sub(r"size=[^,]+", "size=7m", value)


def _tmpfs_option(value: str) -> str:
    target, _, options = value.partition(":")
    parts = options.split(",")
    parts = [p for p in parts if p != "noexec"] if "noexec" in parts else [*parts, "noexec"]
    return f"{target}:{','.join(parts)}"


def _writable(value: str) -> str:
    return value.replace(",readonly", "")


def _both(*mutations: Mutation) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        for m in mutations:
            argv = m(argv)
        return argv

    return mutate


ALT_IMAGE = f"cp-test-alt-{uuid.uuid4().hex[:8]}:v2"


@dataclass(frozen=True)
class Variant:
    id: str
    mutate: Mutation
    fields: tuple[str, ...]  # the drifted fields, in the report's order
    actual: Any = None  # the observed value of the (first) field, when given


VARIANTS = [
    Variant("user", _set("--user", "1002:1002"), ("user",), "1002:1002"),
    Variant("read_only", _drop("--read-only"), ("read_only",), False),
    Variant("network", _set("--network", "bridge"), ("network",), "bridge"),
    Variant("capabilities", _add("--cap-add", "NET_RAW"), ("capabilities",), ["NET_RAW"]),
    Variant(
        "no_new_privileges",
        _drop("--security-opt", 2, "no-new-privileges"),
        ("no_new_privileges",),
        False,
    ),
    Variant("seccomp", _add("--security-opt", "seccomp=unconfined"), ("seccomp",), "unconfined"),
    Variant("pids_limit", _set("--pids-limit", "100"), ("pids_limit",), 100),
    Variant("memory", _set("--memory", "512m"), ("memory",), 512 * MIB),
    Variant("cpus", _set("--cpu-quota", "150000"), ("cpus",), 1.5),
    Variant("tmpfs-size", _edit("--tmpfs", _tmpfs_size), ("tmpfs",)),
    Variant("tmpfs-options", _edit("--tmpfs", _tmpfs_option), ("tmpfs",)),
    Variant("mount-writable", _edit("--mount", _writable, ",readonly"), ("mounts",)),
    Variant(
        "mount-extra",
        _add("--mount", f"type=bind,source={ROOT / 'policies'},target=/extra,readonly"),
        ("mounts",),
    ),
    Variant("env", _add("--env", "X=1"), ("env",), {"X": "1"}),
    Variant("workdir", _set("--workdir", "/tmp"), ("workdir",), "/tmp"),
    Variant("labels", _add("--label", "extra=1"), ("labels",), {"extra": "1"}),
    Variant(
        "devices",
        _add("--device", "/dev/null:/dev/xnull"),
        ("devices",),
        ["/dev/null:/dev/xnull:rwm"],
    ),
    Variant(
        "ulimits",
        _edit("--ulimit", lambda _: "nofile=1024:8192", "nofile"),
        ("ulimits",),
        {"nofile": {"soft": 1024, "hard": 8192}, "nproc": {"soft": 4096, "hard": 4096}},
    ),
    # The engine disables SELinux labels of a container sharing the host's PID or IPC namespace
    # (and of a privileged one): it adds `label=disable`, which drifts too.
    Variant("pid", _add("--pid", "host"), ("pid", "selinux"), "host"),
    Variant("ipc", _add("--ipc", "host"), ("ipc", "selinux"), "host"),
    Variant("uts", _add("--uts", "host"), ("uts",), "host"),
    Variant(
        "healthcheck",
        _add("--health-cmd", "true"),
        ("healthcheck",),
        {"test": ["CMD-SHELL", "true"]},
    ),
    Variant("image", _replace(TEST_IMAGE, ALT_IMAGE), ("image",), ALT_IMAGE),
    # Documented multi-field cases: a published port needs a network with ports, so the
    # network drifts too; --privileged also means every capability and no seccomp.
    Variant(
        "ports+network",
        _both(_set("--network", "bridge"), _add("-p", "127.0.0.1::8080")),
        ("network", "ports"),
        "bridge",
    ),
    Variant(
        "privileged",
        _add("--privileged"),
        ("privileged", "capabilities", "seccomp", "selinux"),
        True,
    ),
]


@pytest.fixture(scope="module")
def drifted(docker_client: Any, shipped: Policy) -> Iterator[dict[str, tuple[str, str | None]]]:
    """One container per variant, all started at once: variant id -> (name, start error)."""
    docker("tag", TEST_IMAGE, ALT_IMAGE)
    base = with_launch_labels(render_argv(), "isolation", shipped)
    names = {v.id: name_for("cp-drift") for v in VARIANTS}

    def start(v: Variant) -> tuple[str, str | None]:
        argv = v.mutate(detached(base, names[v.id]))
        done = docker(*argv[1:], check=False)
        return names[v.id], None if done.returncode == 0 else f"{shlex.join(argv)}: {done.stderr}"

    try:
        with cf.ThreadPoolExecutor(max_workers=len(VARIANTS)) as pool:
            yield dict(zip([v.id for v in VARIANTS], pool.map(start, VARIANTS), strict=True))
    finally:
        left = remove_all(docker_client, list(names.values()))
        docker("rmi", ALT_IMAGE, check=False)
    assert not left, f"containers left behind: {left}"


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.id for v in VARIANTS])
def test_one_changed_setting_is_one_drift(
    variant: Variant, drifted: dict[str, tuple[str, str | None]]
) -> None:
    name, error = drifted[variant.id]
    assert error is None, error
    code, report, _ = audit("--filter", exactly(name))
    assert code == 1
    [entry] = report["containers"]
    assert (entry["name"], entry["profile"]) == (name, "isolation")
    got = entry["findings"]
    assert [(f["kind"], f["rule"], f["severity"]) for f in got] == [
        ("drift", "drift", "error")
    ] * len(variant.fields), got
    assert tuple(f["field"] for f in got) == variant.fields
    first = got[0]
    assert first["message"].startswith(f"{variant.fields[0]}: expected ")
    assert first["expected"] != first["actual"]
    if variant.actual is not None:
        assert first["actual"] == variant.actual
    assert first["location"]["path"].endswith("base.toml")


# -- 3. unmanaged containers: the security rules and guardrails -----------------------------------


def _sensitive_project() -> set[str]:
    """The project's own mounts are a sensitive-mount finding if the checkout itself lies
    below a sensitive host path (for example under /root)."""
    project = str(ROOT)
    if any(
        project == p or (p != "/" and project.startswith(p + "/")) for p in SENSITIVE_HOST_PATHS
    ):
        return {"sensitive-mount"}
    return set()


@dataclass(frozen=True)
class Unmanaged:
    id: str
    mutate: Mutation
    rules: frozenset[str]  # built-in rule ids it adds to the hardened container's
    guardrails: frozenset[str] = frozenset()  # shipped guardrails it breaks too


UNMANAGED = [
    Unmanaged("privileged", _add("--privileged"), frozenset({"privileged", "seccomp-unconfined"})),
    Unmanaged(
        "cap-add",
        _add("--cap-add", "SYS_ADMIN"),
        frozenset({"cap-add"}),
        frozenset({"guardrail/ptrace-only"}),
    ),
    Unmanaged(
        "docker-socket",
        _add("-v", "/var/run/docker.sock:/var/run/docker.sock"),
        frozenset({"docker-socket"}),
    ),
    Unmanaged(
        "host-network",
        _set("--network", "host"),
        frozenset({"host-network"}),
        frozenset({"guardrail/networks"}),
    ),
    Unmanaged("host-pid", _add("--pid", "host"), frozenset({"host-pid"})),
    Unmanaged(
        "root-user",
        _set("--user", "0"),
        frozenset({"root-user"}),
        frozenset({"guardrail/regular-user"}),
    ),
    Unmanaged(
        "no-memory-limit",
        _drop("--memory", 2),
        frozenset({"no-memory-limit"}),
        frozenset({"guardrail/memory-ceiling"}),
    ),
]


@pytest.fixture(scope="module")
def hardened_argv(shipped: Policy) -> list[str]:
    """The rendered isolation flags without any reserved label: an unmanaged container.
    (`shipped` creates the writable test-results directory the line mounts.)"""
    return without_reserved_labels(render_argv())


def test_hardened_unmanaged_container_breaks_no_rule(
    hardened_argv: list[str], started: Callable[[list[str]], Any]
) -> None:
    name = name_for("cp-unmanaged")
    started(detached(hardened_argv, name))
    code, report, _ = audit("--filter", exactly(name))
    [entry] = report["containers"]
    assert entry["profile"] is None
    rules = {f["rule"] for f in entry["findings"]}
    # It runs no health check: a note (CIS 5.27), which does not fail the audit.
    assert rules == _sensitive_project() | {"no-healthcheck"}, entry["findings"]
    assert code == (1 if _sensitive_project() else 0)


@pytest.mark.parametrize("case", UNMANAGED, ids=[u.id for u in UNMANAGED])
def test_unmanaged_container_breaking_a_rule(
    case: Unmanaged, hardened_argv: list[str], started: Callable[[list[str]], Any]
) -> None:
    name = name_for("cp-unmanaged")
    started(case.mutate(detached(hardened_argv, name)))
    code, report, _ = audit("--filter", exactly(name))
    assert code == 1
    [entry] = report["containers"]
    got = entry["findings"]
    assert all(f["kind"] == "unmanaged" for f in got)
    builtin = {f["rule"] for f in got if f["rule"] in RULES_BY_ID}
    assert builtin == case.rules | _sensitive_project() | {"no-healthcheck"}, got
    assert case.guardrails <= {f["rule"] for f in got}
    assert all(f["rule"].startswith("guardrail/") for f in got if f["rule"] not in RULES_BY_ID)
    for f in got:
        if f["rule"] in case.rules:
            assert f["severity"] == RULES_BY_ID[f["rule"]].severity.value
            assert f["message"].startswith(RULES_BY_ID[f["rule"]].title)


# -- 4. containers that exit or vanish during the audit -------------------------------------------


def test_containers_vanishing_mid_audit(docker_client: Any) -> None:
    """30 short-lived containers (`sleep 0.N`), half of them removed while running, started
    from eight threads while audits (every other one with --deep) run back to back."""
    prefix = name_for("cp-churn")
    ids: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        c = docker_client.api.create_container(
            TEST_IMAGE,
            ["sleep", f"0.{i % 9 + 1}"],
            name=f"{prefix}-{i}",
            host_config=docker_client.api.create_host_config(network_mode="none"),
        )
        with lock:
            ids.append(c["Id"])
        docker_client.api.start(c["Id"])
        if i % 2:
            docker_client.api.remove_container(c["Id"], force=True)

    pool = cf.ThreadPoolExecutor(max_workers=8)
    audits = seen = 0
    try:
        futures = [pool.submit(one, i) for i in range(30)]
        deadline = time.monotonic() + 60
        while not all(f.done() for f in futures) or audits < 3:
            assert time.monotonic() < deadline, "the churn did not finish in time"
            deep = ("--deep",) if audits % 2 else ()
            code, out, err = cli(
                "audit", "--format", "json", "--policies", str(POLICIES), "--filter",
                f"name={prefix}", *deep,
            )  # fmt: skip
            assert code in (0, 1), err
            assert "Traceback" not in err
            for c in json.loads(out)["containers"]:
                seen += 1
                assert c["name"].startswith(prefix)
                # Unmanaged rule findings only: never a kernel finding or a crash.
                assert {f["kind"] for f in c["findings"]} <= {"unmanaged"}, c["findings"]
            audits += 1
        for f in futures:
            f.result()  # a failure to create or start is the test's failure
    finally:
        pool.shutdown(wait=True)
        with lock:
            mine = list(ids)
        left = remove_all(docker_client, mine)
        left += [c["Id"] for c in docker_client.api.containers(all=True, filters={"name": prefix})]
    assert not left, f"containers left behind: {left}"
    assert len(mine) == 30
    print(f"{audits} audits saw {seen} running churn containers")


class _StaleListing(SocketEngine):
    """The local engine, but its listing also names containers that are gone."""

    def __init__(self, gone: list[str]) -> None:
        super().__init__()
        self.gone = gone

    def containers(self, filters: dict[str, Any], all: bool = True) -> list[ContainerSummary]:
        listed = super().containers(filters, all)
        return [ContainerSummary.model_validate({"Id": g}) for g in self.gone] + listed


def test_auditor_skips_a_container_removed_after_listing(
    docker_client: Any, shipped: Policy, started: Callable[[list[str]], Any]
) -> None:
    gone = docker_client.api.create_container(TEST_IMAGE, ["true"], name=name_for("cp-gone"))
    docker_client.api.remove_container(gone["Id"], force=True)
    name = name_for("cp-present")
    started(
        ["docker", "run", "-d", "--name", name, "--network", "none", TEST_IMAGE, "sleep", "300"]
    )
    engine = _StaleListing([gone["Id"]])
    assert engine.inspect_if_exists(gone["Id"]) is None
    report = Auditor(shipped, deep=True).audit([engine], {"name": [f"^/{name}$"]})
    assert report.host_findings == []
    assert [c.name for c in report.containers] == [name]  # the vanished one is simply skipped


# -- 5. stale and unknown profiles ----------------------------------------------------------------


def copy_policy(tmp_path: Path, edit: Callable[[str], str]) -> Path:
    """The shipped policy copied to tmp_path, every file's text passed through `edit`."""
    target = tmp_path / "policies"
    shutil.copytree(POLICIES, target)
    for path in target.rglob("*.toml"):
        path.write_text(edit(path.read_text()))
    return target


def _new_isolation_memory(text: str, shipped: Policy) -> str:
    current = shipped.profiles["isolation"].memory or 0
    new = "1536m" if current != 1536 * MIB else "768m"
    header = text.find("[profiles.isolation]")
    if header < 0:
        return text
    section_end = text.find("\n[", header + 1)
    section_end = len(text) if section_end < 0 else section_end
    section = re.sub(
        r'(?m)^memory\s*=\s*"[^"]*"', f'memory = "{new}"', text[header:section_end], count=1
    )
    assert section != text[header:section_end], "isolation declares no memory to change"
    return text[:header] + section + text[section_end:]


def test_stale_after_the_profile_changed(
    launched: Callable[..., str], shipped: Policy, tmp_path: Path
) -> None:
    container = launched("isolation")
    policies = copy_policy(tmp_path, lambda t: _new_isolation_memory(t, shipped))
    args = ("--project", str(ROOT), "--filter", f"id={container}")
    code, report, _ = audit(*args, policies=policies)
    assert code == 0  # a warning does not fail the default --fail-on error
    [finding] = findings(report)
    assert (finding["kind"], finding["rule"], finding["severity"]) == ("stale", "stale", "warning")
    assert finding["profile"] == "isolation"
    assert re.search(r"differs in: memory$", finding["message"]), finding["message"]
    code, report, _ = audit(*args, "--fail-on", "warning", policies=policies)
    assert code == 1
    assert [f["kind"] for f in findings(report)] == ["stale"]


def test_unknown_profile_after_a_rename(launched: Callable[..., str], tmp_path: Path) -> None:
    container = launched("isolation")

    def rename(text: str) -> str:
        text = text.replace("[profiles.isolation]", "[profiles.isolation-renamed]")
        return text.replace('extends = "isolation"', 'extends = "isolation-renamed"')

    policies = copy_policy(tmp_path, rename)
    code, report, _ = audit(
        "--project", str(ROOT), "--filter", f"id={container}", policies=policies
    )
    assert code == 1
    [finding] = findings(report)
    assert (finding["kind"], finding["severity"]) == ("unknown-profile", "error")
    assert "'isolation'" in finding["message"]
    assert finding["container"] == container


# -- 6. --deep ------------------------------------------------------------------------------------


def test_deep_audit_sees_the_kernel(launched: Callable[..., str], shipped: Policy) -> None:
    container = launched("isolation")
    code, report, _ = audit("--deep", "--filter", f"id={container}")
    assert (code, findings(report)) == (0, [])

    docker("update", "--memory", "256m", "--memory-swap", "512m", container)
    code, report, _ = audit("--deep", "--filter", f"id={container}")
    assert code == 1
    got = sorted((f["kind"], f["field"], f["actual"]) for f in findings(report))
    assert got == [("drift", "memory", 256 * MIB), ("kernel", "memory", 256 * MIB)]
    kernel = next(f for f in findings(report) if f["kind"] == "kernel")
    assert kernel["expected"] == shipped.profiles["isolation"].memory
    assert "the kernel has" in kernel["message"]


# -- 7. --watch -----------------------------------------------------------------------------------


class Watcher:
    """`policy audit --watch --format json ARGS` as a subprocess, its output read by threads."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "audit", "--watch", "--format", "json",
             "--policies", str(POLICIES), *args],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.findings: list[dict[str, Any]] = []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._lines, args=(stream, q), daemon=True).start()
        deadline = time.monotonic() + DEADLINE
        while not any("watching" in line for line in self.stderr):
            assert self.proc.poll() is None, "".join(self.stderr)
            assert time.monotonic() < deadline, "".join(self.stderr)
            with contextlib.suppress(queue.Empty):
                self.stderr.append(self.err.get(timeout=0.2))

    def ready(self, container_names: list[str], *run_args: str, name: str = "") -> None:
        """Wait until the event stream is really followed: "watching" is printed before the
        stream is open (see test_watch_says_watching_only_once_subscribed), so start a probe
        container matching the filter (`name`, `run_args`) and wait for its findings."""
        name = name or name_for("cp-watch-probe")
        container_names.append(name)
        probe = docker(
            "run", "-d", "--name", name, "--network", "none", *run_args, TEST_IMAGE,
            "sleep", "300",
        ).stdout.strip()  # fmt: skip
        self.until(lambda f: f["container"] == probe)
        docker("rm", "-f", name)
        self.findings = [f for f in self.findings if f["container"] != probe]

    @staticmethod
    def _lines(stream: Any, into: queue.Queue[str]) -> None:
        for line in iter(stream.readline, ""):
            into.put(line)

    def until(self, done: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        """Read findings until one satisfies `done`, then whatever follows at once (all of a
        container's findings are printed together, under one lock); all findings so far."""
        deadline = time.monotonic() + DEADLINE
        while not any(done(f) for f in self.findings):
            assert time.monotonic() < deadline, f"not seen in time; seen: {self.findings}"
            assert self.proc.poll() is None or not self.out.empty(), (
                f"the watcher exited ({self.proc.returncode}): {''.join(self.stderr)}"
            )
            with contextlib.suppress(queue.Empty):
                self.findings.append(json.loads(self.out.get(timeout=0.2)))
        while True:
            try:
                self.findings.append(json.loads(self.out.get(timeout=0.3)))
            except queue.Empty:
                return self.findings

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C: the exit code and everything it wrote on stderr."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=DEADLINE)
        while True:
            try:
                self.stderr.append(self.err.get(timeout=0.2))
            except queue.Empty:
                return code, "".join(self.stderr)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def watching() -> Iterator[Callable[..., Watcher]]:
    watchers: list[Watcher] = []

    def start(*args: str) -> Watcher:
        watchers.append(Watcher(*args))
        return watchers[-1]

    try:
        yield start
    finally:
        for w in watchers:
            w.close()


def watch_labelled(
    watching: Callable[..., Watcher], container_names: list[str]
) -> tuple[str, Watcher]:
    """A watcher, already following, of the containers carrying a label of this test's own."""
    label = f"cp-watch={uuid.uuid4().hex[:12]}"
    watcher = watching("--filter", f"label={label}")
    watcher.ready(container_names, "--label", label)
    return label, watcher


def test_watch_sees_a_container_started_after_it(
    watching: Callable[..., Watcher], container_names: list[str]
) -> None:
    label, watcher = watch_labelled(watching, container_names)
    name = name_for("cp-watch")
    container_names.append(name)
    container = docker(
        "run", "-d", "--name", name, "--label", label, "--network", "none",
        TEST_IMAGE, "sleep", "300",
    ).stdout.strip()  # fmt: skip
    seen = watcher.until(lambda f: f["container"] == container)
    mine = [f for f in seen if f["container"] == container]
    assert mine == seen  # the filter: nothing else
    assert all(f["kind"] == "unmanaged" and f["name"] == name for f in mine)
    assert all(f["host"] == "unix:///var/run/docker.sock" for f in mine)
    assert "no-memory-limit" in {f["rule"] for f in mine}
    code, stderr = watcher.interrupt()
    assert code == 1  # it saw errors
    assert "Traceback" not in stderr
    assert "stopped watching" in stderr


def test_watch_says_watching_only_once_subscribed(
    shipped: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.audit.watch import Ready, Watcher

    release = threading.Event()

    class SlowToSubscribe(SocketEngine):
        def events(self, filters: dict[str, Any]) -> Any:
            release.wait(DEADLINE)
            return iter([])

    first: list[object] = []
    watcher = Watcher(Auditor(shipped), [SlowToSubscribe()], {})
    thread = threading.Thread(target=lambda: first.append(next(watcher.events())), daemon=True)
    thread.start()
    try:
        thread.join(1.0)  # ample time to announce, were it not waiting for the stream
        assert first == [], "announced before the event stream was open"
    finally:
        release.set()
        thread.join(DEADLINE)
    assert [type(e) for e in first] == [Ready]  # the CLI prints "watching" on exactly this


def _watch_deep(
    watching: Callable[..., Watcher],
    launched: Callable[..., str],
    container_names: list[str],
    *host: str,
) -> list[tuple[str, str]]:
    container = launched("isolation")
    label = docker("inspect", "-f", f'{{{{index .Config.Labels "{L.LAUNCH_ID}"}}}}', container)
    selector = f"{L.LAUNCH_ID}={label.stdout.strip()}"
    watcher = watching("--deep", *host, "--filter", f"label={selector}")
    watcher.ready(container_names, "--label", selector)
    docker("update", "--memory", "256m", "--memory-swap", "512m", container)
    seen = watcher.until(lambda f: f["container"] == container and f["field"] == "memory")
    code, stderr = watcher.interrupt()
    assert code == 1 and "Traceback" not in stderr
    return sorted((f["kind"], f["field"]) for f in seen if f["container"] == container)


def test_watch_deep_checks_the_kernel_on_update(
    watching: Callable[..., Watcher], launched: Callable[..., str], container_names: list[str]
) -> None:
    assert _watch_deep(watching, launched, container_names) == [
        ("drift", "memory"),
        ("kernel", "memory"),
    ]


def test_watch_deep_with_an_explicit_local_host_checks_the_kernel(
    watching: Callable[..., Watcher], launched: Callable[..., str], container_names: list[str]
) -> None:
    host = ("--host", "unix:///var/run/docker.sock")
    assert _watch_deep(watching, launched, container_names, *host) == [
        ("drift", "memory"),
        ("kernel", "memory"),
    ]


def test_watch_respects_a_name_filter(
    watching: Callable[..., Watcher], container_names: list[str]
) -> None:
    prefix = name_for("cp-watch-wanted")
    watcher = watching("--filter", f"name={prefix}")
    watcher.ready(container_names, name=f"{prefix}-probe")
    wanted, other = f"{prefix}-1", name_for("cp-watch-other")
    for name in (other, wanted):  # the other one first: its findings would come first
        container_names.append(name)
        docker("run", "-d", "--name", name, "--network", "none", TEST_IMAGE, "sleep", "300")
    seen = watcher.until(lambda f: f["name"] == wanted)
    watcher.interrupt()
    assert {f["name"] for f in seen} == {wanted}


def test_watch_survives_a_container_it_cannot_judge(
    watching: Callable[..., Watcher], container_names: list[str]
) -> None:
    label, watcher = watch_labelled(watching, container_names)
    named, plain = name_for("cp-watch-named"), name_for("cp-watch-plain")
    container_names.extend([named, plain])
    run = ("run", "-d", "--label", label, "--network", "none")
    docker(*run, "--name", named, "--user", "testuser", TEST_IMAGE, "sleep", "300")
    docker(*run, "--name", plain, TEST_IMAGE, "sleep", "300")
    seen = watcher.until(lambda f: f["name"] == plain)
    assert plain in {f["name"] for f in seen}
    code, stderr = watcher.interrupt()
    assert code == 1 and "stopped watching" in stderr


def test_watch_with_output_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "audit", "--watch", "--policies", str(POLICIES),
         "--output", str(tmp_path / "audit.json"), "--filter", f"label=cp-none={TOKEN}"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        code: int | None = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None  # still watching
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert code == 2


# -- bugs found while writing these tests ---------------------------------------------------------


def test_a_container_with_a_named_user_does_not_break_the_audit(
    started: Callable[[list[str]], Any],
) -> None:
    name = name_for("cp-named-user")
    started(["docker", "run", "-d", "--name", name, "--user", "testuser", "--network", "none",
             TEST_IMAGE, "sleep", "300"])  # fmt: skip
    code, report, _ = audit("--filter", exactly(name))
    [entry] = report["containers"]
    assert code == 1 and entry["findings"]


def test_forged_labels_do_not_hide_a_privileged_container(
    started: Callable[[list[str]], Any], shipped: Policy
) -> None:
    name = name_for("cp-forged")
    argv = detached(render_argv(), name)
    digest_label = next(w for w in argv if w.startswith(L.DIGEST + "="))
    argv[argv.index(digest_label)] = f"{L.DIGEST}=sha256:{'0' * 64}"
    started(_add("--privileged")(argv))
    code, report, _ = audit("--filter", exactly(name))
    assert code == 1, findings(report)


def test_a_launch_with_another_image_audits_clean(launched: Callable[..., str]) -> None:
    other = f"cp-test-other-{uuid.uuid4().hex[:8]}:v1"
    docker("tag", TEST_IMAGE, other)
    try:
        container = launched("isolation", image=other)
        code, report, _ = audit("--filter", f"id={container}")
        assert (code, findings(report)) == (0, [])
    finally:
        docker("rmi", other, check=False)  # only the tag: the image keeps its others
