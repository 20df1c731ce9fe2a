"""Options of the S2 and X-ray fits: :class:`FitConfig` (split from :mod:`s2lib.stats.fitting`, which re-exports it).

Areas in mV·µs. ``bin_cuts``/``nbins`` None (the default) take the range and binning from each set's data;
``model="auto"`` selects the default estimators of :mod:`s2lib.stats.estimators`.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _fit_models as fm
from s2lib.errors import ConfigError

__all__ = ["FitConfig", "ALL_MODELS"]

#: Model names a FitConfig accepts: "auto" (the default: recoil_mixture for recoil S2 sets, xray_mixture for
#: X-rays; :mod:`s2lib.stats.estimators`), the two mixture estimators by name, and the histogram models of this module.
_MIXTURES = ("recoil_mixture", "xray_mixture")
ALL_MODELS: tuple[str, ...] = ("auto", *_MIXTURES, *fm.MODELS)
_DEPRECATED_KEYS = {"exclude_index": "the likelihood fit uses every bin inside bin_cuts; narrow bin_cuts instead"}


@dataclass(frozen=True)
class FitConfig:
    """Options of :func:`fit_histogram`. Areas in mV·µs.

    Attributes:
        bin_cuts: ``(lo, hi)`` fit range, mV·µs. Values outside are not fitted (counted in ``n_outside``).
        nbins: number of equal-width bins in ``bin_cuts``.
        model: ``"gauss"``, ``"gauss_bg"`` or ``"crystalball"`` (module docstring: which to use when).
        min_events: minimum number of events inside ``bin_cuts`` for a fit to count as successful.
        bg_cutoff: ``gauss_bg`` only: upper limit of the background (pile-up) peak centre, mV·µs. The lab's runs
            use 0.05–1.2; the peak of stray single photons sits near 0.2–0.3 mV·µs.
        bg_sigma_max: ``gauss_bg`` only: upper limit of the background peak's width, mV·µs.
        bg_threshold: area, mV·µs: the fraction of in-range events below it is reported as
            ``details["fraction_below_bg_threshold"]`` (the lab's pile-up indicator). Never switches models.
        n_sigma: ``gauss_bg`` only: where the background ends, reported as ``details["lower_bound"] =
            mu_bg + n_sigma·sigma_bg`` (the lab's ``area_s2_lower_bound``). Does not cut data.
        upper_limit: upper limit of the signal centre (``mu`` or ``x0``), mV·µs; None means ``bin_cuts[1]``.
        gof_min_expected: goodness of fit only: adjacent bins are merged until each group expects at least
            this many events before the deviance is compared with χ² (Cochran's rule of 5).
        auto_upper_sigma: when set (k), the fit's upper edge becomes ``min(bin_cuts[1], median + k·1.4826·MAD)``
            of the values inside ``bin_cuts`` (bin width kept). Use it when one ``bin_cuts`` serves sets whose
            means differ several-fold and isolated far outliers (an X-ray S2 lying inside the recoil window, an
            alpha track) would otherwise sit where the peak model predicts ~0 events and dominate the
            likelihood. k = 4 keeps > 99.9 % of a Gaussian or a CV-0.25 gamma. None: fixed ``bin_cuts``.
    """

    bin_cuts: tuple[float, float] | None = None
    nbins: int | None = None
    model: str = "auto"
    min_events: int = 30
    bg_cutoff: float = 1.0
    bg_sigma_max: float = 0.5
    bg_threshold: float = 0.3
    n_sigma: float = 2.5
    upper_limit: float | None = None
    gof_min_expected: float = 5.0
    auto_upper_sigma: float | None = None
    gof_p_min: float = 1e-3

    def __post_init__(self) -> None:
        cuts = self.bin_cuts
        lo, hi = -math.inf, math.inf
        if cuts is not None:
            if (not isinstance(cuts, (tuple, list, np.ndarray)) or len(cuts) != 2
                    or not all(_is_real(c) and math.isfinite(c) for c in cuts)):
                raise ConfigError("bin_cuts", f"expected null or two finite numbers (lo, hi) in mV·µs, got {cuts!r}")
            lo, hi = float(cuts[0]), float(cuts[1])
            if not lo < hi:
                raise ConfigError("bin_cuts", f"expected lo < hi, got ({lo}, {hi})")
            object.__setattr__(self, "bin_cuts", (lo, hi))
        if self.nbins is not None and (not _is_int(self.nbins) or self.nbins < 1):
            raise ConfigError("nbins", f"expected null or a positive integer, got {self.nbins!r}")
        if self.model not in ALL_MODELS:
            raise ConfigError("model", f"expected one of {', '.join(ALL_MODELS)}, got {self.model!r}")
        if not (_is_real(self.gof_p_min) and 0.0 <= float(self.gof_p_min) < 1.0):
            raise ConfigError("gof_p_min", f"expected a probability in [0, 1), got {self.gof_p_min!r}")
        object.__setattr__(self, "gof_p_min", float(self.gof_p_min))
        if not _is_int(self.min_events) or self.min_events < 1:
            raise ConfigError("min_events", f"expected a positive integer, got {self.min_events!r}")
        for key in ("bg_cutoff", "bg_sigma_max", "bg_threshold", "n_sigma", "gof_min_expected"):
            value = getattr(self, key)
            if not _is_real(value) or not math.isfinite(value):
                raise ConfigError(key, f"expected a finite number, got {value!r}")
            object.__setattr__(self, key, float(value))
        if self.model in fm.BG_MODELS and not lo < self.bg_cutoff <= hi:
            raise ConfigError("bg_cutoff", f"expected inside bin_cuts ({lo}, {hi}] for model {self.model}, "
                              f"got {self.bg_cutoff}")
        for key in ("bg_sigma_max", "gof_min_expected"):
            if getattr(self, key) <= 0:
                raise ConfigError(key, f"must be positive, got {getattr(self, key)}")
        if self.n_sigma < 0:
            raise ConfigError("n_sigma", f"must be >= 0, got {self.n_sigma}")
        if self.upper_limit is not None:
            ok = _is_real(self.upper_limit) and lo < float(self.upper_limit) <= hi
            if not ok:
                raise ConfigError("upper_limit", f"expected null or a number in ({lo:g}, {hi:g}], "
                                  f"got {self.upper_limit!r}")
            object.__setattr__(self, "upper_limit", float(self.upper_limit))
        if self.auto_upper_sigma is not None:
            if not _is_real(self.auto_upper_sigma) or not self.auto_upper_sigma > 0:
                raise ConfigError("auto_upper_sigma", f"expected None or a positive number of robust σ, "
                                  f"got {self.auto_upper_sigma!r}")
            object.__setattr__(self, "auto_upper_sigma", float(self.auto_upper_sigma))

    @property
    def bin_width(self) -> float:
        """Width of one bin, mV·µs (NaN while the range or the bin count comes from the data)."""
        if self.bin_cuts is None or self.nbins is None:
            return math.nan
        return (self.bin_cuts[1] - self.bin_cuts[0]) / self.nbins

    @property
    def signal_upper(self) -> float:
        """Upper limit of the signal centre actually used, mV·µs."""
        hi = math.inf if self.bin_cuts is None else self.bin_cuts[1]
        return hi if self.upper_limit is None else self.upper_limit

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe mapping that :meth:`from_mapping` accepts."""
        d = dataclasses.asdict(self)
        d["bin_cuts"] = None if self.bin_cuts is None else list(self.bin_cuts)
        return d

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None, *, key_prefix: str = "") -> FitConfig:
        """Build from a YAML mapping (the lab's ``fit_config`` keys or the field names above).

        ``exclude_index`` is accepted with a ``FutureWarning`` and ignored. Unknown keys and bad values raise
        :class:`~s2lib.errors.ConfigError` whose key is ``key_prefix + key``
        (e.g. ``"pipeline.integration.fit_config.nbins"``).
        """
        prefix = f"{key_prefix}." if key_prefix and not key_prefix.endswith(".") else key_prefix
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise ConfigError(key_prefix.rstrip(".") or "fit_config", f"expected a mapping, got {mapping!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in mapping.items():
            if key in _DEPRECATED_KEYS:
                warnings.warn(f"{prefix}{key} is deprecated and ignored: {_DEPRECATED_KEYS[key]}",
                              FutureWarning, stacklevel=2)
            elif key in known:
                kwargs[key] = value             # __post_init__ checks each value (a bin_cuts list becomes a tuple)
            else:
                raise ConfigError(f"{prefix}{key}", "unknown key; expected one of "
                                  + ", ".join(sorted(known | set(_DEPRECATED_KEYS))))
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{prefix}{exc.key}", exc.message) from None




def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
