"""Tests of the synthetic-run generator (s2lib.simulate, s2lib._sim_model): physics truth, timing, files."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from s2lib import _sim_model as M
from s2lib import physics, runs, wfm
from s2lib.errors import DataError
from s2lib.simulate import PROFILES, TRUTH_FIELDS, resolve_profile, set_models, simulate_run

SMALL = {"n_files": 2, "frames_per_file": 8}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run with fewer files (module-wide, written once)."""
    return simulate_run(tmp_path_factory.mktemp("sim") / "run", profile="tiny", seed=7, progress=False, **SMALL)


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((folder / "raw").rglob("*.wfm"))}


# ------------------------------------------------------------------------------------------ pure model
def test_spe_kernel_has_unit_area_and_plausible_shape() -> None:
    for dt in (1e-3, 2e-4):
        k = M.spe_kernel(dt, 1.5, 4.0)
        assert k.sum() * dt == pytest.approx(1.0, rel=1e-12)
        peak_mV = 0.02 * k.max()
        assert 2.0 < peak_mV < 4.0  # domain.md 8: SPE amplitude 2-5 mV
    k = M.spe_kernel(1e-4, 1.5, 4.0)
    above = np.flatnonzero(k >= k.max() / 2)
    assert 4.5 < (above[-1] - above[0]) * 0.1 < 7.5  # FWHM ≈ 6 ns


def test_noiseless_integral_equals_sum_of_pe_areas() -> None:
    prof = resolve_profile("tiny", alpha_fraction=0.1)
    setm = set_models(prof)[0]
    ev = M.draw_file_events(prof, setm, np.random.default_rng(3), 12)
    dt = prof.dt_us
    kernel = M.spe_kernel(dt, prof.spe_rise_ns, prof.spe_decay_ns)
    buf = M.render_pe(12, prof.n_points, dt, prof.t0_us, ev.pe_frame, ev.pe_time_us, ev.pe_area, kernel,
                      dtype=np.float64)
    t_end = prof.t0_us + prof.n_points * dt
    inside = (ev.pe_time_us >= prof.t0_us) & (ev.pe_time_us < t_end)
    assert buf.sum() * dt == pytest.approx(ev.pe_area[inside].sum(), rel=1e-10)
    # per frame, the main S2 alone: Σ signal·dt over the frame = truth area (no PE near the frame end)
    main = ev.pe_component == M.COMP_MAIN_S2
    buf = M.render_pe(12, prof.n_points, dt, prof.t0_us, ev.pe_frame[main], ev.pe_time_us[main], ev.pe_area[main],
                      kernel, dtype=np.float64)
    frame_integrals = buf[:, :prof.n_points].sum(axis=1) * dt
    truth = ev.truth["s2_area_mV_us"]
    ok = ~(ev.truth["s2_end_us"] > t_end - 0.1)
    assert ok.sum() >= 10
    np.testing.assert_allclose(frame_integrals[ok], truth[ok], rtol=1e-10, atol=1e-12)
    assert (ev.truth["event_type"] == M.EVENT_ALPHA).any()  # alpha frames were rendered too


