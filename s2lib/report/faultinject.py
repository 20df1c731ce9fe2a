"""Fault injection on a COPY of a run folder, and the checks against an undisturbed run (tests/test_faults.py,
benchmarks/faults.py).

File faults (:data:`FILE_FAULTS`), applied by :func:`inject` to one ``.wfm`` file of the copy:

- ``truncate``: cut at a random offset (an acquisition stopped mid-write);
- ``zero_block``: a block of up to 4 KiB set to zero at a random offset;
- ``random_bytes``: 1-16 bytes set to random values at random offsets;
- ``empty``: the file emptied;
- ``not_wfm``: replaced by text (a foreign file with a ``.wfm`` name);
- ``unreadable``: mode 000. Root ignores file modes (CAP_DAC_OVERRIDE), so the reader must then run without
  the DAC capabilities (:func:`drop_dac_caps_cmd`: ``setpriv --bounding-set -dac_override,-dac_read_search``),
  which gives a real ``EACCES``;
- ``directory``, ``fifo``: replaced by a directory / a FIFO of the same name (a FIFO must not block a reader;
  set discovery skips both, see :data:`FILE_FAULTS`);
- ``vanish``: removed after the run discovered its files (:func:`vanish`).

What :func:`expected_outcome` predicts for a fault is checked by :func:`check_set`: untouched files' areas
bit-identical to the clean run (for the same timing windows), the touched file skipped with the expected field,
or salvaged with exactly its complete frames, or read with its changed samples.
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np

from s2lib.io import _wfm_layout as _layout
from s2lib.errors import DataError
from s2lib.stats.fit_store import load_s2area

__all__ = ["FILE_FAULTS", "copy_run", "inject", "vanish", "expected_outcome", "frame_areas", "check_set", "run_problems",
           "check_loadable", "drop_dac_caps_cmd", "runner_cmd", "descendants", "wait_processes_gone"]

FILE_FAULTS = ("truncate", "zero_block", "random_bytes", "empty", "not_wfm", "unreadable")
"""File faults of a run's copy (``vanish`` is applied during a run by :func:`vanish`). ``directory`` and
``fifo`` are applied by :func:`inject` too, but set discovery (``runs.find_set_files``) lists regular files
only, so in a run folder they are never opened; the reader's refusal of them is tested on their own."""


def copy_run(src: Path, dst: Path) -> Path:
    """Copy a simulated run folder (``raw/``, ``run.yaml``; paths in it are relative) to ``dst``; return the
    copy's ``run.yaml``. Its outputs go to ``dst/processed``."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(Path(src) / "raw", dst / "raw")
    shutil.copy2(Path(src) / "run.yaml", dst / "run.yaml")
    return dst / "run.yaml"


def inject(path: Path, kind: str, rng: np.random.Generator) -> dict[str, Any]:
    """Apply the file fault ``kind`` to ``path`` (bytes read first, for :func:`expected_outcome`); return
    ``{"kind", "file", "offset", "original"}``."""
    path = Path(path)
    original = path.read_bytes()
    size = len(original)
    info: dict[str, Any] = {"kind": kind, "file": path.name, "offset": None, "original": original}
    if kind == "truncate":
        info["offset"] = int(rng.integers(0, size))
        os.truncate(path, info["offset"])
    elif kind in ("zero_block", "random_bytes"):
        blob = bytearray(original)
        if kind == "zero_block":
            start = int(rng.integers(0, size))
            end = min(size, start + int(rng.integers(1, 4097)))
            blob[start:end] = bytes(end - start)
            info["offset"] = start
        else:
            where = rng.integers(0, size, size=int(rng.integers(1, 17)))
            for w in where:
                blob[int(w)] = int(rng.integers(0, 256))
            info["offset"] = int(where.min())
        path.write_bytes(bytes(blob))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_wfm":
        path.write_text("this is a lab notebook, not a waveform\n" * 40)
    elif kind == "unreadable":
        path.chmod(0)
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    elif kind == "fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FILE_FAULTS)}")
    return info


def vanish(path: Path) -> dict[str, Any]:
    """Remove ``path`` (call it after the run discovered its files)."""
    Path(path).unlink()
    return {"kind": "vanish", "file": Path(path).name, "offset": None, "original": b""}


def _layout_of(blob: bytes) -> tuple[int, int, int]:
    """``(n_frames promised, curve offset, frame stride)`` of an intact little-endian WFM#003 file."""
    n_extra = int(np.frombuffer(blob, "<u4", 1, 72)[0])
    curve0 = np.frombuffer(blob, _layout.curve_spec_dtype("<"), 1, 808)[0]
    return n_extra + 1, int(np.frombuffer(blob, "<i4", 1, 16)[0]), int(curve0["postcharge_stop"])


