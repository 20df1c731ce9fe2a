"""Running Jupyter Book for :mod:`s2lib.report.book`: the configuration variants (HTML, PDF), the build command with
its warnings treated as errors, and MathJax bundled for an offline HTML book."""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from s2lib.errors import S2BookError

__all__ = ["config_variant", "run_jupyter_book", "fetch_mathjax"]

_WARNING = re.compile(r"(WARNING|ERROR):")
#: MathJax is installed below the book project (git-ignored).
_VENDOR = Path(".s2book") / "vendor"


def _say(text: str) -> None:
    print(text, flush=True)


def _jupyter_book() -> list[str]:
    """The ``jupyter-book`` command run by this interpreter (its Sphinx then loads this s2lib's extension, whatever
    other ``jupyter-book`` is on the PATH)."""
    if importlib.util.find_spec("jupyter_book") is None:
        raise S2BookError("jupyter-book not found (install the report toolchain: pip install -r requirements-report.txt)")
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def config_variant(root: Path, name: str, extra: dict[str, Any]) -> Path:
    """``_build/_config.<name>.yml``: ``_config.yml`` with ``extra`` merged into ``sphinx.config``."""
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    cfg.setdefault("sphinx", {}).setdefault("config", {}).update(extra)
    path = root / "_build" / f"_config.{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_jupyter_book(root: Path, toc: Path, config: Path, builder: str, log: Path) -> int:
    """``jupyter-book build`` of the project ``root`` with one builder (html, pdflatex), warnings as errors;
    the output goes to ``log``. Returns 0, or 1 after printing the warnings (or the last lines of the output)."""
    cmd = [*_jupyter_book(), "build", str(root), "--toc", str(toc), "--config", str(config), "--builder", builder,
           "-W", "--keep-going"]
    t0 = time.monotonic()
    done = subprocess.run(cmd, cwd=str(root), capture_output=True, text=True)
    log.write_text(done.stdout + "\n" + done.stderr, encoding="utf-8")
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if _WARNING.search(line)]
    if done.returncode != 0 or warnings:
        _say(f"s2book build: {builder} build failed (exit {done.returncode}); log: {log}")
        for line in (warnings or (done.stdout + done.stderr).strip().splitlines()[-15:])[:30]:
            _say(f"  {line}")
        return 1
    _say(f"s2book build: {builder} done in {time.monotonic() - t0:.1f} s")
    return 0


def fetch_mathjax(root: str | Path) -> Path | None:
    """Install MathJax 3 (npm) into the git-ignored ``.s2book/vendor/mathjax`` for offline HTML; None when npm fails.

    Only the combined ``tex-mml-chtml.js`` and its CHTML web fonts are kept (about 2 MB instead of 24 MB).
    """
    root = Path(root).resolve()
    target = root / _VENDOR / "mathjax"
    if (target / "tex-mml-chtml.js").is_file():
        return target
    npm = shutil.which("npm")
    if not npm:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--prefix", tmp, "mathjax@3"],
                              capture_output=True, text=True)
        es5 = Path(tmp) / "node_modules" / "mathjax" / "es5"
        if done.returncode != 0 or not (es5 / "tex-mml-chtml.js").is_file():
            return None
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(es5 / "tex-mml-chtml.js", target / "tex-mml-chtml.js")
        shutil.copytree(es5 / "output" / "chtml" / "fonts", target / "output" / "chtml" / "fonts", dirs_exist_ok=True)
    return target
