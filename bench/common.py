"""Shared helpers: timing, processes, the machine, our containers and our copy of the policy.

Every container a benchmark starts carries the labels `bench=<run id>` and
`bench.owner=container-policy-bench`; cleanup only ever touches containers with those labels.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PY = sys.executable
CLI = [PY, "-m", "engine.cli"]
# The measured commands are `policy ...` as users run it: the console script of this interpreter's
# environment (same interpreter as PY), else `python -m engine.cli`.
_SCRIPT = Path(PY).parent / "policy"
POLICY = [str(_SCRIPT)] if _SCRIPT.exists() else CLI


def after_python(argv: Sequence[str]) -> list[str]:
    """A `policy` argv as the arguments of `python` (`-m engine.cli ...`), for `-X importtime`."""
    return [*CLI[1:], *argv[len(POLICY) :]]


LABEL = "bench"
OWNER_LABEL = "bench.owner"
OWNER = "container-policy-bench"
RUN_ID = dt.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
BENCH_LABELS = {LABEL: RUN_ID, OWNER_LABEL: OWNER}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- statistics -----------------------------------------------------------------------------------


def summary(values: Sequence[float], digits: int = 4) -> dict[str, Any]:
    """Median, min, max and every value (rounded), for one measured series."""
    vals = [float(v) for v in values]
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "values": []}
    return {
        "n": len(vals),
        "median": round(statistics.median(vals), digits),
        "min": round(min(vals), digits),
        "max": round(max(vals), digits),
        "values": [round(v, digits) for v in vals],
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or not b:
        return None
    return round(a / b, 3)


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Median of the per-round ratios a[i]/b[i] (the rounds alternate, so each pair shares its
    moment's machine load)."""
    pairs = [x / y for x, y in zip(a, b, strict=False) if y]
    return round(statistics.median(pairs), 3) if pairs else None


def target(value: float | None, limit: float, op: str = "<=") -> dict[str, Any]:
    met = None if value is None else (value <= limit if op == "<=" else value < limit)
    return {"limit": limit, "op": op, "value": value, "met": met}


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    wall: float  # seconds, from spawn to reaped
    cpu: float  # user + system seconds of the child (its own threads; not its children)
    maxrss_kb: int  # peak resident set of the child (getrusage ru_maxrss, KiB)
    rc: int
    stdout: str
    stderr: str


# The measured command is forked by a small helper process, not by this (large) one: on Linux a
# child's ru_maxrss starts from the RSS of the process it was forked from, so a command spawned
# from the benchmark process would report at least the benchmark's own size. The helper also
# times the command from fork to reap, so its own start-up is not counted.
_HELPER = r"""
import os, sys, time
fd, argv = int(sys.argv[1]), sys.argv[2:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - start
code = os.waitstatus_to_exitcode(status)
os.write(fd, f"{wall} {ru.ru_utime + ru.ru_stime} {ru.ru_maxrss} {code}".encode())
"""

# This environment may set PYTHONDONTWRITEBYTECODE=1, which makes every CLI run compile the
# project's modules from source. A user's installation caches bytecode, so the measured commands
# run with a bytecode cache kept outside the source tree (PYTHONPYCACHEPREFIX).
PYCACHE = Path(tempfile.gettempdir()) / "container-policy-bench-pycache"


# The cache of validated policies the measured commands use: a directory of the benchmark's own
# (never the user's ~/.cache/container-policy), made by `policy_cache_dir` and removed with it.
CACHE_ENV = "POLICY_CACHE_DIR"
_CACHE_DIRS: list[Path] = []


@contextlib.contextmanager
def policy_cache_dir() -> Iterator[Path]:
    """A fresh, empty cache directory (mode 0700, ours) for every command run in the block; it
    is removed at the end. "Warm" figures are of commands run once untimed first, so their
    entry is in it; "cold" ones run with `--no-cache`."""
    path = Path(tempfile.mkdtemp(prefix="bench-policy-cache-"))
    _CACHE_DIRS.append(path)
    try:
        yield path
    finally:
        _CACHE_DIRS.remove(path)
        shutil.rmtree(path, ignore_errors=True)


def cache_dir() -> Path:
    if not _CACHE_DIRS:
        raise RuntimeError("bench: commands run only inside common.policy_cache_dir()")
    return _CACHE_DIRS[-1]


