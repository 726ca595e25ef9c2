"""CIS Docker Benchmark 1.6 section 5 on the real engine, one container per control (issue 12).

Each case starts, by hand with the docker CLI, the rendered hardened `isolation` line without
its reserved labels (an unmanaged container) and with one weakness added, and `policy audit`
must report that control's rule for it; the hardened container itself gives no finding of these
rules. Each audit is restricted to the one container (`--filter name=^/NAME$`), so other
containers on the shared engine do not disturb it, and every container is removed afterwards.

Some weaknesses cannot run on every engine: the engine this suite runs on lacks
CAP_SYS_RESOURCE, so it cannot start a container whose limits are above its own (`--ulimit
nproc=-1` fails at start with "error setting rlimit"). Those containers are created but not
started (`created_only`), and the engine's inspect document of the created container is judged by
the audit's own `Auditor.audit_container`, as `policy audit` judges a running one.
"""

from __future__ import annotations

import contextlib
import shlex
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.audit.auditor import Auditor
from engine.audit.drift import diff
from engine.backends.unix_socket import SocketEngine
from policy.loader import Policy, load_policy
from policy.rules import RULES_BY_ID
from tests.documents import expected_settings, observed_settings
from tests.engine.test_audit import (
    audit,
    detached,
    docker,
    exactly,
    render_argv,
    without_reserved_labels,
)
from tests.helpers import TEST_IMAGE, cli, new_name, write_probe_policy

pytestmark = pytest.mark.engine
Mutation = Callable[[list[str]], list[str]]


def _before_image(*words: str) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        i = argv.index(TEST_IMAGE)
        return [*argv[:i], *words, *argv[i:]]

    return mutate


def _replace_flag(flag: str, containing: str, value: str) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        i = next(i for i, w in enumerate(argv) if w == flag and containing in argv[i + 1])
        return [*argv[: i + 1], value, *argv[i + 2 :]]

    return mutate


def _network(name: str) -> Mutation:
    return _replace_flag("--network", "", name)


def _both(*mutations: Mutation) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        for m in mutations:
            argv = m(argv)
        return argv

    return mutate


@dataclass(frozen=True)
class Weakness:
    cis: str
    mutate: Mutation
    rule: str
    fragment: str  # what the finding's message says
    created_only: bool = False  # see the module docstring
    also: frozenset[str] = frozenset()  # other rules of ours the same weakness rightly breaks


WEAKNESSES = [
    Weakness(
        "5.19",
        _replace_flag("--ulimit", "nproc", "nproc=-1:-1"),
        "ulimit-unlimited",
        "nproc ulimit is unlimited",
        created_only=True,
    ),
    Weakness(
        "5.9",
        _both(_network("bridge"), _before_image("--publish", "127.0.0.1::80")),
        "published-port",
        "publishes a port: 127.0.0.1:",
    ),
    Weakness(
        "5.8",
        # Created only: a fixed host port could be taken by someone else on the shared host.
        _both(_network("bridge"), _before_image("--publish", "127.0.0.1:81:80")),
        "privileged-port",
        "privileged host port 81",
        created_only=True,
        also=frozenset({"published-port"}),
    ),
    Weakness(
        "5.14",
        _both(_network("bridge"), _before_image("--publish", "80")),
        "port-all-interfaces",
        "every interface of the host (0.0.0.0:",
        also=frozenset({"published-port"}),
    ),
    Weakness("5.15", _before_image("--restart", "always"), "restart-policy", "'always'"),
    Weakness(
        "5.15",
        _before_image("--restart", "on-failure:9"),
        "restart-policy",
        "on-failure with 9 retries",
    ),
    Weakness(
        # Created only: started, it would leave a cgroup of that name on the host.
        "5.25",
        _before_image("--cgroup-parent", "/cp-gaps-parent"),
        "cgroup-parent",
        "'/cp-gaps-parent'",
        created_only=True,
    ),
    Weakness("5.31", _before_image("--userns", "host"), "host-userns", "user namespace"),
    Weakness(
        "5.2",
        _before_image("--security-opt", "apparmor=unconfined"),
        "apparmor-unconfined",
        "AppArmor is unconfined",
    ),
    Weakness(
        "5.3",
        _before_image("--security-opt", "label=disable"),
        "selinux-disabled",
        "labelling is disabled",
    ),
    Weakness(
        "-",
        _before_image("--sysctl", "net.ipv4.ping_group_range=0 2147483647"),
        "sysctl",
        "net.ipv4.ping_group_range",
    ),
    Weakness("-", _before_image("--oom-kill-disable"), "oom-kill-disabled", "OOM killer"),
    Weakness(
        # Created only: the engine refuses to start it unless the source is a shared mount.
        "5.20",
        _replace_flag(
            "--mount",
            "target=/src",
            "type=bind,source=/tmp,target=/src,readonly,bind-propagation=shared",
        ),
        "mount-propagation-shared",
        "shared propagation",
        created_only=True,
    ),
    Weakness(
        "5.18",
        _before_image("--device", "/dev/null:/dev/xnull"),
        "host-device",
        "/dev/null:/dev/xnull:rwm",
    ),
]
OURS = frozenset(w.rule for w in WEAKNESSES)


