"""Fault injection (bounded subset; benchmarks/faults.py runs the long version and prints the counts).

Every fault is applied to a COPY of the session's tiny simulated run and checked against an undisturbed run
(:mod:`s2lib.report.faultinject`): no exception escapes, every untouched file's areas are bit-identical to the clean run,
the bad file is reported with the expected field (or salvaged with exactly its complete frames), and nothing
half-written loads. File faults are checked on the one-pass engine with the clean run's timing windows (a bad
file in the timing subsample legitimately moves its set's window; that case is tested separately: the other sets
stay identical). Runner faults (SIGKILL, full disk, two runners) execute the real integration notebook.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2lib.analysis import pipeline
from s2lib.analysis.badfiles import skipped_file_rows
from s2lib.config.config import load_config
from s2lib.errors import WfmError
from s2lib.report.faultinject import (
    check_loadable, copy_run, drop_dac_caps_cmd, frame_areas, inject, descendants, run_problems, runner_cmd, vanish,
    wait_processes_gone
)
from s2lib.report.runlock import EXIT_BUSY, lock_holder
from s2lib.config.runs import build_run



class Clean:
    """The undisturbed run: its copy, per set the file names, the frame areas and the timing.json path."""

    def __init__(self, src: Path, dst: Path) -> None:
        self.src = src
        self.config = copy_run(src, dst)
        self.run = build_run(load_config(self.config))
        pipeline.run_integration_pass(self.run, fit=False, verbose=False)
        self.names = {s.name: [Path(f).name for f in s.files] for s in self.run.sets}
        self.areas = {s.name: frame_areas(self.run.set_output_dir(s.name), self.names[s.name]) for s in self.run.sets}

    def faulty_copy(self, dst: Path) -> Path:
        return copy_run(self.src, dst)

    def with_clean_timing(self, run) -> None:
        for s in run.sets:
            run.set_output_dir(s.name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(self.run.set_output_dir(s.name) / "timing.json", run.set_output_dir(s.name) / "timing.json")

    def problems(self, run, faults: dict[str, list[dict]]) -> list[str]:
        return run_problems(run, self.areas, self.names, faults)


@pytest.fixture(scope="module")
def clean(tiny_run, tmp_path_factory) -> Clean:
    return Clean(tiny_run[0], tmp_path_factory.mktemp("clean"))


def _target(clean: Clean, root: Path, set_pos: int, file_pos: int) -> tuple[str, Path]:
    name = sorted(clean.names)[set_pos % len(clean.names)]
    files = clean.names[name]
    return name, root / "raw" / name / files[file_pos % len(files)]


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(kind=st.sampled_from(["truncate", "zero_block", "random_bytes", "empty", "not_wfm"]),
       set_pos=st.integers(0, 2), file_pos=st.integers(0, 3), seed=st.integers(0, 2**32 - 1))
def test_a_bad_file_costs_only_itself(clean, tmp_path_factory, kind, set_pos, file_pos, seed):
    root = tmp_path_factory.mktemp("fault")
    config = clean.faulty_copy(root)
    set_name, path = _target(clean, root, set_pos, file_pos)
    info = inject(path, kind, np.random.default_rng(seed))
    run = build_run(load_config(config))
    clean.with_clean_timing(run)
    pipeline.run_integration_pass(run, fit=False, verbose=False)
    assert clean.problems(run, {set_name: [info]}) == []
    shutil.rmtree(root)


def test_two_bad_files_and_a_vanished_one_in_one_set(clean, tmp_path):
    """A truncated file (salvaged), a foreign file with a .wfm name, and a file removed after discovery."""
    config = clean.faulty_copy(tmp_path)
    set_name, first = _target(clean, tmp_path, 1, 0)
    files = sorted(first.parent.glob("*.wfm"))
    original = files[0].read_bytes()
    cut = len(original) - len(original) // 3                 # several complete frames left, the rest missing
    os.truncate(files[0], cut)
    faults = [{"kind": "truncate", "file": files[0].name, "offset": cut, "original": original},
              inject(files[1], "not_wfm", np.random.default_rng(3))]
    run = build_run(load_config(config))
    faults.append(vanish(files[2]))                          # gone between discovery and reading
    clean.with_clean_timing(run)
    pipeline.run_integration_pass(run, fit=False, verbose=False)
    assert clean.problems(run, {set_name: faults}) == []
    rows = {r["file"]: r for r in skipped_file_rows(run)}
    assert rows[files[0].name]["outcome"] == "partial" and rows[files[1].name]["field"] == "byte-order mark"
    assert rows[files[2].name]["field"] == "file" and "cannot be opened" in rows[files[2].name]["detail"]
    v = pipeline.validation_frames(run, set_name, n=3, seed=1)
    assert len(v["traces_mV"]) == 3 and files[1].name in v["skipped"]


def test_fresh_timing_with_a_bad_file_leaves_the_other_sets_identical(clean, tmp_path):
    config = clean.faulty_copy(tmp_path)
    set_name, path = _target(clean, tmp_path, 0, 2)
    info = inject(path, "not_wfm", np.random.default_rng(0))
    run = build_run(load_config(config))
    pipeline.run_integration_pass(run, fit=False, verbose=False)     # timing estimated again, without the file
    for s in run.sets:
        got = frame_areas(run.set_output_dir(s.name), clean.names[s.name])
        if s.name != set_name:
            assert got == clean.areas[s.name]
        else:
            assert {k for k in got} == {k for k in clean.areas[s.name] if k[0] != info["file"]}
    timing = json.loads((run.set_output_dir(set_name) / "timing.json").read_text())
    assert timing["status"] == "ok" and [f["file"] for f in timing["files_failed"]] == [info["file"]]


def test_unreadable_file_is_skipped_with_a_real_permission_error(clean, tmp_path):
    """Mode 000; as root the reader runs without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (setpriv), so the
    kernel really refuses the open (root would otherwise read any file)."""
    config = clean.faulty_copy(tmp_path)
    set_name, path = _target(clean, tmp_path, 2, 1)
    info = inject(path, "unreadable", np.random.default_rng(0))
    run = build_run(load_config(config))
    clean.with_clean_timing(run)
    script = ("import sys; from s2lib.analysis import pipeline; from s2lib.config.config import load_config; "
              "from s2lib.config.runs import build_run; "
              "pipeline.run_integration_pass(build_run(load_config(sys.argv[1])), fit=False, verbose=False)")
    proc = subprocess.run([*drop_dac_caps_cmd(), sys.executable, "-c", script, str(config)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert clean.problems(run, {set_name: [info]}) == []
    failed = json.loads((run.set_output_dir(set_name) / "s2_results.json").read_text())["files_failed"]
    assert failed[0]["file"] == path.name and "Permission denied" in failed[0]["reason"]


def test_strict_fails_fast_on_a_truncated_file(clean, tmp_path):
    """Non-default option ``strict``: the first bad file raises WfmError naming it and the field."""
    config = clean.faulty_copy(tmp_path)
    _, path = _target(clean, tmp_path, 0, 0)
    os.truncate(path, path.stat().st_size - 100)
    run = build_run(load_config(config))
    clean.with_clean_timing(run)
    with pytest.raises(WfmError) as info:
        pipeline.run_integration_pass(run, fit=False, verbose=False, strict=True)
    assert info.value.path == path and info.value.field == "curve buffer"


# ------------------------------------------------------------------ runner faults (real integration notebook)
def _runner(config: Path, root: Path, *, force: bool = False, wait: bool = False, **kw) -> subprocess.Popen:
    return subprocess.Popen(runner_cmd(config, root, force=force, wait=wait), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **kw)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


@pytest.mark.slow
def test_runner_faults_busy_sigkill_full_disk_then_clean_rerun(clean, tmp_path):
    """One sequence on one copy (three executions of the integration notebook, to keep the suite short):

    1. runner A starts; a second runner exits 75 at once naming the run and A;
    2. A is SIGKILLed while the pass writes its artifacts; its kernel must not outlive it by a minute;
    3. runner C under RLIMIT_FSIZE (writes beyond 48 KiB fail with EFBIG, a full disk) takes over A's stale lock
       with a note, removes A's leftovers, fails with exit 1 and a one-line error, no traceback, and nothing
       half-written loads;
    4. runner D without limit: exit 0, every set's areas bit-identical to the clean run, no leftovers.
    """
    config = clean.faulty_copy(tmp_path)
    run = build_run(load_config(config))
    root = tmp_path / "root"
    first = _runner(config, root, force=True)
    deadline = time.monotonic() + 120
    while not lock_holder(run.output_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    holder = lock_holder(run.output_dir)
    assert holder and holder["pid"] == first.pid
    code, text = _finish(_runner(config, root, force=True), timeout=120)
    assert code == EXIT_BUSY and f"run {run.run_id} is busy: pid {first.pid} on host" in text, text
    while not list(run.output_dir.glob("*/s2_results.json")) and time.monotonic() < deadline:
        time.sleep(0.05)                                  # kill while the pass writes its artifacts
    tree = descendants(first.pid)
    assert tree, "the runner started no kernel"
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    assert wait_processes_gone(tree) is not None, "the killed runner's kernel outlived it by a minute"

    def full_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (48 * 1024, 48 * 1024))
    code, text = _finish(_runner(config, root, preexec_fn=full_disk))
    assert code == 1 and "s2book: error:" in text and "Traceback" not in text, text[-3000:]
    assert f"took over the lock of pid {first.pid}" in text, text[-3000:]
    assert check_loadable(run.output_dir) == []
    code, text = _finish(_runner(config, root))
    assert code == 0 and "Traceback" not in text, text[-3000:]
    assert clean.problems(run, {}) == []
    assert not list(root.rglob(".*.running.ipynb")) and lock_holder(run.output_dir) is None


# ------------------------------------------------------------------ command-line messages and exit statuses
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "s2lib.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_documents_exit_statuses_and_prints_one_line_messages(clean, tmp_path):
    text = _cli("--help").stdout
    for code, word in (("0", "success"), ("1", "failed"), ("2", "configuration"), ("75", "busy")):
        assert any(line.split()[:1] == [code] and word in line for line in text.splitlines()), text
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_id: x\ndata: {raw_data_path: /does/not/exist}\n")
    proc = _cli("run", str(bad))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(f"s2book: error: {bad}: data.raw_data_path: ")
    warn = tmp_path / "warn.yaml"
    warn.write_text(clean.config.read_text().replace("raw_data_path: raw", f"raw_data_path: {clean.config.parent / 'raw'}")
                    + "energy_mapping: {generate: true}\n")
    proc = _cli("status", str(warn))
    lines = [ln for ln in proc.stderr.splitlines() if ln]
    assert lines == [f"s2book: warning: {warn}: energy_mapping.generate: deprecated and ignored (never read by the "
                     "lab either; the alpha artifact is rebuilt when its inputs change)"], proc.stderr
    cut = tmp_path / "cut.wfm"
    blob = sorted((clean.config.parent / "raw").glob("*/*.wfm"))[0].read_bytes()
    cut.write_bytes(blob[: len(blob) * 3 // 4])
    proc = _cli("inspect", "--json", str(cut))
    summary = json.loads(proc.stdout)
    assert proc.returncode == 0 and summary["partial"] and summary["frames"] < summary["frames_promised"] == 16
    assert proc.stderr == (f"s2book: warning: {cut}: curve buffer: truncated; read the {summary['frames']} complete "
                           f"frames of the 16 the header promises\n")
    proc = _cli("inspect", str(tmp_path / "nothing.wfm"))
    assert proc.returncode == 1 and proc.stderr == "s2book: error: nothing.wfm: file: cannot be opened: No such file or directory\n"
