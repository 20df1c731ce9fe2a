"""Figures of the alpha chapter (house style of :mod:`s2lib.analysis.plotting`): the alpha spectrum with its fit and the
isotope windows, the energy calibration with residuals, the activity per isotope against time, and r against
drift field per isotope. Inputs are the stage's JSON/CSV documents (no fitting here).

Units: u_SCA (peak volts / 1.058) on the spectrum axis, MeV for calibrated energies, keV for residuals, Hz for
rates, V/cm for fields.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from s2lib.alpha.lineshape import line_cdf
from s2lib.alpha.spectrum import _line_offsets

from ._plot_helpers import OKABE_ITO, ONE_COLUMN, TWO_COLUMN, new_figure, poisson_interval, use_style

__all__ = ["plot_alpha_spectrum", "plot_alpha_calibration", "plot_activity", "plot_isotope_recombination",
           "ISOTOPE_COLORS"]

_ORDER = ("Th228", "Ra224", "Rn220", "Bi212", "Po216", "Po212")
ISOTOPE_COLORS = dict(zip(_ORDER, (OKABE_ITO["blue"], OKABE_ITO["vermillion"], OKABE_ITO["bluish_green"],
                                   OKABE_ITO["sky_blue"], OKABE_ITO["orange"], OKABE_ITO["reddish_purple"])))
_MARKERS = ("o", "s", "^", "D", "v", "P")


def _color(name: str) -> str:
    return ISOTOPE_COLORS.get(name, OKABE_ITO["black"])


def _component_counts(fit: Mapping[str, Any], name: str, edges: np.ndarray) -> np.ndarray:
    i = fit["names"].index(name)
    cdf = sum(w * line_cdf(edges, pos, fit["sigma_sca"], fit["tau_sca"], fit["eta"])
              for pos, w in _line_offsets(name, fit["mu_sca"][i], fit["gain_sca_per_MeV"]))
    return fit["counts"][i] * np.diff(cdf)


def plot_alpha_spectrum(fit: Mapping[str, Any], windows: Mapping[str, Sequence[float]] | None = None, *,
                        title: str | None = None) -> Figure:
    """The fitted alpha spectrum (``SpectrumFit.to_dict()``): data with 68 % Poisson bars, the total model and
    each isotope's peak (all its lines), the isotope windows shaded; pulls (n − ν)/√ν below (bins with
    ν ≥ 1)."""
    edges = np.asarray(fit["edges_sca"], float)
    hist = np.asarray(fit["hist"], float)
    centres = 0.5 * (edges[1:] + edges[:-1])
    comps = {n: _component_counts(fit, n, edges) for n in fit["names"]}
    total = sum(comps.values()) + fit["background_per_sca"] * np.diff(edges)
    err_lo, err_hi = poisson_interval(hist)
    with use_style():
        fig = new_figure((TWO_COLUMN[0], 4.0))
        ax, axp = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
        nz = hist > 0    # empty bins: no marker (their 68 % upper limit 1.84 would fill the log scale)
        ax.errorbar(centres[nz], hist[nz], yerr=(err_lo[nz], err_hi[nz]), fmt=".", ms=2, color="black", lw=0.6,
                    label="data (68 % Poisson)")
        ax.stairs(total, edges, color="black", lw=1.0, label="fit: all peaks + background")
        for n, c in comps.items():
            ax.stairs(c, edges, color=_color(n), lw=0.9, label=n)
        for n, (a, b) in (windows or {}).items():
            ax.axvspan(a, b, color=_color(n), alpha=0.10, lw=0)
        ax.set_yscale("log")
        ax.set_ylim(0.5, max(float(hist.max()), 1.0) * 3)
        ax.set_ylabel("Frames per bin")
        ax.legend(loc="upper right", fontsize=7, ncols=2)
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.where(total >= 1, (hist - total) / np.sqrt(total), np.nan)   # ν < 1: no Gaussian pull
        axp.bar(centres, pull, width=np.diff(edges), color=OKABE_ITO["blue"])
        axp.axhline(0, color="black", lw=0.6)
        axp.set_ylabel("pull (ν ≥ 1)")
        axp.set_xlabel("Alpha amplitude (u_SCA = peak V / 1.058)")
        if title:
            fig.suptitle(title)
    return fig


def plot_alpha_calibration(calibrations: Mapping[str, Mapping[str, Any]], mu_err: Sequence[float], *,
                           used: str | None = None, title: str | None = None) -> Figure:
    """Reference energy against fitted peak position with the linear and quadratic calibrations (top) and the
    residuals E_ref − E(μ) in keV with their 1σ (E'·δμ) for each order (bottom)."""
    with use_style():
        fig = new_figure((TWO_COLUMN[0], 4.0))
        ax, axr = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1.3))
        first = next(iter(calibrations.values()))
        mu, ref, names = np.asarray(first["mu_sca"]), np.asarray(first["ref_MeV"]), first["anchors"]
        dmu = np.asarray(mu_err, float)
        x = np.linspace(mu.min() - 0.2, mu.max() + 0.2, 200)
        for n, m, e in zip(names, mu, ref):
            ax.errorbar(m, e, xerr=dmu[names.index(n)], fmt="o", color=_color(n), label=n, zorder=3)
        for k, (key, cal) in enumerate(calibrations.items()):
            coef = np.asarray(cal["coef_MeV_per_sca_power"])
            label = f"order {cal['order']}" + (" (used)" if key == used else "") + \
                f": χ²/ndf = {cal['chi2']:.2f}/{cal['ndof']}"
            ax.plot(x, sum(c * x ** i for i, c in enumerate(coef)), lw=1, ls=("-", "--")[k % 2],
                    color=("black", OKABE_ITO["vermillion"])[k % 2], label=label)
            res = np.asarray(cal["residuals_keV"])
            pulls = np.asarray(cal["pulls"])
            with np.errstate(divide="ignore", invalid="ignore"):
                err = np.where(pulls != 0, np.abs(res / pulls), np.nan)
            axr.errorbar(mu + (k - 0.5) * 0.02, res, yerr=err, fmt=("o", "s")[k % 2],
                         color=("black", OKABE_ITO["vermillion"])[k % 2], label=f"order {cal['order']}")
        axr.axhline(0, color="black", lw=0.6)
        ax.set_ylabel("Reference energy (MeV)")
        axr.set_ylabel("E_ref − E(μ) (keV)")
        axr.set_xlabel("Fitted peak position μ (u_SCA)")
        ax.legend(loc="upper left", fontsize=7, ncols=2)
        axr.legend(loc="best", fontsize=7, title="bars: 1σ (E'·δμ)", title_fontsize=7)
        if title:
            fig.suptitle(title)
    return fig


