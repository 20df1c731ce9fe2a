"""The declarative option table of the run configuration (strax-style options: key, type, default, unit, help).

``SCHEMA`` is the single source of truth for every option: its YAML key path(s) (canonical first), kind,
default, unit and help text. ``s2lib.config.config`` builds its section dataclasses and its loader from it;
``config_reference_markdown()`` renders it for the book's appendix. ``DEPRECATED_KEYS`` and
``IGNORED_SECTIONS`` list the lab keys that are accepted with a warning and ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from s2lib.physics import physics

__all__ = ["Option", "SCHEMA", "DEPRECATED_KEYS", "IGNORED_SECTIONS", "REQUIRED", "config_reference_markdown"]

REQUIRED: Any = object()
"""Sentinel default of an option that must be given."""
_REQUIRED = REQUIRED


@dataclass(frozen=True)
class Option:
    """One configuration option: where it lives in the YAML, what it must be and what it means.

    ``section``/``name``: the ``RunConfig`` section ("run" for its top-level fields) and field; ``paths``: YAML
    key paths, the canonical one first; ``kind``: "str", "float", "int", "bool", "path", "range" (two increasing
    numbers), "range_map" (name → range), "str_list" or "choice" (one of ``choices``); ``default``
    (``_REQUIRED``: must be given), ``unit``, ``help``; ``nullable``: null allowed; ``minimum`` (excluded when
    ``strict``) for numbers and ranges;
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


