"""s2lib.calib.calibration pieces with hand-checkable outputs: the constants with provenance, the results object,
the empty X-ray case, the progress lines and the artifact locations (default configuration throughout;
the end-to-end calibration with simulated truth is in test_calibration.py)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from s2lib.physics import physics
from s2lib.calib.calibration import FIGURE_KINDS, RECOMB_COLUMNS, S2_VS_DRIFT_COLUMNS, CalibrationResults, xray_gs2
from s2lib.analysis.calibrate_stage import _constants, _fit_config, calibrate_and_analyze
from s2lib.config.config import ExperimentConfig, RunConfig
from s2lib.stats.fitting import FitConfig
from s2lib.calib.gs2_sources import SOURCE_FIT, GS2Entry
from s2lib.config.runs import Run, SetInfo
from s2lib.io.store import S2Areas, store_xrays


def _run(tmp_path: Path, gates=(100, 400), el_V=1900.0, *, recoil_energy: float | None = None,
         source: str | None = None) -> Run:
    """A Run with sets at the given gate voltages (anode = gate + el_V), fields from the domain formulas."""
    e_r = physics.recoil_energy_keV("Th228") if recoil_energy is None else recoil_energy
    cfg = RunConfig(run_id="RUNU", raw_data_path=tmp_path / "raw", output_base=tmp_path / "out",
                    experiment=ExperimentConfig(target_isotope="Th-228", recoil_energy=e_r))
    if source is not None:
        cfg = RunConfig(**{**cfg.__dict__, "source": source})
    n = 4.87742e19
    sets = []
    for g in gates:
        ed, el = g / 1.4, el_V / 0.8
        sets.append(SetInfo(f"FieldScan_Gate{g:04d}_Anode{int(g + el_V):04d}", tmp_path / "raw" / str(g), (), g,
                            int(g + el_V), None, ed, el, ed / n * 1e17, el / n * 1e17, 1.0, 14.0))
    return Run(cfg, tuple(sets), n)


def test_constants_with_units_and_provenance(tmp_path: Path) -> None:
    const, iso, W, E_x, E_R, n_exp = _constants(_run(tmp_path, source="run.yaml"))
    assert iso == "Th228" and (W, E_x) == (22.0, 12300.0)
    assert E_R == pytest.approx(96.84421, abs=1e-5)       # 5520.12·4/228 (physics.ALPHA_DECAY_Q_KEV)
    assert n_exp == pytest.approx(4402.0096, abs=1e-3)    # 96 844.21 eV / 22 eV
    assert const == {
        "W_eV": {"value": 22.0, "unit": "eV", "source": "experiment.W_value (run.yaml)"},
        "E_x_eV": {"value": 12300.0, "unit": "eV", "source": "experiment.E_gamma_xray"},
        "E_R_keV": {"value": E_R, "unit": "keV", "source": const["E_R_keV"]["source"]},
        "N_e_exp": {"value": pytest.approx(4402.0096, abs=1e-3), "unit": "e⁻", "source": "E_R / W"},
        "N_x": {"value": pytest.approx(559.0909, abs=1e-4), "unit": "e⁻", "source": "E_x / W"},
        "isotope": {"value": "Th228", "unit": "", "source": "experiment.target_isotope"},
    }
    assert const["E_R_keV"]["source"] == "Q·4/A of Th228 (physics.recoil_energy_keV)"
    const2, *_ = _constants(_run(tmp_path))
    assert const2["W_eV"]["source"] == "experiment.W_value (configuration)"


def test_configured_recoil_energy_far_from_q_value_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match=r"configured recoil energy 90 keV differs from Q·4/A of Th228 "
                                         r"\(96.8 keV\); using the configured value"):
        const, _, _, _, E_R, n_exp = _constants(_run(tmp_path, recoil_energy=90.0))
    assert E_R == 90.0 and n_exp == pytest.approx(90_000 / 22, rel=1e-12)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _constants(_run(tmp_path, recoil_energy=96.8))  # the lab's rounded 96.8 is within 0.5 keV: no warning


def _entry(el: float, g: float = 0.00359) -> GS2Entry:
    return GS2Entry(el, g * 559.0909, 0.076, 559.0909, g, 0.00014, SOURCE_FIT, 100, True, "", el)


def test_results_lookup_and_single_field_attributes() -> None:
    one = CalibrationResults("R", (_entry(2375.0),), 4402.0, 96.8, 22.0, 12300.0, "Th228")
    assert one.g_S2 == 0.00359 and one.A_x_mean == pytest.approx(0.00359 * 559.0909)
    assert one.N_x == pytest.approx(559.0909, abs=1e-4)
    assert one.entry_for(2375.4) is one.entries[0]  # rounded to 1 V/cm
    with pytest.raises(KeyError) as err:
        one.entry_for(3375.0)
    assert "no g_S2 for EL 3375 V/cm; have [2375.0]" in str(err.value)
    two = CalibrationResults("R2", (_entry(2375.0), _entry(3375.0, 0.014)), 4402.0, 96.8, 22.0, 12300.0, "Th228")
    with pytest.raises(ValueError, match=r"run R2 has 2 EL fields: use entry_for\(el_field\)"):
        _ = two.g_S2
    with pytest.raises(ValueError, match="run R2 has 2 EL fields"):
        _ = two.A_x_mean
    assert two.entry_for(3375).g_S2 == 0.014


def test_figure_lookup() -> None:
    files = {"png": Path("a.png"), "pdf": Path("a.pdf")}
    res = CalibrationResults("R", (_entry(2375.0),), 4402.0, 96.8, 22.0, 12300.0, "Th228",
                             figures={"recombination_EL2375": files})
    assert FIGURE_KINDS == ("xray_hist", "recombination", "s2_vs_drift_normalized")
    assert res.figure("recombination", 2375.2) == files
    assert res.figure("xray_hist", 2375.0) is None
    with pytest.raises(ValueError, match="unknown figure kind 'hist'; known: xray_hist, recombination, "
                                         "s2_vs_drift_normalized"):
        res.figure("hist", 2375.0)


def test_results_json_document() -> None:
    ext = GS2Entry(2375.0, 2.0, 0.07, 559.09, 0.0036, 0.00013, "file", 0, True, "", 2375.0,
                   provenance={"path": "/lab/gs2.json"})
    res = CalibrationResults("R", (ext,), 4402.0, 96.8, 22.0, 12300.0, "Th228", {"S1": 2375.0}, {}, {"c": 1})
    d = res.to_dict()
    assert d["schema_version"] == 1 and d["run_id"] == "R" and d["isotope"] == "Th228"
    assert d["constants"] == {"c": 1} and d["set_el_field_V_cm"] == {"S1": 2375.0}
    assert d["external_sources"] == [{"path": "/lab/gs2.json"}] and d["model_fits"] == {}
    assert d["gs2_by_el_field"][0]["g_S2"] == 0.0036
    assert any("X-ray charge does not recombine" in a for a in d["assumptions"])
    own = CalibrationResults("R", (_entry(2375.0),), 4402.0, 96.8, 22.0, 12300.0, "Th228").to_dict()
    assert own["external_sources"] == []
    json.dumps(d, allow_nan=False)


def test_no_xray_areas_gives_an_unusable_entry() -> None:
    e = xray_gs2(np.zeros(0), 2375.4, FitConfig(), W_eV=22.0, E_x_eV=12300.0, sets=("a", "b"))
    assert e.el_field_V_cm == 2375.0 and e.calibration_el_field_V_cm == 2375.0
    assert math.isnan(e.g_S2) and math.isnan(e.A_x) and e.N_x == pytest.approx(559.0909, abs=1e-4)
    assert not e.usable and e.reason == "no X-ray areas in the sets at EL 2375 V/cm" and e.sets == ("a", "b")


def test_xray_gs2_uses_the_given_fit_config() -> None:
    rng = np.random.default_rng(4)
    areas = rng.normal(2.0, 0.5, 4000)
    e = xray_gs2(areas, 2375.0, FitConfig(bin_cuts=(0.6, 20.0), nbins=100), W_eV=22.0, E_x_eV=12300.0)
    assert e.provenance["fit_config"]["bin_cuts"] == [0.6, 20.0] and e.provenance["fit_config"]["nbins"] == 100
    assert e.xray_fit.bin_edges[0] == 0.6 and e.xray_fit.bin_edges.size == 101
    assert abs(e.A_x - 2.0) < 3 * e.dA_x  # truth 2.0 mV·µs within 3σ
    assert e.g_S2 == pytest.approx(e.A_x / (12300 / 22), rel=1e-12)


def test_fit_config_from_other_forms() -> None:
    default = FitConfig(nbins=77)
    assert _fit_config(None, default) is default
    cfg = FitConfig(nbins=55)
    assert _fit_config(cfg, default) is cfg
    assert _fit_config({"nbins": 33, "not_a_fit_key": 1}, default).nbins == 33


def test_calibrate_progress_artifacts_and_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path)
    rng = np.random.default_rng(7)
    ion = {}
    for s in run.sets:
        store_xrays(run.set_output_dir(s.name), rng.normal(2.0, 0.5, 2000), None, {"n_events": 2000})
        ion[s.name] = S2Areas(s.name, rng.normal(1.2, 0.4, 2000))
    ion["FieldScan_Gate9999_Anode0000"] = S2Areas("x", np.ones(3))
    out = tmp_path / "elsewhere"
    with pytest.warns(UserWarning, match=r"ion_fitted_areas: not sets of run RUNU, ignored: "
                                         r"\['FieldScan_Gate9999_Anode0000'\]"):
        res, arrays = calibrate_and_analyze(run, ion, save_plots=False, out_dir=out)
    text = capsys.readouterr().out
    for line in ("[1/5] Loading X-ray results...", "      EL 2375 V/cm: 4000 X-ray areas from 2 set(s)",
                 "[2/5] Fitting X-ray histogram...", "[3/5] Computing calibration constants...",
                 "[4/5] Using provided ion fitted areas (3 sets)", "[5/5] Computing recombination fractions..."):
        assert line in text
    assert "N_exp = 4402.0 e⁻ (Th228, E_R = 96.8 keV, W = 22 eV)" in text
    assert "(ALLOWED EL MISMATCH)" not in text
    for name in ("RUNU_s2_vs_drift.csv", "RUNU_recomb_factors.csv", "RUNU_calibration.json"):
        assert (out / name).is_file()
    assert not (run.output_dir / "RUNU_calibration.json").exists() and res.figures == {}
    header = (out / "RUNU_recomb_factors.csv").read_text().splitlines()[0].split(",")
    assert header == list(RECOMB_COLUMNS) and header[:len(S2_VS_DRIFT_COLUMNS)] == list(S2_VS_DRIFT_COLUMNS)
    assert res.isotope == "Th228" and res.set_el_field == {s.name: 2375.0 for s in run.sets}
    assert set(res.model_fits[2375.0]) == {"thomas_imel", "empirical"}
    assert res.model_fits[2375.0]["thomas_imel"].n_points == 2 == int(arrays["usable"].sum())
    # g_S2 from the pooled 4000 X-rays: A_x within 3σ of 2.0
    assert abs(res.entries[0].A_x - 2.0) < 3 * res.entries[0].dA_x
    capsys.readouterr()
    del ion["FieldScan_Gate9999_Anode0000"]
    res2, _ = calibrate_and_analyze(run, ion, gs2=(0.0036, 0.0001), gs2_el_field_V_cm=2375.0,
                                    save_plots=False, verbose=True)
    text = capsys.readouterr().out
    assert "      g_S2 from given value: this run's X-rays are not used" in text
    assert "      skipped (external g_S2)" in text
    assert (run.output_dir / "RUNU_calibration.json").is_file()  # default out_dir is the run's folder
    assert res2.entries[0].g_S2 == 0.0036


def _with_xrays(run: Run, rng: np.random.Generator) -> dict[str, S2Areas]:
    ion = {}
    for s in run.sets:
        store_xrays(run.set_output_dir(s.name), rng.normal(2.0, 0.5, 2000), None, {"n_events": 2000})
        ion[s.name] = S2Areas(s.name, rng.normal(1.2, 0.4, 2000))
    return ion


def test_warning_points_at_the_caller_and_results_carry_constants(tmp_path: Path) -> None:
    run = _run(tmp_path, recoil_energy=90.0)
    ion = _with_xrays(run, np.random.default_rng(8))
    with pytest.warns(UserWarning, match="configured recoil energy 90 keV") as rec:
        res, arrays = calibrate_and_analyze(run, ion, save_plots=False, verbose=False)
    # stacklevel: the warning names the user's call, not the line inside s2lib/calib/calibration.py
    assert not rec[0].filename.endswith("calibration.py"), rec[0].filename
    assert (res.E_x_eV, res.W_eV, res.E_R_keV, res.N_e_exp) == (12300.0, 22.0, 90.0, pytest.approx(90_000 / 22))
    e = res.entries[0]
    fit = res.model_fits[2375.0]["thomas_imel"]
    assert fit.gs2_rel_err == pytest.approx(e.d_g_S2 / e.g_S2, rel=1e-12) and fit.gs2_rel_err > 0
    rows = list(__import__("csv").DictReader((tmp_path / "out" / "RUNU" / "RUNU_recomb_factors.csv").open()))
    assert float(rows[0]["dN_e_meas_stat"]) == pytest.approx(arrays["dN_e_meas_stat"][0], rel=1e-12)


def test_run_without_xray_files_gets_an_unusable_entry(tmp_path: Path) -> None:
    run = _run(tmp_path)
    rng = np.random.default_rng(9)
    ion = {s.name: S2Areas(s.name, rng.normal(1.2, 0.4, 500)) for s in run.sets}
    res, arrays = calibrate_and_analyze(run, ion, save_plots=False, verbose=False)
    assert res.entries[0].reason == "no X-ray areas in the sets at EL 2375 V/cm" and not res.entries[0].usable
    assert not arrays["usable"].any()


def test_allowed_el_mismatch_is_announced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path)
    rng = np.random.default_rng(10)
    ion = {s.name: S2Areas(s.name, rng.normal(1.2, 0.4, 500)) for s in run.sets}
    res, _ = calibrate_and_analyze(run, ion, gs2=(0.014, 0.002), gs2_el_field_V_cm=3375.0, allow_el_mismatch=True,
                                   save_plots=False)
    out = capsys.readouterr().out
    assert "[given value] (ALLOWED EL MISMATCH); N_x = 559.1 e⁻" in out
    assert res.entries[0].el_mismatch_allowed and res.entries[0].g_S2 == 0.014


def test_figures_are_saved_per_el_field(tmp_path: Path) -> None:
    run = _run(tmp_path)
    ion = _with_xrays(run, np.random.default_rng(11))
    res, _ = calibrate_and_analyze(run, ion, save_plots=True, verbose=False)
    for kind in FIGURE_KINDS:
        files = res.figure(kind, 2375.0)
        assert files is not None and files["png"].is_file() and files["pdf"].is_file(), kind
        assert files["png"].parent == run.output_dir / "figures"
