"""The histogram-with-fit figure behind :func:`s2lib.analysis.plotting.plot_hist_fit`: the histogram with Poisson
(Garwood) error bars, the fitted model and its components evaluated per bin, the pulls panel and the fit summary.

Split from :mod:`s2lib.analysis._plot_helpers` (style, saving, number formatting), which it builds on. Areas in
mV·µs; pulls are (observed − expected)/√expected per bin.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from ._plot_helpers import (OKABE_ITO, PULL_AXIS_MAX, TWO_COLUMN, as_float, format_p_value, format_value, get_attr,
                            new_figure, poisson_interval, unit_of)

__all__ = ["pulls", "has_histogram", "resolve_hist", "model_curves", "stats_lines", "hist_fit_figure"]


def _stored_histogram(fit: Any) -> tuple[NDArray, NDArray]:
    """(bin edges, counts) a fit holds (empty arrays when it holds none)."""
    stored = (None, None) if fit is None else (get_attr(fit, "bin_edges"), get_attr(fit, "counts"))
    edges, counts = (np.asarray([] if v is None else v, dtype=float).ravel() for v in stored)
    return edges, counts


def has_histogram(fit: Any) -> bool:
    """True when ``fit`` (a FitResult or its dict) holds the histogram it was fitted to (≥ 1 bin, one count per
    bin), so that it can be drawn without its areas; a fit refused before binning (too few events) holds none."""
    edges, counts = _stored_histogram(fit)
    return edges.size >= 2 and counts.size == edges.size - 1


def resolve_hist(obj: Any, bin_cuts: tuple[float, float] | None) -> tuple[Any, NDArray, NDArray, str]:
    """(fit or None, bin edges, counts, label) from a FitResult or an S2Areas-like object."""
    fit, areas, label = obj, None, ""
    if hasattr(obj, "fit_result") and hasattr(obj, "areas"):
        fit, areas = obj.fit_result, obj.areas
        source = getattr(obj, "source_dir", None)
        label = Path(source).name if source else ""
    if isinstance(fit, Mapping):
        from s2lib.stats.fitting import FitResult

        fit = FitResult.from_dict(fit)
    edges, counts = _stored_histogram(fit)
    if fit is not None:
        label = label or str(get_attr(fit, "label", "") or "")
    if not has_histogram(fit):
        if areas is None:
            raise ValueError("plot_hist_fit: the fit holds no histogram (bin_edges, counts) and no areas were given")
        config = get_attr(fit, "config", None) or {}
        cuts = bin_cuts or tuple(config.get("bin_cuts", (0.0, 10.0)))
        values = np.asarray(areas, dtype=float)
        counts, edges = np.histogram(values[np.isfinite(values)], bins=int(config.get("nbins", 100)),
                                     range=(float(cuts[0]), float(cuts[1])))
        counts = counts.astype(float)
    return fit, edges, counts, label


def model_curves(fit: Any, edges: NDArray) -> tuple[dict[str, NDArray], NDArray, NDArray]:
    """(components on a fine grid, the grid, expected counts per bin); empty/NaN when unavailable."""
    x = np.linspace(edges[0], edges[-1], 800)
    try:
        comps = {k: np.asarray(v, dtype=float) for k, v in fit.components(x).items()}
    except Exception:
        comps = {}
    try:
        mu = np.asarray(fit.expected(edges), dtype=float)
    except Exception:
        mu = np.full(edges.size - 1, np.nan)
    if comps and "total" not in comps:
        comps["total"] = np.sum(list(comps.values()), axis=0)
    return {k: v for k, v in comps.items() if np.any(np.isfinite(v))}, x, mu


def pulls(counts: ArrayLike, expected: ArrayLike) -> NDArray[np.float64]:
    """Pulls ``(n − μ)/√μ`` per bin; NaN where μ is not positive and finite."""
    n, mu = np.asarray(counts, dtype=float), np.asarray(expected, dtype=float)
    ok = np.isfinite(mu) & (mu > 0)
    return np.where(ok, (n - mu) / np.sqrt(np.where(ok, mu, 1.0)), np.nan)


def stats_lines(fit: Any, unit: str, headline: str | None) -> list[str]:
    def with_unit(text: str) -> str:
        return f"{text} {unit}" if unit and not text.endswith("n/a") else text

    chi2, ndf = as_float(get_attr(fit, "chi2")), get_attr(fit, "ndf", 0)
    mean = with_unit(format_value(get_attr(fit, "mean"), get_attr(fit, "mean_err")))
    return [
        headline or f"Mean = {mean}" + (" (±1σ)" if "±" in mean else ""),
        f"95 % CI of mean: ± {with_unit(format_value(get_attr(fit, 'ci95'), alone=True))}",
        f"σ = {with_unit(format_value(get_attr(fit, 'sigma'), get_attr(fit, 'sigma_err')))}",
        rf"$\chi^2$/ndf = {chi2:.1f} / {ndf}" if math.isfinite(chi2) else r"$\chi^2$/ndf = n/a",
        f"p-value = {format_p_value(get_attr(fit, 'p_value'))}",
        f"N in range = {int(get_attr(fit, 'n_in_range', 0) or 0):,}".replace(",", "\u2009"),
        f"Model: {get_attr(fit, 'model', '?')}",
    ]


def hist_fit_figure(obj: Any, bin_cuts: tuple[float, float] | None, *, title: str | None, xlabel: str,
                 log: bool, errors: str, figsize: tuple[float, float] | None,
                 headline: Callable[[Any], str] | None = None) -> tuple[Figure, Any]:
    fit, edges, counts, label = resolve_hist(obj, bin_cuts)
    unit = unit_of(xlabel)
    centres, width = 0.5 * (edges[:-1] + edges[1:]), np.diff(edges)
    has_fit = fit is not None
    fig = new_figure(figsize or (TWO_COLUMN[0], 3.8))
    gs = fig.add_gridspec(2 if has_fit else 1, 2, height_ratios=[3.2, 1] if has_fit else [1],
                          width_ratios=[3.0, 1.3])
    ax = fig.add_subplot(gs[0, 0])
    info = fig.add_subplot(gs[:, 1])
    info.set_axis_off()

    lo_err, hi_err = poisson_interval(counts, method=errors)
    filled = counts > 0
    bar_label = "68 % Garwood" if errors == "garwood" else "±√n Poisson"
    ax.stairs(counts, edges, color="0.65", linewidth=0.6, zorder=1)
    ax.errorbar(centres[filled], counts[filled], yerr=(lo_err[filled], hi_err[filled]), fmt="o",
                color=OKABE_ITO["black"], ms=2.2, elinewidth=0.7, capsize=1.2, zorder=3,
                label="data")
    inner = np.zeros_like(filled)
    if np.any(filled):  # empty bins between the first and last filled one: their upper bar is informative
        inner[np.flatnonzero(filled)[0]:np.flatnonzero(filled)[-1] + 1] = True
    empty = inner & ~filled
    if not log and np.any(empty):
        ax.errorbar(centres[empty], counts[empty], yerr=(lo_err[empty], hi_err[empty]), fmt="none",
                    color="0.45", elinewidth=0.5, capsize=1.0, zorder=2)
    handles, labels = ax.get_legend_handles_labels()

    text_lines: list[str] = []
    peak = 0.0
    failed = has_fit and not bool(get_attr(fit, "fit_success", False))
    poor = failed and str(getattr(fit, "quality", "")) == "poor"
    if has_fit:
        comps, x, mu = model_curves(fit, edges)
        styles = {"signal": (OKABE_ITO["blue"], "--", "signal"), "background": (OKABE_ITO["bluish_green"], ":", "background")}
        peak = max([float(np.nanmax(v)) for v in comps.values()] + [0.0])
        several = len([k for k in comps if k != "total"]) > 1
        for key, y in comps.items():
            if key == "total":
                continue
            if several or key not in styles:
                color, ls, lab = styles.get(key, (OKABE_ITO["reddish_purple"], "-.", key))
                ax.plot(x, y, color=color, ls=ls, lw=1.1, label=lab, zorder=6)
        if "total" in comps:
            ax.plot(x, comps["total"], color=OKABE_ITO["vermillion"], lw=1.3, zorder=5,
                    label=f"fit: {get_attr(fit, 'model', 'model')}" + (" (poor fit)" if poor else
                                                                          " (failed)" if failed else ""))
        handles, labels = ax.get_legend_handles_labels()
        order = sorted(range(len(labels)), key=lambda i: (labels[i] != "data", not labels[i].startswith("fit")))
        handles, labels = [handles[i] for i in order], [labels[i] for i in order]
        axp = fig.add_subplot(gs[1, 0], sharex=ax)
        p = pulls(counts, mu)
        ok = np.isfinite(p)
        big = float(np.nanmax(np.abs(p))) if np.any(ok) else 0.0
        top = max(3.0, min(1.15 * big, PULL_AXIS_MAX))
        axp.vlines(centres[ok], 0.0, np.clip(p[ok], -top, top), color="0.55", lw=0.6)
        axp.plot(centres, p, "o", color=OKABE_ITO["black"], ms=2.0, gid="pulls")
        off = ok & (np.abs(p) > top)
        if np.any(off):
            axp.plot(centres[off & (p > 0)], np.full(int(np.sum(off & (p > 0))), 0.9 * top), "^",
                     color=OKABE_ITO["vermillion"], ms=3.0, gid="pulls_off_scale")
            axp.plot(centres[off & (p < 0)], np.full(int(np.sum(off & (p < 0))), -0.9 * top), "v",
                     color=OKABE_ITO["vermillion"], ms=3.0, gid="pulls_off_scale")
        axp.axhline(0.0, color=OKABE_ITO["vermillion"], lw=0.8)
        for level in (-2.0, 2.0):
            axp.axhline(level, color="0.5", lw=0.6, ls=":")
        axp.set_ylim(-top, top)
        axp.set_ylabel("Pull")
        axp.set_xlabel(xlabel)
        ax.tick_params(labelbottom=False)
        if not np.any(ok):
            axp.text(0.5, 0.75, "no model to compare", transform=axp.transAxes, ha="center", va="center",
                     fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0})
        text_lines = stats_lines(fit, unit, headline(fit) if headline else None)
        text_lines += ["", f"Bars: {bar_label} intervals", "Pull = (n − μ)/√μ, μ = model counts"]
        if np.any(off):
            text_lines.append(f"▲▼: pull beyond ±{top:.0f} (off scale)")
    else:
        ax.set_xlabel(xlabel)
        n_total = int(counts.sum())
        text_lines = [f"N in histogram = {n_total:,}".replace(",", "\u2009"),
                      f"Bars: {bar_label} intervals"]

    ax.set_ylabel(f"Counts / {width[0]:.3g} {unit}".rstrip() if np.allclose(width, width[0]) else "Counts per bin")
    if log:
        ax.set_yscale("log")
        ax.set_ylim(0.5, 3.0 * max(1.0, float(np.max(counts + hi_err, initial=1.0)), peak))
    else:
        ax.set_ylim(bottom=0.0)
    ax.set_xlim(*(bin_cuts if bin_cuts is not None else (edges[0], edges[-1])))
    ax.set_title(title if title is not None else label)
    info.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, 1.0), borderaxespad=0.0)
    size = float(mpl.rcParams["legend.fontsize"] if not isinstance(mpl.rcParams["legend.fontsize"], str) else 8)
    y_pt = -(len(handles) * size * (1.0 + mpl.rcParams["legend.labelspacing"]) + 1.2 * size)

    def put(text: str, **kw: Any) -> float:
        info.annotate(text, xy=(0.0, 1.0), xycoords="axes fraction", xytext=(0.0, y_pt), fontsize=size,
                      textcoords="offset points", va="top", ha="left", annotation_clip=False, **kw)
        return (text.count("\n") + 1) * 1.35 * size + 0.8 * size

    if poor:
        reason = str(get_attr(fit, "reason", "") or "")
        y_pt -= put(textwrap.fill(f"POOR FIT, not used: {reason}", 32), color="#B35900", weight="bold",
                    gid="fit_poor")
    elif failed:
        reason = str(get_attr(fit, "reason", "") or "unknown reason")
        y_pt -= put(textwrap.fill(f"FIT FAILED: {reason}", 32), color="#C00000", weight="bold", gid="fit_failed")
    elif not has_fit:
        y_pt -= put("NO FIT", color="0.35", weight="bold", gid="no_fit")
    put("\n".join(text_lines), linespacing=1.35, gid="fit_stats")
    return fig, fit
