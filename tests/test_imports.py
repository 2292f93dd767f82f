"""Cheap imports and one registration path: the package root, fit, report and the schema load no
torch, and fit and report no statsmodels, scipy or plotly until a fit or report runs; the report
reads files only (no kernel registry, no theory); ``ditbench --help`` imports no subcommand; a
kernel plugin found through the ``ditbench.kernels`` entry points is seen by the runner, the worker
and the report alike."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from test_report_data import write_synthetic_run

KERNEL_SIDE = ("torch", "ditbench.attention", "ditbench.theory", "ditbench.measure")
HEAVY = (*KERNEL_SIDE, "statsmodels", "scipy", "plotly")  # what a fit or a report loads when it runs


def _loaded_after(code: str, env: dict[str, str] | None = None, watch: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of ``watch`` are in sys.modules after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps([m for m in {watch!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# What the parsers of `ditbench <command> --help` may not load (the measure package itself is fine).
PARSER_HEAVY = ("torch", "pandas", "statsmodels", "scipy", "plotly", "ditbench.attention", "ditbench.theory")
LAZY_PACKAGES = ("ditbench.measure", "ditbench.dit", "ditbench.report", "ditbench.compare")


@pytest.mark.parametrize("module", ["ditbench", "ditbench.schema", "ditbench.errors", "ditbench.fit",
                                    "ditbench.fit.regime", "ditbench.fit.choices", "ditbench.report", "ditbench.cli",
                                    "ditbench.dit.configs", "ditbench.compare.thresholds"])
def test_light_modules_load_nothing_heavy(module):
    assert _loaded_after(f"import {module}") == []


def test_fit_loads_statsmodels_only_when_a_fit_runs():
    """The lazy names resolve (and then load what the fit needs); ``fit.crossover`` stays the
    function even after its submodule of the same name is imported."""
    code = ("import ditbench.fit.crossover\nfrom ditbench import fit\n"
            "assert callable(fit.crossover) and fit.crossover.__name__ == 'crossover'\n"
            "fit.fit_power_law([2.0**k for k in range(6, 12)], [2.0**k * 1e-6 for k in range(6, 12)])")
    assert _loaded_after(code, watch=("statsmodels", "torch")) == ["statsmodels"]


def test_help_imports_no_subcommand():
    code = ("import contextlib, io\nfrom ditbench.cli import main\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])")
    assert _loaded_after(code) == []


def test_every_subcommand_help_loads_no_torch_pandas_or_statsmodels():
    """`ditbench <command> --help` builds that command's real parser (its arguments, choices read
    from the registries' light homes) without the libraries its main needs; one interpreter runs
    every command's help in turn, so what is loaded at the end is the union."""
    from ditbench.cli import COMMANDS

    code = ("import contextlib, io\nfrom ditbench.cli import main\n"
            f"for command in {sorted(COMMANDS)!r}:\n"
            "    out = io.StringIO()\n"
            "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(out):\n"
            "        main([command, '--help'])\n"
            "    text = out.getvalue()\n"
            "    assert '--debug' in text and len(text.splitlines()) > 5, (command, text)")
    assert _loaded_after(code, watch=PARSER_HEAVY) == []


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_package_names_resolve(package):
    """Every name a lazy package re-exports resolves to the object its submodule defines (a name
    in ``__all__`` that no submodule defines, or one left out of the lazy table, fails here)."""
    import importlib

    module = importlib.import_module(package)
    assert module.__all__ == sorted(module.__all__) and set(module.__all__) <= set(dir(module))
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


@pytest.mark.slow
def test_building_a_report_touches_no_kernel_or_theory(tmp_path):
    run = write_synthetic_run(tmp_path / "run")
    code = f"from ditbench.report import build_report\nbuild_report([{str(run)!r}], out={str(tmp_path / 'site')!r})"
    assert _loaded_after(code, watch=KERNEL_SIDE) == []
    assert (tmp_path / "site" / "index.html").is_file()


def test_package_root_names_resolve_lazily():
    import ditbench

    assert callable(ditbench.exact_attention) and "exact" in ditbench.KERNELS
    assert ditbench.theory.entry_threshold(2) > 0
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ditbench.nope  # noqa: B018


PLUGIN = '''
from ditbench.attention import Kernel, register, uniform_attention

register(Kernel(name="demo_plugin_uniform", fn=uniform_attention, exact=False,
                description="the uniform answer, registered by a third-party package"))
'''
CONFIG = '''
name = "plugin"
[[sweep]]
experiment = "P"
kernels = ["demo_plugin_uniform", "exact"]
n = [64, 128]
d = 4
bound = [1]
min_run_time = 0.001
min_repeats = 2
'''


def _installed_plugin(site: Path, name: str, module: str) -> dict[str, str]:
    """An installed distribution in ``site`` (a dist-info with one ``ditbench.kernels`` entry point
    naming ``module``, as pip would leave it); returns the environment that puts ``site`` first."""
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[ditbench.kernels]\n{name} = {module}\n")
    root = Path(__file__).resolve().parents[1]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(root)])}


@pytest.mark.slow
def test_entry_point_kernel_plugs_into_runner_worker_and_report(tmp_path):
    env = _installed_plugin(tmp_path / "site", "demo", "demo_ditbench_plugin")
    (tmp_path / "site" / "demo_ditbench_plugin.py").write_text(PLUGIN)
    (tmp_path / "plugin.toml").write_text(textwrap.dedent(CONFIG))
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "ditbench", "run", "--config", str(tmp_path / "plugin.toml"),
                           "--out", str(out), "--threads", "1", "--quiet"],  # the default worker executor
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(out / "results.csv")
    plugin = rows[rows["kernel"] == "demo_plugin_uniform"]
    assert len(plugin) == 2 and (plugin["status"] == "ok").all() and not plugin["exact"].any()
    assert rows.loc[rows["kernel"] == "exact", "exact"].all()
    assert (out / "report" / "index.html").is_file()


@pytest.mark.slow
def test_a_broken_plugin_is_an_error_naming_it(tmp_path):
    env = _installed_plugin(tmp_path, "broken", "no_such_module_for_ditbench")
    done = subprocess.run([sys.executable, "-c", "import ditbench.attention"], capture_output=True, text=True,
                          env=env)
    assert done.returncode != 0
    assert "kernel plugin 'broken' (no_such_module_for_ditbench) failed to load" in done.stderr
