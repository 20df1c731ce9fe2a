"""Tests of s2lib.analysis.plotting: every figure renders, saves PNG + PDF atomically, labels carry units, pulls are right.

Runs with the Agg backend (``MPLBACKEND=Agg``; forced here too). Fit results are a small stand-in with the
attributes and methods of :class:`s2lib.stats.fitting.FitResult`, so these tests do not depend on the fitter; one
test also draws a real ``fit_histogram`` result.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from scipy import stats  # noqa: E402

from s2lib.stats import fitting  # noqa: E402
from s2lib.analysis import plotting as P  # noqa: E402
from s2lib.analysis._plot_helpers import format_p_value, format_value, unit_of  # noqa: E402


# --------------------------------------------------------------------------- stand-ins
@dataclass
class StubFit:
    """Minimal FitResult look-alike: a Gaussian signal on a flat background over the histogram range."""

    bin_edges: np.ndarray
    counts: np.ndarray
    mean: float = 1.7
    mean_err: float = 0.012
    ci95: float = 0.0235
    sigma: float = 0.45
    sigma_err: float = 0.01
    n_sig: float = 900.0
    n_bg: float = 100.0
    model: str = "gauss_bg"
    fit_success: bool = True
    reason: str = ""
    chi2: float = 52.3
    ndf: int = 46
    p_value: float = 0.24
    n_in_range: int = 1000
    label: str = "FieldScan_Gate0200_Anode2100"
    params: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    fixed_expected: np.ndarray | None = None

    def expected(self, edges: Any = None) -> np.ndarray:
        e = self.bin_edges if edges is None else np.asarray(edges, float)
        if self.fixed_expected is not None:
            return np.asarray(self.fixed_expected, float)
        cdf = stats.norm.cdf(e, self.mean, self.sigma)
        lo, hi = e[0], e[-1]
        sig = self.n_sig * np.diff(cdf) / (cdf[-1] - cdf[0])
        return sig + self.n_bg * np.diff(e) / (hi - lo)

    def components(self, x: Any) -> dict[str, np.ndarray]:
        x = np.asarray(x, float)
        e = self.bin_edges
        w = e[1] - e[0]
        norm = stats.norm.cdf(e[-1], self.mean, self.sigma) - stats.norm.cdf(e[0], self.mean, self.sigma)
        sig = self.n_sig * stats.norm.pdf(x, self.mean, self.sigma) / norm * w
        bg = np.full_like(x, self.n_bg / (e[-1] - e[0]) * w)
        return {"signal": sig, "background": bg, "total": sig + bg}

    def pdf_signal(self, x: Any) -> np.ndarray:
        return stats.norm.pdf(np.asarray(x, float), self.mean, self.sigma)


def make_fit(**kw: Any) -> StubFit:
    rng = np.random.default_rng(7)
    edges = np.linspace(0.0, 5.0, 51)
    values = np.concatenate([rng.normal(1.7, 0.45, 900), rng.uniform(0, 5, 100)])
    counts, _ = np.histogram(values, bins=edges)
    return StubFit(bin_edges=edges, counts=counts, **kw)


def make_run() -> tuple[Any, dict[str, Any]]:
    fields = [35.7, 71.4, 142.9, 285.7, 571.4]
    sets = [SimpleNamespace(name=f"FieldScan_Gate{round(f * 1.4):04d}_Anode2100", drift_field_V_cm=f,
                            el_field_V_cm=2375.0) for f in fields]
    fitted = {s.name: SimpleNamespace(mean=1.5 + 0.001 * s.drift_field_V_cm, ci95=0.04, fit_success=True)
              for s in sets}
    fitted[sets[2].name] = SimpleNamespace(mean=1.7, ci95=math.nan, fit_success=False)
    return SimpleNamespace(run_id="RUN22", sets=sets), fitted


def all_text(fig: Figure) -> str:
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def axis_labels(fig: Figure) -> list[str]:
    return [lab for ax in fig.axes for lab in (ax.get_xlabel(), ax.get_ylabel()) if lab]


# --------------------------------------------------------------------------- every figure, saved once
FIELDS = np.array([35.7, 71.4, 142.9, 285.7, 571.4])
R = np.array([0.90, 0.895, 0.889, 0.883, 0.877])


def _builders() -> dict[str, Any]:
    run, fitted = make_run()
    t = np.linspace(-10, 40, 5000)
    traces = [np.sin(t) + 30 * np.exp(-0.5 * ((t + 3.3) / 0.05) ** 2) for _ in range(3)]
    return {
        "hist_fit": lambda d: P.plot_hist_fit(make_fit(), out_dir=d, name="hist_fit"),
        "xray_hist": lambda d: P.plot_xray_hist(make_fit(model="gauss", label="X-ray"), out_dir=d,
                                                name="xray_hist"),
        "s2_vs_drift": lambda d: P.plot_s2_vs_drift(run, fitted, out_dir=d, name="s2_vs_drift"),
        "points": lambda d: P.plot_points_vs_field(FIELDS, FIELDS / 100, FIELDS / 1000, out_dir=d, name="points"),
        "recombination": lambda d: P.plot_recombination(
            FIELDS, 500 + FIELDS / 10, np.full(5, 12.0), R, np.full(5, 0.003), N_exp=4400.0,
            models={"ti": (lambda E: 1 - 0.2 * np.log1p(284 / E) / (284 / E), "Thomas–Imel"),
                    "pts": (FIELDS, R + 0.001)}, out_dir=d),
        "summary": lambda d: P.plot_summary_recombination({"RUN8": (FIELDS, R, np.full(5, 0.003)),
                                                           "RUN22": (FIELDS, R + 0.02, np.full(5, 0.004))},
                                                          out_dir=d, name="summary"),
        "timing_vs_field": lambda d: P.plot_timing_vs_field(FIELDS, np.full(5, -3.3), np.full(5, 0.5),
                                                            14 / (0.7 + FIELDS / 1000) - 3, np.full(5, 1.0),
                                                            16 / (0.7 + FIELDS / 1000), np.full(5, 2.0), out_dir=d),
        "timing_hist": lambda d: P.plot_timing_hist(np.random.default_rng(3).normal(-3.3, 0.5, 800), -3.3, 0.5,
                                                    out_dir=d, name="timing_hist"),
        "waveforms": lambda d: P.plot_waveform_validation(t, traces, s1=(-3.3, 0.5), s2_window=(12.0, 16.0),
                                                          xray_windows=[(4.0, 6.0)], titles=["a", "b", "c"],
                                                          out_dir=d, name="waveforms"),
        "xray_classification": lambda d: P.plot_xray_classification(
            {"accepted": 433, "no_pulse": 120345, "s2_overlap": 2345}, out_dir=d),
    }


BUILDERS = _builders()
UNITS = {
    "hist_fit": ["mV·µs"], "xray_hist": ["mV·µs"], "s2_vs_drift": ["V/cm", "mV·µs"], "points": ["V/cm"],
    "recombination": ["V/cm"], "summary": ["V/cm"], "timing_vs_field": ["V/cm", "µs"], "timing_hist": ["µs"],
    "waveforms": ["µs", "mV"], "xray_classification": ["count"],
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Figure]]:
    out = tmp_path_factory.mktemp("figures") / "nested" / "figures"  # created by save_figure
    figs = {key: build(out) for key, build in BUILDERS.items()}
    return out, figs


@pytest.mark.parametrize("key", list(BUILDERS))
def test_figure_saved_as_png_and_pdf(rendered: tuple[Path, dict[str, Figure]], key: str) -> None:
    out, figs = rendered
    fig = figs[key]
    assert isinstance(fig, Figure)
    stem = {"recombination": "recombination", "timing_vs_field": "timing_vs_field",
            "xray_classification": "xray_classification"}.get(key, key)
    png, pdf = out / f"{stem}.png", out / f"{stem}.pdf"
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 2000
    image = mpimg.imread(png)
    w_in, h_in = fig.get_size_inches()
    assert image.shape[1] == pytest.approx(w_in * 200, abs=2)
    assert image.shape[0] == pytest.approx(h_in * 200, abs=2)
    assert image[..., :3].std() > 0.05  # not blank
    labels = " ".join(axis_labels(fig))
    for unit in UNITS[key]:
        assert unit in labels, (key, unit, labels)


def test_no_temporary_files_left(rendered: tuple[Path, dict[str, Figure]]) -> None:
    out, _ = rendered
    names = sorted(p.name for p in out.iterdir())
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names
    assert len(names) == 2 * len(BUILDERS)
    umask = os.umask(0o022)
    os.umask(umask)
    assert all((p.stat().st_mode & 0o777) == (0o666 & ~umask) for p in out.iterdir())  # not mkstemp's 0600


def test_fonts_at_least_8pt(rendered: tuple[Path, dict[str, Figure]]) -> None:
    _, figs = rendered
    for key, fig in figs.items():
        sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text().strip()]
        assert min(sizes) >= 8, key


def test_figures_not_registered_with_pyplot(rendered: tuple[Path, dict[str, Figure]]) -> None:
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


# --------------------------------------------------------------------------- histogram specifics
def test_pulls_match_hand_computation() -> None:
    edges = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    counts = np.array([4, 9, 1, 0])
    mu = np.array([4.0, 6.25, 2.25, 0.0])  # last bin: no expectation -> no pull
    fit = StubFit(bin_edges=edges, counts=counts, fixed_expected=mu)
    fig = P.plot_hist_fit(fit)
    line = next(ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == "pulls")
    np.testing.assert_allclose(line.get_xdata(), [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_allclose(line.get_ydata(), [0.0, 2.75 / 2.5, -1.25 / 1.5, np.nan])
    np.testing.assert_allclose(P.pulls(counts, mu), [0.0, 1.1, -1.25 / 1.5, np.nan])


def test_data_points_and_poisson_bars() -> None:
    fit = make_fit()
    fig = P.plot_hist_fit(fit, errors="sqrt")
    ax = fig.axes[0]
    pts = next(ln for ln in ax.lines if ln.get_label() == "data" or ln.get_marker() == "o")
    y = np.asarray(pts.get_ydata())
    np.testing.assert_array_equal(y, fit.counts[fit.counts > 0])
    assert "Counts / 0.1 mV·µs" == ax.get_ylabel()


def test_garwood_intervals() -> None:
    lo, hi = P.poisson_interval([0, 1, 10, 10000])
    np.testing.assert_allclose(lo[:2], [0.0, 1 - 0.17275], atol=1e-4)
    np.testing.assert_allclose(hi[:2], [1.84102, 3.29953 - 1], atol=1e-4)
    assert lo[3] == pytest.approx(100, rel=0.02) and hi[3] == pytest.approx(100, rel=0.02)  # → ±√n
    lo_s, hi_s = P.poisson_interval([4, 9], method="sqrt")
    np.testing.assert_allclose(lo_s, [2, 3])
    with pytest.raises(ValueError):
        P.poisson_interval([1], method="gauss")


def test_fit_numbers_in_text() -> None:
    fig = P.plot_hist_fit(make_fit())
    text = all_text(fig)
    assert "1.700 ± 0.012 mV·µs" in text
    assert "95 % CI of mean: ± 0.024 mV·µs" in text
    assert "52.3 / 46" in text and "p-value = 0.240" in text and "N in range = 1\u2009000" in text
    assert "gauss_bg" in text and "FIT FAILED" not in text
    labels = [ln.get_label() for ln in fig.axes[0].lines]
    assert {"signal", "background"} <= set(labels)


def test_failed_fit_is_shown_with_reason() -> None:
    fit = make_fit(fit_success=False, reason="parameter sigma at its upper limit", mean_err=math.nan,
                   ci95=math.nan)
    fig = P.plot_hist_fit(fit)
    failed = [t for t in fig.findobj(Text) if t.get_gid() == "fit_failed"]
    assert failed and "FIT FAILED: parameter sigma at its" in failed[0].get_text().replace("\n", " ")
    assert matplotlib.colors.to_hex(failed[0].get_color()) == "#c00000"
    assert any("(failed)" in ln.get_label() for ln in fig.axes[0].lines)  # the curve is still drawn


def test_s2areas_without_fit_shows_histogram() -> None:
    areas = np.random.default_rng(1).normal(1.7, 0.4, 500)
    s2 = SimpleNamespace(areas=areas, fit_result=None, source_dir="/x/FieldScan_Gate0050_Anode1950")
    fig = P.plot_hist_fit(s2, bin_cuts=(0, 5))
    assert "NO FIT" in all_text(fig)
    assert fig.axes[0].get_title() == "FieldScan_Gate0050_Anode1950"
    assert fig.axes[0].get_xlim() == (0, 5)


def test_s2areas_with_fit_and_log_scale() -> None:
    s2 = SimpleNamespace(areas=np.zeros(3), fit_result=make_fit(), source_dir="/x/set")
    fig = P.plot_hist_fit(s2, log=True)
    assert fig.axes[0].get_yscale() == "log"
    lo, hi = fig.axes[0].get_ylim()
    assert lo == 0.5 and hi < 1e4


def test_real_fit_result_draws() -> None:
    values = np.random.default_rng(5).normal(2.0, 0.5, 800)
    res = fitting.fit_histogram(values, fitting.FitConfig(bin_cuts=(0.0, 5.0), nbins=50))
    fig = P.plot_xray_hist(res)
    line = next(ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == "pulls")
    mu = res.expected(res.bin_edges)
    np.testing.assert_allclose(line.get_ydata(), (res.counts - mu) / np.sqrt(mu))
    assert "A" in all_text(fig) and "mV·µs (±1σ)" in all_text(fig)
    P.plot_hist_fit(res.to_dict())  # the JSON form is accepted too


# --------------------------------------------------------------------------- vs drift field
def test_normalized_without_A_x_raises() -> None:
    run, fitted = make_run()
    with pytest.raises(ValueError, match="A_x"):
        P.plot_s2_vs_drift(run, fitted, normalized=True)
    with pytest.raises(ValueError, match="A_x"):
        P.plot_s2_vs_drift(run, fitted, normalized=True, A_x=float("nan"))


def test_normalized_values_and_errors() -> None:
    run, fitted = make_run()
    fig = P.plot_s2_vs_drift(run, fitted, normalized=True, A_x=2.0, dA_x=0.1)
    ax = fig.axes[0]
    good = ax.containers[0]
    y = np.asarray(good.lines[0].get_ydata())
    means = np.array([fitted[s.name].mean for s in run.sets if fitted[s.name].fit_success])
    np.testing.assert_allclose(y, means / 2.0)
    seg = good.lines[2][0].get_segments()
    half = np.array([(s[1][1] - s[0][1]) / 2 for s in seg])
    np.testing.assert_allclose(half, means / 2.0 * np.hypot(0.04 / means, 0.05))
    assert "ratio" in ax.get_ylabel()


def test_failed_sets_open_markers_and_listed() -> None:
    run, fitted = make_run()
    del fitted[run.sets[0].name]
    fig = P.plot_s2_vs_drift(run, fitted)
    ax = fig.axes[0]
    legend = " ".join(t.get_text() for t in ax.get_legend().get_texts())
    assert "95 % CI" in legend and "fit failed: Gate0200_Anode2100" in legend
    failed_line = ax.containers[1].lines[0]
    assert failed_line.get_markerfacecolor() in ("white", (1.0, 1.0, 1.0, 1.0))
    assert "not fitted: Gate0050_Anode2100" in ax.get_title()


def test_points_vs_field_into_existing_axes() -> None:
    fig = P.plot_points_vs_field([1, 2], [3, 4], [0.1, 0.2])
    out = P.plot_points_vs_field([1, 2], [5, 6], [0.1, 0.2], ax=fig.axes[0], label="second", color="k")
    assert out is fig and len(fig.axes[0].containers) == 2
    with pytest.raises(ValueError):
        P.plot_points_vs_field([1, 2], [3], [0.1, 0.2])


# --------------------------------------------------------------------------- style and saving
def test_use_style_restores_rcparams() -> None:
    before = dict(matplotlib.rcParams)
    with P.use_style(grid=True) as ctx:
        assert isinstance(ctx, P.StyleContext)
        assert matplotlib.rcParams["xtick.direction"] == "in"
        assert matplotlib.rcParams["axes.grid"] is True
        assert matplotlib.rcParams["savefig.dpi"] == 200
        assert matplotlib.rcParams["text.usetex"] is False
        assert min(matplotlib.rcParams["xtick.labelsize"], matplotlib.rcParams["legend.fontsize"]) >= 8
    after = dict(matplotlib.rcParams)
    assert {k: v for k, v in after.items() if before[k] != v} == {}


def test_use_style_as_plain_call_persists() -> None:
    import gc

    with matplotlib.rc_context():  # undoes the global style at the end of the test
        P.use_style()  # object dropped at once: the style must stay
        gc.collect()
        assert matplotlib.rcParams["xtick.direction"] == "in"


def test_style_file_shipped_and_sizes() -> None:
    assert P.STYLE_PATH.is_file() and P.STYLE_PATH.suffix == ".mplstyle"
    assert P.ONE_COLUMN == (3.4, 2.6) and P.TWO_COLUMN == (7.0, 3.2)
    text = P.STYLE_PATH.read_text()
    assert "0072B2" in text and "usetex" in text


def test_save_figure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = P.plot_points_vs_field([1, 2], [3, 4], [0.1, 0.2])
    paths = P.save_figure(fig, tmp_path / "new", "a name/with:odd chars")
    assert set(paths) == {"png", "pdf"} and all(p.is_file() for p in paths.values())
    assert paths["png"].name == "a_name_with_odd_chars.png"
    old = paths["pdf"].read_bytes()

    def broken(fh: Any, **kw: Any) -> None:
        fh.write(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(RuntimeError):
        P.save_figure(fig, tmp_path / "new", "a name/with:odd chars")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["a_name_with_odd_chars.pdf",
                                                                     "a_name_with_odd_chars.png"]
    assert paths["pdf"].read_bytes() == old


def test_pdf_is_reproducible(tmp_path: Path) -> None:
    """Same inputs, same bytes (no creation date in the PDF): report caches can compare files."""
    figs = [P.plot_points_vs_field([1, 2], [3, 4], [0.1, 0.2]) for _ in range(2)]
    a, b = (P.save_figure(fig, tmp_path, name)["pdf"].read_bytes() for fig, name in zip(figs, "ab"))
    assert a == b
    for fig in figs:
        P.close(fig)


def test_formatting_helpers() -> None:
    assert format_value(1.65234, 0.01234) == "1.652 ± 0.012"
    assert format_value(4412.3, 123.4) == "4410 ± 120"
    assert format_value(float("nan"), 0.1) == "n/a"
    assert format_value(0.0235, alone=True) == "0.024"
    assert format_p_value(0.4199) == "0.420" and format_p_value(3.1e-5) == "3.1×10⁻⁵"
    assert format_p_value(None) == "n/a"
    assert unit_of("S2 area (mV·µs)") == "mV·µs" and unit_of("Pull") == ""


def test_waveform_inputs_validated_and_decimated() -> None:
    t = np.linspace(0, 50, 250_000)
    fig = P.plot_waveform_validation(t, [np.zeros_like(t)], xray_windows=[[(1, 2), (3, 4)]])
    trace = fig.axes[0].lines[0]
    assert len(trace.get_xdata()) <= 6000
    with pytest.raises(ValueError):
        P.plot_waveform_validation(t, [])


def test_figures_render_without_a_display_or_backend_setting(tmp_path: Path) -> None:
    """Headless machines (CI, papermill workers): no DISPLAY and no MPLBACKEND, and s2lib must not need pyplot."""
    import subprocess
    import sys

    code = ("import sys; from s2lib.analysis import _plot_helpers as H; fig = H.new_figure(); "
            "fig.add_subplot().plot([0, 1]); fig.savefig(sys.argv[1]); print('matplotlib.pyplot' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "f.png")], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # the figure was drawn without importing pyplot
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_style_context_keeps_the_backend_and_restores_rcparams() -> None:
    from s2lib.analysis._plot_helpers import use_style

    before_backend = matplotlib.rcParams["backend"]
    before_grid = matplotlib.rcParams["axes.grid"]
    with use_style(grid=not before_grid):
        assert matplotlib.rcParams["axes.grid"] is (not before_grid)
    assert matplotlib.rcParams["backend"] == before_backend
    assert matplotlib.rcParams["axes.grid"] is before_grid
