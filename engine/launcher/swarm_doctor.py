"""`policy doctor --swarm`: the nodes, their engines, and what each can enforce of each profile.

Read-only: it creates nothing. For every node: its role, state and availability, its engine's
version and API version (asked of the node's own engine where the tool can reach it), whether it
reports the default seccomp profile; for every profile: what the Swarm renderer spells, what it
leaves to the nodes or the launcher, and what it refuses, by name (the same refusal
`policy run --swarm` gives before it creates anything).
"""

from __future__ import annotations

from engine.backends.interface import Engine
from engine.backends.swarm import NodeDoc, SwarmEngine
from engine.render import swarm as S
from engine.render.interface import Unexpressible
from engine.render.walk import walk
from policy.errors import EngineError
from policy.loader import Policy


def _node_lines(node: NodeDoc, engine: Engine | None) -> tuple[list[str], bool]:
    head = (
        f"node {node.description.hostname} {node.id[:12]} ({node.spec.role}, "
        f"{node.status.state}, {node.spec.availability}): engine "
        f"{node.description.engine.engine_version or '?'}"
    )
    if engine is None:
        ok = not node.schedulable  # a node no task can land on needs no check
        return [
            f"{'ok  ' if ok else 'FAIL'}  {head}, not reachable from here",
            *([] if ok else ["      fix: give its socket with --swarm-node unix://PATH"]),
        ], ok
    try:
        version = engine.version()
        options = engine.info().security_options or []
    except EngineError as exc:
        return [f"FAIL  {head}: {exc.message}"], False
    seccomp = any(o.startswith("name=seccomp") and "profile=default" in o for o in options)
    lines = [
        f"{'ok  ' if seccomp else 'FAIL'}  {head}, API {version.api_version}, at {engine.name}",
        f"      seccomp default: {'reported' if seccomp else 'NOT reported'} by docker info",
        "      no-new-privileges: proved per task from /proc (docker info does not show a "
        "daemon-wide setting)",
    ]
    return lines, seccomp


def _missing_images(profile_image: str, nodes: list[tuple[NodeDoc, Engine]]) -> list[str]:
    """The nodes a task may land on that lack the image (they have no registry to pull from)."""
    missing = []
    for node, engine in nodes:
        try:
            engine.inspect_image(profile_image)
        except EngineError:
            missing.append(f"{node.description.hostname} {node.id[:12]}")
    return missing


def _profile_lines(
    policy: Policy, name: str, nodes: list[tuple[NodeDoc, Engine]]
) -> tuple[list[str], bool]:
    profile = policy.profile(name)
    walked = walk(profile, policy.project, "doctor")
    declared = walked.declared
    lines = [f"profile {name}:"]
    spelled = sorted(declared & S.EXPRESSES)
    lines.append(f"      spelled in the service spec: {', '.join(spelled) or '-'}")
    by_node = sorted(declared & set(S.PROVED_BY_NODE))
    if profile.seccomp.mode == "default":
        by_node.append("seccomp (default)")
    lines.append(f"      proved on each node: {', '.join(by_node) or '-'}")
    if "timeout" in declared:
        lines.append("      kept by the launcher: timeout")
    try:
        S.service_spec(walked, "doctor", 1, "doctor")
    except Unexpressible as exc:
        lines[0] = f"FAIL  profile {name}: refused on this swarm"
        lines += [f"      refused: {field}: {why}" for field, why in exc.refused]
        return lines, False
    missing = _missing_images(profile.image, nodes)
    if missing:
        lines[0] = f"FAIL  profile {name}: image {profile.image} missing on {', '.join(missing)}"
        lines.append("      fix: docker save IMAGE | docker -H NODE load, on each of them")
        return lines, False
    lines[0] = f"ok    profile {name}: can run with --swarm"
    return lines, True


def report(
    manager: SwarmEngine, engines: dict[str, Engine], policy: Policy, names: list[str]
) -> tuple[list[str], int]:
    """The doctor's lines and how many checks failed."""
    nodes = manager.nodes()
    lines = [f"swarm manager {manager.name}: {len(nodes)} node(s); services at API {S.API_VERSION}"]
    failed = 0
    for node in sorted(nodes, key=lambda n: (n.spec.role != "manager", n.id)):
        more, ok = _node_lines(node, engines.get(node.id))
        lines += more
        failed += not ok
    reachable = [(n, engines[n.id]) for n in nodes if n.schedulable and n.id in engines]
    for name in names:
        more, ok = _profile_lines(policy, name, reachable)
        lines += more
        failed += not ok
    return lines, failed
