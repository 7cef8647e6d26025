"""The interpolatory autoencoder (IAE) model: frozen parameters and a backend.

An :class:`IAEModel` validates its layers once, keeps them as a frozen
:class:`._network.Network` (the one definition of the network, docs/algorithm.md
section 4) and runs its projections (section 5) through a generator chosen when
it is built or loaded: ``backend="numpy"`` or ``"onnxruntime"``.
"""

from __future__ import annotations

import numpy as np

from .._validation import InputError, real
from ._checks import as_batch, check_layers, check_threads
from ._format import metadata as file_metadata
from ._format import model_proto, write
from ._generator import make_generator
from ._graph import build as build_graph
from ._network import ACTIVATIONS, Network
from ._project import fast_project as fast_projection
from ._project import project as least_squares_projection

__all__ = ["ACTIVATIONS", "IAEModel"]


def _check_network(anchors, encoder_weights, encoder_biases, decoder_weights,
                   decoder_biases, activation, res_factor, simplex, reg_inv):
    """Validate the parameters of a model and build its :class:`Network`."""
    anchors = np.array(anchors, dtype=np.float64, copy=True)
    if anchors.ndim != 2 or anchors.shape[0] < 1 or anchors.shape[1] < 1:
        raise InputError(
            f"anchors must be a 2-D (N, J) array, got shape {anchors.shape}"
        )
    if not np.all(np.isfinite(anchors)):
        raise InputError("anchors hold NaN or infinite values")
    if activation not in ACTIVATIONS:
        raise InputError(
            f"unknown activation {activation!r}; expected one of "
            f"{sorted(ACTIVATIONS)}"
        )
    n_anchors, n_channels = anchors.shape
    enc_w, enc_b = check_layers(encoder_weights, encoder_biases, "encoder", n_channels)
    dec_w, dec_b = check_layers(decoder_weights, decoder_biases, "decoder",
                                enc_w[-1].shape[1])
    if len(enc_w) != len(dec_w):
        raise InputError(
            f"encoder has {len(enc_w)} layers, decoder has {len(dec_w)}; "
            "they must match"
        )
    if dec_w[-1].shape[1] != n_channels:
        raise InputError(
            f"decoder output width {dec_w[-1].shape[1]} differs from the "
            f"{n_channels} channels of the anchors"
        )
    res_factor = real(res_factor, "res_factor", low=0.0)
    reg_inv = real(reg_inv, "reg_inv", low=0.0)
    if simplex and n_anchors < 2:
        raise InputError("a simplex model needs at least 2 anchors")
    if not np.any(anchors):
        raise InputError("anchors must not all be zero")
    anchors.setflags(write=False)
    net = Network.build(anchors, enc_w, enc_b, dec_w, dec_b, activation=activation,
                        res_factor=res_factor, simplex=bool(simplex), reg_inv=reg_inv)
    # A residual term needs the layer to keep its width.
    r = net.residual_factors
    for what, ws, factors in (("encoder", enc_w, r), ("decoder", dec_w, r[::-1])):
        for layer, (w, fac) in enumerate(zip(ws, factors, strict=True)):
            if fac != 0 and w.shape[0] != w.shape[1]:
                raise InputError(
                    f"{what} layer {layer} has a residual factor {fac:g} but "
                    f"changes width ({w.shape[0]} -> {w.shape[1]})"
                )
    return net, res_factor, reg_inv


