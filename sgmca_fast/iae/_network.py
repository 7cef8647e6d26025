"""The one definition of the IAE network: layers, activations, interpolator, tangents.

Everything that computes the network in numpy (inference, the fast projection,
training) calls these functions, and the ONNX graph builder (``_graph.py``) writes
the same operations with the constants defined here (docs/algorithm.md section 4).
Row-vector convention throughout: a layer maps ``h`` of shape (k, J_l) to
``act(h @ W + b) + r * h``; the decoder uses the residual factors in reverse order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "AMPLITUDE_FLOOR",
    "LEAKY_SLOPE",
    "PIECEWISE_AFFINE",
    "SIMPLEX_EPS",
    "Network",
    "activate",
    "forward",
    "residual_factors",
    "slope",
    "sum_zero_basis",
]

ACTIVATIONS = ("leaky_relu", "linear", "relu", "tanh")
# Activations for which g is affine in lambda between activation kinks.
PIECEWISE_AFFINE = ("leaky_relu", "relu", "linear")
LEAKY_SLOPE = 0.01  # the negative slope of the leaky ReLU of the authors' models
# The authors' interpolator divides lambda by (sum + 1e-3): "not really a
# projection on the simplex"; kept as is so numbers compare.
SIMPLEX_EPS = 1e-3
AMPLITUDE_FLOOR = 1e-3  # the authors' floor on ||y||^2 in the fast projection


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


def activate(z: np.ndarray, activation: str) -> np.ndarray:
    """Apply the activation to pre-activations ``z`` (``z`` itself for "linear")."""
    if activation == "leaky_relu":
        return np.where(z > 0, z, LEAKY_SLOPE * z)
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.maximum(z, 0.0)
    return z


def slope(z: np.ndarray, a: np.ndarray, activation: str) -> np.ndarray:
    """Return the derivative of the activation at ``z`` (``a = activate(z)``).

    At a kink (z = 0) the left slope, as in the authors' code.
    """
    if activation == "leaky_relu":
        return np.where(z > 0, 1.0, LEAKY_SLOPE)
    if activation == "tanh":
        return 1.0 - a * a
    if activation == "relu":
        return (z > 0).astype(np.float64)
    return np.ones_like(z)


def forward(h, weights, biases, factors, activation, tape=None):
    """Run a chain of residual layers ``h -> act(h W + b) + r h``.

    Parameters
    ----------
    h : (k, J_0) ndarray
    weights, biases : sequences of L arrays, (J_l, J_l+1) and (J_l+1,)
    factors : sequence of L floats
        Residual factors of the layers.
    activation : str
    tape : list, optional
        Receives ``(h, z, a)`` of every layer, for a backward pass.

    Returns
    -------
    h : (k, J_L) ndarray
    """
    for w, b, r in zip(weights, biases, factors, strict=True):
        z = h @ w + b
        a = activate(z, activation)
        if tape is not None:
            tape.append((h, z, a))
        h = a + r * h if r != 0 else a
    return h


def sum_zero_basis(n: int) -> np.ndarray:
    """Orthonormal basis (n, n-1) of {v : sum(v) = 0}."""
    q, _ = np.linalg.qr(np.eye(n) - 1.0 / n)
    # The first n-1 columns of the QR of the centring matrix span its range.
    return np.ascontiguousarray(q[:, : n - 1])


@dataclass(frozen=True, eq=False)
class Network:
    """Frozen parameters of an IAE and the numpy computations on them.

    Build it with :meth:`build`; inputs are validated (k, .) float64 arrays.

    Attributes
    ----------
    anchors : (N, J) ndarray
    encoder_weights, encoder_biases, decoder_weights, decoder_biases : tuples
    activation : str
    residual_factors : (L,) ndarray
    simplex : bool
    anchor_codes : (N, J') ndarray
        ``phi(anchors)``.
    interp_matrix : (J', N) ndarray
        ``lambda = code @ interp_matrix`` (before the simplex rescaling).
    anchor_scale : float
        Mean L1 norm of the anchors.
    free_basis : (N, d) ndarray
        Free latent directions of the projection: the sum-zero subspace
        (simplex models, d = N - 1) or the identity (d = N).
    """

    anchors: np.ndarray
    encoder_weights: tuple
    encoder_biases: tuple
    decoder_weights: tuple
    decoder_biases: tuple
    activation: str
    residual_factors: np.ndarray
    simplex: bool
    anchor_codes: np.ndarray
    interp_matrix: np.ndarray
    anchor_scale: float
    free_basis: np.ndarray

    @classmethod
    def build(cls, anchors, encoder_weights, encoder_biases, decoder_weights,
              decoder_biases, *, activation, res_factor, simplex, reg_inv) -> Network:
        """Derive the anchor codes, interpolator and free basis from the layers."""
        r = residual_factors(float(res_factor), len(encoder_weights))
        codes = forward(anchors, encoder_weights, encoder_biases, r, activation)
        codes.setflags(write=False)
        n_anchors = anchors.shape[0]
        gram = codes @ codes.T + reg_inv * np.eye(n_anchors)
        return cls(
            anchors, tuple(encoder_weights), tuple(encoder_biases),
            tuple(decoder_weights), tuple(decoder_biases), activation, r,
            bool(simplex), codes, np.linalg.solve(gram, codes).T,
            float(np.mean(np.sum(np.abs(anchors), axis=1))),
            sum_zero_basis(n_anchors) if simplex else np.eye(n_anchors),
        )

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``phi(x)``, (k, J) -> (k, J')."""
        return forward(x, self.encoder_weights, self.encoder_biases,
                       self.residual_factors, self.activation)

    def decode(self, code: np.ndarray) -> np.ndarray:
        """``psi(code)``, (k, J') -> (k, J)."""
        return forward(code, self.decoder_weights, self.decoder_biases,
                       self.residual_factors[::-1], self.activation)

    def interpolate(self, code: np.ndarray) -> np.ndarray:
        """Barycentric weights (k, N) of codes (rescaled for a simplex model)."""
        lam = code @ self.interp_matrix
        if self.simplex:
            lam = lam / (np.sum(lam, axis=1, keepdims=True) + SIMPLEX_EPS)
        return lam

    def generate(self, lam: np.ndarray) -> np.ndarray:
        """``g(lambda) = psi(lambda PhiE)``, (k, N) -> (k, J)."""
        return self.decode(lam @ self.anchor_codes)

    def generate_with_jacobian(self, lam: np.ndarray):
        """G (k, J) and dg/dlambda (k, J, N)."""
        g, tangents = self.generate_with_tangents(lam)
        return g, np.swapaxes(tangents, 1, 2)

    def generate_free(self, lam: np.ndarray):
        """g, dg/dt along ``free_basis`` as rows, pre-activations, their rows."""
        return self.generate_with_tangents(lam, self.free_basis, preactivations=True)

    def generate_with_tangents(self, lam, directions=None, preactivations=False):
        """Return g (k, J) and its derivatives as rows, (k, d, J).

        With ``h_0 = lambda PhiE`` and ``dh_0 = directions^T PhiE`` (default: one
        tangent per anchor), each decoder layer gives ``h' = act(z) + r h`` and
        ``dh' = act'(z) * (dh W) + r dh`` with ``z = h W + b``. With
        ``preactivations``, also the pre-activations ``z`` of every layer side by
        side, (k, P), and their derivatives as rows, (k, d, P): where they keep
        their signs a piecewise-linear decoder is affine.
        """
        k = lam.shape[0]
        h = lam @ self.anchor_codes
        # Tangents as rows: dh[i, m, :] = d h_i / d t_m. The first layer's
        # tangent is the same (d, J') for every spectrum, so keep it 2-D there.
        dh = self.anchor_codes
        if directions is not None:
            dh = directions.T @ dh
        zs, dzs = [], []
        for w, b, r in zip(self.decoder_weights, self.decoder_biases,
                           self.residual_factors[::-1], strict=True):
            z = h @ w + b
            a = activate(z, self.activation)
            da = slope(z, a, self.activation)
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

    def fast_project(self, x: np.ndarray):
        """Encoder-based projection (docs/algorithm.md section 5) of (k, J) spectra.

        ``amplitude0 = sum|x| / anchor_scale``; ``lambda`` interpolates
        ``phi(x / amplitude0)``; ``y = g(lambda)``;
        ``amplitude = <y, x> / max(||y||^2, AMPLITUDE_FLOOR)``.

        Returns
        -------
        spectra : (k, J) ndarray
            ``amplitude * y``.
        lambdas : (k, N) ndarray
        amplitude : (k,) ndarray
        """
        amp0 = np.sum(np.abs(x), axis=1) / self.anchor_scale
        # A zero spectrum has no scale: encode it as is instead of dividing by 0.
        amp0 = np.where(amp0 > 0, amp0, 1.0)
        lam = self.interpolate(self.encode(x / amp0[:, None]))
        y = self.generate(lam)
        amp = np.sum(y * x, axis=1) / np.maximum(np.sum(y * y, axis=1), AMPLITUDE_FLOOR)
        return amp[:, None] * y, lam, amp

    def to_constraint_set(self, lam: np.ndarray) -> np.ndarray:
        """Move weights onto sum(lambda) = 1 along the ones direction (simplex only).

        The interpolator's rescaling leaves them at sum/(sum + 1e-3); a shift,
        unlike a division, stays finite when the sum is near zero.
        """
        if not self.simplex:
            return lam
        return lam + (1.0 - lam.sum(axis=1, keepdims=True)) / lam.shape[1]

    def start(self, x: np.ndarray):
        """Start of the least-squares projection: the fast weights on the constraint.

        Returns lambdas (k, N) and, there, what :meth:`generate_free` returns.
        """
        lam = self.to_constraint_set(self.fast_project(x)[1])
        return (lam,) + self.generate_free(lam)
