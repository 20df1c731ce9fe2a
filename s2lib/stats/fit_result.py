"""The outcome of a histogram fit (:class:`FitResult`, its JSON round trip and evaluation of the fitted model)
and the Baker–Cousins Poisson deviance every fit minimises.

Split from :mod:`s2lib.stats.fitting` (which re-exports these names) so that the estimators
(:mod:`s2lib.stats.estimators`) and the fits build on one result type without importing each other.
Areas in mV·µs; NaN marks "not available". The meaning of every field is in the :class:`FitResult` docstring
and in :mod:`s2lib.stats.fitting`'s module docstring (uncertainties, success, goodness of fit).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from . import _fit_models as fm
from ._fit_config import _MIXTURES, FitConfig

__all__ = ["FitResult", "poisson_deviance", "Z95"]

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


def _as_config(obj: Any) -> FitConfig:
    """FitConfig from a FitConfig, a mapping, None, or a config dataclass with the same field names
    (e.g. ``s2lib.config.config.FittingConfig``)."""
    if isinstance(obj, FitConfig):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    return FitConfig.from_mapping(obj)


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
