"""JUnit XML for CI: one test suite per host, one test case per container and rule.

A note (`Severity.NOTE`) is no failure: its test case passes and carries the note as output."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from engine.audit.findings import AuditReport, Kind
from policy.diagnostics import Severity
from policy.rules import RULES

_MANAGED = (Kind.DRIFT.value, Kind.STALE.value, Kind.UNKNOWN_PROFILE.value)


class JunitFormat:
    """See `Formatter.render`."""

    def render(self, report: AuditReport) -> str:
        root = ET.Element("testsuites", name="policy audit")
        for host in report.hosts:
            suite = ET.SubElement(root, "testsuite", name=host)
            tests = failures = errors = 0
            for f in (f for f in report.host_findings if f.host == host):
                case = ET.SubElement(suite, "testcase", classname=host, name=f.rule)
                ET.SubElement(case, "error", message=f.message)
                tests += 1
                errors += 1  # the audit could not run there: an error, not a failed check
            for c in (c for c in report.containers if c.host == host):
                by_rule: dict[str, list[str]] = {}
                noted: dict[str, list[str]] = {}
                for f in c.findings:
                    into = noted if f.severity is Severity.NOTE else by_rule
                    into.setdefault(f.rule, []).append(f.message)
                rule_ids = list(_MANAGED) if c.profile else [r.id for r in RULES]
                rule_ids += [r for r in [*by_rule, *noted] if r not in rule_ids]
                for rule_id in rule_ids:
                    case = ET.SubElement(suite, "testcase", classname=c.name or c.id, name=rule_id)
                    tests += 1
                    if rule_id in by_rule:
                        failures += 1
                        failure = ET.SubElement(
                            case, "failure", message="; ".join(by_rule[rule_id])[:500]
                        )
                        failure.text = "\n".join(by_rule[rule_id])
                    elif rule_id in noted:
                        ET.SubElement(case, "system-out").text = "\n".join(noted[rule_id])
            suite.set("tests", str(tests))
            suite.set("failures", str(failures))
            suite.set("errors", str(errors))
        return ET.tostring(root, encoding="unicode", xml_declaration=True)
