"""Kernels of s2lib.signal.waveform on hand-made frames with pulses of known area at known times."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2lib.signal import frames as fr
from s2lib.signal import xray as xk
from s2lib.signal import waveform as wf
from s2lib.signal.xray import XRayReason

DT = 0.001          # µs (1 GS/s keeps the arrays small)
T0 = -5.0           # µs, time of sample 0
N = 25_000          # samples: -5 .. 20 µs
T = T0 + DT * np.arange(N)
SPE_SIGMA = 0.0025  # µs (≈ 6 ns FWHM)


def gauss(t0: float, area: float, sigma: float) -> np.ndarray:
    """Gaussian pulse of the given area (mV·µs) centred at t0 (µs), sampled on T."""
    return area / (sigma * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((T - t0) / sigma) ** 2)


def spe(t0: float, amp: float = 3.0) -> np.ndarray:
    return amp * np.exp(-0.5 * ((T - t0) / SPE_SIGMA) ** 2)


def pulse_train(rng: np.random.Generator, t_center: float, n_pe: int, spread: float) -> np.ndarray:
    out = np.zeros(N)
    for t in rng.normal(t_center, spread, n_pe):
        out += spe(t)
    return out


def frames(*clean: np.ndarray, sigma: float = 0.4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stack noiseless frames and add Gaussian noise; returns (noisy, clean)."""
    c = np.stack(clean)
    rng = np.random.default_rng(seed)
    return c + rng.normal(0.0, sigma, c.shape), c


# --------------------------------------------------------------------------- signal, pedestal, smoothing
def test_to_signal_flips_negative_pulses_and_subtracts_pedestal():
    raw = np.full((2, 100), -3, dtype=np.int8)
    raw[:, 50] = -13                                   # 10 counts below baseline = a negative pulse
    ped = fr.pedestal_mV(raw, 0.4, -39.8)
    np.testing.assert_allclose(ped, -3 * 0.4 - 39.8)
    s = fr.to_signal_mV(raw, 0.4, -39.8, ped)
    assert s.dtype == np.float32
    np.testing.assert_allclose(s[:, 50], 4.0, atol=1e-5)
    np.testing.assert_allclose(np.delete(s, 50, axis=1), 0.0, atol=1e-5)
    gain, base = fr.raw_gain_baseline(0.4, -39.8, ped)
    np.testing.assert_allclose(gain * (raw - base[:, None]), s, atol=1e-5)


def test_clipped_mean_pedestal_is_unbiased_on_int8_where_the_median_is_not():
    rng = np.random.default_rng(1)
    true = 0.3                                           # counts: the baseline sits between two LSB levels
    raw = np.round(true + rng.normal(0, 1.0, (400, 5000))).astype(np.int8)
    raw[::4, 2000:2010] -= 8                             # stray single photons in a quarter of the frames
    mean = fr.pedestal_mV(raw, 1.0, 0.0, method="clipped_mean", clip_mV=5.0)
    med = fr.pedestal_mV(raw, 1.0, 0.0, method="median")
    assert abs(mean.mean() - true) < 0.01
    assert abs(med.mean() - true) > 0.25               # stuck on the integer grid


@pytest.mark.parametrize("w", [1, 2, 5, 9, 10, 33])
def test_moving_average_matches_convolve_inside_and_local_mean_at_edges(w):
    rng = np.random.default_rng(w)
    x = rng.normal(size=(3, 400))
    y = fr.moving_average(x, w)
    ref = np.array([np.convolve(r, np.ones(w) / w, "same") for r in x])
    h, r = w // 2, (w - 1) // 2
    np.testing.assert_allclose(y[:, h:400 - r], ref[:, h:400 - r], atol=1e-12)
    np.testing.assert_allclose(y[:, 0], x[:, :r + 1].mean(axis=1))
    np.testing.assert_allclose(y[:, -1], x[:, 400 - 1 - h:].mean(axis=1))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 300), st.integers(1, 80))
