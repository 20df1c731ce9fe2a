"""The one-pass engine: per file, recoil S2 areas and X-ray classification from one read of the memory map.

For every file of a set (:func:`process_file`):

1. ``open_wfm``; the sampling interval, first-sample time, scale and offset come from *this file's* header.
2. Pedestal per frame from the first ``n_pedestal`` samples (:func:`~s2lib.signal.frames.pedestal_mV`, clipped mean),
   turned into the raw-domain map ``s = gain·(raw − baseline)`` (:func:`~s2lib.signal.frames.raw_gain_baseline`).
3. Recoil area: :func:`~s2lib.signal.waveform.integrate_window` on the raw integers of the window from ``prepare_run``
   (exact integer sums, no clipping, no smoothing: unbiased for zero-mean noise), mV·µs.
4. X-rays: the region ``[t_S1 − 0.5 µs, window start + 0.2 µs]`` is averaged in blocks of :data:`XRAY_BLOCK_US`
   (20 ns: one integer reduction over the bytes, the same smoothing at every sampling rate) and
   :func:`~s2lib.signal.xray.classify_xrays` classifies every frame with the configuration's threshold, separations
   and minimum area, ``t_S1`` and ``t_S2,start`` = the integration window start. Block sums keep areas exact.
   The ``excessive_s2`` veto also applies to the (unclipped) area of the recoil window, so a huge S2 (alpha in
   the gas) is vetoed as in the lab's code, which summed everything after the S2 start.

5. Pile-up flags (:data:`FLAG_XRAY_PILEUP`, a uint8 bit field per frame, stored as ``s2_flags.npy``): the
   classification is repeated on the block signal (extended to ``SetPlan.pileup_end_us``) with the S2 guard
   band removed, so that a cluster reaching the window is a candidate too; a frame is flagged when a cluster
   of area ≥ ``min_area`` *starts before* ``pileup_end_us`` (the pipeline passes the expected recoil S2 start
   − 2σ of its spread, inside the window, which opens 4σ early) and ends within ``min_s2_sep`` of the window
   start (or inside it): an X-ray S2
   (≈ 4 µs long) overlapping the recoil window. Flagged frames keep their area (every frame is stored exactly
   once); the fits use the unflagged ones. X-rays that *start inside* the window are not separable per frame
   (their residual effect on demo is quantified in ``tests/test_physics_demo.py``).

6. Sideband (:func:`sideband_slice`): every frame is also integrated over a window of the recoil window's
   length right after the pedestal samples, before S1: the measured empty-window area that the recoil
   estimator (:mod:`s2lib.stats.estimators`) uses for frames without a recoil S2.

Only these sample ranges are touched: the pedestal range, the sideband, the X-ray region and the recoil window. Nothing is
converted to float but per-frame numbers and the block averages.

Sets run in parallel with ``jobs > 1`` (:func:`run_sets`): every set is cut into chunks of files, so two jobs
share the work evenly even when sets differ in size; the workers get ``OMP_NUM_THREADS=1`` (and the other BLAS
thread variables) and return only per-frame numbers, so memory stays bounded by a few files per process.
Bad files never cost the run (unless ``strict``, which raises the first :class:`~s2lib.errors.WfmError`):
a file that cannot be opened, is not a regular file, is corrupt, or whose numbers cannot be computed is reported
in ``files_failed`` (file, index, field, reason) and skipped; a truncated FastFrame file is salvaged, its
complete frames processed and the file reported in ``files_partial`` (frames read / promised).
"""
from __future__ import annotations

import atexit
import math
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Sequence

import numpy as np

from s2lib.errors import WfmError
from .timing import PEDESTAL_ITERATIONS, block_signal
from .xray import XRayReason, classify_xrays
from .waveform import integrate_window
from .frames import pedestal_mV, raw_gain_baseline, sample_index, window_slice
from s2lib.io.wfm import open_wfm, read_header

