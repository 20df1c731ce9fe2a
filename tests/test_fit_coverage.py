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

from s2lib.stats import toys
from s2lib.stats.fitting import FitConfig, fit_histogram

LAB_RANGE = {"bin_cuts": (0.0, 10.0), "nbins": 100}


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


def test_coverage_gauss_model_with_lab_range():
    frac, failed, pull_sd = coverage(lambda rng: rng.normal(2.0, 0.8, 1000), 2.0,
                                     FitConfig(model="gauss", **LAB_RANGE), 400, seed=2026)
    print(f"\ngauss: coverage of mean ± ci95 = {frac:.3f} over 400 toys, failed {failed}, pull sd {pull_sd:.3f}")
    assert failed <= 2         # p < 1e-3 "poor fits" happen in 0.1 % of correct fits
    assert 0.92 <= frac <= 0.98


def test_coverage_gauss_bg_model_with_lab_range():
    def draw(rng):
        return np.concatenate([rng.normal(1.3, 0.8, 2000), rng.normal(0.25, 0.08, 300)])

    frac, failed, pull_sd = coverage(draw, 1.3, FitConfig(model="gauss_bg", **LAB_RANGE), 250, seed=31)
    print(f"\ngauss_bg: coverage = {frac:.3f} over 250 toys, failed {failed}, pull sd {pull_sd:.3f}")
    assert failed <= 1
    assert 0.92 <= frac <= 0.98


def test_coverage_crystalball_model_with_fixed_range_skewed():
    x0, sigma, beta, m = 1.6, 0.5, 1.0, 4.0  # right tail, ≈ 0.1 % beyond the upper edge of 20
    ref = stats.crystalball(beta, m, loc=-x0, scale=sigma)  # scipy's tail is on the left: mirror it

    def pdf(t):
        return ref.pdf(-t)

    kink = x0 + beta * sigma
    truth = (integrate.quad(lambda t: t * pdf(t), 0, 20, points=[kink])[0]
             / integrate.quad(pdf, 0, 20, points=[kink])[0])
    assert 1.8 < truth < 2.0 and not math.isnan(truth)
    frac, failed, pull_sd = coverage(lambda rng: -ref.rvs(size=3000, random_state=rng), truth,
                                     FitConfig(model="crystalball", bin_cuts=(0.0, 20.0), nbins=200), 250,
                                     seed=77)
    print(f"\ncrystalball: coverage = {frac:.3f} over 250 toys (true mean {truth:.4f}), failed {failed}, "
          f"pull sd {pull_sd:.3f}")
    assert failed <= 1
    assert 0.92 <= frac <= 0.98


# ------------------------------------------------------------------ the default estimators (s2lib.stats.estimators)
# 200 toys each: the 95 % coverage is then known to ±1.5 %, the pull width and the error-vs-spread ratio to
# ±5 % (1/√(2·199)); bounds: coverage 92-98 %, pull width 0.8-1.25, typical (median) reported error within
# 10 % of the toy spread, relative bias within max(3 %, 3 standard errors of the bias). The truth is the population mean of the
# toy's recoil (X-ray) S2 areas (s2lib.stats.toys). Larger sets (100 000 frames, 50 mV·µs) run in `s2book validate`.

RECOIL_CASES = {
    "small_peak_20pct_empty": dict(mean=0.3, cv=0.25, n_frames=1000, empty=0.2),
    "skewed_pileup": dict(mean=2.0, cv=0.25, n_frames=1000, empty=0.05, pileup=0.03, xray_mean=2.0),
    "large_peak_10k": dict(mean=40.0, cv=0.1, n_frames=10000, empty=0.1, pileup=0.02, xray_mean=15.0),
    "100_frames_no_skew": dict(mean=1.0, cv=0.0, n_frames=100, empty=0.0),
}
XRAY_CASES = {
    "default_shape": dict(),
    "single_photon_junk": dict(n=400, junk=0.8, junk_lo=0.0, junk_scale=0.03),
}


