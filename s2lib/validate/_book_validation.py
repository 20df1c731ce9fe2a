"""The book's "Validation" chapter, generated from the last ``s2book validate`` (``<book>/validation/``).

:func:`validation_page` turns ``validation.json`` and its figures into a MyST page (``book/runs/validation.md``);
:mod:`s2lib.report.book` adds it to the table of contents when the results exist. Nothing is recomputed here: the
page shows what ``s2book validate`` measured, with its date, version and run time.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

__all__ = ["VALIDATION_DIR", "validation_dir", "validation_page"]

VALIDATION_DIR = "validation"
"""Folder of the book project holding the last ``s2book validate`` results (``--out`` writes elsewhere)."""


def validation_dir(root: str | os.PathLike[str]) -> Path:
    """``<root>/validation``: where ``s2book validate`` writes by default and the book reads from."""
    return Path(root) / VALIDATION_DIR


def validation_page(root: str | os.PathLike[str], page_dir: str | os.PathLike[str]) -> str | None:
    """The Markdown of the Validation chapter, or None when ``<root>/validation/validation.json`` is missing.

    ``page_dir``: the folder the page is written to (figure paths are made relative to it).
    """
    from ._validate_report import coverage_markdown, markdown_report, restore

    folder = validation_dir(root)
    path = folder / "validation.json"
    if not path.is_file():
        return None
    doc = restore(json.loads(path.read_text(encoding="utf-8")))
    rel = Path(os.path.relpath(folder / "figures", Path(page_dir))).as_posix()
    kind = "the quick subset" if doc.get("kind") == "quick" else "the full matrix"
    lines = [
        "# Validation", "",
        f"Closure tests of the whole analysis on simulated runs: {kind} of `s2book validate` "
        f"(s2lib {doc.get('s2lib_version')}, {doc.get('created')}, {doc.get('seconds', math.nan):.0f} s with "
        f"{doc.get('jobs')} process(es)). Results: `{VALIDATION_DIR}/validation.json`, `.csv` and `.md` in the "
        "book project.", "",
        "Each point of the matrix is one run simulated by `s2lib.sim.simulate` with a fixed seed and analysed exactly "
        "as a user's run: the `run.yaml` the simulator writes (the lab's keys only, default fit settings), the "
        "integration pass, the fits and the calibration. Nothing is tuned per point. The matrix varies one "
        "factor at a time around a baseline and adds combined corners; the baseline's simulation parameters "
        "(overrides of the `tiny` profile): " + ", ".join(f"`{k}={v}`" for k, v in (doc.get("baseline") or {}).items())
        + ".", "",
        "The **bias** is the estimate minus the *realised* truth, the sample mean of the simulated photoelectron "
        "areas of this very run (recoil S2 only: no stray photons, no X-ray pile-up); the **pull** is the "
        "estimate minus the *model* expectation, divided by the quoted 1σ. Both truths are defined in each "
        "run's `truth.json` (`definitions`).", "",
        "## Closure table", "",
        markdown_report(doc, figures=None, compact=True).rstrip(), "",
        "## Pull distributions", "",
        f"```{{figure}} {rel}/validation_pulls.png",
        ":name: fig-validation-pulls", "",
        "Pulls (estimate − model truth)/σ of every comparison, per quantity, with the unit Gaussian expected "
        "when the quoted 1σ errors are right.", "```", "",
        "## Bias against drift field and gain", "",
        f"```{{figure}} {rel}/validation_bias_vs_field.png",
        ":name: fig-validation-bias-field", "",
        "Relative bias of A_ion and 1 − r per set against the drift field; the grey band is ±3 %, bars the quoted "
        "1σ; open red squares are comparisons outside tolerance or failed fits.", "```", "",
        f"```{{figure}} {rel}/validation_bias_vs_gain.png",
        ":name: fig-validation-bias-gain", "",
        "Relative bias of A_ion against the model recoil peak (S2 gain × EL field × drift field) and of A_x "
        "against the X-ray peak.", "```", "",
    ]
    lines += ["## Toy coverage of the estimators", "", coverage_markdown(doc).rstrip(), ""]
    return "\n".join(lines)
