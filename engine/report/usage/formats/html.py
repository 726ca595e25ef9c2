"""The usage report as one self-contained HTML page: the tables of the other formats, and
matplotlib's plots as inline SVG (`plots.py`), in the jinja2 template `report.html.j2` (a file
of this package), with its CSS inline. Nothing in the page refers to anything outside it: no
script, no stylesheet, font or image to fetch (tests/engine/test_usage_report.py opens it in
Chromium without a network)."""

from __future__ import annotations

import threading
from importlib import resources
from types import ModuleType
from typing import TYPE_CHECKING, Any

from engine.report.usage.formats import base
from engine.report.usage.model import UsageReport

if TYPE_CHECKING:
    import jinja2

TEMPLATE = "report.html.j2"


class HtmlFormat:
    """See `Formatter.render`. Made, it starts loading matplotlib and jinja2 and compiling the
    template on a thread of its own, so that the half second this takes overlaps the history's
    queries (SQLite lets go of the interpreter while it works); `render` waits for it."""

    needs_plots = True

    def __init__(self) -> None:
        self._loaded: dict[str, Any] = {}
        self._failed: BaseException | None = None
        self._loader = threading.Thread(target=self._load, name="html-report-load", daemon=True)
        self._loader.start()

    def _load(self) -> None:
        try:
            import jinja2
            import markupsafe

            from engine.report.usage.formats import plots

            source = resources.files(__package__).joinpath(TEMPLATE).read_text(encoding="utf-8")
            environment = jinja2.Environment(
                autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
            )
            self._loaded.update(
                template=environment.from_string(source), markupsafe=markupsafe, plots=plots
            )
        except BaseException as exc:  # raised again, on the caller's thread, by `render`
            self._failed = exc

    def render(self, report: UsageReport) -> str:
        self._loader.join()
        if self._failed is not None:
            raise self._failed
        template: jinja2.Template = self._loaded["template"]
        markupsafe: ModuleType = self._loaded["markupsafe"]
        plots: ModuleType = self._loaded["plots"]
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
