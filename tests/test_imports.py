"""A command pays only for the imports it needs: `policy --version` and a warm `policy validate`
import neither pydantic nor the docker SDK nor loguru; `policy audit` and `policy run` on a local
engine never import the docker SDK (they speak the Engine API with the standard library), and a
passing run that logs nothing does not import loguru; matplotlib and jinja2 come with
`policy report --format html` alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import POLICIES, ROOT

# Runs one command in a fresh interpreter, then writes the names of every module it imported.
PROBE = """
import json, sys
from engine.cli import main
try:
    main(sys.argv[2:])
except SystemExit:
    pass
with open(sys.argv[1], "w") as out:
    json.dump(sorted(sys.modules), out)
"""


def imported(tmp_path: Path, *argv: str) -> set[str]:
    listing = tmp_path / "modules.json"
    subprocess.run(
        [sys.executable, "-c", PROBE, str(listing), *argv],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    return {m.split(".")[0] for m in json.loads(listing.read_text())} | set(
        json.loads(listing.read_text())
    )


SDK = {"docker", "requests", "urllib3"}
HEAVY = SDK | {"pydantic", "pydantic_core", "loguru", "cerberus"}
PLOTS = {"matplotlib", "jinja2", "markupsafe", "numpy", "engine.report.usage.queries"}


def test_version_imports_nothing_heavy(tmp_path: Path) -> None:
    found = imported(tmp_path, "--version")
    assert not found & (HEAVY | {"importlib.metadata", "policy.model"}), found & HEAVY


def test_a_warm_validate_imports_no_pydantic_sdk_or_loguru(tmp_path: Path) -> None:
    cold = imported(tmp_path, "validate", str(POLICIES))
    assert "pydantic" in cold  # the cold run did load and validate
    assert not cold & (SDK | {"loguru"})
    warm = imported(tmp_path, "validate", str(POLICIES))
    assert not warm & HEAVY, warm & HEAVY


@pytest.mark.engine
def test_audit_and_run_on_a_local_engine_never_import_the_docker_sdk(
    tmp_path: Path, docker_client: object
) -> None:
    (ROOT / "test-results").mkdir(exist_ok=True)
    audit = imported(tmp_path, "audit", "--policies", str(POLICIES), "--filter", "label=cp-none")
    assert "engine.audit.auditor" in audit
    assert not audit & SDK, audit & SDK
    run = imported(tmp_path, "run", "isolation", "--policies", str(POLICIES), "--", "true")
    assert "engine.launcher.run" in run
    assert not run & SDK, run & SDK
    assert "loguru" not in run, "a run that logs nothing imported loguru"
    swarm = {m for m in run if "swarm" in m}
    assert not swarm, f"a run on one engine imported the Swarm modules: {swarm}"
    assert not run & PLOTS, run & PLOTS  # the report's libraries stay off the run path


def test_import_engine_and_the_parser_never_import_the_report_libraries() -> None:
    probe = (
        "import sys, engine, engine.api, engine.cli.app; engine.cli.app.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('matplotlib', 'jinja2', 'markupsafe', 'numpy') "
        "or m.startswith(('engine.report.usage.queries', 'engine.report.usage.formats.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


def test_only_the_html_report_imports_matplotlib_and_jinja2(tmp_path: Path) -> None:
    from engine.history.sqlite import SqliteStore

    history = tmp_path / "empty.sqlite"
    SqliteStore(history).prune()  # an empty history with its schema
    table = imported(tmp_path, "report", "--history", str(history), "--since", "1d")
    assert "engine.report.usage.formats.table" in table
    assert not table & {"matplotlib", "jinja2"}, table & {"matplotlib", "jinja2"}


# Compose and Kubernetes (issue 15): YAML is for the commands that read compose files; the
# schema validators are for the tests only.
YAML_AND_SCHEMAS = {"yaml", "kubernetes_validate", "jsonschema"}


def test_validate_render_and_audit_import_no_yaml_or_schema_validator(tmp_path: Path) -> None:
    for argv in (
        ("validate", str(POLICIES)),
        ("render", "isolation", "--policies", str(POLICIES)),
        ("render", "--all", "--as", "compose", "--policies", str(POLICIES)),
        ("render", "isolation", "--as", "kubernetes", "--policies", str(POLICIES)),
    ):
        found = imported(tmp_path, *argv)
        assert not found & YAML_AND_SCHEMAS, (argv, found & YAML_AND_SCHEMAS)


def test_check_imports_yaml_but_no_schema_validator_nor_the_sdk(tmp_path: Path) -> None:
    seed = ROOT / "examples" / "seed-compose" / "docker-compose.test.yml"
    found = imported(tmp_path, "check", str(seed), "--policies", str(POLICIES))
    assert "engine.compose.check" in found and "yaml" in found
    assert not found & ({"kubernetes_validate", "jsonschema"} | SDK | {"loguru"})
