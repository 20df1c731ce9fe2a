"""Recoil electrons, recombination fractions per set, and model fits of r(E_d).

Per set (``ion_mean``, ``electrons_and_recombination``, ``recombination_table``): N_e = A_ion / g_S2 and
r = 1 − N_e / N_exp with 1σ errors from A_ion and g_S2 in quadrature (domain.md 1.6); the recoil mean comes
from a stored fit, the lab's old ``s2_results.json`` (mean_err = ci95/1.96) or a refit of ``s2_areas.npy``.
Only successful fits enter the model fits (poor fits, p < gof_p_min, too with ``use_poor_fits``).

Two models, both with a multiplicative "extraction" factor S ∈ [0, 1] (domain.md 1.6), field E in V/cm:

* Thomas–Imel box model (Thomas & Imel, Phys. Rev. A 36 (1987) 614):
  r = 1 − S·ln(1 + ξ)/ξ with ξ = a / E; parameters ``a`` [V/cm] and ``S``.
* Empirical: r = 1 − S·(1 − A/(1 + B·E)); parameters ``A`` [1], ``B`` [cm/V] and ``S``.
  With S free the three parameters are only weakly identified unless the data reach the plateau
  (B·E ≫ 1): for B·E ≪ 1 the model is linear in E and only two combinations are measured. The documented
  default is therefore **S fixed to 1** (the lab's literal r = A/(1 + B·E)); pass ``fix={}`` to free S.

Fit: weighted least squares, χ² = Σ ((r_i − model(E_i)) / σ_stat,i)², minimised with iminuit (MIGRAD + HESSE,
``iminuit.cost.LeastSquares``), so the parameter covariance is the statistical one. The g_S2 error is **not** in σ_stat: every set of one EL field uses the same g_S2, so its error is fully
correlated across the points. A change g → g·(1 + δ) maps 1 − r → (1 − r)/(1 + δ) for every point at once.
We refit with δ = ±δ_gS2 (the relative 1σ error of g_S2) and take the half difference of the parameters as
the g_S2 "scale" shift Δp; its covariance Δp·Δpᵀ is added to the statistical covariance (the shift method for
a fully correlated systematic, equivalent to first order to a χ² with the full covariance matrix). For the
Thomas–Imel model the shift is absorbed by S alone (σ_S,gS2 = S·δ, a unchanged), which the tests check.
Fit one EL field at a time (its points share one g_S2); χ²/ndf and the p-value use σ_stat only.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Final, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from s2lib.stats.fitting import Z95, FitConfig, FitResult, fit_histogram
from s2lib.physics.physics import empirical_recombination, thomas_imel_recombination

if TYPE_CHECKING:  # pragma: no cover
    from s2lib.io.store import S2Areas

__all__ = [
    "MODELS",
    "PARAM_UNITS",
    "ModelSpec",
    "ModelFit",
    "fit_recombination_model",
    "fit_models",
    "electrons_and_recombination",
    "IonMean",
    "ion_mean",
    "recombination_table",
]


@dataclass(frozen=True)
class ModelSpec:
    """A recombination model: function r(E, *params), parameter names, start values, limits, default fixes."""

    name: str
    function: Callable[..., Any]
    param_names: tuple[str, ...]
    p0: Mapping[str, float]
    limits: Mapping[str, tuple[float, float]]
    default_fix: Mapping[str, float]
    formula: str


MODELS: Final[dict[str, ModelSpec]] = {
    "thomas_imel": ModelSpec(
        name="thomas_imel",
        function=lambda E, a, S: thomas_imel_recombination(E, a, S),
        param_names=("a", "S"),
        p0={"a": 500.0, "S": 0.9},
        limits={"a": (1e-6, 1e6), "S": (0.0, 1.0)},
        default_fix={},
        formula="r = 1 - S*ln(1+xi)/xi, xi = a/E (Thomas & Imel, Phys. Rev. A 36 (1987) 614)",
    ),
    "empirical": ModelSpec(
        name="empirical",
        function=lambda E, A, B, S: empirical_recombination(E, A, B, S),
        param_names=("A", "B", "S"),
        p0={"A": 0.9, "B": 0.003, "S": 1.0},
        limits={"A": (0.0, 10.0), "B": (0.0, 10.0), "S": (0.0, 1.0)},
        default_fix={"S": 1.0},
        formula="r = 1 - S*(1 - A/(1 + B*E))",
    ),
}
"""Known models by name. Units: E and a in V/cm, B in cm/V, A and S dimensionless."""

PARAM_UNITS: Final = {"a": "V/cm", "S": "1", "A": "1", "B": "cm/V"}


@dataclass(frozen=True)
class ModelFit:
    """Result of a recombination model fit.

    Attributes:
        model: model name (key of ``MODELS``).
        param_names: all parameter names of the model, in order.
        values: best-fit (or fixed) value per parameter.
        errors: total 1σ error per parameter (statistical ⊕ g_S2 scale); 0 for fixed parameters.
        errors_stat: statistical 1σ error (from the weighted fit, HESSE).
        errors_gs2: shift of the parameter for a ±1σ change of the common g_S2.
        covariance: total covariance (stat + g_S2 shift), shape (n_params, n_params), fixed rows zero.
        covariance_stat: statistical covariance.
        fixed: parameters held fixed and their values.
        chi2, ndf, p_value: goodness of fit with the statistical errors (NaN when ndf ≤ 0 or no fit).
        n_points: number of (finite) points used.
        fit_success: valid minimum, finite errors, no free parameter at a limit, ndf ≥ 1.
        reason: empty on success, otherwise why not.
        gs2_rel_err: the relative g_S2 error propagated as a common scale.
        field_range: (min, max) of the fitted drift fields, V/cm.
    """

    model: str
    param_names: tuple[str, ...]
    values: dict[str, float]
    errors: dict[str, float]
    errors_stat: dict[str, float]
    errors_gs2: dict[str, float]
    covariance: NDArray[np.float64]
    covariance_stat: NDArray[np.float64]
    fixed: dict[str, float]
    chi2: float
    ndf: int
    p_value: float
    n_points: int
    fit_success: bool
    reason: str
    gs2_rel_err: float
    field_range: tuple[float, float]
    formula: str = field(default="")

    def evaluate(self, field_V_cm: ArrayLike) -> NDArray[np.float64]:
        """Model r at the given drift fields (V/cm) with the best-fit parameters."""
        spec = MODELS[self.model]
        return np.asarray(spec.function(np.asarray(field_V_cm, dtype=float),
                                        *[self.values[n] for n in self.param_names]), dtype=float)

    def band(self, field_V_cm: ArrayLike, n_sigma: float = 1.0) -> tuple[NDArray[np.float64], NDArray[np.float64],
                                                                           NDArray[np.float64]]:
        """Curve and its ±n_sigma band from the total covariance (linear propagation, numeric gradient).

        Returns:
            (r, r_low, r_high) arrays at ``field_V_cm``.
        """
        x = np.atleast_1d(np.asarray(field_V_cm, dtype=float))
        centre = self.evaluate(x)
        spec = MODELS[self.model]
        p = np.array([self.values[n] for n in self.param_names], dtype=float)
        grad = np.zeros((len(p), len(x)))
        for i in range(len(p)):
            if self.covariance[i, i] <= 0 or not np.isfinite(self.covariance[i, i]):
                continue
            h = 1e-4 * math.sqrt(self.covariance[i, i]) or 1e-8
            up, down = p.copy(), p.copy()
            up[i] += h
            down[i] -= h
            grad[i] = (np.asarray(spec.function(x, *up)) - np.asarray(spec.function(x, *down))) / (2 * h)
        cov = np.nan_to_num(self.covariance)
        var = np.einsum("ik,ij,jk->k", grad, cov, grad)
        err = n_sigma * np.sqrt(np.clip(var, 0.0, None))
        return centre, centre - err, centre + err

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN become None)."""
        def num(v: float) -> float | None:
            return float(v) if v is not None and np.isfinite(v) else None

        return {
            "model": self.model,
            "formula": self.formula,
            "param_names": list(self.param_names),
            "param_units": {n: PARAM_UNITS.get(n, "") for n in self.param_names},
            "values": {k: num(v) for k, v in self.values.items()},
            "errors": {k: num(v) for k, v in self.errors.items()},
            "errors_stat": {k: num(v) for k, v in self.errors_stat.items()},
            "errors_gs2": {k: num(v) for k, v in self.errors_gs2.items()},
            "covariance": [[num(v) for v in row] for row in self.covariance],
            "covariance_stat": [[num(v) for v in row] for row in self.covariance_stat],
            "fixed": dict(self.fixed),
            "chi2": num(self.chi2),
            "ndf": int(self.ndf),
            "p_value": num(self.p_value),
            "n_points": int(self.n_points),
            "fit_success": bool(self.fit_success),
            "reason": self.reason,
            "gs2_rel_err": num(self.gs2_rel_err),
            "field_range_V_cm": [num(self.field_range[0]), num(self.field_range[1])],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelFit":
        """Inverse of ``to_dict`` (None → NaN)."""
        def num(v: Any) -> float:
            return float("nan") if v is None else float(v)

        names = tuple(data["param_names"])
        return cls(
            model=data["model"], param_names=names,
            values={k: num(v) for k, v in data["values"].items()},
            errors={k: num(v) for k, v in data["errors"].items()},
            errors_stat={k: num(v) for k, v in data["errors_stat"].items()},
            errors_gs2={k: num(v) for k, v in data["errors_gs2"].items()},
            covariance=np.array([[num(v) for v in row] for row in data["covariance"]], dtype=float),
            covariance_stat=np.array([[num(v) for v in row] for row in data["covariance_stat"]], dtype=float),
            fixed={k: float(v) for k, v in data["fixed"].items()},
            chi2=num(data["chi2"]), ndf=int(data["ndf"]), p_value=num(data["p_value"]),
            n_points=int(data["n_points"]), fit_success=bool(data["fit_success"]), reason=data["reason"],
            gs2_rel_err=num(data["gs2_rel_err"]),
            field_range=(num(data["field_range_V_cm"][0]), num(data["field_range_V_cm"][1])),
            formula=data.get("formula", ""),
        )


def _minimise(spec: ModelSpec, x: NDArray[np.float64], y: NDArray[np.float64], dy: NDArray[np.float64],
              start: dict[str, float], limits: Mapping[str, tuple[float, float]],
              fixed: Mapping[str, float]) -> Any:
    """One weighted least-squares fit with iminuit; returns the Minuit object after MIGRAD and HESSE."""
    from iminuit import Minuit
    from iminuit.cost import LeastSquares

    def model(e: NDArray[np.float64], *p: float) -> NDArray[np.float64]:
        return np.asarray(spec.function(e, *p), dtype=float)

    cost = LeastSquares(x, y, dy, model)
    init = [fixed.get(n, start[n]) for n in spec.param_names]
    m = Minuit(cost, *init, name=spec.param_names)
    m.tol = 1e-4  # EDM < 2e-7: parameters precise to ~1e-3 σ, needed for the g_S2 shift refits
    for n in spec.param_names:
        if n in limits:
            m.limits[n] = limits[n]
        if n in fixed:
            m.fixed[n] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m.migrad(ncall=20000)
        if not m.valid:
            m.simplex().migrad(ncall=20000)
        m.hesse()
    return m


def _empty(spec: ModelSpec, n: int, fixed: Mapping[str, float], reason: str, rel: float,
           frange: tuple[float, float]) -> ModelFit:
    nan = {p: float("nan") for p in spec.param_names}
    k = len(spec.param_names)
    values = {p: fixed.get(p, float("nan")) for p in spec.param_names}
    return ModelFit(spec.name, spec.param_names, values, dict(nan), dict(nan), dict(nan),
                    np.full((k, k), np.nan), np.full((k, k), np.nan), dict(fixed), float("nan"), max(n - (k - len(fixed)), 0),
                    float("nan"), n, False, reason, rel, frange, spec.formula)


def fit_recombination_model(
    field_V_cm: ArrayLike,
    r: ArrayLike,
    dr_stat: ArrayLike,
    *,
    model: str = "thomas_imel",
    gs2_rel_err: float = 0.0,
    fix: Mapping[str, float] | None = None,
    p0: Mapping[str, float] | None = None,
    limits: Mapping[str, tuple[float, float]] | None = None,
) -> ModelFit:
    """Fit a recombination model to r(E_d) points of **one EL field**.

    Args:
        field_V_cm: drift fields, V/cm.
        r: recombination fractions.
        dr_stat: their statistical 1σ errors (from the S2 fits only; NOT including the common g_S2 error).
        model: ``"thomas_imel"`` or ``"empirical"`` (see ``MODELS``).
        gs2_rel_err: relative 1σ error of the g_S2 shared by all points (d_g_S2 / g_S2); propagated to the
            parameters by the shift method described in the module docstring.
        fix: parameters to hold fixed, name → value. None uses the model default (empirical: S = 1;
            Thomas–Imel: nothing fixed). Use ``{}`` to free everything.
        p0: start values (defaults in ``MODELS``).
        limits: parameter limits (defaults in ``MODELS``).

    Returns:
        A ``ModelFit``. Points with non-finite r or non-positive/non-finite errors are dropped. With fewer
        points than free parameters no fit is attempted; with exactly as many (ndf = 0) the fit is made but
        ``fit_success`` is False ("no degrees of freedom"), as there is no goodness of fit.
    """
    if model not in MODELS:
        raise ValueError(f"unknown recombination model {model!r}; known: {', '.join(MODELS)}")
    spec = MODELS[model]
    fixed = dict(spec.default_fix if fix is None else fix)
    unknown = set(fixed) - set(spec.param_names)
    if unknown:
        raise ValueError(f"cannot fix {sorted(unknown)}: model {model} has parameters {spec.param_names}")
    start = {**spec.p0, **(p0 or {})}
    lims = {**spec.limits, **(limits or {})}
    x = np.asarray(field_V_cm, dtype=float).ravel()
    y = np.asarray(r, dtype=float).ravel()
    dy = np.asarray(dr_stat, dtype=float).ravel()
    if not (x.shape == y.shape == dy.shape):
        raise ValueError("field_V_cm, r and dr_stat must have the same length")
    ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(dy) & (dy > 0) & (x > 0)
    x, y, dy = x[ok], y[ok], dy[ok]
    n = int(x.size)
    frange = (float(x.min()), float(x.max())) if n else (float("nan"), float("nan"))
    rel = float(gs2_rel_err) if np.isfinite(gs2_rel_err) else 0.0
    free = [p for p in spec.param_names if p not in fixed]
    if n < len(free):
        return _empty(spec, n, fixed, f"{n} points for {len(free)} free parameters: no fit", rel, frange)

    m = _minimise(spec, x, y, dy, start, lims, fixed)
    k = len(spec.param_names)
    values = {p: float(m.values[p]) for p in spec.param_names}
    cov_stat = np.zeros((k, k))
    if m.covariance is not None:
        cov_stat = np.array(m.covariance, dtype=float)
        for i, p in enumerate(spec.param_names):
            if p in fixed:
                cov_stat[i, :] = 0.0
                cov_stat[:, i] = 0.0
    err_stat = {p: float(math.sqrt(cov_stat[i, i])) if cov_stat[i, i] >= 0 else float("nan")
                for i, p in enumerate(spec.param_names)}

    # common g_S2 scale: refit with 1 - r scaled by 1/(1 ± δ) and take the half difference
    shift = np.zeros(k)
    if rel > 0 and m.valid:
        fitted: list[NDArray[np.float64]] = []
        for sign in (+1.0, -1.0):
            scale = 1.0 / (1.0 + sign * rel)
            ms = _minimise(spec, x, 1.0 - (1.0 - y) * scale, dy * scale, values, lims, fixed)
            fitted.append(np.array([ms.values[p] for p in spec.param_names], dtype=float))
        shift = 0.5 * (fitted[0] - fitted[1])
    cov = cov_stat + np.outer(shift, shift)
    err_gs2 = {p: float(abs(shift[i])) for i, p in enumerate(spec.param_names)}
    err_tot = {p: float(math.sqrt(max(cov[i, i], 0.0))) for i, p in enumerate(spec.param_names)}

    chi2 = float(m.fval)
    ndf = n - len(free)
    p_value = float(stats.chi2.sf(chi2, ndf)) if ndf > 0 else float("nan")
    reasons = []
    if not m.valid:
        reasons.append("minimum not valid (MIGRAD)")
    if m.covariance is None or not all(np.isfinite(err_stat[p]) and err_stat[p] > 0 for p in free):
        reasons.append("covariance not available or not positive")
    at_limit = [p for p in free if p in lims and (math.isclose(values[p], lims[p][0], rel_tol=1e-6, abs_tol=1e-9)
                                                   or math.isclose(values[p], lims[p][1], rel_tol=1e-6, abs_tol=1e-9)
                                                   or (np.isfinite(err_stat[p]) and
                                                       (values[p] - lims[p][0] < 1e-3 * err_stat[p] or
                                                        lims[p][1] - values[p] < 1e-3 * err_stat[p])))]
    if at_limit:
        reasons.append(f"parameter(s) at a limit: {', '.join(at_limit)}")
    if ndf <= 0:
        reasons.append(f"no degrees of freedom ({n} points, {len(free)} free parameters): no goodness of fit")
    return ModelFit(spec.name, spec.param_names, values, err_tot, err_stat, err_gs2, cov, cov_stat, fixed,
                    chi2, ndf, p_value, n, not reasons, "; ".join(reasons), rel, frange, spec.formula)


def fit_models(field_V_cm: ArrayLike, r: ArrayLike, dr_stat: ArrayLike, *, gs2_rel_err: float = 0.0,
               models: Sequence[str] = ("thomas_imel", "empirical")) -> dict[str, ModelFit]:
    """Fit each named model with its default options; returns name → ``ModelFit``."""
    return {name: fit_recombination_model(field_V_cm, r, dr_stat, model=name, gs2_rel_err=gs2_rel_err)
            for name in models}


def electrons_and_recombination(A_ion: ArrayLike, dA_ion: ArrayLike, g_S2: ArrayLike, d_g_S2: ArrayLike,
                                N_exp: float) -> dict[str, NDArray[np.float64]]:
    """Measured electrons and recombination fraction with their 1σ errors, per set.

    N_e = A_ion / g_S2;  r = 1 − N_e / N_exp  (domain.md 1.6), with linear error propagation of the two
    independent inputs (A_ion from the set's S2 fit, g_S2 from the X-ray calibration)::

        dN_stat = dA_ion / g_S2             dN_gS2 = A_ion · d_g_S2 / g_S2²      dN = dN_stat ⊕ dN_gS2
        dr_stat = dN_stat / N_exp           dr_gS2 = dN_gS2 / N_exp              dr = dr_stat ⊕ dr_gS2

    Args:
        A_ion, dA_ion: recoil S2 mean area and its 1σ error, mV·µs (NOT a 95 % half-width).
        g_S2, d_g_S2: gain and its 1σ error, mV·µs per electron.
        N_exp: expected recoil electrons E_R / W (no recombination).

    Returns:
        Arrays ``N_e``, ``dN_e``, ``dN_e_stat``, ``dN_e_gs2``, ``r``, ``dr``, ``dr_stat``, ``dr_gs2``. The
        g_S2 part is fully correlated between sets sharing one g_S2 (see ``fit_recombination_model``).
    """
    A = np.asarray(A_ion, dtype=float)
    dA = np.asarray(dA_ion, dtype=float)
    g = np.asarray(g_S2, dtype=float)
    dg = np.asarray(d_g_S2, dtype=float)
    if not N_exp > 0:
        raise ValueError(f"N_exp must be positive, got {N_exp}")
    with np.errstate(invalid="ignore", divide="ignore"):
        n_e = A / g
        dn_stat = np.abs(dA / g)
        dn_gs2 = np.abs(A * dg / g**2)
    dn = np.hypot(dn_stat, dn_gs2)
    return {"N_e": n_e, "dN_e": dn, "dN_e_stat": dn_stat, "dN_e_gs2": dn_gs2,
            "r": 1.0 - n_e / N_exp, "dr": dn / N_exp, "dr_stat": dn_stat / N_exp, "dr_gs2": dn_gs2 / N_exp}


@dataclass(frozen=True)
class IonMean:
    """Recoil S2 mean of one set as used here: mean, 1σ error, 95 % half-width, width (all mV·µs)."""

    mean: float
    mean_err: float
    ci95: float
    sigma: float
    fit_success: bool
    n_events: int
    origin: str
    reason: str = ""
    quality: str = ""   # "ok", "poor" (p < gof_p_min: shown, used only with use_poor_fits) or "failed"


def ion_mean(s2: S2Areas | str | None, fit_config: FitConfig, *, label: str = "") -> IonMean:
    """The recoil mean of a set from its ``S2Areas`` (see the module docstring for the three cases); None or
    an error text (set not loadable) give a failed ``IonMean`` carrying that reason."""
    if s2 is None or isinstance(s2, str):
        return IonMean(math.nan, math.nan, math.nan, math.nan, False, 0, "missing", s2 or "no S2 results")
    areas = getattr(s2, "areas", None)
    n_events = int(np.count_nonzero(np.isfinite(areas))) if areas is not None else 0
    fr = getattr(s2, "fit_result", None)
    if isinstance(fr, Mapping):
        fr = FitResult.from_dict(fr)
    if isinstance(fr, FitResult):
        return IonMean(fr.mean, fr.mean_err, fr.ci95, fr.sigma, bool(fr.fit_success),
                       n_events or fr.n_in_range, "fit_result", fr.reason, fr.quality)
    mean, ci95 = getattr(s2, "mean", None), getattr(s2, "ci95", None)
    if mean is not None and ci95 is not None and np.isfinite(mean) and np.isfinite(ci95):
        sigma = getattr(s2, "sigma", None)
        ok = bool(getattr(s2, "fit_success", False)) and ci95 > 0
        return IonMean(float(mean), float(ci95) / Z95, float(ci95), math.nan if sigma is None else float(sigma),
                       ok, n_events, "s2_results.json (mean_err = ci95/1.96)",
                       "" if ok else "stored fit not successful or ci95 = 0")
    if areas is not None and n_events:
        fr = fit_histogram(np.asarray(areas, dtype=float), fit_config, label=label)
        return IonMean(fr.mean, fr.mean_err, fr.ci95, fr.sigma, bool(fr.fit_success), n_events,
                       "refit of s2_areas.npy", fr.reason, fr.quality)
    return IonMean(math.nan, math.nan, math.nan, math.nan, False, n_events, "no fit", "no fit and no areas")


def recombination_table(sets: Sequence[Any], fitted: Mapping[str, Any], gs2_for: Callable[[float], Any],
                        fit_config: FitConfig, n_exp: float, *, say: Callable[[str], Any] | None = None,
                        use_poor_fits: bool = False) -> tuple[list[dict[str, Any]], dict[str, NDArray[Any]]]:
    """Per-set table of the run: S2 mean, g_S2, N_e, r with 1σ errors (stat, g_S2, total), A_ion/A_x.

    Args:
        sets: objects with ``name``, ``drift_field_V_cm``, ``el_field_V_cm`` (``runs.SetInfo``).
        fitted: set name → ``S2Areas`` (or an error text), read by :func:`ion_mean`.
        gs2_for: EL field → the g_S2 entry of that field (attributes ``el_field_V_cm`` (the group key),
            ``g_S2``, ``d_g_S2``, ``A_x``, ``dA_x``, ``source``, ``reason``, ``usable``).
        fit_config: S2 fit options for sets with areas only.  n_exp: E_R / W.  say: progress printer.
        use_poor_fits: also use S2 means of poor fits (p < gof_p_min) in the model fits (marked in ``reason``).

    Returns:
        (rows for the CSV files, arrays by column), sorted by (EL field, drift field). A set with a failed S2
        fit or without a usable g_S2 keeps its row with NaN results, ``used_in_model_fit`` False and a reason.
    """
    rows: list[dict[str, Any]] = []
    for s in sorted(sets, key=lambda s: (round(s.el_field_V_cm), s.drift_field_V_cm)):
        im = ion_mean(fitted.get(s.name), fit_config, label=s.name)
        e = gs2_for(s.el_field_V_cm)
        poor_ok = use_poor_fits and im.quality == "poor"
        reasons = [] if im.fit_success or poor_ok else [f"S2 fit: {im.reason or 'failed'}"]
        if not e.usable:
            reasons.append(f"g_S2 at EL {e.el_field_V_cm:g} V/cm: {e.reason or 'not available'}")
        g, dg = (e.g_S2, e.d_g_S2) if e.usable else (math.nan, math.nan)
        rows.append({"set_name": s.name, "drift_field": float(s.drift_field_V_cm), "el_field": float(s.el_field_V_cm),
                     "s2_mean": im.mean, "s2_mean_err": im.mean_err, "s2_ci95": im.ci95, "s2_sigma": im.sigma,
                     "fit_success": im.fit_success, "n_events": im.n_events, "g_S2": g, "d_g_S2": dg,
                     "gs2_source": e.source, "used_in_model_fit": not reasons, "quality": im.quality,
                     "reason": "; ".join(reasons) or (f"used although {im.reason} (use_poor_fits)" if poor_ok else ""),
                     "el_key": e.el_field_V_cm, "A_x": e.A_x, "dA_x": e.dA_x, "origin": im.origin})
        if reasons and say is not None:
            say(f"      {s.name}: excluded from the model fits ({'; '.join(reasons)})")
    ok = np.array([r["used_in_model_fit"] for r in rows], dtype=bool)
    A = np.where(ok, [r["s2_mean"] for r in rows], np.nan)
    dA = np.where(ok, [r["s2_mean_err"] for r in rows], np.nan)
    g = np.array([r["g_S2"] for r in rows], dtype=float)
    res = electrons_and_recombination(A, dA, g, np.array([r["d_g_S2"] for r in rows], float), n_exp)
    a_x, da_x = np.array([r["A_x"] for r in rows], float), np.array([r["dA_x"] for r in rows], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm, dnorm = A / a_x, np.abs(A / a_x) * np.hypot(dA / A, da_x / a_x)
    for i, r in enumerate(rows):
        r.update(N_e_meas=res["N_e"][i], dN_e_meas=res["dN_e"][i], recomb_factor=res["r"][i],
                 recomb_error=res["dr"][i], recomb_error_stat=res["dr_stat"][i], recomb_error_gs2=res["dr_gs2"][i],
                 recomb_ci95=Z95 * res["dr"][i], dN_e_meas_stat=res["dN_e_stat"][i],
                 dN_e_meas_gs2=res["dN_e_gs2"][i], norm_A_ion=norm[i], dnorm_A_ion=dnorm[i])
    arrays: dict[str, NDArray[Any]] = {
        "set_name": np.array([r["set_name"] for r in rows], dtype=str),
        "drift_field": np.array([r["drift_field"] for r in rows], float),
        "el_field": np.array([r["el_field"] for r in rows], float),
        "el_key": np.array([r["el_key"] for r in rows], float),
        **{k: np.array([r[c] for r in rows], float) for k, c in (("A_ion", "s2_mean"), ("dA_ion", "s2_mean_err"),
                                                                 ("A_ion_ci95", "s2_ci95"), ("d_g_S2", "d_g_S2"))},
        "g_S2": g,
        "N_e_meas": res["N_e"], "dN_e_meas": res["dN_e"], "dN_e_meas_stat": res["dN_e_stat"],
        "dN_e_meas_gs2": res["dN_e_gs2"], "r": res["r"], "dr": res["dr"], "dr_stat": res["dr_stat"],
        "dr_gs2": res["dr_gs2"], "r_ci95": Z95 * res["dr"], "norm_A_ion": norm, "dnorm_A_ion": dnorm,
        "fit_success": np.array([r["fit_success"] for r in rows], bool), "usable": ok,
    }
    arrays["drift_fields"] = arrays["drift_field"]
    return rows, arrays
