"""s2lib.io.store contracts not covered by test_store.py: exact file contents, every error text (a user reads them),
the per-frame flags, real FitResults through the files, the JSON/CSV cell rules and folder resolution."""
from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from s2lib.io import atomic, store
from s2lib.errors import DataError
from s2lib.stats.fitting import FitConfig, FitResult, fit_histogram
from s2lib.io.store import S2Areas, load_s2area, load_timing, load_xrays, store_s2area, store_timing, store_xrays


def test_file_names_and_schema_version() -> None:
    assert (store.S2_AREAS_FILE, store.S2_EVENT_IDS_FILE, store.S2_FLAGS_FILE, store.S2_RESULTS_FILE) == (
        "s2_areas.npy", "s2_event_ids.npy", "s2_flags.npy", "s2_results.json")
    assert (store.XRAY_AREAS_FILE, store.XRAY_EVENT_IDS_FILE, store.XRAY_RESULTS_FILE, store.TIMING_FILE) == (
        "xray_areas.npy", "xray_event_ids.npy", "xray_results.json", "timing.json")
    assert store.SCHEMA_VERSION == 1


def test_s2_results_json_content_exactly(tmp_path: Path) -> None:
    s2 = S2Areas(tmp_path / "src", [1.0, 2.0, np.nan], method="m", params={"w": (1, 2)}, mean=1.5, sigma=0.5,
                 ci95=0.1, fit_success=True, flags=[0, 1, 1])
    path = store_s2area(s2, tmp_path / "out")
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith('{\n  "')  # indent 2, trailing newline
    meta = json.loads(text)
    assert set(meta) == {"schema_version", "status", "method", "params", "mean", "sigma", "ci95", "fit_success",
                         "fit", "n_areas", "source_dir", "n_vetoed", "areas_sha256", "event_ids_sha256",
                         "flags_sha256", "sideband_sha256", "files_failed", "files_partial", "written_at"}
    assert meta["files_failed"] == [] and meta["files_partial"] == [] and meta["sideband_sha256"] is None
    assert (meta["schema_version"], meta["status"], meta["method"], meta["n_areas"], meta["n_vetoed"]) == (
        1, "complete", "m", 3, 2)
    assert meta["params"] == {"w": [1, 2]} and meta["fit"] is None and meta["event_ids_sha256"] is None
    assert meta["source_dir"] == str(tmp_path / "src")
    assert (meta["mean"], meta["sigma"], meta["ci95"], meta["fit_success"]) == (1.5, 0.5, 0.1, True)
    assert len(meta["areas_sha256"]) == 64 and len(meta["flags_sha256"]) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    back = load_s2area(tmp_path / "out")
    assert back.flags.tolist() == [0, 1, 1] and back.flags.dtype == np.uint8
    assert back.usable.tolist() == [True, False, False] and back.n_vetoed == 2
    # written again without flags: the stale flags file goes, n_vetoed is null
    store_s2area(S2Areas(tmp_path / "src", [1.0, 2.0, 3.0]), tmp_path / "out")
    assert not (tmp_path / "out" / "s2_flags.npy").exists()
    again = load_s2area(tmp_path / "out")
    assert again.flags is None and again.usable.tolist() == [True] * 3 and again.n_vetoed == 0
    assert json.loads(path.read_text())["n_vetoed"] is None


def test_flags_file_must_match(tmp_path: Path) -> None:
    out = tmp_path / "out"
    store_s2area(S2Areas(out, [1.0, 2.0], flags=[0, 1]))
    np.save(out / "s2_flags.npy", np.array([1, 1], np.uint8))
    with pytest.raises(DataError) as err:
        load_s2area(out)
    assert str(err.value) == f"{out / 's2_results.json'}: does not match s2_flags.npy (checksum or shape differ)"
    (out / "s2_flags.npy").unlink()
    with pytest.raises(DataError) as err:
        load_s2area(out)
    assert str(err.value) == f"{out / 's2_flags.npy'}: missing, but s2_results.json lists it"
    with pytest.raises(ValueError, match=r"store_s2area: flags must be integers of shape \(2,\), got float64 \(2,\)"):
        store_s2area(_bad_flags(out))


def _bad_flags(out: Path) -> S2Areas:
    s2 = S2Areas(out, [1.0, 2.0])
    s2.flags = np.array([0.5, 1.0])  # bypasses __post_init__, as a caller mutating the object would
    return s2


