"""Mount sources: relative ones resolve against the project directory and must stay inside it.

The project directory is the parent of the policy directory by default, or `--project DIR`. A
source is kept in its normalised spelling (`./src/` is `src`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from pathlib import Path

from policy import observed
from policy.diagnostics import Diagnostic, Location


def check_source(
    source: str,
    project: Path,
    where: Callable[[], Location],
    profile: str,
    problems: list[Diagnostic],
) -> str:
    """The canonical source; relative sources must stay inside the project, symlinks included.

    `where` is called only for a message: locating a key scans its file, which a valid policy
    never pays for.
    """
    if os.path.isabs(source):
        return posixpath.normpath(source)
    normal = posixpath.normpath(source)
    if normal == ".." or normal.startswith("../"):
        problems.append(
            Diagnostic(
                where(),
                "mount-escape",
                f"mount source {source!r} leaves the project directory "
                f"{project}; use an absolute path if that is intended",
                profile=profile,
            )
        )
        return normal
    observed.path_resolved(project / normal)
    try:
        resolved = (project / normal).resolve()
    except (RuntimeError, OSError) as exc:  # a symlink loop (RuntimeError in Python 3.11)
        problems.append(
            Diagnostic(
                where(),
                "mount-escape",
                f"mount source {source!r} cannot be resolved: {exc}",
                profile=profile,
            )
        )
        return normal
    if resolved != project and project not in resolved.parents:
        problems.append(
            Diagnostic(
                where(),
                "mount-escape",
                f"mount source {source!r} resolves through a symlink to "
                f"{resolved}, outside the project directory {project}",
                profile=profile,
            )
        )
    return normal


def resolve_source(project: Path, source: str) -> Path:
    """The host path a canonical mount source names."""
    return Path(source) if os.path.isabs(source) else project / source