class IAEModel:
    """An interpolatory autoencoder: anchors, encoder phi, decoder psi.

    Parameters
    ----------
    anchors : (N, J) array_like
        Anchor spectra, one a row.
    encoder_weights, encoder_biases : list of L arrays
        Encoder layer ``l`` maps ``h`` to ``act(h @ W_l + b_l) + r_l * h``;
        shapes (J_l, J_l+1) and (J_l+1,).
    decoder_weights, decoder_biases : list of L arrays
        Decoder layers, same form; decoder layer ``l`` uses ``r_{L-1-l}``.
    activation : {"leaky_relu", "linear", "relu", "tanh"}, optional
        Leaky ReLU has slope ``_network.LEAKY_SLOPE`` (0.01).
    res_factor : float, optional
        Residual factor; ``r_l = res_factor * (2**(l / (L - 1)) - 1)``.
    simplex : bool, optional
        Rescale interpolated weights to (nearly) sum to one and constrain the
        projection to ``sum(lambda) = 1``.
    reg_inv : float, optional
        Ridge term of the interpolator's (N, N) inverse.
    reg_parameter : float, optional
        Weight of the sample-domain term of the training loss (kept for records).
    name : str, optional
        Family name (e.g. ``"sync"``).
    metadata : dict, optional
        JSON-able training settings.
    training_spectra : (M, J) array_like, optional
        Spectra the model was trained on (saved with the model; the solver
        reseeds lost sources from them).
    backend : {"numpy", "onnxruntime"} or callable, optional
        What runs :meth:`fast_project` and :meth:`project`: numpy (default) or
        onnxruntime (a session built in memory from :meth:`to_onnx`). A callable
        is given the :class:`._network.Network` and returns a generator
        (``_generator.Generator``).
    num_threads : int, optional
        onnxruntime intra-op threads (default 1, for use inside iterative loops).

    Attributes
    ----------
    anchors : (N, J) ndarray
    anchor_codes : (N, J') ndarray
        ``phi(anchors)``.
    n_anchors, n_channels, n_layers, code_size : int
    residual_factors : (L,) ndarray
    network : Network
        The frozen parameters; :meth:`encode`, :meth:`decode`, :meth:`generate`
        and :meth:`generate_with_jacobian` compute with it in numpy whatever the
        backend (the reference definition).
    generator : Generator
        The backend the projections run through.
    training_spectra : (M, J) ndarray or None
    """

    def __init__(self, anchors, encoder_weights, encoder_biases, decoder_weights,
                 decoder_biases, *, activation: str = "leaky_relu",
                 res_factor: float = 0.1, simplex: bool = True, reg_inv: float = 1e-8,
                 reg_parameter: float = 0.1, name: str = "",
                 metadata: dict | None = None, training_spectra=None,
                 backend="numpy", num_threads: int | None = None) -> None:
        net, res_factor, reg_inv = _check_network(
            anchors, encoder_weights, encoder_biases, decoder_weights,
            decoder_biases, activation, res_factor, simplex, reg_inv)
        threads = check_threads(num_threads)
        self.network = net
        self.anchors = net.anchors
        self.encoder_weights, self.encoder_biases = (net.encoder_weights,
                                                     net.encoder_biases)
        self.decoder_weights, self.decoder_biases = (net.decoder_weights,
                                                     net.decoder_biases)
        self.activation = activation
        self.res_factor = res_factor
        self.simplex = net.simplex
        self.reg_inv = reg_inv
        self.reg_parameter = real(reg_parameter, "reg_parameter", low=0.0)
        self.name = str(name)
        self.metadata = dict(metadata) if metadata is not None else {}
        self.n_anchors, self.n_channels = net.anchors.shape
        self.n_layers = len(net.encoder_weights)
        self.code_size = net.anchor_codes.shape[1]
        self.residual_factors = net.residual_factors
        self.anchor_codes = net.anchor_codes
        self.training_spectra = (None if training_spectra is None else
                                 np.asarray(training_spectra, dtype=np.float64))
        self.source: str | None = None  # the file it was loaded from
        self.package_version: str | None = None  # of the package that wrote it
        self.generator = make_generator(net, backend, threads, self._graph)

    def __repr__(self) -> str:
        return (
            f"IAEModel(name={self.name!r}, n_anchors={self.n_anchors}, "
            f"n_channels={self.n_channels}, n_layers={self.n_layers}, "
            f"activation={self.activation!r}, backend={self.backend!r})"
        )

    def settings(self) -> dict:
        """Shape and settings of the network (what ``sgmca-fast info`` lists).

        Returns
        -------
        settings : dict
            ``n_channels``, ``n_anchors``, ``n_layers``, ``code_size``,
            ``activation``, ``res_factor``, ``simplex``, ``reg_parameter``; the
            file metadata is built from it.
        """
        return {
            "n_channels": self.n_channels,
            "n_anchors": self.n_anchors,
            "n_layers": self.n_layers,
            "code_size": self.code_size,
            "activation": self.activation,
            "res_factor": self.res_factor,
            "simplex": self.simplex,
            "reg_parameter": self.reg_parameter,
        }

    @property
    def backend(self) -> str:
        """``"numpy"`` or ``"onnxruntime"``: what runs the projections."""
        return self.generator.name

    # ------------------------------------------------------------------ forward
    @staticmethod
    def _rows(method, x, width: int, what: str, dims: str):
        """Apply ``method`` to ``x`` validated as (k, width) rows (or one row)."""
        arr, single = as_batch(x, width, what, dims)
        out = method(arr)
        return out[0] if single else out

    def encode(self, x) -> np.ndarray:
        """Encode spectra with the encoder phi.

        Parameters
        ----------
        x : (k, J) or (J,) array_like
            Spectra.

        Returns
        -------
        code : (k, J') or (J',) ndarray
        """
        return self._rows(self.network.encode, x, self.n_channels, "x", "k, J")

    def decode(self, code) -> np.ndarray:
        """Decode codes with the decoder psi (residual factors in reverse order).

        Parameters
        ----------
        code : (k, J') or (J',) array_like
            Codes, one a row.

        Returns
        -------
        x : (k, J) or (J,) ndarray
        """
        return self._rows(self.network.decode, code, self.code_size, "code", "k, Jc")

    def interpolate(self, code) -> np.ndarray:
        """Barycentric weights of codes.

        ``lambda = code PhiE^T (PhiE PhiE^T + reg_inv I)^-1``, then, for a simplex
        model, ``lambda / (sum(lambda) + 1e-3)``.

        Parameters
        ----------
        code : (k, J') or (J',) array_like

        Returns
        -------
        lambdas : (k, N) or (N,) ndarray
        """
        return self._rows(self.network.interpolate, code, self.code_size, "code",
                          "k, Jc")

    def generate(self, lambdas) -> np.ndarray:
        """Evaluate the generator ``g(lambda) = psi(lambda PhiE)``.

        Parameters
        ----------
        lambdas : (k, N) or (N,) array_like
            Barycentric weights, one row per spectrum.

        Returns
        -------
        g : (k, J) or (J,) ndarray
        """
        return self._rows(self.network.generate, lambdas, self.n_anchors, "lambdas",
                          "k, N")

    def generate_with_jacobian(self, lambdas) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate the generator and its Jacobian, propagated through the layers.

        See :meth:`._network.Network.generate_with_tangents`.

        Parameters
        ----------
        lambdas : (k, N) or (N,) array_like

        Returns
        -------
        g : (k, J) or (J,) ndarray
        jac : (k, J, N) or (J, N) ndarray
            ``jac[i, j, n] = d g_ij / d lambda_in``.
        """
        arr, single = as_batch(lambdas, self.n_anchors, "lambdas", "k, N")
        g, jac = self.network.generate_with_jacobian(arr)
        return (g[0], jac[0]) if single else (g, jac)

    # ------------------------------------------------------------ projections
    def fast_project(self, a):
        """Encoder-based projection of spectra (docs/algorithm.md section 5).

        ``amplitude0 = sum|a| / mean_n(sum|anchor_n|)``; ``lambda`` interpolates
        ``phi(a / amplitude0)``; ``y = psi(lambda PhiE)``;
        ``amplitude = <y, a> / max(||y||^2, 1e-3)``.

        Parameters
        ----------
        a : (k, J) or (J,) array_like
            Spectra to project, one a row.

        Returns
        -------
        spectra : (k, J) or (J,) ndarray
            ``amplitude * y``.
        lambdas : (k, N) or (N,) ndarray
        amplitude : (k,) ndarray or float
        """
        return fast_projection(self.generator, a)

    def project(self, a, lambda0=None, rho0=None, *, max_iter: int = 50,
                tol: float = 1e-8):
        """Least-squares projection of spectra on the model's manifold.

        Minimises ``||a - rho g(lambda)||^2`` over ``sum(lambda) = 1`` (simplex
        models) and ``rho >= 0`` by Levenberg-Marquardt on the free latent
        coordinates, ``rho`` eliminated in closed form (docs/algorithm.md
        section 5; :func:`sgmca_fast.iae._project.project`).

        Parameters
        ----------
        a : (k, J) or (J,) array_like
        lambda0 : (k, N) or (N,) array_like, optional
            Start; the fast projection's weights by default.
        rho0 : (k,) array_like or float, optional
            Accepted for symmetry with the authors' code and validated, but the
            amplitude is eliminated in closed form: the start uses
            ``rho*(lambda0)``, which is never worse than any ``rho0 >= 0``.
        max_iter : int, optional
        tol : float, optional
            Stop when the Gauss-Newton model predicts a relative decrease of the
            squared residual below ``tol``, or after a step evaluated without its
            Jacobian that reached, within ``tol`` (relative), the residual the
            model predicted for it.

        Returns
        -------
        result : ProjectionResult
        """
        return least_squares_projection(self.generator, a, lambda0=lambda0,
                                        rho0=rho0, max_iter=max_iter, tol=tol)

    # ------------------------------------------------------------------- I/O
    def _metadata(self) -> dict:
        return file_metadata(
            self.settings(), name=self.name, reg_inv=self.reg_inv,
            has_training_spectra=self.training_spectra is not None,
            training=self.metadata,
        )

    def _graph(self):
        """Return the bare graph the onnxruntime backend runs (no metadata)."""
        return build_graph(self.network, name=self.name)

    def to_onnx(self):
        """Return the model's ``onnx.ModelProto`` (what :meth:`save` writes)."""
        return model_proto(self.network, self._metadata(), self.training_spectra)

    def save(self, path) -> None:
        """Write the model as one ONNX file (see :mod:`sgmca_fast.iae._format`).

        Parameters
        ----------
        path : str or path-like
        """
        write(self.to_onnx(), path)

    def with_backend(self, backend, num_threads: int | None = None) -> IAEModel:
        """Return a copy of the model with another backend (same parameters).

        Parameters
        ----------
        backend : {"numpy", "onnxruntime"} or callable
        num_threads : int, optional
            onnxruntime intra-op threads (default 1).
        """
        return IAEModel(
            self.anchors, list(self.encoder_weights), list(self.encoder_biases),
            list(self.decoder_weights), list(self.decoder_biases),
            activation=self.activation, res_factor=self.res_factor,
            simplex=self.simplex, reg_inv=self.reg_inv,
            reg_parameter=self.reg_parameter, name=self.name, metadata=self.metadata,
            training_spectra=self.training_spectra, backend=backend,
            num_threads=num_threads,
        )

    def with_onnxruntime(self, num_threads: int | None = None) -> IAEModel:
        """Return a copy run by onnxruntime (``with_backend("onnxruntime")``)."""
        return self.with_backend("onnxruntime", num_threads)