__all__ = ["FLAG_XRAY_PILEUP", "FLAG_BITS", "XRAY_BLOCK_US", "XRAY_PRE_US", "XRAY_POST_US", "THREAD_ENV", "XrayParams", "SetPlan", "FileResult",
           "SetResult", "process_file", "sideband_slice", "run_sets", "worker_pool", "shutdown_pools"]

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
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS")
"""Environment variables set to 1 in the worker processes (one core each)."""


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


@dataclass(frozen=True)
class SetPlan:
    """What a worker needs to process the files of one set (picklable; times µs)."""

    name: str
    files: tuple[str, ...]
    t_s1_us: float
    window_us: tuple[float, float]
    n_pedestal: int
    do_recoil: bool = True
    do_xray: bool = True
    xray: XrayParams = field(default_factory=XrayParams)
    pileup_end_us: float | None = None   # pile-up clusters must start before this (None: the window start)


class FileResult(NamedTuple):
    """Per-frame numbers of one file (arrays of length ``n_frames``; empty when ``error``)."""

    file_index: int
    n_frames: int
    areas: np.ndarray          # recoil S2 area, mV·µs (NaN when not computed)
    xray_reason: np.ndarray    # int8 XRayReason codes (-1 when not classified)
    xray_area: np.ndarray      # X-ray candidate area, mV·µs (NaN without candidate)
    dt_us: float
    error: str | None = None
    flags: np.ndarray | None = None    # uint8 bit field (FLAG_*) per frame; 0 = usable
    sideband: np.ndarray | None = None  # empty-window area over the sideband (sideband_window), mV·µs
    n_promised: int = 0                # frames the header promises (> n_frames: a salvaged truncated file)
    field: str | None = None           # with ``error``: the part of the file at fault (WfmError.field)


def _empty(file_index: int, error: str, field: str | None = None) -> FileResult:
    e = np.empty(0)
    return FileResult(file_index, 0, e, np.empty(0, np.int8), e, math.nan, error, np.empty(0, np.uint8), e, 0,
                      field)


def process_file(plan: SetPlan, file_index: int, *, strict: bool = False,
                 max_frames: int | None = None) -> FileResult:
    """Recoil areas and X-ray classification of every frame of one file (see the module docstring).

    Args:
        plan: the set's windows and parameters.
        file_index: position of the file in ``plan.files`` (first half of the event ids).
        strict: raise :class:`WfmError` instead of reporting a bad file (a truncated file too).
        max_frames: process only the first ``max_frames`` frames.

    Returns:
        A :class:`FileResult`; for an unreadable file ``n_frames == 0`` and ``error`` holds the reason; for a
        salvaged truncated file ``n_promised > n_frames``.
    """
    path = plan.files[file_index]
    try:
        with open_wfm(path, allow_partial=not strict) as f:
            h = f.header
            raw = f.raw if max_frames is None else f.raw[:max_frames]
            try:
                res = _process(plan, file_index, raw, h.dt_us, h.t0_us, h.scale_V * 1e3, h.offset_V * 1e3)
            except OSError as err:       # the mapped file could not be paged in (I/O error)
                raise WfmError(path, "curve buffer", f"cannot be read: {err.strerror or err}") from err
            except (ValueError, ArithmeticError, IndexError, MemoryError) as err:
                raise WfmError(path, "samples", f"cannot be analysed ({type(err).__name__}: {err})") from err
            return res._replace(n_promised=h.n_frames_promised) if h.partial else res
    except WfmError as err:
        if strict:
            raise
        return _empty(file_index, str(err), err.field)


