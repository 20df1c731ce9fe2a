"""The integration pass (s2lib.analysis.pipeline, s2lib.signal.integration) on tiny simulated runs, checked against the truth."""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

from s2lib.signal import integration
from s2lib.analysis import pipeline
from s2lib.io import store
from s2lib.errors import DataError, WfmError
from s2lib.config.runs import build_run, load_config
from s2lib.sim.simulate import simulate_run
from s2lib.io.store import load_timing, load_xrays
from s2lib.stats.fit_store import load_s2area
from s2lib.io.wfm import read_header


def _run(config: Path, out: Path, raw: Path | None = None):
    cfg = load_config(config)
    changes = {"output_base": out} if raw is None else {"output_base": out, "raw_data_path": raw}
    return build_run(dataclasses.replace(cfg, **changes))


@pytest.fixture(scope="module")
def processed(tiny_run, tmp_path_factory):
    """The tiny run through ``run_integration_pass`` (timing + X-rays + recoil areas in one read), jobs=1."""
    outdir, config, truth = tiny_run
    run = _run(config, tmp_path_factory.mktemp("pass_out"))
    summary = pipeline.run_integration_pass(run, fit=False, verbose=False)
    return run, outdir, truth, summary


def _truth(outdir: Path, name: str) -> dict[str, np.ndarray]:
    return dict(np.load(outdir / "truth" / f"{name}.npz"))


def test_every_frame_integrated_exactly_once(processed):
    run, _, _, summary = processed
    assert summary.ok and summary.prepared and summary.n_files_failed == 0
    for s in run.sets:
        s2 = load_s2area(run.set_output_dir(s.name))
        expected = {(i, j) for i, f in enumerate(s.files) for j in range(read_header(f).n_frames)}
        ids = [tuple(map(int, row)) for row in s2.event_ids]
        assert len(ids) == len(set(ids)) == len(expected) == s2.areas.size      # unique and complete
        assert set(ids) == expected
        assert np.all(np.diff(s2.event_ids[:, 0] * 10**6 + s2.event_ids[:, 1]) > 0)   # files, then frames, in order
        assert np.isfinite(s2.areas).all() and s2.areas.dtype == np.float64
        assert s2.params["n_frames"] == s2.areas.size and s2.params["files_failed"] == []
        assert s2.params["dt_us"] == [pytest.approx(read_header(s.files[0]).dt_us)]
    assert summary.n_frames == sum(r["n_frames"] for r in summary.sets)


def test_mean_recoil_areas_agree_with_truth(processed):
    """Compared: the mean measured area of the frames the truth labels *recoil*, against truth.json's
    ``recoil_mean_area_mV_us`` (the model expectation g_S2·N_e), within max(3 %, 3 standard errors of the
    measured mean). Frames where a true X-ray S2 reaches into the integration window are pile-up that no
    per-frame method separates; they are excluded (and counted)."""
    run, outdir, truth, _ = processed
    for s, ts in zip(run.sets, truth["sets"]):
        tr = _truth(outdir, s.name)
        s2 = load_s2area(run.set_output_dir(s.name))
        ws, we = load_timing(run.set_output_dir(s.name))["window_us"]
        x_lo = tr["xray_time_us"] - 3 * ts["diffusion_sigma_us"]
        x_hi = tr["xray_time_us"] + ts["el_transit_us"] + 3 * ts["diffusion_sigma_us"]
        xray_in_window = tr["has_xray"] & (x_hi > ws) & (x_lo < we)
        sel = (tr["event_type"] == 0) & ~xray_in_window
        a = s2.areas[sel]
        mean, se = a.mean(), a.std(ddof=1) / math.sqrt(a.size)
        expect = ts["recoil_mean_area_mV_us"]
        print(f"{s.name}: {mean:.4f} ± {se:.4f} mV·µs (n = {a.size}, {int(xray_in_window.sum())} X-ray-in-window "
              f"frames excluded) vs truth {expect:.4f}")
        assert abs(mean - expect) <= max(0.03 * expect, 3 * se)


