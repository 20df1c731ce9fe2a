"""Run configuration: the lab's YAML loads, every bad key or value fails with its key path."""
from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import pytest
import yaml

from s2lib.config.config import (
    SCHEMA, ConfigWarning, RunConfig, config_from_dict, config_reference_markdown, load_config
)
from s2lib.stats import fitting
from s2lib.sim import simulate
from s2lib.errors import ConfigError

# Modelled on the lab's configs/run_analysis_template.yaml (domain.md 5.3) and RUN22's values.
LAB_YAML = """\
run_id: RUN22_Th228
description: "Field scan, EL 2375 V/cm, Th-228 source"
data:
  raw_data_path: raw/RUN22_Th228
  output_base: processed
experiment:
  el_field: 2350
  target_isotope: "Th228"
  pressure: 2.0
  temperature: 297.0
  sampling_rate: 5.0e9
  el_gap: 0.8
  drift_gap: 1.4
  width_s2: 1.1
  W_value: 22.0
  E_gamma_xray: 12300.0
multi_isotope:
  enabled: false
  isotope_ranges: {Th228: [4.0, 4.7], Ra224: [4.7, 5.0]}
energy_mapping:
  generate: false
  files_per_chunk: 10
  format: "8b"
pipeline:
  preparation:
    max_frames_s1: 1000
    max_frames_s2: 1000
    threshold_s1: 1.0
    threshold_s2: 0.8
    s2_duration_cuts: [1, 35]
  integration:
    max_frames: null
    integration_config:
      n_pedestal: 100
      ma_window: 9
      bs_threshold: 0.03
      dt: 0.0002
    fit_config:
      bin_cuts: [0, 10]
      nbins: 100
      exclude_index: 1
      bg_threshold: 0.4
      bg_cutoff: 0.3
      n_sigma: 2.5
      upper_limit: 5.0
  xray_classification:
    max_frames: null
    bs_threshold: 0.5
    max_area_s1: 1e5
    max_area_s2: 1e5
    min_xray_area: 0.0
    min_s2_sep: 1.0
    min_s1_sep: 0.5
    n_pedestal: 200
    ma_window: 10
    dt: 0.0002
recombination_analysis:
  gs2_path: ../RUN21/xray_calibration_results.json
"""


