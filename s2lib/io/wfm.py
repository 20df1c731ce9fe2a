"""Tektronix WFM#001/#002/#003 reader and WFM#003 FastFrame writer (ARCHITECTURE.md, section wfm.py).

The layout is the one of ``../shared/wfm/FORMAT.md`` (offsets in 3.1, FastFrame and checksum in 3.2, versions in
3.3, real-file deviations in 3.4). Reading is lazy: :func:`read_header` and :func:`open_wfm` read the header and the
N UpdateSpecs only; :attr:`WfmFile.raw` is a read-only view on a memory map whose strides skip the pre/post charge
of every frame, so no sample is copied until it is used.

What the reader trusts (FORMAT.md 3.4): frame 0's curve offsets give the frame stride (postcharge stop, bytes) and
the user points ((postcharge start - data start) / bytes per point) of *every* frame, since the CurveSpecs of
frames 1..N may be zero or garbage; the header-size field at 76 and the implicit size at 504 are ignored. All N + 1
frames are returned (the lab reader dropped the last one and shifted frame k by 32*k samples, domain.md 3).
Per-frame trigger times stay split in GMT seconds (int64), fraction of a second and TT offset (float64).

Only analog YT records are accepted: data type 2 (vector) with storage type 0 (sample). Digital, IQ and other
records, truncated or corrupt files, files that cannot be opened (missing, no read permission) and paths that are
not regular files (a directory or FIFO named ``.wfm``: checked on the open descriptor, so a FIFO never blocks)
raise :class:`~s2lib.errors.WfmError` naming the file and the field.

Salvage (``allow_partial=True``): a FastFrame file whose header promises N + 1 frames but whose curve buffer ends
after k complete frames (1 ≤ k ≤ N: the oscilloscope stopped mid-write) is read as its k complete frames;
:attr:`WfmHeader.n_frames` is k, :attr:`WfmHeader.n_frames_promised` is N + 1 and :attr:`WfmHeader.partial` is
True. Tektronix's readers refuse such a file; by default so does this one.
"""
from __future__ import annotations

import math
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import _wfm_cache as _headers
from . import _wfm_layout as _layout
from s2lib.errors import WfmError

__all__ = ["WfmHeader", "WfmFile", "read_header", "open_wfm", "write_wfm", "verify_checksum"]

_Index = int | slice | np.ndarray | list[int]


