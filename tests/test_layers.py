"""The package's import graph: no import cycles and no module importing from a layer above its own
(scripts/layers.py declares the layers), and no reference left to the flat layout (scripts/rewrite_imports.py)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_no_import_cycles_and_no_upward_imports():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "layers.py"), str(ROOT / "s2lib")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith(f"of {ROOT / 's2lib'}") and proc.stdout.startswith("0 problems")


def test_layer_check_catches_an_upward_import_and_a_cycle(tmp_path):
    """The checker must fail on a planted violation (a kernel importing plotting, two modules importing each other)."""
    pkg = tmp_path / "s2lib"
    for sub in ("signal", "analysis", "stats"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "analysis" / "plotting.py").write_text("import numpy\n")
    (pkg / "signal" / "waveform.py").write_text("from s2lib.analysis import plotting\n")
    (pkg / "stats" / "a.py").write_text("from . import b\n")
    (pkg / "stats" / "b.py").write_text("def f():\n    from .a import g\n")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "layers.py"), str(pkg)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "s2lib.signal.waveform (layer 4: s2lib.signal) imports s2lib.analysis.plotting" in proc.stdout
    assert "import cycle: s2lib.stats.a, s2lib.stats.b" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("2 problems")


def test_every_module_is_in_a_layer():
    layers = _load("layers")
    mods = layers.modules(ROOT / "s2lib")
    assert [m for m in mods if m != "s2lib" and layers.layer_of(m) is None] == []


def test_repository_has_no_reference_to_the_flat_layout():
    """Running the import rewrite over the repository changes nothing (it is idempotent and already applied)."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "rewrite_imports.py"), "--check"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout


def test_rewrite_maps_old_imports_to_the_new_layout(tmp_path):
    """Old-layout code (as on a branch that has not merged the restructure) is rewritten, split modules per name."""
    rw = _load("rewrite_imports")
    rw.MODULES.update(rw._existing_modules(ROOT))
    src = ("from s2lib.fitting import FitConfig, fit_run_s2\n"
           "from s2lib import physics, pipeline\n"
           "from s2lib.waveform import detect_s2, pedestal_mV, classify_xrays\n"
           "import s2lib.store as st\n"
           "p = mock.patch('s2lib.calibration.calibrate_and_analyze')\n")
    out = rw.rewrite_text(src, tmp_path / "t.py")
    assert out == ("from s2lib.stats.fitting import FitConfig\n"
                   "from s2lib.analysis.fit_stage import fit_run_s2\n"
                   "from s2lib.physics import physics\nfrom s2lib.analysis import pipeline\n"
                   "from s2lib.signal.waveform import detect_s2\n"
                   "from s2lib.signal.frames import pedestal_mV\n"
                   "from s2lib.signal.xray import classify_xrays\n"
                   "import s2lib.io.store as st\n"
                   "p = mock.patch('s2lib.analysis.calibrate_stage.calibrate_and_analyze')\n")
    assert rw.rewrite_text(out, tmp_path / "t.py") == out
    # a module written for the flat layout inside s2lib (a branch's new module): relative imports resolved
    flat = ROOT / "s2lib" / "newmod.py"
    rel = ("from .fitting import fit_histogram\nfrom . import plotting\nfrom .errors import DataError\n"
           "from .report import run_reports\n")
    assert rw.rewrite_text(rel, flat) == ("from s2lib.stats.fitting import fit_histogram\n"
                                          "from s2lib.analysis import plotting\nfrom .errors import DataError\n"
                                          "from s2lib.report.report import run_reports\n")
