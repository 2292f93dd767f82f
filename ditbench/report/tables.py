"""HTML tables of a run page: fits, crossovers, skipped/failed points, the best kernel at each
error level, and the environment card. Every cell is HTML-escaped here, once."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

import pandas as pd

from ..schema import FIT_COLUMNS
from .data import flatten_meta
from .fitting import KernelCrossover
from .select import params_text

Formatter = Callable[[Any], str]



def fit_group_columns(fits: pd.DataFrame) -> list[str]:
    """Group columns of a fit table worth showing: ``kernel`` and every key that varies."""
    return [c for c in fits.columns
            if c not in FIT_COLUMNS and (c == "kernel" or fits[c].nunique(dropna=True) > 1)]


def _missing(v: Any) -> bool:
    """None, NaN and pandas' NA (the fit table's nullable columns) all print as an empty cell."""
    return v is None or (pd.api.types.is_scalar(v) and bool(pd.isna(v)))


def _num(fmt: str) -> Formatter:
    return lambda v: "" if _missing(v) else format(v, fmt)


def _tokens(v: Any) -> str:
    """A size in tokens: whole numbers with thousands separators, huge ones in e-notation."""
    return "" if _missing(v) else f"{v:,.0f}" if v < 1e7 else f"{v:.3g}"


def _text(v: Any) -> str:
    return "" if _missing(v) else str(v)


def html_table(frame: pd.DataFrame, columns: Mapping[str, tuple[str, Formatter]], css: str = "") -> str:
    """A ``<table>`` of ``frame`` with ``columns`` = {column: (header, formatter)}; all escaped."""
    head = "".join(f"<th>{escape(h)}</th>" for h, _ in columns.values())
    body = []
    for _, row in frame.iterrows():
        cells = "".join(f"<td>{escape(fmt(row.get(c)))}</td>" for c, (_, fmt) in columns.items())
        body.append(f"<tr>{cells}</tr>")
    cls = f' class="{escape(css)}"' if css else ""
    return f"<table{cls}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def fits_table(fits: pd.DataFrame) -> str:
    """Exponent, 95% CI, regime, r², fitted n range, points and the AIC-preferred law per group
    (group keys that are the same for every fit are left out)."""
    groups = fit_group_columns(fits)
    frame = fits.assign(ci=[
        "" if _missing(lo) or _missing(hi) else f"[{lo:.3f}, {hi:.3f}]"
        for lo, hi in zip(fits.get("ci_low", pd.Series(dtype=float)), fits.get("ci_high", pd.Series(dtype=float)))
    ], n_range=[
        "" if _missing(a) or _missing(b) else f"{a:g} – {b:g}"
        for a, b in zip(fits.get("n_min", pd.Series(dtype=float)), fits.get("n_max", pd.Series(dtype=float)))
    ])
    columns: dict[str, tuple[str, Formatter]] = {g: (g, params_text if g == "params" else _text) for g in groups}
    columns.update({
        "exponent": ("exponent k", _num(".3f")), "ci": ("95% CI", _text), "regime": ("regime", _text),
        "r2": ("r²", _num(".4f")), "n_range": ("fitted n", _text), "points": ("points", _num("g")),
        "best_model": ("AIC choice", _text),
    })
    if "note" in fits.columns and any(_text(v) for v in fits["note"]):  # a float column when all empty
        columns["note"] = ("note", _text)
    return html_table(frame, columns, css="fits")


def crossover_table(crossovers: Sequence[KernelCrossover]) -> str:
    """n* where each approximate series becomes faster than the exact baseline, its 95% interval
    and status (``crosses``, ``crosses-below-range``, ``crosses-beyond-range`` = extrapolated, …)."""
    frame = pd.DataFrame([{
        "label": c.label, "baseline": c.baseline, "status": c.result.status, "n_star": c.result.n_star,
        "interval": "unbounded" if c.result.low is None or c.result.high is None
        else f"[{_tokens(c.result.low)}, {_tokens(c.result.high)}]",
        "range": f"{c.result.n_range[0]:g} – {c.result.n_range[1]:g}", "gap": c.result.slope_gap,
    } for c in crossovers])
    return html_table(frame, {
        "label": ("series", _text), "baseline": ("exact baseline", _text), "status": ("status", _text),
        "n_star": ("n* (tokens)", _tokens), "interval": ("95% interval", _text),
        "range": ("measured n", _text), "gap": ("k_approx − k_exact", _num("+.2f")),
    })


def not_ok_table(rows: pd.DataFrame) -> str:
    """Skipped and failed points, one line per (status, kernel, op, reason) with their sizes."""
    rows = rows.assign(reason=rows["reason"].fillna("(no reason recorded)"))
    grouped = rows.groupby(["status", "kernel", "op", "reason"], dropna=False, sort=True)["n"]
    frame = grouped.agg(
        count="size", sizes=lambda n: ", ".join(f"{v:g}" for v in sorted(n.dropna().unique()))
    ).reset_index()
    return html_table(frame, {
        "status": ("status", _text), "kernel": ("kernel", _text), "op": ("op", _text),
        "count": ("points", _num("d")), "sizes": ("n", _text), "reason": ("reason", _text),
    }, css="notok")


def best_kernel_table(front: pd.DataFrame) -> str:
    """For each error level on the Pareto front, the fastest configuration that reaches it."""
    frame = front.assign(level=[f"≤ {e:.3g}" for e in front["err_max"]])
    return html_table(frame, {
        "level": ("max error", _text), "label": ("fastest configuration", _text),
        "median_s": ("median time (s)", _num(".3g")),
    })


def environment_card(meta: Mapping[str, Any], rows: pd.DataFrame) -> str:
    """Key/value card of ``meta.json`` plus the threads/devices/dtypes recorded in the rows."""
    items = [(k, _meta_text(v)) for k, v in flatten_meta(meta)]
    for col in ("threads", "device", "dtype"):
        values = rows[col].dropna().unique() if col in rows.columns else []
        if len(values):
            items.append((f"{col} (from results)", ", ".join(sorted(_meta_text(v) for v in values))))
    note = "" if meta else "<p>No meta.json was found for this run.</p>"
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in items)
    return note + (f'<table class="env"><tbody>{body}</tbody></table>' if items else "")


def _meta_text(v: Any, limit: int = 300) -> str:
    """Whole floats without ".0" (threads = 2), long values (a preset's sweep list) cut short."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    text = _text(v)
    return text if len(text) <= limit else text[:limit] + " …"
