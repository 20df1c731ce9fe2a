"""Per-file results of the pass, cached so that a set that gained files reads only the new ones.

A long data-taking run adds files for hours; re-reading the whole set for every new file costs the whole
pass again. The per-frame numbers of one file (:class:`s2lib.signal.integration.FileResult`) depend only on

- the file itself, identified by its absolute path, size (bytes) and modification time (ns): a file that
  was rewritten, grown or touched is read again;
- the parameters of its set's plan (:class:`s2lib.signal.integration.SetPlan` without name and file list: S1 time,
  integration window, pedestal samples, X-ray parameters, pile-up end, which parts are computed) and the frame
  limit of this file (``max_frames``);
- the engine's code: a SHA-256 of the source of the modules that compute them (:data:`ENGINE_MODULES`) and
  the numpy version.

The cache key is the SHA-256 of these (:func:`file_key`). Entries live in the run's output folder,
``<output>/<run_id>/<set>/.filecache/``: one pack per pass (``<name>.frames``, the ``.npy`` of the per-frame
records of the files read in that pass; atomic replace without fsync, never below the raw folder; see
:func:`_write`) and an ``index.json`` of the file identities last seen and of each key's slice of a pack
(``s2book status`` compares the set's files with it: new, changed) and ``pass.json`` with the counts of the last pass (``s2book run`` prints
``[<run_id>] <set>: <N> files read, <M> reused``). Files that could not be read are never cached (they are
tried again, and reported again, every pass). The per-set arrays are concatenated from the per-file arrays in
file order exactly as in a pass from scratch, so an incremental result is bit-identical to it.

The timing windows are part of the key, so they must not move when files are appended: the timing estimate
samples the *first* frames of a set in file order (:func:`s2lib.signal.timing_plan.sample_plan`), so once a set holds more
than that sample, appending files changes neither the windows nor the keys of the files already read.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from s2lib.io.manifest import FILE_CACHE_DIR
from s2lib.io.atomic import resolve_path
from s2lib.io.store import ensure_not_in_raw

__all__ = ["CACHE_DIR", "ENGINE_MODULES", "engine_hash", "file_identity", "file_key", "plan_digest", "SetCache", "set_status",
           "pass_line", "read_pass"]

CACHE_DIR = FILE_CACHE_DIR
"""Folder of the per-file cache inside a set's output folder."""
ENGINE_MODULES = ("s2lib.signal.integration", "s2lib.signal.file_pass", "s2lib.signal.waveform", "s2lib.signal.frames",
                  "s2lib.signal.xray", "s2lib.signal.xray_pass", "s2lib.signal.timing", "s2lib.signal.timing_plan",
                  "s2lib.io.wfm", "s2lib.io._wfm_layout", "s2lib.io._wfm_cache")
"""Modules whose source enters every key: the engine, its kernels and the WFM reader."""
_ARRAYS = ("areas", "xray_reason", "xray_area", "flags", "sideband")
_RECORD = np.dtype([("areas", "<f8"), ("xray_reason", "i1"), ("xray_area", "<f8"), ("flags", "u1"),
                    ("sideband", "<f8")])
"""One cached frame: the per-frame arrays of a FileResult, exactly (float64 bits kept)."""
_SUFFIX = ".frames"


_ENGINE: str | None = None


def engine_hash() -> str:
    """SHA-256 of the engine's source (:data:`ENGINE_MODULES`) and the numpy version (computed once)."""
    global _ENGINE
    if _ENGINE is None:
        import importlib

        h = hashlib.sha256(f"numpy {np.__version__}\n".encode())
        for name in ENGINE_MODULES:
            mod = importlib.import_module(name)
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
    """The plan's parameters without name and files: the same dict as ``dataclasses.asdict(plan)`` minus those
    two keys, built field by field so that a key costs O(fields), not O(files of the set) (a set may hold
    thousands of files, and workers receive a fresh copy of the plan with every task)."""
    return {f.name: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
            for f in dataclasses.fields(plan) if f.name not in ("name", "files")
            for v in (getattr(plan, f.name),)}


def plan_digest(plan: Any) -> str:
    """SHA-256 of the plan's parameters (:func:`_plan_params`) and :func:`engine_hash`: the part of every
    :func:`file_key` of a set that does not depend on the file (computed once per set and pass)."""
    doc = {"plan": _plan_params(plan), "engine": engine_hash()}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()


def file_key(plan: Any, path: str, limit: int | None, identity: Mapping[str, Any], *,
             digest: str | None = None) -> str:
    """The cache key of one file's result (module docstring): SHA-256 of path, size, mtime_ns, the frame limit
    and :func:`plan_digest` (the plan's parameters and :func:`engine_hash`; pass ``digest`` when known)."""
    doc = {"path": str(resolve_path(path)), **identity, "limit": limit,
           "plan_engine": digest if digest is not None else plan_digest(plan)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=repr).encode()).hexdigest()


