#!/usr/bin/env python
"""The same pass on the local pool and on Dask gives the same artifacts, byte for byte.

    python benchmarks/executor_identity.py [CONFIG.yaml] [--workers 2] [--sets 4] [--files 12]

Runs the integration pass (``s2lib.analysis.pipeline.run_integration_pass``: timing, X-ray classification, recoil
integration, fits) of one run three times from scratch, into separate temporary output folders: in this process
(1 worker), on the local process pool and on a Dask ``LocalCluster`` (``--workers`` each; the executor is chosen
as ``s2book run --executor`` does, through ``S2BOOK_EXECUTOR``). Prints the sha256 of every set's
``s2_areas.npy``, ``s2_event_ids.npy``, ``s2_flags.npy``, ``s2_sideband.npy``, ``xray_areas.npy`` and
``xray_event_ids.npy`` per executor, and exits non-zero when any differs. Default run: a freshly simulated
``realistic`` run of ``--sets`` × ``--files`` files (as ``bench_integration.py``), removed afterwards.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2lib.analysis import pipeline  # noqa: E402
from s2lib.config.runs import build_run, load_config  # noqa: E402
from s2lib.signal import integration  # noqa: E402

ARRAYS = ("s2_areas.npy", "s2_event_ids.npy", "s2_flags.npy", "s2_sideband.npy", "xray_areas.npy",
          "xray_event_ids.npy")


def digests(run) -> dict[str, str]:
    """``<set>/<file>`` → sha256 of every array artifact of the run."""
    return {f"{s.name}/{a}": hashlib.sha256((run.set_output_dir(s.name) / a).read_bytes()).hexdigest()
            for s in run.sets for a in ARRAYS if (run.set_output_dir(s.name) / a).is_file()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("config", nargs="?", help="run configuration (default: simulate a realistic run)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--sets", type=int, default=4)
    ap.add_argument("--files", type=int, default=12)
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="s2exec_"))
    try:
        if args.config is None:
            from s2lib.sim.simulate import simulate_run
            gates = (200, 400, 800, 1200, 100, 600, 1000, 50)[:max(1, min(8, args.sets))]
            with contextlib.redirect_stdout(io.StringIO()):
                simulate_run(tmp / "sim", profile="realistic", seed=1, progress=False, set_gates=gates,
                             n_files=max(1, args.files))
            config = tmp / "sim" / "run.yaml"
        else:
            config = Path(args.config)
        cfg = load_config(config)
        results = {}
        for label, executor, jobs in (("in-process", "local", 1), (f"local pool x{args.workers}", "local",
                                                                     args.workers),
                                      (f"dask LocalCluster x{args.workers}", "dask", args.workers)):
            run = build_run(dataclasses.replace(cfg, output_base=tmp / label.split()[0]))
            os.environ["S2BOOK_EXECUTOR"] = executor
            with contextlib.redirect_stdout(io.StringIO()):
                summary = pipeline.run_integration_pass(run, jobs=jobs, verbose=False)
            integration.shutdown_pools()
            results[label] = digests(run)
            print(f"{label:24s} {summary.n_frames} frames, {summary.seconds:.2f} s, "
                  f"{len(results[label])} arrays")
        os.environ.pop("S2BOOK_EXECUTOR", None)
        first = next(iter(results.values()))
        same = all(r == first for r in results.values())
        for key, digest in first.items():
            marks = "".join("=" if r.get(key) == digest else "X" for r in results.values())
            print(f"  {key:52s} {digest[:16]}  {marks}")
        print("identical on every executor" if same else "DIFFERENT")
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
