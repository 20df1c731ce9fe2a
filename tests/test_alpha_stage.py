"""The run-level alpha analysis on a simulated two-set run in the new DAQ layout."""
from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from s2lib.alpha.simulate import AlphaSimConfig, simulate_alpha_set
from s2lib.alpha.stage import analyse_alpha_run
from s2lib.config.config import ConfigWarning, config_from_dict
from s2lib.errors import DataError

SETS = ("FieldScan_Gate0100_Anode2000", "FieldScan_Gate0200_Anode2100")


def test_alpha_run_artifacts_and_tags(tmp_path: Path) -> None:
    for k, name in enumerate(SETS):
        simulate_alpha_set(tmp_path / "raw" / name, tmp_path / "truth" / f"{name}.npz", layout="new", seed=30 + k,
                           config=AlphaSimConfig(n_files=2, frames_per_file=988), stem=f"SIM_20260101_{k}")
    data = {"run_id": "RA", "description": "alpha", "data": {"raw_data_path": "raw", "output_base": "out"},
            "multi_isotope": {"enabled": True}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        cfg = config_from_dict(data, base_dir=tmp_path)
    doc = analyse_alpha_run(cfg)
    stored = json.loads((tmp_path / "out" / "RA" / "RA_alpha_calibration.json").read_text())
    assert stored["windows"]["space"] == "sca" and stored["calibration_used"] == "order_2"
    assert doc["windows"]["windows"].keys() == {"Th228", "Ra224", "Rn220", "Po216", "Po212"}
    lo, hi = stored["windows_MeV"]["Rn220"]
    assert lo < 6.288 < hi
    names = list(doc["windows"]["windows"])
    for name in SETS:
        truth = np.load(tmp_path / "truth" / f"{name}.npz")
        label = np.load(tmp_path / "out" / "RA" / name / "alpha_isotope.npy")
        assert label.shape == (1976,)
        tnames = [str(n) for n in truth["names"]]
        true_idx = np.array([names.index(tnames[i]) for i in truth["isotope"]])
        tagged = label >= 0
        assert np.mean(label[tagged] == true_idx[tagged]) > 0.95
        assert sum(doc["tag_counts"][name].values()) == 1976
    rows = list(csv.DictReader((tmp_path / "out" / "RA" / "RA_alpha_activity.csv").open()))
    assert len(rows) == 2 * 2 * 5 and set(rows[0]) == {"set", "isotope", "t_start_s", "t_end_s", "live_s", "counts",
                                                      "rate_hz", "rate_err_hz"}
    po = [float(r["rate_hz"]) for r in rows if r["isotope"] == "Po212"]
    assert np.mean(po) == pytest.approx(12.8 * 0.98, rel=0.15)   # 0.6406 × 20 Hz × window efficiency
    assert not any(p.name.startswith("alpha") for p in (tmp_path / "raw" / SETS[0]).iterdir())


def test_run_without_alpha_files_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "raw" / SETS[0]
    folder.mkdir(parents=True)
    from s2lib.io.wfm import write_wfm
    write_wfm(folder / "RUN_P2_1Wfm.wfm", np.zeros((2, 10), np.int8), dt_s=1e-8, t0_s=0, scale_V=0.01, offset_V=0)
    data = {"run_id": "RB", "description": "x", "data": {"raw_data_path": "raw", "output_base": "out"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        cfg = config_from_dict(data, base_dir=tmp_path)
    with pytest.raises(DataError, match="no alpha-channel"):
        analyse_alpha_run(cfg)
