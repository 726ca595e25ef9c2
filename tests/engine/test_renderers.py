"""The renderers' contract, without an engine: every renderer accounts for every setting, refusal
is by name, and what is sent to the engine is what was validated."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.render.compose import Compose
from engine.render.docker_run import DockerRun
from engine.render.interface import Renderer, Unexpressible, render
from engine.render.request import EngineRequest
from engine.render.settings import ExpectedSettings
from engine.render.toml import TomlProfile
from engine.render.walk import SETTINGS, walk
from policy.errors import UnusablePolicy, UsageError
from policy.loader import load_policy
from tests.helpers import POLICIES, ROOT, cli

RENDERERS: list[Renderer[object]] = [
    EngineRequest(),
    DockerRun(),
    Compose(),
    ExpectedSettings(None),
    TomlProfile(),
]


@pytest.mark.parametrize("renderer", RENDERERS, ids=lambda r: type(r).__name__)
def test_every_renderer_accounts_for_every_setting(renderer: Renderer[object]) -> None:
    declared = [
        set(renderer.expresses),
        set(renderer.cannot_express),
        set(renderer.leaves),
    ]
    assert set().union(*declared) == set(SETTINGS), "a setting no declaration covers"
    assert sum(len(d) for d in declared) == len(SETTINGS), "a setting declared twice"


def test_a_setting_a_target_cannot_express_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(
        'version = 1\n[profiles.probe]\nimage = "busybox:latest"\n'
        'healthcheck = { test = ["true"], interval = "5s" }\n'
    )
    profile = load_policy([tmp_path]).profiles["probe"]
    with pytest.raises(Unexpressible) as caught:
        render(DockerRun(), walk(profile, tmp_path, "p.toml"))
    assert [field for field, _ in caught.value.refused] == ["healthcheck"]
    assert "healthcheck" in caught.value.message
    # Compose can: nothing is refused, nothing is dropped.
    service = render(Compose(), walk(profile, tmp_path, "p.toml")).value["services"]["probe"]
    assert service["healthcheck"]["test"] == ["CMD", "true"]


def test_a_restart_policy_is_refused_by_docker_run_and_rendered_for_compose(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.toml").write_text(
        'version = 1\n[profiles.probe]\nimage = "busybox:latest"\nrestart = "on-failure:3"\n'
        'sysctls = { "net.ipv4.ping_group_range" = "0 1" }\n'
    )
    profile = load_policy([tmp_path]).profiles["probe"]
    with pytest.raises(Unexpressible) as caught:
        render(DockerRun(), walk(profile, tmp_path, "p.toml"))
    assert [field for field, _ in caught.value.refused] == ["restart"]
    assert "--rm" in caught.value.message
    service = render(Compose(), walk(profile, tmp_path, "p.toml")).value["services"]["probe"]
    assert service["restart"] == "on-failure:3"
    assert service["sysctls"] == {"net.ipv4.ping_group_range": "0 1"}
    body = render(EngineRequest(), walk(profile, tmp_path, "p.toml")).value
    assert body["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}


def test_a_seccomp_file_changed_after_loading_is_refused(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    policy = load_policy([tmp_path / "policies"])
    jit = policy.profiles["jit"]
    request = render(EngineRequest(), walk(jit, policy.project, "base.toml")).value
    assert any(o.startswith("seccomp={") for o in request["HostConfig"]["SecurityOpt"])
    seccomp = tmp_path / "policies" / "seccomp" / "test-runner.json"
    document = json.loads(seccomp.read_text())
    document["defaultAction"] = "SCMP_ACT_ALLOW"
    seccomp.write_text(json.dumps(document))
    with pytest.raises(UsageError, match="changed since the policy was loaded"):
        render(EngineRequest(), walk(jit, policy.project, "base.toml"))
    seccomp.unlink()
    with pytest.raises(UsageError, match=r"test-runner\.json"):
        render(EngineRequest(), walk(jit, policy.project, "base.toml"))


def test_an_invalid_policy_is_the_same_error_from_the_api_and_the_cli(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(
        'version = 1\n[profiles.probe]\nimage = "busybox:latest"\nprivileged = true\n'
    )
    with pytest.raises(UnusablePolicy, match="does not validate") as caught:
        engine.launch("probe", ["true"], policies=tmp_path)
    assert caught.value.exit_code == 2
    code, _, err = cli("run", "probe", "--policies", str(tmp_path), "--", "true")
    assert code == 2 and caught.value.message in err


def test_policy_imports_neither_docker_nor_loguru() -> None:
    probe = (
        "import sys, policy, policy.vetted, policy.validate\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'loguru')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_render_says_how_to_create_a_missing_writable_source(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    assert not (tmp_path / "test-results").exists()
    code, _, err = cli("render", "isolation", "--policies", str(tmp_path / "policies"))
    assert code == 0
    assert f"mkdir -p {tmp_path / 'test-results'}" in err


def test_the_compose_render_of_every_key_is_a_valid_compose_file(tmp_path: Path) -> None:
    """Validated against the Compose Specification's JSON schema (tests/data/compose-spec.json,
    from compose-spec/compose-spec), with every key of issue 12 declared."""
    import importlib

    jsonschema: Any = importlib.import_module("jsonschema")  # untyped: no stubs installed
    (tmp_path / "p.toml").write_text(
        'version = 1\n[profiles.probe]\nimage = "busybox:latest"\nnetwork = "bridge"\n'
        'ports = [{ host = "127.0.0.1", host_port = 8080, container = 80 }]\n'
        'devices = [{ host = "/dev/fuse", permissions = "rw" }]\n'
        'restart = "on-failure:3"\nsysctls = { "net.ipv4.ping_group_range" = "0 1" }\n'
        'cgroup_parent = "/ci"\nuserns = "host"\noom_kill_disable = true\n'
        'apparmor = "docker-default"\nselinux = ["type:container_t"]\n'
        "ulimits = { nofile = { soft = 1024, hard = 2048 }, nproc = 512 }\n"
        'mounts = [{ source = ".", target = "/src", propagation = "rslave" }]\n'
    )
    profile = load_policy([tmp_path]).profiles["probe"]
    doc = render(Compose(), walk(profile, tmp_path, "p.toml")).value
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(doc)
    service = doc["services"]["probe"]
    assert service["ports"] == ["127.0.0.1:8080:80/tcp"]
    assert service["ulimits"] == {
        "nofile": {"soft": 1024, "hard": 2048},
        "nproc": {"soft": 512, "hard": 512},
    }
    assert service["volumes"][0]["bind"] == {"propagation": "rslave"}
    assert "apparmor=docker-default" in service["security_opt"]
