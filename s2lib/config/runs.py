"""Runs and sets: set-name parsing, file discovery, and the frozen run model with its fields.

A raw run folder holds one folder per set (one gate/anode voltage pair), e.g. ``FieldScan_Gate0200_Anode2100``,
each with ``.wfm`` files. ``build_run(config)`` discovers the sets, computes their fields, reduced fields, drift
velocity and drift time with ``s2lib.physics.physics`` and the configuration's gaps, pressure and temperature, and
orders them by drift field. Nothing is ever written below the raw folder.

The run configuration itself (``RunConfig``, ``load_config``) lives in ``s2lib.config.config`` and is re-exported here.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from s2lib.physics import physics
from .config import ConfigWarning, RunConfig, config_from_dict, config_reference_markdown, load_config
from s2lib.errors import ConfigError, DataError

__all__ = [
    "RunConfig", "load_config", "config_from_dict", "config_reference_markdown", "ConfigWarning",
    "SetName", "parse_set_name", "format_set_name", "SILICON_CHANNELS", "channel_of",
    "natural_key", "find_set_files", "DiscoveredSet", "discover_sets", "SetInfo", "Run", "build_run",
    "DataWarning", "MonitorSet", "discover_monitor_sets",
]

SILICON_CHANNELS: frozenset[int] = frozenset({4})
"""Oscilloscope channels of the silicon alpha detector (trigger), never PMT data (domain.md 1.1, 2.1)."""


class DataWarning(UserWarning):
    """A raw-folder oddity that does not stop the run (an unparseable FieldScan folder, ...)."""


# ---------------------------------------------------------------------------------------------- set names
@dataclass(frozen=True)
class SetName:
    """What a set folder's name says: voltages in V, sampling rate in Hz when the name carries it."""

    name: str
    gate_V: int
    anode_V: int
    sampling_rate_Hz: float | None = None


_TOKEN_SPLIT = re.compile(r"[_\-\s]+")
_GATE = re.compile(r"^gate(\d+)v?$", re.IGNORECASE)
_ANODE = re.compile(r"^anode(\d+)v?$", re.IGNORECASE)
_EL = re.compile(r"^el(\d+)v?$", re.IGNORECASE)
_RATE = re.compile(r"^(\d+(?:\.\d+)?)GS(?:sec|s)$", re.IGNORECASE)


def parse_set_name(name: str) -> SetName | None:
    """Parse a set folder name; None when it is not a PMT field-scan set.

    Accepted (tokens separated by ``_``, any order, optional ``V`` suffix, any zero padding):
    ``FieldScan_Gate050_Anode1950``, ``FieldScan_Gate0050_Anode1950``, ``FieldScan_Th228_Gate0075_Anode1975``,
    ``FieldScan_5GSsec_Anode2000V_Gate100V`` (sampling rate 5e9 Hz), and ``EL<V>`` as the anode voltage when
    no ``Anode`` token exists. Folders without ``FieldScan``, alpha-only ``Ch4*`` folders, and names without
    exactly one gate and one anode voltage give None.
    """
    if "fieldscan" not in name.lower() or name.lower().startswith("ch4") or name.startswith("."):
        return None
    found: dict[str, list[str]] = {"gate": [], "anode": [], "el": [], "rate": []}
    for token in _TOKEN_SPLIT.split(name):
        for key, pattern in (("gate", _GATE), ("anode", _ANODE), ("el", _EL), ("rate", _RATE)):
            match = pattern.match(token)
            if match:
                found[key].append(match.group(1))
    anode = found["anode"] or found["el"]
    if len(found["gate"]) != 1 or len(anode) != 1 or len(found["rate"]) > 1:
        return None
    rate = float(found["rate"][0]) * 1e9 if found["rate"] else None
    return SetName(name, int(found["gate"][0]), int(anode[0]), rate)