def test_moving_sum_exact_on_int8(w, n):
    rng = np.random.default_rng(w * 1000 + n)
    x = rng.integers(-128, 128, (2, n)).astype(np.int8)
    m = fr.moving_sum(x, w)
    assert m.shape == (2, max(n - w + 1, 0))
    # brute force: the sum of every full window, in exact integer arithmetic
    expected = np.array([[int(x[r, i:i + w].astype(np.int64).sum()) for i in range(n - w + 1)] for r in range(2)],
                        dtype=np.int64).reshape(2, -1)
    np.testing.assert_array_equal(m, expected)


def test_moving_average_int8_equals_float():
    rng = np.random.default_rng(3)
    x = rng.integers(-5, 5, (4, 1000)).astype(np.int8)
    np.testing.assert_allclose(fr.moving_average(x, 9), fr.moving_average(x.astype(np.float64), 9), atol=1e-5)



def test_to_signal_without_pedestal_is_the_inverted_voltage():
    raw = np.array([[-3, 0, 7]], dtype=np.int8)
    s = fr.to_signal_mV(raw, 0.4, -39.8)                 # pedestal None: P = 0
    np.testing.assert_allclose(s, [[41.0, 39.8, 37.0]], rtol=1e-6)  # −(raw·0.4 − 39.8), by hand


def test_raw_gain_baseline_in_float64_and_errors_named():
    ped = np.array([-41.0, -40.123457], dtype=np.float32)
    gain, base = fr.raw_gain_baseline(0.4, -39.8, ped)
    assert gain == -0.4
    assert base.dtype == np.float64                      # float32 pedestals are not rounded to float32 counts
    np.testing.assert_array_equal(base, (ped.astype(np.float64) + 39.8) / 0.4)
    with pytest.raises(ValueError, match="^scale_mV must be non-zero$"):
        fr.raw_gain_baseline(0.0, 0.0, ped)
    with pytest.raises(ValueError, match="unknown pedestal method 'mode'"):
        fr.pedestal_mV(np.zeros((1, 10), np.int8), method="mode")


@pytest.mark.parametrize("w, acc", [(2, np.int16), (10, np.int16), (300, np.int32)])
def test_moving_sum_of_int8_stays_integer(w, acc):
    """Integer frames are summed in the smallest integer type that cannot overflow (exact, no float round-off)."""
    x = np.full((2, 400), 127, dtype=np.int8)
    m = fr.moving_sum(x, w)
    assert m.dtype == acc
    assert np.all(m == 127 * w)

# --------------------------------------------------------------------------- time <-> index
@settings(max_examples=200, deadline=None)
@given(st.floats(-100, 100), st.floats(-100, 100), st.floats(-20, 0), st.floats(1e-4, 1.0),
       st.integers(0, 10_000))
def test_window_slice_always_in_bounds(ta, tb, t0, dt, n):
    sl = fr.window_slice(ta, tb, t0, dt, n)
    assert 0 <= sl.start <= sl.stop <= n
    if sl.stop > sl.start:
        t_first, t_last = t0 + sl.start * dt, t0 + (sl.stop - 1) * dt
        assert t_first >= ta - 1e-5 * dt and t_last < tb + 1e-5 * dt


def test_sample_index_exact_sample_and_clipping():
    assert fr.sample_index(-3.3, -15.0, 0.0002, 250_000) == 58_500
    assert fr.sample_index(-99.0, -15.0, 0.0002, 250_000) == 0
    assert fr.sample_index(99.0, -15.0, 0.0002, 250_000) == 250_000
    np.testing.assert_array_equal(fr.sample_index(np.array([-15.0, 35.0]), -15.0, 0.0002, 250_000),
                                  [0, 250_000])
    with pytest.raises(ValueError):
        fr.sample_index(float("nan"), 0.0, 1.0, 10)


