"""Alpha-tagged (multi-isotope) runs: the silicon channel, its per-frame amplitude, the alpha-spectrum
calibration, isotope tagging and activity (issue 12).

One concern per module:

- ``isotopes``: the Th-228 chain's reference energies (alpha kinetic energy vs decay Q-value), recoil energies.
- ``channels``: paired PMT/silicon channel files of a set, frame pairing checked with trigger times.
- ``amplitude``: the deterministic per-frame alpha amplitude estimator (SCA units) with quality flags.
- ``artifact``: the per-set alpha artifact (amplitudes, flags, event ids, trigger times; self-describing).
- ``energy_map``: reader of the lab's ``energy_map_*.bin`` files.
- ``lineshape``: the alpha line shape (Gaussian core + low-energy exponential tail), closed-form CDF.
- ``spectrum``: binned Poisson likelihood fit of the alpha peaks.
- ``calibrate``: linear/quadratic calibration, isotope windows, purity/efficiency, frame tagging.
- ``activity``: rates per isotope against trigger time with Poisson errors.
- ``simulate``: synthetic silicon-channel (and paired PMT placeholder) WFM files with per-frame truth.
- ``closure``: closure of the alpha chain against the truth.

Above this layer: ``s2lib.analysis.alpha_recoil`` (per-isotope S2 fits, N_e, r, Thomas–Imel; the isotope rows of
the recombination CSV), ``s2lib.analysis.alpha_plots``/``alpha_report`` (the alpha chapter and the per-isotope
report sections), ``s2lib.sim._sim_alpha_pmt`` (tagged runs with PMT truth per isotope),
``s2lib.validate.alpha_closure`` and ``_validate_alpha`` (whole-run closure, validate points).

Units: "SCA units" (u_SCA) are the lab's raw alpha scale, peak volts / 1.058 (notes/alpha.md 1.4); calibrated
energies are MeV; times µs (within a frame) and s (trigger times).
"""
