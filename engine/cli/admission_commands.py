"""`policy admission serve | install | uninstall`: the engine's authorization plugin and what the
engine needs to use it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import OK, Subparsers, add_command

DEFAULT_NAME = "container-policy"

SERVE_HELP = """\
Serve Docker's authorization plugin protocol on a unix socket. The engine, started with
--authorization-plugin=NAME (or "authorization-plugins" in daemon.json), asks the plugin about
every API request before it acts:

  - POST /containers/create is allowed only if the request carries the reserved labels that
    `policy run` sets (profile and current digest) and its settings are exactly what that
    profile renders to, by the comparison launch verification and `policy audit` use; or, with
    --default-profile, if an unlabelled request is exactly that profile. Refusals name the
    profile and each differing field; the user sees them as "authorization denied by plugin".
  - POST /containers/{id}/update of any limit, a privileged exec, commit, managed plugin
    installs and swarm services are refused; reads (GET, HEAD) and other requests pass.
  - A request or body the plugin cannot read, and any internal error, is a refusal.

The policy is loaded and validated at start (a policy that does not validate: exit 2, nothing
served) and reloaded when its files change; a reload that fails keeps the last good policy and
logs it. Every decision is one JSON line in --log (default: stderr).
"""

INSTALL_HELP = """\
Print (or, with --write, write) what the engine needs to consult the plugin: the daemon.json
"authorization-plugins" key, the equivalent dockerd flag, and the socket the engine looks for.
Idempotent: a daemon.json that already says so is left alone. Start `policy admission serve`
before the engine reloads its configuration: while the plugin is missing, the engine refuses
every request (fail closed).
"""


def register(sub: Subparsers) -> None:
    admission = add_command(
        sub,
        "admission",
        help="authorization plugin: only vetted profiles reach the engine",
        description="Admission control for a Docker engine: an authorization plugin that lets "
        "containers be created only through vetted profiles.",
        epilog="examples:\n  policy admission install --daemon-json /etc/docker/daemon.json\n"
        "  policy admission serve --policies policies/ --mode audit\n"
        "  policy admission uninstall --write",
    )
    commands = admission.add_subparsers(dest="admission_command", metavar="COMMAND")
    serve = add_command(commands, "serve", help="run the plugin", description=SERVE_HELP)
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--socket", type=Path, metavar="PATH", help="socket to serve on")
    where.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help=f"plugin name: serve on /run/docker/plugins/NAME.sock (default {DEFAULT_NAME})",
    )
    serve.add_argument(
        "--policies", "-p", type=Path, default=Path("policies"), metavar="DIR",
        help="policy directory or file (default: ./policies)",
    )  # fmt: skip
    serve.add_argument(
        "--project", type=Path, metavar="DIR",
        help="directory relative mount sources resolve against, as for `policy run` "
        "(default: the parent of the policy directory)",
    )  # fmt: skip
    serve.add_argument(
        "--mode", choices=["enforce", "audit"], default="enforce",
        help="enforce: refuse; audit: allow, but log what would be refused (default enforce)",
    )  # fmt: skip
    serve.add_argument(
        "--default-profile", metavar="PROFILE",
        help="an unlabelled create (a plain `docker run`) is allowed if it is exactly this "
        "profile (default: an unlabelled create is refused)",
    )  # fmt: skip
    serve.add_argument("--log", type=Path, metavar="FILE", help="decision log, JSON lines")
    serve.set_defaults(func=cmd_serve)
    for name, install in (("install", True), ("uninstall", False)):
        command = add_command(
            commands,
            name,
            help=("print or write" if install else "undo") + " the engine's configuration",
            description=INSTALL_HELP if install else "The reverse of `install`, as idempotent.",
        )
        command.add_argument("--name", default=DEFAULT_NAME, help="plugin name")
        command.add_argument(
            "--daemon-json", type=Path, default=Path("/etc/docker/daemon.json"), metavar="PATH",
            help="the engine's configuration file (default /etc/docker/daemon.json)",
        )  # fmt: skip
        command.add_argument("--write", action="store_true", help="write it (default: print)")
        command.set_defaults(func=cmd_install, install=install)
    admission.set_defaults(func=lambda _: _usage(admission))


def _usage(parser: argparse.ArgumentParser) -> int:
    from engine.cli.common import USAGE

    parser.print_help(sys.stderr)
    return USAGE


def cmd_serve(args: argparse.Namespace) -> int:
    from engine.admission.decision import Mode
    from engine.admission.decision_log import DecisionLog
    from engine.admission.policy_holder import PolicyHolder
    from engine.admission.server import AdmissionServer, default_socket

    path = args.socket or default_socket(args.name)
    log = DecisionLog(args.log)
    holder = PolicyHolder([args.policies], args.project, args.default_profile, log.event)
    server = AdmissionServer(path, holder, Mode(args.mode), log)
    holder.watch()
    profiles = len(holder.judge.policy.profiles)
    log.event("serving", f"serving {path} ({args.mode}, {profiles} profile(s))")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass  # SIGINT or SIGTERM: stop serving, remove the socket
    finally:
        holder.stop()
        server.close()
        log.close()
    return OK


def cmd_install(args: argparse.Namespace) -> int:
    from engine.admission.install import KEY, plan, write
    from engine.admission.server import default_socket

    change = plan(args.daemon_json, args.name, args.install)
    print(change.text)
    verb = "lists" if args.install else "does not list"
    if not change.changed:
        print(f"{args.daemon_json}: already {verb} {args.name!r} in {KEY}; nothing to do",
              file=sys.stderr)  # fmt: skip
    elif args.write:
        write(change)
        print(f"{args.daemon_json}: written", file=sys.stderr)
    else:
        print(f"(printed only: --write writes {args.daemon_json})", file=sys.stderr)
    if args.install:
        print(
            f"the engine looks for the plugin at {default_socket(args.name)} (`policy admission "
            f"serve --name {args.name}`); the same as a flag: dockerd "
            f"--authorization-plugin={args.name} (not both: dockerd refuses a key given twice); "
            "start the plugin, then reload the engine (SIGHUP, `systemctl reload docker`)",
            file=sys.stderr,
        )
    return OK
