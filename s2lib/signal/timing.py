"""S1 time and recoil S2 window of a set, estimated robustly from a subsample of frames (``prepare_run``).

Method (improving ``notes/domain.md`` 4.2-4.3 where the lab's code is fragile, 7.2 item 9):

1. **Layout from the headers.** Every file's header is read (a few KB each): sampling interval, first-sample
   time, points per frame, vertical scale and frame count. A set whose files disagree on ``dt`` or on the
   points per frame raises :class:`~s2lib.errors.DataError` naming the file; unreadable files are listed and
   skipped, truncated FastFrame files contribute their complete frames.
2. **Bounded subsample, stable when files are appended.** Up to ``max_frames`` frames from the first files of
   the set (at least :data:`SAMPLE_MIN_FILES` of them), spread evenly inside each file (:func:`sample_plan`).
3. **Per-frame S1.** Pedestal from the first ``n_pedestal`` samples (clipped mean), then the pre-trigger
   region is averaged in blocks of :data:`S1_BLOCK_US` (50 ns, so the S1 photon cluster stands far above a
   stray single photoelectron) and :func:`~s2lib.signal.waveform.detect_s1` takes the 50 % leading edge of the
   largest pulse. The lab took the trailing edge of the last sample above 1 mV anywhere before the trigger.
4. **Per-frame S2, seeded by the drift model.** The search region is
   ``[t_S1 + 0.5·t_drift, t_S1 + 1.5·t_drift + τ_EL + 2 µs]`` (clipped to the frame), with ``t_drift`` and the
   EL transit time ``τ_EL`` from the drift-velocity model. The pedestal-subtracted signal is averaged in blocks
   of :data:`S2_BLOCK_US` (10 ns), smoothed over :data:`S2_MA_BLOCKS` blocks, and
   :func:`~s2lib.signal.waveform.detect_s2` returns the first and last sample above ``threshold_s2`` of the cluster
   with the largest signal (gaps > 1 µs split clusters, so a stray photon no longer stretches the S2 to 35 µs).
   Frames whose S2 touches the region edge or whose duration is outside ``s2_duration_cuts`` are dropped.
5. **Robust set values.** :func:`~s2lib.signal.waveform.robust_center_spread` (median, 1.4826·MAD, iterative 3σ
   clip) of S1 time, S2 start, S2 end and duration. Integration window
   ``[start − n_sigma_start·σ_start, end + n_sigma_end·σ_end]``; X-ray window ``[t_S1, window start]``.

Block averaging makes the estimate cheap (one reduction over the sampled bytes) and independent of the
sampling rate: the block sizes are set in µs and converted with each file's ``dt``. Times are µs after the
trigger, voltages mV.
"""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import numpy as np

from s2lib.physics import physics
from s2lib.errors import DataError, WfmError
from s2lib.io.store import read_npy, write_npy_atomic
from .waveform import detect_s1, detect_s2, robust_center_spread
from .frames import pedestal_mV, raw_gain_baseline, sample_index
from s2lib.io.wfm import open_wfm
from .timing_plan import FileLayout, check_consistent, read_layouts, sample_plan

__all__ = ["TIMING_SAMPLES_FILE", "store_timing_samples", "load_timing_samples",
    "S1_BLOCK_US", "S2_BLOCK_US", "S2_MA_BLOCKS", "S2_MERGE_GAP_US", "SEARCH_MARGIN_US", "NARROW_AFTER", "MIN_S2_FRAMES",
    "DEFAULT_N_SIGMA_START", "DEFAULT_N_SIGMA_END", "PEDESTAL_ITERATIONS", "el_transit_us", "block_sums", "block_signal", "sums_signal", "estimate_set_timing",
]

