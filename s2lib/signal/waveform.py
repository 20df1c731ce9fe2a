"""Pure array kernels over frames: S1/S2 detection, robust centre/spread, window integration.

The pedestal, the raw-to-signal map, moving sums and time-to-sample conversion are in :mod:`s2lib.signal.frames`;
the X-ray selection kernel (``classify_xrays``, ``XRayReason``, ``reason_counts``) is in :mod:`s2lib.signal.xray`.

Every function takes arrays and scalars and returns arrays: no I/O, no configuration objects. Frames run along
axis 0 and samples along axis 1 (a 1-D input is treated as one frame). The kernels are meant to be called on
*sample slices* of the memory-mapped raw data (``raw[:, window_slice(...)]``), so a pass reads only the bytes it
needs.

Units: time µs, voltage mV, area mV·µs. Sample ``i`` of a slice whose first sample is at ``t0_us`` sits at
``t_i = t0_us + i·dt_us``; ``dt_us`` must come from the file header, never from configuration.

Raw data or signal. PMT pulses are negative; the *signal* is ``s = −(V − P)`` with ``V = raw·scale + offset``
(mV) and ``P`` the per-frame pedestal (mV), so pulses are positive and the baseline is 0. The detection and
integration kernels accept either a float signal in mV (the default ``gain=1, baseline=0``) or the raw integer
samples together with the affine map ``s = gain·(x − baseline)`` returned by :func:`raw_gain_baseline`. The raw
route is exact (integer moving sums and sums) and avoids float copies of the slice, which is what keeps a pass
near memory speed.
"""
from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .frames import _chunks, _frames, _MovingSum, _per_frame, _row_sums, moving_average

__all__ = ["detect_s1", "detect_s2", "robust_center_spread", "integrate_window", "window_area"]

def detect_s1(x: ArrayLike, t0_us: float, dt_us: float, *, threshold_mV: float = 1.0, ma_window: int = 5,
              edge: Literal["peak", "leading"] = "peak", gain: float = 1.0,
              baseline: ArrayLike = 0.0) -> NDArray[np.float64]:
    """Per-frame S1 time (µs): the largest pulse of the slice (pass the pre-trigger region).

    The signal ``s = gain·(x − baseline)`` is smoothed (:func:`moving_average`); the largest pulse is the one
    holding the maximum. ``edge="peak"`` returns the time of the maximum; ``"leading"`` the 50 % constant-
    fraction crossing on its rising edge (linear interpolation). Both ignore later small pulses and noise,
    unlike the lab's time of the *last* sample above threshold (trailing edge of whatever pulse came last).
    NaN when the maximum is below ``threshold_mV``.
    """
    a = _frames(x)
    k, n = a.shape
    if n == 0:
        return np.full(k, np.nan)
    s = moving_average(a, ma_window)
    s -= _per_frame(baseline, k)[:, None].astype(s.dtype)
    s *= s.dtype.type(gain)
    am = np.argmax(s, axis=1)
    peak = s[np.arange(k), am].astype(np.float64)
    pos = am.astype(np.float64)
    if edge == "leading" and n > 1:
        half = 0.5 * peak
        idx = np.arange(n)
        below = (s < half[:, None].astype(s.dtype)) & (idx < am[:, None])
        j = np.where(below, idx, -1).max(axis=1)
        ok = j >= 0
        jj = np.clip(j, 0, n - 2)
        s0 = s[np.arange(k), jj].astype(np.float64)
        s1 = s[np.arange(k), jj + 1].astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.clip((half - s0) / (s1 - s0), 0.0, 1.0)
        pos = np.where(ok, jj + np.nan_to_num(frac), 0.0)
    elif edge not in ("peak", "leading"):
        raise ValueError(f"unknown edge {edge!r}")
    return np.where(peak >= threshold_mV, t0_us + pos * dt_us, np.nan)


class _Sparse(NamedTuple):
    rows: np.ndarray   # frame index of each above-threshold sample
    pos: np.ndarray    # sample index ('same' alignment of the moving average)
    val: np.ndarray    # smoothed signal there (mV)


