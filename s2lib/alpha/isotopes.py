"""Reference energies of the Th-228 chain's alpha emitters and the recoil energies of their daughters.

Sources (keV; checked in issue 12, item 1):

* Q_alpha: :data:`s2lib.physics.physics.ALPHA_DECAY_Q_KEV`, the one table of them (AME2020 as tabulated by NNDC
  NuDat 3; its provenance and cross-checks are there: every Q agrees with the ENSDF thorium-series table to
  ≤ 1 keV, Th-228 with DDEP's 5520.08(22) keV within 1σ). Th-228's alpha branches, 73.4(5) % to the ground
  state and 26.0(5) % to the 84.37 keV level of Ra-224, are DDEP's (Table de Radionucléides, A.L. Nichols, 2013).
* Alpha line energies and intensities: ENSDF via NuDat 3, **from memory of those tables, not downloaded** in
  this project (no network copy of NuDat was available). They are checked for internal consistency: each line
  satisfies E_alpha = (Q − E_level)·(A−4)/A with mass numbers to < 0.6 keV (the recoil takes the rest;
  tested), and the ground-state lines match the lab's table (notes/alpha.md 2.3: Th-228 5.42315, Ra-224
  5.68537, Po-212 8.785 MeV).
* Half-lives: ENSDF (Th-228 1.9116 a; DDEP gives 1.9126(9) a, a 0.05 % difference of no consequence here).

The lab's table mixes conventions: Th-228 5.42315 and Ra-224 5.68537 are alpha kinetic energies, Rn-220 6.40484
and Po-216 6.90628 are Q-values (the alpha energies are 6.288 and 6.778), Po-212 8.785 is the alpha energy
(its Q is 8.954). A daughter implanted in the silicon deposits alpha + recoil, i.e. about Q (minus the pulse
height defect of the recoil), so Q can be right for implanted emitters; the choice is physics, not a constant.
Here it is explicit: ``convention`` "alpha" (every line at its alpha kinetic energy; default), "q_value" (every
isotope at Q) or "lab" (the lab's mixed choice, for comparison with its calibrations).

Recoil energy (what the product uses): E_R = Q·4/A_parent (issue 12; the lab's recombination operators), the
non-relativistic two-body split with mass numbers for a decay to the daughter's ground state. The exact
two-body value E_R = E_alpha·m_alpha/m_daughter with atomic masses (AME2020) is given by
:func:`recoil_energy_two_body_keV` for comparison: both agree to < 0.1 % (tested; e.g. Th-228: 96.844 vs
96.89 keV), far below the S2 statistical errors. Not included in Q·4/A (documented, not corrected): decays to
excited daughter levels give smaller recoils (Th-228 → 84 keV level, 26 %: 95.36 keV; the branch-weighted
mean is 96.46 keV, −0.4 %); this is why ``recoil_energy_keV`` names the ground-state convention.

Bi-212 (alpha branch 35.94 %, lines 6.0508/6.0899 MeV) lies between Ra-224 and Rn-220; it is listed for the
simulator and the spectrum model's awareness but is not a calibration anchor by default (the lab's neither).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from s2lib.physics.physics import ALPHA_DECAY_Q_KEV as _Q

__all__ = ["AlphaLine", "Isotope", "ISOTOPES", "CHAIN", "CONVENTIONS", "ATOMIC_MASS_U", "DAUGHTER",
           "reference_energy_MeV", "recoil_energy_keV", "recoil_energy_two_body_keV", "mean_line_energy_MeV"]

CONVENTIONS: Final = ("alpha", "q_value", "lab")
_ALPHA_MASS_NUMBER: Final = 4


@dataclass(frozen=True)
class AlphaLine:
    """One alpha line: kinetic energy (keV) and intensity per decay of the isotope (fraction)."""

    energy_keV: float
    intensity: float


@dataclass(frozen=True)
class Isotope:
    """An alpha emitter of the chain.

    Attributes:
        name: "Th228", ...;  mass_number: A of the parent;  q_keV: Q_alpha (keV, physics.ALPHA_DECAY_Q_KEV);
        lines: its alpha lines, strongest first (intensities per decay; ENSDF/NuDat 3);
        alpha_branch: fraction of decays that are alpha decays (Bi-212: 0.3594; else 1);
        chain_fraction: decays per Th-228 decay in secular equilibrium (Po-212: 0.6406 = Bi-212 beta branch);
        half_life_s: half-life, s (ENSDF).
    """

    name: str
    mass_number: int
    q_keV: float
    lines: tuple[AlphaLine, ...]
    alpha_branch: float
    chain_fraction: float
    half_life_s: float


ISOTOPES: Final[dict[str, Isotope]] = {
    "Th228": Isotope("Th228", 228, _Q["Th228"], (AlphaLine(5423.15, 0.734), AlphaLine(5340.36, 0.260)), 1.0, 1.0,
                     1.9116 * 365.25 * 86400),
    "Ra224": Isotope("Ra224", 224, _Q["Ra224"], (AlphaLine(5685.37, 0.9492), AlphaLine(5448.6, 0.0506)), 1.0, 1.0,
                     3.6319 * 86400),
    "Rn220": Isotope("Rn220", 220, _Q["Rn220"], (AlphaLine(6288.08, 0.99886),), 1.0, 1.0, 55.6),
    "Bi212": Isotope("Bi212", 212, _Q["Bi212"], (AlphaLine(6050.78, 0.2513), AlphaLine(6089.88, 0.0975)), 0.3594,
                     1.0, 60.55 * 60),
    "Po216": Isotope("Po216", 216, _Q["Po216"], (AlphaLine(6778.3, 0.99998),), 1.0, 1.0, 0.145),
    "Po212": Isotope("Po212", 212, _Q["Po212"], (AlphaLine(8784.86, 1.0),), 1.0, 0.6406, 0.299e-6),
}
"""The chain's alpha emitters (Bi-212 intensities are per Bi-212 decay, summing to its alpha branch)."""