#: Cases where the reported error is known to exceed the toy spread: with an X-ray area equal to the recoil
#: mean, the pile-up fraction p_pileup explains part of the recoil tail; the estimate then follows the sample
#: mean less closely than σ/√N (a more robust, slightly trimmed mean: its spread is smaller) while HESSE quotes
#: the model error. Measured error/spread 1.12 (200 toys): conservative, coverage 95 %.
CONSERVATIVE = {"skewed_pileup": 1.25}


def _check(c: dict, max_ratio: float = 1.1) -> None:
    print(f"\n{c['kind']} {c['shape']}: coverage {c['coverage95']:.3f} ± {c['coverage_err']:.3f}, bias "
          f"{100 * c['bias_rel']:+.2f} ± {100 * c['bias_rel_err']:.2f} %, pull width {c['pull_width']:.3f}, "
          f"error/spread {c['err_over_spread']:.3f} (mean {c['mean_err_over_spread']:.3f}), ok/poor/failed {c['n_ok']}/{c['n_poor']}/{c['n_failed']}")
    assert c["n_failed"] <= 0.02 * c["n_toys"]
    assert 0.92 <= c["coverage95"] <= 0.98
    assert 0.8 <= c["pull_width"] <= 1.25
    assert 0.9 <= c["err_over_spread"] <= max_ratio
    assert abs(c["bias_rel"]) <= max(0.03, 3 * c["bias_rel_err"])


#: Known shortfall, kept visible (strict: the test fails as soon as the case passes, so the mark is removed):
#: a 0.3 mV·µs peak (≈ 15 photoelectrons) with 20 % empty windows has a +0.8 ± 0.1 % bias, 95 % coverage
#: 0.915 ± 0.020 (pull width 1.01). Far inside the 3 % tolerance on the mean, but the interval under-covers.
KNOWN_SHORT = {"small_peak_20pct_empty": "bias +0.8 % at 15 photoelectrons: coverage 0.915 (seed 8)"}


#: (estimator, seed, shapes) of the two parametrised tests below.
ESTIMATOR_CASES = {"recoil": (8, RECOIL_CASES), "xray": (9, XRAY_CASES)}


@pytest.fixture(scope="module")
def estimator_coverage(request: pytest.FixtureRequest):
    """``{(kind, case): Future}`` of the toy studies of the selected estimator tests, run two at a time.

    The cases are independent (each has its own seeded generator), so running them in parallel processes gives
    exactly the numbers of a sequential run; with the 2 cores of the test machines it halves the ~3 minutes
    these 1 200 fits take. Only the cases of the collected tests are submitted (``-k`` runs one), the costliest
    (the recoil cases, ~4x an X-ray case) first.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    wanted = []
    for item in request.session.items:
        spec = getattr(item, "callspec", None)
        kind = item.name.removeprefix("test_coverage_default_").split("_estimator")[0]
        if item.module is request.module and spec is not None and kind in ESTIMATOR_CASES:
            wanted.append((kind, spec.params["case"]))
    wanted.sort(key=lambda kc: kc[0] != "recoil")
    # fresh interpreters (spawn): a fork of the test process could inherit a lock held by a thread of an earlier test
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield {(kind, case): pool.submit(toys.coverage, kind, 200, seed=ESTIMATOR_CASES[kind][0],
                                         **ESTIMATOR_CASES[kind][1][case]) for kind, case in wanted}


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_SHORT[c]))
                                  if c in KNOWN_SHORT else c for c in sorted(RECOIL_CASES)])
def test_coverage_default_recoil_estimator(case, estimator_coverage):
    _check(estimator_coverage[("recoil", case)].result(), CONSERVATIVE.get(case, 1.1))


@pytest.mark.parametrize("case", sorted(XRAY_CASES))
def test_coverage_default_xray_estimator(case, estimator_coverage):
    _check(estimator_coverage[("xray", case)].result())
