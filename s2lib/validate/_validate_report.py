"""The closure-test report of ``s2book validate``: summary document, JSON / CSV / Markdown tables, figures.

Files written into the output folder (``validation/`` of the book project unless ``--out``)::

    validation.json     matrix, per-point comparisons, pull widths per quantity, summary, versions, run time
    validation.csv      one row per comparison (point, quantity, set, fields, estimate, error, truths, bias, pull)
    validation.md       the closure table (one row per point) and the failing comparisons
    figures/validation_pulls.{png,pdf}          pull distributions per quantity with a unit Gaussian
    figures/validation_bias_vs_field.{png,pdf}  relative bias of A_ion and 1 − r against the drift field
    figures/validation_bias_vs_gain.{png,pdf}   relative bias of A_ion against the recoil peak (gain × field)

The book's Validation chapter (:mod:`s2lib.report.book`) is generated from ``validation.json`` and the figures.
"""
from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

from s2lib import __version__
from s2lib.io.store import json_sanitize, write_csv_atomic, write_json_atomic, write_text_atomic
from ._validate_rules import N_SIGMA, QUANTITIES, REL_TOL, WIDTH_RANGE, pull_width

__all__ = ["summarise", "write_report", "restore", "coverage_markdown", "markdown_report", "plot_pulls", "plot_bias_vs_field", "plot_bias_vs_gain",
           "CSV_COLUMNS", "FIGURES", "MIN_PULLS"]

CSV_COLUMNS = ("point", "quantity", "set", "drift_field_V_cm", "el_field_V_cm", "estimate", "error", "truth",
               "truth_model", "bias", "rel_bias", "tolerance", "pull", "passed", "measurable", "reason")
FIGURES = ("validation_pulls", "validation_bias_vs_field", "validation_bias_vs_gain")
_LABELS = {"A_ion": "A_ion", "A_x": "A_x", "g_S2": "g_S2", "1-r": "1 − r"}
_TEX = {"A_ion": r"$A_\mathrm{ion}$", "A_x": r"$A_\mathrm{x}$", "g_S2": r"$g_\mathrm{S2}$", "1-r": r"$1-r$"}
MIN_PULLS = 10
"""Fewest pulls of a quantity for its width to be judged: with n pulls the width is known to ±1/√(2(n−1)),
±24 % at 10; below that (the quick subset's A_x, g_S2) the width is reported but not judged."""


def _measurable(c: Mapping[str, Any]) -> bool:
    return bool(c.get("measurable", True))


