"""Truncated and corrupted WFM files: the reader either reads consistently or raises WfmError, never hangs.

Copies of the real samples and of a written FastFrame file are made in a temporary folder (never in ../shared).
"""
from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2lib.errors import WfmError
from s2lib.io.wfm import open_wfm, read_header, verify_checksum, write_wfm
from s2lib.io.wfm_inspect import format_summary, inspect_summary

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "wfm" / "samples"
SOURCES = ["FF5MhzX100From5Series.wfm", "analog_waveform.wfm", "data_test_waveform.wfm", "golden_analog.wfm",
           "invalid_tekmeta.wfm", "waveform.2.wfm", "waveform.3.wfm", "digital_waveform.wfm", "iq_waveform.wfm",
           "written_ff.wfm"]
SETTINGS = settings(max_examples=150, deadline=2000, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_counter = itertools.count()


@pytest.fixture(scope="module")
def originals(samples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Bytes of every source file; the written one is a 5-frame int8 FastFrame file with 16/16 pre/post charge."""
    folder = tmp_path_factory.mktemp("wfm_src")
    raw = (np.arange(5 * 200).reshape(5, 200) % 251 - 125).astype(np.int8)
    write_wfm(folder / "written_ff.wfm", raw, dt_s=2e-10, t0_s=-1e-6, scale_V=4e-4, offset_V=-0.04,
              gmt_sec=np.arange(5) + 1_760_000_000, gmt_fract=np.linspace(0, 0.5, 5))
    data = {name: (samples_dir / name).read_bytes() for name in SOURCES[:-1]}
    data["written_ff.wfm"] = (folder / "written_ff.wfm").read_bytes()
    return data


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wfm_mutants")


def _place(workdir: Path, name: str, blob: bytes) -> Path:
    path = workdir / f"{next(_counter)}_{name}"  # a fresh file each time: old maps stay valid
    path.write_bytes(blob)
    return path


KNOWN_FIELDS = {"header", "byte-order mark", "version", "FastFrame count (offset 72)", "data type (offset 122)",
                "storage type", "data format", "bytes per point (offset 15)", "curve buffer offset (offset 16)",
                "curve offsets", "postcharge stop", "curve buffer", "explicit scale", "explicit offset",
                "implicit offset", "implicit scale (sample interval)"}
"""Every field name the reader can blame for a file's content (s2lib/io/wfm.py, s2lib/io/_wfm_layout.py)."""


class Refused(NamedTuple):
    """A WfmError seen while reading: the file it named and the field it blamed."""

    path: Path
    field: str


def _read_all(path: Path, *, partial: bool = False, keep: bool = False) -> tuple[np.ndarray, dict] | Refused:
    """Read everything the API offers (strictly, or salvaging a truncated file with ``partial``); return
    (raw copy, inspect summary), or the file and field of the WfmError. The summary always salvages."""
    try:
        h = read_header(path, allow_partial=partial)
        with open_wfm(path, allow_partial=partial) as wf:
            raw = np.array(wf.raw)
            assert raw.shape == (h.n_frames, h.n_points)
            assert len(h.gmt_sec) == len(h.gmt_fract) == len(h.tt_offsets) == h.n_frames
            if raw.size:
                wf.volts(-1, slice(0, 3))
                wf.millivolts(0, slice(0, 4))
        summary = inspect_summary(path)
        json.dumps(summary)
        format_summary(summary)
        assert summary["frames"] == h.n_frames and summary["partial"] == h.partial
        if summary["checksum"] != "missing":
            verify_checksum(path)
        return raw, summary
    except WfmError as err:
        assert err.path == path and str(err).startswith(f"{path.name}: {err.field}: "), str(err)
        return Refused(err.path, err.field)
    finally:
        if not keep:
            path.unlink(missing_ok=True)


def _truncation_field(size: int, n_frames: int, curve_offset: int, stride: int) -> str:
    """The field a strict read of a v3 file cut to ``size`` bytes must blame (FORMAT.md 3.1: 838-byte header,
    then 24 + 30 bytes of Update/CurveSpecs per extra frame, then the curve buffer)."""
    if size < 838:
        return "header"
    if size < 838 + 54 * (n_frames - 1):
        return "FastFrame count (offset 72)"
    return "curve buffer"


@SETTINGS
@given(name=st.sampled_from(SOURCES), fraction=st.floats(0.0, 1.0))
def test_truncated_copy_reads_identically_or_is_refused(originals: dict[str, bytes], workdir: Path, name: str,
                                                         fraction: float) -> None:
    """Cut anywhere: a strict read refuses a short curve buffer naming the file and the exact field; a
    salvaging read returns exactly the complete frames (bit-identical) and says it is partial."""
    blob = originals[name]
    length = int(fraction * len(blob))
    reference = _read_all(_place(workdir, name, blob))
    cut = _place(workdir, name, blob[:length])
    got = _read_all(cut, keep=True)
    salvaged = _read_all(cut, partial=True)
    if isinstance(reference, Refused):                         # digital / IQ: refused whole or cut
        assert isinstance(got, Refused) and isinstance(salvaged, Refused)
        assert got.path == cut and got.field in {reference.field, "header", "FastFrame count (offset 72)",
                                                 "curve buffer"}, got
        return
    summ = reference[1]
    offset, stride, n = summ["curve_offset"], summ["frame_stride_bytes"], summ["frames"]
    if length >= offset + n * stride:
        assert not isinstance(got, Refused), f"{name} cut at {length} still holds the whole curve buffer"
        np.testing.assert_array_equal(got[0], reference[0])
        assert got[1]["partial"] is False
        return
    assert got == Refused(cut, _truncation_field(length, n, offset, stride)), (length, got)
    k = (length - offset) // stride if stride and length >= offset else 0
    if length >= 838 + 54 * (n - 1) and k >= 1:
        assert not isinstance(salvaged, Refused), f"{name} cut at {length} holds {k} complete frames"
        raw, summary = salvaged
        np.testing.assert_array_equal(raw, reference[0][:k])
        assert summary["partial"] is True and summary["frames"] == k and summary["frames_promised"] == n
        assert summary["checksum"] == "missing"
    else:
        assert salvaged == Refused(cut, _truncation_field(length, n, offset, stride))


@SETTINGS
@given(name=st.sampled_from(SOURCES),
       edits=st.lists(st.tuples(st.one_of(st.integers(0, 900), st.integers(0, 1 << 30)), st.integers(0, 255)),
                      min_size=1, max_size=6))
def test_corrupted_copy_reads_consistently_or_is_refused(originals: dict[str, bytes], workdir: Path, name: str,
                                                          edits: list[tuple[int, int]]) -> None:
    """Random bytes: edits inside the curve buffer are read back exactly as written (never refused); edits in
    the header are either harmless or refused with a known field naming the file."""
    blob = bytearray(originals[name])
    touched = set()
    for offset, value in edits:
        blob[offset % len(blob)] = value
        touched.add(offset % len(blob))
    reference = _read_all(_place(workdir, name, originals[name]))
    path = _place(workdir, name, bytes(blob))
    got = _read_all(path)
    if isinstance(reference, Refused):
        if isinstance(got, Refused):
            assert got.path == path and got.field in KNOWN_FIELDS, got
        return
    summ = reference[1]
    start = summ["curve_offset"]
    end = start + summ["frames"] * summ["frame_stride_bytes"]
    if min(touched) >= start:                              # only samples (or the checksum/trailer) changed
        assert not isinstance(got, Refused), f"{name}: sample edits at {sorted(touched)} were refused: {got}"
        h = read_header(_place(workdir, name, bytes(blob)))
        expect = np.ndarray((h.n_frames, h.n_points), dtype=h.sample_dtype, buffer=bytes(blob)[start:end],
                            offset=h.data_start, strides=(h.frame_stride, h.bytes_per_point))
        np.testing.assert_array_equal(got[0], expect)
    elif isinstance(got, Refused):
        assert got.path == path and got.field in KNOWN_FIELDS, got


HEADER_WORD_FIELDS = {
    15: {"bytes per point (offset 15)"}, 16: {"curve buffer offset (offset 16)"},
    72: {"FastFrame count (offset 72)", "curve buffer offset (offset 16)", "curve buffer"},
    122: {"data type (offset 122)"}, 240: {"data format", "bytes per point (offset 15)"},
    244: {"storage type"}, 488: {"implicit scale (sample interval)"},
    818: {"curve offsets"}, 822: {"curve offsets"}, 826: {"curve offsets", "curve buffer"},
    830: {"curve offsets", "postcharge stop", "curve buffer"},
}
"""Fields a refusal may name when the 32-bit word at a header offset is replaced (WFM#003, FORMAT.md 3.1).
Offsets not listed (byte count 10/11, header size 76, explicit/implicit sizes 184/504, frame 0's trigger time
784/804, CurveSpec end 834) are never checked by the reader: the samples must read back unchanged."""


@SETTINGS
@given(name=st.sampled_from(SOURCES), offset=st.sampled_from([10, 11, 15, 16, 72, 76, 122, 184, 240, 244, 488, 504,
                                                               784, 804, 818, 822, 826, 830, 834]),
       value=st.integers(0, 2**32 - 1))
def test_corrupted_header_words(originals: dict[str, bytes], workdir: Path, name: str, offset: int,
                                value: int) -> None:
    """Whole 32-bit words of the fields that size things (counts, offsets, formats) set to anything: a refusal
    names the field of that word; a word the reader ignores leaves the samples unchanged."""
    blob = bytearray(originals[name])
    struct.pack_into("<I", blob, offset, value)
    reference = _read_all(_place(workdir, name, originals[name]))
    path = _place(workdir, name, bytes(blob))
    got = _read_all(path)
    if isinstance(reference, Refused):
        assert isinstance(got, Refused) and got.field in KNOWN_FIELDS, got
        return
    if offset in HEADER_WORD_FIELDS:
        if isinstance(got, Refused):
            assert got.path == path and got.field in HEADER_WORD_FIELDS[offset], (offset, value, got)
    elif offset == 11 or offset in (76, 184, 504, 784, 804, 834):
        assert not isinstance(got, Refused), (offset, value, got)
        np.testing.assert_array_equal(got[0], reference[0])
    else:                                                   # 10: low byte of "digits in byte count" + byte count
        assert not isinstance(got, Refused) or got.field in KNOWN_FIELDS


# ---------------------------------------------------------------- named corruptions, named fields

def _patch(blob: bytes, fmt: str, offset: int, value: object) -> bytes:
    out = bytearray(blob)
    struct.pack_into("<" + fmt, out, offset, value)
    return bytes(out)


CASES = {
    "bad byte-order mark": (lambda b: b"\x12\x34" + b[2:], "byte-order mark"),
    "unknown version": (lambda b: b[:2] + b":WFM#009" + b[10:], "version"),
    "N = 4e9": (lambda b: _patch(b, "I", 72, 4_000_000_000), "FastFrame count"),
    "curve offset beyond EOF": (lambda b: _patch(b, "i", 16, 10**9), "curve buffer offset"),
    "curve buffer short": (lambda b: b[: 838 + 54 * 4 + 2 * 232 + 100], "curve buffer"),
    "bytes per point vs format": (lambda b: _patch(b, "B", 15, 2), "bytes per point"),
    "data start > postcharge start": (lambda b: _patch(b, "I", 822, 500), "curve offsets"),
    "stride 0": (lambda b: _patch(_patch(_patch(_patch(b, "I", 818, 0), "I", 822, 0), "I", 826, 0), "I", 830, 0),
                 "postcharge stop"),
    "stride beyond file": (lambda b: _patch(b, "I", 830, 10**8), "curve buffer"),
    "unknown format": (lambda b: _patch(b, "i", 240, 8), "data format"),
    "digital": (lambda b: _patch(b, "i", 122, 6), "data type"),
    "NaN sample interval": (lambda b: _patch(b, "d", 488, float("nan")), "implicit scale"),
    "header cut": (lambda b: b[:500], "header"),
    "empty file": (lambda b: b"", "header"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_named_corruption_names_the_field(originals: dict[str, bytes], workdir: Path, case: str) -> None:
    mutate, field = CASES[case]
    path = _place(workdir, "written_ff.wfm", mutate(originals["written_ff.wfm"]))
    with pytest.raises(WfmError) as info:
        read_header(path)
    assert info.value.field.startswith(field), str(info.value)
    assert path.name in str(info.value)


def test_checksum_mismatch_does_not_stop_reading(originals: dict[str, bytes], workdir: Path) -> None:
    blob = bytearray(originals["written_ff.wfm"])
    blob[-1] ^= 0xFF
    path = _place(workdir, "written_ff.wfm", bytes(blob))
    assert not verify_checksum(path)
    assert inspect_summary(path)["checksum"] == "mismatch"
    cut = _place(workdir, "written_ff.wfm", bytes(blob[:-8]))
    with pytest.raises(WfmError, match="checksum"):
        verify_checksum(cut)
    assert inspect_summary(cut)["checksum"] == "missing"


def test_truncated_fastframe_is_salvaged_and_says_so(originals: dict[str, bytes], workdir: Path) -> None:
    """5 frames promised, 2 complete plus part of the third on disk: strict readers refuse; the salvaging reader
    and inspect give exactly the 2 complete frames and report 2 of 5."""
    blob = originals["written_ff.wfm"]
    full = _read_all(_place(workdir, "written_ff.wfm", blob))
    path = _place(workdir, "written_ff.wfm", blob[: 838 + 54 * 4 + 2 * 232 + 100])
    with pytest.raises(WfmError) as info:
        open_wfm(path)
    assert info.value.field == "curve buffer" and info.value.path == path
    with open_wfm(path, allow_partial=True) as wf:
        assert wf.header.partial and wf.header.n_frames == 2 and wf.header.n_frames_promised == 5
        np.testing.assert_array_equal(wf.raw, full[0][:2])
        assert list(wf.header.gmt_sec) == [1_760_000_000, 1_760_000_001]
    summary = inspect_summary(path)
    assert (summary["frames"], summary["frames_promised"], summary["partial"]) == (2, 5, True)
    assert "PARTIAL" in format_summary(summary) and "2 of the 5 frames" in format_summary(summary)


@pytest.mark.parametrize("kind", ["directory", "fifo", "missing"])
def test_non_regular_paths_are_refused_without_blocking(workdir: Path, kind: str) -> None:
    """A directory or FIFO named .wfm, or a file gone since it was listed: WfmError on field 'file' (a FIFO must
    not block the reader: it is opened non-blocking and its type checked on the descriptor)."""
    import os

    path = workdir / f"{next(_counter)}_{kind}.wfm"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(WfmError) as info:
        read_header(path)
    assert info.value.field == "file" and info.value.path == path
    assert {"directory": "is a directory", "fifo": "is a FIFO", "missing": "cannot be opened"}[kind] in str(info.value)


def test_a_header_edited_in_place_is_read_again(originals, tmp_path):
    """Headers are remembered by their bytes (the timing stage and the pass both read every header), never by
    mtime: a file whose header is rewritten in place at the same size, within the same clock tick, is parsed
    again: first its scale changes, then its data type turns digital and it is refused."""
    path = tmp_path / "edited.wfm"
    data = bytearray(originals["written_ff.wfm"])
    path.write_bytes(bytes(data))
    first = read_header(path)
    assert read_header(path).scale_V == first.scale_V == pytest.approx(4e-4)
    bo = "<" if data[0:2] == b"\x0f\x0f" else ">"
    offset = data.index(struct.pack(bo + "d", 4e-4))               # the explicit dimension's scale (float64)
    data[offset:offset + 8] = struct.pack(bo + "d", 8e-4)
    path.write_bytes(bytes(data))
    assert read_header(path).scale_V == pytest.approx(8e-4)
    data[122:126] = struct.pack(bo + "i", 6)
    path.write_bytes(bytes(data))
    with pytest.raises(WfmError, match="digital"):
        read_header(path)
    with pytest.raises(ValueError):                                 # the shared header's arrays are read-only
        first.gmt_sec[0] = 0
