"""Internals of :mod:`s2lib.stats.estimators`: binned mixture models on a fine lattice, ranges from the data.

Recoil window areas (mV·µs) are modelled as (``estimators`` module docstring)::

    A = E                 with probability f            (empty window: no recoil S2)
    A = S + E             with probability (1 − f)(1 − p)
    A = S + X + E         with probability (1 − f) p    (an X-ray S2 inside the window: pile-up)

``E`` is the empty-window area, whose distribution is the *measured* sideband histogram (same window length,
signal-free part of the same frames); ``S`` the recoil S2 area, a gamma distribution of mean ``mu`` and
coefficient of variation ``cv``; ``X`` the X-ray area, a normal distribution whose mean and width are the
X-ray estimate of the same set. Sums of independent variables are convolutions of their lattice masses.

Lattice: the fit bins of width ``w`` are cut into ``SUB`` cells of width ``h = w/SUB``; cell ``m`` has centre
``lo + (m + ½)h``. The sideband values are binned on the same cells (index ``j``, may be negative); the gamma
and normal masses sit on the points ``k·h`` (``k ≥ 0``), integrated over ``[(k − ½)h, (k + ½)h)``, so a sum of a
cell ``j`` and a point ``k`` is cell ``j + k`` exactly. The masses are exact integrals; placing them at cell
centres moves the mean by O(h²·f'), far below the statistical error at the widths used.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammainc, ndtr

__all__ = ["SUB", "RecoilLattice", "robust_range", "robust_stats", "xray_peak", "gamma_point_masses", "normal_point_masses", "auto_bins",
           "xray_expected", "XRAY_PARAMS", "RECOIL_PARAMS", "is_paired", "paired_cov", "PILEUP_P_MAX",
           "PILEUP_MIN_EVENTS", "pileup_mass_in_range"]

SUB = 4
"""Lattice cells per fit bin."""

RECOIL_PARAMS: tuple[str, ...] = ("n", "f_empty", "mu", "cv", "p_pileup")
XRAY_PARAMS: tuple[str, ...] = ("n", "mu", "sigma", "n_junk", "slope", "n_double")
PILEUP_P_MAX = 0.5
"""Upper limit of the fitted pile-up fraction p_pileup (an X-ray in half of the recoil windows: far above any
X-ray rate × window length; a limit, not an expectation)."""
PILEUP_MIN_EVENTS = 0.5
"""The pile-up component is left out of a recoil fit (p_pileup = 0) when, even at ``PILEUP_P_MAX``, it would put
fewer than this many expected frames into the fit range: N·PILEUP_P_MAX·m < 0.5 with N the frames and m
(:func:`pileup_mass_in_range`) the in-range probability of its area S + X + E; i.e. N·m < 1. Why 0.5: with no
pile-up frame in the range the Poisson deviance of p is 2·N·m·p, so its 1σ limit (Δ = 1) is p = 0.5/(N·m); below
the threshold that limit lies beyond PILEUP_P_MAX, the range cannot tell any allowed p from 0, and a free p only
trades with n and f_empty (the X-ray peak above the recoil range: the recoil mean does not depend on it)."""


def robust_stats(x: NDArray[np.float64]) -> tuple[float, float]:
    """(median, 1.4826·MAD) with the IQR/1.349 as fallback when the MAD is 0."""
    med = float(np.median(x))
    s = 1.4826 * float(np.median(np.abs(x - med)))
    if not s > 0:
        q75, q25 = np.percentile(x, [75, 25])
        s = float(q75 - q25) / 1.349
    return med, s


def auto_bins(n: int, spread: float, span: float, lo_bins: int = 40, hi_bins: int = 400) -> int:
    """Number of bins over ``span``: Freedman–Diaconis width ``2·IQR·n^(−1/3)`` with IQR = 1.349·spread,
    clipped to ``[lo_bins, hi_bins]`` (40 at least: a likelihood fit loses nothing to narrow bins)."""
    w = 2.0 * 1.349 * spread * max(n, 1) ** (-1.0 / 3.0)
    if not w > 0:
        return lo_bins
    return int(np.clip(math.ceil(span / w), lo_bins, hi_bins))


def robust_range(x: NDArray[np.float64], ref: NDArray[np.float64] | None, *, k_hi: float,
                 q_lo: float = 0.002) -> tuple[float, float]:
    """Fit range from the data: lower edge at the ``q_lo`` quantile of the data and of ``ref`` (the sideband),
    less 1 robust σ of ``ref`` (or of the data); upper edge at median + ``k_hi`` robust σ of the data, not past
    its largest value."""
    med, s = robust_stats(x)
    pool = x if ref is None or ref.size == 0 else np.concatenate([x, ref])
    s_ref = robust_stats(ref)[1] if ref is not None and ref.size else s
    lo = float(np.quantile(pool, q_lo)) - max(s_ref, 1e-9)
    hi = min(med + k_hi * s, float(np.max(x)))
    if not hi > lo:
        hi = lo + max(s, 1e-6) * 10
    return lo, hi


def xray_peak(x: NDArray[np.float64]) -> tuple[float, float]:
    """(centre, robust σ) of the X-ray peak among accepted candidates that may be mostly low-area junk
    (single photons when ``min_xray_area`` is 0): the mode of the *area-weighted* histogram of log10(area)
    (0.05 dex bins, 5-bin smoothing; weighting by area makes 100 single photons of 0.02 weigh less than one
    X-ray of 2 mV·µs), then the median and 1.4826·MAD of the values within a factor 2 of it."""
    pos = x[x > 0]
    if pos.size < 5:
        return robust_stats(x)
    lg = np.log10(pos)
    nb = max(int(math.ceil((lg.max() - lg.min()) / 0.05)), 1)
    w, e = np.histogram(lg, bins=nb, weights=pos)
    sm = np.convolve(w, np.ones(5) / 5.0, mode="same")
    c = 10 ** (0.5 * (e[int(np.argmax(sm))] + e[int(np.argmax(sm)) + 1]))
    near = pos[(pos > 0.5 * c) & (pos < 2.0 * c)]
    if near.size < 5:
        return robust_stats(x)
    return robust_stats(near)


def gamma_point_masses(mu: float, cv: float, h: float, k_max: int) -> NDArray[np.float64]:
    """Gamma(mean mu, σ/μ = cv) masses on the points ``k·h``, k = 0..k_max (cell ``[(k − ½)h, (k + ½)h)``,
    the first cell ``[0, h/2)``); the mass beyond the last cell is dropped (it lies above the fit range)."""
    shape = 1.0 / (cv * cv)
    edges = (np.arange(k_max + 2) - 0.5) * h
    edges[0] = 0.0
    c = gammainc(shape, np.maximum(edges, 0.0) * (shape / mu))
    return np.diff(c)


def is_paired(areas: ArrayLike, sideband: ArrayLike) -> bool:
    """Window and sideband areas of the same frames (equal length, finite pairs for most frames)."""
    a, b = np.asarray(areas, dtype=float).ravel(), np.asarray(sideband, dtype=float).ravel()
    return a.size == b.size and a.size > 0 and np.mean(np.isfinite(a) & np.isfinite(b)) > 0.5


def paired_cov(areas: ArrayLike, sideband: ArrayLike) -> float:
    """Covariance of window and sideband areas of the same frames (both carry the frame's pedestal error ×
    window length); 0 when they are not paired frame by frame."""
    a, b = np.asarray(areas, dtype=float).ravel(), np.asarray(sideband, dtype=float).ravel()
    if a.size != b.size or a.size < 3:
        return 0.0
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return 0.0
    a, b = a[ok], b[ok]
    # robust against the signal's own spread: the pedestal error is common, the signal is independent of it
    return float(np.cov(a, b)[0, 1])


def pileup_mass_in_range(x: NDArray[np.float64], xray: tuple[float, float], lo: float, hi: float) -> float:
    """In-range probability of the pile-up area S + X + E of a recoil set, from its areas ``x`` (mV·µs, all
    frames, as fitted) and no fitted parameter: the mean over the frames of P(lo ≤ x_i + X ≤ hi), X normal with
    ``xray`` = (mean, σ). A signal frame's area is S + E, so x_i + X has the pile-up distribution; the empty
    frames (E alone, S ≥ 0) lie lower and, when the pile-up sits above the range, only raise the estimate."""
    m, s = xray[0], max(xray[1], 1e-9)
    return float(np.mean(ndtr((hi - x - m) / s) - ndtr((lo - x - m) / s))) if x.size else 0.0


def normal_point_masses(mu: float, sigma: float, h: float) -> tuple[int, NDArray[np.float64]]:
    """Normal(mu, sigma) masses on points ``k·h`` covering ±6σ: (first k, masses)."""
    k0 = int(math.floor((mu - 6 * sigma) / h))
    k1 = int(math.ceil((mu + 6 * sigma) / h))
    edges = (np.arange(k0, k1 + 2) - 0.5) * h
    return k0, np.diff(ndtr((edges - mu) / sigma))


class RecoilLattice:
    """Precomputed pieces of the recoil mixture for one data set (module docstring).

    Args:
        edges: fit bin edges (equal width), mV·µs.
        sideband: empty-window areas (mV·µs) of the same window length.
        xray: (mean, σ) of the X-ray area for the pile-up component, or None (no pile-up component).
    """

    def __init__(self, edges: NDArray[np.float64], sideband: NDArray[np.float64],
                 xray: tuple[float, float] | None) -> None:
        self.edges = edges
        self.lo = float(edges[0])
        self.nb = edges.size - 1
        self.h = float(edges[1] - edges[0]) / SUB
        self.n_cells = self.nb * SUB
        j = np.floor((sideband - self.lo) / self.h).astype(np.int64)
        self.j_min = int(j.min())
        e = np.bincount(j - self.j_min).astype(float)
        self.e_mass = e / e.sum()                       # E on cells j_min .. j_min + len − 1
        self.k_max = max(self.n_cells - self.j_min, 1)  # gamma points needed to reach the last cell
        self.empty_bins = self._to_bins(self.e_mass, self.j_min)
        self.xe: tuple[int, NDArray[np.float64]] | None = None
        if xray is not None:
            k0, xm = normal_point_masses(xray[0], xray[1], self.h)
            self.xe = (self.j_min + k0, np.convolve(self.e_mass, xm))

    def _to_bins(self, cells: NDArray[np.float64], first: int) -> NDArray[np.float64]:
        """Sum cell masses (cells ``first``..) into the fit bins (cells outside the range dropped)."""
        out = np.zeros(self.n_cells)
        a, b = max(first, 0), min(first + cells.size, self.n_cells)
        if b > a:
            out[a:b] = cells[a - first:b - first]
        return out.reshape(self.nb, SUB).sum(axis=1)

    def _conv_bins(self, g: NDArray[np.float64], first: int, other: NDArray[np.float64]) -> NDArray[np.float64]:
        lim = max(self.n_cells - first, 1)
        return self._to_bins(np.convolve(other[:lim + 1], g[:lim + 1]), first)

    def expected(self, p: dict[str, float]) -> dict[str, NDArray[np.float64]]:
        """Expected counts per fit bin by component (``empty``, ``signal``, ``pileup``)."""
        n, f, pu = p["n"], p["f_empty"], p.get("p_pileup", 0.0)
        g = gamma_point_masses(p["mu"], p["cv"], self.h, self.k_max)
        out = {"empty": n * f * self.empty_bins,
               "signal": n * (1 - f) * (1 - pu) * self._conv_bins(g, self.j_min, self.e_mass)}
        if self.xe is not None:
            first, xe = self.xe
            out["pileup"] = n * (1 - f) * pu * self._conv_bins(g, first, xe)
        return out

    def mass_above(self, p: dict[str, float], edge: float) -> float:
        """Fraction of the recoil S2 distribution S above ``edge − lo`` of the range (for edge checks)."""
        shape = 1.0 / (p["cv"] ** 2)
        return float(1.0 - gammainc(shape, max(edge - self.lo, 0.0) * shape / p["mu"]))


def xray_expected(p: dict[str, float], edges: NDArray[np.float64],
                  junk_from: float | None = None) -> dict[str, NDArray[np.float64]]:
    """Expected counts per bin of the X-ray model over the fit range ``[edges[0], edges[-1]]``: a normal peak
    (``n``, ``mu``, ``sigma``), low-area junk falling exponentially from ``junk_from`` (the lowest candidate,
    where an acceptance cut puts the junk's edge; the lower range edge when None or below it; ``n_junk``,
    ``slope`` in 1/(mV·µs)) and pile-up of two X-rays (``n_double``, normal at 2·mu, width √2·sigma). Yields are
    events inside the range (each component normalised over it)."""
    lo, hi = float(edges[0]), float(edges[-1])
    out: dict[str, NDArray[np.float64]] = {}
    for name, yld, m, s in (("signal", "n", p["mu"], p["sigma"]),
                            ("double", "n_double", 2 * p["mu"], math.sqrt(2) * p["sigma"])):
        c = ndtr((np.concatenate(([lo, hi], edges)) - m) / s)
        out[name] = p[yld] * np.diff(c[2:]) / max(float(c[1] - c[0]), 1e-300)
    lam = p["slope"]
    j0 = lo if junk_from is None else min(max(float(junk_from), lo), hi)
    c = -np.expm1(-lam * np.maximum(edges - j0, 0.0))
    out["junk"] = p["n_junk"] * np.diff(c) / max(float(-np.expm1(-lam * (hi - j0))), 1e-300)
    return out


def total(parts: dict[str, Any]) -> NDArray[np.float64]:
    """Sum of the component arrays."""
    return np.sum(list(parts.values()), axis=0)


class PairedLattice(RecoilLattice):
    """The recoil mixture for sideband-subtracted areas ``D = A − A_sb`` of the same frames (module docstring of
    :mod:`s2lib.stats.estimators`): the frame's pedestal error × length cancels, and what is left of an empty window,
    ``E_w − E_sb`` (white noise of two windows, stray photons), is a narrow peak described by a normal
    distribution centred at ``mu_e`` (0 unless given) of free width ``sigma_e``. The signal frames carry the same difference."""

    def __init__(self, edges: NDArray[np.float64], xray: tuple[float, float] | None) -> None:
        self.edges = edges
        self.lo = float(edges[0])
        self.nb = edges.size - 1
        self.h = float(edges[1] - edges[0]) / SUB
        self.n_cells = self.nb * SUB
        self.xray = xray

    def expected(self, p: dict[str, float]) -> dict[str, NDArray[np.float64]]:
        k0, em = normal_point_masses(p.get("mu_e", 0.0) - self.lo - 0.5 * self.h, p["sigma_e"], self.h)
        self.j_min, self.e_mass = k0, em                      # E on cells k0 .. (centres lo + (k + ½)h)
        self.k_max = max(self.n_cells - self.j_min, 1)
        self.empty_bins = self._to_bins(self.e_mass, self.j_min)
        self.xe = None
        if self.xray is not None:
            kx, xm = normal_point_masses(self.xray[0], self.xray[1], self.h)
            self.xe = (self.j_min + kx, np.convolve(self.e_mass, xm))
        return RecoilLattice.expected(self, p)
