"""The interface every usage report format implements, and the spellings they share."""

from __future__ import annotations

from typing import Protocol

from engine.report.usage.model import Offender, Trend, UsageReport

MIB = float(1 << 20)
GIB = float(1 << 30)


class Formatter(Protocol):
    needs_plots: bool  # whether `queries.build` must gather the plots' data

    def render(self, report: UsageReport) -> str:
        """The whole report as text, ready to print or write to a file."""
        ...


def share(value: float) -> str:
    return f"{value * 100:.0f}%"


def seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 100 else f"{value:.0f}s"


def size(value: float | None) -> str:
    """Bytes as MiB (GiB from 1 GiB on), one or two decimals: peaks are rarely round."""
    if value is None:
        return "-"
    if value >= GIB:
        return f"{value / GIB:.2f} GiB"
    return f"{value / MIB:.1f} MiB"


def offender_value(ranking: str, o: Offender) -> str:
    """How a ranking's value reads: a share, seconds or a count."""
    if ranking in ("memory", "throttling"):
        return share(o.value)
    if ranking == "duration":
        return seconds(o.value)
    return str(int(o.value))


def trend_values(t: Trend) -> tuple[str, str]:
    show = seconds if t.figure == "duration" else size
    return show(t.last), show(t.median)


def change(t: Trend) -> str:
    return f"{(t.ratio - 1) * 100:+.0f}%"


RANKINGS = (
    ("memory", "Memory: peak as a share of the limit (largest run)"),
    ("throttling", "CPU throttling: share of periods throttled (largest run)"),
    ("duration", "Duration p95 (commands and test cases)"),
    ("violations", "Violations (commands) and failures (test cases)"),
)
