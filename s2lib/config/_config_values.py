"""Per-value checks of the run configuration: converting one given value against its option (numbers, ranges,
paths, choices, isotope range maps), the cross-field rules of a fit section, and the value's JSON form.

Split from :mod:`s2lib.config.config` (issue 10); ``config_from_dict`` there calls these.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from s2lib.physics import physics
from .config_schema import SCHEMA, Option
from s2lib.errors import ConfigError

_ALPHA_ISOTOPES = ("Th228", "Ra224", "Rn220", "Bi212", "Po216", "Po212")   # s2lib.alpha.isotopes.ISOTOPES
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
    if kind == "range_map":
        return _range_map(opt, path, raw, src)
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


def _range_map(opt: Option, path: str, raw: Any, src: Path | None) -> tuple[tuple[str, float, float], ...]:
    """{name: [low, high]} (or [[name, low, high], ...], the to_dict form) → sorted (name, low, high) tuples."""
    if isinstance(raw, Mapping):
        items = [(k, v) for k, v in raw.items()]
    elif isinstance(raw, (list, tuple)) and all(isinstance(r, (list, tuple)) and len(r) == 3 for r in raw):
        items = [(r[0], r[1:]) for r in raw]
    else:
        raise ConfigError(path, f"expected a mapping {{isotope: [low, high]}}{_unit(opt)}, got {raw!r}", src)
    out = []
    for name, rng in items:
        key = str(name).replace("-", "")
        if key not in _ALPHA_ISOTOPES:
            raise ConfigError(f"{path}.{name}", f"unknown isotope; expected one of {', '.join(_ALPHA_ISOTOPES)}", src)
        lo, hi = _convert(dataclasses.replace(opt, kind="range", nullable=False), f"{path}.{name}", rng,
                          Path("."), src)
        out.append((key, lo, hi))
    out.sort(key=lambda r: r[1])
    for a, b in zip(out, out[1:]):
        if b[1] < a[2]:
            raise ConfigError(path, f"{a[0]} [{a[1]:g}, {a[2]:g}] and {b[0]} [{b[1]:g}, {b[2]:g}] overlap", src)
    if len({r[0] for r in out}) != len(out):
        raise ConfigError(path, "an isotope is given twice", src)
    return tuple(out)


def _check_fit(section: str, values: dict[str, Any], given: dict[str, tuple[str, Any]], src: Path | None) -> None:
    """The cross-field rules of ``s2lib.stats.fitting.FitConfig`` (kept here: importing scipy to load a YAML is slow)."""
    lo, hi = values["bin_cuts"] if values["bin_cuts"] is not None else (-math.inf, math.inf)

    def fail(name: str, message: str) -> None:
        opt = next(o for o in SCHEMA if o.section == section and o.name == name)
        raise ConfigError(given.get(opt.key, (opt.key,))[0], message, src)

    limit = values.get("upper_limit")
    if limit is not None and not lo < limit <= hi:
        fail("upper_limit", f"expected null or a number in ({lo:g}, {hi:g}] (inside bin_cuts), got {limit:g}")
    if values["model"] == "gauss_bg" and "bg_cutoff" in values and not lo < values["bg_cutoff"] <= hi:
        fail("bg_cutoff", f"expected a number in ({lo:g}, {hi:g}] (inside bin_cuts) for model gauss_bg, "
             f"got {values['bg_cutoff']:g}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value
