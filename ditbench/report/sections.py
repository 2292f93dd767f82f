"""What goes on a run page: an ordered registry of section builders. Each builder takes a loaded
:class:`~ditbench.report.data.Run` (plus its fits) and returns a :class:`Section`, or None when
the run has no data for it — absent sections are omitted, never drawn empty."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go

from ..stats.rates import rate_table, verdicts
from . import figures, phase, stats_section as stats, tables
from .data import Run
from .fitting import KernelCrossover, crossovers, fitted_lines, run_fits
from .select import best_at_error_levels, by_experiment, nonfinite_errors, pareto_points, pareto_regimes


@dataclass(frozen=True)
class Section:
    """One titled part of a run page: figures (each with a caption), then HTML tables.

    ``intro`` and captions are plain text (escaped when the page is written); table HTML is
    already escaped by :mod:`ditbench.report.tables`.
    """

    id: str
    title: str
    intro: str = ""
    figures: tuple[tuple[go.Figure, str], ...] = ()
    tables: tuple[tuple[str, str], ...] = ()  # (heading, html)


@dataclass(frozen=True)
class PageData:
    """A run with the analyses several sections share (computed once per page)."""

    run: Run
    fits: pd.DataFrame | None


def _figs(*pairs: tuple[go.Figure | None, str]) -> tuple[tuple[go.Figure, str], ...]:
    return tuple((f, c) for f, c in pairs if f is not None)


def scaling_section(p: PageData) -> Section | None:
    """One time-vs-n figure (and speed-up) per forward experiment, each drawing only its own rows;
    the E2* experiments are the phase section's (their series vary d, B and ε with n)."""
    ok = p.run.ok
    figs: list[tuple[go.Figure | None, str]] = []
    found: list[KernelCrossover] = []
    for name, rows in by_experiment(ok[(ok["op"] == "forward") & ~phase.is_phase(ok["experiment"])]):
        cross = crossovers(rows)
        found += cross
        figs.append((figures.scaling_figure(rows, fitted_lines(rows), cross, title=name),
                     "Median time per size; shaded bands are 95% confidence bands of the fitted power law "
                     "over the sizes the fit kept. Grey dashed lines have slopes 1 and 2 for comparison; a "
                     "dotted vertical line marks a crossover n* (shaded: its interval)."))
        figs.append((figures.speedup_figure(rows, title=name),
                     "Speed-up of each kernel over the fastest exact kernel at the same size."))
    kept = _figs(*figs)
    if not kept:
        return None
    tabs = (("Crossovers n* (approximate kernel becomes faster than exact)", tables.crossover_table(found)),) \
        if found else ()
    return Section("scaling", "Scaling (E1)", "Forward time against sequence length n, one figure per experiment.",
                   kept, tabs)


PHASE_INTRO = (
    "What the theory says: with d = O(log n) and ε = 1/poly(n), entries B = o(√ln n) admit n^{1+o(1)} "
    "attention (the polynomial method below is such an algorithm), and at B = Θ(√ln n) no algorithm runs in "
    "O(n^{2−δ}) on worst-case inputs unless SETH fails. What these measurements can show: how one algorithm's "
    "time follows the work its cost model predicts (rank growth with n separated from n-scaling), how its fitted "
    "exponent over the measured sizes moves with c in B = c·√ln n next to the exponent the cost model predicts, "
    "where it overtakes exact SDPA at constant B, and how it and the trivial uniform answer fare on planted "
    "large-margin inputs far from uniform attention. What they cannot show: a lower bound. A rising exponent "
    "of one algorithm on these sizes says that algorithm costs more, not that every algorithm must; an exponent "
    "fitted over a finite range of n is not the asymptotic exponent; and random inputs give nearly uniform "
    "attention, where even the O(n) uniform answer is accurate — hence the planted inputs and the uniform "
    "baseline beside every error.")


