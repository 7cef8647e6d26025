"""sgmca-fast: semi-blind source separation of spectral cubes with learned spectra."""

from . import starlet
from ._config import get_num_threads, set_num_threads
from ._version import __version__

__all__ = [
    "__version__",
    "get_num_threads",
    "set_num_threads",
    "starlet",
]
