"""Package data: the built-in IAE models of the spectral families of ``datasets``.

``sync.onnx``, ``thermal.onnx`` and ``gauss.onnx`` were trained by
``python -m sgmca_fast.data._make_models`` on ``datasets.make_spectra_sets(name)``
(see README.md in this folder). They model the package's toy X-ray spectra on 75
channels between 0.5 and 8 keV, not real instrument responses.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..datasets import FAMILIES

__all__ = ["BUILTIN_MODELS", "builtin_model", "builtin_models", "model_path"]

BUILTIN_MODELS = FAMILIES
"""Names of the built-in models, sorted: one per family of ``datasets.FAMILIES``."""


def model_path(name: str) -> Path:
    """Path of a built-in model file.

    Parameters
    ----------
    name : {"gauss", "sync", "thermal"}

    Returns
    -------
    path : pathlib.Path
    """
    if name not in BUILTIN_MODELS:
        raise ValueError(
            f"unknown built-in model {name!r}; expected one of {list(BUILTIN_MODELS)}"
        )
    res = resources.files(__name__).joinpath(f"{name}.onnx")
    if not res.is_file():
        raise FileNotFoundError(
            f"built-in model {name}.onnx is missing from the installed package "
            f"{__name__}; regenerate it with python -m sgmca_fast.data._make_models"
        )
    # wheels install as plain files, so the resource is a path on disk
    return Path(str(res))


def builtin_model(name: str, num_threads: int | None = None):
    """Load one built-in model (run through onnxruntime).

    Parameters
    ----------
    name : {"gauss", "sync", "thermal"}
    num_threads : int, optional
        onnxruntime threads (default 1, see :func:`sgmca_fast.iae.load`).

    Returns
    -------
    model : sgmca_fast.iae.IAEModel
    """
    from ..iae import load

    return load(model_path(name), num_threads=num_threads)


def builtin_models(num_threads: int | None = None) -> dict:
    """Load all built-in models.

    Parameters
    ----------
    num_threads : int, optional
        onnxruntime threads.

    Returns
    -------
    models : dict of str to sgmca_fast.iae.IAEModel
        ``{"gauss": ..., "sync": ..., "thermal": ...}``.
    """
    return {name: builtin_model(name, num_threads) for name in BUILTIN_MODELS}