@settings(max_examples=300, deadline=None)
@given(t=st.floats(allow_nan=False, width=64), t0=st.floats(-1e6, 1e6), dt=st.floats(1e-6, 1e3),
       n=st.integers(0, 10**7))
def test_sample_index_of_one_float_equals_the_array_path(t, t0, dt, n):
    one = fr.sample_index(t, t0, dt, n)                                  # Python floats: the scalar path
    arr = fr.sample_index(np.array([t, t]), t0, dt, n)                   # numpy: the array path
    assert isinstance(one, int) and one == arr[0]
    on_grid = t0 + (n // 3) * dt                                         # a time on a sample, and next to it
    for u in (on_grid, np.nextafter(on_grid, -np.inf), np.nextafter(on_grid, np.inf)):
        assert fr.sample_index(float(u), t0, dt, n) == fr.sample_index(np.array([u]), t0, dt, n)[0]
    assert fr.sample_index(np.float64(t), t0, dt, n) == one               # np.float64 is a float: same answer


# --------------------------------------------------------------------------- integration
def test_integrate_window_recovers_box_and_gaussian_areas():
    box = np.zeros(N)
    box[(T >= 12.0) & (T < 16.0)] = 0.375               # 1.5 mV·µs
    g = gauss(5.0, 2.0, 0.3)
    noisy, _ = frames(box, g, sigma=0.4, seed=2)
    sl = fr.window_slice(11.0, 17.0, T0, DT, N)
    a_box = wf.integrate_window(noisy[0:1, sl], DT)[0]
    a_g = wf.integrate_window(noisy[1:2, fr.window_slice(3.0, 7.0, T0, DT, N)], DT)[0]
    tol = 5 * 0.4 * DT * np.sqrt(6000)                   # 5 σ of the integrated noise
    assert abs(a_box - 1.5) < tol
    assert abs(a_g - 2.0) < tol


def test_integrate_window_unbiased_on_noise_where_clipping_is_biased():
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 0.4, (1000, 4000)).astype(np.float32)
    areas = wf.integrate_window(noise, DT)
    se = areas.std(ddof=1) / np.sqrt(areas.size)
    assert abs(areas.mean()) < 4 * se                    # unbiased
    # the lab's estimator: MA(9), clip below 0.03 mV to 0, integrate -> positive bias
    clipped = fr.moving_average(noise, 9)
    clipped[clipped < 0.03] = 0
    lab = clipped.sum(axis=1) * DT
    assert lab.mean() > 50 * se
    # the symmetric dead band keeps it unbiased
    db = wf.integrate_window(noise, DT, deadband_mV=0.3)
    assert abs(db.mean()) < 4 * db.std(ddof=1) / np.sqrt(db.size)


def test_integrate_window_raw_route_equals_float_route():
    rng = np.random.default_rng(5)
    raw = np.round(rng.normal(-99.4, 1.0, (8, 3000))).astype(np.int8)
    ped = fr.pedestal_mV(raw, 0.4, -39.8)
    gain, base = fr.raw_gain_baseline(0.4, -39.8, ped)
    a_raw = wf.integrate_window(raw, 0.0002, gain=gain, baseline=base)
    a_sig = wf.integrate_window(fr.to_signal_mV(raw, 0.4, -39.8, ped, dtype=np.float64), 0.0002)
    np.testing.assert_allclose(a_raw, a_sig, atol=1e-9)


