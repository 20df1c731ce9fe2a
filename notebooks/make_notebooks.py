"""Generate the four report notebook templates of s2book from this readable script.

Run ``.venv/bin/python notebooks/make_notebooks.py`` after editing; commit this script and the notebooks.

Each template has a title, a ``parameters``-tagged cell (papermill injects the real values: ``config_path``,
``output_dir``, ``run_id``, ``stage``; the summary gets ``config_paths``, ``run_ids``, ``output_dirs`` and its own
``output_dir``), then thin code cells that call :mod:`s2lib` and show the results, each introduced by a sentence
for the physicist reading the book. All work lives in s2lib; display helpers in :mod:`s2lib.analysis.report_helpers`.
No cell catches exceptions: a failing stage stops with its traceback, and ``s2book run`` reports run, stage and
cell. Every figure is saved under ``<output_dir>/figures/`` as PNG + PDF and shown from those files.
"""
from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent

PARAMS_RUN = '''\
# Parameters (papermill injects the real values after this cell).
config_path = "run.yaml"        # the run's YAML configuration
output_dir = "processed/RUN"    # the run's artifact folder, <data.output_base>/<run_id>
run_id = "RUN"                  # the run id in the configuration
stage = "{stage}"
jobs = 1                        # worker processes for the pass over the raw data
'''

PARAMS_SUMMARY = '''\
# Parameters (papermill injects the real values after this cell).
config_paths = []                   # the runs' YAML configurations
run_ids = []                        # their run ids, in the same order
output_dirs = []                    # their artifact folders
output_dir = "processed/_summary"   # this summary's folder
stage = "summary"
'''

IMPORTS_RUN = '''\
from pathlib import Path

from myst_nb import glue

from s2lib.analysis import plotting
from s2lib.analysis import report_helpers as rh

rh.setup_display()   # house style; figures as PNG (HTML) + PDF (LaTeX book)
run = rh.open_run(config_path, output_dir, run_id)
figures = Path(run.output_dir) / "figures"
print(f"Run {run.run_id}: {run.config.description}")
print(f"configuration: {run.config.source}")
print(f"raw data: {run.config.raw_data_path} (read only)\\nartifacts: {run.output_dir}")
'''

Cell = tuple[str, str]


def md(text: str) -> Cell:
    return ("markdown", text)


def code(text: str) -> Cell:
    return ("code", text)


