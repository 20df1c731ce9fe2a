"""write_wfm round trips, byte-level header checks, and reading of versions / byte orders / formats.

Files of other versions, byte orders and sample formats are made by ``build_wfm`` below: a small builder written
straight from the offsets of ../shared/wfm/FORMAT.md (3.1-3.3) with struct, independent of s2lib's own layout code.
"""
from __future__ import annotations

import json
import os
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from s2lib.errors import WfmError
from s2lib.io.wfm import open_wfm, read_header, verify_checksum, write_wfm
from s2lib.io.wfm_inspect import inspect_summary

REPO = Path(__file__).resolve().parents[1]
INTEROP = Path(__file__).with_name("wfm_interop_tm.py")

# FORMAT.md 3.1 / 3.3: explicit dim 1, implicit dim 1, time base 1, header size per version
OFFSETS = {3: (168, 488, 760, 838), 2: (168, 480, 744, 822), 1: (166, 478, 742, 820)}
CODES = {"int16": 0, "int32": 1, "uint32": 2, "uint64": 3, "float32": 4, "float64": 5, "uint8": 6, "int8": 7}


def build_wfm(path: Path, frames: np.ndarray, *, version: int = 3, order: str = "<", code: int | None = None,
              pre: int = 16, post: int = 16, scale: float = 0.5, offset: float = -1.0, dt: float = 2e-10,
              t0: float = -1e-6, gmt_sec: list[int] | None = None, curve_specs: str = "copy",
              data_type: int = 2, storage: int = 0) -> Path:
    """Write a WFM file by hand: ``frames`` (n, points) of the target dtype, pre/post charge set to sentinels."""
    n, points = frames.shape
    name = frames.dtype.name
    code = CODES[name] if code is None else code
    ex, im, tb, hdr = OFFSETS[version]
    bpp = frames.dtype.itemsize
    stride = (pre + points + post) * bpp
    curve_off = hdr + 54 * (n - 1)
    b = bytearray(hdr)
    b[0:2] = b"\x0f\x0f" if order == "<" else b"\xf0\xf0"
    b[2:10] = f":WFM#00{version}".encode()
    total = curve_off + n * stride + 8
    struct.pack_into(order + "BiBi", b, 10, 8, total - 15, bpp, curve_off)
    struct.pack_into(order + "IH", b, 72, n - 1, 512)  # header-size field deliberately non-spec (FORMAT.md 3.4)
    struct.pack_into(order + "i", b, 78, 1 if n > 1 else 0)
    struct.pack_into(order + "i", b, 122, data_type)
    struct.pack_into(order + "I", b, 142, 1)
    struct.pack_into(order + "dd", b, ex, scale, offset)
    struct.pack_into(order + "ii", b, ex + 72, code, storage)
    struct.pack_into(order + "ddI", b, im, dt, t0, points)  # implicit size = user points (4/5/6-Series style)
    gmt = gmt_sec or [1_700_000_000 + k for k in range(n)]
    fract = [k / 8 for k in range(n)]  # exact binary fractions
    tt = [k / 16 for k in range(n)]
    spec0 = struct.pack(order + "IihIIIII", 81, 0, 0, 0, pre * bpp, (pre + points) * bpp, stride, stride)
    b[tb + 24:tb + 48] = struct.pack(order + "Iddi", 0, tt[0], fract[0], gmt[0])
    b[tb + 48:tb + 78] = spec0
    for k in range(1, n):
        b += struct.pack(order + "Iddi", 0, tt[k], fract[k], gmt[k])
    for k in range(1, n):
        b += {"copy": spec0, "zero": bytes(30), "garbage": bytes((k * 37 + i * 11) % 256 for i in range(30))}[
            curve_specs]
    assert len(b) == curve_off
    dt_ = frames.dtype.newbyteorder(order)
    buf = np.empty((n, pre + points + post), dtype=dt_)
    buf[:, :pre] = 99  # sentinels: a reader that does not skip pre/post charge sees them
    buf[:, pre + points:] = 77
    buf[:, pre:pre + points] = frames
    b += buf.tobytes()
    b += struct.pack(order + "Q", sum(b) % 2**64)
    b += b"tekmeta!" + bytes(12)  # a trailer the reader must ignore
    path.write_bytes(bytes(b))
    return path


def distinct_frames(n: int, points: int, dtype: str) -> np.ndarray:
    """Frame k = ramp + k (frame-distinct, so a drop or a shift is visible)."""
    ramp = (np.arange(points)[np.newaxis, :] % 50) + np.arange(n)[:, np.newaxis]
    return ramp.astype(dtype)


# ---------------------------------------------------------------- writer round trip and bytes

