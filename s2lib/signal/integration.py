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
   With ``SetPlan.xray_span_us`` (the pipeline passes the expected S2 duration) the whole X-ray S2 is found by
   its photon density and integrated against a local baseline, and candidates with fewer photon hits than
   stray photons would give at ``XrayParams.false_rate`` (rate from the sideband, step 6) are rejected
   (:mod:`s2lib.signal.xray_pass`).
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

import math
import sys
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from s2lib.errors import WfmError
from .executors import THREAD_ENV, shutdown_pools, worker_pool  # noqa: F401 - re-exported (seed API)
from .timing import PEDESTAL_ITERATIONS
from .xray import XRayReason
from .xray_pass import (FLAG_BITS, FLAG_XRAY_PILEUP, XRAY_BLOCK_US, XRAY_POST_US, XRAY_PRE_US,  # noqa: F401
                        XrayParams, xray_step)
from .waveform import integrate_window, window_area
from .frames import pedestal_mV, raw_gain_baseline, sample_index, window_slice
from s2lib.io.wfm import open_wfm, read_header

__all__ = ["FLAG_XRAY_PILEUP", "FLAG_BITS", "XRAY_BLOCK_US", "XRAY_PRE_US", "XRAY_POST_US", "THREAD_ENV", "XrayParams", "SetPlan", "FileResult",
           "SetResult", "process_file", "sideband_slice", "run_sets", "worker_pool", "shutdown_pools"]

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
    xray_span_us: float | None = None    # expected duration of a whole S2 (None: the lab's cluster rule)


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
    sb_sum = None
    if plan.do_xray:
        reason, xarea, pile, sb_sum = xray_step(plan.xray, raw, sb, n_ped, dt, t0, gain, base, plan.t_s1_us, ws,
                                                plan.pileup_end_us if plan.do_recoil else None, plan.do_recoil,
                                                plan.xray_span_us)
        flags |= pile
        big_s2 = (areas > plan.xray.max_sum_s2 * dt) & (reason != XRayReason.EXCESSIVE_S1)
        reason[big_s2] = XRayReason.EXCESSIVE_S2
    sideband = (window_area(sb_sum, sb.stop - sb.start, dt, gain=gain, baseline=base) if sb_sum is not None
                else integrate_window(raw[:, sb], dt, gain=gain, baseline=base)) * ((win.stop - win.start) /
                                                                                   max(sb.stop - sb.start, 1))
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


def run_sets(plans: Sequence[SetPlan], *, jobs: int = 1, strict: bool = False, max_frames: int | None = None,
             progress: bool = True, desc: str = "Integrating", executor: Any = None,
             caches: Sequence[Any] | None = None) -> list[SetResult]:
    """Process every file of every set; returns one :class:`SetResult` per plan, in the plans' order.

    Args:
        plans: one per set.
        jobs: worker processes (1: in this process). Sets are cut into file chunks that the workers share.
        strict: raise the first :class:`WfmError` instead of reporting the file.
        max_frames: per set, only the first ``max_frames`` frames (in file order).
        progress: a tqdm bar over files (stderr).
        desc: the bar's label.
        executor: an :mod:`s2lib.signal.executors` executor (None: the local pool with ``jobs`` workers); a
            ``DaskExecutor`` runs one task per file on its cluster.
        caches: per plan a :class:`s2lib.analysis.filecache.SetCache` (or None): files whose result is cached are not
            read, fresh results are stored.
    """
    from tqdm import tqdm   # plain text bar on stderr: tqdm.auto warns in kernels without ipywidgets

    from .executors import LocalExecutor, chunks_for

    work = [(si, *_frame_limits(p, max_frames)) for si, p in enumerate(plans)]
    collected: list[list[FileResult]] = [[] for _ in plans]
    caches = list(caches) if caches is not None else [None] * len(plans)
    if any(c is not None for c in caches):
        todo = []
        for si, files, limits in work:
            cache, left = caches[si], []
            for i in files:
                hit = cache.get(plans[si], i, (limits or {}).get(i)) if cache is not None else None
                (collected[si].append(hit) if hit is not None else left.append(i))
            todo.append((si, left, limits))
        work = todo
    total = sum(len(files) for _, files, _ in work)
    executor = executor if executor is not None else LocalExecutor(max(1, int(jobs)))

    def done(si: int, res: list[FileResult]) -> None:
        collected[si].extend(res)
        if caches[si] is not None:
            for r in res:
                caches[si].put(plans[si], r)
        bar.update(len(res))

    with tqdm(total=total, desc=desc, unit="file", disable=not progress, file=sys.stderr,
              dynamic_ncols=True) as bar:
        if executor.name == "dask" and total:
            tasks, shared = chunks_for(executor, work, total), executor.share(plans)
            for si, res in executor.map_unordered(_process_chunk, [(shared[si], si, files, strict, limits)
                                                                    for si, files, limits in tasks]):
                done(si, res)
        elif executor.workers == 1 or total <= 1:
            for si, files, limits in work:
                for i in files:
                    done(si, [process_file(plans[si], i, strict=strict, max_frames=(limits or {}).get(i))])
        else:
            tasks = chunks_for(executor, work, total)
            pool = worker_pool(executor.workers)
            pending = {pool.submit(_process_chunk, plans[si], si, files, strict, limits)
                       for si, files, limits in tasks}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done(*fut.result())
            except BrokenProcessPool:
                shutdown_pools()
                raise
            finally:
                for fut in pending:
                    fut.cancel()
    for si, cache in enumerate(caches):
        if cache is not None:
            cache.finish(plans[si].files)
    return [_assemble(p, collected[si]) for si, p in enumerate(plans)]
