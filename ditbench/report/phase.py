"""E2, the phase transition, as the theory allows it to be measured (DESIGN §4, docs/phase.md).

Reads result rows only (experiments whose name starts with ``E2``). Four views:

* time against the cost model's predicted work (``predicted_flops``), so that rank growth with n
  is separated from n-scaling: points on one line mean the time is the predicted work;
* the fitted exponent of time against c in B = c·√ln n, beside the exponent of the predicted work
  on the same sizes (what the cost model says the method must show);
* the crossover n*(B) with exact SDPA at constant B (ditbench.fit.crossover, 95% interval);
* errors on planted large-margin inputs, with the uniform answer's error beside every one;

and the table of E2's two headline fits (:data:`HEADLINES`: constant B and growing B), each with
its label beside the label the cost model's exponent on the same sizes would get.

What none of these can show: a lower bound. The SETH result is about every algorithm on
worst-case inputs; a curve of one algorithm is an upper bound on its own cost.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..fit.crossover import crossover
from ..fit.power_law import InsufficientDataError, PowerLawFit, fit_power_law
from ..fit.regime import INCONCLUSIVE, INSUFFICIENT_DATA, NOT_ASYMPTOTIC, verdict
from ..fit.table import fit_table
from .figures import UNIFORM_STYLE, _color, _log_n_axis, _style

# "0.75*sqrt(log(n))" → c = 0.75 (the B = c·√ln n regimes); constant bounds do not match.
C_PATTERN = re.compile(r"^\s*([0-9.]+)\s*\*\s*sqrt\(\s*log\(\s*n\s*\)\s*\)\s*$")
EXACT = "sdpa"  # the exact baseline of the crossover view
PREFIX = "E2"  # the experiments this section draws (E2-regime, E2-crossover, E2-hard; the full preset's E2)


def is_phase(experiment: pd.Series) -> pd.Series:
    """Which rows belong to an E2* experiment (drawn here, and so not in the E1 scaling section)."""
    return experiment.astype(str).str.startswith(PREFIX)


def e2_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Measured forward rows of every E2* experiment."""
    if rows is None or rows.empty or "experiment" not in rows.columns:
        return pd.DataFrame()
    r = rows[is_phase(rows["experiment"]) & (rows["status"] == "ok")]
    r = r[r["op"].fillna("forward") == "forward"] if "op" in r.columns else r
    missing: dict[str, object] = {c: np.nan for c in ("predicted_flops", "degree", "rank", "d", "err_uniform")
                                  if c not in r.columns}
    missing |= {c: "" for c in ("setting", "bound_spec") if c not in r.columns}
    return r.assign(**missing) if missing else r


def c_of(bound_spec: object) -> float | None:
    m = C_PATTERN.match(str(bound_spec))
    return float(m.group(1)) if m else None


def _series_label(experiment: str, bound_spec: str, setting: str = "") -> str:
    extra = " planted" if "planted" in str(setting) else ""
    return f"{experiment} · B={bound_spec}{extra}"


def work_figure(rows: pd.DataFrame) -> go.Figure | None:
    """Median time against predicted FLOPs of the polynomial kernel, one trace per series."""
    r = e2_rows(rows)
    r = r[(r["kernel"] == "polynomial") & (r["predicted_flops"] > 0)] if not r.empty else r
    if r.empty:
        return None
    groups = list(r.groupby(["experiment", "bound_spec", "setting"], dropna=False, sort=True))
    labels = [_series_label(*key) for key, _ in groups]
    fig = go.Figure()
    for (_, g), label in zip(groups, labels):
        m = g.groupby("n", as_index=False)[["median_s", "predicted_flops", "degree", "rank", "d"]].median()
        fig.add_trace(go.Scatter(
            x=m["predicted_flops"], y=m["median_s"], mode="lines+markers", name=escape(label),
            line=dict(color=_color(label, labels)), customdata=np.stack([m["n"], m["degree"], m["rank"], m["d"]], -1),
            hovertemplate="n=%{customdata[0]:.0f} d=%{customdata[3]:.0f} degree %{customdata[1]:.0f} "
                          "rank %{customdata[2]:.0f}<br>%{x:.3g} flop → %{y:.3g} s<extra></extra>"))
    rate = float(np.median(r["median_s"] / r["predicted_flops"]))
    span = np.array([r["predicted_flops"].min(), r["predicted_flops"].max()])
    fig.add_trace(go.Scatter(x=span, y=span * rate, mode="lines", name=f"time ∝ work ({1e-9 / rate:.2g} GFLOP/s)",
                             line=dict(color="#999999", dash="dash")))
    fig.update_xaxes(type="log", title_text="predicted work (theory cost model, FLOP)")
    fig.update_yaxes(type="log", title_text="median time (s)")
    return _style(fig, "E2: time against the cost model's predicted work")


