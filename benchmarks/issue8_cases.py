"""Issue 8's five cases re-created with s2lib.sim.simulate, analysed with the default configuration.

    python benchmarks/issue8_cases.py OUT simulate          # write the two runs (Th-228 4 sets, Ra-224 6 sets)
    OUTB=DIR python benchmarks/issue8_cases.py OUT after    # analyse with this checkout, outputs under DIR

"Before": the second command with PYTHONPATH pointing to an export of an older s2lib
(git archive 01b2cf8 s2lib | tar -x -C /tmp/old; PYTHONPATH=/tmp/old ...).
"""
import sys, json, os, numpy as np
from pathlib import Path
import s2lib
print("s2lib from", s2lib.__file__)
from s2lib.config import config, runs
from s2lib.analysis import pipeline
from s2lib.analysis.fit_stage import fit_run_s2
from s2lib.stats.fitting import FitConfig
from s2lib.stats.fit_store import load_s2area
out = Path(sys.argv[1])
if len(sys.argv) > 2 and sys.argv[2] == "simulate":
    from s2lib.sim.simulate import simulate_run
    simulate_run(out / "th228", profile="demo", seed=8, progress=False, overwrite=True, set_gates_V=(200, 400, 800, 1200),
                 n_files=3, frames_per_file=48, background_fraction=0.05, target_isotope="Th228", el_voltage_V=1900)
    simulate_run(out / "ra224", profile="demo", seed=8, progress=False, overwrite=True,
                 set_gates_V=(50, 100, 200, 400, 800, 1500), n_files=10, frames_per_file=49, xray_fraction=0.08,
                 recoil_electron_cv=0.25, target_isotope="Ra224", el_voltage_V=2700)
    sys.exit()
tag = sys.argv[2] if len(sys.argv) > 2 else "x"
for name in ("th228", "ra224"):
    d = out / name
    cfg = config.load_config(d / "run.yaml")
    import dataclasses
    cfg = dataclasses.replace(cfg, output_base=Path(os.environ["OUTB"]) / name)
    run = runs.build_run(cfg)
    pipeline.run_integration_pass(run, jobs=2, verbose=False)
    truth = json.load(open(d / "truth.json"))
    for s, ts in zip(run.sets, truth["sets"]):
        fr = load_s2area(run.set_output_dir(s.name)).fit_result
        tm, te = ts["recoil_sample_mean_area_mV_us"], ts["recoil_sample_mean_err_mV_us"]
        print(f"{name} {s.drift_field_V_cm:7.0f} V/cm: {fr.mean:.3f} ± {fr.mean_err:.3g}  truth {tm:.3f} ± {te:.3f}  "
              f"off {100*(fr.mean-tm)/tm:+.1f} %  pull {(fr.mean-tm)/fr.mean_err if fr.mean_err==fr.mean_err else float('nan'):+.2f}  "
              f"p = {fr.p_value:.2g}  fit_success {fr.fit_success}  model {fr.model}  {fr.reason[:90]}", flush=True)
