"""Closure tests (s2lib.validate.validate): the bias / pull / pass logic on hand-computed numbers, and the quick matrix
run end to end with the default configuration, checked against the simulator's truth."""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import norm

from s2lib.validate import validate as V
from s2lib.validate._validate_report import MIN_PULLS, coverage_markdown, markdown_report, restore, summarise
from s2lib.cli import main


# ------------------------------------------------------------------------------------------ pure logic
def test_compare_bias_tolerance_and_pull_by_hand() -> None:
    # bias 0.05 > max(3 % of 1.00, 3 × 0.01) = 0.03: fails; pull against the model 1.02: (1.05 − 1.02)/0.01 = 3
    c = V.compare(1.05, 0.01, 1.00, 1.02)
    assert c["bias"] == pytest.approx(0.05) and c["rel_bias"] == pytest.approx(0.05)
    assert c["tolerance"] == pytest.approx(0.03) and c["pull"] == pytest.approx(3.0)
    assert not c["passed"] and "tolerance" in c["reason"]
    # 3σ = 0.06 is the larger tolerance: a bias of 0.05 passes
    c = V.compare(1.05, 0.02, 1.00, 1.05)
    assert c["tolerance"] == pytest.approx(0.06) and c["passed"] and c["pull"] == pytest.approx(0.0)
    # 3 % is the larger tolerance: 0.029 passes, 0.031 fails
    assert V.compare(10.29, 0.01, 10.0, 10.0)["passed"]
    assert not V.compare(10.31, 0.01, 10.0, 10.0)["passed"]
    # negative truth: the tolerance uses |truth|
    assert V.compare(-1.02, 0.001, -1.0, -1.0)["passed"]
    # an unsuccessful fit never passes, even on the truth; a missing estimate names itself
    c = V.compare(1.0, 0.01, 1.0, 1.0, ok=False, reason="S2 fit: p-value 1e-9")
    assert not c["passed"] and c["reason"] == "S2 fit: p-value 1e-9" and not c["fit_ok"]
    c = V.compare(float("nan"), float("nan"), 1.0, 1.0)
    assert not c["passed"] and "no estimate" in c["reason"] and math.isnan(c["pull"])
    # a zero or missing error: no pull, tolerance 3 % only
    c = V.compare(1.02, 0.0, 1.0, 1.0)
    assert math.isnan(c["pull"]) and c["tolerance"] == pytest.approx(0.03) and c["passed"]


def test_pull_width_by_hand() -> None:
    w = V.pull_width([-1.2, -0.6, 0.0, 0.6, 1.2])
    assert w["n"] == 5 and w["mean"] == pytest.approx(0.0)
    assert w["std"] == pytest.approx(math.sqrt(0.9))                  # (1.44 + .36 + 0 + .36 + 1.44)/4
    assert w["robust_std"] == pytest.approx(1.4826 * 0.6)            # MAD = median(|x|) = 0.6
    assert w["std_err"] == pytest.approx(math.sqrt(0.9) / math.sqrt(8))
    assert w["ok"]
    narrow = V.pull_width([-1.0, -0.5, 0.0, 0.5, 1.0])               # std 0.79, robust 0.74: too narrow
    assert not narrow["ok"] and narrow["std"] == pytest.approx(math.sqrt(0.625))
    wide = V.pull_width([-1.0, 0.0, 1.0, float("nan")])              # NaN ignored; robust 1.48 > 1.25
    assert wide["n"] == 3 and wide["std"] == pytest.approx(1.0) and not wide["ok"]
    assert not V.pull_width([0.3, None])["ok"]                       # too few


GAUSS12 = [float(x) for x in norm.ppf((np.arange(12) + 0.5) / 12)]   # std 0.94, robust std 1.0


def _comp(q: str, bias_ok: bool, pull: float) -> dict:
    return {"quantity": q, "set": "S", "drift_field_V_cm": 100.0, "el_field_V_cm": 2375.0, "estimate": 1.0,
            "error": 0.1, "truth": 1.0, "truth_model": 1.0, "bias": 0.0 if bias_ok else 0.5,
            "rel_bias": 0.0 if bias_ok else 0.5, "tolerance": 0.3, "pull": pull, "passed": bias_ok,
            "reason": "" if bias_ok else "|bias| 0.5 > tolerance 0.3"}


