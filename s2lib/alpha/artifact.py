"""The per-set alpha artifact: per-frame SCA values, flags, event ids and trigger times, self-describing.

Files in the set's artifact folder (written with ``s2lib.io.store``'s atomic writers, commit protocol as
``store.store_s2area``: a "writing" marker first, the arrays, then the JSON with their SHA-256)::

    alpha_sca.npy          float64 (n,)  per-frame amplitude, u_SCA (= peak volts / 1.058; NOT MeV)
    alpha_flags.npy        uint8 (n,)    estimator flags (s2lib.alpha.amplitude.FLAG_NAMES), 0 = clean
    alpha_event_ids.npy    int64 (n, 2)  (file index, frame index), the PMT artifacts' event ids
    alpha_trigger_s.npy    float64 (n,)  trigger time, s since trigger_time_ref_s (whole seconds since 1970 UTC)
    alpha_results.json     schema_version, status, units, estimator (parameters, SG window used),
                           files (PMT and alpha names), frames_per_file, trigger_time_ref_s, flag_counts,
                           pairing issues, checksums, written_at
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import DataError
from s2lib.io.store import PathLike, ensure_not_in_raw, read_json, read_npy, write_bytes_atomic, write_json_atomic

__all__ = ["ALPHA_FILES", "ALPHA_RESULTS_FILE", "AlphaSet", "store_alpha", "load_alpha"]

ALPHA_SCHEMA_VERSION = 1
ALPHA_RESULTS_FILE = "alpha_results.json"
ALPHA_FILES = {"sca": "alpha_sca.npy", "flags": "alpha_flags.npy", "event_ids": "alpha_event_ids.npy",
               "trigger_s": "alpha_trigger_s.npy"}
_DTYPES = {"sca": np.float64, "flags": np.uint8, "event_ids": np.int64, "trigger_s": np.float64}


@dataclass(frozen=True)
class AlphaSet:
    """One set's alpha artifact (see the module docstring for units); ``meta`` is the JSON document."""

    folder: Path
    sca: np.ndarray
    flags: np.ndarray
    event_ids: np.ndarray
    trigger_s: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def frames_per_file(self) -> list[int]:
        """Frames of each file pair, as stored."""
        return list(self.meta.get("frames_per_file", []))


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def store_alpha(out_dir: PathLike, *, sca: Any, flags: Any, event_ids: Any, trigger_s: Any,
                meta: Mapping[str, Any], raw_root: PathLike | None = None) -> Path:
    """Write the artifact atomically; ``meta`` should hold estimator, files, frames_per_file,
    trigger_time_ref_s (added: schema_version, status, units, n_frames, checksums, written_at).

    Raises ValueError for arrays of inconsistent lengths."""
    folder = Path(out_dir)
    ensure_not_in_raw(folder, raw_root)
    arrays = {"sca": np.asarray(sca, np.float64).reshape(-1), "flags": np.asarray(flags, np.uint8).reshape(-1),
              "event_ids": np.asarray(event_ids, np.int64).reshape(-1, 2),
              "trigger_s": np.asarray(trigger_s, np.float64).reshape(-1)}
    n = arrays["sca"].shape[0]
    if any(a.shape[0] != n for a in arrays.values()):
        raise ValueError("store_alpha: sca, flags, event_ids and trigger_s need one entry per frame, got "
                         + ", ".join(f"{k} {a.shape}" for k, a in arrays.items()))
    jsn = folder / ALPHA_RESULTS_FILE
    write_json_atomic(jsn, {"schema_version": ALPHA_SCHEMA_VERSION, "status": "writing"}, raw_root=raw_root)
    sums = {}
    for key, arr in arrays.items():
        data = _npy(arr)
        write_bytes_atomic(folder / ALPHA_FILES[key], data, raw_root=raw_root)
        sums[key] = hashlib.sha256(data).hexdigest()
    doc = dict(meta)
    doc.update(schema_version=ALPHA_SCHEMA_VERSION, status="complete", n_frames=int(n),
               units={"sca": "u_SCA (peak V / 1.058)", "trigger_s": "s since trigger_time_ref_s",
                      "event_ids": "(file index, frame index)", "flags": "bit field, 0 = clean"},
               sha256=sums, written_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
    return write_json_atomic(jsn, doc, raw_root=raw_root)


def load_alpha(folder: PathLike) -> AlphaSet:
    """Read and check the artifact (DataError naming the file for a missing, interrupted or altered one)."""
    folder = Path(folder)
    jsn = folder / ALPHA_RESULTS_FILE
    if not jsn.is_file():
        raise DataError(f"{jsn}: missing (run the alpha stage first)")
    meta = read_json(jsn)
    if not isinstance(meta, dict) or meta.get("status") != "complete":
        raise DataError(f"{jsn}: not a complete alpha artifact (interrupted write?)")
    if meta.get("schema_version", 0) > ALPHA_SCHEMA_VERSION:
        raise DataError(f"{jsn}: schema_version {meta.get('schema_version')} not supported")
    out: dict[str, np.ndarray] = {}
    for key, name in ALPHA_FILES.items():
        path = folder / name
        if not path.is_file():
            raise DataError(f"{path}: missing although {jsn.name} says complete")
        if hashlib.sha256(path.read_bytes()).hexdigest() != meta.get("sha256", {}).get(key):
            raise DataError(f"{path}: checksum differs from {jsn.name} (file replaced or damaged)")
        arr, _ = read_npy(path)
        out[key] = arr.astype(_DTYPES[key], copy=False)
    return AlphaSet(folder, out["sca"], out["flags"], out["event_ids"], out["trigger_s"], meta)
