"""The project's one root error and its per-area subclasses.

The CLI catches `Error` once and maps it to an exit code; everything below it raises one of
these with a message written for the user, never a bare builtin exception.
"""

from __future__ import annotations

from collections.abc import Iterable

from policy.diagnostics import Diagnostic


class Error(Exception):
    """Root of every error this project raises on purpose; `str()` is the user-facing message."""

    exit_code = 2

    def __init__(self, message: str, diagnostics: Iterable[Diagnostic] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = tuple(diagnostics)


class PolicyError(Error):
    """The policy could not be loaded: syntax, schema, inheritance or file errors.

    Carries every diagnostic of every file, so the user fixes them all in one go.
    """

    exit_code = 1


class UnusablePolicy(PolicyError):
    """The policy does not load or does not validate, so nothing is launched, rendered or
    audited with it. The same error, and the same exit code 2, from the CLI and the API."""

    exit_code = 2


class UsageError(Error):
    """A command-line argument is wrong (unknown profile, bad option value)."""


class EngineError(Error):
    """The container engine refused, failed or could not be reached."""
