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
    "S2Areas": "store",
    "store_s2area": "store",
    "load_s2area": "store",
    "fit_run_s2": "fitting",
    "fit_histogram": "fitting",
    "fit_recoil": "estimators",
    "fit_xray": "estimators",
    "FitConfig": "fitting",
    "prepare_run": "pipeline",
    "run_xray_classification": "pipeline",
    "run_ion_integration": "pipeline",
    "run_integration_pass": "pipeline",
    "calibrate_and_analyze": "calibration",
    "run_calibration_analysis": "calibration",
    "plot_hist_fit": "plotting",
    "plot_s2_vs_drift": "plotting",
    "load_config": "runs",
    "build_run": "runs",
    "open_wfm": "wfm",
    "write_wfm": "wfm",
    "simulate_run": "simulate",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 's2lib' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__() -> list[str]:
    return __all__
