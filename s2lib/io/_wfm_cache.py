"""Validated WFM headers remembered by content (:func:`s2lib.io.wfm.read_header`).

The timing stage and the pass both read every header (~0.2 ms to parse and validate, ~0.02 ms to read), so a
file whose header and UpdateSpec bytes and size are unchanged is validated once per process. Keyed by the bytes
themselves (with the path, size and ``allow_partial``), never by mtime, which is coarse on some filesystems: an
edited header is always parsed again. The per-frame arrays of a remembered header are made read-only, since
every reader of the same bytes shares them. Bounded by the frames held (:data:`FRAMES_KEPT`, ~48 bytes per
frame with the key), least recently used first out.
"""
from __future__ import annotations

import collections
import threading
from typing import Any

__all__ = ["FRAMES_KEPT", "get", "put", "clear"]

FRAMES_KEPT = 250_000
"""Most frames whose headers are kept (~12 MB: 24 bytes of UpdateSpec in the key + 24 of arrays per frame)."""

_KEPT: collections.OrderedDict[tuple[Any, ...], tuple[Any, int]] = collections.OrderedDict()
_FRAMES = [0]
_LOCK = threading.Lock()


def get(key: tuple[Any, ...]) -> Any:
    """The header stored under ``key``, or None."""
    with _LOCK:
        hit = _KEPT.get(key)
        if hit is None:
            return None
        _KEPT.move_to_end(key)
        return hit[0]


def put(key: tuple[Any, ...], header: Any, n_frames: int) -> Any:
    """Keep ``header`` (its per-frame arrays made read-only) under ``key``; returns it. A header of more than
    :data:`FRAMES_KEPT` frames is returned without being kept."""
    for a in (header.gmt_sec, header.gmt_fract, header.tt_offsets):
        a.setflags(write=False)
    if n_frames > FRAMES_KEPT:
        return header
    with _LOCK:
        old = _KEPT.pop(key, None)
        if old is not None:
            _FRAMES[0] -= old[1]
        _KEPT[key] = (header, n_frames)
        _FRAMES[0] += n_frames
        while _FRAMES[0] > FRAMES_KEPT and _KEPT:
            _, (_, n) = _KEPT.popitem(last=False)
            _FRAMES[0] -= n
    return header


def clear() -> None:
    """Forget every header."""
    with _LOCK:
        _KEPT.clear()
        _FRAMES[0] = 0
