"""Helpers behind :mod:`s2lib.analysis.plotting`: house style, atomic saving, Poisson intervals, number formatting.

Everything here is re-exported by :mod:`s2lib.analysis.plotting` where it is public; import it from there. The
histogram-with-fit figure is built in :mod:`s2lib.analysis._hist_fit`.
"""
from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final

import matplotlib as mpl
import matplotlib.style
import numpy as np
from matplotlib.axes import Axes
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


# --------------------------------------------------------------------------- shared by the figure modules
PathLike = str | os.PathLike[str]
_C = OKABE_ITO
_FIELD_LABEL = "Drift field (V/cm)"
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">")
_COLORS = (_C["blue"], _C["vermillion"], _C["bluish_green"], _C["orange"], _C["reddish_purple"],
           _C["sky_blue"], _C["black"])


def _short(set_name: str) -> str:
    """``FieldScan_Gate0200_Anode2100`` -> ``Gate0200_Anode2100`` (for legends)."""
    return set_name.removeprefix("FieldScan_")


def _thousands(value: float) -> str:
    """``120345`` -> ``"120 345"`` (thin-space thousands separator, SI style)."""
    return f"{int(round(value)):,}".replace(",", "\u2009")


def _finish(fig: Figure, out_dir: PathLike | None, name: str) -> Figure:
    if out_dir is not None:
        save_figure(fig, out_dir, name)
    return fig


def _legend(ax: Axes, paired: Mapping[Any, Any] | None = None, *, below: bool = False, first: str = "measured",
            **kw: Any) -> None:
    """The axes' legend, entries starting with ``first`` first; a curve with a band shows as line over band.
    ``below``: under the axes (never on the data points), else ``loc="best"``."""
    handles, labels = ax.get_legend_handles_labels()
    handles = [(paired[h], h) if paired and h in paired else h for h in handles]
    order = sorted(range(len(labels)), key=lambda i: not labels[i].startswith(first))
    where = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.22), "borderaxespad": 0.0} if below else \
        {"loc": "best"}
    ax.legend([handles[i] for i in order], [labels[i] for i in order], **where, **kw)
