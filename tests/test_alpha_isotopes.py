"""The isotope table against hand numbers: Q-values vs the cited evaluations, line energies vs two-body
kinematics with the daughter levels, and the recoil energy conventions (Q·4/A vs E_alpha·m_alpha/m_daughter)."""
from __future__ import annotations

import pytest

from s2lib.alpha.isotopes import CHAIN, ISOTOPES, recoil_energy_keV, recoil_energy_two_body_keV

# Q_alpha of the thorium-series table (ENSDF, MeV, 1 keV precision) and DDEP's Th-228 evaluation 5520.08(22) keV
SERIES_Q_MEV = {"Th228": 5.520, "Ra224": 5.789, "Rn220": 6.404, "Po216": 6.906, "Bi212": 6.207, "Po212": 8.955}
# daughter level (keV) fed by each listed line (ENSDF level schemes: Ra-224 84.37, Rn-220 241.0, Tl-208 39.86)
LEVELS_KEV = {("Th228", 0): 0.0, ("Th228", 1): 84.37, ("Ra224", 0): 0.0, ("Ra224", 1): 241.0, ("Rn220", 0): 0.0,
              ("Bi212", 0): 39.86, ("Bi212", 1): 0.0, ("Po216", 0): 0.0, ("Po212", 0): 0.0}


def test_q_values_match_the_cited_tables():
    for name, q in SERIES_Q_MEV.items():
        assert abs(ISOTOPES[name].q_keV - 1e3 * q) <= 1.0, name
    assert abs(ISOTOPES["Th228"].q_keV - 5520.08) <= 0.22            # DDEP, within its 1σ
    assert [line.intensity for line in ISOTOPES["Th228"].lines] == [0.734, 0.260]   # DDEP 73.4(5) %, 26.0(5) %


def test_lines_follow_two_body_kinematics_from_q_and_the_level():
    for (name, k), level in LEVELS_KEV.items():
        iso = ISOTOPES[name]
        predicted = (iso.q_keV - level) * (iso.mass_number - 4) / iso.mass_number
        assert abs(iso.lines[k].energy_keV - predicted) < 0.6, (name, k, predicted)


def test_recoil_energy_q_convention_hand_numbers():
    # E_R = Q·4/A: 5520.12·4/228, 5788.87·4/224, 6404.67·4/220, 6906.3·4/216, 8954.12·4/212
    hand = [96.8442, 103.3727, 116.4485, 127.8944, 168.9457]
    assert [recoil_energy_keV(n) for n in CHAIN] == pytest.approx(hand, abs=1e-3)


def test_two_body_recoil_agrees_with_q_convention_for_ground_state_lines():
    # Th-228 by hand: 5423.15 keV · 4.00260325 u / 224.020212 u = 96.896 keV
    assert recoil_energy_two_body_keV("Th228") == pytest.approx(96.896, abs=2e-3)
    for name in CHAIN:
        assert recoil_energy_two_body_keV(name) / recoil_energy_keV(name) - 1 == pytest.approx(0.0, abs=1e-3)
    # Bi-212's strongest line feeds the 39.86 keV level: its recoil is (Q − 39.86)·4/212 — the convention differs
    assert recoil_energy_two_body_keV("Bi212") == pytest.approx((6207.26 - 39.86) * 4 / 212, rel=1e-3)


def test_q_values_are_the_physics_table() -> None:
    """One table of Q-values: the isotope table reads physics.ALPHA_DECAY_Q_KEV, and the sources' recoil energies of
    both modules agree (Th-228: 5520.12·4/228 = 96.8442 keV, Ra-224: 5788.87·4/224 = 103.3727 keV)."""
    from s2lib.physics import physics

    assert {n: i.q_keV for n, i in ISOTOPES.items()} == physics.ALPHA_DECAY_Q_KEV
    for name, hand in (("Th228", 96.8442), ("Ra224", 103.3727)):
        assert physics.recoil_energy_keV(name) == recoil_energy_keV(name) == pytest.approx(hand, abs=1e-4)
