"""`policy render --as compose` of several profiles: one file, a service per profile, valid
against the Compose Specification's schema (tests/data/compose-spec.json, from
compose-spec/compose-spec), and the same settings a `policy check` of it reads back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.helpers import POLICIES, ROOT, cli

SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"


def compose_valid(doc: dict[str, Any]) -> None:
    # Draft 7, as the schema says (its $schema URL is one jsonschema does not recognise).
    jsonschema.Draft7Validator(json.loads(SCHEMA.read_text())).validate(doc)


def test_all_profiles_render_as_one_schema_valid_compose_file(tmp_path: Path) -> None:
    code, out, err = cli("render", "--all", "--as", "compose", "-p", str(POLICIES), "--", "true")
    assert code == 0, err
    doc = yaml.safe_load(out)
    compose_valid(doc)
    assert sorted(doc["services"]) == [
        "fast", "full", "intensive", "isolation", "jit", "parallel", "slow", "standard",
    ]  # fmt: skip
    assert err.count("is enforced by `policy run`") == 8  # one note per profile's timeout
    # Checked against its own policy, the rendered file is clean.
    path = tmp_path / "all.yml"
    path.write_text(out)
    code, out, err = cli("check", str(path), "-p", str(POLICIES))
    assert code == 0, out + err
    assert "8 service(s) in 1 file set(s): 8 clean" in out


def test_several_names_and_the_usage_errors() -> None:
    code, out, _ = cli("render", "isolation", "full", "--as", "compose", "-p", str(POLICIES))
    assert code == 0
    doc = yaml.safe_load(out)
    compose_valid(doc)
    assert sorted(doc["services"]) == ["full", "isolation"]
    for args, message in [
        (["isolation", "full"], "--as docker-run renders one profile"),
        ([], "name the profiles to render, or give --all"),
        (["isolation", "--all", "--as", "compose"], "name the profiles to render, or give --all"),
        (["isolation", "--pss", "baseline"], "--pss judges Kubernetes manifests"),
        (["nope", "--as", "compose"], "no profile 'nope'"),
    ]:
        code, out, err = cli("render", *args, "-p", str(POLICIES))
        assert code == 2 and message in err and out == "", (args, err)


@pytest.mark.parametrize("name", ["isolation", "jit"])
def test_a_single_profile_is_schema_valid_too(name: str) -> None:
    code, out, err = cli("render", name, "--as", "compose", "-p", str(POLICIES), "--", "echo", "$X")
    assert code == 0, err
    compose_valid(yaml.safe_load(out))
