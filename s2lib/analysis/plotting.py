"""Figures of s2book in one house style, each returned as a matplotlib Figure and saved as PNG + PDF.

Conventions for every function here:

* It returns the :class:`~matplotlib.figure.Figure` (notebooks display it when it is the cell's value) and
  never calls ``plt.show()``. Figures are not registered with pyplot, so a run with many sets does not pile
  up open figures; :func:`close` releases one explicitly. Inside a loop, show one with ``display(fig)``.
* With ``out_dir`` it also writes ``<name>.png`` (200 dpi) and ``<name>.pdf`` (vector) there, atomically
  (:func:`save_figure`); ``name`` has a sensible default per function.
* The style (:func:`use_style`, ``s2book.mplstyle``) is applied while the figure is made; ``figsize`` in
  inches defaults to a size based on :data:`ONE_COLUMN` or :data:`TWO_COLUMN`, so fonts are true point sizes.
* Units: time µs, amplitude mV, area mV·µs, field V/cm. Every uncertainty is drawn as an error bar and the
  legend says what the bars are (95 % intervals of fitted means, 68 % Poisson intervals of counts, spreads).
* Failed fits are drawn (open markers, a red "FIT FAILED: reason"), never dropped.
"""
from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from ._hist_fit import hist_fit_figure, pulls
from ._plot_helpers import (  # noqa: F401 (private helpers shared with plots_signal)
    _C,
    _COLORS,
    _FIELD_LABEL,
    _MARKERS,
    _finish,
    _legend,
    _short,
    OKABE_ITO,
    ONE_COLUMN,
    STYLE_PATH,
    TWO_COLUMN,
    StyleContext,
    as_float,
    close,
    finite_or_nan,
    format_value,
    get_attr,
    new_figure,
    poisson_interval,
    save_figure,
    unit_of,
    use_style,
)

__all__ = [
    "ONE_COLUMN",
    "TWO_COLUMN",
    "STYLE_PATH",
    "OKABE_ITO",
    "StyleContext",
    "use_style",
    "save_figure",
    "close",
    "poisson_interval",
    "pulls",
    "plot_hist_fit",
    "plot_xray_hist",
    "plot_s2_vs_drift",
    "plot_points_vs_field",
    "plot_recombination",
    "plot_timing_vs_field",
    "plot_timing_hist",
    "plot_waveform_validation",
    "plot_xray_classification",
    "plot_summary_recombination",
]

PathLike = str | os.PathLike[str]
Curve = Callable[[NDArray[np.float64]], ArrayLike] | tuple[ArrayLike, ArrayLike]

# --------------------------------------------------------------------------- histograms with fits
def plot_hist_fit(fit: Any, bin_cuts: tuple[float, float] | None = None, *, title: str | None = None,
                  xlabel: str = "S2 area (mV·µs)", out_dir: PathLike | None = None, name: str | None = None,
                  log: bool = False, errors: str = "garwood",
                  figsize: tuple[float, float] | None = None) -> Figure:
    """Area histogram with its fit, the model components, the fit numbers and a pull panel (seed API).

    Parameters
    ----------
    fit
        A :class:`s2lib.stats.fitting.FitResult` (or its ``to_dict()``), or an ``S2Areas``-like object with
        ``.fit_result`` and ``.areas``. With ``fit_result is None`` the areas are histogrammed over
        ``bin_cuts`` (default (0, 10) mV·µs, 100 bins) and a "no fit" note is shown.
    bin_cuts
        x range shown (default: the fitted histogram's range).
    title
        Axes title (default: the fit's label or the set folder name).
    xlabel
        x label with the unit in parentheses; the unit is reused in the numbers.
    out_dir, name
        Save ``name.png`` / ``name.pdf`` there (default name ``"<label>_hist_fit"``).
    log
        Logarithmic count axis (empty bins are then not drawn).
    errors
        ``"garwood"`` (exact 68 % Poisson intervals, right for small counts) or ``"sqrt"`` (±√n).
    figsize
        Inches; default ``(7.0, 3.8)``: histogram and pulls on the left, legend and numbers on the right.

    Returns
    -------
    Figure
        Data points with Poisson bars, model total (solid) and components (dashed), pulls
        ``(n − μ)/√μ`` with μ the expected counts per bin (``fit.expected``), and the fit numbers; a failed
        fit is drawn with its best-fit curve and a red "FIT FAILED: reason".
    """
    with use_style():
        fig, res = hist_fit_figure(fit, bin_cuts, title=title, xlabel=xlabel, log=log, errors=errors,
                                figsize=figsize)
        label = str(get_attr(res, "label", "") or "") if res is not None else ""
        return _finish(fig, out_dir, name or f"{label or 's2'}_hist_fit")


