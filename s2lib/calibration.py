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
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from . import physics
from .errors import ConfigError, DataError
from .fitting import Z95, FitConfig, FitResult, fit_histogram
from .recombination import ModelFit, fit_recombination_model, recombination_table

if TYPE_CHECKING:  # pragma: no cover
    from .runs import Run
    from .store import S2Areas

__all__ = [
    "SCHEMA_VERSION", "SOURCE_FIT", "SOURCE_FILE", "SOURCE_VALUE", "S2_VS_DRIFT_COLUMNS", "RECOMB_COLUMNS",
    "GS2Entry", "CalibrationResults", "el_key", "xray_gs2", "load_external_gs2", "gs2_from_value",
    "assign_gs2", "calibrate_and_analyze", "run_calibration_analysis",
]

SCHEMA_VERSION: Final = 1
SOURCE_FIT: Final = "fit of this run"
SOURCE_FILE: Final = "external file"
SOURCE_VALUE: Final = "given value"
S2_VS_DRIFT_COLUMNS: Final = ("set_name", "drift_field", "el_field", "s2_mean", "s2_mean_err", "s2_ci95",
                              "s2_sigma", "fit_success", "n_events")
"""``<run_id>_s2_vs_drift.csv``: fields V/cm, areas mV·µs; s2_mean_err is 1σ, s2_ci95 the 95 % half-width."""
RECOMB_COLUMNS: Final = S2_VS_DRIFT_COLUMNS + (
    "g_S2", "d_g_S2", "N_e_meas", "dN_e_meas", "recomb_factor", "recomb_error", "recomb_error_stat",
    "recomb_error_gs2", "recomb_ci95", "dN_e_meas_stat", "dN_e_meas_gs2", "norm_A_ion", "dnorm_A_ion",
    "gs2_source", "used_in_model_fit", "reason")
"""``<run_id>_recomb_factors.csv``: recomb_error is the total 1σ (stat ⊕ g_S2), recomb_ci95 = 1.96·recomb_error."""


