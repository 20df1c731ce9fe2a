"""Byte layout of Tektronix WFM#001/#002/#003 files (private helper of :mod:`s2lib.io.wfm`).

Everything here is a restatement of ``../shared/wfm/FORMAT.md``: offsets of section 3.1, the FastFrame
records of section 3.2, the version differences of section 3.3, the tolerances of section 3.4. Pure functions
over bytes the caller has read; no file access.
"""
from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from s2lib.errors import WfmError

__all__ = [
    "BYTE_ORDER_MARKS", "VERSIONS", "FORMAT_CODES", "FORMAT_NAMES", "Layout", "layout_for",
    "update_spec_dtype", "curve_spec_dtype", "UPDATE_SPEC_SIZE", "CURVE_SPEC_SIZE", "SPEC_SIZE",
    "V3_HEADER_SIZE", "MAX_FRAMES", "validate_header", "build_v3_header",
]

#: Byte-order mark at offset 0 (FORMAT.md 3.1): ``0F 0F`` little-endian, ``F0 F0`` big-endian.
BYTE_ORDER_MARKS: dict[bytes, str] = {b"\x0f\x0f": "<", b"\xf0\xf0": ">"}
#: Version string at offset 2 (with the leading colon real files carry).
VERSIONS: dict[bytes, int] = {b":WFM#001": 1, b":WFM#002": 2, b":WFM#003": 3}
#: Explicit-dimension format code (offset 240 in v3) -> numpy type character (FORMAT.md 3.1).
FORMAT_CODES: dict[int, str] = {0: "i2", 1: "i4", 2: "u4", 3: "u8", 4: "f4", 5: "f8", 6: "u1", 7: "i1"}
FORMAT_NAMES: dict[int, str] = {0: "int16", 1: "int32", 2: "uint32", 3: "uint64", 4: "float32", 5: "float64",
                                6: "uint8", 7: "int8"}

UPDATE_SPEC_SIZE = 24  # FORMAT.md 3.2 item 1
CURVE_SPEC_SIZE = 30  # FORMAT.md 3.2 item 2
SPEC_SIZE = UPDATE_SPEC_SIZE + CURVE_SPEC_SIZE
V3_HEADER_SIZE = 838
#: Upper bound on N + 1 accepted from a header; files stay far below (the lab's files: 49, 988 frames).
MAX_FRAMES = 50_000_000


@functools.lru_cache(maxsize=None)
def update_spec_dtype(byte_order: str) -> np.dtype:
    """Packed 24-byte UpdateSpec record (FORMAT.md 3.1 offset 784, 3.2 item 1)."""
    return np.dtype({"names": ["real_point_offset", "tt_offset", "gmt_fract", "gmt_sec"],
                     "formats": [byte_order + "u4", byte_order + "f8", byte_order + "f8", byte_order + "i4"],
                     "offsets": [0, 4, 12, 20], "itemsize": UPDATE_SPEC_SIZE})


@functools.lru_cache(maxsize=None)
def curve_spec_dtype(byte_order: str) -> np.dtype:
    """Packed 30-byte CurveSpec record (FORMAT.md 3.1 offset 808, 3.2 item 2); offsets are bytes in a frame."""
    names = ["state_flags", "checksum_type", "checksum", "precharge_start", "data_start", "postcharge_start",
             "postcharge_stop", "end_of_curve"]
    formats = ["u4", "i4", "i2", "u4", "u4", "u4", "u4", "u4"]
    return np.dtype({"names": names, "formats": [byte_order + f for f in formats],
                     "offsets": [0, 4, 8, 10, 14, 18, 22, 26], "itemsize": CURVE_SPEC_SIZE})


@dataclass(frozen=True)
class Layout:
    """Offsets (bytes from file start) that depend on the file version (FORMAT.md 3.3).

    Attributes:
        explicit1: start of explicit dimension 1 (voltage axis).
        implicit1: start of implicit dimension 1 (time axis).
        update0: UpdateSpec of frame 0.
        curve0: CurveSpec (curve information) of frame 0.
        header_size: total header size; the N UpdateSpecs follow.
        summary_frame: offset of the summary-frame u16, or None (v1).
    """

    explicit1: int
    implicit1: int
    update0: int
    curve0: int
    header_size: int
    summary_frame: int | None


def layout_for(version: int) -> Layout:
    """Return the :class:`Layout` of WFM version 1, 2 or 3 (FORMAT.md 3.3)."""
    shift = 2 if version == 1 else 0  # v1 lacks the summary-frame u16 at 154
    user_view = 60 if version == 3 else 56  # point density f64 (v3) or u32 (v1/v2)
    explicit_size = 100 + user_view
    implicit_size = 76 + user_view
    explicit1 = 168 - shift
    implicit1 = explicit1 + 2 * explicit_size
    time_base = implicit1 + 2 * implicit_size
    return Layout(explicit1=explicit1, implicit1=implicit1, update0=time_base + 24, curve0=time_base + 48,
                  header_size=time_base + 78, summary_frame=None if version == 1 else 154)


