"""Sweep specs: validation messages, bound expressions, TOML round trip, grid and case expansion."""
from __future__ import annotations

import math
from types import MappingProxyType

import pytest

from ditbench.attention import KERNELS, Kernel, uniform_attention
from ditbench.measure import (
    Preset, SweepSpec, check_spec, dump_toml, expand, get_preset, load_config, load_preset_text, preset_names,
)
from ditbench.measure.expr import parse_expression
from tolerances import LIBM_ULPS

EPS64 = 2.0**-52


def spec(**overrides) -> SweepSpec:
    raw = {"experiment": "T", "kernels": ["exact"], "n": [64, 128]} | overrides
    return SweepSpec.from_dict(raw)


##################################################################################################
# bound expressions
##################################################################################################
@pytest.mark.parametrize("text, values, expected", [
    ("0.5*sqrt(log(n))", {"n": 1024}, 0.5 * math.sqrt(math.log(1024))),
    ("1/d", {"d": 8}, 0.125),
    ("1/sqrt(d)", {"d": 16}, 0.25),
    ("log2(n) - log(e) + min(d, 3) * max(m, 1) ** 2", {"n": 8, "d": 5, "m": 2}, 3 - 1 + 3 * 4),
    ("-exp(0) + pi", {}, math.pi - 1),
    ("2", {}, 2.0),
])
def test_expression_values(text, values, expected):
    # Both sides evaluate the same ≤ 3 elementary functions (log, sqrt, exp, log2) and a few exact
    # or once-rounded operations, possibly in another order: ≤ LIBM_ULPS ulp per function, u per operation.
    tol = 3 * LIBM_ULPS * EPS64 + 4 * EPS64 / 2
    assert parse_expression(text)(**values) == pytest.approx(expected, rel=tol)


@pytest.mark.parametrize("text, match", [
    ("__import__('os')", "unknown name|only calls"),
    ("n.real", "Attribute is not allowed"),
    ("open('x')", "only calls"),
    ("n if d else m", "IfExp is not allowed"),
    ("n // 2", "FloorDiv is not allowed"),
    ("sqrt(log(n)", "cannot parse"),
    ("'abc'", "not a number"),
    ("q + 1", "unknown name 'q'"),
    ("sqrt + 1", "function 'sqrt' must be called"),
    ("n(2)", "only calls like f"),
    ("", "non-empty"),
])
def test_expression_rejects_unsafe_or_bad_text(text, match):
    with pytest.raises(ValueError, match=match):
        parse_expression(text)


@pytest.mark.parametrize("text, values, match", [
    ("log(n - 1)", {"n": 1}, "cannot be evaluated"),
    ("1/(d - 8)", {"d": 8}, "cannot be evaluated"),
    ("n ** 100", {"n": 2}, "too large"),
    ("d", {}, "no value given for variable 'd'"),
])
def test_expression_domain_errors_are_value_errors(text, values, match):
    with pytest.raises(ValueError, match=match):
        parse_expression(text)(**values)


##################################################################################################
# spec validation: the message names the field and the allowed values
##################################################################################################
@pytest.mark.parametrize("overrides, match", [
    ({"op": "sideways"}, r"op='sideways' is not allowed; allowed values: \['forward', 'backward'\]"),
    ({"dtype": ["float8"]}, r"dtype \['float8'\] not allowed; allowed values: \['float32'"),
    ({"device": "tpu"}, r"device='tpu' is not allowed; allowed values: \['cpu', 'cuda'\]"),
    ({"timer": "stopwatch"}, "timer='stopwatch' is not allowed"),
    ({"n": [64, 128, 1024]}, "not a geometric grid"),
    ({"n": [128, 64, 32]}, "not a geometric grid"),
    ({"n": {"start": 64, "stop": 1024, "factor": 1}}, "factor=1 must be a number > 1"),
    ({"n": {"start": 64, "stop": 1024}}, "exactly the keys start, stop, factor"),
    ({"n": [0, 1]}, "integers ≥ 1"),
    ({"n": [64, 64]}, "repeats a value"),
    ({"bound": ["sqrt(log(n)"]}, "spec field 'bound': cannot parse"),
    ({"bound": [-1.0]}, "must be finite and > 0"),
    ({"scale": ["1/q"]}, "unknown name 'q'"),
    ({"kernels": []}, "empty list"),
    ({"memory_fraction": 2.0}, r"memory_fraction=2.0 must be a number in \(0, 1\]"),
    ({"ref_rows": 0}, "ref_rows=0 must be an integer ≥ 1"),
    ({"colour": "red"}, r"unknown spec field\(s\) \['colour'\]; allowed fields"),
])
def test_invalid_spec_names_field_and_allowed_values(overrides, match):
    with pytest.raises(ValueError, match=match):
        spec(**overrides)


def test_registry_checks_kernel_op_params_and_expressions_before_running():
    with pytest.raises(ValueError, match=r"unknown kernel 'nope'; registered kernels: \[.*'exact'"):
        check_spec(spec(kernels=["exact", "nope"]))
    with pytest.raises(ValueError, match=r"op='forward'.*op='backward'"):
        check_spec(spec(op="backward"))
    with pytest.raises(ValueError, match=r"params \['eps'\] are accepted by none of the kernels"):
        check_spec(spec(params={"eps": [1e-3]}))
    # log(n/64) = 0 at n = 64: a zero bound is refused with the point where it happens.
    with pytest.raises(ValueError, match=r"bound 'log\(n/64\)' = 0.0 at \{'n': 64"):
        check_spec(spec(bound=["log(n/64)"]))


