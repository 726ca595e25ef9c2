"""The project's version, defined once. pyproject.toml reads it from here (setuptools'
`dynamic` version, read statically without importing), so the installed package's metadata and
`policy --version` cannot disagree, and printing it costs no `importlib.metadata` (25 ms)."""

from __future__ import annotations

VERSION = "0.1.0"


def version() -> str:
    return VERSION
