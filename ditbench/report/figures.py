"""One function per report figure. Each takes result rows (and precomputed fits) and returns a
plotly figure, or ``None`` when its data are absent — the page then omits the figure.

Units: times in seconds, sizes n in tokens, errors in the units of V (max-norm). Every error
figure also draws ``err_uniform`` (the O(n) "mean of V" answer, DESIGN §2) as the baseline.
All text that comes from result files is HTML-escaped before plotly sees it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .fitting import FittedLine, KernelCrossover
from .select import (
    UNIFORM, approximate_kernels, by_series, exact_baseline, medians_by_n,
    series_columns,
)

FONT = dict(family="Helvetica, Arial, sans-serif", size=14)
HEIGHT = 460
# Plotly's qualitative palette, assigned by legend label so one kernel keeps its colour.
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f")
UNIFORM_STYLE = dict(color="#555555", dash="dot", width=2)
# Errors of 0 (exact float64 kernels) cannot sit on a log axis; they are drawn at this floor.
ERROR_FLOOR = float(np.finfo(np.float64).eps)


def _color(label: str, labels: Sequence[str]) -> str:
    return PALETTE[sorted(labels).index(label) % len(PALETTE)]


def _style(fig: go.Figure, title: str, height: int = HEIGHT) -> go.Figure:
    fig.update_layout(
        title=dict(text=escape(title), x=0.01), template="plotly_white", font=FONT, height=height,
        margin=dict(l=80, r=30, t=70, b=60), legend=dict(font=dict(size=12)), hovermode="closest",
    )
    # Powers of ten read unambiguously on log axes (plotly's default SI suffixes print "100µ").
    fig.update_xaxes(exponentformat="power")
    fig.update_yaxes(exponentformat="power")
    return fig


def _log_hline(fig: go.Figure, y: float, text: str, **where: int) -> None:
    """Dashed horizontal guide on a log y axis, labelled at its left end (plotly's own hline
    label is placed in linear units and lands in the wrong place on log axes)."""
    fig.add_hline(y=y, line=dict(color="#999999", dash="dash"), **where)
    fig.add_annotation(x=0.0, y=math.log10(y), xref="x domain" if not where else f"x{_axis(where)} domain",
                       yref="y" if not where else f"y{_axis(where)}", text=escape(text), showarrow=False,
                       xanchor="left", yanchor="bottom", font=dict(size=12, color="#666666"))


def _axis(where: dict[str, int]) -> str:
    """Axis suffix of subplot (row 1, col c) in a one-row grid: "" for the first, else its number."""
    c = where.get("col", 1)
    return "" if c == 1 else str(c)


def _titled(prefix: str, text: str) -> str:
    return f"{prefix}: {text}" if prefix else text[:1].upper() + text[1:]


def _log_n_axis(fig: go.Figure, **where: int) -> None:
    fig.update_xaxes(type="log", title_text="sequence length n (tokens)", **where)


def _ok(rows: pd.DataFrame, op: str) -> pd.DataFrame:
    return rows[(rows["op"] == op) & (rows["status"] == "ok") & (rows["median_s"] > 0)]


#################################################################################
#                               Scaling (E1)                                   #
#################################################################################

def scaling_figure(rows: pd.DataFrame, lines: Sequence[FittedLine], crossovers: Sequence[KernelCrossover],
                   op: str = "forward", title: str = "") -> go.Figure | None:
    """Log–log median time (s) vs n (tokens) per series, fitted lines with 95% bands, reference
    slopes 1 and 2, and each crossover n* with its interval. None without two sizes."""
    rows = _ok(rows, op)
    if rows["n"].nunique() < 2:
        return None
    series = by_series(rows)
    labels = [label for label, _ in series]
    fig = go.Figure()
    for label, g in series:
        m = medians_by_n(g)
        color = _color(label, labels)
        fig.add_trace(go.Scatter(
            x=m["n"], y=m["median_s"], mode="markers", name=escape(label), legendgroup=label,
            marker=dict(color=color, size=8), customdata=m["count"],
            hovertemplate="n=%{x}<br>median %{y:.3g} s<br>%{customdata} repeat(s)<extra>" + escape(label) + "</extra>",
        ))
        line = next((ln for ln in lines if ln.label == label), None)
        if line is not None:
            _add_band(fig, line, color)
    _add_reference_slopes(fig, rows)
    for c in crossovers:
        _add_crossover(fig, c)
    _log_n_axis(fig)
    # The axis follows the measured points (a factor 3 either side): a wide band from few, noisy
    # sizes would otherwise stretch it over tens of decades; the band then runs off the plot.
    lo, hi = np.log10(rows["median_s"].min() / 3), np.log10(rows["median_s"].max() * 3)
    fig.update_yaxes(type="log", title_text="median time (seconds)", range=[lo, hi])
    return _style(fig, _titled(title, f"{op} time vs n (log–log); lines: power-law fits with 95% bands"))


def _add_band(fig: go.Figure, line: FittedLine, color: str) -> None:
    b = line.band
    name = escape(f"fit k={line.exponent:.2f} [{line.ci_low:.2f}, {line.ci_high:.2f}]")
    fig.add_trace(go.Scatter(
        x=np.concatenate([b["n"], b["n"][::-1]]), y=np.concatenate([b["high"], b["low"][::-1]]),
        fill="toself", fillcolor=color, opacity=0.18, line=dict(width=0), hoverinfo="skip",
        showlegend=False, legendgroup=line.label,
    ))
    fig.add_trace(go.Scatter(x=b["n"], y=b["seconds"], mode="lines", name=name, legendgroup=line.label,
                             line=dict(color=color, width=2), hoverinfo="skip"))


def _add_reference_slopes(fig: go.Figure, rows: pd.DataFrame) -> None:
    """Dashed n¹ and n² guides anchored at the geometric mean time of the smallest size."""
    n0, n1 = float(rows["n"].min()), float(rows["n"].max())
    t0 = float(np.exp(np.log(rows.loc[rows["n"] == n0, "median_s"]).mean()))
    grid = np.array([n0, n1])
    for k, dash in ((1, "dash"), (2, "longdash")):
        fig.add_trace(go.Scatter(x=grid, y=t0 * (grid / n0) ** k, mode="lines",
                                 name=f"reference slope {k} (∝ n{'²' if k == 2 else ''})",
                                 line=dict(color="#999999", dash=dash, width=1.5), hoverinfo="skip"))


def _add_crossover(fig: go.Figure, c: KernelCrossover) -> None:
    """Dotted line at n* (shaded: its 95% interval when bounded) for a crossover inside the range."""
    if not c.drawable:
        return  # below/beyond the measured range or never: listed in the crossover table only
    r = c.result
    assert r.n_star is not None  # drawable: the lines cross inside the range
    if r.low is not None and r.high is not None:
        fig.add_vrect(x0=r.low, x1=r.high, fillcolor="#ffbf00", opacity=0.15, line_width=0)
    fig.add_vline(x=r.n_star, line=dict(color="#b8860b", dash="dot", width=2))
    fig.add_annotation(x=math.log10(r.n_star), y=1.0, yref="paper", showarrow=False, yanchor="bottom",
                       text=escape(f"n* {c.label} vs {c.baseline} ≈ {r.n_star:,.0f}"), font=dict(size=12))


def speedup_figure(rows: pd.DataFrame, op: str = "forward", title: str = "") -> go.Figure | None:
    """Speed-up t_exact(n) / t_kernel(n) vs n (tokens) for every non-baseline series, log–log."""
    rows = _ok(rows, op)
    baseline = exact_baseline(rows)
    if baseline is None:
        return None
    match = [c for c in series_columns(rows) if c in ("d", "dtype", "device")]
    base = rows[rows["kernel"] == baseline].groupby(match + ["n"])["median_s"].median().rename("base_s")
    fig = go.Figure()
    series = [(label, g) for label, g in by_series(rows) if not (g["kernel"] == baseline).all()]
    labels = [label for label, _ in series]
    for label, g in series:
        m = g.groupby(match + ["n"])["median_s"].median().to_frame().join(base, how="inner").reset_index()
        if m.empty:
            continue
        fig.add_trace(go.Scatter(
            x=m["n"], y=m["base_s"] / m["median_s"], mode="lines+markers", name=escape(label),
            line=dict(color=_color(label, labels)),
            hovertemplate="n=%{x}<br>speed-up %{y:.3g}×<extra>" + escape(label) + "</extra>",
        ))
    if not fig.data:
        return None
    _log_hline(fig, 1.0, "break-even")
    _log_n_axis(fig)
    fig.update_yaxes(type="log", title_text=escape(f"speed-up over {baseline} (×)"))
    return _style(fig, _titled(title, f"speed-up over exact ({baseline}) vs n; above 1 = faster than exact"))


#################################################################################
#                           Phase transition (E2)                              #
#################################################################################

def phase_exponent_figure(fits: pd.DataFrame, rows: pd.DataFrame) -> go.Figure | None:
    """Fitted exponent with its 95% CI per entry-bound regime, one trace per (experiment, kernel).
    None unless some approximate kernel (exactness as ``rows`` record it) was fitted in two or
    more regimes of one experiment."""
    if fits is None or "bound_spec" not in fits.columns or "kernel" not in fits.columns:
        return None
    fits = fits.dropna(subset=["exponent", "ci_low", "ci_high"])
    if "op" in fits.columns:
        fits = fits[fits["op"].fillna("forward") == "forward"]
    fits = fits[fits["kernel"].isin(approximate_kernels(rows, among=fits["kernel"].dropna().unique()))]
    keys = [c for c in ("experiment", "kernel") if c in fits.columns]
    groups = [(" · ".join(str(v) for v in (key if isinstance(key, tuple) else (key,))), f)
              for key, f in fits.groupby(keys, sort=True) if f["bound_spec"].nunique() >= 2]
    if not groups:
        return None
    labels = [label for label, _ in groups]
    fig = go.Figure()
    for label, f in groups:
        f = f.sort_values("exponent")
        fig.add_trace(go.Scatter(
            x=[escape(str(b)) for b in f["bound_spec"]], y=f["exponent"], mode="markers", name=escape(label),
            marker=dict(size=11, color=_color(label, labels)),
            error_y=dict(type="data", symmetric=False, array=f["ci_high"] - f["exponent"],
                         arrayminus=f["exponent"] - f["ci_low"], thickness=2, width=8),
            hovertemplate="B = %{x}<br>exponent %{y:.3f}<extra>" + escape(label) + "</extra>",
        ))
    for k, text in ((1.0, "almost-linear (k = 1)"), (2.0, "quadratic (k = 2)")):
        fig.add_hline(y=k, line=dict(color="#999999", dash="dash"), annotation_text=text,
                      annotation_position="top left")
    fig.update_xaxes(title_text="entry bound regime B (inputs in [−B, B])", type="category")
    fig.update_yaxes(title_text="fitted exponent k in t ∝ n^k (95% CI)")
    return _style(fig, "Phase transition: fitted exponent per bound regime")


def _nb_points(rows: pd.DataFrame, kernel: str) -> pd.DataFrame:
    """Per-(n, B) medians of one forward kernel; infinite errors become NaN (not drawn)."""
    g = _ok(rows, "forward").replace([np.inf, -np.inf], np.nan)
    g = g[(g["kernel"] == kernel) & g["bound"].notna()]
    return g.groupby(["n", "bound"], as_index=False)[["median_s", "err_max", "err_uniform", "threshold"]].median()


def phase_kernels(rows: pd.DataFrame) -> list[str]:
    """Approximate forward kernels measured at two or more entry bounds (heat-map candidates)."""
    g = _ok(rows, "forward")
    return [k for k in approximate_kernels(g) if g.loc[g["kernel"] == k, "bound"].nunique() >= 2]


def _threshold_curve(fig: go.Figure, points: pd.DataFrame, **where: int) -> None:
    """The recorded threshold (column ``threshold``, √(ln n) at each measured n) as a dashed line."""
    curve = points.dropna(subset=["threshold"]).groupby("n")["threshold"].median()
    if curve.empty:
        return
    fig.add_trace(go.Scatter(x=curve.index, y=curve.to_numpy(), mode="lines",
                             name="threshold B = √(ln n)", line=dict(color="black", width=2, dash="dash"),
                             showlegend="row" not in where or where.get("col") == 1, legendgroup="thr"), **where)


def _nb_axes(fig: go.Figure, **where: int) -> None:
    _log_n_axis(fig, **where)
    fig.update_yaxes(title_text="entry bound B", **where)


def phase_time_heatmap(rows: pd.DataFrame, kernel: str) -> go.Figure | None:
    """Median time (log10 s) of ``kernel`` over the measured (n, B) points, with B = √(ln n)."""
    p = _nb_points(rows, kernel)
    if p["bound"].nunique() < 2:
        return None
    fig = go.Figure(go.Scatter(
        x=p["n"], y=p["bound"], mode="markers", showlegend=False,
        marker=dict(symbol="square", size=22, color=np.log10(p["median_s"]), colorscale="Viridis",
                    colorbar=dict(title=dict(text="log10 time (s)"))),
        customdata=p["median_s"], hovertemplate="n=%{x}<br>B=%{y:.3g}<br>%{customdata:.3g} s<extra></extra>",
    ))
    _threshold_curve(fig, p)
    _nb_axes(fig)
    fig.update_layout(legend=dict(x=0.01, y=0.99))
    return _style(fig, f"{kernel}: time over (n, B); dashed: threshold B = √(ln n)")


def phase_error_heatmap(rows: pd.DataFrame, kernel: str) -> go.Figure | None:
    """err_max of ``kernel`` beside err_uniform (uniform baseline) over (n, B), shared log10 scale."""
    p = _nb_points(rows, kernel).dropna(subset=["err_max"])
    if p["bound"].nunique() < 2:
        return None
    panels = [("err_max", f"{kernel} err_max")]
    if p["err_uniform"].notna().any():
        panels.append(("err_uniform", "uniform baseline err_uniform"))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[escape(t) for _, t in panels],
                        shared_yaxes=True, horizontal_spacing=0.06)
    for i, (col, _) in enumerate(panels, start=1):
        fig.add_trace(go.Scatter(
            x=p["n"], y=p["bound"], mode="markers", showlegend=False,
            marker=dict(symbol="square", size=20, color=np.log10(np.maximum(p[col], ERROR_FLOOR)),
                        coloraxis="coloraxis"),
            customdata=p[col], hovertemplate="n=%{x}<br>B=%{y:.3g}<br>%{customdata:.3g}<extra>" + col + "</extra>",
        ), row=1, col=i)
        _threshold_curve(fig, p, row=1, col=i)
        _nb_axes(fig, row=1, col=i)
    fig.update_layout(coloraxis=dict(colorscale="Magma", colorbar=dict(title=dict(text="log10 max error"))),
                      legend=dict(x=0.01, y=0.99))
    return _style(fig, f"{kernel}: max error over (n, B) vs the uniform baseline")


#################################################################################
#                              Accuracy (E3)                                   #
#################################################################################

# What an accuracy sweep varies: the degree when every row records it, else the target ε.
SWEEP_AXES = {"degree": ("polynomial degree g", "linear"), "eps": ("target relative error ε of the polynomial", "log")}


def accuracy_points(rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Per (series, n, swept value) medians of approximate forward rows with 0 < eps < 1, the
    a-priori bound 2ε/(1+√(1−ε²))·‖V‖_max (column ``err_bound``, written by measure) and the tightness
    err_max / bound; returns (points, swept column): ``degree`` when every row records it, else ``eps``.

    Only (series, n) with ≥ 2 swept values:
    a sweep holds n fixed (a degree that changes with n is E2's business). The ``params`` column
    (which holds the swept ε) does not split series here."""
    g = _ok(rows, "forward")
    g = g[g["kernel"].isin(approximate_kernels(g)) & (g["eps"] > 0) & (g["eps"] < 1)
          & g["err_bound"].notna() & np.isfinite(g["err_max"])]
    if g.empty:
        return pd.DataFrame(), "degree"
    sweep = "degree" if g["degree"].notna().all() else "eps"
    g = g.drop(columns=[c for c in ("params",) if c in g.columns]).assign(bound_err=g["err_bound"])
    out = []
    for label, series in by_series(g):
        for n, s in series.groupby("n"):
            if s[sweep].nunique() < 2:
                continue
            stats = [c for c in ("err_max", "err_uniform", "bound_err", "rank", "degree", "eps") if c != sweep]
            m = s.groupby(sweep, as_index=False)[stats].median()
            out.append(m.assign(label=f"{label} · n={n:g}", tightness=m["err_max"] / m["bound_err"]))
    return (pd.concat(out, ignore_index=True) if out else pd.DataFrame()), sweep


