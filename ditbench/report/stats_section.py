"""The statistical-rates section (E7/E8, the ``stats`` workload family): metric against n, D and
d0 per network with fitted power laws and 95% bands, the subspace error, the sample distance
beside its floors, reverse-SDE samples projected onto the latent plane beside the data, and the
rate table with the paper's verdict. Reads only the results rows; fits come from
:mod:`ditbench.stats.rates` (which calls :func:`ditbench.fit.fit_power_law`).
"""
from __future__ import annotations

import json
from html import escape

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..fit import InsufficientDataError
from ..stats.rates import (
    SYMBOLS,
    VARIABLES,
    fit_series,
    series,
    varied_variable,
)
from .tables import _num, _text, html_table

NETWORK_COLORS = {"latent": "#1f77b4", "ambient": "#d62728"}
NUMERIC = ("train_samples", "ambient_dim", "latent_dim", "param_count", "train_s", "train_loss", "score_err",
           "score_err_on", "score_err_off", "score_ref", "subspace_err", "sample_mmd", "sample_mmd_exact",
           "sample_mmd_floor", "seed")
LABELS = {
    "score_err_on": "score error on the subspace  √E[σ‖BBᵀ(s − ∇log p)‖²]",
    "score_err_off": "score error off the subspace  √E[σ‖(I − BBᵀ)(s − ∇log p)‖²]",
    "score_err": "score error (total)",
    "subspace_err": "subspace error ‖W_B W_Bᵀ − BBᵀ‖_F",
    "sample_mmd": "MMD(reverse-SDE samples, fresh data)",
}
BAND_POINTS = 30


def stats_frame(results: pd.DataFrame) -> pd.DataFrame:
    """The ok stats rows with their numeric columns as numbers (empty when the run has none)."""
    if "workload" not in results.columns:
        return results.iloc[0:0]
    is_stats = (results["workload"].astype("string") == "stats").fillna(False)
    rows = results[is_stats & (results["status"] == "ok").fillna(False)].copy()
    for col in NUMERIC:
        if col in rows.columns:
            rows[col] = pd.to_numeric(rows[col], errors="coerce")
    return rows


def _experiments(rows: pd.DataFrame) -> list[tuple[str, str, pd.DataFrame]]:
    """(experiment, its variable, rows) for the experiments varying exactly one of n, D, d0; by variable."""
    out = []
    for name, part in rows.groupby(rows["experiment"].astype(str), sort=True):
        try:
            out.append((str(name), varied_variable(part), part))
        except ValueError:
            continue
    return sorted(out, key=lambda e: VARIABLES.index(e[1]))


def metric_figure(rows: pd.DataFrame, quantity: str, *, floors: bool = False) -> go.Figure | None:
    """One panel per experiment: ``quantity`` per seed (points), per-size median (line), fitted
    power law with its 95% band, per network; ``floors`` adds the MMD floors (analytic-score
    sampler, fresh-vs-fresh data) as grey lines."""
    experiments = [e for e in _experiments(rows) if rows.loc[e[2].index, quantity].notna().any()]
    if not experiments:
        return None
    fig = make_subplots(rows=1, cols=len(experiments), horizontal_spacing=0.08,
                        subplot_titles=[escape(f"{name}: vs {SYMBOLS[var]}") for name, var, _ in experiments])
    shown: set[str] = set()
    for col, (name, variable, part) in enumerate(experiments, start=1):
        for network, net_rows in part.groupby(part["network"].astype(str), sort=True):
            color = NETWORK_COLORS.get(network, "#7f7f7f")
            x, y, _ = series(net_rows, variable, quantity)
            if len(x) == 0:
                continue
            first = network not in shown
            shown.add(network)
            fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=escape(network), legendgroup=network,
                                     showlegend=first, marker=dict(color=color, size=8, opacity=0.6),
                                     hovertemplate=f"{SYMBOLS[variable]}=%{{x}}<br>{quantity}=%{{y:.3g}}"),
                          row=1, col=col)
            sizes = np.unique(x)
            med = [float(np.median(y[x == s])) for s in sizes]
            fig.add_trace(go.Scatter(x=sizes, y=med, mode="lines", line=dict(color=color, width=1, dash="dot"),
                                     legendgroup=network, showlegend=False, hoverinfo="skip"), row=1, col=col)
            try:
                fit = fit_series(x, y)
            except InsufficientDataError:
                continue
            grid = np.geomspace(sizes.min(), sizes.max(), BAND_POINTS)
            band = fit.predict(grid)
            fig.add_trace(go.Scatter(x=np.concatenate([grid, grid[::-1]]),
                                     y=np.concatenate([band["high"], band["low"][::-1]]), fill="toself",
                                     fillcolor=color, opacity=0.18, line=dict(width=0), hoverinfo="skip",
                                     showlegend=False, legendgroup=network), row=1, col=col)
            fig.add_trace(go.Scatter(x=grid, y=band["seconds"], mode="lines", line=dict(color=color, width=2),
                                     name=escape(f"{network} {name}: k={fit.exponent:.2f} "
                                                 f"[{fit.ci_low:.2f}, {fit.ci_high:.2f}]"),
                                     legendgroup=network), row=1, col=col)
        if floors:
            for column, label, dash in (("sample_mmd_exact", "analytic-score sampler", "dash"),
                                        ("sample_mmd_floor", "data vs data", "dot")):
                x, y, _ = series(part, variable, column)
                if len(x):
                    sizes = np.unique(x)
                    fig.add_trace(go.Scatter(x=sizes, y=[float(np.median(y[x == s])) for s in sizes], mode="lines",
                                             name=escape(label), legendgroup=label, showlegend=col == 1,
                                             line=dict(color="#777777", dash=dash, width=2)), row=1, col=col)
        fig.update_xaxes(type="log", title_text=escape(SYMBOLS[variable]), row=1, col=col)
        fig.update_yaxes(type="log", row=1, col=col)
    fig.update_yaxes(title_text=escape(LABELS.get(quantity, quantity)), row=1, col=1)
    fig.update_layout(title=dict(text=escape(LABELS.get(quantity, quantity)), x=0.01), template="plotly_white",
                      height=430, margin=dict(l=80, r=30, t=80, b=60), legend=dict(font=dict(size=11)))
    fig.update_xaxes(exponentformat="power")
    fig.update_yaxes(exponentformat="power")
    return fig


