"""S1/S2 timing windows (s2lib.signal.timing, timing_stage.prepare_run) against the simulator's per-frame truth."""
from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from s2lib.analysis import pipeline, timing_stage
from s2lib.config.runs import build_run, load_config
from s2lib.sim.simulate import simulate_run
from s2lib.io.store import load_timing
from s2lib.signal.timing_plan import SAMPLE_MIN_FILES, check_consistent, read_layouts, sample_plan


def _run(config: Path, out: Path):
    return build_run(dataclasses.replace(load_config(config), output_base=out))


@pytest.fixture(scope="module")
def prepared(tiny_run, tmp_path_factory):
    outdir, config, truth = tiny_run
    run = _run(config, tmp_path_factory.mktemp("timing_out"))
    timing_stage.prepare_run(run, verbose=False)
    return run, outdir, truth


def test_windows_contain_the_simulated_s2(prepared):
    """≥ 95 % of the truth recoil S2 intervals [first PE, last PE] lie inside the integration window (all sets
    together; ≥ 90 % in every set), and the S1 time matches the simulated decay time."""
    run, outdir, truth = prepared
    inside_all, n_all = 0, 0
    spreads = []
    for s, ts in zip(run.sets, truth["sets"]):
        t = load_timing(run.set_output_dir(s.name))
        assert t["status"] == "ok", t["message"]
        tr = np.load(outdir / "truth" / f"{s.name}.npz")
        rec = tr["event_type"] == 0
        ws, we = t["window_us"]
        inside = (tr["s2_start_us"][rec] >= ws) & (tr["s2_end_us"][rec] <= we)
        print(f"{s.name}: window [{ws:.2f}, {we:.2f}] µs contains {inside.sum()}/{inside.size} recoil S2s; "
              f"S1 {t['t_s1_us']:.3f} ± {t['t_s1_spread_us']:.3f} µs vs truth {tr['t_decay_us'].mean():.3f}")
        assert inside.mean() >= 0.90
        inside_all += int(inside.sum())
        n_all += int(inside.size)
        # S1: the set centre sits on the simulated decay time; the spread is the simulated jitter
        # (truth.json timing_model.s1_jitter_us = 0.1 µs). Tolerances: 3 standard errors. A median of n Gaussian
        # values has SE = 1.2533·σ/√n; a 1.4826·MAD spread has SE = 1.166·σ/√n (asymptotic efficiency 0.368
        # relative to the standard deviation). The 0.05 µs S1 blocks add 0.05/√12 = 0.014 µs in quadrature
        # (1 % of the spread), negligible here.
        jitter = truth["timing_model"]["s1_jitter_us"]
        assert jitter == 0.1
        n_s1 = t["n_s1"]
        assert n_s1 >= 50  # of the 64 frames per set; fewer would mean S1s are lost
        assert abs(t["t_s1_us"] - float(np.median(tr["t_decay_us"]))) < 3 * 1.2533 * jitter / np.sqrt(n_s1)
        assert abs(t["t_s1_spread_us"] - jitter) < 3 * 1.166 * jitter / np.sqrt(n_s1)
        spreads.append((t["t_s1_spread_us"], n_s1))
        # S2 start/end centres match the truth medians of the recoil frames within 3 SE of a median
        n_s2 = t["n_s2"]
        assert n_s2 >= 50
        for key in ("start", "end"):
            se = 1.2533 * t[f"t_s2_{key}_spread_us"] / np.sqrt(n_s2)
            assert abs(t[f"t_s2_{key}_us"] - np.median(tr[f"s2_{key}_us"][rec])) < 3 * se, key
        assert t["xray_window_us"] == [t["t_s1_us"], ws]
        assert t["layout"]["dt_us"] == pytest.approx(truth["constants"]["dt_us"])       # from the header
    assert inside_all / n_all >= 0.95
    # the three sets together: mean of the S1 spreads vs the jitter within 3 SE of that mean
    mean_spread = np.mean([sp for sp, _ in spreads])
    se_mean = np.sqrt(sum((1.166 * 0.1) ** 2 / n for _, n in spreads)) / len(spreads)
    assert abs(mean_spread - 0.1) < 3 * se_mean


def test_timing_stored_per_set_and_in_run_info(prepared):
    run, _, _ = prepared
    info = json.loads((run.output_dir / "run_info.json").read_text())
    assert set(info["timing"]) == set(run.set_names)
    assert info["constants"]["gas_density"]["value"] > 0
    for s in run.sets:
        t = load_timing(run.set_output_dir(s.name))
        assert info["timing"][s.name]["window_us"] == t["window_us"]
        for key in ("t_s1", "t_s1_std", "t_s2_start", "t_s2_start_std", "t_s2_end", "t_s2_end_std"):
            assert np.isfinite(t[key])            # the lab's metadata names are there too
        samples = timing_stage.timing_samples(run, s.name)        # per-frame values behind the robust estimates
        assert t["n_s1"] <= samples["t_s1_us"].size <= t["n_frames_s1"]    # every finite S1; n_s1 after the clip
        # The robust estimate clips outliers before its median, so it may differ from the plain median of all
        # samples by at most the statistical error of a median: 3 x 1.2533 sigma / sqrt(n) (Gaussian core).
        tol = 3 * 1.2533 * t["t_s2_start_std"] / np.sqrt(t["n_s2"])
        assert samples["t_s2_start_us"].size == t["n_s2"] and np.isclose(np.median(samples["t_s2_start_us"]),
                                                                        t["t_s2_start_us"], atol=tol)
    rows = timing_stage.load_timing_table(run)
    assert [r["set_name"] for r in rows] == list(run.set_names) and all(r["status"] == "ok" for r in rows)


