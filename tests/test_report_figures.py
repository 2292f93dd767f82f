"""Figures and the selections behind them, on synthetic data with known answers: Pareto fronts,
bound tightness, speed-ups, the √(ln n) threshold, uniform baselines, and absent data → None."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ditbench.report import figures
from ditbench.report.data import load_run
from ditbench.report.fitting import crossovers, fitted_lines
from ditbench.report.select import (
    best_at_error_levels, by_series, exact_baseline, nonfinite_errors, pareto_front, pareto_points,
)
from test_report_data import E1_LAWS, E3_TIGHTNESS, NS, TRUE_CROSSOVER, V_MAX, write_synthetic_run


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return load_run(write_synthetic_run(tmp_path_factory.mktemp("fig") / "run")).results


def _names(fig) -> list[str]:
    return [t.name or "" for t in fig.data]


def test_pareto_front_known_answer():
    seconds = np.array([1.0, 2.0, 3.0, 4.0, 4.0, 0.5, 2.0])
    errors = np.array([10.0, 5.0, 7.0, 1.0, 1.0, 20.0, 6.0])
    # (3, 7) is beaten by (2, 5); the second (4, 1) duplicates the first; (2, 6) loses to (2, 5).
    assert pareto_front(seconds, errors).tolist() == [True, True, False, True, False, True, False]
    with pytest.raises(ValueError, match="same shape"):
        pareto_front(seconds, errors[:3])


def test_best_at_error_levels_is_fastest_reaching_each_level():
    pts = pd.DataFrame({"label": list("abcd"), "median_s": [1.0, 2.0, 3.0, 0.5], "err_max": [1e-2, 1e-4, 1e-3, 1.0]})
    best = best_at_error_levels(pts)
    assert best["label"].tolist() == ["d", "a", "b"]  # c (slower and less accurate than b) never wins
    assert best["err_max"].tolist() == [1.0, 1e-2, 1e-4]


def test_pareto_points_picks_the_peer_slice_and_labels_configurations(rows):
    pts, where = pareto_points(rows)
    assert where.startswith("n = 4096")
    assert {"performer (rank=16)", "performer (rank=256)", "polynomial (degree=1, rank=9, eps=0.3)",
            "uniform", "sdpa"} <= set(pts["label"])
    front = set(pts.loc[pts["front"], "label"])
    assert "nystrom" not in front and "performer (rank=256)" not in front  # both dominated
    single = rows[rows["kernel"].isin(["sdpa", "polynomial", "uniform"])]
    assert pareto_points(single) is None  # one approximate kernel: no comparison to draw


def test_accuracy_points_recover_bound_and_tightness(rows):
    p, sweep = figures.accuracy_points(rows)
    assert sweep == "degree"
    e3 = p[p["label"].str.startswith("E3")]
    assert sorted(e3["degree"]) == [1, 2, 3, 4, 5, 6]
    # 2ε/(1+√(1−ε²))·‖V‖max, ‖V‖max from err_max/err_max_rel
    expected = 2 * e3["eps"] / (1 + np.sqrt(1 - e3["eps"] ** 2)) * V_MAX
    assert np.allclose(e3["bound_err"], expected, rtol=1e-12)
    assert np.allclose(e3["tightness"], E3_TIGHTNESS, rtol=1e-9)


def test_exact_baseline_is_the_fastest_exact_kernel(rows):
    e1 = rows[(rows["experiment"] == "E1") & (rows["status"] == "ok")]
    assert exact_baseline(e1) == "sdpa"  # exact and sdpa both cover every n; sdpa is faster
    assert exact_baseline(e1[e1["kernel"] == "polynomial"]) is None


def test_speedup_matches_the_laws(rows):
    e1 = rows[(rows["experiment"] == "E1") & (rows["status"] == "ok")]
    fig = figures.speedup_figure(e1)
    poly = next(t for t in fig.data if t.name == "polynomial")
    # t_sdpa / t_poly = (2e-9·n²)/(2e-6·n) = n/1000 up to the 3% noise of each median.
    assert np.allclose(np.array(poly.y), np.array(poly.x) / TRUE_CROSSOVER, rtol=0.15)


def test_fits_and_crossover_on_known_laws(rows):
    e1 = rows[(rows["experiment"] == "E1") & (rows["status"] == "ok")]
    lines = {ln.label: ln for ln in fitted_lines(e1)}
    for kernel, (_, k) in E1_LAWS.items():
        assert lines[kernel].ci_low - 0.05 <= k <= lines[kernel].ci_high + 0.05
        assert lines[kernel].band["low"].le(lines[kernel].band["high"]).all()
    (cross,) = crossovers(e1)
    assert cross.label == "polynomial" and cross.baseline == "sdpa" and cross.drawable
    assert cross.result.low <= TRUE_CROSSOVER <= cross.result.high


def test_scaling_figure_draws_guides_and_crossover(rows):
    e1 = rows[(rows["experiment"] == "E1") & (rows["status"] == "ok")]
    fig = figures.scaling_figure(e1, fitted_lines(e1), crossovers(e1))
    names = _names(fig)
    assert any(n.startswith("reference slope 1") for n in names)
    assert any(n.startswith("reference slope 2") for n in names)
    assert sum(n.startswith("fit k=") for n in names) == len(E1_LAWS)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert "seconds" in fig.layout.yaxis.title.text and "tokens" in fig.layout.xaxis.title.text
    assert any(s.type == "line" for s in fig.layout.shapes)  # the n* marker
    assert figures.scaling_figure(e1[e1["n"] == NS[0]], [], []) is None  # one size: nothing to scale


def test_phase_heatmaps_draw_the_threshold_and_uniform_baseline(rows):
    assert figures.phase_kernels(rows) == ["polynomial"]
    fig = figures.phase_time_heatmap(rows, "polynomial")
    thr = next(t for t in fig.data if t.name == "threshold B = √(ln n)")
    assert np.allclose(thr.y, [math.sqrt(math.log(round(n))) for n in thr.x])
    err = figures.phase_error_heatmap(rows, "polynomial")
    assert [a.text for a in err.layout.annotations][:2] == ["polynomial err_max", "uniform baseline err_uniform"]


def test_accuracy_falls_back_to_eps_when_degree_is_not_recorded(rows):
    p, sweep = figures.accuracy_points(rows.assign(degree=np.nan))
    assert sweep == "eps"
    e3 = p[p["label"].str.startswith("E3")]
    assert len(e3) == 6 and np.allclose(e3["tightness"], E3_TIGHTNESS, rtol=1e-9)
    assert figures.accuracy_figure(rows.assign(degree=np.nan)).layout.xaxis.type == "log"


def test_every_error_figure_shows_the_uniform_baseline(rows):
    assert any("uniform baseline" in n for n in _names(figures.accuracy_figure(rows)))
    assert "uniform baseline (err_uniform)" in _names(figures.gradient_figure(rows))
    pts, where = pareto_points(rows)
    assert "uniform" in _names(figures.pareto_figure(pts, where))


def test_phase_exponent_figure_error_bars_are_the_cis():
    fits = pd.DataFrame({"kernel": ["polynomial"] * 2, "op": ["forward"] * 2, "bound_spec": ["1", "sqrt(log(n))"],
                         "exponent": [1.0, 1.5], "ci_low": [0.9, 1.3], "ci_high": [1.2, 1.6]})
    rows = pd.DataFrame({"kernel": ["polynomial", "sdpa"], "exact": [False, True]})
    fig = figures.phase_exponent_figure(fits, rows)
    (trace,) = fig.data
    assert list(trace.y) == [1.0, 1.5]
    assert np.allclose(trace.error_y.array, [0.2, 0.1]) and np.allclose(trace.error_y.arrayminus, [0.1, 0.2])
    assert figures.phase_exponent_figure(fits.iloc[:1], rows) is None  # one regime: no transition to show
    assert figures.phase_exponent_figure(fits.drop(columns="bound_spec"), rows) is None
    # Exactness comes from the rows: an exact kernel's exponents are no phase transition.
    assert figures.phase_exponent_figure(fits, rows.assign(exact=True)) is None


def test_absent_data_gives_no_figure(rows):
    fwd = rows[rows["op"] == "forward"]
    assert figures.gradient_figure(fwd) is None
    assert figures.accuracy_figure(fwd.assign(eps=np.nan)) is None
    assert figures.speedup_figure(fwd[fwd["kernel"] == "polynomial"]) is None


def test_infinite_errors_are_listed_and_not_plotted(rows):
    bad = rows.copy()
    idx = bad.index[(bad["experiment"] == "E6") & (bad["kernel"] == "nystrom")]
    bad.loc[idx, "err_max"] = np.inf
    assert len(nonfinite_errors(bad)) == len(idx) > 0
    pts, _ = pareto_points(bad)
    assert "nystrom" not in set(pts["kernel"])
    assert len(by_series(bad[bad["status"] == "ok"])) == len(by_series(rows[rows["status"] == "ok"]))


def test_scaling_section_draws_each_experiment_from_its_own_rows_and_no_e2(tmp_path, monkeypatch):
    """The "Scaling (E1)" section: one figure pair per forward experiment other than E2* (the phase
    section's), each figure given that experiment's rows only. The synthetic run has E1, E2 (on
    the same sizes as E1, so a mix-up would draw) and E6 (one size: no scaling figure)."""
    from ditbench.report import sections

    drawn: list[tuple[str, set[str]]] = []
    for name in ("scaling_figure", "speedup_figure"):
        real = getattr(figures, name)

        def spy(rows, *args, _real=real, _name=name, **kwargs):
            drawn.append((_name, set(rows["experiment"].astype(str))))
            return _real(rows, *args, **kwargs)

        monkeypatch.setattr(figures, name, spy)
    run = load_run(write_synthetic_run(tmp_path / "run"))
    assert {"E1", "E2"} <= set(run.ok.loc[run.ok["op"] == "forward", "experiment"])
    section = sections.scaling_section(sections.PageData(run=run, fits=None))
    assert section is not None and section.title == "Scaling (E1)"
    assert drawn == [("scaling_figure", {"E1"}), ("speedup_figure", {"E1"})]
    titles = [fig.layout.title.text or "" for fig, _ in section.figures]
    assert titles and all("E1" in t and "E2" not in t for t in titles), titles
    # The E2 rows are drawn by the phase section instead.
    assert sections.phase_section(sections.PageData(run=run, fits=None)) is not None
