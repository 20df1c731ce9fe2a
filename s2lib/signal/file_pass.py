"""The per-file engine of the pass (:mod:`s2lib.signal.integration`, module docstring steps 1-6): each file read once
through its memory map (pedestal, recoil window, sideband, X-ray block signal), then the X-ray classification of
the blocks of several files at once, and each file's :class:`FileResult`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from s2lib.errors import WfmError
from s2lib.io.wfm import open_wfm
from .frames import pedestal_mV, raw_gain_baseline, sample_index, window_slice
from .timing import PEDESTAL_ITERATIONS
from .waveform import integrate_window, window_area
from .xray import XRayReason
from .xray_pass import XRAY_PRE_US, XrayParams, classify_blocks, pileup_start_limit, xray_blocks

__all__ = ["SetPlan", "FileResult", "process_file", "process_files", "BATCH_FRAMES", "SERIAL_BATCH_FILES",
           "sideband_slice"]


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
    limits = {file_index: max_frames} if max_frames is not None else None
    return process_files(plan, [file_index], strict=strict, limits=limits)[0]


BATCH_FRAMES = 2048
"""Frames whose X-ray blocks :func:`process_files` keeps before classifying them together (~5 MB of block
signal at 5 GS/s)."""


SERIAL_BATCH_FILES = 16
"""Files handed to :func:`process_files` at a time by :func:`run_sets` in this process (as the local pool's
chunks): the progress bar moves by up to this many files."""


def process_files(plan: SetPlan, indices: Sequence[int], *, strict: bool = False,
                  limits: dict[int, int] | None = None) -> list[FileResult]:
    """:func:`process_file` of each of ``indices`` (results in that order, ``limits``: file → frame limit).

    Each file is read once (pedestal, recoil window, sideband, X-ray block signal); the X-ray classification
    then runs on the blocks of up to :data:`BATCH_FRAMES` frames of several files at once
    (:func:`~s2lib.signal.xray_pass.classify_blocks`: the same numbers as file by file, at a fraction of the
    per-call cost). A batch the classification cannot handle is classified file by file, so that the file at
    fault is reported (or raised with ``strict``) alone."""
    done: dict[int, FileResult] = {}
    pending: list[_Read] = []

    def flush() -> None:
        for r in _finish_all(plan, pending, strict):
            done[r.file_index] = r
        pending.clear()

    for i in indices:
        got = _read_file(plan, i, strict, (limits or {}).get(i))
        if isinstance(got, FileResult):
            done[i] = got
            continue
        pending.append(got)
        if sum(r.n_frames for r in pending) >= BATCH_FRAMES:
            flush()
    flush()
    return [done[i] for i in indices]


class _Read(NamedTuple):
    """A file's numbers from its samples, before the (batched) X-ray classification."""

    file_index: int
    n_frames: int
    areas: np.ndarray                    # recoil window, mV·µs (also without do_recoil: the S2 veto)
    sideband: np.ndarray                 # empty-window area over the sideband, scaled to the window, mV·µs
    dt: float
    xray: Any                            # XrayBlocks or None
    n_promised: int


def _read_file(plan: SetPlan, file_index: int, strict: bool, max_frames: int | None) -> _Read | FileResult:
    path = plan.files[file_index]
    try:
        with open_wfm(path, allow_partial=not strict) as f:
            h = f.header
            raw = f.raw if max_frames is None else f.raw[:max_frames]
            try:
                got = _read(plan, file_index, raw, h.dt_us, h.t0_us, h.scale_V * 1e3, h.offset_V * 1e3)
            except OSError as err:       # the mapped file could not be paged in (I/O error)
                raise WfmError(path, "curve buffer", f"cannot be read: {err.strerror or err}") from err
            except (ValueError, ArithmeticError, IndexError, MemoryError) as err:
                raise WfmError(path, "samples", f"cannot be analysed ({type(err).__name__}: {err})") from err
            return got._replace(n_promised=h.n_frames_promised) if h.partial and isinstance(got, _Read) else got
    except WfmError as err:
        if strict:
            raise
        return _empty(file_index, str(err), err.field)


def _process(plan: SetPlan, file_index: int, raw: np.ndarray, dt: float, t0: float, scale: float,
             offset: float) -> FileResult:
    """One file's :class:`FileResult` from its raw frames (no batching; errors raise)."""
    got = _read(plan, file_index, raw, dt, t0, scale, offset)
    return got if isinstance(got, FileResult) else _finish(plan, [got])[0]


