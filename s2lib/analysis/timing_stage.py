"""The timing stage of the seed API: every set's S1 time and recoil S2 window, estimated with progress, stored
(``<set>/timing.json``, ``run_info.json``, the per-frame samples) and read back as tables for the notebooks.

    run = prepare_run(run)            # [1/4]..[4/4]: S1/S2 timing -> <set>/timing.json, run_info.json
    rows = load_timing_table(run)     # one row per set

It also holds the small progress/output helpers the stages of :mod:`s2lib.analysis.pipeline` share (``_say``,
``_raw``, ``_figures``). Split from :mod:`s2lib.analysis.pipeline` (issue 10); the estimate itself is in
:mod:`s2lib.signal.timing`.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from s2lib.signal import integration as _eng
from s2lib.errors import DataError
from s2lib.config.runs import Run, SetInfo
from s2lib.io.store import load_timing, store_timing, write_json_atomic
from s2lib.io.atomic import group_commit
from s2lib.signal.timing import estimate_set_timing, load_timing_samples, store_timing_samples

__all__ = ["prepare_run", "load_timing_table", "timing_samples"]


def _say(verbose: bool, text: str) -> None:
    if verbose:
        print(text, flush=True)


def _raw(run: Run) -> Any:
    return run.config.raw_data_path


def _figures(run: Run) -> Any:
    return run.output_dir / "figures"


def _failed_timing(info: SetInfo, message: str) -> dict[str, Any]:
    return {"set_name": info.name, "status": "failed", "message": message, "files_failed": []}


def _estimate(info: SetInfo, kw: dict[str, Any]) -> dict[str, Any]:
    if not info.ok:
        return _failed_timing(info, f"{info.name}: cannot be processed: {'; '.join(info.issues)}")
    try:
        return estimate_set_timing(info, **kw)
    except DataError as err:
        return _failed_timing(info, str(err))


def prepare_run(run: Run, *, max_frames_s1: int | None = None, max_frames_s2: int | None = None,
                threshold_s1: float | None = None, threshold_s2: float | None = None,
                n_sigma_start: float | None = None, n_sigma_end: float | None = None,
                flag_plot: bool = False, jobs: int = 1, verbose: bool = True) -> Run:
    """Estimate every set's S1 time and recoil S2 window and store them (seed API; see :mod:`s2lib.signal.timing`).

    Args:
        run: the run (``runs.build_run``).
        max_frames_s1, max_frames_s2: frames sampled per set for S1 / S2 (None: ``pipeline.preparation``).
        threshold_s1, threshold_s2: detection thresholds, mV (None: from the configuration).
        n_sigma_start, n_sigma_end: window = [start − n_sigma_start·σ_start, end + n_sigma_end·σ_end]
            (None: ``pipeline.integration.integration_config``, default 4, which contains ≥ 98 % of the
            simulated recoil S2s; the lab's 1.0/0.5 cut their edges).
        flag_plot: save the timing-vs-field figure and each set's S1 / S2-start histograms.
        jobs: sets estimated in parallel processes.
        verbose: print the ``[i/4]`` lines and a progress bar.

    Returns:
        ``run`` itself (frozen); the timing is on disk: ``<set>/timing.json`` and ``run_info.json``.
    """
    from tqdm import tqdm   # plain text bar on stderr: tqdm.auto warns in kernels without ipywidgets

    cfg = run.config
    prep = cfg.preparation
    kw = dict(el_gap_cm=cfg.experiment.el_gap, n_pedestal=cfg.integration.n_pedestal,
              max_frames_s1=prep.max_frames_s1 if max_frames_s1 is None else int(max_frames_s1),
              max_frames_s2=prep.max_frames_s2 if max_frames_s2 is None else int(max_frames_s2),
              threshold_s1=prep.threshold_s1 if threshold_s1 is None else float(threshold_s1),
              threshold_s2=prep.threshold_s2 if threshold_s2 is None else float(threshold_s2),
              s2_duration_cuts=tuple(prep.s2_duration_cuts),
              n_sigma_start=float(cfg.integration.n_sigma_start if n_sigma_start is None else n_sigma_start),
              n_sigma_end=float(cfg.integration.n_sigma_end if n_sigma_end is None else n_sigma_end))
    _say(verbose, f"[1/4] Gas density: {run.gas_density_cm3:.3e} cm⁻³")
    _say(verbose, f"[2/4] Loaded {len(run.sets)} sets")
    _say(verbose, "[3/4] Preparing sets (S1 estimation, fields, transport)...")
    for s in run.sets:
        _say(verbose, f"      {s.name}: E_drift = {s.drift_field_V_cm:.1f} V/cm, E_EL = {s.el_field_V_cm:.0f} V/cm, "
                      f"v_d = {s.drift_velocity_mm_us:.3f} mm/µs, t_drift = {s.drift_time_us:.2f} µs, "
                      f"{s.n_files} files" + (f" [{'; '.join(s.issues)}]" if s.issues else ""))
    _say(verbose, "[4/4] Estimating S2 timing windows...")
    docs: dict[str, dict[str, Any]] = {}
    if jobs > 1 and len(run.sets) > 1:
        pool = _eng.worker_pool(int(jobs))
        futures = {s.name: pool.submit(_estimate, s, kw) for s in run.sets}
        for name, fut in tqdm(futures.items(), desc="Timing", unit="set", disable=not verbose):
            docs[name] = fut.result()
    else:
        with tqdm(total=sum(s.n_files for s in run.sets), desc="Timing", unit="file", disable=not verbose,
                  dynamic_ncols=True) as bar:
            for s in run.sets:
                docs[s.name] = _estimate(s, {**kw, "progress": bar.update})
    samples = {k: d.pop("samples", None) for k, d in docs.items()}
    with group_commit():
        _store_timings(run, docs, samples, verbose)
    if flag_plot:
        _plot_timing(run, docs, samples)
    return run


def _store_timings(run: Run, docs: dict[str, dict[str, Any]], samples: Mapping[str, Any], verbose: bool) -> None:
    for s in run.sets:
        d = docs[s.name]
        store_timing_samples(run.set_output_dir(s.name), samples[s.name], raw_root=_raw(run))
        store_timing(run.set_output_dir(s.name), d, raw_root=_raw(run))
        if d["status"] == "ok":
            w = d["window_us"]
            _say(verbose, f"      {s.name}: t_S1 = {d['t_s1_us']:.3f} ± {d['t_s1_spread_us']:.3f} µs, S2 "
                          f"{d['t_s2_start_us']:.2f}..{d['t_s2_end_us']:.2f} µs (σ {d['t_s2_start_spread_us']:.2f}/"
                          f"{d['t_s2_end_spread_us']:.2f}), window [{w[0]:.2f}, {w[1]:.2f}] µs, "
                          f"{d['n_s2']}/{d['n_frames_s2']} frames")
        else:
            _say(verbose, f"      {s.name}: TIMING FAILED: {d['message']}")
    info = run.run_info()
    info["timing"] = docs
    write_json_atomic(run.output_dir / "run_info.json", info, raw_root=_raw(run))


def _plot_timing(run: Run, docs: Mapping[str, dict[str, Any]], samples: Mapping[str, Any]) -> None:
    from . import plotting

    ok = [s for s in run.sets if docs[s.name]["status"] == "ok"]
    if not ok:
        return
    col = {k: [docs[s.name][k] for s in ok] for k in ("t_s1_us", "t_s1_spread_us", "t_s2_start_us",
                                                        "t_s2_start_spread_us", "t_s2_end_us", "t_s2_end_spread_us")}
    figs = [plotting.plot_timing_vs_field([s.drift_field_V_cm for s in ok], *col.values(), title=f"Run {run.run_id}",
                                          out_dir=_figures(run), name=f"{run.run_id}_timing_vs_field")]
    for s in ok:
        d = docs[s.name]
        for key, label in (("t_s1_us", "S1"), ("t_s2_start_us", "S2 start")):
            spread = d[key.replace("_us", "_spread_us")]
            figs.append(plotting.plot_timing_hist(samples[s.name][key], d[key], spread, label=label, title=s.name,
                                                  out_dir=_figures(run),
                                                  name=f"{s.name}_{label.replace(' ', '_')}_time_hist"))
    for fig in figs:
        plotting.close(fig)


def _timings(run: Run) -> dict[str, dict[str, Any]]:
    out = {}
    for s in run.sets:
        try:
            out[s.name] = load_timing(run.set_output_dir(s.name))
        except DataError as err:
            out[s.name] = _failed_timing(s, f"{s.name}: no timing ({err}); run prepare_run first")
    return out


def load_timing_table(run: Run) -> list[dict[str, Any]]:
    """One row per set from ``timing.json``: status, message, fields, S1 time, S2 start/end/duration with spreads,
    integration and X-ray windows (µs), frames used."""
    keys = ("status", "message", "t_s1_us", "t_s1_spread_us", "t_s2_start_us", "t_s2_start_spread_us", "t_s2_end_us",
            "t_s2_end_spread_us", "s2_duration_us", "s2_duration_spread_us", "window_us", "xray_window_us", "n_s1",
            "n_s2", "n_frames_s2", "drift_time_model_us", "s2_start_model_offset_us")
    timings = _timings(run)
    return [{"set_name": s.name, "drift_field_V_cm": s.drift_field_V_cm, **{k: timings[s.name].get(k) for k in keys}}
            for s in run.sets]


def timing_samples(run: Run, set_name: str) -> dict[str, np.ndarray]:
    """The per-frame times behind a set's timing (µs): ``{"t_s1_us", "t_s2_start_us", "t_s2_end_us"}`` (for
    ``plotting.plot_timing_hist``; empty arrays when none were stored)."""
    return load_timing_samples(run.set_output_dir(set_name))
