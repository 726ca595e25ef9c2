"""The reserved label namespace every launched container carries.

Policy input can never write under `LABEL_NAMESPACE` (the model refuses it), so a container with
these labels was launched by this engine, or by someone imitating it by hand: the audit compares
the whole container with the labelled profile either way.
"""

from __future__ import annotations

from policy.model import LABEL_NAMESPACE

PROFILE = LABEL_NAMESPACE + "profile"
DIGEST = LABEL_NAMESPACE + "digest"
POLICY = LABEL_NAMESPACE + "policy"
ENGINE_VERSION = LABEL_NAMESPACE + "engine-version"
LAUNCH_ID = LABEL_NAMESPACE + "launch-id"
PROJECT = LABEL_NAMESPACE + "project"
IMAGE = LABEL_NAMESPACE + "image"  # set only when `--image` replaced the profile's image
# Not ours: the engine's label on the container a Swarm task runs (its service removes it).
SWARM_TASK = "com.docker.swarm.task.id"


def is_reserved(key: str) -> bool:
    return key.lower().startswith(LABEL_NAMESPACE)


def user_labels(labels: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if not is_reserved(k)}


def reserved(
    profile: str,
    digest: str,
    policy_file: str,
    *,
    launch_id: str | None = None,
    project: str | None = None,
    image: str | None = None,
) -> dict[str, str]:
    """The reserved labels of a container launched (or rendered) under `profile`."""
    from engine.version import version

    out = {PROFILE: profile, DIGEST: digest, POLICY: policy_file, ENGINE_VERSION: version()}
    if project is not None:
        out[PROJECT] = project
    if launch_id:
        out[LAUNCH_ID] = launch_id
    if image is not None:
        out[IMAGE] = image  # `--image`: the audit expects this image, not the profile's
    return out
