"""Notebook sections of alpha-tagged runs: the alpha chapter's parts and the per-isotope sections of the fitting,
calibration and summary chapters. Each is one call from a thin template cell; for a run without an alpha channel
(``multi_isotope.enabled`` false) the per-isotope sections display nothing, so the templates need no branches.

Everything is read from the artifacts (``<run_id>_alpha_calibration.json``, ``_alpha_activity.csv``,
``_alpha_recombination.json``, ``_recomb_factors.csv``, the per-set alpha artifacts) except the per-isotope S2 fits
of the fitting chapter, which are made here by :func:`s2lib.analysis.alpha_recoil.fit_isotopes` (the calibration makes the
same fits again for its numbers). Figures are saved as PNG + PDF and shown from the files (``report_helpers.show``).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from s2lib.alpha.artifact import load_alpha
from s2lib.calib.recombination import ModelFit
from s2lib.config.runs import channel_of
from s2lib.io.store import read_json

from . import report_helpers as rh
from .alpha_plots import plot_activity, plot_alpha_calibration, plot_alpha_spectrum, plot_isotope_recombination
from .alpha_recoil import RESULTS_FILE, fit_isotopes, has_alpha_tags
from .report_format import format_error, format_number, format_value

__all__ = ["is_alpha_run", "run_alpha_stage", "show_pairing", "show_spectrum", "show_calibration", "show_windows",
           "show_activity", "isotope_fit_section", "isotope_calibration_section", "isotope_summary_section"]


def is_alpha_run(run: Any) -> bool:
    """The run's configuration declares an alpha channel (``multi_isotope.enabled``)."""
    return bool(getattr(getattr(run.config, "alpha", None), "enabled", False))


def run_alpha_stage(run: Any) -> dict[str, Any] | None:
    """Run the alpha analysis (:func:`s2lib.alpha.stage.analyse_alpha_run`) and return its document; a run
    without an alpha channel prints one line and returns None."""
    if not is_alpha_run(run):
        print(f"Run {run.run_id} has no alpha channel (multi_isotope.enabled is false): nothing to do.")
        return None
    from s2lib.alpha.stage import analyse_alpha_run

    return analyse_alpha_run(run.config)


def show_pairing(run: Any) -> None:
    """Per set: channel files paired, frames per file, trigger-time cross-check, estimator flags."""
    rows = []
    for s in run.sets:
        meta = load_alpha(run.set_output_dir(s.name)).meta
        fpf = sorted(set(meta["frames_per_file"]))
        files = meta["files"]
        rows.append({"Set": rh.set_label(s.name), "File pairs": len(files),
                     "Channels (PMT ↔ alpha)": " ".join(sorted(
                         {f"Ch{channel_of(f['pmt'])} ↔ Ch{channel_of(f['alpha'])}" for f in files})) or "—",
                     "First alpha file": files[0]["alpha"] if files else "—",
                     "Frames per file": ", ".join(map(str, fpf)), "Frames": sum(meta["frames_per_file"]),
                     "Trigger times checked": "yes" if meta["has_trigger_times"] else "no (not in the files)",
                     "Flags": ", ".join(f"{k}: {v}" for k, v in meta["flag_counts"].items() if v) or "none",
                     "Pairing issues": "; ".join(meta["pairing_issues"]) or "none"})
    rh.show_table(rows, caption="Channel pairing per set (frames paired by file and frame index)")


def _sca_windows(doc: dict[str, Any]) -> dict[str, list[float]]:
    w = doc["windows"]
    return {n: w["windows"][n] for n in w["names"]}


