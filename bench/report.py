"""docs/benchmarks.md, generated from the results JSON (never edited by hand)."""

from __future__ import annotations

from typing import Any

from bench import report_usage

AUDIT_NAMES = {
    "cli": "A `policy audit --format json` (CLI, warm)",
    "cli_no_cache": "B `policy audit --format json --no-cache` (CLI, cold)",
    "in_process": "C `Auditor(policy).audit([connect()])` (in process, socket backend)",
    "in_process_sdk": "D `Auditor(policy).audit([DockerEngine()])` (in process, SDK backend)",
    "raw_sdk": "E raw SDK `inspect_container`, sequential",
    "docker_inspect": "F `docker inspect <all ids>` (one CLI call: the baseline)",
    "cli_no_match": "G `policy audit` matching no container (the CLI's fixed cost, warm)",
}
LAUNCH_NAMES = {
    "policy_run": "A `policy run isolation -- true` (warm)",
    "policy_run_no_cache": "B `policy run isolation --no-cache -- true` (cold)",
    "engine_launch": 'C `engine.launch("isolation", ["true"])` (in process)',
    "docker_run": "D `docker run --rm` (same flags: the baseline)",
    "policy_run_workers": "`policy run parallel --workers 4 -- true` (warm)",
    "docker_run_x4": "4 x `docker run --rm` at once",
}
CACHE_NAMES = {"warm": "warm", "cold": "cold (`--no-cache`)"}

# The "before" column: the figures of issue 13, measured before this work on an earlier machine
# and run; fixed here, never re-measured.
BEFORE = {
    "audit_100": "1010 ms vs `docker inspect` 112 ms = 9.5x",
    "audit_500": "- (not in the issue)",
    "run": "2.6x `docker run`",
    "validate_shipped": "513 ms",
    "validate_10k": "4.9 s",
    "version": "118 ms",
}
COLD_MEANS = (
    "*Cold* means `--no-cache`: the command loads and validates the policy afresh. *Warm* means "
    "the cache of validated policies holds it: every command runs with `POLICY_CACHE_DIR` set to "
    "a directory of the benchmark's own (a temporary one, removed at the end; never the user's "
    "cache), and the warm variant ran once, untimed, before the timed rounds."
)


