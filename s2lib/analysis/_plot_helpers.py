"""Helpers behind :mod:`s2lib.analysis.plotting`: house style, atomic saving, Poisson intervals, number formatting.

Everything here is re-exported by :mod:`s2lib.analysis.plotting` where it is public; import it from there.
"""
from __future__ import annotations

import math
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import matplotlib as mpl
import matplotlib.style
import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray
from scipy import stats

__all__ = [
    "ONE_COLUMN",
    "TWO_COLUMN",
    "STYLE_PATH",
    "OKABE_ITO",
    "PNG_DPI",
    "StyleContext",
    "use_style",
    "new_figure",
    "save_figure",
    "close",
    "poisson_interval",
    "format_value",
    "format_p_value",
    "unit_of",
    "as_float",
    "finite_or_nan",
    "sequence_of_pairs",
    "get_attr",
    "decimate_minmax",
    "pulls",
    "resolve_hist",
    "model_curves",
    "stats_lines",
    "hist_fit_figure",
    "PULL_AXIS_MAX",
]

ONE_COLUMN: Final[tuple[float, float]] = (3.4, 2.6)
"""Figure size (width, height) in inches for one journal column (columns are 3.3-3.5 in wide)."""

TWO_COLUMN: Final[tuple[float, float]] = (7.0, 3.2)
"""Figure size (width, height) in inches for a full page width (6.7-7.1 in in most journals)."""

STYLE_PATH: Final[Path] = Path(__file__).resolve().parent.parent / "s2book.mplstyle"
"""The house style file shipped with the package."""

PNG_DPI: Final = 200
"""Resolution of the web (PNG) copy of every figure."""

OKABE_ITO: Final[dict[str, str]] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
"""Colour-blind-safe palette of Okabe & Ito, "Color Universal Design" (2008)."""

PULL_AXIS_MAX: Final = 6.0
"""Pulls beyond this magnitude are drawn as triangles at the edge of the pull panel."""

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read the process umask (os.umask can only read it by setting it)

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._+-]+")


class StyleContext:
    """The house style, applied when created and undone when used as a context manager and left.

    Created by :func:`use_style`. As a plain call the style stays for the rest of the session (notebooks);
    in a ``with`` block the previous rcParams come back at the end of the block. (A snapshot is kept rather
    than a suspended ``rc_context``, whose clean-up would undo the style as soon as the object is collected.)
    """

    def __init__(self, *, serif: bool = False, grid: bool = False) -> None:
        saved = dict(mpl.rcParams.copy())
        saved.pop("backend", None)
        self._saved: dict[str, Any] = saved
        matplotlib.style.use(STYLE_PATH)
        extra: dict[str, Any] = {"axes.grid": bool(grid)}
        if serif:
            extra.update({"font.family": "serif", "mathtext.fontset": "dejavuserif"})
        mpl.rcParams.update(extra)

    def __enter__(self) -> StyleContext:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        restore = getattr(mpl.rcParams, "_update_raw", None)  # matplotlib >= 3.10; validated values anyway
        if restore is not None:
            restore(self._saved)
        else:  # pragma: no cover - older matplotlib
            dict.update(mpl.rcParams, self._saved)


def use_style(*, serif: bool = False, grid: bool = False) -> StyleContext:
    """Apply the s2book house style (``s2book.mplstyle``).

    Parameters
    ----------
    serif
        Use DejaVu Serif (with matching mathtext) instead of DejaVu Sans.
    grid
        Draw a light grid behind the data.

    Returns
    -------
    StyleContext
        Use it in ``with use_style(): ...`` to restore the previous settings afterwards; a bare
        ``use_style()`` keeps the style for the rest of the session.
    """
    return StyleContext(serif=serif, grid=grid)


def _activate_notebook_display() -> None:
    """Inside an IPython kernel, import pyplot once so the inline backend can display returned figures."""
    ipython = sys.modules.get("IPython")
    if ipython is not None and "matplotlib.pyplot" not in sys.modules:
        try:
            if ipython.get_ipython() is not None:
                import matplotlib.pyplot  # noqa: F401  (registers the inline PNG formatter for Figure)
        except Exception:  # pragma: no cover - display is a convenience only
            pass


