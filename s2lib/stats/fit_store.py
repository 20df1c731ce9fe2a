"""Stored S2 areas with their fit as a :class:`~s2lib.stats.fit_result.FitResult`: the seed API's ``load_s2area``.

The store (:mod:`s2lib.io.store`, below the stats layer) writes ``FitResult.to_dict()`` into ``s2_results.json``
and gives the fit back as that dict; this module, which knows the type, rebuilds it. Every caller that uses the
fit (fit stage, calibration, notebooks, ``s2lib.load_s2area``) loads through here.
"""
from __future__ import annotations

from typing import Any

from s2lib.io import store as _store
from s2lib.io.store import S2Areas

from .fit_result import FitResult

__all__ = ["load_s2area", "decode_fit"]


def decode_fit(stored: Any) -> Any:
    """The :class:`FitResult` a stored fit dict describes; anything else (None, a dict of an older layout that
    ``FitResult.from_dict`` cannot read) is returned as stored."""
    if not isinstance(stored, dict):
        return stored
    try:
        return FitResult.from_dict(stored)
    except (AttributeError, KeyError, TypeError, ValueError):       # an older dict layout: keep the dict
        return stored


def load_s2area(set_or_folder: Any, run: Any = None) -> S2Areas:
    """:func:`s2lib.io.store.load_s2area` (same checks, same errors) with ``fit_result`` decoded by :func:`decode_fit`."""
    s2 = _store.load_s2area(set_or_folder, run)
    s2.fit_result = decode_fit(s2.fit_result)
    return s2
