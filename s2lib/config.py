"""Run configuration: one declarative schema table, YAML loading with validation, frozen dataclasses.

The schema (``SCHEMA``) is the single source of truth: every option has its YAML key path(s), type, default,
unit and help text (strax-style declarative options). The section dataclasses take their defaults from it,
the loader validates against it and ``config_reference_markdown()`` renders it for the book's appendix.

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
Keys the lab's files carry but that no longer act (``dt``, ``width_s2``, ``exclude_index``, ``multi_isotope``,
``energy_mapping``) are accepted with a ``ConfigWarning``; any other unknown key is a ``ConfigError``.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import physics
from .errors import ConfigError

__all__ = [
    "Option", "SCHEMA", "DEPRECATED_KEYS", "IGNORED_SECTIONS", "ConfigWarning",
    "ExperimentConfig", "PreparationConfig", "IntegrationConfig", "FittingConfig", "XrayConfig",
    "CalibrationConfig", "RunConfig", "load_config", "config_from_dict", "config_reference_markdown",
]

_REQUIRED: Any = object()


class ConfigWarning(UserWarning):
    """A configuration key that is accepted but deprecated or ignored (the message says why)."""


@dataclass(frozen=True)
class Option:
    """One configuration option: where it lives in the YAML, what it must be and what it means.

    ``section``/``name``: the ``RunConfig`` section ("run" for its top-level fields) and field; ``paths``: YAML
    key paths, the canonical one first; ``kind``: "str", "float", "int", "bool", "path", "range" (two increasing
    numbers), "str_list" or "choice" (one of ``choices``); ``default`` (``_REQUIRED``: must be given), ``unit``,
    ``help``; ``nullable``: null allowed; ``minimum`` (excluded when ``strict``) for numbers and ranges;
    ``track``: False for options that cannot change results (left out of cache keys, e.g. ``jobs``).
    """

    section: str
    name: str
    paths: tuple[str, ...]
    kind: str
    default: Any
    unit: str = ""
    help: str = ""
    nullable: bool = False
    minimum: float | None = None
    strict: bool = False
    choices: tuple[str, ...] = ()
    track: bool = True

    @property
    def key(self) -> str:
        """The canonical YAML key path."""
        return self.paths[0]


def _o(section: str, name: str, paths: str | tuple[str, ...], kind: str, default: Any, unit: str = "",
       help: str = "", **kw: Any) -> Option:
    return Option(section, name, (paths,) if isinstance(paths, str) else paths, kind, default, unit, help, **kw)


_INT = "pipeline.integration.integration_config."
_FIT = ("pipeline.integration.fit_config.", "pipeline.fitting.")
_XR = "pipeline.xray_classification."
_CAL = ("calibration.", "recombination_analysis.")


def _fit(name: str) -> tuple[str, ...]:
    return tuple(p + name for p in _FIT)


def _cal(name: str) -> tuple[str, ...]:
    return tuple(p + name for p in _CAL)


def _xr(name: str) -> tuple[str, ...]:
    return _XR + name, _XR + "fit_config." + name


SCHEMA: tuple[Option, ...] = (
    _o("run", "run_id", "run_id", "str", _REQUIRED, help="Run name; the output folder is output_base/run_id "
       "(no path separators)."),
    _o("run", "description", "description", "str", "", help="Free text shown in the report.", track=False),
    _o("run", "raw_data_path", "data.raw_data_path", "path", _REQUIRED, help="Raw run folder holding the "
       "FieldScan_* set folders (read only; must exist)."),
    _o("run", "output_base", "data.output_base", "path", "processed", help="Artifacts go to "
       "output_base/run_id; must not lie inside the raw folder."),
    _o("run", "channel_pattern", "data.channel_pattern", "str", None, nullable=True, help="Glob (case-"
       "insensitive) selecting the PMT files of a set, e.g. '*_CH3.wfm'; null: every .wfm file, minus the "
       "silicon channel (Ch4) when channel-tagged files exist."),
    _o("run", "sets", "sets", "str_list", None, nullable=True, help="Only these set folders (null: all)."),
    _o("run", "jobs", "jobs", "int", 1, minimum=1, help="Parallel worker processes.", track=False),
    _o("experiment", "target_isotope", "experiment.target_isotope", "choice", "Th228", choices=("Th228", "Ra224"),
       help="Source isotope ('Th-228' accepted); sets the default recoil energy."),
    _o("experiment", "el_field", "experiment.el_field", "float", None, "V/cm", nullable=True, track=False,
       help="Run label only; the per-set EL field is computed from the set voltages."),
    _o("experiment", "pressure", "experiment.pressure", "float", physics.DEFAULT_PRESSURE_BAR, "bar",
       "Xenon pressure.", minimum=0.0, strict=True),
    _o("experiment", "temperature", "experiment.temperature", "float", physics.DEFAULT_TEMPERATURE_K, "K",
       "Gas temperature.", minimum=0.0, strict=True),
    _o("experiment", "sampling_rate", "experiment.sampling_rate", "float", None, "Hz", nullable=True,
       minimum=0.0, strict=True, track=False, help="Informational: the sampling interval always comes from "
       "each file's header; a disagreement is warned about."),
    _o("experiment", "el_gap", "experiment.el_gap", "float", physics.DEFAULT_EL_GAP_CM, "cm",
       "Gate-anode (electroluminescence) gap.", minimum=0.0, strict=True),
    _o("experiment", "drift_gap", "experiment.drift_gap", "float", physics.DEFAULT_DRIFT_GAP_CM, "cm",
       "Cathode (source)-gate drift gap.", minimum=0.0, strict=True),
    _o("experiment", "W_value", "experiment.W_value", "float", physics.W_VALUE_EV, "eV",
       "Mean energy per electron-ion pair.", minimum=0.0, strict=True),
    _o("experiment", "E_gamma_xray", "experiment.E_gamma_xray", "float", physics.E_XRAY_EV, "eV",
       "Calibration X-ray energy.", minimum=0.0, strict=True),
    _o("experiment", "recoil_energy", "experiment.recoil_energy", "float", None, "keV", nullable=True,
       minimum=0.0, strict=True, help="Daughter recoil energy; null: Q·4/A of the isotope (Th228 96.8, "
       "Ra224 103.4)."),
    _o("preparation", "max_frames_s1", "pipeline.preparation.max_frames_s1", "int", 1000, "frames",
       "Frames used to estimate the S1 time.", minimum=1),
    _o("preparation", "max_frames_s2", "pipeline.preparation.max_frames_s2", "int", 1000, "frames",
       "Frames used to estimate the S2 window.", minimum=1),
    _o("preparation", "threshold_s1", "pipeline.preparation.threshold_s1", "float", 1.0, "mV",
       "S1 detection threshold.", minimum=0.0, strict=True),
    _o("preparation", "threshold_s2", "pipeline.preparation.threshold_s2", "float", 0.8, "mV",
       "S2 detection threshold.", minimum=0.0, strict=True),
    _o("preparation", "s2_duration_cuts", "pipeline.preparation.s2_duration_cuts", "range", (1.0, 35.0), "µs",
       "Accepted S2 duration [min, max] when estimating the window.", minimum=0.0),
    _o("integration", "max_frames", "pipeline.integration.max_frames", "int", None, "frames", nullable=True,
       minimum=1, help="Frames integrated per set (null: all)."),
    _o("integration", "n_pedestal", _INT + "n_pedestal", "int", 200, "samples", minimum=1,
       help="Leading samples averaged for the pedestal (lab YAML 100, lab code 2000; 200 = the lab's S1 and "
       "X-ray value, 40 ns at 5 GS/s, all well before S1)."),
    _o("integration", "ma_window", _INT + "ma_window", "int", 9, "samples", "Moving-average width.", minimum=1),
    _o("integration", "bs_threshold", _INT + "bs_threshold", "float", 0.03, "mV",
       "Samples below this (after smoothing) count as zero.", minimum=0.0),
    _o("integration", "n_sigma_start", _INT + "n_sigma_start", "float", 1.0, "σ",
       "Window start = t_s2_start − n_sigma_start·σ_start.", minimum=0.0),
    _o("integration", "n_sigma_end", _INT + "n_sigma_end", "float", 0.5, "σ",
       "Window end = t_s2_end + n_sigma_end·σ_end.", minimum=0.0),
    _o("fitting", "bin_cuts", _fit("bin_cuts"), "range", (0.0, 10.0), "mV·µs", "S2 histogram range."),
    _o("fitting", "nbins", _fit("nbins"), "int", 100, "bins", "S2 histogram bins.", minimum=1),
    _o("fitting", "model", _fit("model"), "choice", "gauss", choices=("gauss", "gauss_bg", "crystalball"),
       help="S2 peak model: Gaussian, Gaussian + background Gaussian, or right-tailed Crystal Ball."),
    _o("fitting", "min_events", _fit("min_events"), "int", 30, "events", minimum=1,
       help="Fewest events inside bin_cuts for a fit to count as successful."),
    _o("fitting", "bg_threshold", _fit("bg_threshold"), "float", 0.3, "mV·µs", minimum=0.0,
       help="The fraction of events below this area is reported (the lab's pile-up indicator)."),
    _o("fitting", "bg_cutoff", _fit("bg_cutoff"), "float", 1.0, "mV·µs", minimum=0.0,
       help="gauss_bg: upper limit of the background (pile-up) peak centre."),
    _o("fitting", "bg_sigma_max", _fit("bg_sigma_max"), "float", 0.5, "mV·µs", minimum=0.0, strict=True,
       help="gauss_bg: upper limit of the background peak width."),
    _o("fitting", "n_sigma", _fit("n_sigma"), "float", 2.5, "σ", minimum=0.0,
       help="gauss_bg: the background ends at mean + n_sigma·width (reported, no cut)."),
    _o("fitting", "upper_limit", _fit("upper_limit"), "float", None, "mV·µs", nullable=True,
       help="Upper limit of the signal mean, inside bin_cuts (null: bin_cuts high end; lab default 5)."),
    _o("xray", "max_frames", _XR + "max_frames", "int", None, "frames", nullable=True, minimum=1,
       help="Frames classified per set (null: all)."),
    _o("xray", "bs_threshold", _XR + "bs_threshold", "float", 0.5, "mV", minimum=0.0,
       help="Samples below this (after smoothing) count as zero."),
    _o("xray", "max_area_s1", _XR + "max_area_s1", "float", 1e5, "mV (sample sum)", minimum=0.0, strict=True,
       help="Reject frames whose summed samples before S1 exceed this."),
    _o("xray", "max_area_s2", _XR + "max_area_s2", "float", 1e5, "mV (sample sum)", minimum=0.0, strict=True,
       help="Reject frames whose summed samples after the S2 start exceed this."),
    _o("xray", "min_xray_area", _XR + "min_xray_area", "float", 0.0, "mV·µs", minimum=0.0,
       help="Smallest accepted X-ray area."),
    _o("xray", "min_s2_sep", _XR + "min_s2_sep", "float", 1.0, "µs", minimum=0.0,
       help="Least time between the X-ray pulse and the recoil S2 start."),
    _o("xray", "min_s1_sep", _XR + "min_s1_sep", "float", 0.5, "µs", minimum=0.0,
       help="Least time between S1 and the X-ray pulse."),
    _o("xray", "n_pedestal", _XR + "n_pedestal", "int", 200, "samples", "Pedestal samples.", minimum=1),
    _o("xray", "ma_window", _XR + "ma_window", "int", 10, "samples", "Moving-average width.", minimum=1),
    _o("xray", "bin_cuts", _xr("bin_cuts"), "range", (0.6, 20.0), "mV·µs", "X-ray histogram range."),
    _o("xray", "nbins", _xr("nbins"), "int", 100, "bins", "X-ray histogram bins.", minimum=1),
    _o("xray", "model", _xr("model"), "choice", "gauss", choices=("gauss", "gauss_bg", "crystalball"),
       help="X-ray peak model."),
    _o("calibration", "gs2_path", _cal("gs2_path"), "path", None, nullable=True, help="g_S2 from another run: "
       "its `<run_id>_calibration.json` or the lab's `xray_calibration_results.json` (null: this run's X-rays)."),
    _o("calibration", "gs2", _cal("gs2"), "float", None, "mV·µs/e⁻", nullable=True, minimum=0.0, strict=True,
       help="g_S2 given directly (needs d_gs2; excludes gs2_path)."),
    _o("calibration", "d_gs2", _cal("d_gs2"), "float", None, "mV·µs/e⁻", nullable=True, minimum=0.0,
       help="1σ uncertainty of a directly given g_S2."),
    _o("calibration", "provenance", _cal("provenance"), "str", None, nullable=True,
       help="Where a directly given g_S2 comes from (default: this configuration file)."),
    _o("calibration", "gs2_el_field", _cal("gs2_el_field"), "float", None, "V/cm", nullable=True, minimum=0.0,
       strict=True, help="EL field at which an external g_S2 was measured, when its source does not say."),
    _o("calibration", "allow_el_mismatch", _cal("allow_el_mismatch"), "bool", False,
       help="Apply an external g_S2 to sets at another EL field (g_S2 depends strongly on it)."),
)

DEPRECATED_KEYS: dict[str, str] = {
    "experiment.width_s2": "fixed S2 width of the old pipeline; the S2 window is measured per set",
    _INT + "dt": "the sampling interval comes from each file's header",
    _XR + "dt": "the sampling interval comes from each file's header",
    **{p + "exclude_index": "histogram bins are never dropped; the background is modelled instead" for p in _FIT},
}
IGNORED_SECTIONS: dict[str, str] = {
    "multi_isotope": "multi-isotope (alpha-tagged) analysis is out of scope",
    "energy_mapping": "alpha energy maps are out of scope",
}
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

    bin_cuts: tuple[float, float] = _d("fitting", "bin_cuts")
    nbins: int = _d("fitting", "nbins")
    model: str = _d("fitting", "model")
    min_events: int = _d("fitting", "min_events")
    bg_threshold: float = _d("fitting", "bg_threshold")
    bg_cutoff: float = _d("fitting", "bg_cutoff")
    bg_sigma_max: float = _d("fitting", "bg_sigma_max")
    n_sigma: float = _d("fitting", "n_sigma")
    upper_limit: float | None = _d("fitting", "upper_limit")


@dataclass(frozen=True)
class XrayConfig:
    """X-ray classification and X-ray histogram fit (``pipeline.xray_classification.*``)."""

    max_frames: int | None = _d("xray", "max_frames")
    bs_threshold: float = _d("xray", "bs_threshold")
    max_area_s1: float = _d("xray", "max_area_s1")
    max_area_s2: float = _d("xray", "max_area_s2")
    min_xray_area: float = _d("xray", "min_xray_area")
    min_s2_sep: float = _d("xray", "min_s2_sep")
    min_s1_sep: float = _d("xray", "min_s1_sep")
    n_pedestal: int = _d("xray", "n_pedestal")
    ma_window: int = _d("xray", "ma_window")
    bin_cuts: tuple[float, float] = _d("xray", "bin_cuts")
    nbins: int = _d("xray", "nbins")
    model: str = _d("xray", "model")


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


_SECTIONS: dict[str, type] = {"experiment": ExperimentConfig, "preparation": PreparationConfig,
                              "integration": IntegrationConfig, "fitting": FittingConfig, "xray": XrayConfig,
                              "calibration": CalibrationConfig}
_SECTION_ALIASES = {"xray_classification": "xray", "recombination_analysis": "calibration"}


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration. Build it with ``load_config`` or ``config_from_dict``.

    Attributes:
        run_id, description: run name (no path separators) and free text.
        raw_data_path, output_base: absolute folders; artifacts go to ``output_dir = output_base/run_id``.
        channel_pattern: glob selecting the PMT files of a set, or None (automatic).
        sets: set folder names to include, or None for all.  jobs: worker processes.
        experiment, preparation, integration, fitting, xray, calibration: the sections.
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
    experiment: ExperimentConfig = ExperimentConfig()
    preparation: PreparationConfig = PreparationConfig()
    integration: IntegrationConfig = IntegrationConfig()
    fitting: FittingConfig = FittingConfig()
    xray: XrayConfig = XrayConfig()
    calibration: CalibrationConfig = CalibrationConfig()
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


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


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


_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _number(opt: Option, path: str, raw: Any, src: Path | None) -> float:
    if isinstance(raw, str) and _NUMBER.match(raw.strip()):  # YAML 1.1 reads 1e5 as a string
        raw = float(raw)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        raise ConfigError(path, f"expected a finite number{_unit(opt)}, got {raw!r}", src)
    if opt.minimum is not None and (raw < opt.minimum or (opt.strict and raw == opt.minimum)):
        rel = ">" if opt.strict else ">="
        raise ConfigError(path, f"expected a number {rel} {opt.minimum:g}{_unit(opt)}, got {raw!r}", src)
    return raw


def _unit(opt: Option) -> str:
    return f" ({opt.unit})" if opt.unit else ""


def _convert(opt: Option, path: str, raw: Any, base: Path, src: Path | None) -> Any:
    """Check one given value against its option; returns the converted value."""
    if raw is None:
        if opt.nullable:
            return None
        raise ConfigError(path, f"must not be null (omit the key for the default {opt.default!r})", src)
    kind = opt.kind
    if kind == "bool":
        if not isinstance(raw, bool):
            raise ConfigError(path, f"expected true or false, got {raw!r}", src)
        return raw
    if kind == "float":
        return float(_number(opt, path, raw, src))
    if kind == "int":
        value = _number(opt, path, raw, src)
        if value != int(value):
            raise ConfigError(path, f"expected an integer{_unit(opt)}, got {raw!r}", src)
        return int(value)
    if kind == "range":
        if not isinstance(raw, (list, tuple)) or len(raw) != 2:
            raise ConfigError(path, f"expected [low, high]{_unit(opt)}, got {raw!r}", src)
        lo, hi = (_number(dataclasses.replace(opt, strict=False), path, v, src) for v in raw)
        if not lo < hi:
            raise ConfigError(path, f"expected increasing [low, high], got {raw!r}", src)
        return float(lo), float(hi)
    if kind == "str_list":
        items = [raw] if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) and v for v in items):
            raise ConfigError(path, f"expected a list of names, got {raw!r}", src)
        return tuple(items)
    if not isinstance(raw, (str, os.PathLike)) or (isinstance(raw, str) and not raw.strip()):
        raise ConfigError(path, f"expected a non-empty {'path' if kind == 'path' else 'string'}, got {raw!r}", src)
    if kind == "path":
        text = os.path.expandvars(os.path.expanduser(os.fspath(raw)))
        return (base / text).resolve()
    if kind == "choice":
        value = raw
        if opt.name == "target_isotope":
            try:
                value = physics.normalise_isotope(raw)
            except ValueError:
                pass
        if value not in opt.choices:
            raise ConfigError(path, f"expected one of {', '.join(opt.choices)}, got {raw!r}", src)
        return value
    if opt.name == "run_id" and not _RUN_ID.match(raw):
        raise ConfigError(path, f"expected a plain name of letters, digits, '_', '.', '-' (no path separators), "
                          f"got {raw!r}", src)
    return raw


def _check_fit(section: str, values: dict[str, Any], given: dict[str, tuple[str, Any]], src: Path | None) -> None:
    """The cross-field rules of ``s2lib.fitting.FitConfig`` (kept here: importing scipy to load a YAML is slow)."""
    lo, hi = values["bin_cuts"]

    def fail(name: str, message: str) -> None:
        opt = next(o for o in SCHEMA if o.section == section and o.name == name)
        raise ConfigError(given.get(opt.key, (opt.key,))[0], message, src)

    limit = values.get("upper_limit")
    if limit is not None and not lo < limit <= hi:
        fail("upper_limit", f"expected null or a number in ({lo:g}, {hi:g}] (inside bin_cuts), got {limit:g}")
    if values["model"] == "gauss_bg" and "bg_cutoff" in values and not lo < values["bg_cutoff"] <= hi:
        fail("bg_cutoff", f"expected a number in ({lo:g}, {hi:g}] (inside bin_cuts) for model gauss_bg, "
             f"got {values['bg_cutoff']:g}")


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
    sections = {name: cls(**values[name]) for name, cls in _SECTIONS.items()}
    return RunConfig(**run, **sections, source=src, notes=notes)


# ----------------------------------------------------------------------------------------------- reference
def _fmt_default(opt: Option) -> str:
    if opt.default is _REQUIRED:
        return "required"
    if opt.default is None:
        return "null"
    if isinstance(opt.default, tuple):
        return "[" + ", ".join(f"{v:g}" for v in opt.default) + "]"
    if isinstance(opt.default, bool):
        return str(opt.default).lower()
    if isinstance(opt.default, float):
        return f"{opt.default:g}"
    return f'"{opt.default}"' if isinstance(opt.default, str) else str(opt.default)


def config_reference_markdown() -> str:
    """The configuration reference as Markdown (one table: key, type, default, unit, meaning) for the book."""
    lines = ["| key | type | default | unit | meaning |", "|---|---|---|---|---|"]
    for opt in SCHEMA:
        kind = f"one of {', '.join(opt.choices)}" if opt.kind == "choice" else opt.kind
        if opt.nullable:
            kind += " or null"
        extra = " Also at " + ", ".join(f"`{p}`" for p in opt.paths[1:]) + "." if len(opt.paths) > 1 else ""
        lines.append(f"| `{opt.key}` | {kind} | {_fmt_default(opt)} | {opt.unit} | {opt.help}{extra} |")
    lines += ["", "Accepted for compatibility with the lab's run files, with a warning, and ignored:", ""]
    lines += [f"- `{k}`: {why}" for k, why in {**DEPRECATED_KEYS, **IGNORED_SECTIONS}.items()]
    lines += ["", "Relative paths resolve against the configuration file's folder; any other key is an error."]
    return "\n".join(lines) + "\n"
