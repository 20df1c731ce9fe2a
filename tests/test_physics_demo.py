"""End-to-end physics on the ``demo`` profile with its run.yaml as written (the lab's keys, no fit options: the
defaults a user gets): simulate → integrate (with the X-ray pile-up veto) → fit → calibrate recovers the
simulator's truth (issue 4 "Must show": g_S2 and every r within their uncertainties; issue 8: no tuning).

Truth compared with, and tolerances (max(3 %, 3 standard errors), the standard error being the reported 1σ):

* recoil mean: ``recoil_sample_mean_area_mV_us``, the realised mean of the set's recoil S2 photoelectron
  areas (no noise, stray photons or X-ray pile-up). X-rays that start inside the window are not vetoable
  frame by frame; the recoil estimator's pile-up component takes them out (s2lib.stats.estimators).
* g_S2: truth.json's model g_S2 of the EL field.
* r: r_sample = 1 − recoil_sample_mean / (g_S2,true · N_exp), the recombination of the realised recoil charge,
  within max(3 % of 1 − r, 3σ total).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from s2lib.analysis import pipeline, timing_stage
from s2lib.config.runs import build_run, load_config
from s2lib.sim.simulate import simulate_run
from s2lib.io.store import load_timing
from s2lib.stats.fit_store import load_s2area

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=[3, 20260101], ids=["seed3", "book-seed"])
def demo(request, tmp_path_factory):
    """The demo profile at seed 3 and at the seed of the demo book (``s2lib.report.book.DEMO_SEED``)."""
    from s2lib.analysis.calibrate_stage import calibrate_and_analyze
    out = simulate_run(tmp_path_factory.mktemp("demo"), profile="demo", seed=request.param, progress=False)
    run = build_run(load_config(out / "run.yaml"))
    timing_stage.prepare_run(run, verbose=False, jobs=2)
    pipeline.run_integration_pass(run, jobs=2, fit=False, verbose=False)
    from s2lib.analysis.fit_stage import fit_run_s2
    areas = {s.name: load_s2area(run.set_output_dir(s.name)) for s in run.sets}
    assert run.config.fitting.model == "auto" and run.config.fitting.bin_cuts is None
    fitted = fit_run_s2(areas, fit_config=run.config.section("fitting"), xrays=pipeline.xray_pileup_inputs(run))
    for s in run.sets:
        from s2lib.io.store import store_s2area
        store_s2area(fitted[s.name], run.set_output_dir(s.name))
    cal = calibrate_and_analyze(run, None)
    return run, out, json.loads((out / "truth.json").read_text()), fitted, cal


def _calibration_json(run):
    return json.loads((run.output_dir / f"{run.run_id}_calibration.json").read_text())


def test_recoil_means_g_s2_and_r_recover_truth(demo):
    run, out, truth, fitted, _ = demo
    cal = _calibration_json(run)
    rows = []
    for s, ts in zip(run.sets, truth["sets"]):
        fr = fitted[s.name].fit_result
        # a poor fit (p < gof_p_min) keeps its numbers: they are compared too, and the set must then be left
        # out of the r(E) model fits; measured: the book seed's 200 V set, p = 1.4e-4 (the paired fit is
        # sensitive to the recoil shape: gamma vs the simulator's compound shape, 772 frames)
        assert fr.quality in ("ok", "poor"), f"{s.name}: {fr.reason}"
        truth_mean = ts["recoil_sample_mean_area_mV_us"]
        pull = (fr.mean - truth_mean) / fr.mean_err
        rows.append((s.name, truth_mean, fr.mean, fr.mean_err, pull))
        assert abs(fr.mean - truth_mean) <= max(0.03 * truth_mean, 3 * fr.mean_err)
    assert sum(fitted[s.name].fit_result.quality == "poor" for s in run.sets) <= 1
    print("\nset                           truth A   fit A ± 1σ          pull")
    for name, t, m, e, p in rows:
        print(f"{name:30s} {t:.4f}   {m:.4f} ± {e:.4f}   {p:+.2f}")
    _check_gs2_and_r(run, truth, cal, {s.name: fitted[s.name].fit_result.quality for s in run.sets})


def _check_gs2_and_r(run, truth, cal, quality):
    """g_S2 and r from ``<run_id>_recomb_factors.csv`` (d_g_S2 and recomb_error: total 1σ)."""
    import csv
    with open(run.output_dir / f"{run.run_id}_recomb_factors.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    by_name = {t["name"]: t for t in truth["sets"]}
    assert {r["set_name"] for r in rows} == set(by_name)
    print("set                           r meas ± 1σ          truth r   pull | g_S2 pull")
    for row in rows:
        t = by_name[row["set_name"]]
        if quality[row["set_name"]] == "poor":       # shown, never used silently
            assert row["used_in_model_fit"] == "False" and "poor fit" in row["reason"], row
            continue
        g, dg = float(row["g_S2"]), float(row["d_g_S2"])
        r, dr = float(row["recomb_factor"]), float(row["recomb_error"])
        r_sample = 1 - t["recoil_sample_mean_area_mV_us"] / (t["g_S2"] * t["N_exp"])
        pg, pr = (g - t["g_S2"]) / dg, (r - r_sample) / dr
        print(f"{row['set_name']:30s} {r:.4f} ± {dr:.4f}   {r_sample:.4f}   {pr:+.2f} | {g:.5f} ± {dg:.5f} "
              f"(truth {t['g_S2']:.5f}) {pg:+.2f}")
        assert abs(g - t["g_S2"]) < max(0.03 * t["g_S2"], 3 * dg)
        assert abs(r - r_sample) < max(0.03 * (1 - r_sample), 3 * dr)


def test_veto_purity_and_efficiency(demo):
    run, out, truth, _, _ = demo
    n_flag = n_pure = n_vetoable = n_caught = 0
    for s, ts in zip(run.sets, truth["sets"]):
        tr = dict(np.load(out / "truth" / f"{s.name}.npz"))
        s2 = load_s2area(run.set_output_dir(s.name))
        assert s2.flags is not None and s2.params["n_vetoed"] == s2.n_vetoed
        ws, we = load_timing(run.set_output_dir(s.name))["window_us"]
        xt, sg = tr["xray_time_us"], ts["diffusion_sigma_us"]
        pileup = tr["has_xray"] & (xt + ts["el_transit_us"] + 3 * sg > ws) & (xt - 3 * sg < we)
        vetoable = pileup & (xt < ws - 0.05)
        flag = s2.flags != 0
        n_flag += flag.sum(); n_pure += (flag & pileup).sum()
        n_vetoable += vetoable.sum(); n_caught += (flag & vetoable).sum()
    purity, eff = n_pure / n_flag, n_caught / n_vetoable
    print(f"veto: {n_flag} flagged, purity {purity:.3f}, efficiency on vetoable {eff:.3f} ({n_vetoable})")
    # with the lab's min_xray_area 0 a cluster of stray photons before the window also flags a frame: purity
    # is ≈ 0.3 (0.93 with a 0.5 mV·µs cut), but such a flag removes a frame independently of its recoil area, so
    # it costs statistics (≈ 10 % of the frames here), not bias; the efficiency is what protects the mean
    n_frames = sum(ts["n_frames"] for ts in truth["sets"])
    assert eff >= 0.8 and n_flag <= 0.15 * n_frames
    rows = pipeline.integration_summary_table(run)
    assert sum(r["n_vetoed"] for r in rows) == n_flag
