"""The alpha line shape: a Gaussian core plus a low-energy exponential tail, with a closed-form CDF.

A monoenergetic alpha line measured in a silicon detector has a Gaussian core (electronic noise, straggling)
and a low-energy tail (energy lost in the source cover, dead layer and gas). The standard description is a
Gaussian convolved with a one-sided exponential on the low side (Bortels & Collaers, Appl. Radiat. Isot. 38
(1987) 831), mixed with the plain Gaussian:

    f(x) = (1 − η)·G(x; μ, σ) + η·T(x; μ, σ, τ),  T = pdf of μ − (g + e), g ~ N(0, σ²), e ~ Exp(mean τ)

T is the exponentially modified Gaussian mirrored about μ, so its CDF is the survival function of
``scipy.stats.exponnorm`` (K = τ/σ) at μ − x. Both pieces are normalised: ∫f = 1 and the expected counts in a
bin are differences of the CDF (exact binned likelihoods, no midpoint approximation). Units: those of x
(u_SCA in the spectrum fit, MeV in the simulator).
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import exponnorm, norm

__all__ = ["line_pdf", "line_cdf"]


def _tail_shape(sigma: float, tau: float) -> float:
    return max(float(tau), 1e-9) / max(float(sigma), 1e-12)


def line_pdf(x: ArrayLike, mu: float, sigma: float, tau: float, eta: float) -> NDArray[np.float64]:
    """Normalised line density at ``x`` (per unit of x): (1−η)·N(μ, σ) + η·(μ − [N(0, σ) + Exp(τ)])."""
    x = np.asarray(x, dtype=np.float64)
    core = norm.pdf(x, mu, sigma)
    tail = exponnorm.pdf(mu - x, _tail_shape(sigma, tau), 0.0, sigma)
    return (1.0 - eta) * core + eta * tail


def line_cdf(x: ArrayLike, mu: float, sigma: float, tau: float, eta: float) -> NDArray[np.float64]:
    """CDF of ``line_pdf``: (1−η)·Φ((x−μ)/σ) + η·S_EMG(μ − x), S_EMG the exponnorm survival function."""
    x = np.asarray(x, dtype=np.float64)
    core = norm.cdf(x, mu, sigma)
    tail = exponnorm.sf(mu - x, _tail_shape(sigma, tau), 0.0, sigma)
    return (1.0 - eta) * core + eta * tail
