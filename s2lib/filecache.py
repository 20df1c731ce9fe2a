"""Per-file results of the pass, cached so that a set that gained files reads only the new ones.

A long data-taking run adds files for hours; re-reading the whole set for every new file costs the whole
pass again. The per-frame numbers of one file (:class:`s2lib.integration.FileResult`) depend only on

- the file itself, identified by its absolute path, size (bytes) and modification time (ns): a file that
  was rewritten, grown or touched is read again;
- the parameters of its set's plan (:class:`s2lib.integration.SetPlan` without name and file list: S1 time,
  integration window, pedestal samples, X-ray parameters, pile-up end, which parts are computed) and the frame
  limit of this file (``max_frames``);
- the engine's code: a SHA-256 of the source of the modules that compute them (:data:`ENGINE_MODULES`) and
  the numpy version.

The cache key is the SHA-256 of these (:func:`file_key`). Entries live in the run's output folder,
``<output>/<run_id>/<set>/.filecache/<key>.npz`` (atomic replace without fsync, never below the raw folder; see
:func:`_write`), with an
``index.json`` of the file identities last seen (``s2book status`` compares the set's files with it: new,
changed) and ``pass.json`` with the counts of the last pass (``s2book run`` prints
``[<run_id>] <set>: <N> files read, <M> reused``). Files that could not be read are never cached (they are
tried again, and reported again, every pass). The per-set arrays are concatenated from the per-file arrays in
file order exactly as in a pass from scratch, so an incremental result is bit-identical to it.

The timing windows are part of the key, so they must not move when files are appended: the timing estimate
samples the *first* frames of a set in file order (:func:`s2lib.timing.sample_plan`), so once a set holds more
than that sample, appending files changes neither the windows nor the keys of the files already read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .store import ensure_not_in_raw

__all__ = ["CACHE_DIR", "ENGINE_MODULES", "engine_hash", "file_identity", "file_key", "SetCache", "set_status",
           "pass_line", "read_pass"]

CACHE_DIR = ".filecache"
"""Folder of the per-file cache inside a set's output folder."""
ENGINE_MODULES = ("integration", "waveform", "xray", "timing", "wfm", "_wfm_layout")
"""Modules (of s2lib) whose source enters every key: the engine, its kernels and the WFM reader."""
_ARRAYS = ("areas", "xray_reason", "xray_area", "flags", "sideband")
_ENGINE: str | None = None


def engine_hash() -> str:
    """SHA-256 of the engine's source (:data:`ENGINE_MODULES`) and the numpy version (computed once)."""
    global _ENGINE
    if _ENGINE is None:
        import importlib

        h = hashlib.sha256(f"numpy {np.__version__}\n".encode())
        for name in ENGINE_MODULES:
            mod = importlib.import_module(f"{__package__}.{name}")
            h.update(name.encode() + b"\n" + Path(mod.__file__ or "").read_bytes())
        _ENGINE = h.hexdigest()
    return _ENGINE


