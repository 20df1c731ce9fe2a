"""Run configuration: YAML loading with validation into frozen dataclasses.

The option table (``SCHEMA``, in ``s2lib.config.config_schema``, re-exported here) is the single source of truth: every
option has its YAML key path(s), type, default, unit and help text (strax-style declarative options). The
section dataclasses take their defaults from it, the loader validates against it and
``config_reference_markdown()`` renders it for the book's appendix.

The YAML layout is the lab's (``configs/run_analysis_template.yaml``, domain.md 5.3)::

    run_id: RUN22_Th228
    data: {raw_data_path: raw, output_base: processed}
    experiment: {target_isotope: Th228, pressure: 2.0, temperature: 297.0, drift_gap: 1.4, el_gap: 0.8}
    pipeline:
      preparation: {max_frames_s1: 1000, threshold_s1: 1.0, s2_duration_cuts: [1, 35]}
      integration:
        integration_config: {n_pedestal: 200, ma_window: 9, bs_threshold: 0.03}
        fit_config: {bin_cuts: [0, 10], nbins: 100, model: gauss}
      xray_classification: {bs_threshold: 0.5, min_s2_sep: 1.0, bin_cuts: [0.6, 20]}
    recombination_analysis: {gs2_path: ../RUN21/xray_calibration_results.json}

Alternative locations are accepted: ``pipeline.fitting.*`` for the S2 fit options, ``calibration.*`` for
``recombination_analysis.*``, ``pipeline.xray_classification.fit_config.*`` for the X-ray fit options.
Keys the lab's files carry but that no longer act (``dt``, ``width_s2``, ``exclude_index``,
``energy_mapping.generate``/``files_per_chunk``/``pattern``) are accepted with a ``ConfigWarning``; any other unknown
key is a ``ConfigError``. The lab's ``multi_isotope.*`` and ``energy_mapping.*`` keys form the ``alpha`` section.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from s2lib.physics import physics
from .config_schema import _REQUIRED, DEPRECATED_KEYS, IGNORED_SECTIONS, SCHEMA, Option, config_reference_markdown
from s2lib.errors import ConfigError
from ._config_values import _check_fit, _convert, _jsonable

__all__ = [
    "Option", "SCHEMA", "DEPRECATED_KEYS", "IGNORED_SECTIONS", "ConfigWarning",
    "ExperimentConfig", "PreparationConfig", "IntegrationConfig", "FittingConfig", "XrayConfig",
    "CalibrationConfig", "AlphaConfig", "ComputeConfig", "RunConfig", "load_config", "config_from_dict", "config_reference_markdown",
]


class ConfigWarning(UserWarning):
    """A configuration key that is accepted but deprecated or ignored (the message says why)."""


_BY_PATH = {p: opt for opt in SCHEMA for p in opt.paths}
_LEAVES = set(_BY_PATH) | set(DEPRECATED_KEYS) | set(IGNORED_SECTIONS)
_PREFIXES = {".".join(k.split(".")[:i]) for k in _LEAVES for i in range(1, k.count(".") + 1)}


def _d(section: str, name: str) -> Any:
    opt = next(o for o in SCHEMA if o.section == section and o.name == name)
    return field(default=opt.default)


@dataclass(frozen=True)
class ExperimentConfig:
    """Detector and physics constants (``experiment.*``); units in ``SCHEMA``. ``recoil_energy`` is resolved."""

    target_isotope: str = _d("experiment", "target_isotope")
    el_field: float | None = _d("experiment", "el_field")
    pressure: float = _d("experiment", "pressure")
    temperature: float = _d("experiment", "temperature")
    sampling_rate: float | None = _d("experiment", "sampling_rate")
    el_gap: float = _d("experiment", "el_gap")
    drift_gap: float = _d("experiment", "drift_gap")
    W_value: float = _d("experiment", "W_value")
    E_gamma_xray: float = _d("experiment", "E_gamma_xray")
    recoil_energy: float = physics.recoil_energy_keV("Th228")
    recoil_energy_source: str = field(default="Q·4/A of Th228 (physics.recoil_energy_keV)", compare=False)


@dataclass(frozen=True)
class PreparationConfig:
    """S1/S2 timing estimation (``pipeline.preparation.*``)."""

    max_frames_s1: int = _d("preparation", "max_frames_s1")
    max_frames_s2: int = _d("preparation", "max_frames_s2")
    threshold_s1: float = _d("preparation", "threshold_s1")
    threshold_s2: float = _d("preparation", "threshold_s2")
    s2_duration_cuts: tuple[float, float] = _d("preparation", "s2_duration_cuts")


@dataclass(frozen=True)
class IntegrationConfig:
    """Recoil S2 integration (``pipeline.integration.max_frames`` and ``.integration_config.*``)."""

    max_frames: int | None = _d("integration", "max_frames")
    n_pedestal: int = _d("integration", "n_pedestal")
    ma_window: int = _d("integration", "ma_window")
    bs_threshold: float = _d("integration", "bs_threshold")
    n_sigma_start: float = _d("integration", "n_sigma_start")
    n_sigma_end: float = _d("integration", "n_sigma_end")


@dataclass(frozen=True)
class FittingConfig:
    """S2 histogram fit (``pipeline.integration.fit_config.*`` or ``pipeline.fitting.*``)."""

    bin_cuts: tuple[float, float] | None = _d("fitting", "bin_cuts")
    nbins: int | None = _d("fitting", "nbins")
    model: str = _d("fitting", "model")
    min_events: int = _d("fitting", "min_events")
    bg_threshold: float = _d("fitting", "bg_threshold")
    bg_cutoff: float = _d("fitting", "bg_cutoff")
    bg_sigma_max: float = _d("fitting", "bg_sigma_max")
    n_sigma: float = _d("fitting", "n_sigma")
    upper_limit: float | None = _d("fitting", "upper_limit")
    auto_upper_sigma: float | None = _d("fitting", "auto_upper_sigma")
    gof_p_min: float = _d("fitting", "gof_p_min")


@dataclass(frozen=True)
class XrayConfig:
    """X-ray classification and X-ray histogram fit (``pipeline.xray_classification.*``)."""

    max_frames: int | None = _d("xray", "max_frames")
    bs_threshold: float = _d("xray", "bs_threshold")
    max_area_s1: float = _d("xray", "max_area_s1")
    max_area_s2: float = _d("xray", "max_area_s2")
    min_xray_area: float = _d("xray", "min_xray_area")
    false_xray_rate: float = _d("xray", "false_xray_rate")
    min_s2_sep: float = _d("xray", "min_s2_sep")
    min_s1_sep: float = _d("xray", "min_s1_sep")
    n_pedestal: int = _d("xray", "n_pedestal")
    ma_window: int = _d("xray", "ma_window")
    bin_cuts: tuple[float, float] | None = _d("xray", "bin_cuts")
    nbins: int | None = _d("xray", "nbins")
    model: str = _d("xray", "model")
    gof_p_min: float = _d("xray", "gof_p_min")


@dataclass(frozen=True)
class CalibrationConfig:
    """Where g_S2 comes from (``calibration.*`` or the lab's ``recombination_analysis.*``).

    Exactly one of: nothing (this run's X-rays), ``gs2_path`` (another run's calibration file, absolute path),
    or ``gs2`` with ``d_gs2`` and ``provenance``.
    """

    gs2_path: Path | None = None
    gs2: float | None = None
    d_gs2: float | None = None
    provenance: str | None = None
    gs2_el_field: float | None = None
    allow_el_mismatch: bool = False
    use_poor_fits: bool = False


@dataclass(frozen=True)
class AlphaConfig:
    """Alpha-tagged runs (the lab's ``multi_isotope.*`` and ``energy_mapping.*``; s2lib.alpha). ``isotope_ranges``
    is None or a tuple of (name, low, high) in u_SCA, ordered by low edge."""

    enabled: bool = _d("alpha", "enabled")
    isotope_ranges: tuple[tuple[str, float, float], ...] | None = _d("alpha", "isotope_ranges")
    alpha_channel: int = _d("alpha", "alpha_channel")
    pmt_channel: int | None = _d("alpha", "pmt_channel")
    pairing_tolerance_us: float = _d("alpha", "pairing_tolerance_us")
    reference_convention: str = _d("alpha", "reference_convention")
    savgol_window: int | None = _d("alpha", "savgol_window")
    peak_time_us: float | None = _d("alpha", "peak_time_us")
    peak_window_us: float = _d("alpha", "peak_window_us")
    energy_range: tuple[float, float] = _d("alpha", "energy_range")
    nbins: int = _d("alpha", "nbins")
    n_sigma: float = _d("alpha", "n_sigma")
    use_quadratic: bool = _d("alpha", "use_quadratic")
    map_format: str = _d("alpha", "map_format")
    map_scale: float = _d("alpha", "map_scale")


@dataclass(frozen=True)
class ComputeConfig:
    """Where the per-file pass runs (``compute.*``; :mod:`s2lib.signal.executors`). Never changes results."""

    executor: str = _d("compute", "executor")
    address: str | None = _d("compute", "address")
    workers: int | None = _d("compute", "workers")


_SECTIONS: dict[str, type] = {"experiment": ExperimentConfig, "preparation": PreparationConfig,
                              "integration": IntegrationConfig, "fitting": FittingConfig, "xray": XrayConfig,
                              "calibration": CalibrationConfig, "alpha": AlphaConfig, "compute": ComputeConfig}
_SECTION_ALIASES = {"xray_classification": "xray", "recombination_analysis": "calibration",
                    "multi_isotope": "alpha", "energy_mapping": "alpha"}


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration. Build it with ``load_config`` or ``config_from_dict``.

    Attributes:
        run_id, description: run name (no path separators) and free text.
        raw_data_path, output_base: absolute folders; artifacts go to ``output_dir = output_base/run_id``.
        channel_pattern: glob selecting the PMT files of a set, or None (automatic).
        sets: set folder names to include, or None for all.  jobs: worker processes.
        strict: fail at the first raw file that cannot be read completely (else: skip and report it).
        experiment, preparation, integration, fitting, xray, calibration, alpha, compute: the sections.
        source: the configuration file (None when built from a dict).
        notes: the warnings given while loading (deprecated/ignored keys).
    """

    run_id: str
    raw_data_path: Path
    description: str = ""
    output_base: Path = Path("processed")
    channel_pattern: str | None = None
    sets: tuple[str, ...] | None = None
    jobs: int = 1
    strict: bool = False
    experiment: ExperimentConfig = ExperimentConfig()
    preparation: PreparationConfig = PreparationConfig()
    integration: IntegrationConfig = IntegrationConfig()
    fitting: FittingConfig = FittingConfig()
    xray: XrayConfig = XrayConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    alpha: AlphaConfig = AlphaConfig()
    compute: ComputeConfig = ComputeConfig()
    source: Path | None = field(default=None, compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def output_dir(self) -> Path:
        """``output_base / run_id``: the run's artifact folder."""
        return self.output_base / self.run_id

    def _value(self, opt: Option) -> Any:
        obj = self if opt.section == "run" else getattr(self, opt.section)
        return getattr(obj, opt.name)

    def to_dict(self, *, tracked_only: bool = False) -> dict[str, Any]:
        """Canonical JSON-able dict in the YAML layout (canonical key paths, absolute paths, resolved recoil
        energy). ``config_from_dict(cfg.to_dict())`` gives back an equal config. With ``tracked_only``,
        options that cannot change results (``jobs``, ``description``, labels) are left out: use it for
        cache keys."""
        out: dict[str, Any] = {}
        for opt in SCHEMA:
            if tracked_only and not opt.track:
                continue
            node = out
            *parents, leaf = opt.key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = _jsonable(self._value(opt))
        return out

    def section(self, name: str) -> dict[str, Any]:
        """The options of one section as a flat JSON-able dict ``{field name: value}``.

        ``name``: "run", "experiment", "preparation", "integration", "fitting", "xray" (or
        "xray_classification"), "calibration" (or "recombination_analysis").
        """
        name = _SECTION_ALIASES.get(name, name)
        if name != "run" and name not in _SECTIONS:
            raise KeyError(f"unknown section {name!r}; known: run, {', '.join(_SECTIONS)}")
        return {o.name: _jsonable(self._value(o)) for o in SCHEMA if o.section == name}


# ----------------------------------------------------------------------------------------------- loading
class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and validate a run configuration YAML file.

    Relative paths in it resolve against the file's folder. Raises ``ConfigError`` (naming the key path and
    what was expected) for unreadable YAML, unknown keys, wrong types and impossible values; emits
    ``ConfigWarning`` for deprecated or ignored keys.
    """
    source = Path(path).expanduser().resolve()
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError("<file>", f"cannot read the configuration: {err.strerror or err}", source) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError("<file>", f"invalid YAML: {err}", source) from None
    return config_from_dict(data, base_dir=source.parent, source=source)


def config_from_dict(data: Mapping[str, Any] | None, *, base_dir: str | os.PathLike[str] | None = None,
                     source: str | os.PathLike[str] | None = None) -> RunConfig:
    """Validate a configuration mapping (the parsed YAML) into a ``RunConfig``.

    Args:
        data: the mapping, in the YAML layout.
        base_dir: folder that relative paths resolve against (default: the current folder).
        source: the file it came from, used in messages and kept as ``RunConfig.source``.
    """
    src = Path(source) if source is not None else None
    base = Path(base_dir if base_dir is not None else os.getcwd()).expanduser().resolve()
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("<top level>", f"expected a mapping of keys, got {type(data).__name__}", src)
    notes: list[str] = []
    given: dict[str, tuple[str, Any]] = {}   # option key -> (path given, value)
    _walk(data, "", given, notes, src)
    for note in notes:
        warnings.warn(f"{src or 'configuration'}: {note}", ConfigWarning, stacklevel=3)
    values: dict[str, dict[str, Any]] = {s: {} for s in ("run", *_SECTIONS)}
    for opt in SCHEMA:
        if opt.key in given:
            path, raw = given[opt.key]
            values[opt.section][opt.name] = _convert(opt, path, raw, base, src)
        elif opt.default is _REQUIRED:
            raise ConfigError(opt.key, f"is required ({opt.help})", src)
        elif opt.kind == "path" and opt.default is not None:
            values[opt.section][opt.name] = _convert(opt, opt.key, opt.default, base, src)
        else:
            values[opt.section][opt.name] = opt.default
    return _assemble(values, given, tuple(notes), src)


def _walk(node: Mapping[str, Any], prefix: str, given: dict[str, tuple[str, Any]], notes: list[str],
          src: Path | None) -> None:
    for key, value in node.items():
        path = f"{prefix}{key}"
        if path in IGNORED_SECTIONS:
            notes.append(f"{path}: ignored ({IGNORED_SECTIONS[path]})")
        elif path in DEPRECATED_KEYS:
            notes.append(f"{path}: deprecated and ignored ({DEPRECATED_KEYS[path]})")
        elif path in _BY_PATH:
            opt = _BY_PATH[path]
            if opt.key in given and given[opt.key][1] != value:
                raise ConfigError(path, f"conflicts with {given[opt.key][0]} (give it in one place)", src)
            given[opt.key] = (path, value)
        elif path in _PREFIXES and (value is None or isinstance(value, Mapping)):
            _walk(value or {}, path + ".", given, notes, src)
        elif path in _PREFIXES:
            raise ConfigError(path, f"expected a mapping of keys, got {type(value).__name__}", src)
        else:
            level = {k[len(prefix):].split(".")[0] for k in _LEAVES | _PREFIXES if k.startswith(prefix)}
            raise ConfigError(path, f"unknown key; allowed here: {', '.join(sorted(level))}", src)


def _assemble(values: dict[str, dict[str, Any]], given: dict[str, tuple[str, Any]], notes: tuple[str, ...],
              src: Path | None) -> RunConfig:
    """Cross-field checks and resolution (recoil energy, g_S2 source, raw/output folders)."""
    run, exp, cal = values["run"], values["experiment"], values["calibration"]
    raw = run["raw_data_path"]
    if not raw.is_dir():
        raise ConfigError("data.raw_data_path", f"expected an existing folder, {raw} "
                          f"{'is not a folder' if raw.exists() else 'does not exist'}", src)
    output_dir = run["output_base"] / run["run_id"]
    if output_dir == raw or raw in output_dir.parents:
        raise ConfigError("data.output_base", f"the output folder {output_dir} lies inside the raw folder {raw}, "
                          "which is never written to; choose a folder outside it", src)
    if exp["recoil_energy"] is None:
        exp["recoil_energy"] = physics.recoil_energy_keV(exp["target_isotope"])
        exp["recoil_energy_source"] = f"Q·4/A of {exp['target_isotope']} (physics.recoil_energy_keV)"
    else:
        exp["recoil_energy_source"] = f"configuration {src or ''}".strip()
    if cal["gs2"] is not None and cal["gs2_path"] is not None:
        raise ConfigError("calibration.gs2", "give either gs2 (with d_gs2) or gs2_path, not both", src)
    if cal["gs2"] is None and (cal["d_gs2"] is not None or cal["provenance"] is not None):
        raise ConfigError("calibration.gs2", "d_gs2/provenance given without gs2", src)
    if cal["gs2"] is not None:
        if cal["d_gs2"] is None:
            raise ConfigError("calibration.d_gs2", "required with gs2: the 1σ uncertainty (mV·µs/e⁻)", src)
        if cal["provenance"] is None:
            cal["provenance"] = f"given in configuration {src}" if src else "given in configuration"
    if cal["gs2_path"] is not None and not cal["gs2_path"].is_file():
        warnings.warn(f"{src or 'configuration'}: calibration.gs2_path: {cal['gs2_path']} does not exist (yet); "
                      "calibration will fail unless it is produced first", ConfigWarning, stacklevel=4)
    _check_fit("fitting", values["fitting"], given, src)
    _check_fit("xray", values["xray"], given, src)
    comp = values["compute"]
    if comp["address"] is not None and comp["executor"] != "dask":
        raise ConfigError("compute.address", f"a scheduler address ({comp['address']!r}) needs compute.executor: "
                          f"dask, got executor {comp['executor']!r}", src)
    sections = {name: cls(**values[name]) for name, cls in _SECTIONS.items()}
    return RunConfig(**run, **sections, source=src, notes=notes)