def el_key(el_field_V_cm: float) -> float:
    """The EL-field group of a set: the field rounded to 1 V/cm."""
    return float(round(float(el_field_V_cm)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _num(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


@dataclass(frozen=True)
class GS2Entry:
    """g_S2 for one EL field, with where it comes from.

    Attributes:
        el_field_V_cm: EL field group (1 V/cm) of the run's sets using it; for an external entry not yet
            assigned, the EL field at which it was measured (None if unknown).
        A_x, dA_x: mean X-ray S2 area and its 1σ error, mV·µs (for a given value: g_S2·N_x, derived).
        N_x: E_x / W, electrons.  g_S2, d_g_S2: gain and 1σ error, mV·µs/e⁻.
        source: ``SOURCE_FIT``, ``SOURCE_FILE`` or ``SOURCE_VALUE``.  n_xrays: X-ray events in the fit range.
        fit_success, reason: whether it can be used, and why not.
        calibration_el_field_V_cm: EL field at which g_S2 was measured (None if the source does not say).
        sets: the run's sets using it.  provenance: file path, sha256, run id... of an external source.
        xray_fit: the X-ray histogram fit (this run's fits).  el_mismatch_allowed: applied at another EL field.
    """

    el_field_V_cm: float | None
    A_x: float
    dA_x: float
    N_x: float
    g_S2: float
    d_g_S2: float
    source: str
    n_xrays: int = 0
    fit_success: bool = False
    reason: str = ""
    calibration_el_field_V_cm: float | None = None
    W_eV: float = physics.W_VALUE_EV
    E_x_eV: float = physics.E_XRAY_EV
    sets: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    xray_fit: FitResult | None = None
    el_mismatch_allowed: bool = False

    @property
    def usable(self) -> bool:
        """Whether g_S2 can be applied: a successful source, finite positive g_S2, finite error."""
        return bool(self.fit_success and np.isfinite(self.g_S2) and self.g_S2 > 0 and np.isfinite(self.d_g_S2))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN → None) with units."""
        return {"el_field_V_cm": _num(self.el_field_V_cm), "A_x": _num(self.A_x), "dA_x": _num(self.dA_x),
                "A_x_ci95": _num(Z95 * self.dA_x), "N_x": _num(self.N_x), "g_S2": _num(self.g_S2),
                "d_g_S2": _num(self.d_g_S2), "source": self.source, "n_xrays": int(self.n_xrays),
                "fit_success": bool(self.fit_success), "reason": self.reason,
                "calibration_el_field_V_cm": _num(self.calibration_el_field_V_cm), "W_eV": _num(self.W_eV),
                "E_x_eV": _num(self.E_x_eV), "sets": list(self.sets), "provenance": dict(self.provenance),
                "el_mismatch_allowed": bool(self.el_mismatch_allowed),
                "xray_fit": self.xray_fit.to_dict() if self.xray_fit is not None else None,
                "units": {"el_field_V_cm": "V/cm", "A_x": "mV·µs", "dA_x": "mV·µs (1σ)",
                          "A_x_ci95": "mV·µs (95 % half-width)", "N_x": "e⁻", "g_S2": "mV·µs/e⁻",
                          "d_g_S2": "mV·µs/e⁻ (1σ)"}}


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


def load_external_gs2(path: str | Path, *, W_eV: float, E_x_eV: float,
                      el_field_V_cm: float | None = None) -> list[GS2Entry]:
    """Read g_S2 from another run's calibration file, recording its provenance.

    Formats: our ``<run_id>_calibration.json`` (key ``gs2_by_el_field``; one entry per EL field, EL field and
    run id known) or the lab's ``xray_calibration_results.json`` (keys ``Wi``, ``A_x_mean``, ``dA_x_mean``,
    ``gs2``, ``d_gs2``; it does not record its EL field: give ``el_field_V_cm`` — the lab's file is RUN21,
    EL 2375 V/cm). If the file's W differs from ``W_eV``, g_S2 is rescaled by W_eV/W_file (g_S2 = A_x·W/E_x)
    and this is recorded.
    """
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise ConfigError("calibration.gs2_path", f"calibration file {p} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError("calibration.gs2_path", f"{p} is not a JSON calibration file: {exc}") from None
    prov = {"path": str(p), "sha256": _sha256(p)}
    n_x = float(physics.expected_electrons(E_x_eV, W_eV))
    out: list[GS2Entry] = []
    if isinstance(data, dict) and "gs2_by_el_field" in data:
        w_file = (data.get("constants", {}).get("W_eV") or {}).get("value")
        scale = W_eV / w_file if w_file else 1.0
        for item in data["gs2_by_el_field"]:
            el = item.get("calibration_el_field_V_cm", item.get("el_field_V_cm"))  # where it was measured
            pv = {**prov, "format": "s2book calibration.json", "run_id": data.get("run_id"),
                  "schema_version": data.get("schema_version"), "el_field_V_cm": el, "W_eV_file": w_file,
                  "rescaled_for_W": scale != 1.0, "source_in_file": item.get("source"),
                  "origin": item.get("provenance") or None}
            g, dg = float(item["g_S2"] or math.nan) * scale, float(item["d_g_S2"] or math.nan) * scale
            a_x, da_x = item.get("A_x"), item.get("dA_x")
            out.append(GS2Entry(el, float(a_x) if a_x is not None else g * n_x,
                                float(da_x) if da_x is not None else dg * n_x, n_x, g, dg, SOURCE_FILE,
                                int(item.get("n_xrays") or 0), bool(item.get("fit_success")),
                                str(item.get("reason") or ""), el, W_eV, E_x_eV, (), pv))
    elif isinstance(data, dict) and "gs2" in data:
        w_file = data.get("Wi")
        scale = W_eV / float(w_file) if w_file else 1.0
        g = float(data["gs2"]) * scale
        dg = float(data.get("d_gs2", math.nan)) * scale
        pv = {**prov, "format": "lab xray_calibration_results.json", "run_id": data.get("run_id"),
              "el_field_V_cm": el_field_V_cm, "el_field_from": "caller/configuration" if el_field_V_cm else None,
              "W_eV_file": w_file, "gs2_file": data["gs2"], "d_gs2_file": data.get("d_gs2"),
              "rescaled_for_W": scale != 1.0}
        a_x, da_x = data.get("A_x_mean"), data.get("dA_x_mean")
        out.append(GS2Entry(el_field_V_cm, float(a_x) if a_x is not None else g * n_x,
                            float(da_x) if da_x is not None else dg * n_x, n_x, g, dg, SOURCE_FILE, 0,
                            bool(np.isfinite(g) and np.isfinite(dg)), "" if np.isfinite(dg) else "no d_gs2 in file",
                            el_field_V_cm, W_eV, E_x_eV, (), pv))
    else:
        raise ConfigError("calibration.gs2_path", f"{p}: neither an s2book calibration.json (gs2_by_el_field) "
                          "nor the lab's xray_calibration_results.json (gs2, d_gs2)")
    return out


def gs2_from_value(g_S2: float, d_g_S2: float, *, W_eV: float, E_x_eV: float, el_field_V_cm: float | None = None,
                   provenance: str = "") -> GS2Entry:
    """A directly given g_S2 ± d_g_S2 (mV·µs/e⁻); A_x = g_S2·N_x is derived for the normalised plots."""
    n_x = float(physics.expected_electrons(E_x_eV, W_eV))
    ok = bool(np.isfinite(g_S2) and g_S2 > 0 and np.isfinite(d_g_S2) and d_g_S2 >= 0)
    return GS2Entry(el_field_V_cm, g_S2 * n_x, d_g_S2 * n_x, n_x, float(g_S2), float(d_g_S2), SOURCE_VALUE, 0,
                    ok, "" if ok else "invalid g_S2 value", el_field_V_cm, W_eV, E_x_eV, (),
                    {"given": provenance or "given value", "el_field_V_cm": el_field_V_cm})


def assign_gs2(set_el: Mapping[str, float], entries: Sequence[GS2Entry], *,
               allow_el_mismatch: bool = False) -> dict[float, GS2Entry]:
    """Match external/given g_S2 entries to the EL-field groups of the sets; returns EL key → entry.

    An entry applies to a group when its measured EL field rounds to the group's. Otherwise (another EL
    field, or unknown) a ``ConfigError`` is raised unless ``allow_el_mismatch``; then the entry with the
    nearest EL field (or the only one) is used and ``el_mismatch_allowed`` is set on it.
    """
    groups: dict[float, list[str]] = {}
    for name, el in set_el.items():
        groups.setdefault(el_key(el), []).append(name)
    out: dict[float, GS2Entry] = {}
    for key, names in sorted(groups.items()):
        match = [e for e in entries if e.calibration_el_field_V_cm is not None
                 and el_key(e.calibration_el_field_V_cm) == key]
        mismatch = False
        if not match:
            if not allow_el_mismatch:
                known = sorted({e.calibration_el_field_V_cm for e in entries}, key=lambda v: (v is None, v or 0))
                where = ", ".join("unknown" if v is None else f"{v:g} V/cm" for v in known)
                src = "; ".join(str(e.provenance.get("path") or e.provenance.get("given") or e.source) for e in entries)
                raise ConfigError(
                    "calibration.allow_el_mismatch",
                    f"g_S2 from {src} was measured at EL field {where}, but set(s) {', '.join(names)} are at "
                    f"EL {key:g} V/cm. g_S2 depends strongly on the EL field (0.00359 at 2375 vs 0.0140 "
                    "mV·µs/e⁻ at 3375 V/cm), so it is not applied. Use a calibration at this EL field, state the "
                    "file's EL field (gs2_el_field_V_cm) if it is not recorded, or set allow_el_mismatch=True "
                    "to apply it anyway.")
            with_el = [e for e in entries if e.calibration_el_field_V_cm is not None]
            match = sorted(with_el, key=lambda e: abs(e.calibration_el_field_V_cm - key))[:1] or list(entries[:1])
            mismatch = True
        out[key] = dataclasses.replace(match[0], el_field_V_cm=key, sets=tuple(names), el_mismatch_allowed=mismatch)
    return out


@dataclass(frozen=True)
class CalibrationResults:
    """Calibration of one run (returned with the per-set arrays by ``calibrate_and_analyze``).

    Attributes:
        run_id: the run.  entries: one ``GS2Entry`` per EL field group, ascending.
        N_e_exp: expected recoil electrons E_R/W.  E_R_keV, W_eV, E_x_eV: constants used.  isotope: source.
        set_el_field: set name → EL key whose entry it used.  model_fits: EL key → model name → ``ModelFit``.
        constants: the constants with units and provenance (as in the JSON).
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