def file_identity(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``{"size": bytes, "mtime_ns": ns}`` of a file (None when it cannot be stat-ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _plan_params(plan: Any) -> dict[str, Any]:
    d = dataclasses.asdict(plan)
    d.pop("name", None)
    d.pop("files", None)
    return d


def file_key(plan: Any, path: str, limit: int | None, identity: Mapping[str, Any]) -> str:
    """The cache key of one file's result (module docstring): SHA-256 of path, size, mtime_ns, the plan's
    parameters, the frame limit and :func:`engine_hash`."""
    doc = {"path": str(Path(path).resolve()), **identity, "plan": _plan_params(plan), "limit": limit,
           "engine": engine_hash()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()


class SetCache:
    """The per-file cache of one set's output folder (see the module docstring).

    Args:
        set_dir: the set's output folder (``Run.set_output_dir``).
        raw_root: the run's raw folder (writes below it are refused).
    """

    def __init__(self, set_dir: str | os.PathLike[str], raw_root: Any = None) -> None:
        self.folder = Path(set_dir) / CACHE_DIR
        self.raw_root = raw_root
        self.index: dict[str, dict[str, Any]] = _read_json(self.folder / "index.json").get("files", {})
        self.read: list[str] = []
        self.reused: list[str] = []
        self._keys: dict[int, tuple[str, dict[str, Any]] | None] = {}

    def get(self, plan: Any, file_index: int, limit: int | None) -> Any:
        """The cached :class:`~s2lib.integration.FileResult` of ``plan.files[file_index]`` (its index set to
        ``file_index``), or None (not cached, changed, unreadable entry)."""
        from .integration import FileResult

        path = plan.files[file_index]
        ident = file_identity(path)
        self._keys[file_index] = None if ident is None else (file_key(plan, path, limit, ident), ident)
        if ident is None:
            return None
        entry = self.folder / f"{self._keys[file_index][0]}.npz"   # type: ignore[index]
        try:
            with np.load(entry, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                arrays = {k: z[k] for k in _ARRAYS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        self.reused.append(Path(path).name)
        return FileResult(file_index, int(meta["n_frames"]), arrays["areas"], arrays["xray_reason"],
                          arrays["xray_area"], float(meta["dt_us"]), None, arrays["flags"], arrays["sideband"],
                          int(meta["n_promised"]), None)

    def put(self, plan: Any, result: Any) -> None:
        """Store a freshly computed result (not a failed file's)."""
        path = plan.files[result.file_index]
        self.read.append(Path(path).name)
        known = self._keys.get(result.file_index)
        if result.error is not None or known is None:
            return
        key, ident = known
        buf = io.BytesIO()
        meta = json.dumps({"n_frames": int(result.n_frames), "dt_us": float(result.dt_us),
                           "n_promised": int(result.n_promised), "file": Path(path).name}).encode()
        np.savez(buf, meta=np.frombuffer(meta, np.uint8),
                 **{k: np.asarray(getattr(result, k)) for k in _ARRAYS})
        _write(self.folder / f"{key}.npz", buf.getvalue(), self.raw_root)
        old = self.index.get(Path(path).name, {}).get("key")
        if old and old != key:
            (self.folder / f"{old}.npz").unlink(missing_ok=True)
        self.index[Path(path).name] = {**ident, "key": key}

    def finish(self, files: Sequence[str]) -> None:
        """Write ``index.json`` (the identities of the set's current files) and ``pass.json`` (counts)."""
        names = {Path(f).name for f in files}
        for name in [n for n in self.index if n not in names]:      # files that left the set
            (self.folder / f"{self.index.pop(name).get('key')}.npz").unlink(missing_ok=True)
        _write(self.folder / "index.json", json.dumps({"files": self.index}, indent=1).encode(), self.raw_root)
        _write(self.folder / "pass.json", json.dumps({"files_read": len(self.read), "files_reused":
                                                      len(self.reused), "read": sorted(self.read)}).encode(),
               self.raw_root)


def _write(path: Path, data: bytes, raw_root: Any) -> None:
    """Atomic replace (temporary file in the same folder + ``os.replace``) *without* fsync: an entry lost or
    left empty by a crash is only a cache miss (:meth:`SetCache.get` rejects any entry it cannot load; zip
    members carry a CRC), while an fsync per file cost more than reading a 12-MB file on a shared disk."""
    ensure_not_in_raw(path, raw_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def set_status(set_dir: str | os.PathLike[str], files: Sequence[str | os.PathLike[str]]) -> dict[str, int]:
    """``{"new", "changed", "unchanged"}``: the set's files against the cache index of its last pass (a file is
    *changed* when its size or modification time differs)."""
    index = _read_json(Path(set_dir) / CACHE_DIR / "index.json").get("files", {})
    out = {"new": 0, "changed": 0, "unchanged": 0}
    for f in files:
        old = index.get(Path(f).name)
        ident = file_identity(f)
        if old is None:
            out["new"] += 1
        elif ident is None or (old.get("size"), old.get("mtime_ns")) != (ident["size"], ident["mtime_ns"]):
            out["changed"] += 1
        else:
            out["unchanged"] += 1
    return out


def read_pass(set_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The counts of a set's last pass (``pass.json``), or None."""
    doc = _read_json(Path(set_dir) / CACHE_DIR / "pass.json")
    return doc or None


def pass_line(run_id: str, set_name: str, set_dir: str | os.PathLike[str]) -> str | None:
    """``[<run_id>] <set>: <N> files read, <M> reused`` from the last pass (None without one)."""
    doc = read_pass(set_dir)
    if doc is None:
        return None
    return f"[{run_id}] {set_name}: {doc.get('files_read', 0)} files read, {doc.get('files_reused', 0)} reused"


def pass_lines(run_id: str, output_dir: str | os.PathLike[str], since: float = 0.0) -> list[str]:
    """The :func:`pass_line` of every set folder of ``output_dir`` whose ``pass.json`` was written at or after
    ``since`` (a ``time.time()``), in folder-name order."""
    lines = []
    for folder in sorted(p for p in Path(output_dir).iterdir() if p.is_dir()) if Path(output_dir).is_dir() else []:
        doc = folder / CACHE_DIR / "pass.json"
        try:
            fresh = doc.stat().st_mtime >= since
        except OSError:
            continue
        line = pass_line(run_id, folder.name, folder) if fresh else None
        if line:
            lines.append(line)
    return lines


def status_lines(run: Any) -> list[str]:
    """``set <name>: <n> new files, <m> changed`` for every set of a ``runs.Run`` whose files differ from its
    last pass (none for sets whose files were all read before, unchanged)."""
    lines = []
    for s in run.sets:
        st = set_status(run.set_output_dir(s.name), s.files)
        if st["new"] or st["changed"]:
            lines.append(f"set {s.name}: {st['new']} new files, {st['changed']} changed")
    return lines
