#!/usr/bin/env python
"""Fault-injection run: many faults on copies of a simulated run, each checked against the undisturbed run.

    python benchmarks/faults.py [--file-faults N] [--kills K] [--disk D] [--concurrent C] [--seed S] [--json]

On a freshly simulated ``tiny`` run (in a temporary folder, removed afterwards; s2lib.report.faultinject says what
each fault is and what is expected):

- ``--file-faults N`` copies, each with 1-3 file faults (truncation at a random offset, a zero-filled block,
  random bytes, an empty file, a foreign file with a ``.wfm`` name, a mode-000 file read without root's DAC
  capabilities, a file removed after discovery) in random sets; the one-pass engine runs on the copy with the
  clean run's timing windows (in a subprocess when a file is unreadable) and every set is checked: untouched
  files' areas bit-identical, bad files reported with the expected field or salvaged with exactly their complete
  frames, nothing half-written that loads;
- ``--kills K``: ``s2book run`` (integration stage, the real notebook) SIGKILLed at a random moment in
  [0.5 s, the clean run's duration], the killed runner's kernel awaited, then a re-run compared with the clean run;
- ``--disk D``: runs under RLIMIT_FSIZE at a random limit in [16 KiB, 4 MiB] (a full disk), then a re-run;
- ``--concurrent C``: C rounds of two concurrent ``s2book run --force`` of the same run; afterwards every stage
  must be up to date.

Printed: faults injected by kind, runs completed, runs with results identical to the clean run, tracebacks seen
(goal: none), and per runner fault the exit statuses. Exit status 1 when any check failed.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from s2lib.analysis import pipeline  # noqa: E402
from s2lib.report.project import packaged_templates  # noqa: E402
from s2lib.config.config import load_config  # noqa: E402
from s2lib.report.faultinject import (
    FILE_FAULTS, check_loadable, copy_run, drop_dac_caps_cmd, descendants, frame_areas, inject, run_problems,
    runner_cmd, vanish, wait_processes_gone
)
from s2lib.config.runs import build_run  # noqa: E402
from s2lib.sim.simulate import simulate_run  # noqa: E402

_ENGINE = ("import os, sys; from s2lib.analysis import pipeline; from s2lib.config.config import load_config; "
           "from s2lib.config.runs import build_run; run = build_run(load_config(sys.argv[1])); "
           "[os.unlink(p) for p in sys.argv[2:]]; "       # files that vanish after discovery
           "pipeline.run_integration_pass(run, fit=False, verbose=False)")


class Bench:
    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.rng = np.random.default_rng(seed)
        self.src = simulate_run(work / "sim", profile="tiny", seed=seed, progress=False)
        self.clean_config = copy_run(self.src, work / "clean")
        self.clean_run = build_run(load_config(self.clean_config))
        pipeline.run_integration_pass(self.clean_run, fit=False, verbose=False)
        self.names = {s.name: [Path(f).name for f in s.files] for s in self.clean_run.sets}
        self.areas = {s.name: frame_areas(self.clean_run.set_output_dir(s.name), self.names[s.name])
                      for s in self.clean_run.sets}
        self.injected: collections.Counter[str] = collections.Counter()
        self.rows: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.findings: list[str] = []
        self.n = 0

    def copy(self) -> tuple[Path, Path]:
        self.n += 1
        root = self.work / f"copy{self.n}"
        return root, copy_run(self.src, root)

    def problems(self, run, faults: dict[str, list[dict]]) -> list[str]:
        return run_problems(run, self.areas, self.names, faults)

    # ------------------------------------------------------------------------------------------ file faults
    def file_faults(self, n: int) -> None:
        kinds = [*FILE_FAULTS, "vanish"]
        for _ in range(n):
            root, config = self.copy()
            sets = sorted(self.names)
            chosen: dict[str, list[dict]] = collections.defaultdict(list)
            picks = {(sets[int(self.rng.integers(len(sets)))], int(self.rng.integers(4)))
                     for _ in range(int(self.rng.integers(1, 4)))}
            later = []
            for set_name, fi in sorted(picks):
                path = root / "raw" / set_name / self.names[set_name][fi]
                kind = kinds[int(self.rng.integers(len(kinds)))]
                self.injected[kind] += 1
                if kind == "vanish":
                    later.append((set_name, path))
                else:
                    chosen[set_name].append(inject(path, kind, self.rng))
            run = build_run(load_config(config))
            unreadable = any(f["kind"] == "unreadable" for fs in chosen.values() for f in fs)
            for set_name, path in later:
                chosen[set_name].append(vanish(path) if not unreadable else
                                        {"kind": "vanish", "file": path.name, "offset": None, "original": b""})
            for s in run.sets:
                run.set_output_dir(s.name).mkdir(parents=True, exist_ok=True)
                shutil.copy2(self.clean_run.set_output_dir(s.name) / "timing.json", run.set_output_dir(s.name))
            row = self.rows["file faults (engine)"]
            row["runs"] += 1
            try:
                if unreadable:               # the subprocess removes the vanishing files after its discovery
                    proc = subprocess.run([*drop_dac_caps_cmd(), sys.executable, "-c", _ENGINE, str(config),
                                           *[str(p) for _, p in later]],
                                          capture_output=True, text=True, timeout=600)
                    row["tracebacks"] += proc.stderr.count("Traceback")
                    if proc.returncode != 0:
                        raise RuntimeError(proc.stderr.strip().splitlines()[-1])
                else:
                    pipeline.run_integration_pass(run, fit=False, verbose=False)
            except Exception as err:  # noqa: BLE001 - an escaped exception is the finding counted here
                row["tracebacks"] += 0 if unreadable else 1
                self.findings.append(f"copy{self.n}: {type(err).__name__}: {err}")
                continue
            row["completed"] += 1
            problems = self.problems(run, chosen)
            row["identical"] += not problems
            if problems:
                what = "; ".join(f"{k}: {f['kind']} {f['file']} at {f['offset']}" for k, fs in chosen.items() for f in fs)
                self.findings.append(f"copy{self.n} ({what}): {len(problems)} problem(s), first: {problems[0]}")
            shutil.rmtree(root, ignore_errors=True)

    # ------------------------------------------------------------------------------------------ runner faults
    def _start(self, config: Path, root: Path, **kw) -> subprocess.Popen:
        return subprocess.Popen(runner_cmd(config, root, force=kw.pop("force", False)), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)

    def _rerun_and_check(self, label: str, config: Path, root: Path) -> None:
        row = self.rows[label]
        proc = self._start(config, root)
        out, err = proc.communicate()
        row["tracebacks"] += (out + err).count("Traceback")
        row["completed"] += proc.returncode == 0
        problems = self.problems(build_run(load_config(config)), {})
        problems += [f"leftover {p}" for p in root.rglob(".*.running.ipynb")]
        row["identical"] += proc.returncode == 0 and not problems
        self.findings += [f"{label}: {p}" for p in problems]

    def clean_duration(self) -> float:
        root, config = self.copy()
        t0 = time.monotonic()
        proc = self._start(config, root / "book")
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"the clean notebook run failed: {err[-2000:]}")
        return time.monotonic() - t0

    def kills(self, k: int, duration: float) -> None:
        label = "SIGKILL + re-run"
        for _ in range(k):
            root, config = self.copy()
            when = float(self.rng.uniform(0.5, duration))
            proc = self._start(config, root / "book")
            time.sleep(when)
            tree = descendants(proc.pid)          # its kernel (own session) and the kernel's workers
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                self.injected["sigkill"] += 1
            proc.wait()
            gone = wait_processes_gone(tree, 60)
            proc.communicate()
            self.rows[label]["runs"] += 1
            self.rows[label]["kernel outlived runner"] += gone is None
            self.rows[label]["processes left by the runner"] += len(tree)
            self.rows[label]["they were gone after (s, max)"] = max(self.rows[label]["they were gone after (s, max)"],
                                                                    round(gone if gone is not None else 60.0, 1))
            self._rerun_and_check(label, config, root / "book")
            shutil.rmtree(root, ignore_errors=True)

    def full_disk(self, d: int) -> None:
        label = "full disk + re-run"
        for _ in range(d):
            root, config = self.copy()
            limit = int(np.exp(self.rng.uniform(np.log(16 * 1024), np.log(4 * 1024 * 1024))))

            def cap(limit: int = limit) -> None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            proc = self._start(config, root / "book", preexec_fn=cap)
            out, err = proc.communicate()
            self.injected["full_disk"] += 1
            row = self.rows[label]
            row["runs"] += 1
            row[f"exit {proc.returncode} under the limit"] += 1
            row["tracebacks"] += (out + err).count("Traceback")
            problems = check_loadable(build_run(load_config(config)).output_dir)
            row["half-written that loads"] += len(problems)
            self.findings += [f"{label} ({limit} B): {p}" for p in problems]
            self._rerun_and_check(label, config, root / "book")
            shutil.rmtree(root, ignore_errors=True)

    def concurrent(self, c: int) -> None:
        label = "two concurrent runs --force"
        root, config = self.copy()
        for _ in range(c):
            a = self._start(config, root / "book", force=True)
            time.sleep(float(self.rng.uniform(0.2, 2.0)))
            b = self._start(config, root / "book", force=True)
            outs = [p.communicate() for p in (a, b)]
            self.injected["concurrent_runner"] += 1
            row = self.rows[label]
            row["runs"] += 2
            row["completed"] += a.returncode == 0
            row["second exited 75"] += b.returncode == 75
            row["second ran (after the first)"] += b.returncode == 0
            row["tracebacks"] += sum((o + e).count("Traceback") for o, e in outs)
        status = subprocess.run([sys.executable, "-c", "import sys; from s2lib.report.report import report_status; "
                                 "sys.exit(report_status([sys.argv[1]], root=sys.argv[2], template_dir=sys.argv[3]))",
                                 str(config), str(root / "book"), str(packaged_templates())],
                                capture_output=True, text=True)
        integration = [ln for ln in status.stdout.splitlines() if "integration:" in ln]
        self.rows[label]["status up to date"] = int(integration == ["  integration: up to date"])
        problems = self.problems(build_run(load_config(config)), {})
        self.rows[label]["identical"] = int(not problems)
        self.findings += [f"{label}: {p}" for p in problems]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file-faults", type=int, default=60)
    ap.add_argument("--kills", type=int, default=6)
    ap.add_argument("--disk", type=int, default=4)
    ap.add_argument("--concurrent", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="s2faults-"))
    t0 = time.monotonic()
    try:
        bench = Bench(work, args.seed)
        bench.file_faults(args.file_faults)
        if args.kills or args.disk:
            duration = bench.clean_duration()
            bench.rows["clean notebook run"]["seconds"] = round(duration, 1)
            bench.kills(args.kills, duration)
            bench.full_disk(args.disk)
        if args.concurrent:
            bench.concurrent(args.concurrent)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result = {"faults_injected": dict(sorted(bench.injected.items())),
              "scenarios": {k: dict(v) for k, v in bench.rows.items()}, "findings": bench.findings,
              "seconds": round(time.monotonic() - t0, 1)}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print("faults injected by kind: " + ", ".join(f"{k} {v}" for k, v in result["faults_injected"].items()))
        for name, row in result["scenarios"].items():
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in row.items()))
        print(f"findings: {len(bench.findings)}" + "".join(f"\n  {f}" for f in bench.findings[:30]))
        print(f"({result['seconds']} s)")
    tracebacks = sum(row.get("tracebacks", 0) for row in bench.rows.values())
    return 1 if bench.findings or tracebacks else 0


if __name__ == "__main__":
    sys.exit(main())
