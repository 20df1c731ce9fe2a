"""s2lib: the helper package behind s2book.

The seed API of the lab's pipeline (``S2Areas``, ``store_s2area``, ``load_s2area``, ``fit_run_s2``,
``prepare_run``, ``run_xray_classification``, ``run_ion_integration``, ``calibrate_and_analyze``,
``run_calibration_analysis``, ``plot_hist_fit``, ``plot_s2_vs_drift``) is importable from here; names are
resolved lazily so that ``import s2lib`` stays cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "S2Areas": "io.store",
    "store_s2area": "io.store",
    "load_s2area": "stats.fit_store",
    "fit_run_s2": "analysis.fit_stage",
    "fit_histogram": "stats.fitting",
    "fit_recoil": "stats.estimators",
    "fit_xray": "stats.estimators",
    "FitConfig": "stats.fitting",
    "prepare_run": "analysis.timing_stage",
    "run_xray_classification": "analysis.pipeline",
    "run_ion_integration": "analysis.pipeline",
    "run_integration_pass": "analysis.pipeline",
    "calibrate_and_analyze": "analysis.calibrate_stage",
    "run_calibration_analysis": "analysis.calibrate_stage",
    "plot_hist_fit": "analysis.plotting",
    "plot_s2_vs_drift": "analysis.plotting",
    "load_config": "config.runs",
    "build_run": "config.runs",
    "open_wfm": "io.wfm",
    "write_wfm": "io.wfm",
    "simulate_run": "sim.simulate",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 's2lib' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return __all__
