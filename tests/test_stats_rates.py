"""ditbench.stats.rates on synthetic laws with known exponents, the stats family through the one
runner (a tiny training per case), and the report section."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ditbench.stats.rates import rate_lines, rate_table, varied_variable, verdicts


def synthetic(law: dict[str, float], variable: str, sizes: list[int], *, seeds: int = 4, noise: float = 0.05,
              experiment: str = "E", rng: np.random.Generator) -> pd.DataFrame:
    """Rows of a stats run where network N's metrics follow c·x^{law[N]} times lognormal noise."""
    base = {"train_samples": 1000, "ambient_dim": 32, "latent_dim": 4}
    rows = []
    for network, k in law.items():
        for x in sizes:
            for seed in range(seeds):
                value = 0.3 * x**k * float(np.exp(noise * rng.standard_normal()))
                rows.append({**base, variable: x, "experiment": experiment, "network": network, "seed": seed,
                             "workload": "stats", "status": "ok", "score_err": value, "score_err_on": value,
                             "score_err_off": value / 2,
                             "subspace_err": value if network == "latent" else np.nan, "sample_mmd": value})
    return pd.DataFrame(rows)


def test_rates_recover_known_exponents_and_name_the_variable() -> None:
    rng = np.random.default_rng(0)
    frame = pd.concat([
        synthetic({"latent": -0.5, "ambient": -0.25}, "train_samples", [250, 1000, 4000, 16000], experiment="E7",
                  rng=rng),
        synthetic({"latent": 0.0, "ambient": 0.5}, "ambient_dim", [16, 64, 256], experiment="E8-D", rng=rng),
    ])
    rates = rate_table(frame)
    got = {(r.experiment, r.network, r.quantity): r for r in rates.itertuples()}
    for (exp, net, k) in [("E7", "latent", -0.5), ("E7", "ambient", -0.25), ("E8-D", "latent", 0.0),
                          ("E8-D", "ambient", 0.5)]:
        r = got[(exp, net, "score_err_on")]
        # within 1.5 half-widths of the 95% CI (≈ 3 standard errors: a miss has probability ≈ 0.3 %)
        assert abs(r.exponent - k) <= 1.5 * (r.ci_high - r.ci_low) / 2, r
        assert r.ci_high - r.ci_low < 0.2  # 5 % noise, 12–16 points: a tight interval
        assert r.variable == ("train_samples" if exp == "E7" else "ambient_dim")
    assert ("E7", "ambient", "subspace_err") not in got  # undefined for the ambient network: no row
    (v,) = verdicts(rates)
    assert v.latent_contains_zero and v.differs
    assert "contains 0" in v.sentence() and "differs" in v.sentence()
    assert any("vs D" in line for line in rate_lines(rates))


def test_verdict_is_not_fooled_by_equal_growth() -> None:
    """Both networks growing like D^0.5: the latent CI excludes 0 and the difference is not significant."""
    rates = rate_table(synthetic({"latent": 0.5, "ambient": 0.5}, "ambient_dim", [16, 64, 256],
                                 experiment="E8-D", rng=np.random.default_rng(1)))
    (v,) = verdicts(rates)
    assert not v.latent_contains_zero and v.differs is False


def test_noisy_flat_law_gives_an_interval_around_zero() -> None:
    """A D-independent metric under 30 % noise: the CI must contain 0 (and be wide, honestly)."""
    rates = rate_table(synthetic({"latent": 0.0}, "ambient_dim", [16, 64, 256], noise=0.3,
                                 experiment="E8-D", rng=np.random.default_rng(2)))
    r = rates[rates["quantity"] == "score_err_on"].iloc[0]
    assert r.ci_low <= 0 <= r.ci_high


def test_rates_refuse_an_experiment_varying_two_sizes_and_note_too_few_sizes() -> None:
    rng = np.random.default_rng(3)
    two = synthetic({"latent": 0.0}, "ambient_dim", [16, 64, 256], rng=rng)
    two.loc[two.index[:3], "latent_dim"] = 8
    with pytest.raises(ValueError, match="exactly one"):
        varied_variable(two)
    few = rate_table(synthetic({"latent": 0.0}, "train_samples", [100, 200], rng=rng))
    assert few["exponent"].isna().all() and few["note"].str.contains("at least 3").all()


