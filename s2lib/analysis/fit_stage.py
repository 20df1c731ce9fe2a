"""The seed API's fit stage: fit every set's S2 areas (:func:`fit_run_s2`) and, with ``flag_plot``, draw each fit.

The fits are :func:`s2lib.stats.fitting.fit_histogram` and :func:`s2lib.stats.estimators.fit_recoil` (they never
draw); this module sits in the analysis layer because it orchestrates them and the figures
(:func:`s2lib.analysis.plotting.plot_hist_fit`). Areas in mV·µs.
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from s2lib.stats.estimators import fit_recoil
from s2lib.stats.fit_result import FitResult, _as_config
from s2lib.stats.fitting import FitConfig, fit_histogram

if TYPE_CHECKING:  # pragma: no cover
    from s2lib.io.store import S2Areas

__all__ = ["fit_run_s2"]


def fit_run_s2(areas: Mapping[str, S2Areas], fit_config: FitConfig | Mapping[str, Any] | None = None,
               flag_plot: bool = False, *, xrays: Mapping[str, tuple[float, float]] | None = None
               ) -> dict[str, S2Areas]:
    """Fit every set's S2 areas (the seed API); returns new ``S2Areas`` with the fit filled in.

    With the default ``model="auto"`` (or ``"recoil_mixture"``) a set with sideband areas is fitted by
    :func:`s2lib.stats.estimators.fit_recoil`, with ``xrays[name]`` = (mean, σ) of its X-ray area for the pile-up
    term when given; other models, or sets without a sideband under ``"auto"``, by :func:`fit_histogram`.
    Each value is copied with :func:`dataclasses.replace` and gets ``mean``, ``sigma``, ``ci95``,
    ``fit_success`` and ``fit_result`` (the :class:`FitResult`). Only frames without a flag are fitted
    (``S2Areas.usable``: X-ray pile-up frames are vetoed; all frames when no flags are stored). When the fit failed, ``ci95`` is NaN and
    ``mean``/``sigma`` are the minimiser's values for display only (NaN when no fit was possible). One line
    per set is printed (``[i/n] set: mean = … ± … mV·µs (1σ) ok|FAILED: reason``). With ``flag_plot`` each fit
    is drawn by :func:`s2lib.analysis.plotting.plot_hist_fit`; if plotting is unavailable a warning is issued instead.
    """
    cfg = _as_config(fit_config)
    plot = _plotter() if flag_plot else None
    out: dict[str, S2Areas] = {}
    n = len(areas)
    for i, (name, s2) in enumerate(areas.items(), start=1):
        usable = getattr(s2, "usable", None)        # frames without a pile-up flag (store.S2Areas.flags)
        values = np.asarray(s2.areas, dtype=float)
        sideband = getattr(s2, "sideband", None)
        if cfg.model in ("auto", "recoil_mixture") and sideband is not None:
            sb = np.asarray(sideband, dtype=float)
            res = fit_recoil(values if usable is None else values[usable], sb if usable is None else sb[usable],
                             cfg, xray=(xrays or {}).get(name), label=str(name))
        elif cfg.model == "recoil_mixture":
            res = FitResult(model=cfg.model, label=str(name), reason="recoil_mixture needs the sideband areas "
                            "(s2_sideband.npy), which this set's folder does not have: rerun the integration")
        else:
            res = fit_histogram(values if usable is None else values[usable], cfg, label=str(name))
        out[name] = dataclasses.replace(s2, mean=res.mean, sigma=res.sigma, ci95=res.ci95,
                                        fit_success=res.fit_success, fit_result=res)
        print(f"[{i}/{n}] {name}: {_summary(res)}", flush=True)
        if plot is not None:
            try:
                plot(res, bin_cuts=cfg.bin_cuts)
            except Exception as exc:  # a figure must not cost the fits of the other sets
                warnings.warn(f"plot of {name} failed: {type(exc).__name__}: {exc}", RuntimeWarning,
                              stacklevel=2)
    return out


def _summary(res: FitResult) -> str:
    if res.fit_success or res.quality == "poor":
        verdict = "ok" if res.fit_success else f"POOR FIT: {res.reason}"
        return (f"mean = {res.mean:.4g} ± {res.mean_err:.2g} mV·µs (1σ), σ = {res.sigma:.3g} mV·µs, "
                f"n = {res.n_in_range}, χ²/ndf = {res.chi2:.1f}/{res.ndf}, p = {res.p_value:.2g} ({res.model}) "
                f"{verdict}")
    return f"FAILED ({res.model}, n = {res.n_in_range}): {res.reason}"


def _plotter() -> Any:
    try:
        from s2lib.analysis.plotting import plot_hist_fit
    except (ImportError, AttributeError) as exc:
        warnings.warn(f"flag_plot=True but plotting is unavailable ({exc}); fits are not drawn",
                      RuntimeWarning, stacklevel=3)
        return None
    return plot_hist_fit
