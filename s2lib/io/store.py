"""Every artifact read and write (the seed's dataIO): schema versions, the commit protocol, the lab's old formats.

The atomic writers and checked readers live in :mod:`s2lib.io.atomic` and are re-exported here.

Per set folder (``DESIGN.md`` 3.3, ``ARCHITECTURE.md``)::

    s2_areas.npy        recoil S2 area per frame, mV·µs, float64 (NaN for frames that failed)
    s2_event_ids.npy    int64 (n, 2): file index, frame index (optional)
    s2_sideband.npy     float64 (n,) empty-window area per frame over the sideband before S1 (optional)
    s2_flags.npy        uint8 (n,) per-frame bit field, 0 = usable; bit 0 (1) = X-ray pile-up (optional,
                        s2lib.signal.integration.FLAG_BITS; the fits use the frames with flag 0)
    s2_results.json     schema_version, status, mean, sigma, ci95, fit_success, method, params, fit,
                        n_areas, areas_sha256, event_ids_sha256, written_at, files_failed
                        ([{file, index, field, reason}]: raw files skipped), files_partial
                        ([{file, index, frames_read, frames_promised}]: truncated files, complete frames used)
    xray_areas.npy, xray_event_ids.npy, xray_results.json     accepted X-rays, same scheme
    timing.json         S1/S2 timing windows

Commit protocol. A store first replaces the JSON by a ``"status": "writing"`` marker, then writes the arrays,
then the final JSON (``"status": "complete"`` + SHA-256 of the array files). Each file goes to a temporary file in
the same folder, flushed, fsync'ed (inside ``atomic.group_commit``: at the block's end) and renamed over the target
(``os.replace``), so a reader sees either the old or the new file, never a partial one. A run killed at any point
leaves a folder that :func:`load_s2area` refuses (marker, or checksum mismatch) instead of silently mixing old and
new data. Leftover ``.*.tmp`` files are never read; ``s2book run`` removes them (under the run's lock) first.

Old formats read: the lab's ``s2_areas.npy`` alone (method ``"loaded_from_npy"``, no fit values) and its
``s2_results.json`` (keys method, params, mean, sigma, ci95, fit_success, set_metadata; no schema_version);
likewise ``xray_areas.npy`` with or without the lab's ``xray_results.json``.
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from s2lib.errors import DataError

from .atomic import (  # noqa: F401 (re-exported: the store is where the writers are looked up)
    PathLike, _json_bytes, _npy_bytes, _sha256, ensure_not_in_raw, json_sanitize, read_json, read_npy,
    write_bytes_atomic, write_csv_atomic, write_json_atomic, write_npy_atomic, write_text_atomic
)

__all__ = [
    "SCHEMA_VERSION", "S2_AREAS_FILE", "S2_EVENT_IDS_FILE", "S2_FLAGS_FILE", "S2_RESULTS_FILE", "XRAY_AREAS_FILE",
    "XRAY_EVENT_IDS_FILE", "XRAY_RESULTS_FILE", "TIMING_FILE",
    "json_sanitize", "ensure_not_in_raw", "write_bytes_atomic", "write_text_atomic", "write_json_atomic",
    "write_npy_atomic", "write_csv_atomic", "read_json", "read_npy",
    "S2Areas", "store_s2area", "load_s2area", "XRays", "store_xrays", "load_xrays", "store_timing",
    "load_timing", "resolve_folder",
]

SCHEMA_VERSION = 1
S2_AREAS_FILE = "s2_areas.npy"
S2_EVENT_IDS_FILE = "s2_event_ids.npy"
S2_RESULTS_FILE = "s2_results.json"
S2_FLAGS_FILE = "s2_flags.npy"
S2_SIDEBAND_FILE = "s2_sideband.npy"
XRAY_AREAS_FILE = "xray_areas.npy"
XRAY_EVENT_IDS_FILE = "xray_event_ids.npy"
XRAY_RESULTS_FILE = "xray_results.json"
TIMING_FILE = "timing.json"

_COMPLETE = "complete"
_WRITING = "writing"



# --------------------------------------------------------------------------- readers
def _write_optional_npy(path: Path, array: np.ndarray | None, raw_root: PathLike | None) -> str | None:
    """Write ``array`` atomically as .npy and return its sha256; with None, remove a stale file of that name."""
    if array is None:
        path.unlink(missing_ok=True)
        return None
    data = _npy_bytes(array)
    write_bytes_atomic(path, data, raw_root=raw_root)
    return _sha256(data)


def resolve_folder(set_or_folder: Any, run: Any = None) -> Path:
    """The artifact folder of a set.

    Accepts a path (str or PathLike), or any object with an ``output_dir``, ``source_dir`` or ``path``
    attribute (tried in that order; a runs.SetInfo's ``path`` is its raw folder, where the lab's old files
    live). With ``run`` given (anything with ``set_output_dir(name)``) and an object with a ``name``, the
    run's output folder of that set is used.
    """
    if run is not None and hasattr(run, "set_output_dir") and hasattr(set_or_folder, "name") \
            and not isinstance(set_or_folder, (str, os.PathLike)):
        return Path(run.set_output_dir(set_or_folder.name))
    if isinstance(set_or_folder, (str, os.PathLike)):
        return Path(set_or_folder)
    for attr in ("output_dir", "source_dir", "path"):
        value = getattr(set_or_folder, attr, None)
        if value is not None and not callable(value):
            return Path(value)
    raise TypeError(f"cannot find a folder in {type(set_or_folder).__name__} "
                    "(expected a path or an object with output_dir, source_dir or path)")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _event_ids(ids: Any, n: int, what: str) -> np.ndarray | None:
    if ids is None:
        return None
    a = np.asarray(ids)
    if a.ndim != 2 or a.shape != (n, 2) or a.dtype.kind not in "iu":
        raise ValueError(f"{what}: event_ids must be integers of shape ({n}, 2), got {a.dtype} {a.shape}")
    return a.astype(np.int64)


def _check_new_format(path: Path, meta: Mapping[str, Any]) -> None:
    version = meta.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise DataError(f"{path}: schema_version {version!r} not supported (this s2lib reads <= {SCHEMA_VERSION})")
    if meta.get("status") != _COMPLETE:
        raise DataError(f"{path}: incomplete write (status {meta.get('status')!r}); re-run the stage")


def _load_checked_arrays(folder: Path, meta: Mapping[str, Any], areas_file: str, ids_file: str,
                         json_file: str) -> tuple[np.ndarray, np.ndarray | None]:
    areas, sha = read_npy(folder / areas_file)
    if areas.ndim != 1 or meta.get("n_areas") != areas.shape[0] or meta.get("areas_sha256") != sha:
        raise DataError(f"{folder / json_file}: does not match {areas_file} (n_areas or checksum differ: "
                        "interrupted or mixed write); re-run the stage")
    ids = None
    if meta.get("event_ids_sha256") is not None:
        if not (folder / ids_file).is_file():
            raise DataError(f"{folder / ids_file}: missing, but {json_file} lists it")
        ids, ids_sha = read_npy(folder / ids_file)
        if ids_sha != meta["event_ids_sha256"] or ids.shape != (areas.shape[0], 2):
            raise DataError(f"{folder / json_file}: does not match {ids_file} (checksum or shape differ)")
    return areas.astype(np.float64, copy=False), ids


def _as_float(v: Any) -> float | None:
    return None if v is None else float(v)


# --------------------------------------------------------------------------- S2 areas
@dataclass
class S2Areas:
    """Recoil S2 areas of one set with their fit summary (the seed's ``S2Areas``).

    Attributes:
        source_dir: the set folder the areas belong to.
        areas: area per frame, mV·µs, float64 (NaN for frames that failed).
        method, params: how the areas were made (stored verbatim).
        mean, sigma, ci95: fit summary in mV·µs (ci95 = half-width of the 95 % interval of the mean); None
            when not fitted.
        fit_success: the fit converged with finite errors (False when not fitted).
        fit_result: a fitting.FitResult (or its dict) when fitted; :func:`load_s2area` gives the stored dict
            (:func:`s2lib.stats.fit_store.load_s2area` rebuilds the FitResult).
        event_ids: int64 (n, 2) file index, frame index per area, when known.
        sideband: float64 (n,) empty-window area per frame over the sideband before S1 (mV·µs), or None.
        flags: uint8 (n,) per-frame bit field (0 = usable; bit 0 = X-ray pile-up), or None (old folders:
            every frame usable). :attr:`usable` is the mask the fits use.
    """

    source_dir: Path
    areas: np.ndarray
    method: str = ""
    params: dict = field(default_factory=dict)
    mean: float | None = None
    sigma: float | None = None
    ci95: float | None = None
    fit_success: bool = False
    fit_result: object | None = None
    event_ids: np.ndarray | None = None
    flags: np.ndarray | None = None
    sideband: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.source_dir = Path(self.source_dir)
        self.areas = np.asarray(self.areas, dtype=np.float64).reshape(-1)
        self.event_ids = _event_ids(self.event_ids, self.areas.shape[0], "S2Areas")
        self.flags = _flags(self.flags, self.areas.shape[0], "S2Areas")
        if self.sideband is not None:
            sb = np.asarray(self.sideband, dtype=np.float64).reshape(-1)
            if sb.shape != self.areas.shape:
                raise ValueError(f"S2Areas: sideband must have shape {self.areas.shape}, got {sb.shape}")
            self.sideband = sb

    @property
    def usable(self) -> np.ndarray:
        """Boolean mask of the frames without any flag (all True when no flags are known)."""
        return np.ones(self.areas.shape[0], bool) if self.flags is None else self.flags == 0

    @property
    def n_vetoed(self) -> int:
        """Frames with a flag set (0 when no flags are known)."""
        return 0 if self.flags is None else int(np.count_nonzero(self.flags))


def _flags(flags: Any, n: int, what: str) -> np.ndarray | None:
    if flags is None:
        return None
    a = np.asarray(flags)
    if a.shape != (n,) or a.dtype.kind not in "iub":
        raise ValueError(f"{what}: flags must be integers of shape ({n},), got {a.dtype} {a.shape}")
    return a.astype(np.uint8)


def _fit_dict(fit: Any) -> Any:
    if fit is None:
        return None
    return fit.to_dict() if callable(getattr(fit, "to_dict", None)) else fit


def store_s2area(s2: S2Areas, out_dir: PathLike | None = None, *, raw_root: PathLike | None = None) -> Path:
    """Write ``s2`` into ``out_dir`` (default ``s2.source_dir``); returns the path of ``s2_results.json``.

    Order: ``"writing"`` marker JSON, ``s2_areas.npy`` (float64), ``s2_event_ids.npy`` when present (a stale
    one is removed otherwise), then the final ``s2_results.json``. ``raw_root`` (the run's raw data folder)
    makes every write refuse to land inside it.
    """
    folder = Path(out_dir) if out_dir is not None else Path(s2.source_dir)
    ensure_not_in_raw(folder, raw_root)
    areas = np.asarray(s2.areas, dtype=np.float64).reshape(-1)
    ids = _event_ids(s2.event_ids, areas.shape[0], "store_s2area")
    flags = _flags(s2.flags, areas.shape[0], "store_s2area")
    fit = _fit_dict(s2.fit_result)
    final = {
        "schema_version": SCHEMA_VERSION, "status": _COMPLETE, "method": s2.method, "params": s2.params,
        "mean": s2.mean, "sigma": s2.sigma, "ci95": s2.ci95, "fit_success": bool(s2.fit_success),
        "fit": fit, "n_areas": int(areas.shape[0]), "source_dir": str(s2.source_dir),
        "n_vetoed": None if flags is None else int(np.count_nonzero(flags)),
        "files_failed": s2.params.get("files_failed", []), "files_partial": s2.params.get("files_partial", []),
    }
    _json_bytes(final)                              # fail on unencodable params before touching any file
    json_path = folder / S2_RESULTS_FILE
    write_json_atomic(json_path, {"schema_version": SCHEMA_VERSION, "status": _WRITING,
                                  "written_at": _now()}, raw_root=raw_root)
    areas_bytes = _npy_bytes(areas)
    write_bytes_atomic(folder / S2_AREAS_FILE, areas_bytes, raw_root=raw_root)
    ids_sha = _write_optional_npy(folder / S2_EVENT_IDS_FILE, ids, raw_root)
    flags_sha = _write_optional_npy(folder / S2_FLAGS_FILE, flags, raw_root)
    sb = None if s2.sideband is None else np.asarray(s2.sideband, dtype=np.float64).reshape(-1)
    sb_sha = _write_optional_npy(folder / S2_SIDEBAND_FILE, sb, raw_root)
    final.update(areas_sha256=_sha256(areas_bytes), event_ids_sha256=ids_sha, flags_sha256=flags_sha,
                 sideband_sha256=sb_sha, written_at=_now())
    return write_json_atomic(json_path, final, raw_root=raw_root)


def load_s2area(set_or_folder: Any, run: Any = None) -> S2Areas:
    """Load the S2 areas of a set (new format or the lab's old ones); see :func:`resolve_folder` for what
    ``set_or_folder``/``run`` may be.

    - new format: checks status, ``n_areas`` and SHA-256 of the arrays; any mismatch raises DataError;
    - the lab's ``s2_results.json`` (no schema_version): method, params, mean, sigma, ci95, fit_success
      (its ``set_metadata`` is kept under ``params["set_metadata"]``);
    - ``s2_areas.npy`` alone (lab's oldest format): method ``"loaded_from_npy"``, no fit values.

    Raises:
        DataError: no areas, corrupt/truncated file, or a folder whose files do not belong together.
    """
    folder = resolve_folder(set_or_folder, run)
    npy, jsn = folder / S2_AREAS_FILE, folder / S2_RESULTS_FILE
    if not npy.is_file():
        what = f"{jsn.name} without {npy.name} (interrupted write?)" if jsn.is_file() else f"no {npy.name}"
        raise DataError(f"{folder}: {what}")
    if not jsn.is_file():
        areas, _ = read_npy(npy)
        if areas.ndim != 1:
            raise DataError(f"{npy}: expected a 1-D array of areas, got shape {areas.shape}")
        return S2Areas(folder, areas, method="loaded_from_npy", params={})
    meta = read_json(jsn)
    if not isinstance(meta, dict):
        raise DataError(f"{jsn}: expected a JSON object")
    if "schema_version" not in meta:                # the lab's format
        areas, _ = read_npy(npy)
        if areas.ndim != 1:
            raise DataError(f"{npy}: expected a 1-D array of areas, got shape {areas.shape}")
        params = dict(meta.get("params") or {})
        if "set_metadata" in meta and "set_metadata" not in params:
            params["set_metadata"] = meta["set_metadata"]
        return S2Areas(folder, areas, method=str(meta.get("method", "")), params=params,
                       mean=_as_float(meta.get("mean")), sigma=_as_float(meta.get("sigma")),
                       ci95=_as_float(meta.get("ci95")), fit_success=bool(meta.get("fit_success", False)))
    _check_new_format(jsn, meta)
    areas, ids = _load_checked_arrays(folder, meta, S2_AREAS_FILE, S2_EVENT_IDS_FILE, S2_RESULTS_FILE)
    flags = None
    if meta.get("flags_sha256") is not None:        # absent in folders written before the pile-up flags
        if not (folder / S2_FLAGS_FILE).is_file():
            raise DataError(f"{folder / S2_FLAGS_FILE}: missing, but {S2_RESULTS_FILE} lists it")
        flags, f_sha = read_npy(folder / S2_FLAGS_FILE)
        if f_sha != meta["flags_sha256"] or flags.shape != areas.shape:
            raise DataError(f"{folder / S2_RESULTS_FILE}: does not match {S2_FLAGS_FILE} (checksum or shape differ)")
    sideband = None
    if meta.get("sideband_sha256") is not None:
        if not (folder / S2_SIDEBAND_FILE).is_file():
            raise DataError(f"{folder / S2_SIDEBAND_FILE}: missing, but {S2_RESULTS_FILE} lists it")
        sideband, s_sha = read_npy(folder / S2_SIDEBAND_FILE)
        if s_sha != meta["sideband_sha256"] or sideband.shape != areas.shape:
            raise DataError(f"{folder / S2_RESULTS_FILE}: does not match {S2_SIDEBAND_FILE} (checksum or shape "
                            "differ)")
    return S2Areas(folder, areas, method=str(meta.get("method", "")), params=dict(meta.get("params") or {}),
                   mean=_as_float(meta.get("mean")), sigma=_as_float(meta.get("sigma")),
                   ci95=_as_float(meta.get("ci95")), fit_success=bool(meta.get("fit_success", False)),
                   fit_result=meta.get("fit"), event_ids=ids, flags=flags, sideband=sideband)


# --------------------------------------------------------------------------- X-rays
@dataclass
class XRays:
    """Accepted X-ray areas of one set (mV·µs), their event ids and the classification summary
    (``results``: n_events, n_accepted, rejection_reasons {label: count}, params, ... as stored)."""

    source_dir: Path
    areas: np.ndarray
    event_ids: np.ndarray | None = None
    results: dict = field(default_factory=dict)


def store_xrays(out_dir: PathLike, areas: Any, event_ids: Any, results: Mapping[str, Any], *,
                raw_root: PathLike | None = None) -> Path:
    """Write ``xray_areas.npy``, ``xray_event_ids.npy`` (when given) and last ``xray_results.json``.

    ``results`` should hold ``n_events``, ``rejection_reasons`` ({label: count}, e.g.
    ``waveform.reason_counts``) and ``params``; ``schema_version``, ``status``, ``n_accepted``, checksums and
    ``written_at`` are added. Returns the JSON path.
    """
    folder = Path(out_dir)
    ensure_not_in_raw(folder, raw_root)
    a = np.asarray(areas, dtype=np.float64).reshape(-1)
    ids = _event_ids(event_ids, a.shape[0], "store_xrays")
    final = dict(results)
    final.update(schema_version=SCHEMA_VERSION, status=_COMPLETE, n_accepted=int(a.shape[0]),
                 n_areas=int(a.shape[0]))
    _json_bytes(final)                              # fail early on unencodable content
    jsn = folder / XRAY_RESULTS_FILE
    write_json_atomic(jsn, {"schema_version": SCHEMA_VERSION, "status": _WRITING, "written_at": _now()},
                      raw_root=raw_root)
    a_bytes = _npy_bytes(a)
    write_bytes_atomic(folder / XRAY_AREAS_FILE, a_bytes, raw_root=raw_root)
    ids_sha = _write_optional_npy(folder / XRAY_EVENT_IDS_FILE, ids, raw_root)
    final.update(areas_sha256=_sha256(a_bytes), event_ids_sha256=ids_sha, written_at=_now())
    return write_json_atomic(jsn, final, raw_root=raw_root)


def load_xrays(folder: Any, run: Any = None) -> XRays:
    """Load X-ray areas (new format, checked like :func:`load_s2area`; or the lab's ``xray_areas.npy`` with
    or without its ``xray_results.json``, whose keys are returned as they are)."""
    folder = resolve_folder(folder, run)
    npy, jsn = folder / XRAY_AREAS_FILE, folder / XRAY_RESULTS_FILE
    if not npy.is_file():
        what = f"{jsn.name} without {npy.name} (interrupted write?)" if jsn.is_file() else f"no {npy.name}"
        raise DataError(f"{folder}: {what}")
    meta = read_json(jsn) if jsn.is_file() else {}
    if not isinstance(meta, dict):
        raise DataError(f"{jsn}: expected a JSON object")
    if "schema_version" not in meta:
        areas, _ = read_npy(npy)
        if areas.ndim != 1:
            raise DataError(f"{npy}: expected a 1-D array of areas, got shape {areas.shape}")
        return XRays(folder, areas.astype(np.float64, copy=False), None, dict(meta))
    _check_new_format(jsn, meta)
    areas, ids = _load_checked_arrays(folder, meta, XRAY_AREAS_FILE, XRAY_EVENT_IDS_FILE, XRAY_RESULTS_FILE)
    return XRays(folder, areas, ids, dict(meta))


# --------------------------------------------------------------------------- timing
def store_timing(out_dir: PathLike, timing: Mapping[str, Any], *, raw_root: PathLike | None = None) -> Path:
    """Write ``timing.json`` (the set's S1/S2 windows, µs; keys as given plus ``schema_version``)."""
    doc = dict(timing)
    doc["schema_version"] = SCHEMA_VERSION
    return write_json_atomic(Path(out_dir) / TIMING_FILE, doc, raw_root=raw_root)


def load_timing(out_dir: Any, run: Any = None) -> dict:
    """Read ``timing.json``; DataError when missing or unreadable. JSON nulls stay None."""
    path = resolve_folder(out_dir, run) / TIMING_FILE
    if not path.is_file():
        raise DataError(f"{path}: missing (run the timing stage first)")
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected a JSON object")
    version = doc.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise DataError(f"{path}: schema_version {version} not supported")
    return doc
