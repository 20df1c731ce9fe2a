"""The ``truth.json`` document of a simulated run: model expectations, realised sample statistics, definitions.

Split from :mod:`s2lib.sim.simulate` (which writes the files). Two kinds of truth numbers are kept, and
``TRUTH_DEFINITIONS`` (written into the file as ``definitions``) says which is which:

* model expectations (``recoil_mean_area_mV_us`` = g_S2·N_e_mean, ``xray_mean_area_mV_us`` = g_S2·N_x, ``g_S2``,
  ``one_minus_r``): the parameters that an estimator's 1σ error refers to, used for pulls;
* realised sample means of the generated events (``recoil_sample_mean_area_mV_us``, ``xray_sample_*``,
  ``xray_by_el_field``, ``one_minus_r_realised``) with their standard errors σ/√n: what an exact estimator of this
  data set gives, used for the bias of a closure test.

Areas are the photoelectron areas of the named S2 only (no stray photoelectrons, no pile-up, no noise), mV·µs.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _sim_model as M
from s2lib.physics import physics

if TYPE_CHECKING:  # pragma: no cover
    from .profile import SimulationProfile

__all__ = ["TRUTH_DEFINITIONS", "truth_document", "field_key"]


def field_key(value: float) -> str:
    return f"{value:g}"


TRUTH_DEFINITIONS: dict[str, str] = {
    "recoil_mean_area_mV_us": "model expectation of the recoil S2 photoelectron area, g_S2·N_e_mean (mV·µs): the "
                              "parameter a recoil estimator's 1σ error refers to (closure pulls)",
    "recoil_sample_mean_area_mV_us": "REALISED mean, over the set's recoil frames (X-ray frames included), of the "
                                     "recoil S2 photoelectron area only: no stray photoelectrons, no X-ray pile-up, "
                                     "no S1, no noise (mV·µs); _err = sample σ/√n",
    "recoil_window_sample_mean_area_mV_us": "realised mean, over recoil frames, of ALL photoelectron area inside "
                                            "the expected S2 window (stray, X-ray pile-up, S1 tail included)",
    "xray_mean_area_mV_us": "model expectation of the X-ray S2 photoelectron area g_S2·N_x (mV·µs), per EL field",
    "xray_sample_mean_area_mV_us": "REALISED mean X-ray S2 photoelectron area over every X-ray frame (selected "
                                   "by the analysis or not), per set; xray_by_el_field pools the sets of a field",
    "g_S2": "model g_S2 (mV·µs/e⁻) per EL field; xray_by_el_field.g_S2_realised = realised X-ray mean / N_x",
    "one_minus_r": "model 1 − r (Thomas–Imel) = N_e_mean / N_exp",
    "one_minus_r_realised": "recoil_sample_mean_area / g_S2_realised(EL) / N_exp: what an exact recoil and an "
                            "exact X-ray mean of this data give; _err from both realised standard errors",
    "one_minus_r_electrons_realised": "realised mean recoil electron count / N_exp",
}
"""Which quantity each truth number of ``truth.json`` is (also written into the file as ``definitions``)."""


def _pooled_xrays(models: list[M.SetModel], xray_areas: Mapping[str, np.ndarray] | None, n_x: float
                  ) -> dict[str, dict[str, Any]]:
    """Realised X-ray statistics per EL field, pooled over the sets of that field."""
    out: dict[str, dict[str, Any]] = {}
    for el in sorted({m.el_field_V_cm for m in models}):
        names = [m.name for m in models if m.el_field_V_cm == el]
        values = np.concatenate([np.asarray(xray_areas[n], float) for n in names]) if xray_areas else np.zeros(0)
        st = M.sample_stats(values)
        out[field_key(el)] = {"sets": names, "n_xray": st["n"], "sample_mean_area_mV_us": st["mean"],
                               "sample_std_area_mV_us": st["std"], "sample_mean_err_mV_us": st["err"],
                               "g_S2_realised": st["mean"] / n_x, "g_S2_realised_err": st["err"] / n_x}
    return out


def truth_document(p: SimulationProfile, seed: int, models: list[M.SetModel], summaries: list[dict[str, Any]],
                   version: str, files: Sequence[Sequence[str]],
                   xray_areas: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The ``truth.json`` document (schema_version 1); every truth number is defined in ``TRUTH_DEFINITIONS``.

    ``files``: the file names of each set (same order as ``models``). ``xray_areas``: set name → the X-ray S2
    photoelectron areas of its X-ray frames (for the pooled realised X-ray mean and g_S2 per EL field,
    ``xray_by_el_field``); without it those are NaN.
    """
    density = float(physics.gas_density_cm3(p.pressure_bar, p.temperature_K))
    e_r = float(physics.recoil_energy_keV(p.target_isotope))
    n_x = float(physics.expected_electrons(p.E_xray_eV, p.W_eV))
    n_exp = e_r * 1e3 / p.W_eV
    pooled = _pooled_xrays(models, xray_areas, n_x)
    sets = []
    for set_index, (setm, summ) in enumerate(zip(models, summaries)):
        px = pooled[field_key(setm.el_field_V_cm)]
        a, da = summ["recoil_sample_mean_area_mV_us"], summ["recoil_sample_mean_err_mV_us"]
        g, dg = px["g_S2_realised"], px["g_S2_realised_err"]
        omr = a / g / n_exp if g > 0 else math.nan
        sets.append({
            "name": setm.name, "raw_folder": f"raw/{setm.name}", "truth_file": f"truth/{setm.name}.npz",
            "gate_V": setm.gate_V, "anode_V": setm.anode_V,
            "drift_field_V_cm": setm.drift_field_V_cm, "el_field_V_cm": setm.el_field_V_cm,
            "reduced_drift_field_Td": setm.reduced_drift_field_Td, "reduced_el_field_Td": setm.reduced_el_field_Td,
            "drift_velocity_mm_us": setm.drift_velocity_mm_us, "el_velocity_mm_us": setm.el_velocity_mm_us,
            "drift_time_us": setm.drift_time_us, "el_transit_us": setm.el_transit_us,
            "diffusion_sigma_us": setm.diffusion_sigma_us, "r": setm.recombination, "N_exp": setm.n_exp,
            "N_e_mean": setm.n_e_mean, "g_S2": setm.g_s2_mV_us, "pe_per_electron": setm.pe_per_electron,
            "recoil_mean_area_mV_us": setm.recoil_mean_area_mV_us,
            "xray_mean_area_mV_us": setm.xray_mean_area_mV_us,
            "s1_time_model": {"mean_us": p.s1_time_us, "sigma_us": p.s1_jitter_us},
            "s2_window_us": list(setm.s2_window_us),
            "files": list(files[set_index]),
            **summ,
            "one_minus_r": 1.0 - setm.recombination,
            "one_minus_r_realised": omr,
            "one_minus_r_realised_err": abs(omr) * math.hypot(da / a, dg / g) if a and g > 0 else math.nan,
            "one_minus_r_electrons_realised": summ["recoil_sample_mean_electrons"] / n_exp,
        })
    el_fields = sorted({m.el_field_V_cm for m in models})
    return {
        "schema_version": 1,
        "generator": "s2lib.sim.simulate",
        "s2lib_version": version,
        "profile": p.name,
        "seed": seed,
        "profile_parameters": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(p).items()},
        "constants": {
            "W_eV": p.W_eV, "E_xray_eV": p.E_xray_eV, "N_x": n_x, "xray_fano": p.xray_fano,
            "target_isotope": physics.normalise_isotope(p.target_isotope),
            "recoil_nucleus": physics.RECOIL_DAUGHTER[physics.normalise_isotope(p.target_isotope)],
            "E_R_keV": e_r, "N_exp": e_r * 1e3 / p.W_eV, "recoil_electron_cv": p.recoil_electron_cv,
            "pressure_bar": p.pressure_bar, "temperature_K": p.temperature_K, "gas_density_cm3": density,
            "drift_gap_cm": p.drift_gap_cm, "el_gap_cm": p.el_gap_cm, "xray_attenuation_cm": p.xray_attenuation_cm,
            "spe_mean_area_mV_us": p.spe_area_mV_us, "spe_gain_cv": p.spe_gain_cv,
            "spe_shape": "exp(-t/decay) - exp(-t/rise), normalised to unit area",
            "spe_rise_ns": p.spe_rise_ns, "spe_decay_ns": p.spe_decay_ns,
            "noise_sigma_mV": p.noise_sigma_mV, "baseline_jitter_mV": p.baseline_jitter_mV,
            "diffusion_DL_mm2_us": p.diffusion_DL_mm2_us,
            "sampling_rate_Hz": p.sampling_rate_Hz, "dt_us": p.dt_us, "t0_us": p.t0_us, "n_points": p.n_points,
            "frames_per_file": p.frames_per_file, "files_per_set": p.n_files,
            "scale_mV": p.scale_mV, "offset_mV": p.offset_mV, "sample_format": p.sample_format,
            "lsb_mV": p.lsb_mV, "baseline_raw": -p.offset_mV / p.lsb_mV, "gain_scale": p.gain_scale,
        },
        "recombination_model": {"law": "thomas_imel", "formula": "r = 1 - S*ln(1+xi)/xi, xi = a/E_drift",
                                "a_V_cm": p.recomb_a_V_cm, "S": p.recomb_S},
        "g_S2_law": {"law": "power", "formula": "g_S2 = gain_scale * g_ref * (E_EL / E_ref)**k",
                     "gain_scale": p.gain_scale,
                     "g_ref_mV_us": p.gs2_ref_mV_us, "E_ref_V_cm": p.gs2_ref_field_V_cm, "k": M.gs2_exponent(p),
                     "points": [[p.gs2_ref_field_V_cm, p.gs2_ref_mV_us], [p.gs2_high_field_V_cm, p.gs2_high_mV_us]]},
        "timing_model": {
            "trigger_us": 0.0,
            "t_decay": "s1_time_us + Normal(0, s1_jitter_us); S1 starts at t_decay",
            "s1_time_us": p.s1_time_us, "s1_jitter_us": p.s1_jitter_us,
            "s1_components": [{"fraction": p.s1_fast_fraction, "tau_ns": p.s1_fast_tau_ns},
                              {"fraction": 1.0 - p.s1_fast_fraction, "tau_ns": p.s1_slow_tau_ns}],
            "s1_mean_pe": p.s1_mean_pe,
            "gate_arrival": "t_decay + s2_extra_delay_us + 10*(drift_gap - z)/v_d + Normal(0, sqrt(2*D_L*t)/v_d)",
            "s2_extra_delay_us": p.s2_extra_delay_us,
            "el_emission": "photoelectrons uniform over [arrival, arrival + el_transit_us]",
            "s2_window": "(s1_time + t_d - 2 sigma_t, s1_time + t_d + el_transit + 2 sigma_t)",
        },
        "event_mix": {"xray_fraction_of_recoil_frames": p.xray_fraction, "background_fraction": p.background_fraction,
                      "alpha_fraction": p.alpha_fraction, "stray_pe_rate_per_us": p.stray_pe_rate_per_us,
                      "background_s1_probability": p.background_s1_probability,
                      "alpha_electrons_mean": p.alpha_electrons_mean, "alpha_track_cm": p.alpha_track_cm},
        "g_S2": {field_key(e): M.gs2_mV_us(e, p) for e in el_fields},
        "xray_mean_area_mV_us": {field_key(e): M.gs2_mV_us(e, p) * n_x for e in el_fields},
        "xray_by_el_field": pooled,
        "sets": sets,
        "definitions": dict(TRUTH_DEFINITIONS),
        "truth_fields": dict(M.TRUTH_FIELDS),
        "event_type_names": list(M.EVENT_TYPES),
    }
