"""Internals of :mod:`s2lib.stats.fitting`: line-shape models (CDFs, densities, signal means), starting values,
the goodness-of-fit binning. The Minuit driver with its verdict on a minimum is in :mod:`s2lib.stats._fit_minuit`.

Every component is described by a cumulative distribution function ``F(x)`` of the *untruncated*
distribution. The fit normalises each component over the fit range ``[lo, hi]``, so the expected count of a
component in the bin ``[a, b]`` is ``N · (F(b) − F(a)) / (F(hi) − F(lo))`` with ``N`` the component's
expected number of events inside the fit range (its *yield*). Integrating the CDF over each bin, instead of
evaluating the density at bin centres, keeps the model exact for any bin width.

Right-tailed Crystal Ball (Oreglia 1980, SLAC-236, appendix D; Gaiser 1982, SLAC-255), in ``z = (x − x0)/σ``
with ``β > 0`` and ``m > 1``::

    g(z) = exp(−z²/2)                                  for z < β
    g(z) = exp(−β²/2) · (1 + β (z − β)/m)^(−m)         for z ≥ β

The tail is the usual ``A·(B + z)^(−m)`` with ``A = (m/β)^m·exp(−β²/2)`` and ``B = m/β − β``, written in the
form above so that it neither overflows for large ``m`` nor loses precision; ``g`` and ``g'`` are continuous at
``z = β``. The integrals used here are closed-form:

* ``∫_{−∞}^{z} g = √(2π)·Φ(z)`` for ``z < β``, and ``√(2π)·Φ(β) + e^{−β²/2} (m/β) I₁(u)`` above, with
  ``u = 1 + β(z − β)/m`` and ``I₁(u) = ∫₁ᵘ s^{−m} ds = (1 − u^{1−m})/(m − 1)``; the total is
  ``√(2π)·Φ(β) + e^{−β²/2}·m/(β(m − 1))``.
* ``∫_{−∞}^{z} t·g(t) dt = −e^{−z²/2}`` for ``z < β`` and
  ``−e^{−β²/2} + e^{−β²/2} (m/β) [(β − m/β) I₁(u) + (m/β) I₂(u)]`` above, ``I₂(u) = ∫₁ᵘ s^{1−m} ds``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

__all__ = [
    "MODELS",
    "BG_MODELS",
    "CB_MODELS",
    "PARAM_NAMES",
    "signal_centre_name",
    "YIELD_OF",
    "gauss_cdf",
    "gauss_pdf",
    "crystalball_cdf",
    "crystalball_pdf",
    "crystalball_mean",
    "component_shapes",
    "expected_counts",
    "component_densities",
    "signal_mean",
    "signal_mean_error",
    "start_and_limits",
    "alternative_starts",
    "robust_upper_edge",
    "merge_for_gof",
]

MODELS: tuple[str, ...] = ("gauss", "gauss_bg", "crystalball", "crystalball_bg")
#: Models with a low-area Gaussian background component (``n_bg``, ``mu_bg``, ``sigma_bg``).
BG_MODELS: tuple[str, ...] = ("gauss_bg", "crystalball_bg")
#: Models whose signal is the right-tailed Crystal Ball (mean = expectation over the fit range).
CB_MODELS: tuple[str, ...] = ("crystalball", "crystalball_bg")

#: Free parameters of each model, in the order of the covariance matrix.
PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "gauss": ("n", "mu", "sigma"),
    "gauss_bg": ("n", "mu", "sigma", "n_bg", "mu_bg", "sigma_bg"),
    "crystalball": ("n", "x0", "sigma", "beta", "m"),
    "crystalball_bg": ("n", "x0", "sigma", "beta", "m", "n_bg", "mu_bg", "sigma_bg"),
}

#: Component name -> its yield parameter.
YIELD_OF: dict[str, str] = {"signal": "n", "background": "n_bg"}

_SQRT_2PI = math.sqrt(2.0 * math.pi)

Shape = tuple[Callable[[NDArray[np.float64]], NDArray[np.float64]],
              Callable[[NDArray[np.float64]], NDArray[np.float64]]]


def gauss_cdf(x: ArrayLike, mu: float, sigma: float) -> NDArray[np.float64]:
    """CDF of a normal distribution, ``Φ((x − μ)/σ)``."""
    return ndtr((np.asarray(x, dtype=float) - mu) / sigma)


def gauss_pdf(x: ArrayLike, mu: float, sigma: float) -> NDArray[np.float64]:
    """Density of a normal distribution (1/unit of x)."""
    z = (np.asarray(x, dtype=float) - mu) / sigma
    return np.exp(-0.5 * z * z) / (_SQRT_2PI * sigma)


def _expm1_ratio(a: float, y: NDArray[np.float64]) -> NDArray[np.float64]:
    """``expm1(a·y)/a`` with the limit ``y`` at ``a = 0`` (so ∫₁ᵘ s^{a−1} ds = _expm1_ratio(a, ln u))."""
    return y if abs(a) < 1e-9 else np.expm1(a * y) / a


def _cb_cdf_unnorm(z: NDArray[np.float64], beta: float, m: float) -> NDArray[np.float64]:
    """Unnormalised ``∫_{−∞}^{z} g`` of the right-tailed Crystal Ball (module docstring)."""
    core = z < beta
    log_u = np.log1p(beta * (np.where(core, beta, z) - beta) / m)
    tail = math.exp(-0.5 * beta * beta) * (m / beta) * _expm1_ratio(1.0 - m, log_u)
    return _SQRT_2PI * ndtr(np.where(core, z, beta)) + np.where(core, 0.0, tail)


def _cb_parts(z: NDArray[np.float64], beta: float, m: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Unnormalised ``∫_{−∞}^{z} g`` and ``∫_{−∞}^{z} t·g(t) dt`` of the right-tailed Crystal Ball."""
    z = np.asarray(z, dtype=float)
    core = z < beta
    zc = np.where(core, z, beta)
    log_u = np.log1p(beta * (np.where(core, beta, z) - beta) / m)
    i1 = _expm1_ratio(1.0 - m, log_u)       # ∫₁ᵘ s^{−m} ds
    i2 = _expm1_ratio(2.0 - m, log_u)       # ∫₁ᵘ s^{1−m} ds
    e_b = math.exp(-0.5 * beta * beta)
    r = m / beta
    mom = -np.exp(-0.5 * zc * zc) + np.where(core, 0.0, e_b * r * ((beta - r) * i1 + r * i2))
    return _cb_cdf_unnorm(z, beta, m), mom


