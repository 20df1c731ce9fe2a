"""Synthetic runs with known truth: real WFM#003 FastFrame files in lab-style set folders, truth and a run.yaml.

``simulate_run(outdir, profile="tiny"|"demo"|"realistic", seed=1)`` writes::

    OUTDIR/raw/FieldScan_Gate0050_Anode1950/SIM_20251009_Gate0050_Anode1950_P1_48Wfm.wfm ...
    OUTDIR/truth/FieldScan_Gate0050_Anode1950.npz     per-event truth (outside the raw folder)
    OUTDIR/truth.json                                 constants, laws, per-set model expectations and realised
                                                      sample means (``definitions``: which quantity each is)
    OUTDIR/run.yaml                                   ready configuration (paths relative to OUTDIR)

The signal model lives in :mod:`s2lib.sim._sim_model`. Every parameter of a :class:`SimulationProfile` carries its unit
and provenance: "domain.md" = ``../shared/notes/domain.md`` (the lab's values), "[estimate]" = a plausible choice of
ours, "[ext]" = outside knowledge. Files are generated one by one (a realistic file is 12 MB of int8 and ~50 MB of
float32 work space) from seeds keyed by (seed, gate, anode, file index), so a file does not depend on the
generation order or on which other sets exist.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from s2lib.physics import physics
from s2lib import __version__
from . import _sim_model as M
from . import _sim_render as R
from . import _sim_truth as T
from ._sim_truth import TRUTH_DEFINITIONS
from .profile import PROFILES, STANDARD_GATES_V, SimulationProfile  # noqa: F401 (re-exported)
from s2lib.errors import DataError
from s2lib.io.store import json_sanitize, write_bytes_atomic, write_text_atomic

__all__ = ["SimulationProfile", "PROFILES", "STANDARD_GATES_V", "TRUTH_FIELDS", "TRUTH_DEFINITIONS", "resolve_profile", "set_models",
           "file_name", "frame_layout", "truth_document", "run_config_dict", "run_yaml_text", "simulate_run"]

TRUTH_FIELDS = M.TRUTH_FIELDS
"""Per-event truth arrays stored in ``OUTDIR/truth/<set>.npz`` (name → meaning)."""


_ALIASES = {"set_gates": "set_gates_V", "gates": "set_gates_V"}


def resolve_profile(profile: str | SimulationProfile, **overrides: Any) -> SimulationProfile:
    """A profile by name (or instance) with validated overrides; unknown names raise DataError naming them.

    Besides the fields of :class:`SimulationProfile` (and the aliases ``set_gates``, ``n_sets``) two physics
    aliases are accepted: ``drift_fields_V_cm`` (a list; gates = round(E·drift_gap) V, so the realised field is
    within 0.5 V / drift gap of the request) and ``el_field_V_cm`` (el_voltage_V = round(E·el_gap) V). With
    ``auto_frame`` the frame start and length are recomputed last (:func:`frame_layout`).
    """
    if isinstance(profile, SimulationProfile):
        base = profile
    elif profile in PROFILES:
        base = PROFILES[profile]
    else:
        raise DataError(f"unknown simulation profile {profile!r}; known: {', '.join(PROFILES)}")
    names = {f.name for f in dataclasses.fields(SimulationProfile)}
    changes: dict[str, Any] = {}
    overrides = dict(overrides)
    n_sets = overrides.pop("n_sets", None)
    drift_fields = overrides.pop("drift_fields_V_cm", None)
    el_field = overrides.pop("el_field_V_cm", None)
    if drift_fields is not None and ("set_gates_V" in overrides or "set_gates" in overrides or n_sets is not None):
        raise DataError("give either drift_fields_V_cm or set_gates / n_sets, not both")
    if el_field is not None and "el_voltage_V" in overrides:
        raise DataError("give either el_field_V_cm or el_voltage_V, not both")
    for key, value in overrides.items():
        target = _ALIASES.get(key, key)
        if target not in names or target == "name":
            raise DataError(f"unknown simulation parameter {key!r}; known: {', '.join(sorted(names - {'name'}))}, "
                            "n_sets, set_gates, drift_fields_V_cm, el_field_V_cm")
        current = getattr(base, target)
        try:
            if isinstance(current, tuple):
                value = tuple(int(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
            elif isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int):
                if float(value) != int(value):
                    raise ValueError("not an integer")
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            elif isinstance(current, str):
                value = str(value)
        except (TypeError, ValueError) as err:
            raise DataError(f"simulation parameter {key}: cannot use {value!r} ({err})") from None
        changes[target] = value
    if n_sets is not None:
        n = int(n_sets)
        if n < 1:
            raise DataError(f"simulation parameter n_sets must be >= 1, got {n_sets}")
        if "set_gates_V" in changes:
            if n > len(changes["set_gates_V"]):
                raise DataError(f"n_sets = {n} but only {len(changes['set_gates_V'])} set_gates given")
            changes["set_gates_V"] = changes["set_gates_V"][:n]
        elif n != len(base.set_gates_V):
            if n > len(STANDARD_GATES_V):
                raise DataError(f"n_sets = {n}: at most {len(STANDARD_GATES_V)} without explicit set_gates")
            picks = np.unique(np.round(np.linspace(0, len(STANDARD_GATES_V) - 1, n)).astype(int))
            changes["set_gates_V"] = tuple(STANDARD_GATES_V[i] for i in picks)
    resolved = dataclasses.replace(base, **changes)
    extra: dict[str, Any] = {}
    if drift_fields is not None:
        fields = [float(v) for v in (drift_fields if isinstance(drift_fields, (list, tuple)) else [drift_fields])]
        if not fields or any(not f > 0 for f in fields):
            raise DataError(f"simulation parameter drift_fields_V_cm must be positive fields, got {drift_fields}")
        extra["set_gates_V"] = tuple(int(round(f * resolved.drift_gap_cm)) for f in fields)
    if el_field is not None:
        try:
            extra["el_voltage_V"] = float(round(float(el_field) * resolved.el_gap_cm))
        except (TypeError, ValueError) as err:
            raise DataError(f"simulation parameter el_field_V_cm: cannot use {el_field!r} ({err})") from None
    if extra:
        resolved = dataclasses.replace(resolved, **extra)
    resolved.validate()
    if resolved.auto_frame:
        t0_us, n_points = frame_layout(resolved)
        resolved = dataclasses.replace(resolved, t0_us=t0_us, n_points=n_points)
        resolved.validate()
    return resolved


def frame_layout(profile: SimulationProfile) -> tuple[float, int]:
    """Frame start (µs vs trigger) and samples per frame that hold exactly what the analysis needs.

    Start: ``pre_s1_us`` before the earliest S1 (mean S1 time − 4 jitter σ), a signal-free pedestal region.
    End: ``post_s2_us`` after the latest recoil S2 of the run, i.e. the slowest set's expected window end
    (``SetModel.s2_window_us``, which already holds +2σ_t of diffusion) + 2σ_t more + 4 S1-jitter σ.
    Used when ``auto_frame`` is set (closure tests: big sets in short frames, any sampling rate).
    """
    start = profile.s1_time_us - 4.0 * profile.s1_jitter_us - profile.pre_s1_us
    end = max(m.s2_window_us[1] + 2.0 * m.diffusion_sigma_us for m in set_models(profile))
    end += 4.0 * profile.s1_jitter_us + profile.post_s2_us
    return round(start, 6), int(math.ceil((end - start) * profile.sampling_rate_Hz * 1e-6))



def set_models(profile: SimulationProfile) -> list[M.SetModel]:
    """Physics of every set of the profile, ordered by drift field (ascending gate voltage)."""
    return [M.build_set_model(profile, g, g + profile.el_voltage_V) for g in sorted(profile.set_gates_V)]


# ----------------------------------------------------------------------------------------------- helpers
def _file_stride_s(p: SimulationProfile) -> float:
    return 1.5 * p.frames_per_file / p.trigger_rate_Hz + 2.0


def _set_start_s(p: SimulationProfile, set_index: int) -> float:
    return float(p.gmt_start_s + set_index * (p.n_files * _file_stride_s(p) + 600.0))


def _timestamps(p: SimulationProfile, set_index: int, file_index: int, seed: int, setm: M.SetModel
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame GMT seconds, fractions and TT offsets (monotonic over the files of a set and over the sets)."""
    rng = np.random.default_rng(R.file_seed_sequence(seed, setm.gate_V, setm.anode_V, file_index, 2))
    gaps = (0.5 + rng.random(p.frames_per_file)) / p.trigger_rate_Hz
    t = _set_start_s(p, set_index) + file_index * _file_stride_s(p) + np.cumsum(gaps)
    sec = np.floor(t)
    return sec.astype(np.int64), t - sec, rng.random(p.frames_per_file)


