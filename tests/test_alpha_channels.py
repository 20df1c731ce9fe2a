"""Alpha channel ingestion: paired PMT/silicon files, both DAQ layouts, trigger-time cross-check."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from s2lib.alpha.channels import find_channel_pairs, pair_key, pair_set
from s2lib.alpha.simulate import AlphaSimConfig, simulate_alpha_set
from s2lib.errors import DataError
from s2lib.config.runs import discover_sets, find_set_files
from s2lib.io.wfm import read_header, write_wfm

SET = "FieldScan_Gate0800_Anode2700"


@pytest.fixture(scope="module")
def new_daq(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("newdaq")
    cfg = AlphaSimConfig(n_files=2, frames_per_file=988, n_points=160, pretrigger_s=0.4e-6)
    simulate_alpha_set(root / "raw" / SET, root / "truth.npz", config=cfg, layout="new", seed=3)
    return root, dict(np.load(root / "truth.npz"))


def test_new_daq_layout_988_frames_read_and_paired(new_daq: tuple[Path, dict]) -> None:
    root, truth = new_daq
    names = sorted(p.name for p in (root / "raw" / SET).iterdir())
    assert names[0].endswith("__Batch001__CH3.wfm") and names[1].endswith("__Batch001__CH4.wfm")
    assert read_header(root / "raw" / SET / names[1]).n_frames == 988
    pairing = pair_set(root / "raw" / SET)
    assert pairing.frames_per_file.tolist() == [988, 988]
    assert [(p.pmt.name[-7:], p.alpha.name[-7:]) for p in pairing.pairs] == [("CH3.wfm", "CH4.wfm")] * 2
    assert "Batch002" in pairing.pairs[1].pmt.name and "Batch002" in pairing.pairs[1].alpha.name
    assert pairing.event_ids.shape == (1976, 2)
    assert pairing.event_ids[987].tolist() == [0, 987] and pairing.event_ids[988].tolist() == [1, 0]
    assert np.array_equal(pairing.event_ids[:, 0], truth["file_index"])
    assert np.array_equal(pairing.event_ids[:, 1], truth["frame_index"])
    # trigger times are the simulated ones (float32 fraction precision in the header: ~0.1 µs)
    t = pairing.t_ref_s + pairing.trigger_time_s
    assert np.max(np.abs(t - truth["trigger_time_s"])) < 1e-6
    assert pairing.has_times and pairing.issues == ()


def test_pmt_discovery_takes_ch3_in_the_same_order(new_daq: tuple[Path, dict]) -> None:
    root, _ = new_daq
    files, issues = find_set_files(root / "raw" / SET)
    assert issues == () and [f.name[-7:] for f in files] == ["CH3.wfm", "CH3.wfm"]
    assert list(files) == [p.pmt for p in pair_set(root / "raw" / SET).pairs]
    assert [d.path.name for d in discover_sets(root / "raw")] == [SET]


def _pair_files(folder: Path, stem: str, pmt_tok: str, alpha_tok: str, n: int = 6,
                alpha_times: np.ndarray | None = None) -> None:
    times = 1.7e9 + np.arange(n) * 0.05
    raw = np.zeros((n, 20), np.int8)
    for tok, tt in ((pmt_tok, times), (alpha_tok, times if alpha_times is None else alpha_times)):
        sec = np.floor(tt).astype(np.int64)
        write_wfm(folder / f"{stem}_{tok}.wfm", raw, dt_s=1e-8, t0_s=0.0, scale_V=0.01, offset_V=0.0,
                  gmt_sec=sec, gmt_fract=tt - sec)


def test_old_layout_case_insensitive_tokens_and_order(tmp_path: Path) -> None:
    folder = tmp_path / "Ch4_dir_FieldScan_Gate0100_Anode2000"   # a channel token in the folder is not touched
    folder.mkdir()
    for i, (a, b) in zip((10, 2, 1), (("Ch1", "Ch4"), ("ch1", "CH4"), ("CH1", "ch4"))):
        _pair_files(folder, f"RUN18_20251104_Gate100_Anode2000_P2_{i}Wfm", a, b)
    pairs, issues = find_channel_pairs(folder)
    assert issues == ()
    assert [p.pmt.name.split("_P2_")[1] for p in pairs] == ["1Wfm_CH1.wfm", "2Wfm_ch1.wfm", "10Wfm_Ch1.wfm"]
    assert all(pair_key(p.pmt.name) == pair_key(p.alpha.name) for p in pairs)
    assert pair_key("x/RUN_P2_3Wfm.wfm") is None


def test_trigger_time_mismatch_reported_with_file_and_frame(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    _pair_files(folder, "RUN_P2_1Wfm", "Ch1", "Ch4")
    shifted = 1.7e9 + np.arange(6) * 0.05
    shifted[4] += 3e-3
    _pair_files(folder, "RUN_P2_2Wfm", "Ch1", "Ch4", alpha_times=shifted)
    with pytest.raises(DataError) as err:
        pair_set(folder)
    msg = str(err.value)
    assert "RUN_P2_2Wfm_Ch1.wfm" in msg and "RUN_P2_2Wfm_Ch4.wfm" in msg and "frame 4 " in msg
    assert "frame 3 " not in msg and "RUN_P2_1Wfm" not in msg
    loose = pair_set(folder, strict=False)
    assert len(loose.issues) == 1 and "3e+03 µs" in loose.issues[0]


def test_unpaired_and_frame_count_mismatch(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    _pair_files(folder, "RUN_P2_1Wfm", "Ch1", "Ch4")
    write_wfm(folder / "RUN_P2_2Wfm_Ch1.wfm", np.zeros((3, 20), np.int8), dt_s=1e-8, t0_s=0.0, scale_V=0.01,
              offset_V=0.0)
    write_wfm(folder / "RUN_P2_3Wfm_Ch1.wfm", np.zeros((3, 20), np.int8), dt_s=1e-8, t0_s=0.0, scale_V=0.01,
              offset_V=0.0)
    write_wfm(folder / "RUN_P2_3Wfm_Ch4.wfm", np.zeros((2, 20), np.int8), dt_s=1e-8, t0_s=0.0, scale_V=0.01,
              offset_V=0.0)
    res = pair_set(folder, strict=False)
    text = "\n".join(res.issues)
    assert "RUN_P2_2Wfm_Ch1.wfm: no alpha-channel (Ch4) partner" in text
    assert "RUN_P2_3Wfm_Ch1.wfm has 3 frames but RUN_P2_3Wfm_Ch4.wfm has 2" in text
    assert res.frames_per_file.tolist() == [6, 2]
    with pytest.raises(DataError, match="no alpha-channel"):
        pair_set(folder)


def test_several_pmt_channels_need_configuration(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    _pair_files(folder, "RUN_P2_1Wfm", "Ch1", "Ch4")
    _pair_files(folder, "RUN_P2_1Wfm", "Ch2", "Ch4")
    with pytest.raises(DataError, match="pmt_channel"):
        find_channel_pairs(folder)
    pairs, _ = find_channel_pairs(folder, pmt_channel=2)
    assert pairs[0].pmt.name == "RUN_P2_1Wfm_Ch2.wfm"


def test_files_without_trigger_stamps_pair_by_index_with_a_note(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    for tok in ("Ch1", "Ch4"):
        write_wfm(folder / f"RUN_P2_1Wfm_{tok}.wfm", np.zeros((4, 20), np.int8), dt_s=1e-8, t0_s=0.0, scale_V=0.01,
                  offset_V=0.0)
    res = pair_set(folder)     # not an error: nothing to check against
    assert not res.has_times and res.frames_per_file.tolist() == [4]
    assert len(res.issues) == 1 and "no trigger time stamps" in res.issues[0]
