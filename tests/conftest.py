"""Shared fixtures: the paper's Cassiopeia A data, found beside the checkout.

Tests that need the data take the ``casa_dir`` fixture (or ``casa``, the loaded
data). Without ``../shared/data/casa`` they skip with the reason; with
``SGMCA_FAST_REQUIRE_DATA=1`` (as ``.ci/run`` sets) they fail instead, so that CI
never passes by skipping them.
"""

import os
from pathlib import Path

import pytest

CASA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "casa"


def _casa_dir_or_skip() -> Path:
    if (CASA_DIR / "sources.npz").is_file():
        return CASA_DIR
    why = f"the Cas A data are not at {CASA_DIR}"
    if os.environ.get("SGMCA_FAST_REQUIRE_DATA") == "1":
        pytest.fail(f"{why}, and SGMCA_FAST_REQUIRE_DATA=1 requires them")
    pytest.skip(why)


@pytest.fixture(scope="session")
def casa_dir() -> Path:
    """The folder of the paper's Cas A data (skips or fails when absent)."""
    return _casa_dir_or_skip()


@pytest.fixture(scope="session")
def casa(casa_dir):
    """The Cas A data loaded with :func:`sgmca_fast.datasets.load_casa`."""
    from sgmca_fast import datasets

    return datasets.load_casa(casa_dir)


@pytest.fixture(scope="session")
def reference_models_dir(casa_dir) -> Path:
    """The authors' trained models (pickles) inside the Cas A folder."""
    return casa_dir / "reference_models"
