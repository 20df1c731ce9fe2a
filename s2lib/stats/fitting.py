"""Binned Poisson maximum-likelihood fits of area histograms (S2 recoil areas, X-ray areas).

The histogram of the values inside ``bin_cuts`` is fitted by minimising the Poisson deviance
(Baker & Cousins 1984, Nucl. Instrum. Meth. 221, 437, eq. 12)::

    χ²_λ = 2 Σ_i [ ν_i − n_i + n_i ln(n_i / ν_i) ]      (the last term is 0 when n_i = 0)

with ``n_i`` the observed and ``ν_i`` the expected counts of bin ``i``. This is ``2·(−ln L)`` up to a
constant, so Minuit's ``errordef = 1`` gives 1σ (68.3 %) errors, and at the minimum the same number is the
likelihood-ratio goodness-of-fit statistic, asymptotically χ²-distributed. The models are *extended*: the
yields are free, so nothing is normalised to the observed total. Every component is normalised over the fit
range ``[lo, hi]`` and integrated over each bin through its CDF (exact for any bin width).

Which model to use when
-----------------------
``"gauss"`` (default, the seed's choice)
    ``N·Gaussian(μ, σ)``. X-ray peaks and any symmetric peak well separated from the low-area pile-up. Reported
    mean: μ (the Gaussian's expectation; the truncation at ``bin_cuts`` is part of the likelihood, not a bias).
``"gauss_bg"``
    Gaussian signal plus a narrow Gaussian background at low area (single stray photons / pile-up near
    0.2–0.3 mV·µs), whose centre is limited to ``[lo, bg_cutoff]`` and width to ``bg_sigma_max``. Use it for
    recoil S2 sets where a low-area peak is visible. Replaces the lab's subtract-then-cut two-stage fit: both
    components are fitted together, so the uncertainty of the background enters the signal's error.
    Reported mean: μ of the signal Gaussian. Measured on the simulator's recoil line shape (gamma electron
    fluctuations CV 0.25 ⊗ photon statistics, 5 % background at 0, range [−0.5, 8]): μ is the mean within
    −1.1 % (50 V set, signal close to the background) to −0.05 % (high fields), since the ML Gaussian μ of a
    skewed peak is its sample mean only when nothing else competes for the low tail.
``"crystalball_bg"``
    Right-tailed Crystal Ball signal (below) plus the Gaussian background of ``gauss_bg`` (same ``bg_cutoff``,
    ``bg_sigma_max``). Reported mean: the expectation of the normalised signal density over ``[lo, hi]``. For
    recoil S2 sets whose range starts below 0 (unclipped areas: background frames centre at ≈ 0 mV·µs).
``"crystalball"``
    Right-tailed Crystal Ball (Oreglia 1980; Gaiser 1982): Gaussian core, power-law tail on the high side
    (the recoil S2 line shape). Reported mean: the expectation of the signal density *normalised over the fit
    range* ``[lo, hi]`` (closed form, :mod:`s2lib.stats._fit_models`). The untruncated mean diverges for ``m ≤ 2``,
    which real tails reach, so it is only given as ``details["mean_untruncated"]`` when ``m > 2``.
    ``sigma`` is the core width σ. Its error is propagated from the covariance with a numerical Jacobian.

Uncertainties and success
-------------------------
``mean_err`` is the 1σ HESSE error (propagated when the mean is a function of several parameters) and ``ci95``
the half-width of the 95 % interval of the mean in the Gaussian approximation, ``1.959964·mean_err``.
``fit_success`` is True only if MIGRAD reached a valid minimum, the covariance is finite and positive definite,
no parameter lies within half an error of one of its limits, and ``n_in_range >= min_events``. Otherwise
``reason`` says why, and ``mean_err``, ``ci95``, ``sigma_err`` and ``errors`` are NaN (the best-fit values are
kept for display but must not be used as measurements). Bad input (no events, NaNs, too few events) never
raises: it gives a failed :class:`FitResult`.

Goodness of fit
---------------
The deviance of bins that expect less than about one event is far from χ²-distributed (its mean per bin is
``≈ −2ν ln ν``, not 1), and S2 histograms over 0–10 mV·µs in 100 bins have many such tail bins: with
``ndf = bins − parameters`` the p-values pile up near 1, with ``ndf = non-empty bins − parameters`` near 0.
So ``chi2`` is the same Baker–Cousins deviance evaluated after merging adjacent bins, left to right, until each
group expects at least ``gof_min_expected`` (5) events, and ``ndf = groups − free parameters``. Because the
parameters come from the finer binning, the p-value is, if anything, slightly small (Chernoff & Lehmann 1954).
The minimised full-binning deviance is kept as ``details["deviance"]``.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from . import _fit_models as fm
from ._fit_config import _MIXTURES, ALL_MODELS, FitConfig  # noqa: F401 (ALL_MODELS re-exported)
from s2lib.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from s2lib.io.store import S2Areas

__all__ = ["FitConfig", "FitResult", "fit_histogram", "fit_run_s2", "poisson_deviance", "Z95"]

#: Two-sided 95 % quantile of the standard normal distribution, ``Φ⁻¹(0.975)``.
Z95: float = float(stats.norm.ppf(0.975))
_SCHEMA = "s2lib.FitResult/1"
@dataclass(frozen=True, eq=False)
class FitResult:
    """Outcome of :func:`fit_histogram`. Areas in mV·µs; NaN marks "not available".

    Attributes:
        model: the fitted model name. label: free text (the set name).
        mean, mean_err: expectation of the signal component and its 1σ error (module docstring).
        ci95: half-width of the 95 % interval of the mean, ``Z95·mean_err`` (Gaussian approximation).
        sigma, sigma_err: width of the signal Gaussian (core width for ``crystalball``) and its 1σ error.
        params, errors: best-fit values and 1σ HESSE errors by parameter name (yields are expected events
            inside ``bin_cuts``; centres and widths in mV·µs).
        covariance: covariance matrix in the order of ``params`` (None if unavailable or the fit failed).
        fit_success: see the module docstring. reason: why not (empty when successful).
        chi2: Baker–Cousins Poisson deviance of the fitted model, computed on the histogram after merging
            adjacent bins until each group expects ``≥ gof_min_expected`` events (``details["gof_bins"]``
            groups; equal to the minimised deviance ``details["deviance"]`` when no merge is needed).
        ndf: merged groups − free parameters. p_value: ``P(χ²_ndf ≥ chi2)``.
        n_in_range: events inside ``bin_cuts``. n_outside: finite values outside. n_nan: NaN values dropped.
        bin_edges, counts: the fitted histogram. config: the :class:`FitConfig` as a dict.
        details: extra diagnostics (``edm``, ``nfcn``, ``mean_definition``, model-specific numbers).
    """

    model: str
    mean: float = math.nan
    mean_err: float = math.nan
    ci95: float = math.nan
    sigma: float = math.nan
    sigma_err: float = math.nan
    params: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    covariance: NDArray[np.float64] | None = None
    fit_success: bool = False
    reason: str = ""
    chi2: float = math.nan
    ndf: int = 0
    p_value: float = math.nan
    n_in_range: int = 0
    n_outside: int = 0
    n_nan: int = 0
    bin_edges: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    label: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def fit_range(self) -> tuple[float, float]:
        """``(lo, hi)`` of the fit, mV·µs."""
        return float(self.bin_edges[0]), float(self.bin_edges[-1])

    @property
    def bin_width(self) -> float:
        """Width of the fitted bins, mV·µs."""
        return float(self.bin_edges[1] - self.bin_edges[0])

    def _has_model(self) -> bool:
        return bool(self.params) and all(np.isfinite(v) for v in self.params.values())

    @property
    def quality(self) -> str:
        """``"ok"`` (fit_success), ``"poor"`` (a valid fit below ``gof_p_min``: numbers shown, not used) or
        ``"failed"``."""
        q = self.details.get("quality")
        if q in ("ok", "poor", "failed"):
            return str(q)
        return "ok" if self.fit_success else "failed"

    def _binned_components(self) -> dict[str, NDArray[np.float64]] | None:
        comps = self.details.get("components") if self.model in _MIXTURES else None
        if not comps:
            return None
        return {k: np.asarray(v, dtype=float) for k, v in comps.items()}

    def expected(self, edges: ArrayLike | None = None) -> NDArray[np.float64]:
        """Expected counts per bin of the full model for ``edges`` (default: the fitted bins).

        The model is defined inside ``bin_cuts`` only; NaN everywhere when no fit was made. The mixture
        estimators store their expected counts per fitted bin: any other ``edges`` give NaN for them.
        """
        e = self.bin_edges if edges is None else np.asarray(edges, dtype=float)
        binned = self._binned_components()
        if binned is not None:
            same = e.shape == self.bin_edges.shape and np.allclose(e, self.bin_edges)
            return np.sum(list(binned.values()), axis=0) if same else np.full(max(e.size - 1, 0), np.nan)
        if not self._has_model() or self.model not in fm.MODELS:
            return np.full(max(e.size - 1, 0), np.nan)
        return fm.expected_counts(self.model, self.params, e, *self.fit_range)

    def components(self, x: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Densities of each component and their ``"total"`` at ``x``, in counts per bin width (for plotting
        over the histogram). Keys: ``"signal"``, ``"background"`` (``gauss_bg``), ``"total"``; the mixture
        estimators give their components (``empty``, ``signal``, ``pileup``; ``signal``, ``junk``,
        ``double``) as the expected counts of the bin holding ``x`` (a step curve)."""
        xx = np.asarray(x, dtype=float)
        binned = self._binned_components()
        if binned is not None:
            idx = np.clip(np.searchsorted(self.bin_edges, xx, side="right") - 1, 0, self.counts.size - 1)
            out = {k: v[idx] for k, v in binned.items()}
            out["total"] = np.sum(list(out.values()), axis=0)
            return out
        if not self._has_model() or self.model not in fm.MODELS:
            return {"signal": np.full(xx.shape, np.nan), "total": np.full(xx.shape, np.nan)}
        comps = {k: v * self.bin_width
                 for k, v in fm.component_densities(self.model, self.params, xx, *self.fit_range).items()}
        comps["total"] = np.sum(list(comps.values()), axis=0)
        return comps

    def pdf_signal(self, x: ArrayLike) -> NDArray[np.float64]:
        """Signal density normalised over ``bin_cuts`` (1/(mV·µs)); its mean over the range is ``mean`` for
        ``crystalball``."""
        xx = np.asarray(x, dtype=float)
        if not self._has_model() or self.model not in fm.MODELS:
            return np.full(xx.shape, np.nan)
        p = dict(self.params, n=1.0)
        return fm.component_densities(self.model, p, xx, *self.fit_range)["signal"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: NaN/inf become None, arrays become (nested) lists."""
        out: dict[str, Any] = {"schema": _SCHEMA}
        for f in dataclasses.fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FitResult:
        """Inverse of :meth:`to_dict` (None restored as NaN)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("mean", "mean_err", "ci95", "sigma", "sigma_err", "chi2", "p_value"):
            if key in kw:
                kw[key] = _float(kw[key])
        for key in ("params", "errors"):
            kw[key] = {k: _float(v) for k, v in (kw.get(key) or {}).items()}
        cov = kw.get("covariance")
        kw["covariance"] = None if cov is None else np.array(
            [[_float(v) for v in row] for row in cov], dtype=float).reshape(len(cov), -1)
        kw["bin_edges"] = np.asarray(kw.get("bin_edges") or [], dtype=float)
        kw["counts"] = np.asarray(kw.get("counts") or [], dtype=np.int64)
        for key in ("ndf", "n_in_range", "n_outside", "n_nan"):
            kw[key] = int(kw.get(key) or 0)
        kw["fit_success"] = bool(kw.get("fit_success", False))
        kw["reason"] = str(kw.get("reason") or "")
        kw["config"] = dict(kw.get("config") or {})
        kw["details"] = dict(kw.get("details") or {})
        return cls(**kw)


def poisson_deviance(counts: ArrayLike, expected: ArrayLike) -> float:
    """Baker–Cousins likelihood χ², ``2 Σ [ν − n + n ln(n/ν)]`` (``n ln(n/ν) = 0`` for ``n = 0``)."""
    n = np.asarray(counts, dtype=float)
    nu = np.maximum(np.asarray(expected, dtype=float), 1e-300)
    log_term = np.zeros_like(n)
    pos = n > 0
    log_term[pos] = n[pos] * np.log(n[pos] / nu[pos])
    return float(2.0 * np.sum(nu - n + log_term))


def fit_histogram(values: ArrayLike, config: FitConfig | Mapping[str, Any] | None = None, *,
                  label: str = "") -> FitResult:
    """Fit the histogram of ``values`` inside ``config.bin_cuts`` by binned Poisson maximum likelihood.

    Parameters
    ----------
    values : array_like
        Areas, mV·µs (any shape; NaNs are dropped and counted in ``n_nan``).
    config : FitConfig, mapping or config dataclass, optional
        Fit options (anything else than a FitConfig goes through :meth:`FitConfig.from_mapping`, so unknown
        keys raise :class:`~s2lib.errors.ConfigError`); default ``FitConfig()``.
    label : str
        Free text stored in the result (e.g. the set name).

    Returns
    -------
    FitResult
        Never raises for bad data: empty input, no values in range or fewer than ``min_events`` give
        ``fit_success=False`` with ``reason`` and NaN numbers. Check ``fit_success`` before using ``mean``.
    """
    cfg = _as_config(config)
    if cfg.model in ("auto", "xray_mixture", "recoil_mixture"):
        from . import estimators
        if cfg.model == "recoil_mixture":
            raise ConfigError("model", "recoil_mixture needs the sideband areas: use s2lib.stats.estimators.fit_recoil "
                              "or fit_run_s2 on S2Areas with a sideband")
        return estimators.fit_xray(values, cfg, label=label)
    x = np.asarray(values, dtype=float).ravel()
    nan = np.isnan(x)
    x = x[~nan]
    fixed = cfg.bin_cuts is not None
    cfg = _data_range(x[np.isfinite(x)], cfg)
    cfg = _auto_range(x, cfg)
    lo, hi = cfg.bin_cuts
    inside = (x >= lo) & (x <= hi)
    x_in = x[inside]
    counts, edges = np.histogram(x_in, bins=cfg.nbins, range=(lo, hi))
    base = dict(model=cfg.model, label=label, n_in_range=int(x_in.size), n_outside=int((~inside).sum()),
                n_nan=int(nan.sum()), bin_edges=edges, counts=counts.astype(np.int64), config=cfg.to_dict())
    if x_in.size == 0:
        return FitResult(**base, reason=f"no events inside bin_cuts [{lo:g}, {hi:g}] mV·µs (of {x.size} finite "
                                        f"values, {base['n_nan']} NaN)")
    n_par = len(fm.PARAM_NAMES[cfg.model])
    n_nonempty = int(np.count_nonzero(counts))
    if x_in.size < cfg.min_events:
        return FitResult(**base, reason=f"too few events in range: {x_in.size} < min_events={cfg.min_events}")
    if n_nonempty < n_par:
        return FitResult(**base, reason=f"only {n_nonempty} non-empty bins for {n_par} free parameters")
    return _run_fit(x_in, counts, edges, cfg, base, fixed)


def fit_run_s2(areas: Mapping[str, S2Areas], fit_config: FitConfig | Mapping[str, Any] | None = None,
               flag_plot: bool = False, *, xrays: Mapping[str, tuple[float, float]] | None = None
               ) -> dict[str, S2Areas]:
    """Fit every set's S2 areas (the seed API); returns new ``S2Areas`` with the fit filled in.

    With the default ``model="auto"`` (or ``"recoil_mixture"``) a set with sideband areas is fitted by
    :func:`s2lib.stats.estimators.fit_recoil`, with ``xrays[name]`` = (mean, σ) of its X-ray area for the pile-up
    term when given; other models, or sets without a sideband under ``"auto"``, by :func:`fit_histogram`.
    Each value is copied with :func:`dataclasses.replace` and gets ``mean``, ``sigma``, ``ci95``,
    ``fit_success`` and ``fit_result`` (the :class:`FitResult`). Only frames without a flag are fitted
    (``S2Areas.usable``: X-ray pile-up frames are vetoed; all frames when no flags are stored). When the fit failed, ``ci95`` is NaN and
    ``mean``/``sigma`` are the minimiser's values for display only (NaN when no fit was possible). One line
    per set is printed (``[i/n] set: mean = … ± … mV·µs (1σ) ok|FAILED: reason``). With ``flag_plot`` each fit
    is drawn by :func:`s2lib.analysis.plotting.plot_hist_fit`; if plotting is unavailable a warning is issued instead.
    """
    cfg = _as_config(fit_config)
    plot = _plotter() if flag_plot else None
    out: dict[str, S2Areas] = {}
    n = len(areas)
    for i, (name, s2) in enumerate(areas.items(), start=1):
        usable = getattr(s2, "usable", None)        # frames without a pile-up flag (store.S2Areas.flags)
        values = np.asarray(s2.areas, dtype=float)
        sideband = getattr(s2, "sideband", None)
        if cfg.model in ("auto", "recoil_mixture") and sideband is not None:
            from .estimators import fit_recoil
            sb = np.asarray(sideband, dtype=float)
            res = fit_recoil(values if usable is None else values[usable], sb if usable is None else sb[usable],
                             cfg, xray=(xrays or {}).get(name), label=str(name))
        elif cfg.model == "recoil_mixture":
            res = FitResult(model=cfg.model, label=str(name), reason="recoil_mixture needs the sideband areas "
                            "(s2_sideband.npy), which this set's folder does not have: rerun the integration")
        else:
            res = fit_histogram(values if usable is None else values[usable], cfg, label=str(name))
        out[name] = dataclasses.replace(s2, mean=res.mean, sigma=res.sigma, ci95=res.ci95,
                                        fit_success=res.fit_success, fit_result=res)
        print(f"[{i}/{n}] {name}: {_summary(res)}", flush=True)
        if plot is not None:
            try:
                plot(res, bin_cuts=cfg.bin_cuts)
            except Exception as exc:  # a figure must not cost the fits of the other sets
                warnings.warn(f"plot of {name} failed: {type(exc).__name__}: {exc}", RuntimeWarning,
                              stacklevel=2)
    return out


def _data_range(x: NDArray[np.float64], cfg: FitConfig) -> FitConfig:
    """``cfg`` with ``bin_cuts`` (None: 0.2 % quantile − 1 robust σ to median + 6 robust σ of the values) and
    ``nbins`` (None: Freedman–Diaconis, 20-400 bins) filled in from the data."""
    from . import _mixture as mx

    if x.size < 2:
        return dataclasses.replace(cfg, bin_cuts=cfg.bin_cuts or (0.0, 1.0), nbins=cfg.nbins or 20)
    cuts = cfg.bin_cuts if cfg.bin_cuts is not None else mx.robust_range(x, None, k_hi=6.0)
    med, spread = mx.robust_stats(x)
    inside = int(np.count_nonzero((x >= cuts[0]) & (x <= cuts[1])))
    nbins = cfg.nbins if cfg.nbins is not None else mx.auto_bins(inside, spread, cuts[1] - cuts[0])
    return dataclasses.replace(cfg, bin_cuts=tuple(cuts), nbins=nbins)


def _auto_range(x: NDArray[np.float64], cfg: FitConfig) -> FitConfig:
    """``cfg`` with the upper edge lowered to median + k·1.4826·MAD when ``auto_upper_sigma`` = k is set
    (bin width kept, signal-centre limit clipped to the new edge; :func:`s2lib.stats._fit_models.robust_upper_edge`)."""
    if cfg.auto_upper_sigma is None:
        return cfg
    edge = fm.robust_upper_edge(x, cfg.bin_cuts, cfg.bin_width, cfg.auto_upper_sigma, cfg.min_events)
    if edge is None:
        return cfg
    new_hi, nbins = edge
    upper = None if cfg.upper_limit is None else min(cfg.upper_limit, new_hi)
    return dataclasses.replace(cfg, bin_cuts=(cfg.bin_cuts[0], new_hi), nbins=nbins, upper_limit=upper)


def _run_fit(x: NDArray[np.float64], counts: NDArray[np.int64], edges: NDArray[np.float64], cfg: FitConfig,
             base: dict[str, Any], fixed_range: bool = True) -> FitResult:
    """Minimise the deviance, run HESSE, and judge the result (module docstring).

    If the fit from the data-driven start is not clean (invalid, or a parameter at a limit), a few other
    starts (:func:`s2lib.stats._fit_models.alternative_starts`) are tried: the first clean minimum is kept, else the
    lowest deviance.
    """
    lo, hi = cfg.bin_cuts
    model = cfg.model
    names = fm.PARAM_NAMES[model]
    n_obs = counts.astype(float)
    start, limits = fm.start_and_limits(model, x, counts, edges, upper=cfg.signal_upper,
                                        bg_cutoff=cfg.bg_cutoff, bg_sigma_max=cfg.bg_sigma_max)

    def deviance(par: NDArray[np.float64]) -> float:
        return poisson_deviance(n_obs, fm.expected_counts(model, dict(zip(names, par)), edges, lo, hi))

    best: tuple[Any, list[str], NDArray[np.float64] | None] | None = None
    n_starts = 0
    for st in [start, *fm.alternative_starts(model, start, limits)]:
        n_starts += 1
        mn, error = fm.minimise(deviance, names, st, limits)
        reasons, cov = fm.judge_minimum(mn, names, error)
        if best is None or (bool(best[1]), best[0].fval) > (bool(reasons), mn.fval):
            best = (mn, reasons, cov)
        if not reasons:
            break
    mn, reasons, cov = best
    fmin = mn.fmin
    values = {k: float(mn.values[k]) for k in names}
    errors = {k: float(mn.errors[k]) for k in names}
    if model in fm.BG_MODELS and values[fm.signal_centre_name(model)] <= values["mu_bg"]:
        reasons.append("signal centre below the background centre (components swapped)")
    mean = fm.signal_mean(model, values, lo, hi)
    mean_err, details = fm.signal_mean_error(model, values, errors, cov, lo, hi)
    nu = fm.expected_counts(model, values, edges, lo, hi)
    n_grp, nu_grp = fm.merge_for_gof(n_obs, nu, cfg.gof_min_expected)
    chi2 = poisson_deviance(n_grp, nu_grp)
    ndf = int(n_grp.size) - len(names)
    details.update(deviance=poisson_deviance(n_obs, nu), gof_bins=int(n_grp.size), n_starts=n_starts,
                   edm=float(fmin.edm) if fmin else None, nfcn=int(mn.nfcn),
                   n_nonempty_bins=int(np.count_nonzero(counts)),
                   fraction_below_bg_threshold=float(np.mean(x <= cfg.bg_threshold)))
    if model in fm.BG_MODELS:
        details.update(bg_center=values["mu_bg"], lower_bound=values["mu_bg"] + cfg.n_sigma * values["sigma_bg"])
    p_value = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else math.nan
    n_sig = values["n"]
    ref = values["sigma"] / math.sqrt(max(n_sig, 1.0))
    ratio = mean_err / ref if ref > 0 and math.isfinite(mean_err) else math.nan
    details["error_ratio"] = ratio
    if cov is not None and not ratio >= 0.5:
        reasons.append(f"error on the mean {mean_err:.2g} implausibly small: {ratio:.2g} × σ/√N = {ref:.2g}")
    if fixed_range:
        beyond = _mass_beyond(model, values, hi)
        details["signal_fraction_beyond_edge"] = beyond
        if beyond > 0.005:
            key = "upper_limit" if cfg.upper_limit is not None and cfg.upper_limit < hi else "bin_cuts"
            reasons.append(f"{100 * beyond:.2g} % of the fitted signal lies above bin_cuts[1] = {hi:g} mV·µs: "
                           f"raise {key} (or remove bin_cuts to take the range from the data)")
    ok = not reasons and p_value >= cfg.gof_p_min
    quality = "failed" if reasons else ("ok" if ok else "poor")
    if quality == "poor":
        reasons.append(f"poor fit: goodness-of-fit p = {p_value:.2g} < gof_p_min = {cfg.gof_p_min:g}")
    details["quality"] = quality
    keep = quality != "failed"
    nan_errs = {k: math.nan for k in names}
    return FitResult(**base, mean=mean, mean_err=mean_err if keep else math.nan,
                     ci95=Z95 * mean_err if keep else math.nan, sigma=values["sigma"],
                     sigma_err=errors["sigma"] if keep else math.nan, params=values,
                     errors=errors if keep else nan_errs, covariance=cov if keep else None, fit_success=ok,
                     reason="; ".join(reasons), chi2=chi2, ndf=ndf, p_value=p_value, details=details)


def _mass_beyond(model: str, values: Mapping[str, float], edge: float) -> float:
    """Fraction of the untruncated signal density above ``edge`` (1 − CDF)."""
    cdf, _pdf = fm.component_shapes(model, values)["signal"]
    return float(1.0 - cdf(np.array([edge]))[0])


def _as_config(obj: Any) -> FitConfig:
    """FitConfig from a FitConfig, a mapping, None, or a config dataclass with the same field names
    (e.g. ``s2lib.config.config.FittingConfig``)."""
    if isinstance(obj, FitConfig):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return FitConfig.from_mapping(obj)


def _summary(res: FitResult) -> str:
    if res.fit_success or res.quality == "poor":
        verdict = "ok" if res.fit_success else f"POOR FIT: {res.reason}"
        return (f"mean = {res.mean:.4g} ± {res.mean_err:.2g} mV·µs (1σ), σ = {res.sigma:.3g} mV·µs, "
                f"n = {res.n_in_range}, χ²/ndf = {res.chi2:.1f}/{res.ndf}, p = {res.p_value:.2g} ({res.model}) "
                f"{verdict}")
    return f"FAILED ({res.model}, n = {res.n_in_range}): {res.reason}"


def _plotter() -> Any:
    try:
        from s2lib.analysis.plotting import plot_hist_fit
    except (ImportError, AttributeError) as exc:
        warnings.warn(f"flag_plot=True but plotting is unavailable ({exc}); fits are not drawn",
                      RuntimeWarning, stacklevel=3)
        return None
    return plot_hist_fit


def _float(v: Any) -> float:
    return math.nan if v is None else float(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return _jsonable(v.tolist())
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    return v
