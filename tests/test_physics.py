"""s2lib.physics.physics against the numbers of notes/domain.md sections 1.2-1.6."""
from __future__ import annotations

import math

import numpy as np
import pytest

from s2lib.physics import physics

DENSITY = physics.gas_density_cm3(2.0, 297.0)

# domain.md 1.5: gate V, E_d V/cm, E/N Td, v_d mm/µs, t_d µs (2 bar, 297 K, drift gap 1.4 cm)
TABLE_1_5 = [
    (50, 35.7, 0.073, 0.70, 20.0),
    (100, 71.4, 0.146, 0.93, 15.1),
    (200, 142.9, 0.293, 1.06, 13.2),
    (300, 214.3, 0.439, 1.13, 12.4),
    (400, 285.7, 0.586, 1.18, 11.8),
    (600, 428.6, 0.879, 1.28, 10.9),
    (800, 571.4, 1.172, 1.37, 10.2),
    (1200, 857.1, 1.757, 1.52, 9.2),
]


def _half_unit(printed: float, decimals: int) -> float:
    return 0.5 * 10.0 ** -decimals + 1e-12


def test_gas_density_2bar_297K() -> None:
    assert DENSITY == pytest.approx(4.877e19, rel=1e-4)
    assert physics.gas_density_cm3(2.0, 293.0) == pytest.approx(4.944e19, rel=1e-3)


@pytest.mark.parametrize("bad", [(0.0, 297.0), (-1.0, 297.0), (2.0, 0.0)])
def test_gas_density_rejects_impossible_state(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError):
        physics.gas_density_cm3(*bad)


@pytest.mark.parametrize("gate, e_d, e_n, v_d, t_d", TABLE_1_5)
def test_drift_table(gate: int, e_d: float, e_n: float, v_d: float, t_d: float) -> None:
    field = physics.drift_field_V_cm(gate, physics.DEFAULT_DRIFT_GAP_CM)
    reduced = physics.reduced_field_Td(field, DENSITY)
    velocity = physics.drift_velocity_mm_us(reduced)
    time = physics.drift_time_us(physics.DEFAULT_DRIFT_GAP_CM, velocity)
    assert abs(field - e_d) <= _half_unit(e_d, 1)
    assert abs(reduced - e_n) <= _half_unit(e_n, 3)
    # The table prints v_d(100 V) = 0.93 although the model gives 0.9249 (it rounds up; t_d = 15.1 agrees
    # with 0.9249): allow one unit of the last printed digit for the velocity, half a unit elsewhere.
    assert abs(velocity - v_d) <= (0.01 if gate == 100 else _half_unit(v_d, 2))
    assert abs(time - t_d) <= _half_unit(t_d, 1)


def test_drift_functions_vectorised() -> None:
    gates = np.array([g for g, *_ in TABLE_1_5], dtype=float)
    times = physics.drift_time_us(1.4, physics.drift_velocity_mm_us(
        physics.reduced_field_Td(physics.drift_field_V_cm(gates, 1.4), DENSITY)))
    assert times.shape == gates.shape
    assert np.all(np.diff(times) < 0)  # faster drift at higher field
    np.testing.assert_allclose(times, [row[4] for row in TABLE_1_5], atol=0.05 + 1e-12)


def test_reduced_field_examples() -> None:
    assert physics.reduced_field_Td(142.9, DENSITY) == pytest.approx(0.293, abs=5e-4)
    el = physics.el_field_V_cm(2000.0, 100.0, physics.DEFAULT_EL_GAP_CM)
    assert el == pytest.approx(2375.0)
    assert physics.reduced_field_Td(el, DENSITY) == pytest.approx(4.87, abs=5e-3)


def test_drift_field_uses_gap_and_cathode() -> None:
    assert physics.drift_field_V_cm(200.0, 1.4) == pytest.approx(142.857, abs=1e-3)
    assert physics.drift_field_V_cm(200.0, 1.4, v_cathode_V=-70.0) == pytest.approx(270 / 1.4)
    with pytest.raises(ValueError):
        physics.drift_field_V_cm(200.0, 0.0)
    with pytest.raises(ValueError):
        physics.drift_velocity_mm_us(0.0)


