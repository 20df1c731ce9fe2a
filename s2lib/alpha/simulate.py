"""Synthetic silicon-channel data with per-frame truth: paired PMT/alpha WFM files of an alpha-tagged set.

Each frame is one triggered alpha of the Th-228 chain: the isotope is drawn with probability ∝ its rate, the line
with its intensity (``isotopes.ISOTOPES``), the deposited energy is E_line − e + g (e ~ Exp(τ) with probability η,
the low-energy tail; g ~ N(0, σ), the resolution) — the ``lineshape`` model. The energy maps to the lab's SCA scale
by a (optionally quadratic) gain, u = a0 + a1·E + a2·E², the pulse height is 1.058 V·u (``amplitude.SCA_DIVISOR_V``)
with a CR-RC² shape (peak 2τ_s after its start at the trigger), Gaussian noise and 8-bit digitisation. A fraction
of frames carries a second, random pulse (pile-up truth). Trigger times follow a Poisson process of the total rate
within a FastFrame file, with a dead time between files; the paired PMT file carries the same per-frame stamps
(its content is baseline noise only: the recoil S2 per isotope is a later part of issue 12).

Layouts: "old" ``SIM_<date>_GateGGGG_AnodeAAAA_P2_<n>Wfm_Ch1.wfm`` + ``..._Ch4.wfm`` (notes/alpha.md 1.2) and
"new" ``SIM_<date>_GateGGGG_AnodeAAAA__Batch<NNN>__CH3.wfm`` + ``_CH4.wfm`` (the new DAQ, alpha.md 1.1; 988 frames
per file by default). Defaults are "[estimate]"s of ours unless marked: the gain reproduces the lab's typical peak
positions (Th-228 4.5, Po-212 7.5 u_SCA; alpha.md 1.4); 8-bit vertical resolution as the lab's scope.
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from s2lib.io.store import write_bytes_atomic
from s2lib.io.wfm import write_wfm
from .amplitude import SCA_DIVISOR_V
from .isotopes import CHAIN, ISOTOPES, recoil_energy_keV

PmtWriter = Callable[[dict[str, Any], np.random.Generator], tuple[np.ndarray, dict[str, float]]]

__all__ = ["AlphaSimConfig", "PmtWriter", "DEFAULT_RATES_HZ", "sca_of_energy", "simulate_alpha_set", "alpha_file_names"]

DEFAULT_RATES_HZ = {name: 20.0 * ISOTOPES[name].chain_fraction for name in CHAIN}
"""Triggered alpha rates, Hz: secular equilibrium of the chain (Po-212 = 0.6406 × the others) at 20 Hz each
[estimate]; Bi-212 is left out by default (its 6.05 MeV line is not part of the lab's five-peak model)."""


@dataclass(frozen=True)
class AlphaSimConfig:
    """Simulation parameters (units in the names).

    rates_hz: isotope → triggered rate;  gain: (a0, a1, a2), u_SCA = a0 + a1·E + a2·E² with E in MeV;
    sigma_MeV, tail_tau_MeV, tail_fraction: line shape (σ, τ, η);  noise_V: rms noise per sample;
    dt_s, n_points, pretrigger_s: sampling interval, samples per frame, trigger position in the frame;
    shaping_tau_s: CR-RC² time constant (peak 2τ after the start);  scale_V, offset_V: int8 → volts;
    pileup_probability: chance of a second pulse anywhere in a frame;  frames_per_file, n_files;
    dead_time_s: gap between FastFrame files;  t_start: first trigger, s since 1970 UTC;
    pmt_points: samples per frame of the placeholder PMT file.
    """

    rates_hz: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES_HZ))
    gain: tuple[float, float, float] = (-0.3386, 0.8923, 0.0)
    sigma_MeV: float = 0.035
    tail_tau_MeV: float = 0.06
    tail_fraction: float = 0.3
    noise_V: float = 0.03
    dt_s: float = 4e-9
    n_points: int = 400
    pretrigger_s: float = 1.0e-6
    shaping_tau_s: float = 0.1e-6
    scale_V: float = 0.04
    offset_V: float = 4.0
    pileup_probability: float = 0.01
    frames_per_file: int = 48
    n_files: int = 4
    dead_time_s: float = 2.0
    t_start: float = 1.7628e9
    pmt_points: int = 32

    def to_dict(self) -> dict[str, Any]:
        """JSON-able parameters."""
        return asdict(self)


