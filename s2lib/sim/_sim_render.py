"""Rendering and digitising of the synthetic runs (no I/O): the single-photoelectron kernel, photoelectrons
rendered into frames, noise, baseline and quantisation, and one file's generation from its seed streams
(steps 2 and 3 of :mod:`s2lib.sim._sim_model`, which draws the events).

Split from :mod:`s2lib.sim._sim_model` (issue 10). Units: time µs, voltage mV, area mV·µs.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ._sim_model import FileEvents, SetModel, draw_file_events

if TYPE_CHECKING:  # pragma: no cover
    from .profile import SimulationProfile

__all__ = ["spe_kernel", "padded_width", "render_pe", "file_seed_sequence", "simulate_file", "digitise_events"]

_PE_CHUNK = 16384


def spe_kernel(dt_us: float, rise_ns: float, decay_ns: float) -> NDArray[np.float64]:
    """Single-photoelectron pulse shape sampled at dt, normalised so that Σ kernel·dt = 1 (one area unit).

    Shape: exp(−t/τ_decay) − exp(−t/τ_rise), t = j·dt ≥ 0, cut at 10·τ_decay (the tail beyond is < 5e-5 and is
    absorbed by the normalisation). With τ_rise 1.5 ns and τ_decay 4 ns: peak at 2.4 ns, FWHM ≈ 6 ns, and a
    0.02 mV·µs photoelectron peaks at ≈ 2.8 mV [estimate, domain.md 8].
    """
    if dt_us <= 0 or rise_ns <= 0 or decay_ns <= rise_ns:
        raise ValueError(f"bad SPE shape: dt {dt_us} µs, rise {rise_ns} ns, decay {decay_ns} ns (need decay > rise)")
    dt_ns = dt_us * 1e3
    n = max(2, int(math.ceil(10.0 * decay_ns / dt_ns)) + 1)
    t = np.arange(n) * dt_ns
    k = np.exp(-t / decay_ns) - np.exp(-t / rise_ns)
    return k / (k.sum() * dt_us)


def padded_width(n_points: int, kernel: NDArray[np.float64]) -> int:
    """Samples per frame of the rendering buffer: the frame plus room for the last kernel (never wraps)."""
    return n_points + kernel.size + 1


def render_pe(n_frames: int, n_points: int, dt_us: float, t0_us: float, pe_frame: NDArray[np.int64],
              pe_time_us: NDArray[np.float64], pe_area: NDArray[np.float64], kernel: NDArray[np.float64], *,
              out: NDArray[np.floating[Any]] | None = None, factor: float = 1.0,
              dtype: type = np.float32) -> NDArray[np.floating[Any]]:
    """Render photoelectrons into a padded buffer (n_frames, padded_width) and return the buffer.

    Each PE at fractional sample x = (t − t0)/dt is split linearly between samples ⌊x⌋ and ⌊x⌋+1 and convolved
    with ``kernel`` (Σ kernel·dt = 1); PEs with x outside [0, n_points) are dropped. Hence
    Σ buffer·dt = factor·Σ area (in-frame PEs) exactly up to rounding; the first ``n_points`` columns are the
    frame, the rest holds the tails of pulses near the end of the frame. Pass ``out`` to accumulate into an
    existing buffer (e.g. noise, with ``factor=-1`` for negative PMT pulses).
    """
    width = padded_width(n_points, kernel)
    if out is None:
        out = np.zeros((n_frames, width), dtype=dtype)
    elif out.shape != (n_frames, width) or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous with shape {(n_frames, width)}, got {out.shape}")
    x = (np.asarray(pe_time_us, dtype=np.float64) - t0_us) / dt_us
    keep = (x >= 0) & (x < n_points)
    x, frames, areas = x[keep], np.asarray(pe_frame)[keep], np.asarray(pe_area, dtype=np.float64)[keep]
    k_ext = np.concatenate([[0.0], kernel, [0.0]])  # k_ext[j+1] = kernel[j]; kernel[-1] = kernel[L] = 0
    taps = np.arange(kernel.size + 1)
    flat = out.reshape(-1)
    for lo in range(0, x.size, _PE_CHUNK):
        xi = x[lo:lo + _PE_CHUNK]
        i0 = np.floor(xi)
        f = (xi - i0)[:, None]
        w = (1.0 - f) * k_ext[None, 1:] + f * k_ext[None, :-1]  # sample i0 + j gets (1−f)k[j] + f·k[j−1]
        w *= (factor * areas[lo:lo + _PE_CHUNK])[:, None]
        idx = (frames[lo:lo + _PE_CHUNK] * width + i0.astype(np.int64))[:, None] + taps[None, :]
        np.add.at(flat, idx.ravel(), w.ravel().astype(out.dtype, copy=False))
    return out


def file_seed_sequence(seed: int, gate_V: float, anode_V: float, file_index: int, stream: int
                       ) -> np.random.SeedSequence:
    """Seed sequence of one random stream of one file, keyed by (gate, anode, file index, stream).

    Streams: 0 events, 1 noise, 2 trigger timestamps. The key does not depend on which sets or files are
    generated, nor in which order, so a file's bytes depend only on (seed, profile, gate, anode, file index).
    """
    key = (int(round(gate_V)), int(round(anode_V)), int(file_index), int(stream))
    return np.random.SeedSequence(seed, spawn_key=key)


def simulate_file(profile: SimulationProfile, setm: SetModel, seed: int, file_index: int
                  ) -> tuple[NDArray[np.integer[Any]], FileEvents]:
    """Generate one file: returns the raw frames (n_frames, n_points) and the events behind them.

    Stored volts V = −signal/1000 + baseline + noise; raw = round((V − offset)/lsb) clipped to the sample format
    (int8 as in domain.md 3: the 0 mV baseline sits at raw ≈ 99.5 and pulses go down; int16: lsb = scale/256).
    Samples beyond the format's range are clipped, as by the digitiser; the count per frame of samples at the
    limits is added to the truth as ``n_saturated_samples``.
    """
    ss_events = file_seed_sequence(seed, setm.gate_V, setm.anode_V, file_index, 0)
    ss_noise = file_seed_sequence(seed, setm.gate_V, setm.anode_V, file_index, 1)
    events = draw_file_events(profile, setm, np.random.default_rng(ss_events), profile.frames_per_file)
    return digitise_events(profile, events, np.random.default_rng(ss_noise)), events


def digitise_events(profile: SimulationProfile, events: FileEvents, noise_rng: np.random.Generator
                    ) -> NDArray[np.integer[Any]]:
    """Raw frames (events.n_frames, n_points) of drawn events: noise from ``noise_rng``, the per-frame baseline,
    the rendered (negative) pulses, quantisation and clipping (see :func:`simulate_file`); adds
    ``n_saturated_samples`` to ``events.truth``."""
    p = profile
    n_frames = events.n_frames
    dt_us = 1e6 / p.sampling_rate_Hz
    kernel = spe_kernel(dt_us, p.spe_rise_ns, p.spe_decay_ns)
    width = padded_width(p.n_points, kernel)
    buf = noise_rng.standard_normal((n_frames, width), dtype=np.float32)
    buf *= np.float32(p.noise_sigma_mV)
    buf += (events.truth["baseline_mV"] - p.offset_mV).astype(np.float32)[:, None]
    render_pe(n_frames, p.n_points, dt_us, p.t0_us, events.pe_frame, events.pe_time_us, events.pe_area,
              kernel, out=buf, factor=-1.0)
    view = buf[:, :p.n_points]
    view *= np.float32(1.0 / p.lsb_mV)
    np.rint(view, out=view)
    lo, hi = p.sample_range
    events.truth["n_saturated_samples"] = np.count_nonzero((view <= lo) | (view >= hi), axis=1).astype(np.int64)
    np.clip(view, lo, hi, out=view)
    return view.astype(p.sample_format)
