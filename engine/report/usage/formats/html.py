"""The usage report as one self-contained HTML page: the tables of the other formats, and
matplotlib's plots as inline SVG (`plots.py`), in the jinja2 template `report.html.j2` (a file
of this package), with its CSS inline. Nothing in the page refers to anything outside it: no
script, no stylesheet, font or image to fetch (tests/engine/test_usage_report.py opens it in
Chromium without a network)."""

from __future__ import annotations

from importlib import resources

from engine.report.usage.formats import base
from engine.report.usage.model import UsageReport

TEMPLATE = "report.html.j2"


class HtmlFormat:
    """See `Formatter.render`."""

    needs_plots = True

    def render(self, report: UsageReport) -> str:
        import jinja2
        import markupsafe

        from engine.report.usage.formats import plots

        source = resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")
        environment = jinja2.Environment(
            autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
        )
        template = environment.from_string(source)
        figures = report.plots
        svg: dict[str, str | None] = {"timeline": None, "trend": None, "headroom": None}
        if figures is not None:
            if figures.timeline is not None and figures.timeline.samples:
                svg["timeline"] = plots.timeline(figures.timeline)
            if figures.trend is not None and figures.trend.days:
                svg["trend"] = plots.trend(figures.trend)
            if figures.headroom:
                svg["headroom"] = plots.headroom(figures.headroom, figures.bucket)
        return template.render(
            report=report,
            plots=figures,
            svg={k: None if v is None else markupsafe.Markup(v) for k, v in svg.items()},
            rankings=base.RANKINGS,
            fmt=base,
        )
