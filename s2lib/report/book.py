"""Build the book (HTML and PDF) from the executed runs, and the end-to-end demo.

``build_book`` never executes notebooks (Jupyter Book runs with ``execute_notebooks: off``); it

1. finds the runs present (``book/runs/<run_id>/_run.json`` pointers written by :mod:`s2lib.report.report`) and checks
   every executed notebook against its manifest: a stale key, a failed stage or a figure saved but not shown
   refuses the build, or with ``allow_stale`` puts a red "STALE/FAILED" admonition at the top of the page;
2. generates, in the git-ignored ``book/runs/``, the provenance appendix (``provenance.md``), the overview
   included by the introduction (``overview.md``: runs table and key results glued from the summary notebook)
   and, when ``validation/validation.json`` exists, the Validation chapter (``validation.md``, from the last
   ``s2book validate``: :mod:`s2lib.validate._book_validation`);
3. writes ``_build/_toc.generated.yml`` (static ``_toc.yml`` chapters + one part per run + summary + appendix)
   and runs ``jupyter-book build --toc ... -W --keep-going`` for HTML, then ``--builder pdflatex``
   (XeLaTeX, Sphinx's own LaTeX theme) with a generated config that drops code cell sources from the PDF.

Code in HTML: every code cell is tagged ``hide-input`` by the runner (a "show code" toggle); the PDF shows no code.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import yaml

from s2lib.io import manifest as mf
from s2lib.validate._book_validation import validation_page
from ._cache import PER_RUN_STAGES, SUMMARY
from ._jb_build import _VENDOR, config_variant, fetch_mathjax, run_jupyter_book
from s2lib.errors import ProjectError, S2BookError
from .project import find_project, missing_markers

__all__ = ["build_book", "run_demo", "fetch_mathjax", "generate_sources", "KEY_LABELS", "BANNER_TAG",
           "DEMO_SEED"]

BANNER_TAG = "s2book-banner"
DEMO_SEED = 20260101
#: Labels of the glue keys the summary notebook is expected to provide (others are listed under their name).
KEY_LABELS = {
    "n_runs": "Runs analysed",
    "gs2": "X-ray calibration $g_{S2}$",
    "ax_mean": "X-ray S2 mean area $A_x$",
    "ne_range": "Measured recoil electrons $N_e$ (range over drift fields)",
    "recomb_range": "Recombination fraction $r$ (range over drift fields)",
    "ti_a": "Thomas–Imel $a$",
    "ti_s": "Thomas–Imel extraction factor $S$",
    "emp_a": "Empirical model $A$",
    "emp_b": "Empirical model $B$",
}


def _say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- runs present and their problems

def _runs_present(root: Path) -> list[dict[str, Any]]:
    """Runs with executed notebooks under ``book/runs/``: run id, manifest path, notebook per stage."""
    runs = []
    for pointer in sorted((root / "book" / "runs").glob("*/_run.json")):
        info = json.loads(pointer.read_text(encoding="utf-8"))
        folder = pointer.parent
        pages = {}
        for stage in PER_RUN_STAGES:
            for candidate in (folder / f"{stage.name}.ipynb", folder / f"{stage.name}.failed.ipynb"):
                if candidate.is_file():
                    pages[stage.name] = candidate
                    break
        if pages:
            runs.append({"run_id": info["run_id"], "manifest": Path(info["manifest"]), "pages": pages})
    return runs


def _figure_problem(nb_path: Path, entry: dict[str, Any] | None) -> str | None:
    """A problem text when the stage saved more PNG figures than its notebook displays."""
    saved = [n for n in ((entry or {}).get("artifacts") or {}) if n.startswith("figures/") and n.endswith(".png")]
    nb = nbformat.read(str(nb_path), as_version=4)
    shown = sum(1 for cell in nb.cells for out in cell.get("outputs", [])
                if any(k.startswith("image/") for k in out.get("data", {}))
                and not out.get("metadata", {}).get("scrapbook", {}).get("mime_prefix"))
    if len(saved) > shown:
        return f"saved {len(saved)} PNG figures under figures/ but displays only {shown}"
    return None


def _problems(root: Path, runs: list[dict[str, Any]]) -> dict[Path, list[str]]:
    """``{notebook path: [problems]}`` for every page that is stale, failed or hides figures."""
    from .report import check_run, check_summary

    out: dict[Path, list[str]] = {}
    for run in runs:
        man = mf.read_manifest(run["manifest"]) or {}
        reasons = check_run(run["manifest"], root)
        for stage, page in run["pages"].items():
            entry = (man.get("stages") or {}).get(stage)
            found = list(reasons.get(stage) or ([] if entry else ["not in the manifest"]))
            failed = page.name.endswith(".failed.ipynb")
            if failed:
                err = (entry or {}).get("error") or {}
                found = [f"FAILED in cell {err.get('cell')}: {err.get('ename')}: {err.get('evalue')}"] + \
                    [r for r in found if not r.startswith("last run failed")]
            elif entry and (nbformat.read(str(page), as_version=4).metadata.get("s2book") or {}).get("key") \
                    != entry.get("key"):
                found.append("notebook does not match its manifest entry")
            fig = _figure_problem(page, entry) if entry and not failed else None
            if fig:
                found.append(fig)
            if found:
                out[page] = found
    summary = root / "book" / "runs" / f"{SUMMARY}.ipynb"
    pointer = root / "book" / "runs" / "_summary.json"
    if summary.is_file() and pointer.is_file():
        man_path = Path(json.loads(pointer.read_text(encoding="utf-8"))["manifest"])
        found = check_summary(man_path, root)
        entry = ((mf.read_manifest(man_path) or {}).get("stages") or {}).get(SUMMARY)
        fig = _figure_problem(summary, entry) if entry else None
        if fig:
            found.append(fig)
        if found:
            out[summary] = found
    return out


def _set_banner(page: Path, problems: list[str] | None) -> None:
    """Remove an earlier banner cell; insert a new one (after the title cell) when there are problems."""
    nb = nbformat.read(str(page), as_version=4)
    cells = [c for c in nb.cells if BANNER_TAG not in c.metadata.get("tags", [])]
    changed = len(cells) != len(nb.cells)
    if problems:
        kind = "FAILED" if any(p.startswith("FAILED") for p in problems) else "STALE"
        body = "\n".join(f"- {p}" for p in problems)
        text = (f":::{{admonition}} {kind}: this page does not reflect the current inputs\n:class: error\n\n{body}\n\n"
                "Re-run `s2book run <config>` and rebuild; this book was built with `--allow-stale`.\n:::\n")
        banner = nbformat.v4.new_markdown_cell(text)
        banner.metadata["tags"] = [BANNER_TAG]
        at = next((i + 1 for i, c in enumerate(cells) if c.cell_type == "markdown"
                   and re.search(r"^#\s", c.source, flags=re.M)), 0)
        cells.insert(at, banner)
        changed = True
    if changed:
        nb.cells = cells
        _write_notebook_atomic(nb, page)


def _write_notebook_atomic(nb: Any, path: Path) -> None:
    from s2lib.io.store import write_text_atomic

    text = nbformat.writes(nb)
    write_text_atomic(path, text if text.endswith("\n") else text + "\n")


# ---------------------------------------------------------------- generated pages

def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _description(manifest: dict) -> str:
    """The run's free-text ``description`` from its configuration file (not part of any cache key, so it is not
    among the manifest's parameters); empty when the file is gone or unreadable."""
    path = (manifest.get("config") or {}).get("path")
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) if path else None
    except (OSError, yaml.YAMLError):
        return ""
    return str(data.get("description") or "") if isinstance(data, dict) else ""


