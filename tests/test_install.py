"""A real installation: a wheel of this checkout (built from a copy of its files, as a fresh clone would be) in a
fresh virtual environment, then `s2book init`, `run`, `status` and `build --no-pdf` on a small simulated run,
from a working folder outside the checkout.

The wheel is installed with ``--no-deps``; the dependencies (numpy, papermill, Jupyter Book...) come from the
project's .venv through a ``.pth`` line, which adds that site-packages folder to ``sys.path`` without running
its own ``.pth`` files, so the checkout's editable s2lib is not importable there: the test asserts that
``s2lib`` is the wheel's copy. It then checks that the executed notebooks and ``_build/html`` are in the book
project and that nothing was written into the installed package.
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
#: What a clone holds that the build needs (tests, benchmarks and .venv are not part of the wheel).
SOURCES = ("pyproject.toml", "README.md", "s2lib", "notebooks", "_config.yml", "_toc.yml", "book/intro.md",
           "book/methods.md")
STAGES = ("integration", "fitting", "calibration")


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _files(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("install")
    clone = tmp / "clone"
    for name in SOURCES:
        src, dest = REPO / name, clone / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "wheel"), str(clone)], tmp, env)
    wheel = next((tmp / "wheel").glob("s2book-*.whl"))
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
          str(wheel)], tmp, env)
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        tmp, env).stdout.strip())
    (purelib / "_s2book_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    shutil.rmtree(clone)                                # the installation must not need the sources
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", S2BOOK_FETCH_MATHJAX="0")
    package = Path(_run([str(python), "-c", "import s2lib; print(s2lib.__file__)"], tmp, env).stdout.strip()).parent
    return {"tmp": tmp, "venv": venv, "python": python, "package": package, "env": env,
            "s2book": str(venv / "bin" / "s2book")}


def test_the_wheel_holds_every_subpackage_and_the_package_data(installed: dict) -> None:
    package = installed["package"]
    assert installed["venv"] in package.parents, f"s2lib imported from {package}, not from the new venv"
    assert (package / "alpha" / "stage.py").is_file()
    for name in ("data/notebooks/integration.md", "data/notebooks/summary.md", "data/project/_config.yml",
                 "data/project/_toc.yml", "data/project/book/methods.md", "data/project/README.md",
                 "s2book.mplstyle", "py.typed"):
        assert (package / name).is_file() and not (package / name).is_symlink(), name


def test_init_run_and_build_in_a_project_outside_the_checkout(installed: dict) -> None:
    tmp, env, s2book = installed["tmp"], installed["env"], installed["s2book"]
    before = _files(installed["package"])
    work = tmp / "work"
    work.mkdir()
    _run([s2book, "init", "mybook"], work, env)
    book = work / "mybook"
    _run([s2book, "simulate", str(work / "sim"), "--profile", "tiny", "--seed", "7"], work, env)
    cfg = yaml.safe_load((work / "sim" / "run.yaml").read_text())
    cfg["data"] = {"raw_data_path": str(work / "sim" / "raw"), "output_base": "../processed"}
    (book / "runs" / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    # from outside the project with --book; then from a folder inside it (found through the parents)
    _run([s2book, "run", "--book", "mybook", "mybook/runs/tiny.yaml", "--jobs", "2"], work, env, timeout=900)
    run_id = cfg["run_id"]
    for stage in STAGES:
        assert (book / "book" / "runs" / run_id / f"{stage}.ipynb").is_file(), stage
    assert (book / "book" / "runs" / "summary.ipynb").is_file()
    assert (book / "processed" / run_id / "manifest.json").is_file()
    status = _run([s2book, "status", "tiny.yaml"], book / "runs", env)
    assert all(f"{stage}: up to date" in status.stdout for stage in STAGES), status.stdout
    _run([s2book, "build", "--no-pdf"], book / "runs", env)
    index = book / "_build" / "html" / "index.html"
    assert index.is_file()
    assert (book / "_build" / "html" / "book" / "runs" / run_id / "calibration.html").is_file()
    assert _files(installed["package"]) == before, "the run or the build wrote into the installed package"
    manifest = yaml.safe_load((book / "processed" / run_id / "manifest.json").read_text())
    assert Path(manifest["templates"]) == installed["package"] / "data" / "notebooks"