def accuracy_figure(rows: pd.DataFrame) -> go.Figure | None:
    """Measured err_max, the bound 2ε/(1+√(1−ε²))·‖V‖_max and err_uniform vs degree (or target ε) on the
    left; the tightness ratio err_max / bound on the right (≤ 1 means the bound holds)."""
    p, sweep = accuracy_points(rows)
    if p.empty:
        return None
    x_title, x_type = SWEEP_AXES[sweep]
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("max error and its bound", "tightness = err_max / bound"))
    labels = sorted(p["label"].unique())
    for label in labels:
        s = p[p["label"] == label].sort_values(sweep)
        color, name, x = _color(label, labels), escape(label), s[sweep]
        info = [", ".join(f"{k} {v:.3g}" for k, v in (("degree", d), ("rank", r)) if pd.notna(v))
                for d, r in zip(s["degree"], s["rank"])]
        hover = f"{sweep} %{{x:.3g}} %{{text}}<br>" + "%{y:.3g}<extra></extra>"
        fig.add_trace(go.Scatter(x=x, y=s["err_max"], mode="lines+markers", name=f"{name} err_max",
                                 line=dict(color=color), text=info, hovertemplate=hover), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=s["bound_err"], mode="lines", name=f"{name} bound 2ε/(1+√(1−ε²))·‖V‖max",
                                 line=dict(color=color, dash="dash")), 1, 1)
        if s["err_uniform"].notna().any():
            fig.add_trace(go.Scatter(x=x, y=s["err_uniform"], mode="lines", name=f"{name} uniform baseline",
                                     line=UNIFORM_STYLE), 1, 1)
        fig.add_trace(go.Scatter(x=x, y=s["tightness"], mode="lines+markers", showlegend=False,
                                 line=dict(color=color), text=info, hovertemplate=hover), 1, 2)
    _log_hline(fig, 1.0, "bound", row=1, col=2)
    fig.update_xaxes(title_text=x_title, type=x_type, **({"dtick": 1} if sweep == "degree" else {}))
    fig.update_yaxes(type="log", title_text="max error ‖T − Att‖max", row=1, col=1)
    fig.update_yaxes(type="log", title_text="err_max / bound", row=1, col=2)
    return _style(fig, f"Accuracy vs {sweep} against the a-priori bound", height=500)