@pytest.fixture(scope="module")
def processed_min_area(tiny_run, tmp_path_factory):
    """The tiny run with the non-default ``min_xray_area = 0.5`` mV·µs (the lab template's 0 accepts single
    photons as X-ray candidates, which the X-ray estimator models; purity is a property of the cut)."""
    outdir, config, truth = tiny_run
    run = _run(config, tmp_path_factory.mktemp("pass_out_min_area"))
    cfg = dataclasses.replace(run.config, xray=dataclasses.replace(run.config.xray, min_xray_area=0.5))
    run = build_run(cfg)
    summary = pipeline.run_integration_pass(run, fit=False, verbose=False)
    return run, outdir, truth, summary


@pytest.fixture(scope="module")
def background_run(tmp_path_factory):
    """Frames without any S2 (stray single photoelectrons only; half of them with an S1)."""
    return simulate_run(tmp_path_factory.mktemp("bg"), profile="tiny", seed=11, progress=False, set_gates=(400,),
                        n_files=8, background_fraction=1.0)


def test_estimator_is_unbiased_on_background_frames(processed, background_run):
    """The recoil window integrated on frames with no signal: the mean equals the stray-photoelectron
    expectation (rate·window·SPE area ≈ 0.007 mV·µs) within 3 SE; the lab's clipping would add ≈ +0.3 mV·µs."""
    run, _, truth, _ = processed
    name = "FieldScan_Gate0400_Anode2300"
    t = load_timing(run.set_output_dir(name))
    files = tuple(str(p) for p in sorted((background_run / "raw" / name).glob("*.wfm")))
    plan = integration.SetPlan(name, files, t["t_s1_us"], tuple(t["window_us"]), run.config.integration.n_pedestal,
                               do_xray=False)
    res = integration.run_sets([plan], progress=False)[0]
    c = json.loads((background_run / "truth.json").read_text())["constants"]
    rate = json.loads((background_run / "truth.json").read_text())["event_mix"]["stray_pe_rate_per_us"]
    expect = rate * (t["window_us"][1] - t["window_us"][0]) * c["spe_mean_area_mV_us"]
    mean, se = res.areas.mean(), res.areas.std(ddof=1) / math.sqrt(res.n_frames)
    print(f"background frames: mean area {mean:.4f} ± {se:.4f} mV·µs (n = {res.n_frames}), expected {expect:.4f}")
    assert res.n_frames == 128
    assert abs(mean - expect) < 3 * se + 0.002
    # the spread is the pedestal error × window length: noise σ/√n_pedestal·L (plus negligible white noise
    # and stray photons), so the SE of the mean is that / √n; a 30 % margin for the sample SD of 128 frames
    length = t["window_us"][1] - t["window_us"][0]
    sd_model = c["noise_sigma_mV"] / math.sqrt(run.config.integration.n_pedestal) * length
    assert se < 1.3 * sd_model / math.sqrt(res.n_frames)
    # the sideband (same length, before S1, after the pedestal samples) has the empty window's distribution
    sb = res.sideband
    assert sb.shape == res.areas.shape and np.isfinite(sb).all()
    sd_w, sd_s = res.areas.std(ddof=1), sb.std(ddof=1)
    print(f"sideband: mean {sb.mean():.4f}, SD {sd_s:.4f} vs window SD {sd_w:.4f} (model {sd_model:.4f})")
    assert abs(sb.mean() - mean) < 3 * math.hypot(se, sd_s / math.sqrt(sb.size)) + 0.002
    assert 0.75 < sd_s / sd_w < 1.33       # F-test bounds for 127/127 degrees of freedom at ~99 %