def test_summary_counts_points_names_the_worst_and_judges_widths() -> None:
    good = {"name": "a", "varies": "x", "seconds": 1.0, "passed": True,
            "comparisons": [_comp("A_ion", True, p) for p in GAUSS12]}
    bad = {"name": "b", "varies": "y", "seconds": 1.0, "passed": False, "comparisons": [_comp("A_x", False, 5.0)]}
    doc = summarise([good, bad], quick=False, seconds=3.0, jobs=1)
    assert doc["n_points"] == 2 and doc["n_passed"] == 1 and not doc["passed"]
    assert doc["worst"]["point"] == "b" and doc["worst"]["quantity"] == "A_x"
    assert doc["summary"].startswith("s2book validate: 1/2 points within tolerance")
    assert doc["pull_widths"]["A_ion"]["n"] == 12 and doc["pull_widths"]["A_ion"]["ok"]
    assert doc["pull_widths"]["A_x"]["n"] == 1 < MIN_PULLS and doc["widths_ok"]   # too few: not judged
    md = markdown_report(restore(json.loads(json.dumps(doc, default=float).replace("NaN", "null"))))
    assert "| b | y |" in md and "**FAIL**" in md and "|bias| 0.5 > tolerance 0.3" in md
    # a poor fit's pull (its point already fails) stays out of the width
    poor = {**_comp("A_ion", False, 40.0), "fit_ok": False}
    doc = summarise([good, {**bad, "comparisons": [poor]}], quick=False, seconds=1.0, jobs=1)
    assert doc["pull_widths"]["A_ion"]["n"] == 12 and doc["pull_widths"]["A_ion"]["ok"]
    assert doc["pull_widths"]["A_ion"]["n_excluded_unsuccessful"] == 1
    # all points pass but a judged width is outside 0.8-1.25: the run does not pass
    wide = {**good, "comparisons": [_comp("A_ion", True, p) for p in np.linspace(-4, 4, 12)]}
    doc = summarise([wide], quick=False, seconds=1.0, jobs=1)
    assert doc["n_passed"] == 1 and not doc["widths_ok"] and not doc["passed"]
    assert "pull widths outside" in doc["summary"]


def test_comparisons_map_the_artifacts_to_the_truth() -> None:
    truth = {"sets": [{"name": "S1", "drift_field_V_cm": 50.0, "el_field_V_cm": 2375.0, "n_xray": 4,
                       "recoil_sample_mean_area_mV_us": 1.00, "recoil_mean_area_mV_us": 0.98,
                       "one_minus_r_realised": 0.060, "one_minus_r": 0.058}],
             "xray_by_el_field": {"2375": {"sets": ["S1"], "n_xray": 150, "sample_mean_area_mV_us": 2.0,
                                           "g_S2_realised": 0.0036}},
             "xray_mean_area_mV_us": {"2375": 2.01}, "g_S2": {"2375": 0.00359}}
    rows = [{"set_name": "S1", "s2_mean": "1.01", "s2_mean_err": "0.01", "fit_success": "True",
             "recomb_factor": "0.94", "recomb_error": "0.002", "used_in_model_fit": "True", "reason": ""}]
    entries = [{"el_field_V_cm": 2375.0, "A_x": 2.1, "dA_x": 0.05, "g_S2": 0.00378, "d_g_S2": 0.00003,
                "fit_success": True, "reason": ""}]
    got = {c["quantity"]: c for c in V.comparisons(truth, rows, entries)}
    assert set(got) == {"A_ion", "1-r", "A_x", "g_S2"}
    assert got["A_ion"]["bias"] == pytest.approx(0.01) and got["A_ion"]["pull"] == pytest.approx(3.0)
    assert got["1-r"]["estimate"] == pytest.approx(0.06) and got["1-r"]["pull"] == pytest.approx(1.0)
    # A_x: bias 0.1 within max(3 % of 2.0, 3 × 0.05) = 0.15; pull (2.1 − 2.01)/0.05 = 1.8
    assert got["A_x"]["rel_bias"] == pytest.approx(0.05) and got["A_x"]["tolerance"] == pytest.approx(0.15)
    assert got["A_x"]["passed"] and got["A_x"]["pull"] == pytest.approx(1.8)
    # g_S2: bias 0.00018 > max(3 % of 0.0036, 3 × 0.00003) = 0.000108: fails
    assert got["g_S2"]["truth"] == 0.0036 and got["g_S2"]["truth_model"] == 0.00359
    assert got["g_S2"]["tolerance"] == pytest.approx(0.000108) and not got["g_S2"]["passed"]
    # no X-rays in the truth: A_ion is the only measurable quantity
    truth["xray_by_el_field"]["2375"]["n_xray"] = 0
    assert [c["quantity"] for c in V.comparisons(truth, rows, entries) if c["measurable"]] == ["A_ion"]
    # a failed S2 fit fails its comparison with the analysis' reason
    rows[0].update(fit_success="False", reason="S2 fit: p-value 2e-9 < 1e-3")
    c = V.comparisons(truth, rows, entries)[0]
    assert not c["passed"] and "p-value" in c["reason"]


