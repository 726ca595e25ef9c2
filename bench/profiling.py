"""Where the time goes when a target is missed: py-spy samples and `python -X importtime`.

py-spy (`pip install py-spy`; not a project dependency) samples every thread of a process from
outside, so it sees the audit's inspect threads and the launcher's output thread too. Its raw
output (one `frame;frame;... count` line per stack) is folded here into:

- top_self: functions by samples spent in the function itself (the leaf of the stack);
- top_project: the project's own functions (engine/, policy/) by inclusive samples;
- top_inclusive: any function by inclusive samples (each function once per stack).
"""

from __future__ import annotations

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, child_env, log

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
_PROJECT = ("engine/", "policy/")


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if os.access(found, os.X_OK) else None


def _short(file: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/", str(ROOT) + "/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file


def _key(frame: str, with_line: bool = False) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    where = _short(m.group("file"))
    if with_line and m.group("line"):
        where += ":" + m.group("line")
    return f"{m.group('func')} ({where})"


def fold(raw: str, top: int = 15) -> dict[str, Any]:
    self_counts: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        self_counts[_key(frames[-1], with_line=True)] += count
        for key in {_key(f) for f in frames}:
            incl[key] += count

    def rows(counter: collections.Counter[str], keep: Any = None) -> list[dict[str, Any]]:
        items = [(k, v) for k, v in counter.most_common() if keep is None or keep(k)]
        return [
            {"function": k, "samples": v, "share": round(v / total, 3) if total else 0}
            for k, v in items[:top]
        ]

    def is_project(key: str) -> bool:
        m = re.search(r"\(([^()]*)\)$", key)
        return m is not None and m.group(1).startswith(_PROJECT)

    return {
        "samples": total,
        "top_self": rows(self_counts),
        "top_project": rows(incl, is_project),
        "top_inclusive": rows(incl, lambda k: not k.startswith(("<module>", "_run_"))),
    }


def profile_command(
    argv: Sequence[str],
    cwd: Path = ROOT,
    rate: int = 200,
    idle: bool = False,
    repeat: int = 1,
    env: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    """Sample `argv` (repeated `repeat` times, samples pooled) with py-spy; None without it."""
    spy = py_spy()
    if spy is None:
        log("  (py-spy not installed: no profile; `pip install py-spy`)")
        return None
    raw = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            out = Path(tmp) / f"{i}.txt"
            # --nonblocking: sample without pausing the process (pausing it hundreds of times a
            # second slows it down many times over on a loaded machine).
            cmd = [spy, "record", "--nonblocking", "--rate", str(rate), "--format", "raw"]
            cmd += ["-o", str(out)]
            if idle:
                cmd.append("--idle")
            done = subprocess.run(
                [*cmd, "--", *argv],
                cwd=cwd,
                env=child_env(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
            if not out.exists():
                log(f"  py-spy failed: {done.stderr.decode(errors='replace')[-300:]}")
                return None
            raw.append(out.read_text(encoding="utf-8", errors="replace"))
    result = fold("\n".join(raw))
    result.update(
        {
            "tool": "py-spy",
            "rate_hz": rate,
            "nonblocking": True,
            "idle_included": idle,
            "runs_pooled": repeat,
            "command": " ".join(_short(a) for a in argv),
        }
    )
    return result


def importtime(
    argv_after_python: Sequence[str],
    cwd: Path = ROOT,
    top: int = 15,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`python -X importtime ...`: the costliest imports (cumulative and self, microseconds)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv_after_python],
        cwd=cwd,
        env=child_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    rows: list[dict[str, Any]] = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append(
                {
                    "module": m.group(4),
                    "self_us": int(m.group(1)),
                    "cumulative_us": int(m.group(2)),
                    "depth": len(m.group(3)) // 2,
                }
            )
    total = sum(r["self_us"] for r in rows)
    top_level = sorted((r for r in rows if r["depth"] == 0), key=lambda r: -r["cumulative_us"])
    by_self = sorted(rows, key=lambda r: -r["self_us"])
    # The first project module that pulls a heavy library in (depth-0 rows name what main()
    # imported directly; nested rows show who imported what).
    return {
        "tool": "python -X importtime",
        "command": "python -X importtime " + " ".join(argv_after_python),
        "modules": len(rows),
        "total_import_us": total,
        "top_level": top_level[:top],
        "top_self": by_self[:top],
        "project_modules": [r for r in rows if r["module"].startswith(("engine", "policy"))],
        "chains": _chains(
            rows, ("pydantic", "docker", "requests", "cerberus", "loguru", "urllib3")
        ),
    }


def _chains(rows: list[dict[str, Any]], heavy: Sequence[str]) -> list[dict[str, Any]]:
    """For each heavy library imported: which module imported it first (its parent row)."""
    out = []
    # importtime prints a module after its children; a row's parent is the next row with a
    # smaller depth.
    for i, row in enumerate(rows):
        if row["module"] in heavy:
            parent = next(
                (r["module"] for r in rows[i + 1 :] if r["depth"] < row["depth"]),
                "the command itself (top level)",
            )
            out.append(
                {
                    "library": row["module"],
                    "imported_by": parent,
                    "cumulative_us": row["cumulative_us"],
                }
            )
    return out