@pytest.mark.parametrize("dtype", ["int8", "int16"])
@pytest.mark.parametrize("n_frames", [1, 7])
def test_round_trip(tmp_path: Path, dtype: str, n_frames: int) -> None:
    rng = np.random.default_rng(n_frames)
    info = np.iinfo(dtype)
    raw = rng.integers(info.min, info.max, (n_frames, 1000), endpoint=True).astype(dtype)
    gmt = np.array([1779394536 + k for k in range(n_frames)], dtype=np.int64)
    fract = rng.random(n_frames)
    tt = rng.random(n_frames)
    path = tmp_path / "rt.wfm"
    write_wfm(path, raw if n_frames > 1 else raw[0], dt_s=1.6e-10, t0_s=-2e-7, scale_V=0.004, offset_V=0.01,
              gmt_sec=gmt, gmt_fract=fract, tt_offsets=tt, label="PMT Ch1")
    with open_wfm(path) as wf:
        h = wf.header
        np.testing.assert_array_equal(wf.raw, raw)
        assert wf.raw.dtype == np.dtype(dtype)
        assert (h.version, h.byte_order, h.n_frames, h.n_points) == (3, "<", n_frames, 1000)
        assert (h.precharge_points, h.postcharge_points, h.label) == (16, 16, "PMT Ch1")
        assert (h.dt_s, h.t0_s, h.scale_V, h.offset_V) == (1.6e-10, -2e-7, 0.004, 0.01)
        np.testing.assert_array_equal(h.gmt_sec, gmt)  # exact
        np.testing.assert_array_equal(h.gmt_fract, fract)
        np.testing.assert_array_equal(h.tt_offsets, tt)
        np.testing.assert_array_equal(wf.volts(), raw * 0.004 + 0.01)
    assert verify_checksum(path)
    assert [p.name for p in tmp_path.iterdir()] == ["rt.wfm"]  # no temporary file left behind


