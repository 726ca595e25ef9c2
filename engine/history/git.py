"""The git commit a project directory is at, read from the repository's files (no `git`
process, no shell): `.git` (a directory, or a file pointing at one for worktrees and
submodules), its `HEAD`, the loose ref it names, else `packed-refs`."""

from __future__ import annotations

import re
from pathlib import Path

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1, or SHA-256 repositories
_SMALL = 4096  # bytes read of HEAD, a ref or a `.git` file: they are one line
_MAX_HOPS = 5  # symbolic refs followed


def commit_of(directory: Path) -> str | None:
    """The commit checked out in the repository holding `directory`, or None (no repository,
    an unborn branch, or files this reader does not understand)."""
    gitdir = _find_gitdir(directory.absolute())
    if gitdir is None:
        return None
    common = gitdir
    pointer = _read_small(gitdir / "commondir")  # a worktree: branches live in the main one
    if pointer:
        common = (gitdir / pointer.strip()).resolve()
    head = _read_small(gitdir / "HEAD")
    for _ in range(_MAX_HOPS):
        if head is None:
            return None
        head = head.strip()
        if _SHA.fullmatch(head):
            return head
        if not head.startswith("ref: "):
            return None
        ref = head[5:].strip()
        if not _safe_ref(ref):
            return None
        head = _read_small(gitdir / ref) or _read_small(common / ref)
        if head is None:
            return _packed(common, ref)
    return None


def _find_gitdir(directory: Path) -> Path | None:
    for candidate in (directory, *directory.parents):
        dotgit = candidate / ".git"
        if dotgit.is_dir():
            return dotgit
        if dotgit.is_file():
            text = _read_small(dotgit) or ""
            if text.startswith("gitdir: "):
                target = Path(text[8:].strip())
                return target if target.is_absolute() else (candidate / target).resolve()
            return None
    return None


def _safe_ref(ref: str) -> bool:
    """A ref name as git writes them: under refs/, no `..`, nothing absolute."""
    return ref.startswith("refs/") and ".." not in ref.split("/") and "\\" not in ref


def _read_small(path: Path) -> str | None:
    try:
        with path.open("rb") as handle:
            return handle.read(_SMALL).decode("utf-8", errors="replace")
    except OSError:
        return None


def _packed(common: Path, ref: str) -> str | None:
    try:
        with (common / "packed-refs").open("rb") as handle:
            for raw in handle:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                sha, _, name = line.partition(" ")
                if name == ref and _SHA.fullmatch(sha):
                    return sha
    except OSError:
        return None
    return None
