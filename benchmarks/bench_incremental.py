#!/usr/bin/env python
"""A set gains one file: what ``s2book status`` says and what the re-run of the integration stage reads.

    python benchmarks/bench_incremental.py [--sets 4] [--files 12] [--profile realistic] [--executor local|dask]

Simulates a run (default: the ``realistic`` profile, 4 sets × 12 files × 49 frames of 250 000 samples, as
``bench_integration.py``) with the last file of the first set held back, runs the integration stage
(``s2lib.report.report.run_reports``, what ``s2book run --stages integration`` does; executed notebooks go to a
temporary book folder), puts the file back (the acquisition wrote one more), prints ``s2book status`` and runs
the stage again. Prints both stage times, the ``[<run_id>] <set>: <N> files read, <M> reused`` lines, and
the seconds of the pass inside each stage, and whether the re-run's artifacts are bit-identical (sha256) to a run from scratch on all files.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from s2lib.report.report import report_status, run_reports  # noqa: E402
from s2lib.config.runs import build_run, load_config  # noqa: E402
from s2lib.sim.simulate import simulate_run  # noqa: E402

ARTIFACTS = ("s2_areas.npy", "s2_event_ids.npy", "s2_flags.npy", "xray_areas.npy", "xray_event_ids.npy")


def _stage(cfg: Path, root: Path) -> tuple[float, float, list[str]]:
    """(stage seconds, seconds of the pass inside it as the notebook prints them, the files-read lines)."""
    buf = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = run_reports([cfg], stages=["integration"], root=root, template_dir=REPO / "notebooks")
    if code != 0:
        raise SystemExit(f"bench_incremental: the integration stage failed:\n{buf.getvalue()[-3000:]}")
    run_id = yaml.safe_load(cfg.read_text())["run_id"]
    found = re.search(r"(\d+) frames in ([0-9.]+) s", (root / "book" / "runs" / run_id / "integration.ipynb").read_text())
    lines = [ln for ln in buf.getvalue().splitlines() if "files read" in ln]
    return time.perf_counter() - started, float(found.group(2)) if found else float("nan"), lines


def _digests(cfg: Path) -> dict[str, str]:
    run = build_run(load_config(cfg))
    return {f"{s.name}/{a}": hashlib.sha256((run.set_output_dir(s.name) / a).read_bytes()).hexdigest()
            for s in run.sets for a in ARTIFACTS}


def _config(base: Path, raw: Path, out: Path, path: Path) -> Path:
    doc = yaml.safe_load((base / "run.yaml").read_text())
    doc["data"] = {"raw_data_path": str(raw), "output_base": str(out)}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="realistic", choices=("tiny", "demo", "realistic"))
    ap.add_argument("--sets", type=int, default=4)
    ap.add_argument("--files", type=int, default=12)
    ap.add_argument("--executor", default="local", choices=("local", "dask"))
    args = ap.parse_args(argv)
    os.environ["S2BOOK_EXECUTOR"] = args.executor
    tmp = Path(tempfile.mkdtemp(prefix="s2inc_"))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            base = Path(simulate_run(tmp / "sim", profile=args.profile, seed=1, progress=False, n_files=args.files,
                                     set_gates=(200, 400, 800, 1200, 100, 600, 1000, 50)[:args.sets]))
        cfg = _config(base, base / "raw", tmp / "out", tmp / "run.yaml")
        first = build_run(load_config(cfg)).sets[0]
        last = first.files[-1]
        held = tmp / last.name
        shutil.move(last, held)
        t1, p1, lines1 = _stage(cfg, tmp / "book")
        print(f"first run ({first.name} without {last.name}): integration stage {t1:.1f} s, pass {p1:.2f} s")
        for ln in lines1:
            print("  " + ln)
        shutil.move(held, last)
        print("one file added; s2book status:")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            report_status([cfg], root=tmp / "book", template_dir=REPO / "notebooks")
        for ln in buf.getvalue().splitlines():
            if "new files" in ln or "integration" in ln:
                print("  " + ln.strip())
        t2, p2, lines2 = _stage(cfg, tmp / "book")
        print(f"re-run: integration stage {t2:.1f} s, pass {p2:.2f} s")
        for ln in lines2:
            print("  " + ln)
        scratch = _config(base, base / "raw", tmp / "scratch", tmp / "scratch.yaml")
        t3, p3, _ = _stage(scratch, tmp / "book2")
        same = _digests(cfg) == _digests(scratch)
        print(f"from scratch on all files: integration stage {t3:.1f} s, pass {p3:.2f} s; artifacts bit-identical "
              f"(sha256): {same}")
        print("(pass = timing estimate + per-file pass + artifacts, as the integration notebook prints it; the rest "
              "of the stage is the notebook: kernel start, figures, tables)")
        print(json.dumps({"first_s": t1, "rerun_s": t2, "scratch_s": t3, "first_pass_s": p1, "rerun_pass_s": p2,
                          "scratch_pass_s": p3, "identical": same}))
        return 0 if same else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
