"""Alpha-tagged run end to end (simulate → integration → alpha stage → calibration, default configuration):
per-isotope recoil S2 means and 1 − r against the simulator's truth, tagging purity/efficiency against truth,
the isotope column of <run_id>_recomb_factors.csv, and the (file, frame) join of S2 frames to alpha tags."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from s2lib.validate.alpha_closure import CLOSURE_OVERRIDES, simulate_and_analyse, tagged_comparisons
from s2lib.alpha.isotopes import CHAIN
from s2lib.analysis.alpha_recoil import isotope_labels
from s2lib.calib.calibration import RECOMB_COLUMNS
from s2lib.analysis.report_helpers import read_table_csv
from s2lib.io.store import read_json


@pytest.fixture(scope="module")
def tagged(tmp_path_factory):
    res = simulate_and_analyse(tmp_path_factory.mktemp("tagged") / "run", seed=5)
    return res, tagged_comparisons(res)


def test_per_isotope_s2_means_and_one_minus_r_match_truth(tagged):
    _, out = tagged
    phys = out["physics"]
    assert {(p["set"], p["isotope"]) for p in phys} == {(s, i) for s in {p["set"] for p in phys} for i in CHAIN}
    assert len({p["set"] for p in phys}) == len(CLOSURE_OVERRIDES["drift_fields_V_cm"])
    for p in phys:
        tol = max(0.03 * p["s2_truth"], 3 * p["s2_mean_err"])
        assert abs(p["s2_mean"] - p["s2_truth"]) <= tol, p
        assert abs(p["one_minus_r"] / p["one_minus_r_truth"] - 1) <= 0.05, p
    # the isotopes differ: Po-212 recoils (168.9 keV) give larger S2 than Th-228 recoils (96.8 keV) at each field
    for s in {p["set"] for p in phys}:
        by = {p["isotope"]: p["s2_mean"] for p in phys if p["set"] == s}
        assert by["Po212"] > 1.3 * by["Th228"]


def test_tagging_purity_and_efficiency_against_truth(tagged):
    _, out = tagged
    for t in out["tagging"]:
        assert t["efficiency"] > 0.9 and t["purity"] > 0.9, t
        # the windows' predicted values agree with the truth counts within 3 binomial σ (+0.5 % for the model)
        for kind, n in (("efficiency", t["n_true"]), ("purity", t["n_tagged"])):
            p = t[f"expected_{kind}"]
            assert abs(t[kind] - p) <= 3 * np.sqrt(p * (1 - p) / n) + 0.005, (kind, t)
    res = out["calibration"]
    assert res["anchors"] == list(CHAIN) and np.max(np.abs(res["pulls"])) < 3


def test_recomb_factors_csv_has_isotope_rows_and_keeps_the_all_frame_rows(tagged):
    res, _ = tagged
    run = res["run"]
    path = run.output_dir / f"{run.run_id}_recomb_factors.csv"
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == list(RECOMB_COLUMNS) and "isotope" in reader.fieldnames
    sets = sorted(s.name for s in run.sets)
    assert sorted(r["set_name"] for r in rows if r["isotope"] == "all") == sets
    for iso in CHAIN:
        assert sorted(r["set_name"] for r in rows if r["isotope"] == iso) == sets
    # the all-frames rows are those of the s2_vs_drift table, and the default reader returns only them
    drift = read_table_csv(run.output_dir / f"{run.run_id}_s2_vs_drift.csv")
    default = read_table_csv(path)
    assert [r["set_name"] for r in default] == [r["set_name"] for r in drift]
    assert [r["s2_mean"] for r in default] == [r["s2_mean"] for r in drift]
    assert len(read_table_csv(path, isotope=None)) == len(rows) == 6 * len(sets)
    doc = read_json(run.output_dir / f"{run.run_id}_alpha_recombination.json")
    assert set(doc["isotopes"]) == set(CHAIN)
    assert doc["isotopes"]["Po212"]["recoil_energy_keV"] == pytest.approx(8954.12 * 4 / 212)
    truth = res["truth"]["alpha"]["isotopes"]
    for iso in CHAIN:     # Thomas–Imel per isotope over the three fields: a and S of the simulator within 3σ
        ti = doc["isotopes"][iso]["thomas_imel"]["2375"]
        assert ti["fit_success"] and ti["n_points"] == len(sets) == 3
        assert abs(ti["values"]["a"] - truth[iso]["recomb_a_V_cm"]) <= 3 * ti["errors"]["a"], (iso, ti["values"])
        assert abs(ti["values"]["S"] - 0.2) <= 3 * ti["errors"]["S"], (iso, ti["values"])
    # frames per set: tagged isotopes + none = all S2 frames
    for s in run.sets:
        counts = doc["frames"][s.name]
        assert sum(counts.values()) == CLOSURE_OVERRIDES["n_files"] * CLOSURE_OVERRIDES["frames_per_file"]


def test_isotope_labels_join_on_file_and_frame():
    s2_ids = np.array([[0, 0], [0, 1], [1, 0], [1, 5], [2, 0]])
    alpha_ids = np.array([[1, 0], [0, 1], [0, 0], [1, 5]])     # another order, file 2 missing
    labels = np.array([3, 1, 0, 4])
    assert isotope_labels(s2_ids, alpha_ids, labels).tolist() == [0, 1, 3, 4, -1]


def test_new_daq_tagged_run_pairs_ch3_with_ch4_988_frames(tmp_path):
    """The simulator's alpha-tagged run in the new DAQ layout: CH3 (PMT) / CH4 (silicon) batches of 988 frames,
    found by the run's set discovery and paired frame by frame with matching trigger times; the PMT truth's
    recoil electrons follow each frame's isotope (Po-212 recoils carry ≈ 1.7× the electrons of Th-228's)."""
    from s2lib.sim._sim_alpha_pmt import simulate_alpha_run
    from s2lib.alpha.channels import pair_set
    from s2lib.config.runs import find_set_files
    from s2lib.io.wfm import read_header

    root = simulate_alpha_run(tmp_path / "run", seed=2, layout="new",
                              **{**CLOSURE_OVERRIDES, "drift_fields_V_cm": [1000.0], "n_files": 1,
                                 "frames_per_file": 988})
    set_dir = next((root / "raw").iterdir())
    pmt, issues = find_set_files(set_dir)
    assert not issues and [p.name.endswith("__CH3.wfm") for p in pmt] == [True]
    assert "_Batch001_" in pmt[0].name and read_header(pmt[0]).n_frames == 988
    pairing = pair_set(set_dir)
    assert pairing.pairs[0].alpha.name.endswith("__CH4.wfm") and pairing.frames_per_file.tolist() == [988]
    assert pairing.has_times and not pairing.issues
    assert pairing.event_ids[987].tolist() == [0, 987]
    truth = np.load(root / "truth" / f"{set_dir.name}.npz")
    names = [str(n) for n in truth["isotope_names"]]
    recoil = truth["event_type"] == 0
    mean_e = {n: truth["n_electrons"][recoil & (truth["isotope"] == i)].mean() for i, n in enumerate(names)}
    # expected ratio: N_exp ∝ E_R (168.9/96.8 = 1.745) × (1 − r) ratio at 1000 V/cm: Thomas–Imel with S = 0.2,
    # a = 400·√1.745 = 528.4 vs 400 V/cm: 0.16057 / 0.16824 = 0.9544 → 1.665
    assert mean_e["Po212"] / mean_e["Th228"] == pytest.approx(1.665, rel=0.05)


def test_validation_matrix_has_alpha_points():
    from s2lib.validate._validate_alpha import MIXTURE_REASON, mixture_not_judged
    from s2lib.validate.validate import matrix, quick_matrix

    pts = {p.name: p.simulation_parameters() for p in matrix()}
    assert pts["alpha_tagged"]["alpha_layout"] == "old"
    assert pts["alpha_new_daq"]["alpha_layout"] == "new" and pts["alpha_new_daq"]["frames_per_file"] == 988
    assert not any(p.name.startswith("alpha") for p in quick_matrix())
    comps = [{"quantity": "A_ion", "set": "S", "passed": False}, {"quantity": "A_x", "set": "S", "passed": True},
             {"quantity": "A_ion", "set": "S [Po212]", "passed": True}]
    marked = mixture_not_judged(comps[:2]) + comps[2:]
    assert marked[0]["measurable"] is False and marked[0]["passed"] is None and marked[0]["reason"] == MIXTURE_REASON
    assert marked[1] == comps[1] and marked[2] == comps[2]


def test_untagged_runs_get_no_isotope_rows_and_no_sections(tmp_path, capsys):
    from types import SimpleNamespace

    from s2lib.analysis.alpha_recoil import calibration_rows
    from s2lib.analysis.alpha_report import isotope_calibration_section, isotope_fit_section, isotope_summary_section

    plain = SimpleNamespace(run_id="R", output_dir=tmp_path,
                            config=SimpleNamespace(alpha=SimpleNamespace(enabled=False)))
    assert calibration_rows(plain, {}, None, 22.0) == []
    isotope_fit_section(plain, tmp_path / "figures")
    isotope_calibration_section(plain, tmp_path / "figures")
    isotope_summary_section(["R"], [tmp_path], tmp_path / "figures")
    assert capsys.readouterr().out == "" and not (tmp_path / "figures").exists()
    tagged = SimpleNamespace(run_id="T", output_dir=tmp_path,
                             config=SimpleNamespace(alpha=SimpleNamespace(enabled=True)))
    with pytest.warns(UserWarning, match="T_alpha_calibration.json is missing"):
        assert calibration_rows(tagged, {}, None, 22.0) == []
    isotope_fit_section(tagged, tmp_path / "figures")
    assert "alpha-tagged but the alpha stage's tags are missing" in capsys.readouterr().out
