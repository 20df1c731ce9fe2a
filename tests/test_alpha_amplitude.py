"""Per-frame alpha amplitude: hand-made traces with known heights, flags, window conversion."""
from __future__ import annotations

import numpy as np
import pytest

from s2lib.alpha.amplitude import (NO_PULSE, PEAK_AT_EDGE, PILEUP, SATURATED, SCA_DIVISOR_V, AmplitudeParams,
                                   estimate_amplitudes, savgol_window_samples)

DT_US = 0.004
T = -1.0 + np.arange(400) * DT_US   # µs after the trigger


def pulse(height: float, start_us: float = 0.0, tau_us: float = 0.1) -> np.ndarray:
    u = np.clip((T - start_us) / tau_us, 0, None)
    return height * u * u * np.exp(2 - u) / 4


def test_savgol_window_is_100_ns_by_default() -> None:
    assert savgol_window_samples(AmplitudeParams(), 0.0002) == 501   # the lab's 501 samples at 5 GS/s
    assert savgol_window_samples(AmplitudeParams(), 0.004) == 25
    assert savgol_window_samples(AmplitudeParams(savgol_window=11), 0.004) == 11
    with pytest.raises(ValueError, match="savgol_window"):
        AmplitudeParams(savgol_window=10)


def test_known_heights_in_sca_units_with_noise() -> None:
    rng = np.random.default_rng(5)
    heights = np.array([4.0, 5.5, 7.9])
    v = np.stack([pulse(h) for h in heights]) + 0.3 + rng.normal(0, 0.02, (3, T.size))   # 0.3 V baseline
    res = estimate_amplitudes(v, T, AmplitudeParams())
    # a 100 ns SG window of order 3 on a 200 ns-peaking pulse keeps the peak to better than 0.3 %
    assert res.amplitude_V == pytest.approx(heights, rel=0.003, abs=0.01)
    assert res.sca == pytest.approx(res.amplitude_V / SCA_DIVISOR_V)
    assert res.baseline_V == pytest.approx(0.3, abs=0.005)
    assert res.noise_V == pytest.approx(0.02, rel=0.2)
    assert res.peak_time_us == pytest.approx(0.2, abs=0.012)
    assert res.flags.tolist() == [0, 0, 0]
    again = estimate_amplitudes(v, T, AmplitudeParams())
    assert np.array_equal(again.sca, res.sca)    # deterministic (no dither)


def test_flags() -> None:
    rng = np.random.default_rng(6)
    v = np.stack([pulse(5.0) + pulse(3.0, start_us=-0.8),      # second pulse before the trigger: pile-up
                  np.minimum(pulse(9.0), 6.0),                  # clipped at the digitiser top: saturated
                  np.zeros(T.size),                             # nothing: no pulse
                  pulse(5.0, start_us=0.55)])                   # outside the search window: edge
    v = v + rng.normal(0, 0.01, v.shape)
    res = estimate_amplitudes(v, T, AmplitudeParams(peak_time_us=0.2), saturation_V=6.0)
    assert res.flags[0] & PILEUP and not res.flags[0] & SATURATED
    assert res.flags[1] & SATURATED
    assert res.flags[2] & NO_PULSE
    assert res.flags[3] & PEAK_AT_EDGE
    # the earlier pulse raises the median baseline, so the height is wrong: the reason flagged frames are not
    # tagged or fitted
    assert res.amplitude_V[0] < 4.5


def test_too_few_baseline_samples_is_a_clear_error() -> None:
    v = pulse(5.0)[None, :]
    with pytest.raises(ValueError, match="baseline samples"):
        estimate_amplitudes(v, T, AmplitudeParams(peak_time_us=-0.6))