def summarise(results: Sequence[Mapping[str, Any]], *, quick: bool, seconds: float, jobs: int,
              coverage: Mapping[str, Any] | None = None, baseline: Mapping[str, Any] | None = None
              ) -> dict[str, Any]:
    """The ``validation.json`` document: points, pull widths per quantity, totals, the toy coverage (if run)
    and the one-line summary. ``passed`` (the exit status) counts the points and the judged pull widths; the
    coverage is reported beside it (a statistical verdict on 200 toys, see :mod:`s2lib.validate._validate_coverage`)."""
    named = [(r["name"], c) for r in results for c in r.get("comparisons", []) if _measurable(c)]
    comps = [c for _, c in named]
    widths = {}
    for q in QUANTITIES:                  # 1 − r pulls share their EL field's g_S2 error: grouped (pull_width)
        sel = [(name, c) for name, c in named if c["quantity"] == q and c.get("fit_ok", True)]
        groups = [(name, c.get("el_field_V_cm")) for name, c in sel] if q == "1-r" else None
        widths[q] = pull_width([c["pull"] for _, c in sel], groups=groups)
    for q, w in widths.items():
        w["n_excluded_unsuccessful"] = sum(1 for c in comps if c["quantity"] == q and not c.get("fit_ok", True))
    n_pass = sum(bool(r["passed"]) for r in results)
    worst = None
    for r in results:
        for c in filter(_measurable, r.get("comparisons", [])):
            score = abs(c["bias"]) / c["tolerance"] if c["tolerance"] and math.isfinite(c["bias"]) else math.inf
            if worst is None or score > worst["score"]:
                worst = {"point": r["name"], "quantity": c["quantity"], "set": c["set"], "score": score,
                         "rel_bias": c["rel_bias"], "pull": c["pull"], "reason": c["reason"]}
    widths_ok = all(w["ok"] for w in widths.values() if w["n"] >= MIN_PULLS)
    ok = n_pass == len(results) and widths_ok and bool(results)
    bad_w = [f"{q} {w['std']:.2f}/{w['robust_std']:.2f}" for q, w in widths.items()
             if w["n"] >= MIN_PULLS and not w["ok"]]
    line = (f"s2book validate: {n_pass}/{len(results)} points within tolerance"
            + (f", pull widths outside {WIDTH_RANGE[0]}-{WIDTH_RANGE[1]}: {', '.join(bad_w)}" if bad_w else
               ", pull widths in range")
            + (f"; worst: {worst['point']} {worst['quantity']} {worst['set']} ({worst['reason'] or 'ok'})"
               if worst else "")
            + (f"; toy coverage {sum(r['ok'] for r in coverage['rows'])}/{len(coverage['rows'])} cases in 92-98 %"
               if coverage else "") + f"; {seconds:.0f} s")
    return {"schema_version": 1, "kind": "quick" if quick else "full", "s2lib_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "seconds": round(seconds, 1),
            "jobs": jobs, "criteria": {"rel_tol": REL_TOL, "n_sigma": N_SIGMA, "width_range": list(WIDTH_RANGE),
                                       "min_pulls_for_width": MIN_PULLS,
                                       "bias": "estimate − realised sample mean (truth.json)",
                                       "pull": "(estimate − model expectation) / quoted 1σ"},
            "baseline": dict(baseline or {}), "n_points": len(results), "n_passed": n_pass, "pull_widths": widths, "widths_ok": widths_ok,
            "worst": worst, "passed": ok, "summary": line, "coverage": dict(coverage) if coverage else None,
            "points": list(results)}


_NUMERIC = ("estimate", "error", "truth", "truth_model", "bias", "rel_bias", "tolerance", "pull",
            "drift_field_V_cm", "el_field_V_cm")


