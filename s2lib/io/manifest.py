"""Fingerprints, cache keys and run manifests of the report runner.

A stage's cache key is the sha256 of five *parts*, kept side by side in the manifest so that a changed key can be
explained part by part (``s2book status``):

``template``
    the notebook template's code and Markdown cell sources (outputs, execution counts, tags and metadata ignored);
``s2lib``
    every ``.py`` and ``.mplstyle`` file of the ``s2lib`` package, by relative path and content;
``params``
    the configuration keys the stage reads (a subset of the parsed run YAML, see :func:`select_keys`);
``inputs``
    raw ``.wfm`` files by name, size and mtime (first stage), or the upstream stages' data artifacts by sha256;
``env``
    Python and the versions of the packages that shape the numbers and the notebook execution.

The manifest (``<output_base>/<run_id>/manifest.json``) is a JSON document written atomically; its layout is
described in :func:`new_manifest`. Nothing here executes notebooks (that is :mod:`s2lib.report.report`).
"""
from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import importlib.metadata as _md
import json
import os
import stat
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping



FILE_CACHE_DIR = ".filecache"
"""Folder of the per-file cache of the pass inside a set's output folder (s2lib.analysis.filecache): not an
artifact."""

__all__ = [
    "SCHEMA_VERSION", "PACKAGES", "canonical_json", "sha256_file", "sha256_text", "template_fingerprint",
    "source_fingerprint", "environment_fingerprint", "raw_fingerprint", "select_keys", "key_digest",
    "explain_parts", "git_state", "host_info", "now_iso", "write_json_atomic", "read_manifest", "new_manifest",
    "snapshot_tree", "hash_artifacts", "data_artifacts",
]

SCHEMA_VERSION = 1
#: Packages whose versions enter the ``env`` part of every cache key and the manifest.
PACKAGES = ("s2book", "numpy", "scipy", "matplotlib", "papermill", "nbclient", "nbformat", "ipykernel",
            "jupytext", "jupyter-book", "myst-nb")
