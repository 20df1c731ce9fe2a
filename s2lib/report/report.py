"""Execute the report notebooks of each run with papermill, skipping what is up to date.

Stages (:data:`STAGES`): ``integration``, ``fitting``, ``calibration`` per run, then ``summary`` once across the
runs. A stage is the template ``<templates>/<stage>.md``, a MyST Markdown notebook (read with jupytext; the
templates are the book project's ``notebooks/`` or the installed package's, :mod:`s2lib.report.project`); papermill
executes it (:mod:`s2lib.report._stage_run`) with the parameters ``config_path`` and ``output_dir`` (absolute paths;
``run_id``, ``stage``, ``jobs``, ``strict`` too when the template's ``parameters`` cell names them; the summary
gets ``config_paths``, ``run_ids``, ``output_dirs``, ``output_dir``), the kernel ``python3``, a per-cell timeout
and the run's output folder as working directory. One runner per run: each run's output folder is locked first
(:mod:`s2lib.report.runlock`; busy: exit 75, or wait), then the temporary files a killed runner left there are removed;
the summary's folder is locked (waiting) just before it runs. Executed notebooks land in the book project's
``book/runs/<run_id>/<stage>.ipynb`` (``book/runs/summary.ipynb``), written to a temporary name and renamed on
success; a failed execution is kept as ``<stage>.failed.ipynb``.

Every stage has a cache key (:mod:`s2lib.io.manifest`, :mod:`s2lib.report._cache`); the run's ``manifest.json``
(``<output_base>/<run_id>/``) records key parts, timings, artifacts with sha256, errors, versions, git state.

Parallel runs use a bounded process pool (one run per worker, BLAS threads pinned, kernels talk over IPC
sockets in a private folder, so there is no ZMQ port race).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from s2lib.io import manifest as mf
from ._cache import (PER_RUN_STAGES, STAGE_NAMES, STAGES, SUMMARY, SUMMARY_DIR, Fingerprints, RunSpec, Stage,
                     StagePlan, load_run_spec, plan_run, plan_stage, plan_summary, run_stages, validate_stages)
from ._stage_run import KERNEL_NAME, Layout, _execute, _say, run_parameters, summary_parameters
from s2lib.analysis.badfiles import bad_file_line, strict_reasons
from s2lib.analysis.filecache import pass_lines, status_lines
from s2lib.errors import ConfigError, S2BookError, StageError
from .project import recorded_templates, template_path, templates_record
from .runlock import EXIT_BUSY, RunBusyError, describe_holder, lock_holder, lock_runs

__all__ = [
    "STAGES", "STAGE_NAMES", "Stage", "RunSpec", "StagePlan", "KERNEL_NAME", "DEFAULT_CELL_TIMEOUT",
    "Layout", "run_reports", "report_status", "check_run", "check_summary", "load_run_spec", "run_parameters",
    "summary_parameters",
]

#: Per-cell execution timeout in seconds (override with ``cell_timeout=`` or ``S2BOOK_CELL_TIMEOUT``).
DEFAULT_CELL_TIMEOUT = 1800
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS")


@dataclass
class _Job:
    spec: RunSpec
    stages: list[str]
    force: bool
    layout: Layout
    timeout: int
    progress: bool
    git: dict[str, Any]
    workers: int = 1
    strict: bool = False


@dataclass
class _Outcome:
    run_id: str
    ok: bool
    error: str | None = None
    executed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _workers_for(spec: RunSpec, default: int) -> int:
    """Processes a run's integration pass may use: the CLI's share of ``--jobs``, or more if the run's
    configuration asks for more (its ``jobs`` key)."""
    return max(default, spec.jobs if isinstance(spec.jobs, int) and spec.jobs > 0 else 1)


def _pointer(layout: Layout, run_id: str, manifest_path: Path, config: Path | None) -> None:
    target = layout.book / "runs" / ("_summary.json" if run_id == SUMMARY else f"{run_id}/_run.json")
    mf.write_json_atomic(target, {"run_id": run_id, "manifest": str(manifest_path),
                                  "config": str(config) if config else None})


def _refresh(man: dict[str, Any], spec: RunSpec | None, layout: Layout, git: Mapping[str, Any]) -> None:
    man["environment"] = {"packages": mf.environment_fingerprint(), "git": dict(git), **mf.host_info()}
    man["templates"] = templates_record(layout.templates, layout.root)
    if spec is not None:
        man["config"] = {"path": str(spec.config_path), "sha256": mf.sha256_file(spec.config_path),
                         "parameters": spec.parameters}
        raw = mf.raw_fingerprint(spec.raw_data_path)
        man["inputs"] = {"raw_data_path": str(spec.raw_data_path), "raw_files": len(raw),
                         "raw_bytes": sum(v[0] for v in raw.values()), "raw_digest": mf.sha256_text(mf.canonical_json(raw))}
    man["updated"] = mf.now_iso()


def _run_one(job: _Job) -> _Outcome:
    """Run the selected per-run stages of one run in order (also the process-pool worker)."""
    spec, layout = job.spec, job.layout
    out = _Outcome(spec.run_id, True)
    man_path = spec.output_dir / "manifest.json"
    man = mf.read_manifest(man_path) or mf.new_manifest(spec.run_id, spec.config_path, spec.parameters,
                                                        spec.output_dir, layout.root)
    _refresh(man, spec, layout, job.git)
    _pointer(layout, spec.run_id, man_path, spec.config_path)
    fp = Fingerprints(layout.templates)
    stages = man.setdefault("stages", {})
    for stage in run_stages(spec):
        if stage.name not in job.stages:
            continue
        plan = plan_stage(stage, spec, man, fp)
        if stage.reads_raw and plan.up_to_date and (job.strict or spec.parameters.get("strict")):
            plan.reasons.extend(strict_reasons(spec.output_dir))   # strict: recorded bad files re-run it
        if plan.blocked:
            out.ok, out.error = False, str(StageError(spec.run_id, stage.name, plan.blocked + "; run it first"))
            _say(spec.run_id, f"{stage.name}: not run: {plan.blocked}")
            break
        if plan.up_to_date and not job.force:
            stages[stage.name]["status"] = "skipped-up-to-date"
            stages[stage.name]["checked"] = mf.now_iso()
            out.skipped.append(stage.name)
            _say(spec.run_id, f"{stage.name}: up to date (skipped)")
            mf.write_json_atomic(man_path, man)
            continue
        if not plan.reasons:
            plan.reasons.append("forced")
        params = run_parameters(spec, stage.name, _workers_for(spec, job.workers), job.strict)
        meta = {"run_id": spec.run_id, "manifest": str(man_path), "config": str(spec.config_path)}
        started = time.time()
        entry, err = _execute(who=spec.run_id, stage=stage.name, layout=layout, output_dir=spec.output_dir,
                              params=params, plan=plan, old=stages.get(stage.name), timeout=job.timeout,
                              progress=job.progress, meta=meta, git=job.git)
        stages[stage.name] = entry
        man["updated"] = mf.now_iso()
        mf.write_json_atomic(man_path, man)
        if stage.reads_raw:             # what the pass read and what it reused (s2lib.analysis.filecache)
            for line in pass_lines(spec.run_id, spec.output_dir, since=started):
                print(line, flush=True)
        if err is not None:
            out.ok, out.error = False, str(err)
            break
        out.executed.append(stage.name)
    return out


def _init_worker(threads: int) -> None:
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)


def _run_pool(jobs_list: list[_Job], jobs: int, keep_going: bool) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    pending = list(jobs_list)
    if jobs <= 1 or len(pending) <= 1:
        while pending:
            outcome = _run_one(pending.pop(0))
            outcomes.append(outcome)
            if not outcome.ok and not keep_going:
                break
    else:
        threads = max(1, (os.cpu_count() or 1) // jobs)
        running: dict[Any, _Job] = {}
        stop = False
        # fork (POSIX): workers need no importable __main__ (scripts without a main guard work); the parent has
        # started no kernel or ZMQ thread at this point. spawn elsewhere.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context(method),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            while running or (pending and not stop):
                while pending and not stop and len(running) < jobs:
                    job = pending.pop(0)
                    running[pool.submit(_run_one, job)] = job
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    try:
                        outcome = fut.result()
                    except Exception as err:  # noqa: BLE001 - a crashed worker is a failed run
                        outcome = _Outcome(job.spec.run_id, False, f"run {job.spec.run_id}: worker crashed: {err}")
                    outcomes.append(outcome)
                    stop = stop or (not outcome.ok and not keep_going)
    for job in pending:
        _say(job.spec.run_id, "not started (an earlier run failed; use --keep-going to run it anyway)")
        outcomes.append(_Outcome(job.spec.run_id, False, f"run {job.spec.run_id}: not started"))
    return outcomes


def _load_specs(configs: Sequence[str | Path]) -> list[RunSpec]:
    specs = [load_run_spec(c) for c in configs]
    seen: dict[str, Path] = {}
    for spec in specs:
        if spec.run_id in seen:
            raise ConfigError("run_id", f"duplicate run id {spec.run_id!r} (also in {seen[spec.run_id]})",
                              spec.config_path)
        seen[spec.run_id] = spec.config_path
    return specs


def _summary_dir(specs: Sequence[RunSpec]) -> Path:
    return specs[0].output_dir.parent / SUMMARY_DIR


def _run_summary(specs: list[RunSpec], layout: Layout, force: bool, timeout: int, progress: bool,
                 git: Mapping[str, Any]) -> _Outcome:
    out_dir = _summary_dir(specs)
    man_path = out_dir / "manifest.json"
    run_mans = {s.run_id: mf.read_manifest(s.output_dir / "manifest.json") for s in specs}
    man = mf.read_manifest(man_path) or mf.new_manifest(SUMMARY, None, None, out_dir, layout.root)
    man["config"] = {"path": None, "sha256": None, "parameters": {"runs": {s.run_id: str(s.config_path) for s in specs}}}
    _refresh(man, None, layout, git)
    _pointer(layout, SUMMARY, man_path, None)
    plan = plan_summary(specs, run_mans, man, Fingerprints(layout.templates))
    outcome = _Outcome(SUMMARY, True)
    if plan.blocked:
        _say(SUMMARY, f"not run: {plan.blocked}")
        return _Outcome(SUMMARY, False, str(StageError(SUMMARY, SUMMARY, plan.blocked)))
    stages = man.setdefault("stages", {})
    if plan.up_to_date and not force:
        stages[SUMMARY].update(status="skipped-up-to-date", checked=mf.now_iso())
        mf.write_json_atomic(man_path, man)
        _say(SUMMARY, "summary: up to date (skipped)")
        outcome.skipped.append(SUMMARY)
        return outcome
    params = summary_parameters(specs, out_dir)
    entry, err = _execute(who=SUMMARY, stage=SUMMARY, layout=layout, output_dir=out_dir, params=params,
                          plan=plan if plan.reasons else StagePlan(SUMMARY, SUMMARY, ["forced"], plan.parts, plan.key),
                          old=stages.get(SUMMARY), timeout=timeout, progress=progress,
                          meta={"run_id": SUMMARY, "manifest": str(man_path)}, git=git)
    stages[SUMMARY] = entry
    mf.write_json_atomic(man_path, man)
    if err is not None:
        return _Outcome(SUMMARY, False, str(err))
    outcome.executed.append(SUMMARY)
    return outcome


def run_reports(configs: Sequence[str | Path], stages: Sequence[str] | None = None, jobs: int = 1,
                force: bool = False, keep_going: bool = False, *, root: str | Path | None = None,
                template_dir: str | Path | None = None, cell_timeout: int | None = None, wait: bool = False,
                strict: bool = False) -> int:
    """Execute the stages of every run in ``configs``, skipping up-to-date ones; return the exit status.

    Args:
        configs: run YAML files; all are validated before anything runs (ConfigError names the key).
        stages: stage names to run (default all, in order); ``summary`` runs once over all ``configs``.
        jobs: runs executed in parallel (process pool); the stages of one run always run in order.
        force: re-run the selected stages even when up to date.
        keep_going: after a failure, still start the remaining runs (without it, running ones finish and no new
            run starts). The summary never runs when a run failed.
        root: the book project (default: :func:`s2lib.report.project.find_project` from the current folder); executed
            notebooks go to ``<root>/book/runs/``.
        template_dir: folder of the stage templates (default: the project's ``notebooks/`` if it has one, else
            the installed templates).
        cell_timeout: per-cell timeout in seconds (default ``S2BOOK_CELL_TIMEOUT`` or 1800).
        wait: when another runner holds a run's lock (:mod:`s2lib.report.runlock`), wait for it instead of exiting 75.
        strict: a bad raw file fails the integration stage instead of being skipped and reported (also the
            configuration's ``strict`` key); an up-to-date integration that recorded bad files re-runs.

    Returns:
        0 when every selected stage of every run is ok or up to date, 1 otherwise (failures are printed with
        run, stage, cell, exception and the partial notebook's path), 75 when a run is busy (another runner).
    """
    t0 = time.monotonic()
    layout = Layout.make(root, template_dir)
    selected = validate_stages(stages)
    if not configs:
        raise S2BookError("no run configuration given")
    specs = _load_specs(configs)
    fp = Fingerprints(layout.templates)
    for name in selected:   # templates of the stages some run needs (the alpha stage only for tagged runs)
        if name == SUMMARY or any(st.name == name for spec in specs for st in run_stages(spec)):
            fp.template(name)
    timeout = int(cell_timeout or os.environ.get("S2BOOK_CELL_TIMEOUT") or DEFAULT_CELL_TIMEOUT)
    progress = jobs <= 1 and sys.stderr.isatty()
    git = mf.git_state(layout.root)
    per_run = [s for s in selected if s != SUMMARY]
    # --jobs is shared: runs in parallel first, the rest goes to each run's integration pass (results do not
    # depend on it, so it is not part of any cache key).
    workers = max(1, jobs // max(1, min(jobs, len(specs))))
    targets = [(s.run_id, s.output_dir, [layout.book / "runs" / s.run_id]) for s in specs] if per_run else []
    try:
        locks = lock_runs(targets, wait=wait, say=_say)
    except RunBusyError as err:
        print(f"s2book: error: {err}", file=sys.stderr, flush=True)
        return EXIT_BUSY
    try:
        outcomes = _run_pool([_Job(s, per_run, force, layout, timeout, progress, git, workers, strict)
                              for s in specs], jobs, keep_going) if per_run else []
        failed = [o for o in outcomes if not o.ok]
        if SUMMARY in selected:
            if failed:
                _say(SUMMARY, f"not run: run(s) {', '.join(o.run_id for o in failed)} did not finish")
            else:   # shared by every invocation with this output_base: wait for another runner's summary
                locks += lock_runs([(SUMMARY, _summary_dir(specs), [])], wait=True, say=_say)
                outcomes.append(_run_summary(specs, layout, force, timeout, progress, git))
                failed = [o for o in outcomes if not o.ok]
    finally:
        for lock in locks:
            lock.release()
    executed = sum(len(o.executed) for o in outcomes)
    skipped = sum(len(o.skipped) for o in outcomes)
    print(f"s2book run: {executed} stage(s) executed, {skipped} up to date, {len(failed)} run(s) failed "
          f"({time.monotonic() - t0:.1f} s)", flush=True)
    for line in filter(None, (bad_file_line(s.run_id, s.output_dir) for s in (specs if per_run else []))):
        print(line, file=sys.stderr, flush=True)
    for outcome in failed:
        print(f"s2book: error: {outcome.error}", file=sys.stderr, flush=True)
    return 1 if failed else 0


def report_status(configs: Sequence[str | Path], *, root: str | Path | None = None,
                  template_dir: str | Path | None = None) -> int:
    """Print, per run and stage, ``up to date`` or ``will run: <reasons>``; return 0."""
    layout = Layout.make(root, template_dir)
    specs = _load_specs(configs)
    fp = Fingerprints(layout.templates)
    mans, stale_runs = {}, []
    for spec in specs:
        man = mans[spec.run_id] = mf.read_manifest(spec.output_dir / "manifest.json")
        print(f"{spec.run_id} ({spec.config_path})")
        holder = lock_holder(spec.output_dir)
        if holder is not None:
            print(f"  in progress: {describe_holder(holder)} is running it; the states below may change")
        for plan in plan_run(spec, man, fp):
            print(f"  {plan.stage}: " + ("up to date" if plan.up_to_date else "will run: " + "; ".join(plan.reasons)))
            if not plan.up_to_date:
                stale_runs.append(spec.run_id)
        for line in _file_status(spec):
            print(f"  {line}")
    if template_path(layout.templates, SUMMARY).is_file():
        smf = mf.read_manifest(_summary_dir(specs) / "manifest.json")
        plan = plan_summary(specs, mans, smf, fp, runs_will_run=sorted(set(stale_runs)))
        print(f"{SUMMARY}: " + ("up to date" if plan.up_to_date else "will run: " + "; ".join(plan.reasons)))
    return 0


def _file_status(spec: RunSpec) -> list[str]:
    """``set X: 12 new files, 3 changed`` per set whose raw files differ from its last pass (s2lib.analysis.filecache)."""
    from s2lib.config.config import load_config
    from s2lib.config.runs import build_run

    try:
        with warnings.catch_warnings():          # the configuration's warnings were printed when it was loaded
            warnings.simplefilter("ignore")
            cfg = load_config(spec.config_path)
        return status_lines(build_run(cfg))
    except S2BookError as err:
        return [f"raw files not checked: {err}"]


def check_run(manifest_path: str | Path, root: str | Path | None = None) -> dict[str, list[str]]:
    """For the book: per stage recorded in a run's manifest, why it is not current (empty list when it is).

    The templates compared with are those the manifest's record names in this installation and book project
    ``root`` (:func:`s2lib.report.project.recorded_templates`): a moved venv or checkout is not a change."""
    man = mf.read_manifest(manifest_path)
    if man is None:
        return {name: ["manifest missing or unreadable"] for name in STAGE_NAMES if name != SUMMARY}
    recorded = [s for s in PER_RUN_STAGES if s.name in (man.get("stages") or {})]
    try:
        spec = load_run_spec(man["config"]["path"])
    except S2BookError as err:
        return {s.name: [f"configuration not usable: {err}"] for s in recorded}
    try:
        fp = Fingerprints(recorded_templates(man.get("templates"), root))
        plans = plan_run(spec, man, fp)
    except S2BookError as err:
        return {s.name: [str(err)] for s in recorded}
    return {p.stage: p.reasons for p in plans if p.stage in {s.name for s in recorded}}


def check_summary(manifest_path: str | Path, root: str | Path | None = None) -> list[str]:
    """For the book: why the cross-run summary is not current (empty list when it is)."""
    man = mf.read_manifest(manifest_path)
    if man is None or SUMMARY not in (man.get("stages") or {}):
        return ["summary manifest missing"]
    runs = ((man.get("config") or {}).get("parameters") or {}).get("runs") or {}
    try:
        specs = _load_specs(list(runs.values()))
        fp = Fingerprints(recorded_templates(man.get("templates"), root))
        run_mans = {s.run_id: mf.read_manifest(s.output_dir / "manifest.json") for s in specs}
        stale = [s.run_id for s in specs if any(check_run(s.output_dir / "manifest.json", root).values())]
        return plan_summary(specs, run_mans, man, fp, runs_will_run=stale).reasons
    except S2BookError as err:
        return [f"configuration not usable: {err}"]
