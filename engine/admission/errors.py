"""The admission plugin's errors: a request it cannot judge is refused with the error's message."""

from __future__ import annotations

from policy.errors import Error


class AdmissionError(Error):
    """Base of the plugin's errors; the message is what the refused user reads."""


class UnreadableRequest(AdmissionError):
    """The engine sent a request, or a body, that the plugin cannot read exactly as the engine
    would: refused (fail closed), never guessed at."""
