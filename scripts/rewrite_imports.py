#!/usr/bin/env python3
"""Rewrite references to the old flat ``s2lib`` modules to the layered subpackages (issue 10, item 1).

Usage (from the repository root)::

    python3 scripts/rewrite_imports.py [PATH ...]      # default: the whole repository
    python3 scripts/rewrite_imports.py --check [PATH ...]   # list files that would change, exit 1 if any

What is rewritten, in ``.py``, ``.md``, ``.toml``, ``.yml``/``.yaml``, ``.ipynb`` and ``.txt`` files:

* Python import statements (parsed with :mod:`ast`): ``from s2lib.X import a, b``, ``from s2lib import X``,
  ``import s2lib.X [as y]``, and relative imports inside ``s2lib`` (``from .X import a``, ``from . import X``,
  ``from ..X import a`` in ``s2lib/alpha``). A relative import that still resolves from the file's current place
  is left alone; one written for the flat layout is resolved as ``s2lib.X`` and rewritten: relative when the
  target is in the file's own subpackage, absolute otherwise. Names of a module that was split are grouped
  by the module they now live in (:data:`SYMBOL_MAP`).
* Dotted references anywhere in the text: ``"s2lib.fitting.fit_histogram"`` (mock.patch targets, Sphinx
  roles, extension names in ``_config.yml``, module lists), ``s2lib.fitting.X`` attribute access.
* File paths ``s2lib/fitting.py`` (mutmut ``only_mutate``, docs).

The map is explicit (:data:`MODULE_MAP`, :data:`SYMBOL_MAP`); the rewrite is idempotent (a reference that
already names a module of the new layout is never touched) and works on files that were not in the tree
when the map was written (other branches merge the restructure and run this over their own files).
"""
from __future__ import annotations

import argparse
import ast
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: old flat module -> its module in the layered package (one commit of ``git mv``).
MODULE_MAP: dict[str, str] = {
    # physics: constants and formulas (no I/O, no fits)
    "s2lib.physics": "s2lib.physics.physics",
    # io: raw files, artifacts, manifests
    "s2lib.wfm": "s2lib.io.wfm",
    "s2lib._wfm_layout": "s2lib.io._wfm_layout",
    "s2lib.store": "s2lib.io.store",
    "s2lib.manifest": "s2lib.io.manifest",
    # config: run YAML, schema, run/set discovery
    "s2lib.config": "s2lib.config.config",
    "s2lib.config_schema": "s2lib.config.config_schema",
    "s2lib.runs": "s2lib.config.runs",
    # signal: waveform kernels, X-ray selection, timing, the one-pass engine
    "s2lib.waveform": "s2lib.signal.waveform",
    "s2lib.xray": "s2lib.signal.xray",
    "s2lib.timing": "s2lib.signal.timing",
    "s2lib.integration": "s2lib.signal.integration",
    # stats: fits and line shapes (never draw)
    "s2lib.fitting": "s2lib.stats.fitting",
    "s2lib._fit_models": "s2lib.stats._fit_models",
    "s2lib._fit_config": "s2lib.stats._fit_config",
    "s2lib.estimators": "s2lib.stats.estimators",
    "s2lib._mixture": "s2lib.stats._mixture",
    "s2lib.toys": "s2lib.stats.toys",
    # calib: g_S2 calibration, its sources, recombination fits (numbers only)
    "s2lib.calibration": "s2lib.calib.calibration",
    "s2lib.gs2_sources": "s2lib.calib.gs2_sources",
    "s2lib.recombination": "s2lib.calib.recombination",
    # sim: the run simulator
    "s2lib.simulate": "s2lib.sim.simulate",
    "s2lib._sim_model": "s2lib.sim._sim_model",
    "s2lib._sim_truth": "s2lib.sim._sim_truth",
    # analysis: the seed stages that orchestrate and draw, figures, notebook display helpers
    "s2lib.pipeline": "s2lib.analysis.pipeline",
    "s2lib.plotting": "s2lib.analysis.plotting",
    "s2lib._plot_helpers": "s2lib.analysis._plot_helpers",
    "s2lib.report_helpers": "s2lib.analysis.report_helpers",
    "s2lib.report_format": "s2lib.analysis.report_format",
    "s2lib.badfiles": "s2lib.analysis.badfiles",
    # validate: closure against simulator truth, coverage, the validation chapter
    "s2lib.validate": "s2lib.validate.validate",
    "s2lib._validate_rules": "s2lib.validate._validate_rules",
    "s2lib._validate_report": "s2lib.validate._validate_report",
    "s2lib._validate_coverage": "s2lib.validate._validate_coverage",
    "s2lib._book_validation": "s2lib.validate._book_validation",
    # report: the papermill runner, stage cache, book assembly, locks, fault injection
    "s2lib.report": "s2lib.report.report",
    "s2lib._cache": "s2lib.report._cache",
    "s2lib.book": "s2lib.report.book",
    "s2lib._notebook_files": "s2lib.report._notebook_files",
    "s2lib.runlock": "s2lib.report.runlock",
    "s2lib.sphinx_fixes": "s2lib.report.sphinx_fixes",
    "s2lib.faultinject": "s2lib.report.faultinject",
}

