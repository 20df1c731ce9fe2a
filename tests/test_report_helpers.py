"""The report notebooks' display helpers: PDG rounding, Markdown tables, figure display, key numbers."""
from __future__ import annotations

import base64
import math

import pytest

from s2lib.analysis import report_helpers as rh
from s2lib.analysis import summary_rows as sr


@pytest.mark.parametrize("value, error, text", [
    (1.23456, 0.0123, "1.235 ± 0.012"),                 # 123 -> two digits
    (0.003586, 0.000136, "(3.59 ± 0.14)×10⁻³"),         # small numbers get a common factor
    (1.0, 0.0456, "1.00 ± 0.05"),                       # 456 -> one digit
    (1.0, 0.0987, "1.00 ± 0.10"),                       # 987 -> rounds up to 1000, two digits
    (96.84, 0.354, "96.84 ± 0.35"),                     # 354: last two-digit case
    (96.84, 0.355, "96.8 ± 0.4"),                       # 355: first one-digit case
    (4402.0, 130.0, "4400 ± 130"),
    (12345.6, 67.0, "(1.235 ± 0.007)×10⁴"),
    (287.2, 42.35, "290 ± 40"),
    (-0.5, 0.0123, "-0.500 ± 0.012"),
    (0.0, 0.0123, "0.000 ± 0.012"),
    (2.0, 0.5, "2.0 ± 0.5"),
    (0.009996, 0.0001, "0.01000 ± 0.00010"),           # the factor is chosen after rounding
])
def test_format_value_pdg(value: float, error: float, text: str) -> None:
    assert rh.format_value(value, error) == text


def test_format_value_units_and_missing_errors() -> None:
    assert rh.format_value(0.003586, 0.000136, unit="mV·µs/e⁻") == "(3.59 ± 0.14)×10⁻³ mV·µs/e⁻"
    assert rh.format_value(1.23456, 0.0123, unit="mV·µs") == "1.235 ± 0.012 mV·µs"
    assert rh.format_value(1.23456, None) == "1.235"
    assert rh.format_value(1.23456, math.nan) == "1.235"
    assert rh.format_value(1.23456, 0.0) == "1.235"
    assert rh.format_value(math.nan, 0.1) == "n/a"
    assert rh.format_value(None) == "n/a"


def test_pdg_digits() -> None:
    assert rh.pdg_digits(0.0123) == (2, -2)
    assert rh.pdg_digits(0.0456) == (1, -2)
    assert rh.pdg_digits(0.0987) == (2, -1)
    assert rh.pdg_digits(9.996) == (2, 1)
    with pytest.raises(ValueError):
        rh.pdg_digits(0.0)


def test_format_error_number_p_range() -> None:
    assert rh.format_error(0.0123) == "0.012"
    assert rh.format_error(0.000136) == "1.4×10⁻⁴"
    assert rh.format_error(0.000999) == "1.0×10⁻³"
    assert rh.format_error(math.nan) == "n/a"
    assert rh.format_number(4.877421e19) == "4.877×10¹⁹"
    assert rh.format_number(2375.0) == "2375"
    assert rh.format_number(3.14159, unit="V") == "3.142 V"
    assert rh.format_p(0.5) == "0.50"
    assert rh.format_p(3.2e-4) == "3.2×10⁻⁴"
    assert rh.format_p(1e-9) == "< 1×10⁻⁶"
    assert rh.format_p(math.nan) == "n/a"
    assert rh.format_range([(0.93, 0.006), (math.nan, 1.0), (0.835, 0.0061)]) == "0.930 ± 0.006 … 0.835 ± 0.006"
    assert rh.format_range([(290.0, 40.0)], unit="e⁻") == "290 ± 40 e⁻"
    assert rh.format_range([]) == "n/a"


def test_markdown_table() -> None:
    rows = [{"Set": "A|B", "Area (mV·µs)": "1.235 ± 0.012", "N": 3, "ok": True, "note": None},
            {"Set": "C", "Area (mV·µs)": "(3.59 ± 0.14)×10⁻³", "N": 4, "ok": False, "note": "FAILED: x"}]
    text = rh.markdown_table(rows)
    assert text.splitlines() == [
        "| Set | Area (mV·µs) | N | ok | note |",
        "|:--|--:|--:|:--|:--|",
        "| A\\|B | 1.235 ± 0.012 | 3 | yes | – |",
        "| C | (3.59 ± 0.14)×10⁻³ | 4 | no | FAILED: x |",
    ]
    assert rh.markdown_table([[1.5, "x"]], ["a", "b"], align={"b": "c"}).splitlines()[1] == "|--:|:-:|"
    with pytest.raises(ValueError):
        rh.markdown_table([[1, 2]], ["a"])
    with pytest.raises(ValueError):
        rh.markdown_table([[1]])


def _capture(monkeypatch: pytest.MonkeyPatch) -> list:
    import IPython.display

    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, **kw: shown.append((obj, kw)))
    return shown