@dataclass(frozen=True, eq=False)
class WfmHeader:
    """Facts of one WFM file's header, validated (all offsets in bytes, times in s, voltages in V).

    Attributes:
        path: the file.
        version: 1, 2 or 3 (``:WFM#00x``).
        byte_order: ``'<'`` (mark ``0F0F``) or ``'>'`` (``F0F0``).
        bytes_per_point: 1, 2, 4 or 8.
        sample_dtype: numpy dtype of one stored sample, byte order included.
        n_frames: N + 1 (every FastFrame, the last one included).
        n_points: user points per frame (pre/post charge excluded).
        frame_stride: bytes per frame in the curve buffer (frame 0's postcharge stop).
        curve_offset: file offset of the curve buffer (838 + 54 N in v3).
        data_start: offset of the first user point inside a frame.
        dt_s: sample interval (implicit dimension 1 scale).
        t0_s: time of the first user point relative to the trigger (implicit dimension 1 offset).
        scale_V, offset_V: volts = raw * scale_V + offset_V (explicit dimension 1).
        gmt_sec: per-frame trigger time, whole seconds since 1970 UTC (int64; 0 when the scope set none).
        gmt_fract: per-frame fraction of a second of the trigger (float64).
        tt_offsets: per-frame trigger-to-next-sample offset in units of dt (float64, 0 <= x < 1).
        label: user waveform label.
        format_code: explicit-dimension format code (0..7, FORMAT.md 3.1 offset 240).
        precharge_points, postcharge_points: samples before / after the user points of each frame.
        file_size: size of the file on disk (bytes), trailer included.
        n_frames_promised: frames the header promises (N + 1); more than ``n_frames`` for a salvaged partial
            file (0 when not given: the same as ``n_frames``).
    """

    path: Path
    version: int
    byte_order: str
    bytes_per_point: int
    sample_dtype: np.dtype
    n_frames: int
    n_points: int
    frame_stride: int
    curve_offset: int
    data_start: int
    dt_s: float
    t0_s: float
    scale_V: float
    offset_V: float
    gmt_sec: np.ndarray = field(repr=False)
    gmt_fract: np.ndarray = field(repr=False)
    tt_offsets: np.ndarray = field(repr=False)
    label: str = ""
    format_code: int = 0
    precharge_points: int = 0
    postcharge_points: int = 0
    file_size: int = 0
    n_frames_promised: int = 0

    @property
    def partial(self) -> bool:
        """True for a salvaged truncated file: fewer complete frames than the header promises."""
        return self.n_frames_promised > self.n_frames

    @property
    def dt_us(self) -> float:
        """Sample interval in µs."""
        return self.dt_s * 1e6

    @property
    def t0_us(self) -> float:
        """Time of the first user point relative to the trigger, in µs."""
        return self.t0_s * 1e6

    @property
    def data_nbytes(self) -> int:
        """Bytes of user samples in the file (all frames, pre/post charge excluded)."""
        return self.n_frames * self.n_points * self.bytes_per_point

    @property
    def curve_end(self) -> int:
        """File offset one past the curve buffer, where the u64 checksum sits (FORMAT.md 3.2 item 5); for a
        partial file, where it should sit (beyond the end of the file)."""
        return self.curve_offset + max(self.n_frames, self.n_frames_promised) * self.frame_stride

    @property
    def sample_format(self) -> str:
        """Name of the stored sample type (``'int8'``, ``'int16'``, ...)."""
        return _layout.FORMAT_NAMES[self.format_code]

    def time_us(self) -> np.ndarray:
        """Time of each user point relative to the trigger, µs: ``t[i] = t0 + i*dt`` (FORMAT.md 3.2 item 7).

        The per-frame sub-sample TT offset is not added; it is in :attr:`tt_offsets`.
        """
        return (self.t0_s + np.arange(self.n_points, dtype=np.float64) * self.dt_s) * 1e6


def _open_regular(p: Path) -> Any:
    """Open ``p`` for binary reading; WfmError (field ``file``) when it cannot be opened or is not a regular file.

    ``O_NONBLOCK`` makes opening a FIFO return at once; the type is then checked on the descriptor itself, so
    nothing can swap the path between the check and the read.
    """
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise WfmError(p, "file", f"cannot be opened: {err.strerror or err}") from err
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a special file"
        raise WfmError(p, "file", f"is {kind}, not a regular file")
    return os.fdopen(fd, "rb")


