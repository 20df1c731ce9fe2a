"""Executor choice (local pool vs Dask LocalCluster) and incremental runs (per-file cache).

One 2-worker ``distributed.LocalCluster`` is shared by the module (starting one costs seconds).
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from s2lib.analysis import filecache
from s2lib.signal import executors
from s2lib.analysis import pipeline
from s2lib.config.config import config_from_dict, load_config
from s2lib.errors import ConfigError
from s2lib.config.runs import build_run
from s2lib.sim.simulate import simulate_run

ARTIFACTS = ("s2_areas.npy", "s2_event_ids.npy", "s2_flags.npy", "xray_areas.npy", "xray_event_ids.npy")


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digests(run) -> dict[str, str]:
    return {f"{s.name}/{a}": _sha(run.set_output_dir(s.name) / a) for s in run.sets for a in ARTIFACTS}


def _run(config: Path, out: Path, raw: Path | None = None, **prep):
    cfg = load_config(config)
    changes = {"output_base": out, **({"raw_data_path": raw} if raw is not None else {})}
    if prep:
        changes["preparation"] = dataclasses.replace(cfg.preparation, **prep)
    return build_run(dataclasses.replace(cfg, **changes))


@pytest.fixture(scope="module")
def dask_cluster():
    """The module's 2-worker LocalCluster (through the executor's own client cache), closed at the end."""
    ex = executors.DaskExecutor(None, 2)
    ex.client()
    yield ex
    executors.shutdown_dask()


@pytest.fixture(scope="module")
def local_pass(tiny_run, tmp_path_factory):
    _, config, _ = tiny_run
    run = _run(config, tmp_path_factory.mktemp("local_out"))
    pipeline.run_integration_pass(run, fit=False, verbose=False)
    return run


def test_dask_localcluster_2_workers_bit_identical_to_local_pool(tiny_run, local_pass, dask_cluster, tmp_path,
                                                                   monkeypatch):
    _, config, _ = tiny_run
    monkeypatch.setenv(executors.ENV_EXECUTOR, "dask")
    run = _run(config, tmp_path)
    assert executors.resolve_executor(run.config, jobs=2) == dask_cluster
    pipeline.run_integration_pass(run, jobs=2, fit=False, verbose=False)
    assert _digests(run) == _digests(local_pass)
    n = sum(np.load(run.set_output_dir(s.name) / "s2_areas.npy").size for s in run.sets)
    assert n == 3 * 4 * 16                                  # tiny: 3 sets x 4 files x 16 frames


def test_bad_files_reported_under_dask_as_under_local(tiny_run, dask_cluster, tmp_path, monkeypatch):
    outdir, config, _ = tiny_run
    raw = tmp_path / "raw"
    shutil.copytree(outdir / "raw", raw)
    run_l = _run(config, tmp_path / "local", raw)
    s = run_l.sets[1]
    os.truncate(s.files[2], s.files[2].stat().st_size // 2)
    s.files[3].write_bytes(b"not a waveform file")
    pipeline.run_integration_pass(run_l, fit=False, verbose=False)
    monkeypatch.setenv(executors.ENV_EXECUTOR, "dask")
    run_d = _run(config, tmp_path / "dask", raw)
    pipeline.run_integration_pass(run_d, jobs=2, fit=False, verbose=False)
    pl = pipeline.load_s2area(run_l.set_output_dir(s.name)).params
    pd = pipeline.load_s2area(run_d.set_output_dir(s.name)).params
    assert pd["files_failed"] == pl["files_failed"] and len(pd["files_failed"]) == 1
    assert pd["files_failed"][0]["file"] == s.files[3].name and pd["files_failed"][0]["field"] == "byte-order mark"
    assert pd["files_partial"] == pl["files_partial"] and pd["files_partial"][0]["file"] == s.files[2].name
    assert _digests(run_d) == _digests(run_l)


@pytest.fixture(scope="module")
def six_files(tmp_path_factory):
    """A tiny run with 6 files per set (96 frames), so that a 32-frame timing sample is filled by 4 files."""
    out = simulate_run(tmp_path_factory.mktemp("six"), profile="tiny", seed=5, n_files=6, set_gates=(200, 800),
                       progress=False)
    return out, out / "run.yaml"


def _pass(run) -> dict[str, dict]:
    pipeline.run_integration_pass(run, fit=False, verbose=False)
    return {s.name: filecache.read_pass(run.set_output_dir(s.name)) for s in run.sets}


def test_incremental_added_file_read_alone_identical_to_scratch_with_small_timing_sample(six_files, tmp_path):
    """max_frames_s1/s2 = 32 (non-default): the timing sample is the first 4 files, so appending the 6th file
    leaves the windows, and the cached results of files 1-5, as they were."""
    outdir, config = six_files
    raw = tmp_path / "raw"
    shutil.copytree(outdir / "raw", raw)
    full = _run(config, tmp_path / "unused", raw)
    s_name, last = full.sets[0].name, full.sets[0].files[-1]           # files in acquisition order
    held = tmp_path / last.name
    shutil.move(last, held)
    inc = _run(config, tmp_path / "inc", raw, max_frames_s1=32, max_frames_s2=32)
    first = _pass(inc)
    assert first[s_name]["files_read"] == 5 and first[s_name]["files_reused"] == 0
    shutil.move(held, last)                                       # the acquisition wrote one more file
    inc = _run(config, tmp_path / "inc", raw, max_frames_s1=32, max_frames_s2=32)
    assert filecache.status_lines(inc) == [f"set {s_name}: 1 new files, 0 changed"]
    second = _pass(inc)
    assert second[s_name] == {"files_read": 1, "files_reused": 5, "read": [last.name]}
    other = [n for n in second if n != s_name][0]
    assert second[other]["files_read"] == 0 and second[other]["files_reused"] == 6
    assert filecache.pass_line(inc.run_id, s_name, inc.set_output_dir(s_name)) == (
        f"[{inc.run_id}] {s_name}: 1 files read, 5 reused")
    scratch = _run(config, tmp_path / "scratch", raw, max_frames_s1=32, max_frames_s2=32)
    assert _pass(scratch)[s_name]["files_read"] == 6
    assert _digests(inc) == _digests(scratch)
    assert filecache.status_lines(inc) == []


def test_changed_file_is_read_again(six_files, tmp_path):
    outdir, config = six_files
    raw = tmp_path / "raw"
    shutil.copytree(outdir / "raw", raw)
    run = _run(config, tmp_path / "out", raw, max_frames_s1=32, max_frames_s2=32)
    _pass(run)
    s = run.sets[0]
    before = _digests(run)
    st = s.files[5].stat()
    os.utime(s.files[5], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))    # touched: same bytes, new mtime
    assert filecache.status_lines(run) == [f"set {s.name}: 0 new files, 1 changed"]
    again = _pass(run)
    assert again[s.name] == {"files_read": 1, "files_reused": 5, "read": [s.files[5].name]}
    assert _digests(run) == before


def test_status_command_names_new_and_changed_files(six_files, tmp_path, capsys):
    from s2lib.report.report import report_status

    outdir, config = six_files
    raw = tmp_path / "raw"
    shutil.copytree(outdir / "raw", raw)
    doc = yaml.safe_load(Path(config).read_text())
    doc["data"] = {"raw_data_path": str(raw), "output_base": str(tmp_path / "out")}
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(doc))
    run = build_run(load_config(cfg_path))
    _pass(run)
    s = run.sets[1]
    st = s.files[0].stat()
    os.utime(s.files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    shutil.copy(s.files[1], s.path / "extra_99.wfm")
    capsys.readouterr()
    report_status([cfg_path])
    assert f"  set {s.name}: 1 new files, 1 changed" in capsys.readouterr().out.splitlines()


def _cfg(tmp_path: Path, compute: dict):
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    return config_from_dict({"run_id": "R", "data": {"raw_data_path": str(raw), "output_base": str(tmp_path / "o")},
                             "compute": compute})


def test_compute_keys_validated_with_the_key_named(tmp_path, monkeypatch):
    assert _cfg(tmp_path, {}).compute == type(_cfg(tmp_path, {}).compute)("local", None, None)
    for compute, key, text in (({"executor": "spark"}, "compute.executor", "local, dask"),
                               ({"workers": 0}, "compute.workers", ">= 1"),
                               ({"address": "tcp://h:8786"}, "compute.address", "needs compute.executor"),
                               ({"nodes": 3}, "compute.nodes", "allowed here: address, executor, workers")):
        with pytest.raises(ConfigError, match=key) as err:
            _cfg(tmp_path, compute)
        assert text in str(err.value)
    cfg = _cfg(tmp_path, {"executor": "dask", "address": "tcp://h:8786"})
    assert executors.resolve_executor(cfg) == executors.DaskExecutor("tcp://h:8786", 1)
    assert executors.resolve_executor(_cfg(tmp_path, {"workers": 3}), jobs=1) == executors.LocalExecutor(3)
    assert executors.resolve_executor(None, jobs=2) == executors.LocalExecutor(2)
    monkeypatch.setenv(executors.ENV_EXECUTOR, "spark")
    with pytest.raises(ConfigError, match="--executor"):
        executors.resolve_executor(None)
    cfg_key = _cfg(tmp_path, {"executor": "dask"}).to_dict(tracked_only=True)
    assert "compute" not in cfg_key                          # never part of a cache key


def test_cli_refuses_an_address_with_the_local_executor(tiny_run):
    from click.testing import CliRunner

    from s2lib.cli import main

    _, config, _ = tiny_run
    res = CliRunner().invoke(main, ["run", str(config), "--executor", "local", "--dask-address", "tcp://h:1"])
    assert res.exit_code == 2 and "--dask-address" in res.output


def test_the_engine_hash_covers_every_module_the_engine_imports():
    """A file's cached result is keyed by the source of the modules that compute it (filecache.ENGINE_MODULES):
    every s2lib.signal / s2lib.io module that one of them imports must be among them, or a change there would
    reuse stale results. Left out on purpose: dispatch (executors) and artifact writing (io.store, io.atomic)."""
    import ast
    import importlib

    from s2lib.analysis.filecache import ENGINE_MODULES

    exempt = {"s2lib.signal.executors", "s2lib.io.store", "s2lib.io.atomic"}
    missing = set()
    for name in ENGINE_MODULES:
        mod = importlib.import_module(name)
        tree = ast.parse(Path(mod.__file__).read_text(encoding="utf-8"))
        package = name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = (package + "." + (node.module or "")).rstrip(".") if node.level else node.module or ""
                if node.level and not node.module:          # from . import x
                    targets = [f"{package}.{a.name}" for a in node.names]
                else:
                    targets = [target]
                for t in targets:
                    if t.startswith(("s2lib.signal.", "s2lib.io.")) and t not in exempt:
                        missing |= {t} - set(ENGINE_MODULES)
    assert not missing, f"engine modules outside ENGINE_MODULES: {sorted(missing)}"


def test_tasks_are_cut_by_bytes():
    """chunks_for: ~16 tasks per Dask worker (4 on the local pool) by bytes, none over TASK_MAX_BYTES unless one
    file alone is larger, every file exactly once and in order within its set, heaviest task first: 2 000 small
    files go in tasks of many files (Dask's per-task cost paid ~32 times, not 2 000), 40 files of 250 MB one per
    task, 100 files of 700 MB never two together, one huge file alone."""
    from s2lib.signal.executors import TASK_MAX_BYTES, DaskExecutor, LocalExecutor, chunks_for

    def by_set(tasks):
        out = {}
        for si, files, _ in sorted(tasks, key=lambda t: (t[0], t[1][0])):
            out.setdefault(si, []).extend(files)
        return out

    dask2 = DaskExecutor(workers=2)
    small = [(0, list(range(1000)), None), (1, list(range(1000)), None)]
    sizes = {0: {i: 1_200_000 for i in range(1000)}, 1: {i: 1_200_000 for i in range(1000)}}
    tasks = chunks_for(dask2, small, sizes)
    assert 30 <= len(tasks) <= 34 and by_set(tasks) == {0: list(range(1000)), 1: list(range(1000))}
    big = [(0, list(range(40)), None)]
    tasks = chunks_for(dask2, big, {0: {i: 250_000_000 for i in range(40)}})
    assert [t[1] for t in sorted(tasks, key=lambda t: t[1][0])] == [[i] for i in range(40)]
    tasks = chunks_for(LocalExecutor(1), [(0, list(range(100)), None)], {0: {i: 700_000_000 for i in range(100)}})
    assert all(len(t[1]) == 1 for t in tasks) and by_set(tasks) == {0: list(range(100))}   # 1.4 GB > 1 GiB
    mixed = chunks_for(LocalExecutor(1), [(0, [0, 1, 2], None)], {0: {0: 10, 1: 10, 2: 3 * TASK_MAX_BYTES}})
    assert [t[1] for t in mixed] == [[2], [0, 1]]                    # the heaviest first, the huge file alone
    assert len(chunks_for(LocalExecutor(2), big)) == 8               # without sizes: files count the same
