"""Stage functions of the seed API with progress: timing windows, X-ray classification, recoil S2 integration.

    run = prepare_run(run)                         # [1/4]..[4/4]: S1/S2 timing (s2lib.analysis.timing_stage)
    xrays = run_xray_classification(run)           # X-ray candidates -> xray_areas.npy + xray_results.json
    fitted = run_ion_integration(run, flag_plot=True)   # [1/3]..[3/3]: areas, fits -> s2_areas.npy + s2_results.json
    summary = run_integration_pass(run, jobs=2)    # both in ONE read of the data (what ``s2book run`` does)

Every stage reads its inputs from disk (timing from ``timing.json``), so it also works in a fresh process or
notebook. Artifacts go to ``<output_base>/<run_id>/<set>/`` (never the raw folder); figures to
``<output_base>/<run_id>/figures/`` as PNG + PDF. A set without timing, without usable frames or whose files
are all corrupt gives a result marked failed with a message; the other sets go on. Bad files are reported per
set (``files_failed``, ``files_partial``; :mod:`s2lib.analysis.badfiles`). Units: µs, mV, mV·µs.
The per-file work is in :mod:`s2lib.signal.integration`, the timing estimate in :mod:`s2lib.signal.timing`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from s2lib.signal import integration as _eng
from s2lib.errors import DataError
from s2lib.config.runs import Run, SetInfo
from s2lib.io.store import S2Areas, XRays, load_xrays, store_s2area, store_xrays
from s2lib.stats.fit_store import load_s2area
from s2lib.io.atomic import group_commit
from s2lib.signal.executors import resolve_executor
from s2lib.signal.xray import XRayReason, reason_counts

from .filecache import SetCache
from .timing_stage import _figures, _raw, _say, _timings, prepare_run

__all__ = ["run_xray_classification", "run_ion_integration", "run_integration_pass",
           "IntegrationSummary", "xray_pileup_inputs", "integration_summary_table", "validation_frames"]

RECOIL_METHOD = "recoil_integration"
_ESTIMATOR = ("area = dt·Σ(signal) over the timing window on the raw integers, per-frame clipped-mean pedestal; "
              "no smoothing, no clipping (unbiased)")


_VETO = ("X-ray pile-up: a cluster with area >= min_xray_area starting before the window and ending within "
         "min_s2_sep of its start or inside it (s2lib.signal.integration); flagged frames keep their area, fits skip them")


def _override(section: Any, given: Any) -> Any:
    """``section`` (a frozen config dataclass) with the fields of ``given`` (same type, or a mapping) applied."""
    if given is None:
        return section
    if isinstance(given, Mapping):
        return dataclasses.replace(section, **dict(given))
    return given


# --------------------------------------------------------------------------- the pass over the data
PILEUP_N_SIGMA = 2.0
"""A cluster starting earlier than ``t_S2,start − PILEUP_N_SIGMA·σ_start`` is not the recoil S2's head (2.3 % of
recoil S2s start earlier, Gaussian); with area ≥ min_xray_area it flags the frame as X-ray pile-up."""


def _pileup_end(t: Mapping[str, Any]) -> float | None:
    start, spread = t.get("t_s2_start_us"), t.get("t_s2_start_spread_us")
    if start is None or spread is None:
        return None
    return float(start) - PILEUP_N_SIGMA * float(spread)


def _xray_span(t: Mapping[str, Any]) -> float | None:
    """Expected duration of a whole X-ray S2 (µs) for the X-ray selection: the measured median duration of the
    set's recoil S2s (first to last photon: EL transit plus diffusion over the full drift gap, an upper bound
    for an X-ray, which drifts less), and never less than the EL transit time of the drift-velocity model."""
    vals = [float(v) for v in (t.get("s2_duration_us"), t.get("el_transit_model_us"))
            if v is not None and math.isfinite(float(v)) and float(v) > 0]
    return max(vals) if vals else None


def _xray_params(xc: Any) -> _eng.XrayParams:
    return _eng.XrayParams(threshold_mV=xc.bs_threshold, min_s1_sep_us=xc.min_s1_sep, min_s2_sep_us=xc.min_s2_sep,
                           min_area=xc.min_xray_area, max_sum_s1=xc.max_area_s1, max_sum_s2=xc.max_area_s2,
                           false_rate=xc.false_xray_rate)


@dataclass
class _Pass:
    """Results of one read of the data: per set a SetResult or a failure message."""

    results: dict[str, _eng.SetResult | str]
    timings: dict[str, dict[str, Any]]
    xray: _eng.XrayParams
    n_pedestal: int
    do_xray: bool
    seconds: float
    failed: dict[str, list[dict[str, Any]]] = field(default_factory=dict)   # sets without usable frames


def _run_pass(run: Run, *, do_recoil: bool, do_xray: bool, jobs: int, strict: bool, verbose: bool,
              integration_config: Any = None, xray_config: Any = None) -> _Pass:
    ic = _override(run.config.integration, integration_config)
    xc = _override(run.config.xray, xray_config)
    timings = _timings(run)
    xp = _xray_params(xc)
    plans, results = [], {}
    failed: dict[str, list[dict[str, Any]]] = {}
    for s in run.sets:
        t = timings[s.name]
        if t.get("status") != "ok":
            results[s.name] = t.get("message") or f"{s.name}: timing failed"
            continue
        plans.append(_eng.SetPlan(s.name, tuple(str(p) for p in s.files), float(t["t_s1_us"]),
                                  tuple(t["window_us"]), int(ic.n_pedestal), do_recoil, do_xray, xp,
                                  _pileup_end(t), _xray_span(t)))
    limits = [m for m in ((ic.max_frames if do_recoil else None), (xc.max_frames if do_xray else None))]
    max_frames = None if any(m is None for m in limits) else max(limits)
    started = time.perf_counter()
    executor = resolve_executor(run.config, jobs=jobs)
    caches = [SetCache(run.set_output_dir(p.name), raw_root=_raw(run)) for p in plans]
    for plan, res in zip(plans, _eng.run_sets(plans, jobs=jobs, strict=strict, max_frames=max_frames,
                                             progress=verbose, executor=executor, caches=caches)):
        if res.n_frames == 0:
            why = "; ".join(f"{f['file']}: {f['reason']}" for f in res.files_failed[:3]) or "no files"
            results[plan.name] = f"{plan.name}: no usable frames ({len(res.files_failed)} of {res.n_files} files failed: {why})"
            failed[plan.name] = res.files_failed
        else:
            results[plan.name] = res
    return _Pass(results, timings, xp, int(ic.n_pedestal), do_xray, time.perf_counter() - started, failed)


def _files_failed(res: Any) -> list[dict[str, Any]]:
    return res.files_failed if isinstance(res, _eng.SetResult) else []


def _store_xray(run: Run, info: SetInfo, res: _eng.SetResult | str, p: _Pass, limit: int | None) -> XRays:
    folder = run.set_output_dir(info.name)
    t = p.timings[info.name]
    params = {**dataclasses.asdict(p.xray), "smoothing": f"{_eng.XRAY_BLOCK_US * 1e3:g}-ns block averages",
              "xray_window_us": t.get("xray_window_us"), "t_s1_us": t.get("t_s1_us"), "n_pedestal": p.n_pedestal}
    if isinstance(res, str):
        doc = {"outcome": "failed", "message": res, "n_events": 0, "rejection_reasons": reason_counts([]),
               "params": params, "files_failed": p.failed.get(info.name, []), "files_partial": []}
        store_xrays(folder, np.empty(0), np.empty((0, 2), np.int64), doc, raw_root=_raw(run))
        return XRays(folder, np.empty(0), np.empty((0, 2), np.int64), doc)
    n = res.n_frames if limit is None else min(limit, res.n_frames)
    reason = res.xray_reason[:n]
    acc = reason == XRayReason.ACCEPTED
    areas, ids = res.xray_area[:n][acc], res.event_ids[:n][acc]
    doc = {"outcome": "ok", "message": "", "n_events": int(n), "rejection_reasons": reason_counts(reason),
           "params": params, "files_failed": res.files_failed, "n_files_failed": len(res.files_failed),
           "files_partial": res.files_partial,
           "n_files": res.n_files, "dt_us": res.dt_us, "method": "xray_classification"}
    store_xrays(folder, areas, ids, doc, raw_root=_raw(run))
    return XRays(folder, areas, ids, doc)


def run_xray_classification(run: Run, *, config: Any = None, jobs: int = 1, strict: bool = False,
                            verbose: bool = True) -> dict[str, XRays]:
    """Classify every frame of every set for an isolated X-ray S2 between S1 and the recoil S2 (seed API).

    Uses the timing of :func:`prepare_run` (X-ray window ``[t_S1, window start]``) and the configuration's
    ``pipeline.xray_classification`` (or ``config``: an ``XrayConfig`` or a mapping of its fields) for the
    threshold, separations, excessive-signal vetoes and minimum area. Stores ``xray_areas.npy``,
    ``xray_event_ids.npy`` and ``xray_results.json`` (``n_events``, ``n_accepted``, ``rejection_reasons``,
    ``params``, ``files_failed``) per set. Returns set name → ``store.XRays``.
    """
    _say(verbose, "[1/2] Classifying X-ray candidates between S1 and the recoil S2...")
    p = _run_pass(run, do_recoil=False, do_xray=True, jobs=jobs, strict=strict, verbose=verbose,
                  xray_config=config)
    _say(verbose, "[2/2] Storing X-ray results...")
    limit = _override(run.config.xray, config).max_frames
    out = {s.name: _store_xray(run, s, p.results[s.name], p, limit) for s in run.sets}
    for name, x in out.items():
        r = x.results
        _say(verbose, f"      {name}: " + (f"{x.areas.size} accepted of {r['n_events']} frames"
                                          if r["outcome"] == "ok" else f"FAILED: {r['message']}"))
    return out


def _s2areas(run: Run, info: SetInfo, res: _eng.SetResult | str, p: _Pass, limit: int | None) -> S2Areas:
    t = p.timings[info.name]
    params: dict[str, Any] = {"estimator": _ESTIMATOR, "window_us": t.get("window_us"), "n_pedestal": p.n_pedestal,
                              "t_s1_us": t.get("t_s1_us"), "t_s2_start_us": t.get("t_s2_start_us"),
                              "t_s2_end_us": t.get("t_s2_end_us"), "not_used": {
                                  "ma_window": "a moving average does not change a window sum",
                                  "bs_threshold": "clipping biases areas upward"}}
    folder = run.set_output_dir(info.name)
    if isinstance(res, str):
        params.update(status="failed", message=res, n_frames=0, files_failed=p.failed.get(info.name, []),
                      files_partial=[])
        return S2Areas(folder, np.empty(0), method="failed", params=params, event_ids=np.empty((0, 2), np.int64))
    n = res.n_frames if limit is None else min(limit, res.n_frames)
    flags = res.flags[:n] if res.flags.shape[0] == res.n_frames else None
    params.update(status="ok", message="", n_frames=int(n), n_files=res.n_files, dt_us=res.dt_us,
                  files_failed=res.files_failed, n_files_failed=len(res.files_failed),
                  files_partial=res.files_partial, n_files_partial=len(res.files_partial))
    if flags is not None:
        params.update(n_vetoed=int(np.count_nonzero(flags)), flag_bits=dict(_eng.FLAG_BITS),
                      veto=_VETO if p.do_xray else "none (X-ray classification not run in this pass)")
    sideband = res.sideband[:n] if res.sideband.shape[0] == res.n_frames else None
    return S2Areas(folder, res.areas[:n], method=RECOIL_METHOD, params=params, event_ids=res.event_ids[:n],
                   flags=flags, sideband=sideband)


def run_ion_integration(run: Run, flag_plot: bool = False, *, integration_config: Any = None, fit_config: Any = None,
                        jobs: int = 1, strict: bool = False, with_xrays: bool = False, fit: bool = True,
                        verbose: bool = True) -> dict[str, S2Areas]:
    """Recoil S2 area (mV·µs) of every frame of every set, fitted and stored (seed API).

    ``[1/3]`` integrates with the windows from ``timing.json`` (:mod:`s2lib.signal.integration`), ``[2/3]`` fits each
    set with ``fitting.fit_run_s2`` (``fit_config``: a FitConfig or mapping; default the run's
    ``pipeline.fitting``), ``[3/3]`` stores ``s2_areas.npy`` + ``s2_event_ids.npy`` + ``s2_results.json`` per
    set and, with ``flag_plot``, saves each set's histogram with its fit and the S2-vs-drift-field summary
    under ``figures/``. ``with_xrays`` classifies X-rays in the same read and stores them too; ``fit=False``
    skips ``[2/3]`` (areas stored without a fit, e.g. when a separate fitting stage follows).
    ``integration_config``: an ``IntegrationConfig`` or mapping (``n_pedestal``, ``max_frames``).

    Returns:
        set name → ``S2Areas`` (failed sets: ``method == "failed"``, ``params["message"]`` says why).
    """
    from s2lib.stats.fitting import FitConfig
    from s2lib.analysis.fit_stage import fit_run_s2

    _say(verbose, "[1/3] Integrating S2 areas using estimated windows from timing...")
    p = _run_pass(run, do_recoil=True, do_xray=with_xrays, jobs=jobs, strict=strict, verbose=verbose,
                  integration_config=integration_config)
    limit = _override(run.config.integration, integration_config).max_frames
    areas = {s.name: _s2areas(run, s, p.results[s.name], p, limit) for s in run.sets}
    good = {k: v for k, v in areas.items() if v.method != "failed"}
    for k, v in areas.items():
        if v.method == "failed":
            _say(verbose, f"      {k}: FAILED: {v.params['message']}")
    _say(verbose, "[2/3] Fitting S2 area histograms (fit_run_s2)..." if fit else "[2/3] Fitting skipped (fit=False)")
    cfg = fit_config if isinstance(fit_config, FitConfig) else FitConfig.from_mapping(
        fit_config if fit_config is not None else run.config.section("fitting"))
    sink = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with sink:
        pileup = xray_pileup_inputs(run, p) if good and fit else {}
        fitted = fit_run_s2(good, fit_config=cfg, flag_plot=False, xrays=pileup) if good and fit else {}
    out = {s.name: fitted.get(s.name, areas[s.name]) for s in run.sets}
    _say(verbose, "[3/3] Storing results and generating plots...")
    with group_commit():
        for s in run.sets:
            store_s2area(out[s.name], run.set_output_dir(s.name), raw_root=_raw(run))
            if with_xrays:
                _store_xray(run, s, p.results[s.name], p, run.config.xray.max_frames)
    if flag_plot and fitted:
        _plot_fits(run, fitted, cfg)
    return out


def xray_pileup_inputs(run: Run, p: _Pass | None = None) -> dict[str, tuple[float, float]]:
    """Per set the X-ray area (mean, σ) of its EL field (:func:`s2lib.stats.estimators.xray_by_el_field`), from the
    pass ``p`` or the stored ``xray_areas.npy``: the ``xrays`` argument of :func:`s2lib.analysis.fit_stage.fit_run_s2`."""
    from s2lib.stats.estimators import xray_by_el_field

    def areas(name: str) -> np.ndarray:
        res = p.results.get(name) if p is not None and p.do_xray else None
        if isinstance(res, _eng.SetResult):
            return res.xray_area[res.xray_accepted]
        try:
            return load_xrays(run.set_output_dir(name)).areas
        except DataError:
            return np.empty(0)
    return xray_by_el_field([(s.name, float(s.el_field_V_cm), areas(s.name)) for s in run.sets])


def _plot_fits(run: Run, fitted: Mapping[str, S2Areas], cfg: Any) -> None:
    from . import plotting

    figs = [plotting.plot_hist_fit(s2, bin_cuts=cfg.bin_cuts, title=name, out_dir=_figures(run),
                                   name=f"{name}_s2_hist_fit") for name, s2 in fitted.items()]
    figs.append(plotting.plot_s2_vs_drift(run, fitted, out_dir=_figures(run)))
    for fig in figs:
        plotting.close(fig)


@dataclass
class IntegrationSummary:
    """Outcome of :func:`run_integration_pass`: per-set rows (:func:`integration_summary_table`), totals,
    the sets that failed with their messages, the wall time of the whole pass (timing included, s) and of the
    timing estimate alone (0 when ``timing.json`` existed)."""

    run_id: str
    sets: list[dict[str, Any]]
    n_frames: int
    n_files_failed: int
    failed_sets: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    prepared: bool = False
    timing_seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """No set failed."""
        return not self.failed_sets


def run_integration_pass(run: Run, *, jobs: int = 1, strict: bool = False, flag_plot: bool = False, fit: bool = True,
                         verbose: bool = True) -> IntegrationSummary:
    """The combined stage of ``s2book run``: timing (``prepare_run`` when a set has no ``timing.json``), then X-ray
    classification and recoil integration in one read of the data, fits (unless ``fit=False``), artifacts and
    (``flag_plot``) figures. ``strict``: a corrupt file raises ``WfmError`` instead of being reported."""
    started = time.perf_counter()
    missing = [s.name for s in run.sets if not (run.set_output_dir(s.name) / "timing.json").is_file()]
    with group_commit():               # timing and pass artifacts reach the disk together, at the end
        if missing:
            prepare_run(run, jobs=jobs, flag_plot=flag_plot, verbose=verbose)
        timing_seconds = time.perf_counter() - started
        out = run_ion_integration(run, flag_plot, jobs=jobs, strict=strict, with_xrays=True, fit=fit,
                                  verbose=verbose)
    rows = integration_summary_table(run)
    failed = {k: v.params.get("message", "") for k, v in out.items() if v.method == "failed"}
    return IntegrationSummary(run.run_id, rows, sum(r["n_frames"] for r in rows),
                              sum(r["n_files_failed"] for r in rows), failed, time.perf_counter() - started,
                              bool(missing), timing_seconds if missing else 0.0)


# --------------------------------------------------------------------------- helpers for the notebooks
def integration_summary_table(run: Run) -> list[dict[str, Any]]:
    """One row per set from the stored artifacts: frames, files failed, frames vetoed as X-ray pile-up
    (``n_vetoed``; None for folders without flags), mean area, fit mean ± 1σ and ci95,
    fit success, X-ray counts per reason and accepted X-rays (None where an artifact is missing)."""
    rows = []
    for s in run.sets:
        row: dict[str, Any] = {"set_name": s.name, "drift_field_V_cm": s.drift_field_V_cm, "status": "missing",
                               "n_frames": 0, "n_files_failed": 0, "mean_area": None, "fit_mean": None,
                               "fit_mean_err": None, "fit_ci95": None, "fit_sigma": None, "fit_success": False,
                               "n_vetoed": None, "xray_accepted": None, "xray_reasons": None, "message": ""}
        try:
            s2 = load_s2area(run.set_output_dir(s.name))
            prm = s2.params
            fit = s2.fit_result
            row.update(status=prm.get("status", "ok"), message=prm.get("message", ""), n_frames=int(s2.areas.size),
                       n_files_failed=int(prm.get("n_files_failed", 0)), n_vetoed=s2.n_vetoed if
                       s2.flags is not None else None,
                       mean_area=float(np.mean(s2.areas)) if s2.areas.size else None, fit_mean=s2.mean,
                       fit_ci95=s2.ci95, fit_sigma=s2.sigma, fit_success=s2.fit_success,
                       fit_mean_err=getattr(fit, "mean_err", None) if fit is not None else None)
        except DataError as err:
            row["message"] = str(err)
        try:
            xr = load_xrays(run.set_output_dir(s.name))
            row.update(xray_accepted=int(xr.areas.size), xray_reasons=xr.results.get("rejection_reasons"))
        except DataError:
            pass
        rows.append(row)
    return rows


def validation_frames(run: Run, set_name: str, n: int = 4, seed: int = 0) -> dict[str, Any]:
    """A few random frames of a set for ``plotting.plot_waveform_validation``, from the files that can be read
    (bad files are passed over and named under ``"skipped"``): see :func:`s2lib.analysis.badfiles.validation_frames`."""
    from .badfiles import validation_frames as pick

    return pick(run, set_name, n=n, seed=seed)
