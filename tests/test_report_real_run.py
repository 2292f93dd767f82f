"""One small real run through `ditbench run` (measure → fit → report), in-process to stay fast."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ditbench.cli import main as ditbench_main

# Three sizes of SDPA (the exact baseline) and the uniform answer: the smallest sweep that fits.
TINY = """
name = "report-tiny"
description = "three sizes, SDPA and the uniform baseline (report test)"

[[sweep]]
experiment = "E1"
kernels = ["sdpa", "uniform"]
n = [64, 128, 256]
d = 8
bound = [1]
scale = "1/d"
min_run_time = 0.005
min_repeats = 3
ref_rows = 64
timeout_s = 30
"""


@pytest.mark.slow
def test_real_run_builds_a_report(tmp_path: Path):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY, encoding="utf-8")
    out = tmp_path / "run"
    status = ditbench_main(["run", "--config", str(config), "--out", str(out), "--executor", "in-process",
                            "--threads", "1", "--quiet"])
    assert status == 0
    page = (out / "report" / "runs" / "run.html").read_text(encoding="utf-8")
    assert re.findall(r'<section id="([^"]+)"', page)[:1] == ["scaling"]
    assert page.count("Plotly.newPlot(") == 2  # time vs n and speed-up over exact
    for kernel in ("sdpa", "uniform"):
        assert f"<td>{kernel}</td>" in page  # in the fit table
    assert (out / "report" / "plotly.min.js").is_file()
