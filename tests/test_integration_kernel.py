"""The pure per-file kernel of s2lib.signal.integration on hand-made raw frames with pulses of known area.

Frames are noise-free int8 records (1 GS/s, −5…20 µs, 0.4 mV per count, baseline 0 counts); a pulse of −k counts
over a duration d µs is a signal of 0.4·k mV and an area of 0.4·k·d mV·µs, so every expected area below is
exact arithmetic. The file-level wrapper (memory map, pool) is covered by the pipeline tests.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from s2lib.signal import integration as I
from s2lib.signal import file_pass as FP
from s2lib.signal import xray_pass
from s2lib.signal.xray import XRayReason
from s2lib.io.wfm import write_wfm

DT, T0, N, SCALE = 0.001, -5.0, 25_000, 0.4


def _idx(t: float) -> int:
    return int(round((t - T0) / DT))


def _frames(*boxes: list[tuple[float, float, int]]) -> np.ndarray:
    """One frame per argument; each is a list of (t_start, t_end, depth in counts) boxes."""
    raw = np.zeros((len(boxes), N), dtype=np.int8)
    for f, frame in enumerate(boxes):
        for a, b, k in frame:
            raw[f, _idx(a):_idx(b)] -= k
    return raw


def _plan(**kw) -> I.SetPlan:
    base = dict(name="S", files=("a.wfm", "b.wfm", "c.wfm"), t_s1_us=-3.3, window_us=(12.0, 16.0), n_pedestal=1000)
    base.update(kw)
    return I.SetPlan(**base)


FRAMES = _frames(
    [(13.0, 14.0, 5)],            # 0 recoil S2 only: 2 mV × 1 µs = 2.0 mV·µs in the window
    [(5.0, 6.0, 5)],              # 1 an isolated X-ray of 2.0 mV·µs between S1 and the window
    [(10.5, 12.5, 5)],            # 2 an X-ray running into the window: 0.5 µs × 2 mV = 1.0 in the window
    [],                           # 3 nothing
    [(12.5, 15.5, 100)],          # 4 alpha-like S2: 40 mV × 3 µs = 120 mV·µs
)


def test_areas_reasons_and_pileup_flags_by_hand() -> None:
    plan = _plan(xray=I.XrayParams(max_sum_s2=1e5))  # lab's sample-sum veto: 1e5 mV × 0.001 µs = 100 mV·µs
    res = FP._process(plan, 1, FRAMES, DT, T0, SCALE, 0.0)
    assert res.error is None and res.file_index == 1 and res.n_frames == 5 and res.dt_us == DT
    np.testing.assert_allclose(res.areas, [2.0, 0.0, 1.0, 0.0, 120.0], atol=1e-9)
    assert [XRayReason(r) for r in res.xray_reason] == [
        XRayReason.NO_SIGNAL, XRayReason.ACCEPTED, XRayReason.INSUFFICIENT_SEPARATION, XRayReason.NO_SIGNAL,
        XRayReason.EXCESSIVE_S2]
    assert res.xray_area[1] == pytest.approx(2.0, abs=1e-6)  # block sums are exact
    assert np.isnan(res.xray_area[0]) and np.isnan(res.xray_area[3])
    assert res.flags.dtype == np.uint8
    assert res.flags.tolist() == [0, 0, I.FLAG_XRAY_PILEUP, 0, 0]


def test_defaults_do_not_veto_big_s2_and_keep_documented_constants() -> None:
    res = FP._process(_plan(), 0, FRAMES, DT, T0, SCALE, 0.0)
    assert XRayReason(res.xray_reason[4]) == XRayReason.NO_SIGNAL  # max_sum_s2 = inf by default
    p = I.XrayParams()
    assert (p.threshold_mV, p.min_s1_sep_us, p.min_s2_sep_us, p.min_area, p.merge_gap_us, p.pad_us) == (
        0.5, 0.5, 1.0, 0.0, 0.5, 0.1)
    assert p.max_sum_s1 == math.inf and p.max_sum_s2 == math.inf
    assert (I.XRAY_BLOCK_US, I.XRAY_PRE_US, I.XRAY_POST_US, I.FLAG_XRAY_PILEUP) == (0.02, 0.5, 0.2, 1)
    assert I.FLAG_BITS == {"xray_pileup": 1}
    plan = _plan()
    assert plan.do_recoil and plan.do_xray and plan.pileup_end_us is None and plan.xray == p


def test_pedestal_is_subtracted_per_frame() -> None:
    raw = FRAMES[:2].copy()
    raw[0] += 7                                      # frame 0 sits 7 counts higher: same signal after subtraction
    res = FP._process(_plan(), 0, raw, DT, T0, SCALE, -39.8)
    np.testing.assert_allclose(res.areas, [2.0, 0.0], atol=1e-9)
    res_gain = FP._process(_plan(), 0, FRAMES[:1], DT, T0, 2 * SCALE, 0.0)
    assert res_gain.areas[0] == pytest.approx(4.0, abs=1e-9)  # twice the mV per count, twice the area


def test_s1_veto_is_not_overridden_by_the_s2_veto() -> None:
    raw = _frames([(-3.5, -3.3, 120), (12.5, 15.5, 100)])  # the S1 veto sums t < t_S1: 48 mV × 0.2 µs
    plan = _plan(xray=I.XrayParams(max_sum_s1=1e4, max_sum_s2=1e5))  # S1 veto 10 mV·µs: 48 × 0.2 = 9.6 → no
    res = FP._process(plan, 0, raw, DT, T0, SCALE, 0.0)
    assert XRayReason(res.xray_reason[0]) == XRayReason.EXCESSIVE_S2
    plan = _plan(xray=I.XrayParams(max_sum_s1=5e3, max_sum_s2=1e5))  # S1 veto 5 mV·µs < 9.6 → excessive S1 wins
    res = FP._process(plan, 0, raw, DT, T0, SCALE, 0.0)
    assert XRayReason(res.xray_reason[0]) == XRayReason.EXCESSIVE_S1


def test_merge_gap_is_passed_to_the_classification() -> None:
    # two X-ray pulses 0.3 µs apart: one candidate of 2 + 1 mV·µs with the default 0.5 µs merge gap, the larger
    # one alone (2.0 mV·µs) with a 0.2 µs gap
    raw = _frames([(5.0, 6.0, 5), (6.3, 6.8, 5)])
    merged = FP._process(_plan(), 0, raw, DT, T0, SCALE, 0.0)
    assert merged.xray_area[0] == pytest.approx(3.0, abs=1e-6)
    split = FP._process(_plan(xray=I.XrayParams(merge_gap_us=0.2)), 0, raw, DT, T0, SCALE, 0.0)
    assert split.xray_area[0] == pytest.approx(2.0, abs=1e-6)
    assert XRayReason(split.xray_reason[0]) == XRayReason.ACCEPTED


def test_s2_veto_of_the_classification_sees_the_s2_head() -> None:
    # a 100 mV·µs-scale spike right at the window start and an equal undershoot later in the window: the window
    # integral is ~0, but the classification's S2 region [12, 12.2] µs sums 40 mV × 0.1 µs = 4 mV·µs above
    # threshold, over the 1000 mV-sample (1 mV·µs) limit
    raw = _frames([(12.0, 12.1, 100)])
    raw[0, _idx(14.0):_idx(14.1)] = 100
    res = FP._process(_plan(xray=I.XrayParams(max_sum_s2=1000.0)), 0, raw, DT, T0, SCALE, 0.0)
    assert res.areas[0] == pytest.approx(0.0, abs=1e-9)
    assert XRayReason(res.xray_reason[0]) == XRayReason.EXCESSIVE_S2


def test_pileup_end_extends_the_flag_region() -> None:
    # an X-ray starting at 12.3 µs (inside the window) is flagged only when pileup_end_us lies after its start
    raw = _frames([(12.3, 14.3, 5)])
    assert FP._process(_plan(), 0, raw, DT, T0, SCALE, 0.0).flags.tolist() == [0]
    late = FP._process(_plan(pileup_end_us=13.0), 0, raw, DT, T0, SCALE, 0.0)
    assert late.flags.tolist() == [I.FLAG_XRAY_PILEUP]
    assert late.areas[0] == pytest.approx(4.0, abs=1e-9)  # the area is kept; the fits skip flagged frames
    early = FP._process(_plan(pileup_end_us=11.0), 0, raw, DT, T0, SCALE, 0.0)  # before the window: window start
    assert early.flags.tolist() == [0]


def test_switches_turn_parts_off() -> None:
    no_x = FP._process(_plan(do_xray=False), 0, FRAMES, DT, T0, SCALE, 0.0)
    assert no_x.xray_reason.tolist() == [-1] * 5 and np.isnan(no_x.xray_area).all()
    assert no_x.xray_reason.dtype == np.int8
    assert no_x.flags.tolist() == [0] * 5
    np.testing.assert_allclose(no_x.areas, [2.0, 0.0, 1.0, 0.0, 120.0], atol=1e-9)
    no_r = FP._process(_plan(do_recoil=False), 0, FRAMES, DT, T0, SCALE, 0.0)
    assert np.isnan(no_r.areas).all() and no_r.flags.tolist() == [0] * 5  # no recoil: no pile-up flags
    assert np.isnan(no_r.sideband).all() and not np.isnan(no_x.sideband).any()   # nor an empty-window area
    assert XRayReason(no_r.xray_reason[1]) == XRayReason.ACCEPTED


def test_window_outside_the_frame_is_an_error_naming_file_and_ranges() -> None:
    res = FP._process(_plan(window_us=(15.0, 25.0)), 2, FRAMES, DT, T0, SCALE, 0.0)
    assert res.n_frames == 0 and res.file_index == 2 and math.isnan(res.dt_us)
    assert res.error == "c.wfm: window: [15, 25] µs is not inside the frame [-5, 20] µs"
    assert res.areas.size == 0 and res.xray_reason.dtype == np.int8 and res.flags.dtype == np.uint8
    ok = FP._process(_plan(window_us=(15.0, 19.9)), 2, FRAMES, DT, T0, SCALE, 0.0)  # inside
    assert ok.error is None
    # the window may lose less than one sample to rounding at the frame end: 5000 samples of 5000.5 asked is
    # fine, of 5001.5 asked is not
    assert FP._process(_plan(window_us=(15.0, 20.0005)), 2, FRAMES, DT, T0, SCALE, 0.0).error is None
    assert FP._process(_plan(window_us=(15.0, 20.0015)), 2, FRAMES, DT, T0, SCALE, 0.0).error is not None


def test_assemble_orders_files_and_lists_failures() -> None:
    plan = _plan()
    r0 = FP._process(plan, 0, FRAMES[:2], DT, T0, SCALE, 0.0)
    r2 = FP._process(plan, 2, FRAMES[2:5], 0.001, T0, SCALE, 0.0)._replace(flags=None)
    bad = I._empty(1, "b.wfm: header: truncated")
    s = I._assemble(plan, [r2, bad, r0])
    assert s.name == "S" and s.n_files == 3 and s.n_frames == 5
    assert s.event_ids.tolist() == [[0, 0], [0, 1], [2, 0], [2, 1], [2, 2]]
    np.testing.assert_allclose(s.areas, [2.0, 0.0, 1.0, 0.0, 120.0], atol=1e-9)
    assert s.files_failed == [{"file": "b.wfm", "index": 1, "field": None, "reason": "b.wfm: header: truncated"}]
    assert s.dt_us == [0.001]
    assert s.flags.tolist() == [0, 0, 0, 0, 0]  # no flags known for file 2: all usable
    assert s.xray_accepted.tolist() == [False, True, False, False, False]
    assert s.xray_reason.dtype == np.int8 and s.event_ids.dtype == np.int64
    empty = I._assemble(plan, [bad])
    assert empty.n_frames == 0 and empty.event_ids.shape == (0, 2) and empty.dt_us == []
    assert (empty.event_ids.dtype, empty.xray_reason.dtype, empty.flags.dtype, empty.areas.dtype) == (
        np.int64, np.int8, np.uint8, np.float64)


def test_frame_limits_take_frames_in_file_order(tmp_path: Path) -> None:
    files = []
    for i, n in enumerate((4, 4, 4)):
        p = tmp_path / f"f{i}.wfm"
        write_wfm(p, np.zeros((n, 100), np.int8), dt_s=1e-9, t0_s=-5e-6, scale_V=4e-4, offset_V=0.0)
        files.append(str(p))
    plan = _plan(files=tuple(files))
    assert I._frame_limits(plan, None) == ([0, 1, 2], None)
    assert I._frame_limits(plan, 4) == ([0], {})
    assert I._frame_limits(plan, 5) == ([0, 1], {1: 1})
    assert I._frame_limits(plan, 100) == ([0, 1, 2], {})
    assert I._frame_limits(plan, 0) == ([], {})
    broken = _plan(files=(str(tmp_path / "missing.wfm"), *files))
    assert I._frame_limits(broken, 6) == ([0, 1, 2], {2: 2})  # unreadable: handed on to be reported


def _photons(times: list[float], depth: int = 3) -> list[tuple[float, float, int]]:
    """Photons as 20-ns boxes of ``depth`` counts (1.2 mV × 0.02 µs = 0.024 mV·µs each at depth 3)."""
    return [(t, t + 0.02, depth) for t in times]


def test_whole_s2_mode_measures_a_sparse_xray_and_counts_strays_in_the_sideband(monkeypatch) -> None:
    import s2lib.signal.xray_pass as XP

    train = [0.0 + 0.6 * i for i in range(7)]                       # 7 photons over 3.6 µs, 0.6 µs apart
    frames = _frames(_photons(train), _photons([2.0, 6.0]), _photons(train) + _photons([-3.9, -3.88]))
    seen = []

    def fake(*args, run_lengths=None):
        seen.append((*args, run_lengths))
        return 5
    monkeypatch.setattr(XP, "min_photon_hits", fake)
    res = FP._process(_plan(xray_span_us=4.0), 0, frames, DT, T0, SCALE, 0.0)
    # sideband: samples 1000…1199 (after the 1000 pedestal samples, up to t_S1 − 0.5 = −3.8 µs) = 10 blocks of
    # 20 ns per frame: 0.6 µs in all, 2 stray hits (frame 2) in consecutive blocks (−3.90…−3.86 µs): one run of
    # two hits; search W = [−2.8, 11] µs = 13.8 µs
    (n, exposure, span, search, alpha, cl, runs), = seen
    assert (n, span, alpha, cl) == (1, 4.0, I.XrayParams().false_rate, xray_pass.XRAY_STRAY_CL)
    assert runs.tolist() == [0, 1]
    assert exposure == pytest.approx(0.6) and search == pytest.approx(13.8)
    assert [XRayReason(r) for r in res.xray_reason] == [XRayReason.ACCEPTED, XRayReason.TOO_FEW_PHOTONS,
                                                         XRayReason.ACCEPTED]
    np.testing.assert_allclose(res.xray_area[[0, 2]], 7 * 0.024, rtol=1e-6)    # the whole train (float32 blocks)
    assert res.xray_area[1] == pytest.approx(0.024, rel=1e-6)       # two strays 4 µs apart: one per window
    seen.clear()
    legacy = FP._process(_plan(), 0, frames, DT, T0, SCALE, 0.0)     # no span: the lab's rule, no count test
    assert not seen and legacy.xray_reason.tolist() == [0, 0, 0]
    assert legacy.xray_area[0] == pytest.approx(0.024, rel=1e-6)    # 0.6 µs gaps > 0.5: one photon of it
    # the real threshold on these 0.6 µs: the 90 % limit Γ⁻¹(0.9; 2)/0.6 µs = 6.5 strays/µs (of two hits each)
    # beats any train
    monkeypatch.undo()
    strict = FP._process(_plan(xray_span_us=4.0), 0, frames, DT, T0, SCALE, 0.0)
    assert strict.xray_reason.tolist() == [XRayReason.TOO_FEW_PHOTONS] * 3


def test_files_classified_together_give_each_file_its_own_numbers(tmp_path: Path) -> None:
    """process_files classifies the X-ray blocks of several files in one call; every step works frame by frame,
    so each file's result must equal process_file's on it alone, bit for bit: here with per-file stray-photon
    counts (a different minimum photon count per file), a file on another time grid (its own group), and an
    unreadable file in the middle, reported in its place."""
    strays = _frames(*[[(-3.95 + 0.02 * j, -3.94 + 0.02 * j, 3) for j in range(8)]] * len(FRAMES)) + FRAMES
    grids = [(FRAMES, T0), (strays, T0), (FRAMES[::-1].copy(), T0 - 0.5004)]      # last: off the sample grid
    files = []
    for i, (raw, t0) in enumerate(grids):
        files.append(str(tmp_path / f"f{i}.wfm"))
        write_wfm(files[-1], raw, dt_s=DT * 1e-6, t0_s=t0 * 1e-6, scale_V=SCALE * 1e-3, offset_V=0.0)
    files.insert(2, str(tmp_path / "missing.wfm"))
    plan = _plan(files=tuple(files), xray_span_us=1.0, pileup_end_us=13.0)
    together = FP.process_files(plan, [0, 1, 2, 3])
    alone = [FP.process_file(plan, i) for i in range(4)]
    assert [r.file_index for r in together] == [0, 1, 2, 3]
    assert together[2].error is not None and together[2].n_frames == 0 and "missing.wfm" in together[2].error
    assert all(getattr(together[2], a).size == 0 for a in ("areas", "xray_reason", "xray_area", "flags", "sideband"))
    for a, b in zip(together, alone):
        assert a.error == b.error and a.n_frames == b.n_frames
        for name in ("areas", "xray_reason", "xray_area", "flags", "sideband"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert together[0].xray_reason[1] == XRayReason.ACCEPTED          # the isolated X-ray of frame 1
    assert together[0].xray_area[1] == pytest.approx(2.0, abs=0.01)
    assert together[3].xray_reason[3] == XRayReason.ACCEPTED          # the same X-ray, frames reversed
    assert together[1].xray_reason[1] == XRayReason.TOO_FEW_PHOTONS   # ... but strays raise the photon count


def test_float_samples_get_the_same_sideband_as_integrating_it() -> None:
    """With the whole-S2 X-ray step the sideband area comes from the stray count's block sums; for float samples
    (WFM formats 4 and 5) those are not exact integers, so the sideband is integrated directly: the same as for
    the same frames stored as integers (to float rounding), never cut to integers."""
    raw = FRAMES.astype(np.int8)
    rng = np.random.default_rng(3)
    noisy = raw.astype(np.float32) + rng.normal(0.0, 0.3, raw.shape).astype(np.float32)
    as_float = FP._process(_plan(xray_span_us=4.0), 0, noisy, DT, T0, SCALE, 0.0)
    sb = I.sideband_slice(1000, _idx(16.0) - _idx(12.0), -3.3, T0, DT, N)
    ped = noisy[:, :1000].astype(np.float64).mean(axis=1)           # noise-free pedestal: clipped mean = mean
    expected = -SCALE * (noisy[:, sb].astype(np.float64).sum(axis=1) - (sb.stop - sb.start) * ped) * DT
    expected *= (_idx(16.0) - _idx(12.0)) / (sb.stop - sb.start)
    np.testing.assert_allclose(as_float.sideband, expected, rtol=1e-4, atol=1e-6)
    assert np.abs(as_float.sideband).max() > 0.01                    # the noise really is in it


def test_a_batch_that_cannot_be_classified_is_classified_file_by_file(tmp_path: Path, monkeypatch) -> None:
    """When the batched X-ray classification raises, each file is classified alone: the file at fault is reported
    by name (field 'samples'), the others keep their numbers; with strict it raises WfmError naming it."""
    from s2lib.errors import WfmError

    files = []
    for i in range(3):
        files.append(str(tmp_path / f"g{i}.wfm"))
        write_wfm(files[-1], FRAMES[i:i + 2], dt_s=DT * 1e-6, t0_s=T0 * 1e-6, scale_V=SCALE * 1e-3, offset_V=0.0)
    plan = _plan(files=tuple(files))
    good = FP.process_files(plan, [0, 1, 2])
    real = FP.classify_blocks

    def picky(xp, parts, *args):
        if any(p.sig.shape[0] and np.array_equal(p.sig, good_sig) for p in parts):
            raise ValueError("bad blocks")
        return real(xp, parts, *args)
    good_sig = FP.xray_blocks(plan.xray, FRAMES[1:3].astype(np.int8), slice(1000, 1200), 1000, DT, T0, -SCALE,
                              np.zeros(2), plan.t_s1_us, 12.0, 12.0, True, None).sig
    monkeypatch.setattr(FP, "classify_blocks", picky)
    got = FP.process_files(plan, [0, 1, 2])
    assert got[1].error is not None and "g1.wfm" in got[1].error and got[1].field == "samples"
    for i in (0, 2):
        assert got[i].error is None
        np.testing.assert_array_equal(got[i].xray_area, good[i].xray_area)
    with pytest.raises(WfmError, match="g1.wfm"):
        FP.process_files(plan, [0, 1, 2], strict=True)


def test_classifying_two_files_together_equals_each_alone() -> None:
    """classify_blocks on two files' blocks in one group returns each file's numbers as alone (the engine falls
    back to file by file when a batch raises, so this is checked on the function itself)."""
    xp = I.XrayParams()
    parts = []
    for raw in (FRAMES, FRAMES[::-1].copy()):
        sb = I.sideband_slice(1000, 4000, -3.3, T0, DT, N)
        parts.append(FP.xray_blocks(xp, raw, sb, 1000, DT, T0, -SCALE, np.zeros(len(raw)), -3.3, 12.0, 13.0, True,
                                    4.0))
    parts[1] = parts[1]._replace(min_hits=parts[1].min_hits + 30)           # a different photon minimum
    both = FP.classify_blocks(xp, parts, -3.3, 12.0, 13.0, True, 4.0)
    for part, got in zip(parts, both):
        alone = FP.classify_blocks(xp, [part], -3.3, 12.0, 13.0, True, 4.0)[0]
        for a, b in zip(got, alone):
            np.testing.assert_array_equal(a, b)
    assert both[0][0][1] != both[1][0][3]                     # the same X-ray, told apart by the photon minimum


def test_whole_s2_mode_sideband_and_local_baseline_with_a_pedestal_offset() -> None:
    """Integer frames with noise, a pedestal 10 counts off zero and a +1-count step after the pedestal samples
    (the baseline drifts between pedestal and signal): the sideband area from the X-ray step's block sums equals
    integrating it directly, and the X-ray area is measured against the local baseline (the step's 0.4 mV ×
    1.2 µs = 0.48 mV·µs under a 1-µs X-ray would bias it without), within the noise."""
    rng = np.random.default_rng(11)
    raw = (FRAMES.astype(np.int16) + 10 + rng.integers(-1, 2, FRAMES.shape)).astype(np.int16)
    raw[:, 1000:] += 1
    res = FP._process(_plan(xray_span_us=4.0), 0, raw, DT, T0, SCALE, 0.0)
    direct = FP._process(_plan(), 0, raw, DT, T0, SCALE, 0.0)       # no span: sideband integrated directly
    np.testing.assert_allclose(res.sideband, direct.sideband, rtol=1e-12, atol=1e-12)
    assert abs(res.sideband).max() > 0.1                     # the step is in it: the baseline really enters
    assert XRayReason(res.xray_reason[1]) == XRayReason.ACCEPTED
    assert res.xray_area[1] == pytest.approx(2.0, abs=0.05)


def test_pileup_candidate_window_edges() -> None:
    """The pile-up candidate is the largest cluster overlapping [t_S1 + min_s1_sep, t_pu] (here t_pu = window
    start 12 µs): a bigger cluster starting just after t_pu (12.1 µs) or the S1 itself (before t_S1 + 0.5 µs)
    must not displace a real pile-up cluster ending within min_s2_sep (1 µs) of the window, and a cluster
    starting just before t_pu (11.7 µs) is one."""
    frames = _frames([(10.5, 11.5, 5), (12.1, 14.0, 100)],       # pile-up + a brighter S2 start after t_pu
                                                                  # (the blocks reach t_pu + 0.2: 4 > 2 mV·µs)
                     [(-3.3, -3.1, 100), (10.5, 11.5, 5)],       # a big S1 + pile-up
                     [(11.7, 11.95, 5)],                          # a short cluster right before t_pu
                     [(12.1, 14.0, 20)])                          # only the S2 start: no pile-up
    res = FP._process(_plan(), 0, frames, DT, T0, SCALE, 0.0)
    assert res.flags.tolist() == [I.FLAG_XRAY_PILEUP] * 3 + [0]
