"""The asv and pytest-benchmark suites are well-formed (fast: nothing here times a kernel for long).

What `asv check` would reject, and what would silently break regression tracking, is checked
in-process: params/param_names agree, setup signatures match, every track_* has a unit, skips
are NotImplementedError (asv's "skipped"), and the exponent wiring recovers a known exponent.
"""
from __future__ import annotations

import importlib
import inspect
import json
import os
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # `benchmarks/` is not an installed package: plain `pytest tests` (tox) does not put the
    # repository root on sys.path. Appended, so an installed ditbench still wins over the tree.
    sys.path.append(str(ROOT))

from benchmarks import bench_attention, bench_gradient, common  # noqa: E402
ASV_MODULES = (bench_attention, bench_gradient)
ASV_PREFIXES = ("time_", "peakmem_", "track_", "mem_", "timeraw_")
PARAM_AXES = {"n", "d", "bound", "kernel", "device"}


def _benchmark_classes():
    for module in ASV_MODULES:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                yield cls


def _benchmark_methods(cls):
    return [name for name in dir(cls) if name.startswith(ASV_PREFIXES)]


CLASSES = list(_benchmark_classes())


##################################################################################################
# asv suite structure
##################################################################################################
def test_every_module_defines_benchmarks():
    for module in ASV_MODULES:
        assert any(cls.__module__ == module.__name__ for cls in CLASSES), module.__name__


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_class_is_well_formed(cls):
    methods = _benchmark_methods(cls)
    assert methods, f"{cls.__name__} has no asv benchmark method"
    assert len(cls.params) == len(cls.param_names), cls.__name__
    assert set(cls.param_names) <= PARAM_AXES, cls.param_names
    for values in cls.params:
        assert isinstance(values, tuple) and values, f"{cls.__name__}: every axis needs a static, non-empty tuple"
    setup_args = list(inspect.signature(cls.setup).parameters)[1:]
    assert setup_args == list(cls.param_names), f"{cls.__name__}.setup takes {setup_args}"
    for name in methods:
        assert list(inspect.signature(getattr(cls, name)).parameters)[1:] == list(cls.param_names), name
        if name.startswith("track_"):
            assert getattr(cls, name).unit in {"err", "exponent", "seconds", "bytes"}, name


def test_time_benchmarks_use_the_clock_of_their_device():
    covered = set()
    for cls in CLASSES:
        if any(name.startswith("time_") for name in _benchmark_methods(cls)):
            (device,) = cls.params[cls.param_names.index("device")]  # one device per class: one clock
            assert cls.timer is common.TIMERS[device], cls.__name__
            covered.add(device)
    assert covered == set(common.DEVICES)


def test_devices_axis_includes_cuda_and_kernels_exist_in_sweeps():
    assert "cuda" in common.DEVICES
    for cls in CLASSES:
        if "kernel" in cls.param_names and "Exponent" in cls.__name__:
            kernels = cls.params[cls.param_names.index("kernel")]
            assert set(kernels) <= set(common.EXPONENT_SWEEPS), cls.__name__


def test_exponent_sweeps_are_geometric_with_enough_sizes():
    for name, sweep in common.EXPONENT_SWEEPS.items():
        sizes = sweep.sizes
        assert len(sizes) >= 4, name  # ditbench.fit needs ≥ 3 sizes; one spare for the region rule
        ratios = {b / a for a, b in zip(sizes, sizes[1:])}
        assert len(ratios) == 1 and ratios.pop() > 1, f"{name}: {sizes} is not a geometric grid"


def test_importing_the_suite_builds_no_inputs():
    common.inputs.cache_clear()
    for module in ASV_MODULES:
        importlib.reload(module)
    assert common.inputs.cache_info().currsize == 0


##################################################################################################
# skips: NotImplementedError from setup, naming what is missing
##################################################################################################
def test_cuda_params_skip_without_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NotImplementedError, match="cuda"):
        bench_attention.Forward().setup(1024, 8, 1.0, "exact", "cuda")


def test_unregistered_kernel_skips_naming_it():
    with pytest.raises(NotImplementedError, match="no_such_kernel"):
        common.require_kernel("no_such_kernel", "forward")


def test_wrong_op_is_an_error_not_a_skip():
    with pytest.raises(ValueError, match="op="):
        common.require_kernel("exact", "backward")


def test_unknown_device_is_an_error():
    with pytest.raises(ValueError, match="tpu"):
        common.require_device("tpu")


def test_point_columns_carry_what_ditbench_fit_groups_by():
    point = common.Point.of("polynomial", "forward", 4096, 8, 1.0, "cpu")
    cols = point.columns()
    for key in ("kernel", "op", "n", "m", "d", "dv", "bound", "scale", "dtype", "device", "threads", "seed"):
        assert key in cols
    assert cols["eps"] == common.KERNEL_PARAMS["polynomial"]["eps"]  # kernel params become columns
    assert cols["scale"] == 1 / 8 and cols["threads"] == common.THREADS
    json.dumps(cols)  # extra_info must be JSON


##################################################################################################
# exponent wiring: a synthetic law with a known answer (needs ditbench.fit)
##################################################################################################
@pytest.mark.parametrize("true_exponent", [1.0, 2.0])
def test_fitted_exponent_recovers_a_synthetic_law(monkeypatch, true_exponent):
    # 3e-9·n^k with ±2 % deterministic jitter: the fit must land within its own CI of k.
    jitter = iter([1.02, 0.98, 1.01, 0.99])
    monkeypatch.setattr(common, "fastest_call_seconds", lambda p: 3e-9 * p.n**true_exponent * next(jitter))
    monkeypatch.setattr(common, "call", lambda p: None)
    fit = common.fitted_exponent(common.exponent_points("exact", "cpu"))
    assert fit.ci_low <= true_exponent <= fit.ci_high
    assert math.isclose(fit.exponent, true_exponent, abs_tol=0.05)