def cache_snapshot() -> dict[str, int]:
    """The entries of the bench's policy cache: file name -> mtime (ns)."""
    return {p.name: p.stat().st_mtime_ns for p in cache_dir().glob("*.pickle")}


def cache_writes(before: dict[str, int], after: dict[str, int]) -> int:
    """Entries written between two snapshots (new or rewritten): each one is a warm command
    that missed the cache (the code or a policy file changed under it)."""
    return sum(1 for name, mtime in after.items() if before.get(name) != mtime)


def child_env(extra: dict[str, str] | None = None, bytecode_cache: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode_cache and env.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    env[CACHE_ENV] = str(cache_dir())
    env.update(extra or {})
    return env


def no_cache(argv: Sequence[str]) -> list[str]:
    """`argv` (a `policy` command) with `--no-cache`, before any `--` (the command to run)."""
    out = list(argv)
    out.insert(out.index("--") if "--" in out else len(out), "--no-cache")
    return out


def run_proc(
    argv: Sequence[str],
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    capture: bool = False,
    bytecode_cache: bool = True,
) -> Proc:
    """Run `argv` (stdout to /dev/null, or captured); its wall time, CPU and peak RSS."""
    read_fd, write_fd = os.pipe()
    try:
        with tempfile.TemporaryFile() as err, tempfile.TemporaryFile() as out:
            proc = subprocess.Popen(
                [PY, "-S", "-E", "-c", _HELPER, str(write_fd), *argv],
                cwd=cwd,
                env=child_env(env, bytecode_cache),
                stdin=subprocess.DEVNULL,
                stdout=out if capture else subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_fd,),
            )
            os.close(write_fd)
            write_fd = -1
            with os.fdopen(read_fd, "rb") as pipe:
                read_fd = -1
                report = pipe.read().decode()
            proc.wait()
            err.seek(0)
            out.seek(0)
            stderr = err.read().decode(errors="replace")[-4000:]
            if proc.returncode or not report:
                raise RuntimeError(f"bench helper failed ({proc.returncode}): {stderr}")
            wall, cpu, maxrss, rc = report.split()
            return Proc(
                wall=float(wall),
                cpu=float(cpu),
                maxrss_kb=int(maxrss),
                rc=int(rc),
                stdout=out.read().decode(errors="replace") if capture else "",
                stderr=stderr,
            )
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)