def test_show_table_and_show_figure(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from matplotlib.figure import Figure

    shown = _capture(monkeypatch)
    assert rh.show_table([{"a": 1}], caption="Cap") is None
    assert shown[0][0].data == "**Cap**\n\n| a |\n|--:|\n| 1 |"
    fig = Figure(figsize=(3.0, 2.0))
    fig.add_subplot().plot([0, 1], [0, 1])
    assert rh.show(fig, tmp_path / "figures", "line") is None
    data, kw = shown[1]
    assert base64.b64decode(data["image/png"])[:4] == b"\x89PNG"
    assert base64.b64decode(data["application/pdf"])[:5] == b"%PDF-"
    assert kw["raw"] is True and kw["metadata"]["image/png"]["width"] == 300     # 3 in at 200 dpi, shown at 100 px/in
    assert (tmp_path / "figures" / "line.png").is_file() and (tmp_path / "figures" / "line.pdf").is_file()
    with pytest.raises(FileNotFoundError):
        rh.show_saved(tmp_path / "figures", "missing")


def _calibration(success: bool = True) -> dict:
    fit = {"param_names": ["a", "S"], "param_units": {"a": "V/cm", "S": "1"}, "values": {"a": 412.3, "S": 0.2046},
           "errors": {"a": 35.2, "S": 0.0061}, "errors_stat": {"a": 35.0, "S": 0.004},
           "errors_gs2": {"a": 0.0, "S": 0.0046}, "fixed": {}, "chi2": 1.2, "ndf": 1, "p_value": 0.27,
           "n_points": 3, "fit_success": success, "reason": "" if success else "at limit"}
    emp = {"param_names": ["A", "B", "S"], "param_units": {"A": "1", "B": "cm/V", "S": "1"},
           "values": {"A": 0.91, "B": 0.00042, "S": 1.0}, "errors": {"A": 0.01, "B": 0.00005, "S": 0.0},
           "errors_stat": {"A": 0.01, "B": 0.00005, "S": 0.0}, "errors_gs2": {"A": 0.001, "B": 0.0, "S": 0.0},
           "fixed": {"S": 1.0}, "chi2": 0.5, "ndf": 1, "p_value": 0.48, "n_points": 3, "fit_success": True,
           "reason": ""}
    return {"run_id": "R1", "gs2_by_el_field": [
        {"el_field_V_cm": 2375.0, "A_x": 2.005, "dA_x": 0.076, "N_x": 559.09, "g_S2": 0.003586, "d_g_S2": 0.000136,
         "n_xrays": 63, "fit_success": True, "reason": "", "source": "fit of this run", "provenance": {}}],
        "model_fits": {"2375": {"thomas_imel": fit, "empirical": emp}}}


def _recomb() -> list[dict]:
    return [{"set_name": f"S{i}", "drift_field": f, "el_field": 2375.0, "s2_mean": m, "s2_mean_err": 0.05,
             "N_e_meas": m / 0.003586, "dN_e_meas": 20.0, "recomb_factor": 1 - m / 0.003586 / 4402,
             "recomb_error": 0.006, "recomb_error_stat": 0.004, "recomb_error_gs2": 0.0045, "used_in_model_fit": True,
             "reason": ""} for i, (f, m) in enumerate([(71.4, 1.2), (285.7, 2.1), (857.1, 2.9)])]


def test_key_numbers_one_and_two_runs() -> None:
    one = [{"run_id": "R1", "calibration": _calibration(), "recomb": _recomb()}]
    rows, glue = sr.key_numbers(one)
    assert glue["n_runs"] == "1"
    assert glue["gs2"] == "(3.59 ± 0.14)×10⁻³ mV·µs/e⁻ at E_EL = 2375 V/cm (fit of this run)"
    assert glue["ax_mean"] == "2.01 ± 0.08 mV·µs at E_EL = 2375 V/cm"
    assert glue["ti_a"] == "412 ± 35 V/cm at E_EL = 2375 V/cm"
    assert glue["ti_s"] == "0.205 ± 0.006 at E_EL = 2375 V/cm"
    assert glue["emp_b"] == "(4.2 ± 0.5)×10⁻⁴ cm/V at E_EL = 2375 V/cm"
    assert glue["recomb_range"].startswith("0.924 ± 0.006 … 0.816 ± 0.006 (E_drift = 71.4–857 V/cm")
    assert rows[0]["Sets used"] == 3
    two = one + [{"run_id": "R2", "calibration": _calibration(success=False), "recomb": _recomb()}]
    _, glue2 = sr.key_numbers(two)
    assert glue2["n_runs"] == "2"
    parts = glue2["ti_a"].split("; ")
    assert parts[0].startswith("R1: 412 ± 35 V/cm") and parts[1].startswith("R2: 412 ± 35 V/cm (fit not ok: at limit)")
    series = sr.summary_recombination_series(two)
    assert list(series) == ["R1", "R2"] and series["R1"][0] == [71.4, 285.7, 857.1]


def test_tables_from_artifacts(tmp_path) -> None:
    from s2lib.calib.calibration import RECOMB_COLUMNS
    from s2lib.io.store import write_csv_atomic

    path = write_csv_atomic(tmp_path / "r.csv", _recomb(), list(RECOMB_COLUMNS))
    rows = rh.read_table_csv(path)
    assert rows[0]["used_in_model_fit"] is True and rows[0]["g_S2"] is None and rows[0]["drift_field"] == 71.4
    table = rh.recombination_rows(rows)
    assert table[0]["r ± 1σ total"] == "0.924 ± 0.006" and table[0]["In model fit"] == "yes"
    gs2 = rh.gs2_rows(_calibration(), run_id="R1")
    assert gs2[0]["g_S2 ± 1σ (mV·µs/e⁻)"] == "(3.59 ± 0.14)×10⁻³" and gs2[0]["Status"] == "ok"
    models = rh.model_rows(_calibration())
    assert models[0]["Parameters ± 1σ"] == "a = 412 ± 35 V/cm (stat 35, g_S2 0); S = 0.205 ± 0.006 (stat 0.004, " \
                                           "g_S2 0.005)"
    assert "S = 1 (fixed)" in models[1]["Parameters ± 1σ"]