def expected_outcome(info: dict[str, Any]) -> dict[str, Any]:
    """What the reader must make of a fault: ``{"outcome": "skipped", "fields": {...}}``, ``{"outcome":
    "partial", "frames": k}``, ``{"outcome": "complete"}`` or ``{"outcome": "any"}`` (random bytes or zeros that
    may hit the header: refused with any field, or read)."""
    kind = info["kind"]
    if kind in ("empty", "not_wfm"):
        return {"outcome": "skipped", "fields": {"header", "byte-order mark"}}
    if kind in ("unreadable", "directory", "fifo", "vanish"):
        return {"outcome": "skipped", "fields": {"file"}}
    n, offset, stride = _layout_of(info["original"])
    if kind == "truncate":
        cut = info["offset"]
        if cut < _layout.V3_HEADER_SIZE:
            return {"outcome": "skipped", "fields": {"header", "byte-order mark", "version"}}
        if cut < offset:
            return {"outcome": "skipped", "fields": {"FastFrame count (offset 72)"}}
        k = (cut - offset) // stride
        if k >= n:
            return {"outcome": "complete"}
        return {"outcome": "partial", "frames": k} if k >= 1 else {"outcome": "skipped", "fields": {"curve buffer"}}
    if info["offset"] is not None and info["offset"] >= offset:
        return {"outcome": "complete"}             # only samples (or the checksum) changed
    return {"outcome": "any"}


def frame_areas(folder: Path, names: list[str]) -> dict[tuple[str, int], int]:
    """``{(file name, frame): area bits}`` of a set's stored areas (float64 bit patterns: exact comparison)."""
    s2 = load_s2area(folder)
    bits = np.asarray(s2.areas, dtype=np.float64).view(np.int64)
    return {(names[int(f)], int(j)): int(b) for (f, j), b in zip(s2.event_ids, bits)}


def check_set(clean: dict[tuple[str, int], int], got: dict[tuple[str, int], int], folder: Path,
              faults: list[dict[str, Any]]) -> list[str]:
    """Problems of one faulty set against the clean run (empty list: as expected). See the module docstring."""
    problems: list[str] = []
    touched = {f["file"] for f in faults}
    for key, bits in clean.items():
        if key[0] not in touched and got.get(key) != bits:
            problems.append(f"{key[0]} frame {key[1]}: area differs from the clean run")
    s2 = load_s2area(folder)
    failed = {f["file"]: f for f in s2.params.get("files_failed", [])}
    partial = {f["file"]: f for f in s2.params.get("files_partial", [])}
    for fault in faults:
        name, want = fault["file"], expected_outcome(fault)
        frames = sorted(j for (f, j) in got if f == name)
        if want["outcome"] == "skipped":
            if name not in failed or failed[name].get("field") not in want["fields"]:
                problems.append(f"{name} ({fault['kind']}): expected skipped with a field in {sorted(want['fields'])}, "
                                f"got {failed.get(name) or partial.get(name) or f'{len(frames)} frames read'}")
        elif want["outcome"] == "partial":
            k = want["frames"]
            if partial.get(name, {}).get("frames_read") != k or frames != list(range(k)):
                problems.append(f"{name} (truncated at {fault['offset']}): expected {k} complete frames, got "
                                f"{partial.get(name) or failed.get(name) or len(frames)}")
            elif any(got[(name, j)] != clean[(name, j)] for j in range(k)):
                problems.append(f"{name}: salvaged frames differ from the clean run")
        elif want["outcome"] == "complete" and (name in failed or name in partial):
            problems.append(f"{name} ({fault['kind']} at {fault['offset']}): expected to be read whole, got "
                            f"{failed.get(name) or partial.get(name)}")
    return problems