def _process(plan: SetPlan, file_index: int, raw: np.ndarray, dt: float, t0: float, scale: float,
             offset: float) -> FileResult:
    k, n = raw.shape
    n_ped = min(plan.n_pedestal, n)
    ped = pedestal_mV(raw[:, :n_ped], scale, offset, n_iter=PEDESTAL_ITERATIONS)
    gain, base = raw_gain_baseline(scale, offset, ped)
    ws, we = plan.window_us
    reason = np.full(k, -1, dtype=np.int8)
    xarea = np.full(k, np.nan)
    flags = np.zeros(k, dtype=np.uint8)
    win = window_slice(ws, we, t0, dt, n)
    if win.stop - win.start < (we - ws) / dt - 1.0:
        return _empty(file_index, f"{Path(plan.files[file_index]).name}: window: [{ws:.4g}, {we:.4g}] µs "
                                  f"is not inside the frame [{t0:.4g}, {t0 + n * dt:.4g}] µs", "window")
    areas = integrate_window(raw[:, win], dt, gain=gain, baseline=base)
    sb = sideband_slice(n_ped, win.stop - win.start, plan.t_s1_us, t0, dt, n)
    sideband = integrate_window(raw[:, sb], dt, gain=gain, baseline=base) * ((win.stop - win.start) /
                                                                              max(sb.stop - sb.start, 1))
    if plan.do_xray:
        xp = plan.xray
        block = max(1, int(round(XRAY_BLOCK_US / dt)))
        a = int(sample_index(plan.t_s1_us - XRAY_PRE_US, t0, dt, n))
        b = int(sample_index(ws + XRAY_POST_US, t0, dt, n))
        t_pu = ws if plan.pileup_end_us is None else max(ws, float(plan.pileup_end_us))
        b_pu = max(b, int(sample_index(t_pu + XRAY_POST_US, t0, dt, n))) if plan.do_recoil else b
        sig_all = block_signal(raw[:, a:b_pu], block, gain, base)
        sig = sig_all[:, :max(1, (b - a) // block)]
        bdt = block * dt
        res = classify_xrays(sig, t0 + a * dt, bdt, plan.t_s1_us, ws, ma_window=1, threshold_mV=xp.threshold_mV,
                             min_s1_sep_us=xp.min_s1_sep_us, min_s2_sep_us=xp.min_s2_sep_us,
                             merge_gap_us=xp.merge_gap_us, pad_us=xp.pad_us, min_area=xp.min_area,
                             max_area_s1=xp.max_sum_s1 * dt, max_area_s2=xp.max_sum_s2 * dt)
        reason, xarea = res.reason, res.area
        if plan.do_recoil:
            flags |= _pileup_flags(sig_all, t0 + a * dt, bdt, plan.t_s1_us, ws, t_pu, xp)
        big_s2 = (areas > xp.max_sum_s2 * dt) & (reason != XRayReason.EXCESSIVE_S1)
        reason[big_s2] = XRayReason.EXCESSIVE_S2
    if not plan.do_recoil:
        areas = np.full(k, np.nan)
    return FileResult(file_index, k, areas, reason, xarea, dt, None, flags, sideband if plan.do_recoil else
                      np.full(k, np.nan))


def sideband_slice(n_ped: int, n_win: int, t_s1_us: float, t0: float, dt: float, n: int) -> slice:
    """Samples of the empty-window sideband: ``n_win`` samples (the recoil window's length) right after the
    ``n_ped`` pedestal samples, so that it shares no sample with the pedestal (its area then has the
    distribution of an empty recoil window: the pedestal error × length enters both alike), ending before
    ``t_S1 − XRAY_PRE_US``. When less room is left it is shorter and its area is scaled by
    ``n_win / length`` (``SetResult.sideband_scale``; exact for the mean, approximate for the width)."""
    end = int(sample_index(t_s1_us - XRAY_PRE_US, t0, dt, n))
    stop = max(min(n_ped + n_win, end), n_ped + 1)
    return slice(n_ped, min(stop, n))


def _pileup_flags(sig: np.ndarray, t_first: float, bdt: float, t_s1: float, ws: float, t_pu: float,
                  xp: XrayParams) -> np.ndarray:
    """:data:`FLAG_XRAY_PILEUP` per frame (module docstring, step 5): the largest cluster overlapping
    ``[t_S1 + min_s1_sep, t_pu]`` with area ≥ ``min_area`` that starts before ``t_pu`` (the expected S2
    start − 2σ, or the window start) and ends at or after ``window start − min_s2_sep``."""
    res = classify_xrays(sig, t_first, bdt, t_s1, t_pu + XRAY_POST_US, ma_window=1, threshold_mV=xp.threshold_mV,
                         min_s1_sep_us=xp.min_s1_sep_us, min_s2_sep_us=XRAY_POST_US,
                         merge_gap_us=xp.merge_gap_us, pad_us=xp.pad_us, min_area=xp.min_area)
    with np.errstate(invalid="ignore"):
        hit = (res.area >= max(xp.min_area, 0.0)) & (res.t_start < t_pu) & (res.t_end >= ws - xp.min_s2_sep_us)
    return np.where(hit, FLAG_XRAY_PILEUP, 0).astype(np.uint8)


def _process_chunk(plan: SetPlan, set_index: int, files: Sequence[int], strict: bool,
                   limits: dict[int, int] | None) -> tuple[int, list[FileResult]]:
    lim = limits or {}
    return set_index, [process_file(plan, i, strict=strict, max_frames=lim.get(i)) for i in files]


@dataclass
class SetResult:
    """Per-frame results of one set, in file order then frame order.

    Attributes:
        name: set name.
        areas: recoil S2 area per frame (mV·µs, float64).
        event_ids: int64 (n, 2): file index, frame index.
        xray_reason: int8 :class:`~s2lib.signal.xray.XRayReason` code per frame (-1: not classified).
        xray_area: X-ray candidate area per frame (mV·µs, NaN without candidate).
        flags: uint8 bit field per frame (:data:`FLAG_BITS`; 0 = usable for the recoil fit).
        sideband: empty-window area per frame over :func:`sideband_slice` (mV·µs, float64).
        files_failed: ``[{"file", "index", "field", "reason"}, ...]`` files reported and skipped.
        files_partial: ``[{"file", "index", "frames_read", "frames_promised"}, ...]`` truncated files whose
            complete frames were processed.
        n_files: files in the set. dt_us: the sampling intervals seen (µs, from the headers).
    """

    name: str
    areas: np.ndarray
    event_ids: np.ndarray
    xray_reason: np.ndarray
    xray_area: np.ndarray
    files_failed: list[dict[str, Any]]
    n_files: int
    dt_us: list[float]
    flags: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint8))
    sideband: np.ndarray = field(default_factory=lambda: np.zeros(0))
    files_partial: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        """Frames processed."""
        return int(self.areas.shape[0])

    @property
    def xray_accepted(self) -> np.ndarray:
        """Boolean mask of the frames with an accepted X-ray."""
        return self.xray_reason == XRayReason.ACCEPTED


