"""The project's git commit, read from repository layouts written by the test (and from this
checkout, against `git rev-parse`)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.history.git import commit_of
from tests.helpers import ROOT

A = "a" * 40
B = "b" * 40


def repository(root: Path, head: str = "ref: refs/heads/main\n") -> Path:
    gitdir = root / ".git"
    (gitdir / "refs" / "heads").mkdir(parents=True)
    (gitdir / "HEAD").write_text(head)
    return gitdir


def test_a_branch_from_its_loose_ref_and_from_a_subdirectory(tmp_path: Path) -> None:
    gitdir = repository(tmp_path)
    (gitdir / "refs" / "heads" / "main").write_text(A + "\n")
    (tmp_path / "src" / "deep").mkdir(parents=True)
    assert commit_of(tmp_path) == A
    assert commit_of(tmp_path / "src" / "deep") == A


def test_a_branch_from_packed_refs(tmp_path: Path) -> None:
    gitdir = repository(tmp_path)
    (gitdir / "packed-refs").write_text(
        f"# pack-refs with: peeled fully-peeled sorted\n{B} refs/heads/other\n{A} refs/heads/main\n"
    )
    assert commit_of(tmp_path) == A


def test_a_detached_head(tmp_path: Path) -> None:
    repository(tmp_path, head=B + "\n")
    assert commit_of(tmp_path) == B


def test_a_worktree_reads_its_branch_in_the_main_repository(tmp_path: Path) -> None:
    main = repository(tmp_path / "main")
    (main / "refs" / "heads" / "feature").write_text(B + "\n")
    worktree_git = main / "worktrees" / "wt"
    worktree_git.mkdir(parents=True)
    (worktree_git / "HEAD").write_text("ref: refs/heads/feature\n")
    (worktree_git / "commondir").write_text("../..\n")
    checkout = tmp_path / "wt"
    checkout.mkdir()
    (checkout / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert commit_of(checkout) == B


@pytest.mark.parametrize(
    "head",
    ["ref: refs/heads/unborn\n", "ref: ../../../etc/passwd\n", "ref: /etc/passwd\n", "garbage\n"],
    ids=["unborn", "escaping-ref", "absolute-ref", "garbage"],
)
def test_no_commit_when_head_names_none(tmp_path: Path, head: str) -> None:
    repository(tmp_path, head=head)
    assert commit_of(tmp_path) is None


def test_no_repository_no_commit(tmp_path: Path) -> None:
    assert commit_of(tmp_path) is None


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="no git")
def test_this_checkout_as_git_sees_it() -> None:
    expected = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert commit_of(ROOT) == expected