def projection_figure(rows: pd.DataFrame) -> tuple[go.Figure, str] | None:
    """Reverse-SDE samples beside fresh data in B's first two latent coordinates, one panel per
    network, for the E7 point with the most samples (seed 0 when present)."""
    have = rows[rows["projection"].astype("string").str.len() > 2] if "projection" in rows.columns else rows.iloc[0:0]
    if have.empty:
        return None
    pick = have[have["train_samples"] == have["train_samples"].max()].sort_values(["seed", "ambient_dim"])
    panels = [(net, part.iloc[0]) for net, part in pick.groupby(pick["network"].astype(str), sort=False)]
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.08,
                        subplot_titles=[escape(f"{net}") for net, _ in panels])
    for col, (net, row) in enumerate(panels, start=1):
        points = json.loads(row["projection"])
        for kind, color in (("data", "#7f7f7f"), ("model", NETWORK_COLORS.get(net, "#1f77b4"))):
            xy = np.asarray(points[kind], dtype=float).reshape(len(points[kind]), -1)
            fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1] if xy.shape[1] > 1 else np.zeros(len(xy)),
                                     mode="markers", name=escape("fresh data" if kind == "data" else f"{net} samples"),
                                     showlegend=kind == "model" or col == 1,
                                     marker=dict(color=color, size=5, opacity=0.55)), row=1, col=col)
        fig.update_xaxes(title_text="⟨b₁, x⟩", row=1, col=col)
        fig.update_yaxes(title_text="⟨b₂, x⟩", row=1, col=col)
    first = panels[0][1]
    where = (f"{first['experiment']}, n={int(first['train_samples'])}, D={int(first['ambient_dim'])}, "
             f"d0={int(first['latent_dim'])}, seed {int(first['seed'])}")
    fig.update_layout(title=dict(text=escape(f"Samples on the latent plane ({where})"), x=0.01),
                      template="plotly_white", height=430, margin=dict(l=80, r=30, t=80, b=60))
    return fig, where


def rates_table(rates: pd.DataFrame) -> str:
    return html_table(rates, {
        "experiment": ("experiment", _text), "network": ("network", _text),
        "quantity": ("quantity", _text), "variable": ("against", lambda v: SYMBOLS.get(str(v), str(v))),
        "exponent": ("k", _num(".3f")), "ci_low": ("CI low", _num(".3f")), "ci_high": ("CI high", _num(".3f")),
        "points": ("points", _num("d")), "x_min": ("x min", _num("g")), "x_max": ("x max", _num("g")),
        "fixed": ("fixed sizes", _text), "note": ("note", _text),
    })
