"""sgmca-fast: semi-blind source separation of spectral cubes with learned spectra.

The public names below load on first use (PEP 562 ``__getattr__``): ``import
sgmca_fast`` itself imports neither numpy, numba nor scipy, so that the command
line can install its signal handlers before those heavy imports.
"""

import importlib

# _config is imported first: it sets the OpenMP wait policy before a runtime loads.
from . import _config  # noqa: F401
from ._version import __version__

__all__ = [
    "SGMCA",
    "Separation",
    "__version__",
    "datasets",
    "get_num_threads",
    "gmca",
    "metrics",
    "separate",
    "set_num_threads",
    "starlet",
    "thread_limits",
]

# public name -> the module that defines it (a submodule stands for itself)
_LAZY = {
    "SGMCA": ".estimator",
    "Separation": "._solver",
    "datasets": ".datasets",
    "get_num_threads": "._config",
    "gmca": "._solver",
    "metrics": ".metrics",
    "separate": "._solver",
    "set_num_threads": "._config",
    "starlet": ".starlet",
    "thread_limits": "._config",
}


def __getattr__(name):
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(where, __name__)
    value = module if where == f".{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