def new_figure(figsize: tuple[float, float] | None = None) -> Figure:
    """A figure in the house style that pyplot does not track (no 20-figure warning, no double display).

    Call inside :func:`use_style` so that the artists added to it pick up the style.
    """
    _activate_notebook_display()
    size = tuple(figsize) if figsize is not None else tuple(mpl.rcParams["figure.figsize"])
    return Figure(figsize=size, layout="constrained")


def close(fig: Figure) -> None:
    """Release a figure (also removes it from pyplot's registry if it is there)."""
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close(fig)
    fig.clear()


def _save_atomic(fig: Figure, target: Path, fmt: str, dpi: float) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            # No creation date in the PDF: the same figure gives the same bytes (reproducible reports).
            metadata = {"CreationDate": None} if fmt == "pdf" else None
            fig.savefig(fh, format=fmt, dpi=dpi, metadata=metadata)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; figures are for sharing like any other file
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_figure(fig: Figure, out_dir: str | os.PathLike[str], name: str) -> dict[str, Path]:
    """Save ``fig`` as ``name.png`` (web, 200 dpi) and ``name.pdf`` (print, vector) in ``out_dir``.

    Each file is written to a temporary file in ``out_dir`` and renamed into place, so a reader never sees a
    half-written figure and an interrupted save leaves no debris. ``out_dir`` is created when missing. The
    figure keeps its exact size (no tight bounding box), so a column-wide figure stays column-wide.

    Parameters
    ----------
    fig
        The figure to save.
    out_dir
        Destination folder (created with its parents).
    name
        File stem; characters other than letters, digits and ``._+-`` are replaced by ``_``.

    Returns
    -------
    dict
        ``{"png": Path, "pdf": Path}``.
    """
    stem = _SAFE_NAME.sub("_", str(name)).strip("._") or "figure"
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"png": folder / f"{stem}.png", "pdf": folder / f"{stem}.pdf"}
    with mpl.rc_context({"pdf.fonttype": 42, "ps.fonttype": 42, "savefig.bbox": "standard"}):
        _save_atomic(fig, paths["png"], "png", PNG_DPI)
        _save_atomic(fig, paths["pdf"], "pdf", PNG_DPI)
    return paths


