"""Toy Monte Carlo of the recoil and X-ray estimators (:mod:`s2lib.stats.estimators`): coverage, bias, pull width.

A toy set draws per frame what the simulator and the lab's data hold, without waveforms:

* recoil S2: electrons ``N_e ~ mean_e · Gamma(1/cv², cv²)`` (per-event recombination fluctuations, σ/μ = cv),
  photoelectrons ``Poisson(N_e·pe_per_e)``, area = sum of SPE areas (Gamma, mean ``spe_area``, σ/μ
  ``spe_cv``), so the peak is a compound, skewed distribution whose mean is ``mean``;
* the empty-window area ``E`` of every frame: the pedestal error × window length (shared by the window and the
  sideband of a frame, as in the data), white noise summed over the window, stray photoelectrons;
* a fraction ``empty`` of frames without recoil S2 (area E), a fraction ``pileup`` of the recoil frames with an
  X-ray S2 inside the window (+ an X-ray area);
* X-ray sets: the X-ray peak (≈ 560 electrons, Fano 0.15, photon statistics) plus ``junk`` low-area clusters
  (exponential above the acceptance cut) and ``double`` pile-up of two X-rays.

The truth of a toy is the *population* mean ``mean`` of the recoil S2 (or X-ray) areas: the estimators
estimate it, and their errors include the sampling fluctuation of the set (a comparison with the realised
sample mean, ``sample_mean``, as in ``truth.json``'s ``recoil_sample_mean_area_mV_us``, is conservative). :func:`coverage` runs many toys and returns the fraction
of 95 % intervals covering the truth, the mean relative bias, and the width of the pulls.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .estimators import fit_recoil, fit_xray
from .fitting import Z95

__all__ = ["RecoilToy", "XrayToy", "draw_recoil", "draw_xray", "coverage"]


@dataclass(frozen=True)
class RecoilToy:
    """Shape of a toy recoil set. Areas mV·µs."""

    mean: float = 2.0              # mean recoil S2 area
    cv: float = 0.25               # σ/μ of the electron count (recombination fluctuations)
    n_frames: int = 1000
    empty: float = 0.05            # fraction of frames without recoil S2
    pileup: float = 0.0            # fraction of recoil frames with an X-ray S2 in the window
    xray_mean: float = 2.0         # X-ray area added to pile-up frames
    xray_cv: float = 0.1
    spe_area: float = 0.02         # mean SPE area [simulator default]
    spe_cv: float = 0.35
    pe_per_e: float = 0.18         # photoelectrons per electron (sets the photon statistics)
    ped_sigma: float = 0.15        # σ of the pedestal error × window length (n_pedestal 100, 4 µs window)
    noise_sigma: float = 0.02      # σ of the white noise summed over the window
    stray_mean: float = 0.2        # stray photoelectrons per window


@dataclass(frozen=True)
class XrayToy:
    """Shape of a toy X-ray set. Areas mV·µs."""

    mean: float = 2.0
    n: int = 300
    cv: float = 0.11               # σ/μ of the X-ray peak (photon statistics ≈ 100 pe, Fano 0.15)
    junk: float = 0.1              # fraction of low-area clusters
    junk_lo: float = 0.5           # acceptance cut (min_xray_area)
    junk_scale: float = 0.3        # e-folding of the junk areas above the cut
    double: float = 0.01           # fraction of two-X-ray pile-up
    noise_sigma: float = 0.1


def _empty_window(rng: np.random.Generator, t: RecoilToy, ped_err: NDArray[np.float64]) -> NDArray[np.float64]:
    n = ped_err.size
    stray = rng.poisson(t.stray_mean, n)
    return ped_err + rng.normal(0.0, t.noise_sigma, n) + _pe_areas(rng, stray, t.spe_area, t.spe_cv)


def _pe_areas(rng: np.random.Generator, n_pe: NDArray[np.int64], spe: float, cv: float) -> NDArray[np.float64]:
    """Sum of ``n_pe`` gamma SPE areas (a gamma of shape n_pe/cv²), 0 for n_pe = 0."""
    out = np.zeros(n_pe.size)
    k = n_pe > 0
    out[k] = rng.gamma(n_pe[k] / cv ** 2, spe * cv ** 2)
    return out


def draw_recoil(rng: np.random.Generator, t: RecoilToy) -> dict[str, Any]:
    """One toy recoil set: ``areas`` (window), ``sideband``, ``truth`` (population mean), ``sample_mean``,
    ``xray`` ((mean, σ) of the X-ray area) ."""
    n = t.n_frames
    ped_err = rng.normal(0.0, t.ped_sigma, n)
    is_sig = rng.random(n) >= t.empty
    n_sig = int(is_sig.sum())
    mean_e = t.mean / (t.spe_area * t.pe_per_e)
    n_e = mean_e * (rng.gamma(1 / t.cv ** 2, t.cv ** 2, n_sig) if t.cv > 0 else np.ones(n_sig))
    s2 = _pe_areas(rng, rng.poisson(n_e * t.pe_per_e), t.spe_area, t.spe_cv)
    areas = _empty_window(rng, t, ped_err)
    areas[is_sig] += s2
    pu = np.flatnonzero(is_sig)[rng.random(n_sig) < t.pileup]
    areas[pu] += t.xray_mean * (1 + t.xray_cv * rng.standard_normal(pu.size))
    sideband = _empty_window(rng, t, ped_err)
    return {"areas": areas, "sideband": sideband, "truth": t.mean,
            "sample_mean": float(s2.mean()) if n_sig else math.nan, "n_signal": n_sig, "xray": (t.xray_mean, t.xray_mean * t.xray_cv)}


def draw_xray(rng: np.random.Generator, t: XrayToy) -> dict[str, Any]:
    """One toy set of accepted X-ray areas: ``areas``, ``truth`` (the population mean) and ``sample_mean``."""
    kind = rng.choice(3, size=t.n, p=[1 - t.junk - t.double, t.junk, t.double])
    peak = t.mean * (1 + t.cv * rng.standard_normal(t.n)) + rng.normal(0, t.noise_sigma, t.n)
    areas = np.where(kind == 0, peak, 0.0)
    areas[kind == 1] = t.junk_lo + rng.exponential(t.junk_scale, int((kind == 1).sum()))
    areas[kind == 2] = peak[kind == 2] + t.mean * (1 + t.cv * rng.standard_normal(int((kind == 2).sum())))
    return {"areas": areas, "truth": t.mean, "sample_mean": float(peak[kind == 0].mean())}


def coverage(kind: str, n_toys: int = 200, seed: int = 0, *, use_xray: bool = True, **shape: Any) -> dict[str, Any]:
    """Run ``n_toys`` toys of the ``"recoil"`` or ``"xray"`` estimator with the default configuration.

    Args:
        kind: ``"recoil"`` (:class:`RecoilToy` fields as ``shape``) or ``"xray"`` (:class:`XrayToy`).
        n_toys: toys; seed: random seed.
        use_xray: recoil only: pass the X-ray (mean, σ) for the pile-up component, as the pipeline does.

    Returns:
        ``{"shape", "n_toys", "n_ok", "n_poor", "n_failed", "coverage95", "coverage_err", "bias_rel",
        "bias_rel_err", "pull_mean", "pull_width", "pull_width_err", "err_over_spread"}``: coverage = fraction
        of the fits with a finite error whose ``mean ± ci95`` contains the toy's truth (its binomial error),
        bias = mean of (estimate − truth)/truth, pull = (estimate − truth)/mean_err; ``err_over_spread`` = median
        reported error / standard deviation of the estimates (the typical error: a few toys of a small set
        with a large error do not hide a typical one that is wrong; ``mean_err_over_spread`` uses the mean).
    """
    rng = np.random.default_rng(seed)
    if kind == "recoil":
        t: Any = RecoilToy(**shape)
    elif kind == "xray":
        t = XrayToy(**shape)
    else:
        raise ValueError(f"kind must be 'recoil' or 'xray', got {kind!r}")
    est, err, truth, quality = [], [], [], []
    for _ in range(n_toys):
        if kind == "recoil":
            d = draw_recoil(rng, t)
            r = fit_recoil(d["areas"], d["sideband"], xray=d["xray"] if use_xray else None)
        else:
            d = draw_xray(rng, t)
            r = fit_xray(d["areas"])
        est.append(r.mean)
        err.append(r.mean_err)
        truth.append(d["truth"])
        quality.append(r.details.get("quality", "failed"))
    e, s, tr = np.array(est), np.array(err), np.array(truth)
    q = np.array(quality)
    ok = np.isfinite(s) & np.isfinite(e) & (q != "failed")
    d_abs = e[ok] - tr[ok]
    pulls = d_abs / s[ok]
    cover = float(np.mean(np.abs(d_abs) <= Z95 * s[ok])) if ok.any() else math.nan
    n_ok = int(ok.sum())
    pw = float(np.std(pulls, ddof=1)) if n_ok > 1 else math.nan
    spread = float(np.std(d_abs, ddof=1)) if n_ok > 1 else math.nan
    return {"shape": asdict(t), "kind": kind, "n_toys": n_toys, "n_ok": int(np.sum(q == "ok")),
            "n_poor": int(np.sum(q == "poor")), "n_failed": int(np.sum(q == "failed")),
            "coverage95": cover, "coverage_err": math.sqrt(max(cover * (1 - cover), 1e-12) / max(n_ok, 1)),
            "bias_rel": float(np.mean(d_abs / tr[ok])) if n_ok else math.nan,
            "bias_rel_err": float(np.std(d_abs / tr[ok], ddof=1) / math.sqrt(n_ok)) if n_ok > 1 else math.nan,
            "pull_mean": float(np.mean(pulls)) if n_ok else math.nan, "pull_width": pw,
            "pull_width_err": pw / math.sqrt(2 * (n_ok - 1)) if n_ok > 1 else math.nan,
            "err_over_spread": float(np.median(s[ok]) / spread) if n_ok > 1 and spread > 0 else math.nan,
            "mean_err_over_spread": float(np.mean(s[ok]) / spread) if n_ok > 1 and spread > 0 else math.nan}
