"""Pure signal model of the synthetic runs (no I/O): set physics, photoelectron lists, rendering, digitising.

A file is generated in three steps, each a pure function of its inputs and a numpy ``Generator``:

1. :func:`draw_file_events` draws the events of the frames of one file (event type, decay time, electrons of the
   recoil / X-ray / alpha clouds) and turns every light source into a list of photoelectrons (PE): frame index,
   arrival time (µs), area (mV·µs, gain-fluctuated) and component (S1, main S2, X-ray S2, stray).
2. :func:`render_pe` accumulates the PE areas as sub-sample deltas (linear split between the two neighbouring
   samples) convolved with the single-photoelectron kernel :func:`spe_kernel`; the kernel is normalised so that
   Σ kernel·dt = 1, hence the noiseless integral Σ signal·dt equals the sum of the PE areas exactly (for PEs inside
   the frame). The pulses are sparse, so each PE adds its shifted kernel directly (``np.add.at``): the same result
   as an FFT convolution of the delta train, but proportional to the number of PEs instead of the frame length.
3. :func:`simulate_file` adds Gaussian noise and a per-frame baseline offset, flips the polarity (PMT pulses are
   negative), and quantises to int8 with the scope's scale and offset (domain.md 3).

This module holds step 1; steps 2 and 3 are in :mod:`s2lib.sim._sim_render`.

Units: time µs, voltage mV, area mV·µs, field V/cm, reduced field Td, velocity mm/µs, length cm.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from s2lib.physics import physics

if TYPE_CHECKING:  # pragma: no cover
    from .profile import SimulationProfile

__all__ = [
    "EVENT_TYPES",
    "EVENT_RECOIL",
    "EVENT_BACKGROUND",
    "EVENT_ALPHA",
    "COMPONENTS",
    "COMP_S1",
    "COMP_MAIN_S2",
    "COMP_XRAY",
    "COMP_STRAY",
    "TRUTH_FIELDS",
    "SetModel",
    "FileEvents",
    "gs2_mV_us",
    "gs2_exponent",
    "build_set_model",
    "draw_file_events",
    "set_name",
    "sample_stats",
    "summarise_truth",
]

EVENT_RECOIL, EVENT_BACKGROUND, EVENT_ALPHA = 0, 1, 2
EVENT_TYPES = ("recoil", "background", "alpha")
"""Event type codes stored in the per-event truth (index = code)."""

COMP_S1, COMP_MAIN_S2, COMP_XRAY, COMP_STRAY = 0, 1, 2, 3
COMPONENTS = ("s1", "main_s2", "xray_s2", "stray")
"""Photoelectron component codes ("main_s2" is the recoil S2, or the alpha S2 in alpha frames)."""

TRUTH_FIELDS: dict[str, str] = {
    "file_index": "index of the file in the set (0-based, natural order of the file names)",
    "frame_index": "frame index in the file (0-based)",
    "event_type": "0 recoil, 1 background (no recoil S2, no X-ray), 2 alpha in gas (see event_type_names)",
    "t_decay_us": "decay time = S1 start, µs (trigger at 0)",
    "n_s1_pe": "S1 photoelectrons",
    "n_electrons": "electrons of the main S2 (recoil, or alpha track) reaching the EL gap",
    "s2_area_mV_us": "noiseless area of the main S2 (sum of its PE areas), mV·µs; 0 for background frames",
    "s2_start_us": "first main-S2 photoelectron time, µs (NaN without main S2)",
    "s2_end_us": "last main-S2 photoelectron time, µs (NaN without main S2)",
    "recoil_arrival_us": "mean gate arrival of electrons from the source plane: t_decay + t_drift (+ extra delay), "
                         "µs; NaN for background frames",
    "has_xray": "an X-ray S2 is present",
    "xray_z_cm": "X-ray conversion height above the source plane, cm (NaN without X-ray)",
    "xray_n_electrons": "X-ray electrons",
    "xray_time_us": "mean arrival time of the X-ray electrons at the gate, µs (NaN without X-ray)",
    "xray_area_mV_us": "noiseless X-ray S2 area, mV·µs (NaN without X-ray)",
    "n_stray_pe": "stray single photoelectrons in the frame",
    "window_area_mV_us": "noiseless area of ALL photoelectrons (S2, X-ray, stray, S1) inside the set's expected "
                         "S2 window s2_window_us, mV·µs: what an ideal integrator over that window measures",
    "baseline_mV": "per-frame baseline offset added before quantisation, mV",
    "n_saturated_samples": "samples of the frame at (or clipped to) the sample format's limits: digitiser "
                           "saturation, the area there is lost",
}
"""Per-event truth arrays stored in ``OUTDIR/truth/<set>.npz`` (one entry per frame, all files of the set)."""


def gs2_exponent(profile: SimulationProfile) -> float:
    """Exponent k of the power law g_S2 ∝ E_EL^k through the two measured points of the profile."""
    return math.log(profile.gs2_high_mV_us / profile.gs2_ref_mV_us) / math.log(
        profile.gs2_high_field_V_cm / profile.gs2_ref_field_V_cm)


def gs2_mV_us(el_field_V_cm: float, profile: SimulationProfile) -> float:
    """g_S2 (mV·µs per electron entering the EL gap) at an EL field: gain_scale·g_ref·(E_EL/E_ref)^k.

    The power law passes exactly through the two measured points of domain.md 1.6 (2375 V/cm → 0.00359,
    3375 V/cm → 0.0140, k ≈ 3.87) when ``gain_scale`` is 1; it never reaches zero, so low EL fields still give
    a (small) S2. ``gain_scale`` (closure tests) scales the photoelectrons per electron at every field.
    """
    if el_field_V_cm <= 0:
        raise ValueError(f"the EL field must be positive, got {el_field_V_cm} V/cm")
    law = profile.gs2_ref_mV_us * (el_field_V_cm / profile.gs2_ref_field_V_cm) ** gs2_exponent(profile)
    return profile.gain_scale * law


@dataclass(frozen=True)
class SetModel:
    """Derived physics of one measurement set (one gate/anode pair); every number is a model expectation.

    Attributes:
        name: set folder name, ``FieldScan_Gate0050_Anode1950``.
        gate_V, anode_V: electrode voltages, V (cathode grounded).
        drift_field_V_cm, el_field_V_cm: E_d = V_gate/d_drift, E_EL = (V_anode − V_gate)/d_EL, V/cm.
        reduced_drift_field_Td, reduced_el_field_Td: E/N, Td.
        drift_velocity_mm_us, el_velocity_mm_us: electron drift velocity in the drift and EL gaps, mm/µs.
        drift_time_us: full drift gap crossing time (recoil), µs.
        el_transit_us: EL gap crossing time τ_EL (S2 light is emitted uniformly over it), µs.
        diffusion_sigma_us: longitudinal diffusion of the recoil cloud at the gate, σ_t = √(2·D_L·t_d)/v_d, µs.
        recombination: r from Thomas–Imel with S (profile recomb_a_V_cm, recomb_S).
        n_exp: E_R/W, electrons before recombination.
        n_e_mean: n_exp·(1 − r), mean electrons reaching the EL gap.
        g_s2_mV_us: S2 area per electron, mV·µs.
        pe_per_electron: g_S2 / SPE mean area, mean photoelectrons per electron.
        recoil_mean_area_mV_us: g_S2·n_e_mean, expectation of the noiseless recoil S2 area, mV·µs.
        xray_mean_area_mV_us: g_S2·N_x, expectation of the noiseless X-ray S2 area, mV·µs.
        s2_window_us: expected recoil S2 window (start, end) for the mean decay time:
            (t_S1 + t_d − 2σ_t, t_S1 + t_d + τ_EL + 2σ_t), µs.
    """

    name: str
    gate_V: float
    anode_V: float
    drift_field_V_cm: float
    el_field_V_cm: float
    reduced_drift_field_Td: float
    reduced_el_field_Td: float
    drift_velocity_mm_us: float
    el_velocity_mm_us: float
    drift_time_us: float
    el_transit_us: float
    diffusion_sigma_us: float
    recombination: float
    n_exp: float
    n_e_mean: float
    g_s2_mV_us: float
    pe_per_electron: float
    recoil_mean_area_mV_us: float
    xray_mean_area_mV_us: float
    s2_window_us: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        out = asdict(self)
        out["s2_window_us"] = list(self.s2_window_us)
        return out


def set_name(gate_V: float, anode_V: float) -> str:
    """Lab-style set folder name with 4-digit padding (domain.md 2.1)."""
    return f"FieldScan_Gate{int(round(gate_V)):04d}_Anode{int(round(anode_V)):04d}"


def build_set_model(profile: SimulationProfile, gate_V: float, anode_V: float) -> SetModel:
    """Fields, transport, recombination and S2 expectations of one set, from s2lib.physics.physics."""
    density = physics.gas_density_cm3(profile.pressure_bar, profile.temperature_K)
    e_d = float(physics.drift_field_V_cm(gate_V, profile.drift_gap_cm))
    e_el = float(physics.el_field_V_cm(anode_V, gate_V, profile.el_gap_cm))
    if e_d <= 0 or e_el <= 0:
        raise ValueError(f"gate {gate_V} V / anode {anode_V} V give a non-positive drift or EL field")
    rd = float(physics.reduced_field_Td(e_d, density))
    rel = float(physics.reduced_field_Td(e_el, density))
    v_d = float(physics.drift_velocity_mm_us(rd))
    v_el = float(physics.drift_velocity_mm_us(rel))
    t_d = float(physics.drift_time_us(profile.drift_gap_cm, v_d))
    tau_el = float(physics.drift_time_us(profile.el_gap_cm, v_el))
    sigma_t = math.sqrt(2.0 * profile.diffusion_DL_mm2_us * t_d) / v_d
    r = float(physics.thomas_imel_recombination(e_d, profile.recomb_a_V_cm, profile.recomb_S))
    n_exp = float(physics.expected_electrons(physics.recoil_energy_keV(profile.target_isotope) * 1e3, profile.W_eV))
    n_e = n_exp * (1.0 - r)
    g = gs2_mV_us(e_el, profile)
    n_x = float(physics.expected_electrons(profile.E_xray_eV, profile.W_eV))
    t_start = profile.s1_time_us + profile.s2_extra_delay_us + t_d
    return SetModel(
        name=set_name(gate_V, anode_V), gate_V=float(gate_V), anode_V=float(anode_V),
        drift_field_V_cm=e_d, el_field_V_cm=e_el, reduced_drift_field_Td=rd, reduced_el_field_Td=rel,
        drift_velocity_mm_us=v_d, el_velocity_mm_us=v_el, drift_time_us=t_d, el_transit_us=tau_el,
        diffusion_sigma_us=sigma_t, recombination=r, n_exp=n_exp, n_e_mean=n_e, g_s2_mV_us=g,
        pe_per_electron=g / profile.spe_area_mV_us, recoil_mean_area_mV_us=g * n_e,
        xray_mean_area_mV_us=g * n_x,
        s2_window_us=(t_start - 2.0 * sigma_t, t_start + tau_el + 2.0 * sigma_t))


@dataclass
class FileEvents:
    """Photoelectrons and per-frame truth of one file (all arrays 1-D).

    Attributes:
        n_frames: frames in the file.
        pe_frame: frame index of each photoelectron (int64).
        pe_time_us: arrival time of each photoelectron, µs (trigger at 0).
        pe_area: area of each photoelectron, mV·µs (gamma-distributed gain).
        pe_component: component code of each photoelectron (``COMPONENTS``).
        truth: per-frame arrays, see ``simulate.TRUTH_FIELDS``.
    """

    n_frames: int
    pe_frame: NDArray[np.int64]
    pe_time_us: NDArray[np.float64]
    pe_area: NDArray[np.float64]
    pe_component: NDArray[np.int8]
    truth: dict[str, NDArray[Any]]


def _gains(rng: np.random.Generator, n: int, mean: float, cv: float) -> NDArray[np.float64]:
    """PE areas from a gamma distribution with the given mean and σ/μ (> 0, mean preserved exactly)."""
    if cv <= 0:
        return np.full(n, mean)
    shape = 1.0 / cv**2
    return rng.gamma(shape, mean / shape, size=n)


def _drifted_pe(rng: np.random.Generator, e_frame: NDArray[np.int64], e_start_us: NDArray[np.float64],
                e_drift_cm: NDArray[np.float64], setm: SetModel, profile: SimulationProfile
                ) -> tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]:
    """Electrons created at (time, height) drift to the gate, diffuse, cross the EL gap and emit photoelectrons.

    Returns (frame of each PE, PE time µs, arrival time at the gate of each electron µs).
    """
    v = setm.drift_velocity_mm_us
    t_drift = 10.0 * e_drift_cm / v
    sigma = np.sqrt(2.0 * profile.diffusion_DL_mm2_us * t_drift) / v
    arrival = e_start_us + profile.s2_extra_delay_us + t_drift + rng.standard_normal(e_frame.size) * sigma
    n_pe = rng.poisson(setm.pe_per_electron, size=e_frame.size)
    pe_frame = np.repeat(e_frame, n_pe)
    pe_time = np.repeat(arrival, n_pe) + rng.random(pe_frame.size) * setm.el_transit_us
    return pe_frame, pe_time, arrival


def _fano_counts(rng: np.random.Generator, n: int, mean: float, fano: float) -> NDArray[np.int64]:
    """Integer counts with mean exactly ``mean`` and variance ≈ F·mean: Gaussian, then stochastic rounding."""
    x = np.clip(mean + rng.standard_normal(n) * math.sqrt(fano * mean), 0.0, None)
    base = np.floor(x)
    return (base + (rng.random(n) < (x - base))).astype(np.int64)


def draw_file_events(profile: SimulationProfile, setm: SetModel, rng: np.random.Generator,
                     n_frames: int) -> FileEvents:
    """Draw the events of one file and all their photoelectrons (see the module docstring)."""
    p = profile
    frames = np.arange(n_frames, dtype=np.int64)
    t_first = p.t0_us
    t_last = p.t0_us + p.n_points / p.sampling_rate_Hz * 1e6
    # event type
    u = rng.random(n_frames)
    etype = np.full(n_frames, EVENT_RECOIL, dtype=np.int8)
    etype[u < p.alpha_fraction + p.background_fraction] = EVENT_BACKGROUND
    etype[u < p.alpha_fraction] = EVENT_ALPHA
    is_recoil, is_alpha = etype == EVENT_RECOIL, etype == EVENT_ALPHA
    t_decay = p.s1_time_us + rng.standard_normal(n_frames) * p.s1_jitter_us
    baseline = rng.uniform(-p.baseline_jitter_mV, p.baseline_jitter_mV, n_frames)
    # S1
    has_s1 = ~(etype == EVENT_BACKGROUND) | (rng.random(n_frames) < p.background_s1_probability)
    s1_mean = np.where(is_alpha, p.s1_mean_pe * p.alpha_s1_factor, p.s1_mean_pe)
    n_s1 = np.where(has_s1, rng.poisson(s1_mean), 0)
    s1_frame = np.repeat(frames, n_s1)
    fast = rng.random(s1_frame.size) < p.s1_fast_fraction
    tau = np.where(fast, p.s1_fast_tau_ns, p.s1_slow_tau_ns) * 1e-3
    s1_time = np.repeat(t_decay, n_s1) + rng.exponential(1.0, s1_frame.size) * tau
    # main S2: recoil electrons from the source plane; alpha electrons along a track in the gas
    lam = rng.gamma(1.0 / p.recoil_electron_cv**2, setm.n_e_mean * p.recoil_electron_cv**2, n_frames) \
        if p.recoil_electron_cv > 0 else np.full(n_frames, setm.n_e_mean)
    n_e = np.where(is_recoil, rng.poisson(lam), 0)
    lam_a = p.alpha_electrons_mean * (1.0 + rng.standard_normal(n_frames) * p.alpha_electron_cv)
    n_e = np.where(is_alpha, rng.poisson(np.clip(lam_a, 0.0, None)), n_e).astype(np.int64)
    e_frame = np.repeat(frames, n_e)
    track = min(p.alpha_track_cm, p.drift_gap_cm)
    e_height = np.where(np.repeat(is_alpha, n_e), rng.random(e_frame.size) * track, 0.0)
    m_frame, m_time, _ = _drifted_pe(rng, e_frame, np.repeat(t_decay, n_e), p.drift_gap_cm - e_height, setm, p)
    # X-rays: truncated exponential conversion height z ∈ (0, d) by inverse CDF
    has_x = is_recoil & (rng.random(n_frames) < p.xray_fraction)
    d = p.drift_gap_cm
    ux = rng.random(n_frames)
    z = -p.xray_attenuation_cm * np.log1p(-ux * -np.expm1(-d / p.xray_attenuation_cm))
    z = np.where(has_x, np.clip(z, 1e-6 * d, d * (1 - 1e-6)), np.nan)
    n_xe = np.where(has_x, _fano_counts(rng, n_frames, physics.expected_electrons(p.E_xray_eV, p.W_eV),
                                        p.xray_fano), 0)
    xe_frame = np.repeat(frames, n_xe)
    x_frame, x_time, _ = _drifted_pe(rng, xe_frame, np.repeat(t_decay, n_xe), np.repeat(d - np.nan_to_num(z), n_xe),
                                     setm, p)
    x_arrival = np.where(has_x, t_decay + p.s2_extra_delay_us + 10.0 * (d - z) / setm.drift_velocity_mm_us, np.nan)
    # stray single photoelectrons, uniform over the frame
    n_stray = rng.poisson(p.stray_pe_rate_per_us * (t_last - t_first), n_frames)
    st_frame = np.repeat(frames, n_stray)
    st_time = rng.uniform(t_first, t_last, st_frame.size)
    # assemble PE lists and gains
    pe_frame = np.concatenate([s1_frame, m_frame, x_frame, st_frame])
    pe_time = np.concatenate([s1_time, m_time, x_time, st_time])
    comp = np.concatenate([np.full(s1_frame.size, COMP_S1, np.int8), np.full(m_frame.size, COMP_MAIN_S2, np.int8),
                           np.full(x_frame.size, COMP_XRAY, np.int8), np.full(st_frame.size, COMP_STRAY, np.int8)])
    area = _gains(rng, pe_frame.size, p.spe_area_mV_us, p.spe_gain_cv)
    main = comp == COMP_MAIN_S2
    xr = comp == COMP_XRAY
    s2_area = np.bincount(pe_frame[main], weights=area[main], minlength=n_frames)
    x_area = np.where(has_x, np.bincount(pe_frame[xr], weights=area[xr], minlength=n_frames), np.nan)
    lo, hi = setm.s2_window_us
    win = (pe_time >= lo) & (pe_time <= hi)
    win_area = np.bincount(pe_frame[win], weights=area[win], minlength=n_frames)
    s2_start = np.full(n_frames, np.inf)
    s2_end = np.full(n_frames, -np.inf)
    np.minimum.at(s2_start, pe_frame[main], pe_time[main])
    np.maximum.at(s2_end, pe_frame[main], pe_time[main])
    s2_start[~np.isfinite(s2_start)] = np.nan
    s2_end[~np.isfinite(s2_end)] = np.nan
    truth = {
        "event_type": etype,
        "t_decay_us": t_decay,
        "n_s1_pe": n_s1.astype(np.int64),
        "n_electrons": n_e,
        "s2_area_mV_us": np.where(etype == EVENT_BACKGROUND, 0.0, s2_area),
        "s2_start_us": s2_start,
        "s2_end_us": s2_end,
        "recoil_arrival_us": np.where(etype == EVENT_BACKGROUND, np.nan,
                                      t_decay + p.s2_extra_delay_us + setm.drift_time_us),
        "has_xray": has_x,
        "xray_z_cm": z,
        "xray_n_electrons": n_xe.astype(np.int64),
        "xray_time_us": x_arrival,
        "xray_area_mV_us": x_area,
        "n_stray_pe": n_stray.astype(np.int64),
        "window_area_mV_us": win_area,
        "baseline_mV": baseline,
    }
    return FileEvents(n_frames, pe_frame, pe_time, area, comp, truth)


def sample_stats(values: NDArray[Any]) -> dict[str, float]:
    """Realised sample mean, standard deviation (ddof 1) and standard error of the mean σ/√n of ``values``.

    NaN where undefined (no value; one value for the spread). The standard error is that of the *realised*
    mean as an estimate of the model expectation; the realised mean itself is exact.
    """
    v = np.asarray(values, dtype=np.float64)
    n = int(v.size)
    mean = float(v.mean()) if n else math.nan
    std = float(v.std(ddof=1)) if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "err": std / math.sqrt(n) if n > 1 else math.nan}


def summarise_truth(a: dict[str, NDArray[Any]]) -> dict[str, Any]:
    """Counts and realised sample statistics of a set's per-event truth arrays (for truth.json).

    ``recoil_sample_*``: the main-S2 photoelectron area (``s2_area_mV_us``) of the frames whose event type is
    recoil, X-ray frames included; no stray photoelectrons, no X-ray pile-up, no S1, no noise: the quantity
    whose mean the recoil estimator targets. ``xray_sample_*``: the X-ray S2 photoelectron area
    (``xray_area_mV_us``) of every frame with an X-ray, selected or not. ``*_err``: σ/√n (ddof 1).
    """
    recoil = a["event_type"] == EVENT_RECOIL
    areas = a["s2_area_mV_us"][recoil]
    xr = a["xray_area_mV_us"][a["has_xray"]]
    xs = sample_stats(xr)
    n_rec = int(recoil.sum())
    nan = math.nan
    sat = a.get("n_saturated_samples")
    return {
        "xray_sample_std_area_mV_us": xs["std"],
        "xray_sample_mean_err_mV_us": xs["err"],
        "n_saturated_frames": int(np.count_nonzero(sat)) if sat is not None else 0,
        "n_frames": int(a["event_type"].size),
        "n_recoil": n_rec,
        "n_xray": int(a["has_xray"].sum()),
        "n_background": int((a["event_type"] == EVENT_BACKGROUND).sum()),
        "n_alpha": int((a["event_type"] == EVENT_ALPHA).sum()),
        "recoil_sample_mean_area_mV_us": float(areas.mean()) if n_rec else nan,
        "recoil_sample_std_area_mV_us": float(areas.std(ddof=1)) if n_rec > 1 else nan,
        "recoil_sample_mean_err_mV_us": float(areas.std(ddof=1) / math.sqrt(n_rec)) if n_rec > 1 else nan,
        "recoil_sample_mean_electrons": float(a["n_electrons"][recoil].mean()) if n_rec else nan,
        "recoil_window_sample_mean_area_mV_us": float(a["window_area_mV_us"][recoil].mean()) if n_rec else nan,
        "xray_sample_mean_area_mV_us": float(xr.mean()) if xr.size else nan,
    }