_FRAMES = "s2lib.signal.frames"
_XRAY = "s2lib.signal.xray"
_WAVEFORM_MOVED = {
    # the frame-level kernels went to signal/frames.py
    **{n: _FRAMES for n in ("raw_gain_baseline", "pedestal_mV", "to_signal_mV", "moving_sum", "moving_average",
                            "sample_index", "window_slice", "_frames", "_per_frame", "_chunks", "_row_sums",
                            "_clipped_mean", "_acc_dtype", "_MovingSum", "_CHUNK_ELEMENTS", "_TIME_EPS")},
    # waveform no longer re-exports the X-ray kernel (that re-export was the waveform <-> xray cycle)
    **{n: _XRAY for n in ("XRayReason", "XRayResult", "classify_xrays", "reason_counts")},
}
_FIT_STAGE = "s2lib.analysis.fit_stage"
_FITTING_MOVED = {
    # fit_run_s2 draws with flag_plot: it moved up to the analysis layer (fits never draw)
    "fit_run_s2": _FIT_STAGE, "_summary": _FIT_STAGE, "_plotter": _FIT_STAGE,
    # the result type and the deviance went to stats/fit_result.py (estimators and fitting share them)
    "_as_config": "s2lib.stats.fit_result", "_float": "s2lib.stats.fit_result", "_jsonable": "s2lib.stats.fit_result",
    "_SCHEMA": "s2lib.stats.fit_result",
}
_SIM_PROFILE = "s2lib.sim.profile"
_SIMULATE_MOVED = {"SimulationProfile": _SIM_PROFILE, "PROFILES": _SIM_PROFILE, "STANDARD_GATES_V": _SIM_PROFILE}

_CAL_STAGE = "s2lib.analysis.calibrate_stage"
# the orchestrating stage (it draws) moved up to the analysis layer; calib keeps the numbers
_CALIBRATION_MOVED = {n: _CAL_STAGE for n in ("calibrate_and_analyze", "run_calibration_analysis", "_constants",
                                              "_load_ion", "_fit_config", "_write", "_figures")}

_RECOMB_MOVED = {n: "s2lib.calib.recomb_table" for n in ('IonMean', 'electrons_and_recombination', 'ion_mean', 'recombination_table')}

#: names that moved out of a module when it was split: module (old flat or new) -> {name: new module}.
#: A name not listed stays in the module MODULE_MAP gives.
SYMBOL_MAP: dict[str, dict[str, str]] = {
    "s2lib.waveform": _WAVEFORM_MOVED, "s2lib.signal.waveform": _WAVEFORM_MOVED,
    "s2lib.fitting": _FITTING_MOVED, "s2lib.stats.fitting": _FITTING_MOVED,
    "s2lib.simulate": _SIMULATE_MOVED, "s2lib.sim.simulate": _SIMULATE_MOVED,
    "s2lib.recombination": _RECOMB_MOVED, "s2lib.calib.recombination": _RECOMB_MOVED,
    "s2lib.calibration": _CALIBRATION_MOVED, "s2lib.calib.calibration": _CALIBRATION_MOVED,
}