def poisson_interval(
    counts: ArrayLike, *, method: str = "garwood", cl: float = 0.682689492
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lower and upper error-bar lengths for Poisson counts.

    Parameters
    ----------
    counts
        Observed counts n (non-negative).
    method
        ``"garwood"``: the exact (Garwood 1936) central interval,
        ``lo = F⁻¹_χ²(α/2; 2n)/2``, ``hi = F⁻¹_χ²(1−α/2; 2n+2)/2`` with ``α = 1 − cl``; right for small n
        (for n = 0 the interval is [0, 1.84]) and equal to ``n ± √n`` for large n.
        ``"sqrt"``: the symmetric ``±√n``.
    cl
        Confidence level of the interval (default: 1σ, 68.27 %).

    Returns
    -------
    tuple of arrays
        ``(n − lo, hi − n)``, ready for ``yerr=`` of ``errorbar``.
    """
    n = np.asarray(counts, dtype=np.float64)
    if method == "sqrt":
        err = np.sqrt(np.clip(n, 0.0, None))
        return err, err.copy()
    if method != "garwood":
        raise ValueError(f"method must be 'garwood' or 'sqrt', not {method!r}")
    alpha = 1.0 - cl
    lo = np.where(n > 0, stats.chi2.ppf(alpha / 2, 2 * n) / 2, 0.0)
    hi = stats.chi2.ppf(1 - alpha / 2, 2 * n + 2) / 2
    return n - lo, hi - n


def as_float(value: Any) -> float:
    """``float(value)``, or NaN for None and for values that are not numbers."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def finite_or_nan(values: ArrayLike) -> NDArray[np.float64]:
    """A float64 array with None and non-numbers as NaN."""
    return np.array([as_float(v) for v in np.ravel(np.asarray(values, dtype=object))], dtype=np.float64)


def format_value(value: Any, err: Any = None, *, digits: int = 2, alone: bool = False) -> str:
    """``"1.652 ± 0.012"``: the uncertainty to ``digits`` significant digits, the value to the same decimal.

    Without a usable uncertainty the value is given to 4 significant digits (``alone=True``: to ``digits``,
    for a number that is itself an uncertainty); a value that is not finite is written ``"n/a"``.
    """
    v, e = as_float(value), as_float(err)
    if not math.isfinite(v):
        return "n/a"
    if alone:
        return f"{v:#.{digits}g}".rstrip(".")
    if not (math.isfinite(e) and e > 0):
        return f"{v:.4g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(e)))
    if decimals == 0:
        scale = 10 ** max(0, math.floor(math.log10(e)) - digits + 1)
        return f"{round(v / scale) * scale:.0f} ± {round(e / scale) * scale:.0f}"
    return f"{v:.{decimals}f} ± {e:.{decimals}f}"


def format_p_value(p: Any) -> str:
    """A p-value for a label: ``"0.420"``, ``"3.1×10⁻⁵"`` (Unicode superscripts), or ``"n/a"``."""
    value = as_float(p)
    if not math.isfinite(value):
        return "n/a"
    if value >= 1e-3:
        return f"{value:.3f}" if value < 0.995 else "1.00"
    if value <= 0:
        return "< 10⁻³⁰⁰"
    exponent = math.floor(math.log10(value))
    return f"{value / 10**exponent:.1f}×10{str(exponent).translate(_SUPERSCRIPT)}"


def unit_of(label: str) -> str:
    """The unit in parentheses at the end of an axis label: ``"S2 area (mV·µs)"`` -> ``"mV·µs"``."""
    match = re.search(r"\(([^()]*)\)\s*$", label or "")
    return match.group(1) if match else ""


def sequence_of_pairs(value: Any) -> bool:
    """True for ``[(a, b), ...]``; False for ``[[(a, b)], ...]`` (one list per panel) and for None."""
    if value is None or isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        return False
    return all(
        isinstance(item, (Sequence, np.ndarray))
        and len(item) == 2
        and all(np.isscalar(x) or x is None for x in item)
        for item in value
    )


def get_attr(obj: Any, name: str, default: Any = None) -> Any:
    """Attribute or mapping item ``name`` of ``obj`` (fit results may be objects or plain dicts)."""
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def decimate_minmax(
    x: ArrayLike, y: ArrayLike, max_points: int = 6000
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Shorten a long trace for drawing, keeping its envelope: the min and max of each chunk, in order.

    A 250 000-sample frame becomes ``max_points`` points; peaks stay visible and the PDF stays small.
    """
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n_chunks = max_points // 2
    if ya.size <= max_points or n_chunks < 1:
        return xa, ya
    chunk = -(-ya.size // n_chunks)
    pad = chunk * n_chunks - ya.size  # repeat the last sample so every chunk is full
    yc = np.pad(ya, (0, pad), mode="edge").reshape(n_chunks, chunk)
    xc = np.pad(xa, (0, pad), mode="edge").reshape(n_chunks, chunk)
    i_min, i_max = np.argmin(yc, axis=1), np.argmax(yc, axis=1)
    rows = np.arange(n_chunks)
    first, second = np.minimum(i_min, i_max), np.maximum(i_min, i_max)
    xs = np.column_stack([xc[rows, first], xc[rows, second]]).ravel()
    ys = np.column_stack([yc[rows, first], yc[rows, second]]).ravel()
    return xs, ys


# --------------------------------------------------------------------------- histogram-with-fit figure
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
    edges = np.asarray(get_attr(fit, "bin_edges", None) if fit is not None else [], dtype=float).ravel()
    counts = np.asarray(get_attr(fit, "counts", None) if fit is not None else [], dtype=float).ravel()
    if fit is not None:
        label = label or str(get_attr(fit, "label", "") or "")
    if edges.size < 2 or counts.size != edges.size - 1:
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
