"""Energy calibration of the alpha spectrum, isotope windows with expected purity/efficiency, frame tagging.

Calibration: the fitted peak positions μ_i ± δμ_i (u_SCA, ``spectrum.SpectrumFit``) against the reference
energies E_i (MeV, ``isotopes.reference_energy_MeV``, convention stated) by weighted least squares,
E = Σ_k c_k μ^k (order 1 or 2), with effective-variance weights w_i = 1/(E'(μ_i)·δμ_i)² (iterated twice;
Orear, Am. J. Phys. 50 (1982) 912). Parameter errors are the 1σ covariance (AᵀWA)⁻¹ — not scaled by χ²/ndof,
which is reported separately; residuals are E_i − E(μ_i) in keV with their pulls.

Windows are declared in ONE space, u_SCA (the space of the per-frame values: the lab's defect D1 was comparing
MeV windows to u_SCA values). Between neighbouring peaks the boundary is where the rate-weighted line shapes
cross, N_i f_i(x) = N_j f_j(x) (Bayes boundary, root of the difference between the two positions, every pair);
the outer edges are ``n_sigma``·σ below the lowest line of the first isotope and above the last peak. Windows
given in the configuration (``multi_isotope.isotope_ranges``, u_SCA, the lab's YAML ranges) replace them. The
expected efficiency of window w for isotope i is ∫_w f_i, its purity N_i∫_w f_i / (Σ_j N_j∫_w f_j + c·|w|).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from .spectrum import SpectrumFit

__all__ = ["Calibration", "calibrate", "Windows", "windows_from_fit", "windows_from_ranges", "window_quality",
           "tag_frames", "REASON_OK", "REASON_FLAGGED", "REASON_OUTSIDE", "REASON_MISSING", "REASON_NAMES"]

REASON_OK, REASON_FLAGGED, REASON_OUTSIDE, REASON_MISSING = 0, 1, 2, 3
REASON_NAMES = {REASON_OK: "tagged", REASON_FLAGGED: "estimator flag", REASON_OUTSIDE: "outside every window",
                REASON_MISSING: "no alpha value"}


@dataclass(frozen=True)
class Calibration:
    """E(MeV) = Σ_k coef[k]·u^k, u in u_SCA. ``cov``: 1σ covariance of coef; ``residuals_keV`` = E_ref − E(μ);
    ``pulls`` = residual / its error (E'·δμ); ``chi2``/``ndof``; ``names``, ``mu``, ``ref_MeV`` the anchors."""

    order: int
    coef: NDArray[np.float64]
    cov: NDArray[np.float64]
    names: tuple[str, ...]
    mu: NDArray[np.float64]
    ref_MeV: NDArray[np.float64]
    residuals_keV: NDArray[np.float64]
    pulls: NDArray[np.float64]
    chi2: float
    ndof: int
    convention: str

    def energy_MeV(self, sca: ArrayLike) -> NDArray[np.float64]:
        """Calibrated energy (MeV) of SCA values."""
        u = np.asarray(sca, dtype=np.float64)
        return sum(c * u ** k for k, c in enumerate(self.coef))

    def energy_err_MeV(self, sca: ArrayLike) -> NDArray[np.float64]:
        """1σ error of ``energy_MeV`` from the coefficient covariance (δμ of the point itself not included)."""
        u = np.atleast_1d(np.asarray(sca, dtype=np.float64))
        a = np.vander(u, self.order + 1, increasing=True)
        return np.sqrt(np.einsum("ij,jk,ik->i", a, self.cov, a))

    def slope(self, sca: ArrayLike) -> NDArray[np.float64]:
        """dE/du, MeV per u_SCA."""
        u = np.asarray(sca, dtype=np.float64)
        return sum(k * c * u ** (k - 1) for k, c in enumerate(self.coef) if k)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record (units: MeV, u_SCA, keV for residuals)."""
        return {"order": self.order, "coef_MeV_per_sca_power": self.coef.tolist(), "cov": self.cov.tolist(),
                "anchors": list(self.names), "mu_sca": self.mu.tolist(), "ref_MeV": self.ref_MeV.tolist(),
                "residuals_keV": self.residuals_keV.tolist(), "pulls": self.pulls.tolist(), "chi2": self.chi2,
                "ndof": self.ndof, "convention": self.convention}


def calibrate(fit: SpectrumFit, order: int = 1, anchors: tuple[str, ...] | None = None) -> Calibration:
    """Weighted polynomial calibration E(u) of order 1 or 2 from a spectrum fit (see module docstring).

    Raises ValueError when fewer than order + 1 anchors are available."""
    names = tuple(n for n in fit.names if anchors is None or n in anchors)
    idx = [fit.names.index(n) for n in names]
    mu, dmu, ref = fit.mu[idx], fit.mu_err[idx], fit.ref_MeV[idx]
    if order not in (1, 2) or len(names) < order + 1:
        raise ValueError(f"calibration of order {order} needs order 1 or 2 and at least {order + 1} anchors; "
                         f"have {len(names)}")
    a = np.vander(mu, order + 1, increasing=True)
    coef = np.polyfit(mu, ref, order)[::-1]
    for _ in range(3):
        slope = sum(k * c * mu ** (k - 1) for k, c in enumerate(coef) if k)
        sig = np.maximum(np.abs(slope) * dmu, 1e-12)
        w = 1.0 / sig ** 2
        cov = np.linalg.inv(a.T @ (a * w[:, None]))
        coef = cov @ (a.T @ (w * ref))
    pred = a @ coef
    res = ref - pred
    chi2 = float(np.sum(res ** 2 * w))
    return Calibration(order, coef, cov, names, mu, ref, res * 1e3, res / sig, chi2, len(names) - order - 1,
                       fit.convention)


@dataclass(frozen=True)
class Windows:
    """Isotope windows in u_SCA: ``names[i]`` owns [low[i], high[i]) (no overlaps); ``source`` "fit" or
    "configuration"; ``space`` is always "sca"."""

    names: tuple[str, ...]
    low: NDArray[np.float64]
    high: NDArray[np.float64]
    source: str
    space: str = "sca"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record."""
        return {"space": self.space, "unit": "u_SCA", "source": self.source, "names": list(self.names),
                "windows": {n: [float(lo), float(hi)] for n, lo, hi in zip(self.names, self.low, self.high)}}


def _crossing(fit: SpectrumFit, a: str, b: str) -> float:
    i, j = fit.names.index(a), fit.names.index(b)
    na, nb = fit.counts[i], fit.counts[j]

    def diff(x: float) -> float:
        return float(na * fit.component_pdf(a, x) - nb * fit.component_pdf(b, x))

    lo, hi = fit.mu[i], fit.mu[j]
    if diff(lo) > 0 > diff(hi):
        return float(brentq(diff, lo, hi, xtol=1e-6))
    grid = np.linspace(lo, hi, 2001)   # no single sign change: the least-overlap point between the peaks
    vals = na * fit.component_pdf(a, grid) + nb * fit.component_pdf(b, grid)
    return float(grid[np.argmin(vals)])


def windows_from_fit(fit: SpectrumFit, n_sigma: float = 2.0) -> Windows:
    """Windows at the rate-weighted crossings of neighbouring peaks; outer edges ``n_sigma``·σ outside."""
    names = fit.names
    bounds = [_crossing(fit, names[k], names[k + 1]) for k in range(len(names) - 1)]
    first_lines = fit._lines(0)
    low0 = min(pos for pos, _ in first_lines) - n_sigma * fit.sigma
    high_last = fit.mu[-1] + n_sigma * fit.sigma
    return Windows(names, np.array([low0, *bounds]), np.array([*bounds, high_last]), "fit")


def windows_from_ranges(ranges: Mapping[str, tuple[float, float]] | Any) -> Windows:
    """Windows from configured ranges (u_SCA), name → [low, high]; ValueError when two overlap."""
    items = list(ranges.items()) if isinstance(ranges, Mapping) else [(n, (lo, hi)) for n, lo, hi in ranges]
    items.sort(key=lambda kv: kv[1][0])
    for (n1, (l1, h1)), (n2, (l2, h2)) in zip(items, items[1:]):
        if l2 < h1:
            raise ValueError(f"multi_isotope.isotope_ranges: {n1} [{l1}, {h1}] and {n2} [{l2}, {h2}] overlap (u_SCA)")
    return Windows(tuple(n for n, _ in items), np.array([r[0] for _, r in items], float),
                   np.array([r[1] for _, r in items], float), "configuration")


def window_quality(fit: SpectrumFit, windows: Windows) -> dict[str, dict[str, float]]:
    """Expected efficiency and purity of every window under the fitted model (module docstring); isotopes of the
    window list that the fit does not know get NaN."""
    out: dict[str, dict[str, float]] = {}
    for name, lo, hi in zip(windows.names, windows.low, windows.high):
        inside = {n: float(fit.counts[i] * np.diff(fit.component_cdf(n, np.array([lo, hi])))[0])
                  for i, n in enumerate(fit.names)}
        total = sum(inside.values()) + fit.background * (hi - lo)
        if name in fit.names:
            eff = inside[name] / fit.counts[fit.names.index(name)]
            pur = inside[name] / total if total > 0 else float("nan")
        else:
            eff = pur = float("nan")
        out[name] = {"efficiency": float(eff), "purity": float(pur), "low_sca": float(lo), "high_sca": float(hi)}
    return out


def tag_frames(sca: ArrayLike, flags: ArrayLike, windows: Windows) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Label each frame: (isotope index into ``windows.names`` or −1, reason code ``REASON_NAMES``).

    A frame with any estimator flag (``amplitude.FLAG_NAMES``) or a non-finite value is not tagged; a frame is
    tagged when low ≤ u < high of a window."""
    u = np.asarray(sca, dtype=np.float64)
    f = np.asarray(flags)
    label = np.full(u.shape, -1, dtype=np.int64)
    reason = np.full(u.shape, REASON_OUTSIDE, dtype=np.int64)
    for i, (lo, hi) in enumerate(zip(windows.low, windows.high)):
        label[(u >= lo) & (u < hi)] = i
    reason[label >= 0] = REASON_OK
    bad_flag = f != 0
    missing = ~np.isfinite(u)
    label[bad_flag | missing] = -1
    reason[bad_flag] = REASON_FLAGGED
    reason[missing] = REASON_MISSING
    return label, reason
