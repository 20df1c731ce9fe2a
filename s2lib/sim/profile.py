"""Simulation profiles: every parameter of a synthetic run (:class:`SimulationProfile`), the named profiles
(:data:`PROFILES`); :func:`s2lib.sim.simulate.resolve_profile` applies validated overrides.

Split from :mod:`s2lib.sim.simulate` (which writes the files) so that the signal model (:mod:`s2lib.sim._sim_model`)
and the truth document (:mod:`s2lib.sim._sim_truth`) can name the profile type without importing the writer.
Every parameter carries its unit and provenance: "domain.md" = ``../shared/notes/domain.md`` (the lab's values),
"[estimate]" = a plausible choice of ours, "[ext]" = outside knowledge.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from s2lib.errors import DataError
from s2lib.physics import physics

__all__ = ["SimulationProfile", "PROFILES", "STANDARD_GATES_V"]

STANDARD_GATES_V: tuple[int, ...] = (50, 100, 200, 300, 400, 600, 800, 1200, 1500, 1800)
"""Gate voltages of the lab's field scans, V (domain.md 8); ``n_sets`` overrides pick evenly from them."""

@dataclass(frozen=True)
class SimulationProfile:
    """All parameters of a synthetic run. Units in the names; provenance in the comments.

    Override any field through ``simulate_run(..., **overrides)``; aliases: ``set_gates`` = ``set_gates_V``,
    ``n_files`` = files per set, ``n_sets`` = number of sets (picked evenly from ``STANDARD_GATES_V`` unless
    ``set_gates`` is also given).
    """

    name: str
    # --- acquisition (domain.md 3 and 8) ---
    sampling_rate_Hz: float = 5.0e9          # 5 GS/s (domain.md 3); 1 GS/s variant exists (domain.md 3)
    n_points: int = 250_000                  # user samples per frame: 50 µs at 5 GS/s (domain.md 3)
    t0_us: float = -15.0                     # time of the first sample vs trigger, µs (domain.md 3)
    scale_mV: float = 0.4                    # mV per LSB of int8 samples (domain.md 3); see lsb_mV for int16
    offset_mV: float = -39.8                 # volts = raw·scale + offset, mV (domain.md 3)
    sample_format: str = "int8"              # "int8" (the lab's files, domain.md 3) or "int16": same 8-bit
                                             # full-scale span in 256× finer steps (lsb_mV = scale_mV/256)
    pre_points: int = 16                     # pre-charge samples per frame (domain.md 3)
    post_points: int = 16                    # post-charge samples per frame (domain.md 3)
    frames_per_file: int = 49                # FastFrame frames per file, N = 48 (domain.md 2.1/3)
    n_files: int = 10                        # files per set [estimate; lab: 400-10 000, domain.md 2.1]
    set_gates_V: tuple[int, ...] = (200, 800)  # gate voltages of the sets, V (domain.md 1.5/8)
    el_voltage_V: float = 1900.0             # anode − gate, V → EL 2375 V/cm (domain.md 1.4/8)
    run_prefix: str = "SIM"                  # file name prefix in place of the lab's RUNnn
    auto_frame: bool = False                 # True: t0_us and n_points follow from the physics (see frame_layout)
    pre_s1_us: float = 2.0                   # auto_frame: signal-free time before S1 − 4 jitter σ, µs [estimate]
    post_s2_us: float = 2.0                  # auto_frame: time after the latest S2 window end + 2σ_t, µs [estimate]
    # --- gas, geometry, energies (domain.md 1) ---
    target_isotope: str = "Th228"            # source; Ra-224 recoil of 96.8 keV (domain.md 1.2)
    pressure_bar: float = 2.0                # domain.md 1.1
    temperature_K: float = 297.0             # domain.md 1.1 (run configs)
    drift_gap_cm: float = 1.4                # domain.md 1.1
    el_gap_cm: float = 0.8                   # domain.md 1.1
    W_eV: float = 22.0                       # eV per pair (domain.md 1.6)
    E_xray_eV: float = 12300.0               # Ra L X-ray (domain.md 1.2)
    xray_attenuation_cm: float = 2.5         # attenuation length of the X-ray in the gas (domain.md 1.2)
    # --- PMT, SPE and noise ---
    noise_sigma_mV: float = 0.4              # Gaussian baseline noise RMS, mV [estimate, domain.md 8: 0.3-0.5]
    baseline_jitter_mV: float = 0.2          # per-frame baseline offset, uniform ±, mV [estimate]
    spe_area_mV_us: float = 0.02             # mean SPE area, mV·µs [estimate, domain.md 8: 0.01-0.05]
    spe_gain_cv: float = 0.35                # SPE gain σ/μ (gamma distribution) [estimate]
    spe_rise_ns: float = 1.5                 # SPE rise time constant, ns [estimate]
    spe_decay_ns: float = 4.0                # SPE decay time constant, ns (FWHM ≈ 6 ns) [estimate]
    # --- S1 ---
    s1_time_us: float = -3.3                 # mean decay/S1 time vs trigger, µs (domain.md 1.3: −3.25…−3.38)
    s1_jitter_us: float = 0.1                # decay-time jitter σ, µs [estimate]
    s1_mean_pe: float = 25.0                 # mean S1 photoelectrons of a recoil frame [estimate]
    s1_fast_fraction: float = 0.1            # fast (singlet) fraction of the gas scintillation [ext]
    s1_fast_tau_ns: float = 4.0              # fast component decay time, ns [ext]
    s1_slow_tau_ns: float = 100.0            # slow component decay time, ns [ext]
    background_s1_probability: float = 0.5   # chance that a background frame has an S1 [estimate]
    # --- charge: recombination, fluctuations, transport ---
    recomb_a_V_cm: float = 400.0             # Thomas–Imel a, V/cm [estimate, domain.md 1.6: fits 284-546]
    recomb_S: float = 0.2                    # extraction factor S [estimate, domain.md 1.6: fits 0.21]
    recoil_electron_cv: float = 0.25         # σ/μ of the recoil electron count (recombination fluct.) [estimate]
    xray_fano: float = 0.15                  # Fano factor of the X-ray electron count [ext]
    diffusion_DL_mm2_us: float = 0.011       # longitudinal diffusion coefficient, mm²/µs [estimate: σ_t 0.3-0.8 µs]
    s2_extra_delay_us: float = 0.0           # extra S2 delay beyond the model drift time, µs [estimate; lab 1.5-2.5]
    # --- EL gain g_S2 = g_ref·(E_EL/E_ref)^k through two measured points (domain.md 1.6) ---
    gs2_ref_field_V_cm: float = 2375.0       # domain.md 1.6 (RUN21)
    gs2_ref_mV_us: float = 0.00359           # g_S2 at 2375 V/cm, mV·µs/e⁻ (domain.md 1.6)
    gs2_high_field_V_cm: float = 3375.0      # domain.md 1.6 (RUN26)
    gs2_high_mV_us: float = 0.0140           # g_S2 at 3375 V/cm, mV·µs/e⁻ (domain.md 1.6)
    gain_scale: float = 1.0                  # multiplies g_S2 at every EL field: more or fewer photoelectrons
                                             # per electron (EL yield × light collection), SPE area unchanged
                                             # [closure-test knob: recoil peaks ×0.3 … ×5]
    # --- event mix ---
    xray_fraction: float = 0.05              # fraction of recoil frames with an X-ray S2 [estimate]
    background_fraction: float = 0.05        # frames without recoil S2 [estimate, domain.md 8: 3.8-4.7 %]
    alpha_fraction: float = 0.002            # alpha-in-gas frames [estimate]
    stray_pe_rate_per_us: float = 0.05       # stray single photoelectrons, per µs [estimate]
    alpha_electrons_mean: float = 66_700.0   # electrons of an alpha-in-gas S2 (240 mV·µs at 2375 V/cm, domain.md 1.3)
    alpha_electron_cv: float = 0.1           # σ/μ of the alpha electron count [estimate]
    alpha_track_cm: float = 1.0              # alpha electrons start uniformly in [0, track] above the source [estimate]
    alpha_s1_factor: float = 20.0            # alpha S1 = factor × recoil S1 [estimate]
    # --- trigger timestamps ---
    trigger_rate_Hz: float = 10.0            # mean trigger rate; gaps uniform in [0.5, 1.5]/rate [estimate]
    gmt_start_s: int = 1760006278            # Unix time of the first trigger (RUN18 file, domain.md 3)
    description: str = field(default="", compare=False)

    @property
    def dt_us(self) -> float:
        """Sample interval, µs."""
        return 1e6 / self.sampling_rate_Hz

    @property
    def lsb_mV(self) -> float:
        """The file's vertical scale, mV per LSB: ``scale_mV`` for int8, ``scale_mV/256`` for int16 (the scope's
        8-bit span stored in 16-bit words, as in Tektronix high-resolution mode)."""
        return self.scale_mV if self.sample_format == "int8" else self.scale_mV / 256.0

    @property
    def sample_range(self) -> tuple[int, int]:
        """Smallest and largest raw value of the sample format (digitiser saturation)."""
        info = np.iinfo(np.dtype(self.sample_format))
        return int(info.min), int(info.max)

    def validate(self) -> None:
        """Raise DataError naming the first impossible value."""
        positive = ("sampling_rate_Hz", "n_points", "scale_mV", "frames_per_file", "n_files", "pressure_bar",
                    "temperature_K", "drift_gap_cm", "el_gap_cm", "W_eV", "E_xray_eV", "xray_attenuation_cm",
                    "spe_area_mV_us", "spe_rise_ns", "spe_decay_ns", "s1_fast_tau_ns", "s1_slow_tau_ns",
                    "recomb_a_V_cm", "gs2_ref_field_V_cm", "gs2_ref_mV_us", "gs2_high_field_V_cm",
                    "gs2_high_mV_us", "trigger_rate_Hz", "el_voltage_V", "gain_scale")
        for key in positive:
            if not getattr(self, key) > 0:
                raise DataError(f"simulation profile {self.name}: {key} must be positive, got {getattr(self, key)}")
        for key in ("xray_fraction", "background_fraction", "alpha_fraction", "s1_fast_fraction",
                    "background_s1_probability", "recomb_S"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise DataError(f"simulation profile {self.name}: {key} must be in [0, 1], got {getattr(self, key)}")
        for key in ("noise_sigma_mV", "baseline_jitter_mV", "spe_gain_cv", "s1_jitter_us", "s1_mean_pe",
                    "recoil_electron_cv", "xray_fano", "diffusion_DL_mm2_us", "stray_pe_rate_per_us",
                    "alpha_electrons_mean", "alpha_electron_cv", "alpha_track_cm", "alpha_s1_factor",
                    "pre_points", "post_points", "pre_s1_us", "post_s2_us"):
            if not getattr(self, key) >= 0:
                raise DataError(f"simulation profile {self.name}: {key} must be >= 0, got {getattr(self, key)}")
        if self.sample_format not in ("int8", "int16"):
            raise DataError(f"simulation profile {self.name}: sample_format must be 'int8' or 'int16', "
                            f"got {self.sample_format!r}")
        if self.el_voltage_V != round(self.el_voltage_V):
            raise DataError(f"simulation profile {self.name}: el_voltage_V must be a whole number of volts (set "
                            f"names carry integer anode voltages), got {self.el_voltage_V}")
        if self.alpha_fraction + self.background_fraction > 1.0:
            raise DataError(f"simulation profile {self.name}: alpha_fraction + background_fraction exceed 1")
        if self.spe_decay_ns <= self.spe_rise_ns:
            raise DataError(f"simulation profile {self.name}: spe_decay_ns must exceed spe_rise_ns")
        if not self.set_gates_V or any(g <= 0 for g in self.set_gates_V) or len(set(self.set_gates_V)) != len(
                self.set_gates_V):
            raise DataError(f"simulation profile {self.name}: set_gates_V must be distinct positive voltages, "
                            f"got {self.set_gates_V}")
        if max(self.set_gates_V) + self.el_voltage_V > 9999:
            raise DataError(f"simulation profile {self.name}: anode voltage above 9999 V does not fit the set names")
        try:
            physics.normalise_isotope(self.target_isotope)
        except ValueError as err:
            raise DataError(f"simulation profile {self.name}: target_isotope: {err}") from None


PROFILES: dict[str, SimulationProfile] = {
    "tiny": SimulationProfile(
        name="tiny", sampling_rate_Hz=1.0e9, n_points=50_000, frames_per_file=16, n_files=4,
        set_gates_V=(100, 400, 1200), xray_fraction=0.25, alpha_fraction=0.0,
        description="seconds, for tests: 1 GS/s, 3 sets × 4 files × 16 frames"),
    "demo": SimulationProfile(
        # xray_fraction 0.06 (was 0.15): an X-ray converting near the cathode piles up on the recoil S2. On demo
        # seed 3 at 0.15 the recoil areas averaged +7 % (50 V: 0.774 vs truth 0.706; frames without X-rays
        # 0.696); the pile-up veto (s2lib.signal.integration) flags 214 frames, 97 % of them true pile-up, 92 % of
        # the pile-ups starting before the window, but X-rays starting inside the window stay: +4-7 % at 50-
        # 100 V after the veto. The residual scales with xray_fraction; 0.06 with 18 files keeps ≈ 90 accepted
        # X-rays for g_S2 (real runs calibrate from a dedicated X-ray run, domain.md 4.5).
        name="demo", sampling_rate_Hz=1.0e9, n_points=50_000, frames_per_file=48, n_files=18,
        set_gates_V=(50, 100, 200, 400, 800, 1200), xray_fraction=0.06, alpha_fraction=0.002,
        description="the demo book's run: 1 GS/s, 6 sets × 18 files × 48 frames"),
    "realistic": SimulationProfile(
        name="realistic", description="the lab's format: 5 GS/s, 250 000 samples, 49 frames/file, 2 sets × 10 files"),
}
"""The built-in profiles (see the table in the module docs / README)."""
