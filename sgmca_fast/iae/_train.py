"""Training of interpolatory autoencoders by hand-derived backpropagation.

The loss is the one of docs/algorithm.md section 4, per batch of spectra ``X``::

    ||phi(X) - B||_F + reg * ||psi(B) - X||_F,   B = lambda(phi(X), PhiE) PhiE,

with ``PhiE = phi(anchors)``, so the gradient flows through the codes of the
batch, through the anchor codes (including the inverse of the Gram matrix of the
interpolator) and through the decoder. Everything here is plain numpy: the
layers are those of ``_network.py`` (the one definition of the network), the
forward pass in :func:`_loss_grad` spells out the interpolator with the explicit
inverse its backward pass needs, and the backward pass follows it line by line
in reverse.

Parameters travel as one flat float64 vector ``theta`` laid out as
``[Wt_0, bt_0, ..., Wt_{L-1}, bt_{L-1}, Wp_0, bp_0, ..., Wp_{L-1}, bp_{L-1}]``
(encoder then decoder, each weight matrix in C order), which is what
``scipy.optimize.minimize`` and the Adam loop both work on.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import InputError, choice, integer, real, real_array
from ._holdout import split_rows
from ._model import IAEModel
from ._network import (
    ACTIVATIONS,
    LEAKY_SLOPE,
    SIMPLEX_EPS,
    Network,
    forward,
    residual_factors,
    slope,
)
from ._quality import sad_rows

__all__ = ["train"]

_OPTIMIZERS = ("adam", "adam+lbfgs", "lbfgs")


# ----------------------------------------------------------------------------
# network definition (private)


@dataclass(frozen=True)
class _Spec:
    """Static description of a network: sizes, activation and interpolator."""

    n_features: int
    n_layers: int
    activation: str
    res_factor: float
    reg_parameter: float
    reg_inv: float = 1e-8
    simplex: bool = True
    bias_scale: float = 1.0
    residuals: tuple[float, ...] = field(init=False)
    offsets: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        L = self.n_layers
        r = tuple(float(v) for v in residual_factors(self.res_factor, L))
        object.__setattr__(self, "residuals", r)
        J = self.n_features
        # encoder layers then decoder layers, each (W, b)
        sizes = [J * J, J] * (2 * L)
        object.__setattr__(self, "offsets", tuple(np.cumsum([0, *sizes]).tolist()))

    @property
    def n_params(self) -> int:
        return self.offsets[-1]

    def unpack(self, theta: np.ndarray) -> tuple[list, list, list, list]:
        """Return views (no copies) of the weights and raw biases in ``theta``."""
        J, L, o = self.n_features, self.n_layers, self.offsets
        mats = [theta[o[2 * k] : o[2 * k + 1]].reshape(J, J) for k in range(2 * L)]
        vecs = [theta[o[2 * k + 1] : o[2 * k + 2]] for k in range(2 * L)]
        return mats[:L], vecs[:L], mats[L:], vecs[L:]

    def weights(self, theta: np.ndarray) -> tuple[list, list, list, list]:
        """Weights and biases of the model (biases times ``bias_scale``)."""
        ew, eb, dw, db = self.unpack(theta)
        c = self.bias_scale
        return ew, [b * c for b in eb], dw, [b * c for b in db]


def _pack(enc_w, enc_b, dec_w, dec_b) -> np.ndarray:
    parts = []
    for ws, bs in ((enc_w, enc_b), (dec_w, dec_b)):
        for w, b in zip(ws, bs, strict=True):
            parts += [np.ravel(w), np.ravel(b)]
    return np.concatenate(parts).astype(np.float64)


def _forward_stack(h, weights, biases, residuals, activation):
    """Residual stack; returns the output and the tape for the backward pass."""
    tape = []
    h = forward(h, weights, biases, residuals, activation, tape)
    return h, tape


def _backward_stack(dh, weights, residuals, activation, tape, gw, gb):
    """Backpropagate ``dh`` through a stack, writing its gradients into gw, gb."""
    for i in range(len(weights) - 1, -1, -1):
        h, z, a = tape[i]
        if activation == "leaky_relu":  # dh * slope without the slope array
            dz = np.where(z > 0, dh, LEAKY_SLOPE * dh)
        else:
            dz = dh * slope(z, a, activation)
        # each layer's gradient is written once per call (no zeroing needed)
        np.matmul(h.T, dz, out=gw[i])
        np.sum(dz, axis=0, out=gb[i])
        dh_prev = dz @ weights[i].T
        if residuals[i]:
            dh_prev += residuals[i] * dh
        dh = dh_prev
    return dh


def _network(theta, spec, anchors) -> Network:
    """Return the network of parameters ``theta`` (monitoring: no validation)."""
    ew, eb, dw, db = spec.weights(theta)
    return Network.build(anchors, ew, eb, dw, db, activation=spec.activation,
                         res_factor=spec.res_factor, simplex=spec.simplex,
                         reg_inv=spec.reg_inv)


def _loss_grad(theta, spec, X, anchors, *, need_grad=True, out=None):
    """Loss of docs/algorithm.md section 4 on the batch ``X`` and its gradient.

    Returns ``(loss, grad, parts)`` with ``parts = (code term, reconstruction
    term)`` (the two Frobenius norms, before weighting). ``out``, shaped like
    ``theta``, receives the gradient (then ``grad`` is ``out``): the Adam loop
    reuses one buffer instead of allocating one per mini-batch.
    """
    ew, eb, dw, db = spec.weights(theta)
    k, N = X.shape[0], anchors.shape[0]
    # the encoder sees the batch and the anchors in one pass (same weights)
    H, etape = _forward_stack(
        np.vstack([X, anchors]), ew, eb, spec.residuals, spec.activation
    )
    P, E = H[:k], H[k:]
    G = E @ E.T + spec.reg_inv * np.eye(N)
    Gi = np.linalg.inv(G)
    M = P @ E.T
    lam0 = M @ Gi
    if spec.simplex:
        s = lam0.sum(axis=1, keepdims=True) + SIMPLEX_EPS
        lam = lam0 / s
    else:
        lam = lam0
    B = lam @ E
    R, dtape = _forward_stack(B, dw, db, spec.residuals[::-1], spec.activation)
    D1 = P - B
    D2 = R - X
    n1 = math.sqrt(float(np.sum(D1 * D1)))
    n2 = math.sqrt(float(np.sum(D2 * D2)))
    loss = n1 + spec.reg_parameter * n2
    if not need_grad:
        return loss, None, (n1, n2)

    grad = np.empty_like(theta) if out is None else out
    gew, geb, gdw, gdb = spec.unpack(grad)
    # d ||D||_F = <D / ||D||, dD>; a zero residual contributes a zero subgradient
    g1 = D1 / n1 if n1 > 0 else np.zeros_like(D1)
    g2 = D2 * (spec.reg_parameter / n2) if n2 > 0 else np.zeros_like(D2)
    dB = _backward_stack(g2, dw, spec.residuals[::-1], spec.activation, dtape, gdw, gdb)
    dB -= g1
    dP = g1.copy()
    # B = lam E
    dlam = dB @ E.T
    dE = lam.T @ dB
    # lam = lam0 / s, s = sum(lam0) + eps
    if spec.simplex:
        dlam0 = (dlam - np.sum(dlam * lam, axis=1, keepdims=True)) / s
    else:
        dlam0 = dlam
    # lam0 = M Gi, Gi = G^-1 (symmetric)
    dM = dlam0 @ Gi
    dGi = M.T @ dlam0
    dG = -Gi @ dGi @ Gi
    # G = E E^T + reg I ; M = P E^T
    dE += (dG + dG.T) @ E + dM.T @ P
    dP += dM @ E
    _backward_stack(
        np.vstack([dP, dE]), ew, spec.residuals, spec.activation, etape, gew, geb
    )
    if spec.bias_scale != 1.0:
        for gb in (*geb, *gdb):
            gb *= spec.bias_scale
    return loss, grad, (n1, n2)


def _bias_scale(anchors):
    """Typical channel value of the spectra (mean L1 norm of the anchors / J).

    Biases are trained in units of this scale, so that the optimiser sees weights
    and biases of order one whatever the normalisation of the spectra (1/75 for
    the unit-sum Cas A spectra).
    """
    c = float(np.mean(np.sum(np.abs(anchors), axis=1))) / anchors.shape[1]
    return c if c > 0 else 1.0


def _init_params(spec, rng, scale=0.1):
    """Near-identity weights plus Gaussian noise of std ``scale / sqrt(J)``.

    With residual layers of equal width, identity layers make the initial model
    close to the linear interpolation of the anchors (leaky ReLU and ReLU pass
    the non-negative spectra unchanged); the noise mixes channels so that
    localised features (emission lines) get codes that overlap the anchors'.
    Biases start at zero.
    """
    J, L = spec.n_features, spec.n_layers
    ws = [
        np.eye(J) + scale * rng.standard_normal((J, J)) / math.sqrt(J)
        for _ in range(2 * L)
    ]
    bs = [np.zeros(J) for _ in range(2 * L)]
    return _pack(ws[:L], bs[:L], ws[L:], bs[L:])


# ----------------------------------------------------------------------------
# metrics used for monitoring


# ----------------------------------------------------------------------------
# public entry point


def _check_2d(name, a):
    arr = real_array(a, name, ndim=2, shape_text="2-D of shape (n, J), one spectrum "
                     "per row")
    return np.ascontiguousarray(arr)


def _check_sets(train, anchors, valid):
    """Return the training, anchor and validation spectra as (n, J) arrays."""
    X = _check_2d("train", train)
    A = _check_2d("anchors", anchors)
    V = None if valid is None else _check_2d("valid", valid)
    if A.shape[0] < 2:
        raise InputError(
            f"anchors must hold at least 2 spectra (rows); got {A.shape[0]}. "
            "The interpolator needs N >= 2 anchor points."
        )
    J = A.shape[1]
    for what, arr in (("train", X), ("valid", V)):
        if arr is not None and arr.shape[1] != J:
            raise InputError(
                f"{what} has {arr.shape[1]} channels but anchors have {J}; "
                "both must have the same number of columns."
            )
    if X.shape[0] < 1 or (V is not None and V.shape[0] < 1):
        raise InputError("train and valid must hold at least one spectrum each.")
    return X, A, V


def _positive(name, value):
    return real(value, name, low=0.0, low_open=True)


def train(
    train: Any,
    anchors: Any,
    valid: Any = None,
    *,
    n_layers: int = 4,
    activation: str = "leaky_relu",
    res_factor: float = 0.1,
    reg_parameter: float = 0.1,
    optimizer: str = "adam+lbfgs",
    max_epochs: int = 10000,
    batch_size: int = 25,
    learning_rate: float = 3e-3,
    final_learning_rate: float = 1e-5,
    lbfgs_iter: int = 5000,
    patience: int = 500,
    validation_fraction: float = 0.15,
    init_scale: float = 0.1,
    random_state: int | np.random.Generator | None = None,
    progress: bool = True,
    name: str = "",
):
    """Train an interpolatory autoencoder on a set of spectra.

    Minimises the loss of docs/algorithm.md section 4 per batch ``X``,
    ``||phi(X) - B||_F + reg_parameter * ||psi(B) - X||_F`` with
    ``B = lambda PhiE`` the barycentre of the anchor codes ``PhiE = phi(anchors)``,
    by backpropagation derived by hand (through the encoder, the anchor codes, the
    regularised inverse of the interpolator and the decoder).

    Parameters
    ----------
    train : (n, J) array_like
        Training spectra, one per row, at the amplitude the model will see: the
        fast projection rescales its input to the mean L1 norm of the anchors, so
        give spectra normalised like the anchors (the Cas A spectra are unit-sum).
    anchors : (N, J) array_like
        Anchor spectra, ``N >= 2``.
    valid : (m, J) array_like, optional
        Validation spectra, for early stopping and the history. Without them,
        ``validation_fraction`` of ``train`` is held out for that (or, with
        ``validation_fraction=0``, the training loss is monitored instead).
    n_layers : int, default 4
        Number of residual layers of width ``J`` in the encoder and in the decoder.
    activation : {'leaky_relu', 'linear', 'relu', 'tanh'}, default 'leaky_relu'
        Activation of every layer (the leaky ReLU has slope 0.01).
    res_factor : float, default 0.1
        Residual factor: encoder layer ``l`` adds
        ``res_factor * (2**(l/(L-1)) - 1)`` times its input.
    reg_parameter : float, default 0.1
        Weight of the reconstruction term of the loss.
    optimizer : {'adam', 'adam+lbfgs', 'lbfgs'}, default 'adam+lbfgs'
        ``'adam'``: ``max_epochs`` epochs of Adam on shuffled mini-batches of
        ``batch_size`` spectra. ``'lbfgs'``: ``lbfgs_iter`` iterations of
        full-batch L-BFGS (``scipy.optimize.minimize(method='L-BFGS-B')``) on the
        loss of the whole training set. ``'adam+lbfgs'``: Adam, then L-BFGS from
        the best parameters Adam found.
    max_epochs : int, default 10000
        Adam epochs at most (early stopping usually ends the phase sooner on
        easy families). The default suits the hardest Cas A family, the
        Gaussian lines; ``max_epochs=2500, lbfgs_iter=300`` is the budget of
        earlier versions (and of the built-in models).
    batch_size : int, default 25
        Adam mini-batch size.
    learning_rate, final_learning_rate : float, default 3e-3 and 1e-5
        The Adam step size decays geometrically from the first to the second over
        the ``max_epochs`` epochs (so the schedule stretches with the budget).
    lbfgs_iter : int, default 5000
        L-BFGS iterations at most (each one counts as an epoch in the history);
        one iteration takes about one gradient of the whole set, an Adam epoch
        ``n / batch_size`` mini-batch gradients.
    patience : int, default 500
        Stop a phase (Adam, then L-BFGS, each with its own count) when the
        monitored loss (held-out, given ``valid`` or, without either, training)
        has not improved for this many epochs; the best parameters seen are
        kept.
    validation_fraction : float, default 0.15
        Used only without ``valid``: the fraction of the ``train`` spectra held
        out (``ceil(validation_fraction * n)`` rows drawn at random with
        ``random_state``, never a row equal to an anchor) and used as ``valid``:
        the model trains on the other rows and is chosen and stopped on these,
        as scikit-learn's ``validation_fraction``. ``0`` turns it off (all of
        ``train`` is trained on and its loss is monitored). In ``[0, 1)``.
    init_scale : float, default 0.1
        Initial weights are the identity plus Gaussian noise of standard
        deviation ``init_scale / sqrt(J)``; biases start at zero.
    random_state : int or numpy.random.Generator, optional
        Seeds the initial weights, the mini-batch order and (through a child
        generator, ``Generator.spawn``) the held-out rows: the result is
        deterministic for a given seed (on a given machine and BLAS).
    progress : bool, default True
        Show a tqdm progress bar (on stderr).
    name : str, default ''
        Family name stored in the model.

    Returns
    -------
    model : IAEModel
        The model with the best parameters seen, ``training_spectra`` set to
        ``train`` (all of it, held-out rows included) and the settings in
        ``metadata['training']``, among them ``validation``
        (``'given'``, ``'held_out'`` or ``'none'``), ``validation_fraction``,
        ``validation_rows`` (the row indices of ``train`` held out, sorted; empty
        unless held out), ``n_train`` (spectra trained on) and ``n_valid``.
        Its attribute ``history`` is a dict:

        - ``'epoch'``, ``'train_loss'``, ``'valid_loss'`` ((n_epochs,) arrays):
          the loss above with the whole set taken as one batch, divided by
          ``sqrt(n_spectra)`` so that sets of different sizes compare. Entry 0
          is the initial model. During Adam the training loss combines the
          epoch's mini-batches (with the parameters moving during the epoch);
          ``valid_loss`` is that of the validation (given or held-out) spectra,
          NaN without any.
        - ``'valid_sad'``: median SAD (dB, ``-10 log10`` of the angle in
          radians) of the fast projection of the validation spectra (NaN without
          any).
        - ``'phase'``: ``'adam'`` or ``'lbfgs'`` per epoch.
        - ``'best_epoch'``, ``'best_loss'``, ``'stopped_early'``, ``'seconds'``,
          ``'n_evaluations'`` (mini-batch or full-batch gradient evaluations).

    Raises
    ------
    InputError
        For NaN/infinite spectra, mismatched channel counts, fewer than two
        anchors, an unknown activation or optimizer, out-of-range settings, or
        a ``validation_fraction`` that leaves no spectrum to train on.
    InputTypeError
        For non-numeric arrays or wrongly typed settings (also a TypeError).

    Notes
    -----
    Biases are optimised in units of the typical channel value of the spectra
    (mean L1 norm of the anchors divided by ``J``) and converted back when the
    model is built, so the returned model works on the spectra as given.

    Without ``valid``, the median manifold-projection SAD on Cas A Gaussian-line
    spectra never trained nor stopped on went from 21.7-23.4 dB with the budget
    of earlier versions (``max_epochs=2500, lbfgs_iter=300``) to 24.0-27.3 dB
    with these defaults (split seeds 0-2 and 10-12, median 25.9; the authors'
    model: 26.2-26.6 dB on the same spectra), so the lines may still need more;
    the synchrotron and thermal families read 29-32.5 dB (seeds 0 and 10).
    See docs/results.md
    and ``bench/train_casa.py --generalisation``.
    """
    X, A, V = _check_sets(train, anchors, valid)
    J = A.shape[1]
    choice(activation, "activation", ACTIVATIONS)
    choice(optimizer, "optimizer", _OPTIMIZERS)
    n_layers = integer(n_layers, "n_layers", minimum=1)
    max_epochs = integer(max_epochs, "max_epochs", minimum=1)
    lbfgs_iter = integer(lbfgs_iter, "lbfgs_iter", minimum=1)
    patience = integer(patience, "patience", minimum=1)
    batch_size = integer(batch_size, "batch_size", minimum=1)
    learning_rate = _positive("learning_rate", learning_rate)
    final_learning_rate = _positive("final_learning_rate", final_learning_rate)
    reg_parameter = _positive("reg_parameter", reg_parameter)
    init_scale = _positive("init_scale", init_scale)
    res_factor = real(res_factor, "res_factor", low=0.0)
    validation_fraction = real(validation_fraction, "validation_fraction", low=0.0,
                               high=1.0, high_open=True)

    spec = _Spec(
        n_features=J,
        n_layers=n_layers,
        activation=activation,
        res_factor=res_factor,
        reg_parameter=reg_parameter,
        bias_scale=_bias_scale(A),
    )
    rng = np.random.default_rng(random_state)
    theta = _init_params(spec, rng, init_scale)
    X_fit, held = X, np.zeros(0, dtype=np.int64)
    if V is None and validation_fraction > 0:
        # a child stream: the weights and batch orders are those of any fraction,
        # and of train(X[fit], anchors, X[held]) with the same random_state
        fit_rows, held = split_rows(X, A, validation_fraction, rng.spawn(1)[0])
        X_fit, V = X[fit_rows], X[held]
    how = "given" if valid is not None else "held_out" if held.size else "none"
    n_adam = max_epochs if optimizer != "lbfgs" else 0
    n_lbfgs = lbfgs_iter if optimizer != "adam" else 0

    from tqdm import tqdm

    state = _Monitor(spec, X_fit, A, V, patience)
    t0 = time.perf_counter()
    with tqdm(
        total=n_adam + n_lbfgs,
        disable=not progress,
        desc=f"IAE {name}".strip(),
        unit="epoch",
        dynamic_ncols=True,
    ) as bar:
        state.epoch(theta, "adam" if n_adam else "lbfgs")
        if n_adam:
            _run_adam(
                theta,
                spec,
                X_fit,
                A,
                n_adam,
                batch_size,
                learning_rate,
                final_learning_rate,
                rng,
                state,
                bar,
            )
        if n_lbfgs:
            state.reset_patience()
            _run_lbfgs(state.best_theta, spec, X_fit, A, n_lbfgs, state, bar)
    seconds = time.perf_counter() - t0

    history = state.history()
    history["seconds"] = seconds
    settings = {
        "n_layers": n_layers,
        "activation": activation,
        "res_factor": res_factor,
        "reg_parameter": reg_parameter,
        "optimizer": optimizer,
        "max_epochs": max_epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "final_learning_rate": final_learning_rate,
        "lbfgs_iter": lbfgs_iter,
        "patience": patience,
        "init_scale": init_scale,
        "random_state": (
            int(random_state) if isinstance(random_state, (int, np.integer)) else None
        ),
        "validation": how,
        "validation_fraction": validation_fraction if how == "held_out" else 0.0,
        "validation_rows": held.tolist(),
        "n_train": int(X_fit.shape[0]),
        "n_valid": 0 if V is None else int(V.shape[0]),
        "epochs_run": len(history["epoch"]) - 1,
        "best_epoch": history["best_epoch"],
        "best_loss": history["best_loss"],
        "seconds": seconds,
    }
    model = _build_model(state.best_theta, spec, A, X, name, settings)
    model.history = history
    return model


def _build_model(theta, spec, anchors, X, name, settings):
    ew, eb, dw, db = spec.weights(theta.copy())
    model = IAEModel(
        anchors.copy(),
        [w.copy() for w in ew],
        [b.copy() for b in eb],
        [w.copy() for w in dw],
        [b.copy() for b in db],
        activation=spec.activation,
        res_factor=spec.res_factor,
        simplex=spec.simplex,
        reg_inv=spec.reg_inv,
        reg_parameter=spec.reg_parameter,
        name=name,
        metadata={"training": settings},
        training_spectra=X.copy(),
    )
    return model


class _Monitor:
    """Per-epoch bookkeeping: history, best parameters, early stopping."""

    def __init__(self, spec, X, A, V, patience):
        self.spec, self.X, self.A, self.V = spec, X, A, V
        self.patience = patience
        self.rows: list[tuple] = []
        self.best_loss = math.inf
        self.best_theta = None
        self.best_epoch = -1
        self.since_best = 0
        self.stop = False
        self.stopped_early = False
        self.n_eval = 0

    def reset_patience(self):
        self.since_best = 0
        self.stop = False

    def _full_loss(self, theta, Y):
        return _loss_grad(theta, self.spec, Y, self.A, need_grad=False)[0] / math.sqrt(
            Y.shape[0]
        )

    def epoch(self, theta, phase, train_loss=None):
        """Record one epoch; returns True when training should stop."""
        if train_loss is None:
            train_loss = self._full_loss(theta, self.X)
        if self.V is not None:
            valid_loss = self._full_loss(theta, self.V)
            fast = _network(theta, self.spec, self.A).fast_project(self.V)[0]
            sad = float(np.median(sad_rows(self.V, fast)))
            monitored = valid_loss
        else:
            valid_loss = sad = math.nan
            monitored = train_loss
        self.rows.append((len(self.rows), train_loss, valid_loss, sad, phase))
        if not math.isfinite(monitored):
            self.stop = True
            return True
        if monitored < self.best_loss:
            self.best_loss = monitored
            self.best_theta = theta.copy()
            self.best_epoch = len(self.rows) - 1
            self.since_best = 0
        else:
            self.since_best += 1
            if self.since_best >= self.patience:
                self.stop = self.stopped_early = True
        return self.stop

    def history(self):
        cols = list(zip(*self.rows, strict=True)) if self.rows else [()] * 5
        return {
            "epoch": np.asarray(cols[0], dtype=np.int64),
            "train_loss": np.asarray(cols[1], dtype=np.float64),
            "valid_loss": np.asarray(cols[2], dtype=np.float64),
            "valid_sad": np.asarray(cols[3], dtype=np.float64),
            "phase": list(cols[4]),
            "best_epoch": int(self.best_epoch),
            "best_loss": float(self.best_loss),
            "stopped_early": bool(self.stopped_early),
            "n_evaluations": int(self.n_eval),
        }


def _run_adam(theta, spec, X, A, n_epochs, batch_size, lr, lr_final, rng, state, bar):
    """Adam on shuffled mini-batches (beta1 0.9, beta2 0.999, eps 1e-8).

    The step size decays geometrically from ``lr`` to ``lr_final`` over the
    epochs: large steps find the shape of the manifold, small ones settle it.
    """
    theta = theta.copy()
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    b1, b2, eps = 0.9, 0.999, 1e-8
    # buffers: the update below is m += (1-b1) g, v += (1-b2) g^2,
    # theta -= step m / (sqrt(v) + eps), operation for operation, in place
    g, tmp, den = (np.empty_like(theta) for _ in range(3))
    t = 0
    n = X.shape[0]
    reg = spec.reg_parameter
    decay = (lr_final / lr) ** (1.0 / max(n_epochs - 1, 1))
    for epoch in range(n_epochs):
        rate = lr * decay**epoch
        order = rng.permutation(n)
        s1 = s2 = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            _, _, (n1, n2) = _loss_grad(theta, spec, X[idx], A, out=g)
            s1 += n1 * n1
            s2 += n2 * n2
            t += 1
            m *= b1
            m += np.multiply(g, 1 - b1, out=tmp)
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1 - b2
            v += tmp
            step = rate * math.sqrt(1 - b2**t) / (1 - b1**t)
            np.sqrt(v, out=den)
            den += eps
            np.multiply(m, step, out=tmp)
            tmp /= den
            theta -= tmp
        state.n_eval += -(-n // batch_size)
        bar.update(1)
        # the epoch's batches make up the training set: their norms combine into
        # the full-set loss (with the parameters moving during the epoch)
        train_loss = (math.sqrt(s1) + reg * math.sqrt(s2)) / math.sqrt(n)
        if state.epoch(theta, "adam", train_loss):
            break
    return theta


def _run_lbfgs(theta, spec, X, A, n_iter, state, bar):
    """Full-batch L-BFGS on the loss divided by sqrt(n), from ``theta``."""
    from scipy.optimize import minimize

    scale = 1.0 / math.sqrt(X.shape[0])

    def fun(th):
        loss, g, _ = _loss_grad(th, spec, X, A)
        state.n_eval += 1
        return loss * scale, g * scale

    def callback(intermediate_result):
        bar.update(1)
        res = intermediate_result
        if isinstance(res, np.ndarray):  # scipy < 1.11 passes the parameters only
            x, f = res, None
        else:
            x, f = res.x, float(res.fun)
        if state.epoch(np.array(x, dtype=np.float64), "lbfgs", f):
            raise StopIteration

    try:
        minimize(
            fun,
            theta,
            jac=True,
            method="L-BFGS-B",
            callback=callback,
            options={"maxiter": n_iter, "maxcor": 20, "ftol": 0.0, "gtol": 0.0},
        )
    except StopIteration:  # scipy < 1.11 lets it through; later ones stop cleanly
        pass