def _cb_total(beta: float, m: float) -> float:
    return _SQRT_2PI * float(ndtr(beta)) + math.exp(-0.5 * beta * beta) * m / (beta * (m - 1.0))


def crystalball_cdf(x: ArrayLike, x0: float, sigma: float, beta: float, m: float) -> NDArray[np.float64]:
    """CDF of the (untruncated, normalised) right-tailed Crystal Ball; requires ``β > 0``, ``m > 1``."""
    z = (np.asarray(x, dtype=float) - x0) / sigma
    return _cb_cdf_unnorm(z, beta, m) / _cb_total(beta, m)


def crystalball_pdf(x: ArrayLike, x0: float, sigma: float, beta: float, m: float) -> NDArray[np.float64]:
    """Density of the normalised right-tailed Crystal Ball (1/unit of x)."""
    z = (np.asarray(x, dtype=float) - x0) / sigma
    core = z < beta
    zt = np.where(core, beta, z)
    tail = np.exp(-0.5 * beta * beta - m * np.log1p(beta * (zt - beta) / m))
    g = np.where(core, np.exp(-0.5 * np.where(core, z, 0.0) ** 2), tail)
    return g / (sigma * _cb_total(beta, m))


def crystalball_mean(x0: float, sigma: float, beta: float, m: float,
                     lo: float = -np.inf, hi: float = np.inf) -> float:
    """Expectation of the right-tailed Crystal Ball restricted (and renormalised) to ``[lo, hi]``.

    Closed form (module docstring). With ``hi = inf`` the mean exists only for ``m > 2`` (NaN otherwise);
    with a finite range it always exists.
    """
    if math.isinf(hi) and m <= 2.0:
        return math.nan
    zs = np.array([(lo - x0) / sigma, (hi - x0) / sigma])
    if math.isinf(hi):
        # Limit u -> inf: I1 -> 1/(m-1), I2 -> 1/(m-2).
        r = m / beta
        e_b = math.exp(-0.5 * beta * beta)
        c_hi = _cb_total(beta, m)
        m_hi = -e_b + e_b * r * ((beta - r) / (m - 1.0) + r / (m - 2.0))
        c_lo, m_lo = (0.0, 0.0) if math.isinf(lo) else (float(v[0]) for v in _cb_parts(zs[:1], beta, m))
    else:
        zs = np.where(np.isinf(zs), -1e300, zs)  # lo = -inf -> far left, exact 0 for both integrals
        c, mo = _cb_parts(np.maximum(zs, -40.0), beta, m)
        c_lo, c_hi, m_lo, m_hi = float(c[0]), float(c[1]), float(mo[0]), float(mo[1])
    mass = c_hi - c_lo
    if not mass > 0.0:
        return math.nan
    return x0 + sigma * (m_hi - m_lo) / mass


