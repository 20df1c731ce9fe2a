"""The per-set alpha artifact (atomic, self-describing, checked) and the lab's energy-map reader."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from s2lib.alpha.amplitude import SCA_DIVISOR_V
from s2lib.alpha.artifact import ALPHA_FILES, load_alpha
from s2lib.alpha.energy_map import decode_lab_uid, read_energy_map, read_energy_maps
from s2lib.alpha.measure import measure_alpha_set
from s2lib.alpha.simulate import AlphaSimConfig, simulate_alpha_set
from s2lib.errors import DataError

SET = "FieldScan_Gate0200_Anode2100"


def test_measure_and_store_roundtrip(tmp_path: Path) -> None:
    cfg = AlphaSimConfig(n_files=2, frames_per_file=40, pileup_probability=0.0)
    simulate_alpha_set(tmp_path / "raw" / SET, tmp_path / "truth.npz", config=cfg, seed=4)
    truth = np.load(tmp_path / "truth.npz")
    out = tmp_path / "out" / SET
    a = measure_alpha_set(tmp_path / "raw" / SET, out, raw_root=tmp_path / "raw")
    assert a.sca.shape == (80,) and a.event_ids.shape == (80, 2) and a.frames_per_file == [40, 40]
    assert a.meta["units"]["sca"].startswith("u_SCA") and a.meta["estimator"]["savgol_window_used"] == [25]
    assert a.meta["files"][0] == {"pmt": "SIM_20260101_Gate0800_Anode2700_P2_1Wfm_Ch1.wfm",
                                  "alpha": "SIM_20260101_Gate0800_Anode2700_P2_1Wfm_Ch4.wfm"}
    clean = a.flags == 0
    assert clean.sum() >= 78
    # amplitude = simulated pulse height / 1.058 within noise (0.03 V/sample, smoothed) and 8-bit steps
    assert np.abs(a.sca - truth["sca_true"])[clean].max() < 0.05
    assert np.median(np.abs(a.sca - truth["sca_true"])[clean]) < 0.015
    assert np.allclose(a.meta["trigger_time_ref_s"] + a.trigger_s, truth["trigger_time_s"], atol=1e-6)
    (out / ALPHA_FILES["sca"]).write_bytes((out / ALPHA_FILES["flags"]).read_bytes())
    with pytest.raises(DataError, match="checksum"):
        load_alpha(out)
    with pytest.raises(DataError, match="inside the raw data folder"):
        measure_alpha_set(tmp_path / "raw" / SET, tmp_path / "raw" / "x", raw_root=tmp_path / "raw")
    assert not (tmp_path / "raw" / "x").exists()
    assert SCA_DIVISOR_V == 1.058


def test_energy_map_8b_and_6b(tmp_path: Path) -> None:
    recs = [(0, 4.5), (1, 5.26), (64 * 3 + 7, 7.5)]
    (tmp_path / "m8").mkdir()
    (tmp_path / "m8" / "energy_map_f000000-f000009.bin").write_bytes(
        b"".join(struct.pack("<If", u, e) for u, e in recs))
    uid, e = read_energy_maps(tmp_path / "m8")
    assert uid.tolist() == [0, 1, 199] and e == pytest.approx([4.5, 5.26, 7.5])
    assert [x.tolist() for x in decode_lab_uid(uid)] == [[0, 0, 3], [0, 1, 7]]
    p6 = tmp_path / "energy_map_f000001-f000001.bin"
    p6.write_bytes(b"".join(struct.pack("<IH", u, round(e / 0.1)) for u, e in recs))
    uid6, e6 = read_energy_map(p6, "6b", 0.1)
    assert uid6.tolist() == [0, 1, 199] and e6 == pytest.approx([4.5, 5.3, 7.5])   # 0.1 u_SCA steps
    two = tmp_path / "energy_map_f000002-f000002.bin"   # 16 bytes: two 8b records, not whole 6b ones
    two.write_bytes(b"".join(struct.pack("<If", u, e) for u, e in recs[:2]))
    with pytest.raises(DataError, match="6-byte '6b' records.*fits 8b") as err:
        read_energy_map(two, "6b")
    assert "energy_map_f000002-f000002.bin" in str(err.value)


def test_energy_map_malformed(tmp_path: Path) -> None:
    bad = tmp_path / "energy_map_f000000-f000000.bin"
    bad.write_bytes(struct.pack("<If", 1, 4.5) + b"\x00\x01\x02")
    with pytest.raises(DataError, match="not a whole number of 8-byte"):
        read_energy_map(bad)
    bad.write_bytes(struct.pack("<If", 1, float("nan")))
    with pytest.raises(DataError, match="record 0 .uid 1. holds a non-finite"):
        read_energy_map(bad)
    with pytest.raises(ValueError, match="energy_mapping.format"):
        read_energy_map(bad, "4b")
    (tmp_path / "d").mkdir()
    for k in range(2):   # the lab's uid collides when two chunks repeat a uid
        (tmp_path / "d" / f"energy_map_f{k:06d}-f{k:06d}.bin").write_bytes(struct.pack("<If", 5, 4.0))
    with pytest.raises(DataError, match="more than once"):
        read_energy_maps(tmp_path / "d")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no energy_map"):
        read_energy_maps(tmp_path / "empty")