def _read(plan: SetPlan, file_index: int, raw: np.ndarray, dt: float, t0: float, scale: float,
          offset: float) -> _Read | FileResult:
    """Steps 1-4 of the module docstring on one file's raw frames (sampling from its header): pedestal, recoil
    window, sideband and the X-ray blocks; a window outside the frame gives the file's error result."""
    k, n = raw.shape
    n_ped = min(plan.n_pedestal, n)
    ped = pedestal_mV(raw[:, :n_ped], scale, offset, n_iter=PEDESTAL_ITERATIONS)
    gain, base = raw_gain_baseline(scale, offset, ped)
    ws, we = plan.window_us
    win = window_slice(ws, we, t0, dt, n)
    if win.stop - win.start < (we - ws) / dt - 1.0:
        return _empty(file_index, f"{Path(plan.files[file_index]).name}: window: [{ws:.4g}, {we:.4g}] µs "
                                  f"is not inside the frame [{t0:.4g}, {t0 + n * dt:.4g}] µs", "window")
    areas = integrate_window(raw[:, win], dt, gain=gain, baseline=base)
    sb = sideband_slice(n_ped, win.stop - win.start, plan.t_s1_us, t0, dt, n)
    xb = None
    if plan.do_xray:
        xb = xray_blocks(plan.xray, raw, sb, n_ped, dt, t0, gain, base, plan.t_s1_us, ws, _t_pu(plan),
                         plan.do_recoil, plan.xray_span_us)
    sideband = np.full(k, np.nan)
    if plan.do_recoil:                   # the X-ray step's sideband sums when it made them, else a read of it
        n_sb = sb.stop - sb.start
        sideband = (window_area(xb.sideband_sum, n_sb, dt, gain=gain, baseline=base)
                    if xb is not None and xb.sideband_sum is not None
                    else integrate_window(raw[:, sb], dt, gain=gain, baseline=base)) * ((win.stop - win.start) /
                                                                                         max(n_sb, 1))
    return _Read(file_index, k, areas, sideband, dt, xb, 0)


def _t_pu(plan: SetPlan) -> float:
    return pileup_start_limit(plan.window_us[0], plan.pileup_end_us if plan.do_recoil else None)


def _finish_all(plan: SetPlan, reads: Sequence[_Read], strict: bool) -> list[FileResult]:
    """:func:`_finish` on the batch; when it raises, file by file (the file at fault reported or raised)."""
    if not reads:
        return []
    try:
        return _finish(plan, reads)
    except (ValueError, ArithmeticError, IndexError, MemoryError):
        pass
    out = []
    for r in reads:
        try:
            out.extend(_finish(plan, [r]))
        except (ValueError, ArithmeticError, IndexError, MemoryError) as err:
            e = WfmError(plan.files[r.file_index], "samples", f"cannot be analysed ({type(err).__name__}: {err})")
            if strict:
                raise e from err
            out.append(_empty(r.file_index, str(e), e.field))
    return out


def _finish(plan: SetPlan, reads: Sequence[_Read]) -> list[FileResult]:
    """The X-ray step on the files' blocks together, then each file's :class:`FileResult`."""
    xrays: list[Any] = [None] * len(reads)
    if plan.do_xray:
        xrays = classify_blocks(plan.xray, [r.xray for r in reads], plan.t_s1_us, plan.window_us[0], _t_pu(plan),
                                plan.do_recoil, plan.xray_span_us)
    out = []
    for r, x in zip(reads, xrays):
        k = r.n_frames
        reason = np.full(k, -1, dtype=np.int8)
        xarea = np.full(k, np.nan)
        flags = np.zeros(k, dtype=np.uint8)
        if x is not None:
            reason, xarea, pile = x
            flags |= pile
            big_s2 = (r.areas > plan.xray.max_sum_s2 * r.dt) & (reason != XRayReason.EXCESSIVE_S1)
            reason[big_s2] = XRayReason.EXCESSIVE_S2
        areas = r.areas if plan.do_recoil else np.full(k, np.nan)
        out.append(FileResult(r.file_index, k, areas, reason, xarea, r.dt, None, flags, r.sideband, r.n_promised))
    return out


def sideband_slice(n_ped: int, n_win: int, t_s1_us: float, t0: float, dt: float, n: int) -> slice:
    """Samples of the empty-window sideband: ``n_win`` samples (the recoil window's length) right after the
    ``n_ped`` pedestal samples, so that it shares no sample with the pedestal (its area then has the
    distribution of an empty recoil window: the pedestal error × length enters both alike), ending before
    ``t_S1 − XRAY_PRE_US``. When less room is left it is shorter and its area is scaled by
    ``n_win / length`` (``SetResult.sideband_scale``; exact for the mean, approximate for the width)."""
    end = int(sample_index(t_s1_us - XRAY_PRE_US, t0, dt, n))
    stop = max(min(n_ped + n_win, end), n_ped + 1)
    return slice(n_ped, min(stop, n))
