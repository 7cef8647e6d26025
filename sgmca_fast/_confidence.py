"""A confidence per source: how likely each estimated spectrum is right.

The solver cannot see the truth, but it knows things that go with a failed
source: a spectrum far from its model's manifold (``model_fit``), two columns of A
pointing almost the same way (one source described twice, another lost), a source
too faint for the noise to let its spectrum be measured, data energy that no
column explains, a dense map (noise, not a sparse astrophysical source) and a
recovery rule that had to act. :func:`features` measures these from the result
only; :func:`confidence` combines them with a logistic function whose weights
were fitted on the validation protocol of ``bench/confidence.py`` (the even seeds,
label SAD >= 20 dB; docs/results.md, "Confidence per source") and which is judged
by how it ranks the sources below 15 dB. ``docs/solver.md`` ("Confidence per
source") gives the definitions.
"""

import numpy as np

from . import starlet

__all__ = ["FEATURES", "confidence", "features", "score"]

# The features the combination reads, in the order of _WEIGHTS.
FEATURES = ("noise_sad", "log_fit", "max_cos", "log_unexplained", "density",
            "reseeded", "restarted")
# Logistic combination: confidence = 1 / (1 + exp(-(b + sum w (f - c) / s))),
# standardised by the calibration set's medians c and standard deviations s.
# Fitted by `bench/confidence.py calibrate --split parity --fail-db 20` on the even
# seeds of the validation protocol (k = 1 and 0.01, 40 dB; 30 dB at k = 0.01): the
# sources below 15 dB were too few to fit on, so the label is SAD >= 20 dB
# (docs/results.md, "Confidence per source").
_CENTRE = np.array([35.2445, -2.1101, 0.6634, 0.0012, 0.285, 0.0, 0.5])
_SCALE = np.array([7.9527, 0.4051, 0.2016, 0.0007, 0.0844, 1.0, 0.5])
_WEIGHTS = np.array([1.1755, -0.2531, -0.4788, -0.4166, -0.271, -1e-3, -1e-3])
_BIAS = 2.1616
# log10 of the fit given to a source no model constrains (calibration median).
_LOG_FIT_UNMODELLED = -2.0
_MAD_TO_STD = 1.482602218505602  # 1 / Phi^-1(3/4)


def _details(S, nscales):
    """(I, nscales, P') detail planes of the sources (images or 1-D rows)."""
    if S.ndim == 3:
        w = starlet.forward(S, nscales)[:, :nscales]
    else:
        w = starlet.forward1d(S, nscales)[:, :nscales]
    return w.reshape(S.shape[0], nscales, -1)


def _noise_levels(noise_std, residual, norms):
    """Per-channel noise std: as given, else the MAD of the finest residual plane."""
    if noise_std is not None:
        return np.broadcast_to(np.asarray(noise_std, dtype=np.float64),
                               (residual.shape[0],)).copy()
    fine = residual[:, 0]
    mad = np.median(np.abs(fine - np.median(fine, axis=1, keepdims=True)), axis=1)
    return _MAD_TO_STD * mad / norms[0]


def max_abs_cos(A):
    """Largest ``|cos|`` between each column of A and any other column.

    Parameters
    ----------
    A : (J, I) ndarray

    Returns
    -------
    (I,) ndarray
        0 for a single column; a zero column counts as orthogonal to all.
    """
    norms = np.linalg.norm(A, axis=0)
    U = A / np.where(norms > 0, norms, 1.0)
    cos = np.abs(U.T @ U)
    np.fill_diagonal(cos, 0.0)
    return cos.max(axis=1) if A.shape[1] > 1 else np.zeros(1)


