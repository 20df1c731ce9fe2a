"""Multi-isotope (alpha-tagged) synthetic runs: paired silicon and PMT files whose recoil S2 follows each frame's
isotope, with per-frame truth.

``simulate_alpha_run(outdir, profile="tiny", layout="old"|"new", seed=1, **overrides)`` writes::

    OUTDIR/raw/FieldScan_Gate0140_Anode2040/SIM_<date>_Gate0140_Anode2040_P2_1Wfm_Ch1.wfm + ..._Ch4.wfm ...
    OUTDIR/truth/<set>.npz           PMT truth per frame (``simulate.TRUTH_FIELDS``) + ``isotope`` (index into
                                     ``isotope_names``), ``recoil_energy_keV``, ``alpha_energy_MeV``
    OUTDIR/truth/<set>_alpha.npz     the silicon channel's truth (``alpha.simulate.simulate_alpha_set``)
    OUTDIR/truth.json                the single-isotope document (all frames) + ``alpha``: per isotope and set
                                     the model expectations and realised sample means (``ALPHA_TRUTH_DEFINITIONS``)
    OUTDIR/run.yaml                  the simulator's run.yaml + ``multi_isotope: {enabled: true}``

Physics per frame (the same chain as single-isotope runs, :mod:`s2lib.sim._sim_model`): the silicon channel draws the
isotope (``alpha.simulate``); the daughter recoil gets E_R = Q·4/A_parent of that isotope
(``alpha.isotopes.recoil_energy_keV``), N_exp = E_R/W, r from Thomas–Imel at the set's drift field with the
profile's S and an energy-dependent a_iso = a·(E_R/E_R,Th228)^k, k = ``recomb_energy_exponent`` ("[estimate]", a
closure knob so the isotopes' 1 − r differ; the dependence of recombination on recoil energy is what these runs
measure, not something we know), N_e = N_exp·(1 − r). Frames of each isotope are drawn with
``_sim_model.draw_file_events`` on that isotope's set model and merged in frame order; the PMT file of each
FastFrame file carries the silicon file's per-frame trigger times. X-rays, background frames, S1, noise and
digitisation are those of the profile.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from s2lib import __version__
from s2lib.alpha.isotopes import recoil_energy_keV
from s2lib.alpha.simulate import AlphaSimConfig, alpha_file_names, simulate_alpha_set
from s2lib.errors import DataError
from s2lib.io.store import json_sanitize, write_bytes_atomic, write_text_atomic
from s2lib.physics import physics

from . import _sim_model as M
from . import _sim_render as R
from . import _sim_truth as T
from .profile import SimulationProfile
from .simulate import _prepare_outdir, _set_start_s, resolve_profile, run_config_dict, set_models

__all__ = ["RECOMB_ENERGY_EXPONENT", "ALPHA_TRUTH_DEFINITIONS", "isotope_set_model", "draw_tagged_events",
           "simulate_alpha_run"]

RECOMB_ENERGY_EXPONENT = 0.5
"""k of a_iso = a·(E_R/E_R,Th228)^k [estimate: a closure-test knob, module docstring]."""
_E_REF_KEV = recoil_energy_keV("Th228")

ALPHA_TRUTH_DEFINITIONS = {
    "recoil_energy_keV": "daughter recoil energy Q·4/A_parent of the isotope (alpha.isotopes.recoil_energy_keV)",
    "N_exp": "E_R / W, electrons before recombination",
    "recomb_a_V_cm": "Thomas–Imel a of the isotope: a·(E_R/E_R,Th228)^k",
    "one_minus_r": "model 1 − r of the isotope at the set's drift field (Thomas–Imel with S)",
    "recoil_mean_area_mV_us": "model expectation g_S2·N_exp·(1 − r) of the isotope's recoil S2 area, mV·µs",
    "recoil_sample_mean_area_mV_us": "realised mean main-S2 photoelectron area of the recoil frames whose silicon "
                                     "frame is this isotope (all of them, whatever the tagging), mV·µs; _err σ/√n",
    "one_minus_r_realised": "recoil_sample_mean_area / g_S2_realised(EL) / N_exp (as the single-isotope truth)",
    "n_frames": "frames of the isotope (truth)", "n_recoil": "recoil frames of the isotope (truth)",
}


def isotope_set_model(profile: SimulationProfile, setm: M.SetModel, isotope: str,
                      exponent: float = RECOMB_ENERGY_EXPONENT) -> M.SetModel:
    """``setm`` with the recoil physics of ``isotope``'s daughter: n_exp, recombination, n_e_mean, recoil mean."""
    e_r = recoil_energy_keV(isotope)
    a = profile.recomb_a_V_cm * (e_r / _E_REF_KEV) ** exponent
    r = float(physics.thomas_imel_recombination(setm.drift_field_V_cm, a, profile.recomb_S))
    n_exp = float(physics.expected_electrons(e_r * 1e3, profile.W_eV))
    return dataclasses.replace(setm, recombination=r, n_exp=n_exp, n_e_mean=n_exp * (1 - r),
                               recoil_mean_area_mV_us=setm.g_s2_mV_us * n_exp * (1 - r))


