"""The sections of docs/benchmarks.md for issue 11: what monitoring costs a run
(`bench/monitor.py`) and what `policy report` costs over 100,000 launches
(`bench/usage_report.py`). Called by `bench.report.render`."""

from __future__ import annotations

from typing import Any


def _t(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def _met(tg: dict[str, Any] | None) -> str:
    if not tg or tg.get("met") is None:
        return "not measured"
    return "**met**" if tg["met"] else "**not met**"


def _missing(name: str) -> list[str]:
    return [f"_Not measured in this run (`python bench/run.py --only {name}`)._", ""]


def monitor_section(r: dict[str, Any], meta: str) -> list[str]:
    data = r.get("monitor")
    lines = ["## Monitoring (issue 11)", ""]
    if not data or "wall_ratio" not in data:
        return [*lines, *_missing("monitor")]
    ratio, share = data["wall_ratio"], data["sampling_core_share"]
    one = data.get("one_sample") or {}
    cpu, wall = one.get("cpu_ms") or {}, one.get("wall_ms") or {}
    return [
        *lines,
        meta,
        "",
        f"A monitored `policy run isolation` of a {data['seconds']:g}-second CPU-bound test "
        "against the same run with `--no-monitor`, in alternating pairs "
        f"({data['rounds']} rounds, `bench/monitor.py`); the sampler's own CPU time is the "
        "summary's `sampling N ms CPU` (`Usage.sampling_cpu_seconds`).",
        "",
        "| what | figure | target | |",
        "|---|---|---|---|",
        f"| wall, monitored / `--no-monitor` (median of pairs) | {ratio['value']}x "
        f"({_t(data['monitored_wall']['median'])} vs {_t(data['unmonitored_wall']['median'])}) "
        f"| <= {ratio['limit']}x | {_met(ratio)} |",
        f"| sampling CPU, share of one core | {share['value'] * 100:.2f}% "
        f"({data['sampling_cpu_seconds']['median'] * 1000:.1f} ms over the run) "
        f"| <= {share['limit'] * 100:g}% | {_met(share)} |",
        f"| one sample (`CgroupReader.sample`, cgroup v{one.get('cgroup_version', '?')}, "
        f"{cpu.get('n', '?')} times) | {cpu.get('median', '?')} ms CPU, "
        f"{wall.get('median', '?')} ms wall | - | - |",
        f"| the kernel's counters at the end (once) | {one.get('final_counters_cpu_ms', '?')} "
        "ms CPU | - | - |",
        "",
    ]


VARIANTS = {
    "table": "`policy report` (table, 7 days: every launch)",
    "json": "`policy report --format json`",
    "html": "`policy report --format html --output FILE` (matplotlib plots)",
    "load_all": "baseline: every usage summary loaded into Python (`SqliteStore.usages`)",
}


def usage_report_section(r: dict[str, Any], meta: str) -> list[str]:
    data = r.get("usage_report")
    lines = ["## `policy report` over 100,000 launches (issue 11)", ""]
    if not data or "walls" not in data:
        return [*lines, *_missing("usage_report")]
    cpus = data.get("cpus", {})
    rows = [
        f"| {VARIANTS[k]} | {_t(w['median'])} | {_t(w['min'])} - {_t(w['max'])} | "
        f"{_t((cpus.get(k) or {}).get('median'))} | "
        f"{data['ratios_vs_load_all'][k]}x | "
        + (f"<= {_t(data['targets'][k]['limit'])} | {_met(data['targets'][k])} |"
           if k in data["targets"] else "- | - |")
        for k, w in data["walls"].items()
    ]  # fmt: skip
    inside = data["in_process_s"]
    return [
        *lines,
        meta,
        "",
        f"A generated history of {data['launches']:,} launches of the last 7 days "
        f"({data['file_mib']} MiB: 4 profiles, 200 commands, violations for one in 10, three "
        "test cases for one in 5, samples for the latest 50), each command a fresh process, "
        f"the variants alternating ({data['rounds']} rounds, `bench/usage_report.py`).",
        "",
        "| command | median wall | range | its CPU (median) | wall vs baseline (median of "
        "pairs) | target (wall) | |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"In process (no interpreter start-up): the report's queries {_t(inside['build'])}, "
        f"with the plots' data {_t(inside['build_with_plots'])}; the store's typed read side "
        f"over the same window: launches {_t(inside['read_launches'])}, usage summaries "
        f"{_t(inside['read_usages'])}, test cases {_t(inside['read_test_cases'])}.",
        "",
    ]
