"""A cache of loaded and validated policies: exact, or not used at all.

Loading and validating a policy is pure work on files; a command run many times a day on the same
files need not redo it. An entry is used only when:

- it was written by this code, under this Python and these dependency versions (the key holds
  the caller's version, the size and modification time of every module of `policy`, the Python
  version and the installed pydantic, pydantic-core and cerberus distributions);
- it is ours: the directory and the files in it belong to this user and nobody else can write
  them, and the entry carries an HMAC made with this cache's own secret, so a cache copied from
  another machine or user, or corrupted on disk, is ignored;
- everything the load looked at is as it was (`policy.observed`): every file's bytes (policies,
  guardrails, seccomp JSON), every directory listing, every resolved path.

Anything else (no entry, a corrupt or foreign one, an unreadable or unwritable directory) is a
miss: the policy is loaded as if there were no cache, and a write that fails is forgotten. The
cache can only ever save time, never change a result.

Location: `$POLICY_CACHE_DIR`, else `$XDG_CACHE_HOME/container-policy`, else
`~/.cache/container-policy` (the XDG convention; on macOS `~/Library/Caches/container-policy`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import os
import pickle
import secrets
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from policy.observed import Observation, recording, still_holds

ENV_DIR = "POLICY_CACHE_DIR"
FORMAT = 1
DEPENDENCIES = ("pydantic", "pydantic_core", "cerberus")
_MAC = 32
T = TypeVar("T")


def default_directory() -> Path:
    """Where the cache lives when `$POLICY_CACHE_DIR` does not say."""
    if env := os.environ.get(ENV_DIR):
        return Path(env)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "container-policy"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "container-policy"


@dataclass(frozen=True)
class Cache:
    """A cache directory and the caller's version (part of every key)."""

    directory: Path
    version: str

    def cached(self, kind: str, request: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """`compute()`, or what it returned before for the same `request` when everything it
        looked at is unchanged."""
        key = self._key(kind, request)
        path = self.directory / f"{kind}-{key}.pickle"
        secret = self._secret(create=False)
        if secret is not None:
            hit = _read(path, secret)
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        with recording() as observations:
            value = compute()
        self._write(path, observations, value, secret)
        return value

    def _key(self, kind: str, request: tuple[Any, ...]) -> str:
        parts = (FORMAT, self.version, kind, request, os.getcwd(), _code_fingerprint())
        return hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()[:32]

    def _secret(self, create: bool) -> bytes | None:
        path = self.directory / "secret"
        if create:
            with contextlib.suppress(OSError):
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(secrets.token_bytes(32))
        if not (_ours(self.directory, dir_=True) and _ours(path)):
            return None
        try:
            secret = path.read_bytes()
        except OSError:
            return None
        return secret if len(secret) == 32 else None

    def _write(
        self, path: Path, observations: list[Observation], value: Any, secret: bytes | None
    ) -> None:
        try:
            payload = pickle.dumps((FORMAT, observations, value), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # something in the result does not pickle: nothing to keep
            return
        secret = secret or self._secret(create=True)  # read once when it already exists
        if secret is None:
            return
        tmp = ""
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".entry-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(hmac.digest(secret, payload, "sha256") + payload)
            os.replace(tmp, path)
        except OSError:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


def _read(path: Path, secret: bytes) -> Any | None:
    """The value of the entry at `path` if it is ours, intact and still true; else None."""
    if not _ours(path):
        return None
    try:
        data = path.read_bytes()
    except OSError:
        return None
    mac, payload = data[:_MAC], data[_MAC:]
    if len(mac) != _MAC or not hmac.compare_digest(mac, hmac.digest(secret, payload, "sha256")):
        return None
    try:
        # Only after the HMAC proved this cache wrote it: unpickling is never done on bytes
        # anyone else could have written.
        form, observations, value = pickle.loads(payload)
    except Exception:
        return None
    if form != FORMAT or not still_holds(observations):
        return None
    return value


def _ours(path: Path, dir_: bool = False) -> bool:
    """`path` exists, is a real file (or directory), belongs to us, and only we can write it."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(info.st_mode) if dir_ else stat.S_ISREG(info.st_mode)
    return kind_ok and info.st_uid == os.geteuid() and not info.st_mode & 0o022


_fingerprint: str | None = None


def _code_fingerprint() -> str:
    """This code, this Python and these dependencies: a change to any of them is a new key."""
    global _fingerprint
    if _fingerprint is None:
        here = Path(__file__).resolve().parent
        parts = [sys.version, sys.implementation.cache_tag or ""]
        for module in sorted(here.glob("*.py")):
            info = module.stat()
            parts.append(f"{module.name}:{info.st_size}:{info.st_mtime_ns}")
        parts.extend(_distributions())
        _fingerprint = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    return _fingerprint


def _distributions() -> list[str]:
    """The installed distributions of the dependencies that decide a load, with their versions,
    read from their `*.dist-info` names (without importing them or `importlib.metadata`)."""
    found: list[str] = []
    for module in DEPENDENCIES:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            found.append(f"{module}:missing")
            continue
        site = Path(spec.origin).resolve().parent.parent
        prefix = module.lower().replace("-", "_") + "-"
        try:
            names = sorted(
                n for n in os.listdir(site) if n.lower().startswith(prefix) and "-info" in n
            )
        except OSError:
            names = []
        found.append(f"{module}:{','.join(names) or spec.origin}")
    return found
