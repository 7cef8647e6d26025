"""The interpolatory autoencoder (IAE) model and its numpy forward path.

The numpy methods of :class:`IAEModel` are the readable definition of the model
(shared/docs/ALGORITHM.md section 4); the ONNX graph in ``_onnx.py`` computes the
same quantities at run time. Row-vector convention throughout: a layer maps
``h`` of shape (k, J_l) to ``act(h @ W + b) + r * h``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import _project

__all__ = ["ACTIVATIONS", "IAEModel", "residual_factors"]

ACTIVATIONS = ("leaky_relu", "linear", "relu", "tanh")
LEAKY_SLOPE = 0.01
# The authors' interpolator divides lambda by (sum + 1e-3): "not really a
# projection on the simplex"; kept as is so numbers compare.
SIMPLEX_EPS = 1e-3


def residual_factors(res_factor: float, n_layers: int) -> np.ndarray:
    """Residual factors ``r_l = res_factor * (2**(l / (L - 1)) - 1)``.

    Parameters
    ----------
    res_factor : float
        The residual injection factor (0.1 in the authors' models).
    n_layers : int
        Number of layers L.

    Returns
    -------
    r : (L,) ndarray
        Factors of the encoder layers; the decoder uses them in reverse order.
    """
    if n_layers == 1:
        return np.zeros(1)
    ell = np.arange(n_layers, dtype=np.float64)
    return res_factor * (2.0 ** (ell / (n_layers - 1)) - 1.0)


def _act(z: np.ndarray, activation: str) -> np.ndarray:
    if activation == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.where(z > 0, z, 0.0)
    return z


def _act_and_grad(z: np.ndarray, activation: str) -> tuple[np.ndarray, np.ndarray]:
    """Activation and its derivative (at 0 the left slope, as the authors' code)."""
    if activation == "leaky_relu":
        pos = z > 0
        return np.where(pos, z, LEAKY_SLOPE * z), np.where(pos, 1.0, LEAKY_SLOPE)
    if activation == "tanh":
        t = np.tanh(z)
        return t, 1.0 - t * t
    if activation == "relu":
        pos = z > 0
        return np.where(pos, z, 0.0), pos.astype(np.float64)
    return z, np.ones_like(z)


def _check_layers(weights, biases, what: str, first_width: int | None):
    if not isinstance(weights, Sequence) or not isinstance(biases, Sequence):
        raise TypeError(f"{what} weights and biases must be lists of arrays")
    if len(weights) == 0 or len(weights) != len(biases):
        raise ValueError(
            f"{what}: expected the same positive number of weights and biases, got "
            f"{len(weights)} weights and {len(biases)} biases"
        )
    ws, bs = [], []
    width = first_width
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        w = np.array(w, dtype=np.float64, copy=True)
        b = np.array(b, dtype=np.float64, copy=True)
        if w.ndim != 2:
            raise ValueError(
                f"{what} weight {layer} must be 2-D (J_l, J_l+1), got shape {w.shape}"
            )
        if b.shape != (w.shape[1],):
            raise ValueError(
                f"{what} bias {layer} must have shape ({w.shape[1]},), got {b.shape}"
            )
        if width is not None and w.shape[0] != width:
            raise ValueError(
                f"{what} weight {layer} has {w.shape[0]} rows, expected {width} "
                "(the width of the previous layer)"
            )
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise ValueError(f"{what} layer {layer} holds non-finite values")
        width = w.shape[1]
        w.setflags(write=False)
        b.setflags(write=False)
        ws.append(w)
        bs.append(b)
    return tuple(ws), tuple(bs)


def as_batch(x, width: int, what: str, dims: str) -> tuple[np.ndarray, bool]:
    """Validate ``x`` as (k, width) finite float64; also accept one row (width,).

    Returns the 2-D array and whether the input was 1-D.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what} must be a real array, got {type(x).__name__}") from err
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(
            f"{what} must have shape ({dims}) or ({dims.split(',')[-1].strip()},), "
            f"got shape {np.shape(x)}"
        )
    if arr.shape[1] != width:
        raise ValueError(
            f"{what} has {arr.shape[1]} {_unit(dims)}, expected {width} "
            f"(the model's {_unit(dims)} count); received shape {np.shape(x)}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} holds NaN or infinite values")
    return arr, single


def _unit(dims: str) -> str:
    last = dims.split(",")[-1].strip()
    return {"J": "channels", "N": "anchor weights", "Jc": "code entries"}.get(
        last, "columns"
    )


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
        Leaky ReLU has slope 0.01.
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

    Attributes
    ----------
    anchors : (N, J) ndarray
    anchor_codes : (N, J') ndarray
        ``phi(anchors)``.
    n_anchors, n_channels, n_layers : int
    residual_factors : (L,) ndarray
    training_spectra : (M, J) ndarray or None
        Optional spectra the model was trained on (saved with the model).
    """

    def __init__(
        self,
        anchors,
        encoder_weights,
        encoder_biases,
        decoder_weights,
        decoder_biases,
        *,
        activation: str = "leaky_relu",
        res_factor: float = 0.1,
        simplex: bool = True,
        reg_inv: float = 1e-8,
        reg_parameter: float = 0.1,
        name: str = "",
        metadata: dict | None = None,
    ) -> None:
        anchors = np.array(anchors, dtype=np.float64, copy=True)
        if anchors.ndim != 2 or anchors.shape[0] < 1 or anchors.shape[1] < 1:
            raise ValueError(
                f"anchors must be a 2-D (N, J) array, got shape {anchors.shape}"
            )
        if not np.all(np.isfinite(anchors)):
            raise ValueError("anchors hold NaN or infinite values")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {activation!r}; expected one of "
                f"{sorted(ACTIVATIONS)}"
            )
        n_anchors, n_channels = anchors.shape
        enc_w, enc_b = _check_layers(
            encoder_weights, encoder_biases, "encoder", n_channels
        )
        dec_w, dec_b = _check_layers(
            decoder_weights, decoder_biases, "decoder", enc_w[-1].shape[1]
        )
        if len(enc_w) != len(dec_w):
            raise ValueError(
                f"encoder has {len(enc_w)} layers, decoder has {len(dec_w)}; "
                "they must match"
            )
        if dec_w[-1].shape[1] != n_channels:
            raise ValueError(
                f"decoder output width {dec_w[-1].shape[1]} differs from the "
                f"{n_channels} channels of the anchors"
            )
        n_layers = len(enc_w)
        r = residual_factors(float(res_factor), n_layers)
        # A residual term needs the layer to keep its width.
        for what, ws, factors in (("encoder", enc_w, r), ("decoder", dec_w, r[::-1])):
            for layer, (w, fac) in enumerate(zip(ws, factors, strict=True)):
                if fac != 0 and w.shape[0] != w.shape[1]:
                    raise ValueError(
                        f"{what} layer {layer} has a residual factor {fac:g} but "
                        f"changes width ({w.shape[0]} -> {w.shape[1]})"
                    )
        for label, value in (("res_factor", res_factor), ("reg_inv", reg_inv),
                             ("reg_parameter", reg_parameter)):
            if not math.isfinite(float(value)) or float(value) < 0:
                raise ValueError(f"{label} must be finite and >= 0, got {value!r}")
        if simplex and n_anchors < 2:
            raise ValueError("a simplex model needs at least 2 anchors")
        anchors.setflags(write=False)
        self.anchors = anchors
        self.encoder_weights, self.encoder_biases = enc_w, enc_b
        self.decoder_weights, self.decoder_biases = dec_w, dec_b
        self.activation = activation
        self.res_factor = float(res_factor)
        self.simplex = bool(simplex)
        self.reg_inv = float(reg_inv)
        self.reg_parameter = float(reg_parameter)
        self.name = str(name)
        self.metadata = dict(metadata) if metadata is not None else {}
        self.n_anchors = n_anchors
        self.n_channels = n_channels
        self.n_layers = n_layers
        self.code_size = enc_w[-1].shape[1]
        self.residual_factors = r
        self.training_spectra: np.ndarray | None = None
        codes = self.encode(anchors)
        codes.setflags(write=False)
        self.anchor_codes = codes
        gram = codes @ codes.T + self.reg_inv * np.eye(n_anchors)
        # lambda = code @ interp_matrix; (J', N)
        self._interp_matrix = np.linalg.solve(gram, codes).T
        self._anchor_scale = float(np.mean(np.sum(np.abs(anchors), axis=1)))
        # Free latent directions of the projection: the sum-zero subspace.
        self._free_basis = (
            _project.sum_zero_basis(n_anchors) if self.simplex else np.eye(n_anchors)
        )
        if self._anchor_scale <= 0:
            raise ValueError("anchors must not all be zero")
        self._runtime = None  # set by load() to the onnxruntime path
        self._source = None  # file the model was loaded from

    # ------------------------------------------------------------------ forward
    def __repr__(self) -> str:
        return (
            f"IAEModel(name={self.name!r}, n_anchors={self.n_anchors}, "
            f"n_channels={self.n_channels}, n_layers={self.n_layers}, "
            f"activation={self.activation!r}, backend={self.backend!r})"
        )

    def _settings(self) -> dict:
        """Shape and settings of the network (what ``sgmca-fast info`` lists)."""
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
        """``"onnxruntime"`` for a loaded model, else ``"numpy"``."""
        return "numpy" if self._runtime is None else "onnxruntime"

    def _layers(self, h, weights, biases, factors):
        for w, b, r in zip(weights, biases, factors, strict=True):
            h_new = _act(h @ w + b, self.activation)
            if r != 0:
                h_new += r * h
            h = h_new
        return h

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
        arr, single = as_batch(x, self.n_channels, "x", "k, J")
        out = self._layers(
            arr, self.encoder_weights, self.encoder_biases, self.residual_factors
        )
        return out[0] if single else out

    def decode(self, code) -> np.ndarray:
        """Decode codes with the decoder psi (residual factors in reverse order).

        Parameters
        ----------
        code : (k, J') or (J',) array_like

        Returns
        -------
        x : (k, J) or (J,) ndarray
        """
        arr, single = as_batch(code, self.code_size, "code", "k, Jc")
        out = self._layers(
            arr,
            self.decoder_weights,
            self.decoder_biases,
            self.residual_factors[::-1],
        )
        return out[0] if single else out

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
        arr, single = as_batch(code, self.code_size, "code", "k, Jc")
        lam = arr @ self._interp_matrix
        if self.simplex:
            lam = lam / (np.sum(lam, axis=1, keepdims=True) + SIMPLEX_EPS)
        return lam[0] if single else lam

    def generate(self, lambdas) -> np.ndarray:
        """Evaluate the generator ``g(lambda) = psi(lambda PhiE)``.

        Parameters
        ----------
        lambdas : (k, N) or (N,) array_like

        Returns
        -------
        g : (k, J) or (J,) ndarray
        """
        arr, single = as_batch(lambdas, self.n_anchors, "lambdas", "k, N")
        out = self.decode(arr @ self.anchor_codes)
        return out[0] if single else out

    def generate_with_jacobian(self, lambdas) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate the generator and its Jacobian, propagated through the layers.

        With ``h_0 = lambda PhiE`` and ``dh_0 = PhiE`` (one tangent per anchor),
        each decoder layer gives ``h' = act(z) + r h`` and
        ``dh' = act'(z) * (dh W) + r dh`` with ``z = h W + b``.

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
        g, jac = self._generate_with_jacobian(arr)
        return (g[0], jac[0]) if single else (g, jac)

    def _generate_with_jacobian(self, lam: np.ndarray):
        """Return g (k, J) and dg/dlambda (k, J, N)."""
        g, tangents = self._generate_with_tangents(lam)
        return g, np.swapaxes(tangents, 1, 2)

    def _generate_with_tangents(self, lam: np.ndarray, directions=None,
                                preactivations=False):
        """Return g (k, J) and its derivatives as rows, (k, d, J).

        Row ``m`` is dg/dt_m along ``directions[:, m]`` ((N, d); default: the N
        weights themselves). With ``preactivations``, also the decoder's
        pre-activations ``z = h W + b`` of every layer side by side, (k, P),
        and their derivatives as rows, (k, d, P): where they keep their signs
        a piecewise-linear decoder is affine.
        """
        k = lam.shape[0]
        h = lam @ self.anchor_codes
        # Tangents as rows: dh[i, m, :] = d h_i / d t_m. The first layer's
        # tangent is the same (d, J') for every spectrum, so keep it 2-D there.
        dh = self.anchor_codes
        if directions is not None:
            dh = directions.T @ dh
        zs, dzs = [], []
        for w, b, r in zip(
            self.decoder_weights,
            self.decoder_biases,
            self.residual_factors[::-1],
            strict=True,
        ):
            z = h @ w + b
            a, da = _act_and_grad(z, self.activation)
            # One (k*N, J') @ (J', J'') product rather than k small ones.
            dw = (dh.reshape(-1, dh.shape[-1]) @ w).reshape(dh.shape[:-1] + w.shape[1:])
            zs.append(z)
            dzs.append(np.broadcast_to(dw, (k,) + dw.shape[-2:]))
            dh_new = da[:, None, :] * dw
            if r != 0:
                a = a + r * h  # (not in place: for "linear", a is z)
                dh_new += r * dh
            h, dh = a, dh_new
        if dh.ndim == 2:  # no layer
            dh = np.broadcast_to(dh, (k,) + dh.shape).copy()
        if preactivations:
            return h, dh, np.concatenate(zs, axis=1), np.concatenate(dzs, axis=2)
        return h, dh

    # ------------------------------------------------------------ projections
    def fast_project(self, a):
        """Encoder-based projection of spectra on the model (ALGORITHM.md 4).

        ``amplitude0 = sum|a| / mean_n(sum|anchor_n|)``; ``lambda`` interpolates
        ``phi(a / amplitude0)``; ``y = psi(lambda PhiE)``;
        ``amplitude = <y, a> / max(||y||^2, 1e-3)``.

        Parameters
        ----------
        a : (k, J) or (J,) array_like
            Spectra, one a row.

        Returns
        -------
        spectra : (k, J) or (J,) ndarray
            ``amplitude * y``.
        lambdas : (k, N) or (N,) ndarray
        amplitude : (k,) ndarray or float
        """
        return _project.fast_project(self, a)

    def project(self, a, lambda0=None, rho0=None, *, max_iter: int = 50,
                tol: float = 1e-8):
        """Least-squares projection of spectra on the model's manifold.

        Minimises ``||a - rho g(lambda)||^2`` over ``sum(lambda) = 1`` (simplex
        models) and ``rho >= 0`` by Levenberg-Marquardt on the free latent
        coordinates, ``rho`` eliminated in closed form. See
        :func:`sgmca_fast.iae._project.project`.

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
        return _project.project(
            self, a, lambda0=lambda0, rho0=rho0, max_iter=max_iter, tol=tol
        )

    # ------------------------------------------------------------------- I/O
    def save(self, path) -> None:
        """Write the model as one ONNX file (see :mod:`sgmca_fast.iae._onnx`).

        Parameters
        ----------
        path : str or path-like
        """
        from ._onnx import save

        save(self, path)

    def to_onnx(self):
        """Return the model's ``onnx.ModelProto`` (what :meth:`save` writes)."""
        from ._onnx import build_model_proto

        return build_model_proto(self)

    def with_onnxruntime(self, num_threads: int | None = None) -> IAEModel:
        """Return a copy whose run-time path runs through onnxruntime.

        The session is built from the serialized model in memory.

        Parameters
        ----------
        num_threads : int, optional
            intra-op threads (default 1, for use inside iterative loops).
        """
        from ._onnx import attach_runtime

        return attach_runtime(self, num_threads=num_threads)

    # ---------------------------------------------------- run-time dispatch
    def _rt_generate(self, lam: np.ndarray, jacobian: bool):
        """Run-time generator on validated (k, N) float64 weights."""
        if self._runtime is not None:
            return self._runtime.generate(lam, jacobian)
        if jacobian:
            return self._generate_with_jacobian(lam)
        return self.decode(lam @ self.anchor_codes), None

    def _rt_generate_free(self, lam: np.ndarray):
        """Run-time g and the derivatives along the free directions as rows.

        Returns g (k, J), dg/dt as rows (k, d, J), the decoder's pre-activations
        (k, P) and their derivatives dz/dt as rows (k, d, P).
        """
        if self._runtime is not None:
            return self._runtime.generate_free(lam)
        return self._generate_with_tangents(lam, self._free_basis, preactivations=True)

    def _rt_start(self, arr: np.ndarray):
        """Run-time start of ``project``: fast weights moved onto sum(lambda) = 1.

        Returns lambdas (k, N) and, there, what :meth:`_rt_generate_free` does.
        """
        if self._runtime is not None:
            return self._runtime.start(arr)
        lam = _project.fast_project_numpy(self, arr)[1]
        lam = _project.to_constraint_set(self, lam)
        return (lam,) + self._rt_generate_free(lam)

    def _rt_fast(self, arr: np.ndarray):
        """Run-time fast projection on validated (k, J) float64 spectra."""
        if self._runtime is not None:
            return self._runtime.fast(arr)
        return _project.fast_project_numpy(self, arr)