# --------------------------------------------------------------------------- S1 / S2 detection
def test_detect_s1_finds_largest_pulse_not_the_last_one():
    rng = np.random.default_rng(6)
    planted = -3.3 + rng.normal(0, 0.05, 5)
    clean = [gauss(t, 0.2, 0.004) + spe(-1.0) for t in planted]     # S1 ≈ 20 mV, a later SPE of 3 mV
    noisy, _ = frames(*clean, sigma=0.4, seed=7)
    sl = fr.window_slice(-5.0, 0.0, T0, DT, N)
    t_peak = wf.detect_s1(noisy[:, sl], T0 + sl.start * DT, DT, threshold_mV=1.0)
    np.testing.assert_allclose(t_peak, planted, atol=0.003)
    t_lead = wf.detect_s1(noisy[:, sl], T0 + sl.start * DT, DT, edge="leading")
    assert np.all(t_lead < t_peak + 1e-9) and np.all(t_peak - t_lead < 0.01)
    flat, _ = frames(np.zeros(N), np.zeros(N), sigma=0.4, seed=8)
    assert np.isnan(wf.detect_s1(flat[:, sl], -5.0, DT, threshold_mV=1.0)).all()


def test_detect_s2_start_end_ignores_stray_photon_and_gives_nan_on_noise():
    box = np.zeros(N)
    box[(T >= 12.0) & (T < 16.0)] = 2.0
    noisy, _ = frames(box + spe(19.0), box, np.zeros(N), sigma=0.4, seed=9)
    sl = fr.window_slice(2.0, 20.0, T0, DT, N)
    t_a = T0 + sl.start * DT
    start, end = wf.detect_s2(noisy[:, sl], t_a, DT, threshold_mV=0.8, ma_window=9)
    np.testing.assert_allclose(start[:2], 12.0, atol=0.01)
    np.testing.assert_allclose(end[:2], 16.0, atol=0.01)
    assert np.isnan(start[2]) and np.isnan(end[2])
    # the lab's behaviour (no cluster split): the stray photon stretches the end
    _, end_lab = wf.detect_s2(noisy[:1, sl], t_a, DT, merge_gap_us=None)
    assert end_lab[0] > 18.9


@pytest.mark.parametrize("method", ["mad", "percentile"])
def test_robust_center_spread_with_outliers(method):
    rng = np.random.default_rng(10)
    v = np.r_[rng.normal(-3.3, 0.1, 9000), rng.uniform(-15, 0, 1000), [np.nan] * 5]
    c, s, n = wf.robust_center_spread(v, method=method)
    assert abs(c + 3.3) < 0.01
    assert abs(s - 0.1) < 0.01
    assert 8900 < n < 9200
    assert wf.robust_center_spread([np.nan]) == (pytest.approx(np.nan, nan_ok=True),
                                                 pytest.approx(np.nan, nan_ok=True), 0)


# --------------------------------------------------------------------------- X-rays
TS1, TS2 = -3.3, 12.0


def _classify(x: np.ndarray, **kw) -> xk.XRayResult:
    sl = fr.window_slice(-5.0, 14.0, T0, DT, N)
    return xk.classify_xrays(x[:, sl], T0 + sl.start * DT, DT, TS1, TS2, **kw)


def test_classify_xrays_reasons():
    rng = np.random.default_rng(11)
    s1 = gauss(TS1, 0.05, 0.004)                         # a normal S1 (≈ 5 mV, 0.05 mV·µs)
    xray = pulse_train(rng, 5.0, 100, 0.15)
    late = pulse_train(rng, 11.0, 100, 0.1)             # reaches within 1 µs (min_s2_sep) of the S2 start
    big_s1 = gauss(TS1, 5.0, 0.05)
    clean = [s1 + xray,                                  # 0 accepted
             s1 + late,                                  # 1 insufficient separation
             s1,                                         # 2 no signal
             s1 + spe(5.0),                              # 3 below min area (one photon ≈ 0.02 mV·µs)
             big_s1 + xray,                              # 4 excessive S1
             s1 + xray + gauss(13.0, 20.0, 0.3),         # 5 excessive S2
             s1 + xray + spe(1.0) + spe(9.0)]            # 6 accepted despite stray photons
    noisy, c = frames(*clean, sigma=0.3, seed=12)
    res = _classify(noisy, max_area_s1=1.0, max_area_s2=5.0, min_area=0.2)
    assert [XRayReason(r) for r in res.reason] == [
        XRayReason.ACCEPTED, XRayReason.INSUFFICIENT_SEPARATION, XRayReason.NO_SIGNAL,
        XRayReason.BELOW_MIN_AREA, XRayReason.EXCESSIVE_S1, XRayReason.EXCESSIVE_S2, XRayReason.ACCEPTED]
    truth = xray.sum() * DT
    np.testing.assert_allclose(res.area[[0, 6]], truth, atol=0.05)
    assert 4.0 < res.t_start[0] < 5.0 < res.t_end[0] < 6.0
    assert res.n_candidates[6] == 3
    assert np.isnan(res.area[2]) and np.isnan(res.t_start[2])
    counts = xk.reason_counts(res.reason)
    assert counts["accepted"] == 2 and counts["no_signal"] == 1 and sum(counts.values()) == 7
    assert XRayReason.INSUFFICIENT_SEPARATION.label == "insufficient_separation"


