"""Interpolatory autoencoders (IAE): learned spectral models for sGMCA.

An :class:`IAEModel` holds anchor spectra, an encoder and a decoder; its generator
``g(lambda)`` spans the family of spectra the semi-blind solver constrains the
mixing matrix to. Models are trained with :func:`train`, saved as one ONNX file
with :meth:`IAEModel.save`, read back with :func:`load` (run through
onnxruntime) and imported from the sGMCA authors' pickles with
:func:`from_reference`.
"""

from ._model import IAEModel
from ._onnx import load
from ._project import ProjectionResult
from ._reference import from_reference

__all__ = ["IAEModel", "ProjectionResult", "from_reference", "load", "train"]


def __getattr__(name):
    # ``train`` lives in ._train (written separately); import it on first use so
    # this package imports even while that module is being written.
    if name == "train":
        from ._train import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"train"})
