"""`--deep`: the kernel's own view of a container, read from /proc and the cgroup filesystem.

The engine's inspect document says what was requested; /proc/<pid>/status, /proc/<pid>/mountinfo,
/proc/<pid>/limits and the cgroup's limit files say what the kernel applied. Only possible on the
container's own host, which `owned_by` proves for each container from the process's cgroup.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from policy import units

PROC = Path("/proc")
# /proc/<pid>/limits rows -> the ulimit names of a profile.
LIMIT_ROWS = {
    "Max cpu time": "cpu", "Max file size": "fsize", "Max data size": "data",
    "Max stack size": "stack", "Max core file size": "core", "Max resident set": "rss",
    "Max processes": "nproc", "Max open files": "nofile", "Max locked memory": "memlock",
    "Max address space": "as", "Max file locks": "locks", "Max pending signals": "sigpending",
    "Max msgqueue size": "msgqueue", "Max nice priority": "nice",
    "Max realtime priority": "rtprio", "Max realtime timeout": "rttime",
}  # fmt: skip
_LIMIT_RE = re.compile(r"(.+?)\s{2,}(\S+)\s+(\S+)")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _limits(text: str) -> dict[str, dict[str, int]]:
    """`/proc/<pid>/limits` as {name: {soft, hard}}, unlimited as -1 (the engine's spelling)."""
    out = {}
    for line in text.splitlines()[1:]:
        m = _LIMIT_RE.match(line)
        if m and m[1] in LIMIT_ROWS:
            soft, hard = (-1 if v == "unlimited" else int(v) for v in (m[2], m[3]))
            out[LIMIT_ROWS[m[1]]] = {"soft": soft, "hard": hard}
    return out


def owned_by(pid: int, container: str, proc: Path = PROC) -> bool:
    """Whether process `pid` of this machine's /proc is container `container`'s: its cgroup
    path names the container id (cgroupfs `/docker/ID`, systemd `docker-ID.scope`, Podman's
    `libpod-ID`). An engine on another machine, or a pid reused since, is not."""
    cgroup = _read(proc / str(pid) / "cgroup")
    return bool(container) and cgroup is not None and container in cgroup


def kernel_view(pid: int, proc: Path = PROC, cgroup_root: Path = CGROUP_ROOT) -> dict[str, Any]:
    """Canonical settings as the kernel reports them for process `pid` (missing keys: unknown)."""
    out: dict[str, Any] = {}
    status = _read(proc / str(pid) / "status")
    if status is None:
        return out
    fields = {k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in status.splitlines())}
    if "Uid" in fields:
        out["uid"] = int(fields["Uid"].split()[1])  # effective
    if "Gid" in fields:
        out["gid"] = int(fields["Gid"].split()[1])
    if "NoNewPrivs" in fields:
        out["no_new_privileges"] = fields["NoNewPrivs"] == "1"
    if "Seccomp" in fields:
        out["seccomp_filtered"] = fields["Seccomp"] == "2"
    if "CapBnd" in fields:
        out["capabilities"] = sorted(units.capabilities_from_mask(int(fields["CapBnd"], 16)))
    mountinfo = _read(proc / str(pid) / "mountinfo") or ""
    tmpfs: dict[str, int | None] = {}
    tmpfs_read_only: dict[str, bool] = {}
    for line in mountinfo.splitlines():
        parts = line.split()
        if len(parts) < 10 or "-" not in parts:
            continue
        sep = parts.index("-")
        target, options = parts[4], parts[5].split(",")
        fstype, super_options = parts[sep + 1], parts[sep + 3].split(",")
        if target == "/":
            out["read_only"] = "ro" in options
        elif fstype == "tmpfs":
            size = next((o[5:] for o in super_options if o.startswith("size=")), None)
            tmpfs[target] = units.parse_size(size) if size else None
            tmpfs_read_only[target] = "ro" in options
    out["tmpfs_sizes"] = tmpfs
    out["tmpfs_read_only"] = tmpfs_read_only
    # The mode of each tmpfs as the container sees it (its root, through /proc): the engine gives
    # a tmpfs over a directory of the image that directory's mode, whatever was asked.
    modes: dict[str, str] = {}
    for target in tmpfs:
        try:
            modes[target] = (
                f"{os.stat(proc / str(pid) / 'root' / target.lstrip('/')).st_mode & 0o7777:o}"
            )
        except OSError:
            continue
    if modes:  # none when the process's root is not readable from here
        out["tmpfs_modes"] = modes
    limits = _read(proc / str(pid) / "limits")
    if limits is not None:
        out["ulimits"] = _limits(limits)
    out.update(_cgroup_limits(_read(proc / str(pid) / "cgroup") or "", cgroup_root))
    return out