# ----------------------------------------------------------------------------------------------- integration
INTEGRATION: list[Cell] = [
    md("# Integration: timing windows, X-ray classification and recoil S2 areas\n\n"
       "This chapter reads the raw oscilloscope frames of every set once. It estimates the S1 time and the recoil "
       "S2 window, integrates the recoil S2 area of every frame, and classifies each frame for an isolated "
       "12.3 keV X-ray S2 between S1 and the recoil S2. The areas are written per set for the fitting and "
       "calibration chapters."),
    ("parameters", PARAMS_RUN.format(stage="integration")
     + "strict = False                  # s2book run --strict: fail at the first bad raw file\n"),
    code(IMPORTS_RUN + "from s2lib.analysis import pipeline\nfrom s2lib.analysis.badfiles import skipped_file_rows\n"),
    md("## Timing windows\n\n"
       "For each set, the S1 time and the start and end of the recoil S2 are measured on a sample of frames. "
       "The search is seeded by the drift time of the drift-velocity model. The integration window is "
       "[S2 start − 4σ, S2 end + 4σ], where σ is the robust spread of the per-frame times."),
    code("run = pipeline.prepare_run(run, jobs=jobs, flag_plot=True, verbose=False)"),
    md("The sets of the run in drift-field order, with their fields and reduced fields. "
       "The drift velocity and drift time come from the model at the run's gas density. "
       "The frame counts come from the file headers."),
    code('rh.show_table(rh.set_rows(run), caption=f"Sets of run {run.run_id}")\n'
         'rh.show_table(rh.constants_rows(run), caption="Constants used (value, unit, source)")'),
    md("The measured times are given in µs after the trigger, as centre ± robust spread (1.4826·MAD) of the "
       "per-frame values. The spread is not the error of the centre."),
    code("timing = pipeline.load_timing_table(run)\n"
         'rh.show_table(rh.timing_rows(timing), caption="S1 time, S2 start and end, and the windows used")'),
    md("The S1 time should not depend on the drift field. The S2 moves earlier as the drift velocity grows."),
    code('rh.show_saved(figures, f"{run.run_id}_timing_vs_field")'),
    md("Per set, the distributions of the per-frame S1 time and S2 start behind these numbers. The shaded "
       "band is the centre ± spread."),
    code("for s in run.sets:\n"
         "    if (figures / f\"{s.name}_S1_time_hist.png\").is_file():\n"
         "        rh.show_saved(figures, f\"{s.name}_S1_time_hist\")\n"
         "        rh.show_saved(figures, f\"{s.name}_S2_start_time_hist\")\n"
         "    else:\n"
         "        print(f\"{s.name}: no timing histograms (timing failed, see the table above)\")"),
    md("## Recoil S2 areas and X-ray classification\n\n"
       "A single pass over the data integrates each frame over its set's window. The integral is the exact sum "
       "of the pedestal-subtracted samples, with no smoothing and no threshold, so it is unbiased. The same pass "
       "classifies the frames for X-rays. The fits follow in the next chapter."),
    code("summary = pipeline.run_integration_pass(run, jobs=jobs, fit=False, verbose=False,\n"
         "                                       strict=strict or run.config.strict)\n"
         'print(f"{summary.n_frames} frames in {summary.seconds:.1f} s; files failed: {summary.n_files_failed}; "\n'
         '      f"sets failed: {len(summary.failed_sets)}")'),
    md("Per set: the frames integrated and the files that could not be read. The mean window area is shown "
       "± its standard error, before any fit; it still contains pile-up. A failed set is listed with its reason. "
       "Sets are labelled by their folder name without `FieldScan_`."),
    code('rh.show_table(rh.integration_rows(run, summary.sets), caption="Recoil S2 integration per set")'),
    md("### Skipped files\n\n"
       "Raw files that could not be used are listed here and left out; the run goes on without them. A "
       "*skipped* file could not be read at all (truncated before its first complete frame, corrupt header, not a "
       "waveform file, no read permission, gone); *field* names the part of the file at fault. A *partial* file is "
       "a FastFrame file that ends early (an acquisition stopped mid-write): its complete frames are used, the "
       "frames read / promised by its header are given. The same lists are in each set's `s2_results.json` "
       "(`files_failed`, `files_partial`)."),
    code("skipped = skipped_file_rows(run)\n"
         "if skipped:\n"
         '    rh.show_table(skipped, caption=f"Skipped files: {len(skipped)} raw file(s) not fully used")\n'
         "else:\n"
         '    print("Every raw file was read completely.")'),
    md("Frames per X-ray classification outcome, per set."),
    code('rh.show_table(rh.xray_rows(summary.sets), caption="X-ray classification per set (frames)")'),
    md("X-ray classification summed over all sets. Only the accepted frames are used for the X-ray calibration "
       "of the S2 gain. The rejected frames have no pulse in the X-ray window (no signal) or a pulse too close "
       "to S1 or to the recoil S2 (insufficient separation). Others are below the minimum area, or have an "
       "excessive signal near S1 or in the S2."),
    code("totals = rh.xray_totals(summary.sets)\n"
         "fig = plotting.plot_xray_classification(totals, log=True, title=f\"Run {run.run_id}: X-ray "
         "classification of {sum(totals.values())} frames\")\n"
         'rh.show(fig, figures, f"{run.run_id}_xray_classification")'),
    md("## Waveform validation\n\n"
       "A few randomly chosen frames per set, with the pedestal subtracted, so that pulses point up. Each "
       "frame shows the S1 time ± spread (green), the recoil S2 integration window (red) and the X-ray search "
       "window (hatched). An S2 outside its window, or a window that cuts a pulse, would show here."),
    code("for s in run.sets:\n"
         "    frames = pipeline.validation_frames(run, s.name, n=3, seed=1)\n"
         "    if not frames[\"traces_mV\"]:\n"
         "        print(f\"{s.name}: no readable file to show\")\n"
         "        continue\n"
         "    fig = plotting.plot_waveform_validation(\n"
         "        frames[\"t_us\"], frames[\"traces_mV\"], s1=frames[\"s1\"], s2_window=frames[\"s2_window\"],\n"
         "        xray_windows=frames[\"xray_windows\"],\n"
         "        titles=[f\"{s.name} (E_drift = {s.drift_field_V_cm:.0f} V/cm): {t}\" for t in frames[\"titles\"]])\n"
         "    rh.show(fig, figures, f\"{s.name}_waveform_validation\")"),
    code("# Numbers for the book's text.\n"
         'glue("n_sets", len(run.sets), display=False)\n'
         'glue("n_frames_total", summary.n_frames, display=False)\n'
         'glue("n_files_failed", summary.n_files_failed, display=False)\n'
         'glue("n_xrays_accepted", totals.get("accepted", 0), display=False)'),
]