def test_xray_selection_efficiency_and_purity_with_min_xray_area(processed_min_area):
    """Purity = accepted frames that hold a true X-ray; efficiency over all true X-rays and over the
    *separable* ones: truth X-ray S2 [arrival − 2σ_t, arrival + τ_EL + 2σ_t] inside [t_S1 + min_s1_sep +
    merge gap, window start − min_s2_sep] (σ_t: the set's recoil diffusion, an upper bound; within the merge
    gap of the S1's slow tail the X-ray joins the S1 cluster). An X-ray S2 lasts τ_EL ≈ 4 µs, so only X-rays
    converting near the gate fit between S1 and the recoil S2: the overall efficiency is geometric (measured
    ≈ 0.35 here); the separable ones are found (measured ≈ 0.9-1.0). Bounds: purity ≥ 0.9, overall ≥ 0.25,
    separable ≥ 0.8."""
    run, outdir, truth, _ = processed_min_area
    xc = run.config.xray
    n_acc = n_pure = n_x = n_sep = n_sep_found = 0
    areas = []
    for s, ts in zip(run.sets, truth["sets"]):
        tr = _truth(outdir, s.name)
        t = load_timing(run.set_output_dir(s.name))
        xr = load_xrays(run.set_output_dir(s.name))
        assert xr.results["n_events"] == tr["event_type"].size
        assert sum(xr.results["rejection_reasons"].values()) == xr.results["n_events"]
        assert xr.results["rejection_reasons"]["accepted"] == xr.areas.size == xr.results["n_accepted"]
        acc = np.zeros(tr["event_type"].size, bool)
        acc[xr.event_ids[:, 0] * 16 + xr.event_ids[:, 1]] = True
        hx = tr["has_xray"]
        sig = 2 * ts["diffusion_sigma_us"]
        sep = hx & (tr["xray_time_us"] - sig > t["t_s1_us"] + xc.min_s1_sep + integration.XrayParams().merge_gap_us) \
            & (tr["xray_time_us"] + ts["el_transit_us"] + sig < t["window_us"][0] - xc.min_s2_sep)
        n_acc += int(acc.sum())
        n_pure += int((acc & hx).sum())
        n_x += int(hx.sum())
        n_sep += int(sep.sum())
        n_sep_found += int((acc & sep).sum())
        areas.append(xr.areas)
    purity, eff, eff_sep = n_pure / n_acc, n_pure / n_x, n_sep_found / n_sep
    a = np.concatenate(areas)
    expect = truth["sets"][0]["xray_mean_area_mV_us"]
    se = a.std(ddof=1) / math.sqrt(a.size)
    print(f"X-rays: {n_acc} accepted, purity {purity:.3f}, efficiency {eff:.3f} of {n_x} true, {eff_sep:.3f} of "
          f"{n_sep} separable; mean area {a.mean():.3f} ± {se:.3f} vs truth {expect:.3f} mV·µs")
    assert purity >= 0.9
    assert eff >= 0.25
    assert eff_sep >= 0.8
    assert abs(a.mean() - expect) <= 3 * se + 0.05


def test_jobs_2_gives_identical_results(processed, tmp_path):
    run1, _, _, _ = processed
    run2 = dataclasses.replace(run1, config=dataclasses.replace(run1.config, output_base=tmp_path))
    for s in run1.sets:                                   # same timing, so only the engine differs
        shutil.copytree(run1.set_output_dir(s.name), run2.set_output_dir(s.name))
    pipeline.run_ion_integration(run2, jobs=2, with_xrays=True, fit=False, verbose=False)
    for s in run1.sets:
        a, b = load_s2area(run1.set_output_dir(s.name)), load_s2area(run2.set_output_dir(s.name))
        assert np.array_equal(a.areas, b.areas) and np.array_equal(a.event_ids, b.event_ids)
        xa, xb = load_xrays(run1.set_output_dir(s.name)), load_xrays(run2.set_output_dir(s.name))
        assert np.array_equal(xa.areas, xb.areas) and np.array_equal(xa.event_ids, xb.event_ids)
        assert xa.results["rejection_reasons"] == xb.results["rejection_reasons"]


