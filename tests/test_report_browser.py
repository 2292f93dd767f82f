"""The generated pages in headless Chromium: no script errors, every plot rendered its SVG, and a
screenshot saved (tmp dir, and $DITBENCH_SCREENSHOT_DIR when set). Skips only without Chromium."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ditbench.report import build_report
from ditbench.report.site import _shell
from test_report_data import write_synthetic_run

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # a headless browser per test: seconds each
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found: install it (apt-get install chromium) "
                                                "or set CHROMIUM=/path/to/chromium"),
]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
         "--disable-component-update", "--disable-sync", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000")
INJECTION = "<script>alert(1)</script>"
# Chromium logs page console messages as `INFO:CONSOLE:<line>] "message", source: …` (older builds:
# `CONSOLE(<line)]`) at one level for every kind; uncaught exceptions say "Uncaught". The page's own
# hook also counts console.error calls (see ditbench.report.site.ERROR_HOOK).
CONSOLE_ERROR = re.compile(r"CONSOLE[:(]\d+\)?\]\s*\".*(Uncaught|Error)", re.IGNORECASE)


def chromium(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)


def rendered(page: Path, profile: Path) -> tuple[str, list[str]]:
    """(DOM after scripts ran, console error lines) for ``page``."""
    proc = chromium(page, profile, "--dump-dom")
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout, [line for line in proc.stderr.splitlines() if CONSOLE_ERROR.search(line)]


def script_errors(dom: str) -> int:
    """Errors counted by the page's own error hook (``<html data-js-errors="N">``)."""
    m = re.search(r'<html[^>]*data-js-errors="(\d+)"', dom)
    return int(m.group(1)) if m else 0


def plots_without_svg(dom: str) -> tuple[int, list[str]]:
    """(number of plot divs, ids of those without a rendered ``main-svg``)."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div id="([^"]+)" class="plotly-graph-div', dom)]
    missing = []
    for i, (pos, div_id) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(dom)
        if 'class="main-svg"' not in dom[pos:end]:
            missing.append(div_id)
    return len(starts), missing


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    run = write_synthetic_run(root / "results" / "run-browser", odd_name=INJECTION)
    build_report([run], root / "site")
    return root / "site"


def test_run_page_renders_every_plot_without_errors(site, tmp_path):
    page = site / "runs" / "run-browser.html"
    expected = page.read_text(encoding="utf-8").count("Plotly.newPlot(")
    dom, console = rendered(page, tmp_path / "profile")
    assert console == [], f"console errors: {console}"
    assert script_errors(dom) == 0
    count, missing = plots_without_svg(dom)
    assert count == expected >= 8, f"{count} plot divs in the DOM, {expected} figures written"
    assert missing == [], f"plots that rendered no SVG: {missing}"
    assert "<script>alert(1)" not in dom and "&lt;script&gt;alert(1)" in dom  # shown as text, not run


def test_index_renders_without_errors(site, tmp_path):
    dom, console = rendered(site / "index.html", tmp_path / "profile")
    assert console == [] and script_errors(dom) == 0
    assert 'href="runs/run-browser.html"' in dom


def test_detector_catches_a_broken_page(tmp_path):
    # The checks above must be able to fail: a page whose script throws is reported.
    page = tmp_path / "broken.html"
    body = "<script>console.error('plot failed');</script><script>notDefinedAnywhere();</script>"
    page.write_text(_shell("broken", body, None), encoding="utf-8")
    dom, console = rendered(page, tmp_path / "profile")
    assert script_errors(dom) == 2
    assert any("notDefinedAnywhere" in line for line in console)
    assert "Uncaught ReferenceError" in dom  # and the page shows it to the reader


def test_screenshot_of_run_page(site, tmp_path):
    shot = tmp_path / "run-page.png"
    proc = chromium(site / "runs" / "run-browser.html", tmp_path / "profile", f"--screenshot={shot}",
                    "--window-size=1400,2400", "--hide-scrollbars")
    assert proc.returncode == 0 and shot.is_file(), proc.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    # A blank 1400×2400 page compresses to about 10 KB; rendered plots and tables are far larger.
    assert len(data) > 50_000, f"screenshot is {len(data)} bytes: the page looks blank"
    target = os.environ.get("DITBENCH_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / shot.name)