@pytest.mark.parametrize("dtype,code,bpp", [("int8", 7, 1), ("int16", 0, 2)])
def test_header_bytes_are_spec_conformant(tmp_path: Path, dtype: str, code: int, bpp: int) -> None:
    n, points, pre, post = 4, 300, 16, 16
    raw = distinct_frames(n, points, dtype)
    path = tmp_path / "h.wfm"
    write_wfm(path, raw, dt_s=2e-10, t0_s=-1.5e-5, scale_V=4e-4, offset_V=-0.0398, gmt_sec=[10, 11, 12, 13],
              gmt_fract=[0.5, 0.25, 0.125, 0.0625], tt_offsets=[0.1, 0.2, 0.3, 0.4])
    b = path.read_bytes()
    u = lambda fmt, off: struct.unpack_from("<" + fmt, b, off)[0]  # noqa: E731
    stride = (pre + points + post) * bpp
    curve = 838 + 54 * (n - 1)
    assert b[0:2] == b"\x0f\x0f" and b[2:10] == b":WFM#003"
    assert u("i", 11) == len(b) - 15 and b[10] == len(str(len(b) - 15))
    assert (b[15], u("i", 16), u("I", 72), u("H", 76)) == (bpp, curve, n - 1, 760)
    assert (u("i", 78), u("I", 142), u("I", 146), u("I", 150)) == (1, 1, n, n)  # FastFrame, 1 curve object
    assert (u("i", 122), u("i", 240), u("i", 244)) == (2, code, 0)
    assert b[188:190] == b"V\0" and b[508:510] == b"s\0"
    assert (u("d", 168), u("d", 176), u("d", 488), u("d", 496)) == (4e-4, -0.0398, 2e-10, -1.5e-5)
    assert u("I", 504) == pre + points + post  # implicit size incl. pre/post charge (DPO convention)
    assert u("I", 184) == (252 if bpp == 1 else 65532)
    assert struct.unpack_from("<IIIII", b, 818) == (0, pre * bpp, (pre + points) * bpp, stride, stride)
    assert struct.unpack_from("<Iddi", b, 784) == (0, 0.1, 0.5, 10)
    for k in range(1, n):
        assert struct.unpack_from("<Iddi", b, 838 + 24 * (k - 1)) == (0, [0.1, 0.2, 0.3, 0.4][k],
                                                                      [0.5, 0.25, 0.125, 0.0625][k], 10 + k)
        spec = 838 + 24 * (n - 1) + 30 * (k - 1)
        assert b[spec:spec + 30] == b[808:838]  # every CurveSpec a copy of frame 0's
    assert len(b) == curve + n * stride + 8
    assert u("Q", len(b) - 8) == sum(b[:-8])  # trailing checksum
    # pre/post charge repeat the first / last user sample of each frame
    frames = np.frombuffer(b, dtype="<" + np.dtype(dtype).str[1:], count=n * (stride // bpp),
                           offset=curve).reshape(n, -1)
    np.testing.assert_array_equal(frames[:, :pre], np.repeat(raw[:, :1], pre, axis=1))
    np.testing.assert_array_equal(frames[:, pre + points:], np.repeat(raw[:, -1:], post, axis=1))
    np.testing.assert_array_equal(frames[:, pre:pre + points], raw)


def test_single_record_header(tmp_path: Path) -> None:
    path = tmp_path / "s.wfm"
    write_wfm(path, np.arange(10, dtype=np.int16), dt_s=1e-9, t0_s=0.0, scale_V=1.0, offset_V=0.0,
              pre_points=0, post_points=0)
    b = path.read_bytes()
    assert struct.unpack_from("<IH", b, 72) == (0, 760)  # N = 0, header size 760
    assert struct.unpack_from("<iI", b, 78) == (0, 1) and struct.unpack_from("<i", b, 16)[0] == 838
    assert struct.unpack_from("<IIIII", b, 818) == (0, 0, 20, 20, 20)
    assert len(b) == 838 + 20 + 8


def test_every_frame_is_kept_and_aligned(tmp_path: Path) -> None:
    """The lab reader dropped the last frame and shifted frame k by 32*k samples (domain.md 3)."""
    n, points = 49, 500
    raw = distinct_frames(n, points, "int8")
    path = tmp_path / "ff.wfm"
    write_wfm(path, raw, dt_s=2e-10, t0_s=-1.5e-5, scale_V=4e-4, offset_V=0.0)
    with open_wfm(path) as wf:
        assert wf.raw.shape == (n, points)
        for k in range(n):
            np.testing.assert_array_equal(wf.raw[k], raw[k], err_msg=f"frame {k}")
        np.testing.assert_array_equal(wf.raw[-1], raw[-1])
    # the lab reader's reading (contiguous from the data start) differs from frame 1 on
    b = path.read_bytes()
    lab = np.frombuffer(b, dtype=np.int8, count=(n - 1) * points, offset=838 + 54 * (n - 1) + 16)
    assert not np.array_equal(lab.reshape(n - 1, points)[1], raw[1])


def test_large_fastframe_file(tmp_path: Path) -> None:
    raw = np.random.default_rng(0).integers(-128, 128, (49, 250_000), dtype=np.int8)
    path = tmp_path / "big.wfm"
    write_wfm(path, raw, dt_s=2e-10, t0_s=-1.5e-5, scale_V=4e-4, offset_V=0.0)
    assert path.stat().st_size == 838 + 54 * 48 + 49 * 250_032 + 8
    with open_wfm(path) as wf:
        assert int(wf.raw.sum(dtype=np.int64)) == int(raw.sum(dtype=np.int64))
    assert inspect_summary(path)["checksum"] == "ok"


def test_overwrite_is_atomic_and_bad_input_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.wfm"
    write_wfm(path, np.zeros((3, 10), np.int8), dt_s=1e-9, t0_s=0.0, scale_V=1.0, offset_V=0.0)
    write_wfm(path, np.ones((2, 10), np.int8), dt_s=1e-9, t0_s=0.0, scale_V=1.0, offset_V=0.0)
    assert read_header(path).n_frames == 2
    with pytest.raises(TypeError):
        write_wfm(tmp_path / "b.wfm", np.zeros(10, np.float32), dt_s=1e-9, t0_s=0.0, scale_V=1.0, offset_V=0.0)
    for kwargs in ({"gmt_sec": [1, 2]}, {"dt_s": 0.0}, {"gmt_sec": [2**31] * 3}, {"pre_points": -1},
                   {"scale_V": float("nan")}, {"label": "µ"}):
        args = {"dt_s": 1e-9, "t0_s": 0.0, "scale_V": 1.0, "offset_V": 0.0, **kwargs}
        with pytest.raises(ValueError):
            write_wfm(tmp_path / "b.wfm", np.zeros((3, 10), np.int8), **args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wfm"]


# ---------------------------------------------------------------- reading what our writer does not write

@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("dtype", list(CODES))
def test_read_every_format_both_byte_orders(tmp_path: Path, order: str, dtype: str) -> None:
    raw = distinct_frames(3, 64, dtype)
    if np.dtype(dtype).kind == "f":
        raw = raw + np.float32(0.25)
    path = build_wfm(tmp_path / "f.wfm", raw, order=order)
    with open_wfm(path) as wf:
        h = wf.header
        assert (h.byte_order, h.sample_format, h.n_frames, h.n_points) == (order, dtype, 3, 64)
        assert h.sample_dtype == np.dtype(dtype).newbyteorder(order)
        np.testing.assert_array_equal(wf.raw, raw)
        np.testing.assert_array_equal(wf.volts(), raw.astype(np.float64) * 0.5 - 1.0)
        np.testing.assert_array_equal(h.gmt_sec, [1_700_000_000, 1_700_000_001, 1_700_000_002])
        np.testing.assert_array_equal(h.gmt_fract, [0, 0.125, 0.25])
        np.testing.assert_array_equal(h.tt_offsets, [0, 0.0625, 0.125])
    s = inspect_summary(path)
    assert s["sum_V"] == pytest.approx(float(raw.astype(np.float64).sum()) * 0.5 - raw.size, rel=1e-12)
    assert s["checksum"] == "ok" and s["tekmeta_trailer"]


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("dtype", ["int16", "int32", "float64"])
def test_read_versions_1_and_2(tmp_path: Path, version: int, order: str, dtype: str) -> None:
    raw = distinct_frames(5, 100, dtype)
    path = build_wfm(tmp_path / "v.wfm", raw, version=version, order=order, dt=1e-9, t0=-2e-6)
    with open_wfm(path) as wf:
        h = wf.header
        assert (h.version, h.curve_offset) == (version, OFFSETS[version][3] + 54 * 4)
        assert (h.dt_s, h.t0_s, h.scale_V, h.offset_V) == (1e-9, -2e-6, 0.5, -1.0)
        np.testing.assert_array_equal(wf.raw, raw)
        np.testing.assert_array_equal(h.gmt_sec, 1_700_000_000 + np.arange(5))
    assert verify_checksum(path)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("code", [6, 7])
def test_byte_formats_are_refused_before_version_3(tmp_path: Path, version: int, code: int) -> None:
    path = build_wfm(tmp_path / "v.wfm", distinct_frames(2, 10, "int8"), version=version, code=code)
    with pytest.raises(WfmError, match="data format"):
        read_header(path)


@pytest.mark.parametrize("specs", ["zero", "garbage"])
def test_curve_specs_of_later_frames_are_ignored(tmp_path: Path, specs: str) -> None:
    raw = distinct_frames(6, 80, "int16")
    path = build_wfm(tmp_path / "c.wfm", raw, pre=32, post=32, curve_specs=specs)
    with open_wfm(path) as wf:
        np.testing.assert_array_equal(wf.raw, raw)


def test_digital_and_iq_records_are_refused(tmp_path: Path) -> None:
    raw = distinct_frames(1, 10, "int8")
    with pytest.raises(WfmError, match="d.wfm: data type"):
        read_header(build_wfm(tmp_path / "d.wfm", raw, data_type=6))
    with pytest.raises(WfmError, match="q.wfm: storage type"):
        read_header(build_wfm(tmp_path / "q.wfm", raw, storage=1))


# ---------------------------------------------------------------- Tektronix's own reader

def _tm_python() -> Path:
    return Path(os.environ.get("S2BOOK_TM_PYTHON", REPO / ".venv-tm" / "bin" / "python"))


@pytest.mark.parametrize("dtype,n_frames", [("int8", 9), ("int16", 1), ("int16", 4)])
def test_tm_data_types_reads_our_files(tmp_path: Path, dtype: str, n_frames: int) -> None:
    tm_python = _tm_python()
    if not tm_python.exists():
        pytest.skip(f"no tm_data_types interpreter at {tm_python} (set S2BOOK_TM_PYTHON or create .venv-tm)")
    raw = distinct_frames(n_frames, 2000, dtype) * 3
    path = tmp_path / "tm.wfm"
    gmt = [1779394536 + k for k in range(n_frames)]
    fract = [0.8148 + k * 1e-6 for k in range(n_frames)]
    write_wfm(path, raw if n_frames > 1 else raw[0], dt_s=1.6e-10, t0_s=-2e-7, scale_V=0.004, offset_V=0.02,
              gmt_sec=gmt, gmt_fract=fract)
    np.save(tmp_path / "expected.npy", raw)
    proc = subprocess.run([str(tm_python), str(INTEROP), str(path), str(tmp_path / "expected.npy")],
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout, proc.stderr
    got = json.loads(proc.stdout)
    assert got["equal"], got
    assert (got["frames"], got["points"], got["dtype"]) == (n_frames, 2000, dtype)
    assert (got["scale_V"], got["offset_V"], got["dt_s"]) == (0.004, 0.02, 1.6e-10)
    if n_frames > 1:
        assert got["frame_gmt_sec"] == gmt and got["frame_gmt_fract"] == fract
    assert proc.returncode == 0