FIT_MODELS = ("auto", "recoil_mixture", "xray_mixture", "gauss", "gauss_bg", "crystalball", "crystalball_bg")
"""Estimators: "auto" (recoil_mixture for recoil S2 sets, xray_mixture for X-rays; s2lib.stats.estimators) and the
histogram models of s2lib.stats.fitting (see its module docstring for what to use when)."""


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
    _o("preparation", "max_frames_s1", "pipeline.preparation.max_frames_s1", "int", 200, "frames",
       "Frames per set used to estimate the S1 time: the first frames in file order (s2lib.signal.timing_plan.sample_plan), "
       "so the cost is bounded and appending files changes nothing. 200 puts the median within 1.25/√200 = "
       "0.09 robust σ (lab: 1000).", minimum=1),
    _o("preparation", "max_frames_s2", "pipeline.preparation.max_frames_s2", "int", 200, "frames",
       "Frames per set used to estimate the S2 window (as max_frames_s1): centre error 0.09 σ and σ error "
       "≈ 6 % against the window's 4 σ margins, a containment change below 1e-4 (lab: 1000).", minimum=1),
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
    _o("fitting", "bin_cuts", _fit("bin_cuts"), "range", None, "mV·µs", nullable=True,
       help="S2 histogram range; null: per set from the data (0.2 % quantile of areas and sideband − 1 robust σ "
       "to median + 10 robust σ). A fixed range fails a fit with > 0.5 % of its signal beyond the upper edge."),
    _o("fitting", "nbins", _fit("nbins"), "int", None, "bins", nullable=True, minimum=1,
       help="S2 histogram bins; null: Freedman–Diaconis from each set (20-400)."),
    _o("fitting", "model", _fit("model"), "choice", "auto", choices=FIT_MODELS,
       help="S2 estimator: auto = recoil_mixture (empty-window sideband + gamma recoil peak + X-ray pile-up; "
       "its mean is the mean of the recoil S2 areas), or the lab's histogram models: Gaussian, Gaussian + "
       "background Gaussian, right-tailed Crystal Ball (+ background)."),
    _o("fitting", "gof_p_min", _fit("gof_p_min"), "float", 1e-3, "", minimum=0.0,
       help="Goodness-of-fit p-value below which a fit is a 'poor fit': shown, marked, not used in the "
       "recombination model fits (unless calibration.use_poor_fits)."),
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
    _o("xray", "false_xray_rate", _XR + "false_xray_rate", "float", 1e-4, "per frame", minimum=0.0, strict=True,
       help="Largest chance per frame that stray single photons (dark counts) pass as an X-ray: a candidate "
       "needs the fewest photon hits that the stray rate measured in each file's pre-S1 sideband (90 % upper "
       "limit) reaches with this probability in an S2-long window (compound Poisson: a stray split over two "
       "20-ns blocks leaves two hits, with the run lengths measured in the sideband; "
       "s2lib.signal.xray.min_photon_hits). 1e-4 keeps fakes well under 1 % of the isolated X-rays (2-3 % of "
       "the frames)."),
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
    _o("xray", "bin_cuts", _xr("bin_cuts"), "range", None, "mV·µs", nullable=True,
       help="X-ray histogram range; null: from the data (lowest accepted area to median + 8 robust σ)."),
    _o("xray", "nbins", _xr("nbins"), "int", None, "bins", nullable=True, minimum=1,
       help="X-ray histogram bins; null: Freedman–Diaconis (20-400)."),
    _o("xray", "model", _xr("model"), "choice", "auto", choices=FIT_MODELS,
       help="X-ray estimator: auto = xray_mixture (normal peak + low-area junk + two-X-ray pile-up; mean = "
       "A_x), or a histogram model."),
    _o("xray", "gof_p_min", _xr("gof_p_min"), "float", 1e-3, "", minimum=0.0,
       help="Goodness-of-fit p-value below which the X-ray fit is poor and g_S2 is not used."),
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
    _o("calibration", "use_poor_fits", _cal("use_poor_fits"), "bool", False,
       help="Also use S2 means whose fit is poor (p < gof_p_min) in the recombination model fits; they are "
       "always shown, marked, in the tables."),
    _o("calibration", "allow_el_mismatch", _cal("allow_el_mismatch"), "bool", False,
       help="Apply an external g_S2 to sets at another EL field (g_S2 depends strongly on it)."),
    # where the per-file pass runs (s2lib.signal.executors); results never depend on it, so no cache key holds it
    _o("compute", "executor", "compute.executor", "choice", "local", choices=("local", "dask"), track=False,
       help="Where the per-file pass runs: local (this machine's process pool) or dask (a distributed.LocalCluster,"
       " or the scheduler at compute.address, e.g. one started by dask-jobqueue on SLURM/HTCondor). Same results "
       "either way (also `s2book run --executor`)."),
    _o("compute", "address", "compute.address", "str", None, nullable=True, track=False,
       help="Address of a running Dask scheduler (tcp://host:8786) to join; null: with executor dask, start a "
       "LocalCluster. Only with executor dask (also `s2book run --dask-address`). Workers must see the raw "
       "folder at the same path."),
    _o("compute", "workers", "compute.workers", "int", None, "processes", nullable=True, minimum=1, track=False,
       help="Worker processes of the pass (local pool or LocalCluster, one thread each); null: the run's share "
       "of `s2book run --jobs` (or the jobs key). Ignored when joining a scheduler (its workers are used)."),
    # alpha-tagged (multi-isotope) runs, s2lib.alpha (notes/alpha.md 6): the lab's multi_isotope.* and
    # energy_mapping.* keys with their meaning. u_SCA = silicon peak volts / 1.058 (the lab's "SCA units").
    _o("alpha", "enabled", "multi_isotope.enabled", "bool", False,
       help="Alpha-tagged run: pair the silicon channel with the PMT, calibrate the alpha spectrum and tag every "
       "frame with its isotope."),
    _o("alpha", "isotope_ranges", "multi_isotope.isotope_ranges", "range_map", None, "u_SCA", nullable=True,
       help="Isotope windows {name: [low, high]} in SCA units (the lab's YAML ranges; its comments say keV, "
       "wrongly), replacing the computed windows; names Th228, Ra224, Rn220, Bi212, Po216, Po212; no overlaps."),
    _o("alpha", "alpha_channel", "multi_isotope.alpha_channel", "int", 4, minimum=1,
       help="Oscilloscope channel of the silicon alpha detector (files ..._Ch4.wfm / ..._CH4.wfm)."),
    _o("alpha", "pmt_channel", "multi_isotope.pmt_channel", "int", None, nullable=True, minimum=1,
       help="Oscilloscope channel of the PMT in alpha-tagged sets (null: the one other channel present, Ch1 "
       "in the old DAQ, CH3 in the new)."),
    _o("alpha", "pairing_tolerance_us", "multi_isotope.pairing_tolerance_us", "float", 1.0, "µs", minimum=0.0,
       strict=True, help="Largest accepted difference of the PMT and silicon trigger times of a frame pair."),
    _o("alpha", "reference_convention", "multi_isotope.reference_convention", "choice", "alpha",
       choices=("alpha", "q_value", "lab"), help="Calibration energies: alpha kinetic energies, decay Q-values "
       "(daughters implanted in the silicon), or the lab's mix (Q for Rn220 and Po216); s2lib.alpha.isotopes."),
    _o("alpha", "savgol_window", "energy_mapping.savgol_window", "int", None, "samples", nullable=True,
       minimum=5, help="Savitzky-Golay window (odd; order 3) of the alpha amplitude estimator (null: the odd "
       "sample count closest to 100 ns, the lab's 501 samples at 5 GS/s)."),
    _o("alpha", "peak_time_us", "energy_mapping.peak_time_us", "float", None, "µs", nullable=True,
       help="Expected alpha peak time after the trigger (null: median of the per-frame maxima of each file)."),
    _o("alpha", "peak_window_us", "energy_mapping.peak_window_us", "float", 0.5, "µs", minimum=0.0, strict=True,
       help="Half-width of the alpha peak search window; the samples before it give the baseline."),
    _o("alpha", "energy_range", "energy_mapping.energy_range", "range", (4.0, 8.2), "u_SCA",
       "Alpha spectrum fit range (the lab's ROI)."),
    _o("alpha", "nbins", "energy_mapping.nbins", "int", 420, "bins", minimum=10,
       help="Alpha spectrum bins over energy_range (the lab's value only set its plots; its fit used 120)."),
    _o("alpha", "n_sigma", "energy_mapping.n_sigma", "float", 2.0, "σ", minimum=0.0, strict=True,
       help="Outer window edges: below the lowest and above the highest peak by n_sigma core widths (between "
       "neighbouring peaks the edge is where the rate-weighted line shapes cross)."),
    _o("alpha", "use_quadratic", "energy_mapping.use_quadratic", "bool", True,
       help="Calibrated MeV values from the quadratic (else linear) calibration; both are fitted and reported."),
    _o("alpha", "map_format", "energy_mapping.format", "choice", "8b", choices=("8b", "6b"),
       help="Record layout of the lab's energy_map_*.bin files when they are read."),
    _o("alpha", "map_scale", "energy_mapping.scale", "float", 0.1, "u_SCA per LSB", minimum=0.0, strict=True,
       help="Quantisation step of '6b' energy maps (the lab calls it keV)."),
)

DEPRECATED_KEYS: dict[str, str] = {
    "experiment.width_s2": "fixed S2 width of the old pipeline; the S2 window is measured per set",
    _INT + "dt": "the sampling interval comes from each file's header",
    _XR + "dt": "the sampling interval comes from each file's header",
    **{p + "exclude_index": "histogram bins are never dropped; the background is modelled instead" for p in _FIT},
    "energy_mapping.generate": "never read by the lab either; the alpha artifact is rebuilt when its inputs change",
    "energy_mapping.files_per_chunk": "chunking of the lab's map files; s2book writes one alpha artifact per set",
    "energy_mapping.pattern": "alpha files are found by their channel token (multi_isotope.alpha_channel)",
}
IGNORED_SECTIONS: dict[str, str] = {}

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
