"""Bad raw files: the "Skipped files" rows of a run, the run-level counts, and validation frames that skip them.

A raw ``.wfm`` file that cannot be used never costs the run (``s2lib.signal.integration``): it is listed per set in
``s2_results.json`` under ``files_failed`` (``file``, ``index``, ``field``, ``reason``: skipped) or
``files_partial`` (``file``, ``index``, ``frames_read``, ``frames_promised``: a truncated FastFrame file whose
complete frames were used). When a set failed before the pass over the data (its timing could not be
estimated), the files its timing estimate could not read (``timing.json``) are listed instead.
This module reads those lists back for the book and the command line, and picks the random frames of the
waveform-validation figure among the files that can be read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from s2lib.errors import DataError, WfmError
from s2lib.io.store import S2_RESULTS_FILE, read_json
from s2lib.signal.frames import pedestal_mV
from s2lib.io.wfm import open_wfm

__all__ = ["set_bad_files", "skipped_file_rows", "bad_file_counts", "bad_file_line", "strict_reasons", "validation_frames"]


def _detail(entry: dict[str, Any]) -> str:
    """The reason without the leading ``"<file>: <field>: "`` (those have their own columns)."""
    reason = str(entry.get("reason") or "")
    for prefix in (f"{entry.get('file')}: {entry.get('field')}: ", f"{entry.get('file')}: "):
        if reason.startswith(prefix):
            return reason[len(prefix):]
    return reason


def set_bad_files(folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(files_failed, files_partial)`` of one set's artifact folder (empty lists when nothing was stored)."""
    folder = Path(folder)
    failed: list[dict[str, Any]] = []
    partial: list[dict[str, Any]] = []
    try:
        doc = read_json(folder / S2_RESULTS_FILE)
        params = doc.get("params") or {}
        failed = list(doc.get("files_failed") or params.get("files_failed") or [])
        partial = list(doc.get("files_partial") or params.get("files_partial") or [])
        if params.get("status") != "failed":
            return failed, partial
    except (DataError, OSError, ValueError, AttributeError):
        pass
    try:                                     # the set failed before the pass: its timing's unreadable files
        timing = read_json(folder / "timing.json")
        seen = {f.get("file") for f in failed}
        failed += [f for f in timing.get("files_failed") or [] if f.get("file") not in seen]
    except (DataError, OSError, ValueError, AttributeError):
        pass
    return failed, partial


def skipped_file_rows(run: Any) -> list[dict[str, Any]]:
    """One row per skipped or partially read file of every set of ``run``: ``set_name``, ``file``, ``outcome``
    (``"skipped"`` or ``"partial"``), ``field`` (the part of the file at fault), ``frames`` (read / promised for
    a partial file) and ``detail`` (the reader's message)."""
    rows: list[dict[str, Any]] = []
    for s in run.sets:
        failed, partial = set_bad_files(run.set_output_dir(s.name))
        for f in failed:
            rows.append({"set_name": s.name, "file": f.get("file"), "outcome": "skipped",
                         "field": f.get("field") or "", "frames": "0", "detail": _detail(f)})
        for f in partial:
            rows.append({"set_name": s.name, "file": f.get("file"), "outcome": "partial", "field": "curve buffer",
                         "frames": f"{f.get('frames_read')} / {f.get('frames_promised')}",
                         "detail": "truncated: the complete frames were read, the rest of the file is missing"})
    return rows


def bad_file_counts(output_dir: Path) -> dict[str, int]:
    """``{"skipped", "partial", "sets"}``: files skipped and partially read over every set folder of a run's
    output folder, and the number of sets with any (for the summary line of ``s2book run``)."""
    counts = {"skipped": 0, "partial": 0, "sets": 0}
    root = Path(output_dir)
    if not root.is_dir():
        return counts
    for folder in sorted(p.parent for p in root.glob(f"*/{S2_RESULTS_FILE}")):
        failed, partial = set_bad_files(folder)
        counts["skipped"] += len(failed)
        counts["partial"] += len(partial)
        counts["sets"] += bool(failed or partial)
    return counts


