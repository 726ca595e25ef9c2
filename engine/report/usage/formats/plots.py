"""The HTML report's plots, drawn by matplotlib straight to SVG text: its object API and SVG
canvas only (no pyplot, no global backend, no Agg), fonts left to the browser (`svg.fonttype`
none) so the labels are text in the page, and no metadata, so the same report is the same
bytes.

Imported by the HTML format alone (never by `policy run`: tests/test_imports.py).
"""

from __future__ import annotations

import io
import itertools
import re
from typing import Any

from matplotlib import rc_context
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from engine.report.usage.model import DailyTrend, Timeline

MIB = float(1 << 20)
_PROLOG = re.compile(r"^.*?(?=<svg)", re.DOTALL)  # the XML declaration and DOCTYPE
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
STYLE: Any = {  # matplotlib types rc keys as literals; these are checked when used
    "svg.fonttype": "none",
    "svg.hashsalt": "container-policy",
    "font.family": "sans-serif",
    "font.size": 9.0,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.formatter.useoffset": False,
}
LIMIT: dict[str, Any] = {"color": "#c0392b", "linestyle": "--", "linewidth": 1.2}
# Fixed margins, in inches, for the fixed sizes below: room for the 9-point tick labels, axis
# labels and titles. (matplotlib's constrained layout measures every text's extent instead,
# which was more than half of the drawing time.)
LEFT, RIGHT, TOP, BOTTOM = 0.75, 0.15, 0.35, 0.55


def _figure(width: float, height: float, *, bottom: float = BOTTOM, rows: int = 1) -> Figure:
    figure = Figure(figsize=(width, height))
    figure.subplots_adjust(
        left=LEFT / width,
        right=1 - RIGHT / width,
        top=1 - TOP / height,
        bottom=bottom / height,
        hspace=0.45 if rows > 1 else 0.0,
    )
    return figure


def _svg(figure: Figure) -> str:
    """The figure as an inline <svg> element (no prolog, no metadata)."""
    out = io.StringIO()
    FigureCanvasSVG(figure).print_svg(  # type: ignore[no-untyped-call]
        out, metadata={"Date": None, "Creator": None}
    )
    text = _METADATA.sub("", _PROLOG.sub("", out.getvalue(), count=1))
    return text.replace("<svg ", '<svg role="img" ', 1)


def timeline(t: Timeline) -> str:
    """Memory and working set against the limit, CPU against the quota, tasks against the
    pids limit, over the run's seconds."""
    with rc_context(STYLE):
        figure = _figure(8.0, 6.0, rows=3)
        memory, cpu, tasks = figure.subplots(3, 1, sharex=True)
        xs = [s.t for s in t.samples]
        for label, values in (
            ("memory", [s.memory_bytes for s in t.samples]),
            ("working set", [s.working_set_bytes for s in t.samples]),
        ):
            memory.plot(xs, [None if v is None else v / MIB for v in values], label=label)
        if t.memory_limit:
            memory.axhline(t.memory_limit / MIB, label="limit", **LIMIT)
        memory.set_ylabel("MiB")
        memory.set_title("memory")
        memory.legend(loc="upper left")
        rates = [
            (b.t, (b.cpu_seconds - a.cpu_seconds) / (b.t - a.t))
            for a, b in itertools.pairwise(s for s in t.samples if s.cpu_seconds is not None)
            if b.t > a.t and a.cpu_seconds is not None and b.cpu_seconds is not None
        ]
        cpu.plot([r[0] for r in rates], [r[1] for r in rates], label="cores used")
        if t.cpu_quota:
            cpu.axhline(t.cpu_quota, label="quota", **LIMIT)
        cpu.set_ylabel("cores")
        cpu.set_title("CPU")
        cpu.legend(loc="upper left")
        tasks.plot(xs, [s.tasks for s in t.samples], label="tasks", drawstyle="steps-post")
        if t.pids_limit:
            tasks.axhline(t.pids_limit, label="pids limit", **LIMIT)
        tasks.set_ylabel("tasks")
        tasks.set_title("tasks")
        tasks.set_xlabel("seconds since start")
        tasks.legend(loc="upper left")
        return _svg(figure)


def trend(d: DailyTrend) -> str:
    """A subject's duration day by day: the average and the longest run."""
    with rc_context(STYLE):
        figure = _figure(8.0, 3.0, bottom=0.9)  # the dates are written at 45 degrees
        axes = figure.subplots()
        days = [p.day for p in d.days]
        axes.plot(days, [p.average for p in d.days], marker="o", label="average")
        axes.plot(days, [p.longest for p in d.days], marker=".", linestyle=":", label="longest")
        axes.set_ylabel("seconds")
        axes.set_title("duration by day")
        axes.legend(loc="upper left")
        axes.tick_params(axis="x", labelrotation=45)
        return _svg(figure)


def headroom(buckets: tuple[tuple[float, int], ...], width: float) -> str:
    """How many launches peaked at each share of their memory limit."""
    with rc_context(STYLE):
        figure = _figure(8.0, 3.0)
        axes = figure.subplots()
        axes.bar(
            [low * 100 for low, _ in buckets],
            [count for _, count in buckets],
            width=width * 100,
            align="edge",
            edgecolor="white",
        )
        axes.axvline(100, label="the limit", **LIMIT)
        axes.set_xlabel("memory peak, % of the limit")
        axes.set_ylabel("launches")
        axes.set_title("headroom across launches")
        axes.legend(loc="upper right")
        return _svg(figure)
