"""Property round trips (hypothesis).

On the engine: any valid profile, rendered and started with `docker run`, audits clean; and the
same container with exactly one setting changed (live with `docker update`, or started with one
flag changed) is reported for exactly that field.

Pure: the canonical form is a fixed point (show -> TOML -> load -> show gives the same document
and digest), and the digest does not depend on key order, file splits, inheritance or
equivalent spellings (1g == 1024m == 1073741824, CAP_ prefix and case, "1001" == 1001, ...),
but does change when a setting changes.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shlex
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy.canonical import canonical_document, digest
from policy.diagnostics import Severity
from policy.loader import Policy, load_policy
from policy.validate import validate
from tests.helpers import TEST_IMAGE, cli, without_none, write_policies

# Small by default (each engine example starts a container); raise it for a longer hunt.
ENGINE_EXAMPLES = int(os.environ.get("CPF_ENGINE_EXAMPLES", "5"))
CHANGE_EXAMPLES = max(1, ENGINE_EXAMPLES // 5)  # per field, and there are 12 fields
PURE_EXAMPLES = 60
MiB = 1 << 20
WAIVER_EXPIRES = dt.date.today() + dt.timedelta(days=365)
SAFE_TEXT = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-./:=@",
    max_size=16,
)
ENV_NAMES = st.from_regex(r"T_[A-Z][A-Z0-9_]{0,7}", fullmatch=True)
LABEL_KEYS = st.from_regex(r"org\.example\.[a-z][a-z0-9-]{0,7}", fullmatch=True)
CAPS = ["NET_BIND_SERVICE", "SYS_PTRACE", "CHOWN", "KILL", "NET_RAW"]
OTHER_CAPS = ["AUDIT_WRITE", "MKNOD", "SETFCAP", "FOWNER"]  # never in CAPS: a flag to add
TMPFS_CHOICES = [("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec")]
WORKDIRS = ["/src", "/tmp", "/results", "/work/dir", "/bin"]
MOUNTS = [
    {"source": ".", "target": "/src"},
    {"source": "test-results", "target": "/results", "writable": True},
]


# ---------------------------------------------------------------------------------------------
# strategies


@st.composite
def engine_profiles(draw: st.DrawFn) -> dict[str, Any]:
    """A valid profile as TOML data (values spelled plainly); `waivers` for rules it breaks."""
    uid = draw(st.integers(1000, 60000))
    gid = draw(st.integers(1000, 60000))
    tmpfs_options = sorted(
        {o for pair in TMPFS_CHOICES if (o := draw(st.sampled_from([None, *pair])))}
    )
    tmpfs: dict[str, Any] = {"size": f"{draw(st.integers(1, 256))}m", "options": tmpfs_options}
    if draw(st.booleans()):
        tmpfs["mode"] = draw(st.sampled_from(["1777", "0755", "700"]))
    profile: dict[str, Any] = {
        "image": TEST_IMAGE,
        "user": draw(st.sampled_from([f"{uid}:{gid}", f"{uid}"])),
        "memory": f"{draw(st.integers(64, 2048))}m",
        "cpus": draw(st.integers(500, 2000)) / 1000,
        "pids_limit": draw(st.integers(16, 1024)),
        "read_only": draw(st.booleans()),
        "network": draw(st.sampled_from(["none", "bridge"])),
        "cap_drop": ["ALL"],
        "cap_add": draw(st.lists(st.sampled_from(CAPS), unique=True, max_size=3)),
        "no_new_privileges": True,
        "seccomp": "default",
        "timeout": "10m",
        "tmpfs": {"/tmp": tmpfs},
        "env": draw(st.dictionaries(ENV_NAMES, SAFE_TEXT, max_size=4)),
        "labels": draw(st.dictionaries(LABEL_KEYS, SAFE_TEXT, max_size=3)),
        "workdir": draw(st.sampled_from(WORKDIRS)),
        "mounts": MOUNTS,
    }
    return profile


def waivers_for(profile: dict[str, Any], name: str = "p") -> list[dict[str, Any]]:
    rules = []
    if not profile.get("read_only", False):
        rules.append("writable-root")
    if set(profile.get("cap_add", [])) - {"NET_BIND_SERVICE"}:
        rules.append("cap-add")
    return [
        {
            "profile": name,
            "rule": r,
            "reason": "drawn by a property test",
            "expires": WAIVER_EXPIRES,
        }
        for r in rules
    ]


def write_single(directory: Path, profile: dict[str, Any], name: str = "p") -> Path:
    doc: dict[str, Any] = {"version": 1, "profiles": {name: profile}}
    waivers = waivers_for(profile, name)
    if waivers:
        doc["waivers"] = waivers
    return write_policies(directory, {"p.toml": tomli_w.dumps(doc)})


def load_valid(policies: Path) -> Policy:
    policy = load_policy([policies])
    errors = [d for d in validate(policy) if d.severity is Severity.ERROR]
    assert errors == [], [str(d) for d in errors]
    return policy


@contextmanager
def workspace() -> Iterator[Path]:
    """A fresh project directory per example (hypothesis cannot use function fixtures)."""
    with tempfile.TemporaryDirectory(prefix="cpf-prop-") as name:
        project = Path(name)
        (project / "test-results").mkdir()
        (project / "test-results").chmod(0o1777)
        yield project


# ---------------------------------------------------------------------------------------------
# on the engine


def render_argv(policies: Path, command: list[str]) -> list[str]:
    code, out, err = cli("render", "p", "--policies", str(policies), "--", *command)
    assert code == 0, err
    return shlex.split(out)


def audit(policies: Path, name: str) -> dict[str, Any]:
    code, out, err = cli(
        "audit", "--policies", str(policies), "--filter", f"name={name}", "--format", "json"
    )
    assert code in (0, 1), err
    report: dict[str, Any] = json.loads(out)
    assert [c["name"] for c in report["containers"]] == [name], report
    return report


def findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = report["containers"][0]["findings"]
    return found


@contextmanager
def started(argv: list[str], project: Path, docker_client: Any) -> Iterator[str]:
    """The rendered line, detached and named; removed afterwards, and checked gone."""
    name = f"cpf-prop-{uuid.uuid4().hex[:10]}"
    argv = [*argv[:2], "--detach", "--name", name, *argv[2:]]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, cwd=project, timeout=60)
        assert done.returncode == 0, (argv, done.stderr)
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)
        left = docker_client.api.containers(all=True, filters={"name": name})
        assert not left, f"container {name} left behind"


SLEEP = ["sleep", "600"]


@pytest.mark.engine
@settings(
    max_examples=ENGINE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(profile=engine_profiles())
def test_rendered_valid_profile_audits_clean(profile: dict[str, Any], docker_client: Any) -> None:
    with workspace() as project:
        policies = write_single(project, profile)
        load_valid(policies)
        with started(render_argv(policies, SLEEP), project, docker_client) as name:
            report = audit(policies, name)
            assert findings(report) == [], findings(report)


def _replace_value(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out


def _insert(argv: list[str], *flags: str) -> list[str]:
    return [*argv[:2], *flags, *argv[2:]]


def _drop(argv: list[str], *words: str) -> list[str]:
    out = list(argv)
    at = next(i for i in range(len(out)) if out[i : i + len(words)] == list(words))
    del out[at : at + len(words)]
    return out


def other_in(draw: st.DrawFn, old: int, low: int, high: int) -> int:
    """A value in [low, high] other than `old` (a shifted draw, never a filter that can stall)."""
    shift = draw(st.integers(1, high - low))
    return low + (old - low + shift) % (high - low + 1)


Mutation = tuple[str, Callable[[list[str]], list[str]] | None, list[str] | None]


LIVE_FIELDS = ["memory", "cpus", "pids_limit"]  # what `docker update` changes on a running one
START_FIELDS = [
    "user",
    "read_only",
    "network",
    "capabilities",
    "no_new_privileges",
    "env",
    "workdir",
    "tmpfs",
    "labels",
]


@st.composite
def one_change(draw: st.DrawFn, profile: dict[str, Any], field: str) -> Mutation:
    """(the field the audit must report, how to change the `docker run` argv, or the arguments
    of a live `docker update` after the start)."""
    if field == "memory":
        new = other_in(draw, int(profile["memory"][:-1]), 64, 2048)
        return field, None, ["--memory", f"{new}m", "--memory-swap", f"{2 * new}m"]
    if field == "cpus":
        quota = other_in(draw, round(profile["cpus"] * 1000), 500, 2000) * 100
        return field, None, ["--cpu-quota", str(quota)]
    if field == "pids_limit":
        new = other_in(draw, profile["pids_limit"], 16, 1024)
        return field, None, ["--pids-limit", str(new)]
    if field == "user":
        uid = other_in(draw, int(profile["user"].split(":")[0]), 1000, 60000)
        return field, lambda a: _replace_value(a, "--user", f"{uid}:{uid}"), None
    if field == "read_only":
        if profile["read_only"]:
            return field, lambda a: _drop(a, "--read-only"), None
        return field, lambda a: _insert(a, "--read-only"), None
    if field == "network":
        other = "bridge" if profile["network"] == "none" else "none"
        return field, lambda a: _replace_value(a, "--network", other), None
    if field == "capabilities":
        cap = draw(st.sampled_from(OTHER_CAPS))
        return field, lambda a: _insert(a, "--cap-add", cap), None
    if field == "no_new_privileges":
        return field, lambda a: _drop(a, "--security-opt", "no-new-privileges:true"), None
    if field == "env":
        key = draw(ENV_NAMES)
        value = draw(SAFE_TEXT.filter(lambda v: profile["env"].get(key) != v))
        return field, lambda a: _insert(a, "--env", f"{key}={value}"), None
    if field == "workdir":
        other = draw(st.sampled_from([w for w in WORKDIRS if w != profile["workdir"]]))
        return field, lambda a: _replace_value(a, "--workdir", other), None
    if field == "tmpfs":
        spec = profile["tmpfs"]["/tmp"]
        size = draw(st.integers(1, 256).filter(lambda s: f"{s}m" != spec["size"]))

        def change_tmpfs(argv: list[str]) -> list[str]:
            at = argv.index("--tmpfs") + 1
            target, _, options = argv[at].partition(":")
            parts = [f"size={size}m" if p.startswith("size=") else p for p in options.split(",")]
            return [*argv[:at], f"{target}:{','.join(parts)}", *argv[at + 1 :]]

        return field, change_tmpfs, None
    assert field == "labels"
    key = draw(LABEL_KEYS)
    value = draw(SAFE_TEXT.filter(lambda v: profile["labels"].get(key) != v))
    return field, lambda a: _insert(a, "--label", f"{key}={value}"), None


@pytest.mark.engine
@pytest.mark.parametrize("field", LIVE_FIELDS + START_FIELDS)
@settings(
    max_examples=CHANGE_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_one_changed_setting_is_reported_as_exactly_that_field(
    field: str, data: st.DataObject, docker_client: Any
) -> None:
    """Every field once per run (parametrized), each with a drawn profile and change."""
    profile = data.draw(engine_profiles(), label="profile")
    field, change, update = data.draw(one_change(profile, field), label="change")
    with workspace() as project:
        policies = write_single(project, profile)
        load_valid(policies)
        argv = render_argv(policies, SLEEP)
        if change is not None:
            argv = change(argv)
        with started(argv, project, docker_client) as name:
            if update is not None:
                done = subprocess.run(
                    ["docker", "update", *update, name], capture_output=True, text=True
                )
                assert done.returncode == 0, done.stderr
            report = audit(policies, name)
            reported = [(f["kind"], f["field"]) for f in findings(report)]
            assert reported == [("drift", field)], (field, findings(report))


# ---------------------------------------------------------------------------------------------
# pure: the canonical form and the digest


@st.composite
def any_profiles(draw: st.DrawFn) -> dict[str, Any]:
    """Profiles as canonical values (bytes, milliseconds, millicpus, ...), not yet spelled."""
    has_gid = draw(st.booleans())
    out: dict[str, Any] = {
        "image": draw(st.sampled_from([TEST_IMAGE, "app:1", "registry.example/x/y:2"])),
        "uid": draw(st.integers(0, 70000)),
        "gid": draw(st.integers(0, 70000)) if has_gid else None,
        "read_only": draw(st.booleans()),
        "privileged": draw(st.booleans()),
        "network": draw(st.sampled_from(["none", "bridge", "host", "my-net"])),
        "pid": draw(st.sampled_from(["private", "host"])),
        "cap_drop": draw(st.lists(st.sampled_from(["ALL", *CAPS]), unique=True, max_size=3)),
        "cap_add": draw(st.lists(st.sampled_from(CAPS + OTHER_CAPS), unique=True, max_size=3)),
        "no_new_privileges": draw(st.booleans()),
        "seccomp": draw(st.sampled_from(["default", "unconfined"])),
        "pids_limit": draw(st.integers(1, 1 << 20)),
        "memory": draw(st.integers(1, 1 << 14)) * MiB,
        "cpus_milli": draw(st.integers(1, 64_000)),
        "timeout_ms": draw(st.integers(1, 24 * 3600)) * 1000
        + draw(st.sampled_from([0, 0, 250, 500])),
        "tmpfs": draw(
            st.dictionaries(
                st.sampled_from(["/tmp", "/run", "/var/tmp"]),
                st.fixed_dictionaries(
                    {
                        "size": st.integers(1, 4096).map(lambda m: m * MiB),
                        "mode": st.sampled_from([None, 0o1777, 0o755]),
                        "options": st.lists(
                            st.sampled_from(["nosuid", "nodev", "noexec", "ro"]),
                            unique=True,
                            max_size=4,
                        ),
                    }
                ),
                max_size=2,
            )
        ),
        "env": draw(st.dictionaries(ENV_NAMES, SAFE_TEXT, max_size=4)),
        "labels": draw(st.dictionaries(LABEL_KEYS, SAFE_TEXT, max_size=3)),
        "workdir": draw(st.sampled_from([None, *WORKDIRS])),
        "mounts": draw(st.sampled_from([[], MOUNTS])),
        "healthcheck": draw(
            st.sampled_from(
                [None, {"test": ["sh", "-c", "true"], "interval_ms": 5000, "retries": 3}]
            )
        ),
    }
    return out


def _size_spellings(n: int) -> list[Any]:
    out: list[Any] = [n, str(n)]
    for unit, shift in (("k", 10), ("m", 20), ("g", 30)):
        if n % (1 << shift) == 0:
            whole = n >> shift
            out += [
                f"{whole}{unit}",
                f"{whole}{unit.upper()}",
                f"{whole}{unit}iB",
                f"{whole} {unit}b",
            ]
    if n % MiB == 0 and n % (1 << 30):
        fraction = Decimal(n // MiB) / Decimal(1024)
        out.append(f"{format(fraction, 'f')}g")  # 0.5g, 1.25g, 0.0009765625g
    return out


def _duration_spellings(ms: int) -> list[Any]:
    out: list[Any] = [f"{ms}ms", float(ms) / 1000]
    if ms % 1000 == 0:
        s = ms // 1000
        out += [s, f"{s}s"]
        if s % 60 == 0:
            out.append(f"{s // 60}m")
        if s >= 60:
            out.append(f"{s // 60}m{s % 60}s" if s % 60 else f"{s // 60}m")
        if s % 3600 == 0:
            out.append(f"{s // 3600}h")
    else:
        out.append(f"{format(Decimal(ms) / 1000, 'f')}s")
    return out


def _cpus_spellings(milli: int) -> list[Any]:
    value = Decimal(milli) / 1000
    # A trailing zero only after a decimal point: "1" + "0" would be ten CPUs.
    out: list[Any] = [milli / 1000, f"{format(value, 'f')}", f" {format(value, '.3f')}0 "]
    if milli % 1000 == 0:
        out += [milli // 1000, f"{milli // 1000}"]
    return out


def _cap_spellings(name: str) -> list[str]:
    return [name, name.lower(), f"CAP_{name}", f"cap_{name.lower()}", name.title(), f" {name} "]


def _user_spellings(uid: int, gid: int | None) -> list[Any]:
    if gid is not None:
        return [f"{uid}:{gid}", f" {uid}:{gid} "]
    return [str(uid), uid]


def spell(values: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """One TOML spelling of canonical `values`: random equivalent spellings and key orders."""

    def pick(options: list[Any]) -> Any:
        return rnd.choice(options)

    def caps(names: list[str]) -> list[str]:
        spelled = [pick(_cap_spellings(n)) for n in names]
        spelled += [pick(_cap_spellings(n)) for n in names if rnd.random() < 0.3]  # duplicates
        rnd.shuffle(spelled)
        return spelled

    def shuffled(d: dict[str, Any]) -> dict[str, Any]:
        items = list(d.items())
        rnd.shuffle(items)
        return dict(items)

    out: dict[str, Any] = {
        "image": values["image"],
        "user": pick(_user_spellings(values["uid"], values["gid"])),
        "read_only": values["read_only"],
        "privileged": values["privileged"],
        "network": values["network"],
        "pid": values["pid"],
        "cap_drop": caps(values["cap_drop"]),
        "cap_add": caps(values["cap_add"]),
        "no_new_privileges": values["no_new_privileges"],
        "seccomp": values["seccomp"],
        "pids_limit": values["pids_limit"],
        "memory": pick(_size_spellings(values["memory"])),
        "cpus": pick(_cpus_spellings(values["cpus_milli"])),
        "timeout": pick(_duration_spellings(values["timeout_ms"])),
        "env": shuffled(values["env"]),
        "labels": shuffled(values["labels"]),
        "mounts": values["mounts"],
    }
    if values["tmpfs"]:
        tmpfs = {}
        for target, spec in values["tmpfs"].items():
            entry: dict[str, Any] = {"size": pick(_size_spellings(spec["size"]))}
            if spec["mode"] is not None:
                entry["mode"] = pick([f"{spec['mode']:o}", f"0{spec['mode']:o}"])
            options = list(spec["options"]) + [o for o in spec["options"] if rnd.random() < 0.3]
            rnd.shuffle(options)
            entry["options"] = options
            tmpfs[target] = shuffled(entry)
        out["tmpfs"] = shuffled(tmpfs)
    if values["workdir"] is not None:
        out["workdir"] = values["workdir"]
    if values["healthcheck"] is not None:
        hc = values["healthcheck"]
        out["healthcheck"] = shuffled(
            {
                "test": hc["test"],
                "interval": pick(_duration_spellings(hc["interval_ms"])),
                "retries": hc["retries"],
            }
        )
    return shuffled(out)


def layout(profile: dict[str, Any], rnd: random.Random, style: str) -> dict[str, str]:
    """Files (name -> TOML text) declaring profile `p` with `profile`'s settings, split up as
    `style` says: all in `p`; some in [defaults]; [defaults] in another file; or some in a
    parent profile `base` (in another file) that `p` extends."""
    keys = list(profile)
    rnd.shuffle(keys)
    cut = rnd.randint(0, len(keys))
    upper = {k: profile[k] for k in keys[:cut]}
    lower = {k: profile[k] for k in keys[cut:]}
    # `image` must reach every profile declared (a parent is a profile of its own).
    upper["image"] = profile["image"]
    lower.pop("image", None)
    if style == "flat":
        return {"a.toml": tomli_w.dumps({"version": 1, "profiles": {"p": profile}})}
    if style == "defaults":
        return {
            "a.toml": tomli_w.dumps({"version": 1, "defaults": upper, "profiles": {"p": lower}})
        }
    if style == "defaults-file":
        return {
            "z.toml": tomli_w.dumps({"version": 1, "defaults": upper}),
            "a.toml": tomli_w.dumps({"version": 1, "profiles": {"p": lower}}),
        }
    assert style == "parent-file"
    return {
        "base.toml": tomli_w.dumps({"version": 1, "profiles": {"base": upper}}),
        "sub/p.toml": tomli_w.dumps(
            {"version": 1, "profiles": {"p": {"extends": "base", **lower}}}
        ),
    }


def load_files(root: Path, files: dict[str, str]) -> Policy:
    return load_policy([write_policies(root, files)], root)


STYLES = ["flat", "defaults", "defaults-file", "parent-file"]


@settings(max_examples=PURE_EXAMPLES, deadline=None)
@given(
    values=any_profiles(),
    seeds=st.tuples(st.integers(), st.integers()),
    styles=st.tuples(st.sampled_from(STYLES), st.sampled_from(STYLES)),
)
def test_digest_ignores_key_order_file_splits_and_spellings(
    values: dict[str, Any], seeds: tuple[int, int], styles: tuple[str, str]
) -> None:
    digests = []
    documents = []
    for seed, style in zip(seeds, styles, strict=True):
        rnd = random.Random(seed)
        with tempfile.TemporaryDirectory(prefix="cpf-digest-") as name:
            loaded = load_files(Path(name), layout(spell(values, rnd), rnd, style))
            profile = loaded.profiles["p"]
            digests.append(digest(profile))
            documents.append(canonical_document(profile))
    assert documents[0] == documents[1]
    assert digests[0] == digests[1]


@settings(max_examples=PURE_EXAMPLES, deadline=None)
@given(
    values=any_profiles(),
    seed=st.integers(),
    bump=st.sampled_from(
        ["memory", "cpus_milli", "pids_limit", "timeout_ms", "uid", "read_only", "env"]
    ),
)
def test_digest_changes_when_a_setting_changes(
    values: dict[str, Any], seed: int, bump: str
) -> None:
    changed = dict(values)
    if bump == "memory":
        changed["memory"] = values["memory"] + MiB
    elif bump == "read_only":
        changed["read_only"] = not values["read_only"]
    elif bump == "env":
        changed["env"] = {**values["env"], "T_CHANGED": "x"}
    else:
        changed[bump] = values[bump] + 1
    out = []
    for v in (values, changed):
        with tempfile.TemporaryDirectory(prefix="cpf-digest-") as name:
            loaded = load_files(
                Path(name), layout(spell(v, random.Random(seed)), random.Random(seed), "flat")
            )
            out.append(digest(loaded.profiles["p"]))
    assert out[0] != out[1]


def policy_from_canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """A profile table from `policy show --format json` output: derived keys dropped, TOML has
    no null."""
    derived = {"name", "digest", "uid", "gid", "capabilities"}
    table: dict[str, Any] = without_none({k: v for k, v in doc.items() if k not in derived})
    return table


def show_json(policies: Path, project: Path) -> dict[str, Any]:
    code, out, err = cli(
        "show", "p", "--format", "json", "--policies", str(policies), "--project", str(project)
    )
    assert code == 0, err
    doc: dict[str, Any] = json.loads(out)
    return doc


@settings(max_examples=PURE_EXAMPLES, deadline=None)
@given(values=any_profiles(), seed=st.integers(), style=st.sampled_from(STYLES))
def test_canonical_form_is_a_fixed_point(values: dict[str, Any], seed: int, style: str) -> None:
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="cpf-canon-") as name:
        first_root = Path(name) / "first"
        load_files(first_root, layout(spell(values, rnd), rnd, style))
        first = show_json(first_root / "policies", first_root)

        again_root = Path(name) / "again"
        table = policy_from_canonical(first)
        load_files(again_root, {"p.toml": tomli_w.dumps({"version": 1, "profiles": {"p": table}})})
        second = show_json(again_root / "policies", again_root)
    # Mount sources are canonical relative paths, so the two projects give the same document.
    assert second == first
    assert second["digest"] == first["digest"]
