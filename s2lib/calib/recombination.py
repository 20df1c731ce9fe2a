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
from typing import Any, Callable, Final, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from s2lib.physics.physics import empirical_recombination, thomas_imel_recombination

__all__ = [
    "MODELS",
    "PARAM_UNITS",
    "ModelSpec",
    "ModelFit",
    "fit_recombination_model",
    "fit_models",
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
