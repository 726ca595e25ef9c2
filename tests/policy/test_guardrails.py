"""Organisation guardrails: the shipped house rules applied to profiles that break them, and
guardrail files that are themselves wrong (each a located diagnostic, never a silent no-op)."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from policy.diagnostics import Diagnostic, Severity
from policy.errors import PolicyError
from policy.loader import Policy, load_policy
from policy.validate import validate
from tests.helpers import POLICIES, write_policies

TODAY = dt.date(2026, 11, 28)

# A team file next to the shipped policy: one profile extending the vetted `isolation`.
TEAM_HEAD = 'version = 1\n\n[profiles.team]\nextends = "isolation"\n'
HEADER = (3, 11)
SETTING = 5  # the line the case's own setting is written on


def shipped_plus(tmp_path: Path, files: dict[str, str], guardrails: str | None = None) -> Path:
    """A copy of the shipped policy directory with `files` added (and guardrails replaced)."""
    shutil.copytree(POLICIES, tmp_path / "policies")
    replaced = {} if guardrails is None else {"guardrails.toml": guardrails}
    return write_policies(tmp_path, {**replaced, **files})


def team_findings(tmp_path: Path, setting: str) -> list[Diagnostic]:
    policy = load_policy([shipped_plus(tmp_path, {"team.toml": TEAM_HEAD + setting + "\n"})])
    return [d for d in validate(policy, today=TODAY) if d.profile == "team"]


@pytest.mark.parametrize(
    ("setting", "codes", "fragment"),
    [
        ('user = "999:999"', {"guardrail/regular-user"}, "uid = 999: min value is 1000"),
        ('user = "999"', {"guardrail/regular-user"}, "min value is 1000"),
        ('memory = "5g"', {"guardrail/memory-ceiling"}, "max value is 4294967296"),
        ("memory = 4294967297", {"guardrail/memory-ceiling"}, "memory = 4294967297"),
        ("cpus = 4.5", {"guardrail/cpu-ceiling"}, "cpus = 4.5: max value is 4"),
        ("cpus = 8", {"guardrail/cpu-ceiling"}, "max value is 4"),
        ('cap_add = ["NET_ADMIN"]', {"guardrail/ptrace-only", "cap-add"}, "NET_ADMIN"),
        (
            'cap_add = ["SYS_PTRACE", "NET_RAW"]',
            {"guardrail/ptrace-only", "cap-add"},
            "unallowed values ('NET_RAW',)",
        ),
        ('network = "host"', {"guardrail/networks", "host-network"}, "network = 'host'"),
        ('network = "corp-net"', {"guardrail/networks"}, "unallowed value corp-net"),
    ],
)
def test_house_rule_violation_is_located_at_the_profile_key(
    tmp_path: Path, setting: str, codes: set[str], fragment: str
) -> None:
    found = team_findings(tmp_path, setting)
    assert {d.code for d in found} == codes
    for d in found:
        assert Path(d.location.path).name == "team.toml"
        assert (d.location.line, d.location.col) == (SETTING, 1), str(d)
        assert d.severity is Severity.ERROR
    guardrail = next(d for d in found if d.code.startswith("guardrail/"))
    assert fragment in guardrail.message
    assert guardrail.message.startswith("profile 'team': ")


@pytest.mark.parametrize(
    "setting",
    [
        'user = "1000:1000"',
        'memory = "4g"',
        'memory = "4096m"',
        "memory = 4294967296",
        "cpus = 4",
        'cpus = "4.0"',
        'network = "bridge"',
        'network = "none"',
    ],
)
def test_limits_are_inclusive(tmp_path: Path, setting: str) -> None:
    assert team_findings(tmp_path, setting) == []


def test_guardrail_on_cap_add_applies_to_allowed_builtin_capability(tmp_path: Path) -> None:
    found = team_findings(tmp_path, 'cap_add = ["NET_BIND_SERVICE"]')
    assert [d.code for d in found] == ["guardrail/ptrace-only"]


def test_shipped_guardrails_hold_for_shipped_profiles() -> None:
    policy = load_policy([POLICIES])
    assert [g.rule_id for gs in policy.guardrails for g in gs.items] == [
        "guardrail/regular-user",
        "guardrail/memory-ceiling",
        "guardrail/cpu-ceiling",
        "guardrail/ptrace-only",
        "guardrail/networks",
    ]
    assert not [d for d in validate(policy, today=TODAY) if d.code.startswith("guardrail/")]


def test_inherited_violation_points_at_the_parent_key(tmp_path: Path) -> None:
    text = (
        'version = 1\n\n[profiles.big]\nextends = "isolation"\nmemory = "8g"\n\n'
        '[profiles.bigger]\nextends = "big"\ncpus = 1\n'
    )
    policy = load_policy([shipped_plus(tmp_path, {"team.toml": text})])
    found = [d for d in validate(policy, today=TODAY) if d.code == "guardrail/memory-ceiling"]
    assert sorted((d.profile, d.location.line) for d in found) == [("big", 5), ("bigger", 5)]


REQUIRED_UID = 'version = 1\n[guardrails.uid]\ndescription = "a uid"\nfield = "uid"\n'


def test_required_field_missing_is_located_at_the_profile(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "guardrails.toml").write_text(REQUIRED_UID + "rules = { required = true }\n")
    (policies / "p.toml").write_text('version = 1\n\n[profiles.anon]\nimage = "x"\n')
    found = validate(load_policy([policies]), today=TODAY)
    guardrail = [d for d in found if d.code == "guardrail/uid"]
    assert len(guardrail) == 1
    assert (guardrail[0].location.line, guardrail[0].location.col) == HEADER
    assert "required field" in guardrail[0].message
    assert "root-user" in {d.code for d in found}


def _guardrail(field: str, rules: str, extra: str = "") -> str:
    return (
        f'version = 1\n\n[guardrails.house]\ndescription = "house rule"\nfield = "{field}"\n'
        f"rules = {rules}\n{extra}"
    )


@pytest.mark.parametrize(
    ("text", "code", "line", "col", "fragment"),
    [
        (_guardrail("memroy", "{ max = 1 }"), "unknown-field", 5, 1, "did you mean 'memory'?"),
        (_guardrail("uid", "{ minn = 1000 }"), "bad-guardrail", 6, 11, "minn"),
        (_guardrail("uid", '{ required = "yes" }'), "bad-guardrail", 6, 11, "boolean"),
        (_guardrail("uid", '{ min = 1, type = "strng" }'), "bad-guardrail", 6, 20, "strng"),
        (_guardrail("network", '{ allowed = "none" }'), "bad-guardrail", 6, 11, "container"),
        (_guardrail("image", '{ regex = "(" }'), "bad-guardrail", 6, 11, "regex"),
        (_guardrail("tmpfs", '{ keysrules = { regex = "[" } }'), "bad-guardrail", 6, 11, "regex"),
        (_guardrail("memory", '{ max = "4x" }'), "bad-value", 6, 1, "expected a size"),
        (_guardrail("timeout", '{ max = "soon" }'), "bad-value", 6, 1, "expected a duration"),
        (_guardrail("uid", "{}"), "bad-value", 6, 1, "at least 1 item"),
        (
            _guardrail("uid", "{ min = 1 }", 'severity = "fatal"\n'),
            "bad-value",
            7,
            1,
            "'error' or 'warning'",
        ),
        (
            _guardrail("uid", "{ min = 1 }", 'feild = "uid"\n'),
            "unknown-key",
            7,
            1,
            "did you mean 'field'?",
        ),
        (
            _guardrail("uid", "{ min = 1 }").replace('description = "house rule"\n', ""),
            "missing-key",
            3,
            13,
            "'description'",
        ),
        ("version = 1\n\n[guardrails]\n", "no-guardrails", 3, 2, "no guardrails"),
        ("version = 1\n", "missing-key", 1, 1, "'guardrails'"),
        (
            _guardrail("uid", "{ min = 1 }").replace("version = 1", "version = 2"),
            "bad-value",
            1,
            1,
            "version",
        ),
        (
            _guardrail("uid", "{ min = 1 }").replace("[guardrails.house]", "[guardrails.House_1]"),
            "bad-value",
            3,
            13,
            "House_1",
        ),
        (
            _guardrail("uid", "{ min = 1 }").replace(
                "version = 1\n", "version = 1\nguardrail = 1\n"
            ),
            "unknown-key",
            2,
            1,
            "did you mean 'guardrails'?",
        ),
        ("version = 1\n[guardrails.house]\nx = 1\n", "unknown-key", 3, 1, "unknown key 'x'"),
    ],
)
def test_wrong_guardrail_file_gives_located_diagnostic(
    tmp_path: Path, text: str, code: str, line: int, col: int, fragment: str
) -> None:
    policies = shipped_plus(tmp_path, {}, guardrails=text)
    with pytest.raises(PolicyError) as info:
        load_policy([policies])
    diagnostics = [d for d in info.value.diagnostics if d.code == code]
    assert diagnostics, info.value.diagnostics
    d = diagnostics[0]
    assert Path(d.location.path).name == "guardrails.toml"
    assert (d.location.line, d.location.col) == (line, col), str(d)
    assert fragment in d.message, str(d)


def test_guardrail_errors_are_reported_with_policy_errors(tmp_path: Path) -> None:
    policies = shipped_plus(
        tmp_path,
        {"team.toml": TEAM_HEAD + "memroy = 1\n"},
        guardrails=_guardrail("uid", "{ minn = 1 }"),
    )
    with pytest.raises(PolicyError) as info:
        load_policy([policies])
    assert {(Path(d.location.path).name, d.code) for d in info.value.diagnostics} == {
        ("team.toml", "unknown-key"),
        ("guardrails.toml", "bad-guardrail"),
    }


def _verdicts(tmp_path: Path, rules: str, field: str, values: list[str]) -> list[bool]:
    """For each value of `field`, whether the guardrail `rules` flags a profile with it."""
    out = []
    for index, value in enumerate(values):
        root = tmp_path / str(index)
        root.mkdir()
        policies = shipped_plus(
            root, {"team.toml": f"{TEAM_HEAD}{field} = {value}\n"}, _guardrail(field, rules)
        )
        found = validate(load_policy([policies]), today=TODAY)
        out.append(any(d.code == "guardrail/house" and d.profile == "team" for d in found))
    return out


@pytest.mark.parametrize("limit", ['"4g"', '"4096m"', '"4GiB"', "4294967296"])
def test_size_limits_are_normalised(tmp_path: Path, limit: str) -> None:
    verdicts = _verdicts(tmp_path, f"{{ max = {limit} }}", "memory", ['"4g"', "4294967297"])
    assert verdicts == [False, True]


@pytest.mark.parametrize("limit", ['"5m"', '"300s"', "300"])
def test_duration_limits_are_normalised(tmp_path: Path, limit: str) -> None:
    verdicts = _verdicts(tmp_path, f"{{ max = {limit} }}", "timeout", ['"5m"', '"301s"'])
    assert verdicts == [False, True]


def test_guardrail_severity_warning(tmp_path: Path) -> None:
    text = _guardrail("uid", "{ min = 5000 }", 'severity = "warning"\n')
    policy = load_policy([shipped_plus(tmp_path, {}, guardrails=text)])
    found = validate(policy, today=TODAY)
    assert found
    assert {(d.code, d.severity) for d in found} == {("guardrail/house", Severity.WARNING)}
    assert {d.profile for d in found} == set(policy.profiles)


def test_derived_fields_are_located_at_their_source_key(tmp_path: Path) -> None:
    text = _guardrail("capabilities", "{ maxlength = 0 }")
    policy = load_policy([shipped_plus(tmp_path, {}, guardrails=text)])
    found = [d for d in validate(policy, today=TODAY) if d.code == "guardrail/house"]
    # Only profiles that add a capability; `full` writes cap_add, `intensive` inherits it.
    assert sorted(d.profile or "" for d in found) == ["full", "intensive"]
    full_cap_add = policy.where("full", ("cap_add",))
    assert {d.location for d in found} == {full_cap_add}


def test_named_guardrail_files_are_guardrails(tmp_path: Path) -> None:
    policies = shipped_plus(tmp_path, {"team.guardrails.toml": _guardrail("cpus", "{ max = 1 }")})
    policy = load_policy([policies])
    assert "team.guardrails.toml" not in {Path(f).name for f in policy.files}
    found = {d.profile for d in validate(policy, today=TODAY) if d.code == "guardrail/house"}
    assert found == {p for p, prof in policy.profiles.items() if (prof.cpus or 0) > 1}


def test_guardrail_can_be_waived(tmp_path: Path) -> None:
    text = (
        TEAM_HEAD + 'memory = "8g"\n\n[[waivers]]\nprofile = "team"\n'
        'rule = "guardrail/memory-ceiling"\nreason = "the linker needs 8g for now"\n'
        "expires = 2027-01-31\n"
    )
    policy: Policy = load_policy([shipped_plus(tmp_path, {"team.toml": text})])
    assert [d for d in validate(policy, today=TODAY) if d.profile == "team"] == []
    expired = validate(policy, today=dt.date(2027, 2, 1))
    assert {d.code for d in expired if d.profile == "team"} >= {
        "guardrail/memory-ceiling",
        "waiver-expired",
    }


@pytest.mark.parametrize(
    ("field", "rules", "setting", "fragment"),
    [
        (
            "ports",
            "{ maxlength = 0 }",
            'network = "bridge"\nports = [{ host = "127.0.0.1", container = 80 }]',
            "max length is 0",
        ),
        (
            "ulimits",
            "{ schema = { nproc = { schema = { hard = { max = 4096 } } } } }",
            "ulimits = { nproc = 8192 }",
            "max value is 4096",
        ),
        (
            "restart",
            '{ allowed = ["no"] }',
            'restart = "on-failure:2"',
            "unallowed value on-failure:2",
        ),
        ("sysctls", "{ maxlength = 0 }", 'sysctls = { "kernel.shmmax" = "1" }', "max length is 0"),
    ],
    ids=["ports", "ulimits", "restart", "sysctls"],
)
def test_guardrails_judge_the_runtime_keys(
    tmp_path: Path, field: str, rules: str, setting: str, fragment: str
) -> None:
    """The runtime keys of issue 12 are fields of the canonical document a guardrail can name;
    the shipped profiles (which set ulimits) pass, the team's setting does not."""
    policy = load_policy(
        [
            shipped_plus(
                tmp_path, {"team.toml": TEAM_HEAD + setting + "\n"}, _guardrail(field, rules)
            )
        ]
    )
    found = [d for d in validate(policy, today=TODAY) if d.code == "guardrail/house"]
    assert [d.profile for d in found] == ["team"], found
    assert fragment in found[0].message