def _glue_keys(nb_path: Path) -> list[str]:
    """Glue keys with a text/plain value in a notebook, in order of appearance (names starting with _ skipped)."""
    nb = nbformat.read(str(nb_path), as_version=4)
    keys = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get("scrapbook")
            if meta and any(k.endswith("text/plain") for k in out.get("data", {})) \
                    and not any(k.endswith(("image/png", "image/svg+xml")) for k in out.get("data", {})):
                if not meta["name"].startswith("_"):
                    keys.append(meta["name"])
    return list(dict.fromkeys(keys))


def _overview(root: Path, runs: list[dict[str, Any]], problems: dict[Path, list[str]]) -> str:
    lines = ["## Runs in this book", ""]
    if not runs:
        lines += ["No run has been executed yet: run `s2book run CONFIG.yaml` (or `s2book demo`).", ""]
    else:
        lines += ["| run | description | raw files | " + " | ".join(s.name for s in PER_RUN_STAGES) + " |",
                  "|---|---|---|" + "---|" * len(PER_RUN_STAGES)]
        for run in runs:
            man = mf.read_manifest(run["manifest"]) or {}
            params = (man.get("config") or {}).get("parameters") or {}
            cells = []
            for stage in PER_RUN_STAGES:
                page = run["pages"].get(stage.name)
                entry = (man.get("stages") or {}).get(stage.name) or {}
                state = "—" if page is None else ("**failed**" if entry.get("status") == "failed" else
                                                   "**stale**" if page in problems else "ok")
                cells.append(state)
            lines.append(f"| {run['run_id']} | {_md_cell(params.get('description') or _description(man))} | "
                         f"{(man.get('inputs') or {}).get('raw_files', '?')} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Key results", ""]
    summary = root / "book" / "runs" / f"{SUMMARY}.ipynb"
    keys = _glue_keys(summary) if summary.is_file() else []
    if not keys:
        lines += ["No cross-run summary yet: run all stages, including `summary`.", ""]
    else:
        lines += ["Values glued from the cross-run summary notebook ({doc}`runs/summary`).", "",
                  "| quantity | value |", "|---|---|"]
        lines += [f"| {KEY_LABELS.get(k, k.replace('_', ' '))} | {{glue:text}}`/book/runs/{SUMMARY}.ipynb::{k}:s` |"
                  for k in keys]
        lines.append("")
    return "\n".join(lines)