def _above_threshold(a: np.ndarray, window: int, threshold_mV: float, gain: float,
                     baseline: np.ndarray) -> _Sparse:
    """Samples whose smoothed signal exceeds the threshold, found chunk by chunk in the raw domain.

    ``gain·(M/w − b) > thr`` is rewritten as a comparison of the moving sum ``M`` against a per-frame bound,
    so integer data are compared as integers and nothing is converted to float but the few hits.
    """
    if gain == 0:
        raise ValueError("gain must be non-zero")
    k, n = a.shape
    w, h = int(window), int(window) // 2
    bound = window * (baseline + threshold_mV / gain)
    if w == 1 and a.dtype.kind == "f":            # no smoothing of a float signal: compare it in place
        mask = (np.greater if gain > 0 else np.less)(a, bound.astype(a.dtype)[:, None])
        rows, cols = np.divmod(np.flatnonzero(mask), n)
        return _Sparse(rows, cols, gain * (a[rows, cols] / w - baseline[rows]))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    chunks = list(_chunks(k, n))
    engine = _MovingSum(chunks[0].stop - chunks[0].start if chunks else 0, n, w, a.dtype)
    if engine.acc.kind in "iu":                     # integer sums: compare with an integer bound, exactly
        info = np.iinfo(engine.acc)
        bound = np.clip(np.floor(bound) if gain > 0 else np.ceil(bound), info.min, info.max)
    bound = bound.astype(engine.acc)[:, None]
    mask_buf = np.empty(engine.out.shape, dtype=bool)
    for ch in chunks:
        m = engine(a[ch])
        if m.shape[1] == 0:
            continue
        mask = mask_buf[:m.shape[0]]
        (np.greater if gain > 0 else np.less)(m, bound[ch], out=mask)
        flat = np.flatnonzero(mask)
        if flat.size == 0:
            continue
        rows, cols = np.divmod(flat, m.shape[1])
        rows += ch.start
        val = gain * (m.ravel()[flat] / w - baseline[rows])
        parts.append((rows, cols + h, val))
    if not parts:
        e = np.empty(0, dtype=np.int64)
        return _Sparse(e, e.copy(), np.empty(0))
    return _Sparse(*(np.concatenate(p) for p in zip(*parts)))


class _Clusters(NamedTuple):
    row: np.ndarray
    first: np.ndarray
    last: np.ndarray
    weight: np.ndarray  # Σ smoothed signal above threshold (mV·samples)


def _clusters(sp: _Sparse, max_gap: int | None) -> _Clusters:
    """Group above-threshold samples of each frame into clusters split by gaps > ``max_gap`` samples."""
    if sp.rows.size == 0:
        return _Clusters(sp.rows, sp.pos, sp.pos, sp.val)
    new = np.ones(sp.rows.size, dtype=bool)
    new[1:] = sp.rows[1:] != sp.rows[:-1]
    if max_gap is not None:
        new[1:] |= np.diff(sp.pos) > max_gap
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], sp.rows.size] - 1
    weight = np.add.reduceat(sp.val, starts)
    return _Clusters(sp.rows[starts], sp.pos[starts], sp.pos[ends], weight)


