"""Shared pytest fixtures: where the shared folder and its real WFM samples are."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SAMPLES = SHARED / "wfm" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real Tektronix files with their expected.json (../shared/wfm/samples)."""
    if not (SAMPLES / "expected.json").is_file():
        pytest.fail(f"the shared WFM samples are missing: {SAMPLES} (clone with ../shared beside the repo)")
    return SAMPLES