def sca_of_energy(energy_MeV: Any, gain: tuple[float, float, float]) -> np.ndarray:
    """u_SCA of a deposited energy (MeV) under the simulator's gain polynomial."""
    e = np.asarray(energy_MeV, dtype=np.float64)
    return gain[0] + gain[1] * e + gain[2] * e * e


def alpha_file_names(layout: str, stem: str, index: int, frames: int) -> tuple[str, str]:
    """(PMT, alpha) file names of file ``index`` (1-based) in the "old" or "new" DAQ layout."""
    if layout == "old":
        base = f"{stem}_P2_{index}Wfm"
        return f"{base}_Ch1.wfm", f"{base}_Ch4.wfm"
    if layout == "new":
        base = f"{stem}__Batch{index:03d}_"
        return f"{base}_CH3.wfm", f"{base}_CH4.wfm"
    raise ValueError(f"layout: expected 'old' or 'new', got {layout!r}")


def _pulse(t_s: np.ndarray, start_s: np.ndarray, tau_s: float) -> np.ndarray:
    """CR-RC² unit-height pulse: ((t−t0)/τ)²·exp(2 − (t−t0)/τ)/4 for t > t0 (peak 1 at t0 + 2τ)."""
    u = np.clip((t_s[None, :] - start_s[:, None]) / tau_s, 0.0, None)
    return u * u * np.exp(2.0 - u) / 4.0