def draw_tagged_events(profile: SimulationProfile, models: dict[str, M.SetModel], isotope: np.ndarray,
                       rng: np.random.Generator) -> M.FileEvents:
    """Events of one file whose frame i is a decay of ``isotope[i]`` (names): each isotope's frames are drawn
    with its own set model and merged in frame order (photoelectrons keep their frame)."""
    n = isotope.size
    pe: dict[str, list[np.ndarray]] = {"frame": [], "time": [], "area": [], "comp": []}
    truth: dict[str, np.ndarray] = {}
    for name in sorted(set(isotope.tolist())):
        idx = np.flatnonzero(isotope == name)
        ev = M.draw_file_events(profile, models[name], rng, idx.size)
        pe["frame"].append(idx[ev.pe_frame])
        pe["time"].append(ev.pe_time_us)
        pe["area"].append(ev.pe_area)
        pe["comp"].append(ev.pe_component)
        for key, values in ev.truth.items():
            if key not in truth:
                truth[key] = np.zeros(n, dtype=values.dtype)
            truth[key][idx] = values
    cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in pe.items()}
    return M.FileEvents(n, cat["frame"].astype(np.int64), cat["time"], cat["area"], cat["comp"].astype(np.int8),
                        truth)


def _stem(p: SimulationProfile, setm: M.SetModel, set_index: int) -> str:
    date = _dt.datetime.fromtimestamp(_set_start_s(p, set_index), tz=_dt.timezone.utc).strftime("%Y%m%d")
    return f"{p.run_prefix}_{date}_Gate{int(setm.gate_V):04d}_Anode{int(setm.anode_V):04d}"


def _simulate_set(p: SimulationProfile, setm: M.SetModel, set_index: int, out: Path, seed: int, layout: str,
                  alpha_cfg: AlphaSimConfig, exponent: float) -> tuple[dict[str, np.ndarray], list[str]]:
    names = tuple(n for n in alpha_cfg.rates_hz if alpha_cfg.rates_hz[n] > 0)
    models = {n: isotope_set_model(p, setm, n, exponent) for n in names}
    per_file: list[dict[str, np.ndarray]] = []

    def writer(frames: dict[str, Any], rng: np.random.Generator) -> tuple[np.ndarray, dict[str, float]]:
        ev = draw_tagged_events(p, models, np.asarray(frames["isotope"]), rng)
        raw = R.digitise_events(p, ev, rng)
        rec = dict(ev.truth)
        rec["file_index"] = np.full(ev.n_frames, frames["file_index"], np.int64)
        rec["frame_index"] = np.arange(ev.n_frames, dtype=np.int64)
        rec["recoil_energy_keV"] = np.asarray(frames["recoil_energy_keV"], float)
        per_file.append(rec)
        return raw, {"dt_s": 1.0 / p.sampling_rate_Hz, "t0_s": p.t0_us * 1e-6, "scale_V": p.lsb_mV * 1e-3,
                     "offset_V": p.offset_mV * 1e-3, "pre_points": p.pre_points, "post_points": p.post_points}

    cfg = dataclasses.replace(alpha_cfg, frames_per_file=p.frames_per_file, n_files=p.n_files,
                              t_start=_set_start_s(p, set_index))
    stem = _stem(p, setm, set_index)
    set_seed = int(np.random.SeedSequence([seed, set_index]).generate_state(1)[0])
    simulate_alpha_set(out / "raw" / setm.name, out / "truth" / f"{setm.name}_alpha.npz", config=cfg,
                       layout=layout, stem=stem, seed=set_seed, pmt_writer=writer)
    arrays = {k: np.concatenate([r[k] for r in per_file]) for k in per_file[0]}
    alpha = np.load(out / "truth" / f"{setm.name}_alpha.npz")
    if not (np.array_equal(alpha["file_index"], arrays["file_index"])
            and np.array_equal(alpha["frame_index"], arrays["frame_index"])):
        raise DataError(f"{setm.name}: PMT and silicon truth are not in the same frame order")
    arrays["isotope"] = alpha["isotope"].astype(np.int64)
    arrays["isotope_names"] = np.array([str(n) for n in alpha["names"]])
    arrays["alpha_energy_MeV"] = alpha["energy_MeV"]
    arrays["event_type_names"] = np.array(M.EVENT_TYPES)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    write_bytes_atomic(out / "truth" / f"{setm.name}.npz", buf.getvalue())
    files = [alpha_file_names(layout, stem, i + 1, p.frames_per_file)[0] for i in range(p.n_files)]
    return arrays, files


