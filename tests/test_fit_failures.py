"""A failed or absent fit draws nothing: the FitResult methods return NaN of the right shape, never numbers."""
from __future__ import annotations

import numpy as np

from s2lib.stats.fitting import FitConfig, FitResult, fit_histogram


def test_failed_fit_methods_return_nan_of_the_asked_shape() -> None:
    r = fit_histogram(np.full(3, 50.0), FitConfig(model="gauss", bin_cuts=(0.0, 5.0), nbins=20))  # none inside
    assert r.fit_success is False
    exp = r.expected()
    assert exp.shape == (20,) and np.isnan(exp).all()
    assert np.isnan(r.expected([0.0, 1.0, 2.0])).all() and r.expected([0.0, 1.0, 2.0]).shape == (2,)
    assert r.expected([1.0]).shape == (0,) and r.expected([]).shape == (0,)
    x = np.linspace(0.0, 5.0, 7).reshape(7, 1)
    comps = r.components(x)
    assert set(comps) == {"signal", "total"}
    assert comps["signal"].shape == comps["total"].shape == (7, 1)
    assert np.isnan(comps["signal"]).all() and np.isnan(comps["total"]).all()
    pdf = r.pdf_signal(x)
    assert pdf.shape == (7, 1) and np.isnan(pdf).all()


def test_default_result_has_no_model() -> None:
    r = FitResult(model="gauss")
    assert np.isnan(r.pdf_signal([1.0, 2.0])).all()
    assert np.isnan(r.components(1.0)["total"]) and r.components(1.0)["total"].shape == ()
