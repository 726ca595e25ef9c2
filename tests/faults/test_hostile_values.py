"""The engine's own security: hostile values cannot add flags, run shell code or escape.

Quotes, `;`, newlines, `$(...)`, backticks and `--privileged` as command words, profile env
values, label values and mount source directory names must come out of `policy render` as
exactly the argv the profile means (shlex.split of the printed line), and the line, run through
`bash -c` as printed, must run nothing on the host and create no privileged container. The
compose rendering keeps each value one string with `$` escaped. The reserved label namespace
cannot be reached through policy labels or env names. The launch record only ever grows.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from engine.render.docker_run import DockerRun
from engine.render.interface import render as render_as
from engine.render.walk import walk
from policy.loader import load_policy
from tests.helpers import TEST_IMAGE, cli, has_traceback, new_name, of_project, write_policies

pytestmark = pytest.mark.engine

PWNED = "pwned-marker"
GLOBAL_MARKER = Path("/tmp/pwned")


def hostile(marker: Path) -> list[str]:
    """Values a shell or an option parser would misread; `marker` must never be created."""
    return [
        "it's",
        'say "hi"',
        "a;b",
        f"; touch {marker};",
        f"$(touch {marker})",
        f"`touch {marker}`",
        f"$(touch {GLOBAL_MARKER})",
        "--privileged",
        "--cap-add=ALL",
        "-v/:/host",
        "--label=io.container-policy.profile=evil",
        "line1\nline2",
        "$HOME ${PATH} $$",
        "a b\tc",
        "back\\slash",
        "'; touch " + str(marker) + "; '",
        "*",
        "~",
        "!!",
        "",
        "=",
        "k=v,readonly=false",
        "unicode é ✓",
    ]


BASE_PROFILE: dict[str, Any] = {
    "image": TEST_IMAGE,
    "user": "1001:1001",
    "read_only": True,
    "network": "none",
    "cap_drop": ["ALL"],
    "no_new_privileges": True,
    "pids_limit": 64,
    "memory": "128m",
    "cpus": 1,
    "timeout": "30s",
    "tmpfs": {"/tmp": {"size": "16m", "options": ["nosuid", "nodev", "noexec"]}},
}


def write_policy(project: Path, profile: dict[str, Any]) -> Path:
    text = tomli_w.dumps({"version": 1, "profiles": {"probe": profile}})
    return write_policies(project, {"probe.toml": text})


def render(policies: Path, *args: str) -> str:
    code, out, err = cli("render", "probe", "--policies", str(policies), *args)
    assert code == 0, err
    return out.rstrip("\n")


def expected_argv(policies: Path, command: list[str]) -> list[str]:
    loaded = load_policy([policies])
    display = loaded.declared["probe"].source.display
    walked = walk(loaded.profiles["probe"], loaded.project, display, command=tuple(command))
    return render_as(DockerRun(), walked).value


def detached(line: str, name: str) -> str:
    """The printed line, detached and named, by editing its (fixed) head only."""
    head = "docker run --rm "
    assert line.startswith(head), line
    return f"docker run -d --name {name} " + line[len(head) :]


def bash(line: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, cwd=cwd, timeout=60, check=False
    )


@pytest.fixture
def project(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's project (tests/conftest.py); in-process `policy` calls use the main engine,
    record in it."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.setenv("POLICY_RECORD", str(project / "unused.jsonl"))
    return project


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """A file the hostile values try to create on the host (and /tmp/pwned, literally)."""
    path = tmp_path / PWNED
    existed = GLOBAL_MARKER.exists()
    yield path
    assert not path.exists(), "a hostile value ran a command on the host"
    if not existed:
        assert not GLOBAL_MARKER.exists(), "a hostile value ran a command on the host"


# ---------------------------------------------------------------------------------------------
# docker run lines


def test_hostile_command_words_stay_words(project: Path, marker: Path, docker_client: Any) -> None:
    words = hostile(marker)
    policies = write_policy(project, BASE_PROFILE)
    command = ["sh", "-c", 'printf "%s\\0" "$@"', "sh", *words]
    line = render(policies, "--", *command)
    argv = shlex.split(line)
    assert argv == expected_argv(policies, command)
    image_at = argv.index(TEST_IMAGE)
    assert argv[image_at + 1 :] == command  # every hostile word after the image, as it was
    assert "--privileged" not in argv[:image_at]

    done = bash(line, project)  # as printed, through a shell
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\0")[:-1] == words


def test_hostile_env_and_label_values_and_command_create_no_privileged_container(
    project: Path, marker: Path, docker_client: Any, container_names: list[str]
) -> None:
    words = hostile(marker)
    env = {f"V{i}": w for i, w in enumerate(words)}
    user_labels = {f"org.example.v{i}": w for i, w in enumerate(words)}
    policies = write_policy(project, {**BASE_PROFILE, "env": env, "labels": user_labels})
    command = ["sh", "-c", "sleep 60", *words]
    line = render(policies, "--", *command)
    argv = shlex.split(line)
    assert argv == expected_argv(policies, command)
    image_at = argv.index(TEST_IMAGE)
    flags = argv[:image_at]
    for key, value in env.items():
        at = flags.index(f"{key}={value}")
        assert flags[at - 1] == "--env"
    assert "--privileged" not in flags and "--cap-add" not in flags and "-v/:/host" not in flags

    name = new_name("cpf-hostile")
    container_names.append(name)
    done = bash(detached(line, name), project)
    assert done.returncode == 0, done.stderr
    inspect = docker_client.api.inspect_container(name)
    host = inspect["HostConfig"]
    assert host["Privileged"] is False
    assert host["CapAdd"] in (None, [])
    assert host["CapDrop"] == ["ALL"]
    assert host["Binds"] in (None, [])
    assert inspect["Mounts"] == []
    container_env = inspect["Config"]["Env"]
    for key, value in env.items():
        assert f"{key}={value}" in container_env
    labels = inspect["Config"]["Labels"]
    for key, value in user_labels.items():
        assert labels[key] == value
    assert labels["io.container-policy.profile"] == "probe"
    assert inspect["Config"]["Cmd"] == command

    # And the audit finds the container exactly as declared: the values round-trip.
    code, out, err = cli("audit", "--policies", str(policies), "--filter", f"name={name}")
    assert code == 0, (out, err)


MOUNT_NAMES = [
    "dir with space",
    "it's",
    'q"uote',
    "a,b",
    "x,readonly=false",
    "source=,target=,type=volume",
    "$(touch pwned)",
    "`touch pwned`",
    "--privileged",
    "semi;colon",
]


def hostile_mounts(project: Path) -> list[dict[str, Any]]:
    """A mount of each of MOUNT_NAMES (created in `project`) at /m0, /m1, ...; odd ones writable."""
    mounts: list[dict[str, Any]] = []
    for i, dirname in enumerate(MOUNT_NAMES):
        (project / dirname).mkdir()
        mounts.append({"source": dirname, "target": f"/m{i}", "writable": i % 2 == 1})
    return mounts


def test_hostile_mount_source_names_give_exactly_the_declared_mounts(
    project: Path, marker: Path, docker_client: Any, container_names: list[str]
) -> None:
    mounts = hostile_mounts(project)
    policies = write_policy(project, {**BASE_PROFILE, "mounts": mounts})
    line = render(policies, "--", "sleep", "60")
    argv = shlex.split(line)
    assert argv == expected_argv(policies, ["sleep", "60"])
    assert argv.count("--mount") == len(mounts)

    name = new_name("cpf-mounts")
    container_names.append(name)
    done = bash(detached(line, name), project)
    assert done.returncode == 0, done.stderr
    inspect = docker_client.api.inspect_container(name)
    found = sorted((m["Source"], m["Destination"], m["RW"], m["Type"]) for m in inspect["Mounts"])
    want = sorted((str(project / m["source"]), m["target"], m["writable"], "bind") for m in mounts)
    assert found == want
    assert inspect["HostConfig"]["Privileged"] is False
    for pwned in (project / "pwned", Path.cwd() / "pwned"):
        assert not pwned.exists()


def test_hostile_mount_sources_pass_launch_verification(project: Path, docker_client: Any) -> None:
    """`policy run` (SDK request, then inspect and compare) accepts the same names."""
    mounts = hostile_mounts(project)
    policies = write_policy(project, {**BASE_PROFILE, "mounts": mounts})
    # /m4 is "x,readonly=false" (read-only, whatever its name says), /m3 is "a,b" (writable).
    script = "touch /m4/x 2>/dev/null && echo m4-writable; touch /m3/ok && echo m3-writable"
    code, out, err = cli("run", "probe", "--policies", str(policies), "--", "sh", "-c", script)
    assert code == 0, err
    assert out.split() == ["m3-writable"]
    assert (project / "a,b" / "ok").exists() and not (project / "x,readonly=false" / "x").exists()
    assert of_project(docker_client.api, project) == []


def test_mount_source_with_a_newline_is_refused_not_rendered(project: Path) -> None:
    (project / "two\nlines").mkdir()
    mounts = [{"source": "two\nlines", "target": "/m"}]
    policies = write_policy(project, {**BASE_PROFILE, "mounts": mounts})
    code, out, err = cli("render", "probe", "--policies", str(policies))
    assert code == 2, (out, err)
    assert out == "" and "control or invisible characters" in err and not has_traceback(err)


# ---------------------------------------------------------------------------------------------
# compose


def test_compose_keeps_every_hostile_value_one_escaped_string(project: Path, marker: Path) -> None:
    yaml = pytest.importorskip("yaml")
    words = hostile(marker)
    env = {f"V{i}": w for i, w in enumerate(words)}
    user_labels = {f"org.example.v{i}": w for i, w in enumerate(words)}
    (project / "a,b $(x)").mkdir()
    profile = {
        **BASE_PROFILE,
        "env": env,
        "labels": user_labels,
        "mounts": [{"source": "a,b $(x)", "target": "/m"}],
    }
    policies = write_policy(project, profile)
    text = render(policies, "--as", "compose", "--", *words)
    doc = yaml.safe_load(text)
    assert list(doc) == ["version", "services"] and list(doc["services"]) == ["probe"]
    service = doc["services"]["probe"]

    def esc(value: str) -> str:
        return value.replace("$", "$$")

    assert service["environment"] == {k: esc(v) for k, v in env.items()}
    assert all(isinstance(v, str) for v in service["environment"].values())
    for key, value in user_labels.items():
        assert service["labels"][key] == esc(value)
    assert service["command"] == [esc(w) for w in words]
    assert service["volumes"] == [
        {
            "type": "bind",
            "source": esc(str(project / "a,b $(x)")),
            "target": "/m",
            "read_only": True,
        }
    ]
    assert "privileged" not in service and "cap_add" not in service
    assert service["cap_drop"] == ["ALL"]

    if shutil.which("docker-compose") is None:
        return
    path = project / "compose.yml"
    path.write_text(text)
    done = subprocess.run(
        ["docker-compose", "-f", str(path), "config"],
        capture_output=True,
        text=True,
        cwd=project,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]["probe"]
    # `config` interpolates, then prints literal dollars escaped again: had compose substituted
    # anything ($HOME, ${PATH}, $(...)), the value would differ from the escaped original.
    assert {k: str(v) for k, v in resolved["environment"].items()} == {
        k: esc(v) for k, v in env.items()
    }
    assert resolved["command"] == [esc(w) for w in words]
    assert resolved.get("privileged") in (None, False)


# ---------------------------------------------------------------------------------------------
# the reserved namespace


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("io.container-policy.profile", "labels"),
        ("io.container-policy.digest", "labels"),
        ("IO.Container-Policy.launch-id", "labels"),
        ("io.container-policy.anything", "labels"),
        ("IO_CONTAINER_POLICY_PROFILE", "env"),
        ("io_container_policy_digest", "env"),
    ],
)
def test_reserved_namespace_cannot_be_set_by_a_policy(
    key: str, where: str, project: Path, docker_client: Any
) -> None:
    policies = write_policy(project, {**BASE_PROFILE, where: {key: "isolation"}})
    code, out, err = cli("validate", str(policies))
    assert code == 1, (out, err)
    assert "reserved" in out + err and key in out + err, out + err
    assert not has_traceback(out + err)
    code, out, err = cli("run", "probe", "--policies", str(policies), "--", "true")
    assert code == 2, err
    assert "does not load" in err or "does not validate" in err
    code, out, err = cli("render", "probe", "--policies", str(policies))
    assert code == 2 and out == "", (out, err)


# ---------------------------------------------------------------------------------------------
# the launch record


def test_launch_record_is_appended_never_rewritten(project: Path, docker_client: Any) -> None:
    policies = write_policy(project, BASE_PROFILE)
    record = project / "record" / "launches.jsonl"
    record.parent.mkdir()
    earlier = json.dumps({"note": "written before, must stay byte for byte"}) + "\n"
    record.write_text(earlier)
    inode = record.stat().st_ino
    sizes = []
    for word in ("first", "second\nwith a newline"):
        code, out, err = cli(
            "run", "probe", "--policies", str(policies), "--record", str(record), "--", "echo", word
        )
        assert code == 0, err
        assert out == word + "\n"
        sizes.append(record.stat().st_size)
    lines = record.read_text().splitlines(keepends=True)
    assert lines[0] == earlier
    assert len(lines) == 3, lines  # one line per launch, even with a newline in the command
    assert sizes[0] < sizes[1]
    assert record.stat().st_ino == inode  # appended in place, not replaced
    first, second = (json.loads(x) for x in lines[1:])
    assert first["command"] == ["echo", "first"] and first["exit_code"] == 0
    assert second["command"] == ["echo", "second\nwith a newline"]
    assert first["container_id"] != second["container_id"]
    assert not (project / "unused.jsonl").exists()