def plot_xray_hist(fit: Any, bin_cuts: tuple[float, float] | None = None, *, title: str | None = None,
                   xlabel: str = "X-ray S2 area (mV·µs)", out_dir: PathLike | None = None,
                   name: str | None = None, log: bool = False, errors: str = "garwood",
                   figsize: tuple[float, float] | None = None) -> Figure:
    """X-ray S2 area histogram with its fit and ``A_x = mean ± 1σ`` (the g_S2 calibration input).

    Same layout and arguments as :func:`plot_hist_fit`; additionally marks the fitted mean with a vertical
    line and states ``A_x = … ± … mV·µs`` on top of the numbers. Default name ``"xray_hist_fit"``.
    """
    unit = unit_of(xlabel)

    def headline(res: Any) -> str:
        value = format_value(get_attr(res, "mean"), get_attr(res, "mean_err"))
        return rf"$A_\mathrm{{x}}$ = {value}" + (f" {unit} (±1σ)" if "±" in value else "")

    with use_style():
        fig, res = hist_fit_figure(fit, bin_cuts, title="X-ray S2 areas" if title is None else title,
                                xlabel=xlabel, log=log, errors=errors, figsize=figsize, headline=headline)
        mean = as_float(get_attr(res, "mean")) if res is not None else math.nan
        if math.isfinite(mean):
            fig.axes[0].axvline(mean, color=_C["blue"], lw=0.8, ls=":", zorder=2)
        return _finish(fig, out_dir, name or "xray_hist_fit")


# --------------------------------------------------------------------------- quantities vs drift field
def plot_points_vs_field(drift_fields: ArrayLike, means: ArrayLike, ci95s: ArrayLike, *,
                         failed: ArrayLike | None = None, names: Sequence[str] | None = None,
                         ylabel: str = "Mean S2 area (mV·µs)", xlabel: str = _FIELD_LABEL,
                         label: str = "fitted mean", interval: str = "95 % CI", title: str | None = None,
                         ax: Axes | None = None, color: str | None = None, marker: str = "o",
                         figsize: tuple[float, float] | None = None, out_dir: PathLike | None = None,
                         name: str = "points_vs_field") -> Figure:
    """Values with error bars vs drift field; failed points as open markers, listed in the legend.

    Parameters
    ----------
    drift_fields, means, ci95s
        Equal-length arrays; ``ci95s`` are half-widths (NaN: no bar).
    failed
        Booleans, True where the value comes from a failed fit (open marker, no bar, named in the legend).
    names
        Point names used to list the failed ones (default: the field values).
    ylabel, xlabel, label, interval
        Axis labels (units in parentheses), legend label, and what the bars are (said in the legend).
    ax
        Draw into this axes instead of a new figure (its figure is returned).
    """
    x, y, e = finite_or_nan(drift_fields), finite_or_nan(means), finite_or_nan(ci95s)
    if not (x.size == y.size == e.size):
        raise ValueError(f"drift_fields, means and ci95s differ in length: {x.size}, {y.size}, {e.size}")
    bad = np.zeros(x.size, bool) if failed is None else np.asarray(failed, dtype=bool).ravel()
    color = color or _C["blue"]
    with use_style():
        fig = ax.figure if ax is not None else new_figure(figsize or (ONE_COLUMN[0], 2.8))
        ax = ax if ax is not None else fig.add_subplot()
        good = ~bad
        ax.errorbar(x[good], y[good], yerr=np.where(np.isfinite(e[good]), e[good], 0.0), fmt=marker,
                    color=color, label=f"{label} ± {interval}")
        if np.any(bad):
            tags = [_short(names[i]) if names is not None else f"{x[i]:.0f} V/cm" for i in np.flatnonzero(bad)]
            ax.errorbar(x[bad], y[bad], yerr=np.where(np.isfinite(e[bad]), e[bad], 0.0), fmt=marker,
                        mfc="white", color=color, label=textwrap.fill("fit failed: " + ", ".join(tags), 40))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.legend(loc="best")
        return _finish(fig, out_dir, name)