def _fit(g: pd.DataFrame, column: str) -> PowerLawFit | None:
    try:
        return fit_power_law(g["n"].to_numpy(float), g[column].to_numpy(float))
    except (InsufficientDataError, ValueError):
        return None


def exponent_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per polynomial series with B = c·√ln n: measured exponent (95% CI) over the fitted sizes and
    the exponent of the predicted work on exactly those sizes (least squares on log–log)."""
    r = e2_rows(rows)
    out = []
    if r.empty:
        return pd.DataFrame()
    for (exp, spec, setting), g in r[r["kernel"] == "polynomial"].groupby(
            ["experiment", "bound_spec", "setting"], dropna=False, sort=True):
        c, fit = c_of(spec), _fit(g, "median_s")
        if c is None or fit is None:
            continue
        kept = g[(g["n"] >= fit.n_min) & (g["n"] <= fit.n_max) & (g["predicted_flops"] > 0)]
        work = kept.groupby("n")["predicted_flops"].median()
        predicted = float(np.polyfit(np.log(work.index.to_numpy(float)), np.log(work.to_numpy()), 1)[0]) \
            if len(work) >= 2 else math.nan
        out.append(dict(experiment=exp, bound_spec=spec, setting=setting, c=c, exponent=fit.exponent,
                        ci_low=fit.ci_low, ci_high=fit.ci_high, predicted=predicted, n_min=fit.n_min,
                        n_max=fit.n_max, d_range=_span(g["d"]), rank_range=_span(g["rank"])))
    return pd.DataFrame(out)


def _span(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    return "" if v.empty else f"{int(v.min())}–{int(v.max())}"


def exponent_figure(rows: pd.DataFrame) -> go.Figure | None:
    """Measured exponent (95% CI) and the cost model's exponent against c, per experiment."""
    e = exponent_rows(rows)
    if e.empty:
        return None
    fig = go.Figure()
    labels = sorted(e["experiment"].unique())
    for exp in labels:
        s = e[e["experiment"] == exp].sort_values("c")
        color = _color(exp, labels)
        fig.add_trace(go.Scatter(
            x=s["c"], y=s["exponent"], mode="lines+markers", name=escape(f"{exp} measured"),
            line=dict(color=color), error_y=dict(type="data", symmetric=False, array=s["ci_high"] - s["exponent"],
                                                 arrayminus=s["exponent"] - s["ci_low"]),
            hovertemplate="c=%{x}<br>exponent %{y:.3f}<extra></extra>"))
        fig.add_trace(go.Scatter(x=s["c"], y=s["predicted"], mode="lines+markers", name=escape(f"{exp} cost model"),
                                 line=dict(color=color, dash="dash"), marker=dict(symbol="x")))
    for k, text in ((1.0, "almost-linear (k = 1)"), (2.0, "exact attention (k = 2)")):
        fig.add_hline(y=k, line=dict(color="#999999", dash="dot"), annotation_text=text, annotation_position="top left")
    fig.update_xaxes(title_text="c in B = c·√(ln n)")
    fig.update_yaxes(title_text="exponent k in t ∝ n^k over the measured sizes")
    return _style(fig, "E2: fitted exponent against c, beside the cost model's")