def _cgroup_limits(cgroup: str, root: Path) -> dict[str, Any]:
    paths: dict[str, str] = {}
    for line in cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    out: dict[str, Any] = {}
    if "" in paths and len(paths) == 1:  # cgroup v2
        base = root / paths[""].lstrip("/")
        memory = _read(base / "memory.max")
        pids = _read(base / "pids.max")
        cpu = _read(base / "cpu.max")
        if memory is not None:
            out["memory"] = None if memory.strip() == "max" else int(memory)
        if pids is not None:
            out["pids_limit"] = None if pids.strip() == "max" else int(pids)
        if cpu is not None:
            quota, _, period = cpu.strip().partition(" ")
            out["cpus"] = None if quota == "max" else round(int(quota) / int(period), 3)
        return out
    if "memory" in paths:
        text = _read(root / "memory" / paths["memory"].lstrip("/") / "memory.limit_in_bytes")
        if text is not None:
            value = int(text)
            out["memory"] = None if value >= (1 << 62) else value
    if "pids" in paths:
        text = _read(root / "pids" / paths["pids"].lstrip("/") / "pids.max")
        if text is not None:
            out["pids_limit"] = None if text.strip() == "max" else int(text)
    cpu_path = paths.get("cpu,cpuacct") or paths.get("cpu")
    if cpu_path is not None:
        base = root / "cpu,cpuacct" / cpu_path.lstrip("/")
        if not base.exists():
            base = root / "cpu" / cpu_path.lstrip("/")
        quota_text = _read(base / "cpu.cfs_quota_us")
        period_text = _read(base / "cpu.cfs_period_us")
        if quota_text is not None and period_text is not None:
            quota_us = int(quota_text)
            out["cpus"] = None if quota_us < 0 else round(quota_us / int(period_text), 3)
    return out


def compare_kernel(expected: dict[str, Any], kernel: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, expected, kernel) for each kernel fact that contradicts the expected settings."""
    out: list[tuple[str, Any, Any]] = []
    user = expected.get("user")
    if user and "uid" in kernel:
        uid, gid = units.parse_user(user) if user[0].isdigit() else (None, None)
        if uid is not None and kernel["uid"] != uid:
            out.append(("uid", uid, kernel["uid"]))
        if gid is not None and kernel.get("gid") != gid:
            out.append(("gid", gid, kernel.get("gid")))
    checks = {
        "no_new_privileges": expected["no_new_privileges"],
        "seccomp_filtered": expected["seccomp"] != "unconfined",
        "capabilities": expected["capabilities"],
        "read_only": expected["read_only"],
        "memory": expected["memory"],
        "pids_limit": expected["pids_limit"],
        "cpus": expected["cpus"],
    }
    for key, want in checks.items():
        if key in kernel and kernel[key] != want:
            out.append((key, want, kernel[key]))
    # Only the declared ulimits: the others are the engine's defaults, whatever they are.
    for name, want in (expected.get("ulimits") or {}).items():
        got = (kernel.get("ulimits") or {}).get(name)
        if got is not None and got != want:
            out.append((f"ulimits {name}", want, got))
    if "tmpfs_sizes" not in kernel:
        return out  # the process ended before its mounts could be read: nothing to compare
    for path, spec in (expected.get("tmpfs") or {}).items():
        sizes = kernel["tmpfs_sizes"]
        if path not in sizes:
            out.append((f"tmpfs {path}", spec["size"], "not mounted"))
        elif sizes[path] != spec["size"]:
            out.append((f"tmpfs {path} size", spec["size"], sizes[path]))
        mode = (kernel.get("tmpfs_modes") or {}).get(path)
        if spec.get("mode") is not None and mode is not None and mode != spec["mode"]:
            out.append((f"tmpfs {path} mode", spec["mode"], mode))
    return out
