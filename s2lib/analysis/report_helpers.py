"""Display helpers for the report notebooks: tables and figures as cell outputs, run and artifact rows.

The notebooks under ``notebooks/`` stay thin: they call :mod:`s2lib` for the work and these helpers to show it.
Number formatting (``value ± error`` with the PDG rounding rule, :func:`format_value`) and the Markdown table
renderer (:func:`markdown_table`) live in :mod:`s2lib.analysis.report_format` and are re-exported here.

* :func:`show_table` displays a :func:`markdown_table` with caption and note; :func:`show_markdown` any Markdown.
* :func:`show` displays a matplotlib figure (PNG for the HTML page, vector PDF for the LaTeX book, once
  :func:`setup_display` ran) and releases it; :func:`show_saved` displays figure files already saved.
* The ``*_rows`` functions turn run objects and artifacts into table rows; the cross-run summary's
  ``key_numbers`` and ``summary_recombination_series`` are in :mod:`s2lib.analysis.summary_rows`.
"""
from __future__ import annotations

import base64
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .report_format import (DASH, _finite, format_error, format_number, format_p, format_range, format_value,
                            markdown_table, pdg_digits, pdg_round, superscript)

__all__ = [
    "pdg_digits", "pdg_round", "format_value", "format_error", "format_number", "format_p", "format_range",
    "superscript", "set_label", "markdown_table", "show_table", "show", "show_saved", "show_markdown", "setup_display",
    "DASH", "open_run", "read_table_csv", "constants_rows", "set_rows", "timing_rows", "xray_totals",
    "integration_rows", "xray_rows", "fit_rows", "fit_config_rows", "gs2_rows", "recombination_rows", "model_rows",
]


