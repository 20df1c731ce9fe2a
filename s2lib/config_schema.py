"""The declarative option table of the run configuration (strax-style options: key, type, default, unit, help).

``SCHEMA`` is the single source of truth for every option: its YAML key path(s) (canonical first), kind,
default, unit and help text. ``s2lib.config`` builds its section dataclasses and its loader from it;
``config_reference_markdown()`` renders it for the book's appendix. ``DEPRECATED_KEYS`` and
``IGNORED_SECTIONS`` list the lab keys that are accepted with a warning and ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import physics

__all__ = ["Option", "SCHEMA", "DEPRECATED_KEYS", "IGNORED_SECTIONS", "REQUIRED", "config_reference_markdown"]

REQUIRED: Any = object()
"""Sentinel default of an option that must be given."""
_REQUIRED = REQUIRED


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


FIT_MODELS = ("gauss", "gauss_bg", "crystalball", "crystalball_bg")
"""Histogram models of s2lib.fitting (see its module docstring for what to use when)."""


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
    _o("run", "strict", "strict", "bool", False, help="Fail the run at the first raw file that cannot be read "
       "completely (like `s2book run --strict`); false: such files are skipped (truncated ones: their complete "
       "frames are used) and reported per set and in the book's 'Skipped files' table."),
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
    _o("integration", "ma_window", _INT + "ma_window", "int", 9, "samples", minimum=1,
       help="Lab's moving-average width; accepted, NOT used: a moving average does not change a window sum."),
    _o("integration", "bs_threshold", _INT + "bs_threshold", "float", 0.03, "mV", minimum=0.0,
       help="Lab's clip level; accepted, NOT used: clipping noise below it while keeping the positive noise "
       "biases areas upward (methods chapter); the recoil area is the unclipped window integral."),
    _o("integration", "n_sigma_start", _INT + "n_sigma_start", "float", 4.0, "σ",
       "Window start = t_s2_start − n_sigma_start·σ_start (4: ≥ 98 % of simulated S2s inside; the lab's 1.0 "
       "cut the leading edge).", minimum=0.0),
    _o("integration", "n_sigma_end", _INT + "n_sigma_end", "float", 4.0, "σ",
       "Window end = t_s2_end + n_sigma_end·σ_end (lab: 0.5).", minimum=0.0),
    _o("fitting", "bin_cuts", _fit("bin_cuts"), "range", (0.0, 10.0), "mV·µs", "S2 histogram range."),
    _o("fitting", "nbins", _fit("nbins"), "int", 100, "bins", "S2 histogram bins.", minimum=1),
    _o("fitting", "model", _fit("model"), "choice", "gauss", choices=FIT_MODELS,
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
    _o("fitting", "auto_upper_sigma", _fit("auto_upper_sigma"), "float", None, "σ", nullable=True, minimum=0.0,
       help="Lower the fit's upper edge to median + k·robust σ of each set's areas (null: fixed bin_cuts); "
       "keeps far pile-up outliers out of a peak model that cannot describe them."),
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
    _o("xray", "n_pedestal", _XR + "n_pedestal", "int", 200, "samples", minimum=1,
       help="Lab's X-ray pedestal length; accepted, NOT used: the one-pass engine computes one pedestal per "
       "frame (pipeline.integration.integration_config.n_pedestal) for both the recoil and the X-ray windows."),
    _o("xray", "ma_window", _XR + "ma_window", "int", 10, "samples", minimum=1,
       help="Lab's smoothing width in samples; accepted, NOT used: X-ray pulses are found on 20 ns block "
       "averages, the same in time whatever the sampling rate."),
    _o("xray", "bin_cuts", _xr("bin_cuts"), "range", (0.6, 20.0), "mV·µs", "X-ray histogram range."),
    _o("xray", "nbins", _xr("nbins"), "int", 100, "bins", "X-ray histogram bins.", minimum=1),
    _o("xray", "model", _xr("model"), "choice", "gauss", choices=FIT_MODELS,
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