#: Files of an output folder that are never artifacts of a stage.
_NOT_ARTIFACTS = ("manifest.json", ".s2book.lock")
_HASH_CHUNK = 1 << 20


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: the same value always gives the same text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def sha256_text(text: str) -> str:
    """Hex sha256 of a UTF-8 string."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def template_fingerprint(nb: Any) -> str:
    """sha256 of a template notebook's code and Markdown cell sources, in order (outputs and metadata stripped).

    ``nb`` is the template as an nbformat v4 notebook (read by :func:`s2lib.report._notebook_files.read_template`).
    """
    cells = [[cell.cell_type, cell.source.strip()] for cell in nb.cells if cell.cell_type in ("code", "markdown")]
    return sha256_text(canonical_json(cells))


def source_fingerprint(package_dir: str | Path) -> dict[str, str]:
    """Per-file sha256 of every ``.py`` / ``.mplstyle`` file below ``package_dir``, keyed by sorted relative path."""
    root = Path(package_dir)
    files = [p for p in root.rglob("*") if p.suffix in (".py", ".mplstyle") and "__pycache__" not in p.parts]
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(files)}


def _version(name: str) -> str | None:
    try:
        return _md.version(name)
    except _md.PackageNotFoundError:
        return None


def environment_fingerprint() -> dict[str, str | None]:
    """Python version and the versions of :data:`PACKAGES` (None when a package is not installed)."""
    env: dict[str, str | None] = {"python": platform.python_version()}
    env.update({name: _version(name) for name in PACKAGES})
    return env


def raw_fingerprint(raw_dir: str | Path, pattern: str = "*.wfm") -> dict[str, list[int]]:
    """``{relative path: [size, mtime_ns]}`` of the raw files below ``raw_dir`` (cheap: no file is read)."""
    root = Path(raw_dir)
    out: dict[str, list[int]] = {}
    for path in sorted(root.rglob(pattern)):
        try:
            st = path.stat()
        except OSError:                 # removed since it was listed: not an input any more
            continue
        if stat.S_ISREG(st.st_mode):
            out[path.relative_to(root).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def _get(tree: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = copy.deepcopy(value)


def _delete(tree: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    node: Any = tree
    for part in parents:
        if not isinstance(node, dict) or part not in node:
            return
        node = node[part]
    if isinstance(node, dict):
        node.pop(last, None)


def select_keys(config: Mapping[str, Any], selectors: Iterable[str] | None) -> dict[str, Any]:
    """The part of a parsed configuration a stage reads.

    ``selectors`` are dotted key paths applied in order: ``"*"`` takes the whole configuration,
    ``"pipeline.fitting"`` adds that subtree, ``"!description"`` removes a subtree. ``None`` means ``["*"]``.
    Missing keys are skipped (a key that appears later changes the selection, hence the key).
    """
    out: dict[str, Any] = {}
    for sel in (["*"] if selectors is None else selectors):
        if sel == "*":
            out = copy.deepcopy(dict(config))
        elif sel.startswith("!"):
            _delete(out, sel[1:])
        else:
            found, value = _get(config, sel)
            if found:
                _set(out, sel, value)
    return out


def key_digest(parts: Mapping[str, Any]) -> str:
    """The cache key: sha256 of the canonical JSON of the key parts."""
    return sha256_text(canonical_json(parts))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def _dict_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 4) -> list[str]:
    a, b = _flatten(old), _flatten(new)
    changes = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            changes.append(f"{key} added ({_short(b[key])})")
        elif key not in b:
            changes.append(f"{key} removed")
        elif canonical_json(a[key]) != canonical_json(b[key]):
            changes.append(f"{key} {_short(a[key])} -> {_short(b[key])}")
    if len(changes) > limit:
        changes = changes[:limit] + [f"and {len(changes) - limit} more"]
    return changes


def _file_changes(old: Mapping[str, Any], new: Mapping[str, Any], verb: str = "changed") -> str:
    added = len(set(new) - set(old))
    removed = len(set(old) - set(new))
    changed = sum(1 for k in set(old) & set(new) if canonical_json(old[k]) != canonical_json(new[k]))
    bits = [f"{n} file{'s' if n != 1 else ''} {what}" for n, what in
            ((changed, verb), (added, "added"), (removed, "removed")) if n]
    return ", ".join(bits) or "no file-level difference"


def explain_parts(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human reasons why two sets of key parts differ, e.g. ``parameters changed: pipeline.fitting.nbins 100 -> 80``."""
    reasons = []
    if old.get("template") != new.get("template"):
        reasons.append("notebook template changed")
    if old.get("s2lib") != new.get("s2lib"):
        old_src, new_src = old.get("s2lib") or {}, new.get("s2lib") or {}
        names = sorted(k for k in set(old_src) | set(new_src) if old_src.get(k) != new_src.get(k))
        listed = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        reasons.append(f"s2lib source changed ({listed})")
    if canonical_json(old.get("params")) != canonical_json(new.get("params")):
        reasons.append("parameters changed: " + "; ".join(_dict_changes(old.get("params") or {},
                                                                         new.get("params") or {})))
    old_in, new_in = old.get("inputs") or {}, new.get("inputs") or {}
    if canonical_json(old_in.get("raw")) != canonical_json(new_in.get("raw")):
        reasons.append("raw files changed: " + _file_changes(old_in.get("raw") or {}, new_in.get("raw") or {},
                                                             "touched"))
    old_up, new_up = old_in.get("upstream") or {}, new_in.get("upstream") or {}
    for name in sorted(set(old_up) | set(new_up)):
        if canonical_json(old_up.get(name)) != canonical_json(new_up.get(name)):
            reasons.append(f"upstream stage {name} re-ran ("
                           + _file_changes(old_up.get(name) or {}, new_up.get(name) or {}) + ")")
    old_runs, new_runs = old_in.get("runs") or {}, new_in.get("runs") or {}
    changed_runs = sorted(r for r in set(old_runs) | set(new_runs)
                          if canonical_json(old_runs.get(r)) != canonical_json(new_runs.get(r)))
    if changed_runs:
        reasons.append("input runs changed: " + ", ".join(changed_runs))
    if canonical_json(old.get("env")) != canonical_json(new.get("env")):
        reasons.append("environment changed: " + "; ".join(_dict_changes(old.get("env") or {}, new.get("env") or {})))
    return reasons or (["cache key changed"] if canonical_json(old) != canonical_json(new) else [])


