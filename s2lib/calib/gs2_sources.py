"""Where g_S2 comes from: the per-EL-field record ``GS2Entry`` and the external sources.

Three sources give a ``GS2Entry`` (g_S2 ± 1σ in mV·µs/e⁻ with A_x, N_x = E_x/W and provenance):

* ``SOURCE_FIT``: this run's X-ray fit (``s2lib.calib.calibration.xray_gs2``);
* ``SOURCE_FILE``: another run's calibration file (:func:`load_external_gs2`: our ``<run_id>_calibration.json``
  or the lab's ``xray_calibration_results.json``), recorded with path and sha256, rescaled if its W differs;
* ``SOURCE_VALUE``: a number from the configuration (:func:`gs2_from_value`).

g_S2 depends strongly on the EL field, so :func:`assign_gs2` applies an external entry only to sets at the EL
field where it was measured (rounded to 1 V/cm, :func:`el_key`) unless ``allow_el_mismatch``. The names are
re-exported from :mod:`s2lib.calib.calibration`.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Mapping, Sequence

import numpy as np

from s2lib.physics import physics
from s2lib.errors import ConfigError
from s2lib.stats.fitting import Z95, FitResult

if TYPE_CHECKING:  # pragma: no cover
    from s2lib.config.runs import Run

__all__ = [
    "SOURCE_FIT", "SOURCE_FILE", "SOURCE_VALUE", "GS2Entry", "el_key", "load_external_gs2", "gs2_from_value",
    "assign_gs2", "external_entries",
]

SOURCE_FIT: Final = "fit of this run"
SOURCE_FILE: Final = "external file"
SOURCE_VALUE: Final = "given value"


def el_key(el_field_V_cm: float) -> float:
    """The EL-field group of a set: the field rounded to 1 V/cm."""
    return float(round(float(el_field_V_cm)))


def _sha256(path: Path) -> str:
    from s2lib.io.manifest import sha256_file

    return sha256_file(path)


def _num(v: Any) -> float | None:
    return float(v) if v is not None and np.isfinite(v) else None


@dataclass(frozen=True)
class GS2Entry:
    """g_S2 for one EL field, with where it comes from.

    Attributes:
        el_field_V_cm: EL field group (1 V/cm) of the run's sets using it; for an external entry not yet
            assigned, the EL field at which it was measured (None if unknown).
        A_x, dA_x: mean X-ray S2 area and its 1σ error, mV·µs (for a given value: g_S2·N_x, derived).
        N_x: E_x / W, electrons.  g_S2, d_g_S2: gain and 1σ error, mV·µs/e⁻.
        source: ``SOURCE_FIT``, ``SOURCE_FILE`` or ``SOURCE_VALUE``.  n_xrays: X-ray events in the fit range.
        fit_success, reason: whether it can be used, and why not.
        calibration_el_field_V_cm: EL field at which g_S2 was measured (None if the source does not say).
        sets: the run's sets using it.  provenance: file path, sha256, run id... of an external source.
        xray_fit: the X-ray histogram fit (this run's fits).  el_mismatch_allowed: applied at another EL field.
    """

    el_field_V_cm: float | None
    A_x: float
    dA_x: float
    N_x: float
    g_S2: float
    d_g_S2: float
    source: str
    n_xrays: int = 0
    fit_success: bool = False
    reason: str = ""
    calibration_el_field_V_cm: float | None = None
    W_eV: float = physics.W_VALUE_EV
    E_x_eV: float = physics.E_XRAY_EV
    sets: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)
    xray_fit: FitResult | None = None
    el_mismatch_allowed: bool = False

    @property
    def usable(self) -> bool:
        """Whether g_S2 can be applied: a successful source, finite positive g_S2, finite error."""
        return bool(self.fit_success and np.isfinite(self.g_S2) and self.g_S2 > 0 and np.isfinite(self.d_g_S2))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN → None) with units."""
        return {"el_field_V_cm": _num(self.el_field_V_cm), "A_x": _num(self.A_x), "dA_x": _num(self.dA_x),
                "A_x_ci95": _num(Z95 * self.dA_x), "N_x": _num(self.N_x), "g_S2": _num(self.g_S2),
                "d_g_S2": _num(self.d_g_S2), "source": self.source, "n_xrays": int(self.n_xrays),
                "fit_success": bool(self.fit_success), "reason": self.reason,
                "calibration_el_field_V_cm": _num(self.calibration_el_field_V_cm), "W_eV": _num(self.W_eV),
                "E_x_eV": _num(self.E_x_eV), "sets": list(self.sets), "provenance": dict(self.provenance),
                "el_mismatch_allowed": bool(self.el_mismatch_allowed),
                "xray_fit": self.xray_fit.to_dict() if self.xray_fit is not None else None,
                "units": {"el_field_V_cm": "V/cm", "A_x": "mV·µs", "dA_x": "mV·µs (1σ)",
                          "A_x_ci95": "mV·µs (95 % half-width)", "N_x": "e⁻", "g_S2": "mV·µs/e⁻",
                          "d_g_S2": "mV·µs/e⁻ (1σ)"}}


def load_external_gs2(path: str | Path, *, W_eV: float, E_x_eV: float,
                      el_field_V_cm: float | None = None) -> list[GS2Entry]:
    """Read g_S2 from another run's calibration file, recording its provenance.

    Formats: our ``<run_id>_calibration.json`` (key ``gs2_by_el_field``; one entry per EL field, EL field and
    run id known) or the lab's ``xray_calibration_results.json`` (keys ``Wi``, ``A_x_mean``, ``dA_x_mean``,
    ``gs2``, ``d_gs2``; it does not record its EL field: give ``el_field_V_cm`` — the lab's file is RUN21,
    EL 2375 V/cm). If the file's W differs from ``W_eV``, g_S2 is rescaled by W_eV/W_file (g_S2 = A_x·W/E_x)
    and this is recorded.
    """
    p = Path(path).expanduser().resolve()
    if not p.is_file():
        raise ConfigError("calibration.gs2_path", f"calibration file {p} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError("calibration.gs2_path", f"{p} is not a JSON calibration file: {exc}") from None
    prov = {"path": str(p), "sha256": _sha256(p)}
    n_x = float(physics.expected_electrons(E_x_eV, W_eV))
    out: list[GS2Entry] = []
    if isinstance(data, dict) and "gs2_by_el_field" in data:
        w_file = (data.get("constants", {}).get("W_eV") or {}).get("value")
        scale = W_eV / w_file if w_file else 1.0
        for item in data["gs2_by_el_field"]:
            el = item.get("calibration_el_field_V_cm", item.get("el_field_V_cm"))  # where it was measured
            pv = {**prov, "format": "s2book calibration.json", "run_id": data.get("run_id"),
                  "schema_version": data.get("schema_version"), "el_field_V_cm": el, "W_eV_file": w_file,
                  "rescaled_for_W": scale != 1.0, "source_in_file": item.get("source"),
                  "origin": item.get("provenance") or None}
            g, dg = float(item["g_S2"] or math.nan) * scale, float(item["d_g_S2"] or math.nan) * scale
            a_x, da_x = item.get("A_x"), item.get("dA_x")
            out.append(GS2Entry(el, float(a_x) if a_x is not None else g * n_x,
                                float(da_x) if da_x is not None else dg * n_x, n_x, g, dg, SOURCE_FILE,
                                int(item.get("n_xrays") or 0), bool(item.get("fit_success")),
                                str(item.get("reason") or ""), el, W_eV, E_x_eV, (), pv))
    elif isinstance(data, dict) and "gs2" in data:
        w_file = data.get("Wi")
        scale = W_eV / float(w_file) if w_file else 1.0
        g = float(data["gs2"]) * scale
        dg = float(data.get("d_gs2", math.nan)) * scale
        pv = {**prov, "format": "lab xray_calibration_results.json", "run_id": data.get("run_id"),
              "el_field_V_cm": el_field_V_cm, "el_field_from": "caller/configuration" if el_field_V_cm else None,
              "W_eV_file": w_file, "gs2_file": data["gs2"], "d_gs2_file": data.get("d_gs2"),
              "rescaled_for_W": scale != 1.0}
        a_x, da_x = data.get("A_x_mean"), data.get("dA_x_mean")
        out.append(GS2Entry(el_field_V_cm, float(a_x) if a_x is not None else g * n_x,
                            float(da_x) if da_x is not None else dg * n_x, n_x, g, dg, SOURCE_FILE, 0,
                            bool(np.isfinite(g) and np.isfinite(dg)), "" if np.isfinite(dg) else "no d_gs2 in file",
                            el_field_V_cm, W_eV, E_x_eV, (), pv))
    else:
        raise ConfigError("calibration.gs2_path", f"{p}: neither an s2book calibration.json (gs2_by_el_field) "
                          "nor the lab's xray_calibration_results.json (gs2, d_gs2)")
    return out


def gs2_from_value(g_S2: float, d_g_S2: float, *, W_eV: float, E_x_eV: float, el_field_V_cm: float | None = None,
                   provenance: str = "") -> GS2Entry:
    """A directly given g_S2 ± d_g_S2 (mV·µs/e⁻); A_x = g_S2·N_x is derived for the normalised plots."""
    n_x = float(physics.expected_electrons(E_x_eV, W_eV))
    ok = bool(np.isfinite(g_S2) and g_S2 > 0 and np.isfinite(d_g_S2) and d_g_S2 >= 0)
    return GS2Entry(el_field_V_cm, g_S2 * n_x, d_g_S2 * n_x, n_x, float(g_S2), float(d_g_S2), SOURCE_VALUE, 0,
                    ok, "" if ok else "invalid g_S2 value", el_field_V_cm, W_eV, E_x_eV, (),
                    {"given": provenance or "given value", "el_field_V_cm": el_field_V_cm})


def assign_gs2(set_el: Mapping[str, float], entries: Sequence[GS2Entry], *,
               allow_el_mismatch: bool = False) -> dict[float, GS2Entry]:
    """Match external/given g_S2 entries to the EL-field groups of the sets; returns EL key → entry.

    An entry applies to a group when its measured EL field rounds to the group's. Otherwise (another EL
    field, or unknown) a ``ConfigError`` is raised unless ``allow_el_mismatch``; then the entry with the
    nearest EL field (or the only one) is used and ``el_mismatch_allowed`` is set on it.
    """
    groups: dict[float, list[str]] = {}
    for name, el in set_el.items():
        groups.setdefault(el_key(el), []).append(name)
    out: dict[float, GS2Entry] = {}
    for key, names in sorted(groups.items()):
        match = [e for e in entries if e.calibration_el_field_V_cm is not None
                 and el_key(e.calibration_el_field_V_cm) == key]
        mismatch = False
        if not match:
            if not allow_el_mismatch:
                known = sorted({e.calibration_el_field_V_cm for e in entries}, key=lambda v: (v is None, v or 0))
                where = ", ".join("unknown" if v is None else f"{v:g} V/cm" for v in known)
                src = "; ".join(str(e.provenance.get("path") or e.provenance.get("given") or e.source) for e in entries)
                raise ConfigError(
                    "calibration.allow_el_mismatch",
                    f"g_S2 from {src} was measured at EL field {where}, but set(s) {', '.join(names)} are at "
                    f"EL {key:g} V/cm. g_S2 depends strongly on the EL field (0.00359 at 2375 vs 0.0140 "
                    "mV·µs/e⁻ at 3375 V/cm), so it is not applied. Use a calibration at this EL field, state the "
                    "file's EL field (gs2_el_field_V_cm) if it is not recorded, or set allow_el_mismatch=True "
                    "to apply it anyway.")
            with_el = [e for e in entries if e.calibration_el_field_V_cm is not None]
            match = sorted(with_el, key=lambda e: abs(e.calibration_el_field_V_cm - key))[:1] or list(entries[:1])
            mismatch = True
        out[key] = dataclasses.replace(match[0], el_field_V_cm=key, sets=tuple(names), el_mismatch_allowed=mismatch)
    return out


def external_entries(run: Run, gs2: Any, W: float, E_x: float, el: float | None) -> list[GS2Entry] | None:
    """The g_S2 entries of an explicit/configured source, or None to calibrate with this run's X-rays."""
    cal = run.config.calibration
    if gs2 is None:
        if cal.gs2_path is not None:
            gs2 = cal.gs2_path
        elif cal.gs2 is not None:
            return [gs2_from_value(cal.gs2, cal.d_gs2, W_eV=W, E_x_eV=E_x, el_field_V_cm=el,
                                   provenance=cal.provenance or "")]
        else:
            return None
    items = gs2 if isinstance(gs2, list) else [gs2]
    out: list[GS2Entry] = []
    for item in items:
        if isinstance(item, GS2Entry):
            out.append(item)
        elif isinstance(item, (str, Path)):
            out.extend(load_external_gs2(item, W_eV=W, E_x_eV=E_x, el_field_V_cm=el))
        elif isinstance(item, tuple) and len(item) == 2:
            out.append(gs2_from_value(float(item[0]), float(item[1]), W_eV=W, E_x_eV=E_x, el_field_V_cm=el))
        else:
            raise TypeError(f"gs2: expected a path, (g_S2, d_g_S2), a GS2Entry or a list of them, got {item!r}")
    return out
