"""Synthetic result directories with known answers (used by every report test) and the loader's
tests. The synthetic laws are t = c·n^k with 3% log-normal noise, so fitted exponents are known."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ditbench.report.data import flatten_meta, load_run, meta_lookup
from ditbench.schema import MINIMAL_COLUMNS, REQUIRED_COLUMNS

NS = (256, 512, 1024, 2048, 4096, 8192)
# E1 laws (c seconds, exponent k): exact kernels quadratic, the polynomial method linear.
E1_LAWS = {"sdpa": (2e-9, 2.0), "exact": (4e-9, 2.0), "polynomial": (2e-6, 1.0), "uniform": (1e-8, 1.0)}
# SDPA meets the polynomial method where 2e-9·n² = 2e-6·n, i.e. n* = 1000.
TRUE_CROSSOVER = 1000.0
# E2 regimes: bound expression → (B(n), exponent of the polynomial method's time).
E2_REGIMES = {
    "1.0": (lambda n: 1.0, 1.0),
    "0.5*sqrt(log(n))": (lambda n: 0.5 * math.sqrt(math.log(n)), 1.15),
    "2.0*sqrt(log(n))": (lambda n: 2.0 * math.sqrt(math.log(n)), 1.8),
}
E3_EPS = (0.3, 0.06, 0.01, 1.5e-3, 2e-4, 2.5e-5)  # polynomial relative error at degree 1..6
E3_TIGHTNESS = 0.2  # measured error = 0.2 × the a-priori bound
V_MAX = 0.999  # ‖V‖_max of U[−1, 1] values
ERR_UNIFORM = 1.5e-3  # the uniform answer's error at B = 1 (DESIGN §2)
EXACT_KERNELS = ("sdpa", "exact", "grad_exact")  # rows say so in the `exact` column, as measure writes it


def _row(**kw) -> dict:
    base = dict(experiment="E1", op="forward", m=None, d=8, dv=8, bound=1.0, bound_spec="1.0", scale=1 / 8,
                eps=None, degree=None, rank=None, dtype="float32", device="cpu", threads=2, seed=0,
                iqr_s=None, repeats=5, err_max=None, err_max_rel=None, err_fro_rel=None,
                err_uniform=ERR_UNIFORM, err_vs_uniform=None, peak_bytes=1e6, status="ok", reason="",
                ref_rows=256)
    base.update(kw)
    if base["m"] is None:
        base["m"] = base["n"]
    # The self-describing columns measure writes (exact flag, √(ln n) threshold, a-priori bound).
    base["exact"] = base["kernel"] in EXACT_KERNELS
    base["threshold"] = math.sqrt(math.log(base["n"]))
    eps = base["eps"]
    if base["op"] == "forward" and not base["exact"] and eps is not None and 0 < eps < 1:
        base["err_bound"] = 2 * eps / (1 + math.sqrt(1 - eps * eps)) * V_MAX  # theory.output_error_bound
    if base["status"] == "ok":
        base["iqr_s"] = 0.05 * base["median_s"]
        if base["err_max"] is not None:
            base["err_max_rel"] = base["err_max"] / V_MAX
            base["err_fro_rel"] = base["err_max"] / 3
            base["err_vs_uniform"] = base["err_max"] / base["err_uniform"]
    return base


def synthetic_rows(seeds: int = 2, rng_seed: int = 0, odd_name: str | None = None) -> list[dict]:
    """Rows for E1–E4 and E6 plus skipped and failed points. ``odd_name``: an extra kernel (and
    reason) with that text, to test escaping."""
    rng = np.random.default_rng(rng_seed)

    def t(c: float, k: float, n: float) -> float:
        return c * n**k * math.exp(rng.normal(0.0, 0.03))

    rows = []
    for seed in range(seeds):
        for n in NS:
            for kernel, (c, k) in E1_LAWS.items():
                err = {"sdpa": 3e-7, "exact": 2e-7, "polynomial": 4e-6, "uniform": ERR_UNIFORM}[kernel]
                extra = dict(degree=4, rank=495, eps=1e-3) if kernel == "polynomial" else {}
                rows.append(_row(kernel=kernel, n=n, seed=seed, median_s=t(c, k, n), err_max=err, **extra))
            for spec, (bound, k) in E2_REGIMES.items():
                b = bound(n)
                if spec.startswith("2.0") and n == NS[-1]:
                    rows.append(_row(experiment="E2", kernel="polynomial", n=n, seed=seed, bound=b, bound_spec=spec,
                                     median_s=None, status="skipped", eps=1e-3,
                                     reason="predicted 2.1e+12 FLOPs exceed the budget of 1e+12"))
                    continue
                rows.append(_row(experiment="E2", kernel="polynomial", n=n, seed=seed, bound=b, bound_spec=spec,
                                 median_s=t(2e-6 * 256 ** (1 - k), k, n), err_max=5e-6 * b,
                                 err_uniform=ERR_UNIFORM * b * b, degree=int(4 + 2 * b), rank=None, eps=1e-3))
            if n <= 2048:
                for kernel, (c, k, err) in {"grad_exact": (1e-8, 2.0, 1e-12), "grad_chain": (3e-5, 1.0, 2e-5),
                                            "grad_poly_autograd": (1e-5, 1.0, 8e-6)}.items():
                    rows.append(_row(experiment="E4", op="backward", kernel=kernel, n=n, seed=seed,
                                     median_s=t(c, k, n), err_max=err, err_uniform=4e-3))
        for g, eps in enumerate(E3_EPS, start=1):
            bound_err = 2 * eps / (1 + math.sqrt(1 - eps * eps)) * V_MAX  # theory.output_error_bound
            rows.append(_row(experiment="E3", kernel="polynomial", n=1024, seed=seed, degree=g, eps=eps,
                             rank=math.comb(g + 8, 8), median_s=t(1e-7, 1.0, 1024) * g,
                             err_max=E3_TIGHTNESS * bound_err))
        peers = [("performer", dict(rank=16), 1e-4, 1.1e-3), ("performer", dict(rank=256), 6e-4, 6.8e-4),
                 ("nystrom", dict(rank=64), 2e-4, 9e-4),
                 ("polynomial", dict(degree=1, rank=9, eps=E3_EPS[0]), 1.5e-4, 2e-4),
                 ("polynomial", dict(degree=4, rank=495, eps=E3_EPS[3]), 2e-3, 1e-6), ("sdpa", {}, 3e-2, 3e-7),
                 ("uniform", {}, 2e-5, ERR_UNIFORM)]
        for kernel, params, sec, err in peers:
            rows.append(_row(experiment="E6", kernel=kernel, n=4096, seed=seed,
                             median_s=sec * math.exp(rng.normal(0, 0.03)),
                             err_max=err, **params))
        rows.append(_row(experiment="E6", kernel="hyperattention", n=4096, seed=seed, median_s=None, status="failed",
                         reason="RuntimeError: bucket sort produced 3 buckets for 4 heads"))
        if odd_name is not None:
            rows.append(_row(experiment="E6", kernel=odd_name, n=4096, seed=seed, median_s=1e-3, err_max=5e-5))
            rows.append(_row(experiment="E6", kernel=odd_name, n=8192, seed=seed, median_s=None, status="failed",
                             reason=odd_name))
    return rows


def write_synthetic_run(path: Path, *, seeds: int = 2, fits: bool = True, meta: dict | None = None,
                        odd_name: str | None = None) -> Path:
    """Write results.csv, meta.json and (optionally) fits.csv of a realistic run into ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(synthetic_rows(seeds, odd_name=odd_name))
    frame.to_csv(path / "results.csv", index=False)
    (path / "meta.json").write_text(json.dumps(meta if meta is not None else {
        "preset": "default", "commit": "0123abcd", "start_time": "2026-11-27T16:00:00Z",
        "end_time": "2026-11-27T16:20:00Z", "threads": 2,
        "versions": {"python": "3.11.7", "torch": "2.13.0"}, "cpu": "synthetic 2-core CPU", "gpu": None,
    }))
    if fits:
        fit_rows = [dict(experiment="E1", kernel=k, op="forward", bound_spec="1.0", exponent=e, ci_low=e - 0.05,
                         ci_high=e + 0.05, intercept=math.log(c), r2=0.999, n_min=NS[0], n_max=NS[-1],
                         points=len(NS), regime="quadratic" if e > 1.5 else "almost-linear",
                         best_model="n^2" if e > 1.5 else "n") for k, (c, e) in E1_LAWS.items()]
        fit_rows += [dict(experiment="E2", kernel="polynomial", op="forward", bound_spec=s, exponent=k,
                          ci_low=k - 0.06, ci_high=k + 0.06, intercept=-13.0, r2=0.998, n_min=NS[0], n_max=NS[-1],
                          points=len(NS), regime="almost-linear" if k < 1.2 else "intermediate", best_model="power")
                     for s, (_, k) in E2_REGIMES.items()]
        pd.DataFrame(fit_rows).to_csv(path / "fits.csv", index=False)
    return path


