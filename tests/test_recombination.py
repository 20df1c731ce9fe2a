"""s2lib.calib.recombination against hand-computed numbers: error propagation, model bands, fits of exact data,
failure reasons, the recoil mean of a set in its three forms, and the per-set table.

Expected numbers are hand calculations from the formulas of domain.md 1.6 (written next to each number);
exact (noise-free) model points must give back the parameters they were made with.
"""
from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from s2lib.stats.fitting import Z95, FitConfig, fit_histogram
from s2lib.calib.recombination import MODELS, PARAM_UNITS, ModelFit, fit_models, fit_recombination_model
from s2lib.calib.recomb_table import IonMean, electrons_and_recombination, ion_mean, recombination_table
from s2lib.io.store import S2Areas

FIELDS = np.array([35.7, 71.4, 142.9, 285.7, 571.4, 857.1])  # domain.md 1.5 drift fields, V/cm


def ti(E, a=400.0, S=0.2):
    """Thomas–Imel written out here (not s2lib.physics.physics): r = 1 − S·ln(1+ξ)/ξ, ξ = a/E."""
    xi = a / np.asarray(E, dtype=float)
    return 1.0 - S * np.log1p(xi) / xi


def emp(E, A, B, S=1.0):
    return 1.0 - S * (1.0 - A / (1.0 + B * np.asarray(E, dtype=float)))


# --------------------------------------------------------------------- electrons and r per set (domain.md 1.6)
def test_electrons_and_recombination_hand_numbers() -> None:
    # A = 1.7 ± 0.05 mV·µs, g = 0.00359 ± 0.00014 mV·µs/e⁻, N_exp = 4400 (domain.md 1.6 example):
    # N = 1.7/0.00359 = 473.5376; dN_stat = 0.05/0.00359 = 13.92758; dN_g = 1.7·0.00014/0.00359² = 18.46665;
    # dN = √(13.92758² + 18.46665²) = 23.12995; r = 1 − 473.5376/4400 = 0.8923778; dr = 23.12995/4400
    res = electrons_and_recombination(1.7, 0.05, 0.00359, 0.00014, 4400.0)
    expected = {"N_e": 473.53760, "dN_e_stat": 13.927577, "dN_e_gs2": 18.466648, "dN_e": 23.129947,
                "r": 0.89237782, "dr": 0.0052568062, "dr_stat": 0.0031653583, "dr_gs2": 0.0041969653}
    assert set(res) == set(expected)
    for key, value in expected.items():
        assert float(res[key]) == pytest.approx(value, rel=1e-7), key


def test_electrons_and_recombination_vectorised_signs_and_errors() -> None:
    res = electrons_and_recombination([2.2, -2.2], [0.11, -0.11], [0.0022, 0.0022], [0.0, 0.0], 2000.0)
    np.testing.assert_allclose(res["N_e"], [1000.0, -1000.0])
    np.testing.assert_allclose(res["dN_e_stat"], [50.0, 50.0])  # errors are magnitudes
    np.testing.assert_allclose(res["dN_e_gs2"], [0.0, 0.0])
    np.testing.assert_allclose(res["r"], [0.5, 1.5])
    np.testing.assert_allclose(res["dr"], [0.025, 0.025])
    for bad in (0.0, -4400.0, float("nan")):
        with pytest.raises(ValueError, match=rf"^N_exp must be positive, got {bad}$"):
            electrons_and_recombination(1.7, 0.05, 0.00359, 0.00014, bad)


# --------------------------------------------------------------------- ModelFit: evaluate, band, dicts
def _model_fit(model: str, values: dict, cov_diag: dict, fixed: dict | None = None) -> ModelFit:
    names = MODELS[model].param_names
    cov = np.diag([cov_diag.get(n, 0.0) for n in names]).astype(float)
    err = {n: math.sqrt(cov_diag.get(n, 0.0)) for n in names}
    return ModelFit(model, names, dict(values), err, dict(err), {n: 0.0 for n in names}, cov, cov.copy(),
                    dict(fixed or {}), 1.5, 3, 0.68, 6, True, "", 0.0, (35.7, 857.1), MODELS[model].formula)


