"""Default estimators of the mean recoil S2 area and the mean X-ray S2 area: no tuning, ranges from the data.

Why these estimators
--------------------
N_e = A_ion/g_S2 is a *mean*, so the number wanted is the mean of the recoil S2 area distribution, not the
mode or the centre of a Gaussian drawn through a skewed peak. Three things sit in the same histogram and
bias a single-peak fit (issue 8: −2 … −5 % from empty windows, +15 % from a fixed range): frames whose window
holds no recoil S2 (their area is the empty-window noise, centred near 0), the skew of the recoil peak
(per-event recombination fluctuations), and X-ray S2s that start inside the recoil window (+A_x on that frame).

Recoil: mixture likelihood with a measured empty-window component (``model="recoil_mixture"``)
    Binned extended Poisson likelihood (Baker–Cousins deviance, as :mod:`s2lib.stats.fitting`) of::

        A = E  (fraction f_empty),   A = S + E  (1 − f_empty)(1 − p_pileup),   A = S + X + E  ((1 − f_empty) p_pileup)

    * ``E``, the empty-window area, is **measured**: the engine integrates every frame over a *sideband* of
      the same length in the signal-free region before S1, right after the pedestal samples
      (:mod:`s2lib.signal.integration`). Signal frames carry the same E (the convolution ``S + E``).
      With window and sideband of the same frames (the pipeline's case) the fitted variable is the per-frame
      difference ``D = A − A_sb``: the frame's pedestal error × window length, which dominates E with the
      lab's ``n_pedestal`` of 100, cancels exactly, and the rest of an empty window (white noise of two
      windows, stray photons) is a narrow normal peak centred at 0 (equal lengths, the same stray-photon rate:
      the assumption the sideband rests on in any case; a free centre would trade one-to-one with the recoil
      mean when there are few empty frames) with a free width ``sigma_e`` (:class:`s2lib.stats._mixture.PairedLattice`). With a sideband not paired frame by frame, the sideband
      histogram itself is the E distribution (no width tuned, whatever shape the data have). Why the
      difference: on the demo book's 50 V set (E width 0.45 vs a 0.70 mV·µs peak) the template likelihood had
      a second minimum (a narrow peak with three times the empty frames, +11 %, pull 5.8) that the narrow
      D peak removes (−5 %, pull −2.5).
    * ``S`` is a gamma distribution of mean ``mu`` and σ/μ ``cv``. Gamma because its maximum-likelihood mean
      equals the sample mean whatever the true shape (its score equation for the mean is Σ(xᵢ − μ) = 0), so
      a skewed peak of any form gives its mean, not its mode; toys with compound Poisson shapes
      (:mod:`s2lib.stats.toys`) confirm it. The reported mean is ``mu``.
    * ``X`` is the X-ray area of the same set (normal, mean and width from :func:`fit_xray`); only its
      fraction ``p_pileup`` is free. It is left out (p_pileup = 0) without X-ray information and when it could
      not put one frame into the fit range (X-ray peak above it: ``_mixture.PILEUP_MIN_EVENTS``).

    Uncertainty: HESSE 1σ of ``mu`` and, in quadrature, the error of the sideband mean scaled by
    1/(1 − f_empty) (the E template is taken as known in the likelihood; its mean is what it shifts). When
    window and sideband are paired frame by frame, both hold that frame's pedestal error × length, so the
    sideband mean moves with the data: the added variance is ``(var_E − 2·cov(A, E_sb))/N``, which is
    negative when the shared pedestal error dominates E (the likelihood, taking the template as exact, counts
    that common noise once in the data; in ``mean(A) − mean(E_sb)`` it cancels). The total is kept ≥ half the
    HESSE error. ``details["mean_err_sideband"]`` is the signed square root of that term. Toys with paired
    pedestal errors (:mod:`s2lib.stats.toys`) check the result.

X-rays: normal peak + low-area junk + double pile-up (``model="xray_mixture"``)
    The accepted X-ray areas contain single photons and low-area clusters just above the acceptance cut
    (an exponential falling from the lower edge) and rare pile-up of two X-rays (normal at 2·mu). The X-ray
    S2 (≈ 560 electrons, Fano-limited, ~100 photoelectrons) is close to symmetric, and the ML mean of a
    normal is again the sample mean of its events; mean = ``mu``.

Ranges from the data
--------------------
Unless ``bin_cuts`` is given, each set gets its own range: from below the lowest 0.2 % of data and sideband
to median + ``RECOIL_K_HI`` robust σ (1.4826·MAD); X-rays: the peak located by the mode of the area-weighted
log-area histogram (junk of single photons can be most of the candidates) ± ``XRAY_K_LO``/``XRAY_K_HI``
robust σ; Freedman–Diaconis bins (20-400). Everything outside is modelled (each component is normalised over the real line; the fit uses the
bins inside), so a range cut does not bias the mean. When the user fixes ``bin_cuts`` and more than
``EDGE_FRACTION`` of the fitted signal lies beyond its upper edge, the fit fails with a reason naming the key.

Honest success
--------------
``fit_success`` needs: a valid MIGRAD minimum with a positive-definite covariance; the mean and width away
from their limits; an error on the mean not below ``ERROR_RATIO_MIN`` × the error the signal frames alone
would give (``sqrt(σ_S² + σ_E²)/sqrt(N_signal)``: the issue's 500× too small error); and the goodness-of-fit
p-value ≥ ``gof_p_min`` (default 1e-3; ndf counts the parameters not pinned at a limit; with ndf ≤ 0, i.e.
too few events for a test, ``p_value`` is NaN and no verdict on the fit quality is made). A fit that passes everything but the p-value is a *poor fit*:
``details["quality"] = "poor"``, its numbers and errors are kept for display, ``fit_success`` is False and the
reason says ``poor fit: p = …``. Failed fits: ``quality = "failed"``.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from . import _mixture as mx
from ._fit_config import FitConfig
from .fit_result import Z95, FitResult, _as_config, poisson_deviance
from ._fit_judge import _gof, _minimise, _n_free, _verdict

__all__ = ["fit_recoil", "fit_xray", "xray_by_el_field", "RECOIL_K_HI", "XRAY_K_HI", "EDGE_FRACTION", "ERROR_RATIO_MIN",
           "MIXTURE_MODELS"]

RECOIL_K_HI = 10.0
"""Upper range edge of a recoil set: median + 10 robust σ (beyond a CV-0.25 gamma's 99.99 % point)."""
XRAY_K_HI = 8.0
"""Upper range edge of an X-ray set: peak median + 8 robust σ (:func:`s2lib.stats._mixture.xray_peak`)."""
XRAY_K_LO = 6.0
"""Lower range edge of an X-ray set: peak median − 6 robust σ (the junk below is left out; what remains of it in
the range is the exponential component). Not the lowest area when that is higher: a range cut at the extreme
data leaves a truncated peak whose mean is hardly determined (a clean 57-event sample gave ±0.11 for ±0.03)."""
XRAY_DOUBLE_MIN_SEP = 5.0
"""The double-X-ray component (normal at 2·mu, width √2·sigma) is fitted only when it can be told from the peak:
the peak centre is at least this many robust σ above 0 (2·mu then lies beyond mu + 5σ) and the largest area
inside the fit range reaches the double's −3σ point (the fitted data hold candidates there; an area beyond a fixed
``bin_cuts`` is not fitted and is no evidence). Otherwise
n_double is 0. For a faint X-ray (≈ 20 photons, σ/μ ≈ 0.25) a double sits in the peak's own upper tail, and a
free double yield absorbed that tail (its photon-statistics skew), pulling the mean down by 15 % on 50-event
samples; for a bright one without doubles in the data, the double's lower tail, renormalised inside the range,
took the largest few areas (−3 % on 57 events)."""
XRAY_JUNK_MIN_SEP = 4.0
"""The junk component is fitted only when some candidate inside the fit range lies more than this many robust σ
below the peak centre (a normal peak puts 3e-5 of its events there; a stray below a fixed ``bin_cuts`` is not
fitted and is no evidence): otherwise the sample holds no evidence of junk, and a
free junk at the lowest candidate took the peak's own low tail (+2.5 % on 89 clean faint X-rays). Without it
n_junk is 0."""
XRAY_JUNK_DROP = 4.0
"""The junk exponential falls at least e^4 (55×) from its start (the lowest candidate) to the peak centre:
low-area junk (stray photons, fragments, the tail above a ``min_xray_area`` cut) lies below the peak, and a
flatter junk could stand in for the peak itself or its lower half (on clean 57-event samples it took 5 of
them and pulled the mean by 2 %). The lab-like toy (junk cut at 0.25·mean, e-folding 0.15·mean) falls e^5."""
EDGE_FRACTION = 0.005
"""A fit with a fixed ``bin_cuts`` fails when more than this fraction of its signal lies beyond the edge."""
ERROR_RATIO_MIN = 0.5
"""The error on the mean must be at least this × the signal-frames-only error σ/√N (module docstring)."""
MIXTURE_MODELS = ("recoil_mixture", "xray_mixture")


def _clean(values: ArrayLike) -> tuple[NDArray[np.float64], int]:
    x = np.asarray(values, dtype=float).ravel()
    bad = ~np.isfinite(x)
    return x[~bad], int(bad.sum())


def _edges(x: NDArray[np.float64], cfg: FitConfig, auto: tuple[float, float], spread: float) -> NDArray[np.float64]:
    lo, hi = cfg.bin_cuts if cfg.bin_cuts is not None else auto
    inside = int(np.count_nonzero((x >= lo) & (x <= hi)))
    nb = cfg.nbins if cfg.nbins is not None else mx.auto_bins(inside, spread, hi - lo)
    return np.linspace(lo, hi, nb + 1)


def fit_recoil(areas: ArrayLike, sideband: ArrayLike, config: FitConfig | Any = None, *,
               xray: tuple[float, float] | None = None, label: str = "") -> FitResult:
    """Mean recoil S2 area of one set by the recoil mixture likelihood (module docstring).

    Parameters
    ----------
    areas : array_like
        Recoil-window areas of the usable frames, mV·µs (NaN dropped).
    sideband : array_like
        Areas of the same frames (or any frames of the set) over an equally long signal-free sideband, mV·µs.
    config : FitConfig or mapping, optional
        ``bin_cuts``/``nbins`` (None: from the data), ``upper_limit`` (limit of ``mu``), ``min_events``,
        ``gof_min_expected``, ``gof_p_min``, ``bg_threshold`` (reported fraction below it).
    xray : (mean, sigma), optional
        X-ray area of the set, mV·µs: enables the pile-up component (left out when it cannot reach the range).
    label : str
        Stored in the result.

    Returns
    -------
    FitResult
        ``model == "recoil_mixture"``; ``mean``/``mean_err`` the recoil mean and its 1σ error; ``sigma`` the
        recoil S2 width cv·mu; ``details``: ``quality``, ``f_empty``, ``p_pileup``, ``pileup`` (fitted, or why
        not), ``pileup_mass_in_range``, ``sideband_mean``, ``error_ratio``, ``components`` (expected counts per
        bin). Never raises for bad data.
    """
    cfg = _as_config(config)
    x, n_nan = _clean(areas)
    sb, _ = _clean(sideband)
    model = "recoil_mixture"
    base: dict[str, Any] = dict(model=model, label=label, n_nan=n_nan, config=cfg.to_dict())
    if x.size < cfg.min_events or sb.size < cfg.min_events:
        return FitResult(**base, n_in_range=int(x.size), reason=f"too few events: {x.size} frames, {sb.size} "
                         f"sideband values (min_events = {cfg.min_events})", details={"quality": "failed"})
    paired = mx.is_paired(areas, sideband)
    if paired:                      # per-frame sideband subtraction: the pedestal error × length cancels
        a_all, s_all = np.asarray(areas, dtype=float).ravel(), np.asarray(sideband, dtype=float).ravel()
        ok = np.isfinite(a_all) & np.isfinite(s_all)
        x, sb = a_all[ok] - s_all[ok], s_all[ok]
        model_e = "paired"
    else:
        model_e = "template"
    med, spread = mx.robust_stats(x)
    if not spread > 0:
        return FitResult(**base, n_in_range=int(x.size), reason=f"no spread: all {x.size} areas equal "
                         f"({med:g} mV·µs)", details={"quality": "failed"})
    lo_hi = mx.robust_range(x, None if paired else sb, k_hi=RECOIL_K_HI)
    edges = _edges(x, cfg, lo_hi, spread)
    if paired and cfg.bin_cuts is None and edges[0] < 0 < edges[-1]:
        # the empty-window peak of D can be far narrower than a bin: centre a bin on 0 so that it cannot
        # straddle a bin edge (the range grows by less than one bin)
        w = float(edges[1] - edges[0])
        lo0 = -(math.floor(-float(edges[0]) / w) + 0.5) * w
        edges = lo0 + w * np.arange(int(math.ceil((float(edges[-1]) - lo0) / w)) + 1)
    lo, hi = float(edges[0]), float(edges[-1])
    inside = (x >= lo) & (x <= hi)
    counts, _ = np.histogram(x[inside], bins=edges)
    base.update(n_in_range=int(inside.sum()), n_outside=int((~inside).sum()), bin_edges=edges,
                counts=counts.astype(np.int64))
    m_pu = mx.pileup_mass_in_range(x, xray, lo, hi) if xray is not None else None
    xr = xray if xray is not None and x.size * mx.PILEUP_P_MAX * m_pu >= mx.PILEUP_MIN_EVENTS else None
    lat = mx.PairedLattice(edges, xr) if paired else mx.RecoilLattice(edges, sb, xr)
    names = mx.RECOIL_PARAMS if xr is not None else mx.RECOIL_PARAMS[:-1]
    if paired:
        names = (*names, "sigma_e")
    n_obs = counts.astype(float)
    mu_e, var_e = float(np.mean(sb)), float(np.var(sb, ddof=1))
    cov_ab = mx.paired_cov(areas, sideband)

    def expected(par: Any) -> NDArray[np.float64]:
        return mx.total(lat.expected(dict(zip(names, par))))

    def dev(par: Any) -> float:
        return poisson_deviance(n_obs, expected(par))

    # starting values: empty fraction from the frames below the sideband median (half of the empty ones)
    med_e, s_e = mx.robust_stats(sb)
    if paired:                      # the empty peak of D sits at 0, its width is that of the frame-by-frame
        med_e = 0.0                 # noise left after the subtraction: start at 2 lattice cells or 5 % of D
        s_e = max(0.05 * spread, 2 * (edges[1] - edges[0]))
        mu_e, var_e, cov_ab = 0.0, 0.0, 0.0
    f0 = float(np.clip(2.0 * np.mean(x < med_e) - 0.02, 0.01, 0.8))
    xm = x[inside]
    mu0 = max((float(np.mean(xm)) - mu_e) / (1 - f0), 0.5 * max(s_e, 1e-3), 1e-3)
    sig = xm[xm > med_e + 2 * s_e]
    sig = sig if sig.size > 10 else xm
    cv0 = float(np.clip(math.sqrt(max(float(np.var(sig)) - var_e, (0.2 * mu0) ** 2)) / mu0, 0.05, 1.5))
    mu_hi = cfg.upper_limit if cfg.upper_limit is not None else max(2.0 * (hi - lo), 4.0 * mu0)
    limits = {"n": (0.0, math.inf), "f_empty": (0.0, 0.999), "mu": (1e-4 * max(hi - lo, 1e-3), mu_hi),
              "cv": (0.005, 3.0), "p_pileup": (0.0, mx.PILEUP_P_MAX)}
    st = {"n": float(x.size), "f_empty": f0, "mu": min(mu0, 0.9 * mu_hi), "cv": cv0, "p_pileup": 0.01}
    starts = [st, {**st, "f_empty": 0.5 * f0 + 0.005, "cv": 0.5 * cv0 + 0.01},
              {**st, "f_empty": min(2 * f0, 0.9), "mu": 1.3 * st["mu"], "cv": min(2 * cv0, 2.5)},
              {**st, "f_empty": 0.02, "cv": max(cv0, 0.35)}]
    if paired:
        w = float(edges[1] - edges[0])
        limits.update(sigma_e=(0.01 * w, 0.5 * spread))
        starts = [{**s, "sigma_e": s_e} for s in starts] + [{**st, "sigma_e": 4 * s_e, "f_empty": 0.02}]
    starts = [{k: v for k, v in s.items() if k in names} for s in starts]
    lims = {k: limits[k] for k in names}
    mn, reasons, cov, n_starts = _minimise(dev, names, starts, lims)
    values = {k: float(mn.values[k]) for k in names}
    errors = {k: float(mn.errors[k]) for k in names}
    parts = lat.expected(values)
    nu = mx.total(parts)
    chi2, ndf, p_value, n_grp = _gof(n_obs, nu, _n_free(mn, names), cfg.gof_min_expected)
    f = values["f_empty"]
    n_sig = values["n"] * (1 - f)
    var_sb = (var_e - 2.0 * cov_ab) / sb.size / max(1 - f, 1e-6) ** 2
    err_sb = math.copysign(math.sqrt(abs(var_sb)), var_sb)
    mean_err = math.sqrt(max(errors["mu"] ** 2 + var_sb, 0.25 * errors["mu"] ** 2)) if cov is not None else math.nan
    sigma = values["cv"] * values["mu"]
    if paired:
        var_e = values["sigma_e"] ** 2
    ref = math.sqrt(sigma ** 2 + var_e) / math.sqrt(max(n_sig, 1.0))
    ratio = mean_err / ref if ref > 0 else math.nan
    if cov is not None and not ratio >= ERROR_RATIO_MIN:
        reasons.append(f"error on the mean {mean_err:.2g} implausibly small: {ratio:.2g} × σ/√N = {ref:.2g}")
    if n_sig < cfg.min_events:
        reasons.append(f"only {n_sig:.0f} signal frames fitted (min_events = {cfg.min_events})")
    if cfg.bin_cuts is not None:
        beyond = lat.mass_above(values, hi)
        if beyond > EDGE_FRACTION:
            reasons.append(f"{100 * beyond:.2g} % of the fitted signal lies above bin_cuts[1] = {hi:g} mV·µs: "
                           "raise bin_cuts (or remove it to take the range from the data)")
    ok, quality, reason = _verdict(reasons, p_value, cfg.gof_p_min)
    keep_err = quality != "failed"
    details = {"quality": quality, "mean_definition": "mean of the gamma recoil S2 component (mixture fit)",
               "empty_model": model_e,
               "f_empty": f, "f_empty_err": errors["f_empty"], "p_pileup": values.get("p_pileup", 0.0),
               "sideband_mean": mu_e, "sideband_sigma": math.sqrt(var_e), "n_sideband": int(sb.size),
               "mean_err_sideband": err_sb, "error_ratio": ratio, "n_signal": n_sig,
               "xray_for_pileup": list(xray) if xray is not None else None, "pileup_mass_in_range": m_pu,
               "pileup": "none (no X-ray)" if m_pu is None else "fitted" if xr is not None else
               f"left out (p_pileup = 0): S + X + E has {m_pu:.2g} of its mass in the fit range, fewer than "
               f"{mx.PILEUP_MIN_EVENTS:g} of {x.size} frames at p_pileup = {mx.PILEUP_P_MAX:g}",
               "deviance": dev(list(values.values())),
               "gof_bins": n_grp, "n_starts": n_starts, "edm": float(mn.fmin.edm) if mn.fmin else None,
               "fraction_below_bg_threshold": float(np.mean(x <= cfg.bg_threshold)),
               "components": {k: v.tolist() for k, v in parts.items()}}
    return FitResult(**base, mean=values["mu"], mean_err=mean_err if keep_err else math.nan,
                     ci95=Z95 * mean_err if keep_err else math.nan, sigma=sigma,
                     sigma_err=errors["cv"] * values["mu"] if keep_err else math.nan, params=values,
                     errors=errors if keep_err else {k: math.nan for k in names},
                     covariance=cov if keep_err else None, fit_success=ok, reason=reason, chi2=chi2, ndf=ndf,
                     p_value=p_value, details=details)


def fit_xray(areas: ArrayLike, config: FitConfig | Any = None, *, label: str = "") -> FitResult:
    """Mean X-ray S2 area A_x of accepted X-ray candidates (module docstring), ``model == "xray_mixture"``.

    ``config`` as for :func:`fit_recoil` (``bin_cuts``/``nbins`` None: from the data). ``sigma`` is the peak
    width; ``details`` holds ``quality``, the junk and double-pile-up yields and ``components``.
    """
    cfg = _as_config(config)
    x, n_nan = _clean(areas)
    base: dict[str, Any] = dict(model="xray_mixture", label=label, n_nan=n_nan, config=cfg.to_dict())
    if x.size < cfg.min_events:
        return FitResult(**base, n_in_range=int(x.size), reason=f"too few events: {x.size} < min_events = "
                         f"{cfg.min_events}", details={"quality": "failed"})
    med, spread = mx.xray_peak(x)
    if not spread > 0:
        return FitResult(**base, n_in_range=int(x.size), reason=f"no spread: all {x.size} areas equal "
                         f"({med:g} mV·µs)", details={"quality": "failed"})
    auto = (med - XRAY_K_LO * spread, med + XRAY_K_HI * spread)
    edges = _edges(x, cfg, auto, spread)
    lo, hi = float(edges[0]), float(edges[-1])
    inside = (x >= lo) & (x <= hi)
    counts, _ = np.histogram(x[inside], bins=edges)
    base.update(n_in_range=int(inside.sum()), n_outside=int((~inside).sum()), bin_edges=edges,
                counts=counts.astype(np.int64))
    x_in = x[inside]  # the switches look only where the fit looks: a stray outside [lo, hi] is no evidence
    double = (med >= XRAY_DOUBLE_MIN_SEP * spread and x_in.size > 0
              and float(np.max(x_in)) >= 2 * med - 3 * math.sqrt(2) * spread)
    junk = x_in.size > 0 and float(np.min(x_in)) < med - XRAY_JUNK_MIN_SEP * spread
    drop = ({"n_double"} if not double else set()) | ({"n_junk", "slope"} if not junk else set())
    names = tuple(k for k in mx.XRAY_PARAMS if k not in drop)
    fixed = {"n_double": 0.0, "n_junk": 0.0, "slope": 1.0}
    n_obs = counts.astype(float)
    n_in = float(inside.sum())

    def dev(par: Any) -> float:
        return poisson_deviance(n_obs, mx.total(mx.xray_expected({**fixed, **dict(zip(names, par))}, edges, x_min)))

    core = x[inside & (np.abs(x - med) < 3 * spread)]
    n_junk0 = max(float(np.sum(x_in < med - 3 * spread)), 0.02 * n_in)
    span = hi - lo
    x_min = float(np.min(x_in)) if x_in.size else lo
    slope_min = XRAY_JUNK_DROP / max(med - max(x_min, lo), span / 20)
    st = {"n": max(float(core.size), 0.5 * n_in), "mu": med, "sigma": max(spread, span / 200),
          "n_junk": n_junk0, "slope": 2.0 * slope_min, "n_double": 0.01 * n_in}
    mu_hi = cfg.upper_limit if cfg.upper_limit is not None else hi
    mu_lo = lo if mu_hi > lo else mu_hi - span
    st["mu"] = float(np.clip(st["mu"], mu_lo + 1e-3 * span, mu_hi - 1e-3 * span))
    limits = {"n": (0.0, math.inf), "mu": (mu_lo, mu_hi), "sigma": (span / 2000, span),
              "n_junk": (0.0, math.inf), "slope": (slope_min, max(200.0 / span, 2 * slope_min)),
              "n_double": (0.0, math.inf)}
    starts = [st, {**st, "slope": 1.2 * slope_min, "n_junk": 2 * n_junk0},
              {**st, "sigma": 0.6 * st["sigma"], "n_junk": 0.5 * n_junk0}]
    mn, reasons, cov, n_starts = _minimise(dev, names, starts, limits)
    values = {**fixed, **{k: float(mn.values[k]) for k in names}}
    errors = {**{k: 0.0 for k in fixed}, **{k: float(mn.errors[k]) for k in names}}
    parts = mx.xray_expected(values, edges, x_min)
    nu = mx.total(parts)
    chi2, ndf, p_value, n_grp = _gof(n_obs, nu, _n_free(mn, names), cfg.gof_min_expected)
    mean_err = errors["mu"] if cov is not None else math.nan
    ref = values["sigma"] / math.sqrt(max(values["n"], 1.0))
    ratio = mean_err / ref if ref > 0 else math.nan
    if cov is not None and not ratio >= ERROR_RATIO_MIN:
        reasons.append(f"error on the mean {mean_err:.2g} implausibly small: {ratio:.2g} × σ/√N = {ref:.2g}")
    if values["n"] < cfg.min_events:
        reasons.append(f"only {values['n']:.0f} X-rays in the peak (min_events = {cfg.min_events})")
    if cfg.bin_cuts is not None:
        beyond = float(stats.norm.sf(hi, values["mu"], values["sigma"]))
        if beyond > EDGE_FRACTION:
            reasons.append(f"{100 * beyond:.2g} % of the fitted X-ray peak lies above bin_cuts[1] = {hi:g} "
                           "mV·µs: raise bin_cuts (or remove it to take the range from the data)")
    ok, quality, reason = _verdict(reasons, p_value, cfg.gof_p_min)
    keep_err = quality != "failed"
    details = {"quality": quality, "mean_definition": "mean of the normal X-ray peak (mixture fit)",
               "n_junk": values["n_junk"], "n_double": values["n_double"], "error_ratio": ratio,
               "gof_bins": n_grp, "n_starts": n_starts, "edm": float(mn.fmin.edm) if mn.fmin else None,
               "components": {k: v.tolist() for k, v in parts.items()}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return FitResult(**base, mean=values["mu"], mean_err=mean_err if keep_err else math.nan,
                         ci95=Z95 * mean_err if keep_err else math.nan, sigma=values["sigma"],
                         sigma_err=errors["sigma"] if keep_err else math.nan, params=values,
                         errors=errors if keep_err else {k: math.nan for k in mx.XRAY_PARAMS},
                         covariance=cov if keep_err else None, fit_success=ok, reason=reason, chi2=chi2,
                         ndf=ndf, p_value=p_value, details=details)


def xray_by_el_field(items: Any) -> dict[str, tuple[float, float]]:
    """Per set the X-ray area (mean, σ) for the recoil fit's pile-up component: the accepted X-ray areas of
    all sets at the same EL field (``items``: ``(set name, EL field V/cm, areas)``) through :func:`fit_xray`;
    sets whose field has no usable X-ray estimate are left out (no pile-up term)."""
    pooled: dict[float, list[NDArray[np.float64]]] = {}
    for _name, el, areas in items:
        a = np.asarray(areas, dtype=float)
        if a.size:
            pooled.setdefault(round(float(el), 1), []).append(a)
    by_el = {}
    for el, parts in pooled.items():
        fit = fit_xray(np.concatenate(parts))
        if fit.quality != "failed" and np.isfinite(fit.mean) and np.isfinite(fit.sigma):
            by_el[el] = (float(fit.mean), float(fit.sigma))
    return {name: by_el[round(float(el), 1)] for name, el, _a in items if round(float(el), 1) in by_el}