def _largest(cl: _Clusters, eligible: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the index of the eligible cluster of largest weight (−1 if none) and the eligible count."""
    best = np.full(n_frames, -1, dtype=np.int64)
    idx = np.flatnonzero(eligible)
    count = np.bincount(cl.row[idx], minlength=n_frames)
    if idx.size:
        order = idx[np.lexsort((-cl.weight[idx], cl.row[idx]))]
        first_of_row = np.r_[True, cl.row[order][1:] != cl.row[order][:-1]]
        best[cl.row[order[first_of_row]]] = order[first_of_row]
    return best, count


def _gap_samples(gap_us: float | None, dt_us: float) -> int | None:
    return None if gap_us is None else max(1, int(round(gap_us / dt_us)))


def detect_s2(x: ArrayLike, t0_us: float, dt_us: float, *, threshold_mV: float = 0.8, ma_window: int = 9,
              merge_gap_us: float | None = 1.0, gain: float = 1.0,
              baseline: ArrayLike = 0.0) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-frame S2 start and end times (µs) inside the slice (pass the S2 search region).

    The signal ``s = gain·(x − baseline)`` (pedestal-subtracted, unlike the lab's) is smoothed with a
    ``ma_window``-sample moving average; samples above ``threshold_mV`` are grouped into clusters split by
    gaps longer than ``merge_gap_us``; the cluster with the largest Σ s is the S2 and its first/last
    above-threshold samples give (t_start, t_end). A stray photon far from the S2 therefore no longer
    stretches the window (the lab took the last crossing anywhere up to 35 µs); ``merge_gap_us=None``
    restores that behaviour. NaN where no sample exceeds the threshold.
    """
    a = _frames(x)
    k = a.shape[0]
    sp = _above_threshold(a, ma_window, threshold_mV, gain, _per_frame(baseline, k))
    cl = _clusters(sp, _gap_samples(merge_gap_us, dt_us))
    best, _ = _largest(cl, np.ones(cl.row.size, dtype=bool), k)
    ok, b = best >= 0, np.maximum(best, 0)
    if not cl.row.size:
        return np.full(k, np.nan), np.full(k, np.nan)
    return (np.where(ok, t0_us + cl.first[b] * dt_us, np.nan), np.where(ok, t0_us + cl.last[b] * dt_us, np.nan))


def robust_center_spread(values: ArrayLike, *, method: Literal["mad", "percentile"] = "mad",
                         clip: float = 3.0, max_iter: int = 10) -> tuple[float, float, int]:
    """Robust centre and spread of a set of per-frame values (NaN ignored).

    Centre = median; spread = 1.4826·MAD (``"mad"``) or half the 16–84 % interval (``"percentile"``); both
    equal σ for a Gaussian. Values farther than ``clip``·spread from the centre are dropped and the estimate
    is repeated until the kept set stops changing. Replaces the lab's mode of a 100-bin histogram, which
    depends on binning and jumps between neighbouring bins.

    Returns:
        (centre, spread, n_used); (nan, nan, 0) when there is no finite value.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), 0

    def estimate(u: np.ndarray) -> tuple[float, float]:
        c = float(np.median(u))
        if method == "mad":
            return c, 1.4826 * float(np.median(np.abs(u - c)))
        if method == "percentile":
            p16, p84 = np.percentile(u, [15.865, 84.135])
            return c, 0.5 * float(p84 - p16)
        raise ValueError(f"unknown method {method!r}")

    kept = v
    c, s = estimate(kept)
    for _ in range(max_iter):
        new = v[np.abs(v - c) <= clip * s] if s > 0 else kept
        if new.size in (kept.size, 0):
            break
        kept = new
        c, s = estimate(kept)
    return c, s, int(kept.size)


# --------------------------------------------------------------------------- integration
def integrate_window(x: ArrayLike, dt_us: float, *, gain: float = 1.0, baseline: ArrayLike = 0.0,
                     deadband_mV: float | None = None) -> NDArray[np.float64]:
    """Area per frame (mV·µs): ``A = dt·Σ_i s_i`` with ``s = gain·(x − baseline)`` over the given window.

    No clipping: the sum of zero-mean noise has expectation 0, so A is unbiased. Clipping samples below a
    threshold to 0 while keeping the positive noise above it (the lab's ``bs_threshold``) adds
    E[noise·1(noise > thr)] > 0 per sample — a bias proportional to the window length. The optional
    ``deadband_mV`` zeroes samples with ``|s| < deadband`` on *both* sides, which keeps symmetric noise
    unbiased (but removes a little true signal); off by default. No smoothing either: a moving average does
    not change a sum away from the window edges. Integer ``x`` is summed exactly in integers.
    """
    a = _frames(x)
    k, n = a.shape
    b = _per_frame(baseline, k)
    if deadband_mV is not None:
        s = a.astype(np.float64 if a.dtype == np.float64 else np.float32)
        s -= b[:, None].astype(s.dtype)
        s *= s.dtype.type(gain)
        s[np.abs(s) < deadband_mV] = 0
        return s.sum(axis=1).astype(np.float64) * dt_us
    return window_area(_row_sums(a), n, dt_us, gain=gain, baseline=b)


def window_area(row_sums: ArrayLike, n_samples: int, dt_us: float, *, gain: float = 1.0,
                baseline: ArrayLike = 0.0) -> NDArray[np.float64]:
    """:func:`integrate_window` of frames whose samples are already summed: ``A = gain·(Σx − n·baseline)·dt``
    (mV·µs) from the per-frame sums ``Σx`` of ``n_samples`` raw samples (exact integers stay exact)."""
    return gain * (np.asarray(row_sums, dtype=np.float64) - n_samples * np.asarray(baseline)) * dt_us
