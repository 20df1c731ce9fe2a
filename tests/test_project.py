"""Book projects: resolution (current folder, parents, --book), `s2book init`, and the commands' exit status 2
with a one-line error outside a project. Fast: nothing is executed or built here (tests/test_install.py does
that from a real installation)."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from s2lib.cli import main
from s2lib.errors import ProjectError
from s2lib.report.project import (MARKERS, data_dir, find_project, init_project, packaged_templates,
                                  project_files, templates_dir)

REPO = Path(__file__).resolve().parents[1]
NEW_PROJECT = {"_config.yml", "_toc.yml", "README.md", ".gitignore", "book/intro.md", "book/methods.md"}


def test_init_writes_the_packaged_project_files(tmp_path: Path) -> None:
    dest = tmp_path / "a" / "mybook"                 # missing parents are created
    written = init_project(dest)
    assert {p.relative_to(dest).as_posix() for p in written} == NEW_PROJECT
    assert (dest / "runs").is_dir() and not any((dest / "runs").iterdir())
    assert not (dest / "notebooks").exists(), "the installed templates are used unless asked for a copy"
    assert find_project(dest) == dest.resolve()
    for name in ("_config.yml", "_toc.yml", "book/intro.md", "book/methods.md"):   # the repository's own copy
        assert (dest / name).read_bytes() == (REPO / name).read_bytes(), name
    config = yaml.safe_load((dest / "_config.yml").read_text())
    assert config["sphinx"]["config"]["latex_elements"]["papersize"] == "a4paper"
    assert "s2lib.report.sphinx_fixes" in config["sphinx"]["extra_extensions"]
    toc = yaml.safe_load((dest / "_toc.yml").read_text())
    assert toc["root"] == "book/intro" and toc["chapters"] == [{"file": "book/methods"}]
    readme = (dest / "README.md").read_text()
    assert "s2book demo" in readme and "s2book run runs/*.yaml" in readme and "s2book build" in readme
    assert "book/runs/" in (dest / ".gitignore").read_text().split()
    assert templates_dir(dest) == packaged_templates()


def test_init_refuses_to_overwrite_and_names_the_files(tmp_path: Path) -> None:
    init_project(tmp_path)
    (tmp_path / "book" / "intro.md").write_text("# my own introduction\n")
    (tmp_path / "runs" / "r1.yaml").write_text("run_id: r1\n")
    with pytest.raises(ProjectError) as err:
        init_project(tmp_path)
    text = str(err.value)
    assert str(tmp_path) in text and "--force" in text
    for name in NEW_PROJECT:
        assert name in text
    assert (tmp_path / "book" / "intro.md").read_text() == "# my own introduction\n", "nothing written on refusal"
    init_project(tmp_path, force=True, templates=True)
    assert (tmp_path / "book" / "intro.md").read_bytes() == (REPO / "book" / "intro.md").read_bytes()
    assert (tmp_path / "runs" / "r1.yaml").read_text() == "run_id: r1\n", "files of the user are never touched"
    assert sorted(p.name for p in (tmp_path / "notebooks").iterdir()) == sorted(
        p.name for p in packaged_templates().glob("*.md"))
    assert templates_dir(tmp_path) == tmp_path / "notebooks"


def test_init_into_a_folder_holding_other_files_adds_the_project(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("lab notes\n")
    init_project(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "lab notes\n"
    with pytest.raises(ProjectError, match="exists and is not a folder"):
        init_project(tmp_path / "notes.txt")


def test_project_is_found_in_the_folder_or_a_parent(tmp_path: Path) -> None:
    init_project(tmp_path / "book1")
    deep = tmp_path / "book1" / "runs" / "2026"
    deep.mkdir(parents=True)
    assert find_project(start=deep) == (tmp_path / "book1").resolve()
    assert find_project(start=tmp_path / "book1") == (tmp_path / "book1").resolve()
    jekyll = tmp_path / "site"                       # a _config.yml alone is not a book project
    jekyll.mkdir()
    (jekyll / "_config.yml").write_text("title: a Jekyll site\n")
    with pytest.raises(ProjectError, match=r"site is not inside a book project: no _config.yml and _toc.yml"):
        find_project(start=jekyll)


def test_book_option_must_name_a_project(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"--book .*nowhere: no such folder"):
        find_project(tmp_path / "nowhere")
    (tmp_path / "_config.yml").write_text("title: x\n")
    with pytest.raises(ProjectError, match=rf"--book {tmp_path}: not a book project: missing _toc.yml"):
        find_project(tmp_path, start=REPO)           # --book wins over the current folder
    assert find_project(REPO, start=tmp_path) == REPO


def test_the_repository_is_a_book_project_and_ships_what_init_writes() -> None:
    assert find_project(start=REPO / "s2lib") == REPO
    assert all((REPO / m).is_file() for m in MARKERS)
    for name, source in project_files(templates=True).items():
        assert source.is_file() and source.resolve().is_relative_to(REPO), name
        assert data_dir() in source.parents


@pytest.mark.parametrize("args", [["build", "--no-pdf"], ["demo", "--no-pdf"], ["status", "x.yaml"],
                                  ["run", "x.yaml"], ["validate", "--quick"]])
def test_commands_outside_a_book_project_exit_2_naming_the_folder(tmp_path: Path, monkeypatch, args) -> None:
    monkeypatch.chdir(tmp_path)
    Path("x.yaml").write_text("run_id: x\n")
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert result.output.startswith(f"s2book: error: {tmp_path} is not inside a book project: no _config.yml "
                                    "and _toc.yml") and "s2book init DIR" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.yaml"], "nothing written outside a project"


def test_cli_init_refusal_is_a_usage_error(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["init", str(tmp_path / "b")])
    assert first.exit_code == 0 and "s2book demo" in first.output
    again = runner.invoke(main, ["init", str(tmp_path / "b")])
    assert again.exit_code == 2 and "would overwrite _config.yml" in again.output
    bad = runner.invoke(main, ["build", "--book", str(tmp_path)])
    assert bad.exit_code == 2 and f"--book {tmp_path}: not a book project: missing _config.yml, _toc.yml" in bad.output


def test_templates_record_names_the_origin_and_is_found_again(tmp_path: Path) -> None:
    import hashlib

    from s2lib.errors import S2BookError
    from s2lib.report.project import packaged_templates, recorded_templates, templates_record

    own = tmp_path / "book" / "notebooks"
    own.mkdir(parents=True)
    (own / "integration.md").write_text("# x\n")
    record = templates_record(own, tmp_path / "book")
    assert record == {"origin": "project", "path": None,
                      "files": {"integration.md": hashlib.sha256(b"# x\n").hexdigest()}}
    moved = tmp_path / "moved"
    assert recorded_templates(record, moved) == moved / "notebooks"       # the project moved: found in its new place
    with pytest.raises(S2BookError, match="book project's own templates"):
        recorded_templates(record, None)
    other = templates_record(own, tmp_path / "elsewhere")                  # not the project's: kept by path
    assert other["origin"] == "folder" and recorded_templates(other) == own.resolve()
    assert templates_record(packaged_templates(), tmp_path)["origin"] == "package"
    assert recorded_templates({"origin": "package", "path": None, "files": {}}) == packaged_templates()
    assert recorded_templates(str(own)) == own                             # manifests written before the record