def test_recoil_and_xray_means_match_expectation() -> None:
    prof = resolve_profile("tiny", xray_fraction=0.5)
    for setm in set_models(prof):
        ev = M.draw_file_events(prof, setm, np.random.default_rng(11), 3000)
        rec = ev.truth["event_type"] == M.EVENT_RECOIL
        areas = ev.truth["s2_area_mV_us"][rec]
        se = areas.std(ddof=1) / math.sqrt(areas.size)
        assert abs(areas.mean() - setm.recoil_mean_area_mV_us) < 4 * se
        assert setm.recoil_mean_area_mV_us == pytest.approx(setm.g_s2_mV_us * setm.n_e_mean)
        ne = ev.truth["n_electrons"][rec]
        assert abs(ne.mean() - setm.n_e_mean) < 4 * ne.std() / math.sqrt(ne.size)
        assert 0.2 < ne.std() / ne.mean() < 0.35  # CV 0.25 plus Poisson
        xa = ev.truth["xray_area_mV_us"][ev.truth["has_xray"]]
        assert abs(xa.mean() - setm.xray_mean_area_mV_us) < 4 * xa.std(ddof=1) / math.sqrt(xa.size)
        nx = ev.truth["xray_n_electrons"][ev.truth["has_xray"]]
        n_x = physics.expected_electrons(12300.0, 22.0)
        assert abs(nx.mean() - n_x) < 4 * math.sqrt(0.15 * n_x / nx.size) + 0.5
        assert nx.var() < 0.3 * n_x  # Fano-suppressed, not Poisson
        bkg = ev.truth["event_type"] == M.EVENT_BACKGROUND
        assert 0.02 < bkg.mean() < 0.09 and np.all(ev.truth["s2_area_mV_us"][bkg] == 0)
        assert not ev.truth["has_xray"][bkg].any()


def test_set_physics_uses_s2lib_physics() -> None:
    prof = PROFILES["tiny"]
    density = physics.gas_density_cm3(2.0, 297.0)
    for setm in set_models(prof):
        e_d = setm.gate_V / 1.4
        v = physics.drift_velocity_mm_us(physics.reduced_field_Td(e_d, density))
        assert setm.drift_time_us == pytest.approx(physics.drift_time_us(1.4, v))
        assert setm.el_field_V_cm == pytest.approx(2375.0)
        assert setm.g_s2_mV_us == pytest.approx(0.00359)
        assert setm.recombination == pytest.approx(physics.thomas_imel_recombination(e_d, 400.0, 0.2))
        assert setm.n_exp == pytest.approx(96.8e3 / 22.0, rel=1e-3)
        assert 0.25 < setm.diffusion_sigma_us < 0.8
    assert M.gs2_mV_us(3375.0, prof) == pytest.approx(0.0140)


def test_drift_times_follow_the_model() -> None:
    prof = resolve_profile("tiny", stray_pe_rate_per_us=0.0)
    for setm in set_models(prof):
        ev = M.draw_file_events(prof, setm, np.random.default_rng(5), 200)
        main = ev.pe_component == M.COMP_MAIN_S2
        rec = np.flatnonzero(ev.truth["event_type"] == M.EVENT_RECOIL)
        # the median PE time of a frame = median gate arrival + τ_EL/2 (uniform emission over the transit)
        med = np.array([np.median(ev.pe_time_us[main & (ev.pe_frame == f)]) for f in rec])
        delay = med - ev.truth["t_decay_us"][rec] - setm.el_transit_us / 2
        assert np.all(np.abs(delay - setm.drift_time_us) < 4 * setm.diffusion_sigma_us)
        assert abs(delay.mean() - setm.drift_time_us) < 0.05
        np.testing.assert_allclose(ev.truth["recoil_arrival_us"][rec] - ev.truth["t_decay_us"][rec],
                                   setm.drift_time_us)


def test_truth_windows_decrease_with_drift_field(tiny_run: Path) -> None:
    sets = json.loads((tiny_run / "truth.json").read_text())["sets"]
    fields = [s["drift_field_V_cm"] for s in sets]
    assert fields == sorted(fields)
    starts = [s["s2_window_us"][0] for s in sets]
    ends = [s["s2_window_us"][1] for s in sets]
    assert all(a > b for a, b in zip(starts, starts[1:])) and all(a > b for a, b in zip(ends, ends[1:]))
    assert all(s["r"] > t["r"] for s, t in zip(sets, sets[1:]))  # recombination falls with drift field


