"""Executed-notebook files of the report runner: template parameters, the finished notebook's tags and
metadata (written atomically), and the failing cell of a failed execution. Internal to :mod:`s2lib.report.report`."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import nbformat

_REMOVE_TAGS = ("parameters", "injected-parameters")
_HIDE_TAGS = ("remove-cell", "remove-input", "hide-input", "hide-cell", "papermill-error-cell-tag")


def _parameter_names(template: Path) -> set[str]:
    """Names assigned in the template's ``parameters``-tagged cell."""
    nb = nbformat.read(str(template), as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
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