# ------------------------------------------------------------------------------------------ display
def show_markdown(text: str) -> None:
    """Display Markdown text as a cell output (rendered as MyST by the book)."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_table(rows: Iterable[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | None = None, *,
               caption: str | None = None, note: str | None = None,
               align: Mapping[str, str] | None = None) -> None:
    """Display :func:`markdown_table` with a bold caption above and a note below."""
    parts = [f"**{caption}**", ""] if caption else []
    parts.append(markdown_table(rows, columns, align=align))
    if note:
        parts += ["", note]
    show_markdown("\n".join(parts))


# ------------------------------------------------------------------------------------------ figures
def setup_display(*, dpi: int = 150) -> None:
    """Notebook set-up: the house style for the session, and figures displayed as PNG (HTML) plus PDF (LaTeX).

    Jupyter Book puts the PNG in the HTML page and the vector PDF in the LaTeX/PDF book.
    """
    from matplotlib_inline.backend_inline import set_matplotlib_formats

    from .plotting import use_style

    use_style()
    set_matplotlib_formats("png", "pdf", dpi=dpi)


def _png_width(data: bytes) -> int | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big")
    return None


def show_saved(folder: str | os.PathLike[str], name: str) -> None:
    """Display the saved figure ``folder/name.png`` + ``name.pdf`` as one output (PNG for HTML, PDF for LaTeX).

    The book then shows exactly the artifact files. The PNG (saved at 200 dpi) is given a display width of half
    its pixels, i.e. the figure's size in inches at 100 px per inch. Raises FileNotFoundError when either file
    is missing, so a figure that was not made cannot go unnoticed.
    """
    from IPython.display import display

    paths = {ext: Path(folder) / f"{name}.{ext}" for ext in ("png", "pdf")}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(f"figure file missing: {path}")
    png, pdf = paths["png"].read_bytes(), paths["pdf"].read_bytes()
    data = {"image/png": base64.b64encode(png).decode("ascii"),
            "application/pdf": base64.b64encode(pdf).decode("ascii"),
            "text/plain": f"<figure {name}: {paths['png'].name}, {paths['pdf'].name}>"}
    width = _png_width(png)
    metadata = {"image/png": {"width": width // 2}} if width else {}
    display(data, raw=True, metadata=metadata)


def show(fig: Any, folder: str | os.PathLike[str], name: str) -> None:
    """Save ``fig`` as ``folder/name.png`` + ``.pdf`` (:func:`s2lib.analysis.plotting.save_figure`), display the saved
    files (:func:`show_saved`) and release the figure. Every figure shown is thus also an artifact."""
    from .plotting import close, save_figure

    save_figure(fig, folder, name)
    close(fig)
    show_saved(folder, name)


# ------------------------------------------------------------------------------------------ run and artifacts
def open_run(config_path: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None,
             run_id: str | None = None) -> Any:
    """Load and validate the run configuration and build the run (:func:`s2lib.config.runs.build_run`).

    ``output_dir`` and ``run_id`` (the notebook parameters injected by ``s2book run``) must agree with the
    configuration: a disagreement raises ValueError saying what the configuration gives, so artifacts never land
    in an unexpected folder. Pass None to skip a check (running a notebook by hand).
    """
    from s2lib.config.runs import build_run, load_config

    run = build_run(load_config(config_path))
    if run_id is not None and str(run_id) != run.run_id:
        raise ValueError(f"parameter run_id={run_id!r} but {config_path} has run_id {run.run_id!r}; "
                         "set run_id (or None) to match")
    if output_dir is not None and Path(output_dir).resolve() != Path(run.output_dir).resolve():
        raise ValueError(f"parameter output_dir={str(output_dir)!r} but {config_path} gives {run.output_dir}; "
                         "set output_dir (or None) to match")
    return run


def read_table_csv(path: str | os.PathLike[str], isotope: str | None = "all") -> list[dict[str, Any]]:
    """Rows of an artifact CSV (``<run_id>_recomb_factors.csv``, ``_s2_vs_drift.csv``): numbers as float,
    ``True``/``False`` as bool, empty cells as None, other text as is. A CSV with an ``isotope`` column gives only
    the rows of ``isotope`` (default the all-frames rows, one per set; None: every row)."""
    import csv

    def conv(text: str) -> Any:
        if text == "":
            return None
        if text in ("True", "False"):
            return text == "True"
        try:
            return float(text)
        except ValueError:
            return text

    with open(path, newline="", encoding="utf-8") as fh:
        rows = [{k: conv(v) for k, v in row.items()} for row in csv.DictReader(fh)]
    return [r for r in rows if isotope is None or r.get("isotope", isotope) in (isotope, None)]


def set_label(name: str) -> str:
    """Short table label of a set folder: ``FieldScan_Gate0050_Anode1950`` → ``Gate0050 Anode1950`` (breakable in
    narrow PDF columns)."""
    short = name[len("FieldScan_"):] if name.startswith("FieldScan_") else name
    return short.replace("_", " ")


def _fmt_window(w: Any) -> str:
    if not w or not all(_finite(x) for x in w):
        return DASH
    return f"{float(w[0]):.2f} … {float(w[1]):.2f}"


def constants_rows(run: Any) -> list[dict[str, Any]]:
    """The run's constants with unit and provenance (``run_info.json``'s ``constants``)."""
    out = []
    for key, c in run.run_info()["constants"].items():
        value = c["value"]
        text = ", ".join(format_number(v) for v in value) if isinstance(value, (list, tuple)) else (
            format_number(value) if isinstance(value, (int, float)) else str(value))
        unit = {"cm^-3": "cm⁻³", "e-": "e⁻", "mm/us vs Td": "mm/µs vs Td"}.get(c["unit"], c["unit"])
        out.append({"Quantity": key.replace("_", " "), "Value": text, "Unit": unit, "Source": c["source"]})
    return out


def set_rows(run: Any) -> list[dict[str, Any]]:
    """Per set: voltages, fields, reduced fields, drift velocity and model drift time, files and frames
    (frames from the file headers, as recorded in ``timing.json`` by ``prepare_run``; – before it ran)."""
    from s2lib.io.store import load_timing

    rows = []
    for s in run.sets:
        try:
            frames = load_timing(run.set_output_dir(s.name)).get("n_frames_total")
        except Exception:  # noqa: BLE001 - timing not prepared yet: the column shows "–"
            frames = None
        rows.append({"Set": set_label(s.name), "Gate (V)": s.gate_V, "Anode (V)": s.anode_V,
                     "E_drift (V/cm)": format_number(s.drift_field_V_cm, digits=4),
                     "E_EL (V/cm)": format_number(s.el_field_V_cm, digits=4),
                     "E/N drift (Td)": format_number(s.reduced_drift_field_Td, digits=3),
                     "v_d (mm/µs)": format_number(s.drift_velocity_mm_us, digits=3),
                     "t_drift model (µs)": format_number(s.drift_time_us, digits=3),
                     "Files": s.n_files, "Frames": frames, "Issues": "; ".join(s.issues) or None})
    if not any(r["Issues"] for r in rows):
        for r in rows:
            del r["Issues"]
    return rows


def timing_rows(table: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`s2lib.analysis.timing_stage.load_timing_table` for display: times in µs after the trigger,
    ``centre ± spread`` where the spread is the robust standard deviation of the per-frame times."""
    out = []
    for t in table:
        def ts(key: str) -> str:
            return format_value(t.get(key), t.get(key.replace("_us", "_spread_us")))
        ok = t.get("status") == "ok"
        out.append({"Set": set_label(t["set_name"]), "E_drift (V/cm)": format_number(t["drift_field_V_cm"]),
                    "t_S1 (µs)": ts("t_s1_us"), "S2 start (µs)": ts("t_s2_start_us"),
                    "S2 end (µs)": ts("t_s2_end_us"), "Integration window (µs)": _fmt_window(t.get("window_us")),
                    "X-ray window (µs)": _fmt_window(t.get("xray_window_us")),
                    "Frames with S2 / sampled": f"{t.get('n_s2')} / {t.get('n_frames_s2')}"
                    if t.get("n_frames_s2") is not None else DASH,
                    "Status": "ok" if ok else f"FAILED: {t.get('message') or 'unknown'}"})
    return out


