"""The perf scripts behind the README's headline figures are thin wrappers over the measurement
code (Case, workloads, time_interleaved): run both at tiny sizes and check what they record."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, monkeypatch):
    spec = importlib.util.spec_from_file_location(f"{name}_probe", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_perf_forward_rows_ratios_and_crossover(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    mod = _load("perf_forward", monkeypatch)
    result = mod.main(["--n", "64", "128", "256", "--d", "4", "--rounds", "1", "--poly-min-time", "0.01",
                       "--sdpa-min-time", "0.01", "--check-rows", "16", "--json", str(tmp_path / "p.json")])
    rows = result["rows"]
    assert {r["label"] for r in rows} == {"polynomial", "polynomial[torch]", "sdpa"} and len(rows) == 9
    for r in rows:
        assert r["median_s"] > 0 and r["repeats"] == len(r["samples"]) >= 1 and r["ref_rows"] == 16
        assert r["matmul_gflops"] > 0 and r["gflops"] == pytest.approx(mod.executed_gflop(r) / r["median_s"])
    poly = [r for r in rows if r["label"] == "polynomial[torch]"]
    assert all(r["impl"] == "torch" and r["err_max"] <= r["bound_exact_arithmetic"] for r in poly)
    assert result["crossover"][4]["status"] in ("crosses", "crosses-below-range", "crosses-beyond-range",
                                                "never-faster", "faster-but-steeper", "not fitted")
    assert (tmp_path / "p.json").exists()


def test_perf_gradient_rows(monkeypatch):
    mod = _load("perf_gradient", monkeypatch)
    rows = mod.main(["--n", "128", "--rounds", "1", "--min-run-time", "0.01"])
    assert [r["label"] for r in rows] == list(mod.ROUTES)
    exact = rows[0]
    assert exact["speedup_vs_exact"] == 1.0 and exact["err_max_rel"] < 1e-5
    assert all(r["err_vs_uniform"] < 1 and r["median_s"] > 0 for r in rows)
