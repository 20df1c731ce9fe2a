#!/usr/bin/env python
"""Scaling benchmark: end-to-end cost of a run against its number of frames, local pool and Dask.

    python benchmarks/bench_scale.py [--quick] [--sizes 10000,50000,200000] [--configs local1,local2,dask1,dask2]
                                     [--out DIR] [--keep]

What it does:

1. Simulates one small base run (``s2lib.sim.simulate`` profile ``tiny`` with small frames: 0.5 GS/s,
   ``auto_frame`` (the frame holds just the pedestal, S1 and the slowest S2 window: ~12 000 int8 samples,
   12 kB), 4 sets × 10 files × 100 frames). Simulating 200 000 frames directly would take ~15 min on a shared
   core, so the runs of each size are built by *copying* the base files (cyclically, new names continuing the
   acquisition numbering) until every set holds its share of frames. The cost of every stage depends on the
   number and size of frames, not on their content, so repeated content measures the same thing.
2. Per size and configuration (local pool / Dask LocalCluster, 1 / 2 workers) it runs the whole report from
   scratch: ``s2lib.report.report.run_reports`` (what ``s2book run`` does: integration notebook = timing + pass +
   artifacts; fitting; calibration; cross-run summary) in a fresh subprocess, with the executor chosen through
   ``S2BOOK_EXECUTOR`` (as ``s2book run --executor``) and ``--jobs`` workers, under ``/usr/bin/time -v``.
   Executed notebooks go to a temporary book folder, never to the repository's ``book/``.
3. Prints per stage the wall time from the run's manifest (``duration_s``: notebook execution, kernel start
   included), the total, frames/s, the peak RSS of the whole process tree (sum of ``VmRSS`` of the runner and
   all its descendants, sampled every 0.2 s from ``/proc``: kernels and workers included) and of its largest
   process (``/usr/bin/time``'s maximum resident set size); writes ``bench_scale.json`` and a figure
   ``bench_scale.png`` (time per stage and peak RSS against frames, one line per configuration).
4. Ends with an extrapolation to 1 000 000 frames of 250 000 int8 samples (the lab's format, 250 GB): the
   pass fitted as ``a + b·bytes`` (its cost is reading the frames) plus the integration notebook's own
   overhead, the other stages as ``a + c·frames``; both fitted per configuration on the measured sizes.

The files are read from the page cache here (the machine has the RAM); a real run of 250 GB is read from disk,
so the extrapolation is a lower bound set by the disk when the disk is slower than the measured MB/s.
The machine may be shared: run it under ``nice`` and say so next to its numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = ("integration", "fitting", "calibration", "summary")
BASE = dict(profile="tiny", n_files=10, frames_per_file=100, set_gates=(200, 400, 800, 1200), sampling_rate_Hz=0.5e9,
            auto_frame=True)
"""The base run's simulation knobs (s2lib.sim.simulate): 4 sets × 10 files × 100 frames of ~12 000 samples."""
CONFIGS = {"local1": ("local", 1), "local2": ("local", 2), "dask1": ("dask", 1), "dask2": ("dask", 2)}
TARGET_FRAMES, TARGET_SAMPLES = 1_000_000, 250_000


def simulate_base(tmp: Path, seed: int) -> Path:
    from s2lib.sim.simulate import simulate_run

    with contextlib.redirect_stdout(io.StringIO()):
        return Path(simulate_run(tmp / "base", seed=seed, progress=False, **BASE))


def build_size(base: Path, tmp: Path, n_frames: int) -> tuple[Path, int, int]:
    """A run of ``n_frames`` frames (rounded up to whole files) built from the base files; (run.yaml, frames,
    bytes)."""
    sets = sorted(p for p in (base / "raw").iterdir() if p.is_dir())
    per_set_files = math.ceil(n_frames / (len(sets) * BASE["frames_per_file"]))
    root = tmp / f"run_{n_frames}"
    total_bytes = 0
    for s in sets:
        src = sorted(s.glob("*.wfm"), key=lambda p: int(p.stem.rsplit("_", 1)[1].removesuffix("Wfm")))
        dst = root / "raw" / s.name
        dst.mkdir(parents=True, exist_ok=True)
        stem = src[0].name.rsplit("_", 1)[0]
        for k in range(per_set_files):
            f = dst / f"{stem}_{k + 1}Wfm.wfm"
            shutil.copyfile(src[k % len(src)], f)
            total_bytes += f.stat().st_size
    doc = yaml.safe_load((base / "run.yaml").read_text())
    doc["run_id"] = f"SCALE_{n_frames}"
    doc["data"] = {"raw_data_path": str(root / "raw"), "output_base": str(root / "processed")}
    cfg = root / "run.yaml"
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    return cfg, per_set_files * len(sets) * BASE["frames_per_file"], total_bytes