def _u(buf: bytes, fmt: str, offset: int, bo: str) -> Any:
    return struct.unpack_from(bo + fmt, buf, offset)[0]


def validate_header(p: Path, head: bytes, bo: str, version: int, lay: Layout, n_extra: int, size: int,
                    updates: np.ndarray, curve0: np.void, allow_partial: bool = False) -> dict[str, Any]:
    """Check the header fields against each other and the file size (FORMAT.md 3.1-3.4).

    A FastFrame file whose curve buffer ends early (an acquisition stopped mid-write) is refused, unless
    ``allow_partial``: then its ``k = (size − curve offset) // stride`` complete frames are kept (``n_frames = k``,
    ``n_frames_promised = N + 1``, per-frame times cut to k), when k ≥ 1.

    Args:
        p: the file (for error messages).  head: its first ``lay.header_size`` bytes or more.
        bo: byte order.  version: 1, 2 or 3.  n_extra: N (offset 72).  size: file size, bytes.
        updates: the N + 1 UpdateSpecs (frame 0's first).  curve0: frame 0's CurveSpec.

    Returns:
        Keyword arguments of :class:`s2lib.io.wfm.WfmHeader`.

    Raises:
        WfmError: naming the file and the field at fault.
    """
    data_type = _u(head, "i", 122, bo)
    if data_type != 2:
        what = {6: "digital data", 5: "a waveform database", 3: "a pixmap"}.get(data_type, "not a vector (YT) record")
        raise WfmError(p, "data type (offset 122)", f"{data_type} is {what}; only analog waveforms (2) are read")
    ex = lay.explicit1
    fmt_code, storage = _u(head, "i", ex + 72, bo), _u(head, "i", ex + 76, bo)
    if storage != 0:
        what = "IQ or min/max data" if storage == 1 else "not sampled data"
        raise WfmError(p, "storage type", f"{storage} is {what}; only analog sample records (0) are read")
    if fmt_code not in FORMAT_CODES or (version < 3 and fmt_code >= 6):
        raise WfmError(p, "data format", f"code {fmt_code} is not a sample format of WFM#00{version}")
    dtype = np.dtype(bo + FORMAT_CODES[fmt_code])
    bpp = head[15]
    if bpp != dtype.itemsize:
        raise WfmError(p, "bytes per point (offset 15)", f"{bpp} does not match format {FORMAT_NAMES[fmt_code]}")
    curve_offset = _u(head, "i", 16, bo)
    if curve_offset != lay.header_size + SPEC_SIZE * n_extra:
        raise WfmError(p, "curve buffer offset (offset 16)",
                       f"{curve_offset}, expected {lay.header_size + SPEC_SIZE * n_extra} for N = {n_extra}")
    pre, start, post, stride = (int(curve0[k]) for k in
                                ("precharge_start", "data_start", "postcharge_start", "postcharge_stop"))
    if not pre <= start <= post <= stride:
        raise WfmError(p, "curve offsets", f"precharge {pre}, data {start}, postcharge {post}..{stride} "
                                           "are not in increasing order")
    if any(v % bpp for v in (pre, start, post, stride)):
        raise WfmError(p, "curve offsets", f"data {start}..{post}, stride {stride} are not multiples of {bpp} bytes")
    if stride == 0 and n_extra:  # a zero-length frame is only accepted for an empty single record
        raise WfmError(p, "postcharge stop", f"frame stride 0 with {n_extra + 1} FastFrames")
    n_frames = promised = n_extra + 1
    if curve_offset + n_frames * stride > size:
        complete = (size - curve_offset) // stride if stride and size > curve_offset else 0
        if not (allow_partial and complete >= 1):
            raise WfmError(p, "curve buffer", f"{n_frames} frames x {stride} bytes from offset {curve_offset} "
                                              f"run past the end of the {size}-byte file (truncated?)")
        n_frames = int(complete)
    scale, offset = _u(head, "d", ex, bo), _u(head, "d", ex + 8, bo)
    dt, t0 = _u(head, "d", lay.implicit1, bo), _u(head, "d", lay.implicit1 + 8, bo)
    for name, value in (("explicit scale", scale), ("explicit offset", offset), ("implicit offset", t0)):
        if not math.isfinite(value):
            raise WfmError(p, name, f"{value} is not a finite number")
    if not (math.isfinite(dt) and dt > 0):
        raise WfmError(p, "implicit scale (sample interval)", f"{dt} s is not a positive number")
    gmt_sec, gmt_fract, tt = (np.array(updates[k][:n_frames], dtype=t) for k, t in
                              (("gmt_sec", np.int64), ("gmt_fract", np.float64), ("tt_offset", np.float64)))
    for arr in (gmt_sec, gmt_fract, tt):
        arr.setflags(write=False)
    return dict(path=p, version=version, byte_order=bo, bytes_per_point=bpp, sample_dtype=dtype,
                n_frames=n_frames, n_points=(post - start) // bpp, frame_stride=stride,
                curve_offset=curve_offset, data_start=start, dt_s=dt, t0_s=t0, scale_V=scale, offset_V=offset,
                gmt_sec=gmt_sec, gmt_fract=gmt_fract, tt_offsets=tt,
                label=head[40:72].split(b"\0", 1)[0].decode("latin-1"), format_code=fmt_code,
                precharge_points=(start - pre) // bpp, postcharge_points=(stride - post) // bpp, file_size=size,
                n_frames_promised=promised)


