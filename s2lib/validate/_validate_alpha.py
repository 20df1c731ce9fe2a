"""Multi-isotope points of the closure matrix (``s2book validate``): an alpha-tagged simulated run
(:mod:`s2lib.sim._sim_alpha_pmt`) is analysed like any point plus the alpha stage, and every (set, isotope) row of
``<run_id>_recomb_factors.csv`` is compared with the truth of the frames whose silicon frame was that isotope
(``truth.json`` ``alpha.sets``). The comparisons are quantities ``A_ion`` and ``1-r`` (same rules as the
all-frames ones: :func:`s2lib.validate._validate_rules.compare`), their ``set`` named ``<set> [<isotope>]``.

The all-frames A_ion and 1 − r of such a run are listed but not judged (:func:`mixture_not_judged`): their S2
distribution is a mixture of five recoil peaks, which the default estimator (one gamma-shaped recoil peak,
:mod:`s2lib.stats.estimators`) does not model; on the ``alpha_tagged`` point its all-frames mean at 1000 V/cm came out
3.3 % low, while every per-isotope mean closed within max(3 %, 3σ). A_x and g_S2 are judged as for any point.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from ._validate_rules import compare

__all__ = ["ALPHA_LAYOUT_KEY", "MIXTURE_REASON", "simulate_point", "analyse_alpha", "isotope_comparisons",
           "mixture_not_judged"]

MIXTURE_REASON = ("not judged: all frames of an alpha-tagged run mix five recoil energies (96.8-168.9 keV); the "
                  "single-peak recoil estimator is not specified for that mixture (the per-isotope rows are)")

ALPHA_LAYOUT_KEY = "alpha_layout"
"""Override key of a matrix point that makes it alpha-tagged: the DAQ layout, "old" (Ch1/Ch4) or "new"
(CH3/CH4 batches)."""


def simulate_point(out: Path, seed: int, params: dict[str, Any]) -> bool:
    """Simulate the point (alpha-tagged when ``params`` has :data:`ALPHA_LAYOUT_KEY`); True if alpha-tagged."""
    params = dict(params)
    layout = params.pop(ALPHA_LAYOUT_KEY, None)
    if layout is None:
        from s2lib.sim.simulate import simulate_run

        simulate_run(out, profile="tiny", seed=seed, overwrite=False, progress=False, **params)
        return False
    from s2lib.sim._sim_alpha_pmt import simulate_alpha_run

    simulate_alpha_run(out, profile="tiny", seed=seed, layout=layout, **params)
    return True


def analyse_alpha(run: Any) -> None:
    """The alpha stage of an alpha-tagged point (before the calibration, which reads its tags)."""
    from s2lib.alpha.stage import analyse_alpha_run

    analyse_alpha_run(run.config)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def isotope_comparisons(truth: dict[str, Any], output_dir: str | Path, run_id: str, min_xrays: int
                        ) -> list[dict[str, Any]]:
    """A_ion and 1 − r per (set, isotope) against the tagged truth; 1 − r not measurable when the EL field has
    fewer than ``min_xrays`` X-ray frames (as for the all-frames rows)."""
    with open(Path(output_dir) / f"{run_id}_recomb_factors.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r.get("isotope") not in (None, "", "all")]
    xr = truth.get("xray_by_el_field") or {}
    out = []
    for row in rows:
        t = truth["alpha"]["sets"][row["set_name"]]
        ti = t["isotopes"][row["isotope"]]
        base = {"set": f"{row['set_name']} [{row['isotope']}]", "drift_field_V_cm": t["drift_field_V_cm"],
                "el_field_V_cm": t["el_field_V_cm"]}
        reason = row.get("reason") or ""
        ok = str(row.get("fit_success")).lower() == "true"
        out.append({"quantity": "A_ion", **base, **compare(
            _num(row["s2_mean"]), _num(row["s2_mean_err"]), ti["recoil_sample_mean_area_mV_us"],
            ti["recoil_mean_area_mV_us"], ok=ok, reason=reason or "S2 fit not successful")})
        px = next((v for k, v in xr.items() if abs(float(k) - t["el_field_V_cm"]) < 1.0), None)
        if px is None or px["n_xray"] < min_xrays:
            continue
        used = str(row.get("used_in_model_fit")).lower() == "true"
        out.append({"quantity": "1-r", **base, **compare(
            1.0 - _num(row["recomb_factor"]), _num(row["recomb_error"]), ti["one_minus_r_realised"],
            ti["one_minus_r"], ok=used, reason=reason or "not usable")})
    return out


def mixture_not_judged(comps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The all-frames A_ion and 1 − r comparisons of an alpha-tagged point, kept but marked not judged
    (``measurable`` False, ``passed`` None, :data:`MIXTURE_REASON`)."""
    out = []
    for c in comps:
        if c["quantity"] in ("A_ion", "1-r") and c.get("measurable", True):
            c = {**c, "measurable": False, "passed": None, "reason": MIXTURE_REASON}
        out.append(c)
    return out
