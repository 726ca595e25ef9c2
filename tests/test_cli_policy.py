"""The `policy` command line, called in-process: exit codes, parseable output, safe rendering.

Exit codes: 0 ok, 1 findings, 2 usage error; never a traceback.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from policy.canonical import digest
from policy.loader import load_policy
from policy.rules import RULES
from tests.helpers import ROOT, cli, write_policies

POLICY = """version = 1

[defaults]
user = "1001:1001"
read_only = true
network = "none"
cap_drop = ["ALL"]
no_new_privileges = true
pids_limit = 64
tmpfs."/tmp" = { size = "64m", mode = "1777", options = ["nosuid", "nodev", "noexec"] }
mounts = [
  { source = ".", target = "/src" },
  { source = "out", target = "/out", writable = true },
]

[profiles.app]
description = "the app's tests"
image = "app:1"
memory = "512m"
cpus = 1.5
timeout = "5m"
env = { PRICE = "$5", QUOTE = "it's \\"quoted\\"; rm -rf /" }
labels = { team = "qa $USER" }
workdir = "/src"

[profiles.probe]
extends = "app"
healthcheck = { test = ["true"] }
"""

BAD = """version = 1

[profiles.root]
image = "app:1"
user = "0"
memroy = "1g"

[profiles.open]
image = "app:1"
privileged = true
"""

# Only warnings: no CPU limit and no timeout.
WARNINGS_ONLY = """version = 1

