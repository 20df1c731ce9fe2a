"""What the calibration figures and progress output show, checked against the simulated truth of the run.

The figures are the physicist's view of the calibration (``calibrate_stage._figures``): the g_S2 in the title must
be the fitted one and agree with the true A_x/N_x, the model curves carry their 1σ bands, successful fits are
drawn as filled markers (failed ones open, named in the legend), and the files get the documented names.
Figures are made in memory (``save_figure`` records the names instead of rendering PNG/PDF: the rendering
itself is tested in test_calibration.py::test_run_calibration_analysis_saves_figures).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from s2lib.calib import calibration
from s2lib.analysis import plotting
from s2lib.analysis import calibrate_stage
from s2lib.analysis.calibrate_stage import calibrate_and_analyze
from s2lib.calib.calibration import xray_gs2
from s2lib.stats.fitting import FitConfig

from test_calibration import FIELDS_GATE, N_X, make_run, true_r, write_run_data

A_X = 2.005                                  # true mean X-ray area, mV·µs (domain.md: RUN21 at 2375 V/cm)


@pytest.fixture()
def calibrated(tmp_path_factory: pytest.TempPathFactory):
    # function scope on purpose: mutmut attributes the code a fixture runs to the test that first sets it up,
    # so a module-scoped fixture would hide the figure code from every test but the first
    saved: list[str] = []

    def record(fig, fig_dir, name):          # what would be written, without rendering PNG + PDF
        saved.append(name)
        return {"png": Path(fig_dir) / f"{name}.png", "pdf": Path(fig_dir) / f"{name}.pdf"}

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(plotting, "save_figure", record)
        run = make_run(tmp_path_factory.mktemp("calfig"), [(g, g + 1900) for g in FIELDS_GATE[:5]])
        fitted = write_run_data(run, np.random.default_rng(17), a_x={2375: A_X}, n_x=3000, n_ion=2000)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            res, arr = calibrate_and_analyze(run, fitted, flag_plot=True, save_plots=True)
        figs, _ = calibrate_stage._figures(run, res, arr, None, True)
    yield run, res, arr, figs, saved, buf.getvalue()
    for f in figs:
        plotting.close(f)


def _progress_lines_are_whole_lines_in_order(calibrated):
    run, res, arr, figs, saved, out = calibrated
    lines = out.splitlines()
    want = ["[1/5] Loading X-ray results...", "[2/5] Fitting X-ray histogram...",
            "[3/5] Computing calibration constants...", "[4/5] Using provided ion fitted areas (5 sets)",
            "[5/5] Computing recombination fractions..."]
    pos = [lines.index(w) for w in want]     # each a line of its own (ValueError if not)
    assert pos == sorted(pos)


def _figure_names_are_the_documented_ones(calibrated):
    run, res, arr, figs, saved, out = calibrated
    assert sorted(saved) == ["RUNT_recombination_EL2375", "RUNT_s2_vs_drift_normalized_EL2375",
                             "RUNT_xray_hist_EL2375"]
    for kind in calibration.FIGURE_KINDS:
        paths = res.figure(kind, 2375.0)
        assert paths is not None and paths["png"].name == f"RUNT_{kind}_EL2375.png"


def _title(fig) -> str:
    sup = fig._suptitle.get_text() if fig._suptitle is not None else ""
    return " ".join([sup] + [ax.get_title() for ax in fig.axes])


def test_recombination_figure_against_truth(calibrated):
    run, res, arr, figs, saved, out = calibrated
    rec = [f for f in figs if "g_S2 = " in _title(f)]
    assert len(rec) == 1
    title = _title(rec[0])
    e = res.entries[0]
    assert "EL 2375 V/cm" in title and "Run RUNT" in title and f"({e.source})" in title
    m = re.search(r"g_S2 = \(?([0-9.]+) ± ([0-9.]+)\)?(?:×10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))?", title)
    assert m, title
    sup = str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789")
    scale = 10.0 ** int(m.group(3).translate(sup)) if m.group(3) else 1.0
    g, dg = float(m.group(1)) * scale, float(m.group(2)) * scale
    assert g == pytest.approx(e.g_S2, rel=0.01) and dg == pytest.approx(e.d_g_S2, rel=0.1)
    assert abs(g - A_X / N_X) < 4 * dg                           # the title shows a g_S2 that matches truth
    ax_r = rec[0].axes[-1]
    bands = [c for c in ax_r.collections if type(c).__name__ in ("PolyCollection", "FillBetweenPolyCollection")]
    fits = res.model_fits[2375.0]
    assert len(bands) == len(fits) == 2                          # one 1σ band per model curve
    labels = [t.get_text() for t in ax_r.get_legend().get_texts()]
    assert sum("± 1σ band" in t for t in labels) == 2
    for name, f in fits.items():                                  # good fits plain, failed ones "(NOT OK)"
        want = f"{name.replace('_', '–')} fit" + ("" if f.fit_success else " (NOT OK)") + " ± 1σ band"
        assert want in labels, (want, labels)
    # N_exp = E_R/W = 96.84 keV / 22 eV (Th-228 recoil, domain.md) is stated in the figure
    assert f"expected without recombination: {96.845e3 / 22:.0f} e⁻" in title
    # the Thomas–Imel band contains the true r at the middle field (its 1σ band ± 4σ of the points' scatter)
    ti = fits["thomas_imel"]
    x = np.array([float(np.median(arr["drift_field"]))])
    lo, hi = (np.asarray(v, float) for v in tuple(ti.band(x))[-2:])
    half = 0.5 * float(hi[0] - lo[0])
    assert half > 0 and abs(0.5 * float(hi[0] + lo[0]) - true_r(x)[0]) < 4 * half + 0.01


def _normalised_s2_figure_draws_successful_fits_filled(calibrated):
    run, res, arr, figs, saved, out = calibrated
    norm = [f for f in figs if any("A_\\mathrm{ion}" in ax.get_ylabel() for ax in f.axes)]
    assert len(norm) == 1
    ax = norm[0].axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert all(arr["fit_success"]) and not any("fit failed" in t for t in labels)
    # filled markers for every set; the ratio A_ion/A_x follows the truth N_exp(1 − r)/N_x
    pts = [c.lines[0] for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert sum(ln.get_xdata().size for ln in pts) == 5
    assert all(ln.get_markerfacecolor() != "white" for ln in pts)
    x = np.concatenate([ln.get_xdata() for ln in pts])
    y = np.concatenate([ln.get_ydata() for ln in pts])
    n_exp = res.N_e_exp
    np.testing.assert_allclose(y, n_exp * (1 - true_r(x)) / N_X, rtol=0.06)


def _xray_hist_figure_is_made_from_the_xray_fit(calibrated):
    run, res, arr, figs, saved, out = calibrated
    xh = [f for f in figs if "X-rays, EL 2375 V/cm" in _title(f)]
    assert len(xh) == 1 and "Run RUNT" in _title(xh[0])


def test_no_xray_areas_gives_a_failed_entry_with_json_booleans():
    e = xray_gs2(np.zeros(0), 2375.0, FitConfig(), W_eV=22.0, E_x_eV=12300.0, sets=("a", "b"))
    assert e.fit_success is False and not e.usable and math.isnan(e.g_S2)
    assert e.N_x == pytest.approx(12300.0 / 22.0)
    assert e.reason == "no X-ray areas in the sets at EL 2375 V/cm" and e.sets == ("a", "b")
    assert e.W_eV == 22.0 and e.E_x_eV == 12300.0 and e.el_field_V_cm == 2375.0
    doc = json.loads(json.dumps(e.to_dict(), allow_nan=True))
    assert doc["fit_success"] is False                # a JSON boolean, not null


def _calibration_json_assumptions_name_the_json_keys(calibrated):
    run, res, arr, figs, saved, out = calibrated
    doc = res.to_dict()
    keys = set(doc["gs2_by_el_field"][0])
    named = set(re.findall(r"\b(d_g_S2|g_S2|d_g_s2|g_s2|A_x|dA_x)\b", " ".join(doc["assumptions"])))
    assert {"g_S2", "d_g_S2"} <= named
    assert {n for n in named if "g_" in n} <= keys    # every g_S2 symbol in the text is spelled as its JSON key


def test_no_normalised_figure_without_a_usable_gs2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A poor X-ray fit keeps its A_x for display but gives no usable g_S2: the A_ion/A_x figure is not made."""
    saved: list[str] = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, d, name: saved.append(name) or
                        {"png": Path(d) / f"{name}.png", "pdf": Path(d) / f"{name}.pdf"})
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE[:3]])
    fitted = write_run_data(run, np.random.default_rng(18), a_x={2375: A_X}, n_x=10, n_ion=1500)
    from s2lib.io.store import store_xrays
    skewed = np.random.default_rng(19).normal(2.0, 0.2, 4000) ** 3 / 4     # no normal peak: a poor fit
    store_xrays(run.set_output_dir(run.sets[0].name), skewed, None, {"n_events": 4000, "rejection_reasons": {}})
    res, arr = calibrate_and_analyze(run, fitted, flag_plot=False, save_plots=True, verbose=False)
    e = res.entries[0]
    assert not e.usable and math.isfinite(e.A_x) and e.xray_fit is not None, e.reason
    assert "poor fit" in e.reason
    assert sorted(saved) == ["RUNT_recombination_EL2375", "RUNT_xray_hist_EL2375"]
    assert res.figure("s2_vs_drift_normalized", 2375.0) is None


