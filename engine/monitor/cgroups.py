"""Where a process's cgroup files are on this machine: cgroup v1 and v2, any layout.

`/proc/<pid>/cgroup` names the process's cgroup in each hierarchy (`4:memory:/docker/ID` on v1,
`0::/system.slice/docker-ID.scope` on v2, whatever the engine's cgroup driver); the
hierarchies' mount points come from `/proc/self/mountinfo`, because they are not always under
/sys/fs/cgroup, and v1 controllers may share a mount (`cpu,cpuacct`) or not. The functions
here are pure over those two texts, so the layouts are tested on recorded contents.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from pathlib import Path

# The v1 controllers whose files the sampler reads.
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")


@dataclass(frozen=True)
class CgroupDirs:
    """The directories of one process's cgroup: one per v1 controller, or the one v2 directory."""

    version: str  # "1" or "2"
    v1: dict[str, Path] = field(default_factory=dict)  # controller -> directory
    v2: Path | None = None

    def directory(self, controller: str) -> Path | None:
        """Where `controller`'s files are (v2: the unified directory for all of them)."""
        return self.v2 if self.version == "2" else self.v1.get(controller)


@dataclass(frozen=True)
class _Mount:
    root: str  # the hierarchy's path that is mounted (field 4 of mountinfo)
    point: str
    controllers: frozenset[str]  # v1; empty for cgroup2


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """`/proc/<pid>/cgroup` as {controller: path}; the v2 (unified) entry under ""."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            out[""] = path
            continue
        for controller in controllers.split(","):
            out[controller] = path
    return out


def _mounts(mountinfo: str) -> tuple[list[_Mount], list[_Mount]]:
    """The v1 and the v2 cgroup mounts of `mountinfo`."""
    v1: list[_Mount] = []
    v2: list[_Mount] = []
    for line in mountinfo.splitlines():
        parts = line.split()
        if "-" not in parts:
            continue
        sep = parts.index("-")
        if len(parts) < sep + 4 or sep < 5:
            continue
        fstype, super_options = parts[sep + 1], parts[sep + 3].split(",")
        root, point = _unescape(parts[3]), _unescape(parts[4])
        if fstype == "cgroup2":
            v2.append(_Mount(root, point, frozenset()))
        elif fstype == "cgroup":
            names = frozenset(o for o in super_options if o in CONTROLLERS)
            if names:
                v1.append(_Mount(root, point, names))
    return v1, v2


def _unescape(text: str) -> str:
    # mountinfo writes a space, tab, newline and backslash in a path as octal escapes.
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        text = text.replace(code, char)
    return text


def _under(mount: _Mount, path: str) -> Path | None:
    """The directory of cgroup `path` through `mount`, or None when the mount does not show it
    (a container's own namespaced view mounts only its subtree)."""
    if mount.root == "/":
        relative = path.lstrip("/")
    elif path == mount.root or path.startswith(mount.root.rstrip("/") + "/"):
        relative = path[len(mount.root) :].lstrip("/")
    else:
        return None
    return Path(posixpath.join(mount.point, relative)) if relative else Path(mount.point)


def locate(proc_cgroup: str, mountinfo: str) -> CgroupDirs | None:
    """The cgroup directories of the process whose `/proc/<pid>/cgroup` is `proc_cgroup`, on
    the machine whose mounts are `mountinfo`; None when neither hierarchy is mounted.

    A hybrid machine (v1 controllers plus an empty unified hierarchy, as this one) is v1: the
    controllers, and so the counters, are on the v1 side."""
    paths = parse_proc_cgroup(proc_cgroup)
    v1_mounts, v2_mounts = _mounts(mountinfo)
    v1: dict[str, Path] = {}
    for controller in CONTROLLERS:
        if controller not in paths:
            continue
        for mount in v1_mounts:
            if controller in mount.controllers:
                found = _under(mount, paths[controller])
                if found is not None:
                    v1[controller] = found
                    break
    if "memory" in v1 or "cpu" in v1 or "pids" in v1:
        return CgroupDirs("1", v1=v1)
    if "" in paths:
        for mount in v2_mounts:
            found = _under(mount, paths[""])
            if found is not None:
                return CgroupDirs("2", v2=found)
    return None