_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_DOTTED = re.compile(rf"\bs2lib((?:\.{_IDENT})+)")
_PATH = re.compile(rf"\bs2lib/({_IDENT})\.py\b")
_FROM_ANY = re.compile(rf"\bfrom[ \t]+(s2lib(?:\.{_IDENT})*)[ \t]+import[ \t]+"
                       rf"({_IDENT}(?:[ \t]+as[ \t]+{_IDENT})?(?:[ \t]*,[ \t]*{_IDENT}(?:[ \t]+as[ \t]+{_IDENT})?)*)")
SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".ipynb", ".txt", ".cfg"}
SKIP_DIRS = {".git", ".venv", "venv", "_build", "__pycache__", "node_modules", "mutants", ".pytest_cache",
             ".hypothesis", "build", "dist"}
#: records of the old layout kept as they were (the mutation scores measured before the restructure)
SKIP_FILES = {"mutation-scores-before.md", "SOURCES.txt", "test_layers.py"}   # test_layers: old paths on purpose


def _existing_modules(root: Path) -> set[str]:
    """Dotted names of every module and package under ``root/s2lib`` as the tree is now."""
    out: set[str] = set()
    pkg = root / "s2lib"
    for f in pkg.rglob("*.py"):
        if "__pycache__" in f.parts:
            continue
        parts = f.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.add(".".join(parts))
    return out


MODULES: set[str] = set()


def target(module: str, name: str | None) -> str:
    """New module of ``name`` imported from ``module`` (or of ``module`` itself when ``name`` is None)."""
    if name is not None and name in SYMBOL_MAP.get(module, {}):
        return SYMBOL_MAP[module][name]
    new = MODULE_MAP.get(module, module)
    if name is not None and name in SYMBOL_MAP.get(new, {}):
        return SYMBOL_MAP[new][name]
    return new


def _is_submodule(module: str, name: str) -> bool:
    return f"{module}.{name}" in MODULES


