"""The alpha stage of one set: pair the channel files, estimate every frame's amplitude, store the artifact."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from s2lib.io.store import PathLike
from .amplitude import AmplitudeParams, estimate_wfm_file, flag_counts
from .artifact import AlphaSet, load_alpha, store_alpha
from .channels import DEFAULT_TOLERANCE_S, pair_set

__all__ = ["measure_alpha_set"]


def measure_alpha_set(set_path: PathLike, out_dir: PathLike, *, params: AmplitudeParams | None = None,
                      alpha_channel: int = 4, pmt_channel: int | None = None,
                      tolerance_s: float = DEFAULT_TOLERANCE_S, raw_root: PathLike | None = None) -> AlphaSet:
    """Pair, estimate and store one set's alpha artifact (``artifact`` module); returns it as loaded back.

    Raises ``DataError`` naming the files and frames when the pairing fails (``channels.pair_set``)."""
    p = params or AmplitudeParams()
    pairing = pair_set(set_path, alpha_channel=alpha_channel, pmt_channel=pmt_channel, tolerance_s=tolerance_s)
    sca, flags, windows, centres = [], [], [], []
    for pair, n in zip(pairing.pairs, pairing.frames_per_file):
        res = estimate_wfm_file(pair.alpha, p)
        sca.append(res.sca[:n])
        flags.append(res.flags[:n])
        windows.append(res.savgol_window)
        centres.append(res.peak_time_expected_us)
    sca_a = np.concatenate(sca) if sca else np.zeros(0)
    flags_a = np.concatenate(flags) if flags else np.zeros(0, np.uint8)
    meta = {"set": Path(set_path).name, "estimator": {**p.to_dict(), "savgol_window_used": sorted(set(windows)),
                                                       "peak_time_used_us": centres},
            "files": [{"pmt": pr.pmt.name, "alpha": pr.alpha.name} for pr in pairing.pairs],
            "frames_per_file": pairing.frames_per_file.tolist(), "trigger_time_ref_s": pairing.t_ref_s,
            "has_trigger_times": pairing.has_times, "pairing_issues": list(pairing.issues),
            "alpha_channel": alpha_channel, "pmt_channel": pmt_channel, "flag_counts": flag_counts(flags_a)}
    store_alpha(out_dir, sca=sca_a, flags=flags_a, event_ids=pairing.event_ids, trigger_s=pairing.trigger_time_s,
                meta=meta, raw_root=raw_root)
    return load_alpha(out_dir)