def format_set_name(gate_V: int, anode_V: int, *, width: int = 4) -> str:
    """The current DAQ's set folder name, ``FieldScan_Gate{gate:04d}_Anode{anode:04d}``."""
    return f"FieldScan_Gate{int(gate_V):0{width}d}_Anode{int(anode_V):0{width}d}"


# ---------------------------------------------------------------------------------------------- files
_CHANNEL = re.compile(r"[_\-]ch(\d+)$", re.IGNORECASE)


def channel_of(file_name: str) -> int | None:
    """Oscilloscope channel tag of a file name (``..._Ch1.wfm``, ``...__CH3.wfm`` → 1, 3), or None."""
    match = _CHANNEL.search(Path(file_name).stem)
    return int(match.group(1)) if match else None


def natural_key(name: str) -> tuple[Any, ...]:
    """Total, deterministic natural-sort key: digit runs compare as numbers (``f2`` < ``f10``), text
    case-insensitively; the exact name breaks ties."""
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts)) + (name,)


def find_set_files(set_path: str | Path, channel_pattern: str | None = None
                   ) -> tuple[tuple[Path, ...], tuple[str, ...]]:
    """The PMT ``.wfm`` files of a set folder in a deterministic order, and any issues found.

    With ``channel_pattern`` (a glob, case-insensitive) only matching files are taken. Without it every
    ``.wfm`` file is taken, except silicon-channel (Ch4) files; if the rest carry more than one channel tag
    the choice is ambiguous and no file is taken (an issue says to set ``data.channel_pattern``).
    Order: the natural order of the whole name (``natural_key``), which is the order of the sequence number
    whatever the DAQ's naming (``_P2_29Wfm``, ``_P7_1000Wfm``, ``__Batch007__``, the simulator's ``_P12_48Wfm``)
    as long as the rest of the name is constant or chronological (dates), and deterministic in every case; no
    name regex is needed. A file's index in this tuple is the first half of its event ids.
    """
    folder = Path(set_path)
    wfm = [p for p in folder.iterdir() if p.suffix.lower() == ".wfm" and not p.name.startswith(".") and p.is_file()]
    issues: list[str] = []
    if channel_pattern is not None:
        chosen = [p for p in wfm if fnmatch.fnmatchcase(p.name.lower(), channel_pattern.lower())]
        if wfm and not chosen:
            issues.append(f"no .wfm file matches data.channel_pattern {channel_pattern!r}")
    else:
        chosen = [p for p in wfm if channel_of(p.name) not in SILICON_CHANNELS]
        channels = sorted({c for c in map(channel_of, (p.name for p in chosen)) if c is not None})
        if wfm and not chosen:
            issues.append("only silicon-channel (Ch4) files")
        elif len(channels) > 1:
            issues.append(f"files of several PMT channels ({', '.join(f'Ch{c}' for c in channels)}): "
                          "set data.channel_pattern")
            chosen = []
    if not wfm:
        issues.append("no .wfm files")
    return tuple(sorted(chosen, key=lambda p: natural_key(p.name))), tuple(issues)


@dataclass(frozen=True)
class DiscoveredSet:
    """A set folder found in a raw run folder, before any physics: its parsed name, path and files."""

    set_name: SetName
    path: Path
    files: tuple[Path, ...]
    issues: tuple[str, ...] = ()


