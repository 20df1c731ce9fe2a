"""Atomic artifact writers and checked readers: every file the package writes goes through here.

Each writer encodes the whole content first, writes it to a temporary file in the target folder, flushes and
fsyncs it, renames it over the target (``os.replace``) and fsyncs the folder, so a reader sees either the old or
the new file, never a partial one; :func:`group_commit` syncs the files of a whole pass together. No writer
writes below a run's raw data folder (``raw_root``): the raw data are read-only (DESIGN.md). JSON is written
with NaN/inf as ``null`` (:func:`json_sanitize`). Split from :mod:`s2lib.io.store` (the artifact formats and the
commit protocol), which re-exports every name here.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from s2lib.errors import DataError

__all__ = ["json_sanitize", "ensure_not_in_raw", "resolve_path", "write_bytes_atomic", "write_text_atomic",
           "write_json_atomic", "write_npy_atomic", "write_csv_atomic", "read_json", "read_npy", "PathLike"]

PathLike = str | os.PathLike

# --------------------------------------------------------------------------- JSON sanitising
def json_sanitize(obj: Any) -> Any:
    """Plain-JSON copy of ``obj``: numpy scalars/arrays → Python numbers/lists, NaN/±inf → None,
    Path → str, tuples/sets → lists, mapping keys → str, objects with ``to_dict()`` → that dict.

    Floats keep full precision (``json`` writes the shortest repr that round-trips). Anything else raises
    TypeError, before any file is touched.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.ndarray):
        return [json_sanitize(v) for v in obj.tolist()] if obj.ndim else json_sanitize(obj.item())
    if isinstance(obj, Mapping):
        return {str(k): json_sanitize(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_sanitize(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        return json_sanitize(to_dict())
    raise TypeError(f"cannot store a {type(obj).__name__} in JSON")


# --------------------------------------------------------------------------- atomic writers
def ensure_not_in_raw(path: PathLike, raw_root: PathLike | None) -> None:
    """Raise DataError when ``path`` is ``raw_root`` or lies below it (the raw tree is never written)."""
    if raw_root is None:
        return
    p = resolve_path(path)
    r = _resolved_root(Path(raw_root).expanduser())
    if p == r or r in p.parents:
        raise DataError(f"refusing to write {p}: it is inside the raw data folder {r}")


def resolve_path(path: PathLike) -> Path:
    """``Path(path).expanduser().resolve()``, cheaper for the many files of one folder: an existing folder is
    resolved once (:func:`_resolved_root`) and a name in it that is no symbolic link is appended."""
    p = Path(path).expanduser()
    if p.is_symlink() or not p.parent.is_dir():
        return p.resolve()
    return _resolved_root(p.parent) / p.name


_ROOTS: dict[tuple[str, int, int], Path] = {}


def _resolved_root(root: Path) -> Path:
    """``root.resolve()``, remembered per (path, device, inode) of what it names now: a pass checks the same raw
    folder and the same set folders before every write (a dozen per set), and resolving walks (lstat) every
    component of the path."""
    try:
        st = os.stat(root)
    except OSError:
        return root.resolve()
    key = (str(root), st.st_dev, st.st_ino)
    known = _ROOTS.get(key)
    if known is not None:
        try:                 # the folder may have been renamed (same inode) and a link re-pointed at it
            again = os.stat(known)
            if (again.st_dev, again.st_ino) == key[1:]:
                return known
        except OSError:
            pass
    _ROOTS[key] = known = root.resolve()
    return known


def write_bytes_atomic(path: PathLike, data: bytes, *, raw_root: PathLike | None = None) -> Path:
    """Write ``data`` to ``path`` atomically: temp file in the same folder, flush, fsync, ``os.replace``
    (inside :func:`group_commit` the fsyncs wait for the end of the block).

    The parent folder is created if needed. On any error the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    pending = _pending()                 # read once: this thread's open group_commit block, if any
    ensure_not_in_raw(path, raw_root)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:            # the folder is created only when missing (a stat less per write)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            view = memoryview(data).cast("B")
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o644)
            if pending is None:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if pending is not None:
        pending.add(Path(os.path.abspath(path)))        # synced by name at the end, whatever the cwd is then
    else:
        _fsync_path(path.parent)
    return path


_GROUP = threading.local()
"""Per thread: ``files``, the set of paths written inside that thread's open :func:`group_commit` block."""
_SYNC_THREADS = 4


def _pending() -> set[Path] | None:
    """The calling thread's open group-commit set (None outside a block)."""
    return getattr(_GROUP, "files", None)


@contextlib.contextmanager
def group_commit() -> Iterator[None]:
    """Group commit: inside this block :func:`write_bytes_atomic` writes each file completely to its temporary
    file and renames it over the target as always, but the fsyncs of the files and of their folders all
    happen when the block ends (also when it raises), concurrently from a few threads, so that the file
    system commits them together: one or two journal commits for the whole block instead of one per file.

    Guarantees. A process killed inside the block never leaves a partial file visible (every rename still
    follows a complete write). When the block has ended, everything written in it is on disk (file contents,
    then the renames in each folder). Only an operating-system crash or power loss *inside* the block can
    lose the contents of files renamed but not yet synced. The pass's readers refuse such a set folder (each
    ``*_results.json`` holds the SHA-256 of its arrays and the JSON itself must parse), so the stage is
    re-run; a torn ``timing.json`` (no checksum) fails to parse and is reported by name when read. Mixed or
    partial data are never accepted. Used around the artifact writes of a pass: a dozen files per set, whose
    one-by-one fsyncs (~4 ms each on a busy shared disk, measured) cost as much as the analysis of a small
    run. Nested blocks: the outermost commits. The block belongs to the thread that opened it: writes from
    other threads meanwhile are synced one by one as outside a block."""
    if _pending() is not None:         # nested: the outer block syncs
        yield
        return
    _GROUP.files = set()
    try:
        yield
    finally:
        files, _GROUP.files = _GROUP.files, None
        _sync_all(sorted(files), sorted({f.parent for f in files}))


def _sync_all(files: list[Path], folders: list[Path]) -> None:
    """fsync the files, then their folders, each group concurrently; a path gone since (replaced, removed) is
    skipped. Four threads batch as well as sixteen (measured: ~20 ms for 50 small files on the busy disk,
    ~180 ms one by one) and start faster."""
    if len(files) <= 1:
        for p in files + folders:
            _fsync_path(p)
        return
    with ThreadPoolExecutor(max_workers=min(_SYNC_THREADS, len(files)), thread_name_prefix="fsync") as pool:
        list(pool.map(_fsync_path, files))
        list(pool.map(_fsync_path, folders))


def _fsync_path(path: Path) -> None:
    """fsync a file or folder by path (the data of a file written and closed earlier are flushed too); an
    unreachable path is skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: PathLike, text: str, *, encoding: str = "utf-8",
                      raw_root: PathLike | None = None) -> Path:
    """Atomic text write (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, text.encode(encoding), raw_root=raw_root)


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(json_sanitize(obj), sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8")


def write_json_atomic(path: PathLike, obj: Any, *, raw_root: PathLike | None = None) -> Path:
    """Atomic JSON write: sorted keys, indent 2, NaN/inf → null. Serialised fully before the file is opened,
    so an object that fails to encode leaves the previous file intact."""
    return write_bytes_atomic(path, _json_bytes(obj), raw_root=raw_root)


def _npy_bytes(array: Any) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def write_npy_atomic(path: PathLike, array: Any, *, raw_root: PathLike | None = None) -> Path:
    """Atomic ``.npy`` write (no pickles)."""
    return write_bytes_atomic(path, _npy_bytes(array), raw_root=raw_root)


def _csv_cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return repr(float(v))                      # shortest round-trip repr: full precision
    if isinstance(v, (np.integer, np.bool_)):
        return str(v.item())
    return str(v)


def write_csv_atomic(path: PathLike, rows: Iterable[Mapping[str, Any]], columns: list[str], *,
                     raw_root: PathLike | None = None) -> Path:
    """Atomic CSV write with a header of ``columns``; keys not in ``columns`` are ignored, missing or None
    values are empty cells, floats at full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return write_text_atomic(path, buf.getvalue(), raw_root=raw_root)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_json(path: PathLike) -> Any:
    """Parse a JSON file; DataError naming the file when it is unreadable or not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable JSON ({exc})") from exc


def read_npy(path: PathLike) -> tuple[np.ndarray, str]:
    """Load an ``.npy`` file (no pickles) and return it with the SHA-256 of its bytes; DataError naming the
    file when it is truncated or corrupt."""
    path = Path(path)
    try:
        data = path.read_bytes()
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: corrupt or truncated .npy file ({exc})") from exc
    return arr, _sha256(data)
