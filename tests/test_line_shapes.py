"""Line shapes of s2lib.stats._fit_models against independent references.

The Gaussian against ``scipy.stats.norm``; the right-tailed Crystal Ball against ``scipy.stats.crystalball``
mirrored (scipy's tail is on the left: X = −Y), its truncated means against numerical integration with
``scipy.integrate.quad`` of that reference density. Nothing here is computed with the module under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from s2lib.stats import _fit_models as fm

CB_CASES = [(2.0, 0.5, 1.0, 2.0), (1.5, 0.3, 0.5, 3.0), (0.0, 1.0, 2.0, 1.5), (5.0, 0.8, 1.2, 50.0)]
"""(x0, σ, β, m): the lab's β ≈ 1, m ≈ 2; a short core; a heavy tail with m < 2; a nearly Gaussian m = 50."""


def _ref(x0: float, sigma: float, beta: float, m: float):
    return stats.crystalball(beta, m, loc=-x0, scale=sigma)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (2.0, 0.5), (-1.0, 3.0)])
def test_gauss_against_scipy(mu: float, sigma: float) -> None:
    x = np.linspace(mu - 6 * sigma, mu + 6 * sigma, 25)
    np.testing.assert_allclose(fm.gauss_pdf(x, mu, sigma), stats.norm.pdf(x, mu, sigma), rtol=1e-12)
    np.testing.assert_allclose(fm.gauss_cdf(x, mu, sigma), stats.norm.cdf(x, mu, sigma), rtol=1e-12, atol=1e-300)
    assert fm.gauss_cdf(mu, mu, sigma) == 0.5


@pytest.mark.parametrize("x0, sigma, beta, m", CB_CASES)
def test_crystalball_pdf_and_cdf_against_mirrored_scipy(x0: float, sigma: float, beta: float, m: float) -> None:
    ref = _ref(x0, sigma, beta, m)
    x = np.r_[np.linspace(x0 - 5 * sigma, x0 + 30 * sigma, 71), x0 + beta * sigma]  # includes the joint z = β
    np.testing.assert_allclose(fm.crystalball_pdf(x, x0, sigma, beta, m), ref.pdf(-x), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(fm.crystalball_cdf(x, x0, sigma, beta, m), ref.sf(-x), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("x0, sigma, beta, m", [c for c in CB_CASES if c[3] > 2.0])
def test_crystalball_full_mean_against_scipy(x0: float, sigma: float, beta: float, m: float) -> None:
    assert fm.crystalball_mean(x0, sigma, beta, m) == pytest.approx(-_ref(x0, sigma, beta, m).mean(), rel=1e-9)


def test_crystalball_mean_without_tail_moment_is_nan() -> None:
    assert math.isnan(fm.crystalball_mean(2.0, 0.5, 1.0, 2.0))   # m = 2: ∫ x·x^(−2) diverges
    assert math.isnan(fm.crystalball_mean(2.0, 0.5, 1.0, 1.5))
    assert math.isnan(fm.crystalball_mean(2.0, 0.5, 1.0, 3.0, lo=1.0, hi=1.0))  # no mass in the range


RANGES = [(-np.inf, 4.0), (0.5, 6.0), (1.0, np.inf), (2.2, 2.4), (-np.inf, 30.0)]
# an open upper range has a mean only for m > 2 (the m <= 2 NaN is checked above)
TRUNCATED = [(*c, lo, hi) for c in CB_CASES for lo, hi in RANGES if not (math.isinf(hi) and c[3] <= 2.0)]


@pytest.mark.parametrize("x0, sigma, beta, m, lo, hi", TRUNCATED)
def test_crystalball_truncated_mean_against_quadrature(x0: float, sigma: float, beta: float, m: float, lo: float,
                                                       hi: float) -> None:
    ref = _ref(x0, sigma, beta, m)
    a = max(lo, x0 - 40 * sigma)
    kink = [x0 + beta * sigma] if a < x0 + beta * sigma < hi else None
    num = integrate.quad(lambda t: t * ref.pdf(-t), a, hi, points=kink if not math.isinf(hi) else None,
                         limit=400, epsabs=1e-13, epsrel=1e-11)[0]
    den = integrate.quad(lambda t: ref.pdf(-t), a, hi, points=kink if not math.isinf(hi) else None,
                         limit=400, epsabs=1e-13, epsrel=1e-11)[0]
    assert fm.crystalball_mean(x0, sigma, beta, m, lo=lo, hi=hi) == pytest.approx(num / den, rel=1e-7, abs=1e-9)


def test_robust_upper_edge_by_hand() -> None:
    # 19 values evenly in [1, 2] plus one at the upper cut 10 (kept: the cut is inclusive)
    x = np.r_[np.linspace(1.0, 2.0, 19), 10.0, 11.0]
    inside = x[x <= 10.0]
    med = float(np.median(inside))                          # (1.5 + 1.5556)/2 = 1.52778
    spread = 1.4826 * float(np.median(np.abs(inside - med)))
    new_hi = med + 4.0 * spread
    nbins = int(round(new_hi / 0.1))
    assert fm.robust_upper_edge(x, (0.0, 10.0), 0.1, 4.0, 20) == (pytest.approx(nbins * 0.1), nbins)
    assert fm.robust_upper_edge(x, (0.0, 10.0), 0.1, 4.0, 21) is None      # 20 values inside < 21
    assert fm.robust_upper_edge(x, (0.0, 10.0), 0.1, 1000.0, 5) is None    # would not lower the edge
    assert fm.robust_upper_edge(x, (0.0, 10.0), 1.0, 4.0, 5) is None       # fewer than 10 bins left
    assert fm.robust_upper_edge(np.full(30, 2.0), (0.0, 10.0), 0.1, 4.0, 5) is None  # zero spread
