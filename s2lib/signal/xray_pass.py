"""The engine's X-ray step (:mod:`s2lib.signal.integration`, module docstring steps 4-5): the block-averaged
X-ray region of one file, the classification of every frame (:func:`~s2lib.signal.xray.classify_xrays`) and the
pile-up flags, with the selection's parameters (:class:`XrayParams`) and constants.

With ``span_us`` (the expected duration of a whole S2, from the timing stage) the candidate is the whole S2
located by its photon density and integrated against a local baseline, and the fewest photon hits a candidate
needs come from the stray-photon rate measured in this file's sideband (pre-S1, signal-free):
:func:`~s2lib.signal.xray.min_photon_hits` at ``XrayParams.false_rate`` fakes per frame. Without it the lab's
rule (largest cluster of above-threshold blocks) applies.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple, Sequence

import numpy as np

from .frames import sample_index
from .timing import block_signal, block_sums, sums_signal
from .waveform import _above_threshold, _clusters, _gap_samples, _largest
from .xray import _row_range_sums, classify_xrays, min_photon_hits, run_lengths

__all__ = ["FLAG_XRAY_PILEUP", "FLAG_BITS", "XRAY_BLOCK_US", "XRAY_PRE_US", "XRAY_POST_US", "XRAY_STRAY_CL",
           "XrayParams", "XrayBlocks", "xray_blocks", "classify_blocks", "pileup_start_limit"]

XRAY_BLOCK_US = 0.02
"""Block length (µs) of the averaged signal the X-ray classification runs on (20 ns: a photoelectron averages to
≈0.9 mV, the noise to ≈0.04-0.09 mV at 5-1 GS/s; efficiency and purity on simulated runs are the same as with
5 or 10 ns blocks, and the reduction runs ~1.5x faster)."""
FLAG_XRAY_PILEUP = 1
"""Bit 0 of the per-frame flags: an X-ray-like cluster (area ≥ min_xray_area) starts before the recoil window
and reaches into it or within ``min_s2_sep`` of its start (pile-up: its area would add to the recoil area)."""
FLAG_BITS = {"xray_pileup": FLAG_XRAY_PILEUP}
"""Flag name → bit value (documented in ``s2_results.json`` under ``params["flag_bits"]``)."""
XRAY_PRE_US = 0.5
"""The X-ray region starts this long before t_S1 (the ``excessive_s1`` veto looks there)."""
XRAY_POST_US = 0.2
"""The X-ray region ends this long after the integration window start (the S2 guard band is inside)."""


@dataclass(frozen=True)
class XrayParams:
    """X-ray selection (``notes/domain.md`` 4.5). Threshold mV (on the 20-ns block average), times µs, areas
    mV·µs; ``max_sum_s1``/``max_sum_s2`` are the lab's *sample sums* (mV), turned into mV·µs with each file's
    ``dt`` (the lab's 1e5 at 5 GS/s is 20 mV·µs: it vetoes alpha-in-gas frames, not recoils)."""

    threshold_mV: float = 0.5
    min_s1_sep_us: float = 0.5
    min_s2_sep_us: float = 1.0
    min_area: float = 0.0
    max_sum_s1: float = math.inf
    max_sum_s2: float = math.inf
    merge_gap_us: float = 0.5
    pad_us: float = 0.1
    false_rate: float = 1e-4


XRAY_STRAY_CL = 0.9
"""Confidence of the upper limit on the stray-photon rate measured in each file's sideband
(:func:`~s2lib.signal.xray.min_photon_hits`): a file with few strays gets a conservative minimum photon count."""


class XrayBlocks(NamedTuple):
    """One file's share of the X-ray step, read from its samples (:func:`xray_blocks`); the classification
    (:func:`classify_blocks`) needs nothing else, so the blocks of several files are classified together."""

    sig: np.ndarray                 # (frames, blocks) block-averaged signal from t_S1 − XRAY_PRE_US, mV (float32)
    n_main: int                     # blocks of the X-ray region proper; the rest extends to the pile-up end
    t_first: float                  # time of the first sample of block 0, µs
    block_us: float                 # block length, µs
    dt_us: float                    # sampling interval, µs (the S1/S2 vetoes are sample sums)
    min_hits: int                   # fewest photon hits of a candidate (0: no test)
    n_ped_blocks: float | None      # pedestal length in blocks (None: no local baseline)
    sideband_sum: np.ndarray | None  # Σ raw over the sideband per frame (int64), or None


def xray_blocks(xp: XrayParams, raw: np.ndarray, sb: slice, n_ped: int, dt: float, t0: float, gain: float,
                base: np.ndarray, t_s1: float, ws: float, t_pu: float, do_pileup: bool,
                span_us: float | None) -> XrayBlocks:
    """The samples' part of the X-ray step of one file: the block signal over ``[t_S1 − XRAY_PRE_US, ws +
    XRAY_POST_US]`` (to ``t_pu + XRAY_POST_US`` with ``do_pileup``) and, with ``span_us``, the stray-photon count
    in the sideband ``sb`` (pre-S1, signal-free) turned into the fewest hits of a candidate
    (:func:`~s2lib.signal.xray.min_photon_hits`), and the per-frame sum of the raw sideband samples (the caller's
    sideband area, :func:`~s2lib.signal.waveform.window_area`, need not read them again).

    Args:
        xp: selection parameters. raw: the file's raw frames. sb: the sideband samples (signal-free, before
        S1; the stray-photon rate is counted there). n_ped: pedestal samples. dt, t0: sampling (µs).
        gain, base: raw → mV map per frame. t_s1: set S1 time; ws: integration window start (µs).
        t_pu: pile-up clusters must start before this (µs, ≥ ``ws``; :func:`pileup_start_limit`).
        do_pileup: extend the blocks for the pile-up flags. span_us: expected duration of a whole S2 (None:
        the lab's cluster rule, no photon-count test).
    """
    k, n = raw.shape
    block = max(1, int(round(XRAY_BLOCK_US / dt)))
    a = int(sample_index(t_s1 - XRAY_PRE_US, t0, dt, n))
    b = int(sample_index(ws + XRAY_POST_US, t0, dt, n))
    b_pu = max(b, int(sample_index(t_pu + XRAY_POST_US, t0, dt, n))) if do_pileup else b
    sig = block_signal(raw[:, a:b_pu], block, gain, base)
    bdt = block * dt
    min_hits, n_ped_blocks, sb_sum = 0, None, None
    if span_us is not None:
        sums = block_sums(raw[:, sb], block)
        stray = sums_signal(sums, block, gain, base)
        if raw.dtype.kind in "iu":                  # exact integer sums; float samples: the caller integrates
            sb_sum = sums.sum(axis=1, dtype=np.int64)
            tail = raw[:, sb.start + sums.shape[1] * block:sb.stop]       # the samples after the last whole block
            if tail.shape[1]:
                sb_sum += tail.sum(axis=1, dtype=np.int64)
        search = (ws - xp.min_s2_sep_us) - (t_s1 + xp.min_s1_sep_us)
        runs = run_lengths(stray > xp.threshold_mV)         # a stray photon is one run of 1-2 blocks
        min_hits = min_photon_hits(int(runs.sum()), stray.size * bdt, span_us, search, xp.false_rate,
                                   XRAY_STRAY_CL, run_lengths=runs)
        n_ped_blocks = n_ped / block
    return XrayBlocks(sig, max(1, (b - a) // block), t0 + a * dt, bdt, dt, min_hits, n_ped_blocks, sb_sum)


def classify_blocks(xp: XrayParams, parts: Sequence[XrayBlocks], t_s1: float, ws: float, t_pu: float,
                    do_pileup: bool, span_us: float | None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """X-ray reason codes, areas (mV·µs) and pile-up flags per frame of each part (in order).

    Parts with the same block layout (grid, length, sampling interval, pedestal) are classified in one call of
    :func:`~s2lib.signal.xray.classify_xrays` and one of :func:`_pileup_flags` (their per-call cost of some 100
    small array operations is paid once per batch of files instead of once per file); every step works frame
    by frame, so a frame's results do not depend on the frames it is batched with (bit-identical)."""
    out: list[Any] = [None] * len(parts)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, p in enumerate(parts):
        groups.setdefault((p.sig.shape[1], p.n_main, p.t_first, p.block_us, p.dt_us, p.n_ped_blocks), []).append(i)
    for (_, n_main, t_first, bdt, dt, n_ped_blocks), idx in groups.items():
        sig = np.concatenate([parts[i].sig for i in idx]) if len(idx) > 1 else parts[idx[0]].sig
        hits = np.concatenate([np.full(parts[i].sig.shape[0], parts[i].min_hits, np.int64) for i in idx])
        res = classify_xrays(sig[:, :n_main], t_first, bdt, t_s1, ws, ma_window=1, threshold_mV=xp.threshold_mV,
                             min_s1_sep_us=xp.min_s1_sep_us, min_s2_sep_us=xp.min_s2_sep_us,
                             merge_gap_us=xp.merge_gap_us, pad_us=xp.pad_us, min_area=xp.min_area,
                             max_area_s1=xp.max_sum_s1 * dt, max_area_s2=xp.max_sum_s2 * dt, span_us=span_us,
                             min_hits=hits, n_pedestal=n_ped_blocks)
        flags = (_pileup_flags(sig, t_first, bdt, t_s1, ws, t_pu, xp) if do_pileup
                 else np.zeros(sig.shape[0], dtype=np.uint8))
        cuts = np.cumsum([parts[i].sig.shape[0] for i in idx])[:-1]
        for i, r, a, f in zip(idx, np.split(res.reason, cuts), np.split(res.area, cuts), np.split(flags, cuts)):
            out[i] = (r, a, f)
    return out


def pileup_start_limit(ws: float, pileup_end: float | None) -> float:
    """The time (µs) before which a pile-up cluster must start: ``pileup_end``, never before the window start."""
    return ws if pileup_end is None else max(ws, float(pileup_end))


def _pileup_flags(sig: np.ndarray, t_first: float, bdt: float, t_s1: float, ws: float, t_pu: float,
                  xp: XrayParams) -> np.ndarray:
    """:data:`FLAG_XRAY_PILEUP` per frame (module docstring of :mod:`s2lib.signal.integration`, step 5): the
    largest cluster overlapping ``[t_S1 + min_s1_sep, t_pu]`` with area ≥ ``min_area`` that starts before
    ``t_pu`` (the expected S2 start − 2σ, or the window start) and ends at or after ``window start − min_s2_sep``.

    The candidate is :func:`~s2lib.signal.xray.classify_xrays`' lab-rule candidate with W ending at ``t_pu``,
    found with its cluster helpers directly: only the largest cluster and the area of the frames it could flag
    are needed, not the vetoes, hit counts and reasons."""
    k, n = sig.shape
    sp = _above_threshold(sig, 1, xp.threshold_mV, 1.0, np.zeros(k))
    cl = _clusters(sp, _gap_samples(xp.merge_gap_us, bdt))
    w_lo = sample_index(t_s1 + xp.min_s1_sep_us, t_first, bdt, n)
    w_hi = sample_index(t_pu, t_first, bdt, n) - 1
    best, _ = _largest(cl, (cl.last >= w_lo) & (cl.first <= w_hi), k)
    rows = np.flatnonzero(best >= 0)
    first, last = cl.first[best[rows]], cl.last[best[rows]]
    near = ((t_first + first * bdt) < t_pu) & ((t_first + last * bdt) >= ws - xp.min_s2_sep_us)
    rows, first, last = rows[near], first[near], last[near]
    pad = int(round(xp.pad_us / bdt))
    lo = np.minimum(np.maximum(first - pad, 0), n)
    hi = np.minimum(np.maximum(last + pad + 1, 0), n)
    area = _row_range_sums(sig, rows, lo, hi) * bdt
    flags = np.zeros(k, dtype=np.uint8)
    flags[rows[area >= max(xp.min_area, 0.0)]] = FLAG_XRAY_PILEUP
    return flags