[profiles.lax]
image = "app:1"
user = "1001:1001"
read_only = true
cap_drop = ["ALL"]
no_new_privileges = true
pids_limit = 64
memory = "1g"
"""

DIAGNOSTIC = re.compile(
    r"(?P<path>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<id>[a-z0-9/-]+): (?P<message>.+?)"
    r"(?P<warning> \(warning\))?"
)


def write_policy(root: Path, text: str) -> Path:
    policies = write_policies(root, {"p.toml": text})
    (root / "out").mkdir()
    return policies


@pytest.fixture
def policies(tmp_path: Path) -> Path:
    return write_policy(tmp_path, POLICY)


def run(*argv: str) -> tuple[int, str, str]:
    code, out, err = cli(*argv)
    assert "Traceback" not in out + err
    return code, out, err


def parse_diagnostics(text: str) -> list[dict[str, str]]:
    rows = []
    for line in text.splitlines():
        match = DIAGNOSTIC.fullmatch(line)
        assert match, f"not a `path:line:col: id: message` line: {line!r}"
        rows.append(match.groupdict())
    return rows


# --- validate ---------------------------------------------------------------------------------


def test_validate_clean_policy(policies: Path) -> None:
    code, out, err = run("validate", str(policies))
    assert code == 0
    assert out == ""
    assert "valid: 2 profile(s) in 1 file(s), 0 problem(s)" in err


def test_validate_load_errors(tmp_path: Path) -> None:
    policies = write_policy(tmp_path, BAD)
    code, out, err = run("validate", str(policies))
    assert code == 1
    rows = parse_diagnostics(out)
    assert [(Path(r["path"]).name, r["line"], r["col"], r["id"]) for r in rows] == [
        ("p.toml", "6", "1", "unknown-key")
    ]
    assert "did you mean 'memory'?" in rows[0]["message"]
    assert err.startswith("invalid: the policy does not load")


def test_validate_rule_findings(tmp_path: Path) -> None:
    policies = write_policy(tmp_path, BAD.replace('memroy = "1g"\n', ""))
    code, out, _ = run("validate", str(policies))
    assert code == 1
    rows = parse_diagnostics(out)
    found = {(r["id"], r["line"]) for r in rows}
    assert ("root-user", "5") in found
    assert ("privileged", "9") in found
    assert all(Path(r["path"]) == policies / "p.toml" for r in rows)
    assert {r["id"] for r in rows if r["warning"]} == {"no-cpu-limit", "no-timeout"}


def test_validate_warnings_fail_only_on_request(tmp_path: Path) -> None:
    policies = write_policy(tmp_path, WARNINGS_ONLY)
    code, out, _ = run("validate", str(policies))
    assert code == 0
    assert sorted(r["id"] for r in parse_diagnostics(out)) == ["no-cpu-limit", "no-timeout"]
    assert all(r["warning"] for r in parse_diagnostics(out))
    code, _, _ = run("validate", str(policies), "--fail-on", "warning")
    assert code == 1


def test_validate_json(tmp_path: Path) -> None:
    policies = write_policy(tmp_path, BAD.replace('memroy = "1g"\n', ""))
    code, out, _ = run("validate", str(policies), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert report["schema"] == "container-policy/validate/v1"
    assert report["valid"] is False
    entries = report["diagnostics"]
    assert entries
    for entry in entries:
        assert set(entry) >= {"path", "line", "col", "id", "severity", "message", "profile"}
        assert isinstance(entry["line"], int) and isinstance(entry["col"], int)
        assert entry["severity"] in ("error", "warning")
    assert {"id": "privileged", "profile": "open", "line": 9} in [
        {k: e[k] for k in ("id", "profile", "line")} for e in entries
    ]


def test_validate_json_clean(policies: Path) -> None:
    code, out, _ = run("validate", str(policies), "--format", "json")
    assert code == 0
    assert json.loads(out)["valid"] is True
    assert json.loads(out)["diagnostics"] == []


def test_validate_missing_path(tmp_path: Path) -> None:
    code, out, _ = run("validate", str(tmp_path / "nope"))
    assert code != 0
    assert "no such file" in out


def test_validate_defaults_to_policies_in_cwd(
    policies: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(policies.parent)
    code, _, err = run("validate")
    assert code == 0
    assert "2 profile(s)" in err


# --- show and list ----------------------------------------------------------------------------


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


@pytest.mark.usefixtures("in_repo")
def test_show_json() -> None:
    code, out, _ = run("show", "full", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    expected = digest(load_policy([ROOT / "policies"]).profiles["full"])
    assert doc["digest"] == expected
    assert doc["capabilities"] == ["SYS_PTRACE"]
    assert (doc["memory"], doc["cpus"], doc["uid"]) == (4 << 30, 4.0, 1001)
    assert doc["tmpfs"]["/tmp"]["mode"] == "1777"


@pytest.mark.usefixtures("in_repo")
def test_show_toml_agrees_with_json() -> None:
    _, as_json, _ = run("show", "fast", "--format", "json")
    code, as_toml, _ = run("show", "fast")
    assert code == 0
    data = tomllib.loads(as_toml)
    doc = json.loads(as_json)
    assert data == {k: v for k, v in doc.items() if v not in (None, {}, [])}


@pytest.mark.usefixtures("in_repo")
def test_show_unknown_profile() -> None:
    code, out, err = run("show", "isolaton")
    assert code == 2
    assert out == ""
    assert "did you mean 'isolation'?" in err


def test_show_of_a_broken_policy(tmp_path: Path) -> None:
    policies = write_policy(tmp_path, BAD)
    code, out, err = run("show", "open", "--policies", str(policies))
    assert code == 2
    assert out == ""
    assert "does not load" in err
    assert "unknown-key" in err  # the diagnostics are on stderr


def test_list(policies: Path) -> None:
    code, out, _ = run("list", "--policies", str(policies))
    assert code == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["app", "probe"]
    assert "the app's tests" in out


# --- render -----------------------------------------------------------------------------------


def render(policies: Path, *args: str) -> list[str]:
    code, out, err = run("render", "--policies", str(policies), *args)
    assert code == 0, err
    return shlex.split(out)


def pairs(argv: list[str]) -> set[tuple[str, str]]:
    return set(itertools.pairwise(argv))


def test_render_docker_run(policies: Path) -> None:
    argv = render(policies, "app")
    assert argv[:2] == ["docker", "run"]
    assert "--read-only" in argv
    assert "--privileged" not in argv
    assert {
        ("--cap-drop", "ALL"),
        ("--user", "1001:1001"),
        ("--network", "none"),
        ("--security-opt", "no-new-privileges:true"),
        ("--pids-limit", "64"),
        ("--memory", "512m"),
        ("--workdir", "/src"),
        ("--env", "PRICE=$5"),
        ("--env", 'QUOTE=it\'s "quoted"; rm -rf /'),
    } <= pairs(argv)
    project = policies.parent.resolve()
    mounts = [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--mount"]
    assert mounts == [
        f"type=bind,source={project},target=/src,readonly",
        f"type=bind,source={project / 'out'},target=/out",
    ]
    labels = dict(b.split("=", 1) for a, b in pairs(argv) if a == "--label")
    policy = load_policy([policies])
    assert labels["io.container-policy.digest"] == digest(policy.profiles["app"])
    assert labels["io.container-policy.profile"] == "app"
    assert labels["team"] == "qa $USER"
    assert argv[-1] == "app:1"


def test_render_notes_the_timeout(policies: Path) -> None:
    code, _, err = run("render", "--policies", str(policies), "app")
    assert code == 0
    assert "5m" in err


COMMAND = ["sh", "-c", "echo 'a b'; echo \"$HOME\" && rm -rf / # ;", "line1\nline2", "", "--rm"]


def test_render_command_words_survive(policies: Path) -> None:
    argv = render(policies, "app", "--", *COMMAND)
    image = argv.index("app:1")
    assert argv[image + 1 :] == COMMAND


def test_render_options_before_the_command(policies: Path) -> None:
    argv = render(policies, "app", "--image", "other:2", "--", "--privileged", "-it")
    image = argv.index("other:2")
    assert argv[image + 1 :] == ["--privileged", "-it"]
    assert "app:1" not in argv


@pytest.mark.parametrize(
    "args",
    [
        ["--image", "--privileged"],
        ["--image=--privileged"],
        ["--image=-v/:/host"],
        ["--image", "app 1"],
        ["--image", "App:1"],
        ["--image", ""],
    ],
)
def test_render_refuses_hostile_image(policies: Path, args: list[str]) -> None:
    code, out, err = run("render", "--policies", str(policies), "app", *args)
    assert code == 2
    assert out == ""
    assert err.startswith("policy: error:")


def test_render_refuses_an_invalid_policy(tmp_path: Path) -> None:
    policies = write_policy(tmp_path, BAD.replace('memroy = "1g"\n', ""))
    code, out, err = run("render", "--policies", str(policies), "open")
    assert code == 2
    assert out == ""
    assert "does not validate" in err
    assert "privileged" in err


def test_render_exec_healthcheck_needs_compose(policies: Path) -> None:
    code, out, err = run("render", "--policies", str(policies), "probe")
    assert code == 2
    assert out == ""
    assert "--as compose" in err


_JSON_KEY = r'"(?:[^"\\]|\\.)*"'


def parse_yaml_subset(text: str) -> Any:
    """Parse the YAML `render --as compose` prints: block mappings and sequences whose keys and
    scalars are all JSON. Anything else (a bare word, a flow collection, an anchor) fails."""
    lines = [line for line in text.splitlines() if line.strip()]

    def scalar(text: str) -> Any:
        value = json.loads(text)
        assert not isinstance(value, dict | list) or value in ({}, []), text
        return value

    def block(i: int, indent: int) -> tuple[Any, int]:
        pad = "  " * indent
        if lines[i].startswith(pad + "- "):
            items: list[Any] = []
            while i < len(lines) and lines[i].startswith(pad + "- "):
                rest = lines[i][len(pad) + 2 :]
                if rest.startswith("- ") or re.match(_JSON_KEY + ":", rest):
                    # A nested block that starts on the item's line.
                    lines[i] = "  " * (indent + 1) + rest
                    value, i = block(i, indent + 1)
                    items.append(value)
                else:
                    items.append(scalar(rest))
                    i += 1
            return items, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and re.match(pad + '"', lines[i]):
            match = re.fullmatch(f"({_JSON_KEY}):(?: (.+))?", lines[i][len(pad) :])
            assert match, f"not a JSON key: {lines[i]!r}"
            key = json.loads(match.group(1))
            if match.group(2) is None:
                mapping[key], i = block(i + 1, indent + 1)
            else:
                mapping[key] = scalar(match.group(2))
                i += 1
        return mapping, i

    document, end = block(0, 0)
    assert end == len(lines), f"not parsed: {lines[end:]}"
    return document


def test_yaml_subset_parser() -> None:
    text = '"a":\n  "b": 1\n  "c":\n    - "x"\n    - "k": true\n      "l": null\n    - - 2\n"d": []'
    assert parse_yaml_subset(text) == {
        "a": {"b": 1, "c": ["x", {"k": True, "l": None}, [2]]},
        "d": [],
    }
    for bad in ['"a": b', "a: 1", '"a": [1, 2]', '"a":\n  - x', '"a": &anchor "x"']:
        with pytest.raises((AssertionError, ValueError)):
            parse_yaml_subset(bad)


def render_compose(policies: Path, *cmd: str) -> str:
    code, out, err = run(
        "render", "--policies", str(policies), "app", "--as", "compose", "--", *cmd
    )
    assert code == 0, err
    return out


def test_render_compose_is_json_scalar_yaml(policies: Path) -> None:
    doc = parse_yaml_subset(render_compose(policies, "echo", "$HOME", "a\nb: [c]"))
    service = doc["services"]["app"]
    assert service["image"] == "app:1"
    assert service["user"] == "1001:1001"
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["network_mode"] == "none"
    # `$` is escaped against compose's interpolation.
    assert service["command"] == ["echo", "$$HOME", "a\nb: [c]"]
    assert service["environment"]["PRICE"] == "$$5"
    assert service["labels"]["team"] == "qa $$USER"
    assert service["labels"]["io.container-policy.profile"] == "app"
    assert [v["target"] for v in service["volumes"]] == ["/src", "/out"]
    assert [v["read_only"] for v in service["volumes"]] == [True, False]


def test_render_compose_healthcheck(policies: Path) -> None:
    code, out, _ = run("render", "--policies", str(policies), "probe", "--as", "compose")
    assert code == 0
    service = parse_yaml_subset(out)["services"]["probe"]
    assert service["healthcheck"]["test"] == ["CMD", "true"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="docker-compose not on PATH")
def test_render_compose_is_accepted_by_docker_compose(policies: Path) -> None:
    text = render_compose(policies, "echo", "${CP_TEST_SECRET}", "$CP_TEST_SECRET")
    env = {**os.environ, "CP_TEST_SECRET": "interpolated-value"}
    result = subprocess.run(
        ["docker-compose", "-f", "-", "config"],
        input=text,
        capture_output=True,
        text=True,
        cwd=policies.parent,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "app:1" in result.stdout
    assert "interpolated-value" not in result.stdout
    assert "CP_TEST_SECRET" in result.stdout


# --- usage ------------------------------------------------------------------------------------


def test_no_arguments() -> None:
    code, out, err = run()
    assert code == 2
    assert "usage: policy" in err
    assert out == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus"],
        ["frobnicate"],
        ["validate", "--format", "xml"],
        ["validate", "--fail-on", "never"],
        ["show"],
        ["show", "full", "--format", "yaml"],
        ["render"],
        ["render", "app", "--as", "helm"],  # kubernetes is a target since issue 15
        ["rules", "--format", "html"],
    ],
)
def test_bad_usage_exits_2(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == 2
    assert out == ""
    assert err.startswith("policy: error: ")
    assert "--help" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "isolation", "--", "true"],
        ["audit"],
        ["doctor"],
        ["clean", "--dry-run"],
    ],
    ids=["run", "audit", "doctor", "clean"],
)
def test_swarm_node_without_swarm_is_refused_before_any_engine_is_asked(argv: list[str]) -> None:
    """Ignored, `--swarm-node` would let a user believe the nodes were checked. The engine URL
    is one that answers nothing: the refusal comes first."""
    command = [argv[0], "--host", "unix:///nonexistent/docker.sock", *argv[1:]]
    if "--" in command:
        at = command.index("--")
        command[at:at] = ["--swarm-node", "unix:///nonexistent/node.sock"]
    else:
        command += ["--swarm-node", "unix:///nonexistent/node.sock"]
    code, out, err = cli(*command)
    assert code == 2 and out == ""
    assert "policy: error: --swarm-node is for --swarm" in err
    assert "Traceback" not in err


def test_rules_lists_every_rule() -> None:
    code, out, _ = run("rules")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == [r.id for r in RULES]


def test_rules_markdown() -> None:
    code, out, _ = run("rules", "--format", "markdown")
    assert code == 0
    for rule in RULES:
        assert f"| `{rule.id}` |" in out


def _subcommands() -> list[str]:
    import argparse

    from engine.cli import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("argv", [["--help"], *([c, "--help"] for c in _subcommands())])
def test_help_has_examples(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, _ = capsys.readouterr()
    assert info.value.code == 0
    assert "example" in out
    assert out.startswith("usage: policy")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert re.fullmatch(r"policy \d+\.\d+\.\d+\n", capsys.readouterr().out)
