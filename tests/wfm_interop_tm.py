#!/usr/bin/env python3
"""Read a WFM file with Tektronix's ``tm_data_types`` and compare it with expected raw samples.

Standalone helper for tests/test_wfm_writer.py: ``tm_data_types`` needs numpy < 2, so it runs under its own
interpreter (``S2BOOK_TM_PYTHON``, default ``REPO/.venv-tm/bin/python``), never inside the s2book venv.

Usage: wfm_interop_tm.py FILE.wfm EXPECTED_RAW.npy

Prints one JSON object: ``frames``, ``points`` (what tm_data_types read), ``expected_shape``, ``dtype``,
``equal`` (same frame count and identical raw values), ``scale_V``, ``offset_V``, ``dt_s``, ``kind`` (class
name), ``tm_data_types`` (version), and ``error`` when reading failed. Exit status 0 when ``equal``, else 1.
"""
from __future__ import annotations

import json
import sys

import numpy as np


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    import tm_data_types
    from tm_data_types import read_file

    expected = np.load(argv[2])
    if expected.ndim == 1:
        expected = expected[np.newaxis, :]
    out: dict = {"tm_data_types": tm_data_types.__version__, "expected_shape": list(expected.shape)}
    try:
        wf = read_file(argv[1])
    except Exception as err:  # report any failure of the foreign reader as data, not a traceback
        out.update(error=f"{type(err).__name__}: {err}", equal=False)
        print(json.dumps(out))
        return 1
    frames = getattr(wf, "all_frames", None)
    if frames is None:  # single record: AnalogWaveform keeps its samples in y_axis_values
        frames = np.asarray(wf.y_axis_values)[np.newaxis, :]
    frames = np.asarray(frames)
    out.update(kind=type(wf).__name__, frames=int(frames.shape[0]), points=int(frames.shape[1]),
               dtype=str(frames.dtype), scale_V=float(wf.y_axis_spacing), offset_V=float(wf.y_axis_offset),
               dt_s=float(wf.x_axis_spacing))
    out["equal"] = bool(frames.shape == expected.shape and np.array_equal(frames, expected))
    if getattr(wf, "frame_gmt_sec", None) is not None:
        out["frame_gmt_sec"] = [int(v) for v in wf.frame_gmt_sec]
        out["frame_gmt_fract"] = [float(v) for v in wf.frame_gmt_fract]
        out["tt_offsets"] = [float(v) for v in wf.tt_offsets]
    print(json.dumps(out))
    return 0 if out["equal"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