def discover_sets(raw_path: str | Path, *, channel_pattern: str | None = None) -> list[DiscoveredSet]:
    """Find the field-scan sets of a raw run folder, ordered by gate voltage (= drift field), then anode
    voltage, then name. Raises ``DataError`` when there is none (listing what the folder holds); folders
    that look like field scans but whose voltages cannot be read are skipped with a ``DataWarning``."""
    root = Path(raw_path)
    if not root.is_dir():
        raise DataError(f"{root}: not an existing folder")
    entries = sorted(root.iterdir(), key=lambda p: natural_key(p.name))
    found: list[DiscoveredSet] = []
    for entry in entries:
        if not entry.is_dir():
            continue
        parsed = parse_set_name(entry.name)
        if parsed is None:
            low = entry.name.lower()
            if "fieldscan" in low and not low.startswith(("ch4", ".")):
                warnings.warn(f"{entry}: looks like a field-scan set but its gate/anode voltages cannot be read; "
                              "skipped", DataWarning, stacklevel=2)
            continue
        files, issues = find_set_files(entry, channel_pattern)
        found.append(DiscoveredSet(parsed, entry, files, issues))
    if not found:
        names = [e.name + ("/" if e.is_dir() else "") for e in entries]
        shown = ", ".join(names[:20]) + (f", ... ({len(names)} entries)" if len(names) > 20 else "")
        raise DataError(f"{root}: no FieldScan_* set folders; found: {shown or 'nothing (empty folder)'}")
    found.sort(key=lambda d: (d.set_name.gate_V, d.set_name.anode_V, natural_key(d.set_name.name)))
    for a, b in zip(found, found[1:]):
        if (a.set_name.gate_V, a.set_name.anode_V) == (b.set_name.gate_V, b.set_name.anode_V):
            warnings.warn(f"{root}: sets {a.path.name} and {b.path.name} have the same voltages "
                          f"(gate {a.set_name.gate_V} V, anode {a.set_name.anode_V} V)", DataWarning, stacklevel=2)
    return found


# ---------------------------------------------------------------------------------------------- alpha monitors
_SCA_WINDOW = re.compile(r"sca[_\-]?(\d+(?:[p.]\d+)?)[_\-](\d+(?:[p.]\d+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class MonitorSet:
    """A silicon-channel monitoring folder of a single-isotope run (``Ch4_SCA_4-4p8``, ``Ch4_noSCA``).

    These frames are not paired with PMT frames: they serve the alpha spectrum and its calibration
    (notes/alpha.md 1.2, 2.7). ``sca_window``: the hardware SCA gate read from the name, u_SCA (``4p8`` = 4.8),
    or None; ``full_spectrum``: an ungated (``noSCA``) folder, the one to calibrate on."""

    name: str
    path: Path
    files: tuple[Path, ...]
    sca_window: tuple[float, float] | None
    full_spectrum: bool


def discover_monitor_sets(raw_path: str | Path) -> list[MonitorSet]:
    """The ``Ch4*`` folders of a raw run folder (case-insensitive), in natural order, with their ``.wfm``
    files in natural order; an empty list when there is none. PMT set discovery ignores these folders."""
    root = Path(raw_path)
    if not root.is_dir():
        raise DataError(f"{root}: not an existing folder")
    found: list[MonitorSet] = []
    for entry in sorted(root.iterdir(), key=lambda p: natural_key(p.name)):
        if not entry.is_dir() or not entry.name.lower().startswith("ch4"):
            continue
        files = tuple(sorted((p for p in entry.iterdir() if p.suffix.lower() == ".wfm" and p.is_file()
                              and not p.name.startswith(".")), key=lambda p: natural_key(p.name)))
        low = entry.name.lower()
        match = _SCA_WINDOW.search(entry.name) if "nosca" not in low else None
        window = None
        if match:
            lo, hi = (float(g.lower().replace("p", ".")) for g in match.groups())
            window = (lo, hi) if lo < hi else None
        found.append(MonitorSet(entry.name, entry, files, window, "nosca" in low))
    return found


# ---------------------------------------------------------------------------------------------- run model
@dataclass(frozen=True)
class SetInfo:
    """One set with its fields and transport (units in the names). ``issues`` is non-empty for a set that
    cannot be processed (no PMT files, zero drift field, ...): later stages report it as failed."""

    name: str
    path: Path
    files: tuple[Path, ...]
    gate_V: int
    anode_V: int
    sampling_rate_Hz: float | None
    drift_field_V_cm: float
    el_field_V_cm: float
    reduced_drift_field_Td: float
    reduced_el_field_Td: float
    drift_velocity_mm_us: float
    drift_time_us: float
    issues: tuple[str, ...] = ()

    @property
    def n_files(self) -> int:
        """Number of PMT files (0 for an empty set)."""
        return len(self.files)

    @property
    def ok(self) -> bool:
        """Whether the set can be processed (no issues)."""
        return not self.issues

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (no file list; ``n_files`` instead)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "files"}
        out.update(path=str(self.path), n_files=self.n_files, issues=list(self.issues))
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _set_info(found: DiscoveredSet, exp: Any, density: float) -> SetInfo:
    sn = found.set_name
    issues = list(found.issues)
    e_drift = float(physics.drift_field_V_cm(sn.gate_V, exp.drift_gap))
    e_el = float(physics.el_field_V_cm(sn.anode_V, sn.gate_V, exp.el_gap))
    rd = float(physics.reduced_field_Td(e_drift, density))
    if rd > 0:
        v = float(physics.drift_velocity_mm_us(rd))
        t = float(physics.drift_time_us(exp.drift_gap, v))
    else:
        v = t = math.nan
        issues.append("zero drift field (gate at 0 V): no drift velocity")
    if e_el <= 0:
        issues.append(f"anode ({sn.anode_V} V) not above gate ({sn.gate_V} V): no electroluminescence field")
    return SetInfo(sn.name, found.path, found.files, sn.gate_V, sn.anode_V, sn.sampling_rate_Hz, e_drift, e_el,
                   rd, float(physics.reduced_field_Td(e_el, density)), v, t, tuple(issues))


