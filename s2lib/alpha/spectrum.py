"""Binned Poisson likelihood fit of the alpha spectrum (u_SCA): all peaks at once, one shared line shape.

Model (expected counts in bin [a, b], units u_SCA):

    ν = Σ_i N_i Σ_l w_il [F(b; μ_i − s·ΔE_il) − F(a; μ_i − s·ΔE_il)] + c·(b − a)

F = ``lineshape.line_cdf`` with a shared σ, τ, η (one detector); i runs over the isotopes, l over each
isotope's alpha lines (``isotopes.ISOTOPES``: intensity w_il normalised per isotope, ΔE_il = E_main − E_l in
MeV); s (u_SCA per MeV) is the weighted least-squares slope of the current peak positions μ_i against their
reference energies, so satellites move with the gain without extra parameters; c is a flat background
(counts per u_SCA). The cost is the Baker–Cousins Poisson deviance (``s2lib.stats.fitting.poisson_deviance``) minimised
with iminuit (errordef 1: errors are 1σ, 68.3 % for one parameter, from the Hessian). μ_i is the position of the
main line's Gaussian core, i.e. of its alpha (or Q) energy, which the calibration uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from iminuit import Minuit
from numpy.typing import ArrayLike, NDArray

from s2lib.stats.fitting import poisson_deviance
from .isotopes import CHAIN, ISOTOPES, reference_energy_MeV
from .lineshape import line_cdf, line_pdf

__all__ = ["LAB_INITIAL_SCA", "SpectrumFit", "fit_alpha_spectrum", "gain_sca_per_MeV"]

LAB_INITIAL_SCA = {"Th228": 4.5, "Ra224": 4.8, "Rn220": 5.4, "Po216": 5.9, "Po212": 7.5, "Bi212": 5.2}
"""Typical peak positions in u_SCA of the lab's detector (ALPHA_PEAK_DEFINITIONS, notes/alpha.md 2.3): start
values only; each is refined to the highest histogram bin near it."""


def gain_sca_per_MeV(mu: ArrayLike, energies_MeV: ArrayLike) -> float:
    """Least-squares slope of peak positions (u_SCA) against energies (MeV); 1.0 with fewer than 2 peaks."""
    m, e = np.asarray(mu, float), np.asarray(energies_MeV, float)
    if m.size < 2:
        return 1.0
    ec = e - e.mean()
    return float(np.sum(ec * (m - m.mean())) / np.sum(ec * ec))


@dataclass(frozen=True)
class SpectrumFit:
    """Result of ``fit_alpha_spectrum``.

    Attributes:
        names: isotopes fitted (ascending position);  ref_MeV: their reference energies (``convention``).
        mu, mu_err: main-line positions and 1σ errors, u_SCA;  counts, counts_err: N_i (events, all lines).
        sigma, tau, eta (and ``_err``): shared core width, tail length (u_SCA) and tail fraction.
        background: flat background, counts per u_SCA;  gain: s, u_SCA per MeV (satellite placement).
        edges, hist: the histogram fitted;  deviance, ndof: Baker–Cousins χ² at the minimum and its dof.
        valid: Minuit's validity;  convention: reference convention;  covariance: parameter covariance.
    """

    names: tuple[str, ...]
    ref_MeV: NDArray[np.float64]
    mu: NDArray[np.float64]
    mu_err: NDArray[np.float64]
    counts: NDArray[np.float64]
    counts_err: NDArray[np.float64]
    sigma: float
    sigma_err: float
    tau: float
    tau_err: float
    eta: float
    eta_err: float
    background: float
    gain: float
    edges: NDArray[np.float64]
    hist: NDArray[np.int64]
    deviance: float
    ndof: int
    valid: bool
    convention: str
    covariance: dict[str, Any] = field(default_factory=dict, repr=False)

    def _lines(self, i: int) -> list[tuple[float, float]]:
        return _line_offsets(self.names[i], self.mu[i], self.gain)

    def component_cdf(self, name: str, x: ArrayLike) -> NDArray[np.float64]:
        """Normalised CDF of one isotope's peak (all its lines) at ``x`` (u_SCA)."""
        i = self.names.index(name)
        return sum(w * line_cdf(x, pos, self.sigma, self.tau, self.eta) for pos, w in self._lines(i))

    def component_pdf(self, name: str, x: ArrayLike) -> NDArray[np.float64]:
        """Normalised density of one isotope's peak at ``x``, per u_SCA."""
        i = self.names.index(name)
        return sum(w * line_pdf(x, pos, self.sigma, self.tau, self.eta) for pos, w in self._lines(i))

    def expected(self, edges: ArrayLike | None = None) -> NDArray[np.float64]:
        """Expected counts per bin of ``edges`` (default the fitted histogram's)."""
        e = self.edges if edges is None else np.asarray(edges, float)
        total = self.background * np.diff(e)
        for i, name in enumerate(self.names):
            total = total + self.counts[i] * np.diff(self.component_cdf(name, e))
        return total

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (units in the key names' documentation above)."""
        return {"names": list(self.names), "ref_MeV": self.ref_MeV.tolist(), "mu_sca": self.mu.tolist(),
                "mu_err_sca": self.mu_err.tolist(), "counts": self.counts.tolist(),
                "counts_err": self.counts_err.tolist(), "sigma_sca": self.sigma, "sigma_err_sca": self.sigma_err,
                "tau_sca": self.tau, "tau_err_sca": self.tau_err, "eta": self.eta, "eta_err": self.eta_err,
                "background_per_sca": self.background, "gain_sca_per_MeV": self.gain, "deviance": self.deviance,
                "ndof": self.ndof, "valid": self.valid, "convention": self.convention,
                "edges_sca": self.edges.tolist(), "hist": self.hist.tolist()}


def _line_offsets(name: str, mu: float, gain: float) -> list[tuple[float, float]]:
    lines = ISOTOPES[name].lines
    w_tot = sum(line.intensity for line in lines)
    main = lines[0].energy_keV
    return [(mu - gain * (main - line.energy_keV) / 1e3, line.intensity / w_tot) for line in lines]


def fit_alpha_spectrum(sca: ArrayLike, *, names: Sequence[str] = CHAIN, convention: str = "alpha",
                       energy_range: tuple[float, float] = (4.0, 8.2), nbins: int = 420,
                       initial: dict[str, float] | None = None) -> SpectrumFit:
    """Fit the alpha peaks of a spectrum of per-frame SCA values.

    Args:
        sca: per-frame values, u_SCA (flagged frames should be left out by the caller; NaN are dropped).
        names: the isotopes present (any of ``isotopes.ISOTOPES``).
        convention: reference energies ("alpha", "q_value", "lab"; ``isotopes.reference_energy_MeV``).
        energy_range: histogram range, u_SCA (the lab's ROI (4, 8.2)).
        nbins: bins (420 = 0.01 u_SCA, several per σ; the lab's fixed 120 bins, 0.035 u_SCA, are coarser).
        initial: start positions, u_SCA (default ``LAB_INITIAL_SCA``).

    Raises:
        ValueError: unknown isotope, empty range, or fewer than 10 events per peak in the range.
    """
    x = np.asarray(sca, dtype=np.float64).reshape(-1)
    x = x[np.isfinite(x)]
    lo, hi = map(float, energy_range)
    if not hi > lo or nbins < 10:
        raise ValueError(f"energy_range {energy_range} / nbins {nbins}: need low < high and at least 10 bins")
    unknown = [n for n in names if n not in ISOTOPES]
    if unknown:
        raise ValueError(f"unknown isotope(s) {unknown}; known: {', '.join(ISOTOPES)}")
    ref = np.array([reference_energy_MeV(n, convention) for n in names])
    order = np.argsort(ref)
    names = tuple(names[i] for i in order)
    ref = ref[order]
    edges = np.linspace(lo, hi, nbins + 1)
    hist, _ = np.histogram(x, bins=edges)
    n_in = int(hist.sum())
    k = len(names)
    if n_in < 10 * k:
        raise ValueError(f"{n_in} events in {energy_range} u_SCA: too few for a {k}-peak fit (need {10 * k})")
    centres = 0.5 * (edges[1:] + edges[:-1])
    start = dict(LAB_INITIAL_SCA, **(initial or {}))
    mu0 = np.array([start[n] for n in names], dtype=float)
    mid = np.concatenate([[lo], 0.5 * (mu0[1:] + mu0[:-1]), [hi]])
    for i in range(k):  # refine to the highest bin near the start value
        sel = (centres > max(mid[i], mu0[i] - 0.2)) & (centres < min(mid[i + 1], mu0[i] + 0.2))
        if np.any(hist[sel] > 0):
            mu0[i] = centres[sel][np.argmax(hist[sel])]
    mid = np.concatenate([[lo], 0.5 * (mu0[1:] + mu0[:-1]), [hi]])
    n0 = [max(float(hist[(centres >= mid[i]) & (centres < mid[i + 1])].sum()), 1.0) for i in range(k)]

    def model(par: NDArray[np.float64]) -> NDArray[np.float64]:
        mu, cnt = par[:k], par[k:2 * k]
        sigma, tau, eta, bkg = par[2 * k:]
        gain = gain_sca_per_MeV(mu, ref)
        total = bkg * np.diff(edges)
        for i, name in enumerate(names):
            for pos, w in _line_offsets(name, mu[i], gain):
                total = total + cnt[i] * w * np.diff(line_cdf(edges, pos, sigma, tau, eta))
        return total

    def cost(par: NDArray[np.float64]) -> float:
        return poisson_deviance(hist, model(np.asarray(par)))

    pnames = [f"mu_{n}" for n in names] + [f"N_{n}" for n in names] + ["sigma", "tau", "eta", "bkg"]
    p0 = [*mu0, *n0, 0.04, 0.05, 0.3, max(0.1, 0.001 * n_in / (hi - lo))]
    m = Minuit(cost, p0, name=pnames)
    m.errordef = Minuit.LEAST_SQUARES
    for i in range(k):
        m.limits[pnames[i]] = (mid[i], mid[i + 1])
        m.limits[pnames[k + i]] = (0.0, 10.0 * n_in)
    m.limits["sigma"] = (0.003, 0.5)
    m.limits["tau"] = (0.002, 1.0)
    m.limits["eta"] = (0.0, 0.99)
    m.limits["bkg"] = (0.0, 10.0 * n_in / (hi - lo))
    m.migrad(ncall=20000)
    m.hesse()
    v = np.asarray(m.values)
    e = np.asarray(m.errors)
    gain = gain_sca_per_MeV(v[:k], ref)
    cov = {"names": pnames, "matrix": np.asarray(m.covariance).tolist()} if m.covariance is not None else {}
    return SpectrumFit(names, ref, v[:k], e[:k], v[k:2 * k], e[k:2 * k], float(v[2 * k]), float(e[2 * k]),
                       float(v[2 * k + 1]), float(e[2 * k + 1]), float(v[2 * k + 2]), float(e[2 * k + 2]),
                       float(v[2 * k + 3]), gain, edges, hist.astype(np.int64), float(m.fval),
                       int(nbins - len(pnames)), bool(m.valid), convention, cov)
