"""Executing one stage of the report runner: where templates are read and executed notebooks written
(:class:`Layout`, the book project's ``book/runs/``), the parameters offered to a template, and papermill on
the template read through jupytext, with the stage's manifest entry (artifacts, timings, error with its cell).
Internal to :mod:`s2lib.report`, which re-exports the public names."""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from s2lib.io import manifest as mf
from ._cache import SUMMARY, RunSpec, StagePlan
from ._notebook_files import _cell_started, _failure_info, _finalise, _parameter_names, read_template
from s2lib.errors import StageError
from .project import find_project, template_path, templates_dir

__all__ = ["KERNEL_NAME", "Layout", "run_parameters", "summary_parameters"]

KERNEL_NAME = "python3"


@dataclass(frozen=True)
class Layout:
    """Where templates are read and executed notebooks written (``root`` is the book project)."""

    root: Path
    templates: Path
    book: Path

    @classmethod
    def make(cls, root: str | Path | None = None, template_dir: str | Path | None = None) -> "Layout":
        """The layout of ``root`` (default: :func:`s2lib.report.project.find_project` from the current folder); the
        templates of ``template_dir``, else the project's (:func:`s2lib.report.project.templates_dir`)."""
        base = Path(root).resolve() if root is not None else find_project()
        return cls(base, Path(template_dir).resolve() if template_dir else templates_dir(base), base / "book")

    def notebook(self, run_id: str, stage: str, failed: bool = False) -> Path:
        """``book/runs/<run_id>/<stage>[.failed].ipynb`` (``book/runs/summary.ipynb`` for the summary)."""
        folder = self.book / "runs" if stage == SUMMARY else self.book / "runs" / run_id
        return folder / f"{stage}{'.failed' if failed else ''}.ipynb"


def _say(who: str, text: str) -> None:
    print(f"[{who}] {text}", flush=True)


def _papermill(template: Path, out: Path, params: dict[str, Any], cwd: Path, timeout: int, progress: bool) -> None:
    import papermill as pm
    from traitlets.config import Config

    sockets = tempfile.mkdtemp(prefix="s2k-")
    try:
        # IPC sockets in a private folder instead of TCP ports: no port race between parallel kernels.
        config = Config({"KernelManager": {"transport": "ipc", "ip": os.path.join(sockets, "k")}})
        nb = read_template(template)
        nb.metadata.pop("jupytext", None)       # the executed notebook is not paired with a text file
        pm.execute_notebook(nb, str(out), parameters=params, kernel_name=KERNEL_NAME,
                            progress_bar=progress, cwd=str(cwd), config=config, execution_timeout=timeout,
                            start_timeout=120, log_output=False)
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


def run_parameters(spec: RunSpec, stage: str, jobs: int = 1, strict: bool = False) -> dict[str, Any]:
    """The parameters offered to a per-run template (injected: those its ``parameters`` cell assigns, and always
    ``config_path`` and ``output_dir``)."""
    return {"config_path": str(spec.config_path), "output_dir": str(spec.output_dir), "run_id": spec.run_id,
            "stage": stage, "jobs": jobs, "strict": strict}


def summary_parameters(specs: Sequence[RunSpec], out_dir: Path) -> dict[str, Any]:
    """The parameters offered to the cross-run summary template (injected as for :func:`run_parameters`)."""
    return {"config_paths": [str(s.config_path) for s in specs], "run_ids": [s.run_id for s in specs],
            "output_dirs": [str(s.output_dir) for s in specs], "output_dir": str(out_dir), "stage": SUMMARY}


def _execute(*, who: str, stage: str, layout: Layout, output_dir: Path, params: dict[str, Any], plan: StagePlan,
             old: Mapping[str, Any] | None, timeout: int, progress: bool, meta: dict[str, Any],
             git: Mapping[str, Any]) -> tuple[dict[str, Any], StageError | None]:
    """Execute one stage; return its manifest entry and the StageError when it failed."""
    template = template_path(layout.templates, stage)
    final, failed = layout.notebook(who, stage), layout.notebook(who, stage, failed=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    running = final.with_name(f".{stage}.running.ipynb")
    wanted = _parameter_names(template)
    params = {k: v for k, v in params.items() if k in wanted or k in ("config_path", "output_dir")}
    before = mf.snapshot_tree(output_dir)
    started, t0 = mf.now_iso(), time.monotonic()
    _say(who, f"{stage}: running ({'; '.join(plan.reasons)})")
    error: BaseException | None = None
    for attempt in (1, 2):
        try:
            _papermill(template, running, params, output_dir, timeout, progress)
            error = None
            break
        except Exception as err:  # noqa: BLE001 - every failure is reported with its cell below
            error = err
            if attempt == 1 and not _cell_started(running) and "PapermillExecutionError" not in type(err).__name__:
                _say(who, f"{stage}: kernel did not start ({type(err).__name__}: {err}); retrying once")
                continue
            break
    duration = time.monotonic() - t0
    after = mf.snapshot_tree(output_dir)
    previous = (old or {}).get("artifacts") or {}
    names = {k for k, v in after.items() if before.get(k) != v} | {k for k in previous if k in after}
    entry: dict[str, Any] = {
        "status": "ok" if error is None else "failed", "key": plan.key, "parts": plan.parts,
        "started": started, "ended": mf.now_iso(), "duration_s": round(duration, 3),
        "template": str(template), "notebook": str(final if error is None else failed), "git": dict(git),
        "artifacts": mf.hash_artifacts(output_dir, names, known=previous), "error": None,
    }
    meta = {**meta, "stage": stage, "template": str(template), "key": plan.key, "status": entry["status"],
            "ended": entry["ended"]}
    if error is None:
        try:
            _finalise(running, final, meta)
        except OSError as err:          # e.g. a full disk: the stage did not finish
            error = err
            entry.update(status="failed", notebook=str(failed))
    if error is None:
        running.unlink(missing_ok=True)
        failed.unlink(missing_ok=True)
        _say(who, f"{stage}: ok ({duration:.1f} s, {len(entry['artifacts'])} artifacts)")
        return entry, None
    info = _failure_info(error, running)
    entry["error"] = info
    if running.is_file():
        try:
            _finalise(running, failed, meta)
        except (OSError, ValueError):   # full disk, or a notebook papermill could not finish writing
            pass
        running.unlink(missing_ok=True)
    final.unlink(missing_ok=True)
    where = f"(In [{info['execution_count']}]) " if info.get("execution_count") else ""
    message = f"{info['ename']}: {info['evalue']}"
    if info.get("source"):
        message += f" {where}in `{info['source']}`"
    err = StageError(who, stage, message, cell=info.get("cell"), notebook=failed if failed.is_file() else None)
    _say(who, f"{stage}: FAILED: {err}")
    return entry, err