def test_band_default_is_one_sigma_by_hand() -> None:
    # empirical, only A uncertain (σ_A = 0.01): dr/dA = 1/(1 + B·E); at E = 100, B = 0.003: 1/1.3 → ±0.0076923
    f = _model_fit("empirical", {"A": 0.9, "B": 0.003, "S": 1.0}, {"A": 1e-4}, {"S": 1.0})
    r, lo, hi = f.band(100.0)
    assert r.shape == lo.shape == hi.shape == (1,)
    assert r[0] == pytest.approx(0.9 / 1.3, rel=1e-12)
    assert hi[0] - r[0] == pytest.approx(0.0076923077, rel=1e-6)
    assert r[0] - lo[0] == pytest.approx(0.0076923077, rel=1e-6)
    _, lo2, hi2 = f.band(100.0, n_sigma=2.0)
    assert hi2[0] - r[0] == pytest.approx(2 * 0.0076923077, rel=1e-6)
    assert r[0] - lo2[0] == pytest.approx(2 * 0.0076923077, rel=1e-6)


def test_band_thomas_imel_gradient_by_hand() -> None:
    # ∂r/∂a = −S·[ξ/(1+ξ) − ln(1+ξ)]/(ξ²·E); a = 400, S = 0.2, E = 100 (ξ = 4): 1.0117974e-4 per V/cm,
    # so σ_a = 50 V/cm gives ±0.0050590 around r = 1 − 0.2·ln5/4 = 0.9195281
    f = _model_fit("thomas_imel", {"a": 400.0, "S": 0.2}, {"a": 2500.0})
    r, lo, hi = f.band(np.array([100.0, 100.0]))
    np.testing.assert_allclose(r, 0.91952810, rtol=1e-8)
    np.testing.assert_allclose(hi - r, 0.0050589870, rtol=1e-5)
    np.testing.assert_allclose(r - lo, 0.0050589870, rtol=1e-5)
    np.testing.assert_allclose(f.evaluate([100.0, 400.0]), ti([100.0, 400.0]), rtol=1e-12)


def test_band_correlation_and_unusable_variances() -> None:
    # with σ_B chosen so that ∂r/∂A·σ_A = −∂r/∂B·σ_B, a fully correlated (A, B) pair cancels and a fully
    # anti-correlated one doubles the error; a NaN or negative variance adds
    # nothing (that parameter is skipped), as does a fixed parameter (zero row)
    f = _model_fit("empirical", {"A": 0.9, "B": 0.003, "S": 1.0}, {})
    E = 100.0
    dA, dB = 1.0 / (1 + 0.003 * E), -0.9 * E / (1 + 0.003 * E) ** 2
    sA = 0.01
    sB = sA * dA / -dB
    cov = np.array([[sA**2, sA * sB, 0.0], [sA * sB, sB**2, 0.0], [0.0, 0.0, 0.0]])
    g = ModelFit(**{**f.__dict__, "covariance": cov})
    r, lo, hi = g.band(E)
    assert hi[0] - r[0] == pytest.approx(0.0, abs=1e-9)
    cov_neg = cov.copy()
    cov_neg[0, 1] = cov_neg[1, 0] = -sA * sB
    r, lo, hi = ModelFit(**{**f.__dict__, "covariance": cov_neg}).band(E)
    assert hi[0] - r[0] == pytest.approx(2 * sA * dA, rel=1e-5)
    bad = np.diag([np.nan, -1.0, 0.0])
    r, lo, hi = ModelFit(**{**f.__dict__, "covariance": bad}).band(E)
    assert lo[0] == hi[0] == r[0]


