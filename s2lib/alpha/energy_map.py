"""Reader of the lab's per-set alpha energy maps ``energy_map_f######-f######.bin`` (notes/alpha.md 2.2,
domain.md 2.1).

Little-endian packed records, no header, sorted by uid within a chunk:
"8b": (uint32 uid, float32 E); "6b": (uint32 uid, uint16 q) with E = q·scale (scale default 0.1 u_SCA per LSB,
which the lab calls "keV"). E is in SCA units (peak V / 1.058), not MeV. The lab's uid = file_seq·64 + frame
(``decode_uid``), which collides for files of more than 64 frames (alpha.md D5): this reader returns the uid as
stored and decodes only on request.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["RECORD_DTYPES", "read_energy_map", "read_energy_maps", "decode_lab_uid"]

RECORD_DTYPES = {"8b": np.dtype([("uid", "<u4"), ("E", "<f4")]), "6b": np.dtype([("uid", "<u4"), ("q", "<u2")])}


def read_energy_map(path: str | Path, fmt: str = "8b", scale: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(uid uint32, E float64 in u_SCA) of one map file.

    Raises DataError naming the file when it is missing, its size is not a whole number of records, or a
    value is not finite; ValueError for an unknown ``fmt`` or a non-positive ``scale``."""
    if fmt not in RECORD_DTYPES:
        raise ValueError(f"energy_mapping.format: expected '8b' or '6b', got {fmt!r}")
    if not scale > 0:
        raise ValueError(f"energy_mapping.scale: expected a positive number (u_SCA per LSB), got {scale!r}")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: energy map not found")
    data = p.read_bytes()
    dt = RECORD_DTYPES[fmt]
    if len(data) % dt.itemsize:
        other = "6b" if fmt == "8b" else "8b"
        hint = (f"; its size fits {other} records: check energy_mapping.format"
                if len(data) % RECORD_DTYPES[other].itemsize == 0 else "")
        raise DataError(f"{p}: {len(data)} bytes is not a whole number of {dt.itemsize}-byte '{fmt}' records "
                        f"(truncated or another format){hint}")
    rec = np.frombuffer(data, dtype=dt)
    energy = rec["E"].astype(np.float64) if fmt == "8b" else rec["q"].astype(np.float64) * float(scale)
    if not np.all(np.isfinite(energy)):
        bad = int(np.flatnonzero(~np.isfinite(energy))[0])
        raise DataError(f"{p}: record {bad} (uid {int(rec['uid'][bad])}) holds a non-finite energy")
    return rec["uid"].astype(np.uint32), energy


def read_energy_maps(folder: str | Path, fmt: str = "8b", scale: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """All ``energy_map_*.bin`` chunks of a set's map folder, concatenated and sorted by uid; DataError when
    there is none or a uid repeats (the lab's 64-frame uid collides for bigger files)."""
    files = sorted(Path(folder).glob("energy_map_*.bin"))
    if not files:
        raise DataError(f"{folder}: no energy_map_*.bin files")
    parts = [read_energy_map(f, fmt, scale) for f in files]
    uid = np.concatenate([u for u, _ in parts])
    e = np.concatenate([x for _, x in parts])
    order = np.argsort(uid, kind="stable")
    uid, e = uid[order], e[order]
    dup = np.flatnonzero(np.diff(uid) == 0)
    if dup.size:
        raise DataError(f"{folder}: uid {int(uid[dup[0]])} appears more than once ({dup.size} repeats): the lab's "
                        "uid = file_seq*64 + frame collides for files of more than 64 frames")
    return uid, e


def decode_lab_uid(uid: np.ndarray, frames_per_uid: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(file_seq, frame index) of the lab's uid = file_seq·64 + frame (``uid_utils.decode_uid``)."""
    u = np.asarray(uid, dtype=np.int64)
    return u // frames_per_uid, u % frames_per_uid
