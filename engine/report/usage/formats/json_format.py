"""The usage report as JSON, schema `container-policy/usage-report/v1` (README, `policy
report`): every figure in its unit (bytes, seconds, shares 0..1), no formatting."""

from __future__ import annotations

import json
from typing import Any

from engine.report.usage.model import Offender, RightSize, Subject, Trend, UsageReport

SCHEMA = "container-policy/usage-report/v1"


def _subject(s: Subject) -> dict[str, str]:
    return {"profile": s.profile, "kind": s.kind, "name": s.name}


def _offender(o: Offender) -> dict[str, Any]:
    return {**_subject(o.subject), "runs": o.runs, "value": o.value, "detail": o.detail or None}


def _trend(t: Trend) -> dict[str, Any]:
    return {
        **_subject(t.subject),
        "figure": t.figure,
        "runs": t.runs,
        "last": t.last,
        "median": t.median,
        "ratio": round(t.ratio, 6),
        "flagged": t.flagged,
    }


def _right_size(r: RightSize) -> dict[str, Any]:
    return {
        "profile": r.profile,
        "runs": r.runs,
        "p99_peak": r.p99_peak,
        "suggested": round(r.suggested),
        "declared": r.declared,
        "verdict": r.verdict,
    }


class JsonFormat:
    """See `Formatter.render`."""

    needs_plots = False

    def render(self, report: UsageReport) -> str:
        document = {
            "schema": SCHEMA,
            "history": report.history,
            "since": report.since.isoformat(),
            "until": report.until.isoformat(),
            "profile": report.profile,
            "launches": report.launches,
            "worst": {
                key: [_offender(o) for o in getattr(report, key)]
                for key in ("memory", "throttling", "duration", "violations")
            },
            "trends": [_trend(t) for t in report.trends],
            "right_size": [_right_size(r) for r in report.right_size],
        }
        return json.dumps(document, indent=2)