def _fitted_gs2_entry_records_its_constants(calibrated):
    run, res, arr, figs, saved, out = calibrated
    d = res.entries[0].to_dict()
    assert d["W_eV"] == 22.0 and d["E_x_eV"] == 12300.0 and d["N_x"] == pytest.approx(12300.0 / 22.0)
    assert d["g_S2"] == pytest.approx(d["A_x"] / d["N_x"]) and d["source"] == calibration.SOURCE_FIT
    assert abs(d["A_x"] - A_X) < 4 * d["dA_x"] and d["n_xrays"] > 0.95 * 5 * 3000


def test_calibration_output_progress_names_and_json(calibrated):
    """One calibration (the fixture costs seconds), several checks of what the user gets."""
    _progress_lines_are_whole_lines_in_order(calibrated)
    _figure_names_are_the_documented_ones(calibrated)
    _calibration_json_assumptions_name_the_json_keys(calibrated)
    _fitted_gs2_entry_records_its_constants(calibrated)


def test_xray_and_normalised_figures(calibrated):
    _xray_hist_figure_is_made_from_the_xray_fit(calibrated)
    _normalised_s2_figure_draws_successful_fits_filled(calibrated)


def test_too_few_xrays_give_no_xray_figure_and_the_reason(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Five X-ray areas at one EL field: the estimator refuses them before binning (min_events), so the fit holds
    no histogram. The stage must still finish, make no X-ray figure, and keep the refusal as the entry's reason
    (the notebook prints it); before this a stock tiny run stopped in plot_hist_fit."""
    saved: list[str] = []
    monkeypatch.setattr(plotting, "save_figure", lambda fig, d, name: saved.append(name) or
                        {"png": Path(d) / f"{name}.png", "pdf": Path(d) / f"{name}.pdf"})
    run = make_run(tmp_path, [(g, g + 1900) for g in FIELDS_GATE[:3]])
    fitted = write_run_data(run, np.random.default_rng(18), a_x={2375: A_X}, n_x=10, n_ion=1500)
    from s2lib.io.store import store_xrays
    for s in run.sets:                                    # 5 X-rays in all, far below FitConfig().min_events
        n = 5 if s is run.sets[0] else 0
        store_xrays(run.set_output_dir(s.name), np.full(n, A_X) + np.arange(n) * 0.01, None,
                    {"n_events": n, "rejection_reasons": {}})
    res, arr = calibrate_and_analyze(run, fitted, flag_plot=False, save_plots=True, verbose=False)
    e = res.entries[0]
    assert e.xray_fit is not None and not e.fit_success and not e.usable
    assert e.reason.startswith("too few events: 5 < min_events"), e.reason
    assert "RUNT_xray_hist_EL2375" not in saved and res.figure("xray_hist", 2375.0) is None
    assert "RUNT_recombination_EL2375" in saved
