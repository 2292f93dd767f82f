"""The comparison page: per kernel, both versions' times against n (median per size with the
interquartile range of the blocks) and each side's fitted power law with its 95 % band
(:meth:`ditbench.fit.PowerLawFit.predict`), above the size and exponent tables."""
from __future__ import annotations

from html import escape
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from .stats import blocks, settings
from .table import exponent_lines, size_lines

PLOTLY_JS = "plotly.min.js"  # written beside the page: it renders offline
COLORS = {"base": "#1f77b4", "head": "#d62728"}
BAND_POINTS = 30


def figure(title: str, sides: dict[str, pd.DataFrame]) -> go.Figure:
    """``sides``: label → that side's blocks of one setting (columns ``n, pass_index, seconds``)."""
    from ..fit import InsufficientDataError, fit_power_law

    fig = go.Figure()
    for label, part in sides.items():
        color = COLORS.get(label, "#555")
        q = part.groupby("n")["seconds"].quantile([0.25, 0.5, 0.75]).unstack()  # (sizes, 3)
        fig.add_trace(go.Scatter(x=q.index, y=q[0.5], mode="markers", name=f"{label} median", marker_color=color,
                                 error_y={"type": "data", "symmetric": False, "array": q[0.75] - q[0.5],
                                          "arrayminus": q[0.5] - q[0.25]}))
        try:
            fit = fit_power_law(part["n"], part["seconds"], passes=part["pass_index"], model="power")
        except InsufficientDataError:
            continue
        grid = np.geomspace(fit.n_min, fit.n_max, BAND_POINTS)
        band = fit.predict(grid)
        fig.add_trace(go.Scatter(x=np.concatenate([grid, grid[::-1]]),
                                 y=np.concatenate([band["high"], band["low"][::-1]]), fill="toself",
                                 line={"width": 0}, fillcolor=color, opacity=0.2, hoverinfo="skip",
                                 name=f"{label} 95% band", showlegend=False))
        fig.add_trace(go.Scatter(x=grid, y=band["seconds"], mode="lines", line={"color": color},
                                 name=f"{label} k = {fit.exponent:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]"))
    fig.update_layout(title=title, xaxis_title="n (tokens)", yaxis_title="seconds per call", height=420,
                      template="plotly_white")
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def write_page(base: pd.DataFrame, head: pd.DataFrame, sizes: pd.DataFrame, exponents: pd.DataFrame,
               summary: str, out: Path, title: str) -> Path:
    """Write ``out`` (an HTML file) and ``plotly.min.js`` beside it; return ``out``."""
    keys = settings(base, head)
    b, h = blocks(base, keys), blocks(head, keys)
    parts = []
    for i, (key, hp) in enumerate(h.groupby(keys, sort=True) if keys else [((), h)]):
        key = key if isinstance(key, tuple) else (key,)
        match = (b[keys] == pd.Series(dict(zip(keys, key)))).all(axis=1) if keys else np.ones(len(b), bool)
        name = " ".join(f"{k}={v}" for k, v in zip(keys, key) if v)
        fig = figure(name, {"base": b[match], "head": hp})
        parts.append(fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"compare-{i}"))
    out.parent.mkdir(parents=True, exist_ok=True)
    js = out.parent / PLOTLY_JS
    if not js.is_file():
        js.write_text(get_plotlyjs(), encoding="utf-8")
    tables = "\n".join([*size_lines(sizes), "", *exponent_lines(exponents)])
    out.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><script src='{PLOTLY_JS}'></script></head><body>"
        f"<h1>{escape(title)}</h1><pre>{escape(tables)}</pre><p>{escape(summary)}</p>"
        + "\n".join(parts) + "</body></html>\n", encoding="utf-8")
    return out
