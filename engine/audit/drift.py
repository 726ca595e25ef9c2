"""The field-by-field comparison of expected settings with observed settings.

`diff` is the one comparison behind launch verification (`policy run` refuses to start a
container with any difference) and the audit's drift findings. Expected settings are rendered
from the profile (`engine.render.settings`), observed ones read off the container
(`engine.audit.observe`); both have the same keys and canonical values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.render.settings import Settings


@dataclass(frozen=True)
class Drift:
    """One setting that differs: what the profile declares and what the container has."""

    field: str
    expected: Any
    actual: Any


def diff(expected: Settings, actual: Settings) -> list[Drift]:
    """Every field whose values differ, in a stable order."""
    return [
        Drift(key, expected[key], actual.get(key))
        for key in expected
        if expected[key] != actual.get(key)
    ]
