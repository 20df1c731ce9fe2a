"""The Minuit driver of the fits and its verdict on a minimum: MIGRAD (SIMPLEX first if needed) then HESSE from
one start, and the reasons why a minimum is not a measurement (invalid minimum, unusable covariance, a
parameter within half an error of a limit).

Split from :mod:`s2lib.stats._fit_models` (issue 10); :mod:`s2lib.stats.fitting` and the default estimators use it.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["minimise", "judge_minimum"]


def minimise(deviance: Any, names: tuple[str, ...], start: Mapping[str, float],
              limits: Mapping[str, tuple[float, float]]) -> tuple[Any, str]:
    """MIGRAD (iterated, SIMPLEX first if needed) then HESSE from one start; returns (Minuit, error text)."""
    from iminuit import Minuit

    mn = Minuit(deviance, np.array([start[k] for k in names]), name=names)
    mn.errordef = Minuit.LEAST_SQUARES  # the deviance is 2·(−ln L): Δ = 1 ⇔ 1σ
    for k in names:
        mn.limits[k] = limits[k]
        mn.errors[k] = max(0.1 * abs(start[k]), math.sqrt(start[k]) if k.startswith("n") else 0.0, 1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # iminuit's IMinuitWarning; judged by judge_minimum
        try:
            mn.migrad(iterate=5)
            if not mn.valid:
                mn.simplex().migrad(iterate=5)
            mn.hesse()
        except (RuntimeError, ValueError, FloatingPointError) as exc:
            return mn, f"minimisation error: {type(exc).__name__}: {exc}"
    return mn, ""


def judge_minimum(mn: Any, names: tuple[str, ...], error: str) -> tuple[list[str], NDArray[np.float64] | None]:
    """Reasons why a minimum is not a measurement (empty if it is) and its covariance (None if unusable)."""
    reasons = [error] if error else []
    fmin = mn.fmin
    if fmin is None or not fmin.is_valid:
        flags = [] if fmin is None else [f for f in ("has_reached_call_limit", "is_above_max_edm",
                                                     "hesse_failed") if getattr(fmin, f)]
        reasons.append("MIGRAD did not reach a valid minimum" + (f" ({', '.join(flags)})" if flags else ""))
    cov = None if mn.covariance is None else np.array(mn.covariance, dtype=float)
    if cov is None or not np.all(np.isfinite(cov)) or not _posdef(cov):
        reasons.append("covariance matrix not finite or not positive definite")
        cov = None
    for k in names:
        v, e = float(mn.values[k]), float(mn.errors[k])
        lo_k, up_k = mn.limits[k]
        dist = min(v - lo_k, up_k - v)
        if dist < 0.5 * e or dist <= 1e-9 * max(1.0, abs(v)):
            which = "lower" if v - lo_k < up_k - v else "upper"
            reasons.append(f"parameter {k} = {v:.4g} ± {e:.2g} within half an error of its "
                           f"{which} limit {lo_k if which == 'lower' else up_k:.4g}")
    return reasons, cov


def _posdef(cov: NDArray[np.float64]) -> bool:
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        return False
    return True