def read_header(path: str | os.PathLike[str], *, allow_partial: bool = False) -> WfmHeader:
    """Read and validate the header of a WFM file (a few KB: fixed header plus 24 bytes per extra frame).

    Args:
        path: the ``.wfm`` file.
        allow_partial: salvage the complete frames of a truncated FastFrame file (module docstring) instead
            of refusing it.

    Returns:
        The validated :class:`WfmHeader`.

    Raises:
        WfmError: not an analog YT waveform, a truncated / inconsistent file, or a path that cannot be opened
            or is not a regular file (names file and field).
    """
    p = Path(path)
    with _open_regular(p) as fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            head = fh.read(_layout.V3_HEADER_SIZE)
        except OSError as err:
            raise WfmError(p, "file", f"cannot be read: {err.strerror or err}") from err
        if len(head) < 10:
            raise WfmError(p, "header", f"file is {size} bytes, too short for a WFM header")
        bo = _layout.BYTE_ORDER_MARKS.get(head[0:2])
        if bo is None:
            raise WfmError(p, "byte-order mark", f"bytes {head[0:2].hex()} are neither 0f0f nor f0f0")
        version = _layout.VERSIONS.get(head[2:10])
        if version is None:
            raise WfmError(p, "version", f"unknown version string {head[2:10]!r}")
        lay = _layout.layout_for(version)
        if len(head) < lay.header_size:
            raise WfmError(p, "header", f"file is {size} bytes, the WFM#00{version} header needs {lay.header_size}")
        n_extra: int = struct.unpack_from(bo + "I", head, 72)[0]
        if n_extra + 1 > _layout.MAX_FRAMES or lay.header_size + _layout.SPEC_SIZE * n_extra > size:
            raise WfmError(p, "FastFrame count (offset 72)",
                           f"N = {n_extra} extra frames do not fit in a {size}-byte file")
        fh.seek(lay.header_size)
        try:
            specs = fh.read(_layout.UPDATE_SPEC_SIZE * n_extra)
        except OSError as err:
            raise WfmError(p, "file", f"cannot be read: {err.strerror or err}") from err
    key = (str(p), size, allow_partial, head, specs)
    known = _headers.get(key)
    if known is not None:
        return known
    upd_dtype = _layout.update_spec_dtype(bo)
    upd0 = np.frombuffer(head, dtype=upd_dtype, count=1, offset=lay.update0)
    updates = np.concatenate([upd0, np.frombuffer(specs, dtype=upd_dtype, count=n_extra)])
    curve0 = np.frombuffer(head, dtype=_layout.curve_spec_dtype(bo), count=1, offset=lay.curve0)[0]
    if len(specs) < _layout.UPDATE_SPEC_SIZE * n_extra:
        raise WfmError(p, "FastFrame count (offset 72)", f"the file shrank while its {n_extra} UpdateSpecs were read")
    header = WfmHeader(**_layout.validate_header(p, head, bo, version, lay, n_extra, size, updates, curve0,
                                                 allow_partial=allow_partial))
    return _headers.put(key, header, header.n_frames)


class WfmFile:
    """An open WFM file: header facts plus lazily memory-mapped samples (use :func:`open_wfm`).

    Attributes:
        header: the validated :class:`WfmHeader`.
    """

    def __init__(self, path: str | os.PathLike[str], *, allow_partial: bool = False) -> None:
        self.header: WfmHeader = read_header(path, allow_partial=allow_partial)
        self._raw: np.ndarray | None = None

    @property
    def path(self) -> Path:
        """The file."""
        return self.header.path

    @property
    def raw(self) -> np.ndarray:
        """Read-only stored samples, shape ``(n_frames, n_points)``, user points only (no copy).

        A view on ``np.memmap`` of the curve buffer with strides ``(frame_stride, bytes_per_point)`` starting at
        ``data_start``: the pre/post charge of every frame is skipped, frame k starts k strides in.
        """
        if self._raw is None:
            h = self.header
            if h.n_points == 0:
                raw = np.empty((h.n_frames, 0), dtype=h.sample_dtype)
            else:
                try:
                    mm = np.memmap(os.fspath(h.path), dtype=np.uint8, mode="r", offset=h.curve_offset,
                                   shape=(h.n_frames * h.frame_stride,))   # str: a Path is resolve()d (lstats)
                except (ValueError, OSError) as err:  # the file shrank or vanished since the header was read
                    raise WfmError(h.path, "curve buffer", f"cannot be mapped: {err}") from err
                raw = np.ndarray((h.n_frames, h.n_points), dtype=h.sample_dtype, buffer=mm, offset=h.data_start,
                                 strides=(h.frame_stride, h.bytes_per_point))
            raw.setflags(write=False)
            self._raw = raw
        return self._raw

    def volts(self, frames: _Index = slice(None), samples: _Index = slice(None)) -> np.ndarray:
        """Samples in V (float64): ``raw[frames, samples] * scale_V + offset_V``, computed on demand."""
        h = self.header
        return self.raw[frames, samples].astype(np.float64) * h.scale_V + h.offset_V

    def millivolts(self, frames: _Index = slice(None), samples: _Index = slice(None)) -> np.ndarray:
        """Samples in mV (float64), ``1e3 * volts(frames, samples)``."""
        return self.volts(frames, samples) * 1e3

    def close(self) -> None:
        """Drop this object's reference to the memory map (views handed out stay valid until freed)."""
        self._raw = None

    def __enter__(self) -> WfmFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        h = self.header
        return f"WfmFile({str(h.path)!r}, frames={h.n_frames}, points={h.n_points}, {h.sample_format})"