def restore(doc: dict[str, Any]) -> dict[str, Any]:
    """``validation.json`` as read back (JSON null for NaN) with NaN restored in the numeric fields."""
    for r in doc.get("points", []):
        for c in r.get("comparisons", []):
            for k in _NUMERIC:
                if c.get(k) is None:
                    c[k] = math.nan
    for w in (doc.get("pull_widths") or {}).values():
        for k in ("mean", "std", "robust_std", "std_err"):
            if w.get(k) is None:
                w[k] = math.nan
    if doc.get("worst"):
        for k in ("score", "rel_bias", "pull"):
            if doc["worst"].get(k) is None:
                doc["worst"][k] = math.nan
    return doc


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def markdown_report(doc: Mapping[str, Any], *, figures: str | None = None, compact: bool = False) -> str:
    """The closure table (one row per point: worst relative bias and largest |pull| per quantity), the pull
    widths and the failing comparisons, as Markdown. ``figures``: folder prefix of the figure links.
    ``compact`` (the book, whose PDF page is narrow): what each point varies goes into a table of its own and
    the closure table keeps only the numbers."""
    lines = [f"**{doc['summary']}**", "",
             f"Criteria: a comparison passes when its fit succeeded and |estimate − realised truth| ≤ "
             f"max({doc['criteria']['rel_tol']:.0%} of the truth, {doc['criteria']['n_sigma']:g} σ); pulls are "
             f"(estimate − model expectation)/σ and their widths must lie in "
             f"{doc['criteria']['width_range'][0]}–{doc['criteria']['width_range'][1]}. Each cell: the largest "
             "relative bias of the point and, in parentheses, the largest absolute pull.", ""]
    if compact:
        lines += ["| point | varies | frames | time (s) |", "|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['varies']} | {r.get('frames', '—')} | {r['seconds']:.0f} |"
                  for r in doc["points"]]
        lines += ["", "| point | " + " | ".join(_LABELS[q] for q in QUANTITIES) + " | result |",
                  "|---|" + "---|" * len(QUANTITIES) + "---|"]
    else:
        lines += ["| point | varies | frames | " + " | ".join(f"{_LABELS[q]} rel. bias (max abs. pull)"
                                                              for q in QUANTITIES)
                  + " | result | time (s) |", "|---|---|---|" + "---|" * len(QUANTITIES) + "---|---|"]
    for r in doc["points"]:
        cells = []
        for q in QUANTITIES:
            cs = [c for c in r.get("comparisons", []) if c["quantity"] == q and _measurable(c)]
            if not cs:
                cells.append("n/a")
                continue
            worst = max(cs, key=lambda c: abs(c["rel_bias"]) if math.isfinite(c["rel_bias"]) else math.inf)
            pulls = [abs(c["pull"]) for c in cs if math.isfinite(c["pull"])]
            mark = "" if all(c["passed"] for c in cs) else " **fail**"
            pull = f"{max(pulls):.1f}" if pulls else "—"
            cells.append(f"{worst['rel_bias']:+.1%} ({pull}){mark}" if math.isfinite(worst["rel_bias"])
                         else f"—{mark}")
        res = "pass" if r["passed"] else "**FAIL**"
        if compact:
            lines.append(f"| {r['name']} | " + " | ".join(cells) + f" | {res} |")
        else:
            lines.append(f"| {r['name']} | {r['varies']} | {r.get('frames', '—')} | " + " | ".join(cells)
                         + f" | {res} | {r['seconds']:.0f} |")
    lines += ["", "Pull widths over all points, successful estimates only (plain std ± its statistical precision; "
              "robust 1.4826·MAD):", "",
              "| quantity | pulls | left out (fit not successful) | mean | std | robust std | in range |",
              "|---|---|---|---|---|---|---|"]
    for q in QUANTITIES:
        w = doc["pull_widths"][q]
        verdict = "yes" if w["ok"] else ("**no**" if w["n"] >= MIN_PULLS else f"not judged (< {MIN_PULLS} pulls)")
        lines.append(f"| {_LABELS[q]} | {w['n']} | {w.get('n_excluded_unsuccessful', 0)} | {_fmt(w['mean'], 2)} | "
                     f"{_fmt(w['std'], 2)} ± "
                     f"{_fmt(w['std_err'], 1)} | {_fmt(w['robust_std'], 2)} | {verdict} |")
    failing = [(r, c) for r in doc["points"] for c in r.get("comparisons", []) if _measurable(c) and not c["passed"]]
    unmeasurable = [(r, c) for r in doc["points"] for c in r.get("comparisons", []) if not _measurable(c)]
    errors = [r for r in doc["points"] if r.get("error")]
    lines += ["", "Failing comparisons:" if failing or errors else "No failing comparison.", ""]
    if failing:
        lines += ["| point | quantity | set | estimate ± σ | truth | rel. bias | pull | reason |",
                  "|---|---|---|---|---|---|---|---|"]
        for r, c in failing:
            lines.append(f"| {r['name']} | {_LABELS[c['quantity']]} | {c['set']} | {_fmt(c['estimate'], 4)} ± "
                         f"{_fmt(c['error'], 2)} | {_fmt(c['truth'], 4)} | {_fmt(c['rel_bias'] * 100, 2)} % | "
                         f"{_fmt(c['pull'], 2)} | {c['reason'].replace('|', '/')} |")
    for r in errors:
        lines.append(f"- {r['name']}: the analysis stopped: {r['error']}")
    if unmeasurable:
        lines += ["", "Not measurable (no comparison possible; listed, not counted as passed):", ""]
        lines += [f"- {r['name']}: {_LABELS[c['quantity']]} {c['set']}: {c['reason']}" for r, c in unmeasurable]
    if figures is not None:
        lines += [""] + [f"![{name}]({figures}/{name}.png)" for name in FIGURES]
    return "\n".join(lines) + "\n"