def _tree_rss_kib(pid: int) -> int:
    """Sum of VmRSS (KiB) of ``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            with open(f"/proc/{p}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


def run_config(cfg: Path, executor: str, workers: int, book_root: Path) -> dict:
    """Run every stage from scratch in a subprocess; per-stage seconds, total, peak RSS (tree, largest)."""
    doc = yaml.safe_load(cfg.read_text())
    out = Path(doc["data"]["output_base"])
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(book_root / "book" / "runs", ignore_errors=True)
    code = ("import sys; from s2lib.report.report import run_reports; "
            f"sys.exit(run_reports([{str(cfg)!r}], jobs={workers}, root={str(book_root)!r}, "
            f"template_dir={str(REPO / 'notebooks')!r}))")
    env = {**os.environ, "S2BOOK_EXECUTOR": executor, "PYTHONPATH": str(REPO)}
    cmd = ["/usr/bin/time", "-v", sys.executable, "-c", code] if Path("/usr/bin/time").exists() else \
        [sys.executable, "-c", code]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def watch() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], _tree_rss_kib(proc.pid))
            time.sleep(0.2)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    stdout, stderr = proc.communicate()
    t.join()
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cfg} with {executor}/{workers} failed:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    largest = next((int(line.split()[-1]) for line in stderr.splitlines() if "Maximum resident set size" in line), 0)
    man = json.loads((out / doc["run_id"] / "manifest.json").read_text())
    summ = json.loads((out / "_summary" / "manifest.json").read_text())
    seconds = {s: float(man["stages"][s]["duration_s"]) for s in STAGES[:-1]}
    seconds["summary"] = float(summ["stages"]["summary"]["duration_s"])
    lines = [ln for ln in stdout.splitlines() if "files read" in ln]
    nb = (book_root / "book" / "runs" / doc["run_id"] / "integration.ipynb").read_text()
    found = re.search(r"(\d+) frames in ([0-9.]+) s", nb)
    seconds["pass"] = float(found.group(2)) if found else math.nan
    return {"seconds": seconds, "wall_s": wall, "peak_tree_rss_MB": peak[0] * 1024 / 1e6,
            "peak_largest_rss_MB": largest * 1024 / 1e6, "pass_lines": lines}


def _fit_line(x: list[float], y: list[float]) -> tuple[float, float]:
    if len(x) < 2:
        return 0.0, y[0] / x[0] if x and x[0] else 0.0
    b, a = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(a), float(b)


def extrapolate(rows: list[dict]) -> list[str]:
    """Per configuration: integration = a + b·bytes, other stages = a + c·frames, at 1e6 frames × 250 000 B."""
    out = [f"Extrapolation to {TARGET_FRAMES:,} frames of {TARGET_SAMPLES:,} int8 samples "
           f"({TARGET_FRAMES * TARGET_SAMPLES / 1e9:.0f} GB):"]
    for name in CONFIGS:
        mine = [r for r in rows if r["config"] == name]
        if not mine:
            continue
        a, b = _fit_line([r["bytes"] for r in mine], [r["seconds"]["pass"] for r in mine])
        overhead = float(np.mean([r["seconds"]["integration"] - r["seconds"]["pass"] for r in mine]))
        integ = a + b * TARGET_FRAMES * TARGET_SAMPLES + overhead
        rest = 0.0
        for s in STAGES[1:]:
            ys = [r["seconds"][s] for r in mine]
            a2, c = _fit_line([r["frames"] for r in mine], ys)
            if c <= 0:                       # no growth measured (load noise): the largest measured time
                a2, c = max(ys), 0.0
            rest += a2 + c * TARGET_FRAMES
        mbps = 1 / b / 1e6 if b > 0 else math.inf
        out.append(f"  {name:7s} integration {integ / 3600:6.2f} h (fitted {mbps:,.0f} MB/s of file data), "
                   f"other stages {rest / 60:6.1f} min, total {(integ + rest) / 3600:6.2f} h")
    out.append("  (files were read from the page cache here; from disk the integration time is at least "
               "250 GB / disk MB/s. Per byte from ~12-kB frames: per-file and per-frame overheads are counted as if "
               "they scaled with bytes, so for 250-kB frames this is an upper bound of the CPU time)")
    return out


def figure(rows: list[dict], path: Path) -> None:
    """Time per stage (and of the pass inside the integration stage) and peak tree RSS against frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = ("pass", *STAGES)
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.6 * (len(panels) + 1), 3.3))
    for name in CONFIGS:
        mine = sorted((r for r in rows if r["config"] == name), key=lambda r: r["frames"])
        if not mine:
            continue
        x = [r["frames"] for r in mine]
        for ax, s in zip(axes, panels):
            ax.plot(x, [r["seconds"][s] for r in mine], "o-", label=name)
        axes[-1].plot(x, [r["peak_tree_rss_MB"] for r in mine], "o-", label=name)
    for ax, s in zip(axes, panels):
        ax.set(title="integration pass" if s == "pass" else f"{s} stage", xlabel="frames", ylabel="time (s)")
    axes[-1].set(title="peak RSS, process tree", xlabel="frames", ylabel="MB")
    for ax in axes:
        ax.set_ylim(bottom=0)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _save(rows: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    base = {k: list(v) if isinstance(v, tuple) else v for k, v in BASE.items()}
    (out / "bench_scale.json").write_text(json.dumps({"base": base, "rows": rows}, indent=1))
    figure(rows, out / "bench_scale.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (2 000 and 8 000 frames)")
    ap.add_argument("--sizes", default=None, help="comma-separated frame counts (default 10000,50000,200000)")
    ap.add_argument("--configs", default=",".join(CONFIGS), help="subset of " + ",".join(CONFIGS))
    ap.add_argument("--out", type=Path, default=Path("bench_scale_out"), help="folder for the JSON and figure")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the simulated runs (default: deleted)")
    ap.add_argument("--from-json", type=Path, default=None, help="only redo the summary, extrapolation and figure "
                    "from a bench_scale.json written before")
    args = ap.parse_args(argv)
    if args.from_json is not None:
        rows = json.loads(args.from_json.read_text())["rows"]
        for line in extrapolate(rows):
            print(line)
        _save(rows, args.out)
        return 0
    sizes = [int(s) for s in (args.sizes or ("2000,8000" if args.quick else "10000,50000,200000")).split(",")]
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    tmp = Path(tempfile.mkdtemp(prefix="s2scale_"))
    rows: list[dict] = []
    try:
        base = simulate_base(tmp, args.seed)
        book_root = tmp / "book_root"
        book_root.mkdir()
        print(f"{'frames':>8} {'config':7} " + " ".join(f"{s:>12}" for s in (*STAGES, "(pass)"))
              + f" {'total s':>8} {'frames/s':>9} {'tree RSS MB':>11} {'max RSS MB':>10}", flush=True)
        for n in sizes:
            cfg, frames, nbytes = build_size(base, tmp, n)
            for name in configs:
                try:
                    r = run_config(cfg, *CONFIGS[name], book_root)
                except RuntimeError as err:          # reported, the other configurations go on
                    print(f"{frames:>8} {name:7} FAILED: {err}", flush=True)
                    continue
                total = sum(r["seconds"][s] for s in STAGES)
                rows.append({"frames": frames, "bytes": nbytes, "config": name, **r, "total_s": total,
                             "frames_per_s": frames / r["seconds"]["pass"]})
                print(f"{frames:>8} {name:7} " + " ".join(f"{r['seconds'][s]:>12.1f}" for s in (*STAGES, "pass"))
                      + f" {total:>8.1f} {frames / r['seconds']['pass']:>9.0f} "
                      f"{r['peak_tree_rss_MB']:>11.0f} {r['peak_largest_rss_MB']:>10.0f}", flush=True)
                _save(rows, args.out)                   # after every row: a long run cut short keeps its table
            if not args.keep:
                shutil.rmtree(cfg.parent, ignore_errors=True)
        print("stage times: notebook execution incl. kernel start (manifest duration_s); (pass): the integration "
              "pass inside the integration stage (timing, per-file pass, artifacts); frames/s = frames / pass")
        for name, (_, w) in CONFIGS.items():
            for n in sorted({r["frames"] for r in rows}):
                one = [r for r in rows if r["frames"] == n and r["config"] == name.replace(str(w), "1")]
                two = [r for r in rows if r["frames"] == n and r["config"] == name]
                if w == 2 and one and two:
                    print(f"speed-up 1 -> 2 workers, {name[:-1]:5s} {n:>7} frames: pass "
                          f"{one[0]['seconds']['pass'] / two[0]['seconds']['pass']:.2f}x, integration stage "
                          f"{one[0]['seconds']['integration'] / two[0]['seconds']['integration']:.2f}x")
        for line in extrapolate(rows):
            print(line)
        _save(rows, args.out)
        print(f"written: {args.out / 'bench_scale.json'}, {args.out / 'bench_scale.png'}")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
