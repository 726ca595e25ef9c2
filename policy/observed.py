"""What a policy load looked at on disk, so that a cached result can prove it still holds.

Loading a policy reads files (policy TOML, guardrails, seccomp JSON), lists directories and
resolves paths (mount sources, seccomp files). Each of those places reports what it saw here,
when a recording is under way (`recording()`); otherwise reporting costs one lookup. A cached
result stores the observations it was computed from, and is used only when every one of them,
made again, gives the same answer (`still_holds`). That makes the cache exact by construction:
whatever the load depends on was observed, and whatever was observed is checked.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

# (kind, path, answer): "file" -> sha256 of the bytes read, or the error; "dir" -> the sorted
# entries with their kinds; "kind" -> what the path is; "resolve" -> the resolved path or error.
Observation = tuple[str, str, str]

_current: contextvars.ContextVar[list[Observation] | None] = contextvars.ContextVar(
    "policy_observations", default=None
)


@contextlib.contextmanager
def recording() -> Iterator[list[Observation]]:
    """Collect every observation made in this context (threads started inside do not count)."""
    seen: list[Observation] = []
    token = _current.set(seen)
    try:
        yield seen
    finally:
        _current.reset(token)


def _note(kind: str, path: Path | str, answer: str) -> None:
    seen = _current.get()
    if seen is not None:
        seen.append((kind, os.fspath(path), answer))


def file_read(path: Path, limit: int, content: bytes | tuple[str, str]) -> None:
    """`path` was read (at most `limit` bytes) and gave `content`, or failed as it says."""
    if _current.get() is not None:
        _note("file", path, f"{limit}:{_file_answer(content)}")


def directory_listed(path: Path) -> None:
    if _current.get() is not None:
        _note("dir", path, _listing(path))


def path_kind(path: Path) -> None:
    if _current.get() is not None:
        _note("kind", path, _kind(path))


def path_resolved(path: Path) -> None:
    if _current.get() is not None:
        _note("resolve", path, _resolved(path))


def still_holds(observations: list[Observation]) -> bool:
    """Whether every observation, made again now, gives the answer it gave."""
    from policy.source import read_regular

    for kind, where, answer in observations:
        path = Path(where)
        if kind == "file":
            limit = int(answer.partition(":")[0])
            now = f"{limit}:{_file_answer(read_regular(path, limit))}"
        elif kind == "dir":
            now = _listing(path)
        elif kind == "kind":
            now = _kind(path)
        elif kind == "resolve":
            now = _resolved(path)
        else:
            return False
        if now != answer:
            return False
    return True


def _file_answer(content: bytes | tuple[str, str]) -> str:
    if isinstance(content, tuple):
        return "error:" + ":".join(content)
    return "sha256:" + hashlib.sha256(content).hexdigest()


def _listing(path: Path) -> str:
    try:
        entries = sorted(
            (e.name, "d" if e.is_dir(follow_symlinks=False) else "f") for e in os.scandir(path)
        )
    except OSError as exc:
        return f"error:{exc.strerror or exc}"
    return "\0".join(f"{kind}{name}" for name, kind in entries)


def _kind(path: Path) -> str:
    if path.is_symlink():
        return "symlink:" + ("dir" if path.is_dir() else "file" if path.exists() else "dangling")
    return "dir" if path.is_dir() else "file" if path.exists() else "missing"


def _resolved(path: Path) -> str:
    try:
        return str(path.resolve())
    except (RuntimeError, OSError) as exc:
        return f"error:{exc}"