def test_progress_lines(tiny_run, tmp_path, capsys):
    _, config, _ = tiny_run
    run = _run(config, tmp_path)
    timing_stage.prepare_run(run, max_frames_s1=20, max_frames_s2=20)
    out = capsys.readouterr().out
    for line in ("[1/4] Gas density: 4.877e+19 cm⁻³", f"[2/4] Loaded {len(run.sets)} sets",
                 "[3/4] Preparing sets (S1 estimation, fields, transport)...", "[4/4] Estimating S2 timing windows..."):
        assert line in out
    t = load_timing(run.set_output_dir(run.sets[0].name))
    assert t["n_frames_s2"] <= 20 + 16 and t["params"]["max_frames_s2"] == 20


def test_sample_plan_bounded_and_stable_when_files_are_appended():
    plan = sample_plan([49] * 100, 1000)
    files = [i for i, _ in plan]
    assert sum(len(f) for _, f in plan) == 1000                          # bounded: max_frames, whatever the run
    assert files == list(range(len(files))) and len(files) >= SAMPLE_MIN_FILES   # the first files, in order
    assert all(len(f) <= math.ceil(1000 / SAMPLE_MIN_FILES) for _, f in plan)
    assert np.array_equal(plan[0][1], np.arange(49))
    for more in (1, 10, 1000):                                           # data taking goes on: same sample
        grown = sample_plan([49] * (100 + more), 1000)
        assert [i for i, _ in grown] == files and all(np.array_equal(a[1], b[1]) for a, b in zip(grown, plan))
    spread = sample_plan([100] * 8, 40)                                  # 10 per file over the first 4 files
    assert [i for i, _ in spread] == [0, 1, 2, 3] and np.array_equal(spread[0][1], np.round(np.linspace(0, 99, 10)))
    small = sample_plan([16] * 4, 1000)                                  # fewer frames than asked: all of them
    assert [i for i, _ in small] == [0, 1, 2, 3] and all(np.array_equal(f, np.arange(16)) for _, f in small)
    assert sample_plan([], 10) == [] and sample_plan([5], 0) == []
    assert [i for i, _ in sample_plan([0, 3, 0, 3], 1000)] == [1, 3]     # empty files are passed over


@pytest.fixture(scope="module")
def other_rate_run(tmp_path_factory):
    """The tiny run's first set at 2 GS/s (same seed and events, other sampling interval and record length)."""
    out = tmp_path_factory.mktemp("rate2g")
    return simulate_run(out, profile="tiny", seed=20260601, progress=False, sampling_rate_Hz=2.0e9,
                        n_points=100_000, set_gates=(100,))


def test_set_whose_files_disagree_on_dt_fails_naming_the_file(tiny_run, other_rate_run, tmp_path):
    outdir, config, _ = tiny_run
    raw = tmp_path / "raw"
    shutil.copytree(outdir / "raw", raw)
    name = "FieldScan_Gate0100_Anode2000"
    odd = sorted((other_rate_run / "raw" / name).glob("*.wfm"))[-1]
    target = raw / name / ("ZZ_" + odd.name)
    shutil.copy(odd, target)
    with pytest.raises(Exception) as err:
        check_consistent(read_layouts(sorted((raw / name).glob("*.wfm")))[0], name)
    assert target.name in str(err.value) and "dt" in str(err.value)
    cfg = dataclasses.replace(load_config(config), raw_data_path=raw, output_base=tmp_path / "out")
    run = build_run(cfg)
    timing_stage.prepare_run(run, verbose=False)
    t = load_timing(run.set_output_dir(name))
    assert t["status"] == "failed" and target.name in t["message"]
    others = [load_timing(run.set_output_dir(s.name))["status"] for s in run.sets if s.name != name]
    assert others and all(st == "ok" for st in others)             # the run goes on


def test_set_without_s2_is_marked_failed(tiny_run, tmp_path):
    """A background-only set: no S2 found → its timing fails with a message; the integration reports it as a
    failed set and the other sets are processed."""
    outdir, config, _ = tiny_run
    bg = simulate_run(tmp_path / "bg", profile="tiny", seed=3, progress=False, set_gates=(800,), n_files=2,
                      background_fraction=1.0, background_s1_probability=1.0)
    raw = tmp_path / "raw"
    raw.mkdir()
    first = sorted((outdir / "raw").iterdir())[0]
    (raw / first.name).symlink_to(first)
    (raw / "FieldScan_Gate0800_Anode2700").symlink_to(bg / "raw" / "FieldScan_Gate0800_Anode2700")
    run = build_run(dataclasses.replace(load_config(config), raw_data_path=raw, output_base=tmp_path / "out"))
    timing_stage.prepare_run(run, verbose=False)
    t = load_timing(run.set_output_dir("FieldScan_Gate0800_Anode2700"))
    assert t["status"] == "failed" and "no S2 found" in t["message"]
    areas = pipeline.run_ion_integration(run, fit=False, verbose=False)
    failed = areas["FieldScan_Gate0800_Anode2700"]
    assert failed.method == "failed" and "no S2 found" in failed.params["message"]
    assert areas[first.name].method == "recoil_integration" and areas[first.name].areas.size == 64