def run_procs_at_once(argvs: Sequence[Sequence[str]], cwd: Path = ROOT) -> tuple[float, list[int]]:
    """Start every argv at once (Popen each), wait for all; (wall seconds, exit codes)."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            list(a),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for a in argvs
    ]
    codes = []
    for p in procs:
        _, err = p.communicate()
        codes.append(p.returncode)
        if p.returncode:
            log(f"  exit {p.returncode}: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - start, codes


# -- memory of this process -----------------------------------------------------------------------


def _status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as handle:
        match = re.search(rf"^{key}:\s+(\d+)", handle.read(), re.M)
    return int(match.group(1)) if match else 0


def reset_peak_rss() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def rss_kb() -> int:
    return _status_kb("VmRSS")


def peak_rss_kb() -> int:
    return _status_kb("VmHWM")


@contextlib.contextmanager
def measure_in_process() -> Iterator[dict[str, float]]:
    """Wall, CPU (all threads) and peak-RSS growth of a block run in this process."""
    out: dict[str, float] = {}
    reset = reset_peak_rss()
    before_rss = rss_kb()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        yield out
    finally:
        out["wall"] = time.perf_counter() - t0
        out["cpu"] = time.process_time() - cpu0
        out["rss_growth_kb"] = (peak_rss_kb() - before_rss) if reset else float("nan")


# -- the engine's own CPU -------------------------------------------------------------------------


def _main_dockerd() -> int | None:
    """The dockerd serving the default socket: the one started without its own -H/--data-root
    (test suites may run extra engines next to it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() != "dockerd":
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            own = any(a.startswith((b"-H", b"--host", b"--data-root")) for a in argv)
            found.append((own, int(entry.name)))
    found.sort()
    return found[0][1] if found and not found[0][0] else None


_TICK = os.sysconf("SC_CLK_TCK")
_DOCKERD: list[int | None] = []


def dockerd_cpu() -> float | None:
    """dockerd's user + system CPU seconds so far (None when it cannot be read)."""
    if not _DOCKERD:
        _DOCKERD.append(_main_dockerd())
    pid = _DOCKERD[0]
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


# -- the machine ----------------------------------------------------------------------------------


def _meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        out[key] = int(rest.split()[0])  # kB
    return out


def mem_available_mib() -> int:
    return _meminfo().get("MemAvailable", 0) // 1024


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return out.stdout.rstrip("\n")


def code_fingerprint() -> str:
    """sha256 (first 12 hex digits) of engine/ and policy/ as measured, working tree included:
    others may be changing the code while the benchmarks run."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted([*ROOT.glob("engine/**/*.py"), *ROOT.glob("policy/**/*.py")]):
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def machine_info(api: Any) -> dict[str, Any]:
    import docker
    import pydantic

    version = api.version()
    info = api.info()
    return {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_gib": round(_meminfo()["MemTotal"] / 1024 / 1024, 1),
        "mem_available_gib_at_start": round(mem_available_mib() / 1024, 1),
        "kernel": platform.release(),
        "os": platform.platform(),
        "engine_version": version.get("Version"),
        "engine_api_version": version.get("ApiVersion"),
        "cgroup_version": info.get("CgroupVersion"),
        "cgroup_driver": info.get("CgroupDriver"),
        "storage_driver": info.get("Driver"),
        "engine_containers_at_start": info.get("Containers"),
        "python": platform.python_version(),
        "python_executable": PY,
        "docker_sdk": docker.__version__,
        "pydantic": pydantic.VERSION,
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "python_dont_write_bytecode": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "git_commit": _git("rev-parse", "--short", "HEAD").strip(),
        "git_dirty_files": len([ln for ln in _git("status", "--porcelain").splitlines() if ln]),
        "git_dirty_code": [
            ln[3:] for ln in _git("status", "--porcelain", "engine", "policy").splitlines() if ln
        ],
        "code_fingerprint": code_fingerprint(),
    }


# -- our containers -------------------------------------------------------------------------------


def docker_api() -> Any:
    import docker

    return docker.from_env(timeout=120).api


def remove_containers(api: Any, ids: Sequence[str], workers: int = 16) -> int:
    """Remove (force, with anonymous volumes) in parallel; containers already gone are fine."""
    import docker.errors

    def one(cid: str) -> bool:
        try:
            api.remove_container(cid, v=True, force=True)
            return True
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            if exc.status_code == 409:  # removal already in progress
                return False
            raise

    if not ids:
        return 0
    with cf.ThreadPoolExecutor(max_workers=min(workers, len(ids))) as pool:
        return sum(pool.map(one, ids))


def our_containers(api: Any, run_id: str | None = RUN_ID) -> list[str]:
    labels = [f"{OWNER_LABEL}={OWNER}"]
    if run_id is not None:
        labels.append(f"{LABEL}={run_id}")
    return [c["Id"] for c in api.containers(all=True, filters={"label": labels})]


def cleanup(api: Any, run_id: str | None = RUN_ID) -> int:
    """Remove every container of this run (run_id=None: of any run of these benchmarks)."""
    removed = 0
    for _ in range(5):
        ids = our_containers(api, run_id)
        if not ids:
            break
        removed += remove_containers(api, ids)
        time.sleep(0.2)
    return removed


def install_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every `finally` (container cleanup) runs."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


# -- our copy of the policy -----------------------------------------------------------------------


def make_policy_copy(dest: Path) -> Path:
    """Copy the shipped policies/ to dest/policies, with our labels added to [profiles.isolation].

    Every profile that extends isolation (parallel, ...) inherits them, so whatever a benchmark
    launches carries `bench=<run id>` and can be found and removed, by us and only by us. The
    copy is checked to differ from the shipped profile in the labels alone.
    """
    from policy.canonical import canonical_document
    from policy.loader import load_policy

    target = dest / "policies"
    shutil.copytree(ROOT / "policies", target)
    base = target / "base.toml"
    lines = base.read_text(encoding="utf-8").splitlines(keepends=True)
    header = next((i for i, ln in enumerate(lines) if ln.strip() == "[profiles.isolation]"), None)
    if header is None:
        raise SystemExit("bench: policies/base.toml has no [profiles.isolation] table")
    if "labels" in tomllib.loads("".join(lines))["profiles"]["isolation"]:
        raise SystemExit("bench: [profiles.isolation] already has labels; extend make_policy_copy")
    labels = ", ".join(f'"{k}" = "{v}"' for k, v in BENCH_LABELS.items())
    lines.insert(header + 1, f"labels = {{ {labels} }}  # added by bench/ (run {RUN_ID})\n")
    base.write_text("".join(lines), encoding="utf-8")

    shipped = load_policy([ROOT / "policies"], ROOT).profiles["isolation"]
    copied = load_policy([target], ROOT).profiles["isolation"]
    a, b = canonical_document(shipped), canonical_document(copied)
    a.pop("labels"), b.pop("labels")
    if a != b or copied.labels != {**shipped.labels, **BENCH_LABELS}:
        raise SystemExit("bench: the policy copy's isolation differs from the shipped one")
    return target


def timed_rounds(
    rounds: int, variants: dict[str, Callable[[], dict[str, Any]]], rotate: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Run every variant once per round, alternating (A B C, then B C A, ...)."""
    names = list(variants)
    out: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)] if rotate else names
        for name in order:
            out[name].append(variants[name]())
        log(
            f"  round {r + 1}/{rounds}: "
            + "  ".join(f"{n} {out[n][-1]['wall']:.3f}s" for n in names)
        )
    return out


