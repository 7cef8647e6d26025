"""The generator protocol: what the projections ask of a model's backend.

A generator evaluates an IAE on validated (k, .) float64 arrays. Two implement
it: :class:`NumpyGenerator` (the numpy definition, ``_network.py``) and
``_runtime.OrtGenerator`` (onnxruntime, on the graph of ``_graph.py``). A model
picks one when it is built or loaded (``backend=``); the projection code
(``_project.py``) talks to it only.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .._validation import InputTypeError, choice
from ._network import Network

__all__ = ["BACKENDS", "Generator", "NumpyGenerator", "make_generator"]

BACKENDS = ("numpy", "onnxruntime")


class Generator(Protocol):
    """Evaluations of an IAE network, batch by batch (rows are spectra).

    Attributes
    ----------
    name : str
        ``"numpy"`` or ``"onnxruntime"``.
    network : Network
        The parameters (shapes, constraint, free basis, activation).
    """

    name: str
    network: Network

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``phi(x)``: (k, J) -> (k, J')."""

    def decode(self, code: np.ndarray) -> np.ndarray:
        """``psi(code)``: (k, J') -> (k, J)."""

    def generate(self, lam: np.ndarray) -> np.ndarray:
        """``g(lambda)``: (k, N) -> (k, J)."""

    def generate_with_jacobian(self, lam: np.ndarray):
        """G (k, J) and dg/dlambda (k, J, N)."""

    def generate_free(self, lam: np.ndarray):
        """Return g, dg/dt, z and dz/dt (rows) along the free basis.

        Shapes (k, J), (k, d, J), (k, P) and (k, d, P): P pre-activations.
        """

    def start(self, x: np.ndarray):
        """Return the start of the least-squares projection of (k, J) spectra.

        The fast weights on the constraint set (k, N), then :meth:`generate_free`
        there.
        """

    def fast_project(self, x: np.ndarray):
        """Fast projection of (k, J) spectra: spectra, lambdas (k, N), amplitudes."""


# The evaluations of the protocol (what a backend must provide besides its name).
EVALUATIONS = ("encode", "decode", "generate", "generate_with_jacobian",
               "generate_free", "start", "fast_project")


class NumpyGenerator:
    """The generator protocol computed with numpy by :class:`Network`.

    Each evaluation of :data:`EVALUATIONS` is the network's method of that name.
    """

    name = "numpy"

    def __init__(self, network: Network) -> None:
        self.network = network

    def __getattr__(self, attr):
        # Only reached for names the instance lacks: the evaluations.
        if attr in EVALUATIONS:
            return getattr(self.network, attr)
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {attr!r}"
        )

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(EVALUATIONS))


def make_generator(network: Network, backend, num_threads: int, make_proto):
    """Return the generator of ``network`` for ``backend``.

    Parameters
    ----------
    network : Network
    backend : {"numpy", "onnxruntime"} or callable
        A callable is given the network and returns a :class:`Generator`.
    num_threads : int
        onnxruntime intra-op threads.
    make_proto : callable
        ``make_proto()`` builds the ONNX model the sessions run (onnxruntime).
    """
    if callable(backend):
        return backend(network)
    if not isinstance(backend, str):
        raise InputTypeError(
            f"backend must be one of {list(BACKENDS)} or a callable, got {backend!r}"
        )
    choice(backend, "backend", BACKENDS)
    if backend == "numpy":
        return NumpyGenerator(network)
    from ._runtime import OrtGenerator, build_sessions

    return OrtGenerator(network, build_sessions(make_proto(), num_threads))
