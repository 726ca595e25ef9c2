"""What `policy report` says about a window of the history: plain frozen dataclasses, built by
`queries.py` (SQL over the SQLite history) and rendered by each format in `formats/`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from engine.monitor.figures import Sample

FLAG_ABOVE = 1.20  # the last run is flagged when above the window's median by more than 20%
HEADROOM = 1.25  # the right-size hint: the p99 peak times this


@dataclass(frozen=True)
class Subject:
    """What a figure is about: a profile's command (launches) or test case (JUnit)."""

    profile: str
    kind: str  # "command" or "test"
    name: str  # the command as shell words, or "classname.name"


@dataclass(frozen=True)
class Offender:
    """One line of a ranking: the subject, over how many runs, the ranked value."""

    subject: Subject
    runs: int
    value: float  # a share (memory, throttling), seconds (duration p95) or a count (violations)
    detail: str = ""  # e.g. the violations' kinds


@dataclass(frozen=True)
class Trend:
    """The last run of a subject against the window's median (the last run included)."""

    subject: Subject
    figure: str  # "duration" (seconds) or "memory" (bytes of peak)
    runs: int
    last: float
    median: float

    @property
    def ratio(self) -> float:
        return self.last / self.median if self.median else 1.0

    @property
    def flagged(self) -> bool:
        return self.median > 0 and self.last > self.median * FLAG_ABOVE


@dataclass(frozen=True)
class RightSize:
    """A profile's memory limit against what its runs needed: p99 peak x 1.25."""

    profile: str
    runs: int
    p99_peak: float  # bytes
    declared: int | None  # bytes, the limit of the profile's latest run

    @property
    def suggested(self) -> float:
        return self.p99_peak * HEADROOM

    @property
    def verdict(self) -> str:
        if self.declared is None:
            return "no limit declared"
        if self.suggested > self.declared:
            return "raise"
        return "lower" if self.suggested < self.declared * 0.5 else "fits"


@dataclass(frozen=True)
class Timeline:
    """One run's samples against its limits, for the HTML report's first plot."""

    launch_id: str
    subject: Subject
    time: datetime
    memory_limit: int | None
    cpu_quota: float | None
    pids_limit: int | None
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class DayPoint:
    day: str  # YYYY-MM-DD (UTC)
    runs: int
    average: float  # seconds
    longest: float  # seconds


@dataclass(frozen=True)
class DailyTrend:
    """A subject's duration day by day over the window (the HTML report's second plot)."""

    subject: Subject
    days: tuple[DayPoint, ...]


@dataclass(frozen=True)
class Plots:
    """What only the HTML report draws."""

    timeline: Timeline | None
    trend: DailyTrend | None
    headroom: tuple[tuple[float, int], ...]  # (bucket's lower share of the limit, launches)
    bucket: float  # the width of a bucket, as a share


@dataclass(frozen=True)
class UsageReport:
    """Worst offenders, last-run trends and right-size hints over one window."""

    history: str
    since: datetime
    until: datetime
    profile: str | None
    launches: int
    memory: tuple[Offender, ...]  # by peak memory as a share of the limit (the largest run)
    throttling: tuple[Offender, ...]  # by the share of CPU periods throttled (the largest run)
    duration: tuple[Offender, ...]  # by duration p95, commands and test cases
    violations: tuple[Offender, ...]  # by count
    trends: tuple[Trend, ...]  # flagged first
    right_size: tuple[RightSize, ...]
    plots: Plots | None = field(default=None, compare=False)
