"""Stage definitions, run specifications and up-to-date decisions of the report runner.

Internal to :mod:`s2lib.report.report` (which re-exports the public names) and :mod:`s2lib.report.book`. A *plan* says, for
one run and one stage, whether the executed notebook is up to date and, if not, why - computed from the current
inputs (:mod:`s2lib.io.manifest` fingerprints) against what the run's manifest recorded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from s2lib.io import manifest as mf
from s2lib.errors import S2BookError
from ._notebook_files import read_template
from .project import template_path

__all__ = [
    "Stage", "STAGES", "PER_RUN_STAGES", "STAGE_NAMES", "run_stages", "SUMMARY", "SUMMARY_DIR", "RunSpec", "StagePlan",
    "Fingerprints", "load_run_spec", "validate_stages", "plan_stage", "plan_run", "plan_summary",
    "summary_inputs", "PACKAGE_DIR",
]

PACKAGE_DIR = Path(__file__).resolve().parent.parent   # the s2lib package (this file is s2lib/report/_cache.py)
SUMMARY = "summary"
#: Folder of the cross-run summary's artifacts and manifest, below the first run's ``data.output_base``.
SUMMARY_DIR = "_summary"


@dataclass(frozen=True)
class Stage:
    """One report stage: a template notebook ``<templates>/<name>.md`` executed per run (or once, fan-in).

    Attributes:
        name: stage name, also the template's and the executed notebook's file stem.
        upstream: stages whose data artifacts (by sha256) are inputs of this one.
        config_keys: key selectors of the run YAML this stage reads (see :func:`s2lib.io.manifest.select_keys`);
            ``None`` means the whole configuration.
        reads_raw: whether the raw ``.wfm`` files (name, size, mtime) are inputs.
        per_run: False for the cross-run summary.
        only_if: dotted key of the run's parameters that must be true for the stage to apply to the run (None:
            every run); a stage that does not apply is neither run nor required upstream (the alpha stage).
    """

    name: str
    upstream: tuple[str, ...] = ()
    config_keys: tuple[str, ...] | None = None
    reads_raw: bool = False
    per_run: bool = True
    only_if: str | None = None

    def applies(self, parameters: Mapping[str, Any]) -> bool:
        """Whether this stage runs for a run with these (tracked) parameters."""
        value: Any = parameters
        for part in (self.only_if.split(".") if self.only_if else ()):
            value = value.get(part) if isinstance(value, Mapping) else None
        return bool(value) if self.only_if else True


#: The stages in execution order. Integration reads everything except the keys only later stages read
#: (conservative: an unknown new key re-runs integration); fitting and calibration read only their sections.
STAGES: tuple[Stage, ...] = (
    Stage("integration", reads_raw=True,
          config_keys=("*", "!description", "!pipeline.fitting", "!pipeline.integration.fit_config",
                       "!pipeline.xray_classification.bin_cuts", "!pipeline.xray_classification.nbins",
                       "!pipeline.xray_classification.model", "!calibration", "!recombination_analysis",
                       "!multi_isotope", "!energy_mapping")),
    # alpha-tagged runs only (multi_isotope.enabled): silicon channel, spectrum calibration, tags, activity
    Stage("alpha", reads_raw=True, only_if="multi_isotope.enabled",
          config_keys=("run_id", "data", "sets", "multi_isotope", "energy_mapping")),
    Stage("fitting", upstream=("integration", "alpha"),
          config_keys=("run_id", "experiment", "pipeline.fitting", "pipeline.integration.fit_config",
                       "multi_isotope.enabled")),
    Stage("calibration", upstream=("integration", "alpha", "fitting"),
          config_keys=("run_id", "experiment", "calibration", "recombination_analysis",
                       "pipeline.xray_classification.bin_cuts", "pipeline.xray_classification.nbins",
                       "pipeline.xray_classification.model", "pipeline.integration.fit_config",
                       "pipeline.fitting", "multi_isotope.enabled")),
    Stage(SUMMARY, upstream=("integration", "alpha", "fitting", "calibration"), per_run=False),
)
PER_RUN_STAGES = tuple(s for s in STAGES if s.per_run)
STAGE_NAMES = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}


def run_stages(spec: "RunSpec") -> tuple[Stage, ...]:
    """The per-run stages that apply to this run, in order (:meth:`Stage.applies`)."""
    return tuple(s for s in PER_RUN_STAGES if s.applies(spec.parameters))


@dataclass(frozen=True)
class RunSpec:
    """What the runner needs of one validated run configuration."""

    run_id: str
    config_path: Path
    output_dir: Path
    raw_data_path: Path
    parameters: dict[str, Any] = field(hash=False, compare=False)
    jobs: int | None = None


def load_run_spec(path: str | Path) -> RunSpec:
    """Validate one run YAML with :func:`s2lib.config.config.load_config` and return its :class:`RunSpec`.

    The validation (run_id rule, raw folder present, output not inside the raw folder, every key's type and
    range) is the configuration module's; it raises :class:`ConfigError` naming the key at fault. The stages are
    keyed on the validated configuration with every default filled in and only result-affecting keys (no
    description, jobs, labels): writing a default explicitly, or moving a key to the lab's other location for
    it, then re-runs nothing.
    """
    from s2lib.config.config import load_config

    cfg = load_config(Path(path).resolve())
    return RunSpec(str(cfg.run_id), Path(cfg.source).resolve(), Path(cfg.output_dir).resolve(),
                   Path(cfg.raw_data_path).resolve(), cfg.to_dict(tracked_only=True), cfg.jobs)


def validate_stages(stages: Sequence[str] | None) -> list[str]:
    """The requested stage names in execution order (all when None); unknown names raise S2BookError."""
    if stages is None:
        return list(STAGE_NAMES)
    unknown = [s for s in stages if s not in STAGE_NAMES]
    if unknown:
        raise S2BookError(f"unknown stage(s) {', '.join(unknown)}; known: {', '.join(STAGE_NAMES)}")
    return [s for s in STAGE_NAMES if s in stages]


@dataclass
class Fingerprints:
    """Fingerprints shared by every stage of one invocation (computed once: s2lib tree, environment)."""

    templates: Path
    source: dict[str, str] = field(default_factory=lambda: mf.source_fingerprint(PACKAGE_DIR))
    env: dict[str, str | None] = field(default_factory=mf.environment_fingerprint)
    _tpl: dict[str, str] = field(default_factory=dict)

    def template(self, stage: str) -> str:
        """Fingerprint of ``<templates>/<stage>.md``; S2BookError when the template is missing."""
        if stage not in self._tpl:
            path = template_path(self.templates, stage)
            if not path.is_file():
                raise S2BookError(f"stage {stage}: notebook template not found: {path}")
            self._tpl[stage] = mf.template_fingerprint(read_template(path))
        return self._tpl[stage]


@dataclass
class StagePlan:
    """Whether one stage of one run is up to date; ``reasons`` (empty when it is) say why it would run."""

    run_id: str
    stage: str
    reasons: list[str]
    parts: dict[str, Any]
    key: str
    blocked: str | None = None

    @property
    def up_to_date(self) -> bool:
        return not self.reasons


def _owned_artifacts(stages: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The artifacts of stage ``name`` that no later stage rewrote (those are checked on disk for ``name``)."""
    order = [s.name for s in STAGES]
    later = set()
    for other in order[order.index(name) + 1:]:
        later.update((stages.get(other) or {}).get("artifacts") or {})
    return {k: v for k, v in ((stages.get(name) or {}).get("artifacts") or {}).items() if k not in later}