def _write(folder: Path, text: str, name: str = "run.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture()
def cfg_dir(tmp_path: Path) -> Path:
    (tmp_path / "raw" / "RUN22_Th228").mkdir(parents=True)
    (tmp_path / "raw" / "plain").mkdir()
    return tmp_path


def _load_quiet(path: Path) -> RunConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return load_config(path)


def _minimal(**sections: dict) -> dict:
    data = {"run_id": "R1", "data": {"raw_data_path": "raw/plain"}}
    data.update(sections)
    return data


def _from(cfg_dir: Path, data: dict) -> RunConfig:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return config_from_dict(data, base_dir=cfg_dir)


def test_lab_yaml_loads(cfg_dir: Path) -> None:
    with pytest.warns(ConfigWarning) as record:
        cfg = load_config(_write(cfg_dir, LAB_YAML))
    messages = "\n".join(str(w.message) for w in record)
    for key in ("experiment.width_s2", "integration_config.dt", "xray_classification.dt", "exclude_index",
                "energy_mapping.generate", "energy_mapping.files_per_chunk", "gs2_path"):
        assert key in messages
    assert "multi_isotope" not in messages   # read with its meaning (s2lib.alpha), no longer ignored
    assert cfg.alpha.isotope_ranges == (("Th228", 4.0, 4.7), ("Ra224", 4.7, 5.0)) and not cfg.alpha.enabled
    assert cfg.alpha.map_format == "8b"
    assert cfg.run_id == "RUN22_Th228"
    assert cfg.raw_data_path == (cfg_dir / "raw" / "RUN22_Th228").resolve()
    assert cfg.output_dir == (cfg_dir / "processed" / "RUN22_Th228").resolve()
    exp = cfg.experiment
    assert (exp.target_isotope, exp.pressure, exp.temperature, exp.el_gap, exp.drift_gap) == ("Th228", 2.0, 297.0,
                                                                                               0.8, 1.4)
    assert exp.el_field == 2350.0 and exp.sampling_rate == 5e9
    assert exp.recoil_energy == pytest.approx(96.8, abs=0.05)
    assert cfg.preparation.s2_duration_cuts == (1.0, 35.0)
    assert cfg.integration.n_pedestal == 100 and cfg.integration.max_frames is None
    # The lab's file fixes bin_cuts but names no model: the default estimator ("auto") fits in that range.
    assert cfg.fitting.bg_threshold == 0.4 and cfg.fitting.bin_cuts == (0.0, 10.0) and cfg.fitting.model == "auto"
    assert cfg.xray.max_area_s1 == 1e5  # YAML 1.1 reads "1e5" as a string: accepted as a number
    assert cfg.xray.bin_cuts is None and cfg.xray.nbins is None   # not in the lab's file: ranges from the data
    assert cfg.calibration.gs2_path == (cfg_dir.parent / "RUN21" / "xray_calibration_results.json").resolve()
    assert cfg.source == (cfg_dir / "run.yaml").resolve()
    assert any("dt" in note for note in cfg.notes)


def test_simulator_style_yaml_loads(cfg_dir: Path) -> None:
    (cfg_dir / "sim" / "raw").mkdir(parents=True)
    cfg = load_config(_write(cfg_dir / "sim", """\
        run_id: SIM_tiny
        description: synthetic run
        data: {raw_data_path: raw, output_base: processed}
        experiment: {target_isotope: Th228, pressure: 2.0, temperature: 297.0, drift_gap: 1.4, el_gap: 0.8,
                     W_value: 22.0, E_gamma_xray: 12300.0}
        pipeline:
          preparation: {max_frames_s1: 200, max_frames_s2: 200}
          integration: {integration_config: {n_pedestal: 200}, fit_config: {bin_cuts: [0, 10], nbins: 100}}
          xray_classification: {bs_threshold: 0.5}
        """))
    assert cfg.raw_data_path == (cfg_dir / "sim" / "raw").resolve()
    assert cfg.integration.ma_window == 9  # defaults fill the rest
    assert cfg.notes == ()


def test_defaults_from_schema(cfg_dir: Path) -> None:
    cfg = _from(cfg_dir, _minimal())
    for opt in SCHEMA:
        if opt.default is None or opt.name in ("run_id", "raw_data_path", "output_base"):
            continue
        obj = cfg if opt.section == "run" else getattr(cfg, opt.section)
        assert getattr(obj, opt.name) == opt.default, opt.key
    assert cfg.output_base == (cfg_dir / "processed").resolve()
    assert cfg.jobs == 1 and cfg.sets is None


@pytest.mark.parametrize("isotope, expected", [("Ra224", 103.4), ("Ra-224", 103.4), ("Th-228", 96.8)])
def test_recoil_energy_follows_isotope(cfg_dir: Path, isotope: str, expected: float) -> None:
    cfg = _from(cfg_dir, _minimal(experiment={"target_isotope": isotope}))
    assert cfg.experiment.recoil_energy == pytest.approx(expected, abs=0.05)
    assert cfg.experiment.target_isotope == isotope.replace("-", "")
    assert "recoil_energy_keV" in cfg.experiment.recoil_energy_source


def test_recoil_energy_override(cfg_dir: Path) -> None:
    cfg = _from(cfg_dir, _minimal(experiment={"target_isotope": "Ra224", "recoil_energy": 100.0}))
    assert cfg.experiment.recoil_energy == 100.0
    assert "configuration" in cfg.experiment.recoil_energy_source


def test_deprecated_dt_warns_and_is_ignored(cfg_dir: Path) -> None:
    data = _minimal(pipeline={"integration": {"integration_config": {"dt": 0.2}}})
    with pytest.warns(ConfigWarning, match=r"integration_config\.dt.*header"):
        cfg = config_from_dict(data, base_dir=cfg_dir)
    assert cfg.to_dict() == _from(cfg_dir, _minimal()).to_dict()
    assert "dt" not in json.dumps(cfg.section("integration"))


@pytest.mark.parametrize("data, key", [
    ({"pipeline": {"integration": {"integration_config": {"ma_windw": 9}}}},
     "pipeline.integration.integration_config.ma_windw"),
    ({"experiment": {"presure": 2.0}}, "experiment.presure"),
    ({"pipelines": {}}, "pipelines"),
    ({"pipeline": {"xray": {}}}, "pipeline.xray"),
])
def test_unknown_key_reported_with_path(cfg_dir: Path, data: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _from(cfg_dir, _minimal(**data))
    assert err.value.key == key
    assert "unknown key" in str(err.value) and "allowed here" in str(err.value)


def test_unknown_key_lists_allowed_keys(cfg_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"allowed here: .*bs_threshold.*ma_window.*n_pedestal"):
        _from(cfg_dir, _minimal(pipeline={"integration": {"integration_config": {"ma_windw": 9}}}))


@pytest.mark.parametrize("data, key, expected", [
    ({"experiment": {"pressure": "two"}}, "experiment.pressure", "number"),
    ({"experiment": {"pressure": -2.0}}, "experiment.pressure", "> 0"),
    ({"experiment": {"temperature": 0}}, "experiment.temperature", "> 0"),
    ({"experiment": {"target_isotope": "Cs137"}}, "experiment.target_isotope", "Th228, Ra224"),
    ({"pipeline": {"integration": {"fit_config": {"nbins": 0}}}}, "pipeline.integration.fit_config.nbins", ">= 1"),
    ({"pipeline": {"integration": {"fit_config": {"nbins": 2.5}}}}, "pipeline.integration.fit_config.nbins",
     "integer"),
    ({"pipeline": {"integration": {"fit_config": {"nbins": True}}}}, "pipeline.integration.fit_config.nbins",
     "number"),
    ({"pipeline": {"integration": {"fit_config": {"bin_cuts": [10, 0]}}}},
     "pipeline.integration.fit_config.bin_cuts", "increasing"),
    ({"pipeline": {"integration": {"fit_config": {"bin_cuts": [0, 5, 10]}}}},
     "pipeline.integration.fit_config.bin_cuts", "[low, high]"),
    ({"pipeline": {"integration": {"fit_config": {"model": "lorentz"}}}},
     "pipeline.integration.fit_config.model", "gauss"),
    ({"pipeline": {"integration": {"integration_config": {"ma_window": 0}}}},
     "pipeline.integration.integration_config.ma_window", ">= 1"),
    ({"pipeline": {"preparation": {"s2_duration_cuts": [-1, 35]}}}, "pipeline.preparation.s2_duration_cuts",
     ">= 0"),
    ({"pipeline": {"integration": {"integration_config": {"bs_threshold": None}}}},
     "pipeline.integration.integration_config.bs_threshold", "null"),
    ({"pipeline": {"integration": 3}}, "pipeline.integration", "mapping"),
    ({"jobs": 0}, "jobs", ">= 1"),
    ({"sets": [1, 2]}, "sets", "list of names"),
    ({"run_id": "a/b"}, "run_id", "path separators"),
    ({"run_id": "..\\x"}, "run_id", "path separators"),
    ({"run_id": 22}, "run_id", "string"),
    ({"run_id": "RUN 22"}, "run_id", "plain name"),
    ({"pipeline": {"integration": {"fit_config": {"bin_cuts": [0, 10], "upper_limit": 12.0}}}},
     "pipeline.integration.fit_config.upper_limit", "inside bin_cuts"),
    ({"pipeline": {"fitting": {"model": "gauss_bg", "bin_cuts": [0, 10], "bg_cutoff": 0.0}}}, "pipeline.fitting.bg_cutoff",
     "inside bin_cuts"),
    ({"calibration": {"allow_el_mismatch": "yes"}}, "calibration.allow_el_mismatch", "true or false"),
    ({"data": {"raw_data_path": "missing"}}, "data.raw_data_path", "does not exist"),
    ({"data": {"raw_data_path": "raw/plain", "output_base": "raw/plain"}}, "data.output_base", "inside the raw folder"),
    ({"calibration": {"gs2": 0.00359}}, "calibration.d_gs2", "uncertainty"),
    ({"calibration": {"gs2": 0.00359, "d_gs2": 1e-4, "gs2_path": "x.json"}}, "calibration.gs2", "not both"),
    ({"calibration": {"gs2": -1.0, "d_gs2": 1e-4}}, "calibration.gs2", "> 0"),
])
def test_bad_values_name_the_key(cfg_dir: Path, data: dict, key: str, expected: str) -> None:
    base = _minimal()
    base.update(data)
    with pytest.raises(ConfigError) as err:
        _from(cfg_dir, base)
    assert err.value.key == key
    assert expected in str(err.value)


def test_missing_required_keys(cfg_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _from(cfg_dir, {"data": {"raw_data_path": "raw/plain"}})
    assert err.value.key == "run_id"
    with pytest.raises(ConfigError) as err:
        _from(cfg_dir, {"run_id": "R"})
    assert err.value.key == "data.raw_data_path"


def test_error_names_the_file(cfg_dir: Path) -> None:
    path = _write(cfg_dir, "run_id: R\ndata: {raw_data_path: raw/plain}\nexperiment: {pressure: -1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.source == path.resolve()
    assert str(path.name) in str(err.value) and "experiment.pressure" in str(err.value)


def test_invalid_and_duplicate_yaml(cfg_dir: Path) -> None:
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_write(cfg_dir, "run_id: [unclosed\n"))
    with pytest.raises(ConfigError, match="duplicate key 'pressure'"):
        load_config(_write(cfg_dir, "run_id: R\nexperiment:\n  pressure: 2\n  pressure: 3\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(cfg_dir / "nope.yaml")


def test_relative_paths_resolve_against_config_folder(cfg_dir: Path, tmp_path_factory: pytest.TempPathFactory,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sub = cfg_dir / "configs"
    sub.mkdir()
    path = _write(sub, "run_id: R\ndata: {raw_data_path: ../raw/plain, output_base: ../out}\n"
                       "calibration: {gs2_path: ../RUN21_calibration.json}\n")
    (cfg_dir / "RUN21_calibration.json").write_text("{}")
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    cfg = load_config(path)
    assert cfg.raw_data_path == (cfg_dir / "raw" / "plain").resolve()
    assert cfg.output_dir == (cfg_dir / "out" / "R").resolve()
    assert cfg.calibration.gs2_path == (cfg_dir / "RUN21_calibration.json").resolve()


def test_env_and_home_expansion(cfg_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S2_DATA", str(cfg_dir / "raw"))
    cfg = _from(cfg_dir, {"run_id": "R", "data": {"raw_data_path": "$S2_DATA/plain"}})
    assert cfg.raw_data_path == (cfg_dir / "raw" / "plain").resolve()


def test_fit_options_in_either_place(cfg_dir: Path) -> None:
    ours = _from(cfg_dir, _minimal(pipeline={"fitting": {"nbins": 50, "model": "crystalball"}}))
    lab = _from(cfg_dir, _minimal(pipeline={"integration": {"fit_config": {"nbins": 50, "model": "crystalball"}}}))
    assert ours == lab and ours.fitting.nbins == 50
    with pytest.raises(ConfigError, match="conflicts with pipeline.integration.fit_config.nbins"):
        _from(cfg_dir, _minimal(pipeline={"integration": {"fit_config": {"nbins": 50}}, "fitting": {"nbins": 60}}))


def test_gs2_given_directly(cfg_dir: Path) -> None:
    cfg = _from(cfg_dir, _minimal(calibration={"gs2": 0.00359, "d_gs2": 0.00014}))
    assert (cfg.calibration.gs2, cfg.calibration.d_gs2) == (0.00359, 0.00014)
    assert cfg.calibration.provenance and "configuration" in cfg.calibration.provenance
    lab = _from(cfg_dir, _minimal(recombination_analysis={"gs2": 0.00359, "d_gs2": 0.00014, "provenance": "RUN21"}))
    assert lab.calibration.provenance == "RUN21"


def test_to_dict_round_trip_and_sections(cfg_dir: Path) -> None:
    cfg = _load_quiet(_write(cfg_dir, LAB_YAML))
    data = cfg.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["pipeline"]["integration"]["integration_config"]["n_pedestal"] == 100
    assert data["experiment"]["recoil_energy"] == pytest.approx(96.8, abs=0.05)
    again = _from(Path("/"), json.loads(json.dumps(data)))
    assert again == cfg
    assert yaml.safe_load(yaml.safe_dump(data)) == data
    tracked = cfg.to_dict(tracked_only=True)
    assert "jobs" not in tracked and "description" not in tracked and "raw_data_path" in tracked["data"]
    assert cfg.section("xray_classification") == cfg.section("xray")
    assert cfg.section("xray")["bin_cuts"] is None     # data-driven X-ray range (not in the lab's file)
    assert cfg.section("fitting")["bg_cutoff"] == 0.3
    assert cfg.section("run")["run_id"] == "RUN22_Th228"
    with pytest.raises(KeyError):
        cfg.section("plotting")


def test_config_is_frozen(cfg_dir: Path) -> None:
    cfg = _from(cfg_dir, _minimal())
    with pytest.raises(AttributeError):
        cfg.run_id = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        cfg.experiment.pressure = 3.0  # type: ignore[misc]


def test_reference_markdown_covers_every_key() -> None:
    text = config_reference_markdown()
    for opt in SCHEMA:
        assert f"`{opt.key}`" in text
    assert "| `experiment.pressure` | float | 2 | bar |" in text
    assert "integration_config.dt" in text and "multi_isotope" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(SCHEMA) and all(row.count("|") == 6 for row in rows)


def test_simulator_run_config_loads(cfg_dir: Path) -> None:
    profile = simulate.resolve_profile("tiny")
    data = simulate.run_config_dict(profile, 1, simulate.set_models(profile))
    (cfg_dir / "raw" / "FieldScan_Gate0050_Anode1950").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated or unknown key in what the simulator writes
        cfg = config_from_dict(yaml.safe_load(yaml.safe_dump(data)), base_dir=cfg_dir)
    assert cfg.raw_data_path == (cfg_dir / "raw").resolve() and cfg.notes == ()


def test_fit_options_agree_with_fitting_module(cfg_dir: Path) -> None:
    """The S2/X-ray fit sections feed s2lib.stats.fitting.FitConfig: same defaults, same validity rules."""
    cfg = _from(cfg_dir, _minimal())
    ours = cfg.section("fitting")
    theirs = fitting.FitConfig().to_dict()
    for name, value in ours.items():
        assert name in theirs, name
        assert value == theirs[name], name
    fitting.FitConfig(**{k: getattr(cfg.xray, k) for k in ("bin_cuts", "nbins", "model")})
    for fit in ({"bin_cuts": [0, 5], "upper_limit": 5.0}, {"bin_cuts": [0, 5], "upper_limit": 5.5},
                {"model": "gauss_bg", "bg_cutoff": 10.0}, {"model": "gauss_bg", "bg_cutoff": 10.5},
                {"model": "crystalball", "bg_cutoff": 20.0}):
        try:
            fitting.FitConfig.from_mapping(fit)
            accepted = True
        except ConfigError:
            accepted = False
        try:
            _from(cfg_dir, _minimal(pipeline={"fitting": fit}))
            assert accepted, fit
        except ConfigError:
            assert not accepted, fit