def plot_s2_vs_drift(run: Any, fitted: Mapping[str, Any], normalized: bool = False, *,
                     A_x: float | None = None, dA_x: float | None = None, title: str | None = None,
                     figsize: tuple[float, float] | None = None, out_dir: PathLike | None = None,
                     name: str | None = None) -> Figure:
    """Mean recoil S2 area ± 95 % interval vs drift field, one point per set (seed API).

    Parameters
    ----------
    run
        Has ``.run_id`` and ``.sets`` (each with ``.name``, ``.drift_field_V_cm``, ``.el_field_V_cm``).
    fitted
        Set name → object (or dict) with ``mean``, ``ci95`` (95 % half-width) and ``fit_success``, e.g. the
        ``S2Areas`` returned by ``fit_run_s2`` or ``FitResult``. Failed fits: open markers, named in the legend;
        sets missing from ``fitted`` are named in the title line.
    normalized
        Plot ``A_ion / A_x`` with ``δ = |A_ion/A_x|·√((ci95/A_ion)² + (dA_x/A_x)²)``. Requires ``A_x``;
        ``dA_x`` should be the 95 % half-width of ``A_x`` too (None: not included, the legend says so).

    Raises
    ------
    ValueError
        ``normalized=True`` without a positive finite ``A_x`` (the lab's code silently fell back to raw areas).
    """
    if normalized and not (A_x is not None and math.isfinite(as_float(A_x)) and as_float(A_x) > 0):
        raise ValueError("plot_s2_vs_drift(normalized=True) needs A_x, the fitted mean X-ray S2 area in mV·µs "
                         f"(a positive number), got A_x={A_x!r}; pass A_x=... (and dA_x=...) or normalized=False")
    sets = sorted(run.sets, key=lambda s: as_float(s.drift_field_V_cm))
    present = [s for s in sets if s.name in fitted]
    missing = [s.name for s in sets if s.name not in fitted]
    x = np.array([as_float(s.drift_field_V_cm) for s in present])
    y = np.array([as_float(get_attr(fitted[s.name], "mean")) for s in present])
    e = np.array([as_float(get_attr(fitted[s.name], "ci95")) for s in present])
    ok = np.array([bool(get_attr(fitted[s.name], "fit_success", False)) for s in present])
    ylabel, label = "Mean S2 area (mV·µs)", "fitted mean"
    if normalized:
        ax_, dax = as_float(A_x), as_float(dA_x) if dA_x is not None else 0.0
        rel = np.hypot(e / y, (dax / ax_) if math.isfinite(dax) else 0.0)
        y, e = y / ax_, np.abs(y / ax_) * rel
        ylabel = r"$A_\mathrm{ion}\,/\,A_\mathrm{x}$ (ratio)"
        label = r"$A_\mathrm{ion}/A_\mathrm{x}$" + ("" if dA_x is not None else r" (no $A_\mathrm{x}$ error)")
    el = sorted({round(as_float(s.el_field_V_cm)) for s in sets if math.isfinite(as_float(s.el_field_V_cm))})
    default_title = f"Run {run.run_id}" + (f", EL {el[0]} V/cm" if len(el) == 1 else "")
    if missing:
        default_title += "\n" + textwrap.fill(f"not fitted: {', '.join(map(_short, missing))}", 48)
    stem = f"{run.run_id}_s2_vs_drift" + ("_normalized" if normalized else "")
    return plot_points_vs_field(x, y, e, failed=~ok, names=[s.name for s in present], ylabel=ylabel,
                                label=label, title=default_title if title is None else title,
                                figsize=figsize, out_dir=out_dir, name=name or stem)


def _curve_xy(curve: Curve, x_data: NDArray) -> tuple[NDArray, NDArray]:
    if callable(curve):
        finite = x_data[np.isfinite(x_data) & (x_data > 0)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (1.0, 1000.0)
        grid = np.linspace(0.6 * lo, 1.08 * hi, 400)
        return grid, np.asarray(curve(grid), dtype=float)
    xs, ys = curve
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _draw_models(ax: Axes, models: Mapping[str, Any] | None, x_data: NDArray,
                 bands: Mapping[str, Callable[[NDArray[np.float64]], Any]] | None = None) -> dict[Any, Any]:
    """Draw the model curves, each in its own colour; a model's band (``bands[key](x)`` returning
    ``(..., lo, hi)``) in the same colour, lighter. Returns curve line → band patch (for :func:`_legend`)."""
    styles = ("-", "--", "-.", ":")
    paired: dict[Any, Any] = {}
    for i, (key, spec) in enumerate((models or {}).items()):
        is_pair = isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[1], str)
        curve, label = spec if is_pair else (spec, key)
        xs, ys = _curve_xy(curve, x_data)
        color = _COLORS[(i + 1) % len(_COLORS)]
        band = (bands or {}).get(key)
        (line,) = ax.plot(xs, ys, color=color, ls=styles[i % len(styles)], lw=1.1,
                          label=label if band is None else f"{label} ± 1σ band")
        if band is not None:
            lo, hi = (np.asarray(v, dtype=float) for v in tuple(band(xs))[-2:])
            paired[line] = ax.fill_between(xs, lo, hi, color=color, alpha=0.2, lw=0)
    return paired


