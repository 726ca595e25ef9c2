"""A Swarm task's container, met on its node by a plain `policy audit` (not `--swarm`).

Swarm makes it from its service, so it differs from a `policy run` container of the same
profile in two ways that are not drift: it is on the job's own network (`swarm_network`), and it
has no no-new-privileges of its own (a service cannot ask for it at API 1.41; the node's daemon
applies it). It is held to the profile as a task: the network expected is the job's
(`engine.render.swarm.job_network`, from its launch id), and of swarm scope, so that neither a
local network of that name nor a `com.docker.swarm.task.id` label forged on a container started
by hand passes; with `--deep` its no-new-privileges is proved on its process. The service's own
spec is `policy audit --swarm`'s, on the manager.
"""

from __future__ import annotations

from collections.abc import Callable

from engine import labels as L
from engine.backends.interface import ContainerInspect
from engine.render.settings import Settings
from engine.render.swarm import job_network
from policy.model import Profile

SWARM_LABELS = "com.docker.swarm."  # the engine's own labels on a task's container


def without_swarm_labels(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if not k.startswith(SWARM_LABELS)}


def as_task(
    profile: Profile,
    inspect: ContainerInspect,
    expected: Settings,
    observed: Settings,
    scope: Callable[[str], str] | None,
) -> tuple[Settings, Settings]:
    """The expected and observed settings of a task's container; `scope(network id)` is its
    engine's `network_scope` (None: unknown, and so a network that does not count). A profile
    without `swarm_network` never runs on a swarm (it is refused): such a container is held to
    the profile as any other."""
    if not profile.swarm_network:
        return expected, observed
    launch_id = str(inspect.labels.get(L.LAUNCH_ID, ""))
    expected = {**expected, "network": job_network(launch_id), "no_new_privileges": False}
    names = []
    for name, endpoint in sorted((inspect.network_settings.networks or {}).items()):
        found = scope(str((endpoint or {}).get("NetworkID") or name)) if scope else ""
        names.append(name if found == "swarm" else f"{name} (scope {found or 'unknown'})")
    observed = {
        **observed,
        "network": "+".join(names) or "none",
        "labels": without_swarm_labels(observed["labels"]),
    }
    return expected, observed