S1_BLOCK_US = 0.05
"""Block length (µs) of the averaged pre-trigger signal used for the S1: 50 ns holds ~half of the S1 light
(fast 4 ns + slow 100 ns components) while a stray photoelectron (≈0.02 mV·µs) averages to only ≈0.4 mV."""
S2_BLOCK_US = 0.01
"""Block length (µs) of the averaged signal in the S2 search region (10 ns, the width of one photoelectron)."""
S2_MA_BLOCKS = 1
"""Moving average over this many blocks before the S2 threshold (20 ns: a photoelectron peaks near 1 mV)."""
S2_MERGE_GAP_US = 1.0
"""Above-threshold samples closer than this (µs) belong to the same S2 cluster."""
SEARCH_MARGIN_US = 2.0
"""Extra time (µs) after ``t_S1 + 1.5·t_drift + τ_EL`` in the S2 search region (diffusion tail)."""
NARROW_AFTER = 50
"""Once this many frames have an S1 (an S2), later files are searched only within 8 robust σ + 0.5 µs of the
estimate so far (inside the model-seeded region): the estimate then costs a fraction of the bytes. 50 values
give the centre to 0.18 σ and σ to ~12 %, so the 8 σ band still holds the true ±6 σ range; with the 200-frame
sample, 3/4 of the frames are read over the band only (on 5 GS/s frames ~50 000 samples instead of ~170 000)."""
MIN_S2_FRAMES = 5
"""Fewest frames with an S2 for a set's window to be estimated (otherwise the set's timing fails)."""
DEFAULT_N_SIGMA_START = 4.0
"""Default window start margin in robust σ of the per-frame S2 start (the lab's 1.0 cut ≈16 % of S2 starts)."""
DEFAULT_N_SIGMA_END = 4.0
"""Default window end margin in robust σ of the per-frame S2 end (the lab's 0.5 cut ≈30 % of S2 ends)."""
PEDESTAL_ITERATIONS = 1
"""Re-centring iterations of the clipped-mean pedestal (one removes stray photoelectrons; a second moves the
level by ≪ 0.01 mV and costs another pass over the pedestal range)."""
_PEDESTAL_GUARD_US = 1.0   # the pedestal range must end this long before the earliest S1 searched
_SAMPLES_KEPT = 1000       # per-frame values kept for the notebooks' histograms
TIMING_SAMPLES_FILE = "timing_samples.npy"
"""Per set: the per-frame S1, S2 start and S2 end times behind timing.json, (3, n) float64, NaN-padded."""
_SAMPLE_KEYS = ("t_s1_us", "t_s2_start_us", "t_s2_end_us")


def el_transit_us(reduced_el_field_Td: float, el_gap_cm: float) -> float:
    """Electron transit time through the EL gap, µs (drift-velocity model); NaN for a non-positive field."""
    if not reduced_el_field_Td > 0:
        return math.nan
    return float(physics.drift_time_us(el_gap_cm, physics.drift_velocity_mm_us(reduced_el_field_Td)))


def block_sums(region: np.ndarray, block: int) -> np.ndarray:
    """Integer sums over consecutive blocks of ``block`` samples along axis 1 (a trailing partial block is
    dropped), shape (n_frames, n // block).

    One reduction over the region (its rows copied only when not contiguous), with the narrowest accumulator
    that cannot overflow: int16 for int8 data and blocks of up to 255 samples, measured ~2x faster than int32
    on 5 GS/s frames. Integers are summed exactly (the same numbers as ``sum``), blocks of
    :data:`_REDUCEAT_MIN_BLOCK` samples or more with ``np.add.reduceat`` at the block starts, shorter ones with
    ``np.einsum`` over a (frames, blocks, block) view: measured on 5 GS/s int8 frames, reduceat is 5-10 %
    faster than einsum for 50- and 100-sample blocks and ~50 % for 250, einsum ~10 % faster for 25 (and both
    beat ``ndarray.sum(axis=2)``).
    """
    k, n = region.shape
    nb = n // block
    x = region[:, :nb * block]
    if x.strides[1] != x.itemsize:
        x = np.ascontiguousarray(x)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        lo, hi = block * int(info.min), block * int(info.max)          # the extreme block sums
        acc = next(t for t in (np.int16, np.int32, np.int64)
                   if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max)
        if block >= _REDUCEAT_MIN_BLOCK and nb:
            return np.add.reduceat(x, np.arange(0, nb * block, block), axis=1, dtype=acc)
        return np.einsum("fbs->fb", x.reshape(k, nb, block), dtype=acc, casting="unsafe")
    return x.reshape(k, nb, block).sum(axis=2, dtype=np.float64)


