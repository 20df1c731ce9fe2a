"""s2lib.signal.xray.classify_xrays on tiny hand-made frames whose every number can be worked out by hand.

Layout: dt = 0.25 µs (exact in binary), t0 = 0, 50 samples; t_S1 = 1.25 µs (sample 5), t_S2,start = 10 µs
(sample 40); min_s1_sep = min_s2_sep = 1.25 µs, so the inner window W is samples 10 … 34 (sample 35 is at
8.75 µs = t_S2 − min_s2_sep, the first guard-band sample); merge gap 0.5 µs = 2 samples; pad 0.25 µs = 1 sample;
no smoothing (ma_window = 1), threshold 0.5 mV. Areas are dt × (sum over the cluster ± 1 pad sample).
"""
from __future__ import annotations

import numpy as np
import pytest

from s2lib.signal import frames
from s2lib.signal import waveform as wf
from s2lib.signal.xray import XRayReason, XRayResult, classify_xrays, reason_counts

DT, N = 0.25, 50
KW = dict(ma_window=1, threshold_mV=0.5, min_s1_sep_us=1.25, min_s2_sep_us=1.25, merge_gap_us=0.5, pad_us=0.25,
          min_area=0.0)


def _frames() -> np.ndarray:
    x = np.zeros((9, N))
    x[0, 20:23] = 2.0; x[0, 30] = 0.6       # X-ray + a smaller stray: the largest cluster is kept
    x[1, 34] = 1.0                            # last sample of W: still separated
    x[2, 34:36] = 1.0                         # reaches the S2 guard band: insufficient separation
    x[3, 35] = 1.0                            # only in the guard band: S2 head, no X-ray
    x[4, 12:14] = 3.0; x[4, 25] = 1.0         # two candidates, the first is larger
    x[5, 2:4] = 4.0; x[5, 41:45] = 5.0       # S1 region 8 mV·samples, S2 region 20 mV·samples
    x[6, 15] = 3.0                            # area exactly 0.75 mV·µs
    x[7, 20] = 1.0; x[7, 22] = 1.0            # gap of 2 samples: one cluster
    x[8, 20] = 1.0; x[8, 23] = 2.0            # gap of 3 samples: two clusters, the second larger
    return x


def test_reasons_areas_times_and_vetoes_by_hand() -> None:
    res = classify_xrays(_frames(), 0.0, DT, 1.25, 10.0, **KW)
    assert isinstance(res, XRayResult)
    A, S, N_ = XRayReason.ACCEPTED, XRayReason.INSUFFICIENT_SEPARATION, XRayReason.NO_SIGNAL
    assert [XRayReason(r) for r in res.reason] == [A, A, S, N_, A, N_, A, A, A]
    # frame 0: samples 19…23 (pad 1) sum to 6 → 1.5; frame 1: 1 → 0.25; frame 2: 2 → 0.5
    # frame 4: samples 11…14 sum 6 → 1.5; frame 6: 3 → 0.75; frame 7: 19…23 sum 2 → 0.5; frame 8: 22…24 → 0.5
    np.testing.assert_array_equal(res.area, [1.5, 0.25, 0.5, np.nan, 1.5, np.nan, 0.75, 0.5, 0.5])
    np.testing.assert_array_equal(res.t_start, [5.0, 8.5, 8.5, np.nan, 3.0, np.nan, 3.75, 5.0, 5.75])
    np.testing.assert_array_equal(res.t_end, [5.5, 8.5, 8.75, np.nan, 3.25, np.nan, 3.75, 5.5, 5.75])
    np.testing.assert_array_equal(res.n_candidates, [2, 1, 1, 0, 2, 0, 1, 1, 2])
    assert res.n_candidates.dtype == np.int64
    # vetoes: dt × Σ above threshold before t_S1 (frame 5: 8 → 2.0) and from t_S2 on (frame 5: 20 → 5.0)
    np.testing.assert_array_equal(res.s1_veto, [0, 0, 0, 0, 0, 2.0, 0, 0, 0])
    np.testing.assert_array_equal(res.s2_veto, [0, 0, 0, 0, 0, 5.0, 0, 0, 0])