def test_non_positive_values_are_left_out_with_a_note() -> None:
    frame = synthetic({"latent": -0.5}, "train_samples", [100, 400, 1600], rng=np.random.default_rng(4))
    frame.loc[frame.index[0], "sample_mmd"] = 0.0
    rates = rate_table(frame)
    assert "1 non-positive" in rates.loc[rates["quantity"] == "sample_mmd", "note"].iloc[0]


##################################################################################################
# the stats family through the one runner, and the report section
##################################################################################################
TINY = """
name = "tiny-stats"
[[sweep]]
experiment = "E8-D"
workload = "stats"
kernels = ["sdpa"]
seeds = [0]
setting = {network = ["latent", "ambient"], train_samples = 64, ambient_dim = [4, 8, 16], latent_dim = 2, \
    steps = 3, hidden = 4, depth = 1, batch = 16}
min_run_time = 0.001
min_repeats = 1
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    from ditbench.measure import InProcessExecutor, load_preset_text, run_sweep
    from ditbench.stats import experiment

    out = tmp_path_factory.mktemp("stats-run")
    with pytest.MonkeyPatch.context() as mp:  # tiny evaluation: this checks the plumbing, not the rates
        mp.setattr(experiment, "EVAL_POINTS", 64)
        mp.setattr(experiment, "SAMPLE_POINTS", 32)
        mp.setattr(experiment, "SDE_STEPS", 5)
        frame = run_sweep(load_preset_text(TINY, name="tiny-stats"), out, threads=1, executor=InProcessExecutor(),
                          progress=False)
    return out, frame


def test_stats_family_rows_carry_every_metric(tiny_run) -> None:
    _, frame = tiny_run
    assert (frame["status"] == "ok").all(), frame[["status", "reason"]]
    assert len(frame) == 6 and set(frame["network"]) == {"latent", "ambient"}
    for col in ("score_err", "score_err_on", "score_err_off", "score_ref", "sample_mmd", "sample_mmd_exact",
                "sample_mmd_floor", "train_s", "param_count", "median_s"):
        assert (frame[col] > 0).all(), col
    latent = frame[frame["network"] == "latent"]
    assert (latent["subspace_err"] > 0).all() and frame.loc[frame["network"] == "ambient", "subspace_err"].isna().all()
    points = json.loads(frame["projection"].iloc[0])
    assert len(points["model"]) == 32 and len(points["model"][0]) == 2
    assert (frame["n"] == 2).all() and (frame["d"] > 0).all()  # n = L = d0 tokens, d = head dim


def test_stats_spec_errors_name_the_setting() -> None:
    from ditbench.measure import load_preset_text, plan

    bad = TINY.replace("latent_dim = 2", "latent_dim = 32")
    with pytest.raises(ValueError, match="latent_dim"):
        plan(load_preset_text(bad, name="bad"), threads=1)
    with pytest.raises(ValueError, match="not allowed"):
        plan(load_preset_text(TINY.replace("depth = 1", "depht = 1"), name="bad"), threads=1)
    with pytest.raises(ValueError, match="network 'mlp'"):
        plan(load_preset_text(TINY.replace('"ambient"]', '"mlp"]'), name="bad"), threads=1)


def test_shipped_stats_presets_expand() -> None:
    from ditbench.measure import get_preset, plan

    cases = plan(get_preset("stats"), threads=2)
    assert len(cases) == 36 and len({c.case_id for c in cases}) == 36
    assert len(plan(get_preset("stats-gpu"), threads=2)) == 150


def test_report_section_draws_the_stats_run(tiny_run) -> None:
    from ditbench.report.data import load_run
    from ditbench.report.sections import build_sections

    out, _ = tiny_run
    run = load_run(out)
    assert run.ok.empty  # stats rows are not timing rows: the timing sections leave them alone
    _, sections = build_sections(run)
    assert "fits" not in {s.id for s in sections}  # nor the timing fits (inference time vs tokens means nothing)
    (stats,) = [s for s in sections if s.id == "stats"]
    titles = " ".join(fig.layout.title.text for fig, _ in stats.figures)
    for part in ("on the subspace", "off the subspace", "subspace error", "MMD", "latent plane"):
        assert part in titles
    assert "E8-D: latent score_err_on" in stats.intro