def crossover_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Per constant entry bound: the fitted crossover n* of polynomial with SDPA (95% interval)."""
    r = e2_rows(rows)
    out = []
    if r.empty:
        return pd.DataFrame()
    for (exp, spec), g in r.groupby(["experiment", "bound_spec"], sort=True):
        if c_of(spec) is not None or not {"polynomial", EXACT} <= set(g["kernel"]):
            continue
        approx, exact = _fit(g[g["kernel"] == "polynomial"], "median_s"), _fit(g[g["kernel"] == EXACT], "median_s")
        if approx is None or exact is None:
            continue
        x = crossover(approx, exact)
        out.append(dict(experiment=exp, bound=float(g["bound"].median()), status=x.status, n_star=x.n_star,
                        low=x.low, high=x.high, k_poly=approx.exponent, k_exact=exact.exponent,
                        n_lo=x.n_range[0], n_hi=x.n_range[1]))
    return pd.DataFrame(out)


def crossover_figure(rows: pd.DataFrame) -> go.Figure | None:
    """n*(B) with its interval; points beyond the measured range drawn hollow."""
    x = crossover_rows(rows)
    x = x[x["n_star"].notna()] if not x.empty else x
    if x.empty:
        return None
    fig = go.Figure()
    for inside, symbol, name in ((True, "circle", "n* (inside the measured range)"),
                                 (False, "circle-open", "n* (extrapolated beyond / below the range)")):
        s = x[(x["status"] == "crosses") == inside]
        if s.empty:
            continue
        hi = s["high"].fillna(s["n_star"]) - s["n_star"]
        lo = s["n_star"] - s["low"].fillna(s["n_star"])
        fig.add_trace(go.Scatter(x=s["bound"], y=s["n_star"], mode="markers", name=name,
                                 marker=dict(size=12, symbol=symbol, color="#1f77b4"),
                                 error_y=dict(type="data", symmetric=False, array=hi, arrayminus=lo),
                                 text=s["status"], hovertemplate="B=%{x}<br>n* %{y:.3g}<br>%{text}<extra></extra>"))
    fig.update_xaxes(title_text="constant entry bound B (inputs in [−B, B])")
    fig.update_yaxes(type="log", title_text=f"crossover n* with {EXACT} (tokens)")
    return _style(fig, "E2: crossover n*(B) with exact SDPA at constant B")


def hard_figure(rows: pd.DataFrame) -> go.Figure | None:
    """err_max of the polynomial kernel and of the uniform answer on planted inputs, per series."""
    r = e2_rows(rows)
    r = r[r["setting"].astype(str).str.contains("planted")] if not r.empty else r
    r = r[r["kernel"] == "polynomial"] if not r.empty else r
    if r.empty:
        return None
    labels = sorted(r["bound_spec"].unique())
    fig = go.Figure()
    for spec in labels:
        m = r[r["bound_spec"] == spec].groupby("n", as_index=False)[["err_max", "err_uniform"]].median()
        color = _color(spec, labels)
        fig.add_trace(go.Scatter(x=m["n"], y=m["err_max"].clip(lower=1e-16), mode="lines+markers",
                                 name=escape(f"polynomial, B={spec}"), line=dict(color=color)))
        fig.add_trace(go.Scatter(x=m["n"], y=m["err_uniform"], mode="lines", name=escape(f"uniform answer, B={spec}"),
                                 line={**UNIFORM_STYLE, "color": color}))
    _log_n_axis(fig)
    fig.update_yaxes(type="log", title_text="max error ‖T − Att‖max")
    return _style(fig, "E2: planted large-margin inputs — error beside the uniform answer's")


def skipped_note(rows: pd.DataFrame) -> str:
    """One line per E2* series with skipped points: how many and the first reason."""
    if rows is None or rows.empty:
        return ""
    s = rows[is_phase(rows["experiment"]) & (rows["status"] == "skipped")]
    lines = []
    for (exp, spec, kernel), g in s.groupby(["experiment", "bound_spec", "kernel"], sort=True):
        reason = str(g["reason"].iloc[0])
        lines.append(f"{exp} {kernel} B={spec}: {len(g)} skipped (n = {', '.join(str(int(v)) for v in g['n'])}): "
                     f"{reason[:160]}{'…' if len(reason) > 160 else ''}")
    return "\n".join(lines)


def summary_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The exponent table as the report shows it."""
    e = exponent_rows(rows)
    if e.empty:
        return e
    return pd.DataFrame({
        "experiment": e["experiment"], "B": e["bound_spec"], "c": e["c"],
        "measured k [95% CI]": [f"{k:.3f} [{lo:.3f}, {hi:.3f}]" for k, lo, hi in zip(e["exponent"], e["ci_low"],
                                                                                     e["ci_high"])],
        "cost model k": e["predicted"].map(lambda v: f"{v:.3f}"),
        "sizes": [f"{int(a)}–{int(b)}" for a, b in zip(e["n_min"], e["n_max"])],
        "d": e["d_range"], "rank": e["rank_range"],
    })


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


##################################################################################################
# E2's two headline fits (docs/phase.md "Headline fits")
##################################################################################################
CAUTIOUS = (INCONCLUSIVE, NOT_ASYMPTOTIC, INSUFFICIENT_DATA)  # labels that claim no regime
TARGET_HALF_WIDTH = 0.05  # issue 11, Deliver 4