def test_xrays_lie_between_s1_and_recoil_s2(tiny_run: Path) -> None:
    n = 0
    for path in sorted((tiny_run / "truth").glob("*.npz")):
        tr = np.load(path)
        x = tr["has_xray"]
        n += int(x.sum())
        assert np.all(tr["xray_time_us"][x] > tr["t_decay_us"][x])
        assert np.all(tr["xray_time_us"][x] < tr["recoil_arrival_us"][x])
        assert np.all((tr["xray_z_cm"][x] > 0) & (tr["xray_z_cm"][x] < 1.4))
        assert np.all(np.isnan(tr["xray_time_us"][~x]))
    assert n > 5


def test_sample_means_in_truth_json(tiny_run: Path) -> None:
    truth = json.loads((tiny_run / "truth.json").read_text())
    assert truth["profile"] == "tiny" and truth["seed"] == 7
    assert truth["g_S2"] == {"2375": pytest.approx(0.00359)}
    assert truth["xray_mean_area_mV_us"]["2375"] == pytest.approx(0.00359 * 12300 / 22)
    for s in truth["sets"]:
        tr = np.load(tiny_run / s["truth_file"])
        assert set(TRUTH_FIELDS) <= set(tr.files)
        rec = tr["event_type"] == 0
        assert s["n_frames"] == tr["event_type"].size == 2 * 8
        assert s["n_recoil"] == rec.sum() and s["n_xray"] == tr["has_xray"].sum()
        assert s["recoil_sample_mean_area_mV_us"] == pytest.approx(tr["s2_area_mV_us"][rec].mean())
        assert abs(s["recoil_sample_mean_area_mV_us"] - s["recoil_mean_area_mV_us"]) < \
            4.5 * s["recoil_sample_mean_err_mV_us"]


# ----------------------------------------------------------------------------------------- written run
def test_files_read_back_and_equal_the_generator(tiny_run: Path) -> None:
    prof = resolve_profile("tiny", **SMALL)
    models = set_models(prof)
    for setm in models:
        files = sorted((tiny_run / "raw" / setm.name).glob("*.wfm"))
        assert [f.name for f in files] == sorted(
            f"SIM_20251009_Gate{int(setm.gate_V):04d}_Anode{int(setm.anode_V):04d}_P2_{i + 1}Wfm.wfm"
            for i in range(2))
        for file_index, path in enumerate(sorted(files, key=lambda p: p.name)):
            with wfm.open_wfm(path) as w:
                h = w.header
                assert (h.n_frames, h.n_points) == (8, 50_000)
                assert h.dt_s == pytest.approx(1e-9) and h.t0_s == pytest.approx(-15e-6)
                assert h.scale_V == pytest.approx(4e-4) and h.offset_V == pytest.approx(-0.0398)
                assert np.all(np.diff(h.gmt_sec + h.gmt_fract) > 0)
                raw = np.array(w.raw)
            expected, _ = M.simulate_file(prof, setm, 7, file_index)
            np.testing.assert_array_equal(raw, expected)


def test_baseline_and_polarity(tiny_run: Path) -> None:
    path = sorted((tiny_run / "raw").rglob("*P2_1Wfm.wfm"))[0]
    tr = np.load(tiny_run / "truth" / f"{path.parent.name}.npz")
    with wfm.open_wfm(path) as w:
        raw = np.array(w.raw, dtype=np.float64)
        mv = np.asarray(w.millivolts(), dtype=np.float64)
    pre = raw[:, :5000]  # −15…−10 µs: no S1, no S2
    assert abs(np.median(pre) - 99.5) <= 0.5 and abs(pre.mean() - 99.5) < 0.3
    assert 0.8 < pre.std() < 1.4  # 0.4 mV noise = 1 LSB, plus quantisation
    baseline = mv[:, :5000].mean()
    assert abs(baseline) < 0.2
    t = -15.0 + np.arange(raw.shape[1]) * 1e-3
    rec = np.flatnonzero(tr["event_type"][:8] == 0)
    for f in rec:
        s2 = (t >= tr["s2_start_us"][f]) & (t <= tr["s2_end_us"][f])
        assert mv[f, s2].min() < baseline - 1.5  # photoelectron pulses go negative in volts
        assert mv[f, s2].mean() < baseline


