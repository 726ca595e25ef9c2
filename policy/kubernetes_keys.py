"""The `kubernetes` table of a profile (issue 15): what a profile accepts on a Kubernetes cluster
in place of what a cluster cannot express, and the Pod Security Standards level it claims.

Kept beside `policy.model` rather than in it: `KubernetesInput` is what a file may write (a key
of `ProfileInput`), `Kubernetes` the effective table (a field of `Profile`). Only the Kubernetes
renderer reads it; it is digested when present (`policy.canonical`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("bad-value", message)


def _no_invisible(value: str) -> None:
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise _fail(
            f"seccomp_localhost may not contain control or invisible characters "
            f"(found U+{ord(bad):04X})"
        )


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, defer_build=True)


def _localhost_profile(value: str) -> str:
    # Relative to the kubelet's seccomp directory: a path that leaves it names another file.
    _no_invisible(value)
    if value.startswith("/") or any(part in ("", "..") for part in value.split("/")):
        raise _fail(
            f"a path relative to the kubelet's seccomp directory, without '..', got {value!r}"
        )
    return value


_DNS_LABEL_RE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", re.ASCII)


def _dns_label(value: str) -> str:
    if not _DNS_LABEL_RE.fullmatch(value):
        raise _fail(f"a Kubernetes name (lowercase letters, digits, '-'), got {value!r}")
    return value


PssLevel = Literal["restricted", "baseline", "privileged"]


class KubernetesInput(_Input):
    """`kubernetes = { ... }`: what a profile accepts in place of what Kubernetes cannot express,
    and the Pod Security Standards level it claims (partial; see `Kubernetes`)."""

    level: PssLevel | None = None
    source: Literal["image"] | None = None
    results: Literal["empty-dir"] | None = None
    network: Literal["deny-all-networkpolicy"] | None = None
    pids_limit: Literal["node"] | None = None
    tmpfs: Literal["size-only"] | None = None
    seccomp_localhost: Annotated[str, Field(min_length=1, max_length=255),
                                 AfterValidator(_localhost_profile)] | None = None  # fmt: skip
    namespace: Annotated[str, AfterValidator(_dns_label)] | None = None


class Kubernetes(BaseModel):
    """A profile's Kubernetes declarations (`engine.render.kubernetes`); each None means the
    setting it stands in for is refused there. Digested: they change what runs on a cluster."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    level: str | None = None  # the Pod Security Standards level the rendered Job must meet
    source: str | None = None  # "image": read-only bind mounts are baked into the image
    results: str | None = None  # "empty-dir": writable bind mounts become emptyDir volumes
    network: str | None = None  # "deny-all-networkpolicy": network "none" as a NetworkPolicy
    pids_limit: str | None = None  # "node": the kubelet's per-pod limit stands in
    tmpfs: str | None = None  # "size-only": tmpfs mode and options are given up
    seccomp_localhost: str | None = None  # a custom seccomp profile's path on the nodes
    namespace: str | None = None


class KubernetesInputField(_Input):
    """The `kubernetes` key as a profile (or `[defaults]`) writes it: a base of `ProfileInput`."""

    kubernetes: KubernetesInput | None = None


class KubernetesField(BaseModel):
    """The effective table, a base of `Profile`; None (no table) leaves every digest as it was."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    kubernetes: Kubernetes | None = None