def test_model_fit_dict_round_trip_with_nan_and_units() -> None:
    f = _model_fit("thomas_imel", {"a": 400.0, "S": 0.2}, {"a": 2500.0, "S": 1e-4})
    f = ModelFit(**{**f.__dict__, "p_value": float("nan"), "errors_gs2": {"a": 0.0, "S": 0.01}})
    d = f.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert d["p_value"] is None and d["param_units"] == {"a": "V/cm", "S": "1"}
    assert d["field_range_V_cm"] == [35.7, 857.1] and d["ndf"] == 3 and d["n_points"] == 6
    assert d["covariance"] == [[2500.0, 0.0], [0.0, 1e-4]] and d["formula"] == MODELS["thomas_imel"].formula
    back = ModelFit.from_dict(json.loads(text))
    assert math.isnan(back.p_value)
    assert back.values == f.values and back.errors == f.errors and back.errors_gs2 == {"a": 0.0, "S": 0.01}
    assert back.errors_stat == f.errors_stat and back.fixed == {} and back.param_names == ("a", "S")
    np.testing.assert_array_equal(back.covariance, f.covariance)
    np.testing.assert_array_equal(back.covariance_stat, f.covariance_stat)
    assert (back.chi2, back.ndf, back.n_points, back.fit_success, back.reason) == (1.5, 3, 6, True, "")
    assert back.field_range == (35.7, 857.1) and back.gs2_rel_err == 0.0 and back.formula == f.formula
    assert PARAM_UNITS == {"a": "V/cm", "S": "1", "A": "1", "B": "cm/V"}


# --------------------------------------------------------------------- fits of exact model points
def test_thomas_imel_fit_of_exact_points_gives_back_the_parameters() -> None:
    r = ti(FIELDS, 400.0, 0.2)
    f = fit_recombination_model(FIELDS, r, np.full(6, 0.002))
    assert f.fit_success and f.reason == ""
    assert f.model == "thomas_imel" and f.fixed == {} and f.param_names == ("a", "S")
    assert f.values["a"] == pytest.approx(400.0, rel=1e-3)
    assert f.values["S"] == pytest.approx(0.2, rel=1e-3)
    assert f.chi2 == pytest.approx(0.0, abs=1e-4)
    assert f.ndf == 4 and f.n_points == 6 and f.p_value == pytest.approx(1.0, abs=1e-4)
    assert f.field_range == (35.7, 857.1)
    assert f.errors == f.errors_stat  # no g_S2 error given
    assert f.errors_gs2 == {"a": 0.0, "S": 0.0} and f.gs2_rel_err == 0.0
    assert all(f.errors_stat[p] > 0 for p in ("a", "S"))
    np.testing.assert_allclose(np.sqrt(np.diag(f.covariance_stat)), [f.errors_stat["a"], f.errors_stat["S"]])
    # the statistical errors scale with the point errors (χ² of exact points: linear in 1/σ²)
    g = fit_recombination_model(FIELDS, r, np.full(6, 0.004))
    assert g.errors_stat["S"] == pytest.approx(2 * f.errors_stat["S"], rel=0.02)
    assert f.formula == MODELS["thomas_imel"].formula


def test_gs2_scale_error_is_absorbed_by_S_for_thomas_imel() -> None:
    # 1 − r → (1 − r)/(1 ± δ) means S → S/(1 ± δ): half difference S·δ/(1 − δ²) = 0.2·0.05/0.9975 = 0.0100251
    r = ti(FIELDS, 400.0, 0.2)
    f = fit_recombination_model(FIELDS, r, np.full(6, 0.002), gs2_rel_err=0.05)
    assert f.errors_gs2["S"] == pytest.approx(0.0100251, rel=2e-3)
    assert f.errors_gs2["a"] == pytest.approx(0.0, abs=0.5)  # a unchanged (to the fit's precision, V/cm)
    assert f.errors["S"] == pytest.approx(math.hypot(f.errors_stat["S"], f.errors_gs2["S"]), rel=1e-9)
    np.testing.assert_allclose(f.covariance[1, 1] - f.covariance_stat[1, 1], f.errors_gs2["S"] ** 2, rtol=1e-9)
    assert f.gs2_rel_err == 0.05
    nan_rel = fit_recombination_model(FIELDS, r, np.full(6, 0.002), gs2_rel_err=float("nan"))
    assert nan_rel.gs2_rel_err == 0.0 and nan_rel.errors_gs2 == {"a": 0.0, "S": 0.0}