def coverage_markdown(doc: Mapping[str, Any]) -> str:
    """The toy-coverage table of the estimators (``doc["coverage"]``), or a sentence saying it was not run."""
    cov = doc.get("coverage")
    if not cov:
        return "No toy-coverage study in this validation (it runs with the full matrix, not with `--quick`).\n"
    lines = [cov["description"], "",
             "| estimator | case | toys (ok/poor/failed) | 95 % coverage | rel. bias | pull width | in 92–98 % |",
             "|---|---|---|---|---|---|---|"]
    for r in cov["rows"]:
        verdict = "yes" if r["ok"] else ("no, but within 2σ" if r["consistent"] else "**no**")
        lines.append(f"| {r['estimator']} | {r['case']} | {r['n_toys']} ({r['n_ok']}/{r['n_poor']}/{r['n_failed']}) "
                     f"| {_pct(r['coverage95'])} ± {_pct(r['coverage_err'])} | {_pct(r['bias_rel'], 2)} ± "
                     f"{_pct(r['bias_rel_err'], 2)} | {_fmt(r['pull_width'], 3)} | {verdict} |")
    return "\n".join(lines) + "\n"


def _pct(v: Any, digits: int = 1) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{100 * v:.{digits}f} %"


def _rows(doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"point": r["name"], **{k: c.get(k) for k in CSV_COLUMNS if k != "point"}}
            for r in doc["points"] for c in r.get("comparisons", [])]