@dataclass(frozen=True)
class Headline:
    """One of E2's headline fits: the polynomial kernel's rows of one (experiment, bound_spec)."""

    regime: str  # "constant B" or "growing B"
    experiment: str
    bound_spec: str
    theory: str  # what the theory and the cost model say the exponent is


HEADLINES = (
    Headline("constant B", "E2-constant", "3",
             "n·r with r fixed (P built for R = B² at every n): exponent 1, almost-linear"),
    Headline("growing B", "E2-regime", "0.5*sqrt(log(n))",
             "d ∝ log n, ε = n^−1/2, R = B² = c²·ln n: the rank grows like a power of n; the exponent is "
             "the cost model's on the same sizes"),
)


def _work_exponent(g: pd.DataFrame) -> float:
    """Least-squares log–log slope of the predicted work (median per n) over ``g``'s sizes."""
    work = g[g["predicted_flops"] > 0].groupby("n")["predicted_flops"].median()
    if len(work) < 2:
        return math.nan
    return float(np.polyfit(np.log(work.index.to_numpy(float)), np.log(work.to_numpy(float)), 1)[0])


def headline_rows(rows: pd.DataFrame, headlines: tuple[Headline, ...] = HEADLINES) -> pd.DataFrame:
    """Per headline present in ``rows``: the fit ``ditbench fit`` gives its rows (block by block,
    passes as the two-level variance model's), its half-width against ±0.05, and the label the
    cost model's exponent on the fitted sizes gets as a point (``model_label``). ``sound`` is True
    when the measured label is that label or a cautious one (inconclusive, not-asymptotic): a
    label may be cautious, never confidently different from what the cost model predicts."""
    r = e2_rows(rows)
    out = []
    for h in headlines if not r.empty else ():
        g = r[(r["experiment"] == h.experiment) & (r["kernel"] == "polynomial")
              & (r["bound_spec"].astype(str) == h.bound_spec)]
        if g["n"].nunique() < 3:
            continue
        fit = fit_table(g, by=["experiment", "kernel", "bound_spec"]).iloc[0]
        if fit["regime"] == INSUFFICIENT_DATA:
            continue
        n_min, n_max = float(fit["n_min"]), float(fit["n_max"])
        predicted = _work_exponent(g[(g["n"] >= n_min) & (g["n"] <= n_max)])
        model_label = verdict(predicted, predicted).label if math.isfinite(predicted) else INSUFFICIENT_DATA
        lo, hi = float(fit["ci_low"]), float(fit["ci_high"])
        passes = int(g["pass_index"].nunique()) if "pass_index" in g.columns else 1
        out.append(dict(regime=h.regime, experiment=h.experiment, bound_spec=h.bound_spec, theory=h.theory,
                        exponent=float(fit["exponent"]), ci_low=lo, ci_high=hi, half_width=(hi - lo) / 2,
                        label=fit["regime"], reason=fit["regime_reason"], model=fit["model"],
                        predicted=predicted, model_label=model_label,
                        sound=fit["regime"] == model_label or fit["regime"] in CAUTIOUS,
                        sizes=int(fit["sizes"]), passes=passes, n_min=n_min, n_max=n_max,
                        d_range=_span(g["d"]), rank_range=_span(g["rank"])))
    return pd.DataFrame(out)


def headline_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The headline table as the report (and tools/e2_headlines.py) shows it."""
    e = headline_rows(rows)
    if e.empty:
        return e
    return pd.DataFrame({
        "regime": e["regime"], "series": e["experiment"] + " · B=" + e["bound_spec"],
        "measured k [95% CI]": [f"{k:.3f} [{lo:.3f}, {hi:.3f}]" for k, lo, hi in zip(e["exponent"], e["ci_low"],
                                                                                     e["ci_high"])],
        f"±{TARGET_HALF_WIDTH:g}": [f"±{w:.3f} {'yes' if w <= TARGET_HALF_WIDTH else 'no'}" for w in e["half_width"]],
        "label": e["label"], "cost model k": e["predicted"].map(lambda v: f"{v:.3f}"),
        "cost model's label": e["model_label"], "sound": e["sound"].map({True: "yes", False: "NO"}),
        "sizes × passes": [f"{s} × {p} ({int(a)}–{int(b)})" for s, p, a, b in zip(e["sizes"], e["passes"],
                                                                                 e["n_min"], e["n_max"])],
        "d": e["d_range"], "rank": e["rank_range"], "theory": e["theory"], "reason": e["reason"],
    })
