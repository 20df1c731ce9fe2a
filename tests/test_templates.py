"""The report templates are MyST Markdown notebooks (jupytext ``md:myst``), edited directly: each opens with
jupytext, has exactly one ``parameters`` cell, and that cell names what the runner injects. (That they run is
tests/test_notebooks.py's job: it executes them through the real runner.)"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from s2lib.report._cache import STAGE_NAMES, SUMMARY, RunSpec
from s2lib.report._notebook_files import _parameter_names, parameters_cells, read_template
from s2lib.errors import S2BookError
from s2lib.report.project import packaged_templates, template_path
from s2lib.report.report import run_parameters, summary_parameters

REPO = Path(__file__).resolve().parents[1]
#: Per-run names every per-run template must take from the runner (the rest it may leave out).
RUN_REQUIRED = {"config_path", "output_dir", "run_id", "stage"}


def _offered(stage: str) -> set[str]:
    """The parameter names the runner offers a stage's template (from the runner's own functions)."""
    spec = RunSpec("runX", Path("/c/run.yaml"), Path("/o/runX"), Path("/r"), {})
    if stage == SUMMARY:
        return set(summary_parameters([spec], Path("/o/_summary")))
    return set(run_parameters(spec, stage))


def test_templates_are_text_only_and_the_package_ships_the_repository_copy() -> None:
    repo = sorted(p.name for p in (REPO / "notebooks").iterdir() if not p.name.startswith("."))
    assert repo == sorted(f"{s}.md" for s in STAGE_NAMES), "notebooks/ holds only the MyST templates"
    shipped = packaged_templates()
    for stage in STAGE_NAMES:
        assert template_path(shipped, stage).read_bytes() == (REPO / "notebooks" / f"{stage}.md").read_bytes()


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_template_has_one_parameters_cell_naming_what_the_runner_injects(stage: str) -> None:
    import papermill as pm

    path = template_path(REPO / "notebooks", stage)
    nb = read_template(path)
    assert nb.nbformat == 4 and nb.metadata["kernelspec"]["name"] == "python3"
    assert sum(c.cell_type == "code" for c in nb.cells) >= 3 and nb.cells[0].cell_type == "markdown"
    assert nb.cells[0].source.startswith("# "), "the first cell is the page title"
    cells = parameters_cells(nb)
    assert len(cells) == 1, f"{path}: {len(cells)} cells tagged parameters"
    tree = ast.parse(cells[0].source)
    assert all(isinstance(node, ast.Assign) and isinstance(node.value, (ast.Constant, ast.List))
               for node in tree.body), "the parameters cell only assigns literal defaults"
    names = _parameter_names(path)
    assert names == set(pm.inspect_notebook(nb)), "papermill reads the same parameters"
    offered = _offered(stage)
    assert names <= offered, f"{path}: parameters the runner never injects: {sorted(names - offered)}"
    if stage == SUMMARY:
        assert names == offered
    else:
        assert names >= RUN_REQUIRED
    if stage == "integration":
        assert "strict" in names, "s2book run --strict must reach the stage that reads the raw files"
    defaults = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}
    assert defaults["stage"] == stage


def test_reading_a_template_that_is_not_a_myst_notebook_names_the_file(tmp_path: Path) -> None:
    old = tmp_path / "fitting.ipynb"
    old.write_text("{}")
    with pytest.raises(S2BookError, match=r"fitting\.ipynb: a notebook template must be a MyST Markdown"):
        read_template(old)
    with pytest.raises(S2BookError, match=r"calibration\.md: cannot read the notebook template"):
        read_template(tmp_path / "calibration.md")
