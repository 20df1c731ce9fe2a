"""Activity per isotope from trigger times: hand-computed case and simulated rates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2lib.alpha.activity import activity_by_isotope
from s2lib.alpha.simulate import DEFAULT_RATES_HZ, AlphaSimConfig, simulate_alpha_set


def test_hand_computed_live_time_and_counts() -> None:
    # file 0: triggers at 0, 1, 3 s (live 3 s; frames 1, 2 count); file 1 after a 10 s dead time: 13, 15 s
    t = np.array([0.0, 1.0, 3.0, 13.0, 15.0])
    ids = np.array([[0, 0], [0, 1], [0, 2], [1, 0], [1, 1]])
    labels = np.array([1, 0, -1, 0, 1])
    per_file = activity_by_isotope(t, ids, labels, ("A", "B"))
    assert per_file.live_s.tolist() == [3.0, 2.0]
    assert per_file.counts.tolist() == [[1, 0], [0, 1]]
    assert per_file.rate_hz[0] == pytest.approx([1 / 3, 0.0])
    assert per_file.rate_err_hz[0, 1] == pytest.approx(1.1478 / 3)   # n = 0: 68 % upper limit
    both = activity_by_isotope(t, ids, labels, ("A", "B"), files_per_bin=2)
    assert both.live_s.tolist() == [5.0] and both.rate_hz[0] == pytest.approx([0.2, 0.2])
    assert both.rate_err_hz[0] == pytest.approx([0.2, 0.2])   # √1 / 5 s


def test_simulated_rates_recovered(tmp_path: Path) -> None:
    cfg = AlphaSimConfig(n_files=6, frames_per_file=300, n_points=160, pretrigger_s=0.4e-6)
    simulate_alpha_set(tmp_path / "raw" / "FieldScan_Gate0100_Anode2000", tmp_path / "truth.npz", config=cfg,
                       seed=21)
    tr = np.load(tmp_path / "truth.npz")
    names = tuple(str(n) for n in tr["names"])
    ids = np.column_stack([tr["file_index"], tr["frame_index"]])
    act = activity_by_isotope(tr["trigger_time_s"] - tr["trigger_time_s"][0], ids, tr["isotope"], names,
                              files_per_bin=6)
    assert act.t_end_s[0] > 20    # includes five 2 s dead times, which are not live time
    assert act.live_s[0] == pytest.approx(act.t_end_s[0] - 5 * 2.0, rel=0.02)
    for k, name in enumerate(names):
        assert act.rate_hz[0, k] == pytest.approx(DEFAULT_RATES_HZ[name], abs=3 * act.rate_err_hz[0, k])


def test_pmt_writer_hook_gets_per_frame_truth(tmp_path: Path) -> None:
    from s2lib.alpha.channels import pair_set
    from s2lib.alpha.isotopes import recoil_energy_keV
    from s2lib.io.wfm import open_wfm

    def writer(frames: dict, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        raw = np.zeros((frames["isotope"].size, 8), np.int16)
        raw[:, 0] = np.rint(frames["recoil_energy_keV"] * 10).astype(np.int16)   # encode the truth to check it
        return raw, {"dt_s": 2e-10, "t0_s": 0.0, "scale_V": 1e-3, "offset_V": 0.0}

    folder = tmp_path / "raw" / "FieldScan_Gate0100_Anode2000"
    cfg = AlphaSimConfig(n_files=2, frames_per_file=30, n_points=160, pretrigger_s=0.4e-6)
    simulate_alpha_set(folder, tmp_path / "t.npz", config=cfg, seed=2, pmt_writer=writer)
    tr = np.load(tmp_path / "t.npz")
    pairing = pair_set(folder)          # the PMT file carries the alpha file's trigger times
    with open_wfm(pairing.pairs[1].pmt) as f:
        got = f.raw[:, 0] / 10
    want = [recoil_energy_keV(str(tr["names"][i])) for i in tr["isotope"][30:]]
    assert got == pytest.approx(want, abs=0.06)
