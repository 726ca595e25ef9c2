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


def is_reserved(key: str) -> bool:
    return key.lower().startswith(LABEL_NAMESPACE)


def user_labels(labels: dict[str, str] | None) -> dict[str, str]:
    return {k: v for k, v in (labels or {}).items() if not is_reserved(k)}
