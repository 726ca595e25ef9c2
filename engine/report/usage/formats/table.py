"""The usage report for a terminal: one table per ranking, the trends, the right-size hints."""

from __future__ import annotations

from collections.abc import Sequence

from engine.report.usage.formats.base import (
    RANKINGS,
    change,
    offender_value,
    share,
    size,
    trend_values,
)
from engine.report.usage.model import Offender, UsageReport
from policy.diagnostics import printable


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Aligned columns, the last one left as it is (a command or test name)."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    return [
        "  "
        + "  ".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True))
        + "  "
        + r[-1]
        for r in [header, *rows]
    ]


def _name(o: Offender) -> str:
    return printable(o.subject.name)


class TableFormat:
    """See `Formatter.render`."""

    needs_plots = False

    def render(self, report: UsageReport) -> str:
        scope = f"profile {printable(report.profile)}" if report.profile else "all profiles"
        out = [
            f"usage report: {report.history}",
            f"  {report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC, {scope}, "
            f"{report.launches} launch(es)",
        ]
        for key, title in RANKINGS:
            ranking: tuple[Offender, ...] = getattr(report, key)
            out += ["", title]
            if not ranking:
                out.append("  none in the window")
                continue
            rows: list[tuple[str, ...]] = [
                (printable(o.subject.profile), o.subject.kind, str(o.runs), offender_value(key, o),
                 o.detail or "-", _name(o))
                for o in ranking
            ]  # fmt: skip
            out += _table(("PROFILE", "KIND", "RUNS", "VALUE", "DETAIL", "NAME"), rows)
        out += ["", "Last run against the window's median (flagged above +20%)"]
        if report.trends:
            rows = [
                (t.subject.profile, t.subject.kind, t.figure, *trend_values(t), change(t),
                 "FLAG" if t.flagged else "-", printable(t.subject.name))
                for t in report.trends
            ]  # fmt: skip
            out += _table(
                ("PROFILE", "KIND", "FIGURE", "LAST", "MEDIAN", "CHANGE", "FLAG", "NAME"), rows
            )
        else:
            out.append("  none: no subject ran twice in the window")
        out += ["", "Right size: p99 memory peak x 1.25 against the declared limit"]
        if report.right_size:
            rows = [
                (r.profile, str(r.runs), size(r.p99_peak), size(r.suggested), size(r.declared),
                 share(r.suggested / r.declared) if r.declared else "-", r.verdict)
                for r in report.right_size
            ]  # fmt: skip
            out += _table(
                ("PROFILE", "RUNS", "P99 PEAK", "SUGGESTED", "DECLARED", "OF LIMIT", "VERDICT"),
                rows,
            )
        else:
            out.append("  none: no memory peak measured in the window")
        return "\n".join(out)
