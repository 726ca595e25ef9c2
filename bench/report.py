"""docs/benchmarks.md, generated from the results JSON (never edited by hand)."""

from __future__ import annotations

from typing import Any

AUDIT_NAMES = {
    "cli": "A `policy audit --format json` (CLI)",
    "in_process": "B `Auditor(policy).audit(...)` (in process)",
    "raw_sdk": "C raw SDK `inspect_container`, sequential",
    "docker_inspect": "D `docker inspect <all ids>` (one CLI call)",
    "cli_no_match": "E `policy audit` matching no container (the CLI's fixed cost)",
}
LAUNCH_NAMES = {
    "policy_run": "A `policy run isolation -- true`",
    "engine_launch": 'B `engine.launch("isolation", ["true"])`',
    "docker_run": "C `docker run --rm` (same flags)",
    "policy_run_workers": "`policy run parallel --workers 4 -- true`",
    "docker_run_x4": "4 x `docker run --rm` at once",
}


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


# -- targets --------------------------------------------------------------------------------------


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(benchmark, what, figure, target, target dict) for every target of the results."""
    out = []
    audit = r.get("audit") or {}
    for n, size in (audit.get("sizes") or {}).items():
        for key, tg in size["targets"].items():
            who = "CLI" if key.startswith("cli") else "in process"
            out.append(
                (
                    "audit",
                    f"audit ({who}) / raw SDK inspect, {n} containers",
                    rx(tg["value"]),
                    limit(tg),
                    tg,
                )
            )
    for n, why in (audit.get("skipped") or {}).items():
        out.append(
            (
                "audit",
                f"audit / raw SDK inspect, {n} containers",
                f"skipped: {why}",
                "<= 1.2x",
                {"met": None},
            )
        )
    launch = r.get("launch") or {}
    names = {
        "engine_launch/docker_run": "engine.launch / docker run",
        "policy_run/docker_run": "policy run / docker run",
        "policy_run_workers/docker_run_x4": "policy run --workers 4 / 4 x docker run",
    }
    for part in ("single", "parallel"):
        for key, tg in ((launch.get(part) or {}).get("targets") or {}).items():
            out.append(("launch", names.get(key, key), rx(tg["value"]), limit(tg), tg))
    validate = (r.get("validate") or {}).get("validate") or {}
    for n, size in (validate.get("sizes") or {}).items():
        if "target" in size:
            tg = size["target"]
            out.append(
                (
                    "validate",
                    f"`policy validate` of {int(n):,} profiles",
                    t(tg["value"]),
                    limit(tg, "s"),
                    tg,
                )
            )
    startup = (r.get("validate") or {}).get("startup") or {}
    for name, row in (startup.get("commands") or {}).items():
        if "target" in row:
            tg = row["target"]
            out.append(("start-up", f"`{name}`", t(tg["value"]), limit(tg, "s"), tg))
    return out


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


def audit_section(r: dict[str, Any]) -> list[str]:
    a = r.get("audit")
    out = ["## 1. Audit against the raw inspect", ""]
    if not a:
        return [*out, "_Not measured in this run._", ""]
    if "error" in a:
        return [*out, "The benchmark failed:", "", "```", a["error"], "```", ""]
    out += [
        _meta(a),
        "",
        "N containers (`sleep 3600`, image `simple-test-isolation:latest`) are launched detached "
        "through the `isolation` profile with `engine.launcher.run.create_verified` + "
        "`engine.start` (verified, so they audit clean; the profile copy only adds the "
        "`bench=<run id>` labels). The four ways of looking at them run alternately in each "
        "round (A B C D, then B C D A, ...). C knows the ids beforehand; the audit also lists "
        "the containers (one call) and inspects the image (once). Peak memory: ru_maxrss of the "
        "process for A, D and E (each forked from a small helper, so the benchmark's own size does "
        "not leak into it); for B and C, the tracemalloc peak of Python allocations during one "
        "extra, untimed call (the process's RSS hardly moves once its allocator has grown; the "
        "JSON keeps that RSS growth too). *CPU* is the "
        "measured process's own user+system time; *dockerd CPU* is the engine's over the same "
        "interval (other work on the engine adds to it).",
        "",
    ]
    for n, s in a.get("sizes", {}).items():
        chk = s["check"]
        out += [
            f"### {n} containers ({s['rounds']} rounds)",
            "",
            f"Check: the CLI audit saw {chk['cli_containers']} containers with "
            f"{chk['cli_findings']} findings; the in-process audits saw "
            f"{chk['in_process_containers_seen']} containers with "
            f"{chk['in_process_findings_seen']} findings. Host memory available: "
            f"{s['host_mem_available_mib']['before']} MiB before starting them, "
            f"{s['host_mem_available_mib']['after_start']} MiB after (about "
            f"{s.get('host_mem_per_container_mib', '?')} MiB per container).",
            "",
            "| | median | min - max | runs | CPU (median) | dockerd CPU (median) | peak memory |",
            "|---|---|---|---|---|---|---|",
        ]
        for key, v in s["variants"].items():
            if "tracemalloc_peak_mib" in v:
                mem = f"{v['tracemalloc_peak_mib']:.1f} MiB (tracemalloc peak)"
            else:
                mem = mib(v["peak_mem_mib"]["median"]) + " (max RSS)"
            out.append(
                f"| {AUDIT_NAMES[key]} | {t(v['wall_s']['median'])} | {rng(v['wall_s'])} | "
                f"{v['wall_s']['n']} | {t(v['cpu_s']['median'])} | "
                f"{t(v['engine_cpu_s']['median'])} | {mem} |"
            )
        fixed = s.get("cli_fixed_cost_s")
        cli_med = s["variants"]["cli"]["wall_s"]["median"]
        raw_med = s["variants"]["raw_sdk"]["wall_s"]["median"]
        if fixed is not None and cli_med is not None and raw_med:
            out += [
                "",
                f"The CLI's fixed cost (E: start-up, imports, loading the policy, one list call) "
                f"is {t(fixed)}; A minus E is {t(cli_med - fixed)}, "
                f"{(cli_med - fixed) / raw_med:.2f}x the raw SDK inspect.",
            ]
        api = s.get("engine_api")
        if api:
            out += [
                "",
                f"Engine API traffic of one in-process audit: {api['in_process']['requests']} "
                f"requests over {api['in_process']['connections']} new unix-socket connections; "
                f"of the raw SDK inspect: {api['raw_sdk']['requests']} requests over "
                f"{api['raw_sdk']['connections']} connections (counted by wrapping the SDK's "
                "connect and send, in one extra untimed run).",
            ]
        out += [
            "",
            "| ratio | of medians | median of paired rounds | target | |",
            "|---|---|---|---|---|",
        ]
        for key, v in s["ratios"].items():
            tg = s["targets"].get(key)
            out.append(
                f"| {key.replace('/', ' / ')} | {rx(v['of_medians'])} | {rx(v['paired'])} | "
                f"{limit(tg) if tg else '-'} | {met(tg)} |"
            )
        out.append("")
    for n, why in (a.get("skipped") or {}).items():
        out += [f"### {n} containers: skipped", "", why, ""]
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
        "exactly the flags `policy render isolation -- true` prints. `engine.launch` loads and "
        "validates the policy on each call, as it does for its users; the first call of the "
        "process (docker SDK import) is a warm-up and not counted. The rounds alternate "
        "(A B C, B C A, ...). The profiles come from a copy of `policies/` whose `isolation` "
        "only adds the `bench=<run id>` labels; mounts use the real project directory.",
        "",
        f"### One container ({s['rounds']} rounds)",
        "",
        "| | median | min - max | runs | CPU (median) | dockerd CPU (median) | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, v in s["variants"].items():
        cpu = t(v["cpu_s"]["median"]) if v.get("cpu_s") else "-"
        eng = t(v["engine_cpu_s"]["median"]) if v.get("engine_cpu_s") else "-"
        out.append(
            f"| {LAUNCH_NAMES[key]} | {t(v['wall_s']['median'])} | {rng(v['wall_s'])} | "
            f"{v['wall_s']['n']} | {cpu} | {eng} | {v['failures']} |"
        )
    out += [
        "",
        "| ratio | of medians | median of paired rounds | target | |",
        "|---|---|---|---|---|",
    ]
    for key, v in s["ratios"].items():
        tg = s["targets"][key]
        out.append(
            f"| {key.replace('/', ' / ')} | {rx(v['of_medians'])} | {rx(v['paired'])} | "
            f"{limit(tg)} | {met(tg)} |"
        )
    trace = s.get("engine_launch_requests")
    if trace:
        total = sum(r["ms"] for r in trace["requests"])
        out += [
            "",
            f"Engine API requests of one `engine.launch` (one extra, untimed call; "
            f"{trace['connections']} new unix-socket connections; the attach stream runs "
            f"alongside start and wait, so the times overlap; {total:.0f} ms in total):",
            "",
            "| # | request | ms |",
            "|---|---|---|",
            *(
                f"| {i} | `{r['method']} {r['path']}` | {r['ms']:.1f} |"
                for i, r in enumerate(trace["requests"], 1)
            ),
        ]
    out += [
        "",
        f"### Four parallel workers ({p['rounds']} rounds)",
        "",
        "`docker run` x 4 gets the flags rendered from `parallel` plus the `SHARD_INDEX` / "
        "`SHARD_COUNT` environment each worker of `policy run --workers 4` gets. The "
        "`policy run` target (1.3x) is applied here too.",
        "",
        "| | median | min - max | runs | CPU (median) | dockerd CPU (median) | failures |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, v in p["variants"].items():
        cpu = t(v["cpu_s"]["median"]) if v.get("cpu_s") else "- (4 processes)"
        eng = t(v["engine_cpu_s"]["median"]) if v.get("engine_cpu_s") else "-"
        out.append(
            f"| {LAUNCH_NAMES[key]} | {t(v['wall_s']['median'])} | {rng(v['wall_s'])} | "
            f"{v['wall_s']['n']} | {cpu} | {eng} | {v['failures']} |"
        )
    out += [
        "",
        "| ratio | of medians | median of paired rounds | target | |",
        "|---|---|---|---|---|",
    ]
    for key, v in p["ratios"].items():
        tg = p["targets"][key]
        out.append(
            f"| {key.replace('/', ' / ')} | {rx(v['of_medians'])} | {rx(v['paired'])} | "
            f"{limit(tg)} | {met(tg)} |"
        )
    out += ["", "Commands:", ""]
    for key, cmd in {**s["commands"], **p["commands"]}.items():
        out.append(f"- {key}: `{cmd}`")
    out.append("")
    return out


def validate_section(r: dict[str, Any]) -> list[str]:
    v = r.get("validate")
    out = ["## 3. Validation and start-up", ""]
    if not v:
        return [*out, "_Not measured in this run._", ""]
    if "error" in v:
        return [*out, "The benchmark failed:", "", "```", v["error"], "```", ""]
    out += [
        _meta(v),
        "",
        "### `policy validate` of a large generated tree",
        "",
        "Generated by `bench/validate.py`: 100 team files plus `guardrails.toml` (the shipped "
        "one); `[defaults]` in one file; each profile has a description and, unless it "
        "`extends` another, an image, memory, cpus, timeout, a tmpfs, three mounts whose "
        "sources exist in the generated project, labels; about 60% `extends` a profile (chains "
        "up to 3 deep, some across files); a few add `SYS_PTRACE` under a waiver or use a "
        "custom seccomp file. Each run is `python -m engine.cli validate DIR`, a fresh process; "
        "one untimed warm-up first.",
        "",
        "| profiles | files | size | result | median | min - max | runs | CPU (median) | peak RSS "
        "| per profile | target | |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, s in v["validate"]["sizes"].items():
        tg = s.get("target")
        out.append(
            f"| {int(n):,} | {s['shape']['files']} | {s['shape']['bytes'] / 1e6:.1f} MB | "
            f"exit {s['exit_code']}: {s['summary_line']} | {t(s['wall_s']['median'])} | "
            f"{rng(s['wall_s'])} | {s['wall_s']['n']} | {t(s['cpu_s']['median'])} | "
            f"{mib(s['peak_rss_mib']['median'])} | {s['per_profile_ms']:.2f} ms | "
            f"{limit(tg, 's') if tg else '-'} | {met(tg)} |"
        )
    st = v["startup"]
    out += [
        "",
        f"### Start-up ({st['rounds']} rounds, alternating)",
        "",
        "Every run is a fresh interpreter (cold process, warm page cache). The floor is "
        "`python -c pass` with the same interpreter, which already pays for `site` and the "
        "`.pth` hooks installed in this environment; `python -S -c pass` shows the interpreter "
        "without them. Rows marked (info) have no target. The commands run with a bytecode "
        "cache, as on a user's machine: this environment sets `PYTHONDONTWRITEBYTECODE=1`, so "
        "the benchmark gives them `PYTHONPYCACHEPREFIX` (a cache outside the source tree) "
        "instead; the rows marked *no bytecode cache* run as the environment is, compiling "
        "the project's modules on every start. Peak RSS is the process's ru_maxrss (at least "
        "the ~8 MiB of the small helper each command is forked from).",
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
    if not missed:
        return [*out, "Every target measured in this run is met.", ""]
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
    if "launch" in kinds:
        la = r["launch"]
        out += ["### Launch", ""]
        for key, title in (
            ("profile_policy_run_wall", "`policy run isolation -- true`, wall"),
            ("profile_policy_run_cpu", "`policy run isolation -- true`, CPU"),
            ("profile_engine_launch_wall", "`engine.launch` x 6 in one process, wall"),
            ("profile_policy_run_workers_wall", "`policy run parallel --workers 4`, wall"),
        ):
            if key in la:
                out += _profile_table(la[key], title)
        if "importtime_policy_run" in la:
            out += _importtime_table(la["importtime_policy_run"], "`policy run` imports")
    if "validate" in kinds:
        out += ["### Validation", ""]
        for n, s in r["validate"]["validate"]["sizes"].items():
            if "profile" in s:
                out += _profile_table(s["profile"], f"`policy validate`, {int(n):,} profiles")
    st = (r.get("validate") or {}).get("startup") or {}
    if "start-up" in kinds and "importtime_version" in st:
        out += ["### Start-up", ""]
        out += _importtime_table(st["importtime_version"], "`policy --version`")
    if "importtime_validate" in st:
        out += _importtime_table(
            st["importtime_validate"], "`policy validate policies/` (no target)"
        )
    return out


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
        f"({'quick' if r.get('quick') else 'full'} run). Medians throughout; ratios are of "
        "medians measured side by side in the same run, with the median of the per-round "
        "ratios next to them. These are measurements, never test assertions.",
        "",
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
        "Other work (test suites, other engines) ran on this machine during the run; the load "
        "average is given for each benchmark. The variants of a benchmark alternate round by "
        "round, so each comparison shares the same conditions, but absolute figures are higher "
        "than on an idle machine.",
        "",
        "## Targets",
        "",
        "| benchmark | measured | figure | target | |",
        "|---|---|---|---|---|",
        *(f"| {b} | {w} | {f} | {lim} | {met(tg)} |" for b, w, f, lim, tg in targets(r)),
        "",
        *audit_section(r),
        *launch_section(r),
        *validate_section(r),
        *obstacles(r),
        *analysis(r),
    ]
    return "\n".join(lines).rstrip() + "\n"


def console_summary(r: dict[str, Any]) -> str:
    lines = ["", "targets:"]
    for _, what, fig, lim, tg in targets(r):
        state = {True: "met", False: "NOT MET", None: "not measured"}[tg.get("met")]
        lines.append(f"  {what}: {fig} (target {lim}): {state}")
    return "\n".join(lines)
