"""Admission control for a Docker engine: an authorization plugin that lets a container be
created only as a vetted profile renders it (`policy admission serve`).

`routes` classifies a request, `create_body` reads a create as the audit's canonical settings,
`decision.Judge` decides (the shared `engine.audit.drift.diff`), `policy_holder` keeps the policy
current, `server` speaks the plugin protocol (`protocol`), `decision_log` records every decision,
`install` edits daemon.json.
"""

from engine.admission.decision import Decision, Judge, Mode
from engine.admission.errors import AdmissionError, UnreadableRequest
from engine.admission.protocol import AuthZRequest, parse_request

__all__ = [
    "AdmissionError",
    "AuthZRequest",
    "Decision",
    "Judge",
    "Mode",
    "UnreadableRequest",
    "parse_request",
]
