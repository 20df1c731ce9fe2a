"""A real installation: a wheel of this checkout (built from a copy of its files, as a fresh clone would be) in a
fresh virtual environment, then `s2book init`, `demo`, `run --book`, `status` and `build --no-pdf` from a working
folder outside the checkout (the ``installed`` and ``installed_demo`` fixtures of tests/conftest.py; the demo
book they make is also the one tests/test_browser.py opens).

The wheel is installed with ``--no-deps``; the dependencies come from the project's .venv through a ``.pth``
line that does not make the checkout's editable s2lib importable: the test asserts that ``s2lib`` is the wheel's
copy. It then checks that the executed notebooks and ``_build/html`` are in the book project, that every command
finds the project (``--book``, or the current folder's parents) and that nothing was written into the installed
package.
"""
from __future__ import annotations

import hashlib

import pytest
import yaml

from conftest import file_mtimes, run_checked

pytestmark = pytest.mark.slow

STAGES = ("integration", "fitting", "calibration")


def test_the_wheel_holds_every_subpackage_and_the_package_data(installed: dict) -> None:
    package = installed["package"]
    assert installed["venv"] in package.parents, f"s2lib imported from {package}, not from the new venv"
    assert (package / "alpha" / "stage.py").is_file()
    for name in ("data/notebooks/integration.md", "data/notebooks/summary.md", "data/project/_config.yml",
                 "data/project/_toc.yml", "data/project/book/methods.md", "data/project/README.md",
                 "s2book.mplstyle", "py.typed"):
        assert (package / name).is_file() and not (package / name).is_symlink(), name


def test_init_demo_run_status_and_build_in_a_project_outside_the_checkout(installed: dict,
                                                                          installed_demo: dict) -> None:
    env, s2book = installed["env"], installed["s2book"]
    work, book = installed_demo["work"], installed_demo["book"]
    cfg = yaml.safe_load(installed_demo["config"].read_text())
    run_id = cfg["run_id"]
    for stage in STAGES:
        assert (book / "book" / "runs" / run_id / f"{stage}.ipynb").is_file(), stage
    assert (book / "book" / "runs" / "summary.ipynb").is_file()
    manifest_path = next(book.rglob(f"{run_id}/manifest.json"))
    assert book in manifest_path.parents, "the run's outputs are outside the book project"
    # from outside the project with --book: the demo's stages are all up to date, nothing is executed again
    done = run_checked([s2book, "run", "--book", "mybook", str(installed_demo["config"].relative_to(work)),
                        "--jobs", "2"], work, env)
    assert "0 stage(s) executed" in done.stdout, done.stdout
    # then from a folder inside the project (found through the parents)
    status = run_checked([s2book, "status", "run.yaml"], book / "demo", env)
    assert all(f"{stage}: up to date" in status.stdout for stage in STAGES), status.stdout
    run_checked([s2book, "build", "--no-pdf"], book / "demo", env)
    assert (book / "_build" / "html" / "index.html").is_file()
    assert (book / "_build" / "html" / "book" / "runs" / run_id / "calibration.html").is_file()
    assert file_mtimes(installed["package"]) == installed["package_files"], \
        "the demo, the run or the build wrote into the installed package"
    # the manifest records where the templates come from and their content, not the installation's path
    templates = yaml.safe_load(manifest_path.read_text())["templates"]
    assert templates["origin"] == "package" and str(installed["venv"]) not in str(templates)
    installed_md = installed["package"] / "data" / "notebooks" / "calibration.md"
    assert templates["files"]["calibration.md"] == hashlib.sha256(installed_md.read_bytes()).hexdigest()
