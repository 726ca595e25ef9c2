#!/usr/bin/env python
"""Run every benchmark and write the figures.

    python bench/run.py            # full run: bench/results/latest.json + docs/benchmarks.md
    python bench/run.py --quick    # smoke run (small sizes, few rounds): bench/results/quick.json
    python bench/run.py --only launch --only audit   # re-measure some, merged into latest.json
    python bench/run.py --report-only                # regenerate docs/benchmarks.md from JSON
    python bench/run.py --report-only --results bench/results/quick.json --doc /tmp/b.md

Benchmarks are never test assertions: targets are printed next to the figures as met / not met.
When a target is missed, the run profiles that case (py-spy, `python -X importtime`) and the
profile goes into the JSON and the document. The measured commands use a policy cache of the
run's own (a temporary POLICY_CACHE_DIR): warm = its entry is there, cold = `--no-cache`. Every
container started here carries `bench=<run id>` and is removed at the end, on failure and on
Ctrl-C / SIGTERM too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.chdir(Path(__file__).resolve().parent.parent)

from bench import common, report  # noqa: E402

BENCHMARKS = (
    "validate",
    "launch",
    "audit",
    "admission",
    "monitor",
    "usage_report",
    "swarm",
    "podman",
)
DOC = common.ROOT / "docs" / "benchmarks.md"
SCHEMA = "container-policy/bench/v2"  # v2: cold and warm policy cache, the rows of issue 13


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few rounds")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only these")
    parser.add_argument("--no-profile", action="store_true", help="never profile missed targets")
    parser.add_argument("--report-only", action="store_true", help="regenerate the document only")
    parser.add_argument(
        "--results",
        type=Path,
        metavar="JSON",
        help="with --report-only: render this results file (default bench/results/latest.json)",
    )
    parser.add_argument(
        "--doc",
        type=Path,
        metavar="FILE",
        help="with --report-only: write the document here (default docs/benchmarks.md)",
    )
    parser.add_argument(
        "--write-docs", action="store_true", help="with --quick: write docs/benchmarks.md anyway"
    )
    parser.add_argument(
        "--clean-stale",
        action="store_true",
        help="also remove containers left by earlier (killed) runs of these benchmarks",
    )
    args = parser.parse_args()
    out_path = common.RESULTS / ("quick.json" if args.quick else "latest.json")

    if args.report_only:
        source = args.results or common.RESULTS / "latest.json"
        if not source.exists():
            raise SystemExit(f"bench: no results at {source}: run `python bench/run.py` first")
        stored: dict[str, Any] = json.loads(source.read_text())
        if stored.get("schema") != SCHEMA:
            raise SystemExit(
                f"bench: {source} is {stored.get('schema')!r}, not {SCHEMA!r}: re-run the "
                "benchmarks (the document's tables need the new shape)"
            )
        doc = args.doc or DOC
        doc.write_text(report.render(stored), encoding="utf-8")
        common.log(f"wrote {doc} from {source}")
        print(report.console_summary(stored))
        return 0

    common.install_sigterm()
    api = common.docker_api()
    stale = [c for c in common.our_containers(api, run_id=None)]
    if stale:
        if args.clean_stale:
            common.log(f"removing {common.cleanup(api, run_id=None)} containers of earlier runs")
        else:
            common.log(
                f"note: {len(stale)} containers of earlier bench runs exist "
                "(label bench.owner=container-policy-bench); --clean-stale removes them"
            )

    selected = args.only or list(BENCHMARKS)
    results: dict[str, Any] = {}
    if args.only and out_path.exists():
        results = json.loads(out_path.read_text())  # keep the benchmarks not re-measured
        if results.get("schema") != SCHEMA:  # ... unless they are of another shape
            common.log(f"{out_path} is {results.get('schema')!r}: its other benchmarks dropped")
            results = {}
    results.update(
        {
            "schema": SCHEMA,
            "run_id": common.RUN_ID,
            "quick": args.quick,
            "started": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": "python bench/run.py" + (" --quick" if args.quick else ""),
            "only": args.only or None,  # the others kept from the results file, each dated
            "machine": common.machine_info(api),
        }
    )
    profile = not args.no_profile
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-policy-"))
    try:
        policies = common.make_policy_copy(tmp)
        common.log(f"run {common.RUN_ID}: policy copy in {policies}")
        with common.policy_cache_dir() as cache:  # the bench's own, removed at the end
            common.log(f"policy cache of the measured commands: {cache}")
            results["policy_cache"] = (
                "a temporary directory of the benchmark's own, removed at the end "
                f"(POLICY_CACHE_DIR={cache})"
            )
            _measure(selected, results, out_path, api, policies, args.quick, profile)
    finally:
        removed = common.cleanup(api)
        left = common.our_containers(api)
        common.log(
            f"cleanup: removed {removed} leftover container(s); {len(left)} of this run remain"
        )
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    results["duration_s"] = round(time.perf_counter() - started, 1)
    results["code_fingerprint_at_end"] = common.code_fingerprint()
    if results["code_fingerprint_at_end"] != results["machine"]["code_fingerprint"]:
        common.log("warning: engine/ or policy/ changed while the benchmarks ran")
    _write(out_path, results)
    text = report.render(results)
    if not args.quick or args.write_docs:
        DOC.write_text(text, encoding="utf-8")
        common.log(f"wrote {out_path} and {DOC}")
    else:
        common.log(f"wrote {out_path} (quick run: {DOC} left alone; --write-docs to overwrite)")
    print(report.console_summary(results))
    return 0


def _measure(
    selected: list[str],
    results: dict[str, Any],
    out_path: Path,
    api: object,
    policies: Path,
    quick: bool,
    profile: bool,
) -> None:
    """Each selected benchmark in turn, its figures written to out_path as soon as it ends."""
    for name in selected:
        t0 = time.perf_counter()
        meta: dict[str, Any] = {
            "measured_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "loadavg_before": [round(x, 2) for x in os.getloadavg()],
            "run_id": common.RUN_ID,
            "code_fingerprint_before": common.code_fingerprint(),
        }
        try:
            if name == "validate":
                from bench import validate

                data = validate.main(quick, profile)
            elif name == "launch":
                from bench import launch

                data = launch.main(policies, quick, profile)
            elif name == "admission":
                from bench import admission

                data = admission.run(*((60, 5) if quick else (300, 15)))
            elif name == "monitor":
                from bench import monitor

                data = monitor.run(*((1, 2.0, 50) if quick else (5, 10.0, 500)))
            elif name == "usage_report":
                from bench import usage_report

                data = usage_report.run(*((20_000, 1) if quick else (100_000, 5)))
            elif name == "swarm":
                from bench import swarm

                data = swarm.run(quick)
            elif name == "podman":
                from bench import podman

                data = podman.run(quick)
            else:
                from bench import audit

                data = audit.main(api, policies, quick, profile)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # one broken benchmark does not lose the others' figures
            common.log(f"{name} failed: {exc!r}")
            data = {"error": "".join(traceback.format_exception(exc))[-3000:]}
        meta["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        meta["duration_s"] = round(time.perf_counter() - t0, 1)
        meta["code_fingerprint_after"] = common.code_fingerprint()
        results[name] = {"meta": meta, **data}
        _write(out_path, results)


def _write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("bench: interrupted; containers of this run were removed", file=sys.stderr)
        raise SystemExit(130) from None
