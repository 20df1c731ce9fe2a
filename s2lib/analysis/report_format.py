"""Text formatting for the report: numbers with uncertainties (PDG rounding) and Markdown tables.

Pure string functions (no IPython, no run objects); :mod:`s2lib.analysis.report_helpers` re-exports every name here and
adds the notebook display and the run/artifact rows.

* :func:`format_value` writes ``value ± error`` with the Particle Data Group rounding rule (the error's
  significant digits decide both; Review of Particle Physics, "Introduction: rounding"):
  the three leading digits of the error decide: 100-354 → two significant digits, 355-949 → one,
  950-999 → rounded up to 1000 and two digits. The value is rounded to the same decimal place. Large and small
  numbers (outside 0.01 … 10 000) get a common power-of-ten factor: ``(3.59 ± 0.14)×10⁻³``.
* :func:`markdown_table` renders rows as a Markdown (MyST) table. The book renders Markdown outputs as tables
  (``nb_render_markdown_format: myst``).
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

__all__ = [
    "DASH", "pdg_digits", "pdg_round", "format_value", "format_error", "format_number", "format_p", "format_range",
    "superscript", "markdown_table",
]

DASH = "–"
"""What a table cell shows when a number is not available."""
_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_NUMERIC = re.compile(r"^[(<−-]?\s?[0-9.]")


def _finite(x: Any) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def superscript(n: int) -> str:
    """``-3`` → ``⁻³`` (Unicode superscript digits)."""
    return str(int(n)).translate(_SUPERSCRIPT)


def pdg_digits(error: float) -> tuple[int, int]:
    """Significant digits (1 or 2) and decimal position of a positive, finite ``error`` under the PDG rule.

    Returns ``(digits, exponent)``: the error is rounded to ``digits`` significant digits, its leading digit
    being at ``10**exponent``. 0.0123 → (2, -2); 0.0456 → (1, -2); 0.0987 → (2, -1) (rounds up to 0.10).
    """
    e = abs(float(error))
    if not (math.isfinite(e) and e > 0):
        raise ValueError(f"pdg_digits: error must be positive and finite, got {error!r}")
    exp = math.floor(math.log10(e))
    lead = int(round(e / 10 ** (exp - 2)))        # three leading digits, 100..1000
    if lead >= 1000:                               # 9995.. rounding up into the next decade
        exp, lead = exp + 1, 100
    if lead < 355:
        return 2, exp
    if lead < 950:
        return 1, exp
    return 2, exp + 1                              # 950-999: round up to 1000, keep two digits


def _display_exponent(x: float) -> int:
    """Power-of-ten factor for display: 0 for 0.01 <= |x| < 10 000, else the exponent of |x| (scientific)."""
    if x == 0 or not math.isfinite(x):
        return 0
    mag = math.floor(math.log10(abs(x)))
    return 0 if -2 <= mag <= 3 else mag


def _round_half_up(x: float, last: int) -> float:
    """``x`` rounded to the decimal position ``10**last``, halves away from zero, on the shortest decimal
    representation of ``x`` (so 2.005 → 2.01, as written, not 2.00 from its binary value)."""
    q = Decimal(1).scaleb(last)
    return float(Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_UP))


def pdg_round(value: float, error: float, *, exponent: int | None = None) -> tuple[str, str, int]:
    """Round ``value`` and ``error`` by the PDG rule; returns ``(value_text, error_text, exponent)``.

    The texts are the mantissas to be multiplied by ``10**exponent``; ``exponent`` (chosen from the larger of
    |value| and error when not given: that number's decimal exponent) is 0 for numbers between 0.01 and 10 000.
    """
    v, e = float(value), abs(float(error))
    digits, lead_exp = pdg_digits(e)
    last = lead_exp - digits + 1                   # decimal position of the last kept digit
    v_r, e_r = _round_half_up(v, last), _round_half_up(e, last)
    e_r = max(e_r, 10.0 ** lead_exp)              # 950-999 (from the 3 leading digits) rounds up to 1000
    if exponent is None:
        exponent = _display_exponent(max(abs(v_r), e_r))
    decimals = max(0, exponent - last)
    scale = 10.0 ** exponent
    v_txt = f"{v_r / scale:.{decimals}f}"
    e_txt = f"{e_r / scale:.{decimals}f}"
    if v_txt.lstrip("-").strip("0.") == "":
        v_txt = v_txt.lstrip("-")                   # no "-0.00"
    return v_txt, e_txt, exponent


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def format_value(value: Any, error: Any = None, *, unit: str = "", exponent: int | None = None,
                 digits: int = 4) -> str:
    """``value ± error`` rounded by the PDG rule, with a common ×10ⁿ factor and the unit.

    1.23456 ± 0.0123 → ``"1.235 ± 0.012"``; 0.003586 ± 0.000136 → ``"(3.59 ± 0.14)×10⁻³"``; with
    ``unit="mV·µs"`` → ``"1.235 ± 0.012 mV·µs"``. Without a usable error (None, NaN, ≤ 0) the value alone is
    given to ``digits`` significant digits; a value that is not finite gives ``"n/a"``.
    """
    if not _finite(value):
        return "n/a"
    if not (_finite(error) and float(error) > 0):
        return format_number(value, digits=digits, unit=unit)
    v_txt, e_txt, exp = pdg_round(float(value), float(error), exponent=exponent)
    core = f"{v_txt} ± {e_txt}" if exp == 0 else f"({v_txt} ± {e_txt})×10{superscript(exp)}"
    return _with_unit(core, unit)


def format_error(error: Any, *, unit: str = "") -> str:
    """An uncertainty alone (a ci95, a spread) rounded by the PDG rule: 0.01234 → ``"0.012"``."""
    if not (_finite(error) and float(error) >= 0):
        return "n/a"
    if float(error) == 0:
        return _with_unit("0", unit)
    e = float(error)
    exp = 0 if 1e-3 <= e < 1e4 else pdg_digits(e)[1]
    _, e_txt, exp = pdg_round(0.0, e, exponent=exp)
    return _with_unit(e_txt if exp == 0 else f"{e_txt}×10{superscript(exp)}", unit)


def format_number(value: Any, *, digits: int = 4, unit: str = "") -> str:
    """A number without uncertainty to ``digits`` significant digits (×10ⁿ factor outside 0.01..10 000)."""
    if not _finite(value):
        return "n/a"
    v = float(value)
    if v == 0:
        return _with_unit("0", unit)
    if float(v).is_integer() and abs(v) < 1e6:
        return _with_unit(str(int(v)), unit)
    exp = _display_exponent(v)
    mant = v / 10.0 ** exp
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(mant))))
    text = f"{mant:.{decimals}f}"
    return _with_unit(text if exp == 0 else f"{text}×10{superscript(exp)}", unit)


def format_p(p: Any) -> str:
    """A p-value: two significant digits, ``< 10⁻⁶`` style below 10⁻⁶, ``"n/a"`` when undefined."""
    if not _finite(p):
        return "n/a"
    p = float(p)
    if p < 1e-6:
        return "< 1×10⁻⁶"
    if p < 0.01:
        mant, exp = f"{p:.1e}".split("e")
        return f"{mant}×10{superscript(int(exp))}"
    return f"{p:.2f}"


def format_range(items: Sequence[tuple[Any, Any]], *, unit: str = "") -> str:
    """``"a ± da … b ± db unit"``: the first and last of ``(value, error)`` pairs (e.g. over drift fields).

    Pairs whose value is not finite are skipped; one pair gives just that value; none gives ``"n/a"``.
    """
    good = [(v, e) for v, e in items if _finite(v)]
    if not good:
        return "n/a"
    if len(good) == 1:
        return format_value(*good[0], unit=unit)
    return f"{format_value(*good[0])} … {format_value(*good[-1])}" + (f" {unit}" if unit else "")


# ------------------------------------------------------------------------------------------ tables
def _cell(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        text = format_number(value)
        return DASH if text == "n/a" else text
    text = str(value).replace("\n", " ").replace("|", "\\|")
    return text if text.strip() else DASH


def markdown_table(rows: Iterable[Mapping[str, Any] | Sequence[Any]], columns: Sequence[str] | None = None, *,
                   align: Mapping[str, str] | None = None) -> str:
    """A Markdown table from ``rows`` (mappings, or sequences in the order of ``columns``).

    ``columns`` default to the keys of the first mapping. Cells: None → ``–``, bools → yes/no, floats to four
    significant digits (format numbers with uncertainties yourself with :func:`format_value`), ``|`` escaped.
    ``align`` maps a column to ``"l"``, ``"r"`` or ``"c"`` (default: right when every cell of the column is
    a number, with or without uncertainty; left otherwise).
    """
    rows = list(rows)
    if columns is None:
        if not rows or not isinstance(rows[0], Mapping):
            raise ValueError("markdown_table: give columns for rows that are not mappings")
        columns = list(rows[0].keys())
    columns = list(columns)
    if not columns:
        raise ValueError("markdown_table: no columns")
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    align = dict(align or {})
    cells = []
    for row in rows:
        if isinstance(row, Mapping):
            values = [row.get(c) for c in columns]
        else:
            values = list(row)
            if len(values) != len(columns):
                raise ValueError(f"markdown_table: row has {len(values)} cells for {len(columns)} columns: {row!r}")
        cells.append([_cell(v) for v in values])

    def numeric(j: int) -> bool:
        col = [r[j] for r in cells if r[j] not in (DASH, "n/a")]
        return bool(col) and all(_NUMERIC.match(c) for c in col)

    head = "| " + " | ".join(_cell(c) for c in columns) + " |"
    rule = "|" + "|".join(marks[align.get(c, "r" if numeric(j) else "l")] for j, c in enumerate(columns)) + "|"
    return "\n".join([head, rule] + ["| " + " | ".join(r) + " |" for r in cells])
