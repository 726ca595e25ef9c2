"""The cache of validated policies is exact: a one-byte change to any file a policy reads is seen
on the next call, a corrupt, foreign or unwritable cache is ignored and never fatal, and what
comes from the cache is, location for location, what a fresh load gives (the hostile corpus)."""

from __future__ import annotations

import hmac
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from policy import cache as cache_module
from policy.cache import Cache
from policy.errors import UnusablePolicy
from policy.vetted import Checked, check, load_vetted
from tests.helpers import ROOT, cli

CORPUS = ROOT / "tests" / "hostile" / "corpus"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped policies (TOML, guardrails, seccomp JSON), the working directory."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("POLICY_CACHE_DIR", str(path))
    return path


def validate(*args: str) -> tuple[int, str, str]:
    return cli("validate", *args)


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.pickle")) if cache_dir.is_dir() else []


def test_a_warm_cache_gives_what_a_fresh_load_gives(project: Path, cache_dir: Path) -> None:
    fresh = validate("policies", "--no-cache")
    assert entries(cache_dir) == [], "--no-cache wrote to the cache"
    cold = validate("policies")
    assert len(entries(cache_dir)) == 1
    assert validate("policies") == cold == fresh
    assert fresh[0] == 0


CHANGES: dict[str, tuple[Callable[[Path], object], str]] = {
    # Each: a change of one file kind that changes the result, and what the result then says.
    "policy file": (
        lambda p: (p / "policies" / "tiers.toml").write_text(
            (p / "policies" / "tiers.toml").read_text() + "\n[profiles.late]\nimage = 1\n"
        ),
        "wrong-type",
    ),
    "guardrails file": (
        lambda p: (p / "policies" / "guardrails.toml").write_text(
            (p / "policies" / "guardrails.toml").read_text().replace("min = 1000", "min = 1002", 1)
        ),
        "regular-user",
    ),
    "seccomp file (one byte)": (
        lambda p: (p / "policies" / "seccomp" / "test-runner.json").write_text(
            (p / "policies" / "seccomp" / "test-runner.json").read_text().replace("{", "[", 1)
        ),
        "seccomp",
    ),
    "a new policy file in the directory": (
        lambda p: (p / "policies" / "extra.toml").write_text("version = 1\n[profiles.x]\n"),
        "extra.toml",
    ),
    "a mount source turned into a symlink out of the project": (
        lambda p: _escape_through_symlink(p),
        "mount-escape",
    ),
}


def _escape_through_symlink(project: Path) -> None:
    # The shipped profiles mount `.` and `test-results` of the project; the latter becomes a
    # symlink to a directory outside it: no policy byte changes, the result does.
    target = project.parent / "outside"
    target.mkdir(exist_ok=True)
    results = project / "test-results"
    if results.is_dir() and not results.is_symlink():
        shutil.rmtree(results)
    results.symlink_to(target)


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_to_any_file_the_policy_reads_is_seen_on_the_next_call(
    change: str, project: Path, cache_dir: Path
) -> None:
    (project / "test-results").mkdir()
    before = validate("policies")
    assert validate("policies") == before  # warm
    mutate, shows = CHANGES[change]
    mutate(project)
    after = validate("policies")
    assert after != before
    assert shows in after[1] + after[2]
    assert after == validate("policies", "--no-cache")
    assert validate("policies") == after  # and the new result is what is now cached


def test_a_new_version_python_or_dependency_is_a_new_key(
    project: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = [project / "policies"]
    check(policies, cache=Cache(cache_dir, "1.0.0"))
    check(policies, cache=Cache(cache_dir, "1.0.1"))
    assert len(entries(cache_dir)) == 2
    monkeypatch.setattr(cache_module, "_fingerprint", "another python or pydantic")
    check(policies, cache=Cache(cache_dir, "1.0.1"))
    assert len(entries(cache_dir)) == 3


def test_the_code_fingerprint_names_python_and_each_dependency_version() -> None:
    found = cache_module._distributions()
    assert [f.split(":")[0] for f in found] == list(cache_module.DEPENDENCIES)
    assert all(".dist-info" in f for f in found), found


@pytest.fixture
def warm(project: Path, cache_dir: Path) -> Iterator[Path]:
    validate("policies")
    (entry,) = entries(cache_dir)
    yield entry


def _corrupt(entry: Path) -> None:
    data = bytearray(entry.read_bytes())
    data[-5] ^= 0xFF
    entry.write_bytes(bytes(data))


def _truncated(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:10])