CHAIN: Final = ("Th228", "Ra224", "Rn220", "Po216", "Po212")
"""The five calibration isotopes in order of energy (the lab's anchors, notes/alpha.md 2.3)."""

_LAB_Q: Final = frozenset({"Rn220", "Po216"})

DAUGHTER: Final = {"Th228": "Ra224", "Ra224": "Rn220", "Rn220": "Po216", "Po216": "Pb212", "Bi212": "Tl208",
                   "Po212": "Pb208"}
"""The recoiling daughter of each alpha emitter (the nucleus whose ionisation makes the tagged recoil S2)."""

ATOMIC_MASS_U: Final = {"He4": 4.00260325, "Ra224": 224.0202120, "Rn220": 220.0113941, "Po216": 216.0019152,
                        "Pb212": 211.9918959, "Tl208": 207.9820190, "Pb208": 207.9766525}
"""Atomic masses, u (AME2020, from memory of the table; used only by :func:`recoil_energy_two_body_keV`)."""


def _get(name: str) -> Isotope:
    try:
        return ISOTOPES[name]
    except KeyError:
        raise ValueError(f"unknown isotope {name!r}; known: {', '.join(ISOTOPES)}") from None


def reference_energy_MeV(name: str, convention: str = "alpha") -> float:
    """Reference energy of an isotope's main peak, MeV.

    ``convention``: "alpha" (kinetic energy of the strongest line), "q_value" (Q_alpha: alpha + recoil, a
    daughter implanted in the silicon), "lab" (Q for Rn-220 and Po-216, alpha energy otherwise; notes/alpha.md
    2.3). Raises ValueError for an unknown isotope or convention.
    """
    iso = _get(name)
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown reference convention {convention!r}; expected one of {', '.join(CONVENTIONS)}")
    use_q = convention == "q_value" or (convention == "lab" and name in _LAB_Q)
    return (iso.q_keV if use_q else iso.lines[0].energy_keV) / 1e3


def mean_line_energy_MeV(name: str) -> float:
    """Intensity-weighted mean alpha energy of an isotope's lines, MeV."""
    iso = _get(name)
    w = sum(line.intensity for line in iso.lines)
    return sum(line.energy_keV * line.intensity for line in iso.lines) / w / 1e3


def recoil_energy_keV(name: str) -> float:
    """Kinetic energy of the daughter recoiling from the alpha decay of ``name`` to its ground state, keV:
    E_R = Q·4/A_parent (issue 12; two-body, non-relativistic, mass numbers; the convention of
    s2lib.physics.physics.recoil_energy_keV). Th228 96.8, Ra224 103.4, Rn220 116.4, Po216 127.9, Po212 168.9 keV."""
    iso = _get(name)
    return iso.q_keV * _ALPHA_MASS_NUMBER / iso.mass_number


def recoil_energy_two_body_keV(name: str) -> float:
    """Daughter recoil energy from the measured alpha line, keV: E_R = E_alpha·m_alpha/m_daughter (momentum
    balance, non-relativistic, atomic masses ``ATOMIC_MASS_U``; strongest line). A cross-check of
    :func:`recoil_energy_keV`, not the product's value (module docstring)."""
    iso = _get(name)
    return iso.lines[0].energy_keV * ATOMIC_MASS_U["He4"] / ATOMIC_MASS_U[DAUGHTER[name]]