def phase_section(p: PageData) -> Section | None:
    rows = p.run.results
    skipped = phase.skipped_note(rows)
    pairs: list[tuple[go.Figure | None, str]] = [
        (phase.work_figure(rows),
         "Median time against the cost model's predicted FLOPs (theory.polynomial_forward_cost at the degree and "
         "rank that ran). Points on the dashed line run at one constant rate: the time is the predicted work, so "
         "the growth of the exponent with c below is the growth of the rank with n, not a change in how the "
         "kernel scales with its work."),
        (phase.exponent_figure(rows),
         "Fitted exponent (95% CI; statsmodels, sizes kept by the asymptotic-region rule) against c in "
         "B = c·√ln n, beside the exponent of the predicted work on the same sizes (dashed). In the theorem's "
         "regime (d growing with log n, ε = n^−a) the cost model predicts an exponent that rises smoothly with "
         "c; measured and predicted agree where the time follows the work. No step at c = 1 is expected from "
         "an upper-bound algorithm: the threshold is a statement about every algorithm, which a measurement "
         "cannot reach."),
        (phase.crossover_figure(rows),
         "Crossover n* where the polynomial method's fitted line drops below exact SDPA's, per constant B "
         "(Fieller 95% interval; hollow: outside the measured sizes, an extrapolation). At constant B both "
         "exponents are fixed and n* grows quickly with B (the rank grows like degree^d)."),
        (phase.hard_figure(rows),
         "Planted inputs: each query's own key matches its signs at full size B (the logit scale·d·B² is the "
         "largest the entry bound allows), as in the hardness reductions; attention is far from uniform once "
         "B ≳ √ln n, and the uniform answer (dotted) is then far off. The polynomial method stays accurate "
         "where it can be built; where the needed degree does not fit (or float64 cannot represent P) the point "
         "is recorded as skipped with the reason." + (f" Skipped here:\n{skipped}" if skipped else "")),
        (figures.phase_exponent_figure(p.fits, p.run.results),
         "Fitted exponent per entry-bound regime with its 95% CI. Theory: bounded B (or B = o(√ln n)) "
         "gives n^{1+o(1)}; past B = Θ(√ln n) no truly subquadratic algorithm exists under SETH."),
    ]
    for kernel in figures.phase_kernels(p.run.results):
        pairs.append((figures.phase_time_heatmap(p.run.results, kernel),
                      "Each square is one measured (n, B) point, coloured by log10 median time."))
        pairs.append((figures.phase_error_heatmap(p.run.results, kernel),
                      "Max error of the kernel (left) and of the uniform answer on the same cases (right), "
                      "on one colour scale: a kernel is only useful where it is clearly darker."))
    figs = _figs(*pairs)
    if not figs:
        return None
    table, heads = phase.summary_table(rows), phase.headline_table(rows)
    tabs = tuple((title, tables.html_table(t, {c: (c, str) for c in t.columns})) for title, t in (
        ("E2's headline fits: constant B and growing B, each label beside the cost model's (docs/phase.md)", heads),
        ("Exponent per series: measured vs cost model", table)) if not t.empty)
    return Section("phase", "Phase transition (E2)", PHASE_INTRO, figs, tabs)


def accuracy_section(p: PageData) -> Section | None:
    figs = _figs((figures.accuracy_figure(p.run.results),
                  "Measured max error against the a-priori bound 2ε/(1+√(1−ε²))·‖V‖max (ε: the polynomial's "
                  "relative error on the logit range, ‖V‖max = err_max / err_max_rel), by degree when the "
                  "results record it, else by target ε. Tightness ≤ 1 means the bound holds; the grey "
                  "dotted line is the uniform answer's error."))
    warn = warnings_frame(p.run.results)
    tabs = (("Rows where the rounding term exceeds the ε-bound (guarantee not established in that dtype)",
             tables.html_table(warn, {c: (c, str) for c in warn.columns})),) if not warn.empty else ()
    if not figs and not tabs:
        return None
    return Section("accuracy", "Accuracy (E3)", "", figs, tabs)