@pytest.fixture
def synthetic_run(tmp_path: Path) -> Path:
    return write_synthetic_run(tmp_path / "run-synthetic")


def test_synthetic_run_has_the_design_schema(synthetic_run):
    run = load_run(synthetic_run)
    assert run.missing_columns == ()
    assert set(REQUIRED_COLUMNS) <= set(run.results.columns)
    assert set(run.results["status"]) == {"ok", "skipped", "failed"}
    assert set(run.results["op"]) == {"forward", "backward"}
    assert run.fits is not None and len(run.fits) == len(E1_LAWS) + len(E2_REGIMES)
    assert run.not_ok["reason"].str.len().min() > 0


def test_missing_required_column_names_it(tmp_path):
    pd.DataFrame({"kernel": ["exact"], "n": [8], "median_s": [1.0]}).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ValueError, match=r"lacks required column\(s\) \['op', 'status'\]"):
        load_run(tmp_path)


def test_optional_columns_are_added_and_listed(tmp_path):
    pd.DataFrame({c: [v] for c, v in zip(MINIMAL_COLUMNS, ["exact", "forward", 8, 1e-3, "ok"])}).to_csv(
        tmp_path / "results.csv", index=False)
    run = load_run(tmp_path)
    assert "err_uniform" in run.missing_columns and run.results["err_uniform"].isna().all()
    assert run.meta == {} and run.fits is None


