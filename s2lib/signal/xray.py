"""X-ray selection: classify each frame as an isolated X-ray S2 between S1 and the recoil S2, or say why not.

A pure array kernel in the style of :mod:`s2lib.signal.waveform` (no I/O, no configuration objects; time µs, voltage
mV, area mV·µs; raw samples with ``gain``/``baseline`` or a signal in mV). It reuses the sparse threshold and
clustering helpers of :mod:`s2lib.signal.waveform` (those also drive ``detect_s2``); waveform does not import this
module (its old lazy re-export of these names was an import cycle).
"""
from __future__ import annotations

import math
from enum import IntEnum
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .waveform import _Sparse, _above_threshold, _clusters, _gap_samples, _largest
from .frames import _frames, _per_frame, sample_index

__all__ = ["XRayReason", "XRayResult", "classify_xrays", "reason_counts", "min_photon_hits", "run_lengths"]


class XRayReason(IntEnum):
    """Per-frame outcome of :func:`classify_xrays` (checked in this order; the first that applies wins)."""

    ACCEPTED = 0
    EXCESSIVE_S1 = 1
    EXCESSIVE_S2 = 2
    NO_SIGNAL = 3
    INSUFFICIENT_SEPARATION = 4
    BELOW_MIN_AREA = 5
    TOO_FEW_PHOTONS = 6

    @property
    def label(self) -> str:
        """Lower-case name used in artifacts (``"insufficient_separation"``)."""
        return self.name.lower()


def reason_counts(reason: ArrayLike) -> dict[str, int]:
    """Number of frames per :class:`XRayReason` label (every label present, zeros included)."""
    c = np.bincount(np.asarray(reason, dtype=np.int64).ravel(), minlength=len(XRayReason))
    return {r.label: int(c[r]) for r in XRayReason}


class XRayResult(NamedTuple):
    """Per-frame X-ray classification (arrays of length n_frames).

    reason: int8 :class:`XRayReason` codes. area: unclipped integral (mV·µs) of the signal over
    [t_start − pad, t_end + pad] (NaN when no candidate). t_start, t_end: first and last above-threshold
    sample of the candidate (µs, NaN when none). s1_veto, s2_veto: the excess statistics (mV·µs).
    n_candidates: clusters overlapping the inner window. n_hits: above-threshold samples of the candidate
    (its photon count at one sample per photon; 0 when none).
    """

    reason: NDArray[np.int8]
    area: NDArray[np.float64]
    t_start: NDArray[np.float64]
    t_end: NDArray[np.float64]
    s1_veto: NDArray[np.float64]
    s2_veto: NDArray[np.float64]
    n_candidates: NDArray[np.int64]
    n_hits: NDArray[np.int64]


SPARSE_GAP_RATIO = math.log(100.0)
"""A candidate whose photons, spread over a whole S2 (``span_us / n_hits``: the spacing they would have, not
that of the fragment seen, which may be a cut-off piece), are farther apart than ``merge_gap /
SPARSE_GAP_RATIO`` is *sparse*: a gap longer than the merge gap, behind which a cut-off part of the S2 could
hide from the separation test, then occurs with probability ``exp(−gap/spacing)`` > 1 % at the window edge.
A sparse candidate must fit in W as a whole S2 (``span_us`` centred on its mean hit time); a dense one (a
bright S2) is judged by its clusters alone, since a part of it in a guard band would merge with it."""


