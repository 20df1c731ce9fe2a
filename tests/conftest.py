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


TINY_SEED = 20260601
"""Seed of the session's tiny simulated run (fixed: the tests' numbers are reproducible)."""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """A ``tiny`` simulated run, written once per test session: ``(outdir, config path, truth dict)``.

    ``outdir/raw`` holds the WFM files, ``outdir/truth/<set>.npz`` the per-frame truth, ``outdir/run.yaml`` the
    configuration (outputs to ``outdir/processed``). Treat it as read-only: tests that write outputs should
    point ``output_base`` elsewhere.
    """
    import json

    from s2lib.sim.simulate import simulate_run

    outdir = simulate_run(tmp_path_factory.mktemp("tiny_run"), profile="tiny", seed=TINY_SEED, progress=False)
    truth = json.loads((outdir / "truth.json").read_text(encoding="utf-8"))
    return outdir, outdir / "run.yaml", truth