def _isotope_truth(p: SimulationProfile, models: list[M.SetModel], arrays: dict[str, dict[str, np.ndarray]],
                   pooled: dict[str, Any], exponent: float) -> dict[str, Any]:
    names = [str(n) for n in next(iter(arrays.values()))["isotope_names"]]
    iso = {n: {"recoil_energy_keV": recoil_energy_keV(n), "N_exp": recoil_energy_keV(n) * 1e3 / p.W_eV,
               "recomb_a_V_cm": p.recomb_a_V_cm * (recoil_energy_keV(n) / _E_REF_KEV) ** exponent} for n in names}
    sets: dict[str, Any] = {}
    for setm in models:
        a = arrays[setm.name]
        g = pooled[T.field_key(setm.el_field_V_cm)]
        rows = {}
        for k, name in enumerate(names):
            m = isotope_set_model(p, setm, name, exponent)
            sel = a["isotope"] == k
            rec = sel & (a["event_type"] == M.EVENT_RECOIL)
            st = M.sample_stats(a["s2_area_mV_us"][rec])
            omr = st["mean"] / g["g_S2_realised"] / m.n_exp if g["g_S2_realised"] > 0 else float("nan")
            rel = float(np.hypot(st["err"] / st["mean"], g["g_S2_realised_err"] / g["g_S2_realised"]))
            rows[name] = {"n_frames": int(sel.sum()), "n_recoil": int(rec.sum()), "one_minus_r": 1 - m.recombination,
                          "recoil_mean_area_mV_us": m.recoil_mean_area_mV_us,
                          "recoil_sample_mean_area_mV_us": st["mean"], "recoil_sample_mean_err_mV_us": st["err"],
                          "one_minus_r_realised": omr,
                          "one_minus_r_realised_err": abs(omr) * rel}
        sets[setm.name] = {"drift_field_V_cm": setm.drift_field_V_cm, "el_field_V_cm": setm.el_field_V_cm,
                           "isotopes": rows}
    return {"isotopes": iso, "recomb_energy_exponent": exponent, "sets": sets,
            "definitions": ALPHA_TRUTH_DEFINITIONS}


def simulate_alpha_run(outdir: str | os.PathLike[str], *, profile: str | SimulationProfile = "tiny", seed: int = 1,
                       layout: str = "old", alpha: AlphaSimConfig | None = None,
                       recomb_energy_exponent: float = RECOMB_ENERGY_EXPONENT, overwrite: bool = False,
                       progress: bool = False, **overrides: Any) -> Path:
    """Write an alpha-tagged synthetic run (module docstring) and return the folder.

    ``profile``/``overrides`` as :func:`s2lib.sim.simulate.simulate_run` (``frames_per_file`` and ``n_files`` apply to
    both channels; the trigger times come from the silicon channel's Poisson process, not ``trigger_rate_Hz``);
    ``alpha``: the silicon channel's parameters (rates per isotope, gain, resolution, ...); ``layout``: "old"
    (``_P2_<n>Wfm_Ch1/Ch4``) or "new" (``__Batch<NNN>__CH3/CH4``). Raises DataError for a non-empty ``outdir``
    without ``overwrite`` or a bad parameter.
    """
    prof = resolve_profile(profile, **overrides)
    if layout not in ("old", "new"):
        raise DataError(f"layout: expected 'old' or 'new', got {layout!r}")
    out = Path(outdir)
    _prepare_outdir(out, overwrite)
    (out / "raw").mkdir(exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    acfg = alpha or AlphaSimConfig()
    models = set_models(prof)
    arrays: dict[str, dict[str, np.ndarray]] = {}
    files, summaries, xray_areas = [], [], {}
    for k, setm in enumerate(models):
        arrays[setm.name], names = _simulate_set(prof, setm, k, out, int(seed), layout, acfg, recomb_energy_exponent)
        files.append(names)
        summaries.append(M.summarise_truth(arrays[setm.name]))
        a = arrays[setm.name]
        xray_areas[setm.name] = a["xray_area_mV_us"][a["has_xray"]]
        if progress:
            print(f"[{k + 1}/{len(models)}] {setm.name}: {a['isotope'].size} frames", flush=True)
    truth = T.truth_document(prof, int(seed), models, summaries, __version__, files, xray_areas)
    pooled = T._pooled_xrays(models, xray_areas, float(physics.expected_electrons(prof.E_xray_eV, prof.W_eV)))
    truth["alpha"] = {**_isotope_truth(prof, models, arrays, pooled, recomb_energy_exponent),
                      "layout": layout, "silicon": acfg.to_dict()}
    truth["constants"]["recoil_energies"] = "per frame: truth.alpha.isotopes (E_R of the tagged isotope)"
    write_text_atomic(out / "truth.json", json.dumps(json_sanitize(truth), indent=2, allow_nan=False) + "\n")
    cfg = run_config_dict(prof, int(seed), models)
    cfg["description"] = f"Alpha-tagged {cfg['description']} ({layout} DAQ layout)"
    cfg["multi_isotope"] = {"enabled": True}
    head = (f"# Alpha-tagged synthetic run written by s2lib.sim._sim_alpha_pmt (profile {prof.name}, seed {seed}).\n"
            "# Truth in truth.json (alpha: per isotope) and truth/*.npz.\n")
    write_text_atomic(out / "run.yaml", head + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None))
    return out