def _row_range_sums(a: np.ndarray, rows: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Σ a[r, lo:hi] for each (r, lo, hi): one contiguous reduction per candidate frame.

    Candidate ranges are ragged; one C-level sum per candidate is cheaper than any vectorised ragged sum
    (a gather or ``np.add.reduceat`` touches the whole slice; measured 5–20× slower for 49 × 75 000 int8).
    """
    acc = np.int64 if a.dtype.kind in "iu" else np.float64
    return np.array([a[r, i:j].sum(dtype=acc) for r, i, j in zip(rows, lo, hi)], dtype=np.float64)



def _densest(sp: _Sparse, inner: np.ndarray, span: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the first and last hit (indices into ``sp``) of the ``span``-sample window whose inner-window
    hits (``inner``) have the largest Σ s; −1 without inner hits. Windows start at a hit (the maximum is
    always attained there); ties go to the earliest."""
    i0, i1 = np.full(k, -1, np.int64), np.full(k, -1, np.int64)
    idx = np.flatnonzero(inner)
    if idx.size == 0:
        return i0, i1
    rows = sp.rows[idx].astype(np.int64)
    key = rows * (int(sp.pos.max()) + span + 2) + sp.pos[idx]          # sorted: hits come row by row, in time
    csum = np.concatenate(([0.0], np.cumsum(sp.val[idx])))
    end = np.searchsorted(key, key + span, side="left")                 # first inner hit at or after pos + span
    score = csum[end] - csum[:-1]
    order = np.lexsort((-score, rows))                                   # stable: earliest of equal windows first
    ro = rows[order]
    top = order[np.concatenate(([True], ro[1:] != ro[:-1]))]
    i0[rows[top]], i1[rows[top]] = idx[top], idx[end[top] - 1]
    return i0, i1


def _local_offset(s: np.ndarray, sp: _Sparse, quiet_lo: np.ndarray, quiet_hi: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray, pad: int, n_pedestal: float) -> np.ndarray:
    """Per frame the residual baseline (mV) under the candidate: the mean of ``s`` over the quiet samples of
    ``[quiet_lo, quiet_hi]`` (farther than ``pad`` from any hit, outside the candidate's ``[lo, hi)``), pooled
    with the pedestal (``n_pedestal`` samples of mean 0 by construction): Σ_quiet s / (n_quiet + n_pedestal).

    Inverse-variance weighting of the two white-noise means; it cuts the per-frame pedestal error that an
    X-ray S2 of several µs would otherwise multiply by its length (0.03 mV × 5 µs ≈ 0.14 mV·µs at 200
    samples)."""
    k, n = s.shape
    r = np.arange(k, dtype=np.int64) * (n + 1)
    hit = sp.rows.astype(np.int64) * (n + 1)
    # one difference array marks every excluded run: each hit ± pad, the candidate [lo, hi), and the samples
    # before quiet_lo and after quiet_hi; quiet samples are those no run covers (running sum 0)
    up = np.concatenate((hit + np.maximum(sp.pos - pad, 0), r + lo, r, r + np.minimum(quiet_hi + 1, n)))
    down = np.concatenate((hit + np.minimum(sp.pos + pad + 1, n), r + hi, r + np.clip(quiet_lo, 0, n), r + n))
    near = (np.bincount(up, minlength=k * (n + 1)) - np.bincount(down, minlength=k * (n + 1))).reshape(k, n + 1)
    quiet = np.cumsum(near[:, :n], axis=1) == 0
    return np.where(quiet, s, 0.0).sum(axis=1) / (quiet.sum(axis=1) + max(float(n_pedestal), 0.0) + 1e-300)


def _indices(t_us: ArrayLike, shifts: tuple[float, float], t0_us: float, dt_us: float, n: int,
             k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per frame the :func:`sample_index` of ``t + shift`` for both ``shifts`` (µs); ``t_us`` a scalar or one time
    per frame. A scalar takes the scalar path (the same float64 operations, without ~15 µs of numpy calls each)."""
    if np.ndim(t_us) == 0:
        t = float(t_us)
        return tuple(np.full(k, sample_index(t + d, t0_us, dt_us, n), dtype=np.int64) for d in shifts)
    t = _per_frame(t_us, k)
    return tuple(np.asarray(sample_index(t + d, t0_us, dt_us, n), dtype=np.int64).reshape(k) for d in shifts)


def classify_xrays(x: ArrayLike, t0_us: float, dt_us: float, t_s1_us: ArrayLike, t_s2_start_us: ArrayLike, *,
                   gain: float = 1.0, baseline: ArrayLike = 0.0, ma_window: int = 10,
                   threshold_mV: float = 0.5, min_s1_sep_us: float = 0.5, min_s2_sep_us: float = 1.0,
                   merge_gap_us: float | None = 0.5, pad_us: float = 0.1, min_area: float = 0.2,
                   max_area_s1: float = np.inf, max_area_s2: float = np.inf, span_us: float | None = None,
                   min_hits: ArrayLike = 0, n_pedestal: float | None = None) -> XRayResult:
    """Classify each frame as an isolated X-ray S2 between S1 and the recoil S2, or give the rejection reason.

    ``x`` is the slice starting at ``t0_us`` (raw with ``gain``/``baseline``, or a signal in mV); pass a slice
    that covers the S1 and the start of the recoil S2 when the S1/S2 vetoes matter. ``t_s1_us`` and
    ``t_s2_start_us`` are set-level scalars or per-frame arrays. Steps, with ``s`` the ``ma_window``-sample
    moving average of the signal:

    1. ``excessive_s1``: ``dt·Σ s`` over samples with ``s > threshold`` and ``t < t_S1`` exceeds ``max_area_s1``
       (mV·µs; the lab summed samples without dt).
    2. ``excessive_s2``: the same for ``t ≥ t_S2,start`` against ``max_area_s2``.
    3. Above-threshold samples (hits) form clusters (gaps ≤ ``merge_gap_us``); the inner window is
       ``W = [t_S1 + min_s1_sep, t_S2,start − min_s2_sep]``. None in W: ``no_signal`` (a cluster lying
       entirely in a guard band, ``[t_S1, t_S1 + min_s1_sep)`` or ``(t_S2,start − min_s2_sep, t_S2,start]``, is
       the S1 tail or the S2 head, not an X-ray).

       * ``span_us`` None (the lab's rule): the candidate is the cluster overlapping W of largest Σ s.
       * ``span_us`` given (the expected duration of a whole S2, EL transit and diffusion): the window of that
         length whose hits in W have the largest Σ s locates the X-ray; the candidate is every cluster with a
         hit in that window. A faint S2 is a sparse train of single photons that no gap-based cluster holds
         together; this integrates all of it whatever the spacing of its photons.
    4. ``insufficient_separation``: the candidate reaches outside W (closer than ``min_s1_sep`` to S1 or
       than ``min_s2_sep`` to the S2 start, or merged with the S1 tail); with ``span_us``, also a *sparse*
       candidate (:data:`SPARSE_GAP_RATIO`) whose whole S2, ``span_us`` centred on its mean hit time, does not
       fit in W (part of it may lie beyond a gap in a guard band).
    5. Area ``A = dt·Σ s_raw`` of the *unsmoothed, unclipped* signal over ``[t_start − pad, t_end + pad]``
       (unbiased for zero-mean noise); with ``n_pedestal`` given, minus the local residual baseline × length
       (:func:`_local_offset`; ``n_pedestal`` = samples the frame's pedestal was averaged over, in samples of
       ``x``). ``A < min_area`` gives ``below_min_area``.
    6. ``too_few_photons``: fewer than ``min_hits`` hits in the candidate (stray single photons; the caller
       derives ``min_hits`` from the stray-photon rate, :func:`min_photon_hits`; a scalar or one per frame).
    """
    a = _frames(x)
    k, n = a.shape
    base = _per_frame(baseline, k)
    i_s1, w_lo = _indices(t_s1_us, (0.0, min_s1_sep_us), t0_us, dt_us, n, k)
    i_s2, w_hi = _indices(t_s2_start_us, (0.0, -min_s2_sep_us), t0_us, dt_us, n, k)
    w_hi = w_hi - 1                                                      # last sample with t <= hi edge

    sp = _above_threshold(a, ma_window, threshold_mV, gain, base)
    in_s1 = sp.pos < i_s1[sp.rows]
    in_s2 = sp.pos >= i_s2[sp.rows]
    s1_veto = np.bincount(sp.rows[in_s1], weights=sp.val[in_s1], minlength=k) * dt_us
    s2_veto = np.bincount(sp.rows[in_s2], weights=sp.val[in_s2], minlength=k) * dt_us

    cl = _clusters(sp, _gap_samples(merge_gap_us, dt_us))
    hkey = sp.rows.astype(np.int64) * (n + 1) + sp.pos                   # hits sorted by frame, then time
    overlaps = (cl.last >= w_lo[cl.row]) & (cl.first <= w_hi[cl.row])
    best, n_cand = _largest(cl, overlaps, k)
    c0 = c1 = best
    if span_us is not None and cl.row.size:
        i0, i1 = _densest(sp, (sp.pos >= w_lo[sp.rows]) & (sp.pos <= w_hi[sp.rows]),
                          max(1, int(round(span_us / dt_us))), k)
        ckey = cl.row.astype(np.int64) * (n + 1) + cl.first                  # hit → its cluster
        cid = np.searchsorted(ckey, hkey, side="right") - 1
        c0 = np.where(i0 >= 0, cid[np.maximum(i0, 0)], -1)
        c1 = np.where(i1 >= 0, cid[np.maximum(i1, 0)], -1)
    has = c0 >= 0
    first = np.where(has, cl.first[np.maximum(c0, 0)], -1) if cl.row.size else np.full(k, -1)
    last = np.where(has, cl.last[np.maximum(c1, 0)], -1) if cl.row.size else np.full(k, -1)
    rk = np.arange(k, dtype=np.int64) * (n + 1)
    h0, h1 = np.searchsorted(hkey, rk + first), np.searchsorted(hkey, rk + last, side="right")
    n_hits = np.where(has, h1 - h0, 0)

    pad = int(round(pad_us / dt_us))
    rows = np.flatnonzero(has)
    lo = np.minimum(np.maximum(first[rows] - pad, 0), n)
    hi = np.minimum(np.maximum(last[rows] + pad + 1, 0), n)
    area = np.full(k, np.nan)
    area[rows] = gain * (_row_range_sums(a, rows, lo, hi) - (hi - lo) * base[rows]) * dt_us
    if n_pedestal is not None and rows.size:
        s = gain * (a[rows].astype(np.float64) - base[rows, None])
        keep = has[sp.rows]                                              # hits of the candidate frames,
        sub = _Sparse((np.cumsum(has) - 1)[sp.rows[keep]], sp.pos[keep], sp.val[keep])   # renumbered 0..
        off = _local_offset(s, sub, w_lo[rows], w_hi[rows], lo, hi, pad, n_pedestal)
        area[rows] -= off * (hi - lo) * dt_us

    reason = np.full(k, XRayReason.ACCEPTED, dtype=np.int8)
    reason[n_hits < min_hits] = XRayReason.TOO_FEW_PHOTONS
    reason[area < min_area] = XRayReason.BELOW_MIN_AREA               # NaN compares False: stays for below
    separated = (first >= w_lo) & (last <= w_hi)
    if span_us is not None and cl.row.size:       # a sparse S2, centred on its mean hit time, must fit in W
        cpos = np.concatenate(([0.0], np.cumsum(sp.pos, dtype=np.float64)))
        centre = (cpos[h1] - cpos[h0]) / np.maximum(n_hits, 1)
        half = 0.5 * span_us / dt_us
        spacing = (span_us / dt_us) / np.maximum(n_hits, 1)            # of its photons over a whole S2
        gap = _gap_samples(merge_gap_us, dt_us)
        sparse = spacing * SPARSE_GAP_RATIO > (gap if gap is not None else np.inf)
        separated &= ~sparse | ((centre - half >= w_lo - 0.5) & (centre + half <= w_hi + 0.5))
    reason[has & ~separated] = XRayReason.INSUFFICIENT_SEPARATION
    reason[~has] = XRayReason.NO_SIGNAL
    reason[s2_veto > max_area_s2] = XRayReason.EXCESSIVE_S2
    reason[s1_veto > max_area_s1] = XRayReason.EXCESSIVE_S1

    t_start = np.where(has, t0_us + first * dt_us, np.nan)
    t_end = np.where(has, t0_us + last * dt_us, np.nan)
    return XRayResult(reason, area, t_start, t_end, s1_veto, s2_veto, n_cand.astype(np.int64),
                      n_hits.astype(np.int64))


def run_lengths(above: np.ndarray) -> np.ndarray:
    """``c[j]``: the number of runs of ``j + 1`` consecutive True values along axis 1 of the boolean ``above``
    (frames, blocks); runs never continue from one frame into the next. Empty when nothing is True."""
    a = np.zeros((above.shape[0], above.shape[1] + 2), dtype=np.int8)
    a[:, 1:-1] = above
    d = np.diff(a.ravel())
    lengths = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
    return np.bincount(lengths)[1:] if lengths.size else np.zeros(0, dtype=np.int64)


def min_photon_hits(n_stray: int, exposure_us: float, span_us: float, search_us: float, alpha: float,
                    cl: float = 0.9, run_lengths: ArrayLike | None = None) -> int:
    """Fewest hits an X-ray candidate needs so that stray single photons fake one in at most ``alpha`` of
    the frames (``too_few_photons``, :func:`classify_xrays` step 6).

    The stray rate is measured: ``n_stray`` strays (same threshold and smoothing) in ``exposure_us`` of
    signal-free time (frames × pre-S1 sideband); its classical upper limit at confidence ``cl``,
    ``r = Γ⁻¹(cl; n_stray + 1)/exposure`` (per µs), covers a small sample. Strays are Poisson in time, so a
    window of ``span_us`` holds Poisson(λ = r·span) of them; the search region of ``search_us`` offers
    ``m = max(1, search/span)`` disjoint windows (Bonferroni). Returned: the least n ≥ 1 with
    ``m·P(S ≥ n) ≤ alpha``; 0 (no test) when ``alpha ≥ 1`` or ``exposure_us ≤ 0``.

    ``run_lengths`` (``c[j]``: strays seen as ``j + 1`` consecutive hits) makes ``S`` the hits they leave, not
    their number: a photon straddling two blocks is two hits, so ``S`` is compound Poisson with the measured
    run-length distribution ``q_j = c[j]/Σc`` (Panjer's recursion: ``P(S=0) = e^−λ``,
    ``P(S=s) = (λ/s)·Σ_j j·q_j·P(S=s−j)``); then ``n_stray`` counts runs. Without it every stray is one hit.
    """
    from scipy import special   # the ufuncs behind stats.gamma.ppf / stats.poisson.sf, without their ~0.4 ms
                                # per-call distribution machinery (one call per file of the pass)

    if not alpha > 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    if not alpha < 1.0 or not exposure_us > 0:
        return 0
    rate = float(special.gammaincinv(n_stray + 1.0, cl)) / exposure_us     # Γ⁻¹(cl; n_stray + 1), unit scale
    mu = rate * max(span_us, 0.0)
    trials = max(1.0, search_us / span_us) if span_us > 0 else 1.0
    c = np.asarray(run_lengths if run_lengths is not None else [], dtype=np.float64).ravel()
    if c.size < 2 or not c[1:].sum() > 0:                 # every stray one hit: S is Poisson(mu)
        n = 1
        while trials * float(special.pdtrc(n - 1, mu)) > alpha:          # P(Poisson(mu) ≥ n)
            n += 1
        return n
    q = [0.0] + [float(v) for v in c / c.sum()]          # q[j]: a stray leaves j hits (j ≥ 1); Python floats:
    if mu > 700.0:                                         # e^−λ underflows: S is normal to ≪ 1 % here
        mean = mu * sum(j * qj for j, qj in enumerate(q))
        sd = math.sqrt(mu * sum(j * j * qj for j, qj in enumerate(q)))
        return max(1, math.ceil(mean - sd * float(special.ndtri(alpha / trials))))
    pmf = [math.exp(-mu)]                                  # a few short loops, cheaper than numpy calls per file
    tail = 1.0 - pmf[0]                                    # P(S ≥ n) for n = len(pmf)
    while trials * tail > alpha:                           # Panjer's recursion for the compound Poisson
        size = len(pmf)
        pmf.append(mu / size * sum(j * q[j] * pmf[size - j] for j in range(1, min(size, len(q) - 1) + 1)))
        tail = max(tail - pmf[-1], 0.0)
        if pmf[-1] == 0.0 and size > 10 * (len(q) + mu + 10):
            break                                          # far in the tail: what is left of tail is round-off
    return max(len(pmf), 1)