def test_empirical_default_fixes_S_to_one_and_fits_exact_points() -> None:
    r = emp(FIELDS, 0.835, 0.0056)
    f = fit_recombination_model(FIELDS, r, np.full(6, 0.002), model="empirical")
    assert f.fixed == {"S": 1.0} and f.values["S"] == 1.0
    assert f.errors["S"] == 0.0 and f.errors_stat["S"] == 0.0
    assert f.covariance[2].tolist() == [0.0, 0.0, 0.0] and f.covariance[:, 2].tolist() == [0.0, 0.0, 0.0]
    assert f.values["A"] == pytest.approx(0.835, rel=1e-3) and f.values["B"] == pytest.approx(0.0056, rel=1e-3)
    assert f.ndf == 4 and f.fit_success
    both = fit_models(FIELDS, r, np.full(6, 0.002))
    assert list(both) == ["thomas_imel", "empirical"]
    assert both["empirical"].values["A"] == pytest.approx(0.835, rel=1e-3)


def test_points_that_cannot_be_used_are_dropped() -> None:
    E = np.r_[FIELDS, 100.0, 200.0, -50.0, np.nan, 300.0]
    r = np.r_[ti(FIELDS), np.nan, ti(200.0), ti(50.0), 0.9, ti(300.0)]
    dr = np.r_[np.full(6, 0.002), 0.002, 0.0, 0.002, 0.002, -0.002]
    f = fit_recombination_model(E, r, dr)
    assert f.n_points == 6 and f.ndf == 4 and f.field_range == (35.7, 857.1)
    assert f.values["a"] == pytest.approx(400.0, rel=1e-3)


def test_too_few_points_no_fit_and_exactly_enough_no_goodness_of_fit() -> None:
    f = fit_recombination_model(FIELDS[:1], ti(FIELDS[:1]), [0.002])
    assert not f.fit_success and f.reason == "1 points for 2 free parameters: no fit"
    assert f.ndf == 0 and f.n_points == 1 and math.isnan(f.chi2) and math.isnan(f.p_value)
    assert all(math.isnan(v) for v in f.values.values()) and all(math.isnan(v) for v in f.errors.values())
    assert np.isnan(f.covariance).all() and f.covariance.shape == (2, 2)
    e = fit_recombination_model([], [], [], model="empirical", fix={"S": 0.5})
    assert e.values["S"] == 0.5 and math.isnan(e.values["A"]) and e.ndf == 0 and e.fixed == {"S": 0.5}
    assert e.reason == "0 points for 2 free parameters: no fit" and math.isnan(e.field_range[0])
    two = fit_recombination_model(FIELDS[:2], ti(FIELDS[:2]), [0.002, 0.002])
    assert two.ndf == 0 and not two.fit_success and math.isnan(two.p_value)
    assert "no degrees of freedom (2 points, 2 free parameters): no goodness of fit" in two.reason


def test_parameter_at_its_limit_is_a_failure() -> None:
    # 1 − r larger than 1 needs S > 1: S ends on its upper limit 1
    r = ti(FIELDS, 400.0, 1.0) - 0.3
    f = fit_recombination_model(FIELDS, r, np.full(6, 0.002))
    assert not f.fit_success
    assert "parameter(s) at a limit: S" in f.reason
    assert f.values["S"] == pytest.approx(1.0, abs=1e-6)
    # an own limit is honoured and named the same way
    g = fit_recombination_model(FIELDS, ti(FIELDS, 400.0, 0.2), np.full(6, 0.002), limits={"a": (500.0, 1e4)})
    assert g.values["a"] == pytest.approx(500.0, rel=1e-4) and "parameter(s) at a limit: a" in g.reason