def warnings_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, kernel, dtype): how many measured rows carry a rounding warning, and the
    largest rounding_bound / err_bound among them (results columns ``warning``, ``rounding_bound``)."""
    if rows is None or rows.empty or "warning" not in rows.columns:
        return pd.DataFrame()
    w = rows[rows["warning"].fillna("").astype(str) != ""]
    if w.empty:
        return pd.DataFrame()
    out = []
    for (exp, kernel, dtype), g in w.groupby(["experiment", "kernel", "dtype"], sort=True):
        total = int(((rows["experiment"] == exp) & (rows["kernel"] == kernel) & (rows["dtype"] == dtype)).sum())
        ratio = (g["rounding_bound"] / g["err_bound"]).max()
        out.append({"experiment": exp, "kernel": kernel, "dtype": dtype, "rows warned": f"{len(g)} of {total}",
                    "max rounding term / ε-bound": f"{ratio:.3g}",
                    "largest measured err_max / ε-bound": f"{(g['err_max'] / g['err_bound']).max():.3g}"})
    return pd.DataFrame(out)


def gradient_section(p: PageData) -> Section | None:
    ok = p.run.ok
    bwd = ok[ok["op"] == "backward"]
    figs = _figs(
        (figures.scaling_figure(bwd, fitted_lines(bwd), (), op="backward"),
         "Gradient time per size with power-law fits (95% bands) and slope-1/slope-2 guides."),
        (figures.gradient_figure(ok),
         "Gradient time and max error of dL/dX against the float64 reference, with the uniform baseline."),
    )
    return Section("gradients", "Gradients (E4)", "", figs) if figs else None


def pareto_section(p: PageData) -> Section | None:
    """One error-vs-time view per entry-bound regime (each at the size where most approximate
    kernels ran): whether an approximation beats the uniform answer depends on B."""
    figs, tabs, notes = [], [], []
    for regime in pareto_regimes(p.run.results):
        found = pareto_points(p.run.results, regime)
        if found is None:
            continue
        points, where = found
        front = best_at_error_levels(points)
        best = front.iloc[-1]
        figs.append((figures.pareto_figure(points, where),
                     "Each point is one kernel configuration (median over seeds); stars mark the Pareto front."))
        tabs.append((f"Fastest configuration at each error level ({where})", tables.best_kernel_table(front)))
        notes.append(f"at {where} the most accurate point on the front is {best['label']} "
                     f"(err_max {best['err_max']:.3g})")
    if not figs:
        return None
    intro = "One view per entry bound B: " + "; ".join(notes) + "."
    return Section("pareto", "Error vs time (E6)", intro, _figs(*figs), tuple(tabs))


def stats_rates_section(p: PageData) -> Section | None:
    """E7/E8: score-estimation rates of the latent and ambient score networks (ditbench.stats)."""
    rows = stats.stats_frame(p.run.results)
    if rows.empty:
        return None
    rates = rate_table(rows)
    band = "points: one per seed; dotted: per-size median; solid line and band: fitted power law with its 95% band"
    figs = _figs(
        (stats.metric_figure(rows, "score_err_on"),
         f"σ-weighted score error on the subspace against the analytic score ({band}). The paper predicts no "
         "growth with D for the latent network (D only in logarithms) and growth sub-linear in d0."),
        (stats.metric_figure(rows, "score_err_off"), f"The same error off the subspace ({band})."),
        (stats.metric_figure(rows, "subspace_err"),
         f"Subspace error of the latent network's learned W_B ({band}); √(2·d0) means no alignment."),
        (stats.metric_figure(rows, "sample_mmd", floors=True),
         f"Gaussian-kernel MMD of 512 reverse-SDE samples to fresh data ({band}); grey: the same sampler with "
         "the analytic score (discretisation floor) and two fresh data samples (estimator floor)."),
    )
    projected = stats.projection_figure(rows)
    if projected is not None:
        figs += ((projected[0], "Reverse-SDE samples of each network (colour) and fresh data (grey) in the "
                                "coordinates of the true B's first two columns."),)
    intro = "Score networks trained by denoising score matching on a latent Gaussian mixture (docs/stats.md). " + \
        " ".join(v.sentence() + "." for v in verdicts(rates))
    return Section("stats", "Statistical rates (E7/E8)", intro, figs,
                   (("Fitted rates: metric ∝ x^k (95% CI, OLS with HC3 errors over seeds)", stats.rates_table(rates)),))


def fits_section(p: PageData) -> Section | None:
    if p.fits is None or p.fits.empty:
        return None
    return Section("fits", "Fitted exponents",
                   "Power-law fits t ∝ n^k (95% CI), regime label and the growth law preferred by AIC.",
                   tables=(("", tables.fits_table(p.fits)),))


def not_ok_section(p: PageData) -> Section | None:
    rows, bad = p.run.not_ok, nonfinite_errors(p.run.results)
    if rows.empty and bad.empty:
        return None
    counts = rows["status"].value_counts()
    intro = ", ".join(f"{int(v)} {k}" for k, v in counts.items()) + " point(s), with the recorded reasons." \
        if len(rows) else ""
    if not bad.empty:
        intro += (f" {len(bad)} ok point(s) returned non-finite output (infinite error): they appear in "
                  "timing plots and are left out of error plots.")
        rows = pd.concat([rows, bad.assign(status="ok, non-finite error", reason="non-finite output")])
    return Section("skipped", "Skipped and failed points", intro.strip(), tables=(("", tables.not_ok_table(rows)),))


def environment_section(p: PageData) -> Section:
    intro = ""
    if p.run.missing_columns:
        intro = "results.csv lacks these DESIGN §5 columns (their sections are omitted): " + \
                ", ".join(p.run.missing_columns) + "."
    return Section("environment", "Environment", intro,
                   tables=(("", tables.environment_card(p.run.meta, p.run.results)),))


SectionBuilder = Callable[[PageData], Section | None]
# Page order. A new section is one function and one line here.
SECTIONS: tuple[SectionBuilder, ...] = (
    scaling_section, phase_section, accuracy_section, gradient_section, pareto_section, stats_rates_section,
    fits_section, not_ok_section, environment_section,
)


def build_sections(run: Run) -> tuple[PageData, list[Section]]:
    """Run every builder of :data:`SECTIONS` on ``run``; drop the ones without data."""
    data = PageData(run=run, fits=run_fits(run))
    return data, [s for s in (build(data) for build in SECTIONS) if s is not None]