def plot_activity(rows: Sequence[Mapping[str, Any]], *, title: str | None = None) -> Figure:
    """Triggered rate per isotope against time (rows of ``<run_id>_alpha_activity.csv``; time = bin centre, h
    since the first bin of the run), 1σ Poisson bars."""
    with use_style():
        fig = new_figure((ONE_COLUMN[0] + 1.5, 3.0))
        ax = fig.add_subplot()
        t0 = min((float(r["abs_start_s"]) for r in rows), default=0.0)
        names = list(dict.fromkeys(str(r["isotope"]) for r in rows))
        for k, n in enumerate(names):
            sel = [r for r in rows if r["isotope"] == n]
            t = np.array([(0.5 * (float(r["abs_start_s"]) + float(r["abs_end_s"])) - t0) / 3600 for r in sel])
            ax.errorbar(t, [float(r["rate_hz"]) for r in sel], yerr=[float(r["rate_err_hz"]) for r in sel],
                        fmt=_MARKERS[k % len(_MARKERS)], ms=3, color=_color(n), label=n)
        ax.set_xlabel("Time since the first file (h)")
        ax.set_ylabel("Tagged rate (Hz)")
        ax.legend(loc="best", fontsize=7, ncols=2, title="bars: 1σ Poisson", title_fontsize=7)
        if title:
            ax.set_title(title)
    return fig


def plot_isotope_recombination(series: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
                               models: Mapping[str, Callable[[np.ndarray], np.ndarray]] | None = None, *,
                               ylabel: str = "Recombination fraction $r$", title: str | None = None) -> Figure:
    """r (or any quantity) against drift field per isotope: ``series`` label → (fields, values, 1σ); ``models``
    label → curve r(E) drawn over the data's field range in the label's colour. Labels start with the isotope
    name ("Po212", "RUN_X Po212")."""
    with use_style():
        fig = new_figure((ONE_COLUMN[0] + 1.5, 3.2))
        ax = fig.add_subplot()
        xs = [np.asarray(f, float) for f, _, _ in series.values() if len(f)]
        span = np.concatenate(xs) if xs else np.array([1.0])
        grid = np.geomspace(max(np.nanmin(span) * 0.8, 1e-3), np.nanmax(span) * 1.2, 200)
        for k, (label, (f, v, dv)) in enumerate(series.items()):
            c = _color(label.split()[-1])
            ax.errorbar(f, v, yerr=dv, fmt=_MARKERS[k % len(_MARKERS)], ms=4, color=c, label=label)
            if models and label in models:
                ax.plot(grid, models[label](grid), color=c, lw=1)
        ax.set_xscale("log")
        ax.set_xlabel("Drift field (V/cm)")
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize=7, title="bars: total 1σ; lines: Thomas–Imel fit", title_fontsize=7)
        if title:
            ax.set_title(title)
    return fig
