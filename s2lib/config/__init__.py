"""Configuration: the run YAML (schema, loader, validation) and the discovery of a run's sets.

The names of :mod:`s2lib.config.config` are re-exported here (resolved lazily on first use), so this package can
stand for that module: ``config.X`` and importing ``X`` from the package both work.
"""
from __future__ import annotations

import importlib
from typing import Any


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(importlib.import_module(".config", __name__), name)