def component_shapes(model: str, p: Mapping[str, float]) -> dict[str, Shape]:
    """Per component ``(cdf, pdf)`` callables of the untruncated distributions of ``model``."""
    if model in ("gauss", "gauss_bg"):
        mu, s = p["mu"], p["sigma"]
        out: dict[str, Shape] = {"signal": (lambda x: gauss_cdf(x, mu, s), lambda x: gauss_pdf(x, mu, s))}
    elif model in CB_MODELS:
        args = (p["x0"], p["sigma"], p["beta"], p["m"])
        out = {"signal": (lambda x: crystalball_cdf(x, *args), lambda x: crystalball_pdf(x, *args))}
    else:
        raise ValueError(f"unknown model {model!r}; expected one of {MODELS}")
    if model in BG_MODELS:
        mb, sb = p["mu_bg"], p["sigma_bg"]
        out["background"] = (lambda x: gauss_cdf(x, mb, sb), lambda x: gauss_pdf(x, mb, sb))
    return out


def expected_counts(model: str, p: Mapping[str, float], edges: ArrayLike,
                    lo: float, hi: float) -> NDArray[np.float64]:
    """Expected counts per bin of the full model: each component is normalised over ``[lo, hi]``."""
    e = np.asarray(edges, dtype=float)
    pts = np.concatenate(([lo, hi], e))
    total = np.zeros(e.size - 1)
    for name, (cdf, _pdf) in component_shapes(model, p).items():
        f = cdf(pts)
        mass = max(float(f[1] - f[0]), 1e-300)
        total += (p[YIELD_OF[name]] / mass) * np.diff(f[2:])
    return total


def component_densities(model: str, p: Mapping[str, float], x: ArrayLike,
                        lo: float, hi: float) -> dict[str, NDArray[np.float64]]:
    """Per component ``yield · pdf(x) / mass in [lo, hi]`` (events per unit of x)."""
    xx = np.asarray(x, dtype=float)
    out = {}
    for name, (cdf, pdf) in component_shapes(model, p).items():
        f_lo, f_hi = cdf(np.array([lo, hi]))
        mass = max(float(f_hi - f_lo), 1e-300)
        out[name] = p[YIELD_OF[name]] * pdf(xx) / mass
    return out


def signal_mean(model: str, p: Mapping[str, float], lo: float, hi: float) -> float:
    """Expectation of the signal component (see :func:`s2lib.stats.fitting.fit_histogram` for the definitions)."""
    if model in ("gauss", "gauss_bg"):
        return float(p["mu"])
    if model in CB_MODELS:
        return crystalball_mean(p["x0"], p["sigma"], p["beta"], p["m"], lo, hi)
    raise ValueError(f"unknown model {model!r}")


def signal_centre_name(model: str) -> str:
    """Name of the signal's location parameter (``mu`` or ``x0``)."""
    return "x0" if model in CB_MODELS else "mu"