def test_flags_and_event_ids_validation_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"S2Areas: flags must be integers of shape \(3,\), got int64 \(2,\)"):
        S2Areas(tmp_path, [1.0, 2.0, 3.0], flags=np.array([0, 1]))
    S2Areas(tmp_path, [1.0, 2.0], flags=np.array([True, False]))  # booleans are flags too
    with pytest.raises(ValueError, match=r"S2Areas: event_ids must be integers of shape \(2, 2\), got float64"):
        S2Areas(tmp_path, [1.0, 2.0], event_ids=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"store_xrays: event_ids must be integers of shape \(1, 2\)"):
        store_xrays(tmp_path, [1.0], np.zeros((2, 2), np.int64), {})


def test_real_fit_result_comes_back_as_fit_result(tmp_path: Path) -> None:
    fr = fit_histogram(np.random.default_rng(1).normal(2.0, 0.5, 500), FitConfig(bin_cuts=(0.0, 4.0), nbins=40))
    from s2lib import load_s2area as seed_load_s2area
    from s2lib.stats import fit_store

    store_s2area(S2Areas(tmp_path, [1.0], fit_result=fr))
    assert load_s2area(tmp_path).fit_result == fr.to_dict()          # the io layer gives the stored dict
    for loader in (fit_store.load_s2area, seed_load_s2area):          # the stats layer (the seed API) the FitResult
        back = loader(tmp_path).fit_result
        assert isinstance(back, FitResult)
        assert back.mean == fr.mean and back.mean_err == fr.mean_err and back.fit_success == fr.fit_success
    # a dict that FitResult cannot read is kept as stored
    assert fit_store.decode_fit({"not": "a fit"}) == {"not": "a fit"}
    assert fit_store.decode_fit(None) is None and store._fit_dict(None) is None
    assert store._fit_dict({"a": 1}) == {"a": 1}


def test_lab_results_json_keeps_set_metadata(tmp_path: Path) -> None:
    np.save(tmp_path / "s2_areas.npy", np.array([1.0, 2.0]))
    (tmp_path / "s2_results.json").write_text(json.dumps(
        {"method": "lab", "params": {"a": 1}, "mean": 1.5, "sigma": None, "ci95": 0.2, "fit_success": True,
         "set_metadata": {"drift_field": 71.4}}))
    s2 = load_s2area(tmp_path)
    assert s2.params == {"a": 1, "set_metadata": {"drift_field": 71.4}}
    assert s2.method == "lab" and s2.mean == 1.5 and s2.sigma is None and s2.ci95 == 0.2 and s2.fit_success
    (tmp_path / "s2_results.json").write_text(json.dumps({"params": {"set_metadata": "own"}, "set_metadata": 1}))
    s2 = load_s2area(tmp_path)
    assert s2.params == {"set_metadata": "own"} and s2.method == "" and s2.fit_success is False and s2.mean is None
    np.save(tmp_path / "s2_areas.npy", np.zeros((2, 2)))
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == f"{tmp_path / 's2_areas.npy'}: expected a 1-D array of areas, got shape (2, 2)"
    (tmp_path / "s2_results.json").unlink()
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == f"{tmp_path / 's2_areas.npy'}: expected a 1-D array of areas, got shape (2, 2)"
    np.save(tmp_path / "s2_areas.npy", np.array([3.0]))
    only = load_s2area(tmp_path)
    assert only.method == "loaded_from_npy" and only.params == {} and only.mean is None


