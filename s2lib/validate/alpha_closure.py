"""Closure of a whole alpha-tagged run against the simulator's truth: simulate (``s2lib.sim._sim_alpha_pmt``), analyse
with the run.yaml the simulator writes (default configuration: integration pass, alpha stage, calibration), and
compare per set and isotope

* tagging: efficiency = tagged-as-i ∧ truly-i / truly-i among clean silicon frames, purity = tagged-as-i ∧
  truly-i / tagged-as-i, against the alpha stage's expected values (``window_quality``);
* the recoil S2 mean of the isotope's frames (``<run_id>_recomb_factors.csv`` rows with that ``isotope``) against
  the realised mean of the generated recoil S2 areas of the truly-i frames (pass: |bias| ≤ max(3 %, 3σ));
* 1 − r against ``one_minus_r_realised`` of the truth (pass: |relative bias| ≤ 5 %);
* the alpha energy calibration's residuals (keV) and pulls.

``python -m s2lib.validate.alpha_closure OUTDIR [--layout new] [--files 4] [--frames 200]`` prints the tables.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CLOSURE_OVERRIDES", "simulate_and_analyse", "tagged_comparisons", "run_tagged_closure"]

CLOSURE_OVERRIDES: dict[str, Any] = {
    "auto_frame": True, "sampling_rate_Hz": 1.0e9, "recoil_electron_cv": 0.10, "xray_fraction": 0.15,
    "background_fraction": 0.05, "alpha_fraction": 0.0, "el_field_V_cm": 2375.0,
    "drift_fields_V_cm": [100.0, 300.0, 1000.0], "n_files": 3, "frames_per_file": 200,
}
"""The closure run: validate's baseline physics (RUN21 conditions, 10 % recombination fluctuation) at three drift
fields (a Thomas–Imel fit per isotope has one degree of freedom), 15 % X-ray frames (the run calibrates g_S2
itself), 600 frames per set (≈ 80-140 per isotope)."""
S2_REL_TOL, S2_N_SIGMA, OMR_REL_TOL = 0.03, 3.0, 0.05


def simulate_and_analyse(outdir: str | Path, *, layout: str = "old", seed: int = 5, jobs: int = 1,
                         **overrides: Any) -> dict[str, Any]:
    """Simulate an alpha-tagged run under ``outdir`` and analyse it with its own run.yaml (quietly); returns
    ``{"root", "run", "truth", "alpha_doc"}``."""
    from s2lib.alpha.stage import analyse_alpha_run
    from s2lib.analysis.calibrate_stage import calibrate_and_analyze
    from s2lib.analysis.pipeline import run_integration_pass
    from s2lib.config.config import load_config
    from s2lib.config.runs import build_run
    from s2lib.sim._sim_alpha_pmt import simulate_alpha_run

    root = simulate_alpha_run(Path(outdir), seed=seed, layout=layout, **{**CLOSURE_OVERRIDES, **overrides})
    cfg = load_config(root / "run.yaml")
    run = build_run(cfg)
    with contextlib.redirect_stdout(io.StringIO()):
        run_integration_pass(run, jobs=jobs)
        doc = analyse_alpha_run(cfg)
        calibrate_and_analyze(run, save_plots=False, verbose=False)
    truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
    return {"root": root, "run": run, "truth": truth, "alpha_doc": doc}


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def tagged_comparisons(res: dict[str, Any]) -> dict[str, Any]:
    """Tagging, per-isotope S2 and 1 − r comparisons and the calibration residuals of an analysed run."""
    from s2lib.alpha.artifact import load_alpha

    run, truth, doc = res["run"], res["truth"], res["alpha_doc"]
    names = list(doc["windows"]["names"])
    tagging: dict[str, dict[str, int]] = {n: {"true": 0, "tagged": 0, "both": 0} for n in names}
    for s in run.sets:
        folder = run.set_output_dir(s.name)
        tr = np.load(res["root"] / "truth" / f"{s.name}_alpha.npz")
        t_names = [str(n) for n in tr["names"]]
        a = load_alpha(folder)
        label = np.load(folder / "alpha_isotope.npy")
        clean = a.flags == 0
        for i, n in enumerate(names):
            is_i = (tr["isotope"] == t_names.index(n)) & clean
            tagging[n]["true"] += int(is_i.sum())
            tagging[n]["tagged"] += int((label == i).sum())
            tagging[n]["both"] += int(((label == i) & is_i).sum())
    quality = doc["window_quality"]
    tag_rows = [{"isotope": n, "efficiency": c["both"] / max(c["true"], 1), "purity": c["both"] / max(c["tagged"], 1),
                 "expected_efficiency": quality[n]["efficiency"], "expected_purity": quality[n]["purity"],
                 "n_true": c["true"], "n_tagged": c["tagged"]} for n, c in tagging.items()]
    with open(Path(run.output_dir) / f"{run.run_id}_recomb_factors.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["isotope"] not in ("all", "")]
    phys = []
    for r in rows:
        t = truth["alpha"]["sets"][r["set_name"]]["isotopes"][r["isotope"]]
        a, da = _num(r["s2_mean"]), _num(r["s2_mean_err"])
        ta = t["recoil_sample_mean_area_mV_us"]
        omr, tomr = 1.0 - _num(r["recomb_factor"]), t["one_minus_r_realised"]
        phys.append({"set": r["set_name"], "isotope": r["isotope"], "drift_field_V_cm": _num(r["drift_field"]),
                     "s2_mean": a, "s2_mean_err": da, "s2_truth": ta, "s2_rel_bias": a / ta - 1,
                     "s2_pass": bool(abs(a - ta) <= max(S2_REL_TOL * abs(ta), S2_N_SIGMA * da)),
                     "one_minus_r": omr, "one_minus_r_err": _num(r["recomb_error"]), "one_minus_r_truth": tomr,
                     "one_minus_r_rel_bias": omr / tomr - 1, "omr_pass": bool(abs(omr / tomr - 1) <= OMR_REL_TOL)})
    cal = doc["calibrations"][doc["calibration_used"]]
    return {"tagging": tag_rows, "physics": phys,
            "calibration": {"order": cal["order"], "residuals_keV": cal["residuals_keV"], "pulls": cal["pulls"],
                            "anchors": cal["anchors"], "chi2": cal["chi2"], "ndof": cal["ndof"]},
            "frames_per_file": sorted({int(n) for s in run.sets for n in
                                       load_alpha(run.set_output_dir(s.name)).frames_per_file})}


def run_tagged_closure(outdir: str | Path, **kwargs: Any) -> dict[str, Any]:
    """:func:`simulate_and_analyse` then :func:`tagged_comparisons`."""
    return tagged_comparisons(simulate_and_analyse(outdir, **kwargs))


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("outdir")
    ap.add_argument("--layout", default="old", choices=("old", "new"))
    ap.add_argument("--files", type=int, default=CLOSURE_OVERRIDES["n_files"])
    ap.add_argument("--frames", type=int, default=CLOSURE_OVERRIDES["frames_per_file"])
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    out = run_tagged_closure(args.outdir, layout=args.layout, seed=args.seed, n_files=args.files,
                             frames_per_file=args.frames)
    print(f"frames per file: {out['frames_per_file']}")
    print("isotope  eff(truth) eff(model) pur(truth) pur(model)  n_true n_tagged")
    for t in out["tagging"]:
        print(f"{t['isotope']:7s}  {t['efficiency']:.4f}     {t['expected_efficiency']:.4f}     {t['purity']:.4f}"
              f"     {t['expected_purity']:.4f}    {t['n_true']:6d} {t['n_tagged']:6d}")
    print("set                            isotope  A_ion ± 1σ (mV·µs)   truth    bias    ok | "
          "1−r ± 1σ            truth     bias    ok")
    for p in out["physics"]:
        print(f"{p['set']:30s} {p['isotope']:7s} {p['s2_mean']:.4f} ± {p['s2_mean_err']:.4f}  {p['s2_truth']:.4f} "
              f"{100 * p['s2_rel_bias']:+5.1f}%  {'y' if p['s2_pass'] else 'N'} | {p['one_minus_r']:.5f} ± "
              f"{p['one_minus_r_err']:.5f}  {p['one_minus_r_truth']:.5f} {100 * p['one_minus_r_rel_bias']:+5.1f}%  "
              f"{'y' if p['omr_pass'] else 'N'}")
    c = out["calibration"]
    print(f"calibration order {c['order']}: anchors {c['anchors']}, residuals keV "
          f"{np.round(c['residuals_keV'], 2).tolist()}, pulls {np.round(c['pulls'], 2).tolist()}, "
          f"chi2/ndof {c['chi2']:.2f}/{c['ndof']}")


if __name__ == "__main__":
    _main()
