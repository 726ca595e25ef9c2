"""`policy report --since`: a span back from now (`7d`, `12h`, `2w`, `1d12h`, `90m`) or a
moment (`2026-11-25`, `2026-11-25T08:00`, with or without a UTC offset; without one it is UTC).
Anything else, a moment in the future or a span of nothing is a `UsageError` naming the option."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from policy.errors import UsageError

DEFAULT = "7d"
UNITS = {"w": 7 * 86_400, "d": 86_400, "h": 3_600, "m": 60}
_PART = re.compile(r"([0-9]{1,6})([wdhm])", re.ASCII)
MAX_SPAN = 3660 * 86_400  # ten years: older than any history, a typo beyond it


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """The start of the window `text` names (see the module docstring)."""
    now = now or datetime.now(UTC)
    spelled = text.strip().lower()
    parts = _PART.findall(spelled)
    if parts and "".join(n + u for n, u in parts) == spelled:
        seconds = sum(int(n) * UNITS[u] for n, u in parts)
        if not 0 < seconds <= MAX_SPAN:
            raise UsageError(f"--since {text!r}: the span must be more than nothing and at most "
                             "ten years")  # fmt: skip
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a span back from now such as 7d, 12h, 2w or 1d12h, "
            "or a date such as 2026-11-25 (UTC unless an offset is given)"
        ) from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise UsageError(f"--since {text!r}: that is in the future ({now:%Y-%m-%d %H:%M} UTC now)")
    return moment
