"""s2lib.signal.xray.classify_xrays on tiny hand-made frames whose every number can be worked out by hand.

Layout: dt = 0.25 µs (exact in binary), t0 = 0, 50 samples; t_S1 = 1.25 µs (sample 5), t_S2,start = 10 µs
(sample 40); min_s1_sep = min_s2_sep = 1.25 µs, so the inner window W is samples 10 … 34 (sample 35 is at
8.75 µs = t_S2 − min_s2_sep, the first guard-band sample); merge gap 0.5 µs = 2 samples; pad 0.25 µs = 1 sample;
no smoothing (ma_window = 1), threshold 0.5 mV. Areas are dt × (sum over the cluster ± 1 pad sample).
"""
from __future__ import annotations

import math

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


@pytest.mark.parametrize("t_s1, t_s2", [(1.25, 10.0), (1.3, 9.9), (0.01, 12.6), (-3.0, 0.2)])
def test_set_level_times_give_the_same_result_as_per_frame_arrays(t_s1: float, t_s2: float) -> None:
    """Scalar times take a shortcut (four scalar index conversions); arrays of the same times must agree."""
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 0.4, (12, N)) + _frames().repeat(2, axis=0)[:12]
    one = classify_xrays(x, -0.1, DT, t_s1, t_s2, **KW)
    per = classify_xrays(x, -0.1, DT, np.full(12, t_s1), np.full(12, t_s2), **KW)
    for a, b in zip(one, per):
        np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------------------- whole-S2 window (span_us)
# Block-signal layout of the engine: dt = 0.02 µs, t0 = 0, 1000 blocks (20 µs); t_S1 = 1 µs, t_S2,start = 18 µs,
# min_s1_sep 0.5, min_s2_sep 1: W = [1.5, 17] µs = blocks 75 … 849. A photon of area q (mV·µs) is one block of
# q/dt mV; the X-ray S2 lasts 4 µs (200 blocks).
SDT, SN = 0.02, 1000
SKW = dict(ma_window=1, threshold_mV=0.5, min_s1_sep_us=0.5, min_s2_sep_us=1.0, merge_gap_us=0.5, pad_us=0.1,
           min_area=0.0, span_us=4.0)


def _train(rng: np.random.Generator, start: int, n_photons: int, length: int = 200) -> tuple[np.ndarray, float]:
    """A sparse S2: ``n_photons`` photons at random blocks of [start, start + length), gamma areas (mean 0.02)."""
    x = np.zeros(SN)
    pos = rng.choice(np.arange(start, start + length), size=n_photons, replace=False)
    q = rng.gamma(8.0, 0.02 / 8.0, n_photons).clip(0.012)        # every photon above 0.5 mV (0.6 mV at least)
    x[pos] = q / SDT
    return x, float(q.sum())


def test_sparse_photon_train_is_integrated_whole_whatever_its_pattern() -> None:
    rng = np.random.default_rng(7)
    rows, truth = [], []
    for i in range(40):                       # 15-40 photons over 4 µs: gaps of 0.5-1.5 µs split any cluster
        x, q = _train(rng, 150 + 10 * i, int(rng.integers(15, 41)))
        rows.append(x)
        truth.append(q)
    res = classify_xrays(np.array(rows), 0.0, SDT, 1.0, 18.0, **SKW)
    assert (res.reason == XRayReason.ACCEPTED).all()
    np.testing.assert_allclose(res.area, truth, rtol=1e-9)     # noiseless: every photon, nothing else
    legacy = classify_xrays(np.array(rows), 0.0, SDT, 1.0, 18.0, **{**SKW, "span_us": None})
    assert np.mean(legacy.area < 0.9 * np.array(truth)) > 0.3  # the gap-joined cluster holds a fragment