def t(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def rng(s: dict[str, Any] | None) -> str:
    if not s or s.get("min") is None:
        return "-"
    return f"{t(s['min'])} - {t(s['max'])}"


def mib(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} MiB"


def met(tg: dict[str, Any] | None) -> str:
    if not tg:
        return "-"
    if tg["met"] is None:
        return "not measured"
    return "**met**" if tg["met"] else "**not met**"


def limit(tg: dict[str, Any], unit: str = "x") -> str:
    op = "<=" if tg["op"] == "<=" else "<"
    if unit == "s":
        return f"{op} {t(tg['limit'])}"
    return f"{op} {tg['limit']}x"


def rx(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def _meta(section: dict[str, Any]) -> str:
    m = section.get("meta") or {}
    before, after = m.get("code_fingerprint_before"), m.get("code_fingerprint_after")
    code = (
        f"code `{before}`"
        if before == after
        else (f"**the code changed during this benchmark** (`{before}` -> `{after}`)")
    )
    return (
        f"_Measured {m.get('measured_at', '?')} (run {m.get('run_id', '?')}), "
        f"{m.get('duration_s', '?')} s, {code}; load average (1/5/15 min) before "
        f"{m.get('loadavg_before', '?')}, after {m.get('loadavg_after', '?')}._"
    )


# -- the rows of issue 13 ----------------------------------------------------------------------


def _med(v: dict[str, Any] | None, key: str = "wall_s") -> float | None:
    """The median of one variant's series (None when it was not measured)."""
    if not v or not v.get(key):
        return None
    value: float | None = v[key].get("median")
    return value


def _ratio_cell(rt: dict[str, Any] | None) -> str:
    if not rt or rt.get("of_medians") is None:
        return "-"
    return f"{rx(rt['of_medians'])} (paired {rx(rt['paired'])})"


def _audit_cell(s: dict[str, Any], name: str, with_cpu: bool) -> str:
    """One audit figure: its median, its ratio to `docker inspect`, its CPU per container."""
    versus = s["ratios"][f"{name}/docker_inspect"]["of_medians"]
    text = f"{t(_med(s['variants'].get(name)))} ({rx(versus)})"
    per = (s.get("cpu_per_container_ms") or {}).get(name)
    if with_cpu and per is not None:
        text += f"; CPU {per:.2f} ms per container"
    return text


def _size_for(audit: dict[str, Any], stands_for: int) -> tuple[str | None, dict[str, Any] | None]:
    """The audit size measured for the issue's 100 or 500 (a quick run measures fewer)."""
    for n, spec in (audit.get("targets_by_size") or {}).items():
        if spec.get("stands_for") == stands_for:
            return n, (audit.get("sizes") or {}).get(n)
    return None, None


def issue_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of issue 13: command, before, now cold, now warm, baseline, ratio, target."""
    rows: list[dict[str, Any]] = []
    quick = " (quick run: {n} stands in for {full})"
    audit = r.get("audit") or {}
    for stands_for in (100, 500):
        n, s = _size_for(audit, stands_for)
        lim = ((audit.get("targets_by_size") or {}).get(n or "") or {}).get("limit")
        lim = lim if lim is not None else {100: 2.0, 500: 1.5}[stands_for]
        what = f"`policy audit --format json` of {n or stands_for} running containers"
        if n is not None and int(n) != stands_for:
            what += quick.format(n=n, full=stands_for)
        row: dict[str, Any] = {
            "kind": "audit",
            "command": what,
            "before": BEFORE[f"audit_{stands_for}"],
            "target": f"<= {lim}x `docker inspect` (warm)",
            "tg": {"met": None},
        }
        if s is None:
            skipped = (audit.get("skipped") or {}).get(n or "")
            row.update(cold=f"skipped: {skipped}" if skipped else _missing(r, "audit"))
            row.update(warm="-", baseline="-", ratio="-", figure=row["cold"])
        else:
            v, rt = s["variants"], s["ratios"]

            tg = s["targets"]["cli/docker_inspect"]
            row.update(
                cold=_audit_cell(s, "cli_no_cache", with_cpu=stands_for == 500),
                warm=_audit_cell(s, "cli", with_cpu=stands_for == 500),
                baseline=f"`docker inspect` of the same ids, one call: "
                f"{t(_med(v['docker_inspect']))}",
                ratio=_ratio_cell(rt["cli/docker_inspect"]),
                tg=tg,
                figure=rx(tg["value"]),
            )
        rows.append(row)

    launch = (r.get("launch") or {}).get("single")
    row = {
        "kind": "launch",
        "command": "`policy run isolation -- true`",
        "before": BEFORE["run"],
        "target": f"<= {1.3}x `docker run` (warm)",
        "tg": {"met": None},
    }
    if launch:
        v, rt = launch["variants"], launch["ratios"]
        tg = launch["targets"]["policy_run/docker_run"]
        row.update(
            cold=f"{t(_med(v['policy_run_no_cache']))} "
            f"({rx(rt['policy_run_no_cache/docker_run']['of_medians'])})",
            warm=f"{t(_med(v['policy_run']))} ({rx(rt['policy_run/docker_run']['of_medians'])})",
            baseline=f"`docker run` with the rendered flags: {t(_med(v['docker_run']))}",
            ratio=_ratio_cell(rt["policy_run/docker_run"]),
            tg=tg,
            target=f"{limit(tg)} `docker run` (warm)",
            figure=rx(tg["value"]),
        )
    else:
        row.update(cold=_missing(r, "launch"), warm="-", baseline="-", ratio="-", figure="-")
    rows.append(row)

    validate = r.get("validate") or {}
    shipped = validate.get("shipped")
    large = (validate.get("validate") or {}).get("sizes") or {}
    big = next(((n, s) for n, s in large.items() if "target" in s), None)
    for key, what, entry, default in (
        ("validate_shipped", "`policy validate policies/` (the shipped profiles)", shipped, 0.150),
        (
            "validate_10k",
            "`policy validate` of 10,000 profiles"
            + (
                quick.format(n=f"{int(big[0]):,}", full="10,000")
                if big and big[0] != "10000"
                else ""
            ),
            big[1] if big else None,
            2.0,
        ),
    ):
        row = {
            "kind": "validate",
            "command": what,
            "before": BEFORE[key],
            "baseline": "-",
            "ratio": "-",
            "target": f"{'<=' if key == 'validate_shipped' else '<'} {t(default)} (warm)",
            "tg": {"met": None},
        }
        if entry and "target" in entry:
            v, tg = entry["variants"], entry["target"]
            row.update(
                cold=t(_med(v["cold"])),
                warm=t(_med(v["warm"])),
                tg=tg,
                target=f"{limit(tg, 's')} (warm)",
                figure=t(tg["value"]),
            )
        else:
            row.update(cold=_missing(r, "validate"), warm="-", figure="-")
        rows.append(row)

    startup = validate.get("startup") or {}
    version = (startup.get("commands") or {}).get(startup.get("version_command", ""))
    row = {
        "kind": "start-up",
        "command": "`policy --version`",
        "before": BEFORE["version"],
        "baseline": "-",
        "ratio": "-",
        "target": "<= 60 ms",
        "tg": {"met": None},
    }
    if version and "target" in version:
        tg = version["target"]
        row.update(
            cold="(loads no policy: no cache involved)",
            warm=t(tg["value"]),
            tg=tg,
            target=limit(tg, "s"),
            figure=t(tg["value"]),
        )
    else:
        row.update(cold=_missing(r, "validate"), warm="-", figure="-")
    rows.append(row)
    return rows


def _missing(r: dict[str, Any], section: str) -> str:
    data = r.get(section)
    if not data:
        return "not measured in this run"
    return "the benchmark failed" if "error" in data else "not measured"


def other_targets(r: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """Targets kept from before that are not rows of issue 13 (the parallel launch)."""
    out = []
    par = (r.get("launch") or {}).get("parallel") or {}
    for key, tg in (par.get("targets") or {}).items():
        if key == "policy_run_workers/docker_run_x4":
            what = "`policy run parallel --workers 4` / 4 x `docker run` (warm)"
        else:
            what = key
        out.append(("launch-parallel", what, rx(tg["value"]), limit(tg), tg))
    return out


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(benchmark, what, figure, target, target dict) for every target of the results."""
    issue = [(x["kind"], x["command"], x["figure"], x["target"], x["tg"]) for x in issue_rows(r)]
    return issue + other_targets(r)


def summary_table(r: dict[str, Any]) -> list[str]:
    return [
        "## Issue 13: before and now",
        "",
        "*Before* is the issue's own figures, measured before this work on an earlier machine "
        "and run; they were not re-measured here, so compare their ratios rather than their "
        "milliseconds. *Now* is this run. " + COLD_MEANS + " Targets apply to the warm figures; "
        "*ratio* is warm command / baseline, of the medians measured side by side in this run "
        "(the median of the per-round ratios in parentheses); the ratio next to each figure is "
        "that figure over the baseline's median.",
        "",
        "| command | before (issue 13) | now cold | now warm | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {x['command']} | {x['before']} | {x['cold']} | {x['warm']} | {x['baseline']} | "
            f"{x['ratio']} | {x['target']} | {met(x['tg'])} |"
            for x in issue_rows(r)
        ),
        "",
        *(
            [
                "Also checked (not a row of the issue):",
                "",
                "| measured | figure | target | |",
                "|---|---|---|---|",
                *(f"| {w} | {f} | {lim} | {met(tg)} |" for _, w, f, lim, tg in other_targets(r)),
                "",
            ]
            if other_targets(r)
            else []
        ),
    ]


# -- sections -------------------------------------------------------------------------------------


def machine(r: dict[str, Any]) -> list[str]:
    m = r["machine"]
    rows = [
        ("CPU", f"{m['cpu_model']}, {m['cores']} cores ({m['cores_usable']} usable)"),
        (
            "Memory",
            f"{m['memory_gib']} GiB ({m['mem_available_gib_at_start']} GiB available at start)",
        ),
        ("Kernel", f"{m['kernel']} ({m['os']})"),
        (
            "Engine",
            f"Docker {m['engine_version']} (API {m['engine_api_version']}), cgroup "
            f"v{m['cgroup_version']} ({m['cgroup_driver']}), storage {m['storage_driver']}",
        ),
        (
            "Python",
            f"{m['python']} ({m['python_executable']}); docker SDK {m['docker_sdk']}, "
            f"pydantic {m['pydantic']}",
        ),
        (
            "Code",
            f"git {m['git_commit']}, working tree with {m['git_dirty_files']} uncommitted "
            f"file(s); engine/ and policy/ fingerprint `{m.get('code_fingerprint', '?')}`"
            + (
                " (uncommitted: " + ", ".join(m["git_dirty_code"]) + ")"
                if m.get("git_dirty_code")
                else ""
            ),
        ),
        (
            "Load at start",
            f"load average {m['loadavg_at_start']}; "
            f"{m['engine_containers_at_start']} containers on the engine",
        ),
    ]
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _cache_note(s: dict[str, Any]) -> list[str]:
    writes = s.get("cache_writes_during_rounds")
    if not writes:
        return []
    return [
        "",
        f"**{writes} cache entries were written during the timed rounds**: some warm runs "
        "missed the cache (the code or a policy file changed under them), so the warm figures "
        "mix hits and misses.",
    ]


def _ratio_table(ratios: dict[str, Any], tgs: dict[str, Any]) -> list[str]:
    out = [
        "| ratio | of medians | median of paired rounds | target | |",
        "|---|---|---|---|---|",
    ]
    for key, v in ratios.items():
        tg = tgs.get(key)
        out.append(
            f"| {key.replace('/', ' / ')} | {rx(v['of_medians'])} | {rx(v['paired'])} | "
            f"{limit(tg) if tg else '- (information)'} | {met(tg)} |"
        )
    return out


def _backends(n: str, s: dict[str, Any]) -> list[str]:
    """What the stdlib socket backend saves against the docker SDK one, same audit."""
    v = s["variants"]
    sock, sdk = v.get("in_process"), v.get("in_process_sdk")
    if not sock or not sdk:
        return []
    ws, wd = _med(sock), _med(sdk)
    cs, cd = _med(sock, "cpu_s"), _med(sdk, "cpu_s")
    if None in (ws, wd, cs, cd):
        return []
    assert ws is not None and wd is not None and cs is not None and cd is not None
    rt = s["ratios"].get("in_process_sdk/in_process") or {}
    return [
        "",
        f"Same audit, both backends (C and D, in this process, the policy loaded once): the "
        f"backend `engine.backends.connect()` gives ("
        f"`{(s.get('backends') or {}).get('in_process', '?')}`) takes {t(ws)} "
        f"(CPU {t(cs)}), the docker SDK backend `DockerEngine()` {t(wd)} (CPU {t(cd)}): "
        f"SDK / socket {rx(rt.get('of_medians'))} (paired {rx(rt.get('paired'))}); the "
        f"socket backend saves {t(wd - ws)} of wall time and {t(cd - cs)} of CPU at {n} containers "
        f"({(cd - cs) * 1000 / int(n):.2f} ms of CPU per container).",
    ]


def audit_section(r: dict[str, Any]) -> list[str]:
    a = r.get("audit")
    out = ["## 1. Audit against `docker inspect`", ""]
    if not a:
        return [*out, "_Not measured in this run._", ""]
    if "error" in a:
        return [*out, "The benchmark failed:", "", "```", a["error"], "```", ""]
    out += [
        _meta(a),
        "",
        "N containers (`sleep 3600`, image `simple-test-isolation:latest`) are launched detached "
        "through the `isolation` profile with `engine.launcher.verify.create_verified` + "
        "`engine.start` (verified, so they audit clean; the profile copy only adds the "
        "`bench=<run id>` labels). The ways of looking at them run alternately in each round "
        "(A B C ..., then B C ... A, ...). The target compares the warm CLI (A) with F, "
        "`docker inspect` of the same ids in one call; B (cold), C and D (the audit in process, "
        "through each backend), E (the raw docker SDK, ids known) and G are information. "
        + COLD_MEANS
        + " The audit also lists the containers (one call) and inspects the image (once). Peak "
        "memory: ru_maxrss of the process for A, B, F and G (each forked from a small helper, so "
        "the benchmark's own size does not leak into it); for C, D and E, the tracemalloc peak "
        "of Python allocations during one extra, untimed call (the JSON keeps the RSS growth "
        "too). *CPU* is the measured process's own user+system time (per container: divided by "
        "N); *dockerd CPU* is the engine's over the same interval (other work on the engine "
        "adds to it).",
        "",
    ]
    for n, s in a.get("sizes", {}).items():
        chk = s["check"]
        seen = chk.get("in_process_seen") or {}
        label = f"### {n} containers ({s['rounds']} rounds)"
        if s.get("stands_for") and int(n) != s["stands_for"]:
            label = f"### {n} containers ({s['rounds']} rounds; stands in for {s['stands_for']})"
        out += [
            label,
            "",
            f"Check: the warm CLI audit saw {chk['cli']['containers']} containers with "
            f"{chk['cli']['findings']} findings, the cold one {chk['cli_no_cache']['containers']} "
            f"with {chk['cli_no_cache']['findings']}; in process: "
            + "; ".join(
                f"{k} {x['containers']} containers, {x['findings']} findings"
                for k, x in seen.items()
            )
            + f". Host memory available: {s['host_mem_available_mib']['before']} MiB before "
            f"starting them, {s['host_mem_available_mib']['after_start']} MiB after (about "
            f"{s.get('host_mem_per_container_mib', '?')} MiB per container).",
            "",
            "| | median | min - max | runs | CPU (median) | CPU per container | dockerd CPU "
            "(median) | peak memory |",
            "|---|---|---|---|---|---|---|---|",
        ]
        per = s.get("cpu_per_container_ms") or {}
        for key, v in s["variants"].items():
            if "tracemalloc_peak_mib" in v:
                mem = f"{v['tracemalloc_peak_mib']:.1f} MiB (tracemalloc peak)"
            else:
                mem = mib(v["peak_mem_mib"]["median"]) + " (max RSS)"
            pc = f"{per[key]:.2f} ms" if per.get(key) is not None else "-"
            out.append(
                f"| {AUDIT_NAMES.get(key, key)} | {t(v['wall_s']['median'])} | "
                f"{rng(v['wall_s'])} | {v['wall_s']['n']} | {t(v['cpu_s']['median'])} | {pc} | "
                f"{t(v['engine_cpu_s']['median'])} | {mem} |"
            )
        fixed = s.get("cli_fixed_cost_s")
        cli_med = _med(s["variants"]["cli"])
        base = _med(s["variants"]["docker_inspect"])
        if fixed is not None and cli_med is not None and base:
            out += [
                "",
                f"The warm CLI's fixed cost (G: start-up, imports, the cached policy, one list "
                f"call) is {t(fixed)}; A minus G is {t(cli_med - fixed)}, "
                f"{(cli_med - fixed) / base:.2f}x `docker inspect`.",
            ]
        out += _backends(n, s)
        api = s.get("engine_api")
        if api:
            names = {
                "in_process": "in-process audit, socket backend",
                "in_process_sdk": "in-process audit, SDK backend",
                "raw_sdk": "raw SDK inspect",
            }
            out += [
                "",
                "Engine API traffic (one extra untimed run each, counted on the unix sockets "
                "the process opens, whichever backend opens them): "
                + "; ".join(
                    f"{names.get(k, k)}: {x['requests']} requests over {x['connections']} new "
                    "unix-socket connections"
                    for k, x in api.items()
                )
                + ".",
            ]
        out += _cache_note(s)
        out += ["", *_ratio_table(s["ratios"], s["targets"]), ""]
        out += ["Commands:", ""]
        out += [f"- {k}: `{c}`" for k, c in (s.get("commands") or {}).items()]
        out.append("")
    for n, why in (a.get("skipped") or {}).items():
        out += [f"### {n} containers: skipped", "", why, ""]
    return out


def _variant_rows(variants: dict[str, Any], names: dict[str, str], cpu_note: str) -> list[str]:
    out = [
        "| | median | min - max | runs | CPU (median) | dockerd CPU (median) | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, v in variants.items():
        cpu = t(v["cpu_s"]["median"]) if v.get("cpu_s") else cpu_note
        eng = t(v["engine_cpu_s"]["median"]) if v.get("engine_cpu_s") else "-"
        out.append(
            f"| {names.get(key, key)} | {t(v['wall_s']['median'])} | {rng(v['wall_s'])} | "
            f"{v['wall_s']['n']} | {cpu} | {eng} | {v['failures']} |"
        )
    return out


def launch_section(r: dict[str, Any]) -> list[str]:
    la = r.get("launch")
    out = ["## 2. Launch against `docker run`", ""]
    if not la:
        return [*out, "_Not measured in this run._", ""]
    if "error" in la:
        return [*out, "The benchmark failed:", "", "```", la["error"], "```", ""]
    s, p = la["single"], la["parallel"]
    out += [
        _meta(la),
        "",
        "Each run launches `true`, waits for it and removes the container. `docker run` gets "
        "exactly the flags `policy render isolation -- true` prints. The target compares the "
        "warm `policy run` (A) with `docker run` (D); the cold one (B) and `engine.launch` (C, "
        "in this process, loading and validating the policy on each call as it does for its "
        "users, through `engine.backends.connect()`; its first call is a warm-up) are "
        "information. " + COLD_MEANS + " The rounds alternate (A B C D, B C D A, ...). The "
        "profiles come from a copy of `policies/` whose `isolation` only adds the "
        "`bench=<run id>` labels; mounts use the real project directory.",
        "",
        f"### One container ({s['rounds']} rounds)",
        "",
        *_variant_rows(s["variants"], LAUNCH_NAMES, "-"),
        "",
        *_ratio_table(s["ratios"], s["targets"]),
        *_cache_note(s),
    ]
    trace = s.get("engine_launch_requests")
    if trace:
        total = sum(x["ms"] or 0 for x in trace["requests"])
        out += [
            "",
            f"Engine API requests of one `engine.launch` (one extra, untimed call; "
            f"{trace['connections']} new unix-socket connections; ms from sending a request to "
            f"the first bytes of its answer; the attach stream runs alongside start and wait, "
            f"so the times overlap; {total:.0f} ms in total):",
            "",
            "| # | request | ms |",
            "|---|---|---|",
            *(
                f"| {i} | `{x['method']} {x['path']}` | "
                f"{'-' if x['ms'] is None else format(x['ms'], '.1f')} |"
                for i, x in enumerate(trace["requests"], 1)
            ),
        ]
    out += [
        "",
        f"### Four parallel workers ({p['rounds']} rounds)",
        "",
        "`docker run` x 4 gets the flags rendered from `parallel` plus the `SHARD_INDEX` / "
        "`SHARD_COUNT` environment each worker of `policy run --workers 4` gets (warm cache). "
        "Not a row of issue 13; the `policy run` target (1.3x) is applied here too.",
        "",
        *_variant_rows(p["variants"], LAUNCH_NAMES, "- (4 processes)"),
        "",
        *_ratio_table(p["ratios"], p["targets"]),
    ]
    out += ["", "Commands:", ""]
    for key, cmd in {**s["commands"], **p["commands"]}.items():
        out.append(f"- {key}: `{cmd}`")
    out.append("")
    return out


def _stats_row(label: str, v: dict[str, Any]) -> str:
    return (
        f"| {label} | {t(v['wall_s']['median'])} | {rng(v['wall_s'])} | {v['wall_s']['n']} | "
        f"{t(v['cpu_s']['median'])} | {mib(v['peak_rss_mib']['median'])} | "
        f"{', '.join(str(c) for c in v.get('exit_codes', []))} |"
    )


def validate_section(r: dict[str, Any]) -> list[str]:
    v = r.get("validate")
    out = ["## 3. Validation and start-up", ""]
    if not v:
        return [*out, "_Not measured in this run._", ""]
    if "error" in v:
        return [*out, "The benchmark failed:", "", "```", v["error"], "```", ""]
    out += [_meta(v), "", COLD_MEANS, ""]
    sh = v.get("shipped")
    if sh:
        tg = sh["target"]
        out += [
            f"### `policy validate policies/`, the shipped profiles ({sh['rounds']} rounds, "
            "warm and cold alternating)",
            "",
            f"`{sh['commands']['warm']}`: exit {sh['exit_code']}: {sh['summary_line']}. Target "
            f"(warm): {limit(tg, 's')}: {met(tg)}; cold / warm "
            f"{rx(sh['ratios']['cold/warm']['of_medians'])} (paired "
            f"{rx(sh['ratios']['cold/warm']['paired'])}).",
            "",
            "| | median | min - max | runs | CPU (median) | peak RSS | exit |",
            "|---|---|---|---|---|---|---|",
            *(_stats_row(CACHE_NAMES[k], x) for k, x in sh["variants"].items()),
            *_cache_note(sh),
            "",
        ]
    out += [
        "### `policy validate` of a large generated tree",
        "",
        "Generated by `bench/validate.py`: 100 team files plus `guardrails.toml` (the shipped "
        "one); `[defaults]` in one file; each profile has a description and, unless it "
        "`extends` another, an image, memory, cpus, timeout, a tmpfs, three mounts whose "
        "sources exist in the generated project, labels; about 60% `extends` a profile (chains "
        "up to 3 deep, some across files); a few add `SYS_PTRACE` under a waiver or use a "
        "custom seccomp file. Each run is `policy validate DIR`, a fresh process, warm and cold "
        "alternating round by round; one untimed run of each first.",
        "",
        "| profiles | files | size | cache | result | median | min - max | runs | CPU (median) "
        "| peak RSS | per profile | target | |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, s in v["validate"]["sizes"].items():
        tg = s.get("target")
        for kind, x in s["variants"].items():
            is_target = kind == "warm" and tg
            out.append(
                f"| {int(n):,} | {s['shape']['files']} | {s['shape']['bytes'] / 1e6:.1f} MB | "
                f"{CACHE_NAMES[kind]} | exit {s['exit_code']}: {s['summary_line']} | "
                f"{t(x['wall_s']['median'])} | {rng(x['wall_s'])} | {x['wall_s']['n']} | "
                f"{t(x['cpu_s']['median'])} | {mib(x['peak_rss_mib']['median'])} | "
                f"{s['per_profile_ms'][kind]:.3f} ms | "
                f"{limit(tg, 's') if is_target else '-'} | {met(tg) if is_target else ''} |"
            )
    notes = [
        f"{int(n):,}: cold / warm {rx(s['ratios']['cold/warm']['of_medians'])} (paired "
        f"{rx(s['ratios']['cold/warm']['paired'])})"
        + (
            f", {s['cache_writes_during_rounds']} cache writes during the rounds"
            if s.get("cache_writes_during_rounds")
            else ""
        )
        for n, s in v["validate"]["sizes"].items()
    ]
    out += ["", "Cold / warm: " + "; ".join(notes) + "."]
    st = v["startup"]
    out += [
        "",
        f"### Start-up ({st['rounds']} rounds, alternating)",
        "",
        "Every run is a fresh interpreter (cold process, warm page cache). The floor is "
        "`python -c pass` with the same interpreter, which already pays for `site` and the "
        "`.pth` hooks installed in this environment; `python -S -c pass` shows the interpreter "
        "without them. `policy` is the console script of the environment's interpreter. Rows "
        "marked (info) have no target. The commands run with a bytecode cache, as on a user's "
        "machine: this environment sets `PYTHONDONTWRITEBYTECODE=1`, so the benchmark gives "
        "them `PYTHONPYCACHEPREFIX` (a cache outside the source tree) instead; the rows marked "
        "*no bytecode cache* run as the environment is, compiling the project's modules on "
        "every start. Peak RSS is the process's ru_maxrss (at least the ~8 MiB of the small "
        "helper each command is forked from).",
        "",
        "| command | median | min - max | runs | above the floor | peak RSS | target | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in st["commands"].items():
        tg = row.get("target")
        label = f"`{name}`" + (" (info)" if row.get("info_only") else "")
        out.append(
            f"| {label} | {t(row['wall_s']['median'])} | {rng(row['wall_s'])} | "
            f"{row['wall_s']['n']} | {t(row['above_floor_s'])} | "
            f"{mib(row['peak_rss_mib']['median'])} | {limit(tg, 's') if tg else '-'} | "
            f"{met(tg)} |"
        )
    out.append("")
    return out


def _code(row: dict[str, Any] | None, key: str) -> str:
    return f"`{row[key]}`" if row else ""


def _pct(row: dict[str, Any] | None) -> str:
    return f"{row['share']:.0%}" if row else ""


def _ms(row: dict[str, Any] | None, key: str) -> str:
    return f"{row[key] / 1000:.1f} ms" if row else ""


def _profile_table(p: dict[str, Any] | None, title: str) -> list[str]:
    if not p:
        return [f"{title}: no profile (py-spy unavailable).", ""]
    idle = "wall time: idle (waiting) samples included" if p["idle_included"] else "CPU samples"
    out = [
        f"{title} ({p['tool']} at {p['rate_hz']} Hz, {idle}, {p['runs_pooled']} run(s) pooled, "
        f"{p['samples']} samples): `{p['command']}`",
        "",
        "| project function (inclusive) | share | | function (self) | share |",
        "|---|---|---|---|---|",
    ]
    proj, selfs = p["top_project"], p["top_self"]
    for i in range(max(len(proj), len(selfs))):
        a = proj[i] if i < len(proj) else None
        b = selfs[i] if i < len(selfs) else None
        out.append(f"| {_code(a, 'function')} | {_pct(a)} | | {_code(b, 'function')} | {_pct(b)} |")
    lib = [
        x
        for x in p["top_inclusive"]
        if not x["function"].split("(")[-1].startswith(("engine/", "policy/"))
    ][:10]
    if lib:
        out += [
            "",
            "Libraries and the standard library (inclusive): "
            + "; ".join(f"`{x['function']}` {x['share']:.0%}" for x in lib)
            + ".",
        ]
    out.append("")
    return out


def _importtime_table(it: dict[str, Any], title: str) -> list[str]:
    out = [
        f"{title}: `{it['command']}`: {it['modules']} modules imported, "
        f"{it['total_import_us'] / 1000:.0f} ms of imports in total.",
        "",
        "| imported at top level | cumulative |   | module (self time) | self |",
        "|---|---|---|---|---|",
    ]
    top, selfs = it["top_level"][:12], it["top_self"][:12]
    for i in range(max(len(top), len(selfs))):
        a = top[i] if i < len(top) else None
        b = selfs[i] if i < len(selfs) else None
        out.append(
            f"| {_code(a, 'module')} | {_ms(a, 'cumulative_us')} | | {_code(b, 'module')} | "
            f"{_ms(b, 'self_us')} |"
        )
    chains = it.get("chains") or []
    if chains:
        out += [
            "",
            "Heavy libraries and the module that imported them: "
            + "; ".join(
                f"`{c['library']}` ({c['cumulative_us'] / 1000:.0f} ms) by `{c['imported_by']}`"
                for c in chains
            )
            + ".",
        ]
    out.append("")
    return out


def obstacles(r: dict[str, Any]) -> list[str]:
    missed = [x for x in targets(r) if x[4].get("met") is False]
    out = ["## What stands in the way", ""]
    v = r.get("validate") or {}
    shipped = v.get("shipped") or {}
    reference = [
        *(
            _importtime_table(shipped[key], f"`policy validate policies/` imports, {kind}")
            for key, kind in (("importtime_warm", "warm"), ("importtime_cold", "cold"))
            if key in shipped
        )
    ]
    if not missed:
        out += ["Every target measured in this run is met.", ""]
        return out + [line for table in reference for line in table]
    out += [
        "Targets not met in this run, with the profiles the run took of them. Shares are of "
        "the samples of the profiled process; sampling slows the process, so they say where "
        "the time goes, not how long it takes.",
        "",
    ]
    out += [f"- {what}: {fig} (target {lim})" for _, what, fig, lim, _ in missed]
    out.append("")
    kinds = {x[0] for x in missed}
    if "audit" in kinds:
        out += ["### Audit", ""]
        for n, s in (r["audit"].get("sizes") or {}).items():
            if "profile_cli" in s:
                out += _profile_table(s["profile_cli"], f"`policy audit`, {n} containers, CPU")
                out += _profile_table(
                    s.get("profile_cli_wall"), f"`policy audit`, {n} containers, wall"
                )
    if kinds & {"launch", "launch-parallel"}:
        la = r["launch"]
        out += ["### Launch", ""]
        for key, title in (
            ("profile_policy_run_wall", "`policy run isolation -- true` (warm), wall"),
            ("profile_policy_run_cpu", "`policy run isolation -- true` (warm), CPU"),
            ("profile_engine_launch_wall", "`engine.launch` x 6 in one process, wall"),
            ("profile_policy_run_workers_wall", "`policy run parallel --workers 4`, wall"),
        ):
            if key in la:
                out += _profile_table(la[key], title)
        if "importtime_policy_run" in la:
            out += _importtime_table(la["importtime_policy_run"], "`policy run` imports (warm)")
    if "validate" in kinds:
        out += ["### Validation", ""]
        for n, s in ((v.get("validate") or {}).get("sizes") or {}).items():
            if "profile" in s:
                out += _profile_table(s["profile"], f"`policy validate`, {int(n):,} profiles, warm")
            if "profile_cold" in s:
                out += _profile_table(
                    s["profile_cold"], f"`policy validate --no-cache`, {int(n):,} profiles"
                )
    st = v.get("startup") or {}
    if "start-up" in kinds and "importtime_version" in st:
        out += ["### Start-up", ""]
        out += _importtime_table(st["importtime_version"], "`policy --version`")
    return out + [line for table in reference for line in table]


def analysis(r: dict[str, Any]) -> list[str]:
    """The hand-written reading of the profiles (bench/analysis.md), marked with its run."""
    from pathlib import Path

    path = Path(__file__).with_name("analysis.md")
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8").strip()
    first, _, body = text.partition("\n")
    written_for = first.removeprefix("<!-- run ").removesuffix(" -->").strip()
    note = (
        f"_Written by hand for run `{written_for}`._"
        if written_for == r.get("run_id")
        else f"_Written by hand for run `{written_for}`; the figures above are from run "
        f"`{r.get('run_id')}`: re-check this reading against them._"
    )
    return ["### Reading of the profiles, and suggested fixes", "", note, "", body.strip(), ""]


def admission_section(r: dict[str, Any]) -> list[str]:
    """The admission plugin's added latency (issue 16): paired against the same kind of engine
    without the plugin, in the same run."""
    data = r.get("admission")
    if not data or "rows" not in data:
        return ["## Admission plugin", "", _missing(r, "admission"), ""]
    lines = [
        "## Admission plugin",
        "",
        _meta(data),
        "",
        "Two extra engines of the same kind, one started with `--authorization-plugin` and "
        "`policy admission serve`, one without; each round measures the same request on both, "
        "in alternating order (`bench/admission.py`). Target: at most "
        f"{data['target_ms']} ms added per request: **{'met' if data['met'] else 'not met'}** "
        f"(worst {data['worst_added_ms']} ms).",
        "",
        "| what | rounds | with the plugin | without | added (median of pairs) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for row in data["rows"]:
        lines.append(
            f"| {row['what']} | {row['rounds']} | {row['with_plugin_ms']} ms | "
            f"{row['without_ms']} ms | {row['added_ms']} ms | {row['ratio']}x |"
        )
    return [*lines, ""]


def swarm_section(r: dict[str, Any]) -> list[str]:
    """A Swarm job through a profile against the same job by hand (issue 14, bench/swarm.py)."""
    data = r.get("swarm")
    if not data or "ratio_policy_over_hand" not in data:
        return ["## Swarm job", "", _missing(r, "swarm"), ""]
    p, h = data["policy_run_swarm"], data["docker_service_create"]
    return [
        "## Swarm job",
        "",
        *([_meta(data), ""] if "meta" in data else []),
        f"{data['what']} (a swarm of two engines in network namespaces, built by "
        "scripts/swarm.sh for the run), in alternating order (`bench/swarm.py`): "
        "`policy run shard --swarm --workers 4` (render, node proofs, internal network, "
        "stored specs and every task verified on its node and in /proc, logs, clean-up) "
        "against the same four `docker service create --mode replicated-job` at once by hand, "
        "with their network. No target.",
        "",
        "| what | rounds | median | min | max |",
        "|---|---|---|---|---|",
        f"| `policy run --swarm` | {p['n']} | {p['median']:.2f} s | {p['min']:.2f} s | "
        f"{p['max']:.2f} s |",
        f"| `docker service create` x4 | {h['n']} | {h['median']:.2f} s | {h['min']:.2f} s | "
        f"{h['max']:.2f} s |",
        "",
        f"Ratio (median of the per-round ratios): **{data['ratio_policy_over_hand']}x**.",
        "",
    ]


def podman_section(r: dict[str, Any]) -> list[str]:
    """`policy run` on Podman's compat service against `podman run` (issue 14, bench/podman.py)."""
    data = r.get("podman")
    if not data or "ratio_policy_over_podman" not in data:
        return ["## Podman", "", _missing(r, "podman"), ""]
    p, q = data["policy_run_wall"], data["podman_run_wall"]
    return [
        "## Podman",
        "",
        *([_meta(data), ""] if "meta" in data else []),
        "`policy run isolation --host unix://SOCKET -- true` against `podman run` with the flags "
        "`policy render isolation -- true` prints (the same store, `--rm`), in paired rounds "
        "that alternate which goes first (`bench/podman.py`), on the test service of "
        "`scripts/ensure-podman.sh` (rootful). No target.",
        "",
        "| variant | rounds | median | range |",
        "|---|---|---|---|",
        f"| `policy run isolation --host ... -- true` | {p['n']} | {p['median'] * 1000:.0f} ms | "
        f"{p['min'] * 1000:.0f} ms - {p['max'] * 1000:.0f} ms |",
        f"| `podman run --rm` with the rendered flags | {q['n']} | {q['median'] * 1000:.0f} ms | "
        f"{q['min'] * 1000:.0f} ms - {q['max'] * 1000:.0f} ms |",
        "",
        f"Ratio (median of the per-round ratios): **{data['ratio_policy_over_podman']}x**.",
        "",
        "Where the difference goes (one launch, timed by hand on Podman 4.3.1): through the "
        "compat service a create and its verification take about 0.35 s, the attach 0.2 s and "
        "the wait 0.3 s, where `podman run` does the same work in one process without the "
        "service. Podman's own `/libpod/info`, which says whether the service is rootless, "
        "takes about 1 s (Podman runs conmon and runc to print their versions on each call): it "
        "is asked once per running service and remembered "
        "(`engine/backends/kinds/podman_info_cache.py`); the first run against a new service "
        "pays it.",
        "",
    ]


def _scope(r: dict[str, Any]) -> str:
    kind = "quick" if r.get("quick") else "full"
    if not r.get("only"):
        return f"{kind} run"
    return (
        f"{kind} run of {', '.join(r['only'])} only; the other sections are kept from earlier "
        "runs, each dated in its section"
    )


def render(r: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by bench/run.py from bench/results/latest.json; do not edit by hand. -->",
        "",
        "Reproduce everything with:",
        "",
        "```sh",
        "python bench/run.py            # all benchmarks; rewrites bench/results/latest.json "
        "and this file",
        "python bench/run.py --quick    # smoke run (small sizes, few rounds) -> "
        "bench/results/quick.json",
        "```",
        "",
        f"Run `{r['run_id']}` started {r['started']}, took {r.get('duration_s', '?')} s "
        f"({_scope(r)}). Medians throughout; ratios are of "
        "medians measured side by side in the same run, with the median of the per-round "
        "ratios next to them. These are measurements, never test assertions.",
        "",
        *summary_table(r),
        "## Machine",
        "",
        *machine(r),
        "",
        *(
            [
                f"**engine/ or policy/ changed while this run was measuring** (fingerprint "
                f"`{r['machine'].get('code_fingerprint')}` at the start, "
                f"`{r.get('code_fingerprint_at_end')}` at the end): others were working on the "
                "code; the figures mix the two versions.",
                "",
            ]
            if r.get("code_fingerprint_at_end")
            and r["code_fingerprint_at_end"] != r["machine"].get("code_fingerprint")
            else []
        ),
        "Other work (test suites, other engines) may run on this machine during the run; the "
        "load average is given for each benchmark. The variants of a benchmark alternate round "
        "by round, so each comparison shares the same conditions, but absolute figures are "
        "higher than on an idle machine.",
        "",
        *audit_section(r),
        *launch_section(r),
        *validate_section(r),
        *admission_section(r),
        *report_usage.monitor_section(r, _meta(r.get("monitor") or {})),
        *report_usage.usage_report_section(r, _meta(r.get("usage_report") or {})),
        *podman_section(r),
        *swarm_section(r),
        *obstacles(r),
        *analysis(r),
    ]
    return "\n".join(lines).rstrip() + "\n"


def console_summary(r: dict[str, Any]) -> str:
    lines = ["", "issue 13 (before = the issue's figures, earlier machine/run; cold = --no-cache):"]
    for x in issue_rows(r):
        state = {True: "met", False: "NOT MET", None: "not measured"}[x["tg"].get("met")]
        lines += [
            f"  {x['command'].replace('`', '')}: {state}",
            f"      before {x['before'].replace('`', '')} | cold {x['cold']} | warm {x['warm']}",
            f"      baseline {x['baseline'].replace('`', '')} | ratio {x['ratio']} | "
            f"target {x['target'].replace('`', '')}",
        ]
    others = other_targets(r)
    if others:
        lines.append("other targets:")
    for _, what, fig, lim, tg in others:
        state = {True: "met", False: "NOT MET", None: "not measured"}[tg.get("met")]
        lines.append(f"  {what.replace('`', '')}: {fig} (target {lim}): {state}")
    return "\n".join(lines)