def open_wfm(path: str | os.PathLike[str], *, allow_partial: bool = False) -> WfmFile:
    """Open a WFM file lazily (header only); use as a context manager. See :class:`WfmFile`.

    ``allow_partial``: read the complete frames of a truncated FastFrame file (``header.partial`` says so).
    """
    return WfmFile(path, allow_partial=allow_partial)


def verify_checksum(path: str | os.PathLike[str]) -> bool:
    """Check the trailing u64 file checksum (sum of all bytes before it, FORMAT.md 3.2 item 5).

    Reading never depends on it; a ``tekmeta!`` trailer after it is ignored.

    Returns:
        True when the stored checksum equals the byte sum of the header and curve buffer.

    Raises:
        WfmError: the header is invalid or the file ends before the checksum.
    """
    h = read_header(path, allow_partial=True)
    end = h.curve_end
    if h.file_size < end + 8:
        raise WfmError(h.path, "checksum", f"file ends at {h.file_size}, the u64 checksum needs bytes {end}..{end + 8}")
    mm = np.memmap(h.path, dtype=np.uint8, mode="r", shape=(end + 8,))
    total = 0
    for lo in range(0, end, 1 << 24):
        total += int(mm[lo:min(end, lo + (1 << 24))].sum(dtype=np.uint64))
    stored = int(mm[end:end + 8].view(h.byte_order + "u8")[0])
    del mm
    return stored == total % (1 << 64)