def test_whole_s2_with_noise_offset_and_strays_elsewhere() -> None:
    rng = np.random.default_rng(11)
    k = 300
    x = rng.normal(0.0, 0.09, (k, SN))                          # 20-ns block noise of 0.4 mV at 1 GS/s
    x += rng.normal(0.0, 0.03, k)[:, None]                     # the pedestal's error (200 samples): a per-frame offset
    truth = np.empty(k)
    for r in range(k):
        s, q = _train(rng, 200 + int(rng.integers(0, 300)), 20)
        x[r] += s
        truth[r] = q
        x[r, 760] += 1.0                                        # a stray photon 3 µs after the S2's end
    res = classify_xrays(x, 0.0, SDT, 1.0, 18.0, n_pedestal=10.0, **SKW)  # pedestal: 10 blocks' worth
    ok = res.reason == XRayReason.ACCEPTED
    assert ok.all()
    d = res.area - truth
    # the offset × 4 µs (0.12 mV·µs) would dominate; the local baseline leaves the white noise and its own error
    assert abs(d.mean()) < 0.003 and d.std() < 0.03
    plain = classify_xrays(x, 0.0, SDT, 1.0, 18.0, **SKW)       # without n_pedestal: the pedestal only
    assert (plain.area - truth).std() > 2 * d.std()
    assert (res.t_end < 760 * SDT).all()                        # the stray is not part of the candidate


def test_stray_photons_are_too_few_and_counts_by_hand() -> None:
    x = np.zeros((4, SN))
    x[0, [300, 500]] = 1.0                                      # two strays 4 µs apart: at most 2 in a window
    x[1, [300, 320, 340]] = 1.0                                 # three photons within 0.4 µs: one cluster of 3 hits
    x[2, [300, 320, 340, 480]] = 1.0                            # the same and one more 2.8 µs later
    x[3, 400] = 1.0
    res = classify_xrays(x, 0.0, SDT, 1.0, 18.0, min_hits=3, **SKW)
    assert res.n_hits.tolist() == [1, 3, 4, 1]
    assert [XRayReason(r) for r in res.reason] == [XRayReason.TOO_FEW_PHOTONS, XRayReason.ACCEPTED,
                                                    XRayReason.ACCEPTED, XRayReason.TOO_FEW_PHOTONS]
    np.testing.assert_allclose(res.area, [0.02, 0.06, 0.08, 0.02])
    np.testing.assert_allclose(res.t_start, [6.0, 6.0, 6.0, 8.0])
    np.testing.assert_allclose(res.t_end, [6.0, 6.8, 9.6, 8.0])
    # a below-min-area candidate names the area, not the photon count (the documented order)
    low = classify_xrays(x, 0.0, SDT, 1.0, 18.0, min_hits=3, **{**SKW, "min_area": 0.03})
    assert XRayReason(low.reason[0]) == XRayReason.BELOW_MIN_AREA
    assert classify_xrays(x, 0.0, SDT, 1.0, 18.0, **SKW).reason.tolist() == [0, 0, 0, 0]   # min_hits 0: no test


def test_densest_window_picks_the_s2_and_its_clusters() -> None:
    x = np.zeros((2, SN))
    x[0, [100, 130]] = 5.0                                      # two bright strays early: Σ 10 mV
    x[0, np.arange(400, 600, 20)] = 1.2                        # ten photons 0.4 µs apart: Σ 12 mV, one window
    x[1, np.arange(300, 700, 40)] = 1.0                        # ten photons 0.8 µs apart over 8 µs: > 4 µs
    res = classify_xrays(x, 0.0, SDT, 1.0, 18.0, **SKW)
    np.testing.assert_allclose(res.t_start, [8.0, 6.0])
    # frame 1: the window holds 5 photons (300 … 460); their clusters are single photons: 5 hits from 6.0 to 9.2 µs
    np.testing.assert_allclose(res.t_end, [11.6, 9.2])
    assert res.n_hits.tolist() == [10, 5]
    np.testing.assert_allclose(res.area, [0.24, 0.1])