def file_name(p: SimulationProfile, setm: M.SetModel, set_index: int, file_index: int) -> str:
    """Lab-style file name ``SIM_<YYYYMMDD>_Gate0050_Anode1950_P2_<seq>Wfm.wfm`` (seq from 1).

    As in the lab's RUN18 files (``..._P2_29Wfm_Ch1.wfm``, domain.md 2.1) the number before ``Wfm`` is the file
    sequence number, so the lab's own parser would read it too.
    """
    date = _dt.datetime.fromtimestamp(_set_start_s(p, set_index), tz=_dt.timezone.utc).strftime("%Y%m%d")
    return (f"{p.run_prefix}_{date}_Gate{int(setm.gate_V):04d}_Anode{int(setm.anode_V):04d}"
            f"_P2_{file_index + 1}Wfm.wfm")


def _prepare_outdir(outdir: Path, overwrite: bool) -> None:
    if outdir.exists() and not outdir.is_dir():
        raise DataError(f"{outdir}: exists and is not a folder")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not overwrite:
            raise DataError(f"{outdir}: folder is not empty; choose an empty OUTDIR or overwrite (--force)")
        for sub in ("raw", "truth"):
            target = outdir / sub
            if target.exists():
                if not (outdir / "truth.json").is_file():
                    raise DataError(f"{outdir}: refusing to delete {sub}/ of a folder that is not a simulated run "
                                    "(no truth.json)")
                shutil.rmtree(target)
    outdir.mkdir(parents=True, exist_ok=True)


