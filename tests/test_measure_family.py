"""Workload families: one object per family, one file each, registered in one place; the case
identity is derived from the Case fields (a new field can never merge distinct cases)."""
from __future__ import annotations

import dataclasses
import pkgutil
from collections.abc import Iterator

import pytest
import torch

import ditbench.measure.families as families_pkg
from ditbench.attention import KERNELS, exact_attention
from ditbench.measure import Case, InProcessExecutor, Preset, SweepSpec, expand, run_sweep
from ditbench.measure import family as family_mod
from ditbench.measure.budget import Rates
from ditbench.measure.cases import HOW, Geometry, identity_fields
from ditbench.measure.family import FAMILY_MODULES, Family, family_names, get_family
from ditbench.measure.workloads import Check, Prepared, error_metrics
from tolerances import gamma, softmax_rounding_bound


def _case(**kw) -> Case:
    base = dict(experiment="T", kernel="exact", op="forward", n=64, m=64, d=4, dv=4, bound=1.0, bound_spec="1",
                scale=0.25, scale_spec="1/d", params=(), dtype="float32", device="cpu", seed=0, threads=1)
    return Case(**(base | kw))


##################################################################################################
# identity
##################################################################################################
def test_identity_is_every_field_but_the_how_ones():
    how_fields = {f.name for f in dataclasses.fields(Case) if f.metadata.get("identity") is False}
    assert how_fields == {"scale_spec", "ref_rows", "min_run_time", "timer", "min_repeats", "timeout_s",
                          "time_budget_s", "memory_fraction", "passes"}
    assert set(Case.IDENTITY) == {f.name for f in dataclasses.fields(Case)} - how_fields
    assert _case(min_run_time=5.0, timeout_s=1.0).case_id == _case().case_id
    changes = (("seed", 1), ("threads", 2), ("bound_spec", "2"), ("value_bound", 2.0), ("setting", (("a", 1),)))
    for name, value in changes:
        assert _case(**{name: value}).case_id != _case().case_id, name


def test_a_new_field_changes_the_case_id_unless_declared_how():
    """The bug a hand-kept identity list allowed: add a field, forget the list, and --resume merges
    distinct cases. Derived identity: a new field counts unless it is declared with metadata=HOW."""
    new_fields = [("variant", str, dataclasses.field(default="a")),
                  ("patience", float, dataclasses.field(default=1.0, metadata=HOW))]
    Extended = dataclasses.make_dataclass("Extended", new_fields, bases=(Case,), frozen=True)
    base = {f.name: getattr(_case(), f.name) for f in dataclasses.fields(Case)}
    a, b = Extended(**base, variant="a"), Extended(**base, variant="b")
    assert "variant" in identity_fields(Extended) and "patience" not in identity_fields(Extended)
    assert a.case_id != b.case_id
    assert Extended(**base, variant="a", patience=9.0).case_id == a.case_id


##################################################################################################
# registry
##################################################################################################
def test_every_family_module_is_registered_once_and_names_itself():
    files = {m.name for m in pkgutil.iter_modules(families_pkg.__path__)}
    assert files == set(FAMILY_MODULES) == set(family_names())
    for name in family_names():
        family = get_family(name)
        assert isinstance(family, Family) and family.name == name and family.description
        assert FAMILY_MODULES[name] == f"ditbench.measure.families.{name}"


def test_unknown_workload_names_the_allowed_ones():
    allowed = r"workload='nope' is not allowed; allowed values: \['attention', 'dit', 'stats'\]"
    with pytest.raises(ValueError, match=allowed):
        SweepSpec.from_dict({"experiment": "T", "kernels": ["exact"], "n": [64], "workload": "nope"})


##################################################################################################
# a new family is one module and one registry line: a toy one, run end to end
##################################################################################################
def _toy_geometries(spec: SweepSpec) -> Iterator[Geometry]:
    for tokens in spec.setting_grid["tokens"]:
        yield Geometry(n=tokens, m=tokens, d=2, dv=2, bound=None, bound_spec="", scale=0.5, scale_spec="1/d",
                       setting=(("tokens", tokens),))


def _toy_prepare(case: Case) -> Prepared:
    q = torch.ones(case.n, case.d, dtype=case.torch_dtype)  # (n, 2): every logit equal, attention uniform
    v = torch.arange(case.n * case.dv, dtype=case.torch_dtype).reshape(case.n, case.dv)  # (n, 2)
    kernel = KERNELS[case.kernel]
    ref = exact_attention(q.double(), q.double(), v.double(), scale=case.scale)  # (n, 2)
    check = Check(rows=None, reference=ref, uniform=v.double().mean(0, keepdim=True), rel_scale=float(v.abs().max()))
    return Prepared(call=lambda: kernel(q, q, v, scale=case.scale),
                    score=lambda out: {**error_metrics(out, check), "radius": None})


FAMILY = Family(name="toy", description="constant q = k (test only)", geometries=_toy_geometries,
                prepare=_toy_prepare, cost=lambda case: None, overhead_bytes=lambda case: 0.0,
                setting={"tokens": True}, derived=("n", "m", "d", "dv", "bound", "scale"), kernel_op="forward")


def test_a_new_family_is_one_module_and_one_registry_line(monkeypatch, tmp_path):
    monkeypatch.setattr(family_mod, "FAMILY_MODULES", {**FAMILY_MODULES, "toy": __name__})
    spec = SweepSpec.from_dict({"experiment": "T", "kernels": ["exact", "uniform"], "workload": "toy",
                                "setting": {"tokens": [16, 32]}, "min_run_time": 0.001, "min_repeats": 2})
    assert {c.n for c in expand(spec, threads=1)} == {16, 32}
    with pytest.raises(ValueError, match="derives"):
        SweepSpec.from_dict({"experiment": "T", "kernels": ["exact"], "workload": "toy", "n": [8],
                             "setting": {"tokens": [16]}})
    frame = run_sweep(Preset(name="toy", specs=(spec,)), tmp_path, threads=1, progress=False,
                      executor=InProcessExecutor(), rates=Rates(flops_per_s=1e9, method="assumed"))
    assert len(frame) == 4 and (frame["status"] == "ok").all() and (frame["workload"] == "toy").all()
    # Every logit is equal, so both kernels compute the mean of V: within float32 rounding of it
    # (softmax's worst-case bound at logit reach scale·d = 1; the plain mean's γ_n·‖V‖_max).
    for row in frame.itertuples():
        v_max = row.n * 2 - 1
        allowed = max(softmax_rounding_bound(row.n, 2, 1.0, v_max, torch.float32), gamma(row.n, torch.float32) * v_max)
        assert row.err_max <= allowed, (row.kernel, row.n, row.err_max, allowed)