def test_s2_that_cannot_fit_in_the_window_is_not_separated() -> None:
    x = np.zeros((4, SN))
    x[0, np.arange(75, 275, 10)] = 1.0       # starts at the first W block, 4 µs long: centre 3.47 µs − 2 < 1.5
    x[1, np.arange(175, 375, 10)] = 1.0      # 2 µs later: fits (centre 5.47 − 2 = 3.47 ≥ 1.5)
    x[2, np.arange(700, 850, 10)] = 1.0      # truncated by the S2 guard band: centre 15.4 + 2 > 17
    x[3, np.arange(75, 175, 10)] = 1.0       # truncated by the S1 guard band: its photons before 1.5 µs are lost
    res = classify_xrays(x, 0.0, SDT, 1.0, 18.0, **SKW)
    S, A = XRayReason.INSUFFICIENT_SEPARATION, XRayReason.ACCEPTED
    assert [XRayReason(r) for r in res.reason] == [S, A, S, S]
    # the same with the lab's rule: each frame's cluster lies inside W, so all are accepted
    assert (classify_xrays(x, 0.0, SDT, 1.0, 18.0, **{**SKW, "span_us": None}).reason == A).all()


def test_min_photon_hits_by_hand() -> None:
    from s2lib.signal.xray import min_photon_hits
    # no stray in 230.2585 µs: 90 % upper limit −ln(0.1)/230.2585 = 0.01 /µs; μ = 0.05 in 5 µs; 2 windows in 10 µs
    # 2·P(≥1) = 0.0975, 2·P(≥2) = 2(1 − e^−μ(1 + μ)) = 0.00242, 2·P(≥3) = 4.0e-5 ≤ 1e-3 → 3
    assert min_photon_hits(0, 230.2585, 5.0, 10.0, 1e-3) == 3
    assert min_photon_hits(0, 230.2585, 5.0, 10.0, 0.0025) == 2     # 0.00242 ≤ 0.0025
    assert min_photon_hits(0, 230.2585, 5.0, 10.0, 0.0024) == 3
    assert min_photon_hits(0, 230.2585, 5.0, 2.0, 0.0013) == 2      # search < span: one trial, P(≥2) = 0.00121
    assert min_photon_hits(0, 230.2585, 5.0, 10.0, 0.1) == 1        # 2·P(≥1) = 0.0975 ≤ 0.1: one photon suffices
    assert min_photon_hits(0, 230.2585, 0.0, 10.0, 1e-3) == 1       # a zero-length window holds no stray
    # more strays, higher threshold; nothing measured or alpha ≥ 1: no test
    assert min_photon_hits(50, 230.2585, 5.0, 10.0, 1e-3) > min_photon_hits(5, 230.2585, 5.0, 10.0, 1e-3)
    assert min_photon_hits(3, 0.0, 5.0, 10.0, 1e-3) == 0 and min_photon_hits(3, 10.0, 5.0, 10.0, 1.0) == 0
    with pytest.raises(ValueError, match="alpha must be positive"):
        min_photon_hits(3, 10.0, 5.0, 10.0, 0.0)


def test_only_a_sparse_train_must_fit_as_a_whole_s2() -> None:
    from s2lib.signal.xray import SPARSE_GAP_RATIO
    # sparse: the hits spread over a whole S2 (4 µs = 200 blocks) lie more than 0.5 µs/ln 100 (5.43 blocks) apart,
    # i.e. fewer than 200/5.43 = 36.8 hits; such a candidate must fit in W as a whole 4-µs S2 (here it does not)
    x = np.zeros((5, SN))
    x[0, 80:200] = 1.0                            # dense (120 hits), 2.4 µs from 1.6 µs: centre 2.8 − 2 < 1.5
    x[1, np.arange(80, 200, 10)] = 1.0            # 12 hits: sparse
    x[2, np.arange(80, 80 + 37 * 3, 3)] = 1.0     # 37 hits: dense
    x[3, np.arange(80, 80 + 36 * 3, 3)] = 1.0     # 36 hits: sparse
    x[4, 80:85] = 1.0                             # a tight fragment of 5 hits is sparse too (a cut-off piece)
    x = np.vstack([x, np.zeros(SN)])
    x[5, 60:200] = 1.0                            # dense but reaching into the S1 guard band: its cluster decides
    res = classify_xrays(x, 0.0, SDT, 1.0, 18.0, **SKW)
    S, A = XRayReason.INSUFFICIENT_SEPARATION, XRayReason.ACCEPTED
    assert res.n_hits.tolist() == [120, 12, 37, 36, 5, 140]
    assert [XRayReason(r) for r in res.reason] == [A, S, A, S, S, S]
    assert res.reason.dtype == np.int8
    assert SPARSE_GAP_RATIO == pytest.approx(math.log(100.0))


