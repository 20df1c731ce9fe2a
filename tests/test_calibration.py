"""Calibration (g_S2 per EL field), recoil electrons, recombination fractions and their model fits."""
from __future__ import annotations

import csv
import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from s2lib.physics import physics
from s2lib.calib.calibration import (
    RECOMB_COLUMNS, S2_VS_DRIFT_COLUMNS, SOURCE_FILE, SOURCE_FIT, CalibrationResults, load_external_gs2, xray_gs2
)
from s2lib.analysis.calibrate_stage import calibrate_and_analyze, run_calibration_analysis
from s2lib.config.config import CalibrationConfig, ExperimentConfig, RunConfig
from s2lib.errors import ConfigError
from s2lib.stats.fitting import FitConfig, FitResult, fit_histogram
from s2lib.calib.recomb_table import electrons_and_recombination
from s2lib.calib.recombination import fit_recombination_model
from s2lib.config.runs import Run, SetInfo
from s2lib.io.store import S2Areas, store_s2area, store_xrays
from s2lib.stats.fit_store import load_s2area

W, E_X = physics.W_VALUE_EV, physics.E_XRAY_EV
N_X = E_X / W                                          # 559.09 e⁻
XCFG = FitConfig(bin_cuts=(0.6, 20.0), nbins=100)
FIELDS_GATE = (50, 100, 200, 300, 400, 600, 800)       # gate volts → drift fields 35.7 ... 571 V/cm


# ----------------------------------------------------------------------------------------------- helpers
def make_run(tmp_path: Path, sets: list[tuple[int, int]], *, isotope: str = "Th228", run_id: str = "RUNT",
             calibration: CalibrationConfig | None = None) -> Run:
    """A Run built directly (no raw WFM files needed): sets given as (gate_V, anode_V)."""
    exp = ExperimentConfig(target_isotope=isotope, recoil_energy=physics.recoil_energy_keV(isotope))
    cfg = RunConfig(run_id=run_id, raw_data_path=tmp_path / "raw", output_base=tmp_path / "out", experiment=exp,
                    calibration=calibration or CalibrationConfig())
    density = physics.gas_density_cm3(2.0, 297.0)
    infos = []
    for gate, anode in sets:
        ed = physics.drift_field_V_cm(gate, exp.drift_gap)
        el = physics.el_field_V_cm(anode, gate, exp.el_gap)
        rd = physics.reduced_field_Td(ed, density)
        v = physics.drift_velocity_mm_us(rd)
        infos.append(SetInfo(f"FieldScan_Gate{gate:04d}_Anode{anode:04d}", tmp_path / "raw" / "x", (), gate, anode,
                             None, ed, el, rd, physics.reduced_field_Td(el, density), v,
                             physics.drift_time_us(exp.drift_gap, v)))
    infos.sort(key=lambda s: s.drift_field_V_cm)
    return Run(cfg, tuple(infos), density)


def true_r(field: np.ndarray) -> np.ndarray:
    return np.asarray(physics.thomas_imel_recombination(field, 3000.0, 0.6))


def write_run_data(run: Run, rng: np.random.Generator, *, a_x: dict[float, float], n_x: int = 4000,
                   n_ion: int = 3000, fit: bool = True) -> dict[str, S2Areas]:
    """Simulated X-ray and recoil areas stored per set: X-rays Gaussian(A_x, 0.25·A_x) per EL field, recoil
    Gaussian(true A_ion, 0.3·A_ion) with A_ion = g_S2·N_exp·(1 − r_TI(E)). Returns the in-memory S2Areas."""
    n_exp = physics.recoil_energy_keV(run.config.experiment.target_isotope) * 1e3 / W
    out = {}
    for s in run.sets:
        ax = a_x[round(s.el_field_V_cm)]
        folder = run.set_output_dir(s.name)
        xr = rng.normal(ax, 0.25 * ax, n_x)
        store_xrays(folder, xr, None, {"n_events": n_x, "rejection_reasons": {}})
        a_ion = ax / N_X * n_exp * (1 - true_r(np.array([s.drift_field_V_cm]))[0])
        areas = rng.normal(a_ion, 0.3 * a_ion, n_ion)
        s2 = S2Areas(folder, areas, method="test")
        if fit:
            res = fit_histogram(areas, FitConfig(bin_cuts=(0.0, 3 * a_ion), nbins=100), label=s.name)
            s2 = S2Areas(folder, areas, "test", {}, res.mean, res.sigma, res.ci95, res.fit_success, res)
        store_s2area(s2, folder)
        out[s.name] = s2
    return out


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open() as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def lab_gs2_file(path: Path, a_x: float = 2.005, da_x: float = 0.076) -> Path:
    path.write_text(json.dumps({"Wi": 22, "units_Wi": "eV/e-", "A_x_mean": a_x, "units_A_x_mean": "mV us",
                                "dA_x_mean": da_x, "gs2": a_x / N_X, "units_gs2": "mV us / e-",
                                "d_gs2": da_x / N_X, "units_d_gs2": "mV us / e-"}))
    return path


