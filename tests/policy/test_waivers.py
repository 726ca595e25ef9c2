"""Waivers: a dated, reasoned exception to one rule for one profile, and nothing more.

A live waiver removes exactly its own finding; expired, unknown, unused or repeated waivers are
errors themselves, so stale exceptions cannot pile up.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from policy.diagnostics import Diagnostic, Severity
from policy.loader import load_policy
from policy.validate import apply_waivers, validate
from tests.helpers import write_policies

TODAY = dt.date(2026, 11, 28)

HEAD = """version = 1

[defaults]
user = "1001:1001"
read_only = true
cap_drop = ["ALL"]
no_new_privileges = true
pids_limit = 64
memory = "512m"
cpus = 1
timeout = "5m"
image = "app:1"

[profiles.debug]
cap_add = ["SYS_PTRACE"]
privileged = true

[profiles.child]
extends = "debug"

[profiles.clean]
"""


def waiver(profile: str = "debug", rule: str = "cap-add", expires: str = "2027-06-30") -> str:
    return (
        f'\n[[waivers]]\nprofile = "{profile}"\nrule = "{rule}"\n'
        f'reason = "gdb needs ptrace in the debug image"\nexpires = {expires}\n'
    )


def run(tmp_path: Path, *waivers: str, today: dt.date = TODAY) -> list[Diagnostic]:
    policies = write_policies(tmp_path, {"p.toml": HEAD + "".join(waivers)})
    return validate(load_policy([policies]), today=today)


def codes(found: list[Diagnostic]) -> list[tuple[str | None, str]]:
    return sorted((d.profile, d.code) for d in found)


UNWAIVED = [
    ("child", "cap-add"),
    ("child", "privileged"),
    ("debug", "cap-add"),
    ("debug", "privileged"),
]


def test_without_waivers_every_finding_is_reported(tmp_path: Path) -> None:
    assert codes(run(tmp_path)) == UNWAIVED


def test_a_waiver_suppresses_exactly_its_finding(tmp_path: Path) -> None:
    found = run(tmp_path, waiver())
    # Not the other rule on the same profile, not the same rule on the child.
    assert codes(found) == [("child", "cap-add"), ("child", "privileged"), ("debug", "privileged")]


def test_children_need_their_own_waiver(tmp_path: Path) -> None:
    found = run(tmp_path, waiver(), waiver(profile="child"))
    assert codes(found) == [("child", "privileged"), ("debug", "privileged")]


def test_waivers_for_every_finding_leave_nothing(tmp_path: Path) -> None:
    found = run(
        tmp_path,
        *(waiver(profile, rule) for profile, rule in UNWAIVED),
    )
    assert found == []


def test_a_waiver_is_live_until_its_date(tmp_path: Path) -> None:
    assert codes(run(tmp_path, waiver(expires="2026-11-29"))) == codes(run(tmp_path, waiver()))


@pytest.mark.parametrize("today", [dt.date(2027, 6, 30), dt.date(2027, 7, 1), dt.date(2030, 1, 1)])
def test_an_expired_waiver_is_an_error_and_waives_nothing(tmp_path: Path, today: dt.date) -> None:
    found = run(tmp_path, waiver(expires="2027-06-30"), today=today)
    assert codes(found) == sorted([*UNWAIVED, ("debug", "waiver-expired")])
    expired = next(d for d in found if d.code == "waiver-expired")
    assert expired.severity is Severity.ERROR
    assert expired.location.line == HEAD.count("\n") + 6  # the `expires` key
    assert "2027-06-30" in expired.message


def test_an_unused_waiver_is_an_error(tmp_path: Path) -> None:
    found = run(tmp_path, waiver(profile="clean"))
    unused = [d for d in found if d.code == "waiver-unused"]
    assert len(unused) == 1
    assert unused[0].location.line == HEAD.count("\n") + 2  # the [[waivers]] header
    assert "matches no finding" in unused[0].message


def test_a_repeated_waiver_is_an_error(tmp_path: Path) -> None:
    found = run(tmp_path, waiver(), waiver(expires="2027-05-31"))
    assert [d.code for d in found if d.profile == "debug"] == ["privileged", "waiver-duplicate"]
    duplicate = next(d for d in found if d.code == "waiver-duplicate")
    assert duplicate.location.line == HEAD.count("\n") + 8  # the second [[waivers]] header


def test_waiver_for_guardrail_rule_ids_is_known(tmp_path: Path) -> None:
    found = run(tmp_path, waiver(rule="guardrail/no-such"))
    assert "waiver-unknown-rule" in {d.code for d in found}


def test_waivers_in_another_file_apply(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "p.toml").write_text(HEAD, encoding="utf-8")
    (policies / "waivers.toml").write_text("version = 1\n" + waiver(), encoding="utf-8")
    found = validate(load_policy([policies]), today=TODAY)
    assert ("debug", "cap-add") not in codes(found)


def test_apply_waivers_keeps_findings_of_other_profiles() -> None:
    # The pure function: findings keyed by (profile, code) only.
    from policy.diagnostics import Location

    finding = Diagnostic(Location("p.toml", 3, 1), "cap-add", "m", profile="other")
    remaining, problems = apply_waivers([finding], [], ["other"], ["cap-add"], TODAY)
    assert remaining == [finding]
    assert problems == []
