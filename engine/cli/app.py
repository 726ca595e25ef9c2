"""The command line's parser and its `main`, behind `engine.cli.main` (which answers
`--version` alone without importing this module)."""

from __future__ import annotations

import argparse
import os
import sys

from engine.cli.common import OK, USAGE, Parser, formatter
from policy.errors import Error


class _Version(argparse.Action):
    """`--version`, reading the version only when asked."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from engine.version import version

        print(f"policy {version()}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from engine.cli import (
        admission_commands,
        audit_commands,
        compose_commands,
        launch_commands,
        policy_commands,
        report_commands,
    )

    parser = Parser(
        prog="policy",
        formatter_class=formatter,
        description="Vetted container profiles: validate them, render them, launch tests "
        "through them, audit what runs.",
        epilog="exit codes: 0 ok, 1 findings, 2 usage or engine error\n"
        "example: policy validate policies/ && policy show isolation",
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    policy_commands.register(sub)
    launch_commands.register(sub)
    audit_commands.register(sub)
    admission_commands.register(sub)
    compose_commands.register(sub)
    report_commands.register(sub)
    return parser


_terminated = False


def _on_sigterm(signum: int, frame: object) -> None:
    """SIGTERM ends a run like Ctrl-C does: the container is stopped and removed."""
    global _terminated
    _terminated = True
    raise KeyboardInterrupt


def _split_command(argv: list[str]) -> tuple[list[str], list[str]]:
    # Everything after the first `--` is the container's command, never an option of ours
    # (argparse mishandles `--` after a subcommand's optional arguments).
    if "--" not in argv:
        return argv, []
    split = argv.index("--")
    return argv[:split], argv[split + 1 :]


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    arguments = list(sys.argv[1:] if argv is None else argv)
    # pydantic looks for plugins through importlib.metadata (about 40 ms) when it builds its
    # first validator; this command uses none. A user who sets the variable decides.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    parser = build_parser()
    ours, command = _split_command(arguments)
    args: argparse.Namespace | None = None
    try:
        args = parser.parse_args(ours)
        args.cmd = command
        if not getattr(args, "func", None):
            parser.print_help(sys.stderr)
            return USAGE
        if getattr(args, "swarm_node", None) and not getattr(args, "swarm", False):
            from policy.errors import UsageError

            # Ignored, it would let a user believe the nodes were checked.
            raise UsageError("--swarm-node is for --swarm: a node's engine is read only there")
        code: int = args.func(args)
        return code
    except Error as exc:
        from engine.cli.common import print_diagnostics
        from policy.diagnostics import printable

        # Line by line: some messages are several lines on purpose (a verification report).
        message = "\n".join(printable(line) for line in exc.message.split("\n"))
        print(f"policy: error: {message}", file=sys.stderr)
        print_diagnostics(exc.diagnostics, sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        launched = args is not None and getattr(args, "launches", False)
        print(
            "policy: interrupted" + ("; the container was stopped and removed" if launched else ""),
            file=sys.stderr,
        )
        return 143 if _terminated else 130
    except BrokenPipeError:
        return OK
