"""The alpha section of the configuration: the lab's multi_isotope.* / energy_mapping.* keys with their meaning."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from s2lib.config.config import AlphaConfig, ConfigWarning, config_from_dict, config_reference_markdown
from s2lib.errors import ConfigError


def _cfg(tmp_path: Path, **alpha: object) -> object:
    (tmp_path / "raw").mkdir(exist_ok=True)
    data = {"run_id": "R", "description": "alpha test", "data": {"raw_data_path": "raw", "output_base": "out"}, **alpha}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        return config_from_dict(data, base_dir=tmp_path)


def test_defaults_and_lab_keys(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    assert cfg.alpha == AlphaConfig() and cfg.alpha.alpha_channel == 4 and cfg.alpha.isotope_ranges is None
    lab = _cfg(tmp_path, multi_isotope={"enabled": True, "pmt_channel": 3, "isotope_ranges": {
        "Po212": [6.0, 10.0], "Th-228": [4.0, 4.7], "Ra224": [4.7, 5.0]}},
        energy_mapping={"savgol_window": 501, "energy_range": [4, 8.2], "n_sigma": 2.0, "use_quadratic": False,
                        "format": "6b", "scale": 0.1, "nbins": 120})
    a = lab.alpha
    assert a.enabled and a.pmt_channel == 3 and a.savgol_window == 501 and a.nbins == 120
    assert a.isotope_ranges == (("Th228", 4.0, 4.7), ("Ra224", 4.7, 5.0), ("Po212", 6.0, 10.0))
    assert (a.map_format, a.map_scale, a.use_quadratic) == ("6b", 0.1, False)
    again = config_from_dict(lab.to_dict(), base_dir=tmp_path)
    assert again.alpha == a
    assert lab.section("multi_isotope")["isotope_ranges"][0] == ["Th228", 4.0, 4.7]


@pytest.mark.parametrize(("ranges", "match"), [
    ({"Th228": [4.0, 4.8], "Ra224": [4.7, 5.0]}, "overlap"),
    ({"Xx1": [4.0, 4.8]}, "unknown isotope"),
    ({"Th228": [4.8, 4.0]}, "increasing"),
    ([4.0, 4.8], "expected a mapping"),
])
def test_bad_ranges_name_the_key(tmp_path: Path, ranges: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as err:
        _cfg(tmp_path, multi_isotope={"isotope_ranges": ranges})
    assert "multi_isotope.isotope_ranges" in str(err.value)


def test_reference_lists_alpha_keys() -> None:
    text = config_reference_markdown()
    assert "`multi_isotope.isotope_ranges`" in text and "u_SCA" in text and "`energy_mapping.generate`" in text