@dataclass(frozen=True)
class Run:
    """A run: its configuration, its sets ordered by drift field (ties by anode voltage), the gas density (cm⁻³)."""

    config: RunConfig
    sets: tuple[SetInfo, ...]
    gas_density_cm3: float

    @property
    def run_id(self) -> str:
        """The configuration's run id."""
        return self.config.run_id

    @property
    def output_dir(self) -> Path:
        """``output_base / run_id``."""
        return self.config.output_dir

    @property
    def set_names(self) -> tuple[str, ...]:
        """Set names in drift-field order."""
        return tuple(s.name for s in self.sets)

    def get_set(self, name: str) -> SetInfo:
        """The set called ``name``; ``DataError`` listing the known sets otherwise."""
        for info in self.sets:
            if info.name == name:
                return info
        raise DataError(f"run {self.run_id}: no set {name!r}; sets: {', '.join(self.set_names) or 'none'}")

    def set_output_dir(self, name: str) -> Path:
        """Artifact folder of one set: ``output_dir / name`` (the set must belong to the run)."""
        return self.output_dir / self.get_set(name).name

    def el_fields(self) -> tuple[float, ...]:
        """Distinct EL fields of the sets (V/cm, ascending, equal to 1e-6 V/cm merged), for per-EL-field
        calibration: g_S2 depends strongly on the EL field."""
        return tuple(sorted({round(s.el_field_V_cm, 6) for s in self.sets}))

    def sets_at_el_field(self, el_field_V_cm: float, *, tolerance_V_cm: float = 1e-3) -> tuple[SetInfo, ...]:
        """The sets whose EL field is within ``tolerance_V_cm`` of ``el_field_V_cm``."""
        return tuple(s for s in self.sets if abs(s.el_field_V_cm - el_field_V_cm) <= tolerance_V_cm)

    def with_sets(self, names: Iterable[str]) -> Run:
        """The same run restricted to ``names`` (kept in drift-field order); ``DataError`` for unknown names."""
        wanted = list(names)
        for name in wanted:
            self.get_set(name)
        return dataclasses.replace(self, sets=tuple(s for s in self.sets if s.name in set(wanted)))

    def run_info(self) -> dict[str, Any]:
        """The content of ``run_info.json``: sets with voltages, fields, reduced fields, drift velocity and time,
        file counts and issues, and every constant used with its unit and provenance."""
        exp = self.config.experiment

        def const(value: Any, unit: str, source: str) -> dict[str, Any]:
            return {"value": value, "unit": unit, "source": source}

        cfg = f"configuration {self.config.source}" if self.config.source else "configuration"
        return {
            "schema_version": 1,
            "run_id": self.run_id,
            "description": self.config.description,
            "config_file": str(self.config.source) if self.config.source else None,
            "raw_data_path": str(self.config.raw_data_path),
            "output_dir": str(self.output_dir),
            "target_isotope": exp.target_isotope,
            "el_field_label_V_cm": exp.el_field,
            "sampling_rate_config_Hz": exp.sampling_rate,
            "constants": {
                "pressure": const(exp.pressure, "bar", cfg),
                "temperature": const(exp.temperature, "K", cfg),
                "gas_density": const(self.gas_density_cm3, "cm^-3", "ideal gas n = P/(k_B T), physics.gas_density_cm3"),
                "boltzmann": const(physics.BOLTZMANN_J_PER_K, "J/K", "exact, SI 2019"),
                "drift_gap": const(exp.drift_gap, "cm", cfg),
                "el_gap": const(exp.el_gap, "cm", cfg),
                "W_value": const(exp.W_value, "eV", cfg),
                "E_gamma_xray": const(exp.E_gamma_xray, "eV", cfg),
                "recoil_energy": const(exp.recoil_energy, "keV", exp.recoil_energy_source),
                "N_xray_expected": const(float(physics.expected_electrons(exp.E_gamma_xray, exp.W_value)), "e-",
                                         "E_gamma_xray / W_value"),
                "N_recoil_expected": const(float(physics.expected_electrons(exp.recoil_energy * 1e3, exp.W_value)),
                                           "e-", "recoil_energy / W_value"),
                "drift_velocity_params": const(list(physics.DRIFT_VELOCITY_PARAMS), "mm/us vs Td",
                                               "fit to Njoya et al., NIM A 972 (2020) 163965, Fig. 5"),
            },
            "units": {"voltage": "V", "field": "V/cm", "reduced_field": "Td", "velocity": "mm/us", "time": "us"},
            "n_sets": len(self.sets),
            "n_files": sum(s.n_files for s in self.sets),
            "el_fields_V_cm": list(self.el_fields()),
            "sets": [s.to_dict() for s in self.sets],
        }


