"""How well the X-ray *selection* measures faint X-ray S2s: acceptance and area response per closure point.

The closure matrix (``s2book validate``) fails at the faint X-ray end (``gain_x0.3``, ``EL_1500``,
``corner_faint``: X-ray peaks of 0.35-0.6 mV·µs, 17-30 photoelectrons). This benchmark separates the two
suspects: the classification upstream (``s2lib.signal.xray.classify_xrays`` via the engine) and the X-ray
estimator (``s2lib.stats.estimators.fit_xray``). For each point it simulates the run (same seed as ``validate``),
runs the pipeline, and matches every accepted X-ray candidate with the simulator's truth of its frame:

* ``accepted``: true X-ray frames whose candidate was accepted / all true X-ray frames;
* ``response``: measured candidate area / true X-ray S2 area for those frames, with the X-ray S2 lying fully
  inside the selection window ``[t_S1 + min_s1_sep, window start − min_s2_sep]`` (quantiles 5/25/50/75/95 %);
  1.0 is a whole S2, below 0.5 a fragment;
* ``junk``: accepted candidates in frames without an X-ray (stray photons with ``min_xray_area = 0``);
* the estimator's A_x on the pooled candidates against the realised truth;
* the closure comparisons of ``validate`` for A_x, g_S2 and 1 − r (bias, pull, verdict).

Usage: ``python benchmarks/xray_response.py [--out DIR] [POINT ...]`` (default: the three faint points and
the baseline). Prints one line per EL field.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from s2lib.stats import estimators
from s2lib.validate import validate

DEFAULT_POINTS = ("baseline", "gain_x0.3", "EL_1500", "corner_faint")


def response(point_dir: Path) -> list[dict]:
    """Acceptance, area response and estimator result per EL field of one analysed point (kept raw not needed)."""
    truth = json.loads((point_dir / "truth.json").read_text())
    out = []
    for el, info in truth["xray_by_el_field"].items():
        ratios, areas, n_junk, n_acc = [], [], 0, 0
        for name in info["sets"]:
            z = np.load(point_dir / "truth" / f"{name}.npz")
            d = next(point_dir.glob(f"processed/*/{name}"))
            t = json.loads((d / "timing.json").read_text())
            ids, a = np.load(d / "xray_event_ids.npy"), np.load(d / "xray_areas.npy")
            key = {(int(f), int(k)): i for i, (f, k) in enumerate(zip(z["file_index"], z["frame_index"]))}
            idx = np.array([key[(int(f), int(k))] for f, k in ids], dtype=np.int64)
            has = z["has_xray"][idx]
            tx = z["xray_time_us"][idx]
            lo, hi = t["t_s1_us"] + 0.5, t["window_us"][0] - 1.0
            inside = has & (tx > lo) & (tx + t["el_transit_model_us"] < hi)
            ratios.append(a[inside] / z["xray_area_mV_us"][idx][inside])
            areas.append(a)
            n_junk += int((~has).sum())
            n_acc += int(has.sum())
        r = np.concatenate(ratios)
        fit = estimators.fit_xray(np.concatenate(areas))
        tr = info["sample_mean_area_mV_us"]
        out.append({"el_field": el, "n_true": info["n_xray"], "n_accepted": n_acc, "n_junk": n_junk,
                    "response_q": np.percentile(r, [5, 25, 50, 75, 95]).round(3).tolist() if r.size else [],
                    "fragments": float(np.mean(r < 0.5)) if r.size else float("nan"),
                    "A_x": fit.mean, "dA_x": fit.mean_err, "quality": fit.details.get("quality"),
                    "p_value": fit.p_value, "truth": tr, "reason": fit.reason})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="*", default=list(DEFAULT_POINTS))
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    a = ap.parse_args(argv)
    try:
        known = {p.name: p for p in validate.points_named(a.points)}
    except ValueError as err:
        ap.error(str(err))
    work = a.out or Path(tempfile.mkdtemp(prefix="xray_response_"))
    for name in a.points:
        res = validate.run_point(known[name], work)
        if res["error"]:
            print(f"{name}: error {res['error']}")
            continue
        for row in response(work / name):
            print(f"{name} EL {row['el_field']}: accepted {row['n_accepted']}/{row['n_true']} X-rays "
                  f"(+{row['n_junk']} junk); response q5-95 {row['response_q']}, fragments "
                  f"{100 * row['fragments']:.0f} %; A_x {row['A_x']:.4f} ± {row['dA_x']:.4f} "
                  f"[{row['quality']}, p {row['p_value']:.2g}] truth {row['truth']:.4f} {row['reason'][:70]}",
                  flush=True)
        for c in res["comparisons"]:
            if c["quantity"] in ("A_x", "g_S2", "1-r") and c.get("measurable", True):
                print(f"  {c['quantity']:4s} {str(c.get('set', ''))[-28:]:28s} bias {100 * c['rel_bias']:+.1f} % "
                      f"pull {c['pull']:+.2f} {'pass' if c['passed'] else 'FAIL ' + str(c.get('reason', ''))[:60]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