def xray_totals(summary_rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """X-ray classification outcome counts summed over the sets (accepted first)."""
    total: dict[str, int] = {}
    for row in summary_rows:
        for k, v in (row.get("xray_reasons") or {}).items():
            total[k] = total.get(k, 0) + int(v)
    return dict(sorted(total.items(), key=lambda kv: (kv[0] != "accepted", kv[0])))


def integration_rows(run: Any, summary_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per set: frames integrated, files failed, mean recoil-window area ± standard error of the mean
    (mV·µs, before any fit), accepted X-rays and status (the failure message of a failed set)."""
    import numpy as np

    from s2lib.stats.fit_store import load_s2area

    out = []
    for row in summary_rows:
        areas = np.asarray(load_s2area(run.set_output_dir(row["set_name"])).areas, dtype=float) \
            if row.get("status") != "missing" else np.zeros(0)
        areas = areas[np.isfinite(areas)]
        sem = float(areas.std(ddof=1) / math.sqrt(areas.size)) if areas.size > 1 else None
        out.append({"Set": set_label(row["set_name"]), "E_drift (V/cm)": format_number(row["drift_field_V_cm"]),
                    "Frames": row["n_frames"], "Files failed": row["n_files_failed"],
                    "Mean area ± s.e.m. (mV·µs)": format_value(float(areas.mean()), sem) if areas.size else DASH,
                    "X-rays accepted": row.get("xray_accepted"),
                    "Status": "ok" if row.get("status") == "ok" else
                    f"FAILED: {row.get('message') or row.get('status')}"})
    return out


def xray_rows(summary_rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per set: frames per X-ray classification outcome (accepted first, then every rejection reason)."""
    reasons = list(xray_totals(summary_rows))
    out = []
    for row in summary_rows:
        counts = row.get("xray_reasons") or {}
        item: dict[str, Any] = {"Set": set_label(row["set_name"])}
        item.update({k.replace("_", " "): counts.get(k) for k in reasons})
        out.append(item)
    return out


def fit_rows(run: Any, fitted: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per set: the S2 histogram fit (mean ± 1σ, 95 % half-width, width, goodness of fit, events, model) and
    whether it succeeded, with the reason when not. Failed fits keep their row (values shown for display only);
    poor fits (p < gof_p_min) show their numbers marked "(poor fit)" and "POOR FIT (not used): reason"."""
    out = []
    for s in run.sets:
        fr = getattr(fitted.get(s.name), "fit_result", None)
        if fr is None:
            out.append({"Set": set_label(s.name), "E_drift (V/cm)": format_number(s.drift_field_V_cm),
                        "Fit": "no fit"})
            continue
        ok = bool(fr.fit_success)
        quality = getattr(fr, "quality", "ok" if ok else "failed")
        verdict = "ok" if ok else (f"POOR FIT (not used): {fr.reason}" if quality == "poor" else
                                   f"FAILED: {fr.reason}")
        out.append({"Set": set_label(s.name), "E_drift (V/cm)": format_number(s.drift_field_V_cm),
                    "Mean ± 1σ (mV·µs)": format_value(fr.mean, fr.mean_err) if ok else
                    f"{format_value(fr.mean, fr.mean_err)} (poor fit)" if quality == "poor" else
                    f"{format_number(fr.mean)} (failed)",
                    "ci95 (mV·µs)": format_error(fr.ci95), "σ (mV·µs)": format_value(fr.sigma, fr.sigma_err),
                    "χ²/ndf": f"{fr.chi2:.1f} / {fr.ndf}" if _finite(fr.chi2) else DASH,
                    "p-value": format_p(fr.p_value), "N in range": fr.n_in_range, "Model": fr.model,
                    "Fit": verdict})
    return out


def fit_config_rows(config: Any) -> list[dict[str, Any]]:
    """The fit options actually used (a FitConfig), one row per option."""
    return [{"Option": k, "Value": str(v)} for k, v in config.to_dict().items()]


def gs2_rows(calibration: Mapping[str, Any], *, run_id: str | None = None) -> list[dict[str, Any]]:
    """Per EL field of a run's ``<run_id>_calibration.json``: A_x ± 1σ, X-rays in the fit, N_x, g_S2 ± 1σ,
    source and provenance or failure reason."""
    out = []
    for e in calibration["gs2_by_el_field"]:
        prov = e.get("provenance") or {}
        where = prov.get("path") or prov.get("given") or ""
        note = "ok" if e.get("fit_success") else f"FAILED: {e.get('reason') or 'unknown'}"
        if e.get("el_mismatch_allowed"):
            note += " (applied at another EL field: allowed by configuration)"
        row = {"Run": run_id} if run_id else {}
        row.update({"E_EL (V/cm)": format_number(e.get("el_field_V_cm")),
                    "A_x ± 1σ (mV·µs)": format_value(e.get("A_x"), e.get("dA_x")),
                    "X-rays in fit": e.get("n_xrays"), "N_x (e⁻)": format_number(e.get("N_x"), digits=4),
                    "g_S2 ± 1σ (mV·µs/e⁻)": format_value(e.get("g_S2"), e.get("d_g_S2")),
                    "Source": e.get("source") + (f" ({where})" if where else ""), "Status": note})
        out.append(row)
    return out


def recombination_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per set of ``<run_id>_recomb_factors.csv``: A_ion, N_e and r with total 1σ errors, and the statistical
    and g_S2 parts of σ_r, whether the set entered the model fits and why not."""
    out = []
    for r in rows:
        out.append({"Set": set_label(r["set_name"]), "E_drift (V/cm)": format_number(r["drift_field"]),
                    "E_EL (V/cm)": format_number(r["el_field"]),
                    "A_ion ± 1σ (mV·µs)": format_value(r.get("s2_mean"), r.get("s2_mean_err")),
                    "N_e ± 1σ (e⁻)": format_value(r.get("N_e_meas"), r.get("dN_e_meas")),
                    "r ± 1σ total": format_value(r.get("recomb_factor"), r.get("recomb_error")),
                    "σ_r stat": format_error(r.get("recomb_error_stat")),
                    "σ_r g_S2": format_error(r.get("recomb_error_gs2")),
                    "In model fit": "yes" if r.get("used_in_model_fit") else f"no: {r.get('reason')}"})
    return out


def model_rows(calibration: Mapping[str, Any], *, run_id: str | None = None) -> list[dict[str, Any]]:
    """Per EL field and model of ``<run_id>_calibration.json``: parameters ± total 1σ (statistical and g_S2
    parts in brackets), fixed parameters, χ²/ndf, p-value, points, success or reason."""
    out = []
    for el, fits in (calibration.get("model_fits") or {}).items():
        for name, f in fits.items():
            parts = []
            for p in f["param_names"]:
                unit = (f.get("param_units") or {}).get(p, "")
                unit = "" if unit in ("1", "") else unit
                if p in (f.get("fixed") or {}):
                    parts.append(f"{p} = {format_number(f['fixed'][p])} (fixed)")
                    continue
                v, e = f["values"].get(p), f["errors"].get(p)
                es, eg = (f.get("errors_stat") or {}).get(p), (f.get("errors_gs2") or {}).get(p)
                parts.append(f"{p} = {format_value(v, e, unit=unit)} (stat {format_error(es)}, "
                             f"g_S2 {format_error(eg)})")
            row = {"Run": run_id} if run_id else {}
            row.update({"E_EL (V/cm)": el, "Model": name.replace("_", "–"), "Parameters ± 1σ": "; ".join(parts),
                        "χ²/ndf": f"{f['chi2']:.2f} / {f['ndf']}" if _finite(f.get("chi2")) else DASH,
                        "p-value": format_p(f.get("p_value")), "Points": f.get("n_points"),
                        "Fit": "ok" if f.get("fit_success") else f"FAILED: {f.get('reason')}"})
            out.append(row)
    return out
