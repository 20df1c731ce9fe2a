"""Book projects: the folder one book lives in, wherever it is, with s2book installed once.

A *book project* is a folder holding Jupyter Book's ``_config.yml`` and ``_toc.yml`` (:data:`MARKERS`; both
are needed, and ``_toc.yml`` tells it apart from, e.g., a Jekyll site's ``_config.yml``). Everything a book
writes goes into its project (the layout of the design card, DESIGN.md section 2)::

    _config.yml, _toc.yml       configuration and static chapters
    book/intro.md, methods.md   hand-written chapters
    runs/                       the user's run configurations (one YAML per run)
    notebooks/<stage>.md        optional: this book's own templates (else the installed package's)
    book/runs/<run_id>/         executed notebooks (``s2book run``), generated overview and appendix pages
    _build/                     HTML and PDF (``s2book build``)
    validation/, demo/          ``s2book validate`` and ``s2book demo``

The installed package ships the templates and the files of a new project as package data
(``s2lib/data/``; in a checkout these are symbolic links to the repository's top-level files, which is itself
a book project). :func:`find_project` resolves the project of a command; :func:`init_project` creates one.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from s2lib.errors import ProjectError, S2BookError
from s2lib.io.manifest import sha256_file

__all__ = ["MARKERS", "TEMPLATE_SUFFIX", "data_dir", "packaged_templates", "templates_dir", "template_path",
           "templates_record", "recorded_templates", "missing_markers", "find_project", "init_project", "project_files"]

#: Files whose presence makes a folder a book project.
MARKERS = ("_config.yml", "_toc.yml")
#: Templates are MyST Markdown notebooks (jupytext ``md:myst``): ``<templates>/<stage>.md``.
TEMPLATE_SUFFIX = ".md"
_INIT_HINT = "create one with `s2book init DIR`"


def data_dir() -> Path:
    """The package data folder ``s2lib/data`` (templates and the files of a new project)."""
    path = Path(str(resources.files("s2lib").joinpath("data")))
    if not path.is_dir():
        raise ProjectError(f"the s2book installation has no package data folder {path}: reinstall s2book")
    return path


def packaged_templates() -> Path:
    """Folder of the installed notebook templates (``s2lib/data/notebooks``)."""
    return data_dir() / "notebooks"


def templates_dir(root: str | Path) -> Path:
    """The templates a project uses: its own ``notebooks/`` folder if it has one, else the installed ones."""
    own = Path(root) / "notebooks"
    return own if own.is_dir() else packaged_templates()


def template_path(templates: str | Path, stage: str) -> Path:
    """``<templates>/<stage>.md``."""
    return Path(templates) / f"{stage}{TEMPLATE_SUFFIX}"


def templates_record(templates: str | Path, root: str | Path) -> dict[str, Any]:
    """What a run's manifest records of the templates it was executed from, independent of where s2book is installed.

    ``origin`` says where they come from: ``"package"`` (the installed s2book's), ``"project"`` (the book project's
    own ``notebooks/``) or ``"folder"`` (any other folder, e.g. ``run_reports(template_dir=...)``, whose absolute
    ``path`` is then kept); ``files`` maps each template's name to the sha256 of its content. Moving the venv
    or the checkout changes none of this, so pages do not turn stale; editing a template changes its sha256 (and
    the content fingerprint the stage's cache key holds, which is what marks the page stale).
    """
    folder = Path(templates).resolve()
    if folder == (Path(root) / "notebooks").resolve():
        origin = "project"
    elif folder == packaged_templates().resolve():
        origin = "package"
    else:
        origin = "folder"
    files = {p.name: sha256_file(p) for p in sorted(folder.glob(f"*{TEMPLATE_SUFFIX}"))}
    return {"origin": origin, "path": str(folder) if origin == "folder" else None, "files": files}


def recorded_templates(record: Any, root: str | Path | None = None) -> Path:
    """The folder that holds, in this installation and book project ``root``, the templates a manifest's
    ``templates`` record (:func:`templates_record`) names.

    Manifests written before that record hold the folder's absolute path (a string): it is returned as it is.
    Raises:
        S2BookError: the record names the project's templates but no project ``root`` is given.
    """
    if isinstance(record, str):
        return Path(record)
    origin = record.get("origin") if isinstance(record, dict) else "package"
    if origin == "project":
        if root is None:
            raise S2BookError("the run used the book project's own templates (notebooks/): give the project")
        return Path(root) / "notebooks"
    if origin == "folder" and record.get("path"):
        return Path(record["path"])
    return packaged_templates()


def missing_markers(folder: str | Path) -> list[str]:
    """The marker files (:data:`MARKERS`) that ``folder`` lacks; empty for a book project."""
    return [name for name in MARKERS if not (Path(folder) / name).is_file()]


def find_project(book: str | Path | None = None, start: str | Path | None = None) -> Path:
    """The book project a command acts on (absolute path).

    ``book`` (the ``--book`` option) must itself be a project. Without it, the first of ``start`` (default: the
    current folder) and its parent folders that is one, as git finds its repository: a command typed in
    ``mybook/runs/`` acts on ``mybook``.

    Raises:
        ProjectError: naming the folder and the missing files, and how to create a project.
    """
    if book is not None:
        folder = Path(book).expanduser().resolve()
        if not folder.is_dir():
            raise ProjectError(f"--book {book}: no such folder ({_INIT_HINT})")
        missing = missing_markers(folder)
        if missing:
            raise ProjectError(f"--book {folder}: not a book project: missing {', '.join(missing)} ({_INIT_HINT})")
        return folder
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if not missing_markers(folder):
            return folder
    raise ProjectError(f"{here} is not inside a book project: no {' and '.join(MARKERS)} in it or in a parent "
                       f"folder ({_INIT_HINT}, or pass --book DIR)")


def project_files(templates: bool = False) -> dict[str, Path]:
    """``{path in the new project: packaged source}`` of what :func:`init_project` writes."""
    data = data_dir()
    files = {"_config.yml": data / "project" / "_config.yml", "_toc.yml": data / "project" / "_toc.yml",
             "README.md": data / "project" / "README.md", ".gitignore": data / "project" / "gitignore"}
    for chapter in sorted((data / "project" / "book").glob("*.md")):
        files[f"book/{chapter.name}"] = chapter
    if templates:
        for template in sorted(packaged_templates().glob(f"*{TEMPLATE_SUFFIX}")):
            files[f"notebooks/{template.name}"] = template
    return files


def init_project(dest: str | Path, *, force: bool = False, templates: bool = False) -> list[Path]:
    """Create a book project in ``dest`` (created if missing); return the files written.

    Writes ``_config.yml``, ``_toc.yml``, the chapters, a README saying what to do next, a ``.gitignore`` for the
    generated folders and an empty ``runs/``; with ``templates`` also a copy of the notebook templates in
    ``notebooks/`` (this book's own). Files of ``dest`` that are not among these are never touched.

    Raises:
        ProjectError: ``dest`` is a file, or some of these files exist already and ``force`` is False (the
            message lists them).
    """
    from s2lib.io.store import write_bytes_atomic

    dest = Path(dest).expanduser().resolve()
    if dest.exists() and not dest.is_dir():
        raise ProjectError(f"{dest}: exists and is not a folder")
    files = project_files(templates)
    existing = [name for name in files if (dest / name).exists()]
    if existing and not force:
        raise ProjectError(f"{dest}: would overwrite {', '.join(existing)} (an existing book project?); "
                           "pass --force to overwrite these files (nothing else is touched)")
    written = []
    for name, source in files.items():
        written.append(write_bytes_atomic(dest / name, source.read_bytes()))
    (dest / "runs").mkdir(exist_ok=True)
    return written
