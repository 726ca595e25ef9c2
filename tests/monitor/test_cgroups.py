"""Finding a process's cgroup files from recorded `/proc/<pid>/cgroup` and mountinfo contents:
cgroup v1 (cgroupfs and systemd drivers, split and joined controllers), v2, the hybrid layout
of this machine, and a namespaced view that does not show the cgroup."""

from __future__ import annotations

from pathlib import Path

from engine.monitor.cgroups import locate, parse_proc_cgroup

ID = "1a3c722e5d23f909fc0f5c0d3e9b714f78185be7a2a4b8b557b659f857e558b4"

# Recorded on this machine (Docker 20.10, cgroupfs driver, hybrid: v1 controllers each on
# their own mount, an empty unified hierarchy).
V1_CGROUPFS = f"""\
9:name=systemd:/docker/{ID}
8:pids:/docker/{ID}
4:memory:/docker/{ID}
2:cpuacct:/docker/{ID}
1:cpu:/docker/{ID}
0::/docker/{ID}
"""
HYBRID_MOUNTS = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
# Debian 10 style v1 with the systemd driver: cpu and cpuacct joined on one mount.
V1_SYSTEMD = f"""\
11:pids:/system.slice/docker-{ID}.scope
5:memory:/system.slice/docker-{ID}.scope
3:cpu,cpuacct:/system.slice/docker-{ID}.scope
1:name=systemd:/system.slice/docker-{ID}.scope
"""
JOINED_MOUNTS = """\
25 24 0:23 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
28 24 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
30 24 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
33 24 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
"""
V2_SYSTEMD = f"0::/system.slice/docker-{ID}.scope\n"
V2_CGROUPFS = f"0::/docker/{ID}\n"
V2_MOUNTS = "26 1 0:25 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_proc_cgroup_lines_are_split_per_controller() -> None:
    paths = parse_proc_cgroup(V1_SYSTEMD)
    assert paths["cpu"] == paths["cpuacct"] == f"/system.slice/docker-{ID}.scope"
    assert "" not in paths
    assert parse_proc_cgroup(V2_CGROUPFS) == {"": f"/docker/{ID}"}


def test_v1_cgroupfs_on_a_hybrid_machine_is_v1() -> None:
    dirs = locate(V1_CGROUPFS, HYBRID_MOUNTS)
    assert dirs is not None and dirs.version == "1"
    assert dirs.directory("memory") == Path(f"/sys/fs/cgroup/memory/docker/{ID}")
    assert dirs.directory("cpu") == Path(f"/sys/fs/cgroup/cpu/docker/{ID}")
    assert dirs.directory("cpuacct") == Path(f"/sys/fs/cgroup/cpuacct/docker/{ID}")
    assert dirs.directory("pids") == Path(f"/sys/fs/cgroup/pids/docker/{ID}")


def test_v1_systemd_with_joined_controllers() -> None:
    dirs = locate(V1_SYSTEMD, JOINED_MOUNTS)
    assert dirs is not None and dirs.version == "1"
    scope = f"system.slice/docker-{ID}.scope"
    assert dirs.directory("cpu") == Path("/sys/fs/cgroup/cpu,cpuacct") / scope
    assert dirs.directory("cpuacct") == Path("/sys/fs/cgroup/cpu,cpuacct") / scope
    assert dirs.directory("memory") == Path("/sys/fs/cgroup/memory") / scope


def test_v2_systemd_and_cgroupfs() -> None:
    systemd = locate(V2_SYSTEMD, V2_MOUNTS)
    assert systemd is not None and systemd.version == "2"
    assert systemd.directory("memory") == Path(f"/sys/fs/cgroup/system.slice/docker-{ID}.scope")
    assert systemd.directory("pids") == systemd.directory("memory")
    cgroupfs = locate(V2_CGROUPFS, V2_MOUNTS)
    assert cgroupfs is not None and cgroupfs.directory("cpu") == Path(f"/sys/fs/cgroup/docker/{ID}")


def test_a_mount_of_a_subtree_resolves_below_its_root() -> None:
    # A hierarchy mounted from /docker (as inside another container): the path is relative to it.
    mounts = "40 30 0:40 /docker /mnt/cg rw - cgroup2 cgroup2 rw\n"
    dirs = locate(V2_CGROUPFS, mounts)
    assert dirs is not None and dirs.v2 == Path(f"/mnt/cg/{ID}")


def test_a_cgroup_outside_every_mount_is_not_found() -> None:
    mounts = "40 30 0:40 /kubepods /mnt/cg rw - cgroup2 cgroup2 rw\n"
    assert locate(V2_CGROUPFS, mounts) is None
    assert locate(V2_CGROUPFS, "") is None
    assert locate("garbage\n", V2_MOUNTS) is None
