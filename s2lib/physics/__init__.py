"""Physics: constants, gas properties, fields, recoil energies and recombination models (pure formulas, no I/O).

The names of :mod:`s2lib.physics.physics` are re-exported here (resolved lazily on first use), so this package can
stand for that module: ``physics.X`` and importing ``X`` from the package both work.
"""
from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module(".physics", __name__), name)