# ----------------------------------------------------------------------------------------------- numbers
def test_gs2_hand_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A_x = 2.005 ± 0.076 mV·µs → g_S2 = 0.003586 ± 0.000136 mV·µs/e⁻ (domain.md: 0.00359 ± 0.00014)."""
    fake = FitResult(model="gauss", mean=2.005, mean_err=0.076, ci95=1.96 * 0.076, fit_success=True, n_in_range=7402)
    monkeypatch.setattr("s2lib.calib.calibration.fit_histogram", lambda *a, **k: fake)
    e = xray_gs2(np.ones(10), 2375.0, XCFG, W_eV=22.0, E_x_eV=12300.0, sets=("a",))
    assert e.N_x == pytest.approx(559.0909, abs=1e-3)
    assert e.g_S2 == pytest.approx(0.003586, abs=5e-7)
    assert e.d_g_S2 == pytest.approx(0.000136, abs=5e-7)
    assert round(e.g_S2, 5) == 0.00359 and round(e.d_g_S2, 5) == 0.00014
    assert e.source == SOURCE_FIT and e.usable and e.n_xrays == 7402


def test_recoil_electrons_and_r_hand_numbers() -> None:
    """A_ion = 1.7 mV·µs at g_S2 0.00359 → 474 e⁻ → r = 0.892 (Th228, N_exp ≈ 4400)."""
    n_exp_th = physics.recoil_energy_keV("Th228") * 1e3 / 22.0
    assert n_exp_th == pytest.approx(4400, abs=3)
    res = electrons_and_recombination(1.7, 0.0, 0.00359, 0.00014, n_exp_th)
    assert res["N_e"] == pytest.approx(473.5, abs=0.1)
    assert res["r"] == pytest.approx(0.892, abs=5e-4)
    # domain.md example: 474 ± 18 e⁻ is the g_S2 error alone (1.7·0.00014/0.00359² = 18.5)
    assert res["dN_e_gs2"] == pytest.approx(18.5, abs=0.1)
    n_exp_ra = physics.recoil_energy_keV("Ra224") * 1e3 / 22.0
    assert n_exp_ra == pytest.approx(4699, abs=1)


def test_error_propagation_matches_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    A, dA, g, dg, n_exp = 1.7, 0.03, 0.00359, 0.00014, 4400.0
    res = electrons_and_recombination(A, dA, g, dg, n_exp)
    a = rng.normal(A, dA, 400_000)
    gg = rng.normal(g, dg, 400_000)
    r_mc = 1 - a / gg / n_exp
    assert np.std(r_mc) == pytest.approx(float(res["dr"]), rel=0.03)
    assert float(res["dr"]) == pytest.approx(math.hypot(res["dr_stat"], res["dr_gs2"]))
    # each part alone
    assert np.std(1 - a / g / n_exp) == pytest.approx(float(res["dr_stat"]), rel=0.02)
    assert np.std(1 - A / gg / n_exp) == pytest.approx(float(res["dr_gs2"]), rel=0.03)


# ----------------------------------------------------------------------------------------------- model fits
def test_thomas_imel_fit_recovers_truth_and_sane_p_values() -> None:
    rng = np.random.default_rng(11)
    E = np.array([35.7, 71.4, 142.9, 214.3, 285.7, 357.1, 428.6, 571.4, 785.7])
    a_true, s_true, dr = 3000.0, 0.6, np.full(9, 0.004)
    pulls_a, pulls_s, pvals = [], [], []
    for _ in range(200):        # 200 toys: a pull width is known to ±5 %, so 0.8-1.25 can tell a wrong error
        r = physics.thomas_imel_recombination(E, a_true, s_true) + rng.normal(0, dr)
        f = fit_recombination_model(E, r, dr, model="thomas_imel")
        assert f.fit_success, f.reason
        pulls_a.append((f.values["a"] - a_true) / f.errors_stat["a"])
        pulls_s.append((f.values["S"] - s_true) / f.errors_stat["S"])
        pvals.append(f.p_value)
        assert f.ndf == 7
    print(f"pulls a: {np.mean(pulls_a):.3f} ± {np.std(pulls_a):.3f}, S: {np.mean(pulls_s):.3f} ± {np.std(pulls_s):.3f}")
    assert abs(np.mean(pulls_a)) < 0.25 and 0.8 < np.std(pulls_a) < 1.25   # mean known to ±0.07
    assert abs(np.mean(pulls_s)) < 0.25 and 0.8 < np.std(pulls_s) < 1.25
    assert 0.3 < np.mean(pvals) < 0.7 and np.mean(np.array(pvals) < 0.05) < 0.2
    # the curve helpers: centre equals the model, band brackets it
    c, lo, hi = f.band([100.0, 300.0])
    assert np.allclose(c, f.evaluate([100.0, 300.0])) and np.all(lo < c) and np.all(c < hi)


def test_common_gs2_error_goes_into_S_only_for_thomas_imel() -> None:
    E = np.array([35.7, 71.4, 142.9, 214.3, 285.7, 357.1, 428.6, 571.4])
    r = physics.thomas_imel_recombination(E, 3000.0, 0.6)
    dr = np.full(E.size, 0.004)
    rel = 0.038
    f = fit_recombination_model(E, r, dr, model="thomas_imel", gs2_rel_err=rel)
    S = f.values["S"]
    assert f.errors_gs2["S"] == pytest.approx(S * rel / (1 - rel**2), rel=1e-3)
    assert f.errors_gs2["a"] < 1e-3 * f.errors_stat["a"]
    assert f.errors["S"] == pytest.approx(math.hypot(f.errors_stat["S"], f.errors_gs2["S"]), rel=1e-9)
    assert f.chi2 == pytest.approx(0.0, abs=1e-6)


def test_model_fit_too_few_points_and_empirical_default() -> None:
    E, r, dr = np.array([100.0, 200.0]), np.array([0.9, 0.88]), np.array([0.01, 0.01])
    f = fit_recombination_model(E, r, dr, model="thomas_imel")
    assert not f.fit_success and "degrees of freedom" in f.reason
    f1 = fit_recombination_model(E[:1], r[:1], dr[:1], model="thomas_imel")
    assert not f1.fit_success and "no fit" in f1.reason and math.isnan(f1.values["a"])
    Eg = np.linspace(40, 800, 8)
    rr = physics.empirical_recombination(Eg, 0.95, 0.0005, 1.0)
    g = fit_recombination_model(Eg, rr, np.full(8, 0.003), model="empirical")
    assert g.fixed == {"S": 1.0} and g.values["S"] == 1.0 and g.errors["S"] == 0.0
    assert g.values["A"] == pytest.approx(0.95, rel=1e-3) and g.values["B"] == pytest.approx(0.0005, rel=1e-2)


# ----------------------------------------------------------------------------------------------- whole run
def test_two_el_fields_two_gs2_and_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    sets = [(g, g + 1900) for g in FIELDS_GATE[:4]] + [(g, g + 2700) for g in FIELDS_GATE[:4]]
    run = make_run(tmp_path, sets)
    assert sorted({round(s.el_field_V_cm) for s in run.sets}) == [2375, 3375]
    fitted = write_run_data(run, rng, a_x={2375: 2.005, 3375: 7.83})
    res, arr = calibrate_and_analyze(run, fitted, flag_plot=False, save_plots=False)
    out = capsys.readouterr().out
    for line in ("[1/5] Loading X-ray results...", "[2/5] Fitting X-ray histogram...",
                 "[3/5] Computing calibration constants...", "[4/5] Using provided ion fitted areas (8 sets)",
                 "[5/5] Computing recombination fractions..."):
        assert line in out
    assert [e.el_field_V_cm for e in res.entries] == [2375.0, 3375.0]
    e1, e2 = res.entries
    for e, ax in ((e1, 2.005), (e2, 7.83)):
        assert e.source == SOURCE_FIT and e.fit_success
        assert abs(e.g_S2 - ax / N_X) < 4 * e.d_g_S2
        assert len(e.sets) == 4
    assert e2.g_S2 > 3 * e1.g_S2
    with pytest.raises(ValueError, match="EL fields"):
        _ = res.g_S2
    # each set used its own EL field's g_S2, and r recovers the truth within its error
    for i, name in enumerate(arr["set_name"]):
        e = res.entry_for(arr["el_field"][i])
        assert arr["g_S2"][i] == e.g_S2 and name in e.sets
        assert abs(arr["r"][i] - true_r(arr["drift_field"][i])) < 4 * arr["dr"][i]
    assert set(res.model_fits) == {2375.0, 3375.0}
    # artifacts
    od = run.output_dir
    cols, rows = read_csv(od / "RUNT_s2_vs_drift.csv")
    assert cols == list(S2_VS_DRIFT_COLUMNS) and len(rows) == 8
    cols, rows = read_csv(od / "RUNT_recomb_factors.csv")
    assert cols == list(RECOMB_COLUMNS)
    for c in ("g_S2", "d_g_S2", "N_e_meas", "dN_e_meas", "recomb_factor", "recomb_error", "recomb_error_stat",
              "recomb_error_gs2"):
        assert c in cols
    i0 = list(arr["set_name"]).index(rows[0]["set_name"])
    assert float(rows[0]["recomb_factor"]) == arr["r"][i0]              # full precision, no rounding
    assert float(rows[0]["recomb_error"]) == pytest.approx(
        math.hypot(float(rows[0]["recomb_error_stat"]), float(rows[0]["recomb_error_gs2"])))
    assert float(rows[0]["s2_ci95"]) == pytest.approx(1.959964 * float(rows[0]["s2_mean_err"]), rel=1e-5)
    doc = json.loads((od / "RUNT_calibration.json").read_text())
    assert doc["schema_version"] == 1 and doc["run_id"] == "RUNT"
    assert [g["el_field_V_cm"] for g in doc["gs2_by_el_field"]] == [2375.0, 3375.0]
    assert doc["gs2_by_el_field"][0]["g_S2"] == e1.g_S2
    assert doc["constants"]["W_eV"] == {"value": 22.0, "unit": "eV", "source": doc["constants"]["W_eV"]["source"]}
    assert set(doc["model_fits"]["2375"]) == {"thomas_imel", "empirical"}
    assert not list(od.glob(".*tmp*")) and not list(od.glob("*.tmp"))   # atomic writes leave no debris


def test_ra224_uses_its_own_recoil_energy(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE[:3]], isotope="Ra224")
    fitted = write_run_data(run, rng, a_x={2375: 2.005})
    res, arr = calibrate_and_analyze(run, fitted, flag_plot=False, save_plots=False, verbose=False)
    assert res.N_e_exp == pytest.approx(4699, abs=1) and res.E_R_keV == pytest.approx(103.4, abs=0.05)
    assert np.allclose(arr["r"], 1 - arr["N_e_meas"] / res.N_e_exp)
    assert not np.allclose(arr["r"], 1 - arr["N_e_meas"] / 4400.0)


def test_disk_equals_memory_and_fresh_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(9)
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE])
    fitted = write_run_data(run, rng, a_x={2375: 2.005})
    r_mem, a_mem = calibrate_and_analyze(run, fitted, flag_plot=False, save_plots=False, verbose=False)
    r_disk, a_disk = calibrate_and_analyze(run, None, flag_plot=False, save_plots=False)
    assert "[4/5] Loading ion S2 fitted areas from disk..." in capsys.readouterr().out
    for k in ("A_ion", "dA_ion", "g_S2", "N_e_meas", "dN_e_meas", "r", "dr", "norm_A_ion", "dnorm_A_ion"):
        np.testing.assert_array_equal(a_mem[k], a_disk[k], err_msg=k)
    assert r_mem.g_S2 == r_disk.g_S2 and r_mem.A_x_mean == r_disk.A_x_mean
    assert isinstance(r_disk, CalibrationResults)


def test_lab_old_folders(tmp_path: Path) -> None:
    """The lab's folders: s2_areas.npy alone (refitted here), or with its s2_results.json (mean, ci95 used;
    mean_err = ci95/1.96), and xray_areas.npy without JSON."""
    rng = np.random.default_rng(13)
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE[:4]])
    fitted = write_run_data(run, rng, a_x={2375: 2.005})
    for i, s in enumerate(run.sets):
        folder = run.set_output_dir(s.name)
        for f in folder.iterdir():
            if f.name not in ("s2_areas.npy", "xray_areas.npy"):
                f.unlink()
        if i % 2 == 0:   # the seed's s2_results.json
            fr = fitted[s.name].fit_result
            (folder / "s2_results.json").write_text(json.dumps({
                "method": "s2_area_pipeline", "params": {"set_metadata": {}}, "mean": fr.mean, "sigma": fr.sigma,
                "ci95": fr.ci95, "fit_success": True}))
    assert load_s2area(run.set_output_dir(run.sets[1].name)).method == "loaded_from_npy"
    res, arr = calibrate_and_analyze(run, None, flag_plot=False, save_plots=False, verbose=False,
                                     ion_fit_config=FitConfig(bin_cuts=(0.0, 6.0), nbins=100))
    assert arr["usable"].all()
    for i, name in enumerate(arr["set_name"]):
        fr = fitted[name].fit_result
        if list(s.name for s in run.sets).index(name) % 2 == 0:
            assert arr["A_ion"][i] == fr.mean and arr["dA_ion"][i] == pytest.approx(fr.mean_err, rel=1e-5)
        else:  # refitted from the areas with the given options: close to the original fit
            assert arr["A_ion"][i] == pytest.approx(fr.mean, abs=3 * fr.mean_err)
        assert abs(arr["r"][i] - true_r(arr["drift_field"][i])) < 4 * arr["dr"][i]


def test_failed_set_listed_and_excluded(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE[:5]])
    fitted = write_run_data(run, rng, a_x={2375: 2.005})
    bad = run.sets[2].name
    fitted[bad] = S2Areas(fitted[bad].source_dir, np.full(5, 1.0), "test", {}, None, None, None, False,
                          FitResult(model="gauss", reason="too few events in range: 5 < min_events=30"))
    res, arr = calibrate_and_analyze(run, fitted, flag_plot=False, save_plots=False, verbose=False)
    i = list(arr["set_name"]).index(bad)
    assert not arr["usable"][i] and math.isnan(arr["r"][i]) and arr["usable"].sum() == 4
    assert res.model_fits[2375.0]["thomas_imel"].n_points == 4
    _, rows = read_csv(run.output_dir / "RUNT_recomb_factors.csv")
    row = next(r for r in rows if r["set_name"] == bad)
    assert row["used_in_model_fit"] == "False" and "too few events" in row["reason"]


# ----------------------------------------------------------------------------------------------- external g_S2
def test_external_lab_file_provenance_and_el_check(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    path = lab_gs2_file(tmp_path / "xray_calibration_results.json")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE[:4]],
                   calibration=CalibrationConfig(gs2_path=path))
    fitted = write_run_data(run, rng, a_x={2375: 2.005})
    # the lab's file does not say its EL field: refused unless stated (or explicitly allowed)
    with pytest.raises(ConfigError, match="EL field unknown"):
        calibrate_and_analyze(run, fitted, flag_plot=False, save_plots=False, verbose=False)
    res, arr = calibrate_and_analyze(run, fitted, gs2_el_field_V_cm=2375.0, flag_plot=False, save_plots=False,
                                     verbose=False)
    (e,) = res.entries
    assert e.source == SOURCE_FILE and e.g_S2 == pytest.approx(2.005 / N_X) and not e.el_mismatch_allowed
    assert e.provenance["path"] == str(path.resolve()) and e.provenance["sha256"] == sha
    assert e.provenance["format"] == "lab xray_calibration_results.json"
    assert e.provenance["el_field_V_cm"] == 2375.0
    assert np.all(arr["g_S2"] == e.g_S2)
    doc = json.loads((run.output_dir / "RUNT_calibration.json").read_text())
    assert doc["external_sources"][0]["sha256"] == sha
    assert doc["gs2_by_el_field"][0]["source"] == SOURCE_FILE
    # refused for a run at another EL field ...
    run2 = make_run(tmp_path / "b", [(g, g + 2700) for g in FIELDS_GATE[:3]])
    write_run_data(run2, rng, a_x={3375: 7.83})
    with pytest.raises(ConfigError, match="3375"):
        calibrate_and_analyze(run2, None, gs2=path, gs2_el_field_V_cm=2375.0, flag_plot=False, save_plots=False,
                              verbose=False)
    # ... unless explicitly allowed, which is recorded
    res2, _ = calibrate_and_analyze(run2, None, gs2=path, gs2_el_field_V_cm=2375.0, allow_el_mismatch=True,
                                    flag_plot=False, save_plots=False, verbose=False)
    assert res2.entries[0].el_mismatch_allowed and res2.entries[0].calibration_el_field_V_cm == 2375.0
    assert res2.entries[0].el_field_V_cm == 3375.0


def test_own_calibration_file_reused_per_el_field(tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    xrun = make_run(tmp_path / "x", [(100, 2000), (100, 2800)], run_id="RUNX")
    write_run_data(xrun, rng, a_x={2375: 2.005, 3375: 7.83})
    xres, _ = calibrate_and_analyze(xrun, None, flag_plot=False, save_plots=False, verbose=False)
    cal = xrun.output_dir / "RUNX_calibration.json"
    entries = load_external_gs2(cal, W_eV=W, E_x_eV=E_X)
    assert [e.calibration_el_field_V_cm for e in entries] == [2375.0, 3375.0]
    assert all(e.provenance["run_id"] == "RUNX" for e in entries)
    run = make_run(tmp_path / "y", [(g, g + 2700) for g in FIELDS_GATE[:3]], calibration=CalibrationConfig(gs2_path=cal))
    write_run_data(run, rng, a_x={3375: 7.83})
    res, arr = calibrate_and_analyze(run, None, flag_plot=False, save_plots=False, verbose=False)
    (e,) = res.entries
    assert e.g_S2 == xres.entry_for(3375).g_S2 and e.source == SOURCE_FILE
    assert e.provenance["run_id"] == "RUNX" and e.provenance["el_field_V_cm"] == 3375.0


def test_run_calibration_analysis_saves_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(29)
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE[:4]])
    write_run_data(run, rng, a_x={2375: 2.005})
    res, arr = run_calibration_analysis(run, None, xray_bin_cuts=(0.6, 20), xray_nbins=100, flag_plot=False,
                                        save_plots=True)
    assert "[4/5] Loading ion S2 fitted areas from disk..." in capsys.readouterr().out
    figs = {p.name for p in (run.output_dir / "figures").iterdir()}
    for stem in ("RUNT_xray_hist_EL2375", "RUNT_recombination_EL2375", "RUNT_s2_vs_drift_normalized_EL2375"):
        assert f"{stem}.png" in figs and f"{stem}.pdf" in figs
    assert res.entries[0].xray_fit is not None and res.entries[0].xray_fit.config["bin_cuts"] == [0.6, 20.0]
