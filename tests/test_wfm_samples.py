"""The reader against real Tektronix files (../shared/wfm/samples) and their expected.json."""
from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from s2lib.errors import WfmError
from s2lib.io.wfm import open_wfm, read_header, verify_checksum
from s2lib.io.wfm_inspect import format_summary, inspect_summary

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "checks" / "wfm_conformance.py"
SAMPLES = REPO.parent / "shared" / "wfm" / "samples"  # same folder as the samples_dir fixture
ANALOG = ("AnalogWaveform", "FastFrameAnalogWaveform")


def _expected(samples_dir: Path) -> dict:
    return json.loads((samples_dir / "expected.json").read_text())


def _names(kind: str) -> list[str]:
    """Sample names by class, for parametrisation (empty when the shared folder is absent: see test below)."""
    exp_file = SAMPLES / "expected.json"
    exp = json.loads(exp_file.read_text()) if exp_file.is_file() else {}
    if kind == "analog":
        return sorted(n for n, v in exp.items() if v.get("kind") in ANALOG)
    if kind == "refused":
        return sorted(n for n, v in exp.items() if v.get("kind") not in ANALOG and "tm_data_types_error" not in v)
    return sorted(n for n, v in exp.items() if "tm_data_types_error" in v)


def _close(a: float, b: float, abs_tol: float = 1e-12) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=abs_tol)


def test_every_sample_is_classified(samples_dir: Path) -> None:
    files = sorted(p.name for p in samples_dir.glob("*.wfm"))
    assert files == sorted(_expected(samples_dir)), "a sample file without an expected.json entry"
    assert _names("analog") and _names("refused") and _names("tekmeta")


@pytest.mark.parametrize("name", _names("analog"))
def test_analog_sample_matches_expected(samples_dir: Path, name: str) -> None:
    want = _expected(samples_dir)[name]
    got = inspect_summary(samples_dir / name)
    assert got["frames"] == want["frames"] and got["points"] == want["points"]
    for key in ("dt_s", "scale_V", "offset_V"):
        assert _close(got[key], want[key]), key
    assert _close(got["sum_V"], want["sum_V"], abs_tol=1e-9)
    for key in ("frame0_first4_V", "last_frame_first3_V", "frame_gmt_sec", "frame_gmt_fract", "tt_offsets"):
        if want.get(key):
            assert len(got[key]) >= len(want[key]), key
            assert all(_close(a, b) for a, b in zip(got[key], want[key])), key
    json.dumps(got)  # JSON-ready: plain Python numbers only
    assert "frames" in format_summary(got)


@pytest.mark.parametrize("name", _names("analog"))
def test_analog_sample_raw_view(samples_dir: Path, name: str) -> None:
    want = _expected(samples_dir)[name]
    with open_wfm(samples_dir / name) as wf:
        h = wf.header
        raw = wf.raw
        assert raw.shape == (want["frames"], want["points"])
        assert not raw.flags.writeable
        with pytest.raises(ValueError):
            raw[..., :1] = 0
        assert h.gmt_sec.dtype == np.int64 and h.gmt_fract.dtype == np.float64
        assert len(h.gmt_sec) == len(h.tt_offsets) == h.n_frames
        if raw.size:
            volts = wf.volts()
            assert volts.dtype == np.float64
            np.testing.assert_allclose(wf.volts(0, slice(0, 4)), want["frame0_first4_V"], rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(wf.millivolts(), volts * 1e3)
            assert raw.base is not None and not raw.flags.owndata  # a view on the memory map, not a copy
        assert h.time_us().shape == (h.n_points,)
    assert verify_checksum(samples_dir / name)


def test_fastframe_sample_keeps_every_frame_and_timestamp(samples_dir: Path) -> None:
    name = "FF5MhzX100From5Series.wfm"
    want = _expected(samples_dir)[name]
    with open_wfm(samples_dir / name) as wf:
        h = wf.header
        assert (h.n_frames, h.precharge_points, h.postcharge_points) == (100, 32, 32)
        np.testing.assert_array_equal(h.gmt_sec, want["frame_gmt_sec"])
        np.testing.assert_allclose(h.gmt_fract, want["frame_gmt_fract"], rtol=0, atol=1e-15)
        np.testing.assert_allclose(wf.volts(-1, slice(0, 3)), want["last_frame_first3_V"], atol=1e-12)
        # frame k starts k * stride bytes into the curve buffer, user points only
        blob = (samples_dir / name).read_bytes()
        for k in (0, 1, 50, 99):
            start = h.curve_offset + k * h.frame_stride + h.data_start
            expect = np.frombuffer(blob, dtype=np.int8, count=h.n_points, offset=start)
            np.testing.assert_array_equal(wf.raw[k], expect)


@pytest.mark.parametrize("name", _names("refused"))
def test_non_analog_sample_is_refused_naming_the_file(samples_dir: Path, name: str) -> None:
    with pytest.raises(WfmError) as info:
        read_header(samples_dir / name)
    assert name in str(info.value)
    assert info.value.path.name == name and info.value.field
    with pytest.raises(WfmError, match=name.replace(".", r"\.")):
        inspect_summary(samples_dir / name)


@pytest.mark.parametrize("name", _names("tekmeta"))
def test_corrupt_trailer_sample_reads_its_curve(samples_dir: Path, name: str) -> None:
    # conformance rule: refuse naming the file, or read 6 points in 1 frame; we read (the trailer is ignored)
    got = inspect_summary(samples_dir / name)
    assert (got["frames"], got["points"]) == (1, 6)
    assert got["checksum"] == "ok"


def test_cli_refusal_is_one_line_naming_the_file(samples_dir: Path) -> None:
    exe = Path(sys.executable).with_name("s2book")
    proc = subprocess.run([str(exe), "inspect", str(samples_dir / "digital_waveform.wfm")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "digital_waveform.wfm" in proc.stderr and "Traceback" not in proc.stderr


def test_conformance_script_passes(samples_dir: Path) -> None:
    exe = Path(sys.executable).with_name("s2book")
    assert exe.exists(), f"s2book entry point missing beside {sys.executable}"
    proc = subprocess.run([sys.executable, str(CONFORMANCE), "--cmd", f"{shlex.quote(str(exe))} inspect --json",
                           "--samples", str(samples_dir)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAIL" not in proc.stdout