def test_p_value_of_a_known_chi2() -> None:
    # fix both parameters at the truth and offset every point by exactly one σ: χ² = 6, ndf = 6 − 0 = 6
    r = ti(FIELDS) + 0.002
    f = fit_recombination_model(FIELDS, r, np.full(6, 0.002), fix={"a": 400.0, "S": 0.2})
    assert f.chi2 == pytest.approx(6.0, rel=1e-9) and f.ndf == 6
    assert f.p_value == pytest.approx(0.42319008, rel=1e-6)  # χ² survival function: e^(−3)(1 + 3 + 9/2) = 0.42319


def test_bad_arguments_name_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^unknown recombination model 'birks'; known: thomas_imel, empirical$"):
        fit_recombination_model(FIELDS, ti(FIELDS), np.full(6, 0.002), model="birks")
    with pytest.raises(ValueError, match=r"^cannot fix \['A'\]: model thomas_imel has parameters \('a', 'S'\)$"):
        fit_recombination_model(FIELDS, ti(FIELDS), np.full(6, 0.002), fix={"A": 1.0})
    with pytest.raises(ValueError, match="^field_V_cm, r and dr_stat must have the same length$"):
        fit_recombination_model(FIELDS, ti(FIELDS)[:5], np.full(6, 0.002))


def test_model_table_defaults() -> None:
    ti_spec, emp_spec = MODELS["thomas_imel"], MODELS["empirical"]
    assert ti_spec.p0 == {"a": 500.0, "S": 0.9} and ti_spec.limits == {"a": (1e-6, 1e6), "S": (0.0, 1.0)}
    assert ti_spec.default_fix == {} and emp_spec.default_fix == {"S": 1.0}
    assert emp_spec.limits == {"A": (0.0, 10.0), "B": (0.0, 10.0), "S": (0.0, 1.0)}
    assert emp_spec.p0 == {"A": 0.9, "B": 0.003, "S": 1.0}
    np.testing.assert_allclose(ti_spec.function(FIELDS, 400.0, 0.2), ti(FIELDS), rtol=1e-12)
    np.testing.assert_allclose(emp_spec.function(FIELDS, 0.835, 0.0056, 0.214), emp(FIELDS, 0.835, 0.0056, 0.214))


# --------------------------------------------------------------------- the recoil mean of a set
def test_ion_mean_missing_and_error_text() -> None:
    m = ion_mean(None, FitConfig())
    assert (m.fit_success, m.n_events, m.origin, m.reason) == (False, 0, "missing", "no S2 results")
    assert math.isnan(m.mean) and math.isnan(m.mean_err) and math.isnan(m.ci95) and math.isnan(m.sigma)
    m = ion_mean("s2_areas.npy is corrupt", FitConfig())
    assert m.reason == "s2_areas.npy is corrupt" and m.origin == "missing"