#################################################################################
#                        Gradients (E4) and Pareto (E6)                        #
#################################################################################

def gradient_figure(rows: pd.DataFrame) -> go.Figure | None:
    """Backward rows: time (s) vs n and err_max vs n per kernel, with err_uniform. None if absent."""
    rows = _ok(rows, "backward")
    if rows.empty:
        return None
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        subplot_titles=("gradient time", "gradient max error"))
    series = by_series(rows)
    labels = [label for label, _ in series]
    for label, g in series:
        color, name = _color(label, labels), escape(label)
        t = medians_by_n(g)
        fig.add_trace(go.Scatter(x=t["n"], y=t["median_s"], mode="lines+markers", name=name, legendgroup=label,
                                 line=dict(color=color)), 1, 1)
        e = medians_by_n(g[np.isfinite(g["err_max"])], "err_max")
        if not e.empty:
            fig.add_trace(go.Scatter(x=e["n"], y=np.maximum(e["err_max"], ERROR_FLOOR), mode="lines+markers",
                                     name=name, legendgroup=label, showlegend=False, line=dict(color=color)), 1, 2)
    u = medians_by_n(rows[np.isfinite(rows["err_uniform"])], "err_uniform")
    if not u.empty:
        fig.add_trace(go.Scatter(x=u["n"], y=u["err_uniform"], mode="lines", name="uniform baseline (err_uniform)",
                                 line=UNIFORM_STYLE), 1, 2)
    _log_n_axis(fig)
    fig.update_yaxes(type="log", title_text="median time (seconds)", row=1, col=1)
    fig.update_yaxes(type="log", title_text="max error of dL/dX", row=1, col=2)
    return _style(fig, "Gradient (backward) time and error vs n", height=480)


