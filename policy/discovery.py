"""Finding a policy's files: the TOML files named on the command line or found below directories.

Also the default project directory, which relative mount sources resolve against: the parent of
the policy directory (for `policies/`, the directory that holds it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from policy import observed
from policy.diagnostics import Diagnostic, Location
from policy.source import display_path

MAX_DIRECTORY_DEPTH = 32


def policy_files(paths: Sequence[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """The TOML files named by `paths` (directories are searched recursively, sorted)."""
    files: list[Path] = []
    problems: list[Diagnostic] = []
    for path in paths:
        observed.path_kind(path)
        if path.is_dir():
            before = len(problems)
            found = _toml_files(path, problems)
            if not found and len(problems) == before:
                problems.append(
                    Diagnostic(
                        Location(display_path(path)),
                        "no-policy",
                        "no .toml policy files in this directory",
                    )
                )
            files.extend(found)
        elif path.exists() or path.is_symlink():
            files.append(path)
        else:
            problems.append(
                Diagnostic(Location(display_path(path)), "not-found", "no such file or directory")
            )
    return list(dict.fromkeys(files)), problems


def _toml_files(root: Path, problems: list[Diagnostic]) -> list[Path]:
    """`*.toml` under `root`, sorted; iterative, depth-capped, not following directory symlinks
    (so neither a deep tree nor a symlink loop can exhaust the stack or run forever)."""
    found: list[Path] = []
    stack = [(root, 0)]
    while stack:
        directory, depth = stack.pop()
        observed.directory_listed(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            problems.append(
                Diagnostic(
                    Location(display_path(directory)), "unreadable", exc.strerror or str(exc)
                )
            )
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False) and entry.name.endswith(".toml"):
                # Named like a policy file: almost certainly a mistake, so say so.
                problems.append(
                    Diagnostic(
                        Location(display_path(Path(entry.path))),
                        "not-a-file",
                        "is a directory, expected a TOML file",
                    )
                )
            elif entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DIRECTORY_DEPTH:
                    problems.append(
                        Diagnostic(
                            Location(display_path(Path(entry.path))),
                            "too-deep",
                            f"policy directories may be at most {MAX_DIRECTORY_DEPTH} levels deep",
                        )
                    )
                else:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.name.endswith(".toml"):
                found.append(Path(entry.path))
    return sorted(found)


def default_project(paths: Sequence[Path]) -> Path:
    """The project directory: the parent of the (first) policy directory."""
    first = paths[0] if paths else Path("policies")
    observed.path_kind(first)
    base = first if first.is_dir() else first.parent
    observed.path_resolved(base)
    return base.resolve().parent