def test_no_recoil_s2_in_the_slice() -> None:
    # t_S2,start = ∞ (no recoil S2 known): no S2 veto, the inner window runs to the end of the slice
    x = np.zeros((1, SN))
    x[0, np.arange(700, 990, 10)] = 1.0
    res = classify_xrays(x, 0.0, SDT, 1.0, np.inf, **{**SKW, "max_area_s2": 0.0})
    assert res.s2_veto.tolist() == [0.0] and XRayReason(res.reason[0]) == XRayReason.ACCEPTED
    assert res.area[0] == pytest.approx(29 * 0.02)


def test_run_lengths_by_hand() -> None:
    from s2lib.signal.xray import run_lengths

    above = np.array([[1, 1, 0, 1, 0, 0, 1], [1, 0, 0, 0, 1, 1, 1], [0] * 7], dtype=bool)
    assert run_lengths(above).tolist() == [3, 1, 1]            # runs of 1: three; of 2: one; of 3: one
    assert run_lengths(np.array([[0, 1], [1, 0]], dtype=bool)).tolist() == [2]   # never across frames
    assert run_lengths(np.zeros((2, 3), dtype=bool)).size == 0


def test_strays_that_leave_two_hits_need_a_higher_photon_minimum() -> None:
    """A stray photon straddling two 20-ns blocks leaves two hits, so the hits in a window are compound Poisson,
    not Poisson. Monte Carlo of such strays (rate 2/µs, 30 % doubles, a 1-µs window, one trial): the minimum
    from the measured run lengths keeps the fake rate at or below alpha and is the least that does; treating
    every hit as a stray (the rule before) lets 1.7-3x alpha through. All doubles: exactly twice the runs."""
    from s2lib.signal.xray import min_photon_hits

    rng = np.random.default_rng(1)
    n = rng.poisson(2.0, 400_000)
    hits = n + rng.binomial(n, 0.3)
    runs = np.array([140_000, 60_000])                          # 2/µs over 1e5 µs, 30 % of two blocks
    for alpha in (0.05, 0.01, 1e-3):
        need = min_photon_hits(int(runs.sum()), 1e5, 1.0, 1.0, alpha, run_lengths=runs)
        assert (hits >= need).mean() <= alpha * 1.1 and (hits >= need - 1).mean() > alpha
        naive = min_photon_hits(int(runs[0] + 2 * runs[1]), 1e5, 1.0, 1.0, alpha)
        assert naive < need and (hits >= naive).mean() > 1.5 * alpha
    for alpha in (1e-2, 1e-3, 1e-4):                            # S = 2·Poisson: P(S ≥ 2k − 1) = P(N ≥ k)
        k = min_photon_hits(50, 230.2585, 5.0, 10.0, alpha)
        assert min_photon_hits(50, 230.2585, 5.0, 10.0, alpha, run_lengths=[0, 50]) == 2 * k - 1
    assert min_photon_hits(5, 230.2585, 5.0, 10.0, 1e-3, run_lengths=[5]) == min_photon_hits(5, 230.2585, 5.0,
                                                                                             10.0, 1e-3)