@pytest.fixture(scope="module")
def hardened(shipped: Any) -> list[str]:
    """The rendered isolation flags without any reserved label (`shipped` creates the writable
    test-results directory the line mounts)."""
    return without_reserved_labels(render_argv())


@pytest.fixture
def start(container_names: list[str]) -> Callable[..., str]:
    """`start(argv, created_only=False)`: the argv as a detached container (or only created)
    with a fresh name, removed afterwards."""

    def run(argv: list[str], created_only: bool = False) -> str:
        name = new_name("cp-gaps")
        container_names.append(name)
        argv = detached(argv, name)
        if created_only:
            argv = ["docker", "create", *argv[3:]]  # `docker run -d` -> `docker create`
        docker(*argv[1:])
        return name

    return run


def findings_of(name: str, created_only: bool, shipped: Policy) -> list[dict[str, Any]]:
    """The audit's findings for container `name`: `policy audit` for a running container, the
    auditor itself on the engine's inspect document for a created one."""
    if not created_only:
        _, report, _ = audit("--filter", exactly(name))
        [entry] = report["containers"]
        assert entry["profile"] is None
        return list(entry["findings"])
    engine = SocketEngine()
    inspect = engine.inspect_container(name)
    image = engine.inspect_image(inspect.image).config
    found = Auditor(shipped).audit_container("local", inspect, image).findings
    return [
        {"rule": f.rule, "kind": f.kind.value, "severity": f.severity.value, "message": f.message}
        for f in found
    ]


@pytest.mark.parametrize("created_only", [False, True], ids=["running", "created"])
def test_the_hardened_container_breaks_none_of_these_rules(
    created_only: bool, hardened: list[str], start: Callable[..., str], shipped: Policy
) -> None:
    name = start(hardened, created_only)
    got = findings_of(name, created_only, shipped)
    assert OURS.isdisjoint(f["rule"] for f in got), got


@pytest.mark.parametrize("weakness", WEAKNESSES, ids=[f"{w.cis}-{w.rule}" for w in WEAKNESSES])
def test_a_container_with_the_weakness_gets_its_finding(
    weakness: Weakness, hardened: list[str], start: Callable[..., str], shipped: Policy
) -> None:
    name = start(weakness.mutate(list(hardened)), weakness.created_only)
    every = findings_of(name, weakness.created_only, shipped)
    got = [f for f in every if f["rule"] == weakness.rule]
    assert got, every
    rule = RULES_BY_ID[weakness.rule]
    assert (rule.cis or "-") == weakness.cis
    assert all(f["kind"] == "unmanaged" for f in got)
    assert all(f["severity"] == rule.severity.value for f in got)
    assert any(weakness.fragment in f["message"] for f in got), got
    # Nothing else of ours fires: one weakness, one control.
    assert {f["rule"] for f in every} & OURS == {weakness.rule} | weakness.also


# -- declared: a profile that declares the key launches with it, and audits clean --------------


