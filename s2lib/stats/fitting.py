"""Binned Poisson maximum-likelihood fits of area histograms (S2 recoil areas, X-ray areas).

The histogram of the values inside ``bin_cuts`` is fitted by minimising the Poisson deviance
(Baker & Cousins 1984, Nucl. Instrum. Meth. 221, 437, eq. 12)::

    χ²_λ = 2 Σ_i [ ν_i − n_i + n_i ln(n_i / ν_i) ]      (the last term is 0 when n_i = 0)

with ``n_i`` the observed and ``ν_i`` the expected counts of bin ``i``. This is ``2·(−ln L)`` up to a
constant, so Minuit's ``errordef = 1`` gives 1σ (68.3 %) errors, and at the minimum the same number is the
likelihood-ratio goodness-of-fit statistic, asymptotically χ²-distributed. The models are *extended*: the
yields are free, so nothing is normalised to the observed total. Every component is normalised over the fit
range ``[lo, hi]`` and integrated over each bin through its CDF (exact for any bin width).

Which model to use when
-----------------------
``"gauss"`` (default, the seed's choice)
    ``N·Gaussian(μ, σ)``. X-ray peaks and any symmetric peak well separated from the low-area pile-up. Reported
    mean: μ (the Gaussian's expectation; the truncation at ``bin_cuts`` is part of the likelihood, not a bias).
``"gauss_bg"``
    Gaussian signal plus a narrow Gaussian background at low area (single stray photons / pile-up near
    0.2–0.3 mV·µs), whose centre is limited to ``[lo, bg_cutoff]`` and width to ``bg_sigma_max``. Use it for
    recoil S2 sets where a low-area peak is visible. Replaces the lab's subtract-then-cut two-stage fit: both
    components are fitted together, so the uncertainty of the background enters the signal's error.
    Reported mean: μ of the signal Gaussian. Measured on the simulator's recoil line shape (gamma electron
    fluctuations CV 0.25 ⊗ photon statistics, 5 % background at 0, range [−0.5, 8]): μ is the mean within
    −1.1 % (50 V set, signal close to the background) to −0.05 % (high fields), since the ML Gaussian μ of a
    skewed peak is its sample mean only when nothing else competes for the low tail.
``"crystalball_bg"``
    Right-tailed Crystal Ball signal (below) plus the Gaussian background of ``gauss_bg`` (same ``bg_cutoff``,
    ``bg_sigma_max``). Reported mean: the expectation of the normalised signal density over ``[lo, hi]``. For
    recoil S2 sets whose range starts below 0 (unclipped areas: background frames centre at ≈ 0 mV·µs).
``"crystalball"``
    Right-tailed Crystal Ball (Oreglia 1980; Gaiser 1982): Gaussian core, power-law tail on the high side
    (the recoil S2 line shape). Reported mean: the expectation of the signal density *normalised over the fit
    range* ``[lo, hi]`` (closed form, :mod:`s2lib.stats._fit_models`). The untruncated mean diverges for ``m ≤ 2``,
    which real tails reach, so it is only given as ``details["mean_untruncated"]`` when ``m > 2``.
    ``sigma`` is the core width σ. Its error is propagated from the covariance with a numerical Jacobian.

Uncertainties and success
-------------------------
``mean_err`` is the 1σ HESSE error (propagated when the mean is a function of several parameters) and ``ci95``
the half-width of the 95 % interval of the mean in the Gaussian approximation, ``1.959964·mean_err``.
``fit_success`` is True only if MIGRAD reached a valid minimum, the covariance is finite and positive definite,
no parameter lies within half an error of one of its limits, and ``n_in_range >= min_events``. Otherwise
``reason`` says why, and ``mean_err``, ``ci95``, ``sigma_err`` and ``errors`` are NaN (the best-fit values are
kept for display but must not be used as measurements). Bad input (no events, NaNs, too few events) never
raises: it gives a failed :class:`FitResult`.

Goodness of fit
---------------
The deviance of bins that expect less than about one event is far from χ²-distributed (its mean per bin is
``≈ −2ν ln ν``, not 1), and S2 histograms over 0–10 mV·µs in 100 bins have many such tail bins: with
``ndf = bins − parameters`` the p-values pile up near 1, with ``ndf = non-empty bins − parameters`` near 0.
So ``chi2`` is the same Baker–Cousins deviance evaluated after merging adjacent bins, left to right, until each
group expects at least ``gof_min_expected`` (5) events, and ``ndf = groups − free parameters``. Because the
parameters come from the finer binning, the p-value is, if anything, slightly small (Chernoff & Lehmann 1954).
The minimised full-binning deviance is kept as ``details["deviance"]``.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from s2lib.errors import ConfigError

from . import _fit_models as fm
from . import _fit_minuit as mi
from . import estimators
from ._fit_config import ALL_MODELS, FitConfig  # noqa: F401 (ALL_MODELS re-exported)
from .fit_result import Z95, FitResult, _as_config, poisson_deviance  # noqa: F401 (re-exported)

__all__ = ["FitConfig", "FitResult", "fit_histogram", "poisson_deviance", "Z95"]

def fit_histogram(values: ArrayLike, config: FitConfig | Mapping[str, Any] | None = None, *,
                  label: str = "") -> FitResult:
    """Fit the histogram of ``values`` inside ``config.bin_cuts`` by binned Poisson maximum likelihood.

    Parameters
    ----------
    values : array_like
        Areas, mV·µs (any shape; NaNs are dropped and counted in ``n_nan``).
    config : FitConfig, mapping or config dataclass, optional
        Fit options (anything else than a FitConfig goes through :meth:`FitConfig.from_mapping`, so unknown
        keys raise :class:`~s2lib.errors.ConfigError`); default ``FitConfig()``.
    label : str
        Free text stored in the result (e.g. the set name).

    Returns
    -------
    FitResult
        Never raises for bad data: empty input, no values in range or fewer than ``min_events`` give
        ``fit_success=False`` with ``reason`` and NaN numbers. Check ``fit_success`` before using ``mean``.
    """
    cfg = _as_config(config)
    if cfg.model in ("auto", "xray_mixture", "recoil_mixture"):
        if cfg.model == "recoil_mixture":
            raise ConfigError("model", "recoil_mixture needs the sideband areas: use s2lib.stats.estimators.fit_recoil "
                              "or fit_run_s2 on S2Areas with a sideband")
        return estimators.fit_xray(values, cfg, label=label)
    x = np.asarray(values, dtype=float).ravel()
    nan = np.isnan(x)
    x = x[~nan]
    fixed = cfg.bin_cuts is not None
    cfg = _data_range(x[np.isfinite(x)], cfg)
    cfg = _auto_range(x, cfg)
    lo, hi = cfg.bin_cuts
    inside = (x >= lo) & (x <= hi)
    x_in = x[inside]
    counts, edges = np.histogram(x_in, bins=cfg.nbins, range=(lo, hi))
    base = dict(model=cfg.model, label=label, n_in_range=int(x_in.size), n_outside=int((~inside).sum()),
                n_nan=int(nan.sum()), bin_edges=edges, counts=counts.astype(np.int64), config=cfg.to_dict())
    if x_in.size == 0:
        return FitResult(**base, reason=f"no events inside bin_cuts [{lo:g}, {hi:g}] mV·µs (of {x.size} finite "
                                        f"values, {base['n_nan']} NaN)")
    n_par = len(fm.PARAM_NAMES[cfg.model])
    n_nonempty = int(np.count_nonzero(counts))
    if x_in.size < cfg.min_events:
        return FitResult(**base, reason=f"too few events in range: {x_in.size} < min_events={cfg.min_events}")
    if n_nonempty < n_par:
        return FitResult(**base, reason=f"only {n_nonempty} non-empty bins for {n_par} free parameters")
    return _run_fit(x_in, counts, edges, cfg, base, fixed)


def _data_range(x: NDArray[np.float64], cfg: FitConfig) -> FitConfig:
    """``cfg`` with ``bin_cuts`` (None: 0.2 % quantile − 1 robust σ to median + 6 robust σ of the values) and
    ``nbins`` (None: Freedman–Diaconis, 20-400 bins) filled in from the data."""
    from . import _mixture as mx

    if x.size < 2:
        return dataclasses.replace(cfg, bin_cuts=cfg.bin_cuts or (0.0, 1.0), nbins=cfg.nbins or 20)
    cuts = cfg.bin_cuts if cfg.bin_cuts is not None else mx.robust_range(x, None, k_hi=6.0)
    med, spread = mx.robust_stats(x)
    inside = int(np.count_nonzero((x >= cuts[0]) & (x <= cuts[1])))
    nbins = cfg.nbins if cfg.nbins is not None else mx.auto_bins(inside, spread, cuts[1] - cuts[0])
    return dataclasses.replace(cfg, bin_cuts=tuple(cuts), nbins=nbins)


def _auto_range(x: NDArray[np.float64], cfg: FitConfig) -> FitConfig:
    """``cfg`` with the upper edge lowered to median + k·1.4826·MAD when ``auto_upper_sigma`` = k is set
    (bin width kept, signal-centre limit clipped to the new edge; :func:`s2lib.stats._fit_models.robust_upper_edge`)."""
    if cfg.auto_upper_sigma is None:
        return cfg
    edge = fm.robust_upper_edge(x, cfg.bin_cuts, cfg.bin_width, cfg.auto_upper_sigma, cfg.min_events)
    if edge is None:
        return cfg
    new_hi, nbins = edge
    upper = None if cfg.upper_limit is None else min(cfg.upper_limit, new_hi)
    return dataclasses.replace(cfg, bin_cuts=(cfg.bin_cuts[0], new_hi), nbins=nbins, upper_limit=upper)


def _run_fit(x: NDArray[np.float64], counts: NDArray[np.int64], edges: NDArray[np.float64], cfg: FitConfig,
             base: dict[str, Any], fixed_range: bool = True) -> FitResult:
    """Minimise the deviance, run HESSE, and judge the result (module docstring).

    If the fit from the data-driven start is not clean (invalid, or a parameter at a limit), a few other
    starts (:func:`s2lib.stats._fit_models.alternative_starts`) are tried: the first clean minimum is kept, else the
    lowest deviance.
    """
    lo, hi = cfg.bin_cuts
    model = cfg.model
    names = fm.PARAM_NAMES[model]
    n_obs = counts.astype(float)
    start, limits = fm.start_and_limits(model, x, counts, edges, upper=cfg.signal_upper,
                                        bg_cutoff=cfg.bg_cutoff, bg_sigma_max=cfg.bg_sigma_max)

    def deviance(par: NDArray[np.float64]) -> float:
        return poisson_deviance(n_obs, fm.expected_counts(model, dict(zip(names, par)), edges, lo, hi))

    best: tuple[Any, list[str], NDArray[np.float64] | None] | None = None
    n_starts = 0
    for st in [start, *fm.alternative_starts(model, start, limits)]:
        n_starts += 1
        mn, error = mi.minimise(deviance, names, st, limits)
        reasons, cov = mi.judge_minimum(mn, names, error)
        if best is None or (bool(best[1]), best[0].fval) > (bool(reasons), mn.fval):
            best = (mn, reasons, cov)
        if not reasons:
            break
    mn, reasons, cov = best
    fmin = mn.fmin
    values = {k: float(mn.values[k]) for k in names}
    errors = {k: float(mn.errors[k]) for k in names}
    if model in fm.BG_MODELS and values[fm.signal_centre_name(model)] <= values["mu_bg"]:
        reasons.append("signal centre below the background centre (components swapped)")
    mean = fm.signal_mean(model, values, lo, hi)
    mean_err, details = fm.signal_mean_error(model, values, errors, cov, lo, hi)
    nu = fm.expected_counts(model, values, edges, lo, hi)
    n_grp, nu_grp = fm.merge_for_gof(n_obs, nu, cfg.gof_min_expected)
    chi2 = poisson_deviance(n_grp, nu_grp)
    ndf = int(n_grp.size) - len(names)
    details.update(deviance=poisson_deviance(n_obs, nu), gof_bins=int(n_grp.size), n_starts=n_starts,
                   edm=float(fmin.edm) if fmin else None, nfcn=int(mn.nfcn),
                   n_nonempty_bins=int(np.count_nonzero(counts)),
                   fraction_below_bg_threshold=float(np.mean(x <= cfg.bg_threshold)))
    if model in fm.BG_MODELS:
        details.update(bg_center=values["mu_bg"], lower_bound=values["mu_bg"] + cfg.n_sigma * values["sigma_bg"])
    p_value = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else math.nan
    n_sig = values["n"]
    ref = values["sigma"] / math.sqrt(max(n_sig, 1.0))
    ratio = mean_err / ref if ref > 0 and math.isfinite(mean_err) else math.nan
    details["error_ratio"] = ratio
    if cov is not None and not ratio >= 0.5:
        reasons.append(f"error on the mean {mean_err:.2g} implausibly small: {ratio:.2g} × σ/√N = {ref:.2g}")
    if fixed_range:
        beyond = _mass_beyond(model, values, hi)
        details["signal_fraction_beyond_edge"] = beyond
        if beyond > 0.005:
            key = "upper_limit" if cfg.upper_limit is not None and cfg.upper_limit < hi else "bin_cuts"
            reasons.append(f"{100 * beyond:.2g} % of the fitted signal lies above bin_cuts[1] = {hi:g} mV·µs: "
                           f"raise {key} (or remove bin_cuts to take the range from the data)")
    ok = not reasons and p_value >= cfg.gof_p_min
    quality = "failed" if reasons else ("ok" if ok else "poor")
    if quality == "poor":
        reasons.append(f"poor fit: goodness-of-fit p = {p_value:.2g} < gof_p_min = {cfg.gof_p_min:g}")
    details["quality"] = quality
    keep = quality != "failed"
    nan_errs = {k: math.nan for k in names}
    return FitResult(**base, mean=mean, mean_err=mean_err if keep else math.nan,
                     ci95=Z95 * mean_err if keep else math.nan, sigma=values["sigma"],
                     sigma_err=errors["sigma"] if keep else math.nan, params=values,
                     errors=errors if keep else nan_errs, covariance=cov if keep else None, fit_success=ok,
                     reason="; ".join(reasons), chi2=chi2, ndf=ndf, p_value=p_value, details=details)


def _mass_beyond(model: str, values: Mapping[str, float], edge: float) -> float:
    """Fraction of the untruncated signal density above ``edge`` (1 − CDF)."""
    cdf, _pdf = fm.component_shapes(model, values)["signal"]
    return float(1.0 - cdf(np.array([edge]))[0])
