"""Closure test of the alpha chain on simulated data: simulate → pair → estimate → fit → calibrate →
windows → tag, compared with the simulator's truth.
``python -m s2lib.alpha.closure OUTDIR [--layout new] [--files 4]`` prints the per-isotope purity/efficiency
(measured against truth and predicted by the model) and the calibration residuals; the future ``s2book validate`` multi-isotope points can call ``run_closure``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .calibrate import calibrate, tag_frames, window_quality, windows_from_fit
from .measure import measure_alpha_set
from .simulate import AlphaSimConfig, sca_of_energy, simulate_alpha_set
from .spectrum import fit_alpha_spectrum

__all__ = ["run_closure"]

SET = "FieldScan_Gate0800_Anode2700"


def run_closure(outdir: str | Path, *, layout: str = "new", n_files: int = 4, frames_per_file: int = 988,
                seed: int = 11, config: AlphaSimConfig | None = None) -> dict[str, Any]:
    """Run the chain on a fresh simulated set under ``outdir`` (raw/, truth.npz, out/); returns the numbers."""
    root = Path(outdir)
    cfg = config or AlphaSimConfig(n_files=n_files, frames_per_file=frames_per_file)
    simulate_alpha_set(root / "raw" / SET, root / "truth.npz", config=cfg, layout=layout, seed=seed)
    a = measure_alpha_set(root / "raw" / SET, root / "out" / SET, raw_root=root / "raw")
    truth = np.load(root / "truth.npz")
    names = [str(n) for n in truth["names"]]
    clean = a.flags == 0
    fit = fit_alpha_spectrum(a.sca[clean])
    cals = {order: calibrate(fit, order) for order in (1, 2)}
    win = windows_from_fit(fit)
    expected = window_quality(fit, win)
    label, _ = tag_frames(a.sca, a.flags, win)
    rows = []
    for i, name in enumerate(win.names):
        is_i = truth["isotope"] == names.index(name)
        tagged = label == i
        rows.append({"isotope": name, "n_true_clean": int(np.count_nonzero(is_i & clean)),
                     "n_tagged": int(np.count_nonzero(tagged)),
                     "efficiency": np.count_nonzero(tagged & is_i) / max(np.count_nonzero(is_i & clean), 1),
                     "purity": np.count_nonzero(tagged & is_i) / max(np.count_nonzero(tagged), 1),
                     "expected_efficiency": expected[name]["efficiency"], "expected_purity": expected[name]["purity"],
                     "window_sca": [float(win.low[i]), float(win.high[i])],
                     "mu_fit_sca": float(fit.mu[i]), "mu_err_sca": float(fit.mu_err[i]),
                     "mu_true_sca": float(sca_of_energy(fit.ref_MeV[i], cfg.gain))})
    return {"layout": layout, "frames_per_file": a.frames_per_file, "n_frames": int(a.sca.size),
            "flag_counts": a.meta["flag_counts"], "pairs": a.meta["files"][:2], "fit_valid": fit.valid,
            "deviance_ndof": [fit.deviance, fit.ndof], "sigma_sca": fit.sigma, "tau_sca": fit.tau, "eta": fit.eta,
            "isotopes": rows, "calibration": {o: c.to_dict() for o, c in cals.items()}}


def _main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("outdir")
    ap.add_argument("--layout", default="new", choices=("old", "new"))
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--frames", type=int, default=988)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = ap.parse_args()
    res = run_closure(args.outdir, layout=args.layout, n_files=args.files, frames_per_file=args.frames,
                      seed=args.seed)
    if args.json:
        print(json.dumps(res, indent=1, default=float))
        return
    print(f"layout {res['layout']}: {res['n_frames']} frames, frames per file {res['frames_per_file']}, "
          f"first pair {res['pairs'][0]}; flags {res['flag_counts']}")
    print(f"fit valid {res['fit_valid']}, deviance/ndof {res['deviance_ndof'][0]:.1f}/{res['deviance_ndof'][1]}, "
          f"sigma {res['sigma_sca']:.4f} tau {res['tau_sca']:.4f} u_SCA, eta {res['eta']:.3f}")
    print("isotope  window(u_SCA)        eff(truth) eff(model) pur(truth) pur(model)  mu_fit-mu_true (u_SCA)")
    for r in res["isotopes"]:
        print(f"{r['isotope']:7s} [{r['window_sca'][0]:.3f}, {r['window_sca'][1]:.3f})  {r['efficiency']:.4f}     "
              f"{r['expected_efficiency']:.4f}     {r['purity']:.4f}     {r['expected_purity']:.4f}     "
              f"{r['mu_fit_sca'] - r['mu_true_sca']:+.4f} ± {r['mu_err_sca']:.4f}")
    for order, c in res["calibration"].items():
        print(f"calibration order {order}: coef {np.round(c['coef_MeV_per_sca_power'], 5).tolist()}, chi2/ndof "
              f"{c['chi2']:.2f}/{c['ndof']}, residuals keV {np.round(c['residuals_keV'], 2).tolist()}, pulls "
              f"{np.round(c['pulls'], 2).tolist()}")


if __name__ == "__main__":
    _main()
