"""The `policy` command line: `main(argv)` and one module per command group, each command's
parser beside its handler. The CLI only wires: it parses, calls `policy`/`engine`, prints and
picks exit codes.

Exit codes: 0 ok, 1 findings (the policy or a container breaks a rule), 2 usage or engine error.
Results go to stdout, progress and summaries to stderr. The one `except Error` is in `main`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

__all__ = ["build_parser", "main"]


def main(argv: list[str] | None = None) -> int:
    """`policy ARGV...`: its exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments == ["--version"]:
        # The one command with nothing to parse: not worth importing the parsers for. It ends
        # as argparse's `--version` does (SystemExit 0), whichever way it is spelled.
        from engine.version import version

        print(f"policy {version()}")
        raise SystemExit(0)
    from engine.cli.app import main as run

    return run(arguments)


def build_parser() -> argparse.ArgumentParser:
    from engine.cli.app import build_parser as build

    return build()