def regroup(module: str, names: list[tuple[str, str | None]]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``from module import names`` -> [(module, names), ...] in the new layout (order kept, grouped)."""
    groups: dict[str, list[tuple[str, str | None]]] = {}
    for name, alias in names:
        if module == "s2lib" and f"s2lib.{name}" in MODULE_MAP:
            parent, _, leaf = MODULE_MAP[f"s2lib.{name}"].rpartition(".")
            groups.setdefault(parent, []).append((leaf, alias if alias else (name if leaf != name else None)))
        elif module in MODULE_MAP and _is_submodule(module, name):
            groups.setdefault(module, []).append((name, alias))   # new package, its submodule: already new
        elif module in MODULE_MAP or module in SYMBOL_MAP:
            groups.setdefault(target(module, name), []).append((name, alias))
        else:
            groups.setdefault(module, []).append((name, alias))
    return list(groups.items())


def _is_package(dotted: str) -> bool:
    return (ROOT / Path(*dotted.split(".")) / "__init__.py").exists()


def _names_text(names: list[tuple[str, str | None]]) -> str:
    return ", ".join(n if not a or a == n else f"{n} as {a}" for n, a in names)


def _from_stmt(module: str, names: list[tuple[str, str | None]], indent: str) -> str:
    text = f"from {module} import {_names_text(names)}"
    if len(indent) + len(text) <= 120:
        return text
    inner = indent + "    "
    lines, cur = [], ""
    for item in _names_text(names).split(", "):
        piece = (cur + ", " + item) if cur else item
        if len(inner) + len(piece) > 116 and cur:
            lines.append(cur + ",")
            cur = item
        else:
            cur = piece
    lines.append(cur)
    return f"from {module} import (\n" + "\n".join(inner + ln for ln in lines) + f"\n{indent})"


def _relative_for(file_pkg: str, module: str) -> tuple[str, str | None]:
    """(from-part, leaf) to import ``module`` from a file in ``file_pkg``: relative within the package."""
    parent, _, leaf = module.rpartition(".")
    if parent == file_pkg:
        return ".", leaf
    return module, None


def _module_of_file(path: Path) -> tuple[str, str] | None:
    """(module, package) dotted names of a file inside an ``s2lib`` folder, else None."""
    parts = path.resolve().with_suffix("").parts
    if "s2lib" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("s2lib")
    mod = parts[i:]
    if mod[-1] == "__init__":
        return ".".join(mod[:-1]), ".".join(mod[:-1])
    return ".".join(mod), ".".join(mod[:-1])


def _rewrite_python_imports(text: str, path: Path) -> str:
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text
    where = _module_of_file(path)
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for ln in lines:
        offsets.append(offsets[-1] + len(ln))
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        new = None
        start_line = lines[node.lineno - 1] if isinstance(node, (ast.Import, ast.ImportFrom)) else ""
        prefix = start_line[: node.col_offset] if start_line else ""
        indent = prefix if prefix.strip() == "" else ""
        sep = "\n" + indent if prefix.strip() == "" else "; "
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                (node.module == "s2lib" or node.module.startswith("s2lib.")):
            names = [(a.name, a.asname) for a in node.names]
            groups = regroup(node.module, names)
            if groups != [(node.module, names)]:
                new = sep.join(_from_stmt(m, ns, indent) for m, ns in groups)
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and where is not None:
            new = _rewrite_relative(node, where, indent, sep)
        elif isinstance(node, ast.Import):
            parts, changed = [], False
            for a in node.names:
                name = a.name
                if name in MODULE_MAP and not _is_submodule_path(name):
                    name, changed = MODULE_MAP[name], True
                parts.append(name if not a.asname else f"{name} as {a.asname}")
            if changed:
                new = "import " + ", ".join(parts)
        if new is not None:
            # ast offsets are utf-8 byte offsets; convert to str offsets
            s = offsets[node.lineno - 1] + len(lines[node.lineno - 1].encode()[: node.col_offset].decode())
            e = offsets[node.end_lineno - 1] + len(lines[node.end_lineno - 1].encode()[: node.end_col_offset].decode())
            edits.append((s, e, new))
    for s, e, new in sorted(edits, reverse=True):
        text = text[:s] + new + text[e:]
    return text


def _is_submodule_path(name: str) -> bool:
    """``import s2lib.config.config``-like names are already new."""
    return False


def _resolve_relative(level: int, module: str | None, pkg: str) -> str:
    parts = pkg.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _rewrite_relative(node: ast.ImportFrom, where: tuple[str, str], indent: str, sep: str) -> str | None:
    _, pkg = where
    names = [(a.name, a.asname) for a in node.names]
    groups: dict[str, list[tuple[str, str | None]]] = {}   # absolute module -> names (from-import)
    mods: list[tuple[str, str | None]] = []                 # absolute modules imported as names
    changed = False
    if node.module:
        here = _resolve_relative(node.level, node.module, pkg)
        if here in MODULE_MAP and here in MODULES:   # an old module name that is now a package (s2lib.report)
            groups_p = regroup(here, names)
            if groups_p == [(here, names)]:
                return None
            for m, ns in groups_p:
                groups.setdefault(m, []).extend(ns)
            changed = True
            names = []
        elif here in MODULES:
            moved = SYMBOL_MAP.get(here, {})
            if not any(n in moved for n, _ in names):
                return None
            for n, a in names:
                groups.setdefault(moved.get(n, here), []).append((n, a))
            changed = True
            names = []
        flat = f"s2lib.{node.module}"
        if not names:
            pass
        elif flat not in MODULES and flat not in MODULE_MAP and flat not in SYMBOL_MAP:
            return None
        for n, a in names:
            groups.setdefault(target(flat, n) if (flat in MODULE_MAP or flat in SYMBOL_MAP) else flat,
                              []).append((n, a))
        changed = True
    else:
        base = _resolve_relative(node.level, None, pkg)
        for n, a in names:
            if f"{base}.{n}" in MODULES:
                mods.append((f"{base}.{n}", a))
                continue
            flat = f"s2lib.{n}"
            if flat in MODULE_MAP:
                mods.append((MODULE_MAP[flat], a))
                changed = True
            elif flat in MODULES:
                mods.append((flat, a))
                changed = changed or base != "s2lib"
            else:   # an attribute of a package (``from . import __version__``)
                init = ROOT / Path(*base.split(".")) / "__init__.py"
                own = init.exists() and re.search(rf"\b{re.escape(n)}\b", init.read_text(encoding="utf-8"))
                groups.setdefault(base if own else "s2lib", []).append((n, a))
                changed = changed or not own
    if not changed:
        return None
    stmts: dict[str, list[tuple[str, str | None]]] = {}
    for m, a in mods:
        parent, _, leaf = m.rpartition(".")
        stmts.setdefault("." if parent == pkg else parent, []).append((leaf, a))
    for m, ns in groups.items():
        parent, _, leaf = m.rpartition(".")
        frm = "." if m == pkg else ("." + leaf if parent == pkg else m)
        stmts.setdefault(frm, []).extend(ns)
    return sep.join(_from_stmt(frm, ns, indent) for frm, ns in stmts.items())


def _rewrite_from_text(text: str) -> str:
    """``from s2lib.X import a, b`` anywhere in text: Markdown, notebooks as JSON, code inside Python strings
    (``subprocess`` scripts, the notebook generator). The statements a split produces are joined the way the
    text continues: an escaped newline (``\\n`` inside a string), a real newline, or ``; ``."""
    def repl(m: re.Match[str]) -> str:
        module = m.group(1)
        names = []
        for item in m.group(2).split(","):
            bits = item.split()
            names.append((bits[0], bits[2] if len(bits) == 3 else None))
        groups = regroup(module, names)
        if groups == [(module, names)]:
            return m.group(0)
        after = text[m.end(): m.end() + 2]
        if after == "\\n":
            sep = "\\n"
        elif after[:1] in ("\n", ""):
            line_start = text.rfind("\n", 0, m.start()) + 1
            sep = "\n" + re.match(r"[ \t]*", text[line_start:]).group(0)
        else:
            sep = "; "
        return sep.join(f"from {g} import {_names_text(ns)}" for g, ns in groups)
    return _FROM_ANY.sub(repl, text)


def _rewrite_dotted(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        comps = m.group(1)[1:].split(".")
        p1 = f"s2lib.{comps[0]}"
        if p1 in MODULE_MAP:
            if len(comps) == 1 and p1 in MODULES:
                return m.group(0)   # bare name of a package of the new layout (``from s2lib.config import``)
            if len(comps) >= 2 and f"{p1}.{comps[1]}" in MODULES:
                mod_len = 2
            else:
                name = comps[1] if len(comps) >= 2 else None
                return target(p1, name) + ("." + ".".join(comps[1:]) if len(comps) > 1 else "")
        else:
            mod_len = 0
        # a module of the new layout whose name moved on in a later split
        for k in range(len(comps) - 1, max(mod_len, 1) - 1, -1):
            mod = "s2lib." + ".".join(comps[:k])
            if mod in SYMBOL_MAP and comps[k] in SYMBOL_MAP[mod]:
                return SYMBOL_MAP[mod][comps[k]] + "." + ".".join(comps[k:])
        return m.group(0)
    return _DOTTED.sub(repl, text)


def _rewrite_paths(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        old = f"s2lib.{m.group(1)}"
        if old not in MODULE_MAP:
            return m.group(0)
        return MODULE_MAP[old].replace(".", "/") + ".py"
    return _PATH.sub(repl, text)


def rewrite_text(text: str, path: Path) -> str:
    if path.suffix == ".py":
        text = _rewrite_python_imports(text, path)
    text = _rewrite_from_text(text)
    text = _rewrite_dotted(text)
    return _rewrite_paths(text)


def iter_files(paths: list[Path]):
    for p in paths:
        if p.is_file():
            if p.suffix in SUFFIXES:
                yield p
            continue
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")
                                 and not d.endswith(".egg-info"))
            for name in sorted(filenames):
                f = Path(dirpath) / name
                if f.suffix in SUFFIXES and name not in SKIP_FILES:
                    yield f


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*", type=Path)
    ap.add_argument("--check", action="store_true", help="only list the files that would change; exit 1 if any")
    args = ap.parse_args(argv)
    MODULES.update(_existing_modules(ROOT))
    paths = args.paths or [ROOT]
    changed = []
    for f in iter_files(paths):
        if f.resolve() == Path(__file__).resolve():
            continue
        try:
            old = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        new = rewrite_text(old, f)
        if new != old:
            changed.append(f)
            if not args.check:
                f.write_text(new, encoding="utf-8")
    for f in changed:
        print(f"{'would rewrite' if args.check else 'rewrote'} {f}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