def test_matrix_spans_every_dimension_of_issue_8() -> None:
    pts = V.matrix()
    names = [p.name for p in pts]
    assert len(names) == len(set(names)) and names[0] == "baseline"
    assert len({p.seed for p in pts}) == len(pts)                      # fixed, distinct seeds
    params = [p.simulation_parameters() for p in pts]
    span = lambda key: {float(p[key]) if not isinstance(p[key], str) else p[key] for p in params}  # noqa: E731
    assert {0.3, 1.0, 5.0} <= span("gain_scale")
    assert {0.5e9, 1e9, 5e9} <= span("sampling_rate_Hz")
    assert {"int8", "int16"} <= span("sample_format") and {"Th228", "Ra224"} <= span("target_isotope")
    assert {0.0, 0.25} <= span("recoil_electron_cv") and {0.0, 0.15} <= span("xray_fraction")
    assert {0.0, 0.20} <= span("background_fraction") and {1500.0, 4000.0} <= span("el_field_V_cm")
    fields = {f for p in params for f in p["drift_fields_V_cm"]}
    assert min(fields) == 20.0 and max(fields) == 2000.0
    frames = {p["n_files"] * p["frames_per_file"] for p in params}
    assert {100, 1000, 10000} <= frames
    assert all(p["auto_frame"] for p in params)
    assert [p.name for p in V.quick_matrix()] == list(V.QUICK_NAMES)
    assert all(q in pts for q in V.quick_matrix())                   # the same points, not a variant


# ------------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, float]:
    out = tmp_path_factory.mktemp("validate")
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["validate", "--quick", "--jobs", "2", "--out", str(out)])
    return out, {"exit_code": result.exit_code, "output": result.output}, time.perf_counter() - started


