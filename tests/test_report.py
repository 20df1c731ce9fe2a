"""The report runner: cache keys, skipping, selective re-runs, failures, status and manifests.

Uses the tiny stage templates of tests/fixtures/mini_notebooks (about 1 s per stage) on two runs configured in
tmp_path. The s2lib source fingerprint is taken from a frozen copy, so edits to s2lib made while the tests run do
not make them flaky.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import pytest

import s2lib.report._cache as cache
from s2lib.errors import ConfigError, S2BookError
from s2lib.report.report import report_status, run_reports

pytestmark = pytest.mark.slow

MINI = Path(__file__).resolve().parent / "fixtures" / "mini_notebooks"
RUN_YAML = """\
run_id: {run_id}
description: mini run {run_id}
data:
  raw_data_path: raw
  output_base: ../out
experiment:
  pressure: 2.0
pipeline:
  fitting:
    nbins: 100
"""


class Lab:
    """Two runs (each with its own folder, raw data and YAML) plus a book root and a template copy."""

    def __init__(self, tmp: Path, create: bool = True) -> None:
        """The lab in ``tmp``: its files are written unless ``create`` is False (a lab already there)."""
        self.tmp = tmp
        self.root = tmp / "root"
        self.templates = tmp / "templates"
        if create:
            shutil.copytree(MINI, self.templates)
        self.configs = {}
        for run_id in ("runA", "runB"):
            folder = tmp / run_id
            if create:
                set_dir = folder / "raw" / "FieldScan_Gate0200_Anode2100"
                set_dir.mkdir(parents=True)
                for i in (1, 2):
                    (set_dir / f"wave_{i}.wfm").write_bytes(bytes(64 * i))
                (folder / "run.yaml").write_text(RUN_YAML.format(run_id=run_id))
            self.configs[run_id] = folder / "run.yaml"

    def run(self, runs=("runA", "runB"), **kw) -> int:
        return run_reports([self.configs[r] for r in runs], root=self.root, template_dir=self.templates, **kw)

    def status(self, runs=("runA", "runB")) -> int:
        return report_status([self.configs[r] for r in runs], root=self.root, template_dir=self.templates)

    def manifest(self, run_id: str) -> dict:
        name = "_summary" if run_id == "summary" else run_id
        return json.loads((self.tmp / "out" / name / "manifest.json").read_text())

    def statuses(self, run_id: str) -> dict[str, str]:
        return {k: v["status"] for k, v in self.manifest(run_id)["stages"].items()}

    def notebook(self, run_id: str, stage: str) -> Path:
        return self.root / "book" / "runs" / run_id / f"{stage}.ipynb"

    def edit_config(self, run_id: str, old: str, new: str) -> None:
        path = self.configs[run_id]
        path.write_text(path.read_text().replace(old, new))


@pytest.fixture
def frozen_s2lib(tmp_path_factory, monkeypatch) -> Path:
    copy = tmp_path_factory.mktemp("s2lib_copy") / "s2lib"
    shutil.copytree(cache.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE_DIR", copy)
    return copy


@pytest.fixture
def lab(tmp_path, frozen_s2lib) -> Lab:
    return Lab(tmp_path)


@pytest.fixture(scope="module")
def _ran_once(tmp_path_factory) -> tuple[Path, Path, Path]:
    """Both runs executed once (``jobs=2``) in a lab folder, then copied aside: ``(lab, copy, frozen s2lib)``."""
    base = tmp_path_factory.mktemp("ran")
    frozen = base / "s2lib"
    shutil.copytree(cache.PACKAGE_DIR, frozen, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cache, "PACKAGE_DIR", frozen)
        lab = Lab(base / "lab")
        assert lab.run(jobs=2) == 0
    shutil.copytree(lab.tmp, base / "executed", symlinks=True)
    return lab.tmp, base / "executed", frozen


@pytest.fixture
def ran(_ran_once, monkeypatch) -> Lab:
    """A lab whose two runs were just executed: the executed lab restored at the same path for every test.

    The manifests record absolute paths, sizes and mtimes (raw files, artifacts, notebooks); the copy keeps the
    path and ``shutil.copy2`` keeps every mtime to the nanosecond, so each test starts from exactly the state a
    fresh ``lab.run(jobs=2)`` leaves, without executing the 7 notebooks again.
    """
    folder, executed, frozen = _ran_once
    shutil.rmtree(folder)
    shutil.copytree(executed, folder, symlinks=True)
    monkeypatch.setattr(cache, "PACKAGE_DIR", frozen)
    return Lab(folder, create=False)


ALL_SKIPPED = {"integration": "skipped-up-to-date", "fitting": "skipped-up-to-date",
               "calibration": "skipped-up-to-date"}


def test_second_run_skips_every_stage(ran, capfd):
    notebooks = [ran.notebook(r, s) for r in ("runA", "runB") for s in ("integration", "fitting", "calibration")]
    notebooks.append(ran.root / "book" / "runs" / "summary.ipynb")
    mtimes = [p.stat().st_mtime_ns for p in notebooks]
    capfd.readouterr()
    assert ran.run(jobs=1) == 0
    out = capfd.readouterr().out
    assert "[runA] integration: up to date (skipped)" in out
    assert "0 stage(s) executed, 7 up to date" in out
    assert ran.statuses("runA") == ALL_SKIPPED and ran.statuses("runB") == ALL_SKIPPED
    assert ran.statuses("summary") == {"summary": "skipped-up-to-date"}
    assert [p.stat().st_mtime_ns for p in notebooks] == mtimes


def test_fitting_parameter_reruns_fitting_and_calibration_of_that_run_only(ran, capfd):
    ran.edit_config("runA", "nbins: 100", "nbins: 80")
    capfd.readouterr()
    assert ran.run(jobs=2) == 0
    out = capfd.readouterr().out
    # keys are reported at their canonical place in the validated configuration
    assert "parameters changed: pipeline.integration.fit_config.nbins 100 -> 80" in out
    assert ran.statuses("runA") == {"integration": "skipped-up-to-date", "fitting": "ok", "calibration": "ok"}
    assert ran.statuses("runB") == ALL_SKIPPED
    assert ran.statuses("summary") == {"summary": "ok"}
    assert "upstream stage fitting re-ran" in out


def test_raw_file_change_reruns_integration_and_downstream(ran, capfd):
    raw = ran.tmp / "runA" / "raw" / "FieldScan_Gate0200_Anode2100"
    # a pure touch re-runs integration; downstream stays up to date because the artifacts are identical by content
    st = (raw / "wave_1.wfm").stat()
    os.utime(raw / "wave_1.wfm", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert ran.run(runs=("runA",), stages=["integration", "fitting", "calibration"]) == 0
    assert ran.statuses("runA") == {"integration": "ok", "fitting": "skipped-up-to-date",
                                    "calibration": "skipped-up-to-date"}
    # a new raw file changes what integration writes: everything downstream re-runs, the other run does not
    (raw / "wave_3.wfm").write_bytes(bytes(10))
    capfd.readouterr()
    assert ran.run() == 0
    out = capfd.readouterr().out
    assert "raw files changed: 1 file added" in out
    assert ran.statuses("runA") == {"integration": "ok", "fitting": "ok", "calibration": "ok"}
    assert ran.statuses("runB") == ALL_SKIPPED
    assert ran.statuses("summary") == {"summary": "ok"}


def test_failing_cell_stops_the_run_and_keeps_the_partial_notebook(lab, capfd):
    (lab.configs["runB"].parent / "fail_fitting").touch()
    assert lab.run(runs=("runB", "runA"), jobs=1) == 1
    captured = capfd.readouterr()
    assert "run runB, stage fitting, cell 3: ValueError: boom in fitting" in captured.err
    partial = lab.root / "book" / "runs" / "runB" / "fitting.failed.ipynb"
    assert str(partial) in captured.err and partial.is_file()
    assert not lab.notebook("runB", "fitting").exists()
    assert not lab.notebook("runB", "calibration").exists()
    assert lab.statuses("runB") == {"integration": "ok", "fitting": "failed"}
    err = lab.manifest("runB")["stages"]["fitting"]["error"]
    assert err["cell"] == 3 and err["ename"] == "ValueError"
    assert "[runA] not started" in captured.out
    assert not (lab.tmp / "out" / "runA" / "manifest.json").exists()
    nb = nbformat.read(str(partial), as_version=4)
    assert any(c.metadata.get("papermill", {}).get("status") == "failed" for c in nb.cells)

    # keep going: the other run completes, the summary does not run, the exit status is still 1
    assert lab.run(runs=("runB", "runA"), jobs=2, keep_going=True) == 1
    assert lab.statuses("runA") == {"integration": "ok", "fitting": "ok", "calibration": "ok"}
    assert lab.statuses("runB")["fitting"] == "failed"
    assert not (lab.tmp / "out" / "_summary" / "manifest.json").exists()

    # fixed: the failed stage re-runs ("last run failed"), the partial notebook goes away
    (lab.configs["runB"].parent / "fail_fitting").unlink()
    capfd.readouterr()
    assert lab.status() == 0
    assert "fitting: will run: last run failed (cell 3: ValueError)" in capfd.readouterr().out
    assert lab.run() == 0
    assert not partial.exists() and lab.notebook("runB", "fitting").is_file()


def test_status_explains_reasons(lab, frozen_s2lib, capfd):
    assert lab.status() == 0
    out = capfd.readouterr().out
    assert "integration: will run: never run" in out and "summary: will run: never run" in out
    assert lab.run() == 0
    lab.edit_config("runA", "nbins: 100", "nbins: 80")
    (lab.tmp / "runB" / "raw" / "FieldScan_Gate0200_Anode2100" / "wave_1.wfm").write_bytes(bytes(7))
    capfd.readouterr()
    lab.status()
    out = capfd.readouterr().out
    run_a, run_b = out.split("runB (")[0], out.split("runB (")[1]
    assert "integration: up to date" in run_a
    assert "fitting: will run: parameters changed: pipeline.integration.fit_config.nbins 100 -> 80" in run_a
    assert "integration: will run: raw files changed: 1 file touched" in run_b
    assert "fitting: will run: upstream stage integration runs first" in run_b

    template = lab.templates / "calibration.md"          # a MyST notebook: edited as text
    text = template.read_text()
    last = text.rindex("\n```\n")
    template.write_text(text[:last] + "\nprint('changed')" + text[last:])
    physics = frozen_s2lib / "physics" / "physics.py"
    physics.write_text(physics.read_text() + "\n# edit\n")
    capfd.readouterr()
    lab.status()
    out = capfd.readouterr().out
    assert "calibration: will run: notebook template changed; s2lib source changed (physics/physics.py)" in out


def test_manifest_records_provenance(ran):
    man = ran.manifest("runA")
    assert man["run_id"] == "runA" and man["config"]["path"] == str(ran.configs["runA"])
    assert man["config"]["parameters"]["pipeline"]["integration"]["fit_config"]["nbins"] == 100
    git = man["environment"]["git"]
    assert set(git) == {"commit", "dirty"}
    assert man["environment"]["packages"]["papermill"] and man["environment"]["python"]
    assert man["inputs"]["raw_files"] == 2
    for name in ("integration", "fitting", "calibration"):
        entry = man["stages"][name]
        assert entry["status"] == "ok" and entry["duration_s"] > 0 and entry["started"] <= entry["ended"]
        assert set(entry["parts"]) == {"template", "s2lib", "params", "inputs", "env"}
        assert all(len(a["sha256"]) == 64 for a in entry["artifacts"].values())
        nb = nbformat.read(str(ran.notebook("runA", name)), as_version=4)
        assert nb.metadata["s2book"]["key"] == entry["key"]
        tags = [c.metadata.get("tags", []) for c in nb.cells]
        assert any("parameters" in t and "remove-cell" in t for t in tags)
        assert any("injected-parameters" in t and "remove-cell" in t for t in tags)
        assert all("hide-input" in t or "remove-cell" in t for c, t in zip(nb.cells, tags) if c.cell_type == "code")
    assert "figures/integration_areas.png" in man["stages"]["integration"]["artifacts"]
    assert man["stages"]["fitting"]["parts"]["inputs"]["upstream"]["integration"] == {
        "areas.json": man["stages"]["integration"]["artifacts"]["areas.json"]["sha256"]}
    summary = ran.manifest("summary")["stages"]["summary"]
    assert set(summary["parts"]["inputs"]["runs"]) == {"runA", "runB"}


def test_configuration_errors_fail_before_anything_runs(lab, tmp_path):
    bad = tmp_path / "runA" / "bad.yaml"
    bad.write_text(RUN_YAML.format(run_id="runA").replace("raw_data_path: raw", "raw_data_path: nowhere"))
    with pytest.raises(ConfigError, match="data.raw_data_path"):
        run_reports([lab.configs["runB"], bad], root=lab.root, template_dir=lab.templates)
    with pytest.raises(ConfigError, match="duplicate run id"):
        run_reports([lab.configs["runA"], lab.configs["runA"]], root=lab.root, template_dir=lab.templates)
    with pytest.raises(S2BookError, match="unknown stage"):
        lab.run(stages=["integration", "fiting"])
    with pytest.raises(S2BookError, match="template not found"):
        run_reports([lab.configs["runA"]], root=lab.root, template_dir=tmp_path / "empty")
    assert not (lab.root / "book").exists()


# ------------------------------------------------------------------ one runner per run, clean restarts
def test_busy_run_exits_75_naming_the_run_and_the_holder(ran, capfd):
    from s2lib.report.runlock import EXIT_BUSY, RunLock

    capfd.readouterr()
    with RunLock("runA", ran.tmp / "out" / "runA"):
        assert ran.run(force=True) == EXIT_BUSY
        err = capfd.readouterr().err
        assert f"run runA is busy: pid {os.getpid()} on host" in err and ".s2book.lock" in err
        assert ran.status() == 0
        assert "runA (" in (out := capfd.readouterr().out) and f"in progress: pid {os.getpid()}" in out
    assert "in progress" not in (ran.status(), capfd.readouterr().out)[1]
    assert ran.statuses("runB") == ALL_SKIPPED or all(v in ("ok", "skipped-up-to-date")
                                                       for v in ran.statuses("runB").values())


def test_wait_blocks_until_the_holder_releases(ran, capfd):
    import threading

    from s2lib.report.runlock import RunLock

    lock = RunLock("runA", ran.tmp / "out" / "runA").acquire()
    timer = threading.Timer(1.5, lock.release)
    timer.start()
    t0 = __import__("time").monotonic()
    assert ran.run(runs=("runA",), wait=True, stages=["integration"]) == 0
    assert __import__("time").monotonic() - t0 >= 1.4
    timer.join()
    assert "waiting: pid" in capfd.readouterr().out


def test_stale_lock_and_leftovers_of_a_killed_run_are_cleaned(ran, capfd):
    """A lock line left by a dead runner is taken over with a note; its temporary files (atomic writers'
    .*.tmp, a half-executed notebook) are removed before anything runs."""
    out = ran.tmp / "out" / "runA"
    (out / ".s2book.lock").write_text(json.dumps({"pid": 999999, "host": "vm", "started": "2026-01-01T00:00:00Z"}))
    leftovers = [out / ".s2_areas.npy.abc123.tmp", out / "figures" / ".x.png.q1w2.tmp",
                 ran.root / "book" / "runs" / "runA" / ".integration.running.ipynb"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    capfd.readouterr()
    assert ran.run(runs=("runA",), stages=["integration"]) == 0
    text = capfd.readouterr().out
    assert "took over the lock of pid 999999 on host vm" in text
    assert "removed 3 temporary file(s) left by an interrupted run" in text
    assert not any(p.exists() for p in leftovers)
    assert (out / ".s2book.lock").read_text() == ""          # released: emptied, never removed
    assert ".s2book.lock" not in ran.manifest("runA")["stages"]["integration"]["artifacts"]


def test_moving_the_installation_keeps_pages_current_but_editing_a_template_stales_them(lab, monkeypatch, tmp_path):
    """The manifest records where the templates come from (the installed package's) and each one's sha256, not the
    installation's absolute path: a venv re-created elsewhere leaves every page current; an edited template
    makes its own stage stale (and nothing else)."""
    import hashlib

    import s2lib.report.project as project
    from s2lib.report.report import check_run, check_summary

    install = tmp_path / "venv-a" / "notebooks"
    shutil.copytree(MINI, install)
    monkeypatch.setattr(project, "packaged_templates", lambda: install)
    # the book project has no notebooks/ of its own: the runs use the installed templates
    assert run_reports(list(lab.configs.values()), root=lab.root, jobs=2) == 0
    record = lab.manifest("runA")["templates"]
    assert record["origin"] == "package" and record["path"] is None
    assert record["files"]["calibration.md"] == hashlib.sha256((install / "calibration.md").read_bytes()).hexdigest()
    assert set(record["files"]) == {p.name for p in MINI.glob("*.md")}
    assert str(tmp_path) not in json.dumps(record)

    shutil.move(tmp_path / "venv-a", tmp_path / "venv-b")              # the installation moves
    moved = tmp_path / "venv-b" / "notebooks"
    monkeypatch.setattr(project, "packaged_templates", lambda: moved)
    manifest = lab.tmp / "out" / "runA" / "manifest.json"
    assert check_run(manifest, lab.root) == {"integration": [], "fitting": [], "calibration": []}
    assert check_summary(lab.tmp / "out" / "_summary" / "manifest.json", lab.root) == []

    template = moved / "calibration.md"
    text = template.read_text()
    last = text.rindex("\n```\n")
    template.write_text(text[:last] + "\nprint('changed')" + text[last:])
    assert check_run(manifest, lab.root) == {"integration": [], "fitting": [],
                                              "calibration": ["notebook template changed"]}