def write_wfm(path: str | os.PathLike[str], raw: np.ndarray, *, dt_s: float, t0_s: float, scale_V: float,
              offset_V: float, gmt_sec: Any = None, gmt_fract: Any = None, tt_offsets: Any = None,
              pre_points: int = 16, post_points: int = 16, label: str = "") -> None:
    """Write a spec-conformant little-endian WFM#003 file (FastFrame when ``raw`` has more than one frame).

    Layout per FORMAT.md 3.1/3.2 and the writer advice of 3.4: header-size field 760, curve object count 1,
    data type 2, storage type 0, units ``V`` and ``s``, set type 1 with requested = acquired = N + 1 for
    FastFrame, every CurveSpec a copy of frame 0's, trailing u64 checksum, no trailer. The implicit size
    (offset 504) is the record length *including* pre/post charge, the DPO convention; our reader ignores it.
    Pre/post charge samples repeat the first / last user sample of each frame. The file is written to a
    temporary file in the same folder and renamed over ``path`` (atomic).

    Args:
        path: destination ``.wfm`` file.
        raw: int8 or int16 samples, shape ``(n_frames, n_points)`` or ``(n_points,)`` (single record).
        dt_s: sample interval, s.  t0_s: time of the first user point relative to the trigger, s.
        scale_V, offset_V: volts = raw * scale_V + offset_V.
        gmt_sec: per-frame trigger time, whole seconds since 1970 UTC (int32 range); default 0.
        gmt_fract: per-frame fraction of a second, default 0.  tt_offsets: per-frame TT offset (units of dt).
        pre_points, post_points: pre/post charge samples per frame.
        label: user waveform label (ASCII, at most 31 characters kept).

    Raises:
        TypeError: ``raw`` is not int8 or int16.  ValueError: inconsistent shapes or values.
    """
    data = np.asarray(raw)
    if data.dtype not in (np.dtype(np.int8), np.dtype(np.int16)):
        raise TypeError(f"write_wfm: raw must be int8 or int16, not {data.dtype}")
    if data.ndim == 1:
        data = data[np.newaxis, :]
    if data.ndim != 2 or data.shape[0] < 1 or data.shape[1] < 1:
        raise ValueError(f"write_wfm: raw must be (n_points,) or (n_frames, n_points) and non-empty, not {data.shape}")
    if pre_points < 0 or post_points < 0:
        raise ValueError("write_wfm: pre_points and post_points must be >= 0")
    for name, value in (("dt_s", dt_s), ("t0_s", t0_s), ("scale_V", scale_V), ("offset_V", offset_V)):
        if not math.isfinite(value):
            raise ValueError(f"write_wfm: {name} = {value} is not finite")
    if dt_s <= 0:
        raise ValueError(f"write_wfm: dt_s = {dt_s} must be positive")
    n_frames, n_points = data.shape
    gsec = _per_frame(gmt_sec, n_frames, np.int64, "gmt_sec")
    if gsec.size and (gsec.min() < -2**31 or gsec.max() >= 2**31):
        raise ValueError("write_wfm: gmt_sec must fit in int32 (FORMAT.md 3.1 offset 804)")
    gfract = _per_frame(gmt_fract, n_frames, np.float64, "gmt_fract")
    tt = _per_frame(tt_offsets, n_frames, np.float64, "tt_offsets")
    dtype = np.dtype("<" + data.dtype.str[1:])
    bpp = dtype.itemsize
    width = pre_points + n_points + post_points
    stride = width * bpp
    head_len = _layout.V3_HEADER_SIZE + _layout.SPEC_SIZE * (n_frames - 1)
    file_size = head_len + n_frames * stride + 8
    if file_size - 15 >= 2**31:
        raise ValueError(f"write_wfm: {file_size} bytes exceed the WFM byte count field (int32)")
    label.encode("ascii")  # raises UnicodeEncodeError (a ValueError) for non-ASCII labels
    header = _layout.build_v3_header(
        n_extra=n_frames - 1, bytes_per_point=bpp, format_code=7 if bpp == 1 else 0, file_size=file_size,
        label=label, scale_V=float(scale_V), offset_V=float(offset_V), dt_s=float(dt_s), t0_s=float(t0_s),
        record_length=width, curve_spec=(0, pre_points * bpp, (pre_points + n_points) * bpp, stride, stride),
        gmt_sec=gsec, gmt_fract=gfract, tt_offsets=tt)
    curve = np.empty((n_frames, width), dtype=dtype)
    curve[:, :pre_points] = data[:, :1]
    curve[:, pre_points:pre_points + n_points] = data
    curve[:, pre_points + n_points:] = data[:, -1:]
    checksum = int(np.frombuffer(header, dtype=np.uint8).sum(dtype=np.uint64))
    checksum = (checksum + int(curve.view(np.uint8).sum(dtype=np.uint64))) % (1 << 64)
    _write_atomic(Path(path), header, curve, struct.pack("<Q", checksum))


def _per_frame(values: Any, n_frames: int, dtype: type, name: str) -> np.ndarray:
    if values is None:
        return np.zeros(n_frames, dtype=dtype)
    arr = np.atleast_1d(np.asarray(values, dtype=dtype))
    if arr.shape != (n_frames,):
        raise ValueError(f"write_wfm: {name} needs {n_frames} values (one per frame), got shape {arr.shape}")
    return arr


def _write_atomic(path: Path, header: bytes, curve: np.ndarray, tail: bytes) -> None:
    """Write header + curve + tail to a temporary file beside ``path``, fsync, then ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(header)
            fh.flush()
            curve.tofile(fh)
            fh.write(tail)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