def test_veto_thresholds_are_strict_and_s1_wins() -> None:
    x = _frames()
    at = classify_xrays(x, 0.0, DT, 1.25, 10.0, **{**KW, "max_area_s1": 2.0, "max_area_s2": 5.0})
    assert XRayReason(at.reason[5]) == XRayReason.NO_SIGNAL  # equal to the limit: not excessive
    s2 = classify_xrays(x, 0.0, DT, 1.25, 10.0, **{**KW, "max_area_s1": 2.0, "max_area_s2": 4.75})
    assert XRayReason(s2.reason[5]) == XRayReason.EXCESSIVE_S2
    both = classify_xrays(x, 0.0, DT, 1.25, 10.0, **{**KW, "max_area_s1": 1.75, "max_area_s2": 4.75})
    assert XRayReason(both.reason[5]) == XRayReason.EXCESSIVE_S1
    assert [XRayReason(r) for r in both.reason[[0, 1, 4]]] == [XRayReason.ACCEPTED] * 3  # others untouched


def test_min_area_is_inclusive() -> None:
    res = classify_xrays(_frames(), 0.0, DT, 1.25, 10.0, **{**KW, "min_area": 0.75})
    assert XRayReason(res.reason[6]) == XRayReason.ACCEPTED          # 0.75 is not below 0.75
    assert XRayReason(res.reason[1]) == XRayReason.BELOW_MIN_AREA    # 0.25
    assert XRayReason(res.reason[2]) == XRayReason.INSUFFICIENT_SEPARATION  # separation is judged after area
    assert XRayReason(res.reason[3]) == XRayReason.NO_SIGNAL
    default = classify_xrays(_frames(), 0.0, DT, 1.25, 10.0, **{k: v for k, v in KW.items() if k != "min_area"})
    assert XRayReason(default.reason[1]) == XRayReason.ACCEPTED  # 0.25 ≥ the documented default 0.2 mV·µs
    above = classify_xrays(_frames(), 0.0, DT, 1.25, 10.0, **{**KW, "min_area": 0.3})
    assert XRayReason(above.reason[1]) == XRayReason.BELOW_MIN_AREA
    assert XRayReason(default.reason[2]) == XRayReason.INSUFFICIENT_SEPARATION


def test_per_frame_times_and_raw_route_give_the_same_numbers() -> None:
    x = _frames()
    ts1 = np.full(9, 1.25)
    ts1[0] = 4.0                       # frame 0: S1 at 4 µs → W starts at 5.25 µs: cluster at 5.0 too close
    res = classify_xrays(x, 0.0, DT, ts1, np.full(9, 10.0), **KW)
    assert XRayReason(res.reason[0]) == XRayReason.INSUFFICIENT_SEPARATION
    # the same frames as raw integers: raw = 10 − 2·s, so s = gain·(raw − baseline) with gain −0.5, baseline 10
    raw = (10 - 2 * x).astype(np.int16)
    r_raw = classify_xrays(raw, 0.0, DT, 1.25, 10.0, gain=-0.5, baseline=10.0, **KW)
    r_flt = classify_xrays(x, 0.0, DT, 1.25, 10.0, **KW)
    np.testing.assert_array_equal(r_raw.reason, r_flt.reason)
    np.testing.assert_array_equal(r_raw.area, r_flt.area)
    np.testing.assert_array_equal(r_raw.s2_veto, r_flt.s2_veto)
    assert r_raw.area.dtype == np.float64


def test_no_cluster_anywhere() -> None:
    res = classify_xrays(np.zeros((3, N)), 0.0, DT, 1.25, 10.0, **KW)
    assert res.reason.tolist() == [XRayReason.NO_SIGNAL] * 3
    assert np.isnan(res.area).all() and np.isnan(res.t_start).all() and np.isnan(res.t_end).all()
    assert res.n_candidates.tolist() == [0, 0, 0] and res.s1_veto.tolist() == [0.0] * 3