def test_ion_mean_from_the_lab_s2_results_uses_ci95_over_1_96() -> None:
    s2 = S2Areas(source_dir="x", areas=np.r_[np.ones(9), np.nan], mean=1.7, ci95=0.098, sigma=0.8,
                 fit_success=True)
    m = ion_mean(s2, FitConfig())
    assert m == IonMean(1.7, 0.098 / Z95, 0.098, 0.8, True, 9, "s2_results.json (mean_err = ci95/1.96)", "")
    assert m.mean_err == pytest.approx(0.05, rel=1e-3)  # 0.098/1.95996
    bad = ion_mean(S2Areas(source_dir="x", areas=np.ones(3), mean=1.7, ci95=0.0, fit_success=True), FitConfig())
    assert not bad.fit_success and bad.reason == "stored fit not successful or ci95 = 0" and math.isnan(bad.sigma)
    failed = ion_mean(S2Areas(source_dir="x", areas=np.ones(3), mean=1.7, ci95=0.1, fit_success=False), FitConfig())
    assert not failed.fit_success and failed.reason == "stored fit not successful or ci95 = 0"
    # an object from elsewhere with only mean and ci95 (no fit_success, no sigma, no areas): not a success
    bare = ion_mean(SimpleNamespace(mean=1.7, ci95=0.1), FitConfig())
    assert not bare.fit_success and math.isnan(bare.sigma) and bare.n_events == 0 and bare.mean == 1.7


def test_ion_mean_prefers_the_stored_fit_and_refits_bare_areas() -> None:
    areas = np.random.default_rng(3).normal(1.5, 0.5, 3000)
    cfg = FitConfig(bin_cuts=(0.0, 4.0), nbins=60)
    fr = fit_histogram(areas, cfg)
    stored = ion_mean(S2Areas(source_dir="x", areas=areas, mean=9.9, ci95=0.1, fit_result=fr), cfg)
    assert stored.origin == "fit_result" and stored.mean == fr.mean and stored.mean_err == fr.mean_err
    assert stored.n_events == 3000 and stored.ci95 == fr.ci95 and stored.sigma == fr.sigma
    as_dict = ion_mean(S2Areas(source_dir="x", areas=areas, fit_result=fr.to_dict()), cfg)
    assert as_dict.origin == "fit_result" and as_dict.mean == pytest.approx(fr.mean, rel=1e-12)
    refit = ion_mean(S2Areas(source_dir="x", areas=areas), cfg, label="set")
    assert refit.origin == "refit of s2_areas.npy" and refit.mean == pytest.approx(fr.mean, rel=1e-12)
    assert refit.fit_success and abs(refit.mean - 1.5) < 3 * refit.mean_err  # truth 1.5 within 3σ
    assert (refit.reason, refit.quality) == ("", "ok")
    few = ion_mean(S2Areas(source_dir="x", areas=areas[:5]), cfg)   # 5 < min_events = 30: the refit fails
    assert (few.origin, few.fit_success, few.n_events, few.quality) == ("refit of s2_areas.npy", False, 5, "failed")
    assert few.reason == "too few events: 5 < min_events = 30"
    empty = ion_mean(S2Areas(source_dir="x", areas=np.full(4, np.nan)), cfg)
    assert (empty.origin, empty.reason, empty.n_events, empty.fit_success) == (
        "no fit", "no fit and no areas", 0, False)


# --------------------------------------------------------------------- the per-set table
def _gs2(el: float, usable: bool = True) -> SimpleNamespace:
    return SimpleNamespace(el_field_V_cm=el, g_S2=0.00359 if usable else math.nan, d_g_S2=0.00014,
                           A_x=2.005, dA_x=0.076, source="this run", reason="" if usable else "too few X-rays",
                           usable=usable)


