"""Exception hierarchy of s2lib: one base class, structured fields, readable messages."""
from __future__ import annotations

from pathlib import Path

__all__ = ["S2BookError", "WfmError", "ConfigError", "DataError", "StageError", "ProjectError"]


class S2BookError(Exception):
    """Base class of every error s2lib raises on purpose."""


class WfmError(S2BookError):
    """A Tektronix WFM file that cannot be read: truncated, corrupt, or not an analog waveform.

    Attributes:
        path: the file at fault.
        field: the header field (or part of the file) at fault, e.g. ``"curve buffer"``.
    """

    def __init__(self, path: str | Path, field: str, message: str) -> None:
        self.path = Path(path)
        self.field = field
        self.message = message
        super().__init__(f"{self.path.name}: {field}: {message}")


class ConfigError(S2BookError):
    """A run configuration value that is missing, of the wrong type or impossible.

    Attributes:
        key: the dotted key path at fault, e.g. ``"pipeline.integration.ma_window"``.
        source: the configuration file, when known.
    """

    def __init__(self, key: str, message: str, source: str | Path | None = None) -> None:
        self.key = key
        self.message = message
        self.source = Path(source) if source is not None else None
        where = f"{self.source}: " if self.source is not None else ""
        super().__init__(f"{where}{key}: {message}")


class DataError(S2BookError):
    """A run folder whose layout or content cannot be processed (no sets, an empty set, no S2 found...)."""


class StageError(S2BookError):
    """A report stage (notebook) that failed; names the run, the stage, the cell and the partial notebook."""

    def __init__(self, run_id: str, stage: str, message: str, cell: int | None = None,
                 notebook: str | Path | None = None) -> None:
        self.run_id = run_id
        self.stage = stage
        self.cell = cell
        self.notebook = Path(notebook) if notebook is not None else None
        self.message = message
        parts = [f"run {run_id}", f"stage {stage}"]
        if cell is not None:
            parts.append(f"cell {cell}")
        text = ", ".join(parts) + f": {message}"
        if self.notebook is not None:
            text += f" (partial notebook: {self.notebook})"
        super().__init__(text)


class ProjectError(S2BookError):
    """No usable book project: the folder given (``--book``) or searched (the current folder and its parents)
    lacks the marker files, or ``s2book init`` would overwrite an existing project's files."""
