"""Book build from executed mini runs: HTML (and PDF when xelatex exists), figures, glue, stale guard.

The book root is a new book project (`s2book init`: the packaged _config.yml, _toc.yml and chapters), so the
repository's book/runs/ and _build/ are never touched. The tests of this module share one set of executed runs and run
in order (the last one changes the runs).
"""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest

import s2lib.report._cache as cache
from s2lib.report.book import build_book
from s2lib.report.project import init_project

from test_report import Lab

pytestmark = pytest.mark.slow

HAS_XELATEX = shutil.which("xelatex") is not None and shutil.which("latexmk") is not None


@pytest.fixture(scope="module")
def book_lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("book")
    frozen = tmp / "s2lib_copy"
    shutil.copytree(cache.PACKAGE_DIR, frozen, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache, "PACKAGE_DIR", frozen)
        mp.setenv("S2BOOK_FETCH_MATHJAX", "0")
        lab = Lab(tmp / "lab")
        init_project(lab.root)
        assert lab.run(jobs=2) == 0
        yield lab


def _notebook_images(nb_path: Path) -> list[str]:
    """sha256 of every PNG displayed in a notebook."""
    nb = nbformat.read(str(nb_path), as_version=4)
    return [hashlib.sha256(base64.b64decode(out["data"]["image/png"])).hexdigest()
            for cell in nb.cells for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]


def _pages(lab: Lab) -> dict[str, Path]:
    pages = {f"book/runs/{r}/{s}": lab.notebook(r, s) for r in ("runA", "runB")
             for s in ("integration", "fitting", "calibration")}
    pages["book/runs/summary"] = lab.root / "book" / "runs" / "summary.ipynb"
    return pages


def test_html_and_pdf_show_every_figure_and_glued_value(book_lab, capfd):
    lab = book_lab
    assert build_book(pdf=HAS_XELATEX, root=lab.root) == 0
    out = capfd.readouterr().out
    html = lab.root / "_build" / "html"
    assert (html / "index.html").is_file() and str(html / "index.html") in out
    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    assert "mini run runA" in intro and "mini run runB" in intro     # descriptions from the run configs

    expected = 0
    for page, nb_path in _pages(lab).items():
        images = _notebook_images(nb_path)
        assert images, f"{page} displays no figure"
        expected += len(images)
        text = (html / f"{page}.html").read_text(encoding="utf-8")
        srcs = re.findall(r'<img[^>]+src="([^"]+_images/[^"]+\.png)"', text)
        assert len(srcs) == len(images), page
        for src in srcs:
            assert (html / page).parent.joinpath(src).resolve().is_file()
        assert "hide-input" in text  # code folded behind a toggle in HTML

    intro = (html / "book" / "intro.html").read_text(encoding="utf-8")
    assert re.search(r"Runs analysed</p></td>\s*<td><p><span class=\"pasted-text\">2</span>", intro)
    assert "0.0800 mV·µs/e⁻" in intro  # 2 files x pressure 2.0 / 100 bins x 2
    provenance = (html / "book" / "runs" / "provenance.html").read_text(encoding="utf-8")
    assert "Run runA" in provenance and "git commit" in provenance and "papermill" in provenance
    methods = (html / "book" / "methods.html").read_text(encoding="utf-8")
    assert 'id="equation-eq-thomas-imel"' in methods

    if HAS_XELATEX:
        pdf = lab.root / "_build" / "latex" / "book.pdf"
        assert pdf.is_file() and str(pdf) in out
        tex = (lab.root / "_build" / "latex" / "book.tex").read_text(encoding="utf-8")
        assert len(re.findall(r"\\sphinxincludegraphics", tex)) == expected
        if shutil.which("pdfimages"):
            listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True).stdout
            rows = [line for line in listing.splitlines()[2:] if " image " in line]
            assert len(rows) == expected
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        size = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", info)
        # A4 by default (_config.yml latex_elements.papersize): 210 x 297 mm = 595.28 x 841.89 pt.
        assert size and abs(float(size.group(1)) - 595.28) < 1 and abs(float(size.group(2)) - 841.89) < 1, info
        if shutil.which("pdftotext"):
            text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
            assert "import json" not in text  # no code in the PDF
            assert "Thomas–Imel" in text


def test_stale_pages_are_refused_or_marked(book_lab, capfd):
    lab = book_lab
    lab.edit_config("runA", "nbins: 100", "nbins: 80")
    capfd.readouterr()
    assert build_book(pdf=False, root=lab.root) == 1
    out = capfd.readouterr().out
    assert "refusing to build" in out
    assert "book/runs/runA/fitting.ipynb: parameters changed: pipeline.integration.fit_config.nbins 100 -> 80" in out
    assert "book/runs/runB" not in out

    (lab.configs["runB"].parent / "fail_calibration").touch()
    lab.edit_config("runB", "pressure: 2.0", "pressure: 2.5")
    assert lab.run(runs=("runB",), stages=["integration", "fitting", "calibration"]) == 1
    assert build_book(pdf=False, allow_stale=True, root=lab.root) == 0
    html = lab.root / "_build" / "html" / "book" / "runs"
    assert "STALE: this page does not reflect the current inputs" in (html / "runA" / "fitting.html").read_text()
    failed = (html / "runB" / "calibration.failed.html").read_text()
    assert "FAILED: this page does not reflect the current inputs" in failed and "boom in calibration" in failed
    assert "STALE" not in (html / "runA" / "integration.html").read_text()
    intro = (lab.root / "_build" / "html" / "book" / "intro.html").read_text()
    assert "<strong>failed</strong>" in intro and "<strong>stale</strong>" in intro

    # fixed and re-run: the build is accepted again and the banners are gone
    (lab.configs["runB"].parent / "fail_calibration").unlink()
    assert lab.run() == 0
    assert build_book(pdf=False, root=lab.root) == 0
    assert "STALE" not in (html / "runA" / "fitting.html").read_text()
    assert "calibration.failed" not in (lab.root / "_build" / "_toc.generated.yml").read_text()