def pareto_figure(points: pd.DataFrame, where: str) -> go.Figure | None:
    """Error vs time (both log) of every configuration at one (n, B) slice; the Pareto front is
    joined by a line. points: ``label, kernel, median_s, err_max, front`` (see
    :func:`ditbench.report.select.pareto_points`)."""
    if points is None or points.empty:
        return None
    fig = go.Figure()
    kernels = sorted(points["kernel"].unique())
    for k in kernels:
        p = points[points["kernel"] == k]
        fig.add_trace(go.Scatter(
            x=p["median_s"], y=np.maximum(p["err_max"], ERROR_FLOOR), mode="markers", name=escape(k),
            text=[escape(s) for s in p["label"]],
            marker=dict(size=11, color="#555555" if k == UNIFORM else _color(k, kernels),
                        symbol=np.where(p["front"], "star", "circle"), line=dict(width=1, color="white")),
            hovertemplate="%{text}<br>%{x:.3g} s<br>err_max %{y:.3g}<extra></extra>",
        ))
    front = points[points["front"]].sort_values("median_s")
    fig.add_trace(go.Scatter(x=front["median_s"], y=np.maximum(front["err_max"], ERROR_FLOOR), mode="lines",
                             line=dict(color="black", shape="hv", width=1.5), name="Pareto front (★)",
                             hoverinfo="skip"))
    fig.update_xaxes(type="log", title_text="median time (seconds)")
    fig.update_yaxes(type="log", title_text="max error ‖T − Att‖max")
    return _style(fig, f"Error vs time across kernels at {where}; lower-left is better")
