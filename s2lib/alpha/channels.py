"""Paired channel files of an alpha-tagged set and frame pairing checked with the per-frame trigger times.

In multi-isotope runs one FastFrame acquisition writes one file per active oscilloscope channel into the set
folder: the PMT (``..._P2_29Wfm_Ch1.wfm``; the new DAQ ``..._Batch007_..._CH3.wfm``) and the silicon alpha
detector (``..._Ch4.wfm`` / ``..._CH4.wfm``) (notes/alpha.md 1.2, domain.md 2.1). Two files belong together
when their names are equal apart from the trailing channel token (compared case-insensitively); a token inside
a folder name is never touched (the lab's whole-path swap, alpha.md D6). Frame k of the PMT file and frame k of
its silicon partner come from the same trigger: the pairing is by (file index, frame index), and it is
cross-checked with the trigger time stamps both headers carry per frame (gmt_sec + gmt_fract, s since 1970).

File indices follow the natural order of the PMT file names, which is the order ``s2lib.config.runs.find_set_files``
gives the PMT files, so the event ids (file index, frame index) of the alpha artifact and the S2 artifacts
agree. There is no 64-frames-per-file UID (alpha.md D5): any number of frames per file (988 for the new DAQ).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from s2lib.config.runs import channel_of, natural_key
from s2lib.io.wfm import WfmError, read_header

__all__ = ["ChannelPair", "SetPairing", "pair_key", "find_channel_pairs", "trigger_times_s", "check_pair",
           "pair_set", "DEFAULT_TOLERANCE_S"]

DEFAULT_TOLERANCE_S = 1e-6
"""Largest accepted |t_PMT − t_alpha| of a frame pair, s. Both files of one acquisition carry the same trigger,
so the stamps agree exactly; 1 µs is far below the FastFrame re-arm time and far above float rounding."""

_TOKEN = re.compile(r"[_\-]ch\d+$", re.IGNORECASE)


def pair_key(file_name: str) -> str | None:
    """The name of a channel-tagged file without its channel token and extension, lower case; None when the
    name carries no channel token (``RUN18_..._29Wfm_Ch1.wfm`` → ``run18_..._29wfm``)."""
    stem = Path(file_name).stem
    match = _TOKEN.search(stem)
    return stem[:match.start()].lower() if match else None


@dataclass(frozen=True)
class ChannelPair:
    """One PMT file and its silicon partner (same acquisition); ``index`` is the PMT file's index in the set."""

    index: int
    pmt: Path
    alpha: Path


@dataclass(frozen=True)
class SetPairing:
    """Frame pairing of one set.

    Attributes:
        pairs: the file pairs in PMT-file order.
        frames_per_file: frames of each pair (int64, one per pair).
        event_ids: int64 (n, 2) (file index, frame index) of every paired frame.
        trigger_time_s: float64 (n,) trigger time of each frame, s since ``t_ref_s`` (alpha file's stamps).
        t_ref_s: integer second (since 1970 UTC) the trigger times count from (first frame's gmt_sec).
        has_times: False when the files carry no trigger stamps (all zero): the check could not be made.
        issues: what was found wrong (unpaired files, frame-count or trigger-time mismatches), each naming the
            file and frame.
    """

    pairs: tuple[ChannelPair, ...]
    frames_per_file: np.ndarray
    event_ids: np.ndarray
    trigger_time_s: np.ndarray
    t_ref_s: int
    has_times: bool
    issues: tuple[str, ...] = field(default=())


def find_channel_pairs(set_path: str | Path, *, alpha_channel: int = 4, pmt_channel: int | None = None
                       ) -> tuple[tuple[ChannelPair, ...], tuple[str, ...]]:
    """Pair the channel-tagged ``.wfm`` files of a set folder.

    Args:
        set_path: the set folder (read only).
        alpha_channel: oscilloscope channel of the silicon detector (4 in every lab layout).
        pmt_channel: the PMT channel; None: the one other channel present (Ch1 old DAQ, CH3 new DAQ).

    Returns:
        (pairs in natural order of the PMT file names, issues): unpaired files and ambiguous channels are
        issues; a file without a channel token is ignored (single-isotope layout).

    Raises:
        DataError: the folder does not exist, or ``pmt_channel`` is None and several candidate channels exist.
    """
    folder = Path(set_path)
    if not folder.is_dir():
        raise DataError(f"{folder}: not an existing set folder")
    by_channel: dict[int, dict[str, Path]] = {}
    issues: list[str] = []
    for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
        if p.suffix.lower() != ".wfm" or p.name.startswith(".") or not p.is_file():
            continue
        ch, key = channel_of(p.name), pair_key(p.name)
        if ch is None or key is None:
            continue
        slot = by_channel.setdefault(ch, {})
        if key in slot:
            issues.append(f"{p.name}: same name as {slot[key].name} apart from letter case; ignored")
            continue
        slot[key] = p
    if pmt_channel is None:
        others = sorted(c for c in by_channel if c != alpha_channel)
        if len(others) > 1:
            raise DataError(f"{folder}: files of channels {', '.join(f'Ch{c}' for c in others)} besides the "
                            f"alpha channel Ch{alpha_channel}: set multi_isotope.pmt_channel")
        pmt_channel = others[0] if others else None
    pmt = by_channel.get(pmt_channel, {}) if pmt_channel is not None else {}
    alpha = by_channel.get(alpha_channel, {})
    if not alpha:
        issues.append(f"no alpha-channel (Ch{alpha_channel}) files")
    if not pmt:
        issues.append("no PMT-channel files" + (f" (Ch{pmt_channel})" if pmt_channel is not None else ""))
    keys = sorted(pmt, key=lambda k: natural_key(pmt[k].name))
    pairs: list[ChannelPair] = []
    for k in keys:
        if k in alpha:
            pairs.append(ChannelPair(len(pairs), pmt[k], alpha[k]))
        else:
            issues.append(f"{pmt[k].name}: no alpha-channel (Ch{alpha_channel}) partner")
    for k in sorted(set(alpha) - set(pmt), key=lambda k: natural_key(alpha[k].name)):
        issues.append(f"{alpha[k].name}: no PMT-channel partner")
    return tuple(pairs), tuple(issues)