@dataclass(frozen=True)
class Declared:
    id: str
    toml: str  # appended to the probe profile
    field: str  # the settings field it shows in
    shown: Any  # its observed value, or a predicate on it
    mounts: str | None = None  # replaces the probe policy's `mounts = [...]`


DECLARED = [
    Declared(
        "ports",
        'network = "bridge"\nports = [{ host = "127.0.0.1", container = 8080 }]\n',
        "ports",
        ["127.0.0.1::8080/tcp"],
    ),
    Declared(
        "devices",
        'devices = [{ host = "/dev/null", container = "/dev/xnull", permissions = "rw" }]\n'
        '[[waivers]]\nprofile = "probe"\nrule = "host-device"\n'
        'reason = "a device test needs one"\nexpires = 2099-01-01\n',
        "devices",
        ["/dev/null:/dev/xnull:rw"],
    ),
    Declared("restart", 'restart = "on-failure:3"\n', "restart", "on-failure:3"),
    Declared(
        "propagation",
        "",
        "mounts",
        lambda mounts: [m.get("propagation") for m in mounts] == [None, "private"],  # by target
        mounts='mounts = [\n  { source = ".", target = "/src", propagation = "private" },\n'
        '  { source = "test-results", target = "/results", writable = true },\n]\n',
    ),
    Declared(
        "sysctls",
        'sysctls = { "net.ipv4.ping_group_range" = "0 1" }\n',
        "sysctls",
        {"net.ipv4.ping_group_range": "0 1"},
    ),
    Declared(
        "oom_kill_disable",
        "oom_kill_disable = true\n"
        '[[waivers]]\nprofile = "probe"\nrule = "oom-kill-disabled"\n'
        'reason = "a test of the key needs it"\nexpires = 2099-01-01\n',
        "oom_kill_disable",
        True,
    ),
    Declared(
        "userns",
        'userns = "host"\n'
        '[[waivers]]\nprofile = "probe"\nrule = "host-userns"\n'
        'reason = "a test of the key needs it"\nexpires = 2099-01-01\n',
        "userns",
        "host",
    ),
]


@pytest.fixture
def launch(docker_client: Any, tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """`launch(policies)`: `policy run probe --detach -- sleep 300`; the id. Removed after."""
    ids: list[str] = []

    def run(policies: Path) -> str:
        code, out, err = cli(
            "run", "probe", "--detach", "--policies", str(policies),
            "--record", str(tmp_path / "launches.jsonl"), "--", "sleep", "300",
        )  # fmt: skip
        assert code == 0, err
        ids.append(out.strip())
        return out.strip()

    try:
        yield run
    finally:
        for container in ids:
            with contextlib.suppress(Exception):
                docker_client.api.remove_container(container, v=True, force=True)


@pytest.mark.parametrize("case", DECLARED, ids=[d.id for d in DECLARED])
def test_a_declared_key_is_launched_verified_and_audits_clean(
    case: Declared, project: Path, launch: Callable[[Path], str], docker_client: Any
) -> None:
    policies = write_probe_policy(project, case.toml, mounts=case.mounts)
    container = launch(policies)
    inspect = docker_client.api.inspect_container(container)
    image = docker_client.api.inspect_image(inspect["Image"])["Config"]
    shown = observed_settings(inspect, image)[case.field]
    assert case.shown(shown) if callable(case.shown) else shown == case.shown, shown
    _, report, _ = audit("--filter", f"id={container}", policies=policies)
    [entry] = report["containers"]
    assert entry["profile"] == "probe"
    assert not [f for f in entry["findings"] if f["kind"] == "drift"], entry["findings"]


def test_a_restart_policy_changed_after_launch_is_drift(
    project: Path, launch: Callable[[Path], str]
) -> None:
    """`docker update --restart always` on a launched container: drift on `restart`."""
    policies = write_probe_policy(project)
    container = launch(policies)
    docker("update", "--restart", "always", container)
    _, report, _ = audit("--filter", f"id={container}", policies=policies)
    [entry] = report["containers"]
    drift = [f for f in entry["findings"] if f["kind"] == "drift"]
    assert [(f["field"], f["expected"], f["actual"]) for f in drift] == [
        ("restart", "no", "always")
    ]


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('apparmor = "docker-default"\n', "apparmor"),
        ('selinux = ["type:container_t"]\n', "selinux"),
    ],
    ids=["apparmor", "selinux"],
)
def test_a_security_module_the_engine_lacks_is_refused_by_name(
    toml: str, field: str, project: Path, docker_client: Any, tmp_path: Path
) -> None:
    """The engine accepts `apparmor=PROFILE` and ignores it when it has no AppArmor: the launch
    is refused before anything is created, naming the field."""
    options = docker_client.info().get("SecurityOptions") or []
    if any(o.split(",")[0].removeprefix("name=") == field for o in options):
        pytest.skip(f"this engine supports {field}")  # the refusal is for engines without it
    policies = write_probe_policy(project, toml)
    marker = new_name("cp-gaps-refused")
    code, _, err = cli(
        "run", "probe", "--policies", str(policies), "--record", str(tmp_path / "r.jsonl"),
        "--", "echo", marker,
    )  # fmt: skip
    assert code == 2, err
    assert f"{field}: this engine does not support {field}" in err
    assert "Traceback" not in err
    left = docker_client.api.containers(
        all=True, filters={"label": "io.container-policy.profile=probe"}
    )
    assert not [c for c in left if marker in (c.get("Command") or "")]


