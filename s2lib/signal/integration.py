"""The one-pass engine: per file, recoil S2 areas and X-ray classification from one read of the memory map.

For every file of a set (:func:`process_file`, in :mod:`s2lib.signal.file_pass`; several files at once with
:func:`process_files`, which classifies their X-ray blocks together):

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

import os
import sys
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from s2lib.errors import WfmError
from .executors import THREAD_ENV, shutdown_pools, worker_pool  # noqa: F401 - re-exported (seed API)
from .file_pass import (BATCH_FRAMES, SERIAL_BATCH_FILES, FileResult, SetPlan, _empty,  # noqa: F401 - re-exported
                        process_file, process_files, sideband_slice)
from .xray import XRayReason
from .xray_pass import FLAG_BITS, FLAG_XRAY_PILEUP, XRAY_BLOCK_US, XRAY_POST_US, XRAY_PRE_US, XrayParams  # noqa: F401
from s2lib.io.wfm import read_header

__all__ = ["FLAG_XRAY_PILEUP", "FLAG_BITS", "XRAY_BLOCK_US", "XRAY_PRE_US", "XRAY_POST_US", "THREAD_ENV", "XrayParams", "SetPlan", "FileResult",
           "SetResult", "process_file", "process_files", "BATCH_FRAMES", "sideband_slice", "run_sets", "worker_pool", "shutdown_pools"]

def _process_chunk(plan: SetPlan, set_index: int, files: Sequence[int], strict: bool,
                   limits: dict[int, int] | None) -> tuple[int, list[FileResult]]:
    lim = limits or {}
    return set_index, process_files(plan, list(files), strict=strict, limits=lim)


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


def _sizes(plans: Sequence[SetPlan], work: Sequence[tuple[int, list[int], Any]]) -> dict[int, dict[int, int]]:
    """File sizes in bytes (0 for a file that cannot be stat-ed: the task reports it) of the files to process."""
    out: dict[int, dict[int, int]] = {}
    for si, files, _ in work:
        known = out.setdefault(si, {})
        for i in files:
            try:
                known[i] = os.stat(plans[si].files[i]).st_size
            except OSError:
                known[i] = 0
    return out


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
            tasks, shared = chunks_for(executor, work, _sizes(plans, work)), executor.share(plans)
            for si, res in executor.map_unordered(_process_chunk, [(shared[si], si, files, strict, limits)
                                                                    for si, files, limits in tasks]):
                done(si, res)
        elif executor.workers == 1 or total <= 1:
            for si, files, limits in work:
                for j in range(0, len(files), SERIAL_BATCH_FILES):
                    done(si, process_files(plans[si], files[j:j + SERIAL_BATCH_FILES], strict=strict, limits=limits))
        else:
            tasks = chunks_for(executor, work, _sizes(plans, work))
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
