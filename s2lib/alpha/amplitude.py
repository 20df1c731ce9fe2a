"""Per-frame alpha amplitude of the silicon channel, in the lab's "SCA units", with quality flags.

The estimator (deterministic; the lab's, notes/alpha.md 2.1 / domain.md 4.7, without its unseeded dither and with
its defects D8 fixed):

1. baseline = median of the samples before the peak-search window; noise = 1.4826·MAD/√2 of their sample-to-sample
   differences (V; insensitive to a slow pulse in that region);
2. Savitzky–Golay smoothing of the baseline-subtracted trace (``scipy.signal.savgol_filter``, polynomial order 3,
   mode "interp"; window ``savgol_window`` samples, default the odd sample count closest to 100 ns, which is the
   lab's 501 samples at 5 GS/s);
3. amplitude = maximum of the smoothed trace inside the search window t_peak ± ``peak_window_us`` (t relative to
   the trigger; t_peak from the configuration, or the median time of the per-frame maxima of the file);
4. SCA value = amplitude [V] / ``sca_divisor_V`` (1.058 V per u_SCA, the lab's scale; alpha.md 1.4). u_SCA is not
   MeV: the energy calibration (``s2lib.alpha.calibrate``) maps it to MeV.

Flags (bit field, 0 = clean): ``SATURATED`` a sample at the digitiser's top code; ``PILEUP`` more than one pulse
in the frame (smoothed-trace peaks with prominence above both ``pileup_fraction``·amplitude and
``noise_sigmas``·noise); ``NO_PULSE`` amplitude below ``noise_sigmas``·noise; ``PEAK_AT_EDGE`` the
maximum sits on the search window's edge (the pulse is elsewhere or cut).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.signal import find_peaks, savgol_filter

from s2lib.io.wfm import open_wfm

__all__ = ["SCA_DIVISOR_V", "SATURATED", "PILEUP", "NO_PULSE", "PEAK_AT_EDGE", "FLAG_NAMES", "AmplitudeParams",
           "Amplitudes", "savgol_window_samples", "estimate_amplitudes", "estimate_wfm_file", "flag_counts"]

SCA_DIVISOR_V = 1.058
"""Volts per SCA unit: the lab's divisor that puts the silicon peak voltage on its single-channel analyser's
dial scale (documentation_readmes/ENERGY_CALIBRATION_GUIDE.md via notes/alpha.md 1.4)."""

SATURATED, PILEUP, NO_PULSE, PEAK_AT_EDGE = 1, 2, 4, 8
FLAG_NAMES = {SATURATED: "saturated", PILEUP: "pile-up", NO_PULSE: "no pulse", PEAK_AT_EDGE: "peak at window edge"}


@dataclass(frozen=True)
class AmplitudeParams:
    """Estimator parameters (stored with every artifact).

    Attributes:
        savgol_window: SG window in samples (odd, > savgol_order); None: odd count closest to ``savgol_window_ns``.
        savgol_window_ns: SG window in ns when ``savgol_window`` is None (100 ns = lab's 501 samples at 5 GS/s).
        savgol_order: SG polynomial order (the lab's 3).
        peak_time_us: expected peak time after the trigger, µs; None: median of the per-frame maxima per file.
        peak_window_us: half-width of the peak search window, µs.
        sca_divisor_V: volts per SCA unit (1.058).
        pileup_fraction: a second pulse counts when its prominence exceeds this fraction of the amplitude.
        noise_sigmas: detection threshold in units of the noise (no-pulse flag, pile-up floor).
    """

    savgol_window: int | None = None
    savgol_window_ns: float = 100.0
    savgol_order: int = 3
    peak_time_us: float | None = None
    peak_window_us: float = 0.5
    sca_divisor_V: float = SCA_DIVISOR_V
    pileup_fraction: float = 0.1
    noise_sigmas: float = 5.0

    def __post_init__(self) -> None:
        if self.savgol_window is not None and (self.savgol_window % 2 == 0 or self.savgol_window <= self.savgol_order):
            raise ValueError(f"energy_mapping.savgol_window: expected an odd number of samples > "
                             f"{self.savgol_order}, got {self.savgol_window}")
        for name in ("savgol_window_ns", "peak_window_us", "sca_divisor_V", "noise_sigmas"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: expected a positive number, got {getattr(self, name)}")
        if not 0 < self.pileup_fraction < 1:
            raise ValueError(f"pileup_fraction: expected a number in (0, 1), got {self.pileup_fraction}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters."""
        return asdict(self)


@dataclass(frozen=True)
class Amplitudes:
    """Per-frame results (arrays of the frames given, in order).

    amplitude_V: smoothed peak height above baseline, V;  sca: amplitude_V / sca_divisor_V, u_SCA;
    peak_time_us: time of the maximum after the trigger, µs;  baseline_V, noise_V: per frame, V;
    flags: uint8 bit field (``FLAG_NAMES``);  savgol_window: samples used;  peak_time_expected_us: search centre.
    """

    amplitude_V: NDArray[np.float64]
    sca: NDArray[np.float64]
    peak_time_us: NDArray[np.float64]
    baseline_V: NDArray[np.float64]
    noise_V: NDArray[np.float64]
    flags: NDArray[np.uint8]
    savgol_window: int
    peak_time_expected_us: float


def savgol_window_samples(params: AmplitudeParams, dt_us: float) -> int:
    """The SG window in samples: ``params.savgol_window`` or the odd count closest to savgol_window_ns / dt
    (at least order + 2)."""
    if params.savgol_window is not None:
        return int(params.savgol_window)
    n = int(round(params.savgol_window_ns * 1e-3 / dt_us))
    n = n + 1 if n % 2 == 0 else n
    return max(n, params.savgol_order + 2 + (params.savgol_order % 2))


def estimate_amplitudes(volts: NDArray[np.floating], time_us: NDArray[np.floating], params: AmplitudeParams, *,
                        saturation_V: float | None = None) -> Amplitudes:
    """Estimate the alpha amplitude of every frame (pure kernel).

    Args:
        volts: (n_frames, n_points) silicon traces, V, positive pulses.
        time_us: (n_points,) sample times after the trigger, µs (``WfmHeader.time_us()``).
        params: estimator parameters.
        saturation_V: the digitiser's top level (``offset + scale·max code``); None: no saturation check.

    Raises:
        ValueError: fewer than 10 baseline samples before the search window, or an SG window longer than a frame.
    """
    v = np.atleast_2d(np.asarray(volts, dtype=np.float64))
    t = np.asarray(time_us, dtype=np.float64)
    n_frames, n_points = v.shape
    dt = float(t[1] - t[0]) if t.size > 1 else 1.0
    win = savgol_window_samples(params, dt)
    if win > n_points:
        raise ValueError(f"Savitzky-Golay window of {win} samples is longer than the frame ({n_points} samples)")
    smooth_raw = savgol_filter(v, win, params.savgol_order, axis=1)
    t_exp = params.peak_time_us
    if t_exp is None:
        t_exp = float(np.median(t[np.argmax(smooth_raw, axis=1)])) if n_frames else float(t[n_points // 2])
    lo = int(np.searchsorted(t, t_exp - params.peak_window_us))
    hi = int(np.searchsorted(t, t_exp + params.peak_window_us, side="right"))
    lo, hi = max(lo, 0), min(hi, n_points)
    if lo < 10:
        start = t_exp - params.peak_window_us
        raise ValueError(f"only {lo} baseline samples before the peak search window ({start:.4g} "
                         f"µs); need at least 10: reduce peak_window_us or set peak_time_us")
    pre = v[:, :lo]
    baseline = np.median(pre, axis=1)
    d = np.diff(pre, axis=1)   # sample-to-sample differences: blind to slow pulses in the baseline region
    noise = 1.4826 * np.median(np.abs(d - np.median(d, axis=1)[:, None]), axis=1) / np.sqrt(2.0)
    smooth = smooth_raw - baseline[:, None]
    seg = smooth[:, lo:hi]
    k = np.argmax(seg, axis=1)
    amp = seg[np.arange(n_frames), k]
    flags = np.zeros(n_frames, dtype=np.uint8)
    flags[(k == 0) | (k == hi - lo - 1)] |= PEAK_AT_EDGE
    flags[amp < params.noise_sigmas * np.maximum(noise, 1e-12)] |= NO_PULSE
    if saturation_V is not None:
        flags[np.max(v, axis=1) >= saturation_V] |= SATURATED
    for i in range(n_frames):
        floor = max(params.pileup_fraction * amp[i], params.noise_sigmas * noise[i], 1e-12)
        peaks, _ = find_peaks(smooth[i], prominence=floor)
        if peaks.size > 1:
            flags[i] |= PILEUP
    return Amplitudes(amp, amp / params.sca_divisor_V, t[lo + k], baseline, noise, flags, win, float(t_exp))


def estimate_wfm_file(path: str | Path, params: AmplitudeParams, *, chunk: int = 256) -> Amplitudes:
    """Run ``estimate_amplitudes`` over every frame of one silicon-channel WFM file, ``chunk`` frames at a
    time (bounded memory for 35 000-sample frames). The search centre is fixed per file (from the first chunk
    when ``peak_time_us`` is None) so that all frames use the same window."""
    with open_wfm(path) as f:
        h = f.header
        t = h.time_us()
        top = h.offset_V + h.scale_V * float(np.iinfo(h.sample_dtype).max)
        sat = top - 0.5 * abs(h.scale_V)
        parts: list[Amplitudes] = []
        p = params
        for start in range(0, h.n_frames, chunk):
            res = estimate_amplitudes(f.volts(frames=slice(start, start + chunk)), t, p, saturation_V=sat)
            if p.peak_time_us is None:
                p = AmplitudeParams(**{**p.to_dict(), "peak_time_us": res.peak_time_expected_us})
            parts.append(res)
    if not parts:
        z = np.zeros(0)
        return Amplitudes(z, z, z, z, z, np.zeros(0, np.uint8), savgol_window_samples(params, h.dt_us), float("nan"))
    return Amplitudes(*(np.concatenate([getattr(r, name) for r in parts]) for name in
                        ("amplitude_V", "sca", "peak_time_us", "baseline_V", "noise_V", "flags")),
                      parts[0].savgol_window, parts[0].peak_time_expected_us)


def flag_counts(flags: NDArray[np.integer]) -> dict[str, int]:
    """How many frames carry each flag (a frame can carry several), plus "clean"."""
    f = np.asarray(flags)
    out = {name: int(np.count_nonzero(f & bit)) for bit, name in FLAG_NAMES.items()}
    out["clean"] = int(np.count_nonzero(f == 0))
    return out
