"""The usage report's formats: one module per format, chosen by `Format` (a str enum), each a
`base.Formatter`. The HTML format's libraries are imported by `formatter(Format.HTML)` only."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, assert_never

if TYPE_CHECKING:  # the CLI builds its parser from `Format` without loading the formats
    from engine.report.usage.formats.base import Formatter


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    HTML = "html"


def formatter(fmt: Format) -> Formatter:
    """The formatter for `fmt`."""
    if fmt is Format.TABLE:
        from engine.report.usage.formats.table import TableFormat

        return TableFormat()
    if fmt is Format.JSON:
        from engine.report.usage.formats.json_format import JsonFormat

        return JsonFormat()
    if fmt is Format.HTML:
        from engine.report.usage.formats.html import HtmlFormat

        return HtmlFormat()
    assert_never(fmt)


__all__ = ["Format", "formatter"]