@pytest.mark.parametrize("bad, match", [
    ({"status": "done"}, r"status values \['done'\]"),
    ({"op": "sideways"}, r"op values \['sideways'\]"),
    ({"median_s": float("nan")}, "median_s not a positive number"),
    ({"median_s": -1.0}, "median_s not a positive number"),
])
def test_bad_values_are_refused(tmp_path, bad, match):
    row = dict(zip(MINIMAL_COLUMNS, ["exact", "forward", 8, 1e-3, "ok"])) | bad
    pd.DataFrame([row]).to_csv(tmp_path / "results.csv", index=False)
    with pytest.raises(ValueError, match=match):
        load_run(tmp_path)


def test_text_cells_are_kept_as_written(tmp_path):
    rows = [dict(zip(MINIMAL_COLUMNS, ["NA", "forward", 8, 1e-3, "ok"]), bound_spec="1", err_max="inf"),
            dict(zip(MINIMAL_COLUMNS, ["nan", "forward", 16, 2e-3, "ok"]), bound_spec="", err_max="")]
    pd.DataFrame(rows).to_csv(tmp_path / "results.csv", index=False)
    r = load_run(tmp_path).results
    assert r["kernel"].tolist() == ["NA", "nan"]  # names, not missing values
    assert r["bound_spec"].iloc[0] == "1" and pd.isna(r["bound_spec"].iloc[1])
    assert r["err_max"].iloc[0] == float("inf") and pd.isna(r["err_max"].iloc[1])
    assert r["n"].tolist() == [8, 16] and r["median_s"].tolist() == [1e-3, 2e-3]


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(ValueError, match="has no results.csv"):
        load_run(tmp_path)


def test_bad_meta_json(tmp_path):
    write_synthetic_run(tmp_path, fits=False)
    (tmp_path / "meta.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        load_run(tmp_path)


def test_meta_lookup_flattens_and_prefers_order():
    meta = {"versions": {"torch": "2.13"}, "machine": {"cpu": "Xeon", "gpu": None}, "preset": "smoke"}
    assert dict(flatten_meta(meta))["versions.torch"] == "2.13"
    assert meta_lookup(meta, "gpu", "cpu") == "Xeon"  # None counts as absent
    assert meta_lookup(meta, "machine.cpu") == "Xeon"
    assert meta_lookup(meta, "commit") == ""