def test_quick_validation_writes_its_report(quick) -> None:
    out, res, seconds = quick
    doc = json.loads((out / "validation.json").read_text())
    assert doc["kind"] == "quick" and doc["n_points"] == len(V.QUICK_NAMES)
    assert doc["summary"] in res["output"].splitlines()
    assert res["exit_code"] == (0 if doc["passed"] else 1)
    for name in ("validation_pulls", "validation_bias_vs_field", "validation_bias_vs_gain"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert (out / "figures" / f"{name}.pdf").is_file()
    with open(out / "validation.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == sum(len(p["comparisons"]) for p in doc["points"]) > 0
    assert "| baseline |" in (out / "validation.md").read_text()
    assert not any((out / "runs" / p).joinpath("raw").exists() for p in V.QUICK_NAMES)   # raw data removed
    print(f"quick validation: {seconds:.0f} s")


def test_quick_validation_closes_against_the_truth(quick) -> None:
    """Every quick point, analysed with the simulator's run.yaml as written, reproduces the truth: each recoil
    mean A_ion (per set), A_x, g_S2 (per EL field) and 1 − r (per set) within max(3 %, 3σ) of the realised
    truth, re-read here from each point's truth.json and the analysis' own CSV / calibration JSON."""
    out, res, _ = quick
    doc = json.loads((out / "validation.json").read_text())
    failures = []
    for p in doc["points"]:
        assert not p["error"], p["error"]
        folder = out / "runs" / p["name"]
        truth = json.loads((folder / "truth.json").read_text())
        run_id = next((folder / "processed").iterdir()).name
        rows, entries = V.read_estimates(folder / "processed" / run_id, run_id)
        assert {r["set_name"] for r in rows} == {s["name"] for s in truth["sets"]}
        for s in truth["sets"]:
            row = next(r for r in rows if r["set_name"] == s["name"])
            est, err, tr = float(row["s2_mean"]), float(row["s2_mean_err"]), s["recoil_sample_mean_area_mV_us"]
            if not (row["fit_success"] == "True" and abs(est - tr) <= max(0.03 * tr, 3 * err)):
                failures.append(f"{p['name']} {s['name']} A_ion {est:.4g} ± {err:.2g} vs {tr:.4g}")
            omr, domr = 1 - float(row["recomb_factor"] or "nan"), float(row["recomb_error"] or "nan")
            t_omr = s["one_minus_r_realised"]
            if not abs(omr - t_omr) <= max(0.03 * t_omr, 3 * domr):
                failures.append(f"{p['name']} {s['name']} 1-r {omr:.4g} ± {domr:.2g} vs {t_omr:.4g}")
        for e in entries:
            t = truth["xray_by_el_field"][f"{e['el_field_V_cm']:g}"]
            a_x, da_x = e["A_x"] or math.nan, e["dA_x"] or math.nan
            if not (e["fit_success"] and abs(a_x - t["sample_mean_area_mV_us"]) <=
                    max(0.03 * t["sample_mean_area_mV_us"], 3 * da_x)):
                failures.append(f"{p['name']} A_x {a_x:.4g} ± {da_x:.2g} vs {t['sample_mean_area_mV_us']:.4g}")
        assert p["passed"] == all(c["passed"] for c in p["comparisons"] if c["measurable"])
        assert all(c["measurable"] for c in p["comparisons"])            # the quick points hold enough X-rays
        assert {c["quantity"] for c in p["comparisons"]} == set(V.QUANTITIES)
    assert not failures, "\n".join(failures)
    assert doc["passed"] and res["exit_code"] == 0, doc["summary"]


# ------------------------------------------------------------------------------------------ book chapter


@pytest.mark.slow
def test_validation_chapter_in_the_book(quick, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last validation's results become the "Validation" part of the book: closure table, failing points,
    pull and bias figures (found by Sphinx: the HTML build runs with -W)."""
    import shutil

    from s2lib.report.book import build_book, generate_sources
    from s2lib.report.project import init_project

    out, _, _ = quick
    root = tmp_path / "book"
    init_project(root)
    toc, _ = generate_sources(root)
    assert "validation" not in toc.read_text()                       # no results: no chapter
    shutil.copytree(out, root / "validation", ignore=shutil.ignore_patterns("runs"))
    toc, _ = generate_sources(root)
    assert "caption: Validation" in toc.read_text() and "book/runs/validation.md" in toc.read_text()
    page = (root / "book" / "runs" / "validation.md").read_text()
    doc = json.loads((out / "validation.json").read_text())
    assert page.startswith("# Validation") and doc["summary"] in page
    for p in doc["points"]:
        assert f"| {p['name']} |" in page
    assert "../../validation/figures/validation_pulls.png" in page
    monkeypatch.setenv("S2BOOK_FETCH_MATHJAX", "0")
    assert build_book(pdf=False, root=root) == 0
    html = (root / "_build" / "html" / "book" / "runs" / "validation.html").read_text()
    assert "Closure table" in html and "validation_pulls.png" in html
    assert (root / "_build" / "html" / "_images" / "validation_pulls.png").is_file()


def test_too_few_xrays_are_listed_as_not_measurable() -> None:
    truth = {"sets": [{"name": "S1", "drift_field_V_cm": 50.0, "el_field_V_cm": 2375.0, "n_xray": 4,
                       "recoil_sample_mean_area_mV_us": 1.00, "recoil_mean_area_mV_us": 0.98,
                       "one_minus_r_realised": 0.060, "one_minus_r": 0.058}],
             "xray_by_el_field": {"2375": {"sets": ["S1"], "n_xray": V.MIN_XRAYS - 1,
                                           "sample_mean_area_mV_us": 2.0, "g_S2_realised": 0.0036}},
             "xray_mean_area_mV_us": {"2375": 2.01}, "g_S2": {"2375": 0.00359}}
    rows = [{"set_name": "S1", "s2_mean": "1.01", "s2_mean_err": "0.01", "fit_success": "True",
             "recomb_factor": "", "recomb_error": "", "used_in_model_fit": "False", "reason": "g_S2: too few"}]
    entries = [{"el_field_V_cm": 2375.0, "A_x": None, "dA_x": None, "g_S2": None, "d_g_S2": None,
                "fit_success": False, "reason": "only 12 X-rays in the peak"}]
    comps = V.comparisons(truth, rows, entries)
    assert [c["quantity"] for c in comps] == ["A_ion", "1-r", "A_x", "g_S2"]
    assert comps[0]["measurable"] and comps[0]["passed"]
    for c in comps[1:]:
        assert c["measurable"] is False and c["passed"] is None and f"{V.MIN_XRAYS - 1} X-ray frames" in c["reason"]
    doc = summarise([{"name": "p", "varies": "v", "seconds": 1.0, "passed": True, "comparisons": comps}],
                    quick=True, seconds=1.0, jobs=1)
    assert doc["n_passed"] == 1
    md = markdown_report(doc)
    assert "Not measurable" in md and "No failing comparison." in md and "| n/a | n/a | n/a |" in md


def test_toy_coverage_verdict_and_study() -> None:
    from s2lib.validate._validate_coverage import coverage_study, verdict

    assert verdict(0.95, 0.015) == (True, True)
    assert verdict(0.90, 0.015) == (False, True)            # 0.90 + 2 × 0.015 = 0.93 reaches 92 %
    assert verdict(0.88, 0.015) == (False, False)
    assert verdict(0.99, 0.003) == (False, False)            # 0.99 − 0.006 = 0.984 > 98 %
    assert verdict(0.985, 0.003) == (False, True) and verdict(float("nan"), 0.01) == (False, False)
    study = coverage_study(n_toys=12, cases=[("xray", "few", {"mean": 2.0, "n": 60})])
    row = study["rows"][0]
    assert row["n_toys"] == 12 and row["n_ok"] + row["n_poor"] + row["n_failed"] == 12
    assert 0.0 <= row["coverage95"] <= 1.0 and (row["ok"], row["consistent"]) == verdict(row["coverage95"],
                                                                                        row["coverage_err"])
    doc = summarise([], quick=False, seconds=1.0, jobs=1, coverage=study)
    assert "toy coverage" in doc["summary"] and "| xray | few | 12 (" in coverage_markdown(doc)


def test_points_named_keeps_order_and_names_every_unknown_point() -> None:
    from s2lib.validate import validate as v

    assert [p.name for p in v.points_named(["Ra224", "baseline"])] == ["Ra224", "baseline"]
    with pytest.raises(ValueError, match=r"\['nope', 'gain_x9'\].*known: .*'baseline'"):
        v.points_named(["baseline", "nope", "gain_x9"])


def test_faint_xray_point_closes_frame_by_frame(tmp_path: Path) -> None:
    """EL 1500 V/cm: X-ray S2s of ~17 photoelectrons spread over the 4.6 µs EL transit (the point the
    gap-joined cluster selection failed, A_x −94 %). Every accepted candidate is matched with the simulator's
    truth of its frame: the whole S2 is measured, strays do not pass, and A_x, g_S2, 1 − r close."""
    res = V.run_point(V.points_named(["EL_1500"])[0], tmp_path)
    assert not res["error"]
    judged = [c for c in res["comparisons"] if c["quantity"] in ("A_x", "g_S2", "1-r")]
    assert len(judged) == 5 and all(c["passed"] for c in judged), [c["reason"] for c in judged]
    truth = json.loads((tmp_path / "EL_1500" / "truth.json").read_text())
    meas, true, junk = [], [], 0
    for name in truth["xray_by_el_field"]["1500"]["sets"]:
        z = np.load(tmp_path / "EL_1500" / "truth" / f"{name}.npz")
        d = next((tmp_path / "EL_1500").glob(f"processed/*/{name}"))
        row = {(int(f), int(k)): i for i, (f, k) in enumerate(zip(z["file_index"], z["frame_index"]))}
        idx = np.array([row[(int(f), int(k))] for f, k in np.load(d / "xray_event_ids.npy")], dtype=np.int64)
        a, has = np.load(d / "xray_areas.npy"), z["has_xray"][idx]
        meas.append(a[has])
        true.append(z["xray_area_mV_us"][idx][has])
        junk += int((~has).sum())
    m, t = np.concatenate(meas), np.concatenate(true)
    assert m.size >= 30 and junk <= 0.02 * m.size
    assert abs(m.mean() / t.mean() - 1) < 0.03 and np.median(m / t) > 0.95


def test_pull_width_of_correlated_pulls_is_judged_by_its_independent_groups() -> None:
    """Pulls that share an error term (1 − r of every set at one EL field shares its g_S2 error) count as one
    per group: a narrow width from few groups cannot be told from 1 and passes; the same pulls taken as
    independent fail; a width far from 1 fails even grouped."""
    rng = np.random.default_rng(5)
    common = np.repeat(rng.normal(0.0, 0.9, 6), 10)                 # 6 groups of 10: shared part dominates
    pulls = list(0.7 * (common + rng.normal(0.0, 0.45, 60)))
    groups = [i // 10 for i in range(60)]
    ungrouped = V.pull_width(pulls)
    grouped = V.pull_width(pulls, groups=groups)
    assert grouped["n_eff"] == 6 and ungrouped["n_eff"] == 60
    assert not (0.8 <= ungrouped["std"] <= 1.25 and 0.8 <= ungrouped["robust_std"] <= 1.25)   # out of range
    assert not ungrouped["ok"] and grouped["ok"]
    assert grouped["std_err_eff"] == pytest.approx(grouped["std"] / np.sqrt(10.0))
    assert not V.pull_width([0.3 * p for p in pulls], groups=groups)["ok"]          # far too narrow: caught
