"""Triggered alpha rate per isotope against time, from the per-frame trigger times (not file mtimes).

Within one FastFrame file the scope is live from the first trigger to the last one (re-arm time per frame is
negligible at these rates), so a file contributes live time T_f = t_last − t_first and the events of frames
1..n−1 (the first trigger only starts the clock): the count is unbiased, and the dead time between files (data
transfer) is never counted as live, unlike the lab's mtime span (notes/alpha.md D18). Per time bin (files by
their first trigger), rate = Σ n / Σ T_f, 1σ error √n / Σ T_f (Poisson, Gaussian approximation; for n = 0 the
error is the one-sided 68.27 % Poisson upper limit, −ln(0.3173) = 1.148 events, over ΣT). These are rates of
triggered, tagged frames: they include the trigger and window efficiencies (``calibrate.window_quality``) and
no solid-angle correction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ActivityTable", "activity_by_isotope"]

_UPPER_68_ZERO = 1.1478  # one-sided 68.27 % Poisson upper limit for n = 0 observed: -ln(1 - 0.6827)


@dataclass(frozen=True)
class ActivityTable:
    """Rates per time bin. ``t_start_s``/``t_end_s``: bin span (s, relative to the artifact's reference);
    ``live_s``: live time per bin; ``counts``/``rate_hz``/``rate_err_hz``: (n_bins, n_isotopes)."""

    names: tuple[str, ...]
    t_start_s: NDArray[np.float64]
    t_end_s: NDArray[np.float64]
    live_s: NDArray[np.float64]
    counts: NDArray[np.int64]
    rate_hz: NDArray[np.float64]
    rate_err_hz: NDArray[np.float64]


def activity_by_isotope(trigger_s: ArrayLike, event_ids: ArrayLike, labels: ArrayLike, names: tuple[str, ...],
                        *, files_per_bin: int = 1) -> ActivityTable:
    """Rates of each tagged isotope per group of ``files_per_bin`` consecutive files.

    Args:
        trigger_s: per-frame trigger time, s.  event_ids: (n, 2) (file index, frame index).
        labels: per-frame isotope index into ``names`` (−1: untagged, counts towards nothing).
    """
    t = np.asarray(trigger_s, np.float64)
    ids = np.asarray(event_ids, np.int64).reshape(-1, 2)
    lab = np.asarray(labels, np.int64)
    if not (t.shape[0] == ids.shape[0] == lab.shape[0]):
        raise ValueError("trigger_s, event_ids and labels need one entry per frame")
    if files_per_bin < 1:
        raise ValueError(f"files_per_bin: expected >= 1, got {files_per_bin}")
    files = np.unique(ids[:, 0])
    groups = [files[i:i + files_per_bin] for i in range(0, files.size, files_per_bin)]
    k = len(names)
    t0, t1, live = np.zeros(len(groups)), np.zeros(len(groups)), np.zeros(len(groups))
    counts = np.zeros((len(groups), k), np.int64)
    for g, group in enumerate(groups):
        for f in group:
            sel = np.flatnonzero(ids[:, 0] == f)
            order = sel[np.argsort(ids[sel, 1])]
            tf = t[order]
            live[g] += float(tf[-1] - tf[0]) if tf.size > 1 else 0.0
            later = lab[order[1:]]
            counts[g] += np.bincount(later[later >= 0], minlength=k)[:k]
        sel = np.isin(ids[:, 0], group)
        t0[g], t1[g] = float(t[sel].min()), float(t[sel].max())
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(live[:, None] > 0, counts / live[:, None], np.nan)
        err = np.where(live[:, None] > 0, np.where(counts > 0, np.sqrt(counts), _UPPER_68_ZERO) / live[:, None],
                       np.nan)
    return ActivityTable(tuple(names), t0, t1, live, counts, rate, err)