def features(A, S, Xd, nscales, *, noise_std=None, model_fit=None, reseeded=(),
             restarted=False, off_energy=None):
    """Measure, per source, what goes with a failed separation.

    Parameters
    ----------
    A : (J, I) ndarray
        Mixing matrix.
    S : (I, H, W) or (I, P) ndarray
        Sources (no NaN), in the data's units divided by those of A.
    Xd : (J, nscales * P) ndarray or None
        Detail coefficients of the data, scale-major (``starlet.forward`` of X,
        planes ``[:nscales]``, flattened), in the data's units; float32 keeps
        the data-sized intermediates in float32 (the features are float64).
        None for data that are not in memory: then ``noise_std`` and
        ``off_energy`` are needed.
    nscales : int
        Detail scales of the transform.
    noise_std : float or (J,) ndarray, optional
        Noise std per channel, in the data's units; None estimates it from the
        residual's finest plane.
    model_fit : list of float or None, optional
        ``Separation.model_fit``; None or an entry None for unmodelled sources.
    reseeded : sequence of (int, int), optional
        ``history["reseeded"]``: (iteration, column) of each reseed.
    restarted : bool, optional
        Whether the run was restarted from the model pursuit.
    off_energy : float, optional
        ``||(I - Q Q^T) Xd||^2`` (Q an orthonormal basis of A's columns), when
        ``Xd`` is None: ``||Xd||^2 - ||Q^T Xd||^2``, which a streamed pass gives
        (:mod:`sgmca_fast._stream`).

    Returns
    -------
    dict of str to (I,) ndarray
        ``noise_sad``: the SAD (dB) the noise alone allows, ``-10 log10(eps)``
        with ``eps^2 = sum_j sigma_j^2 [G^-1 H G^-1]_ii / ||a_i||^2`` the
        variance of the least-squares spectrum given the detail maps,
        ``G = Sd Sd^T`` and ``H = sum_s n_s^2 Sd_s Sd_s^T`` (``n_s`` the
        starlet scale norms); ``log_fit``: log10 of the model fit;
        ``max_cos``: :func:`max_abs_cos`; ``log_unexplained``: log10 of the
        data's detail energy off span(A) over what the noise puts there (one
        value for the run); ``share``: the source's part of the explained
        energy ``||a_i||^2 ||sd_i||^2 / sum``; ``density``: ``||sd_i||_1 /
        (sqrt(n) ||sd_i||_2)`` (0.80 for Gaussian noise, small for a sparse
        map); ``reseeded``, ``restarted``: 1.0 or 0.0.
    """
    J, n_src = A.shape
    pix_shape = S.shape[1:]
    norms = starlet.scale_norms(pix_shape, nscales)
    # float32 data (dtype=np.float32): the data-sized arrays stay float32, the
    # small products and every sum over the pixels are float64
    dt = np.float32 if Xd is not None and Xd.dtype == np.float32 else np.float64
    acc = None if dt == np.float64 else np.float64
    f64 = np.float64
    Sd = _details(np.asarray(S, dtype=dt), nscales)  # (I, ns, P)
    if Xd is None:
        sigma = np.broadcast_to(np.asarray(noise_std, dtype=f64), (J,))
    else:
        Xs = Xd.reshape(J, nscales, -1)
        residual = Xs - np.einsum("ji,isp->jsp", A.astype(dt, copy=False), Sd)
        sigma = np.asarray(_noise_levels(noise_std, residual, norms), dtype=f64)
    flat = Sd.reshape(n_src, -1)
    G = (flat @ flat.T).astype(f64, copy=False)
    H = sum(norms[s] ** 2 * (Sd[:, s] @ Sd[:, s].T).astype(f64, copy=False)
            for s in range(nscales))
    Gi = np.linalg.pinv(G)
    col2 = np.sum(A * A, axis=0)
    eps2 = np.sum(sigma**2) * np.diag(Gi @ H @ Gi) / np.where(col2 > 0, col2, 1.0)
    noise_sad = -10.0 * np.log10(np.sqrt(np.maximum(eps2, 1e-30)))

    q = np.linalg.qr(A)[0]
    if Xd is not None:
        qd = q.astype(dt, copy=False)
        off = Xd - qd @ (qd.T @ Xd)
        off_energy = np.sum(off * off, dtype=acc)
    n_pix = Sd.shape[2]
    proj_perp = 1.0 - np.sum(q * q, axis=1)  # diagonal of I - Q Q^T
    expected = n_pix * np.sum(norms[:nscales] ** 2) * np.sum(sigma**2 * proj_perp)
    unexplained = max(float(off_energy), 0.0) / max(expected, 1e-300)

    energy = col2 * np.sum(flat * flat, axis=1, dtype=acc)
    l2 = np.sqrt(np.sum(flat * flat, axis=1, dtype=acc))
    density = np.sum(np.abs(flat), axis=1, dtype=acc) / np.where(
        l2 > 0, np.sqrt(flat.shape[1]) * l2, np.inf)
    fit = [None] * n_src if model_fit is None else list(model_fit)
    log_fit = np.array([_LOG_FIT_UNMODELLED if f is None
                        else np.log10(max(f, 1e-6)) for f in fit])
    seeded = np.zeros(n_src)
    for _, col in reseeded:
        seeded[int(col)] = 1.0
    return {
        "noise_sad": noise_sad,
        "log_fit": log_fit,
        "max_cos": max_abs_cos(A),
        "log_unexplained": np.full(n_src, np.log10(max(unexplained, 1e-30))),
        "share": energy / max(np.sum(energy), 1e-300),
        "density": density,
        "reseeded": seeded,
        "restarted": np.full(n_src, float(bool(restarted))),
    }


def score(feats, weights=None, bias=None, centre=None, scale=None):
    """Combine :data:`FEATURES` logistically into an (I,) array in [0, 1].

    Parameters
    ----------
    feats : dict of str to (I,) ndarray
        From :func:`features`.
    weights, bias, centre, scale : optional
        The combination's parameters (default: the calibrated ones).
    """
    w = _WEIGHTS if weights is None else np.asarray(weights, dtype=np.float64)
    b = _BIAS if bias is None else float(bias)
    c = _CENTRE if centre is None else np.asarray(centre, dtype=np.float64)
    s = _SCALE if scale is None else np.asarray(scale, dtype=np.float64)
    F = np.column_stack([np.asarray(feats[name], dtype=np.float64)
                         for name in FEATURES])
    z = b + ((F - c) / s) @ w
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0)))


def confidence(A, S, Xd, nscales, **kwargs):
    """Return the per-source confidence in [0, 1] (:func:`features`, :func:`score`).

    Returns
    -------
    (I,) ndarray
        The fitted probability that the source's SAD is at least 20 dB
        (docs/solver.md, "Confidence per source").
    """
    return score(features(A, S, Xd, nscales, **kwargs))
