"""Recoil electrons and recombination fractions per set, with error propagation, and the per-set table the
calibration stage writes (``<run_id>_recomb_factors.csv`` rows).

``N_e = A_ion / g_S2`` and ``r = 1 − N_e / N_exp``; the statistical error of ``A_ion`` and the g_S2 error are
propagated separately (stat ⊕ g_S2, the g_S2 error fully correlated within an EL field). Split from
:mod:`s2lib.calib.recombination` (the Thomas–Imel and empirical model fits). Areas mV·µs, g_S2 mV·µs/e⁻,
fields V/cm.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from s2lib.stats.fitting import Z95, FitConfig, FitResult, fit_histogram

if TYPE_CHECKING:  # pragma: no cover
    from s2lib.io.store import S2Areas

__all__ = ["electrons_and_recombination", "IonMean", "ion_mean", "recombination_table"]


def electrons_and_recombination(A_ion: ArrayLike, dA_ion: ArrayLike, g_S2: ArrayLike, d_g_S2: ArrayLike,
                                N_exp: float) -> dict[str, NDArray[np.float64]]:
    """Measured electrons and recombination fraction with their 1σ errors, per set.

    N_e = A_ion / g_S2;  r = 1 − N_e / N_exp  (domain.md 1.6), with linear error propagation of the two
    independent inputs (A_ion from the set's S2 fit, g_S2 from the X-ray calibration)::

        dN_stat = dA_ion / g_S2             dN_gS2 = A_ion · d_g_S2 / g_S2²      dN = dN_stat ⊕ dN_gS2
        dr_stat = dN_stat / N_exp           dr_gS2 = dN_gS2 / N_exp              dr = dr_stat ⊕ dr_gS2

    Args:
        A_ion, dA_ion: recoil S2 mean area and its 1σ error, mV·µs (NOT a 95 % half-width).
        g_S2, d_g_S2: gain and its 1σ error, mV·µs per electron.
        N_exp: expected recoil electrons E_R / W (no recombination).

    Returns:
        Arrays ``N_e``, ``dN_e``, ``dN_e_stat``, ``dN_e_gs2``, ``r``, ``dr``, ``dr_stat``, ``dr_gs2``. The
        g_S2 part is fully correlated between sets sharing one g_S2 (see ``fit_recombination_model``).
    """
    A = np.asarray(A_ion, dtype=float)
    dA = np.asarray(dA_ion, dtype=float)
    g = np.asarray(g_S2, dtype=float)
    dg = np.asarray(d_g_S2, dtype=float)
    if not N_exp > 0:
        raise ValueError(f"N_exp must be positive, got {N_exp}")
    with np.errstate(invalid="ignore", divide="ignore"):
        n_e = A / g
        dn_stat = np.abs(dA / g)
        dn_gs2 = np.abs(A * dg / g**2)
    dn = np.hypot(dn_stat, dn_gs2)
    return {"N_e": n_e, "dN_e": dn, "dN_e_stat": dn_stat, "dN_e_gs2": dn_gs2,
            "r": 1.0 - n_e / N_exp, "dr": dn / N_exp, "dr_stat": dn_stat / N_exp, "dr_gs2": dn_gs2 / N_exp}


@dataclass(frozen=True)
class IonMean:
    """Recoil S2 mean of one set as used here: mean, 1σ error, 95 % half-width, width (all mV·µs)."""

    mean: float
    mean_err: float
    ci95: float
    sigma: float
    fit_success: bool
    n_events: int
    origin: str
    reason: str = ""
    quality: str = ""   # "ok", "poor" (p < gof_p_min: shown, used only with use_poor_fits) or "failed"


def ion_mean(s2: S2Areas | str | None, fit_config: FitConfig, *, label: str = "") -> IonMean:
    """The recoil mean of a set from its ``S2Areas`` (see the module docstring for the three cases); None or
    an error text (set not loadable) give a failed ``IonMean`` carrying that reason."""
    if s2 is None or isinstance(s2, str):
        return IonMean(math.nan, math.nan, math.nan, math.nan, False, 0, "missing", s2 or "no S2 results")
    areas = getattr(s2, "areas", None)
    n_events = int(np.count_nonzero(np.isfinite(areas))) if areas is not None else 0
    fr = getattr(s2, "fit_result", None)
    if isinstance(fr, Mapping):
        fr = FitResult.from_dict(fr)
    if isinstance(fr, FitResult):
        return IonMean(fr.mean, fr.mean_err, fr.ci95, fr.sigma, bool(fr.fit_success),
                       n_events or fr.n_in_range, "fit_result", fr.reason, fr.quality)
    mean, ci95 = getattr(s2, "mean", None), getattr(s2, "ci95", None)
    if mean is not None and ci95 is not None and np.isfinite(mean) and np.isfinite(ci95):
        sigma = getattr(s2, "sigma", None)
        ok = bool(getattr(s2, "fit_success", False)) and ci95 > 0
        return IonMean(float(mean), float(ci95) / Z95, float(ci95), math.nan if sigma is None else float(sigma),
                       ok, n_events, "s2_results.json (mean_err = ci95/1.96)",
                       "" if ok else "stored fit not successful or ci95 = 0")
    if areas is not None and n_events:
        fr = fit_histogram(np.asarray(areas, dtype=float), fit_config, label=label)
        return IonMean(fr.mean, fr.mean_err, fr.ci95, fr.sigma, bool(fr.fit_success), n_events,
                       "refit of s2_areas.npy", fr.reason, fr.quality)
    return IonMean(math.nan, math.nan, math.nan, math.nan, False, n_events, "no fit", "no fit and no areas")


def recombination_table(sets: Sequence[Any], fitted: Mapping[str, Any], gs2_for: Callable[[float], Any],
                        fit_config: FitConfig, n_exp: float, *, say: Callable[[str], Any] | None = None,
                        use_poor_fits: bool = False) -> tuple[list[dict[str, Any]], dict[str, NDArray[Any]]]:
    """Per-set table of the run: S2 mean, g_S2, N_e, r with 1σ errors (stat, g_S2, total), A_ion/A_x.

    Args:
        sets: objects with ``name``, ``drift_field_V_cm``, ``el_field_V_cm`` (``runs.SetInfo``).
        fitted: set name → ``S2Areas`` (or an error text), read by :func:`ion_mean`.
        gs2_for: EL field → the g_S2 entry of that field (attributes ``el_field_V_cm`` (the group key),
            ``g_S2``, ``d_g_S2``, ``A_x``, ``dA_x``, ``source``, ``reason``, ``usable``).
        fit_config: S2 fit options for sets with areas only.  n_exp: E_R / W.  say: progress printer.
        use_poor_fits: also use S2 means of poor fits (p < gof_p_min) in the model fits (marked in ``reason``).

    Returns:
        (rows for the CSV files, arrays by column), sorted by (EL field, drift field). A set with a failed S2
        fit or without a usable g_S2 keeps its row with NaN results, ``used_in_model_fit`` False and a reason.
    """
    rows: list[dict[str, Any]] = []
    for s in sorted(sets, key=lambda s: (round(s.el_field_V_cm), s.drift_field_V_cm)):
        im = ion_mean(fitted.get(s.name), fit_config, label=s.name)
        e = gs2_for(s.el_field_V_cm)
        poor_ok = use_poor_fits and im.quality == "poor"
        reasons = [] if im.fit_success or poor_ok else [f"S2 fit: {im.reason or 'failed'}"]
        if not e.usable:
            reasons.append(f"g_S2 at EL {e.el_field_V_cm:g} V/cm: {e.reason or 'not available'}")
        g, dg = (e.g_S2, e.d_g_S2) if e.usable else (math.nan, math.nan)
        rows.append({"set_name": s.name, "drift_field": float(s.drift_field_V_cm), "el_field": float(s.el_field_V_cm),
                     "s2_mean": im.mean, "s2_mean_err": im.mean_err, "s2_ci95": im.ci95, "s2_sigma": im.sigma,
                     "fit_success": im.fit_success, "n_events": im.n_events, "g_S2": g, "d_g_S2": dg,
                     "gs2_source": e.source, "used_in_model_fit": not reasons, "quality": im.quality,
                     "reason": "; ".join(reasons) or (f"used although {im.reason} (use_poor_fits)" if poor_ok else ""),
                     "el_key": e.el_field_V_cm, "A_x": e.A_x, "dA_x": e.dA_x, "origin": im.origin})
        if reasons and say is not None:
            say(f"      {s.name}: excluded from the model fits ({'; '.join(reasons)})")
    ok = np.array([r["used_in_model_fit"] for r in rows], dtype=bool)
    A = np.where(ok, [r["s2_mean"] for r in rows], np.nan)
    dA = np.where(ok, [r["s2_mean_err"] for r in rows], np.nan)
    g = np.array([r["g_S2"] for r in rows], dtype=float)
    res = electrons_and_recombination(A, dA, g, np.array([r["d_g_S2"] for r in rows], float), n_exp)
    a_x, da_x = np.array([r["A_x"] for r in rows], float), np.array([r["dA_x"] for r in rows], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm, dnorm = A / a_x, np.abs(A / a_x) * np.hypot(dA / A, da_x / a_x)
    for i, r in enumerate(rows):
        r.update(N_e_meas=res["N_e"][i], dN_e_meas=res["dN_e"][i], recomb_factor=res["r"][i],
                 recomb_error=res["dr"][i], recomb_error_stat=res["dr_stat"][i], recomb_error_gs2=res["dr_gs2"][i],
                 recomb_ci95=Z95 * res["dr"][i], dN_e_meas_stat=res["dN_e_stat"][i],
                 dN_e_meas_gs2=res["dN_e_gs2"][i], norm_A_ion=norm[i], dnorm_A_ion=dnorm[i])
    arrays: dict[str, NDArray[Any]] = {
        "set_name": np.array([r["set_name"] for r in rows], dtype=str),
        "drift_field": np.array([r["drift_field"] for r in rows], float),
        "el_field": np.array([r["el_field"] for r in rows], float),
        "el_key": np.array([r["el_key"] for r in rows], float),
        **{k: np.array([r[c] for r in rows], float) for k, c in (("A_ion", "s2_mean"), ("dA_ion", "s2_mean_err"),
                                                                 ("A_ion_ci95", "s2_ci95"), ("d_g_S2", "d_g_S2"))},
        "g_S2": g,
        "N_e_meas": res["N_e"], "dN_e_meas": res["dN_e"], "dN_e_meas_stat": res["dN_e_stat"],
        "dN_e_meas_gs2": res["dN_e_gs2"], "r": res["r"], "dr": res["dr"], "dr_stat": res["dr_stat"],
        "dr_gs2": res["dr_gs2"], "r_ci95": Z95 * res["dr"], "norm_A_ion": norm, "dnorm_A_ion": dnorm,
        "fit_success": np.array([r["fit_success"] for r in rows], bool), "usable": ok,
    }
    arrays["drift_fields"] = arrays["drift_field"]
    return rows, arrays