##################################################################################################
# grids, expansion, identity
##################################################################################################
def test_geometric_grid_is_inclusive_and_explicit_grids_may_be_rounded():
    assert spec(n={"start": 1024, "stop": 32768, "factor": 2}).n == (1024, 2048, 4096, 8192, 16384, 32768)
    assert spec(n={"start": 100, "stop": 1000, "factor": 10}).n == (100, 1000)
    # round(2^(k/2)) is geometric within rounding: accepted.
    assert spec(n=[round(2 ** (k / 2)) for k in range(12, 17)]).n == (64, 91, 128, 181, 256)


def test_expand_evaluates_expressions_and_keeps_bound_spec():
    cases = expand(spec(kernels=["exact", "uniform"], bound=[1, "sqrt(log(n))"], scale=["1/d"], d=[4],
                        m=[32], seeds=[0, 1]), threads=1)
    assert len(cases) == 2 * 2 * 2 * 2  # kernels × bounds × seeds × n
    case = next(c for c in cases if c.bound_spec == "sqrt(log(n))" and c.n == 128)
    assert case.bound == pytest.approx(math.sqrt(math.log(128)))
    assert (case.scale, case.scale_spec, case.m, case.dv, case.d) == (0.25, "1/d", 32, 4, 4)
    assert len({c.case_id for c in cases}) == len(cases)
    # n is innermost: each setting's small points come first.
    assert [c.n for c in cases[:2]] == [64, 128]


def test_params_apply_only_to_kernels_that_accept_them(monkeypatch):
    def fake(q, k, v, *, scale=None, eps=0.1):
        return uniform_attention(q, k, v)

    monkeypatch.setitem(KERNELS, "fake_eps", Kernel(name="fake_eps", fn=fake, params=MappingProxyType({"eps": 0.1})))
    cases = expand(spec(kernels=["exact", "fake_eps"], params={"eps": [1e-1, 1e-2, 1e-3]}), threads=1)
    by_kernel = {k: [c for c in cases if c.kernel == k] for k in ("exact", "fake_eps")}
    assert len(by_kernel["exact"]) == 2  # one per n: exact does not take eps, so no duplicates
    assert sorted({c.kwargs["eps"] for c in by_kernel["fake_eps"]}) == [1e-3, 1e-2, 1e-1]


def test_case_id_is_stable_and_changes_with_identity():
    a = expand(spec(), threads=1)[0]
    b = expand(spec(), threads=1)[0]
    assert a.case_id == b.case_id
    assert expand(spec(seeds=[1]), threads=1)[0].case_id != a.case_id
    assert expand(spec(), threads=2)[0].case_id != a.case_id
    # How long to time it is not identity: a resumed run with another min_run_time still matches.
    assert expand(spec(min_run_time=1.0), threads=1)[0].case_id == a.case_id


##################################################################################################
# TOML
##################################################################################################
def test_toml_round_trip():
    preset = Preset(name="rt", description='quotes " and \\ survive', specs=(
        spec(bound=[1, "0.5*sqrt(log(n))"], scale=["1/d", 0.3], d=[4, 8], dv=[2], m=[256],
             n={"start": 64, "stop": 512, "factor": 2}, params={}, dtype=["float32", "float64"], seeds=[0, 7],
             min_run_time=0.05, timer="adaptive"),
        spec(experiment="T2", kernels=["sdpa", "uniform"], op="forward"),
    ))
    again = load_preset_text(dump_toml(preset), name="ignored")
    assert again == preset
    assert again.specs[0].bound == ("1", "0.5*sqrt(log(n))")
    assert again.specs[0].scale == ("1/d", "0.3")


def test_load_config_reports_file_and_sweep(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[[sweep]]\nexperiment = "X"\nkernels = ["exact"]\nn = [64]\nop = "up"\n')
    with pytest.raises(ValueError, match=r"mine.toml: \[\[sweep\]\] #1 \(X\): op='up' is not allowed"):
        load_config(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_preset_text("[[sweep]\n", name="broken")


def test_shipped_presets_parse_and_validate_against_the_registry(monkeypatch):
    assert {"smoke", "default", "full"} <= set(preset_names())
    # The polynomial kernel lands on another branch: validate against a stand-in with its parameters.
    if "polynomial" not in KERNELS:
        params = MappingProxyType({"eps": 1e-3, "degree": None, "radius": None, "block_size": None})
        monkeypatch.setitem(KERNELS, "polynomial", Kernel(
            name="polynomial", fn=lambda q, k, v, *, scale=None, **kw: uniform_attention(q, k, v), params=params))
    for name in preset_names():
        preset = get_preset(name)
        assert preset.name == name and preset.specs
        for s in preset.specs:
            check_spec(s)
    with pytest.raises(ValueError, match=r"unknown preset 'nope'; available presets: \["):
        get_preset("nope")
