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
a stored :class:`~s2lib.stats.fitting.FitResult` is used as is; the lab's old ``s2_results.json`` (mean, ci95, no
fit object) is used with ``mean_err = ci95 / 1.96`` (the old layout stored ci95 = 1.96·stderr); a folder with
only ``s2_areas.npy`` is refitted here with the run's S2 fit options.

The g_S2 record (``GS2Entry``) and the external sources (file, given value, EL-field matching) live in
:mod:`s2lib.calib.gs2_sources` and are re-exported here; this module fits this run's X-rays. The stage that orchestrates, writes the artifacts and
draws is :mod:`s2lib.analysis.calibrate_stage`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Sequence

import numpy as np
from numpy.typing import NDArray

from s2lib.physics import physics
from s2lib.stats.fitting import FitConfig, fit_histogram

from .gs2_sources import (SOURCE_FILE, SOURCE_FIT, SOURCE_VALUE, GS2Entry, assign_gs2, el_key,  # noqa: F401
                          gs2_from_value, load_external_gs2)
from .recombination import ModelFit

__all__ = [
    "SCHEMA_VERSION", "FIGURE_KINDS", "SOURCE_FIT", "SOURCE_FILE", "SOURCE_VALUE", "S2_VS_DRIFT_COLUMNS", "RECOMB_COLUMNS",
    "GS2Entry", "CalibrationResults", "el_key", "xray_gs2", "load_external_gs2", "gs2_from_value",
    "assign_gs2",
]

SCHEMA_VERSION: Final = 1
S2_VS_DRIFT_COLUMNS: Final = ("set_name", "drift_field", "el_field", "s2_mean", "s2_mean_err", "s2_ci95",
                              "s2_sigma", "fit_success", "quality", "n_events")
"""``<run_id>_s2_vs_drift.csv``: fields V/cm, areas mV·µs; s2_mean_err is 1σ, s2_ci95 the 95 % half-width."""
RECOMB_COLUMNS: Final = S2_VS_DRIFT_COLUMNS + (
    "g_S2", "d_g_S2", "N_e_meas", "dN_e_meas", "recomb_factor", "recomb_error", "recomb_error_stat",
    "recomb_error_gs2", "recomb_ci95", "dN_e_meas_stat", "dN_e_meas_gs2", "norm_A_ion", "dnorm_A_ion",
    "gs2_source", "used_in_model_fit", "reason")
"""``<run_id>_recomb_factors.csv``: recomb_error is the total 1σ (stat ⊕ g_S2), recomb_ci95 = 1.96·recomb_error."""
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