def simulate_run(outdir: str | os.PathLike[str], *, profile: str | SimulationProfile = "tiny", seed: int = 1,
                 overwrite: bool = False, progress: bool = True, **overrides: Any) -> Path:
    """Write a synthetic run to ``outdir`` and return the folder.

    Args:
        outdir: destination; must be empty or missing unless ``overwrite`` (then the previous simulation's
            ``raw/`` and ``truth/`` are replaced).
        profile: ``"tiny"``, ``"demo"``, ``"realistic"`` or a :class:`SimulationProfile`.
        seed: random seed; the same (seed, profile, overrides) gives byte-identical files.
        overwrite: allow a non-empty ``outdir``.
        progress: print a progress bar per set (stderr) and a summary (stdout).
        **overrides: any :class:`SimulationProfile` field, plus ``n_sets`` and ``set_gates``.

    Raises:
        DataError: non-empty ``outdir`` without overwrite, unknown or impossible parameter.
    """
    from s2lib.io.wfm import write_wfm

    prof = resolve_profile(profile, **overrides)
    seed = int(seed)
    if seed < 0:
        raise DataError(f"seed must be >= 0, got {seed}")
    out = Path(outdir)
    _prepare_outdir(out, overwrite)
    raw_root, truth_root = out / "raw", out / "truth"
    raw_root.mkdir(exist_ok=True)
    truth_root.mkdir(exist_ok=True)
    models = set_models(prof)
    started = time.perf_counter()
    total_bytes = 0
    set_summaries: list[dict[str, Any]] = []
    xray_areas: dict[str, np.ndarray] = {}
    for set_index, setm in enumerate(models):
        set_dir = raw_root / setm.name
        set_dir.mkdir(exist_ok=True)
        per_file: list[dict[str, np.ndarray]] = []
        files = range(prof.n_files)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=prof.n_files, desc=f"[{set_index + 1}/{len(models)}] {setm.name}", unit="file",
                       file=sys.stderr, leave=True)
        for file_index in files:
            raw, events = R.simulate_file(prof, setm, seed, file_index)
            gsec, gfrac, tt = _timestamps(prof, set_index, file_index, seed, setm)
            path = set_dir / file_name(prof, setm, set_index, file_index)
            write_wfm(path, raw, dt_s=1.0 / prof.sampling_rate_Hz, t0_s=prof.t0_us * 1e-6,
                      scale_V=prof.lsb_mV * 1e-3, offset_V=prof.offset_mV * 1e-3, gmt_sec=gsec,
                      gmt_fract=gfrac, tt_offsets=tt, pre_points=prof.pre_points, post_points=prof.post_points,
                      label=f"{prof.run_prefix} Ch1"[:31])
            total_bytes += path.stat().st_size
            rec = dict(events.truth)
            rec["file_index"] = np.full(events.n_frames, file_index, dtype=np.int64)
            rec["frame_index"] = np.arange(events.n_frames, dtype=np.int64)
            per_file.append(rec)
            del raw, events
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        arrays = {key: np.concatenate([rec[key] for rec in per_file]) for key in TRUTH_FIELDS}
        arrays["event_type_names"] = np.array(M.EVENT_TYPES)
        xray_areas[setm.name] = arrays["xray_area_mV_us"][arrays["has_xray"]]
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        write_bytes_atomic(truth_root / f"{setm.name}.npz", buf.getvalue())
        set_summaries.append(M.summarise_truth(arrays))
    elapsed = time.perf_counter() - started
    truth = truth_document(prof, seed, models, set_summaries, __version__, xray_areas)
    truth["generation"] = {"seconds": round(elapsed, 3), "bytes_written": int(total_bytes)}
    write_text_atomic(out / "truth.json", json.dumps(json_sanitize(truth), indent=2, allow_nan=False) + "\n")
    write_text_atomic(out / "run.yaml", run_yaml_text(prof, seed, models))
    if progress:
        n_frames = sum(s["n_frames"] for s in set_summaries)
        n_x = sum(s["n_xray"] for s in set_summaries)
        print(f"simulated {prof.name} run (seed {seed}): {len(models)} sets, {len(models) * prof.n_files} files, "
              f"{n_frames} frames ({n_x} with X-ray), {total_bytes / 1e6:.1f} MB in {elapsed:.1f} s -> {out}")
    return out


