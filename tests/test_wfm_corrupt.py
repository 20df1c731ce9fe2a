"""Truncated and corrupted WFM files: the reader either reads consistently or raises WfmError, never hangs.

Copies of the real samples and of a written FastFrame file are made in a temporary folder (never in ../shared).
"""
from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2lib.errors import WfmError
from s2lib.wfm import format_summary, inspect_summary, open_wfm, read_header, verify_checksum, write_wfm

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


def _read_all(path: Path) -> tuple[np.ndarray, dict] | None:
    """Read everything the API offers; return (raw copy, summary), or None after a WfmError."""
    try:
        h = read_header(path)
        with open_wfm(path) as wf:
            raw = np.array(wf.raw)
            assert raw.shape == (h.n_frames, h.n_points)
            assert len(h.gmt_sec) == len(h.gmt_fract) == len(h.tt_offsets) == h.n_frames
            if raw.size:
                wf.volts(-1, slice(0, 3))
                wf.millivolts(0, slice(0, 4))
        summary = inspect_summary(path)
        json.dumps(summary)
        format_summary(summary)
        if summary["checksum"] != "missing":
            verify_checksum(path)
        return raw, summary
    except WfmError as err:
        assert path.name in str(err) and err.field
        return None
    finally:
        path.unlink(missing_ok=True)


@SETTINGS
@given(name=st.sampled_from(SOURCES), fraction=st.floats(0.0, 1.0))
def test_truncated_copy_reads_identically_or_is_refused(originals: dict[str, bytes], workdir: Path, name: str,
                                                         fraction: float) -> None:
    blob = originals[name]
    length = int(fraction * len(blob))
    reference = _read_all(_place(workdir, name, blob))
    got = _read_all(_place(workdir, name, blob[:length]))
    if reference is None:
        assert got is None
        return
    h_end = reference[1]["curve_offset"] + reference[1]["frames"] * reference[1]["frame_stride_bytes"]
    if length >= h_end:
        assert got is not None, f"{name} cut at {length} still holds the whole curve buffer ({h_end})"
        np.testing.assert_array_equal(got[0], reference[0])
    else:
        assert got is None, f"{name} cut at {length} < {h_end} was read"


@SETTINGS
@given(name=st.sampled_from(SOURCES),
       edits=st.lists(st.tuples(st.one_of(st.integers(0, 900), st.integers(0, 1 << 30)), st.integers(0, 255)),
                      min_size=1, max_size=6))
def test_corrupted_copy_reads_consistently_or_is_refused(originals: dict[str, bytes], workdir: Path, name: str,
                                                          edits: list[tuple[int, int]]) -> None:
    blob = bytearray(originals[name])
    for offset, value in edits:
        blob[offset % len(blob)] = value
    _read_all(_place(workdir, name, bytes(blob)))


@SETTINGS
@given(name=st.sampled_from(SOURCES), offset=st.sampled_from([10, 11, 15, 16, 72, 76, 122, 184, 240, 244, 488, 504,
                                                               784, 804, 818, 822, 826, 830, 834, 838]),
       value=st.integers(0, 2**32 - 1))
def test_corrupted_header_words(originals: dict[str, bytes], workdir: Path, name: str, offset: int,
                                value: int) -> None:
    """Whole 32-bit words of the fields that size things (counts, offsets, formats) set to anything."""
    blob = bytearray(originals[name])
    if offset + 4 <= len(blob):
        struct.pack_into("<I", blob, offset, value)
    _read_all(_place(workdir, name, bytes(blob)))


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
    "curve buffer short": (lambda b: b[: 838 + 54 * 4 + 3 * 232], "curve buffer"),
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
        inspect_summary(path)
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