# ----------------------------------------------------------------------------------------------- fitting
FITTING: list[Cell] = [
    md("# Fitting: recoil S2 area per set\n\n"
       "Each set's recoil S2 areas from the integration chapter are fitted by a binned Poisson maximum-likelihood "
       "mixture: frames whose window holds no recoil S2 (their area distribution is *measured* on a sideband "
       "of the same length before S1), the recoil S2 peak (a gamma distribution, whose fitted mean is the mean "
       "of the recoil S2 areas however skewed the peak is), and X-ray S2s inside the window (shifted by the "
       "X-ray area of the set). Range and binning come from each set's data. The fitted mean and its 1σ "
       "uncertainty are the inputs of the calibration. Failed and poor fits (goodness-of-fit p-value below "
       "`gof_p_min`) are shown with their reason; they are never dropped, and never used silently."),
    ("parameters", PARAMS_RUN.format(stage="fitting")),
    code(IMPORTS_RUN + "from s2lib.stats.fitting import FitConfig\nfrom s2lib.analysis.fit_stage import fit_run_s2\n"
         "from s2lib.analysis.pipeline import xray_pileup_inputs\n"
         "from s2lib.io.store import load_s2area, store_s2area\n"),
    md("The fit options come from the run configuration (`pipeline.fitting`, or the lab's "
       "`pipeline.integration.fit_config`); `null` ranges and bins are taken from each set's data."),
    code("fit_config = FitConfig.from_mapping(run.config.section(\"fitting\"))\n"
         'rh.show_table(rh.fit_config_rows(fit_config), caption="S2 fit options (areas in mV·µs)")'),
    md("The areas and sideband areas are read back from each set's folder, where the integration stage wrote "
       "them, and every set is fitted; the pile-up component uses the X-ray area of the set's EL field."),
    code("areas = {s.name: load_s2area(run.set_output_dir(s.name)) for s in run.sets}\n"
         "fitted = fit_run_s2(areas, fit_config=fit_config, xrays=xray_pileup_inputs(run))\n"
         "for name, s2 in fitted.items():\n"
         "    store_s2area(s2, run.set_output_dir(name), raw_root=run.config.raw_data_path)"),
    md("Fit results per set. The mean is the mean of the recoil S2 areas, ± 1σ from the likelihood (HESSE, "
       "with the sideband's own error). The ci95 column gives the half-width of its 95 % interval; σ is the "
       "width of the recoil S2 areas. The χ²/ndf and p-value come from the Poisson deviance after merging "
       "sparse bins. A failed fit shows its best-fit mean for display only, and its reason."),
    code('rh.show_table(rh.fit_rows(run, fitted), caption="Recoil S2 fits (values ± 1σ)")'),
    md("Each set's histogram with its fit, the model components (empty windows, recoil S2, X-ray pile-up), "
       "and the pulls (n − μ)/√μ per bin. The error bars are 68 % Poisson (Garwood) intervals."),
    code("for s in run.sets:\n"
         "    fig = plotting.plot_hist_fit(fitted[s.name],\n"
         "                                 title=f\"{s.name}: E_drift = {s.drift_field_V_cm:.0f} V/cm\")\n"
         "    rh.show(fig, figures, f\"{s.name}_s2_hist_fit\")"),
    md("For comparison, the lab's histogram fit on the same areas: one Gaussian on the fixed range [0, 10] "
       "mV·µs in 100 bins (the template's `fit_config`). Its fits are judged by the same rules: a fit whose "
       "goodness-of-fit p-value is below `gof_p_min` is marked **POOR FIT (not used)**, one with signal beyond "
       "the range or at a limit **FAILED**. This table only illustrates the difference; nothing downstream uses "
       "it."),
    code('lab_fit = fit_run_s2(areas, fit_config=FitConfig(model="gauss", bin_cuts=(0.0, 10.0), nbins=100))\n'
         'rh.show_table(rh.fit_rows(run, lab_fit), caption="The lab\'s single Gaussian on [0, 10] mV·µs '
         '(illustration, not used)")\n'
         "poor = [s for s in run.sets if not lab_fit[s.name].fit_success]\n"
         "if poor:\n"
         "    s = poor[0]\n"
         "    fig = plotting.plot_hist_fit(lab_fit[s.name], title=f\"{s.name}: the lab's Gaussian (not used)\")\n"
         "    rh.show(fig, figures, f\"{s.name}_s2_hist_lab_gauss\")"),
    md("The fitted mean recoil S2 area against the drift field. Recombination decreases as the field grows, "
       "so more charge reaches the EL gap. The error bars are 95 % intervals; failed fits are drawn as open "
       "markers."),
    code("fig = plotting.plot_s2_vs_drift(run, fitted)\n"
         'rh.show(fig, figures, f"{run.run_id}_s2_vs_drift")'),
    code("# Numbers for the book's text.\n"
         'glue("n_fits", len(fitted), display=False)\n'
         'glue("n_fits_ok", sum(bool(s2.fit_success) for s2 in fitted.values()), display=False)'),
]

