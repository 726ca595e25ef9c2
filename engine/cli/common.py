"""What the command modules share: the parser class, common options, loading the policy,
building a launch, writing output. Nothing here prints except `print_diagnostics`."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from policy.diagnostics import Diagnostic, Severity
from policy.errors import UsageError

if TYPE_CHECKING:
    from engine.launcher.spec import LaunchSpec
    from policy.cache import Cache
    from policy.loader import Policy

OK, FINDINGS, USAGE = 0, 1, 2
Subparsers = Any  # argparse's _SubParsersAction, which argparse does not export


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 through our own path with a one-line hint."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `{self.prog} --help`)")


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def add_command(sub: Subparsers, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, formatter_class=formatter, **kwargs)
    return parser


def add_cache_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="load and validate the policy afresh, without reading or writing the cache "
        "($POLICY_CACHE_DIR, else ~/.cache/container-policy; exact: any change to a file the "
        "policy reads is seen)",
    )


def policy_cache(args: argparse.Namespace) -> Cache | None:
    """The cache of validated policies, unless `--no-cache`."""
    if getattr(args, "no_cache", False):
        return None
    from engine.version import VERSION
    from policy.cache import Cache, default_directory

    return Cache(default_directory(), VERSION)


def add_policy_args(parser: argparse.ArgumentParser) -> None:
    add_cache_arg(parser)
    parser.add_argument(
        "--policies",
        "-p",
        type=Path,
        default=Path("policies"),
        metavar="DIR",
        help="policy directory or file (default: ./policies)",
    )
    parser.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="directory relative mount sources resolve against "
        "(default: the parent of the policy directory)",
    )


def add_log_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--record",
        type=Path,
        metavar="FILE",
        help="launch record (JSON lines; default $POLICY_RECORD or "
        "~/.local/state/container-policy/launches.jsonl)",
    )
    parser.add_argument(
        "--history",
        type=Path,
        metavar="FILE",
        help="launch history with usage, violations and test cases (SQLite; default "
        "$POLICY_HISTORY or ~/.local/state/container-policy/history.sqlite)",
    )
    parser.add_argument("--log-json", action="store_true", help="logs on stderr as JSON lines")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logs")


def add_swarm_node_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--swarm-node",
        action="append",
        default=[],
        metavar="URL",
        help="the engine of a swarm node (unix://PATH), to check its tasks there; repeat for "
        "each node (also: POLICY_SWARM_NODES, space-separated); the manager's is known",
    )


def configure_logs(args: argparse.Namespace) -> None:
    """Logs on stderr as asked, the launch record in `--record` and the history in `--history`
    (or their defaults)."""
    from engine import history
    from engine.history import jsonl, sqlite
    from engine.logs import configure

    configure(args.verbose, args.log_json)
    history.reset()
    history.use(jsonl.JsonLinesStore(args.record or jsonl.default_path()))
    history.use(
        sqlite.SqliteStore(
            getattr(args, "history", None) or sqlite.default_path(),
            sample_days=sqlite.default_sample_days(),
        )
    )


HOST_SCHEMES = ("unix://", "tcp://", "ssh://", "http://", "https://")


def host_url(text: str) -> str:
    """`--host URL`: an engine URL as DOCKER_HOST takes it (`unix:///run/podman/podman.sock`,
    `tcp://HOST:PORT`, `ssh://USER@HOST`); anything else is a usage error, not a connection
    attempt to somewhere unexpected."""
    if not text.startswith(HOST_SCHEMES) or len(text) == len(text.partition("://")[0]) + 3:
        raise argparse.ArgumentTypeError(
            f"expected an engine URL such as unix:///var/run/docker.sock, "
            f"unix:///run/podman/podman.sock or tcp://HOST:2376, got {text!r}"
        )
    if text.startswith("unix://") and not text.startswith("unix:///"):
        raise argparse.ArgumentTypeError(f"a unix socket URL needs an absolute path: {text!r}")
    if any(c in text for c in "\0\n\r"):
        raise argparse.ArgumentTypeError("an engine URL may not contain control characters")
    return text


def add_host_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        type=host_url,
        metavar="URL",
        help="the engine: Docker or Podman's service, detected from the engine itself "
        "(default: DOCKER_HOST, else unix:///var/run/docker.sock)",
    )


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be between 1 and 256, got {value}")
    return value


def print_diagnostics(diagnostics: Sequence[Diagnostic], stream: TextIO | None = None) -> None:
    out = stream or sys.stdout
    for d in diagnostics:
        tag = "" if d.severity is Severity.ERROR else " (warning)"
        print(f"{d}{tag}", file=out)


def load(args: argparse.Namespace, require_valid: bool = True) -> Policy:
    """The policy of `--policies`: it must load and (by default) validate (`UnusablePolicy`)."""
    from policy.vetted import load_vetted

    return load_vetted([args.policies], args.project, require_valid, policy_cache(args))


def checked_image(image: str | None) -> str | None:
    from policy.model import checked_image

    return None if image is None else checked_image(image, "--image")


def launch_spec(args: argparse.Namespace) -> LaunchSpec:
    """What `policy run`/`shell` launch: the validated policy's profile, `--image`, the command."""
    from engine.launcher.spec import LaunchSpec

    policy = load(args)
    profile = policy.profile(args.profile)
    return LaunchSpec(
        profile=profile,
        project=policy.project,
        policy_file=policy.declared[profile.name].source.display,
        digest=policy.digest(profile.name),
        command=tuple(args.cmd),
        image=checked_image(args.image),
    )


def write_output(path: Path | None, text: str) -> None:
    """Stdout, or `path` written atomically: a failed run never leaves half a report."""
    if path is None:
        print(text)
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)
        raise UsageError(f"--output {path}: {exc.strerror or exc}") from None


def check_output_dir(path: Path | None) -> None:
    """Before any work: an `--output` whose directory is missing is refused at once."""
    if path is not None and not path.parent.is_dir():
        raise UsageError(f"--output {path}: directory {path.parent} does not exist")