def show_spectrum(run: Any, doc: dict[str, Any], figures: str | os.PathLike[str]) -> None:
    """The fitted alpha spectrum of all sets with the windows, and the fit parameters."""
    fit = doc["spectrum_fit"]
    fig = plot_alpha_spectrum(fit, _sca_windows(doc), title=f"Run {run.run_id}: alpha spectrum, all sets")
    rh.show(fig, figures, f"{run.run_id}_alpha_spectrum")
    rows = [{"Isotope": n, "μ ± 1σ (u_SCA)": format_value(m, e), "Frames N ± 1σ": format_value(c, ce),
             "Reference (MeV)": format_number(r, digits=6)}
            for n, m, e, c, ce, r in zip(fit["names"], fit["mu_sca"], fit["mu_err_sca"], fit["counts"],
                                         fit["counts_err"], fit["ref_MeV"])]
    note = (f"Shared line shape: σ = {format_value(fit['sigma_sca'], fit['sigma_err_sca'])} u_SCA, tail τ = "
            f"{format_value(fit['tau_sca'], fit['tau_err_sca'])} u_SCA, tail fraction η = "
            f"{format_value(fit['eta'], fit['eta_err'])}; Baker–Cousins χ² = {fit['deviance']:.1f} for "
            f"{fit['ndof']} degrees of freedom; fit {'valid' if fit['valid'] else 'NOT VALID'}. Reference "
            f"convention: {doc['reference_convention']}.")
    rh.show_table(rows, caption="Alpha peaks (binned Poisson likelihood fit, values ± 1σ)", note=note)


def show_calibration(run: Any, doc: dict[str, Any], figures: str | os.PathLike[str]) -> None:
    """Linear and quadratic calibrations with residuals (figure and table)."""
    cals = doc["calibrations"]
    fig = plot_alpha_calibration(cals, doc["spectrum_fit"]["mu_err_sca"], used=doc["calibration_used"],
                                 title=f"Run {run.run_id}: energy calibration")
    rh.show(fig, figures, f"{run.run_id}_alpha_calibration")
    rows = []
    for key, c in cals.items():
        err = np.sqrt(np.diag(np.asarray(c["cov"])))
        rows.append({"Calibration": f"order {c['order']}" + (" (used)" if key == doc["calibration_used"] else ""),
                     "Coefficients c_k ± 1σ (MeV / u_SCA^k)": "; ".join(
                         f"c{k} = {format_value(v, e)}" for k, (v, e) in enumerate(zip(c["coef_MeV_per_sca_power"],
                                                                                         err))),
                     "Residuals (keV)": ", ".join(f"{n} {r:+.1f}" for n, r in zip(c["anchors"], c["residuals_keV"])),
                     "χ²/ndf": f"{c['chi2']:.2f} / {c['ndof']}"})
    rh.show_table(rows, caption="Energy calibration E(u) = Σ c_k u^k (weighted, errors 1σ)")


def show_windows(doc: dict[str, Any]) -> None:
    """Isotope windows (u_SCA and MeV), their expected efficiency and purity, and the tagged frames."""
    q, mev = doc["window_quality"], doc["windows_MeV"]
    totals: dict[str, int] = {}
    for counts in doc["tag_counts"].values():
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + int(v)
    rows = [{"Isotope": n, "Window (u_SCA)": f"[{a:.3f}, {b:.3f})", "Window (MeV)":
             f"[{mev[n][0]:.3f}, {mev[n][1]:.3f})", "Expected efficiency": f"{q[n]['efficiency']:.4f}",
             "Expected purity": f"{q[n]['purity']:.4f}", "Tagged frames": totals.get(n, 0)}
            for n, (a, b) in _sca_windows(doc).items()]
    none = {k: v for k, v in totals.items() if k.startswith("none")}
    rh.show_table(rows, caption=f"Isotope windows ({doc['windows']['source']}), applied in u_SCA",
                  note="Not tagged: " + (", ".join(f"{k[6:]} {v}" for k, v in none.items()) or "none") + ".")


def _activity_rows(run: Any) -> list[dict[str, Any]]:
    path = Path(run.output_dir) / f"{run.run_id}_alpha_activity.csv"
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    refs = {s.name: float(load_alpha(run.set_output_dir(s.name)).meta.get("trigger_time_ref_s") or 0.0)
            for s in run.sets}
    for r in rows:
        r["abs_start_s"] = float(r["t_start_s"]) + refs.get(r["set"], 0.0)
        r["abs_end_s"] = float(r["t_end_s"]) + refs.get(r["set"], 0.0)
    return rows


