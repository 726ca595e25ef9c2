"""The project's version, defined once: `version` in pyproject.toml, read from the installed
package's metadata (or from pyproject.toml itself when running from a source tree)."""

from __future__ import annotations

import functools
from pathlib import Path

DISTRIBUTION = "container-policy"


@functools.cache
def version() -> str:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        import tomllib

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        with pyproject.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
