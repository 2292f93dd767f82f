"""Static site assembly: one page per run, an index of runs, and plotly.js written once.

Layout of ``out/``::

    index.html          runs: date, machine, commit, preset, headline exponents
    plotly.min.js       the plotly bundle, once per site (offline: no CDN, nothing inlined)
    runs/<slug>.html    one page per run, loading ../plotly.min.js

Every text that comes from result files passes through :func:`html.escape` exactly once: plain
text here, table cells in :mod:`.tables`, figure labels in :mod:`.figures`. Plotly's own JSON
encoder writes ``<`` as ``\\u003c``, so no figure data can close a ``<script>`` element.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, UTC
from html import escape
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from .data import Run, load_run, meta_lookup
from .sections import PageData, Section, build_sections
from .select import series_label
from .tables import fit_group_columns

PLOTLY_JS = "plotly.min.js"
RUNS_DIR = "runs"
HEADLINE_FITS = 6  # fitted exponents shown per run on the index
PLOT_CONFIG = {"displaylogo": False, "responsive": True}

# Keys tried, in order, for the index columns (meta.json is written by ditbench.measure).
META_KEYS = {
    "date": ("start_time", "started", "start", "date"),
    "machine": ("cpu_model", "machine", "cpu", "processor", "platform"),
    "gpu": ("gpu_model", "gpu"),
    "host": ("hostname", "host"),
    "commit": ("git_commit", "commit"),
    "preset": ("preset.name", "preset", "config"),
}

CSS = """
body{font-family:Helvetica,Arial,sans-serif;font-size:15px;margin:0 auto;max-width:1400px;padding:0 24px 48px;
color:#222}
h1{font-size:26px;margin:20px 0 4px} h2{font-size:21px;margin-top:36px;border-bottom:2px solid #ddd;padding-bottom:4px}
h3{font-size:16px} nav a{margin-right:14px} .sub{color:#666;margin:0 0 10px}
.fig{margin:12px 0 4px} .caption{color:#555;font-size:13px;margin:0 0 18px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
thead th{background:#f4f4f4} table.env th{background:#f4f4f4;font-weight:normal;color:#444}
#js-errors{background:#fdd;border:1px solid #c00;padding:8px;white-space:pre-wrap}
"""

# Any script error or console.error (a figure that did not render, a missing plotly.min.js) is
# shown on the page and counted on <html data-js-errors>, which the browser test reads.
ERROR_HOOK = """<script>
(function () {
  function report(text) {
    var root = document.documentElement;
    root.dataset.jsErrors = String(Number(root.dataset.jsErrors || 0) + 1);
    var box = document.getElementById("js-errors");
    if (box) { box.hidden = false; box.textContent += text + "\\n"; }
  }
  window.addEventListener("error", function (e) { report("Script error: " + e.message); });
  var consoleError = console.error;
  console.error = function () {
    report("console.error: " + Array.prototype.join.call(arguments, " "));
    return consoleError.apply(console, arguments);
  };
})();
</script>"""


@dataclass(frozen=True)
class PageEntry:
    """One run as the index lists it."""

    href: str  # relative to the site root
    title: str
    run: Run
    fits: pd.DataFrame | None


def build_report(result_dirs: Sequence[Path], out: Path) -> Path:
    """Build the static report site for ``result_dirs`` under ``out``; returns ``out/index.html``.

    Each directory holds one run's ``results.csv`` (required), ``meta.json`` and ``fits.csv``.
    Raises ValueError naming the directory when one cannot be read.
    """
    if not result_dirs:
        raise ValueError("build_report needs at least one results directory; got none")
    out = Path(out)
    (out / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    _write_plotly_js(out)
    entries, taken = [], set[str]()
    for path in result_dirs:
        run = load_run(path)
        page, sections = build_sections(run)
        slug = slugify(Path(path).resolve().name, taken)
        title = f"ditbench run {Path(path).resolve().name}"
        (out / RUNS_DIR / f"{slug}.html").write_text(render_run_page(title, page, sections), encoding="utf-8")
        entries.append(PageEntry(href=f"{RUNS_DIR}/{slug}.html", title=title, run=run, fits=page.fits))
    index = out / "index.html"
    index.write_text(render_index(entries), encoding="utf-8")
    return index


def _write_plotly_js(out: Path) -> None:
    """Write the plotly bundle once at the site root (rewritten only when it differs)."""
    target = out / PLOTLY_JS
    bundle = get_plotlyjs()
    if not target.is_file() or target.stat().st_size != len(bundle.encode("utf-8")):
        target.write_text(bundle, encoding="utf-8")


def slugify(name: str, taken: set[str]) -> str:
    """A file-name-safe, unique slug for a run directory name (adds it to ``taken``)."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "run"
    slug, i = base, 2
    while slug in taken:
        slug, i = f"{base}-{i}", i + 1
    taken.add(slug)
    return slug


def figure_html(fig: go.Figure, div_id: str) -> str:
    """The plotly div and its newPlot call, without the bundle (the page loads it once)."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG)


def _shell(title: str, body: str, js_href: str | None) -> str:
    script = f'<script src="{escape(js_href)}" charset="utf-8"></script>' if js_href else ""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style>{ERROR_HOOK}{script}</head>"
            f'<body><div id="js-errors" hidden></div>{body}</body></html>\n')


def render_run_page(title: str, page: PageData, sections: Sequence[Section]) -> str:
    """The HTML of one run page (sections in order, a navigation bar, figures then tables)."""
    run = page.run
    counts = run.results["status"].value_counts()
    summary = ", ".join(f"{int(counts.get(s, 0))} {s}" for s in ("ok", "skipped", "failed"))
    head = (f'<p class="sub"><a href="../index.html">← all runs</a></p><h1>{escape(title)}</h1>'
            f'<p class="sub">{escape(_run_line(run))} · {escape(summary)} points · '
            f"from {escape(str(run.path))}</p>")
    nav = "<nav>" + "".join(f'<a href="#{escape(s.id)}">{escape(s.title)}</a>' for s in sections) + "</nav>"
    parts, k = [head, nav], 0
    for s in sections:
        parts.append(f'<section id="{escape(s.id)}"><h2>{escape(s.title)}</h2>')
        if s.intro:
            parts.append(f"<p>{escape(s.intro)}</p>")
        for fig, caption in s.figures:
            k += 1
            parts.append(f'<div class="fig">{figure_html(fig, f"fig-{k}")}</div>'
                         f'<p class="caption">{escape(caption)}</p>')
        for heading, table in s.tables:
            parts.append((f"<h3>{escape(heading)}</h3>" if heading else "") + table)
        parts.append("</section>")
    return _shell(title, "".join(parts), f"../{PLOTLY_JS}" if k else None)


def _run_line(run: Run) -> str:
    fields = [(name, meta_lookup(run.meta, *keys)) for name, keys in META_KEYS.items()]
    return " · ".join(f"{name} {value}" for name, value in fields if value) or "no meta.json"


def headline(fits: pd.DataFrame | None, limit: int = HEADLINE_FITS) -> list[str]:
    """Short "group: k = 1.02 [0.98, 1.06]" lines from a fit table (forward fits first)."""
    if fits is None or fits.empty or "exponent" not in fits.columns:
        return []
    f = fits.dropna(subset=["exponent"])
    if "op" in f.columns:
        f = f.assign(_bwd=f["op"] == "backward").sort_values("_bwd", kind="stable").drop(columns="_bwd")
    groups = fit_group_columns(f)
    lines = []
    for _, r in f.head(limit).iterrows():
        cols = [c for c in groups if pd.notna(r[c])]
        name = series_label([r[c] for c in cols], cols)
        ci = f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if pd.notna(r.get("ci_low")) else ""
        lines.append(f"{name}: k = {r['exponent']:.2f}{ci}")
    return lines


def render_index(entries: Sequence[PageEntry]) -> str:
    """The site index: one row per run with its metadata and headline exponents."""
    rows = []
    for e in entries:
        cells = [f'<a href="{escape(e.href)}">{escape(e.title)}</a>']
        cells += [escape(meta_lookup(e.run.meta, *META_KEYS[k])) for k in ("date", "machine", "commit", "preset")]
        counts = e.run.results["status"].value_counts()
        cells.append(escape(" / ".join(str(int(counts.get(s, 0))) for s in ("ok", "skipped", "failed"))))
        cells.append("<br>".join(escape(line) for line in headline(e.fits)) or "—")
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in
                   ("run", "date", "machine", "commit", "preset", "ok / skipped / failed", "headline exponents"))
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = (f"<h1>ditbench reports</h1><p class=\"sub\">{len(entries)} run(s) · built {escape(built)}</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
    return _shell("ditbench reports", body, None)