def test_determinism_and_seed_dependence(tmp_path: Path, tiny_run: Path) -> None:
    again = simulate_run(tmp_path / "a", profile="tiny", seed=7, progress=False, **SMALL)
    assert _digest(again) == _digest(tiny_run)
    assert (again / "run.yaml").read_text() == (tiny_run / "run.yaml").read_text()
    other = simulate_run(tmp_path / "b", profile="tiny", seed=8, progress=False, **SMALL)
    d1, d2 = _digest(other), _digest(tiny_run)
    assert d1.keys() == d2.keys() and all(d1[k] != d2[k] for k in d1)


def test_files_do_not_depend_on_other_sets() -> None:
    prof_all = resolve_profile("tiny", n_files=1, frames_per_file=4)
    prof_one = resolve_profile("tiny", n_files=1, frames_per_file=4, set_gates=[400])
    setm = [s for s in set_models(prof_all) if s.gate_V == 400][0]
    raw_a, _ = M.simulate_file(prof_all, setm, 1, 0)
    raw_b, _ = M.simulate_file(prof_one, set_models(prof_one)[0], 1, 0)
    np.testing.assert_array_equal(raw_a, raw_b)


def test_run_yaml_loads(tiny_run: Path) -> None:
    config = runs.load_config(tiny_run / "run.yaml")
    assert config.run_id == "SIM_TINY"
    assert Path(config.raw_data_path) == (tiny_run / "raw").resolve()
    assert Path(config.output_base) == (tiny_run / "processed").resolve()
    assert config.experiment.target_isotope == "Th228" and config.experiment.drift_gap == 1.4
    run = runs.build_run(config)
    assert [s.name for s in run.sets] == [s.name for s in set_models(resolve_profile("tiny", **SMALL))]


# ------------------------------------------------------------------------------------ API and refusals
def test_overrides_are_validated() -> None:
    with pytest.raises(DataError, match="frames_per_fil"):
        resolve_profile("tiny", frames_per_fil=3)
    with pytest.raises(DataError, match="xray_fraction"):
        resolve_profile("tiny", xray_fraction=1.5)
    with pytest.raises(DataError, match="unknown simulation profile"):
        resolve_profile("huge")
    assert resolve_profile("realistic", n_sets=4).set_gates_V == (50, 300, 800, 1800)
    assert resolve_profile("tiny", set_gates=(50, 800), n_sets=1).set_gates_V == (50,)
    assert resolve_profile("tiny", n_files="3").n_files == 3
    p = PROFILES["realistic"]
    assert (p.sampling_rate_Hz, p.n_points, p.frames_per_file, p.pre_points, p.post_points) == (5e9, 250_000, 49,
                                                                                               16, 16)
    with pytest.raises(Exception):
        p.n_files = 3  # type: ignore[misc]  # frozen


def test_refuses_non_empty_outdir(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        simulate_run(tmp_path, profile="tiny", progress=False, n_files=1, frames_per_file=2)
    with pytest.raises(DataError):  # a raw/ folder that is not ours is never deleted
        (tmp_path / "raw").mkdir()
        simulate_run(tmp_path, profile="tiny", overwrite=True, progress=False, n_files=1, frames_per_file=2)
    out = tmp_path / "sim"
    simulate_run(out, profile="tiny", progress=False, n_files=2, frames_per_file=2)
    simulate_run(out, profile="tiny", overwrite=True, progress=False, n_files=1, frames_per_file=2, set_gates=[200])
    assert [p.name for p in (out / "raw").iterdir()] == ["FieldScan_Gate0200_Anode2100"]
    assert len(list((out / "raw" / "FieldScan_Gate0200_Anode2100").iterdir())) == 1
    assert (tmp_path / "keep.txt").exists()