def _put_str(buf: bytearray, offset: int, size: int, text: str) -> None:
    raw = text.encode("ascii")[: size - 1]
    buf[offset:offset + size] = raw + b"\0" * (size - len(raw))


def build_v3_header(*, n_extra: int, bytes_per_point: int, format_code: int, file_size: int, label: str,
                    scale_V: float, offset_V: float, dt_s: float, t0_s: float, record_length: int,
                    curve_spec: tuple[int, int, int, int, int], gmt_sec: np.ndarray, gmt_fract: np.ndarray,
                    tt_offsets: np.ndarray) -> bytes:
    """Build the spec-conformant little-endian WFM#003 header plus the N UpdateSpecs and CurveSpecs.

    Values follow FORMAT.md 3.1 and the writer advice of 3.4: header-size field 760, curve object count 1,
    set type 1 and requested = acquired = N + 1 for FastFrame, explicit size 252 (8-bit) or 65 532 (16-bit),
    implicit size = ``record_length`` (user points plus pre/post charge, DPO convention), every CurveSpec a copy
    of frame 0's.

    Args:
        n_extra: N, the number of frames minus one.
        file_size: total size of the finished file (checksum included, bytes), for the byte count at 11.
        curve_spec: frame 0's (precharge start, data start, postcharge start, postcharge stop, end of curve), bytes.
        gmt_sec, gmt_fract, tt_offsets: per-frame trigger time, length N + 1.

    Returns:
        ``838 + 54 * N`` bytes.
    """
    b = bytearray(V3_HEADER_SIZE)
    eof = file_size - 15
    fastframe = n_extra > 0
    frames = n_extra + 1
    b[0:2] = b"\x0f\x0f"
    b[2:10] = b":WFM#003"
    struct.pack_into("<BiBiifdf", b, 10, len(str(eof)), eof, bytes_per_point, V3_HEADER_SIZE + SPEC_SIZE * n_extra,
                     1, 0.0, 1.0, 0.0)
    _put_str(b, 40, 32, label)
    struct.pack_into("<IH", b, 72, n_extra, 760)
    struct.pack_into("<iIQQiiIIIiQIIIIIHiQ", b, 78, 1 if fastframe else 0, 1, 0, 0, 0, 0, 1, 1, 1, 2, 0, 0, 0, 1,
                     frames if fastframe else 0, frames if fastframe else 0, 0, 0, 0)
    # explicit dimension 1 (voltage): scale, offset, size, units, extent, resolution, ref, format, storage...
    struct.pack_into("<ddI", b, 168, scale_V, offset_V, 252 if bytes_per_point == 1 else 65532)
    _put_str(b, 188, 20, "V")
    struct.pack_into("<ddddii", b, 208, 0.0, 0.0, scale_V, 0.0, format_code, 0)
    struct.pack_into("<d", b, 268, 1.0)
    _put_str(b, 276, 20, "V")
    struct.pack_into("<dddd", b, 296, 0.0, 1.0, 50.0, 0.0)
    struct.pack_into("<ii", b, 328 + 72, 9, 6)  # explicit dimension 2: no dimension, invalid storage
    # implicit dimension 1 (time)
    struct.pack_into("<ddI", b, 488, dt_s, t0_s, record_length)
    _put_str(b, 508, 20, "s")
    struct.pack_into("<ddddId", b, 528, 0.0, 0.0, 0.0, 0.0, 1, 1.0)
    _put_str(b, 572, 20, "s")
    struct.pack_into("<dddd", b, 592, 0.0, 1.0, 50.0, t0_s)
    # time bases (real point spacing, sweep, type), frame 0's update spec and curve information
    struct.pack_into("<IiiIii", b, 760, 1, 1, 0, 0, 3, 3)
    struct.pack_into("<Iddi", b, 784, 0, float(tt_offsets[0]), float(gmt_fract[0]), int(gmt_sec[0]))
    struct.pack_into("<IihIIIII", b, 808, 0, 0, 0, *curve_spec)
    upd = np.zeros(n_extra, dtype=update_spec_dtype("<"))
    upd["tt_offset"] = tt_offsets[1:]
    upd["gmt_fract"] = gmt_fract[1:]
    upd["gmt_sec"] = gmt_sec[1:]
    curves = bytes(b[808:838]) * n_extra
    return bytes(b) + upd.tobytes() + curves