def start_and_limits(model: str, x: NDArray[np.float64], counts: NDArray[np.int64], edges: NDArray[np.float64],
                     *, upper: float, bg_cutoff: float, bg_sigma_max: float
                     ) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Robust starting values (median, MAD, smoothed histogram mode) and parameter limits.

    Limits: yields ``≥ 0``; centres in ``[lo, upper]`` (background centre in ``[lo, bg_cutoff]``); widths in
    ``[0.05·bin width, hi − lo]`` (background width ``≤ bg_sigma_max``); Crystal Ball ``β ∈ [0.2, 10]``,
    ``m ∈ [1.05, 200]``. A fit ending at a limit is reported as failed, so the limits only exclude
    unphysical or unidentifiable regions.
    """
    lo, hi = float(edges[0]), float(edges[-1])
    w = (hi - lo) / (edges.size - 1)
    s_min, s_max = 0.05 * w, hi - lo
    centres = 0.5 * (edges[:-1] + edges[1:])

    def spread(v: NDArray[np.float64]) -> float:
        s = 1.4826 * float(np.median(np.abs(v - np.median(v)))) if v.size else 0.0
        if not s > 0 and v.size > 1:
            s = float(np.subtract(*np.percentile(v, [75, 25]))) / 1.349
        return float(np.clip(s if s > 0 else w, 2 * s_min, 0.5 * s_max))

    n = float(x.size)
    start: dict[str, float] = {"n": n}
    limits: dict[str, tuple[float, float]] = {"n": (0.0, math.inf), "sigma": (s_min, s_max)}
    if model == "gauss":
        start.update(mu=float(np.clip(np.median(x), lo, upper)), sigma=spread(x))
        limits["mu"] = (lo, upper)
    elif model == "crystalball":
        smooth = np.convolve(counts, np.ones(5) / 5.0, mode="same")
        mode = float(centres[int(np.argmax(smooth))])
        start.update(x0=float(np.clip(mode, lo, upper)), sigma=spread(x), beta=1.0, m=3.0)
        limits.update(x0=(lo, upper), beta=(0.2, 10.0), m=(1.05, 200.0))
    elif model in BG_MODELS:
        in_bg = centres <= bg_cutoff
        mu_bg = (float(centres[in_bg][int(np.argmax(counts[in_bg]))]) if counts[in_bg].any()
                 else 0.5 * (lo + bg_cutoff))
        s_bg = 0.3 * (bg_cutoff - lo)
        if counts[in_bg].any():  # half width at half maximum right of the peak, / 1.1774
            k = int(np.argmin(np.abs(centres - mu_bg)))
            below = np.nonzero(counts[k:] < 0.5 * counts[k])[0]
            s_bg = (below[0] * w if below.size else s_bg) / 1.1774
        s_bg = max(float(np.clip(s_bg, 1.5 * w, 0.8 * bg_sigma_max)), 2 * s_min)
        sig = x[x > mu_bg + 3.0 * s_bg]
        sig = sig if sig.size >= 5 else x
        n_bg = max(float(np.sum(x <= mu_bg + 2.0 * s_bg)) - 0.1 * sig.size, 0.05 * n)
        start.update(n=max(n - n_bg, 0.05 * n), n_bg=n_bg, mu_bg=float(np.clip(mu_bg, lo, bg_cutoff)),
                     sigma_bg=s_bg)
        limits.update(n_bg=(0.0, math.inf), mu_bg=(lo, bg_cutoff), sigma_bg=(s_min, bg_sigma_max))
        if model == "gauss_bg":
            start.update(mu=float(np.clip(np.median(sig), lo, upper)), sigma=spread(sig))
            limits["mu"] = (lo, upper)
        else:  # crystalball_bg: core start at the mode of the signal above the background peak
            sh, _ = np.histogram(sig, bins=edges)
            mode = float(centres[int(np.argmax(np.convolve(sh, np.ones(5) / 5.0, mode="same")))])
            start.update(x0=float(np.clip(mode, lo, upper)), sigma=spread(sig), beta=1.0, m=3.0)
            limits.update(x0=(lo, upper), beta=(0.2, 10.0), m=(1.05, 200.0))
    else:
        raise ValueError(f"unknown model {model!r}")
    return start, limits


def alternative_starts(model: str, start: Mapping[str, float],
                       limits: Mapping[str, tuple[float, float]]) -> list[dict[str, float]]:
    """Other starting points, tried in order when the fit from ``start`` is not clean (widths and tail shape
    are where binned fits find local minima: a background spike in one bin, a tail absorbing the core)."""
    if model == "gauss":
        alts = [{"sigma": start["sigma"] * 0.5}, {"sigma": start["sigma"] * 2.0}]
    elif model == "gauss_bg":
        alts = [{"sigma_bg": start["sigma_bg"] * 0.3, "n_bg": start["n_bg"] * 0.5},
                {"sigma_bg": start["sigma_bg"] * 2.0, "sigma": start["sigma"] * 1.5}]
    elif model == "crystalball_bg":
        alts = [{"beta": 0.6, "m": 2.0}, {"beta": 2.0, "m": 5.0},
                {"sigma_bg": start["sigma_bg"] * 0.5, "beta": 1.0, "m": 1.5, "sigma": start["sigma"] * 0.7}]
    else:
        alts = [{"beta": 0.6, "m": 2.0}, {"beta": 2.0, "m": 5.0}, {"beta": 1.0, "m": 1.5,
                                                                 "sigma": start["sigma"] * 0.7}]
    out = []
    for alt in alts:
        st = dict(start)
        for k, v in alt.items():
            lo_k, up_k = limits[k]
            span = (up_k - lo_k) if math.isfinite(up_k) else abs(v)
            st[k] = float(np.clip(v, lo_k + 0.01 * span, up_k - 0.01 * span))
        out.append(st)
    return out


def merge_for_gof(counts: ArrayLike, expected: ArrayLike,
                  min_expected: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Merge adjacent bins, left to right, until each group expects ``≥ min_expected`` events.

    A remainder at the right end joins the last group. Returns ``(counts, expected)`` per group. This keeps
    the deviance close to its asymptotic χ² distribution (sparse bins make it far from χ²).
    """
    n = np.asarray(counts, dtype=float)
    nu = np.asarray(expected, dtype=float)
    starts: list[int] = []
    acc, begin = 0.0, 0
    for i, v in enumerate(nu):
        acc += v
        if acc >= min_expected:
            starts.append(begin)
            begin, acc = i + 1, 0.0
    if not starts:
        starts = [0]
    idx = np.asarray(starts)
    return np.add.reduceat(n, idx), np.add.reduceat(nu, idx)


