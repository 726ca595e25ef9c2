"""Audit report formats: one module per format, chosen by `Format` (a str enum)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, assert_never

if TYPE_CHECKING:  # the CLI builds its parser from `Format` without loading the formats
    from engine.report.base import Formatter


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"


def formatter(fmt: Format, color: bool = False) -> Formatter:
    """The formatter for `fmt`."""
    if fmt is Format.TABLE:
        from engine.report.table import TableFormat

        return TableFormat(color=color)
    if fmt is Format.JSON:
        from engine.report.json_format import JsonFormat

        return JsonFormat()
    if fmt is Format.SARIF:
        from engine.report.sarif import SarifFormat

        return SarifFormat()
    if fmt is Format.JUNIT:
        from engine.report.junit import JunitFormat

        return JunitFormat()
    assert_never(fmt)


__all__ = ["Format", "formatter"]