def trigger_times_s(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame trigger stamps of a WFM file: (gmt_sec int64, gmt_fract float64); seconds since 1970 UTC and
    the fraction of a second (header fields, ``s2lib.io.wfm.WfmHeader``)."""
    h = read_header(path)
    return np.asarray(h.gmt_sec, dtype=np.int64), np.asarray(h.gmt_fract, dtype=np.float64)


def check_pair(pair: ChannelPair, *, tolerance_s: float = DEFAULT_TOLERANCE_S, max_listed: int = 5
               ) -> tuple[int, np.ndarray, np.ndarray, list[str]]:
    """Check one file pair frame by frame.

    Returns (n_frames, alpha gmt_sec, alpha gmt_fract, issues). A different frame count, or a frame whose
    trigger times differ by more than ``tolerance_s``, is an issue naming both files and the frame index (the
    first ``max_listed`` frames, then a count). The frames paired are the first min(n_pmt, n_alpha).
    """
    try:
        hp, ha = read_header(pair.pmt), read_header(pair.alpha)
    except WfmError as err:
        return 0, np.zeros(0, np.int64), np.zeros(0), [str(err)]
    issues: list[str] = []
    n = min(hp.n_frames, ha.n_frames)
    if hp.n_frames != ha.n_frames:
        issues.append(f"{pair.pmt.name} has {hp.n_frames} frames but {pair.alpha.name} has {ha.n_frames}; "
                      f"only the first {n} are paired")
    sec_p, fr_p = np.asarray(hp.gmt_sec[:n], np.int64), np.asarray(hp.gmt_fract[:n], np.float64)
    sec_a, fr_a = np.asarray(ha.gmt_sec[:n], np.int64), np.asarray(ha.gmt_fract[:n], np.float64)
    diff = (sec_p - sec_a).astype(np.float64) + (fr_p - fr_a)
    bad = np.flatnonzero(np.abs(diff) > tolerance_s)
    if bad.size:
        listed = ", ".join(f"frame {i} (Δt = {diff[i] * 1e6:.3g} µs)" for i in bad[:max_listed])
        more = f" and {bad.size - max_listed} more" if bad.size > max_listed else ""
        issues.append(f"{pair.pmt.name} / {pair.alpha.name}: trigger times differ by more than "
                      f"{tolerance_s * 1e6:g} µs at {listed}{more}")
    return n, sec_a, fr_a, issues


def pair_set(set_path: str | Path, *, alpha_channel: int = 4, pmt_channel: int | None = None,
             tolerance_s: float = DEFAULT_TOLERANCE_S, strict: bool = True) -> SetPairing:
    """Pair the frames of a set and cross-check every pair's trigger times.

    With ``strict`` (default) any pairing issue raises ``DataError`` listing them (file and frame named);
    otherwise they are returned in ``SetPairing.issues``. Files whose stamps are all zero (a scope that set
    none) cannot be checked: ``has_times`` is False and that is listed as an issue, never an error.
    """
    pairs, found_issues = find_channel_pairs(set_path, alpha_channel=alpha_channel, pmt_channel=pmt_channel)
    errors = [i for i in found_issues if "apart from letter case" not in i]   # unpaired or missing channels
    notes = [i for i in found_issues if "apart from letter case" in i]
    n_per, secs, fracs = [], [], []
    for pair in pairs:
        n, sec, frac, found = check_pair(pair, tolerance_s=tolerance_s)
        n_per.append(n)
        secs.append(sec)
        fracs.append(frac)
        errors.extend(found)
    n_arr = np.asarray(n_per, dtype=np.int64)
    sec = np.concatenate(secs) if secs else np.zeros(0, np.int64)
    frac = np.concatenate(fracs) if fracs else np.zeros(0)
    has_times = bool(sec.size) and bool(np.any(sec != 0) or np.any(frac != 0))
    if sec.size and not has_times:
        notes.append(f"{Path(set_path).name}: the files carry no trigger time stamps; frames paired by index only")
    t_ref = int(sec.min()) if sec.size else 0
    times = (sec - t_ref).astype(np.float64) + frac
    ids = np.column_stack([np.repeat(np.arange(len(pairs), dtype=np.int64), n_arr),
                           np.concatenate([np.arange(n, dtype=np.int64) for n in n_arr]) if len(n_arr)
                           else np.zeros(0, np.int64)]) if len(pairs) else np.zeros((0, 2), np.int64)
    if strict and (errors or not pairs):
        raise DataError(f"{set_path}: frame pairing failed: " + "; ".join(errors or notes or ["no file pairs"]))
    return SetPairing(pairs, n_arr, ids, times, t_ref, has_times, tuple(errors + notes))
