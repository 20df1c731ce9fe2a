#!/usr/bin/env python
"""Benchmark of the integration pass: timing windows, X-ray classification and recoil integration.

    python benchmarks/bench_integration.py [CONFIG.yaml] [--jobs N] [--json] [--repeat K]

Runs ``s2lib.analysis.pipeline.run_integration_pass(fit=False)`` (what ``s2book run`` does, without the notebooks and
without the histogram fits, which are not part of the pass over the data) on the run of
CONFIG.yaml, or by default on a freshly simulated ``realistic`` run (``s2lib.sim.simulate``, in a temporary folder
removed afterwards) of ``--sets`` sets × ``--files`` files (default 4 × 12: 2 352 frames, 590 MB; the profile's
own 2 × 10 is so short, 0.2 s, that starting the worker pool hides any parallel speed-up). Artifacts go to a temporary output folder, so a real run's outputs are never touched;
every repeat starts without ``timing.json``, so the timing estimate is measured too.

The reference is ``numpy.memmap(file, dtype=np.int8).sum()`` over the same files, measured in the same run: it
touches every byte (an int64 sum of all samples, checked to be the same number every time). One untimed
warm-up of each comes first (warm page cache for both); then K (default 3) (scan, pass) pairs run interleaved,
the order alternating (scan first, then pass first, ...), so that both see the same load and page-cache state
on a shared machine; times are medians, the ratio is the median of the K per-pair ratios (each printed). With
``--jobs 1`` the pass runs in this process, so the CPU time of each (``time.process_time``) is measured too:
``cpu_ratio`` is the median per-pair ratio of CPU seconds, which a loaded machine disturbs less than wall time
(it leaves out waiting for the disk and for a core; the wall-time ``ratio`` is the one the target is about).
Printed: frames/s, MB/s of file data (1 MB = 1e6 bytes), the reference MB/s and their ratio; ``--json`` prints
one object with the keys ``frames, bytes, seconds, frames_per_s, MB_per_s, memmap_sum_MB_per_s, ratio, jobs,
peak_rss_MB`` (peak resident memory of this process + its children), and ``ratios`` (per pair),
``scan_seconds``, ``pass_seconds``, ``timing_seconds`` (per pair), ``cpu_ratio`` and ``cpu_ratios`` (None
with ``--jobs`` > 1), ``repeat``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2lib.signal import integration
from s2lib.analysis import pipeline  # noqa: E402
from s2lib.config.runs import build_run, load_config  # noqa: E402


def memmap_sum(files: list[Path]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process, total) to sum every byte of ``files`` as int8 through
    ``numpy.memmap``."""
    started, cpu = time.perf_counter(), time.process_time()
    total = 0
    for f in files:
        total += int(np.memmap(f, dtype=np.int8, mode="r").sum())
    return time.perf_counter() - started, time.process_time() - cpu, total


def pass_seconds(run, jobs: int) -> tuple[float, float, int, float]:
    """(seconds of the whole pass, seconds of its timing estimate, frames, CPU seconds of this process) on a
    fresh output folder (the folder is removed before the clock starts)."""
    shutil.rmtree(run.output_dir, ignore_errors=True)
    cpu = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        summary = pipeline.run_integration_pass(run, jobs=jobs, fit=False, verbose=False)
    cpu = time.process_time() - cpu
    if summary.failed_sets:
        raise SystemExit(f"bench: sets failed: {summary.failed_sets}")
    return summary.seconds, summary.timing_seconds, summary.n_frames, cpu


def peak_rss_mb() -> float:
    """Peak resident set size of this process plus its (largest finished) child, MB (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kib * 1024 / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", help="run configuration (default: simulate a realistic run)")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats, median used (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="simulation seed (default run only)")
    ap.add_argument("--sets", type=int, default=4, help="sets of the default simulated run (default 4)")
    ap.add_argument("--files", type=int, default=12, help="files per set of the default simulated run (default 12)")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="s2bench_"))
    try:
        if args.config is None:
            from s2lib.sim.simulate import simulate_run
            with contextlib.redirect_stdout(io.StringIO()):
                gates = (200, 400, 800, 1200, 100, 600, 1000, 50)[:max(1, min(8, args.sets))]
                simulate_run(tmp / "sim", profile="realistic", seed=args.seed, progress=False, set_gates=gates,
                             n_files=max(1, args.files))
            config_path = tmp / "sim" / "run.yaml"
        else:
            config_path = Path(args.config)
        cfg = load_config(config_path)
        run = build_run(dataclasses.replace(cfg, output_base=tmp / "out"))
        files = [f for s in run.sets for f in s.files]
        n_bytes = sum(os.path.getsize(f) for f in files)
        checksum = memmap_sum(files)[2]                        # warm-up (page cache)
        pass_seconds(run, args.jobs)                           # warm-up (imports, page cache, pool start-up code)
        refs, runs = [], []
        for i in range(max(1, args.repeat)):                   # interleaved: both see the same machine load
            if i % 2:                                          # ... and neither always runs first
                runs.append(pass_seconds(run, args.jobs))
                refs.append(memmap_sum(files))
            else:
                refs.append(memmap_sum(files))
                runs.append(pass_seconds(run, args.jobs))
            if refs[-1][2] != checksum:
                raise SystemExit("bench: the memmap sum changed between repetitions (files modified?)")
        ref = statistics.median(r[0] for r in refs)
        seconds = statistics.median(r[0] for r in runs)
        ratios = [a[0] / r[0] for a, r in zip(refs, runs)]
        cpu_ratios = [a[1] / r[3] for a, r in zip(refs, runs)] if args.jobs == 1 else None
        frames = runs[0][2]
        integration.shutdown_pools()                           # workers' peak memory -> RUSAGE_CHILDREN
        out = {"frames": int(frames), "bytes": int(n_bytes), "seconds": seconds, "frames_per_s": frames / seconds,
               "MB_per_s": n_bytes / 1e6 / seconds, "memmap_sum_MB_per_s": n_bytes / 1e6 / ref,
               "ratio": statistics.median(ratios), "jobs": args.jobs, "peak_rss_MB": peak_rss_mb(),
               "ratios": ratios, "scan_seconds": [r[0] for r in refs], "pass_seconds": [r[0] for r in runs],
               "timing_seconds": [r[1] for r in runs],
               "cpu_ratio": statistics.median(cpu_ratios) if cpu_ratios else None, "cpu_ratios": cpu_ratios,
               "repeat": len(ratios)}
        if args.json:
            print(json.dumps(out))
        else:
            timing = statistics.median(out["timing_seconds"])
            print(f"run {run.run_id}: {len(run.sets)} sets, {len(files)} files, {frames} frames, "
                  f"{n_bytes / 1e6:.1f} MB, jobs {args.jobs}, median of {len(ratios)}")
            print(f"integration pass: {seconds:.3f} s (timing windows {timing:.3f} s) -> "
                  f"{out['frames_per_s']:.0f} frames/s, {out['MB_per_s']:.0f} MB/s")
            print(f"memmap int8 sum:  {ref:.3f} s -> {out['memmap_sum_MB_per_s']:.0f} MB/s")
            print(f"ratio {out['ratio']:.2f} (target >= 0.8 on one core, issue 11); per pair "
                  + " ".join(f"{r:.2f}" for r in ratios) + (f"; CPU-time ratio {out['cpu_ratio']:.2f}"
                                                             if cpu_ratios else "")
                  + f"; peak RSS {out['peak_rss_MB']:.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