def _assemble(plan: SetPlan, results: Sequence[FileResult]) -> SetResult:
    results = sorted(results, key=lambda r: r.file_index)
    ok = [r for r in results if r.error is None]
    failed = [{"file": Path(plan.files[r.file_index]).name, "index": r.file_index, "field": r.field,
               "reason": r.error} for r in results if r.error is not None]
    partial = [{"file": Path(plan.files[r.file_index]).name, "index": r.file_index, "frames_read": r.n_frames,
                "frames_promised": r.n_promised} for r in ok if r.n_promised > r.n_frames]
    ids = [np.column_stack([np.full(r.n_frames, r.file_index, np.int64), np.arange(r.n_frames, dtype=np.int64)])
           for r in ok]

    def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)
    return SetResult(plan.name, cat([r.areas for r in ok], np.float64),
                     cat(ids, np.int64).reshape(-1, 2), cat([r.xray_reason for r in ok], np.int8),
                     cat([r.xray_area for r in ok], np.float64), failed, len(plan.files),
                     sorted({float(r.dt_us) for r in ok}),
                     cat([r.flags if r.flags is not None else np.zeros(r.n_frames, np.uint8) for r in ok], np.uint8),
                     cat([r.sideband if r.sideband is not None else np.full(r.n_frames, np.nan) for r in ok],
                         np.float64),
                     partial)


def _frame_limits(plan: SetPlan, max_frames: int | None) -> tuple[list[int], dict[int, int] | None]:
    """Files to process and per-file frame limits so that at most ``max_frames`` frames are taken (in order)."""
    indices = list(range(len(plan.files)))
    if max_frames is None:
        return indices, None
    chosen, limits, left = [], {}, int(max_frames)
    for i in indices:
        if left <= 0:
            break
        try:
            n = read_header(plan.files[i], allow_partial=True).n_frames
        except WfmError:
            chosen.append(i)            # processed (and reported) by the worker
            continue
        chosen.append(i)
        if n > left:
            limits[i] = left
        left -= min(n, left)
    return chosen, limits