def run_problems(run: Any, clean: dict[str, dict[tuple[str, int], int]], names: dict[str, list[str]],
                 faults: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Every way a faulted run differs from the clean one: per set (:func:`check_set` against the clean run's
    ``clean[set]`` areas, file names ``names[set]``, the set's injected ``faults``), then anything half-written
    that loads (:func:`check_loadable`). Empty when the run is as expected."""
    out: list[str] = []
    for s in run.sets:
        folder = run.set_output_dir(s.name)
        got = frame_areas(folder, names[s.name])
        out += [f"{s.name}: {p}" for p in check_set(clean[s.name], got, folder, faults.get(s.name, []))]
    return out + check_loadable(run.output_dir)


def check_loadable(output_dir: Path) -> list[str]:
    """Problems of the stored artifacts: every set folder's results either load consistently (the store
    checks the arrays' SHA-256) or are refused with DataError; no temporary file is left behind."""
    problems: list[str] = []
    root = Path(output_dir)
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("FieldScan")):
        try:
            load_s2area(folder)
        except DataError:
            pass
        except Exception as err:  # noqa: BLE001 - anything else is a finding
            problems.append(f"{folder.name}: {type(err).__name__}: {err}")
    problems += [f"leftover {p}" for p in root.rglob(".*.tmp")]
    return problems


def drop_dac_caps_cmd() -> list[str]:
    """Command prefix that runs a program without the capabilities that let root ignore file modes (empty
    when not root: modes already apply). ``setpriv`` is util-linux's."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise RuntimeError("running as root without setpriv: a mode-000 file cannot be made unreadable")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--"]


def is_special(path: Path) -> bool:
    """True for a directory or FIFO left where a file was (to clean up a faulty copy)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISDIR(mode) or stat.S_ISFIFO(mode)


_RUNNER = """
import sys
from s2lib.report.report import run_reports
sys.exit(run_reports([sys.argv[1]], stages=sys.argv[4].split(","), root=sys.argv[2], template_dir=sys.argv[3],
                     force=sys.argv[5] == "force", wait=sys.argv[6] == "wait"))
"""


def runner_cmd(config: Path, root: Path, *, stages: tuple[str, ...] = ("integration",), force: bool = False,
               wait: bool = False) -> list[str]:
    """Command line of ``s2book run`` on ``config`` with the executed notebooks under ``root/book`` (not the
    checkout's), the installed templates, the given stages, ``--force`` and ``--wait``."""
    import sys

    from .project import packaged_templates

    return [sys.executable, "-c", _RUNNER, str(config), str(root), str(packaged_templates()), ",".join(stages),
            "force" if force else "-", "wait" if wait else "-"]


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (Linux ``/proc``): the runner's kernels and their workers. Jupyter
    starts each kernel in a session of its own, so the runner's process group does not contain it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


def wait_processes_gone(pids: set[int], timeout: float = 60.0) -> float | None:
    """Seconds until none of ``pids`` is alive (a killed runner's kernel and workers), or None after
    ``timeout`` (they are then killed)."""
    import signal
    import time

    def alive(pid: int) -> bool:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state != "Z"

    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if not any(alive(p) for p in pids):
            return time.monotonic() - t0
        time.sleep(0.1)
    for p in pids:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return None
