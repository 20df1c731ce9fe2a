"""Physics of the xenon-gas TPC test stand: constants, fields, transport, energies, recombination.

Every function is pure and works on floats or numpy arrays. Units: field V/cm, reduced field Td
(1 Td = 1e-17 V·cm²), density cm⁻³, velocity mm/µs, time µs, length cm, energy eV (W, E_x) or keV (recoil).

Provenance of the constants is given next to each one; "domain.md" is ``../shared/notes/domain.md``, the
lab's physics as read from its code and notebooks.
"""
from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "BOLTZMANN_J_PER_K",
    "W_VALUE_EV",
    "E_XRAY_EV",
    "XRAY_ATTENUATION_CM",
    "DEFAULT_PRESSURE_BAR",
    "DEFAULT_TEMPERATURE_K",
    "DEFAULT_DRIFT_GAP_CM",
    "DEFAULT_EL_GAP_CM",
    "ALPHA_DECAY_Q_KEV",
    "PARENT_MASS_NUMBER",
    "RECOIL_DAUGHTER",
    "DRIFT_VELOCITY_PARAMS",
    "gas_density_cm3",
    "reduced_field_Td",
    "drift_field_V_cm",
    "el_field_V_cm",
    "drift_velocity_mm_us",
    "drift_time_us",
    "recoil_energy_keV",
    "expected_electrons",
    "thomas_imel_recombination",
    "empirical_recombination",
    "normalise_isotope",
]

BOLTZMANN_J_PER_K: Final = 1.380649e-23
"""Boltzmann constant (exact, SI 2019)."""

W_VALUE_EV: Final = 22.0
"""Mean energy per electron-ion pair in gaseous xenon at 2 bar, eV (lab's ``Run.W_value``, domain.md 1.6)."""

E_XRAY_EV: Final = 12300.0
"""X-ray energy used for the calibration, eV: radium L X-ray after Th-228 alpha decay (domain.md 1.2)."""

XRAY_ATTENUATION_CM: Final = 2.5
"""Attenuation length of the 12.3 keV X-ray in the gas, cm (lab's X-ray Monte Carlo, domain.md 1.2)."""

DEFAULT_PRESSURE_BAR: Final = 2.0
DEFAULT_TEMPERATURE_K: Final = 297.0
"""Gas state used by every lab run configuration (domain.md 1.1; the lab's dataclass default 293 K is not used)."""

DEFAULT_DRIFT_GAP_CM: Final = 1.4
"""Cathode (source plane) to gate distance, cm (domain.md 1.1)."""

DEFAULT_EL_GAP_CM: Final = 0.8
"""Gate to anode distance (electroluminescence gap), cm (domain.md 1.1)."""

ALPHA_DECAY_Q_KEV: Final = {"Th228": 5520.12, "Ra224": 5788.87, "Rn220": 6404.67, "Bi212": 6207.26,
                            "Po216": 6906.3, "Po212": 8954.12}
"""Alpha-decay Q-values of the Th-228 chain's alpha emitters, keV: the one table of them in s2lib (the sources'
recoil energies below and :mod:`s2lib.alpha.isotopes` read it).

Source: AME2020 (W.J. Huang et al., Chin. Phys. C 45 (2021) 030002) as tabulated by NNDC NuDat 3, checked in
issue 12 against (a) the LNHB/DDEP evaluation of Th-228 (Table de Radionucléides, A.L. Nichols, 2013):
Q_alpha = 5520.08(22) keV, and (b) the thorium-series table of Q values (ENSDF, 1 keV precision): 5.520, 5.789,
6.404, 6.207, 6.906, 8.955 MeV. The lab's recombination operators use 5520.15 keV for Th-228 (domain.md 1.2):
0.03 keV (0.14σ of the evaluation) above this value, 5·10⁻⁶ of the recoil energy.
"""

PARENT_MASS_NUMBER: Final = {"Th228": 228, "Ra224": 224}
"""Mass numbers of the two calibration sources (the isotopes :func:`normalise_isotope` accepts)."""