_REDUCEAT_MIN_BLOCK = 50
"""Shortest block summed with ``np.add.reduceat`` rather than ``np.einsum`` (:func:`block_sums`)."""


def block_signal(region: np.ndarray, block: int, gain: float, baseline: np.ndarray) -> np.ndarray:
    """Block means of the signal ``gain·(raw − baseline)`` (mV, float32), shape (n_frames, n // block): one
    integer reduction (:func:`block_sums`); only the small result is converted to float."""
    return sums_signal(block_sums(region, block), block, gain, baseline)


def sums_signal(sums: np.ndarray, block: int, gain: float, baseline: np.ndarray) -> np.ndarray:
    """:func:`block_signal` from the block sums (:func:`block_sums`) of ``block`` raw samples: mV, float32."""
    sig = sums.astype(np.float32)
    sig *= np.float32(gain / block)
    sig -= (gain * np.asarray(baseline, dtype=np.float64)).astype(np.float32)[:, None]
    return sig


class _Region(NamedTuple):
    signal: np.ndarray     # (frames, blocks) block-averaged signal, mV
    t_first: float         # time of the centre of block 0, µs
    dt: float              # block length, µs


def _region(raw: np.ndarray, rows: Any, lay: FileLayout, gain: float, base: np.ndarray, t_lo: float, t_hi: float,
            block_us: float) -> _Region | None:
    """Block-averaged signal of the frames ``rows`` over [t_lo, t_hi) (None when shorter than two blocks)."""
    a = int(sample_index(t_lo, lay.t0_us, lay.dt_us, lay.n_points))
    b = int(sample_index(t_hi, lay.t0_us, lay.dt_us, lay.n_points))
    block = max(1, int(round(block_us / lay.dt_us)))
    nb = (b - a) // block
    if nb < 2:
        return None
    sig = block_signal(raw[rows, a:a + nb * block], block, gain, base)
    return _Region(sig, lay.t0_us + (a + 0.5 * (block - 1)) * lay.dt_us, block * lay.dt_us)


def _band(low: np.ndarray, high: np.ndarray | None = None) -> tuple[float, float] | None:
    """``[c_low − 8σ − 0.5, c_high + 8σ + 0.5]`` µs from enough finite values (None while fewer than
    :data:`NARROW_AFTER`)."""
    if np.count_nonzero(np.isfinite(low)) < NARROW_AFTER:
        return None
    c_lo, s_lo, _ = robust_center_spread(low)
    c_hi, s_hi, _ = robust_center_spread(low if high is None else high)
    return c_lo - 8.0 * s_lo - 0.5, c_hi + 8.0 * s_hi + 0.5


def _robust(values: np.ndarray, floor: float) -> tuple[float, float, int]:
    c, s, n = robust_center_spread(values)
    if n and not s > floor:
        s = floor                      # a handful of identical values: the time resolution is the spread
    return c, s, n


class _Collected(NamedTuple):
    t_s1: np.ndarray
    start: np.ndarray
    end: np.ndarray
    n_frames_s2: int
    regions: list[list[float]]