# ----------------------------------------------------------------------------------------------- calibration
CALIBRATION: list[Cell] = [
    md("# Calibration: S2 gain, electrons and recombination\n\n"
       "The 12.3 keV X-rays calibrate the S2 gain $g_\\mathrm{S2} = A_\\mathrm{x} / (E_\\mathrm{x} / W)$, "
       "separately for each EL field. "
       "The X-ray charge is assumed not to recombine. The recoil S2 means then give the collected electrons "
       "$N_e = A_\\mathrm{ion} / g_\\mathrm{S2}$ and the recombination fraction "
       "$r = 1 - N_e / (E_R / W)$. "
       "Everything here is read from disk: this chapter can be re-run alone after integration and fitting."),
    ("parameters", PARAMS_RUN.format(stage="calibration")),
    code(IMPORTS_RUN + "from s2lib.analysis.calibrate_stage import calibrate_and_analyze\nfrom s2lib.io.store import read_json\n"),
    md("Run the calibration. It reads the accepted X-rays and the stored S2 fits of every set. It writes "
       "`<run_id>_calibration.json`, `<run_id>_s2_vs_drift.csv`, `<run_id>_recomb_factors.csv` and the "
       "figures."),
    code("results, arrays = calibrate_and_analyze(run, ion_fitted_areas=None, flag_plot=False, save_plots=True,\n"
         "                                        verbose=False)\n"
         'calibration = read_json(Path(run.output_dir) / f"{run.run_id}_calibration.json")\n'
         'recomb = rh.read_table_csv(Path(run.output_dir) / f"{run.run_id}_recomb_factors.csv")'),
    md("## X-ray calibration\n\n"
       "The X-ray S2 areas of all sets at one EL field, with their fit. The fitted mean is $A_\\mathrm{x}$."),
    code("def show_figure(kind, e):\n"
         "    \"\"\"Display the figure calibrate_and_analyze saved for this EL field; False if it made none.\"\"\"\n"
         "    paths = results.figure(kind, e.el_field_V_cm)\n"
         "    if paths is not None:\n"
         "        rh.show_saved(paths[\"png\"].parent, paths[\"png\"].stem)\n"
         "    return paths is not None\n"
         "\n"
         "\n"
         "for e in results.entries:\n"
         "    if not show_figure(\"xray_hist\", e):\n"
         "        print(f\"EL {e.el_field_V_cm:g} V/cm: no X-ray fit ({e.source}; {e.reason or 'external g_S2'})\")"),
    md("$g_\\mathrm{S2}$ per EL field, ± 1σ. $N_\\mathrm{x} = E_\\mathrm{x} / W$ is the number of X-ray "
       "electrons. The uncertainty of $W$ is not included. A $g_\\mathrm{S2}$ taken from another run or given in "
       "the configuration shows its source."),
    code('rh.show_table(rh.gs2_rows(calibration), caption="S2 gain per EL field (values ± 1σ)")'),
    md("## Recombination\n\n"
       "Per set: the recoil S2 mean $A_\\mathrm{ion}$ and the electrons $N_e = A_\\mathrm{ion} / g_\\mathrm{S2}$, "
       "with total 1σ errors. The recombination fraction $r$ is given with its total 1σ error and the two parts: "
       "statistical (from the S2 fit) and $g_\\mathrm{S2}$ (common to all sets of one EL field). These add in "
       "quadrature."),
    code('rh.show_table(rh.recombination_rows(recomb), caption="Electrons and recombination per set (values ± 1σ)")'),
    md("Measured electrons (left) and recombination fraction (right) against the drift field. The error bars "
       "are total 1σ. The curves are the Thomas–Imel box model and the empirical model fitted to $r$; the bands "
       "are their 1σ."),
    code("for e in results.entries:\n"
         "    if not show_figure(\"recombination\", e):\n"
         "        print(f\"EL {e.el_field_V_cm:g} V/cm: no recombination figure\")"),
    md("Model fit parameters ± total 1σ, with the statistical and the g_S2 parts in brackets. The fits use "
       "the statistical errors only, because the $g_\\mathrm{S2}$ error is common to all points. Its effect is "
       "found by refitting with $g_\\mathrm{S2}$ ± 1σ. χ²/ndf and p-value are computed with the statistical "
       "errors."),
    code('rh.show_table(rh.model_rows(calibration), caption="Recombination model fits")'),
    md("The recoil S2 mean normalised to the X-ray mean, $A_\\mathrm{ion} / A_\\mathrm{x}$, against the drift "
       "field. This ratio does not depend on the S2 gain (95 % intervals)."),
    code("for e in results.entries:\n"
         "    if not show_figure(\"s2_vs_drift_normalized\", e):\n"
         "        print(f\"EL {e.el_field_V_cm:g} V/cm: no usable g_S2 ({e.reason}): no normalised plot\")"),
    code("# Numbers for the book's text (this run).\n"
         "rows, texts = rh.key_numbers([{\"run_id\": run.run_id, \"calibration\": calibration, \"recomb\": recomb}])\n"
         "for key, text in texts.items():\n"
         "    glue(key, text, display=False)\n"
         "rh.show_table(rows, caption=\"Key numbers of this run (values ± 1σ)\")"),
]