def _external_entries(run: Run, gs2: Any, W: float, E_x: float, el: float | None) -> list[GS2Entry] | None:
    """The g_S2 entries of an explicit/configured source, or None to calibrate with this run's X-rays."""
    cal = run.config.calibration
    if gs2 is None:
        if cal.gs2_path is not None:
            gs2 = cal.gs2_path
        elif cal.gs2 is not None:
            return [gs2_from_value(cal.gs2, cal.d_gs2, W_eV=W, E_x_eV=E_x, el_field_V_cm=el,
                                   provenance=cal.provenance or "")]
        else:
            return None
    items = gs2 if isinstance(gs2, list) else [gs2]
    out: list[GS2Entry] = []
    for item in items:
        if isinstance(item, GS2Entry):
            out.append(item)
        elif isinstance(item, (str, Path)):
            out.extend(load_external_gs2(item, W_eV=W, E_x_eV=E_x, el_field_V_cm=el))
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(gs2_from_value(float(item[0]), float(item[1]), W_eV=W, E_x_eV=E_x, el_field_V_cm=el))
        else:
            raise TypeError(f"gs2: expected a path, (g_S2, d_g_S2), a GS2Entry or a list of them, got {item!r}")
    return out


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
    """
    say = print if verbose else (lambda *a, **k: None)
    const, iso, W, E_x, E_R, n_exp = _constants(run)
    out_dir = Path(out_dir) if out_dir is not None else Path(run.output_dir)
    set_el = {s.name: float(s.el_field_V_cm) for s in run.sets}
    allow = bool(getattr(run.config.calibration, "allow_el_mismatch", False) if allow_el_mismatch is None
                 else allow_el_mismatch)
    el_given = gs2_el_field_V_cm if gs2_el_field_V_cm is not None else getattr(run.config.calibration,
                                                                                "gs2_el_field", None)
    xcfg = _fit_config(xray_fit_config if xray_fit_config is not None else run.config.xray, FitConfig(
        bin_cuts=(0.6, 20.0), nbins=100))
    external = _external_entries(run, gs2, W, E_x, el_given)

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
                                       say=say)
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
    _write(out_dir, run.run_id, rows, results, getattr(run.config, "raw_data_path", None))
    if flag_plot or save_plots:
        _figures(run, results, arrays, out_dir / "figures" if save_plots else None, flag_plot)
    return results, arrays


def _write(out_dir: Path, run_id: str, rows: list[dict[str, Any]], results: CalibrationResults,
           raw_root: Path | None) -> None:
    from .store import write_csv_atomic, write_json_atomic

    write_csv_atomic(out_dir / f"{run_id}_s2_vs_drift.csv", rows, list(S2_VS_DRIFT_COLUMNS), raw_root=raw_root)
    write_csv_atomic(out_dir / f"{run_id}_recomb_factors.csv", rows, list(RECOMB_COLUMNS), raw_root=raw_root)
    write_json_atomic(out_dir / f"{run_id}_calibration.json", results.to_dict(), raw_root=raw_root)


def _figures(run: Run, results: CalibrationResults, arrays: Mapping[str, NDArray[Any]], fig_dir: Path | None,
             keep: bool) -> list[Any]:
    """X-ray histogram with fit, N_e and r vs field with model curves (1σ band), normalised S2 vs drift,
    one of each per EL field; saved as PNG + PDF in ``fig_dir`` (if given), closed unless ``keep``."""
    from . import plotting

    figs, rid = [], run.run_id
    means = {str(n): {"mean": a, "ci95": c, "fit_success": bool(ok)} for n, a, c, ok in
             zip(arrays["set_name"], arrays["A_ion"], arrays["A_ion_ci95"], arrays["fit_success"])}
    for e in results.entries:
        tag = f"EL{e.el_field_V_cm:g}"
        if e.xray_fit is not None:
            figs.append(plotting.plot_xray_hist(e.xray_fit, title=f"Run {rid}: X-rays, EL {e.el_field_V_cm:g} V/cm",
                                                out_dir=fig_dir, name=f"{rid}_xray_hist_{tag}"))
        sel = arrays["el_key"] == e.el_field_V_cm
        fits = results.model_fits.get(e.el_field_V_cm, {})
        models = {m: (f.evaluate, f"{m.replace('_', '–')} fit" + ("" if f.fit_success else " (NOT OK)"))
                  for m, f in fits.items() if np.all(np.isfinite(list(f.values.values())))}
        fig = plotting.plot_recombination(
            arrays["drift_field"][sel], arrays["N_e_meas"][sel], arrays["dN_e_meas"][sel], arrays["r"][sel],
            arrays["dr"][sel], models=models, N_exp=results.N_e_exp, interval="1σ (stat ⊕ g_S2)",
            title=f"Run {rid}, EL {e.el_field_V_cm:g} V/cm: g_S2 = {e.g_S2:.4g} ± {e.d_g_S2:.2g} mV·µs/e⁻ ({e.source})")
        xs = arrays["drift_field"][sel]
        if xs.size and np.any(np.isfinite(xs)):
            grid = np.linspace(np.nanmin(xs), np.nanmax(xs), 200)
            for m in models:
                _, lo, hi = fits[m].band(grid)
                fig.axes[1].fill_between(grid, lo, hi, alpha=0.2, lw=0)
        if fig_dir is not None:
            plotting.save_figure(fig, fig_dir, f"{rid}_recombination_{tag}")
        figs.append(fig)
        if e.usable and np.isfinite(e.A_x):
            sub = run.with_sets(e.sets) if hasattr(run, "with_sets") else run
            figs.append(plotting.plot_s2_vs_drift(
                sub, {n: means[n] for n in e.sets}, normalized=True, A_x=e.A_x, dA_x=Z95 * e.dA_x,
                out_dir=fig_dir, name=f"{rid}_s2_vs_drift_normalized_{tag}"))
    if not keep:
        for f in figs:
            plotting.close(f)
    return figs


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