def test_recoil_energies() -> None:
    assert physics.recoil_energy_keV("Th228") == pytest.approx(96.8, abs=0.05)
    assert physics.recoil_energy_keV("Ra224") == pytest.approx(103.4, abs=0.05)
    assert physics.recoil_energy_keV("Th-228") == physics.recoil_energy_keV("Th228")
    assert physics.recoil_energy_keV("ra-224") == physics.recoil_energy_keV("Ra224")
    with pytest.raises(ValueError):
        physics.recoil_energy_keV("Rn222")


def test_expected_electrons() -> None:
    assert physics.expected_electrons(12300.0, 22.0) == pytest.approx(559.1, abs=0.05)
    # the lab rounds E_R to 96.8 keV (→ 4400 e⁻); Q·4/228 = 96.845 keV gives 4402 e⁻
    assert physics.expected_electrons(96.8e3) == pytest.approx(4400.0)
    assert physics.expected_electrons(physics.recoil_energy_keV("Th228") * 1e3) == pytest.approx(4400, rel=1e-3)
    assert physics.expected_electrons(physics.recoil_energy_keV("Ra224") * 1e3) == pytest.approx(4699, abs=2)
    with pytest.raises(ValueError):
        physics.expected_electrons(12300.0, 0.0)


@pytest.mark.parametrize("S", [0.2, 0.9, 1.0])
def test_thomas_imel_limits(S: float) -> None:
    # ξ = a/E → 0 (weak recombination, strong field): everything extracted is collected, r → 1 − S
    assert physics.thomas_imel_recombination(1e12, 500.0, S) == pytest.approx(1 - S, abs=1e-9)
    assert physics.thomas_imel_recombination(1e3, 1e-9, S) == pytest.approx(1 - S, abs=1e-9)
    # ξ → ∞ (field → 0): everything recombines, r → 1
    assert physics.thomas_imel_recombination(1e-6, 500.0, S) == pytest.approx(1.0, abs=1e-6)


def test_thomas_imel_formula_and_monotony() -> None:
    fields = np.array([35.7, 71.4, 142.9, 285.7, 857.1])
    r = physics.thomas_imel_recombination(fields, 284.0, 0.212)
    xi = 284.0 / fields
    np.testing.assert_allclose(r, 1 - 0.212 * np.log1p(xi) / xi, rtol=1e-12)
    assert np.all(np.diff(r) < 0)  # less recombination at higher field


def test_empirical_recombination() -> None:
    r = physics.empirical_recombination(100.0, 0.835, 0.0056, 0.214)
    assert r == pytest.approx(1 - 0.214 * (1 - 0.835 / (1 + 0.56)))
    assert physics.empirical_recombination(0.0, 0.835, 0.0056, 1.0) == pytest.approx(0.835)


def test_lab_recombination_example() -> None:
    """domain.md 1.6: A = 1.7 mV·µs at g_S2 = 0.00359 mV·µs/e⁻ → ~474 e⁻ → r = 0.892 with N_exp = 4400."""
    n_meas = 1.7 / 0.00359
    n_exp = physics.expected_electrons(physics.recoil_energy_keV("Th228") * 1e3, physics.W_VALUE_EV)
    assert n_meas == pytest.approx(474, abs=1)
    assert n_exp == pytest.approx(4400, rel=1e-3)
    assert 1 - n_meas / n_exp == pytest.approx(0.892, abs=5e-4)
    assert 1 - n_meas / 4400.0 == pytest.approx(0.892, abs=5e-4)
    g_s2 = 2.005 / physics.expected_electrons(physics.E_XRAY_EV)  # RUN21 X-ray mean → g_S2
    assert g_s2 == pytest.approx(0.00359, abs=5e-6)
    assert math.isclose(physics.W_VALUE_EV, 22.0) and math.isclose(physics.E_XRAY_EV, 12300.0)
