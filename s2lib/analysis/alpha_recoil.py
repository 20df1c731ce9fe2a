"""Per-isotope recoil physics of an alpha-tagged run: S2 fits per set and isotope with the product's default
estimator, N_e and r per isotope and drift field, the Thomas–Imel fit per isotope.

Every S2 frame gets the isotope of its paired silicon frame (``alpha_isotope.npy`` of the alpha stage, joined on
the event ids (file index, frame index) both artifacts carry); a frame without a silicon partner or outside every
window is "none" (the reason is the alpha stage's). Per set and isotope the recoil mean comes from
:func:`s2lib.analysis.fit_stage.fit_run_s2` on that isotope's frames alone — the same default estimator as the all-frames
fit (:func:`s2lib.stats.estimators.fit_recoil`), with the sideband of the same frames and the set's X-ray pile-up
term. Then, exactly as for all frames (:func:`s2lib.calib.recomb_table.recombination_table`): N_e = A_ion/g_S2 and
r = 1 − N_e/N_exp with N_exp = E_R/W and E_R = Q·4/A_parent of the isotope (:mod:`s2lib.alpha.isotopes`,
constants cited there), g_S2 from the run's X-ray calibration at the set's EL field (unchanged by tagging).
Errors are 1σ: statistical (the fit's) and g_S2 (common per EL field), in quadrature for the total.

Artifact ``<run_id>_alpha_recombination.json``: per isotope E_R, N_exp and the Thomas–Imel fit per EL field
(``ModelFit.to_dict``), plus the S2 frame counts per set and isotope. The rows with their ``isotope`` name join the
all-frames rows (isotope ``all``) in ``<run_id>_recomb_factors.csv`` (:func:`s2lib.analysis.calibrate_stage.calibrate_and_analyze`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from numpy.typing import NDArray

from s2lib.alpha.artifact import load_alpha
from s2lib.alpha.isotopes import recoil_energy_keV
from s2lib.calib.gs2_sources import el_key
from s2lib.calib.recomb_table import recombination_table
from s2lib.calib.recombination import fit_recombination_model
from s2lib.errors import DataError
from s2lib.io.store import S2Areas, read_json, write_json_atomic
from s2lib.stats.fit_store import load_s2area

__all__ = ["ISOTOPE_ALL", "NO_ISOTOPE", "RESULTS_FILE", "has_alpha_tags", "tag_names", "isotope_labels",
           "isotope_subsets", "fit_isotopes", "analyse_isotopes", "calibration_rows"]

ISOTOPE_ALL = "all"
"""The ``isotope`` of the all-frames rows of ``<run_id>_recomb_factors.csv``."""
NO_ISOTOPE = "none"
RESULTS_FILE = "{run_id}_alpha_recombination.json"
TAG_FILE = "alpha_isotope.npy"


def _calibration_doc(output_dir: Path, run_id: str) -> dict[str, Any]:
    return read_json(Path(output_dir) / f"{run_id}_alpha_calibration.json")


def has_alpha_tags(run: Any) -> bool:
    """True when the run is alpha-tagged (``multi_isotope.enabled``) and the alpha stage has written its tags."""
    alpha = getattr(run.config, "alpha", None)
    return bool(getattr(alpha, "enabled", False)) and (Path(run.output_dir) /
                                                        f"{run.run_id}_alpha_calibration.json").is_file()


def tag_names(run: Any) -> tuple[str, ...]:
    """The isotope names the alpha stage's tags index (its windows, in order: ``windows.names``; the JSON
    writer sorts the keys of the ``windows`` mapping, so its order is not the index order)."""
    doc = _calibration_doc(run.output_dir, run.run_id)
    return tuple(doc["windows"]["names"])


def isotope_labels(s2_event_ids: NDArray[np.int64], alpha_event_ids: NDArray[np.int64],
                   alpha_label: NDArray[np.integer[Any]]) -> NDArray[np.int64]:
    """Isotope index of every S2 frame from the silicon frame with the same (file, frame) id; −1 without one."""
    s2 = np.asarray(s2_event_ids, dtype=np.int64).reshape(-1, 2)
    al = np.asarray(alpha_event_ids, dtype=np.int64).reshape(-1, 2)
    lab = np.asarray(alpha_label, dtype=np.int64).reshape(-1)
    if al.shape[0] != lab.size:
        raise DataError(f"alpha tags: {lab.size} labels for {al.shape[0]} alpha frames")
    out = np.full(s2.shape[0], -1, dtype=np.int64)
    if not al.size or not s2.size:
        return out
    width = int(max(al[:, 1].max(), s2[:, 1].max())) + 1
    key_a, key_s = al[:, 0] * width + al[:, 1], s2[:, 0] * width + s2[:, 1]
    order = np.argsort(key_a, kind="stable")
    pos = np.clip(np.searchsorted(key_a[order], key_s), 0, key_a.size - 1)
    hit = key_a[order][pos] == key_s
    out[hit] = lab[order][pos[hit]]
    return out


def _subset(s2: S2Areas, mask: NDArray[np.bool_]) -> S2Areas:
    return dataclasses.replace(
        s2, areas=s2.areas[mask], mean=None, sigma=None, ci95=None, fit_success=False, fit_result=None,
        event_ids=None if s2.event_ids is None else s2.event_ids[mask],
        flags=None if s2.flags is None else s2.flags[mask],
        sideband=None if s2.sideband is None else s2.sideband[mask])


def isotope_subsets(run: Any) -> tuple[dict[str, dict[str, S2Areas | str]], dict[str, dict[str, int]]]:
    """Per isotope and set the S2 frames of that isotope (``S2Areas`` subsets, or the error text of a set that
    cannot be read), and per set the frame counts per isotope and ``none``."""
    names = tag_names(run)
    subsets: dict[str, dict[str, S2Areas | str]] = {n: {} for n in names}
    counts: dict[str, dict[str, int]] = {}
    for s in run.sets:
        folder = run.set_output_dir(s.name)
        try:
            s2 = load_s2area(folder)
            alpha = load_alpha(folder)
            label = np.load(folder / TAG_FILE)
            if s2.event_ids is None:
                raise DataError(f"{folder}: the S2 artifact has no event ids to join with the alpha tags")
            lab = isotope_labels(s2.event_ids, alpha.event_ids, label)
        except (DataError, OSError, ValueError) as exc:
            for n in names:
                subsets[n][s.name] = f"not loaded: {exc}"
            counts[s.name] = {}
            continue
        counts[s.name] = {n: int(np.count_nonzero(lab == i)) for i, n in enumerate(names)}
        counts[s.name][NO_ISOTOPE] = int(np.count_nonzero(lab < 0))
        for i, n in enumerate(names):
            subsets[n][s.name] = _subset(s2, lab == i)
    return subsets, counts


def _xrays(run: Any) -> dict[str, tuple[float, float]]:
    from .pipeline import xray_pileup_inputs

    return xray_pileup_inputs(run)


def fit_isotopes(run: Any, fit_config: Any = None, *, quiet: bool = True
                 ) -> tuple[dict[str, dict[str, S2Areas | str]], dict[str, dict[str, int]]]:
    """Fit every (isotope, set) with :func:`s2lib.analysis.fit_stage.fit_run_s2` (default: the run's ``fitting`` options);
    returns the fitted subsets (error texts kept) and the frame counts of :func:`isotope_subsets`."""
    from .fit_stage import fit_run_s2

    cfg = fit_config if fit_config is not None else run.config.fitting
    subsets, counts = isotope_subsets(run)
    xrays = _xrays(run)
    fitted: dict[str, dict[str, S2Areas | str]] = {}
    for iso, sets in subsets.items():
        ok = {k: v for k, v in sets.items() if isinstance(v, S2Areas)}
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            done = fit_run_s2(ok, fit_config=cfg, xrays=xrays) if ok else {}
        fitted[iso] = {k: done.get(k, v) for k, v in sets.items()}
    return fitted, counts


def analyse_isotopes(run: Any, entries: Mapping[float, Any], fit_config: Any, W_eV: float, *,
                     use_poor_fits: bool = False, out_dir: str | Path | None = None,
                     say: Callable[[str], Any] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-isotope N_e, r and Thomas–Imel fits (module docstring); writes ``<run_id>_alpha_recombination.json``.

    ``entries``: EL key → the run's g_S2 entry (``CalibrationResults.entries`` by ``el_key``). Returns the CSV
    rows (``recombination_table`` rows with ``isotope``) and the JSON document."""
    fitted, counts = fit_isotopes(run, fit_config)
    rows: list[dict[str, Any]] = []
    isotopes: dict[str, Any] = {}
    for iso, sets in fitted.items():
        e_r = recoil_energy_keV(iso)
        n_exp = e_r * 1e3 / W_eV
        iso_rows, arrays = recombination_table(run.sets, sets, lambda el: entries[el_key(el)], fit_config, n_exp,
                                               use_poor_fits=use_poor_fits)
        for r in iso_rows:
            r["isotope"] = iso
        rows.extend(iso_rows)
        fits = {}
        for key, e in entries.items():
            sel = (arrays["el_key"] == key) & arrays["usable"]
            rel = e.d_g_S2 / e.g_S2 if e.usable else math.nan
            f = fit_recombination_model(arrays["drift_field"][sel], arrays["r"][sel], arrays["dr_stat"][sel],
                                        model="thomas_imel", gs2_rel_err=rel)
            fits[f"{key:g}"] = f.to_dict()
            if say is not None:
                txt = ", ".join(f"{p} = {f.values[p]:.4g} ± {f.errors[p]:.2g}" for p in f.param_names)
                say(f"      {iso} (E_R = {e_r:.1f} keV) EL {key:g} V/cm thomas_imel: {txt}"
                    + ("" if f.fit_success else f"  NOT OK: {f.reason}"))
        isotopes[iso] = {"recoil_energy_keV": e_r, "N_exp": n_exp, "thomas_imel": fits,
                         "recoil_energy_source": "Q·4/A_parent (s2lib.alpha.isotopes.recoil_energy_keV)"}
    doc = {"schema_version": 1, "run_id": run.run_id, "W_eV": W_eV, "isotopes": isotopes, "frames": counts,
           "units": {"recoil_energy_keV": "keV", "N_exp": "e⁻", "frames": "S2 frames per set and isotope"},
           "errors": "1σ; Thomas–Imel errors total (stat ⊕ common g_S2 scale) as in <run_id>_calibration.json"}
    folder = Path(out_dir) if out_dir is not None else Path(run.output_dir)
    write_json_atomic(folder / RESULTS_FILE.format(run_id=run.run_id), doc,
                      raw_root=getattr(run.config, "raw_data_path", None))
    return rows, doc


def calibration_rows(run: Any, entries: Mapping[float, Any], fit_config: Any, W_eV: float, *,
                     out_dir: str | Path | None = None, say: Callable[[str], Any] | None = None
                     ) -> list[dict[str, Any]]:
    """The per-isotope rows :func:`s2lib.analysis.calibrate_stage.calibrate_and_analyze` appends to the recombination CSV:
    those of :func:`analyse_isotopes` for an alpha-tagged run with tags, [] for any other run."""
    if not has_alpha_tags(run):
        if getattr(getattr(run.config, "alpha", None), "enabled", False):
            warnings.warn(f"run {run.run_id} is alpha-tagged (multi_isotope.enabled) but "
                          f"{run.run_id}_alpha_calibration.json is missing: no per-isotope rows; run the alpha "
                          "stage first", UserWarning, stacklevel=2)
        return []
    if say is not None:
        say("      per isotope (alpha tags):")
    rows, _ = analyse_isotopes(run, entries, fit_config, W_eV, out_dir=out_dir, say=say,
                               use_poor_fits=bool(getattr(run.config.calibration, "use_poor_fits", False)))
    return rows
