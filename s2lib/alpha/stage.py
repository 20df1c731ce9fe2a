"""The alpha analysis of a run: per-set alpha artifacts, one spectrum fit and calibration for the run, isotope
windows with expected purity/efficiency, per-frame tags per set and activity, written as artifacts.

Run-level artifacts (``output_dir``)::

    <run_id>_alpha_calibration.json   spectrum fit, linear and quadratic calibrations (the one used named),
                                      windows (u_SCA, source), expected purity/efficiency, tag counts per set
    <run_id>_alpha_activity.csv       set, isotope, t_start_s, t_end_s (s since the set's trigger_time_ref_s),
                                      live_s, counts, rate_hz, rate_err_hz (1σ)

Per set (``output_dir/<set>``): the ``artifact`` files plus ``alpha_isotope.npy`` (int8, index into the JSON's
``windows`` names, −1 untagged) and ``alpha_tag_reason.npy`` (int8, ``calibrate.REASON_NAMES``).
Windows are applied in u_SCA (the space of the stored values); the configured ``multi_isotope.isotope_ranges``
replace the computed ones when given.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from s2lib.config.config import RunConfig
from ..errors import DataError
from s2lib.config.runs import build_run
from s2lib.io.store import write_csv_atomic, write_json_atomic, write_npy_atomic
from .activity import activity_by_isotope
from .amplitude import AmplitudeParams
from .calibrate import REASON_NAMES, calibrate, tag_frames, window_quality, windows_from_fit, windows_from_ranges
from .isotopes import CHAIN
from .measure import measure_alpha_set
from .spectrum import fit_alpha_spectrum

__all__ = ["analyse_alpha_run", "ACTIVITY_COLUMNS"]

ACTIVITY_COLUMNS = ["set", "isotope", "t_start_s", "t_end_s", "live_s", "counts", "rate_hz", "rate_err_hz"]


def _params(cfg: RunConfig) -> AmplitudeParams:
    a = cfg.alpha
    return AmplitudeParams(savgol_window=a.savgol_window, peak_time_us=a.peak_time_us, peak_window_us=a.peak_window_us)


def analyse_alpha_run(config: RunConfig) -> dict[str, Any]:
    """Run the alpha chain over every set of the run; returns the run-level document (also written).

    Raises DataError when the run has no paired alpha data or a set's pairing fails (files and frames named)."""
    run = build_run(config)
    a_cfg = config.alpha
    sets = {}
    for info in run.sets:
        sets[info.name] = measure_alpha_set(info.path, run.set_output_dir(info.name), params=_params(config),
                                            alpha_channel=a_cfg.alpha_channel, pmt_channel=a_cfg.pmt_channel,
                                            tolerance_s=a_cfg.pairing_tolerance_us * 1e-6,
                                            raw_root=config.raw_data_path)
    clean = [s.sca[s.flags == 0] for s in sets.values()]
    if not sets or sum(c.size for c in clean) == 0:
        raise DataError(f"{config.raw_data_path}: no clean alpha frames in any set")
    fit = fit_alpha_spectrum(np.concatenate(clean), names=CHAIN, convention=a_cfg.reference_convention,
                             energy_range=a_cfg.energy_range, nbins=a_cfg.nbins)
    cals = {order: calibrate(fit, order) for order in (1, 2)}
    used = 2 if a_cfg.use_quadratic else 1
    if a_cfg.isotope_ranges is not None:
        windows = windows_from_ranges(a_cfg.isotope_ranges)
    else:
        windows = windows_from_fit(fit, a_cfg.n_sigma)
    quality = window_quality(fit, windows)
    rows: list[dict[str, Any]] = []
    tag_counts: dict[str, dict[str, int]] = {}
    for name, s in sets.items():
        label, reason = tag_frames(s.sca, s.flags, windows)
        folder = run.set_output_dir(name)
        write_npy_atomic(folder / "alpha_isotope.npy", label.astype(np.int8), raw_root=config.raw_data_path)
        write_npy_atomic(folder / "alpha_tag_reason.npy", reason.astype(np.int8), raw_root=config.raw_data_path)
        counts = {n: int(np.count_nonzero(label == i)) for i, n in enumerate(windows.names)}
        counts.update({f"none: {REASON_NAMES[r]}": int(np.count_nonzero(reason == r)) for r in REASON_NAMES if r})
        tag_counts[name] = counts
        act = activity_by_isotope(s.trigger_s, s.event_ids, label, windows.names)
        for b in range(act.live_s.size):
            for k, iso in enumerate(windows.names):
                rows.append({"set": name, "isotope": iso, "t_start_s": act.t_start_s[b], "t_end_s": act.t_end_s[b],
                             "live_s": act.live_s[b], "counts": int(act.counts[b, k]), "rate_hz": act.rate_hz[b, k],
                             "rate_err_hz": act.rate_err_hz[b, k]})
    doc = {"schema_version": 1, "run_id": config.run_id, "units": {"sca": "u_SCA (peak V / 1.058)", "energy": "MeV"},
           "reference_convention": a_cfg.reference_convention, "spectrum_fit": fit.to_dict(),
           "calibrations": {f"order_{o}": c.to_dict() for o, c in cals.items()}, "calibration_used": f"order_{used}",
           "windows": windows.to_dict(), "window_quality": quality,
           "windows_MeV": {n: cals[used].energy_MeV(np.array([lo, hi])).tolist()
                           for n, lo, hi in zip(windows.names, windows.low, windows.high)},
           "tag_counts": tag_counts, "sets": list(sets)}
    out = run.output_dir
    write_json_atomic(out / f"{config.run_id}_alpha_calibration.json", doc, raw_root=config.raw_data_path)
    write_csv_atomic(out / f"{config.run_id}_alpha_activity.csv", rows, ACTIVITY_COLUMNS,
                     raw_root=config.raw_data_path)
    return doc
