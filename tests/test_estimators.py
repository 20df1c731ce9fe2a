"""Truth tests of the default estimators (s2lib.stats.estimators) and of their lattice internals (s2lib.stats._mixture).

Every expected number is independent of the code under test: hand-computed robust statistics and bin counts,
closed-form gamma/normal/exponential integrals (scipy.stats), and toy sets of known population mean
(s2lib.stats.toys, whose draws do not use the estimators). Tolerances: max(3 %, 3 standard errors) on means.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from s2lib.stats import _mixture as mx
from s2lib.stats import _fit_judge as fj
from s2lib.stats import estimators as est
from s2lib.stats.fitting import FitConfig
from s2lib.stats.toys import RecoilToy, XrayToy, draw_recoil, draw_xray


# ------------------------------------------------------------------ _mixture: robust statistics and ranges
def test_robust_stats_hand_computed():
    # median 3; |x − 3| = 2, 1, 0, 1, 97 -> MAD 1 -> 1.4826
    med, s = mx.robust_stats(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    assert med == 3.0 and s == pytest.approx(1.4826, rel=1e-12)


def test_robust_stats_iqr_fallback_when_mad_is_zero():
    # median 0, MAD 0; numpy linear percentiles of (0,0,0,1,2): q25 = 0, q75 = 1 -> IQR/1.349
    med, s = mx.robust_stats(np.array([0.0, 0.0, 0.0, 1.0, 2.0]))
    assert med == 0.0 and s == pytest.approx(1.0 / 1.349, rel=1e-12)


@pytest.mark.parametrize("n, spread, span, expected", [
    (1000, 1.0, 30.0, 112),      # w = 2·1.349·1/10 = 0.2698; 30/0.2698 = 111.2 -> 112
    (1000, 1.0, 10.0, 40),       # 37.1 -> clipped up to 40
    (1000, 1.0, 1000.0, 400),    # 3707 -> clipped down to 400
    (0, 1.0, 300.0, 112),        # n counted as 1: w = 2.698 -> 111.2 -> 112
    (8, 0.5, 100.0, 149),        # w = 2·1.349·0.5/2 = 0.67450 -> 148.26 -> 149
    (1000, 0.0, 10.0, 40),       # no spread: the minimum number of bins
])
def test_auto_bins_freedman_diaconis_by_hand(n, spread, span, expected):
    assert mx.auto_bins(n, spread, span) == expected


def test_robust_range_by_hand():
    x = np.array([1.0, 2.0, 3.0, 4.0, 100.0])          # median 3, robust σ 1.4826
    ref = np.array([-1.0, 0.0, 1.0])                   # median 0, MAD 1 -> 1.4826
    lo, hi = mx.robust_range(x, ref, k_hi=2.0, q_lo=0.0)
    assert lo == pytest.approx(-1.0 - 1.4826)          # lowest of data and ref, less ref's robust σ
    assert hi == pytest.approx(3.0 + 2 * 1.4826)       # median + 2 σ (below max 100)
    lo, hi = mx.robust_range(x, None, k_hi=100.0, q_lo=0.0)
    assert lo == pytest.approx(1.0 - 1.4826)           # without ref: the data's own robust σ
    assert hi == 100.0                                 # not past the largest value


def test_robust_range_degenerate_upper_edge():
    # all data equal except one: the upper edge must still lie above the lower one
    x = np.array([5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 6.0])
    lo, hi = mx.robust_range(x, None, k_hi=10.0, q_lo=0.0)
    assert hi > lo and hi <= 6.0


def test_xray_peak_found_under_single_photon_junk():
    rng = np.random.default_rng(4)
    peak = rng.normal(2.0, 0.2, 300)
    junk = rng.exponential(0.03, 3000)           # 10x more candidates, but each weighs 70x less
    c, s = mx.xray_peak(np.concatenate([junk, peak]))
    assert c == pytest.approx(2.0, abs=3 * 0.2 / math.sqrt(300) * 1.25 + 0.01)
    assert s == pytest.approx(0.2, rel=0.15)


def test_xray_peak_few_positive_values_falls_back_to_robust_stats():
    x = np.array([-1.0, -2.0, 3.0, -4.0, 5.0, -6.0])
    assert mx.xray_peak(x) == mx.robust_stats(x)


# ------------------------------------------------------------------ _mixture: lattice masses (closed forms)
def test_gamma_point_masses_are_cell_integrals_of_the_gamma():
    mu, cv, h = 2.0, 0.25, 0.05
    m = mx.gamma_point_masses(mu, cv, h, 200)
    g = stats.gamma(a=1 / cv ** 2, scale=mu * cv ** 2)
    assert m.size == 201
    assert m[0] == pytest.approx(g.cdf(0.5 * h), abs=1e-15)
    for k in (1, 40, 77):
        assert m[k] == pytest.approx(g.cdf((k + 0.5) * h) - g.cdf((k - 0.5) * h), rel=1e-9)
    assert m.sum() == pytest.approx(g.cdf(200.5 * h), rel=1e-12)
    assert float(np.sum(np.arange(201) * h * m)) == pytest.approx(mu, rel=1e-3)   # mean = mu up to O(h²)


def test_normal_point_masses_cover_six_sigma():
    mu, sigma, h = 1.03, 0.1, 0.02
    k0, m = mx.normal_point_masses(mu, sigma, h)
    assert k0 == math.floor((mu - 0.6) / h)
    k = k0 + np.arange(m.size)
    assert k[-1] == math.ceil((mu + 0.6) / h)
    assert m.sum() == pytest.approx(1.0, abs=1e-8)
    assert float(np.sum(k * h * m)) == pytest.approx(mu, abs=1e-6)
    i = int(round(mu / h)) - k0
    assert m[i] == pytest.approx(stats.norm.cdf((i + k0 + 0.5) * h, mu, sigma)
                                 - stats.norm.cdf((i + k0 - 0.5) * h, mu, sigma), rel=1e-9)


def test_xray_expected_components_are_normalised_over_the_range():
    edges = np.linspace(0.5, 4.5, 81)
    p = {"n": 1000.0, "mu": 1.0, "sigma": 0.3, "n_junk": 200.0, "slope": 4.0, "n_double": 50.0}
    parts = mx.xray_expected(p, edges)
    # yields are events inside the range even when the peak is cut at the lower edge (mu − 1.67 σ)
    assert parts["signal"].sum() == pytest.approx(1000.0, rel=1e-9)
    assert parts["double"].sum() == pytest.approx(50.0, rel=1e-9)
    assert parts["junk"].sum() == pytest.approx(200.0, rel=1e-9)
    cut = stats.norm.cdf(4.5, 1.0, 0.3) - stats.norm.cdf(0.5, 1.0, 0.3)
    b = 10                                            # bin [1.0, 1.05)
    assert parts["signal"][b] == pytest.approx(
        1000 * (stats.norm.cdf(1.05, 1.0, 0.3) - stats.norm.cdf(1.0, 1.0, 0.3)) / cut, rel=1e-9)
    d = stats.norm(2.0, 0.3 * math.sqrt(2))          # two X-rays: mean 2 mu, width √2 σ
    b = 30                                            # bin [2.0, 2.05)
    assert parts["double"][b] == pytest.approx(50 * (d.cdf(2.05) - d.cdf(2.0)) / (d.cdf(4.5) - d.cdf(0.5)),
                                               rel=1e-9)
    ex = stats.truncexpon(b=4.0 * 4.0, loc=0.5, scale=1 / 4.0)   # exponential from the lower edge, cut at 4.5
    assert parts["junk"][0] == pytest.approx(200 * ex.cdf(0.55), rel=1e-9)
    assert parts["junk"][5] == pytest.approx(200 * (ex.cdf(0.80) - ex.cdf(0.75)), rel=1e-9)
    np.testing.assert_allclose(mx.total(parts), parts["signal"] + parts["double"] + parts["junk"])
    # junk from the lowest candidate (an acceptance cut at 1.02, inside bin 10): none below it, all above
    j = mx.xray_expected(p, edges, junk_from=1.02)["junk"]
    ej = stats.truncexpon(b=4.0 * (4.5 - 1.02), loc=1.02, scale=1 / 4.0)
    assert j[:10].sum() == 0.0 and j.sum() == pytest.approx(200.0, rel=1e-9)
    assert j[10] == pytest.approx(200 * ej.cdf(1.05), rel=1e-9)
    assert j[12] == pytest.approx(200 * (ej.cdf(1.15) - ej.cdf(1.10)), rel=1e-9)
    # below the range it starts at the lower edge, as without it
    np.testing.assert_allclose(mx.xray_expected(p, edges, junk_from=0.1)["junk"], parts["junk"], rtol=1e-12)


def test_recoil_lattice_empty_component_is_the_sideband_histogram():
    edges = np.linspace(-1.0, 4.0, 51)                # bins 0.1 wide
    sb = np.array([-0.05, -0.01, 0.02, 0.04, 0.13, 0.26])
    lat = mx.RecoilLattice(edges, sb, None)
    parts = lat.expected({"n": 600.0, "f_empty": 0.5, "mu": 2.0, "cv": 0.2})
    want = np.zeros(50)
    want[9], want[10], want[11], want[12] = 2, 2, 1, 1   # bins [-0.1,0), [0,0.1), [0.1,0.2), [0.2,0.3)
    np.testing.assert_allclose(parts["empty"], 300.0 * want / 6.0, atol=1e-12)
    assert "pileup" not in parts


def test_recoil_lattice_signal_is_gamma_convolved_with_the_sideband():
    rng = np.random.default_rng(5)
    sb = rng.normal(0.1, 0.05, 4000)
    edges = np.linspace(-0.5, 6.0, 131)
    lat = mx.RecoilLattice(edges, sb, (3.0, 0.2))
    p = {"n": 1000.0, "f_empty": 0.2, "mu": 2.0, "cv": 0.25, "p_pileup": 0.1}
    parts = lat.expected(p)
    c = 0.5 * (edges[1:] + edges[:-1])
    assert parts["empty"].sum() == pytest.approx(200.0, rel=1e-9)
    assert parts["signal"].sum() == pytest.approx(800 * 0.9, rel=1e-4)          # gamma far inside the range
    # mean of S + E: mu + mean(E), to a fraction of a bin (lattice placement)
    assert float(np.sum(c * parts["signal"]) / parts["signal"].sum()) == pytest.approx(2.0 + sb.mean(), abs=0.01)
    g = stats.gamma(a=16.0, scale=2.0 / 16)
    s_sd = math.sqrt(float(np.sum(c ** 2 * parts["signal"]) / parts["signal"].sum())
                     - (2.0 + sb.mean()) ** 2)
    assert s_sd == pytest.approx(math.sqrt(g.var() + sb.var() + 0.05 ** 2 / 12), rel=0.03)
    # pile-up: S + X + E with X ~ N(3, 0.2), E ≈ N(0.1, 0.05): in range where S + X + E < 6.0
    pu = parts["pileup"]
    s_xe = math.hypot(0.2, float(sb.std()))
    inside = integrate.quad(lambda s: g.pdf(s) * stats.norm.cdf((6.0 - s - 3.0 - sb.mean()) / s_xe), 0, 10)[0]
    assert pu.sum() == pytest.approx(800 * 0.1 * inside, rel=0.01)
    assert mx.total(parts).sum() == pytest.approx(parts["empty"].sum() + parts["signal"].sum() + pu.sum())


def test_recoil_lattice_mass_above_is_the_gamma_tail():
    lat = mx.RecoilLattice(np.linspace(-1.0, 4.0, 51), np.zeros(10), None)
    p = {"mu": 2.0, "cv": 0.5}
    g = stats.gamma(a=4.0, scale=0.5)
    assert lat.mass_above(p, 4.0) == pytest.approx(g.sf(5.0), rel=1e-9)      # measured from the lower edge
    assert lat.mass_above(p, -3.0) == pytest.approx(1.0)


def test_paired_lattice_empty_peak_is_a_normal_at_zero():
    edges = np.linspace(-0.5, 3.0, 36)               # bins 0.1 wide; a bin centred on 0 is not needed here
    lat = mx.PairedLattice(edges, (1.5, 0.1))
    parts = lat.expected({"n": 1000.0, "f_empty": 0.3, "mu": 1.5, "cv": 0.2, "p_pileup": 0.1, "sigma_e": 0.08})
    c = 0.5 * (edges[1:] + edges[:-1])
    e = parts["empty"]
    assert e.sum() == pytest.approx(300.0, rel=1e-6)
    assert float(np.sum(c * e) / e.sum()) == pytest.approx(0.0, abs=0.01)
    assert e[5] == pytest.approx(300 * (stats.norm.cdf(0.1, 0, 0.08) - stats.norm.cdf(0.0, 0, 0.08)), rel=0.02)
    sig = parts["signal"]
    assert sig.sum() == pytest.approx(1000 * 0.7 * 0.9, rel=1e-3)
    assert float(np.sum(c * sig) / sig.sum()) == pytest.approx(1.5, abs=0.01)
    # pile-up adds the X-ray area (1.5): mean 3.0 lies at the upper edge, so about half of it is in range
    assert parts["pileup"].sum() == pytest.approx(1000 * 0.7 * 0.1 * 0.5, rel=0.1)


# ------------------------------------------------------------------ estimators.fit_xray
def test_fit_xray_mean_against_population_truth_with_junk():
    d = draw_xray(np.random.default_rng(21), XrayToy(mean=2.0, n=3000, junk=0.2))
    r = est.fit_xray(d["areas"], label="x")
    n_peak = 3000 * (1 - 0.2 - 0.01)
    sd = math.hypot(2.0 * 0.11, 0.1)                 # peak width: photon statistics ⊕ noise
    assert r.fit_success and r.details["quality"] == "ok" and r.model == "xray_mixture" and r.label == "x"
    assert abs(r.mean - 2.0) <= max(0.03 * 2.0, 3 * sd / math.sqrt(n_peak))
    assert abs(r.mean - d["sample_mean"]) <= 3 * r.mean_err
    assert r.mean_err == pytest.approx(sd / math.sqrt(n_peak), rel=0.15)
    assert r.ci95 == pytest.approx(1.959964 * r.mean_err, rel=1e-5)
    assert r.sigma == pytest.approx(sd, rel=0.1)
    assert r.params["n"] == pytest.approx(n_peak, rel=0.05)
    assert r.details["n_junk"] == pytest.approx(600, abs=4 * math.sqrt(600) + 30)
    assert r.p_value >= 1e-3 and r.ndf > 0 and r.n_in_range + r.n_outside == 3000
    np.testing.assert_allclose(np.sum(r.details["components"]["signal"]), r.params["n"], rtol=1e-6)


def test_fit_xray_clean_peak_error_is_sigma_over_root_n():
    # no junk, no pile-up: the nuisance yields sit near 0 and must not distort the error of the mean
    d = draw_xray(np.random.default_rng(51), XrayToy(mean=2.0, n=1500, junk=0.0, double=0.0))
    r = est.fit_xray(d["areas"])
    sd = math.hypot(2.0 * 0.11, 0.1)
    assert r.fit_success and abs(r.mean - 2.0) <= 3 * sd / math.sqrt(1500)
    assert r.mean_err == pytest.approx(sd / math.sqrt(1500), rel=0.1)
    assert r.details["n_junk"] < 15 and r.details["n_double"] < 15


def test_fit_xray_too_few_and_constant_areas_fail_with_a_reason():
    r = est.fit_xray(np.full(5, 2.0))
    assert not r.fit_success and r.details["quality"] == "failed"
    assert "too few events: 5 < min_events" in r.reason
    r = est.fit_xray(np.full(100, 2.0))
    assert not r.fit_success and r.reason.startswith("no spread: all 100 areas equal")
    r = est.fit_xray(np.array([np.nan] * 3 + [1.0] * 5))
    assert r.n_nan == 3


def test_fit_xray_fixed_bin_cuts_cutting_the_peak_fails_naming_the_key():
    d = draw_xray(np.random.default_rng(22), XrayToy(mean=2.0, n=2000, junk=0.05))
    r = est.fit_xray(d["areas"], FitConfig(bin_cuts=(0.5, 2.1), nbins=40))
    assert not r.fit_success and r.details["quality"] == "failed"
    assert "bin_cuts[1] = 2.1" in r.reason and "% of the fitted X-ray peak" in r.reason
    ok = est.fit_xray(d["areas"], FitConfig(bin_cuts=(0.5, 5.0), nbins=90))
    assert ok.fit_success, ok.reason
    assert abs(ok.mean - 2.0) <= 3 * ok.mean_err + 0.01


def test_fit_xray_poor_fit_below_gof_p_min():
    # a strongly skewed peak (cube of a 10 % normal: skewness ≈ 0.9) is no normal peak: the minimum is valid,
    # but the p-value is far below gof_p_min -> "poor" with its numbers kept, not "failed"
    x = np.random.default_rng(23).normal(2.0, 0.2, 4000) ** 3 / 4
    r = est.fit_xray(x)
    assert r.details["quality"] == "poor" and not r.fit_success
    assert r.reason.startswith("poor fit: goodness-of-fit p = ") and r.p_value < 1e-3
    assert math.isfinite(r.mean_err) and r.covariance is not None
    loose = est.fit_xray(x, FitConfig(gof_p_min=1e-30))   # non-default threshold: the same fit is accepted
    assert loose.fit_success and loose.details["quality"] == "ok" and loose.mean == pytest.approx(r.mean)


# ------------------------------------------------------------------ estimators.fit_recoil
def _recoil(seed: int, **shape):
    t = RecoilToy(**shape)
    return t, draw_recoil(np.random.default_rng(seed), t)


def test_fit_recoil_paired_mean_against_population_truth():
    t, d = _recoil(31, mean=2.0, cv=0.25, n_frames=4000, empty=0.1, pileup=0.03, xray_mean=2.0)
    r = est.fit_recoil(d["areas"], d["sideband"], xray=d["xray"], label="s")
    assert r.fit_success, r.reason
    assert r.model == "recoil_mixture" and r.label == "s" and r.details["empty_model"] == "paired"
    se = r.mean_err
    assert abs(r.mean - 2.0) <= max(0.03 * 2.0, 3 * se)
    assert abs(r.mean - d["sample_mean"]) <= 3 * se
    # error of a mean of n_signal frames of width σ_S (+ what is left of the empty-window noise)
    sd_s = float(np.std(d["areas"][d["areas"] > 0.8]))
    assert se == pytest.approx(sd_s / math.sqrt(d["n_signal"]), rel=0.35)
    assert r.details["f_empty"] == pytest.approx(0.1, abs=3 * r.details["f_empty_err"] + 0.005)
    assert r.details["p_pileup"] == pytest.approx(0.03, abs=0.02)
    assert r.details["n_signal"] == pytest.approx(d["n_signal"], rel=0.05)
    assert r.details["xray_for_pileup"] == [2.0, 0.2] and r.details["pileup"] == "fitted"
    assert r.ci95 == pytest.approx(1.959964 * r.mean_err, rel=1e-5)
    assert r.sigma == pytest.approx(r.params["cv"] * r.params["mu"])
    assert r.n_in_range + r.n_outside == 4000
    assert r.details["mean_definition"] == "mean of the gamma recoil S2 component (mixture fit)"
    # at the maximum of an extended binned Poisson likelihood the expected counts add up to the observed ones
    total = sum(np.sum(v) for v in r.details["components"].values())
    assert total == pytest.approx(float(r.counts.sum()), rel=2e-3)
    assert set(r.details["components"]) == {"empty", "signal", "pileup"}
    assert r.details["fraction_below_bg_threshold"] == pytest.approx(np.mean(d["areas"] - d["sideband"]
                                                                             <= FitConfig().bg_threshold))


def test_fit_recoil_pileup_left_out_when_it_cannot_reach_the_range():
    # an 8 mV·µs X-ray above a 1 mV·µs recoil peak: the range (median + 10 robust σ ≈ 4.2) holds none of
    # S + X + E, and a free p_pileup only traded with n and f_empty (here 0.44 ± 0.25, f_empty 0.058 for 0.10)
    t, d = _recoil(2, mean=1.0, cv=0.25, n_frames=2000, empty=0.1, pileup=0.03, xray_mean=8.0)
    r = est.fit_recoil(d["areas"], d["sideband"], xray=d["xray"])
    plain = est.fit_recoil(d["areas"], d["sideband"])
    diff = d["areas"] - d["sideband"]
    hi = float(r.bin_edges[-1])
    assert r.fit_success and r.details["p_pileup"] == 0.0 and "p_pileup" not in r.params
    assert r.details["pileup"].startswith("left out (p_pileup = 0)") and "pileup" not in r.details["components"]
    # in-range mass below P(X ≤ hi − lowest area) (S ≥ 0): far below one frame of 2000 even at p_pileup = 0.5
    bound = float(stats.norm.cdf(hi - diff.min(), 8.0, 0.8))
    assert r.details["pileup_mass_in_range"] <= bound < 1 / 2000
    assert r.mean == pytest.approx(plain.mean, rel=1e-9) and r.mean_err == pytest.approx(plain.mean_err, rel=1e-9)
    assert abs(r.mean - d["sample_mean"]) <= 3 * r.mean_err
    # f_empty: the empty frames among the frames the model holds (the pile-up frames lie beyond the range)
    f_true = (2000 - d["n_signal"]) / (2000 - r.n_outside)
    assert r.details["f_empty"] == pytest.approx(f_true, abs=3 * r.details["f_empty_err"])


def test_pileup_mass_in_range_by_hand():
    x = np.array([0.0, 1.0])               # two frames, X-ray 2 ± 1, range [0, 3]
    m = (stats.norm.cdf(1) - stats.norm.cdf(-2) + stats.norm.cdf(0) - stats.norm.cdf(-3)) / 2
    assert mx.pileup_mass_in_range(x, (2.0, 1.0), 0.0, 3.0) == pytest.approx(m, rel=1e-12)
    assert mx.pileup_mass_in_range(np.zeros(0), (2.0, 1.0), 0.0, 3.0) == 0.0


def test_fit_recoil_template_sideband_not_paired():
    # sideband from other frames (a different count): the sideband histogram is the empty-window shape
    t, d = _recoil(32, mean=3.0, cv=0.2, n_frames=3000, empty=0.15, ped_sigma=0.0)
    sb = draw_recoil(np.random.default_rng(99), RecoilToy(mean=3.0, n_frames=1500, ped_sigma=0.0))["sideband"]
    r = est.fit_recoil(d["areas"], sb)
    assert r.details["empty_model"] == "template" and r.fit_success, r.reason
    assert abs(r.mean - 3.0) <= max(0.03 * 3.0, 3 * r.mean_err)
    assert r.details["f_empty"] == pytest.approx(0.15, abs=3 * r.details["f_empty_err"] + 0.005)
    assert r.details["sideband_mean"] == pytest.approx(float(np.mean(sb)))
    # the range ends at the largest area here (median + 10 robust σ lies beyond it): every area is counted
    lo, hi = float(r.bin_edges[0]), float(r.bin_edges[-1])
    assert hi == float(np.max(d["areas"]))
    assert r.n_outside == int(np.sum((d["areas"] < lo) | (d["areas"] > hi)))
    assert int(r.counts.sum()) == r.n_in_range == 3000 - r.n_outside
    assert r.details["n_sideband"] == 1500
    assert r.details["p_pileup"] == 0.0 and r.details["xray_for_pileup"] is None
    assert r.details["pileup"] == "none (no X-ray)" and r.details["pileup_mass_in_range"] is None
    # error: HESSE of mu ⊕ the sideband mean's error scaled by 1/(1 − f_empty) (not paired: no covariance)
    f = r.details["f_empty"]
    err_sb = math.sqrt(np.var(sb, ddof=1) / sb.size) / (1 - f)
    assert r.details["mean_err_sideband"] == pytest.approx(err_sb, rel=1e-9)
    assert r.mean_err == pytest.approx(math.hypot(r.errors["mu"], err_sb), rel=1e-9)
    assert r.details["sideband_sigma"] == pytest.approx(float(np.std(sb, ddof=1)), rel=1e-9)


def test_fit_recoil_fixed_bin_cuts_below_the_peak_fails_naming_the_key():
    t, d = _recoil(33, mean=2.0, n_frames=1500, empty=0.05)
    r = est.fit_recoil(d["areas"], d["sideband"], FitConfig(bin_cuts=(-1.0, 2.5), nbins=70))
    assert not r.fit_success and r.details["quality"] == "failed"
    assert "bin_cuts[1] = 2.5" in r.reason and "raise bin_cuts" in r.reason
    assert math.isnan(r.mean_err) and r.covariance is None


def test_fit_recoil_too_few_and_no_spread():
    r = est.fit_recoil(np.ones(5), np.zeros(5))
    assert not r.fit_success and r.reason.startswith("too few events: 5 frames, 5 sideband values")
    r = est.fit_recoil(np.full(50, 1.0), np.zeros(50))
    assert not r.fit_success and r.reason.startswith("no spread: all 50 areas equal")


# ------------------------------------------------------------------ estimators helpers
def test_paired_cov_and_is_paired_by_hand():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([2.0, 4.0, 6.0, 9.0])
    # cov = Σ(a−2.5)(b−5.25)/3 = (−1.5·−3.25 −0.5·−1.25 + 0.5·0.75 + 1.5·3.75)/3 = 11.5/3
    assert mx.paired_cov(a, b) == pytest.approx(11.5 / 3)
    assert mx.paired_cov(a, b[:3]) == 0.0
    # three pairs are enough: mean 2 and 13/3, cov = ((−1)(−7/3) + 0 + (1)(8/3))/2 = 2.5
    assert mx.paired_cov(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])) == pytest.approx(2.5)
    assert mx.paired_cov(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == 0.0
    assert mx.is_paired(a, b) and not mx.is_paired(a, b[:3])
    assert not mx.is_paired(np.array([np.nan, np.nan, 1.0]), np.array([1.0, 1.0, 1.0]))


def test_gof_and_verdict_by_hand():
    counts = np.array([10.0, 20.0, 30.0])
    chi2, ndf, p, n = fj._gof(counts, counts.copy(), 1, 5.0)
    assert chi2 == pytest.approx(0.0, abs=1e-12) and ndf == 2 and p == pytest.approx(1.0) and n == 3
    chi2, ndf, p, n = fj._gof(counts, np.array([10.0, 20.0, 30.0]), 3, 5.0)
    assert ndf == 0 and math.isnan(p)
    assert fj._verdict([], 0.5, 1e-3) == (True, "ok", "")
    assert fj._verdict(["a", "b"], 0.5, 1e-3) == (False, "failed", "a; b")
    ok, q, why = fj._verdict([], 1e-5, 1e-3)
    assert (ok, q) == (False, "poor") and why == "poor fit: goodness-of-fit p = 1e-05 < gof_p_min = 0.001"
    assert fj._verdict([], math.nan, 1e-3) == (True, "ok", "")
    assert fj._verdict([], 1e-3, 1e-3) == (True, "ok", "")      # poor means p strictly below gof_p_min
    # one degree of freedom: 3 groups − 2 parameters; deviance by hand 2·Σ[ν − n + n ln(n/ν)]
    chi2, ndf, p, n = fj._gof(counts, np.array([12.0, 18.0, 30.0]), 2, 5.0)
    hand = 2 * ((12 - 10 + 10 * math.log(10 / 12)) + (18 - 20 + 20 * math.log(20 / 18)))
    assert (ndf, n) == (1, 3) and chi2 == pytest.approx(hand, rel=1e-12)
    assert p == pytest.approx(stats.chi2.sf(hand, 1), rel=1e-12)


def test_at_limit_with_zero_error_uses_a_relative_tolerance_of_1e_9():
    from types import SimpleNamespace

    mn = SimpleNamespace(limits={"x": (0.0, 1000.0)}, errors={"x": 0.0}, values={"x": 1000.0 - 1e-7})
    assert fj._at_limit(mn, "x")                   # 1e-7 ≤ 1e-9·1000
    mn.values["x"] = 1000.0 - 1e-5
    assert not fj._at_limit(mn, "x")


def test_xray_by_el_field_pools_sets_of_one_field():
    rng = np.random.default_rng(41)
    a = draw_xray(rng, XrayToy(mean=2.0, n=400, junk=0.05))["areas"]
    b = draw_xray(rng, XrayToy(mean=2.0, n=400, junk=0.05))["areas"]
    c = draw_xray(rng, XrayToy(mean=5.0, n=600, junk=0.05))["areas"]
    out = est.xray_by_el_field([("s1", 2000.04, a), ("s2", 2000.0, b), ("s3", 3000.0, c), ("s4", 4000.0, [])])
    assert set(out) == {"s1", "s2", "s3"}
    assert out["s1"] == out["s2"]
    pooled = est.fit_xray(np.concatenate([a, b]))
    assert out["s1"] == (pooled.mean, pooled.sigma)
    assert out["s1"][0] == pytest.approx(2.0, abs=3 * pooled.mean_err + 0.01)
    assert out["s3"][0] == pytest.approx(5.0, rel=0.03)
    assert out["s3"][1] == pytest.approx(math.hypot(5.0 * 0.11, 0.1), rel=0.15)


def test_judge_free_refuses_a_covariance_that_is_not_positive_definite():
    from types import SimpleNamespace

    names = ("n", "mu", "n_junk")
    mn = SimpleNamespace(valid=True, covariance=np.array([[1.0, 0, 0], [0, 1.0, 2.0], [0, 2.0, 1.0]]),
                         fixed={"n": False, "mu": False, "n_junk": False}, values={"n": 100.0, "mu": 2.0, "n_junk": 5.0},
                         errors={"n": 10.0, "mu": 0.1, "n_junk": 2.0},
                         limits={"n": (0.0, math.inf), "mu": (0.0, 10.0), "n_junk": (0.0, math.inf)})
    reasons, cov = fj._judge_free(mn, names)
    assert reasons == ["covariance matrix not positive definite"] and cov is None
    mn.fixed["n_junk"] = True                # the fixed row is left out of the check: [[1, 0], [0, 1]]
    reasons, cov = fj._judge_free(mn, names)
    assert reasons == [] and cov is not None
    mn.values["mu"], mn.valid = 0.01, False  # mean within half an error of its limit; MIGRAD invalid
    reasons, _ = fj._judge_free(mn, names)
    assert reasons == ["MIGRAD did not reach a valid minimum", "parameter mu = 0.01 at a limit (0.0, 10.0)"]


def _faint_xrays(rng: np.random.Generator, n: int, photons: float = 20.0) -> np.ndarray:
    """Faint X-ray areas: Poisson photons of gamma areas (mean 0.02, σ/μ 0.35) plus 0.02 mV·µs of noise."""
    k = rng.poisson(photons, n)
    return np.array([rng.gamma(8.16, 0.02 / 8.16, m).sum() for m in k]) + rng.normal(0, 0.02, n)


def test_fit_xray_clean_faint_sample_has_no_junk_or_double():
    # 60 whole faint X-rays (σ/μ ≈ 0.25, right-skewed): a free junk took the low tail and a free double the
    # high one (mean −15 %); neither is fitted without candidates where they live, and the mean is the sample mean
    for seed in range(4):
        x = _faint_xrays(np.random.default_rng(100 + seed), 60)
        r = est.fit_xray(x)
        assert r.fit_success and r.details["n_junk"] == 0.0 and r.details["n_double"] == 0.0
        assert r.params["n_junk"] == 0.0 and r.errors["n_double"] == 0.0
        assert abs(r.mean - x.mean()) < 0.3 * r.mean_err
        assert r.mean_err == pytest.approx(x.std() / math.sqrt(60), rel=0.2)
    # seed 104 draws one area 4.6 robust σ below the peak (0.106 against 0.385 ± 0.06): the junk takes it
    x = _faint_xrays(np.random.default_rng(104), 60)
    r = est.fit_xray(x)
    rest = np.sort(x)[1:]
    assert r.fit_success and r.details["n_junk"] == pytest.approx(1.0, abs=0.1)
    assert abs(r.mean - rest.mean()) < 0.3 * r.mean_err and abs(r.mean - x.mean()) > 0.4 * r.mean_err


def test_fit_xray_junk_and_double_enter_when_the_data_reach_them():
    rng = np.random.default_rng(3)
    x = _faint_xrays(rng, 200)
    junk = np.r_[x, 0.03, 0.05, 0.06, 0.08]           # 4 strays far below the peak (> 4 robust σ)
    r = est.fit_xray(junk)
    assert r.fit_success and r.details["n_junk"] == pytest.approx(4, abs=2)
    assert abs(r.mean - x.mean()) < r.mean_err
    assert r.params["slope"] >= 4.0 / (np.median(x) - 0.03) * (1 - 1e-9)   # falls e^4 before the peak
    bright = 2.0 * (1 + 0.15 * rng.standard_normal(500))
    two = 4.0 + 0.42 * rng.standard_normal(20)
    rb = est.fit_xray(np.r_[bright, two])
    in_range = int(np.sum(two <= rb.bin_edges[-1]))        # yields count the events inside the range
    assert in_range >= 10 and rb.details["n_double"] == pytest.approx(in_range, abs=2 * math.sqrt(in_range))
    assert abs(rb.mean - bright.mean()) < rb.mean_err
    narrow = 2.0 * (1 + 0.11 * rng.standard_normal(500))     # largest area ≈ 2.7 < 2·2 − 3√2·0.22: no double
    assert float(narrow.max()) < 3.0 and est.fit_xray(narrow).details["n_double"] == 0.0


def test_fit_xray_stray_outside_fixed_bin_cuts_switches_on_no_component():
    # with fixed bin_cuts the fit sees only the areas inside; one stray outside is no evidence of junk or of a
    # double inside the range. A clean normal peak (σ/μ 0.1) + one area far below 1.2: no junk, same mean
    rng = np.random.default_rng(200)
    x = 2.0 * (1 + 0.1 * rng.standard_normal(400))
    cfg = FitConfig(bin_cuts=(1.2, 3.0), nbins=45)
    clean, low = est.fit_xray(x, cfg), est.fit_xray(np.r_[x, 0.3], cfg)
    assert low.n_outside == 1 and low.fit_success and low.details["n_junk"] == 0.0
    assert low.mean == pytest.approx(clean.mean, abs=0.02 * clean.mean_err)
    # a right-skewed peak (gamma, σ/μ 0.12) cut at 2.9, below the double's −3σ point 4 − 3√2·0.24 = 2.98; one
    # area at 4.1 above the cut: no double (a free one took the peak's upper tail, −0.3 σ on the mean)
    for seed in (300, 301):
        g = np.random.default_rng(seed).gamma(1 / 0.12**2, 2.0 * 0.12**2, 1000)
        cfg = FitConfig(bin_cuts=(0.9, 2.9), nbins=60)
        clean, high = est.fit_xray(g, cfg), est.fit_xray(np.r_[g, 4.1], cfg)
        assert clean.details["n_double"] == 0.0 and high.n_outside == int(np.sum(g > 2.9)) + 1
        assert high.fit_success and high.details["n_double"] == 0.0
        assert high.mean == pytest.approx(clean.mean, abs=0.02 * clean.mean_err)


def test_judge_free_covariance_missing_or_not_finite_and_shape_parameters_may_sit_at_a_limit():
    from types import SimpleNamespace

    names = ("mu", "sigma", "n", "slope", "sigma_e", "mu_e")
    limits = {k: (0.0, 10.0) for k in names}
    values = {"mu": 2.0, "sigma": 0.5, "n": 0.0, "slope": 10.0, "sigma_e": 0.0, "mu_e": 10.0}  # the last 4 at a limit
    mn = SimpleNamespace(valid=True, covariance=None, fixed=dict.fromkeys(names, False), values=values,
                         errors=dict.fromkeys(names, 0.1), limits=limits)
    assert fj._judge_free(mn, names) == (["covariance matrix not finite"], None)
    mn.covariance = np.diag([1.0, 1.0, np.nan, 1.0, 1.0, 1.0])
    assert fj._judge_free(mn, names) == (["covariance matrix not finite"], None)
    mn.covariance = np.eye(6)
    reasons, cov = fj._judge_free(mn, names)  # n, slope and the empty-window shape (sigma_e, mu_e) are exempt
    assert reasons == [] and cov is not None
    values["sigma"] = 0.0
    assert fj._judge_free(mn, names)[0] == ["parameter sigma = 0 at a limit (0.0, 10.0)"]


# ------------------------------------------------------------------ _fit_judge._minimise on a known deviance
def _quadratic(centre: dict[str, float], width: dict[str, float], floor: float = 10.0):
    """Deviance with a known minimum ``floor`` at ``centre`` (Δ = 1 at one ``width``): HESSE errors = widths."""
    names = tuple(centre)

    def dev(p):
        return floor + sum(((v - centre[k]) / width[k]) ** 2 for k, v in zip(names, p))
    return names, dev


def test_minimise_stops_when_two_starts_agree_on_a_clean_minimum():
    names, dev = _quadratic({"mu": 2.0, "sigma": 0.5}, {"mu": 0.1, "sigma": 0.05})
    starts = [{"mu": 1.0, "sigma": 0.3}, {"mu": 3.0, "sigma": 0.8}, {"mu": 2.5, "sigma": 0.4}]
    mn, reasons, cov, n = fj._minimise(dev, names, starts, {"mu": (0.0, 10.0), "sigma": (0.01, 5.0)})
    assert (reasons, n) == ([], 2)                 # the third start is not needed
    assert mn.fval == pytest.approx(10.0, abs=1e-6) and float(mn.values["mu"]) == pytest.approx(2.0, abs=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), [0.1, 0.05], rtol=1e-3)


def test_minimise_fixes_an_empty_junk_component_with_its_slope():
    # the deviance prefers n_junk = −5, below its limit 0: the junk yield sits at 0 and its slope is undetermined
    names, dev = _quadratic({"mu": 2.0, "n_junk": -5.0, "slope": 1.0}, {"mu": 0.1, "n_junk": 1.0, "slope": 0.2})
    start = {"mu": 1.5, "n_junk": 3.0, "slope": 1.5}
    mn, reasons, cov, n = fj._minimise(dev, names, [start, start], {"mu": (0.0, 10.0), "n_junk": (0.0, 100.0),
                                                                   "slope": (0.0, 10.0)})
    assert reasons == [] and mn.fixed["n_junk"] and mn.fixed["slope"] and not mn.fixed["mu"]
    assert float(mn.values["n_junk"]) == pytest.approx(0.0, abs=1e-3)
    assert np.sqrt(cov[0, 0]) == pytest.approx(0.1, rel=1e-3)


def test_minimise_reports_an_error_of_the_refit_after_fixing(monkeypatch):
    names, quad = _quadratic({"mu": 2.0, "n_junk": -5.0, "slope": 1.0}, {"mu": 0.1, "n_junk": 1.0, "slope": 0.2})
    armed = []

    def dev(p):
        if armed:
            raise ValueError("deviance not finite")
        return quad(p)

    real = fj.mi.minimise

    def minimise_then_arm(*args):
        out = real(*args)
        armed.append(True)                          # the refit with the pinned components fixed will fail
        return out

    monkeypatch.setattr(fj.mi, "minimise", minimise_then_arm)
    start = {"mu": 1.5, "n_junk": 3.0, "slope": 1.5}
    _mn, reasons, cov, n = fj._minimise(dev, names, [start], {"mu": (0.0, 10.0), "n_junk": (0.0, 100.0),
                                                              "slope": (0.0, 10.0)})
    assert (reasons, cov, n) == (["minimisation error: ValueError: deviance not finite"], None, 1)


def test_n_free_counts_parameters_at_least_half_an_error_from_their_limits():
    from types import SimpleNamespace

    names = ("a", "b", "c")
    mn = SimpleNamespace(limits=dict.fromkeys(names, (0.0, 10.0)), errors=dict.fromkeys(names, 1.0),
                         values={"a": 0.5, "b": 0.49, "c": 9.5})  # exactly half an error away counts as free
    assert fj._n_free(mn, names) == 2


def test_json_nulls_count_as_missing_areas_in_window_and_sideband():
    # artifacts read back from JSON carry None for a missing area: it is a NaN (counted in n_nan), never an object
    # array that the finiteness tests cannot read
    x, n_bad = est._clean([1.0, None, 2.5, float("nan")])
    assert x.tolist() == [1.0, 2.5] and n_bad == 2
    a = [0.1, 2.0, 2.2, 1.9, 0.0]
    b = [0.05, None, -0.1, 0.2, 0.0]                  # one frame's sideband is missing
    assert bool(mx.is_paired(a, b)) is True
    assert bool(mx.is_paired(a, [None] * 5)) is False    # no finite pair at all
    ok = np.array([0, 2, 3, 4])
    assert mx.paired_cov(a, b) == pytest.approx(float(np.cov(np.take(a, ok), np.take([0.05, 0, -0.1, 0.2, 0.0], ok))[0, 1]))


def test_fit_recoil_counts_an_area_on_the_lower_edge_in_range():
    # bin_cuts (lo, hi) include both edges: empty windows that are exactly 0 with lo = 0 are fitted, not "outside"
    d = draw_recoil(np.random.default_rng(5), RecoilToy(mean=2.0, n_frames=600, empty=0.0, ped_sigma=0.0))
    areas = np.r_[np.clip(d["areas"], 0.01, None), 0.0, 0.0, 0.0]
    sideband = np.r_[np.clip(d["sideband"], 0.0, None), 0.0, 0.0, 0.0]
    r = est.fit_recoil(areas, sideband, FitConfig(bin_cuts=(0.0, 8.0), nbins=80))
    inside = int(np.sum((areas >= 0.0) & (areas <= 8.0)))
    assert r.n_in_range == inside and r.n_outside == areas.size - inside


def test_fit_xray_histogram_starts_at_the_lower_cut():
    # every area inside bin_cuts is histogrammed, the first bin's too: counts sum to n_in_range
    rng = np.random.default_rng(21)
    x = np.r_[2.0 * (1 + 0.1 * rng.standard_normal(300)), 1.02, 1.03, 1.04, 0.5]
    r = est.fit_xray(x, FitConfig(bin_cuts=(1.0, 3.0), nbins=40))
    assert r.n_in_range == int(np.sum((x >= 1.0) & (x <= 3.0))) == int(np.sum(r.counts))
    assert r.counts[0] == 3 and r.n_outside == x.size - r.n_in_range
