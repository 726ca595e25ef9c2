"""The history's one error, apart from `interface.py` so that reading the history (`policy
report`) does not import pydantic, which `LaunchRecord` needs."""

from __future__ import annotations

from policy.errors import Error


class HistoryError(Error):
    """A history store cannot be read or written (damaged, locked, of a newer version).
    On the launch path it is reported and the run's own exit code stands (`history.record`)."""