def _collect(layouts: Sequence[tuple[int, FileLayout]], plan_s1: dict[int, np.ndarray],
             plan_s2: dict[int, np.ndarray], *, n_ped: int, t_drift: float, tau_el: float, threshold_s1: float,
             threshold_s2: float, cuts: tuple[float, float], failed: list[dict[str, Any]],
             progress: Callable[[int], Any] | None) -> _Collected:
    """One pass over the sampled files: per-frame S1 (pre-trigger) and S2 start/end (model-seeded region)."""
    s1_parts: list[np.ndarray] = []
    starts: list[np.ndarray] = []
    ends: list[np.ndarray] = []
    regions: list[list[float]] = []
    n2 = 0
    s1_band: tuple[float, float] | None = None       # narrowed S1 search region, once known
    s2_band: tuple[float, float] | None = None
    for pos in sorted(set(plan_s1) | set(plan_s2)):
        index, lay = layouts[pos]
        f1 = plan_s1.get(pos, np.empty(0, dtype=np.int64))
        f2 = plan_s2.get(pos, np.empty(0, dtype=np.int64))
        frames = np.union1d(f1, f2)
        reg2: _Region | None = None
        try:
            with open_wfm(lay.path, allow_partial=True) as f:
                raw = f.raw
                every = frames.size == raw.shape[0]
                rows: Any = slice(None) if every else frames
                ped = pedestal_mV(raw[rows, :n_ped], lay.scale_mV, lay.offset_mV, n_iter=PEDESTAL_ITERATIONS)
                gain, base = raw_gain_baseline(lay.scale_mV, lay.offset_mV, ped)
                i1 = np.searchsorted(frames, f1)
                r1 = slice(None) if every and f1.size == frames.size else f1
                t_ped_end = lay.t0_us + n_ped * lay.dt_us
                lo1, hi1 = t_ped_end, min(0.0, lay.t_end_us)
                if s1_band is not None:
                    lo1, hi1 = max(lo1, s1_band[0]), min(hi1, s1_band[1])
                reg = _region(raw, r1, lay, gain, base[i1], lo1, hi1, S1_BLOCK_US)
                t_s1 = (detect_s1(reg.signal, reg.t_first, reg.dt, threshold_mV=threshold_s1, ma_window=1,
                                  edge="leading") if reg is not None and f1.size else np.empty(0))
                s1_parts.append(t_s1)
                # seed: this file's median S1, else the median of all S1 found so far
                seen = t_s1[np.isfinite(t_s1)]
                if seen.size == 0:
                    allseen = np.concatenate(s1_parts)
                    seen = allseen[np.isfinite(allseen)]
                if f2.size == 0 or seen.size == 0:
                    continue
                seed = float(np.median(seen))
                lo = max(seed + 0.5 * t_drift, t_ped_end)
                hi = min(seed + 1.5 * t_drift + tau_el + SEARCH_MARGIN_US, lay.t_end_us)
                if s2_band is not None:
                    lo, hi = max(lo, s2_band[0]), min(hi, s2_band[1])
                regions.append([lo, hi])
                i2 = np.searchsorted(frames, f2)
                r2 = slice(None) if every and f2.size == frames.size else f2
                reg2 = _region(raw, r2, lay, gain, base[i2], lo, hi, S2_BLOCK_US)
        except (WfmError, OSError) as err:   # OSError: the mapped file could not be paged in
            failed.append({"file": lay.path.name, "index": index, "field": getattr(err, "field", "file"),
                           "reason": str(err)})
            continue
        finally:
            if progress is not None:
                progress(1)
        if reg2 is None:
            continue
        n2 += reg2.signal.shape[0]
        st, en = detect_s2(reg2.signal, reg2.t_first, reg2.dt, threshold_mV=threshold_s2, ma_window=S2_MA_BLOCKS,
                           merge_gap_us=S2_MERGE_GAP_US)
        last = reg2.t_first + (reg2.signal.shape[1] - 1) * reg2.dt
        edge = (st <= reg2.t_first + reg2.dt) | (en >= last - reg2.dt)   # truncated by the search region
        dur = en - st
        keep = np.isfinite(st) & ~edge & (dur >= cuts[0]) & (dur <= cuts[1])
        starts.append(st[keep])
        ends.append(en[keep])
        if s1_band is None:
            s1_band = _band(np.concatenate(s1_parts))
        if s2_band is None:
            s2_band = _band(np.concatenate(starts), np.concatenate(ends))

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0)
    return _Collected(cat(s1_parts), cat(starts), cat(ends), n2, regions)