def plot_recombination(fields: ArrayLike, N_e: ArrayLike, dN_e: ArrayLike, r: ArrayLike, dr: ArrayLike, *,
                       models: Mapping[str, Any] | None = None, N_exp: float | None = None,
                       bands: Mapping[str, Callable[[NDArray[np.float64]], Any]] | None = None,
                       interval: str = "95 % CI", title: str | None = None,
                       figsize: tuple[float, float] | None = None, out_dir: PathLike | None = None,
                       name: str = "recombination") -> Figure:
    """Measured electrons and recombination fraction vs drift field (two panels).

    Parameters
    ----------
    fields, N_e, dN_e, r, dr
        Drift field (V/cm), measured electrons ``N_e = A_ion/g_S2`` with ``dN_e``, and ``r = 1 − N_e/N_exp``
        with ``dr``; the uncertainties are drawn as bars and described by ``interval``.
    models
        Curves for the ``r`` panel: name → ``(curve, label)`` where ``curve`` is a callable ``r(E)`` (evaluated
        over the data's field range) or an ``(x, y)`` pair; a bare curve is labelled by its name.
    N_exp
        Expected electrons without recombination (``E_R/W``), drawn as a horizontal line.
    bands
        Uncertainty bands of the models: name (as in ``models``) → callable ``f(x)`` returning ``(lo, hi)`` or
        ``(y, lo, hi)``; drawn over the curve's range in the curve's colour, lighter.

    The legends sit below the panels, so they never cover a data point.
    """
    x = finite_or_nan(fields)
    with use_style():
        fig = new_figure(figsize or (TWO_COLUMN[0], 3.5))
        ax_n, ax_r = fig.subplots(1, 2)
        ax_n.errorbar(x, finite_or_nan(N_e), yerr=finite_or_nan(dN_e), fmt="s", color=_C["blue"],
                      label=f"measured ± {interval}")
        n_exp, n_max = as_float(N_exp), float(np.nanmax(finite_or_nan(N_e), initial=0.0))
        if math.isfinite(n_exp):
            text = f"expected without recombination: {n_exp:.0f} e⁻"
            if n_exp <= 2.5 * n_max:
                ax_n.axhline(n_exp, color=_C["vermillion"], ls="--", lw=1.0, label=text)
            else:  # far above the data: state it instead of squashing the points to the bottom
                ax_n.set_title(f"{text} (above the scale)", fontsize=8)
        ax_n.set_ylabel("Measured electrons $N_e$ (e⁻)")
        ax_r.errorbar(x, finite_or_nan(r), yerr=finite_or_nan(dr), fmt="s", color=_C["black"],
                      label=f"measured ± {interval}", zorder=3)
        paired = _draw_models(ax_r, models, x, bands)
        ax_r.set_ylabel("Recombination fraction $r$")
        for ax in (ax_n, ax_r):
            ax.set_xlabel(_FIELD_LABEL)
            _legend(ax, paired if ax is ax_r else None, below=True)
        if title:
            fig.suptitle(title)
        return _finish(fig, out_dir, name)


def plot_summary_recombination(runs: Mapping[str, tuple[ArrayLike, ArrayLike, ArrayLike]], *,
                               models: Mapping[str, Any] | None = None, interval: str = "95 % CI",
                               title: str | None = None, figsize: tuple[float, float] | None = None,
                               out_dir: PathLike | None = None, name: str = "summary_recombination") -> Figure:
    """Recombination fraction vs drift field for several runs on one axes (cross-run summary).

    ``runs`` maps run id → ``(fields V/cm, r, dr)``; each run gets its own colour and marker. ``models`` as in
    :func:`plot_recombination`.
    """
    with use_style():
        fig = new_figure(figsize or (ONE_COLUMN[0] + 1.0, 3.0))
        ax = fig.add_subplot()
        all_x = []
        for i, (run_id, (f, r, dr)) in enumerate(runs.items()):
            x = finite_or_nan(f)
            all_x.append(x)
            ax.errorbar(x, finite_or_nan(r), yerr=finite_or_nan(dr), fmt=_MARKERS[i % len(_MARKERS)],
                        color=_COLORS[i % len(_COLORS)], label=str(run_id))
        _draw_models(ax, models, np.concatenate(all_x) if all_x else np.array([1.0]))
        ax.set_xlabel(_FIELD_LABEL)
        ax.set_ylabel("Recombination fraction $r$")
        ax.legend(loc="best", ncols=2 if len(runs) > 4 else 1, title=f"bars: {interval}")
        if title:
            ax.set_title(title)
        return _finish(fig, out_dir, name)


from .plots_signal import (  # noqa: E402 (re-exported: one place to import every figure from)
    plot_timing_hist, plot_timing_vs_field, plot_waveform_validation, plot_xray_classification
)
