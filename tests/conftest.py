"""Shared pytest fixtures: where the shared folder and its real WFM samples are, the session's tiny simulated
run, and the installed tool with the demo book it builds (one wheel, one venv, one demo build per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "wfm" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real Tektronix files with their expected.json (../shared/wfm/samples)."""
    if not (SAMPLES / "expected.json").is_file():
        pytest.fail(f"the shared WFM samples are missing: {SAMPLES} (clone with ../shared beside the repo)")
    return SAMPLES


TINY_SEED = 20260601
"""Seed of the session's tiny simulated run (fixed: the tests' numbers are reproducible)."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A ``tiny`` simulated run, written once per test session: ``(outdir, config path, truth dict)``.

    ``outdir/raw`` holds the WFM files, ``outdir/truth/<set>.npz`` the per-frame truth, ``outdir/run.yaml`` the
    configuration (outputs to ``outdir/processed``). Treat it as read-only: tests that write outputs should
    point ``output_base`` elsewhere.
    """
    import json

    from s2lib.sim.simulate import simulate_run

    outdir = simulate_run(tmp_path_factory.mktemp("tiny_run"), profile="tiny", seed=TINY_SEED, progress=False)
    truth = json.loads((outdir / "truth.json").read_text(encoding="utf-8"))
    return outdir, outdir / "run.yaml", truth


# ------------------------------------------------------------------ the installed tool and its demo book
#: What a clone holds that the wheel needs (tests, benchmarks and .venv are not part of it).
WHEEL_SOURCES = ("pyproject.toml", "README.md", "s2lib", "notebooks", "_config.yml", "_toc.yml", "book/intro.md",
                 "book/methods.md")


def run_checked(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 900):
    """Run ``cmd``; fail the test with the end of its output when it exits non-zero."""
    import subprocess

    done = subprocess.run(cmd, cwd=str(cwd), env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def file_mtimes(folder: Path) -> dict[str, int]:
    """``{relative path: mtime_ns}`` of every file below ``folder`` (``__pycache__`` left out)."""
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A wheel of this checkout (built from a copy of its files, as a fresh clone would be) installed in a fresh
    virtual environment; the sources are deleted before anything runs.

    The wheel is installed with ``--no-deps``; the dependencies (numpy, papermill, Jupyter Book...) come from the
    project's .venv through a ``.pth`` line, which adds that site-packages folder to ``sys.path`` without running
    its own ``.pth`` files, so the checkout's editable s2lib is not importable there (tests/test_install.py
    asserts that ``s2lib`` is the wheel's copy). ``package_files`` are the installed package's files and mtimes
    before any command ran.
    """
    import os
    import shutil
    import site
    import sys

    tmp = tmp_path_factory.mktemp("install")
    clone = tmp / "clone"
    for name in WHEEL_SOURCES:
        src, dest = REPO / name, clone / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run_checked([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "wheel"), str(clone)], tmp, env)
    wheel = next((tmp / "wheel").glob("s2book-*.whl"))
    venv = tmp / "venv"
    run_checked([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp, env)
    python = venv / "bin" / "python"
    run_checked([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                 str(wheel)], tmp, env)
    purelib = Path(run_checked([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               tmp, env).stdout.strip())
    (purelib / "_s2book_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    shutil.rmtree(clone)                                # the installation must not need the sources
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")
    package = Path(run_checked([str(python), "-c", "import s2lib; print(s2lib.__file__)"], tmp, env).stdout.strip()).parent
    return {"tmp": tmp, "venv": venv, "python": python, "package": package, "env": env,
            "s2book": str(venv / "bin" / "s2book"), "package_files": file_mtimes(package)}


@pytest.fixture(scope="session")
def installed_demo(installed: dict) -> dict:
    """The demo book made by the installed tool, as a new user makes it: ``s2book init mybook`` and
    ``s2book demo --book mybook --no-pdf`` (simulated demo run, every notebook executed, HTML built with MathJax
    bundled) from a working folder outside the checkout. Shared by tests/test_install.py (the commands of an
    installation) and tests/test_browser.py (the site in a real browser): one demo build per session.
    """
    work = installed["tmp"] / "work"
    work.mkdir()
    run_checked([installed["s2book"], "init", "mybook"], work, installed["env"])
    book = work / "mybook"
    run_checked([installed["s2book"], "demo", "--book", "mybook", "--no-pdf", "--jobs", "2"], work, installed["env"])
    return {"work": work, "book": book, "config": book / "demo" / "run.yaml", "site": book / "_build" / "html"}
