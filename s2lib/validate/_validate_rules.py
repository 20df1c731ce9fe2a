"""The closure test's rules (``s2book validate``, issue 8): tolerances, compared quantities, one estimate against
the truth, and the width of a pull distribution. Shared by :mod:`s2lib.validate.validate` (which runs the points) and
:mod:`s2lib.validate._validate_report` (which judges and writes them), so that neither imports the other."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["REL_TOL", "N_SIGMA", "WIDTH_RANGE", "QUANTITIES", "compare", "pull_width"]

REL_TOL = 0.03
"""Relative bias tolerance (issue 8: max(3 %, 3 standard errors))."""
N_SIGMA = 3.0
"""Bias tolerance in units of the estimate's quoted 1σ."""
WIDTH_RANGE = (0.8, 1.25)
"""Accepted pull widths (plain and robust standard deviation)."""
QUANTITIES = ("A_ion", "A_x", "g_S2", "1-r")
"""Compared quantities, in report order."""


def compare(estimate: float, error: float, realised: float, model: float, *, ok: bool = True, reason: str = "",
            rel_tol: float = REL_TOL, n_sigma: float = N_SIGMA) -> dict[str, Any]:
    """One estimate against the truth.

    Parameters
    ----------
    estimate, error
        The analysis value and its quoted 1σ error.
    realised, model
        Realised sample mean of the truth (bias) and model expectation (pull).
    ok, reason
        Whether the analysis called its estimate successful, and why not.

    Returns
    -------
    dict
        ``estimate, error, truth (= realised), truth_model, bias = estimate − truth, rel_bias = bias/|truth|,
        tolerance = max(rel_tol·|truth|, n_sigma·error), pull = (estimate − truth_model)/error, passed,
        measurable (True), fit_ok (= ok), reason`` (NaN where undefined; a failed fit or a non-finite estimate
        never passes).
    """
    est, err, tr, mod = (float(v) if v is not None else math.nan for v in (estimate, error, realised, model))
    bias = est - tr
    tol = max(rel_tol * abs(tr), n_sigma * err) if math.isfinite(err) and err > 0 else rel_tol * abs(tr)
    pull = (est - mod) / err if math.isfinite(err) and err > 0 else math.nan
    why = []
    if not ok:
        why.append(reason or "estimate marked unsuccessful")
    if not (math.isfinite(est) and math.isfinite(tr)):
        why.append("no estimate" if not math.isfinite(est) else "no truth")
    elif abs(bias) > tol:
        why.append(f"|bias| {abs(bias):.3g} > tolerance {tol:.3g}")
    return {"estimate": est, "error": err, "truth": tr, "truth_model": mod, "bias": bias,
            "rel_bias": bias / abs(tr) if tr else math.nan, "tolerance": tol, "pull": pull,
            "passed": not why, "measurable": True, "fit_ok": bool(ok), "reason": "; ".join(why)}


def pull_width(pulls: Sequence[float], width_range: tuple[float, float] = WIDTH_RANGE,
               groups: Sequence[Any] | None = None) -> dict[str, Any]:
    """Width of a pull distribution: plain std (ddof 1), robust std 1.4826·MAD, mean, and whether the widths
    are acceptable. Non-finite pulls are ignored; fewer than 3 pulls give NaN widths (not ok).

    ``std_err`` = std/√(2(n−1)) is the statistical precision of the plain width for n independent Gaussian pulls.
    ``groups`` (one key per pull) names pulls that share an error term, e.g. the 1 − r pulls of every set at one
    EL field share that field's g_S2 error (~3/4 of their variance): then only ``n_eff`` = the number of distinct
    groups are independent, ``std_err_eff`` = std/√(2(n_eff−1)), and a width outside ``width_range`` is still ok
    when it is within 3 of its own standard errors of 1 (the robust width's error is taken 1.65× larger, the
    MAD's efficiency): one run cannot tell such a width from 1 (measured over 18 seeds of the matrix: single-run
    1 − r widths 0.77-1.31 for a pooled 1.009 ± 0.035; ``benchmarks/closure_seeds.py --matrix --per-seed``).
    Without ``groups`` (independent pulls) ``ok`` is both widths inside ``width_range``."""
    keep = [i for i, p in enumerate(pulls) if p is not None and math.isfinite(p)]
    x = np.asarray([pulls[i] for i in keep], dtype=float)
    n = int(x.size)
    if n < 3:
        return {"n": n, "mean": math.nan, "std": math.nan, "robust_std": math.nan, "std_err": math.nan,
                "n_eff": n, "std_err_eff": math.nan, "ok": False}
    std = float(x.std(ddof=1))
    robust = float(1.4826 * np.median(np.abs(x - np.median(x))))
    lo, hi = width_range
    n_eff = len({groups[i] for i in keep}) if groups is not None else n
    se_eff = std / math.sqrt(2.0 * max(n_eff - 1, 1))
    ok = lo <= std <= hi and lo <= robust <= hi
    if not ok and n_eff < n:
        ok = abs(std - 1.0) <= 3.0 * se_eff and abs(robust - 1.0) <= 3.0 * 1.65 * se_eff
    return {"n": n, "mean": float(x.mean()), "std": std, "robust_std": robust,
            "std_err": std / math.sqrt(2.0 * (n - 1)), "n_eff": n_eff, "std_err_eff": se_eff, "ok": bool(ok)}