RECOIL_DAUGHTER: Final = {"Th228": "Ra224", "Ra224": "Rn220"}
"""The recoiling daughter nucleus whose ionisation makes the 'ion' S2 of each source."""

DRIFT_VELOCITY_PARAMS: Final = (0.92809704, 17.17333489, 0.51193002, 0.30107278)
"""(p0, p1, p2, p3) of the electron drift velocity fit in xenon gas, v in mm/µs, E/N in Td.

Fit used by the lab to data of Njoya et al., NIM A 972 (2020) 163965, Fig. 5 (domain.md 1.5). Valid at mid-range
reduced fields (about 0.05-3 Td); outside that range it is an extrapolation.
"""

_ALPHA_MASS_NUMBER: Final = 4
_TD_PER_V_CM2: Final = 1e17


def gas_density_cm3(pressure_bar: ArrayLike, temperature_K: ArrayLike) -> NDArray[np.float64] | float:
    """Number density of an ideal gas, cm⁻³: n = P / (k_B·T), with P in Pa = bar·1e5.

    At 2 bar and 297 K this gives 4.877e19 cm⁻³ (domain.md 1.4).
    """
    pressure_pa = np.asarray(pressure_bar, dtype=float) * 1e5
    temperature = np.asarray(temperature_K, dtype=float)
    if np.any(pressure_pa <= 0) or np.any(temperature <= 0):
        raise ValueError(f"pressure ({pressure_bar} bar) and temperature ({temperature_K} K) must be positive")
    density = pressure_pa / (BOLTZMANN_J_PER_K * temperature) * 1e-6
    return density.item() if density.ndim == 0 else density


def reduced_field_Td(field_V_cm: ArrayLike, density_cm3: ArrayLike) -> NDArray[np.float64] | float:
    """Reduced field E/N in Td: (E [V/cm] / n [cm⁻³]) · 1e17. Example: 142.9 V/cm at 4.877e19 cm⁻³ → 0.293 Td."""
    value = np.asarray(field_V_cm, dtype=float) / np.asarray(density_cm3, dtype=float) * _TD_PER_V_CM2
    return value.item() if value.ndim == 0 else value


def drift_field_V_cm(v_gate_V: ArrayLike, drift_gap_cm: float, v_cathode_V: float = 0.0) -> NDArray[np.float64] | float:
    """Drift field E_d = |V_gate − V_cathode| / d_drift, V/cm (cathode grounded in the field scans, domain.md 1.4)."""
    if drift_gap_cm <= 0:
        raise ValueError(f"drift gap must be positive, got {drift_gap_cm} cm")
    value = np.abs(np.asarray(v_gate_V, dtype=float) - v_cathode_V) / drift_gap_cm
    return value.item() if value.ndim == 0 else value


def el_field_V_cm(v_anode_V: ArrayLike, v_gate_V: ArrayLike, el_gap_cm: float) -> NDArray[np.float64] | float:
    """Electroluminescence field E_EL = (V_anode − V_gate) / d_EL, V/cm (domain.md 1.4)."""
    if el_gap_cm <= 0:
        raise ValueError(f"EL gap must be positive, got {el_gap_cm} cm")
    value = (np.asarray(v_anode_V, dtype=float) - np.asarray(v_gate_V, dtype=float)) / el_gap_cm
    return value.item() if value.ndim == 0 else value


def drift_velocity_mm_us(reduced_field: ArrayLike) -> NDArray[np.float64] | float:
    """Electron drift velocity in xenon gas, mm/µs.

    v(E/N) = p0·(1 − exp(−p1·E/N)) + p2·(E/N) / (1 + p3·E/N), E/N in Td (``DRIFT_VELOCITY_PARAMS``).
    Examples (2 bar, 297 K): 0.146 Td → 0.93 mm/µs; 0.879 Td → 1.28 mm/µs.
    """
    p0, p1, p2, p3 = DRIFT_VELOCITY_PARAMS
    x = np.asarray(reduced_field, dtype=float)
    if np.any(x <= 0):
        raise ValueError("the reduced field must be positive for a drift velocity")
    value = p0 * (1.0 - np.exp(-p1 * x)) + p2 * x / (1.0 + p3 * x)
    return value.item() if value.ndim == 0 else value


