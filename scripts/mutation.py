"""Mutation testing of the analysis core with mutmut 3 (``make mutation``), and its per-module score table.

mutmut (configured in ``pyproject.toml`` [tool.mutmut]) copies the tree into ``mutants/``, records which tests
reach which function (its stats phase) and runs, for each mutant, only the tests that reach the mutated function.
A mutant is *reached* when at least one of the configured test files calls its function. Running all ~7 600
mutants takes hours on two shared cores, so by default this script draws a fixed-seed random sample of reached
mutants per module and runs only those; ``--sample 0`` runs every reached mutant.

Scores written to ``mutation-scores.md`` per module:
- killed / reached: among the tested mutants (the sample, or all), the fraction the tests kill; mutants listed in
  ``tests/equivalent_mutants.md`` (each with its reason) are taken out of the denominator and counted apart;
- killed / all: that fraction times reached / all (an estimate when sampled); unreached mutants count as survived.
With a sample, the 95 % interval of killed / reached is the Wilson score interval of the binomial count.

``--resume`` skips the sampled mutants that an earlier run already killed (valid while tests were only added or
tightened since; mutmut itself resets the results of functions whose code changed, and those are rerun).

Usage: ``python scripts/mutation.py [--sample N] [--seed S] [--resume] [--modules M ...] [--report-only]
[--out FILE]``.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
EQUIVALENT_FILE = ROOT / "tests" / "equivalent_mutants.md"
#: module short name -> its path below s2lib/ (the layered package, ARCHITECTURE.md)
MODULE_PATHS = {"waveform": "signal/waveform", "frames": "signal/frames", "xray": "signal/xray",
                "integration": "signal/integration", "file_pass": "signal/file_pass", "xray_pass": "signal/xray_pass", "fitting": "stats/fitting", "fit_result": "stats/fit_result",
                "_fit_models": "stats/_fit_models", "_fit_minuit": "stats/_fit_minuit", "calibration": "calib/calibration",
                "calibrate_stage": "analysis/calibrate_stage", "recombination": "calib/recombination", "recomb_table": "calib/recomb_table",
                "physics": "physics/physics", "store": "io/store", "atomic": "io/atomic",
                "estimators": "stats/estimators", "_fit_judge": "stats/_fit_judge", "_mixture": "stats/_mixture",
                "_fit_config": "stats/_fit_config"}
MODULES = list(MODULE_PATHS)
# integration.py: only the pure per-file kernels are scored; these functions are I/O, the process pool and
# environment handling, tested by the pipeline tests (too slow to run per mutant).
NOT_SCORED = {
    "integration": ["_process_chunk", "_single_thread_env", "_worker_init", "_start_method",
                    "worker_pool", "shutdown_pools", "run_sets"],
    "file_pass": ["process_file", "_read_file"],
}
BOOTSTRAP_MUTANT = "s2lib.physics.physics.x_drift_time_us__mutmut_1"  # one cheap mutant: makes mutmut generate + stats
KILLED = {1, 3}
SURVIVED = {0}
TIMEOUT = {24, -24, 36, 152, 255}


def _function_of(name: str) -> str:
    """Original function name of a mutant key (``s2lib.mod.x_func__mutmut_3``, ``s2lib.mod.xǁClassǁmeth__mutmut_1``)."""
    mangled = name.partition("__mutmut_")[0].rpartition(".")[2]
    if mangled.startswith("xǁ"):
        return mangled.split("ǁ")[-1]
    return mangled[2:] if mangled.startswith("x_") else mangled


def _mutmut(*args: str) -> int:
    cmd = [str(Path(sys.executable).parent / "mutmut"), "run", "--max-children", "1", *args]
    print("+", " ".join(cmd[:6]), f"... ({len(args)} mutants)" if len(args) > 3 else "", flush=True)
    MUTANTS.mkdir(exist_ok=True)
    with open(MUTANTS / "mutmut-run.log", "ab") as log:  # mutmut's progress and errors, not the terminal's
        rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        print(f"mutmut exited with {rc}: see {MUTANTS / 'mutmut-run.log'}", file=sys.stderr, flush=True)
    return rc


def load_meta() -> dict[str, dict[str, int | None]]:
    out = {}
    for mod in MODULES:
        meta = MUTANTS / "s2lib" / f"{MODULE_PATHS[mod]}.py.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        skip = set(NOT_SCORED.get(mod, []))
        out[mod] = {k: v for k, v in codes.items() if _function_of(k) not in skip}
    return out


def reached_names(meta: dict[str, dict[str, int | None]]) -> dict[str, list[str]]:
    stats = json.loads((MUTANTS / "mutmut-stats.json").read_text())["tests_by_mangled_function_name"]
    return {mod: sorted(k for k in keys if stats.get(k.partition("__mutmut_")[0])) for mod, keys in meta.items()}


def load_equivalent() -> dict[str, str]:
    """Mutant name -> reason, from the table rows ``| s2lib.x.y__mutmut_n | reason |`` of equivalent_mutants.md."""
    eq = {}
    if EQUIVALENT_FILE.exists():
        for line in EQUIVALENT_FILE.read_text().splitlines():
            m = re.match(r"\|\s*`?(s2lib\.[^|`]+__mutmut_\d+)`?\s*\|\s*(.+?)\s*\|\s*$", line)
            if m:
                eq[m.group(1)] = m.group(2)
    return eq


def choose(reached: dict[str, list[str]], n: int, seed: int) -> dict[str, list[str]]:
    if n <= 0:
        return reached
    rng = random.Random(seed)
    return {mod: sorted(rng.sample(names, min(n, len(names)))) for mod, names in reached.items()}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def report(sample: dict[str, list[str]], n: int, seed: int, out: Path, modules: list[str] = MODULES) -> str:
    meta = load_meta()
    reached = reached_names(meta)
    eq = load_equivalent()
    mode = f"random sample of {n} reached mutants per module (seed {seed})" if n > 0 else "every reached mutant"
    lines = [
        "# Mutation scores (mutmut 3.8.1)", "",
        f"Command: `make mutation MUTATION_SAMPLE={n}` (= `nice -n 10 python scripts/mutation.py --sample {n} "
        f"--seed {seed}`); tested: {mode}"
        + ("." if list(modules) == MODULES else f"; modules: {' '.join(modules)} (`--modules`)."),
        "killed/reached: fraction of the tested reached mutants that the tests kill, equivalent mutants "
        "(tests/equivalent_mutants.md) taken out; 95 % Wilson interval when sampled. killed/all: "
        "killed/reached × reached/all (unreached mutants count as survivors).", "",
        "| module | mutants | reached | tested | killed | survived | timeout | equivalent | killed/reached "
        "| 95 % interval | killed/all |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    survivors = []
    for mod in modules:
        codes = meta[mod]
        tested = [k for k in sample[mod] if codes.get(k) is not None]
        equiv = [k for k in tested if k in eq]
        scored = [k for k in tested if k not in eq]
        killed = sum(codes[k] in KILLED or codes[k] in TIMEOUT for k in scored)
        timeout = sum(codes[k] in TIMEOUT for k in scored)
        surv = [k for k in scored if codes[k] in SURVIVED]
        survivors += surv
        frac = killed / len(scored) if scored else math.nan
        lo, hi = wilson(killed, len(scored))
        n_all, n_reached = len(codes), len(reached[mod])
        ka = frac * n_reached / n_all if n_all else math.nan
        lines.append(f"| {MODULE_PATHS[mod]}.py | {n_all} | {n_reached} | {len(tested)} | {killed} | {len(surv)} | {timeout} | "
                     f"{len(equiv)} | {100 * frac:.0f} % | {100 * lo:.0f}–{100 * hi:.0f} % | {100 * ka:.0f} % |")
    lines += ["", "Timeouts count as killed (the mutant made the tests hang). Integration: only the pure per-file "
              "functions are scored (not " + ", ".join(NOT_SCORED["integration"]) + ").", "",
              "## Surviving tested mutants", "", "Inspect one with `.venv/bin/mutmut show NAME`.", ""]
    lines += [f"- `{k}`" for k in survivors] or ["none"]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sample", type=int, default=40, help="reached mutants per module (0: all)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--report-only", action="store_true", help="only rewrite the table from mutants/")
    ap.add_argument("--resume", action="store_true", help="skip sampled mutants already killed")
    ap.add_argument("--modules", nargs="+", choices=MODULES, default=MODULES, help="run only these modules")
    ap.add_argument("--out", type=Path, default=ROOT / "mutation-scores.md")
    a = ap.parse_args(argv)
    if not a.report_only:
        _mutmut(BOOTSTRAP_MUTANT)  # generate mutants, collect or update the test-reach stats
    sample = choose(reached_names(load_meta()), a.sample, a.seed)
    if not a.report_only:
        names = [k for mod in a.modules for k in sample[mod]]
        if a.resume:
            meta = load_meta()
            done = KILLED | TIMEOUT
            names = [k for mod in a.modules for k in sample[mod] if meta[mod].get(k) not in done]
        if names:
            _mutmut(*names)
    print(report(sample, a.sample, a.seed, a.out, a.modules))
    return 0


if __name__ == "__main__":
    sys.exit(main())