def test_read_only_run_folder(tiny_run, tmp_path):
    outdir, config, _ = tiny_run
    raw = tmp_path / "raw"
    shutil.copytree(outdir / "raw", raw)
    before = sorted((p.relative_to(raw), p.stat().st_mtime_ns) for p in raw.rglob("*"))
    for p in [raw, *raw.rglob("*")]:
        p.chmod(p.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        run = _run(config, tmp_path / "out", raw)
        summary = pipeline.run_integration_pass(run, fit=False, verbose=False)
        assert summary.ok and summary.n_frames == 192
        after = sorted((p.relative_to(raw), p.stat().st_mtime_ns) for p in raw.rglob("*"))
        assert after == before                             # nothing written, nothing touched
        with pytest.raises(DataError):                     # and the store refuses the raw tree outright
            store.store_s2area(load_s2area(run.set_output_dir(run.sets[0].name)), raw / run.sets[0].name,
                               raw_root=raw)
    finally:
        for p in [raw, *raw.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_interrupted_store_leaves_nothing_loadable(processed, tmp_path, monkeypatch):
    """A failure between writing the arrays and the final s2_results.json (what a kill at that moment
    leaves): load_s2area refuses the folder, both for a fresh folder and over a previous complete result."""
    run1, _, _, _ = processed
    run = dataclasses.replace(run1, config=dataclasses.replace(run1.config, output_base=tmp_path))
    name = run.sets[0].name
    shutil.copytree(run1.set_output_dir(name), run.set_output_dir(name))
    fresh = run.with_sets([name])
    real = store.write_json_atomic

    def dying(path, obj, **kw):
        if Path(path).name == store.S2_RESULTS_FILE and obj.get("status") == "complete":
            raise KeyboardInterrupt("killed after the arrays, before the final JSON")
        return real(path, obj, **kw)

    monkeypatch.setattr(store, "write_json_atomic", dying)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run_ion_integration(fresh, fit=False, verbose=False)
    monkeypatch.undo()
    folder = run.set_output_dir(name)
    assert (folder / store.S2_AREAS_FILE).is_file()
    with pytest.raises(DataError, match="incomplete"):
        load_s2area(folder)
    assert not list(folder.glob(".*.tmp"))


@pytest.fixture()
def damaged(tiny_run, processed, tmp_path):
    """A copy of the tiny run's raw folder with its timing, for corrupting files."""
    outdir, config, _ = tiny_run
    run1 = processed[0]
    raw = tmp_path / "raw"
    shutil.copytree(outdir / "raw", raw)
    run = _run(config, tmp_path / "out", raw)
    for s in run1.sets:
        shutil.copytree(run1.set_output_dir(s.name), run.set_output_dir(s.name))
    return run


def test_corrupt_file_is_reported_counted_and_skipped(damaged):
    """A file cut in half keeps its complete frames (reported partial); a foreign file is skipped (reported
    failed); ``strict`` raises on the first of them."""
    from s2lib.io.wfm import read_header

    run = damaged
    s = run.sets[1]
    bad, foreign = s.files[2], s.files[3]
    os.truncate(bad, bad.stat().st_size // 2)
    foreign.write_bytes(b"not a waveform file")
    h = read_header(bad, allow_partial=True)
    k = h.n_frames
    assert h.partial and h.n_frames_promised == 16 and 0 < k < 16
    out = pipeline.run_ion_integration(run, fit=False, with_xrays=True, verbose=False)
    p = out[s.name].params
    assert p["n_files_failed"] == 1 and p["files_failed"][0]["file"] == foreign.name and p["files_failed"][0]["index"] == 3
    assert foreign.name in p["files_failed"][0]["reason"] and p["files_failed"][0]["field"] == "byte-order mark"
    assert p["files_partial"] == [{"file": bad.name, "index": 2, "frames_read": k, "frames_promised": 16}]
    ids = out[s.name].event_ids
    assert out[s.name].areas.size == 32 + k and 3 not in set(ids[:, 0])
    assert sorted(ids[ids[:, 0] == 2, 1]) == list(range(k))
    assert load_xrays(run.set_output_dir(s.name)).results["files_failed"][0]["file"] == foreign.name
    assert all(out[o.name].areas.size == 64 for o in run.sets if o.name != s.name)
    rows = {r["set_name"]: r for r in pipeline.integration_summary_table(run)}
    assert rows[s.name]["n_files_failed"] == 1 and rows[s.name]["n_frames"] == 32 + k
    with pytest.raises(WfmError, match=bad.name):
        pipeline.run_ion_integration(run, fit=False, strict=True, verbose=False)


def test_set_without_usable_frames_fails_cleanly(damaged):
    run = damaged
    s = run.sets[0]
    for f in s.files:
        f.write_bytes(b"not a waveform file")
    out = pipeline.run_ion_integration(run, verbose=False)        # with fits: the good sets are fitted
    assert out[s.name].method == "failed" and "no usable frames" in out[s.name].params["message"]
    assert all(out[o.name].method == "recoil_integration" for o in run.sets[1:])
    stored = load_s2area(run.set_output_dir(s.name))
    assert stored.params["status"] == "failed" and stored.areas.size == 0
    x = pipeline.run_xray_classification(run, verbose=False)
    assert x[s.name].results["outcome"] == "failed" and x[run.sets[1].name].results["outcome"] == "ok"


def test_dt_from_header_same_areas_at_another_sampling_rate(processed, tmp_path):
    """The tiny run's first set simulated again at 2 GS/s (same seed: same events, other noise): the per-frame
    areas in mV·µs agree within the noise, so dt is taken from each file's header."""
    run1, outdir, _, _ = processed
    name = run1.sets[0].name
    other = simulate_run(tmp_path / "sim", profile="tiny", seed=20260601, progress=False, sampling_rate_Hz=2.0e9,
                         n_points=100_000, set_gates=(100,))
    assert np.allclose(_truth(outdir, name)["s2_area_mV_us"], _truth(other, name)["s2_area_mV_us"])
    run2 = _run(other / "run.yaml", tmp_path / "out")
    pipeline.run_integration_pass(run2, fit=False, verbose=False)
    a1, a2 = load_s2area(run1.set_output_dir(name)), load_s2area(run2.set_output_dir(name))
    assert a1.params["dt_us"] == [pytest.approx(0.001)] and a2.params["dt_us"] == [pytest.approx(0.0005)]
    d = a2.areas - a1.areas
    print(f"2 GS/s − 1 GS/s: mean {d.mean():.4f} ± {d.std(ddof=1) / math.sqrt(d.size):.4f} mV·µs, "
          f"means {a1.areas.mean():.4f} / {a2.areas.mean():.4f}")
    assert abs(d.mean()) < 4 * d.std(ddof=1) / math.sqrt(d.size) + 0.01
    assert abs(a2.areas.mean() / a1.areas.mean() - 1) < 0.05


def test_seed_api_progress_fits_plots_and_helpers(processed, tmp_path, capsys):
    run1, _, _, _ = processed
    name = run1.sets[2].name
    run = dataclasses.replace(run1, config=dataclasses.replace(run1.config, output_base=tmp_path)).with_sets([name])
    shutil.copytree(run1.set_output_dir(name), run.set_output_dir(name))
    fitted = pipeline.run_ion_integration(run, flag_plot=True, fit_config={"model": "gauss", "bin_cuts": (0, 8)})
    out = capsys.readouterr().out
    for line in ("[1/3] Integrating S2 areas using estimated windows from timing...",
                 "[2/3] Fitting", "[3/3] Storing results and generating plots..."):
        assert line in out
    s2 = fitted[name]
    assert s2.fit_result is not None and s2.mean is not None and math.isfinite(s2.mean)
    stored = load_s2area(run.set_output_dir(name))
    assert stored.mean == pytest.approx(s2.mean) and stored.params["window_us"] == load_timing(
        run.set_output_dir(name))["window_us"]
    figs = run.output_dir / "figures"
    for stem in (f"{name}_s2_hist_fit", f"{run.run_id}_s2_vs_drift"):
        assert (figs / f"{stem}.png").is_file() and (figs / f"{stem}.pdf").is_file()
    v = pipeline.validation_frames(run, name, n=3, seed=1)
    assert len(v["traces_mV"]) == 3 and v["t_us"].shape == v["traces_mV"][0].shape
    assert v["s2_window"] == tuple(load_timing(run.set_output_dir(name))["window_us"])
    base = np.concatenate([tr[:500] for tr in v["traces_mV"]])
    assert abs(base.mean()) < 0.1                           # pedestal-subtracted


def test_pileup_flags_stored_beside_every_area_with_min_xray_area(processed_min_area):
    """Every frame keeps its area; ``s2_flags.npy`` (uint8, bit 0 = X-ray pile-up) is stored with it, counted in
    ``params["n_vetoed"]`` and the summary table; with ``min_xray_area = 0.5`` flagged frames hold a true X-ray
    (purity ≥ 0.8)."""
    run, outdir, _, summary = processed_min_area
    n_flag = n_true = 0
    for s, row in zip(run.sets, summary.sets):
        s2 = load_s2area(run.set_output_dir(s.name))
        assert s2.flags is not None and s2.flags.dtype == np.uint8 and s2.flags.shape == s2.areas.shape
        assert s2.params["n_vetoed"] == s2.n_vetoed == row["n_vetoed"] == int(np.count_nonzero(s2.flags))
        assert set(np.unique(s2.flags)) <= {0, integration.FLAG_XRAY_PILEUP}
        tr = _truth(outdir, s.name)
        n_flag += int((s2.flags != 0).sum())
        n_true += int(((s2.flags != 0) & tr["has_xray"]).sum())
    assert n_flag > 0 and n_true / n_flag >= 0.8


def test_default_fit_means_agree_with_truth(tiny_run, tmp_path_factory):
    """The whole pass with the simulated run.yaml, i.e. the lab's keys and NO fit options (the defaults a user
    gets: recoil mixture estimator, ranges from the data). Each set's fitted mean is compared with truth.json's
    ``recoil_sample_mean_area_mV_us`` (the realised mean of the recoil S2 photoelectron areas of that set, without
    noise, stray photons or X-ray pile-up) within max(3 %, 3 standard errors), the standard error being the fit's
    1σ ``mean_err`` (it includes the sampling fluctuation of the set, so against the realised mean it is
    conservative)."""
    outdir, config, truth = tiny_run
    run = _run(config, tmp_path_factory.mktemp("fit_out"))
    assert run.config.fitting.model == "auto" and run.config.fitting.bin_cuts is None
    pipeline.run_integration_pass(run, verbose=False)
    for s, ts in zip(run.sets, truth["sets"]):
        s2 = load_s2area(run.set_output_dir(s.name))
        fr = s2.fit_result
        assert fr.model == "recoil_mixture" and fr.fit_success, fr.reason
        assert s2.sideband is not None and s2.sideband.shape == s2.areas.shape
        expect = ts["recoil_sample_mean_area_mV_us"]
        print(f"{s.name}: {fr.mean:.4f} ± {fr.mean_err:.4f} vs truth {expect:.4f}, p = {fr.p_value:.2g}")
        assert abs(fr.mean - expect) <= max(0.03 * expect, 3 * fr.mean_err)
        assert fr.mean_err < 0.15 * expect          # an informative measurement, not a huge error bar
