"""Podman's /libpod/info, remembered per service instance: Podman 4.3 answers it in about a
second (it runs conmon and the OCI runtime to print their versions on every call), which was half
of a `policy run` on Podman.

What it says (rootless or not, the cgroup controllers, the version) cannot change while one
service runs, and a service that restarts binds a new socket: the key is the socket's path, inode
and change time, so a restarted (or replaced) service is asked again. Only a file this user owns,
not writable by anyone else, is read. What the cache could get wrong is the early refusal, never
what starts: verification compares the created container with the profile whatever the kind
said (a dropped memory limit or ulimit is drift).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from engine.backends.podman_documents import PodmanInfo


def _directory() -> Path:
    from policy.cache import default_directory

    return default_directory() / "engines"


def _key(url: str) -> str | None:
    if not url.startswith("unix://"):
        return None
    try:
        st = os.stat(url.removeprefix("unix://"))
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return None
    return hashlib.sha256(f"{url}\0{st.st_ino}\0{st.st_ctime_ns}".encode()).hexdigest()[:32]


def _read(path: Path) -> PodmanInfo | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(handle.fileno())
        if st.st_uid != os.geteuid() or st.st_mode & 0o022 or not stat.S_ISREG(st.st_mode):
            return None
        try:
            return PodmanInfo.model_validate_json(handle.read(64 * 1024))
        except ValueError:
            return None


def cached_podman_info(url: str, ask: Callable[[], PodmanInfo]) -> PodmanInfo:
    """`ask()`, or its answer from before for the same running service."""
    key = _key(url)
    if key is None:
        return ask()
    path = _directory() / f"podman-{key}.json"
    found = _read(path)
    if found is not None:
        return found
    info = ask()
    with contextlib.suppress(OSError):  # an unwritable cache only costs the next run a second
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".podman-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(info.model_dump_json(by_alias=True))
        os.replace(tmp, path)
    return info