def show_activity(run: Any, figures: str | os.PathLike[str]) -> None:
    """Tagged rate per isotope against trigger time (all sets in time order)."""
    fig = plot_activity(_activity_rows(run), title=f"Run {run.run_id}: tagged alpha rates")
    rh.show(fig, figures, f"{run.run_id}_alpha_activity")


# ------------------------------------------------------------------------------------------ per-isotope sections
def isotope_fit_section(run: Any, figures: str | os.PathLike[str], fit_config: Any = None) -> None:
    """Fitting chapter: per-isotope recoil S2 fits per set (table) and S2 against drift field per isotope.
    Displays nothing for a run without alpha tags."""
    if not has_alpha_tags(run):
        if is_alpha_run(run):
            print(f"Run {run.run_id} is alpha-tagged but the alpha stage's tags are missing: no per-isotope fits.")
        return
    fitted, counts = fit_isotopes(run, fit_config)
    rh.show_markdown("## Recoil S2 per isotope\n\nEach frame carries the isotope of its silicon partner; every set "
                     "is fitted once per isotope with the same estimator as above, on that isotope's frames "
                     "(their own sideband). Values ± 1σ.")
    rows, series = [], {}
    for iso, sets in fitted.items():
        pts = []
        for s in run.sets:
            s2 = sets[s.name]
            fr = getattr(s2, "fit_result", None)
            ok = fr is not None and fr.fit_success
            rows.append({"Isotope": iso, "Set": rh.set_label(s.name), "Frames": counts[s.name].get(iso, 0),
                         "A_ion ± 1σ (mV·µs)": format_value(fr.mean, fr.mean_err) if fr is not None else "—",
                         "Fit": "ok" if ok else f"FAILED: {getattr(fr, 'reason', s2)}"})
            if ok:
                pts.append((s.drift_field_V_cm, fr.mean, fr.mean_err))
        series[iso] = tuple(map(list, zip(*pts))) if pts else ([], [], [])
    rh.show_table(rows, caption="Recoil S2 fits per set and isotope")
    fig = plot_isotope_recombination(series, ylabel="Recoil S2 mean A_ion (mV·µs)",
                                     title=f"Run {run.run_id}: recoil S2 per isotope")
    rh.show(fig, figures, f"{run.run_id}_s2_vs_drift_isotopes")


def _iso_rows(output_dir: str | os.PathLike[str], run_id: str) -> list[dict[str, Any]]:
    rows = rh.read_table_csv(Path(output_dir) / f"{run_id}_recomb_factors.csv", isotope=None)
    return [r for r in rows if r.get("isotope") not in (None, "all")]


def _series(rows: Sequence[dict[str, Any]], doc: dict[str, Any], prefix: str = "") -> tuple[dict, dict]:
    series, models = {}, {}
    for iso in dict.fromkeys(r["isotope"] for r in rows):
        for el in sorted({round(r["el_field"]) for r in rows if r["isotope"] == iso}):
            pts = sorted((r["drift_field"], r["recomb_factor"], r["recomb_error"]) for r in rows
                         if r["isotope"] == iso and round(r["el_field"]) == el and r.get("used_in_model_fit"))
            label = f"{prefix}{iso}" if len({round(r['el_field']) for r in rows}) == 1 else f"{prefix}EL{el} {iso}"
            series[label] = tuple(map(list, zip(*pts))) if pts else ([], [], [])
            ti = ((doc.get("isotopes") or {}).get(iso) or {}).get("thomas_imel", {}).get(f"{el:g}")
            if ti and ti.get("fit_success"):
                models[label] = ModelFit.from_dict(ti).evaluate
    return series, models