def _not_pickle(entry: Path) -> None:
    entry.write_bytes(b"\0" * 64)


@pytest.mark.parametrize("damage", [_corrupt, _truncated, _not_pickle])
def test_a_damaged_entry_is_ignored_never_unpickled_and_replaced(
    damage: Callable[[Path], None],
    warm: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fresh = validate("policies", "--no-cache")
    damage(warm)
    loads: list[bytes] = []
    real_loads = pickle.loads

    def counted(data: bytes) -> object:
        loads.append(data)
        return real_loads(data)

    monkeypatch.setattr(pickle, "loads", counted)
    assert validate("policies") == fresh
    assert not loads, "bytes that failed the HMAC were unpickled"
    assert validate("policies") == fresh
    assert len(loads) == 1, "the damaged entry was not replaced by a good one"


def test_a_foreign_entry_is_not_trusted(warm: Path, cache_dir: Path) -> None:
    # An entry from another cache (another user, machine, CI restore): well formed, claiming a
    # result that is not this policy's, signed with a secret that is not this cache's.
    fresh = validate("policies", "--no-cache")
    forged = pickle.dumps((cache_module.FORMAT, [], Checked([], "FORGED")))
    warm.write_bytes(hmac.digest(os.urandom(32), forged, "sha256") + forged)
    assert validate("policies") == fresh


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a file to another user")
def test_an_entry_owned_by_another_user_is_not_read(warm: Path, project: Path) -> None:
    os.chown(warm, 65534, 65534)
    assert cache_module._read(warm, (warm.parent / "secret").read_bytes()) is None


def test_a_directory_others_can_write_is_not_trusted(warm: Path, cache_dir: Path) -> None:
    cache_dir.chmod(0o777)
    assert Cache(cache_dir, "x")._secret(create=False) is None
    assert validate("policies")[0] == 0


@pytest.mark.parametrize("where", ["under-a-file", "a-file"])
def test_an_unusable_cache_location_is_never_fatal(
    where: str,
    project: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    path = blocker / "cache" if where == "under-a-file" else blocker
    monkeypatch.setenv("POLICY_CACHE_DIR", str(path))
    code, _, err = validate("policies")
    assert code == 0 and "valid: 8 profile(s)" in err
    assert blocker.read_text() == "not a directory"


def test_an_unusable_policy_from_the_cache_is_the_same_error(
    project: Path, cache_dir: Path
) -> None:
    (project / "policies" / "broken.toml").write_text("version = 1\n[profiles.b]\nuser = 0\n")
    cache = Cache(cache_dir, "1")
    errors = []
    for _ in range(2):  # cold, then from the cache
        with pytest.raises(UnusablePolicy) as info:
            load_vetted([project / "policies"], cache=cache)
        errors.append((info.value.message, info.value.exit_code, info.value.diagnostics))
    assert len(entries(cache_dir)) == 1
    assert errors[0] == errors[1]


def test_a_cached_policy_is_the_loaded_one(project: Path, cache_dir: Path) -> None:
    (project / "test-results").mkdir()
    fresh = load_vetted([project / "policies"])
    cache = Cache(cache_dir, "1")
    cold = load_vetted([project / "policies"], cache=cache)
    warm_policy = load_vetted([project / "policies"], cache=cache)
    assert warm_policy is not cold  # read back from disk
    assert warm_policy.profiles == cold.profiles == fresh.profiles
    assert warm_policy.where("full", ("memory",)) == fresh.where("full", ("memory",))


CASES = sorted(CORPUS.glob("*.toml"))


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_hostile_corpus_diagnostics_from_the_cache_match_a_fresh_load(
    case: Path,
    tmp_path: Path,
    cache_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "policies").mkdir()
    shutil.copy(case, tmp_path / "policies" / case.name)
    monkeypatch.chdir(tmp_path)
    fresh = validate("policies", "--no-cache")
    cold = validate("policies")
    warm = validate("policies")
    assert cold == fresh
    assert warm == fresh
