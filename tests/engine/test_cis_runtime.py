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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from engine.audit.auditor import Auditor
from engine.backends.unix_socket import SocketEngine
from policy.loader import Policy
from policy.rules import RULES_BY_ID
from tests.engine.test_audit import (
    audit,
    detached,
    docker,
    exactly,
    render_argv,
    without_reserved_labels,
)
from tests.helpers import TEST_IMAGE, new_name

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


@dataclass(frozen=True)
class Weakness:
    cis: str
    mutate: Mutation
    rule: str
    fragment: str  # what the finding's message says
    created_only: bool = False  # see the module docstring


WEAKNESSES = [
    Weakness(
        "5.19",
        _replace_flag("--ulimit", "nproc", "nproc=-1:-1"),
        "ulimit-unlimited",
        "nproc ulimit is unlimited",
        created_only=True,
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
    assert rule.cis == weakness.cis
    assert all(f["kind"] == "unmanaged" for f in got)
    assert all(f["severity"] == rule.severity.value for f in got)
    assert any(weakness.fragment in f["message"] for f in got), got
    # Nothing else of ours fires: one weakness, one control.
    assert {f["rule"] for f in every} & OURS == {weakness.rule}