@contextmanager
def _single_thread_env() -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables to 1 while worker processes are started (they inherit them)."""
    old = {k: os.environ.get(k) for k in THREAD_ENV}
    os.environ.update({k: "1" for k in THREAD_ENV})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _worker_init() -> None:
    os.environ.update({k: "1" for k in THREAD_ENV})


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _start_method() -> str:
    wanted = os.environ.get("S2BOOK_MP_START")
    if wanted:
        return wanted
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def worker_pool(jobs: int) -> ProcessPoolExecutor:
    """The process pool with ``jobs`` workers, created on first use and kept for later stages (starting
    workers costs ~0.3 s each, as much as a whole stage on a small run), with the BLAS/OpenMP thread variables
    at 1; :func:`shutdown_pools` (also called at exit) stops them.

    Workers are forked where the platform can (Linux): a physicist's plain script calling a stage with
    ``jobs=2`` then works without an ``if __name__ == "__main__":`` guard, which "spawn" and "forkserver" would
    need (they re-import the main script). The workers only run numpy kernels on memory maps, so the usual
    fork-with-threads hazard does not apply. ``S2BOOK_MP_START=spawn`` selects spawning.
    """
    pool = _POOLS.get(jobs)
    if pool is None or getattr(pool, "_broken", False):
        with _single_thread_env():              # the workers start now and inherit the variables
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(_start_method()),
                                       initializer=_worker_init)
            for fut in [pool.submit(time.sleep, 0.05) for _ in range(jobs)]:     # one task per worker
                fut.result()
        _POOLS[jobs] = pool
    return pool


def shutdown_pools() -> None:
    """Stop the worker processes of :func:`worker_pool` (their memory then counts in RUSAGE_CHILDREN)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pools)


def run_sets(plans: Sequence[SetPlan], *, jobs: int = 1, strict: bool = False, max_frames: int | None = None,
             progress: bool = True, desc: str = "Integrating") -> list[SetResult]:
    """Process every file of every set; returns one :class:`SetResult` per plan, in the plans' order.

    Args:
        plans: one per set.
        jobs: worker processes (1: in this process). Sets are cut into file chunks that the workers share.
        strict: raise the first :class:`WfmError` instead of reporting the file.
        max_frames: per set, only the first ``max_frames`` frames (in file order).
        progress: a tqdm bar over files (stderr).
        desc: the bar's label.
    """
    from tqdm import tqdm   # plain text bar on stderr: tqdm.auto warns in kernels without ipywidgets

    work = [(si, *_frame_limits(p, max_frames)) for si, p in enumerate(plans)]
    total = sum(len(files) for _, files, _ in work)
    collected: list[list[FileResult]] = [[] for _ in plans]
    jobs = max(1, int(jobs))
    with tqdm(total=total, desc=desc, unit="file", disable=not progress, file=sys.stderr,
              dynamic_ncols=True) as bar:
        if jobs == 1 or total <= 1:
            for si, files, limits in work:
                for i in files:
                    collected[si].append(process_file(plans[si], i, strict=strict,
                                                      max_frames=(limits or {}).get(i)))
                    bar.update(1)
        else:
            size = max(1, min(16, math.ceil(total / (4 * jobs))))
            tasks = [(si, files[j:j + size], limits) for si, files, limits in work
                     for j in range(0, len(files), size)]
            tasks.sort(key=lambda t: -len(t[1]))
            pool = worker_pool(jobs)
            pending = {pool.submit(_process_chunk, plans[si], si, files, strict, limits)
                       for si, files, limits in tasks}
            try:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        si, res = fut.result()
                        collected[si].extend(res)
                        bar.update(len(res))
            except BrokenProcessPool:
                shutdown_pools()
                raise
            finally:
                for fut in pending:
                    fut.cancel()
    return [_assemble(p, collected[si]) for si, p in enumerate(plans)]