def simulate_alpha_set(set_dir: str | Path, truth_file: str | Path, *, config: AlphaSimConfig | None = None,
                       layout: str = "old", stem: str = "SIM_20260101_Gate0800_Anode2700", seed: int = 1,
                       pmt_writer: PmtWriter | None = None) -> dict:
    """Write the paired files of one set and its truth; returns a summary.

    ``pmt_writer(frames, rng) -> (raw, wfm_kwargs)`` makes the PMT file of each FastFrame file from its per-frame
    truth (``frames``: ``isotope`` names, ``recoil_energy_keV`` of the daughter, ``trigger_time_s``,
    ``file_index``) with its own generator ``rng`` (seeded by (seed, file index)); ``raw`` is int8/int16
    (n_frames, n_points) and ``wfm_kwargs`` the ``write_wfm`` keywords dt_s, t0_s, scale_V, offset_V. Default:
    baseline noise (the recoil S2 per isotope is for the PMT simulator, s2lib.sim.simulate).

    ``truth_file`` (``.npz``, outside the raw folder) holds per frame, in (file, frame) order: ``file_index``,
    ``frame_index``, ``isotope`` (index into ``names``), ``names``, ``energy_MeV`` (deposited), ``sca_true``
    (noise-free pulse height / 1.058), ``pileup`` (bool), ``trigger_time_s`` (s since 1970), and ``params``.
    """
    cfg = config or AlphaSimConfig()
    rng = np.random.default_rng(seed)
    folder = Path(set_dir)
    folder.mkdir(parents=True, exist_ok=True)
    names = tuple(n for n in cfg.rates_hz if cfg.rates_hz[n] > 0)
    rates = np.array([cfg.rates_hz[n] for n in names], dtype=float)
    if not names:
        raise ValueError("rates_hz: at least one isotope with a positive rate is needed")
    total_rate = float(rates.sum())
    t = cfg.t_start
    t_axis = -cfg.pretrigger_s + np.arange(cfg.n_points) * cfg.dt_s
    records: dict[str, list[np.ndarray]] = {k: [] for k in ("file_index", "frame_index", "isotope", "energy_MeV",
                                                             "sca_true", "pileup", "trigger_time_s")}
    lo_code, hi_code = -128, 127
    for f in range(cfg.n_files):
        n = cfg.frames_per_file
        gaps = rng.exponential(1.0 / total_rate, n)
        times = t + np.cumsum(gaps)
        t = float(times[-1]) + cfg.dead_time_s
        iso = rng.choice(len(names), size=n, p=rates / total_rate)
        energy = np.empty(n)
        for i, name in enumerate(names):
            sel = np.flatnonzero(iso == i)
            lines = ISOTOPES[name].lines
            w = np.array([line.intensity for line in lines])
            pick = rng.choice(len(lines), size=sel.size, p=w / w.sum())
            energy[sel] = np.array([line.energy_keV for line in lines])[pick] / 1e3
        tail = rng.random(n) < cfg.tail_fraction
        energy = energy - tail * rng.exponential(cfg.tail_tau_MeV, n) + rng.normal(0.0, cfg.sigma_MeV, n)
        sca = sca_of_energy(energy, cfg.gain)
        volts = (sca * SCA_DIVISOR_V)[:, None] * _pulse(t_axis, rng.normal(0.0, 2e-9, n), cfg.shaping_tau_s)
        pile = rng.random(n) < cfg.pileup_probability
        if pile.any():
            k = np.flatnonzero(pile)
            e2 = sca_of_energy(rng.uniform(5.0, 9.0, k.size), cfg.gain) * SCA_DIVISOR_V
            start2 = rng.uniform(t_axis[0], t_axis[-1] - 4 * cfg.shaping_tau_s, k.size)
            volts[k] += e2[:, None] * _pulse(t_axis, start2, cfg.shaping_tau_s)
        volts += rng.normal(0.0, cfg.noise_V, volts.shape)
        raw = np.clip(np.rint((volts - cfg.offset_V) / cfg.scale_V), lo_code, hi_code).astype(np.int8)
        sec = np.floor(times).astype(np.int64)
        fract = times - sec
        pmt_name, alpha_name = alpha_file_names(layout, stem, f + 1, n)
        write_wfm(folder / alpha_name, raw, dt_s=cfg.dt_s, t0_s=-cfg.pretrigger_s, scale_V=cfg.scale_V,
                  offset_V=cfg.offset_V, gmt_sec=sec, gmt_fract=fract, tt_offsets=rng.random(n), label="alpha")
        tt = rng.random(n)
        if pmt_writer is None:
            pmt = np.clip(np.rint(rng.normal(0.0, 1.5, (n, cfg.pmt_points))), -128, 127).astype(np.int8)
            pmt_kw = {"dt_s": cfg.dt_s, "t0_s": -cfg.pretrigger_s, "scale_V": 1e-3, "offset_V": 0.0}
        else:
            frames = {"isotope": np.array(names)[iso], "trigger_time_s": times, "file_index": f,
                      "recoil_energy_keV": np.array([recoil_energy_keV(nm) for nm in names])[iso]}
            pmt, pmt_kw = pmt_writer(frames, np.random.default_rng([seed, f, 1]))
            if np.shape(pmt)[0] != n:
                raise ValueError(f"pmt_writer returned {np.shape(pmt)[0]} frames for file {f}, expected {n}")
        write_wfm(folder / pmt_name, pmt, gmt_sec=sec, gmt_fract=fract, tt_offsets=tt, label="pmt", **pmt_kw)
        records["file_index"].append(np.full(n, f, np.int64))
        records["frame_index"].append(np.arange(n, dtype=np.int64))
        records["isotope"].append(iso.astype(np.int64))
        records["energy_MeV"].append(energy)
        records["sca_true"].append(sca)
        records["pileup"].append(pile)
        records["trigger_time_s"].append(times)
    arrays = {k: np.concatenate(v) for k, v in records.items()}
    buf = io.BytesIO()
    np.savez(buf, names=np.array(names), params=np.array(json.dumps(cfg.to_dict())), **arrays)
    write_bytes_atomic(truth_file, buf.getvalue())
    counts = {name: int(np.count_nonzero(arrays["isotope"] == i)) for i, name in enumerate(names)}
    return {"set_dir": str(folder), "truth_file": str(truth_file), "n_frames": int(arrays["isotope"].size),
            "counts": counts, "layout": layout, "duration_s": float(t - cfg.t_start),
            "gain_sca_per_MeV": cfg.gain[1]}
