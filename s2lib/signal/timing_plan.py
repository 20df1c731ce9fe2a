"""The frames a set's timing estimate reads: every file's frame layout from its header, the check that the files
of a set share it, and the bounded, append-stable sampling plan (the first files in acquisition order).

Split from :mod:`s2lib.signal.timing` (issue 10), which uses these. Times µs, voltages mV.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from s2lib.errors import DataError, WfmError
from s2lib.io.wfm import read_header

__all__ = ["FileLayout", "read_layouts", "check_consistent", "sample_plan", "SAMPLE_MIN_FILES"]


@dataclass(frozen=True)
class FileLayout:
    """Frame layout of one file from its header (times µs, voltages mV)."""

    path: Path
    n_frames: int
    n_points: int
    dt_us: float
    t0_us: float
    scale_mV: float
    offset_mV: float

    @property
    def t_end_us(self) -> float:
        """Time just after the last sample of a frame, µs."""
        return self.t0_us + self.n_points * self.dt_us


def read_layouts(files: Sequence[Path]) -> tuple[list[tuple[int, FileLayout]], list[dict[str, str]]]:
    """Header facts of every file: ``([(file index, layout), ...], [{"file", "reason"}, ...] unreadable)``."""
    good: list[tuple[int, FileLayout]] = []
    failed: list[dict[str, str]] = []
    for i, path in enumerate(files):
        try:
            h = read_header(path, allow_partial=True)   # a truncated file's complete frames are usable
        except WfmError as err:
            failed.append({"file": Path(path).name, "index": i, "field": err.field, "reason": str(err)})
            continue
        good.append((i, FileLayout(Path(path), h.n_frames, h.n_points, h.dt_us, h.t0_us, h.scale_V * 1e3,
                                   h.offset_V * 1e3)))
    return good, failed


def check_consistent(layouts: Sequence[tuple[int, FileLayout]], set_name: str) -> FileLayout:
    """The set's common layout (its first readable file); DataError naming the first file whose ``dt`` or
    points per frame differ from it."""
    if not layouts:
        raise DataError(f"{set_name}: no readable .wfm file")
    ref = layouts[0][1]
    for _, lay in layouts[1:]:
        if not math.isclose(lay.dt_us, ref.dt_us, rel_tol=1e-9):
            raise DataError(f"{set_name}: {lay.path.name} has dt = {lay.dt_us:.6g} µs but {ref.path.name} has "
                            f"{ref.dt_us:.6g} µs: the files of a set must share their sampling interval")
        if lay.n_points != ref.n_points:
            raise DataError(f"{set_name}: {lay.path.name} has {lay.n_points} points per frame but "
                            f"{ref.path.name} has {ref.n_points}: the files of a set must share their frame layout")
    return ref


SAMPLE_MIN_FILES = 4
"""The timing sample spans at least this many files when the set has them (at most
``ceil(max_frames / SAMPLE_MIN_FILES)`` frames per file), so one odd file cannot dominate the estimate."""


def sample_plan(n_frames: Sequence[int], max_frames: int) -> list[tuple[int, np.ndarray]]:
    """Frames to sample: ``[(position in n_frames, frame indices), ...]`` with at most ``max_frames`` frames.

    The *first* files of the set in acquisition (natural name) order are taken, up to
    ``ceil(max_frames / SAMPLE_MIN_FILES)`` frames from each, spread evenly inside the file, until
    ``max_frames`` frames are planned. Two properties follow:

    - bounded cost: the estimate reads at most ``max_frames`` frames per set however long the run;
    - stability: files appended to a set (data taking goes on) never change the sample once the set holds
      ``max_frames`` frames, so the windows, and with them the per-file cache keys of the files already read
      (:mod:`s2lib.analysis.filecache`), stay the same; only the new files are read. (The earlier plan spread the
      sample over the whole set, so every new file moved it and forced a full re-read.)
    """
    n_frames = [int(n) for n in n_frames]
    if sum(n_frames) == 0 or max_frames <= 0:
        return []
    per_file = math.ceil(max_frames / SAMPLE_MIN_FILES)
    plan, left = [], int(max_frames)
    for i, n in enumerate(n_frames):
        k = min(per_file, n, left)
        if k <= 0:
            continue
        plan.append((i, np.unique(np.round(np.linspace(0, n - 1, k)).astype(int))))
        left -= k
        if left <= 0:
            break
    return plan
