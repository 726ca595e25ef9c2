"""The policy language: models, loading, inheritance, security rules, guardrails and waivers.

Pure: this package never imports docker and never touches the network, so a reviewer or a CI job
without a container engine can validate policies with it alone. Names are imported lazily so that
`import policy.diagnostics` (which the CLI needs at start-up) does not load pydantic.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "canonical_document": "policy.canonical",
    "digest": "policy.canonical",
    "Diagnostic": "policy.diagnostics",
    "Location": "policy.diagnostics",
    "Severity": "policy.diagnostics",
    "Error": "policy.errors",
    "PolicyError": "policy.errors",
    "UsageError": "policy.errors",
    "Policy": "policy.loader",
    "load_policy": "policy.loader",
    "Profile": "policy.model",
    "validate": "policy.validate",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policy' has no attribute {name!r}")