def estimate_set_timing(info: Any, *, el_gap_cm: float, max_frames_s1: int, max_frames_s2: int,
                        threshold_s1: float, threshold_s2: float, s2_duration_cuts: tuple[float, float],
                        n_pedestal: int, n_sigma_start: float = DEFAULT_N_SIGMA_START,
                        n_sigma_end: float = DEFAULT_N_SIGMA_END,
                        progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """S1 time, S2 start/end/duration with robust spreads, and the integration and X-ray windows of one set.

    Args:
        info: a ``runs.SetInfo`` (name, files, drift_time_us, reduced_el_field_Td).
        el_gap_cm: EL gap for the EL transit time, cm.
        max_frames_s1, max_frames_s2: frames sampled for the S1 and for the S2 estimate.
        threshold_s1: S1 threshold on the 50-ns block average, mV.
        threshold_s2: S2 threshold on the 10-ns smoothed signal, mV (a photoelectron peaks near 1.6 mV).
        s2_duration_cuts: accepted per-frame S2 duration (min, max), µs.
        n_pedestal: leading samples of each frame for the pedestal.
        n_sigma_start, n_sigma_end: window margins in robust σ.
        progress: called with 1 after each sampled file (for a progress bar).

    Returns:
        The ``timing.json`` content: ``status`` ("ok" or "failed") and ``message``, the set values in µs
        (``t_s1_us``, ``t_s1_spread_us``, ``t_s2_start_us``, ..., ``window_us``, ``xray_window_us``), the
        lab's key names (``t_s1``, ``t_s1_std``, ``t_s2_start``, ``t_s2_start_std``, ...), the layout from the
        headers, the parameters, the files that could not be read, and under ``samples`` the per-frame values
        (float64 arrays, up to 1000 each) for histograms.

    Raises:
        DataError: the set's files disagree on ``dt`` or points per frame (message names the file).
    """
    doc: dict[str, Any] = {"set_name": info.name, "status": "failed", "message": "",
                           "method": "block-averaged detect_s1/detect_s2 seeded by the drift-time model, "
                                     "robust_center_spread (median, 1.4826·MAD, 3σ clip)"}
    layouts, failed = read_layouts(info.files)
    doc["files_failed"] = failed
    ref = check_consistent(layouts, info.name)
    t_drift = float(info.drift_time_us)
    tau_el = el_transit_us(info.reduced_el_field_Td, el_gap_cm)
    n_ped = int(min(n_pedestal, ref.n_points))
    doc.update(layout={k: v for k, v in asdict(ref).items() if k != "path"},
               n_files=len(info.files), n_frames_total=int(sum(lay.n_frames for _, lay in layouts)),
               drift_time_model_us=t_drift, el_transit_model_us=tau_el,
               params={"max_frames_s1": max_frames_s1, "max_frames_s2": max_frames_s2, "threshold_s1_mV":
                       threshold_s1, "threshold_s2_mV": threshold_s2, "s2_duration_cuts_us": list(s2_duration_cuts),
                       "n_pedestal": n_ped, "n_sigma_start": n_sigma_start, "n_sigma_end": n_sigma_end,
                       "s1_block_us": S1_BLOCK_US, "s2_block_us": S2_BLOCK_US, "s2_ma_blocks": S2_MA_BLOCKS,
                       "s2_merge_gap_us": S2_MERGE_GAP_US, "search_margin_us": SEARCH_MARGIN_US})
    if not (t_drift > 0 and math.isfinite(tau_el)):
        doc["message"] = f"{info.name}: no drift/EL transit time from the model ({'; '.join(info.issues) or 'fields'})"
        return doc
    counts = [lay.n_frames for _, lay in layouts]
    plan_s1 = dict(sample_plan(counts, max_frames_s1))
    plan_s2 = dict(sample_plan(counts, max_frames_s2))
    doc["n_files_sampled"] = len(set(plan_s1) | set(plan_s2))
    got = _collect(layouts, plan_s1, plan_s2, n_ped=n_ped, t_drift=t_drift, tau_el=tau_el,
                   threshold_s1=threshold_s1, threshold_s2=threshold_s2, cuts=s2_duration_cuts, failed=failed,
                   progress=progress)
    c_s1, sp_s1, n_s1 = _robust(got.t_s1, S1_BLOCK_US / 2)
    doc.update(n_frames_s1=int(got.t_s1.size), n_s1=n_s1, t_s1_us=c_s1, t_s1_spread_us=sp_s1)
    t_ped_end = ref.t0_us + n_ped * ref.dt_us
    if n_s1 == 0:
        doc["message"] = (f"{info.name}: no S1 above {threshold_s1} mV in {got.t_s1.size} sampled frames "
                          f"(pre-trigger region {t_ped_end:.3g}..0 µs)")
        return doc
    if t_ped_end > c_s1 - _PEDESTAL_GUARD_US:
        doc["warning"] = (f"the pedestal range (first {n_ped} samples, up to {t_ped_end:.3g} µs) reaches within "
                          f"{_PEDESTAL_GUARD_US} µs of the S1 at {c_s1:.3g} µs")
    if got.regions:
        doc["s2_search_region_us"] = [min(r[0] for r in got.regions), max(r[1] for r in got.regions)]
    start, end = got.start, got.end
    res = 2 * S2_BLOCK_US
    c_st, sp_st, _ = _robust(start, res)
    c_en, sp_en, _ = _robust(end, res)
    c_du, sp_du, _ = _robust(end - start, res)
    doc.update(n_frames_s2=got.n_frames_s2, n_s2=int(start.size), t_s2_start_us=c_st, t_s2_start_spread_us=sp_st,
               t_s2_end_us=c_en, t_s2_end_spread_us=sp_en, s2_duration_us=c_du, s2_duration_spread_us=sp_du)
    if start.size < MIN_S2_FRAMES:
        region = doc.get("s2_search_region_us", [math.nan, math.nan])
        doc["message"] = (f"{info.name}: no S2 found: {start.size} of {got.n_frames_s2} sampled frames have an S2 "
                          f"above {threshold_s2} mV in {region[0]:.3g}..{region[1]:.3g} µs with a duration in "
                          f"{list(s2_duration_cuts)} µs (at least {MIN_S2_FRAMES} needed)")
        return doc
    w_start = max(c_st - n_sigma_start * sp_st, c_s1)
    w_end = min(c_en + n_sigma_end * sp_en, ref.t_end_us)
    doc.update(status="ok", window_us=[w_start, w_end], xray_window_us=[c_s1, w_start],
               s2_start_model_offset_us=c_st - (c_s1 + t_drift),
               # the lab's metadata names (domain.md 4.2-4.3), spreads under *_std
               t_s1=c_s1, t_s1_std=sp_s1, t_s2_start=c_st, t_s2_start_std=sp_st, t_s2_end=c_en,
               t_s2_end_std=sp_en, s2_duration=c_du, s2_duration_std=sp_du,
               samples={"t_s1_us": _kept(got.t_s1), "t_s2_start_us": _kept(start), "t_s2_end_us": _kept(end)})
    return doc


def _kept(v: np.ndarray) -> np.ndarray:
    return v[np.isfinite(v)][:_SAMPLES_KEPT].astype(np.float64)


def store_timing_samples(folder: Path, samples: Mapping[str, np.ndarray] | None, *, raw_root: Any = None) -> None:
    """Write :data:`TIMING_SAMPLES_FILE` into ``folder`` (atomic); remove it when there are no samples, so a
    stale file never outlives its timing.json."""
    path = Path(folder) / TIMING_SAMPLES_FILE
    if not samples:
        path.unlink(missing_ok=True)
        return
    rows = [np.asarray(samples[k], float) for k in _SAMPLE_KEYS]
    table = np.full((3, max(r.size for r in rows)), np.nan)
    for i, r in enumerate(rows):
        table[i, :r.size] = r
    write_npy_atomic(path, table, raw_root=raw_root)


def load_timing_samples(folder: Path) -> dict[str, np.ndarray]:
    """``{"t_s1_us", "t_s2_start_us", "t_s2_end_us"}`` from :data:`TIMING_SAMPLES_FILE` (empty when absent)."""
    path = Path(folder) / TIMING_SAMPLES_FILE
    if not path.is_file():
        return {k: np.empty(0) for k in _SAMPLE_KEYS}
    table, _ = read_npy(path)
    return {k: row[np.isfinite(row)] for k, row in zip(_SAMPLE_KEYS, table)}