def isotope_calibration_section(run: Any, figures: str | os.PathLike[str]) -> None:
    """Calibration chapter: N_e and r per isotope and set, r against drift field per isotope with the
    Thomas–Imel fits, and the fit parameters. Displays nothing for a run without per-isotope results."""
    path = Path(run.output_dir) / RESULTS_FILE.format(run_id=run.run_id)
    if not has_alpha_tags(run) or not path.is_file():
        if is_alpha_run(run):
            print(f"Run {run.run_id} is alpha-tagged but has no per-isotope results ({path.name} missing): "
                  "run the alpha stage, then this one.")
        return
    doc, rows = read_json(path), _iso_rows(run.output_dir, run.run_id)
    rh.show_markdown("## Recombination per isotope\n\nN_e = A_ion/g_S2 and r = 1 − N_e/N_exp with N_exp = E_R/W "
                     "and E_R = Q·4/A of the tagged isotope; g_S2 from the X-rays as above. Errors: total 1σ "
                     "(statistical ⊕ g_S2).")
    table = [{"Isotope": r["isotope"], "E_R (keV)": f"{doc['isotopes'][r['isotope']]['recoil_energy_keV']:.1f}",
              "Set": rh.set_label(r["set_name"]), "E_drift (V/cm)": format_number(r["drift_field"]),
              "A_ion ± 1σ (mV·µs)": format_value(r.get("s2_mean"), r.get("s2_mean_err")),
              "N_e ± 1σ (e⁻)": format_value(r.get("N_e_meas"), r.get("dN_e_meas")),
              "r ± 1σ": format_value(r.get("recomb_factor"), r.get("recomb_error")),
              "σ_r stat": format_error(r.get("recomb_error_stat")),
              "Used": "yes" if r.get("used_in_model_fit") else f"no: {r.get('reason')}"} for r in rows]
    rh.show_table(table, caption="Electrons and recombination per isotope and set (values ± 1σ)")
    series, models = _series(rows, doc)
    fig = plot_isotope_recombination(series, models, title=f"Run {run.run_id}: r per isotope")
    rh.show(fig, figures, f"{run.run_id}_recombination_isotopes")
    fits = []
    for iso, d in sorted(doc["isotopes"].items(), key=lambda kv: kv[1]["recoil_energy_keV"]):  # chain order
        for el, f in d["thomas_imel"].items():
            fits.append({"Isotope": iso, "E_R (keV)": f"{d['recoil_energy_keV']:.1f}", "E_EL (V/cm)": el,
                         "a ± 1σ (V/cm)": format_value(f["values"].get("a"), f["errors"].get("a")),
                         "S ± 1σ": format_value(f["values"].get("S"), f["errors"].get("S")),
                         "χ²/ndf": f"{f['chi2']:.2f} / {f['ndf']}" if f.get("chi2") is not None else "—",
                         "Fit": "ok" if f.get("fit_success") else f"FAILED: {f.get('reason')}"})
    rh.show_table(fits, caption="Thomas–Imel fit per isotope (total 1σ)")


def isotope_summary_section(run_ids: Sequence[str], output_dirs: Sequence[str | os.PathLike[str]],
                            figures: str | os.PathLike[str]) -> None:
    """Summary chapter: r against drift field per isotope for every alpha-tagged run (nothing when none)."""
    series, models = {}, {}
    for rid, folder in zip(run_ids, output_dirs):
        path = Path(folder) / RESULTS_FILE.format(run_id=rid)
        if not path.is_file():
            continue
        s, m = _series(_iso_rows(folder, rid), read_json(path), prefix=f"{rid} " if len(run_ids) > 1 else "")
        series.update(s)
        models.update(m)
    if not series:
        return
    rh.show_markdown("## Recombination per isotope\n\nAlpha-tagged runs: r against drift field for each tagged "
                     "isotope (recoil energies 96.8–168.9 keV), with the Thomas–Imel fits.")
    fig = plot_isotope_recombination(series, models, title="Recombination per isotope")
    rh.show(fig, figures, "summary_recombination_isotopes")
