"""Toy coverage of the recoil and X-ray estimators for ``s2book validate`` (full matrix only).

Each case runs :func:`s2lib.stats.toys.coverage` (the estimators of :mod:`s2lib.stats.estimators` with their default
configuration on toy sets drawn without waveforms) for a shape that mirrors a dimension of the closure matrix.
Reported per case: the fraction of 95 % intervals that cover the toy's population mean (with its binomial
error), the mean relative bias, and the pull width. A case is "in range" when the coverage lies in 92-98 %
(issue 8) and "consistent" when that band is within two binomial errors of the measured coverage (with 200
toys the error is about 1.5 %, so a correct 95 % interval falls outside 92-98 % in a few % of the cases).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["COVERAGE_CASES", "COVERAGE_RANGE", "N_TOYS", "coverage_study", "verdict"]

COVERAGE_RANGE = (0.92, 0.98)
"""Accepted coverage of the 95 % intervals (issue 8)."""
N_TOYS = 200
"""Toys per case."""

COVERAGE_CASES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("recoil", "baseline: 2 mV·µs, cv 10 %, 1 000 frames, 5 % empty, 2 % pile-up",
     {"mean": 2.0, "cv": 0.10, "n_frames": 1000, "empty": 0.05, "pileup": 0.02}),
    ("recoil", "skewed: cv 25 %", {"mean": 2.0, "cv": 0.25, "n_frames": 1000, "empty": 0.05, "pileup": 0.02}),
    ("recoil", "faint: 0.4 mV·µs, cv 25 %, 20 % empty", {"mean": 0.4, "cv": 0.25, "n_frames": 1000, "empty": 0.20,
                                                          "pileup": 0.02, "xray_mean": 0.6}),
    ("recoil", "bright: 40 mV·µs, cv 25 %", {"mean": 40.0, "cv": 0.25, "n_frames": 1000, "empty": 0.05,
                                             "pileup": 0.02, "xray_mean": 30.0}),
    ("recoil", "small set: 100 frames", {"mean": 2.0, "cv": 0.10, "n_frames": 100, "empty": 0.05, "pileup": 0.02}),
    ("recoil", "large set: 10 000 frames", {"mean": 2.0, "cv": 0.10, "n_frames": 10000, "empty": 0.05,
                                            "pileup": 0.02}),
    ("xray", "baseline: 2 mV·µs, 300 X-rays, 10 % junk, 1 % doubles", {"mean": 2.0, "n": 300, "junk": 0.1,
                                                                      "double": 0.01}),
    ("xray", "few: 60 X-rays", {"mean": 2.0, "n": 60, "junk": 0.1, "double": 0.01}),
    ("xray", "bright: 15 mV·µs (EL 4000 V/cm)", {"mean": 15.0, "n": 300, "junk": 0.1, "double": 0.01}),
)
"""(estimator, description, toy shape) of every case; shapes are :class:`s2lib.stats.toys.RecoilToy` /
:class:`s2lib.stats.toys.XrayToy` fields."""


def _one(args: tuple[int, str, str, dict[str, Any], int]) -> dict[str, Any]:
    from s2lib.stats.toys import coverage

    index, kind, case, shape, n_toys = args
    res = coverage(kind, n_toys=n_toys, seed=1000 + index, **shape)
    ok, consistent = verdict(res["coverage95"], res["coverage_err"])
    return {"estimator": kind, "case": case, **res, "ok": ok, "consistent": consistent}


def verdict(coverage: float | None, err: float | None) -> tuple[bool, bool]:
    """(coverage in :data:`COVERAGE_RANGE`, coverage within 2 ``err`` of that range); NaN/None: (False, False)."""
    lo, hi = COVERAGE_RANGE
    if coverage is None or not math.isfinite(coverage):
        return False, False
    e = err if err is not None and math.isfinite(err) else 0.0
    return bool(lo <= coverage <= hi), bool(coverage + 2 * e >= lo and coverage - 2 * e <= hi)


def coverage_study(*, n_toys: int = N_TOYS, jobs: int = 1,
                   cases: Sequence[tuple[str, str, dict[str, Any]]] = COVERAGE_CASES) -> dict[str, Any]:
    """Run every case (in ``jobs`` processes) and return the ``coverage`` section of ``validation.json``."""
    args = [(i, kind, case, dict(shape), n_toys) for i, (kind, case, shape) in enumerate(cases)]
    if jobs > 1:
        with ProcessPoolExecutor(max_workers=min(jobs, len(args))) as pool:
            rows = list(pool.map(_one, args))
    else:
        rows = [_one(a) for a in args]
    return {"description": f"{n_toys} toys per case with the estimators' default configuration "
                           "(s2lib.stats.toys.coverage; seeds 1000 + case index). Coverage: fraction of the 95 % "
                           "intervals containing the toy's population mean ± its binomial error; pull width: "
                           "std of (estimate − truth)/σ. In range: 92-98 %; consistent: within 2 binomial "
                           "errors of that band.",
            "range": list(COVERAGE_RANGE), "n_toys": n_toys, "rows": rows,
            "all_in_range": all(r["ok"] for r in rows), "all_consistent": all(r["consistent"] for r in rows)}