# -- rendered: the docker run line of a profile using the keys gives exactly that container ----

EVERY_KEY = """\
network = "bridge"
ports = [
  { host = "127.0.0.1", container = 8080 },
  { host = "::1", container = 53, protocol = "udp" },
]
devices = [{ host = "/dev/null", container = "/dev/xnull", permissions = "rw" }]
sysctls = { "net.ipv4.ping_group_range" = "0 1" }
ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 512 }
userns = "host"
oom_kill_disable = true
[[waivers]]
profile = "probe"
rule = "host-device"
reason = "the rendering test passes a device"
expires = 2099-01-01
[[waivers]]
profile = "probe"
rule = "host-userns"
reason = "the rendering test shares the user namespace"
expires = 2099-01-01
[[waivers]]
profile = "probe"
rule = "oom-kill-disabled"
reason = "the rendering test disables the OOM killer"
expires = 2099-01-01
"""


def test_the_rendered_line_of_every_key_gives_the_declared_container(
    project: Path, container_names: list[str], docker_client: Any, shipped: Policy
) -> None:
    policies = write_probe_policy(
        project,
        EVERY_KEY,
        mounts='mounts = [{ source = ".", target = "/src", propagation = "private" }]\n',
    )
    code, out, err = cli("render", "probe", "--policies", str(policies), "--", "sleep", "300")
    assert code == 0, err
    argv = shlex.split(out.strip())
    for flag in ("--publish", "--device", "--sysctl", "--ulimit", "--userns", "--oom-kill-disable"):
        assert flag in argv, flag
    name = new_name("cp-gaps-render")
    container_names.append(name)
    done = subprocess.run(
        detached(argv, name), capture_output=True, text=True, cwd=project, check=False
    )
    assert done.returncode == 0, done.stderr
    inspect = docker_client.api.inspect_container(name)
    image = docker_client.api.inspect_image(inspect["Image"])["Config"]
    profile = load_policy([policies], project).profiles["probe"]
    assert diff(expected_settings(profile, project, image), observed_settings(inspect, image)) == []


def test_deep_audit_sees_a_ulimit_changed_in_the_kernel(
    project: Path, docker_client: Any, tmp_path: Path
) -> None:
    """The container's process lowers its own soft limit (`ulimit -S -n 512`, then exec): the
    inspect document still matches the profile (no drift), and `--deep` reads /proc/PID/limits
    and reports the difference. (Changing it from outside, `prlimit --pid`, needs
    CAP_SYS_RESOURCE, which this test's host may not have.)"""
    policies = write_probe_policy(project, "ulimits = { nofile = 4096, nproc = 4096 }\n")
    code, out, err = cli(
        "run", "probe", "--detach", "--policies", str(policies),
        "--record", str(tmp_path / "r.jsonl"), "--", "sh", "-c", "ulimit -S -n 512; exec sleep 300",
    )  # fmt: skip
    assert code == 0, err
    container = out.strip()
    try:
        code, report, _ = audit("--deep", "--filter", f"id={container}", policies=policies)
        got = [(f["kind"], f["field"], f["actual"]) for f in report["containers"][0]["findings"]]
        assert got == [("kernel", "ulimits nofile", {"soft": 512, "hard": 4096})]
        assert code == 1
    finally:
        docker_client.api.remove_container(container, v=True, force=True)