def test_reason_counts_names_every_reason() -> None:
    c = reason_counts(np.array([0, 0, 3, 5, 5, 5, 6], dtype=np.int8))
    assert c == {"accepted": 2, "excessive_s1": 0, "excessive_s2": 0, "no_signal": 1,
                 "insufficient_separation": 0, "below_min_area": 3, "too_few_photons": 1}
    assert reason_counts([]) == {r.label: 0 for r in XRayReason}
    assert reason_counts([[1, 1], [2, 4]])[XRayReason(1).label] == 2


def test_labels_are_the_lab_names() -> None:
    assert {r.label for r in XRayReason} == {"accepted", "excessive_s1", "excessive_s2", "no_signal",
                                            "insufficient_separation", "below_min_area", "too_few_photons"}
    assert XRayReason.ACCEPTED.label == "accepted" and int(XRayReason.ACCEPTED) == 0


# ----------------------------------------------------------------------------- waveform helpers behind it
def test_row_sums_do_not_overflow_on_long_int16_records() -> None:
    # 70 000 samples of 32 767 sum to 2 293 690 000 > 2³¹ − 1: an int32 accumulator would wrap
    a = np.full((2, 70_000), 32767, dtype=np.int16)
    np.testing.assert_array_equal(frames._row_sums(a), [2_293_690_000.0, 2_293_690_000.0])
    assert frames._row_sums(np.full((1, 3), 0.5, np.float32)).tolist() == [1.5]


def test_robust_center_spread_degenerate_and_clipping_by_hand() -> None:
    # all but one equal: MAD = 0 → spread 0, nothing is clipped (a zero spread clips nothing), n = 5
    assert wf.robust_center_spread([1.0, 1.0, 1.0, 1.0, 5.0]) == (1.0, 0.0, 5)
    # 1..9 and an outlier 100: median 5.5, MAD 2.5 → 3.7065; |100 − 5.5| > 3·3.7065: dropped, then
    # 1..9: median 5, MAD 2 → 2.9652, nothing else beyond 3σ
    c, s, n = wf.robust_center_spread([1, 2, 3, 4, 5, 6, 7, 8, 9, 100])
    assert (c, n) == (5.0, 9) and s == pytest.approx(1.4826 * 2, rel=1e-12)
    c, s, n = wf.robust_center_spread(np.arange(1.0, 10.0), method="percentile")
    assert c == 5.0 and s == pytest.approx(0.5 * (np.percentile(np.arange(1.0, 10.0), 84.135)
                                                  - np.percentile(np.arange(1.0, 10.0), 15.865)), rel=1e-12)
    with pytest.raises(ValueError, match="unknown method 'iqr'"):
        wf.robust_center_spread([1.0, 2.0], method="iqr")  # type: ignore[arg-type]


def test_moving_average_output_dtype() -> None:
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    assert frames.moving_average(x, 3).dtype == np.float32
    assert frames.moving_average(x, 3, dtype=np.float64).dtype == np.float64
    assert frames.moving_average(x.astype(np.float64), 3).dtype == np.float64
    assert frames.moving_average(x.astype(np.int8), 3).dtype == np.float32
    # window 3 on 0..5: edges average the available samples: (0+1)/2, …, (4+5)/2
    np.testing.assert_allclose(frames.moving_average(x, 3)[0], [0.5, 1, 2, 3, 4, 4.5])
    with pytest.raises(ValueError, match="window must be >= 1"):
        frames.moving_average(x, 0)


def test_sample_index_rejects_nan_and_bad_dt() -> None:
    with pytest.raises(ValueError, match="^time is NaN$"):
        frames.sample_index([0.0, np.nan], 0.0, 0.25, 10)
    with pytest.raises(ValueError, match="^dt_us must be > 0$"):
        frames.sample_index(1.0, 0.0, 0.0, 10)
    assert frames.sample_index(1.0, 0.0, 0.25, 10) == 4 and isinstance(frames.sample_index(1.0, 0.0, 0.25, 10), int)
    assert frames.sample_index(1.0 + 1e-9, 0.0, 0.25, 10) == 4   # round-off tolerance: still sample 4
    assert frames.sample_index(1.01, 0.0, 0.25, 10) == 5         # first sample at or after