def drift_time_us(gap_cm: ArrayLike, velocity_mm_us: ArrayLike) -> NDArray[np.float64] | float:
    """Drift time t = 10·gap[cm] / v[mm/µs], µs. Example: 1.4 cm at 1.06 mm/µs → 13.2 µs."""
    value = 10.0 * np.asarray(gap_cm, dtype=float) / np.asarray(velocity_mm_us, dtype=float)
    return value.item() if value.ndim == 0 else value


def normalise_isotope(name: str) -> str:
    """Canonical isotope label: 'Th-228', 'th228', '228Th' → 'Th228'. Raises ValueError for unknown sources."""
    cleaned = name.replace("-", "").replace("_", "").replace(" ", "").lower()
    for canonical in PARENT_MASS_NUMBER:
        element, mass = canonical[:2].lower(), canonical[2:]
        if cleaned in (element + mass, mass + element):
            return canonical
    raise ValueError(f"unknown source isotope {name!r}; known: {', '.join(PARENT_MASS_NUMBER)}")


def recoil_energy_keV(isotope: str) -> float:
    """Kinetic energy of the daughter recoil of an alpha decay, keV: E_R = Q · m_α / m_parent.

    Th-228 source → Ra-224 recoil, 5520.12·4/228 = 96.8 keV; Ra-224 source → Rn-220 recoil,
    5788.87·4/224 = 103.4 keV (domain.md 1.2; the non-relativistic two-body split with mass numbers).
    """
    canonical = normalise_isotope(isotope)
    return ALPHA_DECAY_Q_KEV[canonical] * _ALPHA_MASS_NUMBER / PARENT_MASS_NUMBER[canonical]


def expected_electrons(energy_eV: ArrayLike, W_eV: float = W_VALUE_EV) -> NDArray[np.float64] | float:
    """Electron-ion pairs produced before recombination: N = E / W. Example: 12 300 eV / 22 eV = 559.1."""
    if W_eV <= 0:
        raise ValueError(f"W must be positive, got {W_eV} eV")
    value = np.asarray(energy_eV, dtype=float) / W_eV
    return value.item() if value.ndim == 0 else value


def thomas_imel_recombination(field_V_cm: ArrayLike, a_V_cm: float, S: float = 1.0) -> NDArray[np.float64] | float:
    """Observed recombination fraction from the Thomas–Imel box model with an extraction factor S.

    r_TI = 1 − ln(1 + ξ)/ξ with ξ = a / E (Thomas & Imel, Phys. Rev. A 36 (1987) 614); the observed fraction
    is r = 1 − S·(1 − r_TI) = 1 − S·ln(1 + ξ)/ξ, S ∈ [0, 1] (domain.md 1.6).
    """
    xi = a_V_cm / np.asarray(field_V_cm, dtype=float)
    collected = np.where(xi > 1e-12, np.log1p(xi) / np.where(xi > 1e-12, xi, 1.0), 1.0 - xi / 2.0)
    value = 1.0 - S * collected
    return value.item() if value.ndim == 0 else value


def empirical_recombination(field_V_cm: ArrayLike, A: float, B: float, S: float = 1.0) -> NDArray[np.float64] | float:
    """Empirical recombination r = 1 − S·(1 − A/(1 + B·E)), E in V/cm, B in cm/V (domain.md 1.6)."""
    r_model = A / (1.0 + B * np.asarray(field_V_cm, dtype=float))
    value = 1.0 - S * (1.0 - r_model)
    return value.item() if value.ndim == 0 else value