def strict_reasons(output_dir: Path) -> list[str]:
    """Why a run's up-to-date integration must run again under ``strict`` (it recorded bad files), or []."""
    counts = bad_file_counts(output_dir)
    if not (counts["skipped"] or counts["partial"]):
        return []
    return [f"strict: {counts['skipped']} skipped and {counts['partial']} partial raw file(s) recorded"]


def bad_file_line(run_id: str, output_dir: Path) -> str | None:
    """The one line ``s2book run`` prints about a run's bad files (None when there are none)."""
    counts = bad_file_counts(output_dir)
    if not (counts["skipped"] or counts["partial"]):
        return None
    return (f"s2book: warning: run {run_id}: {counts['skipped']} raw file(s) skipped and {counts['partial']} "
            f"read partially (truncated) in {counts['sets']} set(s); see 'Skipped files' in the book and "
            "files_failed / files_partial in each set's s2_results.json")


def validation_frames(run: Any, set_name: str, n: int = 4, seed: int = 0,
                      skip: Iterable[str] = ()) -> dict[str, Any]:
    """A few random frames of a set for ``plotting.plot_waveform_validation``, from files that can be read.

    Files are tried in a random order (``seed``); a file that cannot be read (or is named in ``skip``, or is
    listed as skipped in the set's ``s2_results.json``) is passed over and named in ``"skipped"``; a truncated
    file offers its complete frames. Fewer than ``n`` traces come back when fewer files can be read.

    Returns:
        ``{"t_us", "traces_mV", "titles", "s1", "s2_window", "xray_windows", "event_ids", "skipped"}``: the time
        axis of the first chosen file (µs), the pedestal-subtracted signals (mV, pulses positive),
        "file i, frame j" labels, ``(t_S1, spread)``, the integration window, the X-ray window
        ``[(t_S1, window start)]`` and the file names passed over.
    """
    from s2lib.io.store import load_timing

    info = run.get_set(set_name)
    t = load_timing(run.set_output_dir(set_name))
    known_bad = {f.get("file") for f in set_bad_files(run.set_output_dir(set_name))[0]} | set(skip)
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(info.files))] if info.files else []
    traces: list[np.ndarray] = []
    titles, ids, skipped, good = [], [], [], []
    t_us: np.ndarray | None = None
    n_ped = run.config.integration.n_pedestal

    def take(i: int) -> bool:
        nonlocal t_us
        path = Path(info.files[i])
        try:
            with open_wfm(path, allow_partial=True) as f:
                h = f.header
                if t_us is not None and h.n_points != t_us.size:
                    raise WfmError(path, "points per frame", f"{h.n_points}, the other files have {t_us.size}")
                j = int(rng.integers(h.n_frames))
                raw = np.array(f.raw[j])
        except (WfmError, OSError):
            return False
        ped = pedestal_mV(raw[np.newaxis, :n_ped], h.scale_V * 1e3, h.offset_V * 1e3)[0]
        traces.append(-(raw.astype(np.float64) * h.scale_V * 1e3 + h.offset_V * 1e3 - ped))
        t_us = h.time_us() if t_us is None else t_us
        titles.append(f"file {i}, frame {j}")
        ids.append((i, j))
        return True

    for i in order:                      # each file at most once, in a random order
        if len(traces) >= n:
            break
        if Path(info.files[i]).name not in known_bad and take(i):
            good.append(i)
        else:
            skipped.append(Path(info.files[i]).name)
    while good and len(traces) < n:      # fewer readable files than frames asked for: more frames of them
        if not take(good[int(rng.integers(len(good)))]):
            break
    ok = t.get("status") == "ok"
    return {"t_us": t_us, "traces_mV": traces, "titles": titles, "event_ids": ids, "skipped": skipped,
            "s1": (t["t_s1_us"], t["t_s1_spread_us"]) if t.get("t_s1_us") is not None else None,
            "s2_window": tuple(t["window_us"]) if ok else None,
            "xray_windows": [tuple(t["xray_window_us"])] if ok else None}
