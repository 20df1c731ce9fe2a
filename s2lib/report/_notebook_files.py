"""Notebook files of the report runner: reading a template (MyST Markdown through jupytext), its parameter
names, the finished notebook's tags and metadata (written atomically), and the failing cell of a failed
execution. Internal to :mod:`s2lib.report`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import nbformat

from s2lib.errors import S2BookError

_REMOVE_TAGS = ("parameters", "injected-parameters")
_HIDE_TAGS = ("remove-cell", "remove-input", "hide-input", "hide-cell", "papermill-error-cell-tag")


def read_template(path: str | Path) -> nbformat.NotebookNode:
    """A stage template as an nbformat v4 notebook: a MyST Markdown notebook (jupytext ``md:myst``, the only
    format of the templates) read with :func:`jupytext.read`.

    Raises:
        S2BookError: the file is missing, not ``.md``, or not a notebook jupytext can read (the message names it).
    """
    import jupytext

    path = Path(path)
    if path.suffix != ".md":
        raise S2BookError(f"{path}: a notebook template must be a MyST Markdown notebook (.md)")
    try:
        return jupytext.read(path, fmt="md:myst")
    except OSError as err:
        raise S2BookError(f"{path}: cannot read the notebook template: {err.strerror or err}") from err
    except Exception as err:  # noqa: BLE001 - jupytext's parse errors have no common base class
        raise S2BookError(f"{path}: not a MyST Markdown notebook: {type(err).__name__}: {err}") from err


def parameters_cells(nb: nbformat.NotebookNode) -> list[Any]:
    """The cells tagged ``parameters`` (papermill injects its values after the first)."""
    return [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]


def _parameter_names(template: Path) -> set[str]:
    """Names assigned in the template's ``parameters``-tagged cell."""
    for cell in parameters_cells(read_template(template))[:1]:
        return set(re.findall(r"^([A-Za-z_]\w*)\s*(?::[^=\n]*)?=", cell.source, flags=re.M))
    return set()


def _finalise(src: Path, dest: Path, meta: Mapping[str, Any]) -> None:
    """Tag parameter cells ``remove-cell``, other code cells ``hide-input``, add ``metadata.s2book``, write atomically."""
    nb = nbformat.read(str(src), as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if any(t in tags for t in _REMOVE_TAGS):
            if "remove-cell" not in tags:
                tags.append("remove-cell")
        elif cell.cell_type == "code" and not any(t in tags for t in _HIDE_TAGS):
            tags.append("hide-input")
    nb.metadata["s2book"] = dict(meta)
    if "template" in meta and "papermill" in nb.metadata:   # papermill recorded the template notebook itself
        nb.metadata["papermill"]["input_path"] = meta["template"]
    from s2lib.io.store import write_text_atomic

    text = nbformat.writes(nb)
    write_text_atomic(dest, text if text.endswith("\n") else text + "\n")


def _cell_started(partial: Path) -> bool:
    try:
        nb = nbformat.read(str(partial), as_version=4)
    except Exception:  # noqa: BLE001 - a missing or half-written file means nothing ran
        return False
    return any(c.metadata.get("papermill", {}).get("status") not in (None, "pending") for c in nb.cells)


def _failure_info(err: BaseException, partial: Path) -> dict[str, Any]:
    """``{cell, execution_count, ename, evalue, source}`` of the failing cell."""
    info: dict[str, Any] = {"cell": getattr(err, "cell_index", None), "execution_count": getattr(err, "exec_count", None),
                            "ename": getattr(err, "ename", None) or type(err).__name__,
                            "evalue": getattr(err, "evalue", None) or (str(err).strip().splitlines() or [""])[-1],
                            "source": getattr(err, "source", None)}
    if info["cell"] is None and partial.is_file():
        try:
            nb = nbformat.read(str(partial), as_version=4)
        except Exception:  # noqa: BLE001 - a half-written partial notebook (full disk, killed writer)
            nb = nbformat.v4.new_notebook()
        for index, cell in enumerate(nb.cells):
            if cell.metadata.get("papermill", {}).get("status") in ("running", "failed"):
                info.update(cell=index, execution_count=cell.get("execution_count"), source=cell.source)
                break
    info["source"] = (info["source"] or "").strip().splitlines()[0][:100] if info["source"] else None
    return info
