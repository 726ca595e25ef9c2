"""The policy language: models, loading, inheritance, security rules, guardrails and waivers.

Pure: this package never imports docker and never touches the network, so a reviewer or a CI job
without a container engine can validate policies with it alone.
"""

from policy.canonical import canonical_document, digest
from policy.diagnostics import Diagnostic, Location, Severity
from policy.errors import Error, PolicyError, UsageError
from policy.loader import Policy, load_policy
from policy.model import Profile
from policy.validate import validate

__all__ = [
    "Diagnostic",
    "Error",
    "Location",
    "Policy",
    "PolicyError",
    "Profile",
    "Severity",
    "UsageError",
    "canonical_document",
    "digest",
    "load_policy",
    "validate",
]
