"""Pull widths of the closure quantities over many seeds of a few ``s2book validate`` points.

The matrix of ``s2book validate`` runs every point once; its pull widths mix points and share each point's
g_S2 fluctuation between its sets (the 1 − r pulls of one point are correlated), so a width of 0.80 from 44
pulls does not by itself show overestimated errors. This benchmark re-simulates the chosen points with
``n`` further seeds (point seed + 7919·k) and reports, per quantity, the plain and robust (1.4826·MAD) pull
widths with the plain width's precision ``w/√(2(N − 1))`` (optimistic for 1 − r: its pulls are correlated
within a run, the number of independent g_S2 values is the number of runs).

With ``--per-seed`` it also prints the widths of each seed's pulls alone: run over the whole matrix
(``--matrix``) these are the widths one ``s2book validate`` run would report, and their spread over seeds is the
scatter a single run's width has (for 1 − r much larger than ``w/√(2(N − 1))``: within a point its pulls share
the g_S2 term, on the matrix about three quarters of their variance).

Usage: ``python benchmarks/closure_seeds.py [--n 12] [--out DIR] [--matrix] [--per-seed] [POINT ...]`` (default
points: baseline, Ra224). Writes ``pulls.json`` into the work folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from s2lib.validate import validate

QUANTITIES = ("A_ion", "A_x", "g_S2", "1-r")


def widths(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Per quantity: number of finite pulls, mean, plain width (ddof 1) ± precision, robust width."""
    out = {}
    for q in QUANTITIES:
        p = np.array([r["pull"] for r in rows if r["quantity"] == q and r["pull"] is not None
                      and math.isfinite(r["pull"])])
        if p.size < 3:
            continue
        w = float(np.std(p, ddof=1))
        out[q] = {"n": int(p.size), "mean": float(p.mean()), "width": w, "width_err": w / math.sqrt(2 * (p.size - 1)),
                  "robust": float(1.4826 * np.median(np.abs(p - np.median(p))))}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("points", nargs="*", default=["baseline", "Ra224"])
    ap.add_argument("--n", type=int, default=12, help="seeds per point")
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--matrix", action="store_true", help="every point of the validate matrix")
    ap.add_argument("--per-seed", action="store_true", help="also the widths of each seed's pulls alone")
    a = ap.parse_args(argv)
    if a.matrix:
        a.points = [p.name for p in validate.matrix()]
    try:
        known = {p.name: p for p in validate.points_named(a.points)}
    except ValueError as err:
        ap.error(str(err))
    work = a.out or Path(tempfile.mkdtemp(prefix="closure_seeds_"))
    rows: list[dict] = []
    for k in range(a.n):
        for name in a.points:
            p = dataclasses.replace(known[name], name=f"{name}_s{k}", seed=known[name].seed + 7919 * (k + 1))
            res = validate.run_point(p, work)
            rows += [{"point": name, "k": k, "seed": p.seed, "quantity": c["quantity"], "set": c["set"], "pull": c["pull"]}
                     for c in res["comparisons"] if c.get("measurable", True) and c.get("fit_ok", True)]
            shutil.rmtree(work / p.name, ignore_errors=True)
            print(f"{p.name}: {'pass' if res['passed'] else 'FAIL'}", flush=True)
    (work / "pulls.json").write_text(json.dumps(rows, indent=1))
    for k in range(a.n) if a.per_seed else ():
        print(f"seed set {k}: " + "; ".join(f"{q} {w['n']} pulls, width {w['width']:.2f}, robust {w['robust']:.2f}"
                                           for q, w in widths([r for r in rows if r["k"] == k]).items()))
    for q, w in widths(rows).items():
        print(f"{q}: {w['n']} pulls, mean {w['mean']:+.2f}, width {w['width']:.2f} ± {w['width_err']:.2f}, "
              f"robust {w['robust']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