def test_error_texts_for_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == f"{tmp_path}: no s2_areas.npy"
    (tmp_path / "s2_results.json").write_text("{}")
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == f"{tmp_path}: s2_results.json without s2_areas.npy (interrupted write?)"
    np.save(tmp_path / "s2_areas.npy", np.array([1.0]))
    (tmp_path / "s2_results.json").write_text("[1, 2]")
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == f"{tmp_path / 's2_results.json'}: expected a JSON object"
    (tmp_path / "s2_results.json").write_text(json.dumps({"schema_version": 1, "status": "writing"}))
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == (f"{tmp_path / 's2_results.json'}: incomplete write (status 'writing'); "
                              "re-run the stage")
    (tmp_path / "s2_results.json").write_text(json.dumps({"schema_version": "1", "status": "complete"}))
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == (f"{tmp_path / 's2_results.json'}: schema_version '1' not supported "
                              "(this s2lib reads <= 1)")
    (tmp_path / "s2_results.json").write_text(json.dumps(
        {"schema_version": 1, "status": "complete", "n_areas": 2, "areas_sha256": "x"}))
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == (f"{tmp_path / 's2_results.json'}: does not match s2_areas.npy (n_areas or checksum "
                              "differ: interrupted or mixed write); re-run the stage")
    (tmp_path / "s2_results.json").write_text("{not json")
    with pytest.raises(DataError, match=r"s2_results.json: unreadable JSON \("):
        load_s2area(tmp_path)
    (tmp_path / "s2_areas.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError, match=r"s2_areas.npy: corrupt or truncated .npy file \("):
        store.read_npy(tmp_path / "s2_areas.npy")


def test_event_ids_file_must_match(tmp_path: Path) -> None:
    store_s2area(S2Areas(tmp_path, [1.0, 2.0], event_ids=[[0, 0], [0, 1]]))
    np.save(tmp_path / "s2_event_ids.npy", np.array([[0, 0], [0, 2]], np.int64))
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == f"{tmp_path / 's2_results.json'}: does not match s2_event_ids.npy (checksum or shape differ)"
    (tmp_path / "s2_event_ids.npy").unlink()
    with pytest.raises(DataError) as err:
        load_s2area(tmp_path)
    assert str(err.value) == f"{tmp_path / 's2_event_ids.npy'}: missing, but s2_results.json lists it"


def test_xrays_content_and_lab_format(tmp_path: Path) -> None:
    path = store_xrays(tmp_path / "x", [2.0, 2.1], [[0, 3], [1, 7]], {"n_events": 10, "params": {"t": 0.5}})
    meta = json.loads(path.read_text())
    assert set(meta) == {"n_events", "params", "schema_version", "status", "n_accepted", "n_areas", "areas_sha256",
                         "event_ids_sha256", "written_at"}
    assert (meta["n_accepted"], meta["n_areas"], meta["n_events"], meta["status"], meta["schema_version"]) == (
        2, 2, 10, "complete", 1)
    back = load_xrays(tmp_path / "x")
    assert back.areas.tolist() == [2.0, 2.1] and back.event_ids.tolist() == [[0, 3], [1, 7]]
    assert back.results["params"] == {"t": 0.5} and back.source_dir == tmp_path / "x"
    lab = tmp_path / "lab"
    lab.mkdir()
    np.save(lab / "xray_areas.npy", np.array([1.5], np.float32))
    old = load_xrays(lab)
    assert old.areas.dtype == np.float64 and old.event_ids is None and old.results == {}
    (lab / "xray_results.json").write_text('{"n_accepted": 1}')
    assert load_xrays(lab).results == {"n_accepted": 1}
    np.save(lab / "xray_areas.npy", np.zeros((1, 2)))
    with pytest.raises(DataError) as err:
        load_xrays(lab)
    assert str(err.value) == f"{lab / 'xray_areas.npy'}: expected a 1-D array of areas, got shape (1, 2)"
    (lab / "xray_results.json").write_text("3")
    with pytest.raises(DataError) as err:
        load_xrays(lab)
    assert str(err.value) == f"{lab / 'xray_results.json'}: expected a JSON object"
    (lab / "xray_areas.npy").unlink()
    with pytest.raises(DataError) as err:
        load_xrays(lab)
    assert str(err.value) == f"{lab}: xray_results.json without xray_areas.npy (interrupted write?)"
    with pytest.raises(DataError) as err:
        load_xrays(tmp_path / "none")
    assert str(err.value) == f"{tmp_path / 'none'}: no xray_areas.npy"


def test_xrays_refuse_raw_and_unencodable_results_before_writing(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(DataError, match="inside the raw data folder"):
        store_xrays(raw / "set", [1.0], None, {}, raw_root=raw)
    assert not (raw / "set").exists()
    with pytest.raises(TypeError, match="cannot store a object in JSON"):
        store_xrays(tmp_path / "out", [1.0], None, {"bad": object()})
    assert not (tmp_path / "out").exists()  # nothing written, not even the "writing" marker


def test_xrays_interrupted_after_the_marker_are_refused(tmp_path: Path, monkeypatch) -> None:
    def boom(array):
        raise OSError("disk full")

    monkeypatch.setattr(store, "_npy_bytes", boom)
    with pytest.raises(OSError, match="disk full"):
        store_xrays(tmp_path, [1.0], None, {"n_events": 1})
    marker = json.loads((tmp_path / "xray_results.json").read_text())
    assert marker["status"] == "writing" and marker["schema_version"] == 1 and "written_at" in marker
    monkeypatch.undo()
    np.save(tmp_path / "xray_areas.npy", np.array([1.0]))
    with pytest.raises(DataError, match=r"incomplete write \(status 'writing'\)"):
        load_xrays(tmp_path)


def test_atomic_write_uses_a_hidden_tmp_file_beside_the_target(tmp_path: Path, monkeypatch) -> None:
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(store.os, "replace", spy)
    store.write_text_atomic(tmp_path / "a.txt", "x")
    (src, dst), = seen
    assert dst == tmp_path / "a.txt" and src.parent == tmp_path
    assert src.name.startswith(".a.txt.") and src.name.endswith(".tmp")
    assert (tmp_path / "a.txt").read_text() == "x" and not src.exists()


def test_timing_contract(tmp_path: Path) -> None:
    path = store_timing(tmp_path, {"window_us": (10.0, 15.0), "t_s1_us": float("nan")})
    doc = json.loads(path.read_text())
    assert doc == {"window_us": [10.0, 15.0], "t_s1_us": None, "schema_version": 1}
    assert load_timing(tmp_path) == doc
    with pytest.raises(DataError) as err:
        load_timing(tmp_path / "none")
    assert str(err.value) == f"{tmp_path / 'none' / 'timing.json'}: missing (run the timing stage first)"
    path.write_text(json.dumps({"schema_version": 2}))
    with pytest.raises(DataError) as err:
        load_timing(tmp_path)
    assert str(err.value) == f"{path}: schema_version 2 not supported"
    path.write_text("[]")
    with pytest.raises(DataError) as err:
        load_timing(tmp_path)
    assert str(err.value) == f"{path}: expected a JSON object"
    path.write_text(json.dumps({"schema_version": "old", "a": 1}))
    assert load_timing(tmp_path)["a"] == 1  # a non-integer version is the lab's: read as it is


def test_json_sanitize_rules() -> None:
    class WithDict:
        def to_dict(self) -> dict:
            return {"x": np.float32(0.5)}

    out = store.json_sanitize({1: np.int16(3), "b": np.bool_(True), "f": np.float64(np.inf), "n": None,
                               "t": (1, 2), "s": {3}, "a": np.array([[1.5, np.nan]]), "z": np.array(2.5),
                               "p": Path("/x/y"), "o": WithDict(), "fs": frozenset([4]), "str": "s"})
    assert out == {"1": 3, "b": True, "f": None, "n": None, "t": [1, 2], "s": [3], "a": [[1.5, None]], "z": 2.5,
                   "p": "/x/y", "o": {"x": 0.5}, "fs": [4], "str": "s"}
    assert type(out["1"]) is int and type(out["b"]) is bool and type(out["z"]) is float
    assert store.json_sanitize(float("-inf")) is None and store.json_sanitize(False) is False
    with pytest.raises(TypeError, match="cannot store a complex in JSON"):
        store.json_sanitize(1j)


def test_csv_cells(tmp_path: Path) -> None:
    assert atomic._csv_cell(None) == "" and atomic._csv_cell(0.1) == "0.1"
    assert atomic._csv_cell(np.float32(0.5)) == "0.5" and atomic._csv_cell(np.int64(7)) == "7"
    assert atomic._csv_cell(np.bool_(True)) == "True" and atomic._csv_cell("a,b") == "a,b"
    assert atomic._csv_cell(1 / 3) == "0.3333333333333333"
    p = store.write_csv_atomic(tmp_path / "t.csv", [{"a": 1 / 3, "b": None, "c": "x"}, {"a": 2}], ["a", "b"])
    assert p.read_text() == "a,b\n0.3333333333333333,\n2,\n"


def test_resolve_folder_order_and_error(tmp_path: Path) -> None:
    assert store.resolve_folder("a/b") == Path("a/b") and store.resolve_folder(tmp_path) == tmp_path
    obj = SimpleNamespace(output_dir="out", source_dir="src", path="raw", name="S")
    assert store.resolve_folder(obj) == Path("out")
    assert store.resolve_folder(SimpleNamespace(output_dir=None, source_dir="src", path="raw")) == Path("src")
    assert store.resolve_folder(SimpleNamespace(path="raw")) == Path("raw")
    assert store.resolve_folder(SimpleNamespace(output_dir=lambda: 1, path="raw")) == Path("raw")  # callables skip
    run = SimpleNamespace(set_output_dir=lambda name: Path("/runs") / name)
    assert store.resolve_folder(obj, run) == Path("/runs/S")
    assert store.resolve_folder("given", run) == Path("given")  # a path wins over the run
    with pytest.raises(TypeError) as err:
        store.resolve_folder(3)
    assert str(err.value) == ("cannot find a folder in int (expected a path or an object with output_dir, "
                              "source_dir or path)")


def test_raw_folder_refusal_names_both_paths(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(DataError) as err:
        store.write_text_atomic(raw / "set" / "x.txt", "no", raw_root=raw)
    assert str(err.value) == f"refusing to write {raw / 'set' / 'x.txt'}: it is inside the raw data folder {raw}"
    assert not (raw / "set").exists()
    with pytest.raises(DataError):
        store_s2area(S2Areas(raw, [1.0]), raw_root=raw)
    store.ensure_not_in_raw(tmp_path / "rawish" / "x", raw)  # a sibling with a common prefix is fine
    store.ensure_not_in_raw(raw / "x", None)


def test_text_encoding_and_npy_round_trip(tmp_path: Path) -> None:
    p = store.write_text_atomic(tmp_path / "t.txt", "µs", encoding="latin-1")
    assert p.read_bytes() == b"\xb5s"
    arr = np.arange(5, dtype=np.int16)
    store.write_npy_atomic(tmp_path / "a.npy", arr)
    back, sha = store.read_npy(tmp_path / "a.npy")
    assert back.dtype == np.int16 and back.tolist() == [0, 1, 2, 3, 4] and len(sha) == 64
    assert math.isclose(store.read_json(store.write_json_atomic(tmp_path / "j.json", {"v": 0.1}))["v"], 0.1)


def test_every_writer_refuses_the_raw_folder_and_npy_refuses_pickles(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    writers = {"a.npy": lambda p: atomic.write_npy_atomic(p, np.zeros(3), raw_root=raw),
               "a.json": lambda p: atomic.write_json_atomic(p, {"v": 1}, raw_root=raw),
               "a.csv": lambda p: atomic.write_csv_atomic(p, [{"v": 1}], ["v"], raw_root=raw)}
    for name, write in writers.items():
        with pytest.raises(DataError, match="inside the raw data folder"):
            write(raw / "set" / name)
    assert list(raw.iterdir()) == []
    # an object array would need a pickle, which read_npy refuses: it must not be written at all
    with pytest.raises(ValueError, match="pickle"):
        atomic.write_npy_atomic(tmp_path / "o.npy", np.array([{"a": 1}, None], dtype=object))
    assert not (tmp_path / "o.npy").exists() and list(tmp_path.glob(".o.npy.*")) == []


def test_sideband_failed_files_and_timing_through_a_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    s2 = S2Areas(out / "s1", [1.0, 2.0, 3.0], params={"files_failed": ["a.wfm"], "files_partial": ["b.wfm"]},
                 sideband=[0.1, -0.2, 0.0])
    store_s2area(s2)
    meta = json.loads((out / "s1" / "s2_results.json").read_text())
    assert (meta["files_failed"], meta["files_partial"]) == (["a.wfm"], ["b.wfm"])
    back = load_s2area(out / "s1")
    assert back.sideband.tolist() == [0.1, -0.2, 0.0]
    (out / "s1" / "s2_sideband.npy").unlink()
    with pytest.raises(DataError, match="s2_sideband.npy: missing, but s2_results.json lists it"):
        load_s2area(out / "s1")
    # timing through a run: the set's folder comes from run.set_output_dir(name)
    run = SimpleNamespace(set_output_dir=lambda name: out / name)
    store_timing(out / "s1", {"s1_window_us": [0.0, 1.0]})
    assert load_timing(SimpleNamespace(name="s1"), run)["s1_window_us"] == [0.0, 1.0]
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(DataError, match="inside the raw data folder"):
        store_timing(raw / "s1", {"s1_window_us": [0.0, 1.0]}, raw_root=raw)
