"""Artifacts: atomic writes, round trips, the lab's old formats, interrupted writes never accepted."""
from __future__ import annotations

import json
import stat
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from s2lib.io import atomic, store
from s2lib.errors import DataError
from s2lib.io.store import S2Areas, load_s2area, store_s2area


class FakeFit:
    def __init__(self, mean: float) -> None:
        self.mean = mean

    def to_dict(self) -> dict:
        return {"model": "gauss", "mean": self.mean, "cov": np.eye(2), "chi2": np.float64(3.5)}


def make_s2(folder: Path, n: int = 50, with_ids: bool = True) -> S2Areas:
    rng = np.random.default_rng(0)
    areas = rng.normal(1.5, 0.7, n)
    areas[3] = np.nan
    ids = np.stack([np.arange(n) // 49, np.arange(n) % 49], axis=1) if with_ids else None
    return S2Areas(folder, areas, method="recoil_integration", params={"window_us": (10.1, 15.3), "ma": 9},
                   mean=1.4999999999999998, sigma=0.7, ci95=0.0123456789012345, fit_success=True,
                   fit_result=FakeFit(1.5), event_ids=ids)


# --------------------------------------------------------------------------- round trip
def test_round_trip_full_precision(tmp_path):
    s2 = make_s2(tmp_path / "src")
    out = tmp_path / "out" / "FieldScan_Gate0200_Anode2100"
    json_path = store_s2area(s2, out)
    assert json_path == out / "s2_results.json"
    meta = json.loads(json_path.read_text())
    for key in ("schema_version", "mean", "sigma", "ci95", "fit_success", "method", "params", "n_areas",
                "areas_sha256", "event_ids_sha256", "fit", "written_at"):
        assert key in meta
    assert list(meta) == sorted(meta)
    back = load_s2area(out)
    np.testing.assert_array_equal(back.areas, s2.areas)          # NaN preserved, bit-exact
    np.testing.assert_array_equal(back.event_ids, s2.event_ids)
    assert back.event_ids.dtype == np.int64
    assert back.mean == 1.4999999999999998 and back.ci95 == 0.0123456789012345
    assert back.method == "recoil_integration" and back.fit_success is True
    assert back.params["window_us"] == [10.1, 15.3]
    fit = back.fit_result if isinstance(back.fit_result, dict) else back.fit_result.to_dict()
    assert fit["mean"] == 1.5


def test_store_defaults_to_source_dir_and_loads_from_objects(tmp_path):
    s2 = make_s2(tmp_path / "set", with_ids=False)
    store_s2area(s2)
    assert (tmp_path / "set" / "s2_areas.npy").is_file()
    assert not (tmp_path / "set" / "s2_event_ids.npy").exists()
    assert load_s2area(SimpleNamespace(output_dir=tmp_path / "set")).event_ids is None
    assert load_s2area(SimpleNamespace(path=str(tmp_path / "set"))).areas.shape == (50,)
    run = SimpleNamespace(set_output_dir=lambda name: tmp_path / name)
    assert load_s2area(SimpleNamespace(name="set", path=tmp_path / "raw"), run).areas.shape == (50,)


def test_nan_and_inf_become_null(tmp_path):
    p = store.write_json_atomic(tmp_path / "x.json", {"a": float("nan"), "b": np.float32(np.inf),
                                                      "c": np.arange(3), "d": np.int64(7), "e": Path("/x")})
    assert json.loads(p.read_text()) == {"a": None, "b": None, "c": [0, 1, 2], "d": 7, "e": "/x"}
    s2 = make_s2(tmp_path / "s")
    s2.mean = float("nan")
    store_s2area(s2)
    assert load_s2area(tmp_path / "s").mean is None


# --------------------------------------------------------------------------- the lab's old formats
def test_lab_npy_only_folder(tmp_path):
    np.save(tmp_path / "s2_areas.npy", np.array([1.0, np.nan, 2.5]))
    s2 = load_s2area(tmp_path)
    assert s2.method == "loaded_from_npy"
    assert s2.mean is None and s2.sigma is None and s2.ci95 is None and s2.fit_success is False
    np.testing.assert_array_equal(s2.areas, [1.0, np.nan, 2.5])


def test_lab_old_results_json(tmp_path):
    np.save(tmp_path / "s2_areas.npy", np.array([1.0, 2.0, 3.0]))
    old = {"method": "s2_area_pipeline", "params": {"t_window": [10.0, 15.0], "n_pedestal": 2000, "dt": 2e-4},
           "mean": 1.65, "sigma": 0.7, "ci95": 0.021, "fit_success": True,
           "set_metadata": {"t_s1": -3.271, "drift_field": 142.9}}
    (tmp_path / "s2_results.json").write_text(json.dumps(old))
    s2 = load_s2area(SimpleNamespace(source_dir=tmp_path))
    assert (s2.method, s2.mean, s2.sigma, s2.ci95, s2.fit_success) == ("s2_area_pipeline", 1.65, 0.7, 0.021, True)
    assert s2.params["n_pedestal"] == 2000 and s2.params["set_metadata"]["t_s1"] == -3.271


def test_lab_old_xrays(tmp_path):
    np.save(tmp_path / "xray_areas.npy", np.array([2.0, 1.9]))
    old = {"set_id": "FieldScan_Gate050_Anode1950", "n_events": 1000, "n_accepted": 2, "n_rejected": 998,
           "rejection_reasons": {"excessive_s1": 0, "insufficient_separation": 900}, "params": {}}
    (tmp_path / "xray_results.json").write_text(json.dumps(old))
    x = store.load_xrays(tmp_path)
    assert x.results["n_events"] == 1000 and x.event_ids is None
    np.testing.assert_array_equal(x.areas, [2.0, 1.9])


# --------------------------------------------------------------------------- interrupted writes
def test_npy_replaced_after_json_is_rejected(tmp_path):
    store_s2area(make_s2(tmp_path))
    np.save(tmp_path / "s2_areas.npy", np.zeros(50))                # same length, other content
    with pytest.raises(DataError, match="s2_results.json"):
        load_s2area(tmp_path)


def test_truncated_npy_names_the_file(tmp_path):
    store_s2area(make_s2(tmp_path))
    data = (tmp_path / "s2_areas.npy").read_bytes()
    (tmp_path / "s2_areas.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="s2_areas.npy"):
        load_s2area(tmp_path)
    (tmp_path / "s2_results.json").unlink()                        # even as an "old format" folder
    with pytest.raises(DataError, match="s2_areas.npy"):
        load_s2area(tmp_path)


def test_killed_between_arrays_and_json_is_rejected(tmp_path, monkeypatch):
    store_s2area(make_s2(tmp_path))                                 # a complete previous result
    real = atomic.write_bytes_atomic
    calls = []

    def dying(path, data, **kw):
        calls.append(Path(path).name)
        if len(calls) == 3:                                         # marker, areas written; die on ids
            raise KeyboardInterrupt("killed")
        return real(path, data, **kw)

    for mod in (store, atomic):                                     # every writer goes through it
        monkeypatch.setattr(mod, "write_bytes_atomic", dying)
    bigger = make_s2(tmp_path, n=80)
    with pytest.raises(KeyboardInterrupt):
        store_s2area(bigger)
    monkeypatch.undo()
    assert calls[:2] == ["s2_results.json", "s2_areas.npy"]
    with pytest.raises(DataError, match="incomplete"):
        load_s2area(tmp_path)
    assert not list(tmp_path.glob(".*.tmp"))                       # the temp file was cleaned up


def test_leftover_temp_file_is_ignored(tmp_path):
    store_s2area(make_s2(tmp_path))
    (tmp_path / ".s2_areas.npy.abc123.tmp").write_bytes(b"\x93NUMPY partial")
    assert load_s2area(tmp_path).areas.shape == (50,)
    # a marker JSON with arrays from an older run is still refused
    store.write_json_atomic(tmp_path / "s2_results.json", {"schema_version": 1, "status": "writing"})
    with pytest.raises(DataError, match="incomplete"):
        load_s2area(tmp_path)


def test_json_without_npy_and_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no s2_areas.npy"):
        load_s2area(tmp_path)
    store.write_json_atomic(tmp_path / "s2_results.json", {"schema_version": 1, "status": "complete"})
    with pytest.raises(DataError, match="interrupted"):
        load_s2area(tmp_path)


def test_future_schema_refused(tmp_path):
    store_s2area(make_s2(tmp_path))
    meta = json.loads((tmp_path / "s2_results.json").read_text())
    meta["schema_version"] = store.SCHEMA_VERSION + 1
    (tmp_path / "s2_results.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="schema_version"):
        load_s2area(tmp_path)


# --------------------------------------------------------------------------- atomic writers
def test_failed_serialisation_leaves_previous_file(tmp_path):
    p = store.write_json_atomic(tmp_path / "r.json", {"ok": 1})
    with pytest.raises(TypeError):
        store.write_json_atomic(p, {"bad": object()})
    assert json.loads(p.read_text()) == {"ok": 1}
    s2 = make_s2(tmp_path / "set")
    store_s2area(s2)
    before = {f.name: f.read_bytes() for f in (tmp_path / "set").iterdir()}
    s2.params = {"bad": object()}
    with pytest.raises(TypeError):
        store_s2area(s2)
    assert {f.name: f.read_bytes() for f in (tmp_path / "set").iterdir()} == before
    assert not list(tmp_path.rglob("*.tmp"))


def test_csv_and_npy_writers(tmp_path):
    rows = [{"set_name": "A", "drift_field": 142.857142857142857, "s2_mean": None, "extra": 1},
            {"set_name": "B", "drift_field": np.float64(0.1), "s2_mean": float("nan")}]
    p = store.write_csv_atomic(tmp_path / "t.csv", rows, ["set_name", "drift_field", "s2_mean"])
    lines = p.read_text().splitlines()
    assert lines[0] == "set_name,drift_field,s2_mean"
    assert float(lines[1].split(",")[1]) == 142.857142857142857 and lines[1].endswith(",")
    assert lines[2] == "B,0.1,nan"
    q = store.write_npy_atomic(tmp_path / "a.npy", np.arange(5, dtype=np.int64))
    np.testing.assert_array_equal(np.load(q), np.arange(5))


def test_ensure_not_in_raw(tmp_path):
    raw = tmp_path / "raw_run"
    (raw / "FieldScan_Gate0050_Anode1950").mkdir(parents=True)
    with pytest.raises(DataError, match="raw data folder"):
        store.ensure_not_in_raw(raw / "FieldScan_Gate0050_Anode1950" / "s2_areas.npy", raw)
    with pytest.raises(DataError):
        store.ensure_not_in_raw(raw, raw)
    with pytest.raises(DataError):
        store_s2area(make_s2(raw / "FieldScan_Gate0050_Anode1950"), raw_root=raw)
    assert not (raw / "FieldScan_Gate0050_Anode1950" / "s2_areas.npy").exists()
    store.ensure_not_in_raw(tmp_path / "raw_run_processed" / "x.npy", raw)   # a sibling is fine
    store.ensure_not_in_raw(tmp_path / "out" / "x.npy", None)


def test_read_only_folder_is_readable(tmp_path):
    """Loading never writes (checked by a snapshot, which also holds when run as root)."""
    np.save(tmp_path / "s2_areas.npy", np.array([1.0, 2.0]))
    store_s2area(make_s2(tmp_path / "new"))
    mode = stat.S_IRUSR | stat.S_IXUSR
    for d in (tmp_path, tmp_path / "new"):
        for f in d.iterdir():
            if f.is_file():
                f.chmod(stat.S_IRUSR)
        d.chmod(mode)
    snapshot = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    try:
        assert load_s2area(tmp_path).method == "loaded_from_npy"
        assert load_s2area(tmp_path / "new").fit_success is True
        assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == snapshot
    finally:
        for d in (tmp_path / "new", tmp_path):
            d.chmod(stat.S_IRWXU)
            for f in d.iterdir():
                if f.is_file():
                    f.chmod(stat.S_IRUSR | stat.S_IWUSR)


# --------------------------------------------------------------------------- X-rays, timing
def test_xrays_round_trip_and_mismatch(tmp_path):
    areas = np.array([2.01, 1.87, 2.3])
    ids = np.array([[0, 5], [3, 48], [7, 1]])
    counts = {"accepted": 3, "no_signal": 90, "insufficient_separation": 5, "excessive_s1": 0,
              "excessive_s2": 1, "below_min_area": 1}
    p = store.store_xrays(tmp_path, areas, ids, {"n_events": 100, "rejection_reasons": counts,
                                                 "params": {"threshold_mV": 0.5}})
    meta = json.loads(p.read_text())
    assert meta["n_accepted"] == 3 and meta["schema_version"] == store.SCHEMA_VERSION
    x = store.load_xrays(tmp_path)
    np.testing.assert_array_equal(x.areas, areas)
    np.testing.assert_array_equal(x.event_ids, ids)
    assert x.results["rejection_reasons"]["no_signal"] == 90
    np.save(tmp_path / "xray_event_ids.npy", ids[::-1].copy())
    with pytest.raises(DataError, match="xray_event_ids.npy"):
        store.load_xrays(tmp_path)


def test_timing_round_trip(tmp_path):
    timing = {"t_s1": -3.2712345678901234, "t_s1_std": 0.05, "t_s2_start": np.float64(10.5), "t_s2_end": None,
              "n_used": np.int64(980)}
    store.store_timing(tmp_path, timing)
    back = store.load_timing(tmp_path)
    assert back["t_s1"] == -3.2712345678901234 and back["t_s2_start"] == 10.5 and back["t_s2_end"] is None
    assert back["n_used"] == 980
    with pytest.raises(DataError, match="timing.json"):
        store.load_timing(tmp_path / "nope")
