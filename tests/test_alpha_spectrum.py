"""Alpha spectrum: fit, calibration residuals, windows, tagging purity/efficiency against simulator truth."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2lib.alpha.calibrate import (REASON_FLAGGED, REASON_OK, REASON_OUTSIDE, calibrate, tag_frames,
                                   window_quality, windows_from_fit, windows_from_ranges)
from s2lib.alpha.isotopes import CHAIN, ISOTOPES, recoil_energy_keV, reference_energy_MeV
from s2lib.alpha.measure import measure_alpha_set
from s2lib.alpha.simulate import AlphaSimConfig, sca_of_energy, simulate_alpha_set
from s2lib.alpha.spectrum import fit_alpha_spectrum

SET = "FieldScan_Gate0800_Anode2700"


def _run(root: Path, cfg: AlphaSimConfig, seed: int) -> tuple[object, dict]:
    simulate_alpha_set(root / "raw" / SET, root / "truth.npz", config=cfg, layout="new", seed=seed)
    a = measure_alpha_set(root / "raw" / SET, root / "out" / SET, raw_root=root / "raw")
    return a, dict(np.load(root / "truth.npz"))


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, dict, object]:
    a, truth = _run(tmp_path_factory.mktemp("lin"), AlphaSimConfig(n_files=4, frames_per_file=988), 11)
    fit = fit_alpha_spectrum(a.sca[a.flags == 0])
    return a, truth, fit


def test_reference_table() -> None:
    for iso in ISOTOPES.values():      # E_alpha = Q (A-4)/A for the ground-state line (two-body kinematics)
        gs = max(line.energy_keV for line in iso.lines)
        assert gs == pytest.approx(iso.q_keV * (iso.mass_number - 4) / iso.mass_number, abs=0.5)
    lab = {"Th228": 5.42315, "Ra224": 5.68537, "Rn220": 6.40484, "Po216": 6.90628, "Po212": 8.785}
    for name, value in lab.items():   # the lab's mixed table is reproduced by the "lab" convention
        assert reference_energy_MeV(name, "lab") == pytest.approx(value, abs=3e-4)
    assert reference_energy_MeV("Rn220") == pytest.approx(6.28808)
    assert reference_energy_MeV("Po212", "q_value") == pytest.approx(8.95412)
    assert [round(recoil_energy_keV(n), 1) for n in CHAIN] == [96.8, 103.4, 116.4, 127.9, 168.9]
    with pytest.raises(ValueError, match="convention"):
        reference_energy_MeV("Th228", "kinetic")


def test_peak_positions_match_truth(linear_run: tuple) -> None:
    _, _, fit = linear_run
    assert fit.valid and fit.names == CHAIN
    truth_mu = sca_of_energy(fit.ref_MeV, AlphaSimConfig().gain)
    # 3σ statistical plus the estimator's measured +0.001 u_SCA bias (test_alpha_store: median |Δ| < 0.015)
    assert np.all(np.abs(fit.mu - truth_mu) < 3 * np.hypot(fit.mu_err, 0.0015))
    assert fit.sigma == pytest.approx(np.hypot(0.035 * 0.8923, 0.009), rel=0.1)   # resolution ⊕ noise
    assert fit.eta == pytest.approx(0.3, abs=3 * fit.eta_err + 0.02)


def test_linear_calibration_residuals(linear_run: tuple) -> None:
    _, _, fit = linear_run
    cal = calibrate(fit, order=1)
    a0, a1, _ = AlphaSimConfig().gain
    assert cal.coef[1] == pytest.approx(1 / a1, abs=3 * np.sqrt(cal.cov[1, 1]) + 1e-3)
    assert cal.coef[0] == pytest.approx(-a0 / a1, abs=3 * np.sqrt(cal.cov[0, 0]) + 5e-3)
    assert np.all(np.abs(cal.pulls) < 3.5) and cal.ndof == 3
    assert np.all(np.abs(cal.residuals_keV) < 8)
    assert cal.energy_MeV(fit.mu[0]) == pytest.approx(5.42315, abs=0.01)


def test_quadratic_calibration_needs_its_curvature(tmp_path: Path) -> None:
    gain = (-1.2, 1.2, -0.025)    # u = a0 + a1 E + a2 E²: the inverse is curved
    a, _ = _run(tmp_path, AlphaSimConfig(n_files=3, frames_per_file=988, gain=gain), 12)
    fit = fit_alpha_spectrum(a.sca[a.flags == 0], initial={n: float(sca_of_energy(reference_energy_MeV(n), gain))
                                                           for n in CHAIN})
    lin, quad = calibrate(fit, 1), calibrate(fit, 2)
    assert np.max(np.abs(lin.pulls)) > 5
    assert np.all(np.abs(quad.pulls) < 3.5)
    u = np.linspace(4.5, 7.0, 6)
    e_true = (-gain[1] + np.sqrt(gain[1] ** 2 - 4 * gain[2] * (gain[0] - u))) / (2 * gain[2])
    assert np.all(np.abs(quad.energy_MeV(u) - e_true) < 3 * quad.energy_err_MeV(u) + 0.005)


def test_tagging_purity_and_efficiency_against_truth(linear_run: tuple) -> None:
    a, truth, fit = linear_run
    win = windows_from_fit(fit)
    assert win.space == "sca" and np.all(win.low[1:] == win.high[:-1])   # contiguous, no gaps or overlaps
    expected = window_quality(fit, win)
    label, reason = tag_frames(a.sca, a.flags, win)
    names = [str(n) for n in truth["names"]]
    clean = a.flags == 0
    for i, name in enumerate(win.names):
        is_i = truth["isotope"] == names.index(name)
        tagged = label == i
        eff = np.count_nonzero(tagged & is_i) / np.count_nonzero(is_i & clean)
        pur = np.count_nonzero(tagged & is_i) / np.count_nonzero(tagged)
        for measured, key, n in ((eff, "efficiency", np.count_nonzero(is_i & clean)),
                                 (pur, "purity", np.count_nonzero(tagged))):
            predicted = expected[name][key]
            se = np.sqrt(max(predicted * (1 - predicted), 1e-4) / n)
            assert abs(measured - predicted) <= max(0.03, 3 * se), (name, key, measured, predicted)
        assert eff > 0.9 and pur > 0.9
    assert np.all(reason[label >= 0] == REASON_OK)
    assert np.all(reason[~clean] == REASON_FLAGGED) and np.all(label[~clean] == -1)
    assert np.count_nonzero(reason == REASON_OUTSIDE) < 0.05 * a.sca.size


def test_configured_ranges_are_honoured(linear_run: tuple) -> None:
    a, truth, fit = linear_run
    lab = {"Th228": [4.0, 4.7], "Ra224": [4.7, 5.0], "Rn220": [5.2, 5.5], "Po216": [5.5, 6.0],
           "Po212": [6.0, 10.0]}
    win = windows_from_ranges(lab)
    assert win.source == "configuration" and win.names == CHAIN
    label, _ = tag_frames(np.array([4.65, 4.7, 5.1, 7.0]), np.zeros(4, np.uint8), win)
    assert label.tolist() == [0, 1, -1, 4]
    q = window_quality(fit, win)      # the model's prediction for these windows matches the truth too
    label, _ = tag_frames(a.sca, a.flags, win)
    names = [str(n) for n in truth["names"]]
    for i, name in enumerate(win.names):
        is_i = (truth["isotope"] == names.index(name)) & (a.flags == 0)
        eff = np.count_nonzero((label == i) & is_i) / np.count_nonzero(is_i)
        se = np.sqrt(q[name]["efficiency"] * (1 - q[name]["efficiency"]) / np.count_nonzero(is_i))
        assert abs(eff - q[name]["efficiency"]) <= max(0.03, 3 * se), (name, eff, q[name])
    assert q["Rn220"]["efficiency"] < 0.95    # the lab's window starts inside this detector's Rn-220 tail
    with pytest.raises(ValueError, match="overlap"):
        windows_from_ranges({"Th228": [4.0, 4.8], "Ra224": [4.7, 5.0]})


def test_closure_old_layout(tmp_path: Path) -> None:
    from s2lib.alpha.closure import run_closure

    res = run_closure(tmp_path, layout="old", n_files=2, frames_per_file=300, seed=5)
    assert res["frames_per_file"] == [300, 300] and res["pairs"][0]["pmt"].endswith("_P2_1Wfm_Ch1.wfm")
    for row in res["isotopes"]:
        n = row["n_true_clean"]
        se = np.sqrt(row["expected_efficiency"] * (1 - row["expected_efficiency"]) / n)
        assert abs(row["efficiency"] - row["expected_efficiency"]) <= max(0.03, 3 * se), row


def test_lab_mixed_convention_shows_in_the_residuals(linear_run: tuple) -> None:
    # the simulated deposits are alpha kinetic energies: calibrating them to the lab's table (Q for Rn-220 and
    # Po-216, +117 and +128 keV) breaks the linear calibration, which the residuals must reveal (alpha.md D12)
    a, _, fit = linear_run
    lab = fit_alpha_spectrum(a.sca[a.flags == 0], convention="lab")
    assert lab.convention == "lab" and lab.ref_MeV[2] == pytest.approx(6.40467)
    assert np.max(np.abs(calibrate(lab, 1).residuals_keV)) > 30
    assert np.max(np.abs(calibrate(fit, 1).residuals_keV)) < 8