##################################################################################################
# end to end on the real kernels (needs ditbench.measure)
##################################################################################################
def test_uniform_benchmark_runs_and_reports_its_error():
    bench = bench_attention.ForwardAccuracy()
    bench.setup(4096, 8, 1.0, "uniform", "cpu")
    err = bench.track_err_max(4096, 8, 1.0, "uniform", "cpu")
    # The uniform answer's own error against exact attention (DESIGN §2: ~1.5e-3 at d = 8,
    # B = 1, scale 1/d): positive and far below ‖V‖_max = 1.
    assert 0 < err < 0.1
    timing = bench_attention.Forward()
    timing.setup(1024, 8, 1.0, "sdpa", "cpu")
    assert timing.run().shape == (1024, 8)
    assert common.fastest_call_seconds(common.Point.of("sdpa", "forward", 256, 8, 1.0), min_run_time=0.01) > 0


##################################################################################################
# configuration files
##################################################################################################
def _asv_conf() -> dict:
    text = (ROOT / "asv.conf.json").read_text()
    return json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE))


def test_asv_conf_points_at_this_suite_and_pins_cpu_torch():
    conf = _asv_conf()
    assert conf["benchmark_dir"] == "benchmarks" and conf["launch_method"] == "spawn"
    assert conf["environment_type"] == "virtualenv"
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert conf["matrix"]["req"]["torch"] == [pins["torch"]]  # the same CPU build tox uses
    assert any("--no-deps" in cmd for cmd in conf["build_command"])  # never resolves a CUDA torch


def test_pytest_suite_is_outside_the_fast_test_run():
    assert not list((ROOT / "tests").glob("test_bench_*.py"))
    suite = ROOT / "benchmarks" / "pytest_suite"
    assert sorted(p.name for p in suite.glob("test_bench_*.py")) == [
        "test_bench_attention.py", "test_bench_gradient.py"]
    assert not (suite / "__init__.py").exists()  # asv must not descend into it (it imports pytest)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("asv") is None, reason="asv not importable (it runs python -m asv)")
def test_asv_check_finds_no_problems():
    # ASV_PYTHONPATH: asv drops PYTHONPATH in benchmark processes; this makes them import this tree.
    env = {"ASV_PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent), "HOME": str(Path.home())}
    proc = subprocess.run([sys.executable, "-m", "asv", "check", "--python=same"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No problems found" in proc.stdout


def test_cuda_benchmarks_are_dropped_at_discovery_without_a_gpu():
    """No GPU: every CUDA-only benchmark carries asv_runner's skip mark (discovery drops it, no
    process is spawned); the CPU benchmarks they inherit from do not."""
    if common.HAS_CUDA:
        pytest.skip("a GPU is present: nothing is dropped")
    discovery = pytest.importorskip("asv_runner.discovery", reason="asv (the bench extra) not installed")
    _get_benchmark = discovery._get_benchmark

    cuda_only = [(bench_attention.ForwardCUDA, "time_forward"), (bench_gradient.GradientCUDA, "time_gradient"),
                 (bench_attention.ForwardCUDAEvents, "track_cuda_event_seconds"),
                 (bench_attention.ForwardCUDAEvents, "track_cuda_peak_bytes")]
    for cls, name in cuda_only:
        assert _get_benchmark(name, bench_attention, cls, getattr(cls, name)) is None, (cls.__name__, name)
    assert _get_benchmark("time_forward", bench_attention, bench_attention.Forward,
                          bench_attention.Forward.time_forward) is not None
    assert "cuda" not in bench_attention.ForwardExponent.params[1]


def test_every_benchmark_class_is_versioned_by_the_settings_in_common():
    for cls in CLASSES:
        assert cls.version == common.SETTINGS_VERSION, cls.__name__
    assert len(common.SETTINGS_VERSION) == 12


def test_settings_version_follows_the_clock_threads_and_kernel_parameters(monkeypatch):
    import time
    from types import MappingProxyType

    before = common._settings_version()
    assert before == common.SETTINGS_VERSION  # deterministic: the same settings, the same digest
    for name, value in (("TIMERS", MappingProxyType({"cpu": time.perf_counter, "cuda": time.perf_counter})),
                        ("THREADS", 2), ("KERNEL_PARAMS", MappingProxyType({"polynomial": {"eps": 1e-2}})),
                        ("scale_for", lambda d: d ** -0.5)):
        with monkeypatch.context() as patch:
            patch.setattr(common, name, value)
            assert common._settings_version() != before, name


def test_cuda_probe_asks_nvml_and_leaves_the_environment_as_it_was(monkeypatch):
    seen = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: seen.append(os.environ.get(NVML)) or False)
    monkeypatch.delenv(NVML, raising=False)
    assert common._cuda_present() is False and seen == ["1"]  # torch's fork-safe (NVML) check
    assert NVML not in os.environ
    monkeypatch.setenv(NVML, "0")
    common._cuda_present()
    assert seen[-1] == "1" and os.environ[NVML] == "0"


NVML = "PYTORCH_NVML_BASED_CUDA_CHECK"