def truth_document(p: SimulationProfile, seed: int, models: list[M.SetModel], summaries: list[dict[str, Any]],
                   version: str, xray_areas: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The ``truth.json`` document (see :func:`s2lib.sim._sim_truth.truth_document`; keys defined in
    ``TRUTH_DEFINITIONS``)."""
    files = [[file_name(p, setm, k, i) for i in range(p.n_files)] for k, setm in enumerate(models)]
    return T.truth_document(p, seed, models, summaries, version, files, xray_areas)


def run_config_dict(p: SimulationProfile, seed: int, models: list[M.SetModel]) -> dict[str, Any]:
    """The run configuration: only the keys the lab's run files carry, with the lab's values (domain.md 5.3:
    the template's preparation, integration and X-ray keys; runs use s2_duration_cuts [1, 35]), so a
    simulated run is analysed with exactly the defaults a user gets. Like the lab's files it has no ``fit_config``
    section: the recoil and X-ray estimators run with ranges from the data (s2lib.stats.estimators)."""
    return {
        "run_id": f"{p.run_prefix}_{p.name.upper()}",
        "description": f"Synthetic {p.name} run (s2lib.sim.simulate, seed {seed}): {len(models)} sets, "
                       f"{p.n_files} files x {p.frames_per_file} frames, {p.sampling_rate_Hz / 1e9:g} GS/s",
        "data": {"raw_data_path": "raw", "output_base": "processed"},
        "experiment": {"target_isotope": physics.normalise_isotope(p.target_isotope), "pressure": p.pressure_bar,
                       "temperature": p.temperature_K, "drift_gap": p.drift_gap_cm, "el_gap": p.el_gap_cm,
                       "W_value": p.W_eV, "E_gamma_xray": p.E_xray_eV},
        "pipeline": {
            # the lab template's keys with the lab's values (domain.md 5.3); dt and exclude_index are left
            # out: deprecated (the sampling interval comes from each file's header), they only warn
            # max_frames_s1/s2: s2book's bounded timing sample (the lab wrote 1000; s2lib.signal.timing_plan.sample_plan)
            "preparation": {"max_frames_s1": 200, "max_frames_s2": 200, "threshold_s1": 1.0, "threshold_s2": 0.8,
                            "s2_duration_cuts": [1.0, 35.0]},
            "integration": {"max_frames": None,
                            "integration_config": {"n_pedestal": 100, "ma_window": 9, "bs_threshold": 0.03}},
            "xray_classification": {"max_frames": None, "bs_threshold": 0.5, "max_area_s1": 1.0e5,
                                    "max_area_s2": 1.0e5, "min_xray_area": 0.0, "min_s2_sep": 1.0,
                                    "min_s1_sep": 0.5, "n_pedestal": 200, "ma_window": 10},
        },
    }


def run_yaml_text(p: SimulationProfile, seed: int, models: list[M.SetModel]) -> str:
    """``run.yaml`` text: a comment header and the :func:`run_config_dict` mapping."""
    head = (f"# Synthetic run written by s2lib.sim.simulate (profile {p.name}, seed {seed}).\n"
            "# Paths are relative to this file. The generator's truth is in truth.json and truth/*.npz.\n")
    return head + yaml.safe_dump(run_config_dict(p, seed, models), sort_keys=False, default_flow_style=None)
