"""Minimisation and judgement of the default estimators' fits: the lowest clean minimum over several starts,
nuisance components pinned at zero fixed, which parameters at a limit fail a fit, free-parameter count,
goodness of fit and the verdict (ok / poor / failed).

Split from :mod:`s2lib.stats.estimators` (issue 10), which calls these.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from . import _fit_models as fm
from . import _fit_minuit as mi
from .fit_result import poisson_deviance


def _minimise(dev: Any, names: tuple[str, ...], starts: list[dict[str, float]],
              limits: dict[str, tuple[float, float]]) -> tuple[Any, list[str], NDArray[np.float64] | None, int]:
    """Lowest clean minimum over all the starts (else the lowest deviance): (Minuit, reasons, covariance, n
    starts). Starts are run until two of them reach the same clean minimum (deviance within 0.01) or all are
    used: with a peak not far above the empty-window width the likelihood can have a second minimum (a narrow
    recoil peak with more empty frames) that a single start may settle in."""
    best = None
    n = 0
    clean: list[float] = []
    for st in starts:
        n += 1
        mn, err = mi.minimise(dev, names, st, limits)
        reasons, cov = mi.judge_minimum(mn, names, err)
        reasons = [r for r in reasons if not _limit_ok(r)]
        if not reasons:
            if any(abs(mn.fval - f) < 0.01 for f in clean):
                if mn.fval < best[0].fval or best[1]:
                    best = (mn, reasons, cov)
                break                   # two starts agree on the lowest clean minimum found so far
            clean.append(mn.fval)
        if best is None or (bool(best[1]), best[0].fval) > (bool(reasons), mn.fval):
            best = (mn, reasons, cov)
    assert best is not None
    mn, reasons, cov = best
    pinned = [k for k in _NUISANCE if k in names and _at_limit(mn, k)]
    if pinned and not any(not _limit_ok(r) for r in reasons):
        # a component at zero yield: fix it (and its shape) so that HESSE of the others is not distorted by
        # the boundary (toys: errors 2-10x too small for ~80-event X-ray sets otherwise)
        if "n_junk" in pinned:
            pinned.append("slope")
        for k in set(pinned):
            mn.fixed[k] = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                mn.migrad(iterate=5)
                mn.hesse()
            except (RuntimeError, ValueError, FloatingPointError) as exc:
                return mn, [f"minimisation error: {type(exc).__name__}: {exc}"], None, n
        reasons, cov = _judge_free(mn, names)
    return mn, reasons, cov, n


_NUISANCE = ("f_empty", "p_pileup", "n_junk", "n_double")


def _at_limit(mn: Any, k: str) -> bool:
    lo, hi = mn.limits[k]
    v, e = float(mn.values[k]), float(mn.errors[k])
    return min(v - lo, hi - v) < 0.5 * e or min(v - lo, hi - v) <= 1e-9 * max(1.0, abs(v))


def _judge_free(mn: Any, names: tuple[str, ...]) -> tuple[list[str], NDArray[np.float64] | None]:
    """Verdict after fixing pinned components: valid minimum, positive-definite covariance of the free
    parameters (fixed ones keep zero rows), mean and width away from their limits."""
    reasons = [] if mn.valid else ["MIGRAD did not reach a valid minimum"]
    cov = None if mn.covariance is None else np.array(mn.covariance, dtype=float)
    free = [i for i, k in enumerate(names) if not mn.fixed[k]]
    if cov is None or not np.all(np.isfinite(cov)):
        reasons.append("covariance matrix not finite")
        cov = None
    else:
        try:
            np.linalg.cholesky(cov[np.ix_(free, free)])
        except np.linalg.LinAlgError:
            reasons.append("covariance matrix not positive definite")
            cov = None
    for k in names:
        if not mn.fixed[k] and _at_limit(mn, k) and k not in _NUISANCE and k not in ("n", "slope",
                                                                                          "sigma_e", "mu_e"):
            reasons.append(f"parameter {k} = {float(mn.values[k]):.4g} at a limit {tuple(mn.limits[k])}")
    return reasons, cov


_FREE_AT_LIMIT = ("parameter f_empty", "parameter p_pileup", "parameter n_junk", "parameter slope",
                  "parameter n_double", "parameter n ", "parameter sigma_e", "parameter mu_e")


def _limit_ok(reason: str) -> bool:
    """Fractions and nuisance yields may sit at 0 (an empty component); only mean/width at a limit fail."""
    return reason.startswith(_FREE_AT_LIMIT)


def _n_free(mn: Any, names: tuple[str, ...]) -> int:
    """Parameters not pinned at a limit (a component whose yield sits at 0 takes no degree of freedom)."""
    n = 0
    for k in names:
        lo, hi = mn.limits[k]
        v, e = float(mn.values[k]), float(mn.errors[k])
        n += not (min(v - lo, hi - v) < 0.5 * e)
    return n


def _gof(counts: NDArray[np.float64], nu: NDArray[np.float64], n_par: int, min_expected: float
         ) -> tuple[float, int, float, int]:
    n_grp, nu_grp = fm.merge_for_gof(counts, nu, min_expected)
    chi2 = poisson_deviance(n_grp, nu_grp)
    ndf = int(n_grp.size) - n_par
    return chi2, ndf, float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else math.nan, int(n_grp.size)


def _verdict(reasons: list[str], p_value: float, p_min: float) -> tuple[bool, str, str]:
    if reasons:
        return False, "failed", "; ".join(reasons)
    if math.isfinite(p_value) and p_value < p_min:
        return False, "poor", f"poor fit: goodness-of-fit p = {p_value:.2g} < gof_p_min = {p_min:g}"
    return True, "ok", ""
