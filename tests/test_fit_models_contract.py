"""The documented contracts of s2lib.stats._fit_models' fit helpers, with hand-made inputs of known answer.

Starting values and limits (``start_and_limits``), the alternative starts tried when a fit is not clean
(``alternative_starts``), the verdict on a minimum (``judge_minimum``) and the mean's error definition
(``signal_mean_error``). The minimum is a stand-in with the attributes ``judge_minimum`` reads from iminuit's
``Minuit`` (``fmin``, ``covariance``, ``values``, ``errors``, ``limits``), so each verdict has a known answer.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from s2lib.stats import _fit_models as fm
from s2lib.stats import _fit_minuit as mi
from s2lib.stats.fitting import FitConfig, fit_histogram


def _minimum(valid=True, flags=(), cov=None, values=None, errors=None, limits=None):
    fmin = SimpleNamespace(is_valid=valid, has_reached_call_limit="has_reached_call_limit" in flags,
                           is_above_max_edm="is_above_max_edm" in flags, hesse_failed="hesse_failed" in flags)
    return SimpleNamespace(fmin=fmin, covariance=cov, values=values or {}, errors=errors or {},
                           limits=limits or {})


def test_judge_minimum_names_the_migrad_flags():
    mn = _minimum(valid=False, flags=("has_reached_call_limit", "hesse_failed"), cov=np.eye(1),
                  values={"mu": 2.0}, errors={"mu": 0.1}, limits={"mu": (0.0, 10.0)})
    reasons, cov = mi.judge_minimum(mn, ("mu",), "")
    assert reasons == ["MIGRAD did not reach a valid minimum (has_reached_call_limit, hesse_failed)"]
    np.testing.assert_array_equal(cov, np.eye(1))
    mn = SimpleNamespace(fmin=None, covariance=None, values={}, errors={}, limits={})
    reasons, cov = mi.judge_minimum(mn, (), "boom")
    assert reasons == ["boom", "MIGRAD did not reach a valid minimum",
                       "covariance matrix not finite or not positive definite"] and cov is None


@pytest.mark.parametrize("v, e, limit_hit", [
    (0.1, 1.0, "lower limit 0"),     # 0.1 from the limit, error 1: within half an error
    (9.7, 1.0, "upper limit 10"),
    (0.0, 0.0, "lower limit 0"),     # exactly at the limit with no error at all
    (1e-9, 0.0, "lower limit 0"),    # no error: within 1e-9·max(1, |v|) of the limit counts as at it
    (5.0, 20.0, "upper limit 10"),   # an error wider than the range, equally far from both: named upper
    (3.0, 1.0, None),                # 3 errors away: a measurement
])
def test_judge_minimum_flags_parameters_at_a_limit(v, e, limit_hit):
    mn = _minimum(cov=np.eye(1), values={"mu": v}, errors={"mu": e}, limits={"mu": (0.0, 10.0)})
    reasons, cov = mi.judge_minimum(mn, ("mu",), "")
    if limit_hit is None:
        assert reasons == [] and cov is not None
    else:
        assert len(reasons) == 1 and reasons[0].startswith(f"parameter mu = {v:.4g}") and limit_hit in reasons[0]


def test_judge_minimum_measures_the_distance_from_a_nonzero_limit_and_half_an_error_is_not_within():
    mn = _minimum(cov=np.eye(2), values={"a": 1.1, "b": 0.5}, errors={"a": 1.0, "b": 1.0},
                  limits={"a": (1.0, 10.0), "b": (0.0, 10.0)})
    reasons, _ = mi.judge_minimum(mn, ("a", "b"), "")
    assert reasons == ["parameter a = 1.1 ± 1 within half an error of its lower limit 1"]  # b: exactly 0.5 e away


def test_judge_minimum_refuses_a_covariance_that_is_not_positive_definite():
    mn = _minimum(cov=np.array([[1.0, 2.0], [2.0, 1.0]]), values={"a": 5.0, "b": 5.0}, errors={"a": 1, "b": 1},
                  limits={"a": (0, 10), "b": (0, 10)})
    reasons, cov = mi.judge_minimum(mn, ("a", "b"), "")
    assert reasons == ["covariance matrix not finite or not positive definite"] and cov is None


def test_start_and_limits_follow_the_docstring():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0.3, 0.08, 1500), rng.normal(3.0, 0.6, 4000)])
    edges = np.linspace(0.0, 10.0, 101)                       # bin width 0.1
    counts, _ = np.histogram(x, edges)
    st, lim = fm.start_and_limits("crystalball_bg", x, counts, edges, upper=10.0, bg_cutoff=1.0,
                                  bg_sigma_max=0.5)
    assert lim["sigma"] == pytest.approx((0.05 * 0.1, 10.0))  # widths in [0.05·bin width, hi − lo]
    assert lim["x0"] == (0.0, 10.0) and lim["mu_bg"] == (0.0, 1.0) and lim["sigma_bg"][1] == 0.5
    assert lim["beta"] == (0.2, 10.0) and lim["m"] == (1.05, 200.0)
    # the core starts at the mode of the signal above the background peak (true mode 3.0), the background
    # at its own peak (0.3), with a width near its true 0.08
    assert st["x0"] == pytest.approx(3.0, abs=0.25)
    assert st["mu_bg"] == pytest.approx(0.3, abs=0.1)
    assert st["n_bg"] + st["n"] == pytest.approx(5500, rel=0.1)


def test_gauss_start_is_median_and_robust_width():
    x = np.random.default_rng(4).normal(2.0, 0.5, 5000)
    edges = np.linspace(0.0, 5.0, 51)
    counts, _ = np.histogram(x, edges)
    st, lim = fm.start_and_limits("gauss", x, counts, edges, upper=4.0, bg_cutoff=0.0, bg_sigma_max=1.0)
    assert st["mu"] == pytest.approx(2.0, abs=0.03) and st["sigma"] == pytest.approx(0.5, rel=0.05)
    assert lim["mu"] == (0.0, 4.0) and lim["sigma"] == pytest.approx((0.005, 5.0)) and st["n"] == 5000


@pytest.mark.parametrize("model", ["gauss", "gauss_bg", "crystalball", "crystalball_bg"])
def test_alternative_starts_differ_and_stay_inside_the_limits(model):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0.3, 0.08, 500), rng.normal(3.0, 0.6, 3000)])
    edges = np.linspace(0.0, 10.0, 101)
    counts, _ = np.histogram(x, edges)
    st, lim = fm.start_and_limits(model, x, counts, edges, upper=10.0, bg_cutoff=1.0, bg_sigma_max=0.5)
    alts = fm.alternative_starts(model, st, lim)
    assert len(alts) >= 2
    for alt in alts:
        assert set(alt) == set(st)
        assert alt != st
        for k, v in alt.items():
            lo_k, up_k = lim[k]
            assert lo_k < v < up_k or (k == "n" and v == st["n"]), (k, v, lim[k])
    if model.startswith("crystalball"):   # the tail shape is what the alternatives vary
        assert {round(a["beta"], 6) for a in alts} >= {0.6, 2.0}
        assert 5.0 in {a["m"] for a in alts} and len({a["m"] for a in alts}) >= 2


def test_gauss_mean_definition_and_error_is_hesse_of_mu():
    x = np.random.default_rng(6).normal(2.0, 0.5, 4000)
    r = fit_histogram(x, FitConfig(model="gauss", bin_cuts=(0.0, 4.5), nbins=90))
    assert r.fit_success and r.details["mean_definition"] == "mu of the signal Gaussian"
    assert r.mean_err == pytest.approx(0.5 / math.sqrt(4000), rel=0.1)      # σ/√N
    err, det = fm.signal_mean_error("gauss", r.params, r.errors, np.diag([1.0, 0.04, 1.0]), 0.0, 4.5)
    assert err == pytest.approx(0.2) and det == {"mean_definition": "mu of the signal Gaussian"}


def test_crystalball_limits_and_iqr_fallback_of_the_start_width():
    # 55 % of the areas equal: MAD = 0, so the width start falls back to IQR/1.349 = (3 − 2)/1.349
    x = np.array([2.0] * 55 + [3.0] * 45)
    edges = np.linspace(0.0, 10.0, 101)
    counts, _ = np.histogram(x, edges)
    st, lim = fm.start_and_limits("crystalball", x, counts, edges, upper=8.0, bg_cutoff=0.0, bg_sigma_max=1.0)
    assert st["sigma"] == pytest.approx(1.0 / 1.349)
    assert lim["x0"] == (0.0, 8.0) and lim["beta"] == (0.2, 10.0) and lim["m"] == (1.05, 200.0)
    st, lim = fm.start_and_limits("gauss", x, counts, edges, upper=8.0, bg_cutoff=0.0, bg_sigma_max=1.0)
    assert st["sigma"] == pytest.approx(1.0 / 1.349) and st["mu"] == 2.0


def test_crystalball_density_is_normalised_to_its_yield_over_the_range():
    from scipy import integrate, stats

    p = {"n": 500.0, "x0": 2.0, "sigma": 0.4, "beta": 1.2, "m": 3.0}
    lo, hi = 0.0, 12.0
    dens = fm.component_densities("crystalball", p, np.linspace(lo, hi, 2001), lo, hi)["signal"]
    assert integrate.trapezoid(dens, np.linspace(lo, hi, 2001)) == pytest.approx(500.0, rel=1e-4)
    # shape: scipy's Crystal Ball has its tail on the left; ours is its mirror image about x0
    ref = stats.crystalball(1.2, 3.0, loc=-2.0, scale=0.4)
    mass = ref.cdf(-lo) - ref.cdf(-hi)
    for t in (1.5, 2.0, 2.7, 6.0):
        one = fm.component_densities("crystalball", p, np.array([t]), lo, hi)["signal"][0]
        assert one == pytest.approx(500.0 * ref.pdf(-t) / mass, rel=1e-6)


@pytest.mark.parametrize("model", ["gauss_bg", "crystalball_bg"])
def test_background_start_without_events_below_the_cutoff(model):
    # nothing below bg_cutoff = 2: the background starts mid-way (1.0) with width 0.3·(cutoff − lo) = 0.6
    # (inside [1.5·bin width, 0.8·bg_sigma_max] = [0.15, 0.8])
    x = np.random.default_rng(8).normal(5.0, 0.5, 3000)
    edges = np.linspace(0.0, 10.0, 101)
    counts, _ = np.histogram(x, edges)
    st, lim = fm.start_and_limits(model, x, counts, edges, upper=10.0, bg_cutoff=2.0, bg_sigma_max=1.0)
    assert st["mu_bg"] == pytest.approx(1.0) and st["sigma_bg"] == pytest.approx(0.6)
    assert lim["mu_bg"] == (0.0, 2.0) and lim["sigma_bg"] == pytest.approx((0.005, 1.0))


def test_crystalball_mean_error_against_scipy_integrated_mean():
    """J C Jᵀ of the truncated Crystal Ball mean, with J from scipy's (mirrored) Crystal Ball integrated
    numerically; the m error is 0 (the step then falls back to 1e-6·max(1, |m|)), its variance is not."""
    from scipy import integrate, stats

    lo, hi = 0.0, 12.0

    def mean(x0, sigma, beta, m):
        ref = stats.crystalball(beta, m, loc=-x0, scale=sigma)
        pdf = lambda t: ref.pdf(-t)          # noqa: E731  (right tail)
        k = x0 + beta * sigma
        return (integrate.quad(lambda t: t * pdf(t), lo, hi, points=[k], epsabs=1e-12, epsrel=1e-10)[0]
                / integrate.quad(pdf, lo, hi, points=[k], epsabs=1e-12, epsrel=1e-10)[0])

    v = {"n": 1000.0, "x0": 2.0, "sigma": 0.4, "beta": 1.2, "m": 3.0}
    var = {"n": 900.0, "x0": 1e-4, "sigma": 4e-4, "beta": 2.5e-3, "m": 0.04}
    errors = {k: math.sqrt(s) for k, s in var.items()}
    errors["m"] = 0.0
    names = ("n", "x0", "sigma", "beta", "m")
    cov = np.diag([var[k] for k in names])
    jac = []
    for k in names[1:]:
        h = 1e-4
        up, dn = dict(v), dict(v)
        up[k] += h
        dn[k] -= h
        jac.append((mean(*(up[q] for q in names[1:])) - mean(*(dn[q] for q in names[1:]))) / (2 * h))
    want = math.sqrt(sum(j * j * var[k] for j, k in zip(jac, names[1:])))
    err, det = fm.signal_mean_error("crystalball", v, errors, cov, lo, hi)
    assert err == pytest.approx(want, rel=1e-3)
    assert det["mean_definition"] == "expectation of the Crystal Ball normalised over [0, 12]"
    assert det["mean_untruncated"] == pytest.approx(-stats.crystalball(1.2, 3.0, loc=-2.0, scale=0.4).mean())
    assert math.isnan(fm.signal_mean_error("crystalball", v, errors, None, lo, hi)[0])
