"""Coverage of the reported 95 % interval (mean ± ci95) with toy experiments of known truth.

A correct interval contains the true mean in 95 % of the toys; with a few hundred toys the observed fraction
scatters by about ±1.2–1.5 %, so the test accepts 92–98 %. Failed fits count as *not* covering (nothing is
dropped). Seeds are fixed, so the numbers are reproducible; they are printed (``pytest -s``).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from s2lib.fitting import FitConfig, fit_histogram


def coverage(draw, truth: float, config: FitConfig, n_toys: int, seed: int) -> tuple[float, int, float]:
    rng = np.random.default_rng(seed)
    covered = failed = 0
    pulls = []
    for _ in range(n_toys):
        r = fit_histogram(draw(rng), config)
        if not r.fit_success:
            failed += 1
            continue
        covered += abs(r.mean - truth) <= r.ci95
        pulls.append((r.mean - truth) / r.mean_err)
    return covered / n_toys, failed, float(np.std(pulls))


def test_coverage_gaussian():
    frac, failed, pull_sd = coverage(lambda rng: rng.normal(2.0, 0.8, 1000), 2.0, FitConfig(), 400, seed=2026)
    print(f"\ngauss: coverage of mean ± ci95 = {frac:.3f} over 400 toys, failed {failed}, pull sd {pull_sd:.3f}")
    assert failed == 0
    assert 0.92 <= frac <= 0.98


def test_coverage_gauss_with_background():
    def draw(rng):
        return np.concatenate([rng.normal(1.3, 0.8, 2000), rng.normal(0.25, 0.08, 300)])

    frac, failed, pull_sd = coverage(draw, 1.3, FitConfig(model="gauss_bg"), 250, seed=31)
    print(f"\ngauss_bg: coverage = {frac:.3f} over 250 toys, failed {failed}, pull sd {pull_sd:.3f}")
    assert failed <= 1
    assert 0.92 <= frac <= 0.98


def test_coverage_crystalball_skewed():
    x0, sigma, beta, m = 1.6, 0.5, 1.0, 2.5  # heavy right tail, as recoil S2 areas
    ref = stats.crystalball(beta, m, loc=-x0, scale=sigma)  # scipy's tail is on the left: mirror it

    def pdf(t):
        return ref.pdf(-t)

    kink = x0 + beta * sigma
    truth = (integrate.quad(lambda t: t * pdf(t), 0, 10, points=[kink])[0]
             / integrate.quad(pdf, 0, 10, points=[kink])[0])
    assert truth == pytest.approx(2.0465, abs=1e-3) and not math.isnan(truth)
    frac, failed, pull_sd = coverage(lambda rng: -ref.rvs(size=3000, random_state=rng), truth,
                                     FitConfig(model="crystalball"), 250, seed=77)
    print(f"\ncrystalball: coverage = {frac:.3f} over 250 toys (true mean {truth:.4f}), failed {failed}, "
          f"pull sd {pull_sd:.3f}")
    assert failed <= 1
    assert 0.92 <= frac <= 0.98
