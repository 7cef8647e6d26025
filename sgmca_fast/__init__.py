"""sgmca-fast: semi-blind source separation of spectral cubes with learned spectra."""

# _config is imported first: it sets the OpenMP wait policy before a runtime loads.
from . import _config, datasets, metrics, starlet  # noqa: F401
from ._config import get_num_threads, set_num_threads
from ._solver import Separation, gmca, separate
from ._version import __version__

__all__ = [
    "Separation",
    "__version__",
    "datasets",
    "get_num_threads",
    "gmca",
    "metrics",
    "separate",
    "set_num_threads",
    "starlet",
]