def test_classify_xrays_area_unbiased_over_many_frames():
    rng = np.random.default_rng(13)
    xray = pulse_train(rng, 5.0, 100, 0.15)
    truth = xray.sum() * DT
    noisy = xray[None, :] + rng.normal(0, 0.4, (200, N))
    res = _classify(noisy, pad_us=0.5)
    acc = res.reason == XRayReason.ACCEPTED
    assert acc.mean() > 0.95
    a = res.area[acc]
    assert abs(a.mean() - truth) < 4 * a.std(ddof=1) / np.sqrt(a.size) + 0.005


def test_classify_xrays_raw_int8_route_and_per_frame_times():
    rng = np.random.default_rng(14)
    xray = pulse_train(rng, 5.0, 100, 0.15)
    clean = np.stack([xray, np.zeros(N), xray])
    scale, offset = 0.4, -39.8
    volts = -(clean + rng.normal(0, 0.3, clean.shape)) + offset + 0.1      # negative pulses
    raw = np.clip(np.round((volts - offset) / scale), -128, 127).astype(np.int8)
    ped = fr.pedestal_mV(raw[:, :2000], scale, offset)
    gain, base = fr.raw_gain_baseline(scale, offset, ped)
    sl = fr.window_slice(-5.0, 14.0, T0, DT, N)
    ts1 = np.array([TS1, TS1, 4.8])                       # frame 2: the X-ray sits on its S1
    res = xk.classify_xrays(raw[:, sl], T0 + sl.start * DT, DT, ts1, TS2, gain=gain, baseline=base)
    assert list(res.reason) == [XRayReason.ACCEPTED, XRayReason.NO_SIGNAL, XRayReason.INSUFFICIENT_SEPARATION]
    sig = fr.to_signal_mV(raw[:, sl], scale, offset, ped)
    res_f = xk.classify_xrays(sig, T0 + sl.start * DT, DT, ts1, TS2)
    np.testing.assert_array_equal(res.reason, res_f.reason)
    np.testing.assert_allclose(res.area[0], res_f.area[0], atol=1e-4)
    assert res.area[0] == pytest.approx(xray.sum() * DT, abs=0.06)


@pytest.mark.parametrize("gain", [1.0, -0.4])
def test_unsmoothed_float_hits_match_a_brute_force_threshold(gain):
    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 1.0, (7, 300)).astype(np.float32)
    base = rng.normal(0.0, 0.1, 7)
    sp = wf._above_threshold(x[:, 10:290], 1, 0.8, gain, base)           # a strided view, as the engine passes
    s = gain * (x[:, 10:290].astype(np.float64) - base[:, None])
    rows, cols = np.nonzero(s > 0.8)
    np.testing.assert_array_equal(sp.rows, rows)
    np.testing.assert_array_equal(sp.pos, cols)
    np.testing.assert_allclose(sp.val, s[rows, cols], rtol=1e-6)