_REQUEST_LINE = re.compile(rb"^(GET|POST|PUT|DELETE|HEAD|PATCH) (\S+) HTTP/1\.[01]\r\n")
_TRACED = ("connect", "send", "sendall", "recv", "recv_into")


@contextlib.contextmanager
def http_trace() -> Iterator[dict[str, Any]]:
    """Record every Engine API request this process makes over a unix socket (method, path, ms
    from sending it to the first bytes of its answer) and every unix-socket connection it opens,
    while the block runs. It watches the sockets themselves, so it sees either backend (the
    docker SDK's, the stdlib one's), however they are built. Measurement only: the calls go
    through unchanged."""
    import socket as so
    import threading

    trace: dict[str, Any] = {"requests": [], "connections": 0}
    lock = threading.Lock()
    pending: dict[int, tuple[dict[str, Any], float]] = {}
    cls: Any = so.socket
    own = {name: cls.__dict__.get(name) for name in _TRACED}  # None: inherited from _socket
    original = {name: getattr(cls, name) for name in _TRACED}

    def connect(self: Any, address: Any) -> Any:
        if self.family == so.AF_UNIX:
            with lock:
                trace["connections"] += 1
        return original["connect"](self, address)

    def sending(name: str) -> Any:
        def send(self: Any, data: Any, *args: Any) -> Any:
            if self.family == so.AF_UNIX:
                m = _REQUEST_LINE.match(bytes(data[:4096]))
                if m:
                    path = re.sub(r"[0-9a-f]{64}", "<id>", m.group(2).decode().split("?")[0])
                    entry = {
                        "method": m.group(1).decode(),
                        "path": re.sub(r"^/v[0-9.]+/", "/", path),
                        "ms": None,
                    }
                    with lock:
                        trace["requests"].append(entry)
                        pending[id(self)] = (entry, time.perf_counter())
            return original[name](self, data, *args)

        return send

    def receiving(name: str) -> Any:
        def recv(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = original[name](self, *args, **kwargs)
            if pending:
                with lock:
                    got = pending.pop(id(self), None)
                if got is not None:
                    got[0]["ms"] = round((time.perf_counter() - got[1]) * 1000, 1)
            return out

        return recv

    cls.connect = connect
    cls.send, cls.sendall = sending("send"), sending("sendall")
    cls.recv, cls.recv_into = receiving("recv"), receiving("recv_into")
    try:
        yield trace
    finally:
        for name, value in own.items():
            if value is None:
                delattr(cls, name)
            else:
                setattr(cls, name, value)


def emit(results: dict[str, Any], output: Path | None) -> None:
    """Print a benchmark's results as JSON on stdout, and write them to `output` when given."""
    text = json.dumps(results, indent=2)
    print(text)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