def write_report(doc: Mapping[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``validation.json``, ``validation.csv``, ``validation.md`` and the figures (PNG + PDF) atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "validation.json", json_sanitize(dict(doc)))
    write_csv_atomic(out / "validation.csv", _rows(doc), list(CSV_COLUMNS))
    write_text_atomic(out / "validation.md", "# Closure tests\n\n" + markdown_report(doc, figures="figures")
                      + "\n## Toy coverage of the estimators\n\n" + coverage_markdown(doc))
    from s2lib.analysis import plotting

    for fn in (plot_pulls, plot_bias_vs_field, plot_bias_vs_gain):
        plotting.close(fn(doc, out_dir=out / "figures"))
    return {"json": out / "validation.json", "csv": out / "validation.csv", "md": out / "validation.md"}


# ------------------------------------------------------------------------------------------------ figures
def _comps(doc: Mapping[str, Any], quantity: str) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    return [(r, c) for r in doc["points"] for c in r.get("comparisons", [])
            if c["quantity"] == quantity and _measurable(c)]


def plot_pulls(doc: Mapping[str, Any], *, out_dir: str | Path | None = None, name: str = "validation_pulls") -> Any:
    """Histogram of the pulls of each quantity (successful estimates) with the unit Gaussian expected for
    correct 1σ errors."""
    from s2lib.analysis import plotting

    with plotting.use_style():
        fig = plotting.new_figure((plotting.TWO_COLUMN[0], 4.2))
        axes = fig.subplots(2, 2)
        for ax, q in zip(axes.ravel(), QUANTITIES):
            p = np.array([c["pull"] for _, c in _comps(doc, q) if c.get("fit_ok", True)], float)
            p = p[np.isfinite(p)]
            w = doc["pull_widths"][q]
            lo, hi = min(-4.0, float(p.min(initial=0)) - 0.5), max(4.0, float(p.max(initial=0)) + 0.5)
            edges = np.linspace(lo, hi, 25)
            if p.size:
                ax.hist(p, bins=edges, color=plotting.OKABE_ITO["blue"], alpha=0.7, label=f"{p.size} pulls")
                x = np.linspace(lo, hi, 200)
                ax.plot(x, p.size * (edges[1] - edges[0]) * np.exp(-0.5 * x**2) / math.sqrt(2 * math.pi),
                        color=plotting.OKABE_ITO["vermillion"], label="N(0, 1) expected")
            ax.set_title(f"{_TEX[q]}: std {_fmt(w['std'], 2)}, robust {_fmt(w['robust_std'], 2)}")
            ax.set_xlabel("pull = (estimate − model truth) / σ")
            ax.set_ylabel("comparisons")
            if p.size:
                ax.legend(loc="upper right", fontsize="small")
            else:
                ax.text(0.5, 0.5, "no estimate", transform=ax.transAxes, ha="center", va="center")
        return _save(fig, out_dir, name)


def _save(fig: Any, out_dir: str | Path | None, name: str) -> Any:
    from s2lib.analysis import plotting

    if out_dir is not None:
        plotting.save_figure(fig, out_dir, name)
    return fig


def _scatter(ax: Any, doc: Mapping[str, Any], quantity: str, x_of: Any) -> None:
    """Relative bias (%) with the quoted 1σ as bars; points of one matrix point share a small x offset so that
    sets at the same field stay apart; values beyond the y range are drawn at its edge as triangles."""
    from s2lib.analysis import plotting

    names = [r["name"] for r in doc["points"]]
    ok_c, bad_c = plotting.OKABE_ITO["blue"], plotting.OKABE_ITO["vermillion"]
    tol = 100 * doc["criteria"]["rel_tol"]
    ys = [100 * abs(c["rel_bias"]) for _, c in _comps(doc, quantity) if math.isfinite(c["rel_bias"])]
    limit = float(min(max(4 * tol, 1.3 * max([y for y in ys if y <= 10 * tol], default=0.0)), 10 * tol))
    for passed, color, label in ((True, ok_c, "within tolerance"), (False, bad_c, "outside tolerance / failed")):
        pts = [(x_of(r, c), r, c) for r, c in _comps(doc, quantity) if bool(c["passed"]) == passed]
        pts = [(x, r, c) for x, r, c in pts if x is not None and math.isfinite(x) and math.isfinite(c["rel_bias"])]
        if not pts:
            continue
        x = np.array([x * 10 ** (0.004 * (names.index(r["name"]) - len(names) / 2)) for x, r, _ in pts])
        y = np.array([100 * c["rel_bias"] for _, _, c in pts])
        e = np.array([100 * c["error"] / abs(c["truth"]) if c["truth"] else math.nan for _, _, c in pts])
        inside = np.abs(y) <= limit
        ax.errorbar(x[inside], y[inside], yerr=np.where(np.isfinite(e[inside]), e[inside], 0.0),
                    fmt="o" if passed else "s", mfc=color if passed else "white", color=color,
                    label=f"{label} (bars: quoted 1σ)")
        if np.any(~inside):
            ax.scatter(x[~inside], np.sign(y[~inside]) * limit * 0.97, marker="^", color=color, zorder=3,
                       label=f"beyond ±{limit:.0f} % ({int(np.sum(~inside))})")
    n_none = sum(1 for _, c in _comps(doc, quantity) if not math.isfinite(c["rel_bias"]))
    if n_none:
        ax.plot([], [], " ", label=f"{n_none} without estimate (see the table)")
    ax.axhspan(-tol, tol, color="0.85", zorder=0, label=f"±{tol:g} %")
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_ylim(-limit, limit)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel(f"relative bias of {_TEX[quantity]} (%)")
    ax.legend(loc="best", fontsize="small")


def plot_bias_vs_field(doc: Mapping[str, Any], *, out_dir: str | Path | None = None,
                       name: str = "validation_bias_vs_field") -> Any:
    """Relative bias (estimate − realised truth)/truth of A_ion and 1 − r per set against the drift field."""
    from s2lib.analysis import plotting

    with plotting.use_style():
        fig = plotting.new_figure((plotting.TWO_COLUMN[0], 2.8))
        for ax, q in zip(fig.subplots(1, 2), ("A_ion", "1-r")):
            _scatter(ax, doc, q, lambda r, c: c["drift_field_V_cm"])
            ax.set_xlabel("Drift field (V/cm)")
        return _save(fig, out_dir, name)


def plot_bias_vs_gain(doc: Mapping[str, Any], *, out_dir: str | Path | None = None,
                      name: str = "validation_bias_vs_gain") -> Any:
    """Relative bias of A_ion against the model recoil peak area (S2 gain × EL field × drift field), and of
    A_x against the X-ray peak area."""
    from s2lib.analysis import plotting

    with plotting.use_style():
        fig = plotting.new_figure((plotting.TWO_COLUMN[0], 2.8))
        for ax, q in zip(fig.subplots(1, 2), ("A_ion", "A_x")):
            _scatter(ax, doc, q, lambda r, c: c["truth_model"])
            ax.set_xlabel(f"{'recoil' if q == 'A_ion' else 'X-ray'} S2 peak, model mean (mV·µs)")
        return _save(fig, out_dir, name)