def _disk_changes(root: Path, owned: Mapping[str, Any]) -> list[str]:
    if not owned:
        return []
    current = mf.hash_artifacts(root, owned, known=owned)
    missing = sorted(set(owned) - set(current))
    changed = sorted(k for k in current if current[k]["sha256"] != owned[k].get("sha256"))
    out = []
    if missing:
        out.append(f"artifacts missing on disk: {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
    if changed:
        out.append(f"artifacts changed on disk: {', '.join(changed[:3])}" + (" ..." if len(changed) > 3 else ""))
    return out


def _entry_reasons(entry: Mapping[str, Any] | None, parts: dict[str, Any], key: str) -> list[str]:
    if not entry:
        return ["never run"]
    if entry.get("status") == "failed":
        err = entry.get("error") or {}
        return [f"last run failed (cell {err.get('cell')}: {err.get('ename')})" if err else "last run failed"]
    notebook = entry.get("notebook")
    if not notebook or not Path(notebook).is_file():
        return ["executed notebook missing"]
    if entry.get("key") != key:
        return mf.explain_parts(entry.get("parts") or {}, parts)
    return []


def _good(entry: Mapping[str, Any] | None) -> bool:
    return bool(entry) and entry.get("status") in ("ok", "skipped-up-to-date")


def plan_stage(stage: Stage, spec: RunSpec, manifest: Mapping[str, Any] | None, fp: Fingerprints,
               raw: dict[str, list[int]] | None = None, will_run: Sequence[str] = ()) -> StagePlan:
    """Plan one per-run stage. ``will_run`` lists upstream stages that run before it in this invocation."""
    stages = (manifest or {}).get("stages") or {}
    inputs: dict[str, Any] = {}
    if stage.reads_raw:
        inputs["raw"] = mf.raw_fingerprint(spec.raw_data_path) if raw is None else raw
    upstream = tuple(u for u in stage.upstream if _BY_NAME[u].applies(spec.parameters))
    if upstream:
        inputs["upstream"] = {u: mf.data_artifacts((stages.get(u) or {}).get("artifacts") or {})
                              for u in upstream}
    parts = {"template": fp.template(stage.name), "s2lib": fp.source,
             "params": mf.select_keys(spec.parameters, stage.config_keys), "inputs": inputs, "env": fp.env}
    key = mf.key_digest(parts)
    entry = stages.get(stage.name)
    reasons = _entry_reasons(entry, parts, key)
    if not reasons:
        reasons = _disk_changes(spec.output_dir, _owned_artifacts(stages, stage.name))
    blocked = None
    for up in upstream:
        if up in will_run:
            reasons.append(f"upstream stage {up} runs first (re-checked after it)")
        elif not _good(stages.get(up)):
            blocked = f"upstream stage {up} has not run successfully"
            reasons.append(blocked)
    return StagePlan(spec.run_id, stage.name, reasons, parts, key, blocked)


def plan_run(spec: RunSpec, manifest: Mapping[str, Any] | None, fp: Fingerprints,
             selected: Sequence[str] | None = None, force: bool = False) -> list[StagePlan]:
    """Plans of every per-run stage in order, assuming stale selected stages run (for ``status``)."""
    raw = mf.raw_fingerprint(spec.raw_data_path)
    selected = [s.name for s in PER_RUN_STAGES] if selected is None else list(selected)
    will_run: list[str] = []
    plans = []
    for stage in run_stages(spec):
        plan = plan_stage(stage, spec, manifest, fp, raw=raw, will_run=will_run)
        if force and stage.name in selected and plan.up_to_date:
            plan.reasons.append("forced")
        if stage.name in selected and not plan.up_to_date and not plan.blocked:
            will_run.append(stage.name)
        plans.append(plan)
    return plans


def summary_inputs(manifests: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """The summary's ``inputs`` part: per run, the data artifacts of each per-run stage."""
    out = {}
    for run_id, man in sorted(manifests.items()):
        stages = (man or {}).get("stages") or {}
        out[run_id] = {s.name: mf.data_artifacts((stages.get(s.name) or {}).get("artifacts") or {})
                       for s in PER_RUN_STAGES}
    return out


def plan_summary(specs: Sequence[RunSpec], run_manifests: Mapping[str, Mapping[str, Any] | None],
                 summary_manifest: Mapping[str, Any] | None, fp: Fingerprints,
                 runs_will_run: Sequence[str] = ()) -> StagePlan:
    """Plan the cross-run summary over ``specs`` (fan-in: any run's changed data artifacts re-run it)."""
    parts = {"template": fp.template(SUMMARY), "s2lib": fp.source,
             "params": {"runs": {s.run_id: str(s.config_path) for s in specs}},
             "inputs": {"runs": summary_inputs(run_manifests)}, "env": fp.env}
    key = mf.key_digest(parts)
    entry = ((summary_manifest or {}).get("stages") or {}).get(SUMMARY)
    reasons = _entry_reasons(entry, parts, key)
    if not reasons and summary_manifest:
        reasons = _disk_changes(Path(summary_manifest["output_dir"]),
                                _owned_artifacts(summary_manifest.get("stages") or {}, SUMMARY))
    blocked = None
    for spec in specs:
        stages = (run_manifests.get(spec.run_id) or {}).get("stages") or {}
        if spec.run_id in runs_will_run:
            reasons.append(f"run {spec.run_id} runs first (re-checked after it)")
        elif not all(_good(stages.get(s.name)) for s in run_stages(spec)):
            blocked = f"run {spec.run_id} has stages that have not run successfully"
            reasons.append(blocked)
    return StagePlan(SUMMARY, SUMMARY, reasons, parts, key, blocked)
