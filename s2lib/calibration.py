"""X-ray calibration of the S2 gain g_S2 (per EL field), recoil electrons and recombination fractions.

Physics (domain.md 1.6; symbols and units):

* N_x = E_x / W electrons from the 12.3 keV X-ray (E_x, W in eV). **Assumption: X-ray charge does not
  recombine.** g_S2 = A_x / N_x [mV·µs/e⁻] with A_x the fitted mean X-ray S2 area [mV·µs], and
  d g_S2 = dA_x / N_x (1σ). The uncertainty of W is not included (W is a fixed constant; in r it cancels
  when the same W is used for X-rays and recoils: r = 1 − (A_ion/A_x)·(E_x/E_R)).
* g_S2 depends strongly on the EL field (0.00359 at 2375 V/cm vs 0.0140 mV·µs/e⁻ at 3375 V/cm), so the sets
  are **grouped by EL field, rounded to 1 V/cm**, and each group gets its own g_S2 from the X-rays of its own
  sets. One g_S2 is never shared across EL fields. Alternatively g_S2 comes from another run's calibration
  file (``calibration.gs2_path``: our ``<run_id>_calibration.json`` or the lab's
  ``xray_calibration_results.json``) or is given as a number (``calibration.gs2``/``d_gs2``); then its
  provenance (path, sha256, run id and EL field when known) is recorded, and it is **refused** for sets at
  another EL field (or when its EL field is unknown) unless ``allow_el_mismatch`` is set.
* Recoil: N_e = A_ion / g_S2, r = 1 − N_e / N_exp with N_exp = E_R / W for the run's isotope
  (E_R = 96.8 keV for Th228, 103.4 keV for Ra224, from the configuration; ``physics.recoil_energy_keV``).
  Errors: 1σ of A_ion (the fit's ``mean_err``; the CSV's ``s2_ci95`` is the 95 % half-width = 1.96·1σ and is
  not what is propagated) and of g_S2, independent, in quadrature
  (``recombination.electrons_and_recombination``). Within one EL group the g_S2 error is fully correlated;
  the model fits therefore use the statistical errors and propagate the common g_S2 scale separately
  (``recombination.fit_recombination_model``).

Ion S2 means from disk (``ion_fitted_areas=None``) come from ``store.load_s2area`` of each set folder:
a stored :class:`~s2lib.fitting.FitResult` is used as is; the lab's old ``s2_results.json`` (mean, ci95, no
fit object) is used with ``mean_err = ci95 / 1.96`` (the old layout stored ci95 = 1.96·stderr); a folder with
only ``s2_areas.npy`` is refitted here with the run's S2 fit options.

The g_S2 record (``GS2Entry``) and the external sources (file, given value, EL-field matching) live in
:mod:`s2lib.gs2_sources` and are re-exported here; this module fits this run's X-rays and orchestrates.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from . import physics
from .alpha.recoil import calibration_rows   # per-isotope rows of alpha-tagged runs ([] otherwise)
from .errors import DataError
from .fitting import Z95, FitConfig, fit_histogram
from .gs2_sources import (SOURCE_FILE, SOURCE_FIT, SOURCE_VALUE, GS2Entry, assign_gs2, el_key, external_entries,
                          gs2_from_value, load_external_gs2)
from .recombination import ModelFit, fit_recombination_model, recombination_table
from .report_format import format_value

if TYPE_CHECKING:  # pragma: no cover
    from .runs import Run
    from .store import S2Areas

__all__ = [
    "SCHEMA_VERSION", "FIGURE_KINDS", "SOURCE_FIT", "SOURCE_FILE", "SOURCE_VALUE", "S2_VS_DRIFT_COLUMNS", "RECOMB_COLUMNS",
    "GS2Entry", "CalibrationResults", "el_key", "xray_gs2", "load_external_gs2", "gs2_from_value",
    "assign_gs2", "calibrate_and_analyze", "run_calibration_analysis",
]

SCHEMA_VERSION: Final = 1
S2_VS_DRIFT_COLUMNS: Final = ("set_name", "drift_field", "el_field", "s2_mean", "s2_mean_err", "s2_ci95",
                              "s2_sigma", "fit_success", "quality", "n_events")
"""``<run_id>_s2_vs_drift.csv``: fields V/cm, areas mV·µs; s2_mean_err is 1σ, s2_ci95 the 95 % half-width."""
RECOMB_COLUMNS: Final = S2_VS_DRIFT_COLUMNS + (
    "g_S2", "d_g_S2", "N_e_meas", "dN_e_meas", "recomb_factor", "recomb_error", "recomb_error_stat",
    "recomb_error_gs2", "recomb_ci95", "dN_e_meas_stat", "dN_e_meas_gs2", "norm_A_ion", "dnorm_A_ion",
    "gs2_source", "used_in_model_fit", "reason", "isotope")
"""``<run_id>_recomb_factors.csv``: recomb_error total 1σ, recomb_ci95 = 1.96·recomb_error; isotope all|tagged."""
FIGURE_KINDS: Final = ("xray_hist", "recombination", "s2_vs_drift_normalized")
"""The figures made per EL field (``CalibrationResults.figure``)."""


def _figure_key(kind: str, el_field_V_cm: float) -> str:
    return f"{kind}_EL{el_key(el_field_V_cm):g}"


def xray_gs2(areas: NDArray[np.float64], el_field_V_cm: float, fit_config: FitConfig, *, W_eV: float,
             E_x_eV: float, sets: Sequence[str] = ()) -> GS2Entry:
    """Fit the accepted X-ray areas (mV·µs) of one EL field; g_S2 = A_x/(E_x/W), d g_S2 = dA_x/(E_x/W)."""
    n_x = float(physics.expected_electrons(E_x_eV, W_eV))
    key = el_key(el_field_V_cm)
    values = np.asarray(areas, dtype=float)
    if values.size == 0:
        return GS2Entry(key, math.nan, math.nan, n_x, math.nan, math.nan, SOURCE_FIT, 0, False,
                        f"no X-ray areas in the sets at EL {key:g} V/cm", key, W_eV, E_x_eV, tuple(sets))
    fit = fit_histogram(values, fit_config, label=f"X-rays EL {key:g} V/cm")
    return GS2Entry(key, fit.mean, fit.mean_err, n_x, fit.mean / n_x, fit.mean_err / n_x, SOURCE_FIT,
                    fit.n_in_range, fit.fit_success, fit.reason, key, W_eV, E_x_eV, tuple(sets),
                    {"n_sets": len(sets), "fit_config": fit_config.to_dict()}, fit)


@dataclass(frozen=True)
class CalibrationResults:
    """Calibration of one run (returned with the per-set arrays by ``calibrate_and_analyze``).

    Attributes:
        run_id: the run.  entries: one ``GS2Entry`` per EL field group, ascending.
        N_e_exp: expected recoil electrons E_R/W.  E_R_keV, W_eV, E_x_eV: constants used.  isotope: source.
        set_el_field: set name → EL key whose entry it used.  model_fits: EL key → model name → ``ModelFit``.
        constants: the constants with units and provenance (as in the JSON).
        figures: the saved figure files, ``"<kind>_EL<field>"`` → ``{"png": Path, "pdf": Path}`` (empty when
            not saved); look one up with :meth:`figure`. Not part of the JSON.
    """

    run_id: str
    entries: tuple[GS2Entry, ...]
    N_e_exp: float
    E_R_keV: float
    W_eV: float
    E_x_eV: float
    isotope: str
    set_el_field: dict[str, float] = field(default_factory=dict)
    model_fits: dict[float, dict[str, ModelFit]] = field(default_factory=dict)
    constants: dict[str, Any] = field(default_factory=dict)
    figures: dict[str, dict[str, Path]] = field(default_factory=dict, compare=False)

    def figure(self, kind: str, el_field_V_cm: float) -> dict[str, Path] | None:
        """The saved files ``{"png": path, "pdf": path}`` of one figure of this calibration, or None when it
        was not made (no X-ray fit, no usable g_S2) or not saved. ``kind``: one of ``FIGURE_KINDS``
        ("xray_hist", "recombination", "s2_vs_drift_normalized")."""
        if kind not in FIGURE_KINDS:
            raise ValueError(f"unknown figure kind {kind!r}; known: {', '.join(FIGURE_KINDS)}")
        return self.figures.get(_figure_key(kind, el_field_V_cm))

    def entry_for(self, el_field_V_cm: float) -> GS2Entry:
        """The g_S2 entry of an EL field (rounded to 1 V/cm); ``KeyError`` if the run has none there."""
        for e in self.entries:
            if e.el_field_V_cm == el_key(el_field_V_cm):
                return e
        raise KeyError(f"no g_S2 for EL {el_field_V_cm:g} V/cm; have {[e.el_field_V_cm for e in self.entries]}")

    def _single(self) -> GS2Entry:
        if len(self.entries) != 1:
            raise ValueError(f"run {self.run_id} has {len(self.entries)} EL fields: use entry_for(el_field)")
        return self.entries[0]

    @property
    def g_S2(self) -> float:
        """g_S2 (mV·µs/e⁻) when the run has one EL field (the seed's attribute); ValueError otherwise."""
        return self._single().g_S2

    @property
    def A_x_mean(self) -> float:
        """A_x (mV·µs) when the run has one EL field (the seed's attribute); ValueError otherwise."""
        return self._single().A_x

    @property
    def N_x(self) -> float:
        """E_x / W, electrons."""
        return float(physics.expected_electrons(self.E_x_eV, self.W_eV))

    def to_dict(self) -> dict[str, Any]:
        """The content of ``<run_id>_calibration.json``."""
        return {"schema_version": SCHEMA_VERSION, "run_id": self.run_id, "isotope": self.isotope,
                "constants": self.constants, "gs2_by_el_field": [e.to_dict() for e in self.entries],
                "set_el_field_V_cm": dict(self.set_el_field),
                "external_sources": [e.provenance for e in self.entries if e.source != SOURCE_FIT],
                "model_fits": {f"{k:g}": {m: f.to_dict() for m, f in v.items()} for k, v in self.model_fits.items()},
                "assumptions": [
                    "X-ray charge does not recombine: g_S2 = A_x / (E_x / W), d_g_S2 = dA_x / (E_x / W)",
                    "W uncertainty not included", "one g_S2 per EL field (rounded to 1 V/cm)",
                    "A_ion and g_S2 errors independent, added in quadrature; errors are 1σ unless named ci95",
                    "model fits use statistical errors; the common g_S2 error of an EL field is propagated "
                    "to the parameters by refitting with g_S2 ± 1σ (errors_gs2)"]}


# --------------------------------------------------------------------------------------------- orchestration
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
    from .store import load_s2area

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
        from .store import load_xrays

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
    from .store import write_csv_atomic, write_json_atomic

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
        if e.xray_fit is not None:
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