# ----------------------------------------------------------------------------------------------- summary
SUMMARY: list[Cell] = [
    md("# Summary across runs\n\n"
       "The calibration results of every run in this book, side by side. Each number is read from the run's "
       "`<run_id>_calibration.json` and `<run_id>_recomb_factors.csv`. Uncertainties are 1σ."),
    ("parameters", PARAMS_SUMMARY),
    code("from pathlib import Path\n\n"
         "from myst_nb import glue\n\n"
         "from s2lib.analysis import plotting\n"
         "from s2lib.analysis import report_helpers as rh\n"
         "from s2lib.io.store import write_json_atomic\n\n"
         "rh.setup_display()\n"
         "if not run_ids or len(run_ids) != len(output_dirs):\n"
         "    raise ValueError(f\"need one output_dir per run id, got run_ids={run_ids!r}, output_dirs={output_dirs!r}\")\n"
         "results = [rh.load_run_results(rid, folder) for rid, folder in zip(run_ids, output_dirs)]\n"
         "figures = Path(output_dir) / \"figures\"\n"
         "print(f\"{len(results)} run(s): {', '.join(run_ids)}\")"),
    md("## Recombination against drift field\n\n"
       "The recombination fraction of every run and EL field against the drift field, with total 1σ error "
       "bars. The $g_\\mathrm{S2}$ part of the error is common to all points of one run and EL field."),
    code("fig = plotting.plot_summary_recombination(rh.summary_recombination_series(results),\n"
         "                                          interval=\"1σ (stat ⊕ g_S2)\")\n"
         'rh.show(fig, figures, "summary_recombination")'),
    md("## S2 gain per EL field\n\n"
       "$g_\\mathrm{S2}$ depends strongly on the EL field, so it is given per run and EL field, with its source."),
    code("rows = [row for res in results for row in rh.gs2_rows(res[\"calibration\"], run_id=res[\"run_id\"])]\n"
         'rh.show_table(rows, caption="g_S2 per run and EL field (values ± 1σ)")'),
    md("## Key numbers\n\n"
       "Per run and EL field: the drift fields used, $g_\\mathrm{S2}$, and the ranges of $N_e$ and $r$ over the "
       "drift fields. The last columns give the recombination model parameters (Thomas–Imel $a$ and $S$; "
       "empirical $A$ and $B$, with $S$ fixed to 1)."),
    code("key_rows, texts = rh.key_numbers(results)\n"
         'rh.show_table(key_rows, caption="Key numbers (values ± 1σ)")'),
    md("Recombination model fits of every run, with their goodness of fit."),
    code("rows = [row for res in results for row in rh.model_rows(res[\"calibration\"], run_id=res[\"run_id\"])]\n"
         'rh.show_table(rows, caption="Recombination model fits (values ± 1σ: total, with statistical and g_S2 parts)")'),
    code("# The numbers quoted in the book's introduction (text with uncertainties and units).\n"
         "for key, text in texts.items():\n"
         "    glue(key, text, display=False)\n"
         'write_json_atomic(Path(output_dir) / "summary.json", {"runs": list(run_ids), "key_numbers": texts,\n'
         '                                                      "table": key_rows})\n'
         "for key, text in texts.items():\n"
         "    print(f\"{key}: {text}\")"),
]

NOTEBOOKS = {"integration": INTEGRATION, "fitting": FITTING, "calibration": CALIBRATION, "summary": SUMMARY}


def build(cells: list[Cell]) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    for kind, text in cells:
        if kind == "markdown":
            nb.cells.append(nbf.v4.new_markdown_cell(text))
        else:
            cell = nbf.v4.new_code_cell(text)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{'md' if cell.cell_type == 'markdown' else 'code'}-{i:02d}"   # stable ids: clean diffs
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, cells in NOTEBOOKS.items():
        path = HERE / f"{name}.ipynb"
        text = nbf.writes(build(cells)) + "\n"
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
            continue
        path.write_text(text, encoding="utf-8")
        print("wrote", path)
    if stale:
        print("out of date (run notebooks/make_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
