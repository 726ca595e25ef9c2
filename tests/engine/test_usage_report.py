"""`policy report` over a history made by real launches, and its HTML page opened in a real
headless Chromium without a network.

Three launches of the probe profile (256 MiB) each hold about 40 MiB in their tmpfs and write a
JUnit file into the results mount; the profile's `memory_warn` is set so low that every one
earns a memory-near-limit warning. The report must show the memory peak the kernel counted,
the violations, the test cases, and the page must render its plots and tables with nothing
fetched: Chromium runs in a new network namespace (`unshare -n`, no interface but a down
loopback), its network log is kept and read, and the page is checked for external references.
The page and its screenshot are kept in test-results/ as CI artifacts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT, cli, unavailable, write_probe_policy

pytestmark = [pytest.mark.engine, pytest.mark.usefixtures("fresh_logging", "launch_record")]

MIB = 1 << 20
JUNIT = (
    '<testsuite name="s"><testcase classname="report.suite" name="test_holds_memory" '
    'time="0.75"/></testsuite>'
)
SCRIPT = (
    "dd if=/dev/zero of=/tmp/fill bs=1M count=40 2>/dev/null; "
    f"mkdir -p /results/junit && echo '{JUNIT}' > /results/junit/report.xml; sleep 1"
)
ARTIFACTS = ROOT / "test-results"


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory, docker_client: object) -> Path:
    """The history of three real launches (module-wide: they take a few seconds each)."""
    from tests.helpers import reset_logging

    root = tmp_path_factory.mktemp("usage-report")
    project = root / "project"
    project.mkdir()
    policies = write_probe_policy(project, "monitor = { memory_warn = 0.01 }\n")
    history = root / "history.sqlite"
    try:
        for _ in range(3):
            code, _, err = cli(
                "run", "probe", "--history", str(history), "--record", str(root / "l.jsonl"),
                "--policies", str(policies), "--project", str(project), "--", "sh", "-c", SCRIPT,
            )  # fmt: skip
            assert code == 0, err
    finally:
        reset_logging()
    return history


def test_the_report_shows_real_memory_peaks_violations_and_test_cases(launched: Path) -> None:
    code, out, err = cli("report", "--history", str(launched), "--format", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["launches"] == 3
    (memory,) = report["worst"]["memory"]
    assert memory["profile"] == "probe" and memory["runs"] == 3
    assert memory["name"].startswith("sh -c 'dd if=/dev/zero")
    # About 40 MiB held in the tmpfs (charged to the container) of 256 MiB: the kernel's peak.
    assert 40 / 256 <= memory["value"] < 60 / 256, memory
    (violations,) = report["worst"]["violations"]
    assert (violations["runs"], violations["value"]) == (3, 3)
    assert violations["detail"] == "memory-near-limit"
    tests = [d for d in report["worst"]["duration"] if d["kind"] == "test"]
    assert [(t["name"], t["runs"], t["value"]) for t in tests] == [
        ("report.suite.test_holds_memory", 3, 0.75)
    ]
    (hint,) = report["right_size"]
    assert hint["declared"] == 256 * MIB and hint["verdict"] == "lower"
    assert 40 * MIB <= hint["p99_peak"] < 60 * MIB
    assert hint["suggested"] == round(hint["p99_peak"] * 1.25)
    figures = {(t["kind"], t["figure"]) for t in report["trends"]}
    assert figures == {("command", "duration"), ("command", "memory"), ("test", "duration")}
    code, out, err = cli("report", "--history", str(launched))
    assert code == 0, err
    assert "report.suite.test_holds_memory" in out and "memory-near-limit" in out


# Anything a browser would fetch: a src/href/action/poster to a URL, a CSS url() to anything but
# a fragment of the page itself (matplotlib's clip paths are `url(#id)`), an @import.
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:[a-z]+:)?//)"""
    r"""|url\(\s*["']?\s*(?!#)|@import""",
    re.IGNORECASE,
)


def chromium(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Headless Chromium in a new network namespace: the page cannot reach any network."""
    binary = shutil.which("chromium")
    if binary is None:
        unavailable("chromium missing: run scripts/ensure-chromium.sh")
    assert binary is not None
    unshare = shutil.which("unshare")
    assert unshare, "unshare (util-linux) is needed to cut the browser off the network"
    return subprocess.run(
        [unshare, "--net", binary, "--headless", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def page_requests(netlog: Path) -> list[str]:
    """The URLs a page asked for: requests whose initiator is an origin (a file:// page's is
    "null"), not the browser itself ("not an origin")."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start
        and "url" in e.get("params", {})
        and e["params"].get("initiator") != "not an origin"
    ]


def test_the_html_report_renders_in_chromium_with_nothing_fetched(
    launched: Path, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page = ARTIFACTS / "usage-report.html"
    code, _, err = cli(
        "report", "--history", str(launched), "--format", "html", "--output", str(page)
    )
    assert code == 0, err
    html = page.read_text()
    assert EXTERNAL.search(html) is None, EXTERNAL.search(html)
    assert "<script" not in html and "default-src 'none'" in html

    netlog = tmp_path / "netlog.json"
    dom = chromium(f"--log-net-log={netlog}", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = dom.stdout
    for plot in ("timeline", "trend", "headroom"):
        figure = re.search(rf'<figure id="{plot}">(.*?)</figure>', rendered, re.DOTALL)
        assert figure and "<svg" in figure.group(1) and "<path" in figure.group(1), plot
    assert "memory" in rendered and "CPU" in rendered and "tasks" in rendered  # axes titles
    for table in ("worst-memory", "worst-duration", "worst-violations", "trends", "right-size"):
        assert f'<table id="{table}">' in rendered, table
    assert "report.suite.test_holds_memory" in rendered
    # The network log has every request; those of the page (not the browser's own, such as
    # its clock check) carry the page as initiator. A control page with one external image
    # shows that such a request is logged even though it cannot succeed here.
    assert page_requests(netlog) == [], page_requests(netlog)
    control = tmp_path / "control.html"
    control.write_text('<html><body><img src="http://192.0.2.1/x.png"></body></html>')
    control_log = tmp_path / "control-netlog.json"
    assert chromium(f"--log-net-log={control_log}", "--dump-dom", control.as_uri()).returncode == 0
    assert "http://192.0.2.1/x.png" in page_requests(control_log)

    shot = ARTIFACTS / "usage-report.png"
    shot.unlink(missing_ok=True)
    taken = chromium(f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri())
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
