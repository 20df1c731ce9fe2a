"""Execute the real report notebooks (notebooks/*.md, MyST Markdown notebooks) with papermill through the real runner
(:func:`s2lib.report.report.run_reports`, book root in a temporary folder) and check their numbers against the
simulation's truth, their figures and their glue keys.

Two runs:

* ``calib``: the ``tiny`` profile with more frames and X-rays (8 files per set, X-ray fraction 0.5) and its
  run.yaml as written: the lab's keys only, so every fit uses the defaults a user gets (recoil and X-ray
  mixture estimators, ranges from the data). The stock tiny run has 3 sets x 64 frames and about 4 genuine
  X-rays, too few for g_S2; this one has about 60.
* the session's stock ``tiny_run`` (tests/conftest.py): everything must still execute, and every failed fit or
  calibration must be shown with its reason in the notebooks' tables. It executes in a child process alongside
  the calib run (independent folders; the two share the machine's two cores).

Tolerances (all from the numbers the pipeline reports, plus known, computed shifts):

* recoil mean vs truth ``recoil_sample_mean_area_mV_us`` (the realised mean of the set's recoil S2
  photoelectron areas, without noise, stray photons or X-ray pile-up): within max(3 %, 3 standard errors), the
  standard error being the fit's 1σ (it includes the set's sampling fluctuation: conservative against the
  realised mean).
* g_S2 and A_x vs truth (the model g_S2 at this EL field; X-ray charge does not recombine in the simulation):
  within max(3 %, 3 standard errors) of the reported error.
* r vs truth: r_sample = 1 − recoil_sample_mean / (g_S2,true · N_exp), the recombination of this set's
  realised recoil charge, within max(3 % of 1 − r, 3σ of the reported total error).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import nbformat
import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "notebooks"
STAGES = ("integration", "fitting", "calibration")
EL = "2375"


def _write_config(src: Path, dest: Path, output_base: Path, model: str | None = None) -> Path:
    """A copy of a simulated run's YAML with absolute paths, outputs in ``output_base`` and optionally the S2
    fit model replaced."""
    cfg = yaml.safe_load(src.read_text(encoding="utf-8"))
    cfg["data"]["raw_data_path"] = str((src.parent / cfg["data"]["raw_data_path"]).resolve())
    cfg["data"]["output_base"] = str(output_base)
    if model is not None:
        cfg["pipeline"]["integration"]["fit_config"]["model"] = model
    dest.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return dest


def _execute(configs: list[Path], root: Path) -> float:
    from s2lib.report.report import run_reports

    t0 = time.monotonic()
    status = run_reports(configs, root=root, template_dir=TEMPLATES, cell_timeout=600)
    assert status == 0, "s2book run failed (see the captured output)"
    return time.monotonic() - t0


@pytest.fixture(scope="module")
def stock(tiny_run: tuple, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The stock tiny run's notebooks, executed by the same runner in a child process that starts before the calib
    run executes: the two runs are independent (own book root, own outputs) and each keeps one core busy, so on
    the 2-core test machines they take the time of one. ``wait()`` returns the runner's exit status."""
    import subprocess
    import sys

    base = tmp_path_factory.mktemp("nb_stock")
    config = _write_config(tiny_run[1], base / "run.yaml", base / "processed")
    log = base / "runner.log"
    code = ("import sys; from pathlib import Path; from s2lib.report.report import run_reports; "
            "sys.exit(run_reports([Path(sys.argv[1])], root=Path(sys.argv[2]), template_dir=Path(sys.argv[3]), "
            "cell_timeout=600))")
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-c", code, str(config), str(base / "root"), str(TEMPLATES)],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        yield {"config": config, "root": base / "root", "out_base": base / "processed", "proc": proc, "log": log,
               "truth": tiny_run[2]}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def calib(stock: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from s2lib.sim.simulate import simulate_run

    base = tmp_path_factory.mktemp("nb_calib")
    sim = simulate_run(base / "sim", profile="tiny", seed=20260601, n_files=8, xray_fraction=0.5, progress=False)
    config = _write_config(sim / "run.yaml", base / "run.yaml", base / "processed")   # defaults, unchanged
    root = base / "root"
    seconds = _execute([config], root)
    truth = json.loads((sim / "truth.json").read_text(encoding="utf-8"))
    run_id = yaml.safe_load(config.read_text())["run_id"]
    return {"config": config, "root": root, "truth": truth, "run_id": run_id, "seconds": seconds,
            "out": base / "processed" / run_id, "summary_dir": base / "processed" / "_summary"}


def _notebook(root: Path, run_id: str, stage: str) -> nbformat.NotebookNode:
    path = root / "book" / "runs" / ("summary.ipynb" if stage == "summary" else f"{run_id}/{stage}.ipynb")
    assert path.is_file(), f"executed notebook missing: {path}"
    return nbformat.read(str(path), as_version=4)


def _outputs(nb: nbformat.NotebookNode) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


def _images(nb: nbformat.NotebookNode) -> list:
    return [o for o in _outputs(nb) if "image/png" in o.get("data", {})]


def _markdown(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o["data"]["text/markdown"] for o in _outputs(nb) if "text/markdown" in o.get("data", {}))


def _glued(nb: nbformat.NotebookNode) -> dict[str, str]:
    import ast

    out = {}
    for o in _outputs(nb):
        name = (o.get("metadata", {}).get("scrapbook") or {}).get("name")
        if name:
            out[name] = ast.literal_eval(o["data"]["application/papermill.record/text/plain"])
    return out


def _truth_sets(truth: dict) -> dict[str, dict]:
    return {s["name"]: s for s in truth["sets"]}


# ------------------------------------------------------------------------------------------- calib run
def test_notebooks_execute_cleanly(calib: dict) -> None:
    """Every stage executed, no error or stderr output (warnings would clutter the book), parameters tagged."""
    for stage in (*STAGES, "summary"):
        nb = _notebook(calib["root"], calib["run_id"], stage)
        outs = _outputs(nb)
        assert not [o for o in outs if o["output_type"] == "error"], stage
        stderr = [o["text"] for o in outs if o["output_type"] == "stream" and o["name"] == "stderr"]
        assert not stderr, f"{stage} wrote to stderr: {stderr[:2]}"
        tags = [t for c in nb.cells for t in c.metadata.get("tags", [])]
        assert "parameters" in tags and "injected-parameters" in tags, stage


def test_every_figure_displayed_and_saved_as_png_and_pdf(calib: dict) -> None:
    """Each displayed figure carries PNG (HTML) and PDF (LaTeX); the figures folder holds exactly the displayed
    figures, each as .png and .pdf."""
    n_sets = len(calib["truth"]["sets"])
    expected = {"integration": 1 + 2 * n_sets + 1 + n_sets,   # timing vs field, S1/S2 hists, X-ray bars, waveforms
                "fitting": n_sets + 1,                         # histograms with fits, S2 vs drift
                "calibration": 3,                              # X-ray fit, recombination, normalised S2
                "summary": 1}
    shown = 0
    for stage, count in expected.items():
        images = _images(_notebook(calib["root"], calib["run_id"], stage))
        assert len(images) == count, f"{stage}: {len(images)} figures shown, expected {count}"
        for o in images:
            assert {"image/png", "application/pdf"} <= set(o["data"]), stage
        if stage != "summary":
            shown += count
    for folder, count in ((calib["out"] / "figures", shown), (calib["summary_dir"] / "figures", 1)):
        png = {p.stem for p in folder.glob("*.png")}
        pdf = {p.stem for p in folder.glob("*.pdf")}
        assert png == pdf, f"{folder}: PNG and PDF differ: {sorted(png ^ pdf)}"
        assert len(png) == count, f"{folder}: {len(png)} figures saved, {count} shown"
        for p in folder.glob("*.pdf"):
            assert p.read_bytes()[:5] == b"%PDF-"


def test_recoil_fits_match_truth(calib: dict) -> None:
    from s2lib.stats.fit_store import load_s2area

    truth = _truth_sets(calib["truth"])
    for name, t in truth.items():
        s2 = load_s2area(calib["out"] / name)
        fit = s2.fit_result
        assert fit.fit_success, f"{name}: {fit.reason}"
        assert s2.areas.size == t["n_frames"]
        # This run has xray_fraction 0.5 (8x the demo's) so that calibration has X-rays: the pile-up veto and the
        # estimator's pile-up component must keep the X-ray areas out of the recoil mean.
        assert fit.model == "recoil_mixture" and fit.details["xray_for_pileup"] is not None
        ref = t["recoil_sample_mean_area_mV_us"]
        tol = max(0.03 * ref, 3 * fit.mean_err)
        print(f"{name}: fit {fit.mean:.3f} ± {fit.mean_err:.3f}, truth recoil {ref:.3f}, "
              f"truth window (with pile-up) {t['recoil_window_sample_mean_area_mV_us']:.3f}")
        assert abs(fit.mean - ref) < tol, f"{name}: fit {fit.mean:.3f} ± {fit.mean_err:.3f} vs truth {ref:.3f}"
        assert fit.mean_err < 0.1 * ref


def test_gs2_matches_truth(calib: dict) -> None:
    cal = json.loads((calib["out"] / f"{calib['run_id']}_calibration.json").read_text())
    (entry,) = cal["gs2_by_el_field"]
    assert entry["fit_success"] and entry["n_xrays"] >= 30, entry["reason"]
    true = calib["truth"]["g_S2"][EL]
    assert abs(entry["g_S2"] - true) < max(0.03 * true, 3 * entry["d_g_S2"]), (entry["g_S2"], entry["d_g_S2"], true)
    true_ax = calib["truth"]["xray_mean_area_mV_us"][EL]
    assert abs(entry["A_x"] - true_ax) < max(0.03 * true_ax, 3 * entry["dA_x"])


def test_recombination_matches_truth(calib: dict) -> None:
    from s2lib.analysis.report_helpers import read_table_csv

    rows = read_table_csv(calib["out"] / f"{calib['run_id']}_recomb_factors.csv")
    truth = _truth_sets(calib["truth"])
    assert {r["set_name"] for r in rows} == set(truth)
    for r in rows:
        t = truth[r["set_name"]]
        assert r["used_in_model_fit"], r["reason"]
        r_sample = 1 - t["recoil_sample_mean_area_mV_us"] / (t["g_S2"] * t["N_exp"])
        tol = max(0.03 * (1 - r_sample), 3 * r["recomb_error"])
        assert abs(r["recomb_factor"] - r_sample) < tol, (r["set_name"], r["recomb_factor"], r["recomb_error"],
                                                          r_sample)
        assert math.isclose(r["recomb_error"] ** 2, r["recomb_error_stat"] ** 2 + r["recomb_error_gs2"] ** 2,
                            rel_tol=1e-9)


def test_tables_show_uncertainties_and_units(calib: dict) -> None:
    text = _markdown(_notebook(calib["root"], calib["run_id"], "calibration"))
    for header in ("g_S2 ± 1σ (mV·µs/e⁻)", "A_x ± 1σ (mV·µs)", "r ± 1σ total", "N_e ± 1σ (e⁻)", "Thomas–Imel"):
        assert header in text, header
    assert "×10⁻³" in text and "±" in text
    fit_text = _markdown(_notebook(calib["root"], calib["run_id"], "fitting"))
    assert "Mean ± 1σ (mV·µs)" in fit_text and "χ²/ndf" in fit_text


def test_glue_keys(calib: dict) -> None:
    from s2lib.report.book import KEY_LABELS

    glued = _glued(_notebook(calib["root"], calib["run_id"], "summary"))
    assert set(KEY_LABELS) <= set(glued), sorted(set(KEY_LABELS) - set(glued))
    assert glued["n_runs"] == "1"
    assert glued["gs2"].endswith("mV·µs/e⁻ at E_EL = 2375 V/cm (fit of this run)") and "±" in glued["gs2"]
    for key in ("ax_mean", "ne_range", "recomb_range", "ti_a", "ti_s", "emp_a", "emp_b"):
        assert "±" in glued[key] and "n/a" not in glued[key], (key, glued[key])
    integ = _glued(_notebook(calib["root"], calib["run_id"], "integration"))
    assert integ["n_frames_total"] == sum(s["n_frames"] for s in calib["truth"]["sets"])
    from s2lib.io.store import load_xrays

    assert integ["n_xrays_accepted"] == sum(load_xrays(calib["out"] / s["name"]).areas.size
                                             for s in calib["truth"]["sets"])
    summary = json.loads((calib["summary_dir"] / "summary.json").read_text())
    assert summary["key_numbers"] == {k: glued[k] for k in summary["key_numbers"]}


def test_second_run_is_up_to_date(calib: dict) -> None:
    """Nothing changed: every stage is skipped (the notebooks write deterministic artifacts)."""
    seconds = _execute([calib["config"]], calib["root"])
    man = json.loads((calib["out"] / "manifest.json").read_text())
    assert {s: man["stages"][s]["status"] for s in STAGES} == {s: "skipped-up-to-date" for s in STAGES}
    assert seconds < 30


# ------------------------------------------------------------------------------------------- stock tiny run
def test_stock_tiny_run_shows_failures(stock: dict) -> None:
    """The stock tiny run executes end to end; whatever failed (fits, g_S2) is shown with its reason."""
    from s2lib.stats.fit_store import load_s2area

    status = stock["proc"].wait(timeout=1800)
    assert status == 0, f"s2book run of the stock tiny run failed ({status}):\n{stock['log'].read_text()[-3000:]}"
    config, root, truth = stock["config"], stock["root"], stock["truth"]
    run_id = yaml.safe_load(config.read_text())["run_id"]
    out = stock["out_base"] / run_id
    fit_md = _markdown(_notebook(root, run_id, "fitting"))
    for s in truth["sets"]:
        fit = load_s2area(out / s["name"]).fit_result
        if not fit.fit_success:
            assert f"FAILED: {fit.reason}" in fit_md, s["name"]
    cal = json.loads((out / f"{run_id}_calibration.json").read_text())
    cal_md = _markdown(_notebook(root, run_id, "calibration"))
    for e in cal["gs2_by_el_field"]:
        if not e["fit_success"]:
            assert f"FAILED: {e['reason']}" in cal_md
    assert len(_images(_notebook(root, run_id, "fitting"))) == len(truth["sets"]) + 1
    assert set(_glued(_notebook(root, run_id, "summary"))) >= {"n_runs", "gs2", "recomb_range"}