def test_recombination_table_rows_sorted_and_hand_numbers() -> None:
    sets = [SimpleNamespace(name="B", drift_field_V_cm=142.9, el_field_V_cm=2375.0),
            SimpleNamespace(name="A", drift_field_V_cm=71.4, el_field_V_cm=2375.0),
            SimpleNamespace(name="C", drift_field_V_cm=35.7, el_field_V_cm=3375.0)]
    fitted = {"A": S2Areas(source_dir="A", areas=np.ones(5), mean=1.7, ci95=0.05 * Z95, fit_success=True),
              "B": S2Areas(source_dir="B", areas=np.ones(5), mean=2.0, ci95=0.05 * Z95, fit_success=True),
              "C": S2Areas(source_dir="C", areas=np.ones(5), mean=7.8, ci95=0.1, fit_success=True)}
    said: list[str] = []
    rows, arr = recombination_table(sets, fitted, lambda el: _gs2(el, usable=el < 3000), FitConfig(), 4400.0,
                                    say=said.append)
    assert [r["set_name"] for r in rows] == ["A", "B", "C"]  # by (EL field, drift field)
    a = rows[0]
    assert a["used_in_model_fit"] and a["reason"] == "" and a["gs2_source"] == "this run"
    assert a["N_e_meas"] == pytest.approx(473.53760, rel=1e-6)  # as in the hand example above
    assert a["dN_e_meas"] == pytest.approx(23.129947, rel=1e-6)
    assert a["dN_e_meas_stat"] == pytest.approx(13.927577, rel=1e-6)
    assert a["dN_e_meas_gs2"] == pytest.approx(18.466648, rel=1e-6)
    assert a["recomb_error_stat"] == pytest.approx(0.0031653583, rel=1e-6)
    assert a["recomb_error_gs2"] == pytest.approx(0.0041969653, rel=1e-6)
    assert a["recomb_factor"] == pytest.approx(0.89237782, rel=1e-7)
    assert a["recomb_ci95"] == pytest.approx(Z95 * 0.0052568062, rel=1e-6)
    # A_ion/A_x = 1.7/2.005 = 0.847880, error 0.847880·√((0.05/1.7)² + (0.076/2.005)²) = 0.0406793
    assert a["norm_A_ion"] == pytest.approx(0.8478803, rel=1e-6)
    assert a["dnorm_A_ion"] == pytest.approx(0.0406793, rel=1e-5)
    c = rows[2]
    assert not c["used_in_model_fit"] and c["reason"] == "g_S2 at EL 3375 V/cm: too few X-rays"
    assert math.isnan(c["g_S2"]) and math.isnan(c["recomb_factor"]) and math.isnan(c["N_e_meas"])
    assert said == ["      C: excluded from the model fits (g_S2 at EL 3375 V/cm: too few X-rays)"]
    assert arr["set_name"].tolist() == ["A", "B", "C"] and arr["usable"].tolist() == [True, True, False]
    np.testing.assert_array_equal(arr["drift_fields"], [71.4, 142.9, 35.7])
    np.testing.assert_allclose(arr["r"][:2], [0.89237782, 1 - 2.0 / 0.00359 / 4400], rtol=1e-7)
    np.testing.assert_allclose(arr["r_ci95"][:2], Z95 * arr["dr"][:2])
    assert arr["dr_gs2"][0] == pytest.approx(0.0041969653, rel=1e-7) and arr["dr_stat"][0] == pytest.approx(
        0.0031653583, rel=1e-7)
    assert arr["dN_e_meas_gs2"][0] == pytest.approx(18.466648, rel=1e-7)
    assert arr["g_S2"][:2].tolist() == [0.00359, 0.00359] and arr["d_g_S2"][0] == 0.00014
    assert math.isnan(arr["g_S2"][2]) and math.isnan(arr["d_g_S2"][2])  # unusable g_S2: not applied
    np.testing.assert_allclose(arr["A_ion"], [1.7, 2.0, 7.8])


def test_recombination_table_failed_fit_keeps_its_row() -> None:
    sets = [SimpleNamespace(name="A", drift_field_V_cm=71.4, el_field_V_cm=2375.0)]
    rows, arr = recombination_table(sets, {"A": "cannot read s2_areas.npy"}, _gs2, FitConfig(), 4400.0)
    assert rows[0]["reason"] == "S2 fit: cannot read s2_areas.npy" and not rows[0]["used_in_model_fit"]
    assert math.isnan(arr["r"][0]) and not arr["fit_success"][0]
    rows, _ = recombination_table(sets, {}, _gs2, FitConfig(), 4400.0)
    assert rows[0]["reason"] == "S2 fit: no S2 results" and rows[0]["origin"] == "missing"
