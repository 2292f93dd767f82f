"""The static site: layout, offline plotly.js once per site, escaping, omitted sections, known
answers on synthetic runs, the CLI, and build time for a default-sized run."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from ditbench.cli import main as ditbench_main
from ditbench.report import build_report
from ditbench.report.site import PLOTLY_JS, slugify
from test_report_data import E2_REGIMES, TRUE_CROSSOVER, synthetic_rows, write_synthetic_run

INJECTION = "<script>alert(1)</script>"


def _sections(page: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)"', page)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("site")
    run = write_synthetic_run(root / "results" / "run-a", fits=False, odd_name=INJECTION)
    index = build_report([run], root / "site")
    return index, (root / "site" / "runs" / "run-a.html").read_text(encoding="utf-8")


def test_layout_and_plotly_written_once_offline(built):
    index, page = built
    site = index.parent
    assert sorted(p.name for p in site.iterdir()) == ["index.html", PLOTLY_JS, "runs"]
    assert (site / PLOTLY_JS).stat().st_size > 1_000_000  # the real bundle, not a stub
    assert '<script src="../plotly.min.js"' in page
    assert "cdn.plot.ly" not in page and "https://" not in page  # nothing fetched from the network
    assert len(page) < 600_000  # figures only; the 4.8 MB bundle is not inlined
    assert page.count("Plotly.newPlot(") >= 8
    assert 'href="runs/run-a.html"' in index.read_text(encoding="utf-8")


def test_every_section_present_for_a_full_run(built):
    _, page = built
    assert _sections(page) == ["scaling", "phase", "accuracy", "gradients", "pareto", "fits", "skipped",
                               "environment"]


def test_injected_text_is_escaped_everywhere(built):
    index, page = built
    for html in (page, index.read_text(encoding="utf-8")):
        assert INJECTION not in html and "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # shown as text in the tables
    # Inside figure JSON plotly writes "<" as \u003c, so no string can close the <script> element.
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)
    assert all("alert(1)" not in s or "\\u003c" in s or "&lt;" in s for s in scripts)


def test_absent_data_omits_sections(tmp_path):
    # E1 forward rows only, all ok, one kernel family: no phase, accuracy, gradient, Pareto or
    # skipped section — and no empty plot in their place.
    rows = pd.DataFrame(synthetic_rows(seeds=1))
    rows = rows[(rows["experiment"] == "E1") & (rows["status"] == "ok")]
    run = tmp_path / "e1"
    run.mkdir()
    rows.to_csv(run / "results.csv", index=False)
    build_report([run], tmp_path / "site")
    page = (tmp_path / "site" / "runs" / "e1.html").read_text(encoding="utf-8")
    assert _sections(page) == ["scaling", "fits", "environment"]
    assert page.count("Plotly.newPlot(") == 2  # scaling and speed-up
    assert "No meta.json" in page


def test_page_without_figures_loads_no_plotly(tmp_path):
    run = tmp_path / "skipped-only"
    run.mkdir()
    pd.DataFrame([dict(kernel="exact", op="forward", n=1 << 20, median_s=None, status="skipped",
                       reason="predicted 8 TB exceeds the memory budget")]).to_csv(run / "results.csv", index=False)
    build_report([run], tmp_path / "site")
    page = (tmp_path / "site" / "runs" / "skipped-only.html").read_text(encoding="utf-8")
    assert _sections(page) == ["skipped", "environment"] and PLOTLY_JS not in page
    assert "predicted 8 TB exceeds the memory budget" in page


def test_known_answers_reach_the_page(built):
    _, page = built
    # Crossover: SDPA 2e-9·n² meets the polynomial method 2e-6·n at n* = 1000 (3% noise).
    m = re.search(r"<td>polynomial</td><td>sdpa</td><td>crosses</td><td>([\d,]+)</td><td>\[([\d,]+), ([\d,]+)\]", page)
    assert m, "crossover row missing"
    n_star, low, high = (float(g.replace(",", "")) for g in m.groups())
    assert low <= TRUE_CROSSOVER <= high and abs(n_star / TRUE_CROSSOVER - 1) < 0.1
    # Fitted exponents (computed by ditbench.fit.fit_table because this run has no fits.csv).
    for spec, (_, k) in E2_REGIMES.items():
        row = re.search(rf"<td>E2</td><td>polynomial</td><td>forward</td><td>{re.escape(spec)}</td>"
                        r"(?:<td>[^<]*</td>)*?<td>(\d\.\d+)</td><td>\[(\d\.\d+), (\d\.\d+)\]</td>", page)
        assert row, f"fit row for {spec} missing"
        lo, hi = float(row.group(2)), float(row.group(3))
        assert lo <= k <= hi, f"{spec}: CI [{lo}, {hi}] misses the true exponent {k}"


@pytest.mark.slow
def test_index_lists_runs_with_metadata_and_headlines(tmp_path):
    a = write_synthetic_run(tmp_path / "x" / "run", fits=True)
    b = write_synthetic_run(tmp_path / "y" / "run", fits=False,
                            meta={"preset": {"name": "smoke"}, "git_commit": "feedbeef", "cpu_model": "Xeon <b>",
                                  "start_time": "2026-11-27T09:00:00+00:00"})
    index = build_report([a, b], tmp_path / "site").read_text(encoding="utf-8")
    assert 'href="runs/run.html"' in index and 'href="runs/run-2.html"' in index  # same names, unique pages
    assert "feedbeef" in index and "smoke" in index and "Xeon &lt;b&gt;" in index
    assert "0123abcd" in index and "2026-11-27T16:00:00Z" in index
    assert "sdpa" in index and "k = 2.00" in index  # headline exponents from fits.csv


def test_slugify_is_safe_and_unique():
    taken: set[str] = set()
    assert slugify("../../etc", taken) == "etc"
    assert slugify("a b<c>", taken) == "a-b-c"
    assert slugify("a b<c>", taken) == "a-b-c-2"
    assert slugify("...", taken) == "run"


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="at least one results directory"):
        build_report([], tmp_path / "site")
    with pytest.raises(ValueError, match="has no results.csv"):
        build_report([tmp_path], tmp_path / "site")


def test_cli(tmp_path, capsys):
    run = write_synthetic_run(tmp_path / "run", seeds=1)
    assert ditbench_main(["report", str(run), "--out", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").is_file()
    assert "report written" in capsys.readouterr().out
    assert ditbench_main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "site")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_default_sized_run_builds_without_a_fits_file(tmp_path):
    # ~200 rows, like the default preset; fits computed by the report (no fits.csv): the slowest
    # path. How long it takes is a benchmark figure, not a unit-test assertion (no wall clock here).
    run = write_synthetic_run(tmp_path / "run", seeds=3, fits=False)
    assert len(pd.read_csv(run / "results.csv")) >= 200
    build_report([run], tmp_path / "site")
    assert (tmp_path / "site" / "index.html").is_file()
