"""Inspection of one WFM file (``s2book inspect``): its header facts and data checks as a JSON-ready summary
(the keys of ``../shared/wfm/samples/expected.json``) and their human-readable rendering.

Split from :mod:`s2lib.io.wfm` (issue 10), whose reader it uses.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from .wfm import _open_regular, open_wfm, verify_checksum

__all__ = ["inspect_summary", "format_summary"]


def _raw_sum(raw: np.ndarray) -> float:
    """Sum of raw samples: exact integer accumulation for integer formats, float64 for the others."""
    if raw.size == 0:
        return 0.0
    if raw.dtype.kind in "iu" and raw.dtype.itemsize <= 4:
        return float(int(raw.sum(dtype=np.int64)))
    return float(raw.sum(dtype=np.float64))


def inspect_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Header facts and data checks of a WFM file, as a JSON-ready dict (keys of ``expected.json``).

    ``sum_V`` is the sum of every user sample of every frame in V, computed as ``sum(raw) * scale + n * offset``
    with an exact integer sum of the raw samples. Times are in s, voltages in V, sizes in bytes. A truncated
    FastFrame file is summarised over its complete frames (``partial`` True, ``frames`` read of
    ``frames_promised``; its checksum is ``missing``).

    Raises:
        WfmError: not a readable analog waveform (or not even one complete frame).
    """
    with open_wfm(path, allow_partial=True) as wf:
        h = wf.header
        raw = wf.raw
        n = raw.size
        summary: dict[str, Any] = {
            "file": h.path.name, "file_bytes": h.file_size, "version": h.version,
            "byte_order": "little" if h.byte_order == "<" else "big", "sample_format": h.sample_format,
            "bytes_per_point": h.bytes_per_point, "frames": h.n_frames, "points": h.n_points,
            "precharge_points": h.precharge_points, "postcharge_points": h.postcharge_points,
            "frame_stride_bytes": h.frame_stride, "curve_offset": h.curve_offset,
            "dt_s": h.dt_s, "t0_s": h.t0_s, "scale_V": h.scale_V, "offset_V": h.offset_V, "label": h.label,
            "frame0_first4_V": wf.volts(0, slice(0, 4)).tolist(),
            "last_frame_first3_V": wf.volts(-1, slice(0, 3)).tolist(),
            "sum_V": _raw_sum(raw) * h.scale_V + n * h.offset_V,
            "frame_gmt_sec": h.gmt_sec.tolist(), "frame_gmt_fract": h.gmt_fract.tolist(),
            "tt_offsets": h.tt_offsets.tolist(),
            "partial": h.partial, "frames_promised": max(h.n_frames, h.n_frames_promised),
        }
    end = h.curve_end
    summary["checksum"] = "missing" if h.file_size < end + 8 else ("ok" if verify_checksum(path) else "mismatch")
    with _open_regular(h.path) as fh:
        fh.seek(end + 8)
        summary["trailer_bytes"] = max(0, h.file_size - end - 8)
        summary["tekmeta_trailer"] = fh.read(8) == b"tekmeta!"
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable rendering of :func:`inspect_summary` (units stated on every line)."""
    s = summary
    gmt = s["frame_gmt_sec"]
    first_trigger = f"{gmt[0]} s + {s['frame_gmt_fract'][0]:.12f} s (Unix UTC)" if gmt and gmt[0] else "not set"
    lines = [
        f"file:            {s['file']} ({s['file_bytes']} bytes, WFM#00{s['version']}, {s['byte_order']}-endian)",
        f"frames:          {s['frames']} x {s['points']} user points "
        f"({s['precharge_points']} pre / {s['postcharge_points']} post charge points per frame)",
        f"samples:         {s['sample_format']} ({s['bytes_per_point']} bytes/point), "
        f"V = raw x {s['scale_V']:.6g} V/LSB + ({s['offset_V']:.6g} V)",
        f"sampling:        dt = {s['dt_s'] * 1e9:.6g} ns ({1e-9 / s['dt_s']:.6g} GS/s), "
        f"first point at {s['t0_s'] * 1e6:.6g} us from the trigger",
        f"first trigger:   {first_trigger}",
        f"frame 0 [V]:     {', '.join(f'{v:.6g}' for v in s['frame0_first4_V']) or '(no points)'}",
        f"sum of samples:  {s['sum_V']:.9g} V",
        f"checksum:        {s['checksum']}; trailer {s['trailer_bytes']} bytes"
        + (" (tekmeta!)" if s["tekmeta_trailer"] else ""),
    ]
    if s["label"]:
        lines.insert(1, f"label:           {s['label']}")
    if s.get("partial"):
        lines.insert(1, f"PARTIAL:         the file ends after {s['frames']} of the {s['frames_promised']} frames its "
                        "header promises (truncated); the complete frames were read, the rest is missing")
    return "\n".join(lines)
