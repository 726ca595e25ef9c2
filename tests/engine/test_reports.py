"""Audit report formats: table, JSON (container-policy/audit/v1), SARIF 2.1.0 (validated against
the OASIS schema in tests/data), JUnit XML; and `policy audit --output` / usage errors.

Most tests build an `AuditReport` from recorded inspect documents (tests/data/inspect) audited
against the policy they were recorded under, so every kind of finding appears with real
locations; the tests marked `engine` run real audits.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import shlex
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from engine import labels as L
from engine.audit.auditor import Auditor
from engine.audit.findings import AuditReport, ContainerReport, Finding, Kind
from engine.report import Format, formatter
from engine.report.json_format import SCHEMA
from policy.canonical import SOURCE_KEY
from policy.diagnostics import Severity
from policy.loader import Policy
from policy.rules import RULES
from tests.documents import DATA, image_config, inspect_doc, recorded
from tests.helpers import POLICIES, cli, new_name

SARIF_SCHEMA = DATA / "sarif-schema-2.1.0.json"
H1, H2, H3 = "unix:///var/run/docker.sock", "ssh://ci@runner2", "tcp://10.0.0.9:2376"
MIB = 1 << 20
jsonschema: Any = importlib.import_module("jsonschema")  # untyped: no stubs installed


# Fixture `policy` (tests/engine/conftest.py): the policy the documents were recorded under.


def _doc(name: str, new_id: str, **changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(recorded(name))
    doc["Id"] = new_id * (64 // len(new_id))
    doc["Name"] = f"/{name}-{new_id}"
    for key, value in changes.items():
        section, field = key.split("__")
        doc[section][field] = value
    return doc


@pytest.fixture(scope="module")
def report(policy: Policy) -> AuditReport:
    """Every kind of finding, over three hosts (the third unreachable)."""
    image = recorded("image-simple-test-isolation")["Config"]
    auditor = Auditor(policy)

    def judge(host: str, doc: dict[str, Any]) -> ContainerReport:
        return auditor.audit_container(host, inspect_doc(doc), image_config(image))

    clean = judge(H1, _doc("isolation-launched", "a1"))
    drifted = judge(
        H1,
        _doc(
            "isolation-launched",
            "b2",
            HostConfig__Memory=512 * MIB,
            Config__User="1002:1002",
            HostConfig__CapAdd=["NET_RAW"],
        ),
    )
    drifted.findings.append(
        Finding(
            Kind.KERNEL,
            Kind.KERNEL.value,
            Severity.ERROR,
            "kernel memory: expected 1073741824, the kernel has 536870912",
            host=H1,
            container=drifted.id,
            name=drifted.name,
            profile="isolation",
            field="memory",
            expected=1024 * MIB,
            actual=512 * MIB,
            location=policy.where("isolation"),
        )
    )
    stale_doc = _doc("jit-launched", "c3", HostConfig__PidsLimit=100)
    stale_doc["Config"]["Labels"][L.DIGEST] = "sha256:" + "0" * 64
    stale = judge(H2, stale_doc)
    unknown_doc = _doc("isolation-launched", "d4")
    unknown_doc["Config"]["Labels"][L.PROFILE] = "retired"
    unknown = judge(H2, unknown_doc)
    unmanaged = judge(H2, _doc("unmanaged-privileged", "e5"))
    mixed = judge(H2, _doc("unmanaged-mixed", "f6"))
    out = AuditReport(
        containers=[clean, drifted, stale, unknown, unmanaged, mixed], hosts=[H1, H2, H3]
    )
    out.host_findings.append(
        Finding(
            Kind.HOST_UNREACHABLE,
            Kind.HOST_UNREACHABLE.value,
            Severity.ERROR,
            f"cannot list containers the Docker engine at {H3}: connection refused",
            host=H3,
        )
    )
    return out


def test_the_sample_report_has_every_kind(report: AuditReport) -> None:
    kinds = Counter(f.kind for f in report.findings)
    # AUDIT_ERROR needs a container that cannot be evaluated: see the test below.
    # COMPOSE findings come from `policy check` (tests/compose).
    assert set(kinds) == set(Kind) - {Kind.AUDIT_ERROR, Kind.COMPOSE}
    assert kinds[Kind.DRIFT] == 3
    assert report.containers[0].findings == []
    assert {f.severity for f in report.findings} == set(Severity)
    # The one note: the privileged container started by hand runs no health check (CIS 5.27).
    [note] = [f for f in report.findings if f.severity is Severity.NOTE]
    assert (note.rule, note.name) == ("no-healthcheck", report.containers[4].name)


# -- table ----------------------------------------------------------------------------------------


def test_table(report: AuditReport) -> None:
    text = formatter(Format.TABLE).render(report)
    lines = text.splitlines()
    errors = sum(f.severity is Severity.ERROR for f in report.findings)
    warnings = sum(f.severity is Severity.WARNING for f in report.findings)
    assert lines[-1] == (
        f"6 container(s) on 3 host(s): 1 clean, {errors} error(s), {warnings} warning(s), 1 note(s)"
    )
    assert lines[0].startswith(f"{H3}: error   host-unreachable: ")
    assert "\033[" not in text
    # One header per container with findings, naming its profile (or "unmanaged") and host.
    headers = [line for line in lines[:-1] if not line.startswith(" ") and " on " in line]
    assert len(headers) == 5
    assert any("profile isolation) on " + H1 in h for h in headers)
    assert sum("unmanaged) on " + H2 in h for h in headers) == 2
    assert not any(report.containers[0].id[:12] in h for h in headers)  # clean: not listed
    assert len([line for line in lines if line.startswith("  ")]) == len(report.findings) - 1


def test_table_in_colour(report: AuditReport) -> None:
    text = formatter(Format.TABLE, color=True).render(report)
    assert "\033[31merror  \033[0m" in text and "\033[33mwarning\033[0m" in text
    assert "\033[36mnote   \033[0m" in text


def test_a_container_with_only_notes_is_clean(report: AuditReport) -> None:
    # A note is no weakness: the summary counts the container clean, and notes apart.
    noted = report.containers[4]
    only_notes = ContainerReport(
        noted.host, noted.id, noted.name, noted.image, None,
        [f for f in noted.findings if f.severity is Severity.NOTE],
    )  # fmt: skip
    one = AuditReport(containers=[only_notes], hosts=[noted.host])
    text = formatter(Format.TABLE).render(one)
    assert text.splitlines()[-1] == (
        "1 container(s) on 1 host(s): 1 clean, 0 error(s), 0 warning(s), 1 note(s)"
    )
    assert "no-healthcheck" in text  # shown, though it does not count
    assert one.failing(Severity.WARNING) == [] and len(one.failing(Severity.NOTE)) == 1


# -- JSON -----------------------------------------------------------------------------------------

FINDING_KEYS = {
    "kind", "rule", "severity", "message", "host", "container", "name", "profile", "field",
    "expected", "actual", "location",
}  # fmt: skip


def test_json(report: AuditReport) -> None:
    doc = json.loads(formatter(Format.JSON).render(report))
    assert doc["schema"] == SCHEMA == "container-policy/audit/v1"
    assert doc["hosts"] == [H1, H2, H3]
    errors = sum(f.severity is Severity.ERROR for f in report.findings)
    assert doc["summary"] == {
        "containers": 6,
        "findings": len(report.findings),
        "errors": errors,
        "warnings": len(report.findings) - errors - 1,
        "notes": 1,
    }
    assert [c["id"] for c in doc["containers"]] == [c.id for c in report.containers]
    for entry, c in zip(doc["containers"], report.containers, strict=True):
        assert set(entry) == {"host", "id", "name", "image", "profile", "findings"}
        assert (entry["host"], entry["name"], entry["profile"]) == (c.host, c.name, c.profile)
        assert entry["image"] == "simple-test-isolation:latest"
        for f in entry["findings"]:
            assert set(f) == FINDING_KEYS
            assert (f["host"], f["container"]) == (c.host, c.id)
            assert set(f["location"]) == {"path", "line", "col"}
    [host] = doc["host_findings"]
    assert host["kind"] == "host-unreachable" and host["host"] == H3
    assert host["container"] is None and host["location"] is None
    drift = next(f for c in doc["containers"] for f in c["findings"] if f["field"] == "memory")
    assert (drift["expected"], drift["actual"]) == (1024 * MIB, 512 * MIB)


# -- SARIF ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sarif_validator() -> Any:
    schema = json.loads(SARIF_SCHEMA.read_text())
    return jsonschema.Draft4Validator(schema)


def check_sarif(text: str, validator: Any) -> dict[str, Any]:
    """Validate against the schema and check the rule table; return the document."""
    doc: dict[str, Any] = json.loads(text)
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    assert doc["version"] == "2.1.0"
    [run] = doc["runs"]
    rules = run["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)
    for result in run["results"]:
        assert result["ruleId"] in ids
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
    return doc


def line_at(uri: str, line: int) -> str:
    return Path(uri).read_text().splitlines()[line - 1]


def test_sarif(report: AuditReport, policy: Policy, sarif_validator: Any) -> None:
    doc = check_sarif(formatter(Format.SARIF).render(report), sarif_validator)
    run = doc["runs"][0]
    rules = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {k.value for k in Kind} | {r.id for r in RULES} <= rules
    assert {"guardrail/networks", "guardrail/ptrace-only"} <= rules  # found, so described
    results = run["results"]
    assert len(results) == len(report.findings)
    for result, finding in zip(results, report.findings, strict=True):
        assert result["ruleId"] == finding.rule
        assert result["level"] == finding.severity.value
        assert result["properties"]["host"] == finding.host
        assert finding.host in result["message"]["text"]
        if finding.container:
            [logical] = result["locations"][0]["logicalLocations"]
            assert logical["fullyQualifiedName"] == f"{finding.host}/{finding.container}"
    # Drift results point at the key in the file where the profile declares (or inherits) it,
    # or, for a key it leaves unset (capabilities: no cap_add anywhere), at its table header.
    drifts = [r for r in results if r["ruleId"] == "drift"]
    assert len(drifts) == 3
    for result, finding in zip(
        drifts, [f for f in report.findings if f.kind is Kind.DRIFT], strict=True
    ):
        where = result["locations"][0]["physicalLocation"]
        assert where["artifactLocation"]["uri"].endswith("policies-recorded/base.toml")
        key = SOURCE_KEY.get(finding.field or "", finding.field or "")
        text = line_at(where["artifactLocation"]["uri"], where["region"]["startLine"])
        if (key,) in policy.origins["isolation"]:
            assert re.match(rf"\s*{key}\s*=", text), (key, text)
        else:
            assert text == "[profiles.isolation]", (key, text)
    assert {f.field for f in report.findings if f.kind is Kind.DRIFT} == {
        "user",  # set in [defaults]
        "memory",  # set in [profiles.isolation]
        "capabilities",  # not set: the header
    }
    # A stale result points at the profile's table header.
    stale = next(r for r in results if r["ruleId"] == "stale")
    region = stale["locations"][0]["physicalLocation"]["region"]
    assert line_at(
        stale["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], region["startLine"]
    ).startswith("[profiles.jit]")


def test_sarif_of_an_empty_report_validates(sarif_validator: Any) -> None:
    doc = check_sarif(formatter(Format.SARIF).render(AuditReport(hosts=[H1])), sarif_validator)
    assert doc["runs"][0]["results"] == []


# -- JUnit ----------------------------------------------------------------------------------------


def test_junit(report: AuditReport) -> None:
    root = ET.fromstring(formatter(Format.JUNIT).render(report))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [H1, H2, H3]
    for suite in suites:
        cases = suite.findall("testcase")
        assert int(suite.get("tests", "-1")) == len(cases)
        keys = [(c.get("classname"), c.get("name")) for c in cases]
        assert len(keys) == len(set(keys)), "one test case per container and rule"
    by_host = {s.get("name"): s for s in suites}
    for c in report.containers:
        mine = {
            case.get("name"): case
            for case in by_host[c.host].findall("testcase")
            if case.get("classname") == c.name
        }
        found = {f.rule for f in c.findings}
        if c.profile:
            assert {"drift", "stale", "unknown-profile"} <= set(mine)
        else:
            assert {r.id for r in RULES} <= set(mine)
        assert found <= set(mine)
        failing = {name for name, case in mine.items() if case.find("failure") is not None}
        noted = {f.rule for f in c.findings if f.severity is Severity.NOTE}
        assert failing == found - noted
        for rule in noted:  # a note passes, and says what it noted
            out = mine[rule].find("system-out")
            assert out is not None and out.text == "\n".join(
                f.message for f in c.findings if f.rule == rule
            )
        for rule in found - noted:
            failure = mine[rule].find("failure")
            assert failure is not None and failure.text is not None
            assert failure.text.splitlines() == [f.message for f in c.findings if f.rule == rule]
    # Container-only suites: the failures attribute counts the failing test cases.
    for host in (H1, H2):
        suite = by_host[host]
        assert int(suite.get("failures", "-1")) == len(suite.findall("testcase/failure"))


def test_junit_counts_an_unreachable_host_as_an_error(report: AuditReport) -> None:
    root = ET.fromstring(formatter(Format.JUNIT).render(report))
    suite = next(s for s in root.findall("testsuite") if s.get("name") == H3)
    assert len(suite.findall("testcase/error")) == 1
    assert suite.get("errors") == "1"
    assert suite.get("failures") == "0"


# -- real audits ----------------------------------------------------------------------------------


def _rendered_with_memory(name: str) -> list[str]:
    code, out, err = cli("render", "isolation", "--policies", str(POLICIES), "--", "sleep", "300")
    assert code == 0, err
    argv = shlex.split(out.strip())
    argv[argv.index("--rm") : argv.index("--rm") + 1] = ["-d", "--name", name]
    argv[argv.index("--memory") + 1] = "512m"
    return argv


@pytest.mark.engine
def test_real_drift_in_every_format(
    docker_client: Any, container_names: list[str], shipped: Policy, sarif_validator: Any
) -> None:
    name = new_name("cp-report")
    container_names.append(name)
    subprocess.run(_rendered_with_memory(name), check=True, capture_output=True)
    args = ("audit", "--policies", str(POLICIES), "--filter", f"name=^/{name}$")

    code, out, _ = cli(*args, "--format", "json")
    assert code == 1
    [entry] = json.loads(out)["containers"]
    assert [(f["kind"], f["field"]) for f in entry["findings"]] == [("drift", "memory")]

    code, out, _ = cli(*args, "--format", "sarif")
    assert code == 1
    [result] = check_sarif(out, sarif_validator)["runs"][0]["results"]
    where = result["locations"][0]["physicalLocation"]
    expected = shipped.where("isolation", ("memory",))
    assert where["artifactLocation"]["uri"] == expected.path
    assert where["region"]["startLine"] == expected.line
    assert line_at(expected.path, expected.line).startswith("memory")

    code, out, _ = cli(*args, "--format", "junit")
    assert code == 1
    root = ET.fromstring(out)
    cases = root.findall(f"testsuite/testcase[@classname='{name}']")
    assert sorted(c.get("name", "") for c in cases) == ["drift", "stale", "unknown-profile"]
    assert [c.get("name") for c in cases if c.find("failure") is not None] == ["drift"]

    code, out, _ = cli(*args)
    assert code == 1
    assert out.splitlines()[-1] == "1 container(s) on 1 host(s): 0 clean, 1 error(s), 0 warning(s)"


@pytest.mark.engine
def test_output_file_is_written_at_the_end(docker_client: Any, tmp_path: Path) -> None:
    target = tmp_path / "audit.sarif"
    code, out, err = cli(
        "audit", "--policies", str(POLICIES), "--format", "sarif", "--output", str(target),
        "--filter", f"name=^/{new_name('cp-nothing')}$",
    )  # fmt: skip
    assert code == 0, err
    assert out == ""  # the report went to the file only
    assert json.loads(target.read_text())["runs"][0]["results"] == []
    assert [p.name for p in tmp_path.iterdir()] == ["audit.sarif"]  # no temporary file left


def test_failed_audit_writes_no_output(tmp_path: Path) -> None:
    target = tmp_path / "audit.json"
    code, out, err = cli(
        "audit", "--policies", str(POLICIES), "--format", "json", "--output", str(target),
        "--host", f"unix://{tmp_path}/nothing.sock",
    )  # fmt: skip
    assert code == 2 and out == ""
    assert "nothing.sock" in err
    assert list(tmp_path.iterdir()) == []
    # An earlier report stays as it was.
    target.write_text("earlier")
    code, _, _ = cli(
        "audit", "--policies", str(POLICIES), "--format", "json", "--output", str(target),
        "--host", f"unix://{tmp_path}/nothing.sock",
    )  # fmt: skip
    assert code == 2
    assert target.read_text() == "earlier"
    assert [p.name for p in tmp_path.iterdir()] == ["audit.json"]


def _audit_to(target: Path) -> tuple[int, str, str]:
    return cli(
        "audit", "--policies", str(POLICIES), "--output", str(target),
        "--filter", f"name=^/{new_name('cp-nothing')}$",
    )  # fmt: skip


@pytest.mark.parametrize("where", ["missing-dir", "file-as-dir"])
def test_unwritable_output_is_a_usage_error(where: str, tmp_path: Path) -> None:
    if where == "missing-dir":
        target = tmp_path / "no" / "such" / "dir" / "audit.json"
    else:
        (tmp_path / "file").write_text("")
        target = tmp_path / "file" / "audit.json"
    code, out, err = _audit_to(target)
    assert code == 2, err
    assert out == ""
    assert "--output" in err and "Traceback" not in err
    assert not target.exists()


@pytest.mark.engine
def test_output_that_cannot_be_written_after_the_audit(docker_client: Any) -> None:
    """/proc exists, so the audit runs; writing there fails even for root: exit 2, no file."""
    target = Path("/proc") / f"cp-{uuid.uuid4().hex[:8]}.json"
    code, out, err = _audit_to(target)
    assert code == 2, err
    assert out == ""
    assert f"--output {target}" in err and "Traceback" not in err
    assert not target.exists()


@pytest.mark.parametrize("bad", ["nokey", "=value"])
def test_bad_filter_is_a_usage_error(bad: str) -> None:
    code, out, err = cli("audit", "--policies", str(POLICIES), "--filter", bad)
    assert code == 2 and out == ""
    assert f"--filter {bad!r}" in err and "KEY=VALUE" in err
    assert "Traceback" not in err


def test_a_container_that_cannot_be_evaluated_is_a_finding_in_every_format(
    policy: Policy,
) -> None:
    doc = _doc("isolation-launched", "b7")
    doc["HostConfig"]["CapAdd"] = ["NOT_A_CAPABILITY"]  # what no engine reports, say a bug
    auditor = Auditor(policy)
    evaluated = auditor.evaluate("unix:///h.sock", inspect_doc(doc), image_config({}))
    assert [f.kind for f in evaluated.findings] == [Kind.AUDIT_ERROR]
    assert evaluated.findings[0].severity is Severity.ERROR
    assert "NOT_A_CAPABILITY" in evaluated.findings[0].message
    single = AuditReport(containers=[evaluated], hosts=["unix:///h.sock"])
    assert single.failing(Severity.ERROR) == evaluated.findings
    for fmt in Format:
        text = formatter(fmt).render(single)
        assert "audit-error" in text
