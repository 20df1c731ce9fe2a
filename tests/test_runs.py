"""Set-name parsing, file discovery and the run model, on small fake run folders."""
from __future__ import annotations

import json
import random
import stat
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s2lib.physics import physics
from s2lib.config.config import ConfigWarning, RunConfig, config_from_dict
from s2lib.errors import ConfigError, DataError
from s2lib.config.runs import (
    DataWarning, Run, SetName, build_run, channel_of, discover_sets, find_set_files, format_set_name, natural_key,
    parse_set_name
)


# --------------------------------------------------------------------------------------------- helpers
def make_set(root: Path, name: str, files: list[str] | int = 3) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    names = files if isinstance(files, list) else [f"RUN1_Gate_P1_{i}Wfm.wfm" for i in range(files)]
    for file_name in random.Random(name).sample(names, len(names)):  # creation order scrambled
        (folder / file_name).write_bytes(b"WFM")
    return folder


def make_config(tmp_path: Path, raw: Path, **extra: object) -> RunConfig:
    data: dict = {"run_id": "RUNX", "data": {"raw_data_path": str(raw), "output_base": str(tmp_path / "out")}}
    data.update(extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return config_from_dict(data, base_dir=tmp_path)


def tree_snapshot(root: Path) -> list[tuple[str, int, float]]:
    return sorted((str(p.relative_to(root)), p.stat().st_mode, p.stat().st_mtime) for p in root.rglob("*"))


# --------------------------------------------------------------------------------------------- set names
@pytest.mark.parametrize("name, gate, anode, rate", [
    ("FieldScan_Gate050_Anode1950", 50, 1950, None),
    ("FieldScan_Gate0050_Anode1950", 50, 1950, None),
    ("FieldScan_Gate1200_Anode3100", 1200, 3100, None),
    ("FieldScan_Th228_Gate0075_Anode1975", 75, 1975, None),
    ("FieldScan_5GSsec_Anode2000V_Gate100V", 100, 2000, 5e9),
    ("FieldScan_1GSsec_Gate200_EL2100", 200, 2100, 1e9),
    ("FieldScan_Gate300_EL2200V", 300, 2200, None),
    ("FieldScan_Gate0_Anode1900", 0, 1900, None),
])
def test_parse_set_name_variants(name: str, gate: int, anode: int, rate: float | None) -> None:
    assert parse_set_name(name) == SetName(name, gate, anode, rate)


@pytest.mark.parametrize("name", [
    "Ch4_SCA_500", "Ch4_noSCA", "Ch4_FieldScan_Gate100_Anode2000", "plots", "processed_data", "metadata",
    "Scan_Gate100_Anode2000", "FieldScan_Gate100", "FieldScan_Anode2000", "FieldScan_Gate100_Gate200_Anode2000",
    "FieldScan_GateX_Anode2000", ".FieldScan_Gate100_Anode2000",
])
def test_parse_set_name_rejects(name: str) -> None:
    assert parse_set_name(name) is None


def _build_name(gate: int, anode: int, width: int, order: bool, volt_suffix: bool, rate: int | None,
                tag: str | None, el: bool) -> str:
    suffix = "V" if volt_suffix else ""
    parts = [f"Gate{gate:0{width}d}{suffix}", f"{'EL' if el else 'Anode'}{anode:0{width}d}{suffix}"]
    if order:
        parts.reverse()
    if rate is not None:
        parts.insert(0, f"{rate}GSsec")
    if tag:
        parts.insert(0, tag)
    return "_".join(["FieldScan", *parts])


@settings(max_examples=300, deadline=None)
@given(gate=st.integers(0, 9999), anode=st.integers(0, 9999), width=st.integers(0, 5), order=st.booleans(),
       volt_suffix=st.booleans(), rate=st.none() | st.integers(1, 20), tag=st.sampled_from([None, "Th228", "Ra224"]),
       el=st.booleans())
def test_parse_set_name_round_trip(gate: int, anode: int, width: int, order: bool, volt_suffix: bool,
                                   rate: int | None, tag: str | None, el: bool) -> None:
    name = _build_name(gate, anode, width, order, volt_suffix, rate, tag, el)
    assert parse_set_name(name) == SetName(name, gate, anode, None if rate is None else rate * 1e9)


@given(gate=st.integers(0, 9999), anode=st.integers(0, 9999))
def test_format_set_name_round_trip(gate: int, anode: int) -> None:
    parsed = parse_set_name(format_set_name(gate, anode))
    assert parsed is not None and (parsed.gate_V, parsed.anode_V) == (gate, anode)


# --------------------------------------------------------------------------------------------- files
RUN18 = [f"RUN18_20251104_Gate100_Anode2000_P2_{i}Wfm_Ch{c}.wfm" for i in range(1, 13) for c in (1, 4)]
RUN22 = [f"RUN22_20260112_Gate0800_Anode2700_P7_{i}Wfm.wfm" for i in (1, 2, 9, 10, 11, 100, 999, 1000)]
SIM = [f"SIM_20260101_Gate0050_Anode1950_P{i}_48Wfm.wfm" for i in range(1, 13)]
SIM_SHORT_LAST = ["SIM_20260101_Gate0050_Anode1950_P1_48Wfm.wfm", "SIM_20260101_Gate0050_Anode1950_P2_20Wfm.wfm"]
OVER_MIDNIGHT = ["RUN22_20260112_Gate0800_Anode2700_P7_999Wfm.wfm", "RUN22_20260113_Gate0800_Anode2700_P7_1000Wfm.wfm",
                 "RUN22_20260113_Gate0800_Anode2700_P7_1001Wfm.wfm"]
RUN30 = [f"RUN30_20260301_Gate0100_Anode2000__Batch{i:03d}__CH{c}.wfm" for i in (1, 2, 7, 10, 99, 100, 101, 1000)
         for c in (3, 4)]


@pytest.mark.parametrize("names, pmt", [(RUN18, "_Ch1.wfm"), (RUN22, ".wfm"), (RUN30, "__CH3.wfm"), (SIM, ".wfm"),
                                        (SIM_SHORT_LAST, ".wfm"), (OVER_MIDNIGHT, ".wfm")])
def test_files_sorted_by_sequence_pmt_only(tmp_path: Path, names: list[str], pmt: str) -> None:
    folder = make_set(tmp_path, "FieldScan_Gate100_Anode2000", names)
    files, issues = find_set_files(folder)
    expected = [n for n in names if n.endswith(pmt)]  # the lists above are in sequence order
    assert [f.name for f in files] == expected
    assert issues == ()


def test_lexicographic_order_would_be_wrong() -> None:
    for names in (RUN18, RUN22, RUN30, SIM):
        assert sorted(names) != names


def test_file_helpers() -> None:
    assert channel_of(RUN18[0]) == 1 and channel_of(RUN18[1]) == 4
    assert channel_of(RUN30[0]) == 3 and channel_of(RUN22[0]) is None
    names = ["f10.wfm", "f2.wfm", "F1.wfm", "f02.wfm"]
    assert sorted(names, key=natural_key) == ["F1.wfm", "f02.wfm", "f2.wfm", "f10.wfm"]


def test_unknown_names_fall_back_to_natural_sort(tmp_path: Path) -> None:
    names = ["acq-10.wfm", "acq-9.wfm", "acq-1.wfm", "notes.txt", "._acq-2.wfm", "ACQ-2.WFM"]
    folder = make_set(tmp_path, "FieldScan_Gate100_Anode2000", names)
    files, _ = find_set_files(folder)
    assert [f.name for f in files] == ["acq-1.wfm", "ACQ-2.WFM", "acq-9.wfm", "acq-10.wfm"]


def test_channel_pattern_and_ambiguous_channels(tmp_path: Path) -> None:
    names = [f"R_{i}Wfm_Ch{c}.wfm" for i in range(3) for c in (1, 3, 4)]
    folder = make_set(tmp_path, "FieldScan_Gate100_Anode2000", names)
    files, issues = find_set_files(folder)
    assert files == () and "channel_pattern" in issues[0]
    files, issues = find_set_files(folder, "*_ch3.wfm")
    assert [f.name for f in files] == [f"R_{i}Wfm_Ch3.wfm" for i in range(3)] and issues == ()
    only_si = make_set(tmp_path, "FieldScan_Gate200_Anode2000", ["a_Ch4.wfm"])
    assert find_set_files(only_si) == ((), ("only silicon-channel (Ch4) files",))


# --------------------------------------------------------------------------------------------- discovery
@pytest.fixture()
def raw(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    for name in ("FieldScan_Gate1200_Anode3100", "FieldScan_Gate050_Anode1950", "FieldScan_Gate0100_Anode2000",
                 "FieldScan_Gate0200_Anode2100", "FieldScan_Gate200_Anode3000", "FieldScan_5GSsec_Anode2375V_Gate600V"):
        make_set(root, name, 2)
    make_set(root, "FieldScan_Gate0400_Anode2300", [])
    make_set(root, "Ch4_SCA_500", 2)
    (root / "plots").mkdir()
    (root / "hv_log_20260301.csv").write_text("t,V\n")
    return root


ORDER = ["FieldScan_Gate050_Anode1950", "FieldScan_Gate0100_Anode2000", "FieldScan_Gate0200_Anode2100",
         "FieldScan_Gate200_Anode3000", "FieldScan_Gate0400_Anode2300", "FieldScan_5GSsec_Anode2375V_Gate600V",
         "FieldScan_Gate1200_Anode3100"]


def test_discover_orders_by_field_not_name(raw: Path) -> None:
    found = discover_sets(raw)
    assert [d.set_name.name for d in found] == ORDER
    assert sorted(ORDER) != ORDER  # a lexicographic sort would be wrong here


def test_no_sets_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "Ch4_noSCA").mkdir()
    (tmp_path / "plots").mkdir()
    with pytest.raises(DataError, match=r"no FieldScan_\* set folders; found: Ch4_noSCA/, plots/"):
        discover_sets(tmp_path)


def test_same_voltages_warn(raw: Path) -> None:
    make_set(raw, "FieldScan_Th228_Gate0100_Anode2000", 1)
    with pytest.warns(DataWarning, match="same voltages"):
        found = discover_sets(raw)
    assert [d.path.name for d in found][1:3] == ["FieldScan_Gate0100_Anode2000", "FieldScan_Th228_Gate0100_Anode2000"]


def test_unparseable_fieldscan_folder_warns(raw: Path) -> None:
    (raw / "FieldScan_GateXYZ").mkdir()
    with pytest.warns(DataWarning, match="FieldScan_GateXYZ"):
        assert len(discover_sets(raw)) == len(ORDER)


# --------------------------------------------------------------------------------------------- run model
def test_build_run_fields_and_order(tmp_path: Path, raw: Path) -> None:
    run = build_run(make_config(tmp_path, raw))
    assert run.set_names == tuple(ORDER)
    density = physics.gas_density_cm3(2.0, 297.0)
    assert run.gas_density_cm3 == pytest.approx(4.877e19, rel=1e-4)
    s = run.get_set("FieldScan_Gate0200_Anode2100")
    assert (s.gate_V, s.anode_V, s.n_files, s.sampling_rate_Hz) == (200, 2100, 2, None)
    assert s.drift_field_V_cm == pytest.approx(142.857, abs=1e-3)
    assert s.el_field_V_cm == pytest.approx(2375.0)
    assert s.reduced_drift_field_Td == pytest.approx(0.293, abs=5e-4)
    assert s.reduced_el_field_Td == pytest.approx(4.87, abs=5e-3)
    assert s.drift_velocity_mm_us == pytest.approx(1.06, abs=5e-3)
    assert s.drift_time_us == pytest.approx(13.2, abs=0.05)
    assert s.reduced_drift_field_Td == pytest.approx(s.drift_field_V_cm / density * 1e17)
    assert run.get_set("FieldScan_5GSsec_Anode2375V_Gate600V").sampling_rate_Hz == 5e9
    assert [f.name for f in s.files] == ["RUN1_Gate_P1_0Wfm.wfm", "RUN1_Gate_P1_1Wfm.wfm"]
    assert all(f.parent == raw / s.name for f in s.files)


def test_build_run_uses_config_geometry(tmp_path: Path, raw: Path) -> None:
    run = build_run(make_config(tmp_path, raw, experiment={"drift_gap": 2.0, "el_gap": 0.5, "pressure": 1.0,
                                                            "temperature": 300.0}))
    s = run.get_set("FieldScan_Gate0200_Anode2100")
    assert s.drift_field_V_cm == pytest.approx(100.0) and s.el_field_V_cm == pytest.approx(3800.0)
    assert run.gas_density_cm3 == pytest.approx(physics.gas_density_cm3(1.0, 300.0))
    assert s.drift_time_us == pytest.approx(20.0 / s.drift_velocity_mm_us)


def test_run_paths_and_lookup(tmp_path: Path, raw: Path) -> None:
    run = build_run(make_config(tmp_path, raw))
    assert run.run_id == "RUNX" and run.output_dir == (tmp_path / "out" / "RUNX").resolve()
    assert run.set_output_dir(ORDER[0]) == run.output_dir / ORDER[0]
    with pytest.raises(DataError, match="no set 'FieldScan_Gate9_Anode9'"):
        run.set_output_dir("FieldScan_Gate9_Anode9")
    with pytest.raises(DataError):
        run.get_set("../etc")


def test_el_fields_and_with_sets(tmp_path: Path, raw: Path) -> None:
    run = build_run(make_config(tmp_path, raw))
    expected = sorted({round((a - g) / 0.8, 6) for g, a in [(50, 1950), (100, 2000), (200, 2100), (200, 3000),
                                                            (400, 2300), (600, 2375), (1200, 3100)]})
    assert run.el_fields() == tuple(expected)
    assert {s.name for s in run.sets_at_el_field(2375.0)} == {"FieldScan_Gate050_Anode1950",
                                                            "FieldScan_Gate0100_Anode2000",
                                                            "FieldScan_Gate0200_Anode2100",
                                                            "FieldScan_Gate0400_Anode2300",
                                                            "FieldScan_Gate1200_Anode3100"}
    sub = run.with_sets([ORDER[3], ORDER[0]])
    assert isinstance(sub, Run) and sub.set_names == (ORDER[0], ORDER[3]) and run.set_names == tuple(ORDER)
    with pytest.raises(DataError):
        run.with_sets(["nope"])


def test_sets_filter_in_config(tmp_path: Path, raw: Path) -> None:
    run = build_run(make_config(tmp_path, raw, sets=[ORDER[2], ORDER[1]]))
    assert run.set_names == (ORDER[1], ORDER[2])
    with pytest.raises(ConfigError) as err:
        build_run(make_config(tmp_path, raw, sets=["FieldScan_Gate7_Anode7"]))
    assert err.value.key == "sets"


def test_empty_and_zero_field_sets_flagged(tmp_path: Path, raw: Path) -> None:
    make_set(raw, "FieldScan_Gate0000_Anode1900", 1)
    run = build_run(make_config(tmp_path, raw))
    empty = run.get_set("FieldScan_Gate0400_Anode2300")
    assert empty.n_files == 0 and not empty.ok and "no .wfm files" in empty.issues
    zero = run.get_set("FieldScan_Gate0000_Anode1900")
    assert run.sets[0] is zero and not zero.ok and zero.drift_velocity_mm_us != zero.drift_velocity_mm_us
    assert all(s.ok for s in run.sets if s not in (empty, zero))
    info = run.run_info()
    json.dumps(info, allow_nan=False)
    assert info["sets"][0]["drift_velocity_mm_us"] is None


def test_run_info(tmp_path: Path, raw: Path) -> None:
    run = build_run(make_config(tmp_path, raw, experiment={"target_isotope": "Ra224", "el_field": 2350}))
    info = json.loads(json.dumps(run.run_info(), allow_nan=False))
    assert info["run_id"] == "RUNX" and info["n_sets"] == len(ORDER) and info["n_files"] == 2 * (len(ORDER) - 1)
    assert [s["name"] for s in info["sets"]] == ORDER
    consts = info["constants"]
    assert consts["gas_density"]["value"] == pytest.approx(4.877e19, rel=1e-4)
    assert consts["gas_density"]["unit"] == "cm^-3"
    assert consts["recoil_energy"]["value"] == pytest.approx(103.4, abs=0.05)
    assert consts["recoil_energy"]["unit"] == "keV" and "Ra224" in consts["recoil_energy"]["source"]
    assert consts["N_xray_expected"]["value"] == pytest.approx(559.1, abs=0.05)
    assert consts["N_recoil_expected"]["value"] == pytest.approx(4699, abs=1)
    assert consts["pressure"] == {"value": 2.0, "unit": "bar", "source": "configuration"}
    s = info["sets"][ORDER.index("FieldScan_Gate0100_Anode2000")]
    assert (s["gate_V"], s["anode_V"], s["n_files"], s["issues"]) == (100, 2000, 2, [])
    assert s["drift_field_V_cm"] == pytest.approx(71.43, abs=0.01)
    assert s["drift_time_us"] == pytest.approx(15.1, abs=0.05)
    assert info["el_field_label_V_cm"] == 2350.0 and info["target_isotope"] == "Ra224"
    assert info["sets"][ORDER.index("FieldScan_Gate0400_Anode2300")]["n_files"] == 0


def test_raw_folder_missing_at_build(tmp_path: Path, raw: Path) -> None:
    config = make_config(tmp_path, raw)
    moved = raw.rename(tmp_path / "moved")
    with pytest.raises(ConfigError) as err:
        build_run(config)
    assert err.value.key == "data.raw_data_path"
    moved.rename(raw)


def test_read_only_raw_folder(tmp_path: Path, raw: Path) -> None:
    paths = [raw, *raw.rglob("*")]
    for p in sorted(paths, key=lambda p: -len(p.parts)):
        p.chmod(stat.S_IRUSR | stat.S_IXUSR if p.is_dir() else stat.S_IRUSR)
    try:
        before = tree_snapshot(raw)
        run = build_run(make_config(tmp_path, raw))
        assert run.set_names == tuple(ORDER)
        json.dumps(run.run_info())
        assert tree_snapshot(raw) == before  # nothing created, modified or re-permissioned
        # the folder keeps the read-only mode the test gave it (as root, os.access would say writable anyway)
        assert stat.S_IMODE(raw.stat().st_mode) == stat.S_IRUSR | stat.S_IXUSR
    finally:
        for p in paths:
            p.chmod(stat.S_IRWXU)


def test_output_inside_raw_refused(tmp_path: Path, raw: Path) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict({"run_id": "R", "data": {"raw_data_path": "raw", "output_base": "raw/processed"}},
                         base_dir=tmp_path)
    assert err.value.key == "data.output_base"


def test_run_is_frozen(tmp_path: Path, raw: Path) -> None:
    run = build_run(make_config(tmp_path, raw))
    with pytest.raises(AttributeError):
        run.sets = ()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        run.sets[0].gate_V = 5  # type: ignore[misc]
    assert isinstance(run.sets, tuple) and isinstance(run.sets[0].files, tuple)


# ---------------------------------------------------------------------------------------------- alpha monitors
def test_single_isotope_monitor_folders_kept_apart(tmp_path: Path) -> None:
    from s2lib.config.runs import discover_monitor_sets

    make_set(tmp_path, "FieldScan_Gate0800_Anode2700", ["RUN22_20260112_Gate0800_Anode2700_P7_1000Wfm.wfm"])
    for name, files in (("Ch4_SCA_4-4p8", ["a_10.wfm", "a_2.wfm"]), ("Ch4_noSCA", ["b_1.WFM"]),
                        ("ch4_SCA_5p1-4p9", []), ("Ch4_notes.txt", None)):
        if files is None:
            (tmp_path / name).write_text("x")
            continue
        make_set(tmp_path, name, files)
    mons = discover_monitor_sets(tmp_path)
    assert [m.name for m in mons] == ["Ch4_noSCA", "Ch4_SCA_4-4p8", "ch4_SCA_5p1-4p9"]
    by = {m.name: m for m in mons}
    assert by["Ch4_SCA_4-4p8"].sca_window == (4.0, 4.8) and not by["Ch4_SCA_4-4p8"].full_spectrum
    assert [f.name for f in by["Ch4_SCA_4-4p8"].files] == ["a_2.wfm", "a_10.wfm"]
    assert by["Ch4_noSCA"].full_spectrum and by["Ch4_noSCA"].sca_window is None
    assert by["ch4_SCA_5p1-4p9"].sca_window is None and by["ch4_SCA_5p1-4p9"].files == ()
    # PMT discovery is unchanged: the monitor folders are not sets and their files are not PMT files
    sets = discover_sets(tmp_path)
    assert [d.path.name for d in sets] == ["FieldScan_Gate0800_Anode2700"] and len(sets[0].files) == 1


def test_multi_isotope_set_gives_pmt_files_only(tmp_path: Path) -> None:
    old = make_set(tmp_path, "FieldScan_Gate0100_Anode2000",
                   [f"RUN18_20251104_Gate100_Anode2000_P2_{i}Wfm_{c}.wfm" for i in (2, 10, 1) for c in ("Ch1", "Ch4")])
    new = make_set(tmp_path, "FieldScan_Gate0200_Anode2100",
                   [f"RUN31_20270101_Gate0200_Anode2100__Batch{i:03d}__{c}.wfm" for i in (1, 2) for c in ("CH3", "CH4")])
    files, issues = find_set_files(old)
    assert issues == () and [f.name.split("_P2_")[1] for f in files] == ["1Wfm_Ch1.wfm", "2Wfm_Ch1.wfm",
                                                                         "10Wfm_Ch1.wfm"]
    files, issues = find_set_files(new)
    assert issues == () and [f.name[-17:] for f in files] == ["Batch001__CH3.wfm", "Batch002__CH3.wfm"]