def build_run(config: RunConfig) -> Run:
    """Discover the sets of ``config.raw_data_path`` and compute their fields and transport.

    Raises ``ConfigError`` (``data.raw_data_path``) when the raw folder is missing, ``ConfigError`` (``sets``)
    when the ``sets`` filter names a set that does not exist, ``DataError`` when there are no field-scan sets.
    Sets without PMT files are kept with an issue (``n_files == 0``). Reads only; writes nothing.
    """
    raw = config.raw_data_path
    if not raw.is_dir():
        raise ConfigError("data.raw_data_path", f"expected an existing folder, {raw} does not exist", config.source)
    exp = config.experiment
    density = float(physics.gas_density_cm3(exp.pressure, exp.temperature))
    infos = [_set_info(found, exp, density) for found in discover_sets(raw, channel_pattern=config.channel_pattern)]
    infos.sort(key=lambda s: (s.drift_field_V_cm, s.anode_V, natural_key(s.name)))
    if config.sets is not None:
        known = {s.name for s in infos}
        missing = [n for n in config.sets if n not in known]
        if missing:
            raise ConfigError("sets", f"no such set(s) {', '.join(missing)} in {raw}; sets: "
                              f"{', '.join(s.name for s in infos)}", config.source)
        infos = [s for s in infos if s.name in set(config.sets)]
    return Run(config, tuple(infos), density)