class SetCache:
    """The per-file cache of one set's output folder (see the module docstring).

    Results read in one pass are written together at its end as one *pack* (``<name>.frames``: the ``.npy``
    of their per-frame records) and ``index.json`` maps each file to its key and each key to its slice of a
    pack: two writes per set and pass instead of one per file (creating and renaming a file per raw file cost
    more than the analysis of a small file on a busy disk). Packs no entry refers to any more are deleted.

    Args:
        set_dir: the set's output folder (``Run.set_output_dir``).
        raw_root: the run's raw folder (writes below it are refused).
    """

    def __init__(self, set_dir: str | os.PathLike[str], raw_root: Any = None) -> None:
        self.folder = Path(set_dir) / CACHE_DIR
        self.raw_root = raw_root
        doc = _read_json(self.folder / "index.json")
        self.index: dict[str, dict[str, Any]] = doc.get("files", {})
        self.entries: dict[str, dict[str, Any]] = doc.get("entries", {})
        self.read: list[str] = []
        self.reused: list[str] = []
        self._keys: dict[int, tuple[str, dict[str, Any]] | None] = {}
        self._packs: dict[str, np.ndarray | None] = {}
        self._new: list[tuple[str, dict[str, Any], np.ndarray]] = []
        self._digest: tuple[Any, str] | None = None     # (plan, plan_digest(plan)) of the plan last seen

    def _key(self, plan: Any, path: str, limit: int | None, ident: Mapping[str, Any]) -> str:
        if self._digest is None or self._digest[0] is not plan:
            self._digest = (plan, plan_digest(plan))
        return file_key(plan, path, limit, ident, digest=self._digest[1])

    def _pack(self, name: str) -> np.ndarray | None:
        if name not in self._packs:
            try:
                table = np.load(self.folder / name, mmap_mode="r", allow_pickle=False)
                self._packs[name] = table if table.dtype == _RECORD and table.ndim == 1 else None
            except (OSError, ValueError, EOFError):
                self._packs[name] = None
        return self._packs[name]

    def get(self, plan: Any, file_index: int, limit: int | None) -> Any:
        """The cached :class:`~s2lib.signal.integration.FileResult` of ``plan.files[file_index]`` (its index set to
        ``file_index``), or None (not cached, changed, unreadable entry)."""
        from s2lib.signal.file_pass import FileResult

        path = plan.files[file_index]
        ident = file_identity(path)
        key = None if ident is None else self._key(plan, path, limit, ident)
        self._keys[file_index] = None if key is None else (key, ident)   # type: ignore[assignment]
        entry = self.entries.get(key) if key is not None else None
        table = self._pack(str(entry.get("pack"))) if entry else None
        if entry is None or table is None:
            return None
        a, b = int(entry["start"]), int(entry["stop"])
        if not 0 <= a <= b <= table.shape[0] or b - a != int(entry["n_frames"]):
            return None
        rows = np.array(table[a:b])
        self.reused.append(Path(path).name)
        self.index[Path(path).name] = {**ident, "key": key}   # type: ignore[dict-item]
        return FileResult(file_index, b - a, *(np.ascontiguousarray(rows[k]) for k in _ARRAYS[:3]),
                          float(entry["dt_us"]), None, np.ascontiguousarray(rows["flags"]),
                          np.ascontiguousarray(rows["sideband"]), int(entry["n_promised"]), None)

    def put(self, plan: Any, result: Any) -> None:
        """Keep a freshly computed result for the pack (a failed file's is counted, not cached)."""
        path = plan.files[result.file_index]
        self.read.append(Path(path).name)
        known = self._keys.get(result.file_index)
        if known is None:
            ident = file_identity(path)
            self._keys[result.file_index] = known = None if ident is None else (
                self._key(plan, path, None, ident), ident)
        if result.error is not None or known is None:     # seen (status: not new) but never reused
            if known is not None:
                self.index[Path(path).name] = {**known[1], "key": None}
            else:
                self.index.pop(Path(path).name, None)
            return
        key, ident = known
        table = np.empty(result.n_frames, dtype=_RECORD)
        for k in _ARRAYS:
            table[k] = getattr(result, k)
        self._new.append((key, {"n_frames": int(result.n_frames), "dt_us": float(result.dt_us),
                                "n_promised": int(result.n_promised)}, table))
        self.index[Path(path).name] = {**ident, "key": key}

    def finish(self, files: Sequence[str]) -> None:
        """Write this pass's pack, ``index.json`` (identities of the set's current files, entries) and
        ``pass.json`` (counts); delete entries and packs no current file refers to."""
        names = {Path(f).name for f in files}
        self.index = {n: v for n, v in self.index.items() if n in names}
        if self._new:
            tables = [t for _, _, t in self._new]
            pack = hashlib.sha256("".join(k for k, _, _ in self._new).encode()).hexdigest()[:20] + _SUFFIX
            buf = io.BytesIO()
            np.save(buf, np.concatenate(tables), allow_pickle=False)
            _write(self.folder / pack, buf.getvalue(), self.raw_root)
            start = 0
            for key, meta, table in self._new:
                self.entries[key] = {**meta, "pack": pack, "start": start, "stop": start + table.shape[0]}
                start += table.shape[0]
            self._new = []
        used = {v.get("key") for v in self.index.values()}
        self.entries = {k: v for k, v in self.entries.items() if k in used}
        _write(self.folder / "index.json", json.dumps({"files": self.index, "entries": self.entries},
                                                      indent=1).encode(), self.raw_root)
        packs = {v["pack"] for v in self.entries.values()}
        for old in self.folder.glob(f"*{_SUFFIX}"):
            if old.name not in packs:
                old.unlink(missing_ok=True)
        _write(self.folder / "pass.json", json.dumps({"files_read": len(self.read), "files_reused":
                                                      len(self.reused), "read": sorted(self.read)}).encode(),
               self.raw_root)


def _write(path: Path, data: bytes, raw_root: Any) -> None:
    """Atomic replace (temporary file in the same folder + ``os.replace``) *without* fsync: an entry lost or
    left truncated by a crash is only a cache miss (:meth:`SetCache.get` rejects any entry it cannot load or
    whose table length differs from its header), while an fsync per file cost more than reading a 12-MB file on a shared disk."""
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