def signal_mean_error(model: str, values: Mapping[str, float], errors: Mapping[str, float],
                      cov: NDArray[np.float64] | None, lo: float, hi: float) -> tuple[float, dict[str, Any]]:
    """1σ error of the signal mean; for ``crystalball`` by ``J C Jᵀ`` with a central-difference Jacobian."""
    if model not in CB_MODELS:
        details: dict[str, Any] = {"mean_definition": "mu of the signal Gaussian"}
        return (math.sqrt(cov[1, 1]) if cov is not None else math.nan), details
    details = {"mean_definition": f"expectation of the Crystal Ball normalised over [{lo:g}, {hi:g}]",
               "mean_untruncated": _finite_or_none(crystalball_mean(
                   values["x0"], values["sigma"], values["beta"], values["m"]))}
    if cov is None:
        return math.nan, details
    names = PARAM_NAMES[model]
    jac = np.zeros(len(names))
    for i, k in enumerate(names[1:], start=1):
        if k in ("n_bg", "mu_bg", "sigma_bg"):
            continue                        # the signal mean does not depend on the background
        h = 1e-3 * errors[k] if math.isfinite(errors[k]) and errors[k] > 0 else 1e-6 * max(1.0, abs(values[k]))
        up, dn = dict(values), dict(values)
        up[k] += h
        dn[k] -= h
        jac[i] = (signal_mean(model, up, lo, hi) - signal_mean(model, dn, lo, hi)) / (2 * h)
    var = float(jac @ cov @ jac)
    return (math.sqrt(var) if var >= 0 else math.nan), details


def _finite_or_none(v: float) -> float | None:
    return v if math.isfinite(v) else None


def robust_upper_edge(x: NDArray[np.float64], bin_cuts: tuple[float, float], bin_width: float, k: float,
                      min_events: int) -> tuple[float, int] | None:
    """(new upper edge, nbins) = median + k·1.4826·MAD of the values inside ``bin_cuts``, snapped to the bin
    grid; None when it would not lower the edge, leaves < 10 bins, or there are fewer than ``min_events``."""
    lo, hi = bin_cuts
    inside = x[(x >= lo) & (x <= hi)]
    if inside.size < min_events:
        return None
    med = float(np.median(inside))
    spread = 1.4826 * float(np.median(np.abs(inside - med)))
    new_hi = min(hi, med + k * spread)
    if not spread > 0 or new_hi >= hi or new_hi <= lo + 10 * bin_width:
        return None
    nbins = max(10, int(round((new_hi - lo) / bin_width)))
    return lo + nbins * bin_width, nbins