def _provenance(root: Path, runs: list[dict[str, Any]]) -> str:
    lines = ["# Provenance", "",
             "Generated from each run's `manifest.json` at build time. A stage's cache key covers the notebook "
             "template, the `s2lib` source tree, the configuration keys it reads, its inputs (raw files by name, "
             "size and mtime; upstream artifacts by sha256) and the package versions.", ""]
    manifests = [(r["run_id"], r["manifest"]) for r in runs]
    pointer = root / "book" / "runs" / "_summary.json"
    if pointer.is_file():
        manifests.append((SUMMARY, Path(json.loads(pointer.read_text(encoding="utf-8"))["manifest"])))
    if not manifests:
        lines.append("No run has been executed yet.")
    for run_id, path in manifests:
        man = mf.read_manifest(path) or {}
        env = man.get("environment") or {}
        git = env.get("git") or {}
        lines += [f"## {'Cross-run summary' if run_id == SUMMARY else 'Run ' + run_id}", "",
                  f"- manifest: `{path}`",
                  f"- configuration: `{(man.get('config') or {}).get('path')}` "
                  f"(sha256 `{str((man.get('config') or {}).get('sha256'))[:12]}`)",
                  f"- git commit: `{git.get('commit')}`" + (" (uncommitted changes)" if git.get("dirty") else ""),
                  f"- host: {env.get('host')}, {env.get('platform')}, Python {env.get('python')}"]
        inputs = man.get("inputs") or {}
        if inputs.get("raw_files") is not None:
            lines.append(f"- raw data: `{inputs.get('raw_data_path')}`, {inputs['raw_files']} files, "
                         f"{inputs.get('raw_bytes', 0) / 1e6:.1f} MB (fingerprint `{str(inputs.get('raw_digest'))[:12]}`)")
        lines += ["", "| stage | status | started | duration (s) | cache key | artifacts | git commit |",
                  "|---|---|---|---|---|---|---|"]
        for name, entry in (man.get("stages") or {}).items():
            lines.append(f"| {name} | {entry.get('status')} | {entry.get('started')} | {entry.get('duration_s')} | "
                         f"`{str(entry.get('key'))[:12]}` | {len(entry.get('artifacts') or {})} | "
                         f"`{str((entry.get('git') or {}).get('commit'))[:10]}` |")
        packages = (env.get("packages") or {})
        lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in packages.items() if v), ""]
        params = (man.get("config") or {}).get("parameters")
        if params and run_id != SUMMARY:
            lines += ["```yaml", yaml.safe_dump(params, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


def _toc(root: Path, runs: list[dict[str, Any]]) -> dict[str, Any]:
    static = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    parts = list(static.get("parts") or [])
    if static.get("chapters"):
        parts.insert(0, {"caption": "Physics and methods", "chapters": static["chapters"]})

    def rel(page: Path) -> str:
        return page.relative_to(root).as_posix()

    for run in runs:
        parts.append({"caption": f"Run {run['run_id']}",
                      "chapters": [{"file": rel(run["pages"][s.name])} for s in PER_RUN_STAGES
                                   if s.name in run["pages"]]})
    summary = root / "book" / "runs" / f"{SUMMARY}.ipynb"
    if summary.is_file():
        parts.append({"caption": "Across runs", "chapters": [{"file": rel(summary)}]})
    if (root / "book" / "runs" / "validation.md").is_file():
        parts.append({"caption": "Validation", "chapters": [{"file": "book/runs/validation.md"}]})
    parts.append({"caption": "Appendix", "chapters": [{"file": "book/runs/provenance.md"}]})
    return {"format": "jb-book", "root": static["root"], "parts": parts}


def generate_sources(root: str | Path | None = None, allow_stale: bool = False) -> tuple[Path, dict[Path, list[str]]]:
    """Check the runs, set banners, write overview/provenance pages and the TOC; return (toc path, problems)."""
    root = Path(root).resolve() if root is not None else find_project()
    runs = _runs_present(root)
    problems = _problems(root, runs)
    if problems and not allow_stale:
        return root / "_build" / "_toc.generated.yml", problems
    pages = [p for r in runs for p in r["pages"].values()] + [root / "book" / "runs" / f"{SUMMARY}.ipynb"]
    for page in pages:
        if page.is_file():
            _set_banner(page, problems.get(page))
    gen = root / "book" / "runs"
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "overview.md").write_text(_overview(root, runs, problems), encoding="utf-8")
    (gen / "provenance.md").write_text(_provenance(root, runs), encoding="utf-8")
    validation = validation_page(root, gen)        # the last `s2book validate` (<root>/validation), if any
    if validation is not None:
        (gen / "validation.md").write_text(validation, encoding="utf-8")
    else:
        (gen / "validation.md").unlink(missing_ok=True)
    toc = root / "_build" / "_toc.generated.yml"
    toc.parent.mkdir(parents=True, exist_ok=True)
    toc.write_text(yaml.safe_dump(_toc(root, runs), sort_keys=False), encoding="utf-8")
    return toc, problems


def build_book(pdf: bool = True, allow_stale: bool = False, *, root: str | Path | None = None) -> int:
    """Build the HTML site (``_build/html``) and, unless ``pdf`` is False, the PDF (``_build/latex/book.pdf``) of
    the book project ``root`` (default: :func:`s2lib.report.project.find_project` from the current folder).

    Returns 0 on success; 1 when a page is stale/failed (unless ``allow_stale``) or Jupyter Book / LaTeX
    reported an error or a warning (missing glue key, missing figure, broken reference...).
    """
    root = Path(root).resolve() if root is not None else find_project()
    missing = missing_markers(root)
    if missing:
        raise ProjectError(f"{root}: not a book project: missing {', '.join(missing)}")
    toc, problems = generate_sources(root, allow_stale)
    if problems and not allow_stale:
        _say("s2book build: refusing to build: these pages are stale or failed "
             "(re-run `s2book run CONFIG.yaml`, or build with --allow-stale to mark them):")
        for page, reasons in problems.items():
            _say(f"  {page.relative_to(root)}: " + "; ".join(reasons))
        return 1
    for page, reasons in problems.items():
        _say(f"s2book build: marked {page.relative_to(root)}: " + "; ".join(reasons))
    extra: dict[str, Any] = {}
    if os.environ.get("S2BOOK_FETCH_MATHJAX", "1") != "0" and fetch_mathjax(root) is None:
        _say("s2book build: MathJax could not be bundled (npm missing or offline): the HTML loads it from a CDN")
    if (root / _VENDOR / "mathjax" / "tex-mml-chtml.js").is_file():
        extra = {"html_static_path": [_VENDOR.as_posix()], "mathjax_path": "mathjax/tex-mml-chtml.js"}
    logs = root / "_build"
    if run_jupyter_book(root, toc, config_variant(root, "html", extra), "html", logs / "html-build.log"):
        return 1
    _say(f"HTML: {root / '_build' / 'html' / 'index.html'}")
    if not pdf:
        return 0
    if not shutil.which("xelatex"):
        _say("s2book build: xelatex not found: install the Debian TeX set of notes/toolchain.md (or use --no-pdf)")
        return 1
    pdf_cfg = config_variant(root, "pdf", {"nb_remove_code_source": True})
    if run_jupyter_book(root, toc, pdf_cfg, "pdflatex", logs / "pdf-build.log"):
        return 1
    book_pdf = root / "_build" / "latex" / "book.pdf"
    if not book_pdf.is_file():
        _say(f"s2book build: LaTeX finished but {book_pdf} is missing; see {logs / 'pdf-build.log'}")
        return 1
    _say(f"PDF:  {book_pdf}")
    return 0


def run_demo(pdf: bool = True, jobs: int = 2, *, root: str | Path | None = None) -> int:
    """Simulate the demo run into ``<root>/demo`` (once), run its notebooks, build the book, print the paths."""
    from .report import run_reports

    root = Path(root).resolve() if root is not None else find_project()
    demo = root / "demo"
    config = demo / "run.yaml"
    if not config.is_file():
        try:
            from s2lib.sim.simulate import simulate_run
        except ImportError as err:
            raise S2BookError(f"the simulator (s2lib.sim.simulate) is not available: {err}") from err
        _say(f"s2book demo: simulating the demo run into {demo}")
        simulate_run(demo, profile="demo", seed=DEMO_SEED, overwrite=True)  # no run.yaml: an unfinished simulation
    code = run_reports([config], jobs=jobs, root=root)
    if code:
        return code
    return build_book(pdf=pdf, root=root)


