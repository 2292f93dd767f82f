"""The published asv dashboard renders in headless Chromium with no network once
``tools/asv_offline.py`` has vendored its CDN scripts (and does not without it).

A tiny asv project (one benchmark, ``environment_type: existing``) is run, published by the
installed asv — the same pages the ditbench dashboard gets — and served from 127.0.0.1 as
``asv preview`` does (its pages fetch JSON, which Chromium refuses over file://). Chromium runs
with background networking off; the CDN hosts are unreachable here and in CI either way, and the
page's own ``onerror`` handler shows asv's "external dependencies failed to load" page.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from test_report_browser import CHROMIUM, CONSOLE_ERROR, FLAGS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from asv_offline import LOCAL, make_offline  # noqa: E402

ASV = shutil.which("asv")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,  # asv run + publish + two headless browsers: ~20 s
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not found (install chromium or set CHROMIUM)"),
    pytest.mark.skipif(ASV is None, reason="asv is not installed (the bench extra)"),
]
FAILED = "external (JavaScript) dependencies of airspeed velocity failed to load"


def _sh(cwd: Path, *cmd: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}"


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("asvsite")
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "__init__.py").write_text("")
    (root / "benchmarks" / "bench_demo.py").write_text(
        "class Demo:\n    params = [[1, 2]]\n    param_names = ['n']\n\n"
        "    def time_sum(self, n):\n        sum(range(100 * n))\n")
    (root / "asv.conf.json").write_text(json.dumps({
        "version": 1, "project": "demo", "repo": ".", "branches": ["main"], "environment_type": "existing",
        "benchmark_dir": "benchmarks", "results_dir": "results", "html_dir": "html"}))
    _sh(root, "git", "init", "-q", "-b", "main")
    _sh(root, "git", "add", "-A")
    _sh(root, "git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-qm", "demo")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    _sh(root, ASV, "machine", "--yes", "--machine", "demo")
    _sh(root, ASV, "run", "--python=same", "--quick", "--machine", "demo", "--set-commit-hash", sha)
    _sh(root, ASV, "publish")
    return root / "html"


def _dom(html: Path, profile: Path) -> tuple[str, list[str]]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    handler.log_message = lambda *a: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=120, check=False)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if CONSOLE_ERROR.search(line)]


def test_published_pages_are_blank_without_the_vendored_scripts(published, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(published, bare)
    dom, _ = _dom(bare, tmp_path / "profile")
    assert FAILED in dom  # the test can fail: asv's own pages need the CDNs


def test_offline_dashboard_renders_its_plots(published, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(published, site)
    assert make_offline(site) == []  # no script or stylesheet left on a CDN
    index = (site / "index.html").read_text()
    assert all(url not in index for url in LOCAL) and "vendor/jquery.min.js" in index
    dom, console_errors = _dom(site, tmp_path / "profile")
    assert FAILED not in dom
    assert "Demo.time_sum" in dom and 'class="flot-base"' in dom  # the summary grid drew its plot
    assert console_errors == []


def test_asv_conf_has_no_placeholder_urls():
    text = (ROOT / "asv.conf.json").read_text()
    assert "example.invalid" not in text and "example.com" not in text
