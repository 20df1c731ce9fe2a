"""The seed API's calibration stage: g_S2 per EL field, recoil electrons and recombination fractions of a run,
the three artifacts, and (``flag_plot``/``save_plots``) the figures.

The numbers come from :mod:`s2lib.calib` (:func:`~s2lib.calib.calibration.xray_gs2`, the g_S2 sources,
:func:`~s2lib.calib.recomb_table.recombination_table` and the model fits) and the fits of :mod:`s2lib.stats`;
this module orchestrates them, writes ``<run_id>_s2_vs_drift.csv``, ``<run_id>_recomb_factors.csv`` and
``<run_id>_calibration.json`` atomically, and draws with :mod:`s2lib.analysis.plotting` (it sits in the analysis
layer because it draws; the calibration layer never does). Units: fields V/cm, areas mV·µs, g_S2 mV·µs/e⁻.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from s2lib.calib.calibration import (RECOMB_COLUMNS, S2_VS_DRIFT_COLUMNS, CalibrationResults, _figure_key,
                                     xray_gs2)
from s2lib.calib.gs2_sources import assign_gs2, el_key, external_entries
from s2lib.calib.recombination import ModelFit, fit_recombination_model
from s2lib.calib.recomb_table import recombination_table
from s2lib.errors import DataError
from s2lib.physics import physics
from s2lib.stats.fitting import Z95, FitConfig

from .alpha_recoil import calibration_rows   # per-isotope rows of alpha-tagged runs ([] otherwise)
from .report_format import format_value

if TYPE_CHECKING:  # pragma: no cover
    from s2lib.config.runs import Run
    from s2lib.io.store import S2Areas

__all__ = ["calibrate_and_analyze", "run_calibration_analysis"]

def _constants(run: Run) -> tuple[dict[str, Any], str, float, float, float, float]:
    exp = run.config.experiment
    iso = physics.normalise_isotope(exp.target_isotope)
    W, E_x, E_R = float(exp.W_value), float(exp.E_gamma_xray), float(exp.recoil_energy)
    expected = physics.recoil_energy_keV(iso)
    if abs(E_R - expected) > 0.5:
        warnings.warn(f"run {run.run_id}: configured recoil energy {E_R:g} keV differs from Q·4/A of {iso} "
                      f"({expected:.1f} keV); using the configured value", UserWarning, stacklevel=3)
    src = run.config.source
    const = {
        "W_eV": {"value": W, "unit": "eV", "source": f"experiment.W_value ({src or 'configuration'})"},
        "E_x_eV": {"value": E_x, "unit": "eV", "source": "experiment.E_gamma_xray"},
        "E_R_keV": {"value": E_R, "unit": "keV", "source": getattr(exp, "recoil_energy_source", "configuration")},
        "N_e_exp": {"value": E_R * 1e3 / W, "unit": "e⁻", "source": "E_R / W"},
        "N_x": {"value": E_x / W, "unit": "e⁻", "source": "E_x / W"},
        "isotope": {"value": iso, "unit": "", "source": "experiment.target_isotope"},
    }
    return const, iso, W, E_x, E_R, float(physics.expected_electrons(E_R * 1e3, W))


def _load_ion(run: Run, say: Any) -> dict[str, Any]:
    """Set name → ``S2Areas`` from disk, or the error text for a set whose files are missing or unreadable."""
    from s2lib.stats.fit_store import load_s2area

    out: dict[str, Any] = {}
    for s in run.sets:
        try:
            out[s.name] = load_s2area(run.set_output_dir(s.name))
        except DataError as exc:
            out[s.name] = f"not loaded: {exc}"
            say(f"      {s.name}: {out[s.name]}")
    return out


def _fit_config(obj: Any, default: FitConfig) -> FitConfig:
    if obj is None:
        return default
    if isinstance(obj, FitConfig):
        return obj
    if dataclasses.is_dataclass(obj):
        obj = dataclasses.asdict(obj)
    known = {f.name for f in dataclasses.fields(FitConfig)}
    return FitConfig.from_mapping({k: v for k, v in dict(obj).items() if k in known})


def calibrate_and_analyze(
    run: Run, ion_fitted_areas: Mapping[str, S2Areas] | None = None, *, xray_fit_config: FitConfig | None = None,
    gs2: Any = None, gs2_el_field_V_cm: float | None = None, allow_el_mismatch: bool | None = None,
    ion_fit_config: FitConfig | None = None, models: Sequence[str] = ("thomas_imel", "empirical"),
    flag_plot: bool = False, save_plots: bool = True, out_dir: str | Path | None = None, verbose: bool = True,
) -> tuple[CalibrationResults, dict[str, NDArray[Any]]]:
    """g_S2 per EL field, recoil electrons and recombination fractions of a run; writes the three artifacts.

    Args:
        run: the ``Run`` (sets with drift and EL fields; configuration with constants and calibration source).
        ion_fitted_areas: set name → ``S2Areas`` with fits; None loads every set from disk (``load_s2area``).
        xray_fit_config: X-ray fit options; default from ``run.config.xray`` (bin_cuts (0.6, 20) mV·µs,
            100 bins, gauss).
        gs2: g_S2 source overriding the configuration: a calibration file path, ``(g_S2, d_g_S2)``, a
            ``GS2Entry`` or a list of them. None: ``run.config.calibration`` (gs2_path, gs2), else this run's
            X-rays.
        gs2_el_field_V_cm: EL field at which an external g_S2 was measured when its source does not record it
            (the lab's file; a given value).
        allow_el_mismatch: apply an external g_S2 at another EL field (default from the configuration, False).
        ion_fit_config: S2 fit options for sets with areas but no fit; default from ``run.config.fitting``.
        models: recombination models fitted per EL field (``recombination.MODELS``).
        flag_plot: make the figures; save_plots: also save them to ``out_dir/figures`` (PNG + PDF).
        out_dir: artifact folder (default ``run.output_dir``).  verbose: print the [i/5] progress lines.

    Returns:
        (``CalibrationResults``, per-set arrays: ``set_name``, ``drift_field``, ``el_field``, ``A_ion``,
        ``dA_ion`` (1σ), ``A_ion_ci95``, ``g_S2``, ``d_g_S2``, ``N_e_meas``, ``dN_e_meas``, ``dN_e_meas_stat``,
        ``dN_e_meas_gs2``, ``r``, ``dr``, ``dr_stat``, ``dr_gs2``, ``r_ci95``, ``norm_A_ion``, ``dnorm_A_ion``,
        ``fit_success``, ``usable``, ``drift_fields`` (seed alias)). All errors 1σ unless named ci95.
        Sets whose S2 fit failed or that have no usable g_S2 are kept (NaN results, ``usable`` False).
        With ``save_plots`` the saved figure files are in ``CalibrationResults.figures``
        (``results.figure("recombination", el_field)`` → ``{"png": path, "pdf": path}``).
    """
    say = print if verbose else (lambda *a, **k: None)
    const, iso, W, E_x, E_R, n_exp = _constants(run)
    out_dir = Path(out_dir) if out_dir is not None else Path(run.output_dir)
    set_el = {s.name: float(s.el_field_V_cm) for s in run.sets}
    allow = bool(getattr(run.config.calibration, "allow_el_mismatch", False) if allow_el_mismatch is None
                 else allow_el_mismatch)
    el_given = gs2_el_field_V_cm if gs2_el_field_V_cm is not None else getattr(run.config.calibration,
                                                                                "gs2_el_field", None)
    xcfg = _fit_config(xray_fit_config if xray_fit_config is not None else run.config.xray, FitConfig())
    external = external_entries(run, gs2, W, E_x, el_given)

    say("[1/5] Loading X-ray results...")
    xrays: dict[float, list[NDArray[np.float64]]] = {}
    if external is None:
        from s2lib.io.store import load_xrays

        for s in run.sets:
            folder = run.set_output_dir(s.name)
            if (folder / "xray_areas.npy").is_file():
                xrays.setdefault(el_key(s.el_field_V_cm), []).append(np.asarray(load_xrays(folder).areas, float))
        for key in sorted({el_key(v) for v in set_el.values()}):
            say(f"      EL {key:g} V/cm: {sum(a.size for a in xrays.get(key, []))} X-ray areas "
                f"from {len(xrays.get(key, []))} set(s)")
    else:
        say("      g_S2 from " + "; ".join(str(e.provenance.get("path") or e.source) for e in external)
            + ": this run's X-rays are not used")

    say("[2/5] Fitting X-ray histogram...")
    if external is None:
        entries = {}
        for key in sorted({el_key(v) for v in set_el.values()}):
            names = tuple(n for n, v in set_el.items() if el_key(v) == key)
            areas = np.concatenate(xrays[key]) if xrays.get(key) else np.zeros(0)
            entries[key] = xray_gs2(areas, key, xcfg, W_eV=W, E_x_eV=E_x, sets=names)
            e = entries[key]
            say(f"      EL {key:g} V/cm: A_x = {e.A_x:.5g} ± {e.dA_x:.2g} mV·µs (1σ), n = {e.n_xrays}"
                + ("" if e.fit_success else f"  FAILED: {e.reason}"))
    else:
        say("      skipped (external g_S2)")
        entries = assign_gs2(set_el, external, allow_el_mismatch=allow)

    say("[3/5] Computing calibration constants...")
    for key, e in entries.items():
        note = " (ALLOWED EL MISMATCH)" if e.el_mismatch_allowed else ""
        say(f"      EL {key:g} V/cm: g_S2 = {e.g_S2:.5g} ± {e.d_g_S2:.2g} mV·µs/e⁻ [{e.source}]{note}; "
            f"N_x = {e.N_x:.1f} e⁻, N_exp = {n_exp:.1f} e⁻ ({iso}, E_R = {E_R:.1f} keV, W = {W:g} eV)")

    if ion_fitted_areas is None:
        say("[4/5] Loading ion S2 fitted areas from disk...")
        ion_fitted_areas = _load_ion(run, say)
    else:
        say(f"[4/5] Using provided ion fitted areas ({len(ion_fitted_areas)} sets)")
        unknown = sorted(set(ion_fitted_areas) - set(set_el))
        if unknown:
            warnings.warn(f"ion_fitted_areas: not sets of run {run.run_id}, ignored: {unknown}", UserWarning, 2)
    icfg = _fit_config(ion_fit_config if ion_fit_config is not None else run.config.fitting, FitConfig())

    say("[5/5] Computing recombination fractions...")
    rows, arrays = recombination_table(run.sets, ion_fitted_areas, lambda el: entries[el_key(el)], icfg, n_exp,
                                       say=say, use_poor_fits=bool(getattr(run.config.calibration,
                                                                           "use_poor_fits", False)))
    model_fits: dict[float, dict[str, ModelFit]] = {}
    for key, e in entries.items():
        sel = (arrays["el_key"] == key) & arrays["usable"]
        rel = e.d_g_S2 / e.g_S2 if e.usable else math.nan
        model_fits[key] = {m: fit_recombination_model(arrays["drift_field"][sel], arrays["r"][sel],
                                                      arrays["dr_stat"][sel], model=m, gs2_rel_err=rel)
                           for m in models}
        for m, f in model_fits[key].items():
            txt = ", ".join(f"{p} = {f.values[p]:.4g} ± {f.errors[p]:.2g}" for p in f.param_names)
            say(f"      EL {key:g} V/cm {m}: {txt}; χ²/ndf = {f.chi2:.2f}/{f.ndf}"
                + ("" if f.fit_success else f"  NOT OK: {f.reason}"))
    results = CalibrationResults(run.run_id, tuple(entries[k] for k in sorted(entries)), n_exp, E_R, W, E_x, iso,
                                 {s: el_key(v) for s, v in set_el.items()}, model_fits, const)
    _write(out_dir, run.run_id, rows, results, getattr(run.config, "raw_data_path", None),
           calibration_rows(run, entries, icfg, W, out_dir=out_dir, say=say))
    if flag_plot or save_plots:
        _, saved = _figures(run, results, arrays, out_dir / "figures" if save_plots else None, flag_plot)
        results = dataclasses.replace(results, figures=saved)
    return results, arrays


def _write(out_dir: Path, run_id: str, rows: list[dict[str, Any]], results: CalibrationResults,
           raw_root: Path | None, iso_rows: Sequence[dict[str, Any]] = ()) -> None:
    from s2lib.io.store import write_csv_atomic, write_json_atomic

    write_csv_atomic(out_dir / f"{run_id}_s2_vs_drift.csv", rows, list(S2_VS_DRIFT_COLUMNS), raw_root=raw_root)
    all_rows = [{**r, "isotope": "all"} for r in rows] + list(iso_rows)
    write_csv_atomic(out_dir / f"{run_id}_recomb_factors.csv", all_rows, list(RECOMB_COLUMNS), raw_root=raw_root)
    write_json_atomic(out_dir / f"{run_id}_calibration.json", results.to_dict(), raw_root=raw_root)


def _figures(run: Run, results: CalibrationResults, arrays: Mapping[str, NDArray[Any]], fig_dir: Path | None,
             keep: bool) -> tuple[list[Any], dict[str, dict[str, Path]]]:
    """X-ray histogram with fit, N_e and r vs field with model curves (1σ bands), normalised S2 vs drift,
    one of each per EL field; saved as PNG + PDF in ``fig_dir`` (if given), closed unless ``keep``.

    Returns the figures and the saved files: ``"<kind>_EL<field>"`` → ``{"png": path, "pdf": path}`` with
    kind one of ``FIGURE_KINDS`` (see ``CalibrationResults.figure``)."""
    from . import plotting
    from ._hist_fit import has_histogram

    figs: list[Any] = []
    saved: dict[str, dict[str, Path]] = {}
    rid = run.run_id

    def add(kind: str, el: float, fig: Any, name: str) -> None:
        figs.append(fig)
        if fig_dir is not None:
            saved[_figure_key(kind, el)] = plotting.save_figure(fig, fig_dir, name)

    means = {str(n): {"mean": a, "ci95": c, "fit_success": bool(ok)} for n, a, c, ok in
             zip(arrays["set_name"], arrays["A_ion"], arrays["A_ion_ci95"], arrays["fit_success"])}
    for e in results.entries:
        tag, el = f"EL{e.el_field_V_cm:g}", e.el_field_V_cm
        # a fit refused before binning (too few X-rays) has no figure; the notebook prints its reason instead
        if e.xray_fit is not None and has_histogram(e.xray_fit):
            add("xray_hist", el, plotting.plot_xray_hist(e.xray_fit, title=f"Run {rid}: X-rays, EL {el:g} V/cm"),
                f"{rid}_xray_hist_{tag}")
        sel = arrays["el_key"] == el
        fits = results.model_fits.get(el, {})
        models = {m: (f.evaluate, f"{m.replace('_', '–')} fit" + ("" if f.fit_success else " (NOT OK)"))
                  for m, f in fits.items() if np.all(np.isfinite(list(f.values.values())))}
        gs2 = format_value(e.g_S2, e.d_g_S2, unit="mV·µs/e⁻")
        fig = plotting.plot_recombination(
            arrays["drift_field"][sel], arrays["N_e_meas"][sel], arrays["dN_e_meas"][sel], arrays["r"][sel],
            arrays["dr"][sel], models=models, bands={m: fits[m].band for m in models}, N_exp=results.N_e_exp,
            interval="1σ (stat ⊕ g_S2)", title=f"Run {rid}, EL {el:g} V/cm: g_S2 = {gs2} ({e.source})")
        add("recombination", el, fig, f"{rid}_recombination_{tag}")
        if e.usable and np.isfinite(e.A_x):
            sub = run.with_sets(e.sets) if hasattr(run, "with_sets") else run
            add("s2_vs_drift_normalized", el, plotting.plot_s2_vs_drift(
                sub, {n: means[n] for n in e.sets}, normalized=True, A_x=e.A_x, dA_x=Z95 * e.dA_x),
                f"{rid}_s2_vs_drift_normalized_{tag}")
    if not keep:
        for f in figs:
            plotting.close(f)
    return figs, saved


def run_calibration_analysis(
    run: Run, ion_fitted_areas: Mapping[str, S2Areas] | None = None, xray_bin_cuts: tuple[float, float] = (0.6, 20),
    xray_nbins: int = 100, flag_plot: bool = True, save_plots: bool = True, *, xray_model: str = "gauss",
    **kwargs: Any,
) -> tuple[CalibrationResults, dict[str, NDArray[Any]]]:
    """The seed's entry point: X-ray fit options as arguments, then ``calibrate_and_analyze``.

    ``xray_bin_cuts`` (mV·µs), ``xray_nbins`` and ``xray_model`` ("gauss" or "gauss_bg") build the X-ray
    ``FitConfig``; ``flag_plot`` makes the figures, ``save_plots`` writes them to ``<output_dir>/figures``.
    Other keyword arguments go to ``calibrate_and_analyze`` (``gs2``, ``allow_el_mismatch``, ``verbose`` ...).
    """
    cfg = FitConfig(bin_cuts=tuple(xray_bin_cuts), nbins=int(xray_nbins), model=xray_model)
    return calibrate_and_analyze(run, ion_fitted_areas, xray_fit_config=cfg, flag_plot=flag_plot,
                                 save_plots=save_plots, **kwargs)
