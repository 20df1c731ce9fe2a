"""Tests of the synthetic-run generator (s2lib.sim.simulate, s2lib.sim._sim_model): physics truth, timing, files."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from s2lib.sim import _sim_model as M
from s2lib.sim import _sim_render as R
from s2lib.physics import physics
from s2lib.config import runs
from s2lib.io import wfm
from s2lib.errors import DataError
from s2lib.sim.profile import PROFILES
from s2lib.sim.simulate import TRUTH_FIELDS, resolve_profile, set_models, simulate_run
from s2lib.io.wfm import open_wfm, read_header

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
        k = R.spe_kernel(dt, 1.5, 4.0)
        assert k.sum() * dt == pytest.approx(1.0, rel=1e-12)
        peak_mV = 0.02 * k.max()
        assert 2.0 < peak_mV < 4.0  # domain.md 8: SPE amplitude 2-5 mV
    k = R.spe_kernel(1e-4, 1.5, 4.0)
    above = np.flatnonzero(k >= k.max() / 2)
    assert 4.5 < (above[-1] - above[0]) * 0.1 < 7.5  # FWHM ≈ 6 ns


def test_noiseless_integral_equals_sum_of_pe_areas() -> None:
    prof = resolve_profile("tiny", alpha_fraction=0.1)
    setm = set_models(prof)[0]
    ev = M.draw_file_events(prof, setm, np.random.default_rng(3), 12)
    dt = prof.dt_us
    kernel = R.spe_kernel(dt, prof.spe_rise_ns, prof.spe_decay_ns)
    buf = R.render_pe(12, prof.n_points, dt, prof.t0_us, ev.pe_frame, ev.pe_time_us, ev.pe_area, kernel,
                      dtype=np.float64)
    t_end = prof.t0_us + prof.n_points * dt
    inside = (ev.pe_time_us >= prof.t0_us) & (ev.pe_time_us < t_end)
    assert buf.sum() * dt == pytest.approx(ev.pe_area[inside].sum(), rel=1e-10)
    # per frame, the main S2 alone: Σ signal·dt over the frame = truth area (no PE near the frame end)
    main = ev.pe_component == M.COMP_MAIN_S2
    buf = R.render_pe(12, prof.n_points, dt, prof.t0_us, ev.pe_frame[main], ev.pe_time_us[main], ev.pe_area[main],
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
            expected, _ = R.simulate_file(prof, setm, 7, file_index)
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
    raw_a, _ = R.simulate_file(prof_all, setm, 1, 0)
    raw_b, _ = R.simulate_file(prof_one, set_models(prof_one)[0], 1, 0)
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


# --------------------------------------------------------------------------- closure-matrix knobs (issue 8)
KNOB = {"auto_frame": True, "n_files": 1, "frames_per_file": 40, "alpha_fraction": 0.0}


def _events(prof, n: int = 4000, seed: int = 21):
    setm = set_models(prof)[0]
    return setm, M.draw_file_events(prof, setm, np.random.default_rng(seed), n).truth


def test_gain_scale_scales_gs2_and_the_photoelectron_areas() -> None:
    base = resolve_profile("tiny", set_gates=[400])
    big = resolve_profile("tiny", set_gates=[400], gain_scale=2.5)
    s1, t1 = _events(base)
    s2, t2 = _events(big)
    assert s2.g_s2_mV_us == pytest.approx(2.5 * s1.g_s2_mV_us)
    assert s2.recoil_mean_area_mV_us == pytest.approx(2.5 * s1.recoil_mean_area_mV_us)
    assert s2.pe_per_electron == pytest.approx(2.5 * s1.pe_per_electron)   # more PEs, same SPE area
    for setm, tr in ((s1, t1), (s2, t2)):
        a = tr["s2_area_mV_us"][tr["event_type"] == M.EVENT_RECOIL]
        assert abs(a.mean() - setm.recoil_mean_area_mV_us) < 4 * a.std(ddof=1) / math.sqrt(a.size)
        x = tr["xray_area_mV_us"][tr["has_xray"]]
        assert abs(x.mean() - setm.xray_mean_area_mV_us) < 4 * x.std(ddof=1) / math.sqrt(x.size)
    with pytest.raises(DataError, match="gain_scale"):
        resolve_profile("tiny", gain_scale=0.0)


def test_field_aliases_set_gates_and_el_voltage() -> None:
    p = resolve_profile("tiny", drift_fields_V_cm=[20, 2000], el_field_V_cm=4000)
    assert p.set_gates_V == (28, 2800) and p.el_voltage_V == 3200.0
    models = set_models(p)
    assert [m.drift_field_V_cm for m in models] == [pytest.approx(20.0), pytest.approx(2000.0)]
    assert all(m.el_field_V_cm == pytest.approx(4000.0) for m in models)
    assert models[1].name == "FieldScan_Gate2800_Anode6000"
    assert models[0].g_s2_mV_us == pytest.approx(0.00359 * (4000 / 2375) ** M.gs2_exponent(p))
    with pytest.raises(DataError, match="not both"):
        resolve_profile("tiny", drift_fields_V_cm=[100], set_gates=[100])
    with pytest.raises(DataError, match="whole number"):
        resolve_profile("tiny", el_voltage_V=1900.5)


@pytest.mark.parametrize("rate", [0.5e9, 5e9])
def test_auto_frame_holds_pedestal_s1_and_the_latest_s2(tmp_path: Path, rate: float) -> None:
    p = resolve_profile("tiny", sampling_rate_Hz=rate, drift_fields_V_cm=[20, 800], **KNOB)
    models = set_models(p)
    assert p.t0_us == pytest.approx(-3.3 - 0.4 - 2.0)
    t_end = p.t0_us + p.n_points * p.dt_us
    slow = models[0]
    assert t_end == pytest.approx(slow.s2_window_us[1] + 2 * slow.diffusion_sigma_us + 0.4 + 2.0, abs=p.dt_us)
    out = simulate_run(tmp_path / "r", profile=p, seed=4, progress=False)
    truth = json.loads((out / "truth.json").read_text())
    assert truth["constants"]["dt_us"] == pytest.approx(1e6 / rate)
    for setm in models:
        path = sorted((out / "raw" / setm.name).glob("*.wfm"))[0]
        h = read_header(path)
        assert h.dt_s == pytest.approx(1.0 / rate) and h.n_points == p.n_points
        assert h.t0_us == pytest.approx(p.t0_us)
        tr = np.load(out / "truth" / f"{setm.name}.npz")
        rec = tr["event_type"] == M.EVENT_RECOIL
        assert np.all(tr["s2_end_us"][rec] < t_end) and np.all(tr["t_decay_us"] > p.t0_us + 1.5)
    # 20 V/cm needs a long frame: ~ 4× the frame of an 800 V/cm-only run
    fast = resolve_profile("tiny", sampling_rate_Hz=rate, drift_fields_V_cm=[800], **KNOB)
    assert fast.n_points < 0.6 * p.n_points


def test_int16_samples_same_signal_finer_steps(tmp_path: Path) -> None:
    kw = dict(profile="tiny", seed=9, progress=False, drift_fields_V_cm=[400], **KNOB)
    a = simulate_run(tmp_path / "i8", **kw)
    b = simulate_run(tmp_path / "i16", sample_format="int16", **kw)
    fa = sorted((a / "raw").rglob("*.wfm"))[0]
    fb = sorted((b / "raw").rglob("*.wfm"))[0]
    with open_wfm(fa) as w8, open_wfm(fb) as w16:
        assert w8.header.bytes_per_point == 1 and w16.header.bytes_per_point == 2
        assert w16.raw.dtype == np.int16
        assert w16.header.scale_V == pytest.approx(0.4e-3 / 256)
        mv8, mv16 = np.asarray(w8.millivolts(), float), np.asarray(w16.millivolts(), float)
    diff = np.abs(mv8 - mv16)
    assert diff.max() <= 0.2 + 0.4 / 256 + 1e-6          # half an int8 step plus half an int16 step
    assert 0.05 < diff.mean() < 0.15                      # int8 rounding error ~ uniform(0, 0.2) mV
    assert np.unique(np.round(mv16[0] / (0.4 / 256))).size > 4 * np.unique(np.round(mv8[0] / 0.4)).size
    ta, tb = (json.loads((x / "truth.json").read_text()) for x in (a, b))
    assert tb["constants"]["sample_format"] == "int16" and tb["constants"]["lsb_mV"] == pytest.approx(0.4 / 256)
    assert ta["sets"][0]["recoil_sample_mean_area_mV_us"] == tb["sets"][0]["recoil_sample_mean_area_mV_us"]


def test_saturation_is_counted_in_the_truth(tmp_path: Path) -> None:
    # 0.1 mV/LSB with the baseline at raw 100: 23 mV of range below it; the S2s average ~30 mV
    out = simulate_run(tmp_path / "s", profile="tiny", seed=2, progress=False, drift_fields_V_cm=[2000],
                       el_field_V_cm=4000, gain_scale=5.0, scale_mV=0.1, offset_mV=-10.0, **KNOB)
    name = json.loads((out / "truth.json").read_text())["sets"][0]["name"]
    tr = np.load(out / "truth" / f"{name}.npz")
    with open_wfm(sorted((out / "raw").rglob("*.wfm"))[0]) as w:
        raw = np.asarray(w.raw)
        clipped = np.count_nonzero((raw == -128) | (raw == 127), axis=1)
    np.testing.assert_array_equal(tr["n_saturated_samples"], clipped)
    assert clipped.sum() > 0
    assert json.loads((out / "truth.json").read_text())["sets"][0]["n_saturated_frames"] == np.count_nonzero(clipped)


@pytest.mark.parametrize("cv", [0.0, 0.25])
def test_recombination_fluctuation_sets_the_electron_spread(cv: float) -> None:
    setm, tr = _events(resolve_profile("tiny", set_gates=[400], recoil_electron_cv=cv))
    ne = tr["n_electrons"][tr["event_type"] == M.EVENT_RECOIL].astype(float)
    expected = math.sqrt(cv**2 + 1.0 / setm.n_e_mean)     # gamma-distributed mean, then Poisson
    assert ne.std(ddof=1) / ne.mean() == pytest.approx(expected, rel=0.08)
    assert abs(ne.mean() - setm.n_e_mean) < 4 * ne.std(ddof=1) / math.sqrt(ne.size)


@pytest.mark.parametrize("xf,bf", [(0.0, 0.0), (0.15, 0.20)])
def test_xray_and_background_fractions(xf: float, bf: float) -> None:
    _, tr = _events(resolve_profile("tiny", set_gates=[400], xray_fraction=xf, background_fraction=bf,
                                    alpha_fraction=0.0))
    n = tr["event_type"].size
    bkg = tr["event_type"] == M.EVENT_BACKGROUND
    rec = tr["event_type"] == M.EVENT_RECOIL
    assert abs(bkg.mean() - bf) <= 4 * math.sqrt(max(bf * (1 - bf), 1e-9) / n) + 1e-12
    frac_x = tr["has_xray"][rec].mean()
    assert abs(frac_x - xf) <= 4 * math.sqrt(max(xf * (1 - xf), 1e-9) / rec.sum()) + 1e-12
    assert not tr["has_xray"][bkg].any() and np.all(tr["s2_area_mV_us"][bkg] == 0)


def test_ra224_source_changes_the_recoil_energy() -> None:
    th = set_models(resolve_profile("tiny", set_gates=[400]))[0]
    ra = set_models(resolve_profile("tiny", set_gates=[400], target_isotope="Ra224"))[0]
    assert ra.n_exp == pytest.approx(physics.recoil_energy_keV("Ra224") * 1e3 / 22.0)
    assert ra.n_exp / th.n_exp == pytest.approx(physics.recoil_energy_keV("Ra224") / physics.recoil_energy_keV("Th228"))
    assert ra.recoil_mean_area_mV_us > th.recoil_mean_area_mV_us


def test_truth_keeps_realised_means_and_says_what_they_are(tmp_path: Path) -> None:
    out = simulate_run(tmp_path / "t", profile="tiny", seed=5, progress=False, xray_fraction=0.3,
                       drift_fields_V_cm=[100, 800], **{**KNOB, "frames_per_file": 60})
    truth = json.loads((out / "truth.json").read_text())
    assert {"recoil_sample_mean_area_mV_us", "one_minus_r_realised", "xray_sample_mean_area_mV_us"} <= \
        set(truth["definitions"])
    n_x = truth["constants"]["N_x"]
    pooled = []
    for s in truth["sets"]:
        tr = np.load(out / s["truth_file"])
        rec = tr["event_type"] == M.EVENT_RECOIL
        a = tr["s2_area_mV_us"][rec]            # the recoil S2 PE area only: no stray PEs, no X-ray, no noise
        assert s["recoil_sample_mean_area_mV_us"] == pytest.approx(a.mean())
        assert s["recoil_sample_mean_err_mV_us"] == pytest.approx(a.std(ddof=1) / math.sqrt(a.size))
        x = tr["xray_area_mV_us"][tr["has_xray"]]
        assert s["xray_sample_mean_area_mV_us"] == pytest.approx(x.mean())
        assert s["xray_sample_mean_err_mV_us"] == pytest.approx(x.std(ddof=1) / math.sqrt(x.size))
        assert s["recoil_window_sample_mean_area_mV_us"] > s["recoil_sample_mean_area_mV_us"]  # stray PEs in window
        pooled.append(x)
        assert s["one_minus_r"] == pytest.approx(1 - s["r"])
    allx = np.concatenate(pooled)
    el = truth["xray_by_el_field"]["2375"]
    assert el["n_xray"] == allx.size and el["sample_mean_area_mV_us"] == pytest.approx(allx.mean())
    assert el["g_S2_realised"] == pytest.approx(allx.mean() / n_x)
    for s in truth["sets"]:
        expect = s["recoil_sample_mean_area_mV_us"] / el["g_S2_realised"] / truth["constants"]["N_exp"]
        assert s["one_minus_r_realised"] == pytest.approx(expect)
        assert abs(s["one_minus_r_realised"] - s["one_minus_r"]) < 4 * s["one_minus_r_realised_err"]


# ------------------------------------------- truth tables vs the notes' numbers (issue 13, item 5; no physics.py)
# domain.md 1.5 table (2 bar, 297 K): gate V → (E_d V/cm, E/N Td, v_d mm/µs, t_d µs), rounded as printed there
DOMAIN_TABLE_1_5 = {50: (35.7, 0.073, 0.70, 20.0), 100: (71.4, 0.146, 0.93, 15.1), 200: (142.9, 0.293, 1.06, 13.2),
                    400: (285.7, 0.586, 1.18, 11.8), 800: (571.4, 1.172, 1.37, 10.2), 1200: (857.1, 1.757, 1.52, 9.2)}


def _v_drift_by_hand(td: float) -> float:
    """domain.md 1.5: v_d = p0(1 − exp(−p1·rE)) + p2·rE/(1 + p3·rE), mm/µs (Njoya et al. fit constants)."""
    p0, p1, p2, p3 = 0.92809704, 17.17333489, 0.51193002, 0.30107278
    return p0 * (1 - math.exp(-p1 * td)) + p2 * td / (1 + p3 * td)


def test_truth_tables_agree_with_the_notes(tiny_run: Path) -> None:
    """truth.json of a simulated run against numbers computed by hand from domain.md, not through s2lib.physics.physics:
    n = P/(k_B·T) = 2e5/(1.380649e-23·297)·1e-6 = 4.877e19 cm⁻³ (1.4); E/N·1e17 in Td (1.4); the drift velocity
    fit and t_d = 14 mm/v_d (1.5, table); E_R = Q·4/A: 5520.12·4/228 = 96.844 keV (1.2: the lab's 5520.15 gives 96.845); N_exp = E_R/W,
    N_x = 12300/22 = 559.09 e⁻ and g_S2(2375 V/cm) = 0.00359 mV·µs/e⁻ (1.6); Thomas–Imel r = 1 − S·ln(1+ξ)/ξ."""
    truth = json.loads((tiny_run / "truth.json").read_text())
    c = truth["constants"]
    n = 2e5 / (1.380649e-23 * 297.0) * 1e-6
    assert n == pytest.approx(4.877e19, rel=1e-3) and c["gas_density_cm3"] == pytest.approx(n, rel=1e-9)
    assert c["E_R_keV"] == pytest.approx(5520.12 * 4 / 228, abs=0.01) == pytest.approx(96.8, abs=0.05)
    assert c["N_exp"] == pytest.approx(96.845e3 / 22, rel=2e-4) and c["N_x"] == pytest.approx(559.09, abs=0.01)
    assert truth["g_S2"]["2375"] == pytest.approx(0.00359)
    law = truth["g_S2_law"]
    assert law["k"] == pytest.approx(math.log(0.0140 / 0.00359) / math.log(3375 / 2375))
    for s in truth["sets"]:
        e_d = s["gate_V"] / 1.4
        td = e_d / n * 1e17
        v = _v_drift_by_hand(td)
        assert s["drift_field_V_cm"] == pytest.approx(e_d) and s["reduced_drift_field_Td"] == pytest.approx(td)
        assert s["el_field_V_cm"] == pytest.approx((s["anode_V"] - s["gate_V"]) / 0.8)
        assert s["drift_velocity_mm_us"] == pytest.approx(v, rel=1e-9)
        assert s["drift_time_us"] == pytest.approx(14.0 / v, rel=1e-9)
        xi = 400.0 / e_d
        assert s["r"] == pytest.approx(1 - 0.2 * math.log1p(xi) / xi, rel=1e-12)
        assert s["N_e_mean"] == pytest.approx(c["N_exp"] * 0.2 * math.log1p(xi) / xi, rel=1e-9)
        assert s["recoil_mean_area_mV_us"] == pytest.approx(0.00359 * s["N_e_mean"], rel=1e-9)
        if s["gate_V"] in DOMAIN_TABLE_1_5:
            e_tab, td_tab, v_tab, t_tab = DOMAIN_TABLE_1_5[s["gate_V"]]
            assert s["drift_field_V_cm"] == pytest.approx(e_tab, abs=0.05)
            assert s["reduced_drift_field_Td"] == pytest.approx(td_tab, abs=5e-4)
            assert s["drift_velocity_mm_us"] == pytest.approx(v_tab, abs=0.006)   # printed 0.925 → 0.93
            assert s["drift_time_us"] == pytest.approx(t_tab, abs=0.05)
    assert {s["gate_V"] for s in truth["sets"]} & set(DOMAIN_TABLE_1_5)    # at least one tabulated set


def test_truth_tables_for_ra224_agree_with_the_notes() -> None:
    ra = set_models(resolve_profile("tiny", set_gates=[200], target_isotope="Ra224"))[0]
    e_r = 5788.87 * 4 / 224                                               # domain.md 1.2: 103.4 keV
    assert ra.n_exp == pytest.approx(e_r * 1e3 / 22, rel=2e-4) and ra.n_exp == pytest.approx(4699, abs=1.5)
    assert ra.drift_velocity_mm_us == pytest.approx(1.06, abs=0.005)      # table 1.5, gate 200 V
    assert ra.reduced_el_field_Td == pytest.approx(4.87, abs=0.005)       # domain.md 1.4: EL 2375 V/cm
