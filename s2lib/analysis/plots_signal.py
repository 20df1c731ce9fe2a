"""Figures of the signal stages: S1/S2 timing against drift field and its per-set histogram, waveform validation
traces, X-ray selection counts. Re-exported by :mod:`s2lib.analysis.plotting` (import them from there).

Split from :mod:`s2lib.analysis.plotting` (fits, S2 and recombination figures). Times in µs after the trigger,
voltages in mV, fields V/cm. Each function returns the figure; with ``out_dir`` it is also saved (PNG + PDF).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullLocator
from numpy.typing import ArrayLike

from ._plot_helpers import (_C, _FIELD_LABEL, ONE_COLUMN, TWO_COLUMN, PathLike, _finish, _legend, _thousands, as_float,
                            decimate_minmax, finite_or_nan, new_figure, poisson_interval, sequence_of_pairs, unit_of,
                            use_style)

__all__ = ["plot_timing_vs_field", "plot_timing_hist", "plot_waveform_validation", "plot_xray_classification"]


# --------------------------------------------------------------------------- timing
def plot_timing_vs_field(fields: ArrayLike, t_s1: ArrayLike, dt_s1: ArrayLike, s2_start: ArrayLike,
                         dstart: ArrayLike, s2_end: ArrayLike, dend: ArrayLike, *,
                         spread: str = "±1σ spread of per-frame times", title: str | None = None,
                         figsize: tuple[float, float] | None = None, out_dir: PathLike | None = None,
                         name: str = "timing_vs_field") -> Figure:
    """S1 time, S2 start and S2 end (µs, relative to the trigger) vs drift field, with their spreads as bars."""
    x = finite_or_nan(fields)
    series = (("S1", t_s1, dt_s1, "o", _C["blue"]), ("S2 start", s2_start, dstart, "s", _C["bluish_green"]),
              ("S2 end", s2_end, dend, "^", _C["vermillion"]))
    with use_style():
        fig = new_figure(figsize or (ONE_COLUMN[0], 3.0))
        ax = fig.add_subplot()
        for lab, y, dy, marker, color in series:
            ax.errorbar(x, finite_or_nan(y), yerr=finite_or_nan(dy), fmt=marker, color=color, label=lab)
        ax.axhline(0.0, color="0.6", lw=0.6, ls=":")
        ax.set_xlabel(_FIELD_LABEL)
        ax.set_ylabel("Time after trigger (µs)")
        if title:
            ax.set_title(title)
        fig.legend(loc="outside lower center", ncols=3, title=f"bars: {spread}")
        return _finish(fig, out_dir, name)


def plot_timing_hist(values: ArrayLike, center: float, spread: float, *, label: str = "S1", bins: int = 50,
                     value_range: tuple[float, float] | None = None, xlabel: str = "Time after trigger (µs)",
                     center_name: str = "robust centre", title: str | None = None,
                     figsize: tuple[float, float] | None = None, out_dir: PathLike | None = None,
                     name: str | None = None) -> Figure:
    """Distribution of per-frame times with the robust centre and a ±spread band.

    ``value_range`` defaults to the 0.5-99.5 % quantiles widened to show ±2 spreads; values outside are
    counted in the legend. Counts carry 68 % Garwood Poisson bars. The legend sits below the axes (a centred
    peak leaves no free corner).
    """
    v = finite_or_nan(values)
    v = v[np.isfinite(v)]
    c, s = as_float(center), as_float(spread)
    unit = unit_of(xlabel)
    if value_range is None:
        lo, hi = (np.percentile(v, [0.5, 99.5]) if v.size else (c - 1.0, c + 1.0))
        if math.isfinite(c) and math.isfinite(s):
            lo, hi = min(lo, c - 2 * s), max(hi, c + 2 * s)
        value_range = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
    counts, edges = np.histogram(v, bins=bins, range=value_range)
    outside = int(v.size - counts.sum())
    with use_style():
        fig = new_figure(figsize or (ONE_COLUMN[0], 3.8))
        ax = fig.add_subplot()
        if math.isfinite(c) and math.isfinite(s):
            ax.axvspan(c - s, c + s, color=_C["sky_blue"], alpha=0.3, lw=0,
                       label=f"±spread = {s:.3g} {unit}")
        ax.stairs(counts, edges, color=_C["black"], lw=0.9,
                  label=f"{label}, N = {v.size}" + (f" ({outside} outside)" if outside else ""))
        centres = 0.5 * (edges[:-1] + edges[1:])
        lo_e, hi_e = poisson_interval(counts)
        ax.errorbar(centres, counts, yerr=(lo_e, hi_e), fmt="none", color="0.45", elinewidth=0.5, capsize=0.8,
                    label="68 % Poisson interval")
        if math.isfinite(c):
            ax.axvline(c, color=_C["vermillion"], ls="--", lw=1.1, label=f"{center_name} = {c:.3g} {unit}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"Frames / {np.diff(edges)[0]:.2g} {unit}")
        ax.set_ylim(0.0, max(1.0, float(counts.max()) if counts.size else 1.0) * 1.1)
        _legend(ax, below=True, first="")
        if title:
            ax.set_title(title)
        return _finish(fig, out_dir, name or f"{label.replace(' ', '_')}_time_hist")


# --------------------------------------------------------------------------- waveforms, X-ray selection
def plot_waveform_validation(t_us: ArrayLike, traces_mV: Sequence[ArrayLike], *,
                             s1: tuple[float, float] | None = None,
                             s2_window: tuple[float, float] | None = None, xray_windows: Sequence[Any] | None = None,
                             titles: Sequence[str] | None = None, max_points: int = 6000,
                             figsize: tuple[float, float] | None = None, out_dir: PathLike | None = None,
                             name: str = "waveform_validation") -> Figure:
    """A few sample frames (mV vs µs) with the S1 time ± spread, the S2 window and X-ray windows marked.

    Parameters
    ----------
    t_us
        Sample times (µs), shared by all traces.
    traces_mV
        One array per frame, in mV (drawn with a min/max envelope of ``max_points`` points).
    s1, s2_window
        ``(t, spread)`` and ``(start, end)`` in µs, shared by all frames.
    xray_windows
        ``[(start, end), ...]`` for every frame, or one such list per frame (e.g. accepted X-ray pulses).
    titles
        One short label per frame (e.g. ``"file 12, frame 31"``).
    """
    t = finite_or_nan(t_us)
    n = len(traces_mV)
    if n == 0:
        raise ValueError("plot_waveform_validation: no traces given")
    per_frame = None if xray_windows is None else (
        [xray_windows] * n if sequence_of_pairs(xray_windows) or len(xray_windows) == 0 else list(xray_windows))
    with use_style():
        fig = new_figure(figsize or (TWO_COLUMN[0], 0.75 + 1.3 * n))
        axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
        for i, (ax, trace) in enumerate(zip(axes, traces_mV)):
            xs, ys = decimate_minmax(t, trace, max_points)
            ax.plot(xs, ys, color=_C["black"], lw=0.5, label="trace")
            if s1 is not None:
                ts, ds = as_float(s1[0]), as_float(s1[1])
                ax.axvspan(ts - ds, ts + ds, color=_C["bluish_green"], alpha=0.25, lw=0, label="S1 ± spread")
                ax.axvline(ts, color=_C["bluish_green"], lw=0.9, label="S1")
            if s2_window is not None:
                ax.axvspan(*map(as_float, s2_window), color=_C["vermillion"], alpha=0.14, lw=0, label="S2 window")
                ax.axvline(as_float(s2_window[0]), color=_C["vermillion"], lw=0.9, label="S2 start")
                ax.axvline(as_float(s2_window[1]), color=_C["reddish_purple"], lw=0.9, ls="--", label="S2 end")
            for j, (a, b) in enumerate(per_frame[i] if per_frame is not None and i < len(per_frame) else []):
                ax.axvspan(as_float(a), as_float(b), facecolor="none", edgecolor=_C["blue"], hatch="////",
                           lw=0.6, label="X-ray window" if j == 0 else None)
            if titles is not None and i < len(titles):
                ax.text(0.005, 0.96, titles[i], transform=ax.transAxes, va="top", ha="left", fontsize=8,
                        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1.0})
            ax.set_ylabel("Amplitude (mV)")
        axes[-1].set_xlabel("Time after trigger (µs)")
        handles, labels = axes[0].get_legend_handles_labels()
        seen = dict(zip(labels, handles))
        for ax in axes[1:]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                seen.setdefault(lab, h)
        fig.legend(list(seen.values()), list(seen.keys()), loc="outside upper center", ncols=min(len(seen), 7))
        return _finish(fig, out_dir, name)


def plot_xray_classification(counts: Mapping[str, int], *, accepted_key: str = "accepted", log: bool = True,
                             title: str | None = None, figsize: tuple[float, float] | None = None,
                             out_dir: PathLike | None = None, name: str = "xray_classification") -> Figure:
    """Frames per X-ray classification outcome (accepted and each rejection reason) as horizontal bars.

    Each bar is labelled with its count and share of all frames. The count axis is logarithmic by default
    (accepted X-rays are ~0.1 % of the frames and would not show on a linear axis); ``log=False`` for linear.
    """
    keys = list(counts)
    values = np.array([max(0, int(counts[k])) for k in keys], dtype=float)
    total = float(values.sum())
    with use_style():
        fig = new_figure(figsize or (ONE_COLUMN[0] + 1.0, 0.9 + 0.28 * max(len(keys), 1)))
        ax = fig.add_subplot()
        pos = np.arange(len(keys))[::-1]
        colors = [_C["bluish_green"] if k == accepted_key else _C["blue"] for k in keys]
        ax.barh(pos, values, color=colors, height=0.65)
        ax.set_yticks(pos, [k.replace("_", " ") for k in keys])
        ax.tick_params(axis="y", which="both", length=0, right=False)
        ax.yaxis.set_minor_locator(NullLocator())
        for p, v in zip(pos, values):
            share = f" ({100 * v / total:.2g} %)" if total > 0 else ""
            ax.text(v if v > 0 else (0.8 if log else 0), p, f" {_thousands(v)}{share}", va="center", ha="left",
                    fontsize=8)
        if log:
            ax.set_xscale("log")
            ax.set_xlim(0.8, max(10.0, total) * 12)
        else:
            ax.set_xlim(0, max(1.0, float(values.max(initial=0.0))) * 1.45)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: _thousands(v)))
        ax.set_xlabel("Frames (count)")
        ax.set_title(title if title is not None else f"X-ray classification, {_thousands(total)} frames")
        return _finish(fig, out_dir, name)