def git_state(path: str | Path) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the git checkout holding ``path`` (read-only git calls)."""
    def _git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=str(path), capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    porcelain = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if porcelain is None else bool(porcelain.strip())}


def host_info() -> dict[str, Any]:
    """Host name, platform, Python executable and CPU count, for the manifest."""
    return {"host": socket.gethostname(), "platform": platform.platform(), "python": sys.version.split()[0],
            "executable": sys.executable, "cpus": os.cpu_count()}


def now_iso() -> str:
    """The current time as an ISO 8601 string with the local UTC offset, to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON atomically (:func:`s2lib.io.store.write_text_atomic`: temp file, fsync, rename over ``path``).

    Key order is kept and values JSON cannot encode are written as their ``str`` (manifest layout)."""
    from .store import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False, default=str) + "\n")


def read_manifest(path: str | Path) -> dict[str, Any] | None:
    """The manifest at ``path``, or None when there is none (an unreadable manifest counts as none)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("schema_version") == SCHEMA_VERSION else None


def new_manifest(run_id: str, config_path: str | Path | None, parameters: Any, output_dir: str | Path,
                 repo_dir: str | Path) -> dict[str, Any]:
    """A fresh manifest skeleton: identity, configuration, environment; ``stages`` filled by the runner.

    Each ``stages[name]`` entry holds ``status`` (``ok`` | ``failed`` | ``skipped-up-to-date``), ``key`` and
    ``parts`` (the cache key and its parts), ``started``/``ended``/``duration_s``, ``notebook`` (executed
    notebook), ``artifacts`` (``{relative path: {sha256, size, mtime_ns}}``) and ``error`` (``cell``,
    ``execution_count``, ``ename``, ``evalue``) when it failed.
    """
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "config": {"path": str(config_path) if config_path else None,
                   "sha256": sha256_file(config_path) if config_path and Path(config_path).is_file() else None,
                   "parameters": parameters},
        "output_dir": str(output_dir),
        "environment": {"packages": environment_fingerprint(), "git": git_state(repo_dir), **host_info()},
        "inputs": {},
        "stages": {},
        "updated": now_iso(),
    }


def snapshot_tree(root: str | Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of the files below ``root`` (manifest, temporary files and the
    per-file cache folders of :mod:`s2lib.analysis.filecache` excluded)."""
    root = Path(root)
    out: dict[str, tuple[int, int]] = {}
    if not root.is_dir():
        return out
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != FILE_CACHE_DIR]      # the per-file cache of the pass is not an artifact
        for name in files:
            if name in _NOT_ARTIFACTS or name.endswith(".tmp"):
                continue
            full = Path(dirpath) / name
            try:
                st = full.stat()
            except OSError:
                continue
            out[full.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
    return out


def hash_artifacts(root: str | Path, names: Iterable[str],
                   known: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """``{name: {sha256, size, mtime_ns}}`` of existing files; a ``known`` record with equal size/mtime is reused."""
    root = Path(root)
    known = known or {}
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(set(names)):
        path = root / name
        try:
            st = path.stat()
        except OSError:
            continue
        rec = known.get(name)
        if rec and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
            out[name] = dict(rec)
        else:
            out[name] = {"sha256": sha256_file(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return out


def data_artifacts(artifacts: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """``{name: sha256}`` of the artifacts that feed later stages: everything except ``figures/`` and logs."""
    return {name: rec["sha256"] for name, rec in sorted(artifacts.items())
            if not name.startswith(("figures/", "logs/"))}