def test_doctor_says_a_profile_needing_apparmor_would_be_refused(
    project: Path, docker_client: Any
) -> None:
    options = docker_client.info().get("SecurityOptions") or []
    if any(o.split(",")[0].removeprefix("name=") == "apparmor" for o in options):
        pytest.skip("this engine supports apparmor")
    policies = write_probe_policy(project, 'apparmor = "docker-default"\n')
    code, out, _ = cli("doctor", "probe", "--policies", str(policies))
    assert code == 1, out
    line = next(line for line in out.splitlines() if "apparmor:" in line)
    assert "not supported: probe would be refused at launch" in line


# -- 5.27: a health check, its own or its image's, or a note ------------------------------------


@pytest.fixture(scope="module")
def image_with_a_check() -> Iterator[str]:
    """The test image with a HEALTHCHECK of its own (built here: no registry), removed after."""
    tag = f"{new_name('cp-gaps-hc')}:latest"
    dockerfile = f'FROM {TEST_IMAGE}\nHEALTHCHECK --interval=30s CMD ["/bin/true"]\n'
    done = subprocess.run(
        ["docker", "build", "-q", "-t", tag, "-"], input=dockerfile, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    try:
        yield tag
    finally:
        docker("rmi", "-f", tag, check=False)


def _with_image(image: str) -> Mutation:
    def mutate(argv: list[str]) -> list[str]:
        return [image if w == TEST_IMAGE else w for w in argv]

    return mutate


def _notes(name: str) -> tuple[list[dict[str, Any]], int, int]:
    """The container's `no-healthcheck` findings, and the exit codes of `policy audit` at the
    default `--fail-on error` and at `--fail-on note`."""
    code, report, _ = audit("--filter", exactly(name))
    [entry] = report["containers"]
    strict, _, _ = audit("--filter", exactly(name), "--fail-on", "note")
    return [f for f in entry["findings"] if f["rule"] == "no-healthcheck"], code, strict


def test_a_container_without_a_health_check_gets_a_note_that_fails_nothing(
    hardened: list[str], start: Callable[..., str]
) -> None:
    name = start(hardened)
    notes, code, strict = _notes(name)
    [note] = notes
    assert note["severity"] == "note" and note["kind"] == "unmanaged"
    assert "no health check" in note["message"]
    _, report, _ = audit("--filter", exactly(name))
    above = [f for f in report["containers"][0]["findings"] if f["severity"] != "note"]
    # A note alone never fails the audit; `--fail-on note` asks it to.
    assert code == (1 if any(f["severity"] == "error" for f in above) else 0)
    assert strict == 1
    assert report["summary"]["notes"] == 1


@pytest.mark.parametrize(
    "variant",
    ["own-check", "image-check"],
)
def test_a_container_with_a_health_check_gets_no_note(
    variant: str, hardened: list[str], start: Callable[..., str], image_with_a_check: str
) -> None:
    if variant == "own-check":  # `--health-cmd` is the shell form: CMD-SHELL
        argv = _before_image("--health-cmd", "true", "--health-interval", "30s")(list(hardened))
    else:  # the image's own HEALTHCHECK, not overridden
        argv = _with_image(image_with_a_check)(list(hardened))
    notes, _, _ = _notes(start(argv))
    assert notes == []


def test_turning_off_the_image_check_gets_the_note(
    hardened: list[str], start: Callable[..., str], image_with_a_check: str
) -> None:
    argv = _both(_before_image("--no-healthcheck"), _with_image(image_with_a_check))
    notes, _, _ = _notes(start(argv(list(hardened))))
    assert [n["severity"] for n in notes] == ["note"]
