"""`policy.evaluate`: the one evaluation behind `policy validate` and the audit."""

from __future__ import annotations

from pathlib import Path

from policy.evaluate import evaluate
from policy.loader import load_policy
from policy.rules import RULES
from policy.validate import rule_findings

WEAK = """\
version = 1
[profiles.weak]
image = "busybox:latest"
privileged = true
"""


def test_validate_reports_exactly_what_the_evaluation_finds(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(WEAK)
    policy = load_policy([tmp_path])
    verdicts = sorted(v.rule for v in evaluate(policy.profiles["weak"], policy))
    assert "privileged" in verdicts and "no-timeout" in verdicts
    assert sorted(d.code for d in rule_findings(policy)) == verdicts


def test_a_running_container_is_not_judged_by_declaration_only_rules(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text(WEAK)
    policy = load_policy([tmp_path])
    declared = {v.rule for v in evaluate(policy.profiles["weak"], policy)}
    running = {v.rule for v in evaluate(policy.profiles["weak"], policy, declared=False)}
    only_declared = {r.id for r in RULES if r.declared_only}
    assert only_declared == {"no-timeout"}
    assert declared - running == only_declared


def test_only_a_running_container_is_judged_on_its_health_check(tmp_path: Path) -> None:
    # A declared profile or a compose service without a check may keep its image's, which
    # neither shows: `no-healthcheck` is left to the audit of a running container.
    (tmp_path / "p.toml").write_text(WEAK)
    policy = load_policy([tmp_path])
    weak = policy.profiles["weak"]
    assert "no-healthcheck" not in {v.rule for v in evaluate(weak, policy)}
    assert "no-healthcheck" not in {v.rule for v in evaluate(weak, policy, declared=False)}
    [note] = [
        v
        for v in evaluate(weak, policy, declared=False, running=True)
        if v.rule == "no-healthcheck"
    ]
    assert note.severity.value == "note" and note.key == ("healthcheck",)
