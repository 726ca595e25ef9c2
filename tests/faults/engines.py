"""Extra Docker engines for fault and load tests, each in a network namespace of its own.

An engine `cpf-<n>` lives entirely under `/tmp/cpf-<n>/` (socket, data root, exec root, pidfile,
log) and in the network namespace `cpf-<n>`. It is started the way DESIGN.md says works here:

    ip netns add cpf-<n>
    nsenter --net=/var/run/netns/cpf-<n> dockerd -H unix:///tmp/cpf-<n>/docker.sock \
        --data-root ... --exec-root ... --pidfile ...

Never `ip netns exec` (it remounts /sys: "Devices cgroup isn't mounted") and never
`--bridge=none` in the host's namespace (it deletes the main engine's docker0). The main engine
(/var/run/docker.sock) is shared and is never stopped, restarted or signalled from here: only the
`dockerd` this module started (by its pid) and processes whose command line names this engine's
own unique directory are ever signalled.

`destroy()` leaves nothing behind: containers removed through the engine, the daemon stopped
(SIGTERM, then SIGKILL) and reaped, leftover processes of this engine killed by pid, every mount
under its directory unmounted (`umount -R`, lazily as a last resort), the namespace deleted, the
directory removed. It never raises, so it is safe in `finally`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import TEST_IMAGE

PREFIX = "cpf-"
BASE = Path("/tmp")
NETNS_DIR = Path("/var/run/netns")
MAIN_SOCKET = "/var/run/docker.sock"

_lock = threading.Lock()
_image_tars: dict[str, Path] = {}


def _run(
    argv: Sequence[str], timeout: float = 60, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def image_tar(image: str = TEST_IMAGE) -> Path:
    """`docker save` of a local image of the main engine, made once per test session."""
    with _lock:
        if image in _image_tars and _image_tars[image].exists():
            return _image_tars[image]
        fd, name = tempfile.mkstemp(prefix="cpf-image-", suffix=".tar")
        os.close(fd)
        path = Path(name)
        done = _run(["docker", "-H", f"unix://{MAIN_SOCKET}", "save", "-o", str(path), image], 120)
        if done.returncode != 0:
            path.unlink(missing_ok=True)
            raise RuntimeError(f"docker save {image} failed: {done.stderr.strip()}")
        _image_tars[image] = path
        atexit.register(path.unlink, missing_ok=True)
        return path


@dataclass
class ExtraEngine:
    """One extra dockerd in its own network namespace; see the module docstring."""

    name: str
    extra_args: tuple[str, ...] = ()  # more dockerd options, e.g. ("--live-restore",)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log: Any = field(default=None, repr=False)

    # -- where everything lives -------------------------------------------------------------

    @property
    def root(self) -> Path:
        return BASE / self.name

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "docker.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def env(self) -> dict[str, str]:
        """The environment of a process that should talk to this engine (and only to it)."""
        return {**os.environ, "DOCKER_HOST": self.url}

    # -- life cycle ----------------------------------------------------------------------------

    @classmethod
    def allocate(cls, extra_args: Sequence[str] = ()) -> ExtraEngine:
        """A fresh, unused name: its directory is created atomically, then its namespace."""
        for n in range(1, 10_000):
            name = f"{PREFIX}{n}"
            if (NETNS_DIR / name).exists():
                continue
            try:
                (BASE / name).mkdir()
            except FileExistsError:
                continue
            done = _run(["ip", "netns", "add", name])
            if done.returncode != 0:  # taken by someone else between the check and now
                with contextlib.suppress(OSError):
                    (BASE / name).rmdir()
                continue
            return cls(name, tuple(extra_args))
        raise RuntimeError("no free cpf-<n> name")

    def start(self, deadline: float = 60) -> None:
        """Start (or restart) the daemon with the same roots; return once it answers.

        On a loaded machine a restarted dockerd sometimes gives up on its containerd ("failed
        to start containerd: timeout waiting for containerd to start") and exits: that is the
        machine, not what the tests examine, so it gets one more try. Any other exit fails."""
        try:
            self._start_once(deadline)
        except RuntimeError as exc:
            if "failed to start containerd" not in str(exc):
                raise
            self._log.close()
            self._start_once(deadline)

    def _start_once(self, deadline: float) -> None:
        assert self.process is None or not _alive(self.process.pid), "already running"
        # dockerd trusts its containerd's pidfile with kill(pid, 0), which a zombie passes:
        # after a SIGKILL it would wait for a containerd that is already dead.
        stale = self.root / "exec" / "containerd" / "containerd.pid"
        with contextlib.suppress(OSError, ValueError):
            if not _alive(int(stale.read_text().strip())):
                stale.unlink()
        self._log = self.log_path.open("ab")
        argv = [
            "nsenter",
            f"--net={NETNS_DIR / self.name}",
            "dockerd",
            "-H",
            self.url,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.pidfile),
            *self.extra_args,
        ]
        # Its own session: a Ctrl-C aimed at pytest must not reach the daemon.
        self.process = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.starts += 1
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name}: dockerd exited: {self.log_tail()}")
            if self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name}: dockerd did not answer in {deadline:.0f}s: {self.log_tail()}"
        )

    def ping(self) -> bool:
        import docker

        try:
            client = docker.APIClient(base_url=self.url, timeout=5, version="auto")
        except Exception:
            return False
        try:
            return bool(client.ping())
        except Exception:
            return False
        finally:
            client.close()

    def client(self, timeout: int = 60) -> Any:
        import docker

        return docker.APIClient(base_url=self.url, timeout=timeout, version="auto")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL, deadline: float = 60) -> None:
        """Signal the daemon this object started (by pid) and wait until it has exited."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, sig)
        try:
            self.process.wait(deadline)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
        if self._log is not None:
            self._log.close()
            self._log = None
        # The daemon's own containerd dies with it (parent-death signal), a moment later; a
        # restart before it is gone connects to the dying one and times out.
        end = time.monotonic() + 30
        while self.containerd_pids() and time.monotonic() < end:
            time.sleep(0.05)

    def containerd_pids(self) -> list[int]:
        marker = f"{self.root}/exec/containerd/containerd.toml"
        return [p for p in self.leftover_pids() if marker in _cmdline(p)]

    def restart(self, sig: int = signal.SIGKILL) -> None:
        self.kill(sig)
        self.start()

    def load_image(self, image: str = TEST_IMAGE) -> None:
        done = _run(["docker", "-H", self.url, "load", "-i", str(image_tar(image))], 120)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: docker load failed: {done.stderr.strip()}")

    def containers(self, **filters: str) -> list[dict[str, Any]]:
        client = self.client()
        try:
            found: list[dict[str, Any]] = client.containers(all=True, filters=filters or None)
            return found
        finally:
            client.close()

    def remove_all_containers(self) -> None:
        client = self.client()
        try:
            for c in client.containers(all=True):
                with contextlib.suppress(Exception):
                    client.remove_container(c["Id"], v=True, force=True)
        finally:
            client.close()

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    # -- clean-up ------------------------------------------------------------------------------

    def leftover_pids(self) -> list[int]:
        """Processes whose command line names this engine's own directory (containerd, shims)."""
        marker = f"{self.root}/"
        own = os.getpid()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == own:
                continue
            if marker in _cmdline(int(entry.name)) and _alive(int(entry.name)):
                pids.append(int(entry.name))
        return pids

    def container_ids(self) -> list[str]:
        with contextlib.suppress(OSError):
            return [p.name for p in (self.root / "data" / "containers").iterdir()]
        return []

    def container_pids(self, ids: Sequence[str]) -> list[int]:
        """Live processes in the cgroup of one of this engine's containers."""
        if not ids:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cgroups = (entry / "cgroup").read_text()
            except OSError:
                continue
            if any(f"/docker/{cid}" in cgroups for cid in ids) and _alive(int(entry.name)):
                pids.append(int(entry.name))
        return pids

    def mounts(self) -> list[str]:
        """Mount points at or under this engine's directory, deepest first."""
        points = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point == str(self.root) or point.startswith(f"{self.root}/"):
                    points.append(point)
        return sorted(set(points), key=len, reverse=True)

    def destroy(self) -> list[str]:
        """Remove every trace of the engine; returns what needed force (for diagnostics)."""
        notes: list[str] = []
        try:
            if not self.running() and self.root.exists() and (self.root / "data").exists():
                # Down (killed by a test): bring it back so its containers go the clean way.
                with contextlib.suppress(Exception):
                    self.start(30)
            if self.running():
                with contextlib.suppress(Exception):
                    self.remove_all_containers()
                self.kill(signal.SIGTERM, deadline=30)
            else:
                self.kill(signal.SIGKILL)
            # Last resort, the engine could not remove its containers: their processes first
            # (found by this engine's container ids in their cgroup), then its shims.
            ids = self.container_ids()
            for pid in self.container_pids(ids):
                notes.append(f"killed container process {pid}: {_cmdline(pid)[:80]}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in self.leftover_pids():
                notes.append(f"killed leftover pid {pid}: {_cmdline(pid)[:80]}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 10
            while self.leftover_pids() and time.monotonic() < end:
                time.sleep(0.1)
            for point in self.mounts():
                if _run(["umount", "-R", point]).returncode != 0 and point in self.mounts():
                    notes.append(f"lazy unmount of {point}")
                    _run(["umount", "-R", "-l", point])
            for cid in ids:
                for cgroup in Path("/sys/fs/cgroup").glob(f"*/docker/{cid}"):
                    with contextlib.suppress(OSError):
                        cgroup.rmdir()
            _run(["ip", "netns", "del", self.name])
            if self.mounts():  # never delete through a mount point that would not go away
                notes.append(f"kept {self.root}: still mounted: {self.mounts()}")
            elif self.root.exists():
                _run(["rm", "-rf", "--one-file-system", str(self.root)], 120)
        except Exception as exc:  # never raise from clean-up; say what happened
            notes.append(f"clean-up error: {exc!r}")
        return notes

    def traces(self) -> list[str]:
        """What of this engine still exists (empty after a successful `destroy`)."""
        out = []
        if self.running():
            out.append(f"dockerd pid {self.pid}")
        out += [f"process {p}" for p in self.leftover_pids()]
        out += [f"container process {p}" for p in self.container_pids(self.container_ids())]
        out += [f"mount {m}" for m in self.mounts()]
        if (NETNS_DIR / self.name).exists():
            out.append(f"netns {self.name}")
        if self.root.exists():
            out.append(f"directory {self.root}")
        return out


@contextlib.contextmanager
def extra_engines(
    count: int = 1, image: str | None = TEST_IMAGE, extra_args: Sequence[str] = ()
) -> Iterator[list[ExtraEngine]]:
    """`count` extra engines, started (and loaded with `image`) at once; all destroyed after."""
    engines: list[ExtraEngine] = []
    try:
        for _ in range(count):
            engines.append(ExtraEngine.allocate(extra_args))
        errors: list[BaseException] = []

        def boot(e: ExtraEngine) -> None:
            try:
                e.start()
                if image:
                    e.load_image(image)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        yield engines
    finally:
        left: list[str] = []
        for e in engines:
            e.destroy()
            left += e.traces()
        assert not left, f"extra engines left traces: {left}"


@contextlib.contextmanager
def extra_engine(
    image: str | None = TEST_IMAGE, extra_args: Sequence[str] = ()
) -> Iterator[ExtraEngine]:
    with extra_engines(1, image, extra_args) as engines:
        yield engines[0]
