"""Interpolatory autoencoders (IAE): learned spectral models for sGMCA.

An :class:`IAEModel` holds anchor spectra, an encoder and a decoder; its generator
``g(lambda)`` spans the family of spectra the semi-blind solver constrains the
mixing matrix to (docs/algorithm.md sections 4 and 5). Models are trained with
:func:`train`, saved as one ONNX file with :meth:`IAEModel.save`, read back with
:func:`load` (run through onnxruntime) and imported from the sGMCA authors'
pickles with :func:`from_reference`.

Modules, from the bottom up: ``_network`` (the one definition of the network, in
numpy), ``_graph`` (the same as an ONNX graph), ``_format`` (the file: graph and
metadata), ``_generator`` and ``_runtime`` (the numpy and onnxruntime backends),
``_project`` (projections, through a backend), ``_model`` (:class:`IAEModel`),
``_load``, ``_reference``, ``_quality`` (SAD of projections) and ``_train``.
"""

from ._load import load
from ._model import IAEModel
from ._project import ProjectionResult
from ._quality import median_sad, sad_rows
from ._reference import from_reference

__all__ = ["IAEModel", "ProjectionResult", "from_reference", "load", "median_sad",
           "sad_rows", "train"]


def __getattr__(name):
    # ``train`` imports scipy and tqdm: only on first use.
    if name == "train":
        from ._train import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | {"train"})
