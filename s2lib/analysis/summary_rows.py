"""The cross-run summary's numbers: a run's calibration artifacts, the key numbers per run and EL field (table
rows and the glue texts of the book's intro) and the recombination series of the summary figure.

Split from :mod:`s2lib.analysis.report_helpers` (issue 10); the notebooks import it as ``sr``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .report_format import DASH, _finite, format_number, format_range, format_value
from .report_helpers import read_table_csv

__all__ = ["load_run_results", "key_numbers", "summary_recombination_series"]


def load_run_results(run_id: str, output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run's calibration artifacts: ``calibration`` (the JSON) and ``recomb`` (rows of the CSV)."""
    from s2lib.io.store import read_json

    folder = Path(output_dir)
    return {"run_id": run_id, "calibration": read_json(folder / f"{run_id}_calibration.json"),
            "recomb": read_table_csv(folder / f"{run_id}_recomb_factors.csv")}


def _param(fit: Mapping[str, Any] | None, name: str, unit: str = "") -> str | None:
    if not fit or name in (fit.get("fixed") or {}):
        return None
    text = format_value(fit["values"].get(name), fit["errors"].get(name), unit=unit)
    return text if fit.get("fit_success") else f"{text} (fit not ok: {fit.get('reason')})"


def key_numbers(results: Sequence[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Key numbers per run and EL field (table rows) and the glue texts of the book's intro
    (:data:`s2lib.report.book.KEY_LABELS`: n_runs, gs2, ax_mean, ne_range, recomb_range, ti_a, ti_s, emp_a, emp_b).

    Every number carries its 1σ uncertainty and unit; several runs or EL fields are joined with ``"; "``, each
    prefixed by its run id when there are several runs. Ranges run over the drift fields of the sets used.
    """
    rows: list[dict[str, Any]] = []
    texts: dict[str, list[str]] = {k: [] for k in ("gs2", "ax_mean", "ne_range", "recomb_range", "ti_a", "ti_s",
                                                    "emp_a", "emp_b")}
    several = len(results) > 1
    for res in results:
        cal, rid = res["calibration"], res["run_id"]
        for e in cal["gs2_by_el_field"]:
            el = e.get("el_field_V_cm")
            at = f"at E_EL = {format_number(el)} V/cm"
            sets = [r for r in res["recomb"] if r.get("el_field") is not None and round(r["el_field"]) == el
                    and r.get("used_in_model_fit")]
            sets.sort(key=lambda r: r["drift_field"])
            fields = (f"E_drift = {format_number(sets[0]['drift_field'], digits=3)}–"
                      f"{format_number(sets[-1]['drift_field'], digits=3)} V/cm"
                      if sets else "no usable set")
            fits = (cal.get("model_fits") or {}).get(f"{el:g}", {}) if el is not None else {}
            ti, emp = fits.get("thomas_imel"), fits.get("empirical")
            values = {
                "gs2": f"{format_value(e.get('g_S2'), e.get('d_g_S2'), unit='mV·µs/e⁻')} {at} ({e.get('source')})",
                "ax_mean": f"{format_value(e.get('A_x'), e.get('dA_x'), unit='mV·µs')} {at}",
                "ne_range": f"{format_range([(r['N_e_meas'], r['dN_e_meas']) for r in sets], unit='e⁻')} "
                            f"({fields}, {at})",
                "recomb_range": f"{format_range([(r['recomb_factor'], r['recomb_error']) for r in sets])} "
                                f"({fields}, {at})",
                "ti_a": _param(ti, "a", "V/cm"), "ti_s": _param(ti, "S"),
                "emp_a": _param(emp, "A"), "emp_b": _param(emp, "B", "cm/V"),
            }
            for key, text in values.items():
                if text is None:
                    continue
                if key.startswith(("ti_", "emp_")):
                    text = f"{text} {at}"
                texts[key].append(f"{rid}: {text}" if several else text)
            rows.append({"Run": rid, "E_EL (V/cm)": format_number(el), "Sets used": len(sets),
                         "Drift fields (V/cm)": fields.replace("E_drift = ", "").replace(" V/cm", ""),
                         "g_S2 ± 1σ (mV·µs/e⁻)": format_value(e.get("g_S2"), e.get("d_g_S2")),
                         "N_e ± 1σ (e⁻)": format_range([(r["N_e_meas"], r["dN_e_meas"]) for r in sets]),
                         "r ± 1σ": format_range([(r["recomb_factor"], r["recomb_error"]) for r in sets]),
                         "Thomas–Imel a (V/cm)": _param(ti, "a") or DASH, "Thomas–Imel S": _param(ti, "S") or DASH,
                         "Empirical A": _param(emp, "A") or DASH, "Empirical B (cm/V)": _param(emp, "B") or DASH})
    glue = {"n_runs": str(len(results))}
    glue.update({k: "; ".join(v) if v else "n/a" for k, v in texts.items()})
    return rows, glue


def summary_recombination_series(results: Sequence[Mapping[str, Any]]) -> dict[str, tuple[list[float], list[float],
                                                                                            list[float]]]:
    """``{label: (drift fields V/cm, r, total 1σ of r)}`` per run and EL field, for
    :func:`s2lib.analysis.plotting.plot_summary_recombination` (sets without a usable r are left out)."""
    out: dict[str, tuple[list[float], list[float], list[float]]] = {}
    for res in results:
        els = sorted({round(r["el_field"]) for r in res["recomb"] if r.get("el_field") is not None})
        for el in els:
            sets = sorted((r for r in res["recomb"] if r.get("el_field") is not None and round(r["el_field"]) == el
                           and _finite(r.get("recomb_factor"))), key=lambda r: r["drift_field"])
            label = res["run_id"] + (f", EL {el} V/cm" if len(els) > 1 else "")
            out[label] = ([r["drift_field"] for r in sets], [r["recomb_factor"] for r in sets],
                          [r["recomb_error"] for r in sets])
    return out
