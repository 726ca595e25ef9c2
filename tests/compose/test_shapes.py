"""Every compose key the reader takes, given values of every wrong shape (and hostile nested
ones): `policy check` and `policy import` report them as located findings or usage errors, never
a traceback, and a value of the wrong type is never read as something else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.compose.check import check
from engine.compose.importer import import_compose
from policy.errors import Error
from policy.loader import Policy, load_policy
from tests.helpers import POLICIES

KEYS = [
    "image", "user", "read_only", "privileged", "network_mode", "networks", "pid", "ipc", "uts",
    "cap_add", "cap_drop", "security_opt", "pids_limit", "mem_limit", "cpus", "cpu_quota",
    "cpu_period", "deploy", "tmpfs", "volumes", "environment", "env_file", "working_dir",
    "healthcheck", "labels", "devices", "ports", "ulimits", "extends", "x-policy-profile",
    "command",
]  # fmt: skip
ODD: list[Any] = [
    None, 1, -1, 1.5, True, "x", "", [], [None], [1], ["a:b:c:d"], {}, {"a": None}, {"a": [1]},
    {"limits": 1}, {"resources": {"limits": {"memory": []}}}, [{"type": "bind"}],
    [{"type": "tmpfs", "target": "/t", "tmpfs": {"size": "x", "mode": "9"}}], [{"target": 1}],
    ["8080-x:80"], [{"source": None}], {"test": 1}, {"test": []}, {"test": "x", "interval": []},
    {"nofile": {"soft": "x"}}, [["nested"]], "${", "$${X}", "${X:?}",
]  # fmt: skip
NESTED: dict[str, list[Any]] = {
    "volumes": [
        [{"type": "bind", "source": [1], "target": "/x"}], [{"type": 1, "target": "/x"}],
        [{"type": "bind", "target": "/x", "bind": 1}], [{"type": "tmpfs", "target": "/t",
        "tmpfs": 1}], [{"type": "tmpfs", "target": "/t", "tmpfs": {"size": [1]}}],
        ["/a:/b:ro,z"], [":::"], [{"type": "bind", "source": "/x", "target": "/x",
        "read_only": "yes"}],
    ],
    "devices": [[{"source": 1}], [{"source": "/dev/a", "target": [1]}], ["::::"]],
    "ports": [[{"target": "x", "published": []}], ["a:b:c:d:e"], [":"], ["1-"], ["x-y:1-2"]],
    "healthcheck": [{"test": [1, None]}, {"test": ["CMD"]}, {"test": "", "retries": 0}],
    "env_file": [[{"path": 1}], [{"path": "nope"}], "/dev/zero", "/etc"],
    "security_opt": [["seccomp=/nonexistent.json"], ["seccomp:"], ["seccomp=/etc/passwd"], ["="]],
    "tmpfs": [["/t:size=abc"], ["/t:mode=abc"], [":"]],
    "extends": [1, {"service": 1}, {"file": "/dev/null", "service": "a"}],
}  # fmt: skip
CASES = [(k, v) for k in KEYS for v in ODD] + [(k, v) for k, vs in NESTED.items() for v in vs]


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy([POLICIES])


def test_no_shape_of_any_key_raises_a_traceback(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "c.yml"
    failures = []
    for key, value in CASES:
        path.write_text(
            yaml.safe_dump({"services": {"s": {"image": "busybox:latest", key: value}}})
        )
        for run in (lambda: check([path], policy, env={}), lambda: import_compose([path], policy)):
            try:
                run()
            except Error:
                pass  # a usage error naming the file: what the user sees, exit 2
            except Exception as exc:
                failures.append(f"{key}={value!r}: {type(exc).__name__}: {exc}")
    assert failures == []


@pytest.mark.parametrize(
    ("key", "value", "read_as"),
    [
        ("read_only", "yes", ("read_only", False)),
        ("privileged", "true", ("privileged", False)),
        ("labels", "team=a", ("labels", {})),
        ("ports", 80, ("ports", [])),
        ("cap_drop", "ALL", ("capabilities", None)),
    ],
)
def test_a_wrong_type_is_a_located_finding_not_a_reading(
    tmp_path: Path, policy: Policy, key: str, value: Any, read_as: tuple[str, Any]
) -> None:
    path = tmp_path / "c.yml"
    path.write_text(yaml.safe_dump({"services": {"s": {"image": "busybox:latest", key: value}}}))
    findings = check([path], policy, env={}).findings
    bad = [f for f in findings if f.rule == "compose/bad-value"]
    assert len(bad) == 1 and key in bad[0].message and bad[0].location is not None
    lines = path.read_text().splitlines()
    assert lines[bad[0].location.line - 1].strip().startswith(f"{key}:")
    from engine.compose.project import load
    from engine.compose.service import read_service

    settings = read_service(load([path], {}).services["s"], tmp_path, {}).settings
    name, expected = read_as
    if expected is not None:  # read as absent: the engine's default, and the finding says why
        assert settings[name] == expected
    else:  # cap_drop "ALL" as a string is not a list: nothing is dropped
        assert "SYS_CHROOT" in settings[name]
