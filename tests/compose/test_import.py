"""`policy import`: the seed's compose file as profiles that load, whose only problems are the
suggested waivers, and that render back as compose with the same settings (the round trip)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.compose.importer import import_compose
from engine.compose.project import load
from engine.compose.service import read_service
from engine.render.compose import Compose
from engine.render.interface import render
from engine.render.walk import walk
from engine.render.yaml import to_yaml
from policy.loader import load_policy
from policy.vetted import check
from tests.compose.test_check import SEED
from tests.helpers import POLICIES, ROOT, cli

EXTENDS = """services:
  base:
    image: simple-test-isolation:latest
    user: "1001:1001"
    read_only: true
    privileged: false
    cap_drop: [ALL]
    security_opt: [no-new-privileges:true]
    pids_limit: 100
    mem_limit: 1g
    network_mode: none
    environment: {A: "1"}
  big:
    extends: base
    mem_limit: 2g
    environment: {B: "2"}
  other:
    image: simple-test-full:latest
    user: "1001:1001"
    cap_drop: [ALL]
    pids_limit: 100
    network_mode: bridge
    restart: on-failure:3
    sysctls: {net.ipv4.ip_unprivileged_port_start: "1024"}
    ports: ["127.0.0.1:8080:80"]
    security_opt: [apparmor=docker-default]
"""


def imported(tmp_path: Path, source: Path = SEED) -> Path:
    text, problems = import_compose([source], load_policy([POLICIES]))
    assert problems == []
    out = tmp_path / "policies" / "seed.toml"
    out.parent.mkdir()
    out.write_text(text)
    return out


def test_the_seed_file_imports_as_profiles_that_load(tmp_path: Path) -> None:
    path = imported(tmp_path)
    text = path.read_text()
    policy = load_policy([path.parent], ROOT)
    assert sorted(policy.profiles) == ["test-full", "test-isolation", "test-parallel"]
    # Shared settings once, in [defaults]; each value names its compose line.
    assert text.count('user = "1001:1001"') == 1
    assert re.search(r'^memory = "4g"  # docker-compose\.test\.yml:\d+$', text, re.M)
    # Its only problems are the rules the services break, each offered as a waiver to fill in.
    checked = check([path.parent], ROOT)
    found = sorted({(d.code, d.profile) for d in checked.diagnostics})
    assert found == sorted(
        [("cap-add", "test-full")] + [("no-timeout", p) for p in policy.profiles]
    )
    for rule, profile in found:
        assert f'# profile = "{profile}"\n# rule = "{rule}"\n# reason = "FILL IN' in text


@pytest.mark.parametrize("source", ["seed", "extends"])
def test_rendering_the_import_back_gives_the_same_settings(tmp_path: Path, source: str) -> None:
    compose = SEED
    if source == "extends":
        compose = tmp_path / "extends.yml"
        compose.write_text(EXTENDS)
    path = imported(tmp_path, compose)
    if source == "extends":
        text = path.read_text()
        big = text[text.index("[profiles.big]") : text.index("[profiles.other]")]
        assert 'extends = "base"' in big and 'memory = "2g"' in big
        assert "image =" not in big  # inherited from base, as compose's extends does
    policy = load_policy([path.parent], ROOT)
    original = load([compose], {})
    services = {}
    for profile in policy.profiles.values():
        doc = render(Compose(), walk(profile, policy.project, "seed.toml")).value
        services.update(doc["services"])
    back = tmp_path / "back.yml"
    back.write_text(to_yaml({"version": "2.4", "services": services}))
    rendered = load([back], {})
    for name in original.services:
        before = read_service(original.services[name], original.directory, {})
        after = read_service(rendered.services[name], rendered.directory, {})
        assert after.notes == [] and before.notes == []
        assert after.settings == before.settings, name


def test_what_cannot_be_imported_is_written_and_listed(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        "services:\n  s:\n    image: busybox:latest\n    user: app\n"
        "    mac_address: 02:42:ac:11:00:02\n    ulimits: {nofile: 10}\n"
    )
    code, out, err = cli("import", str(path), "-p", str(POLICIES))
    assert code == 1
    assert f"# NOT IMPORTED: {path}:5:5: 'mac_address' sets a MAC address" in out
    assert "ulimits = { nofile = 10 }  # c.yml:6" in out  # a profile key since issue 12
    assert "user 'app' is a name" in err
    code, _, err = cli("import", str(path), "-p", str(POLICIES), "-o", str(tmp_path / "none"))
    assert code == 2 and "does not exist" in err


def test_import_writes_into_a_directory(tmp_path: Path) -> None:
    code, _, err = cli("import", str(SEED), "-p", str(POLICIES), "-o", str(tmp_path))
    assert code == 0, err
    assert (tmp_path / "docker-compose.test.toml").read_text().startswith("# Imported from")


def test_what_a_compose_file_holds_cannot_write_policy_into_the_import(tmp_path: Path) -> None:
    """A key, a service name or a value with a newline stays inside its comment or string: the
    import is exactly one profile, without the table and key the compose file tried to add."""
    path = tmp_path / "c.yml"
    path.write_text(
        'services:\n  "svc\\nprivileged = true":\n    image: busybox:latest\n    user: "1001"\n'
        '    environment: {A: "x\\u202ey\\nz"}\n'
        '    "frob\\nprivileged = true\\n[profiles.evil]\\nimage = \\"x:1\\"": 1\n'
    )
    text, problems = import_compose([path], load_policy([POLICIES]))
    assert problems and all("\n" not in p for p in problems)
    out = tmp_path / "policies" / "i.toml"
    out.parent.mkdir()
    out.write_text(text)
    policy = load_policy([out.parent], tmp_path)
    assert list(policy.profiles) == ["svc-privileged---true"]
    profile = policy.profiles["svc-privileged---true"]
    assert profile.privileged is False
    assert profile.env == {"A": "x\u202ey\nz"}  # the value itself, escaped only in the file
    assert profile.network == f"{tmp_path.name.lower()}_default".replace(".", "")


def test_a_shell_form_healthcheck_is_not_imported_as_an_exec_one(tmp_path: Path) -> None:
    path = tmp_path / "c.yml"
    path.write_text(
        'services:\n  s:\n    image: busybox:latest\n    user: "1001"\n'
        '    healthcheck: {test: "wget -q localhost || exit 1", interval: 5s}\n'
    )
    text, problems = import_compose([path], load_policy([POLICIES]))
    assert "healthcheck =" not in text
    assert any("a shell-form test" in p and ":5:" in p for p in problems)
