"""Least squares of the solver: the source update, the mixing matrix, the final stage.

Every stage of :func:`~sgmca_fast.separate` and the oracle baselines solve the
same two problems on the starlet coefficients (``docs/algorithm.md``, sections 2
and 3): the sources given A (weighted least squares, then thresholding) and A
given the sources. The names without underscore are used across the package.
"""

import numpy as np

from . import _kernels, starlet
from ._noisemap import map_thresholds

__all__ = [
    "SourceStep",
    "final_sources",
    "floored_inverse",
    "mixing_ls",
    "nonneg_columns",
    "unit_columns",
    "weighted_pinv",
]

_EIG_FLOOR = 1e-9  # eigenvalues of the normal matrices floored at this * max


def floored_inverse(gram):
    """Inverse of a symmetric PSD matrix with eigenvalues floored at 1e-9 * max.

    Parameters
    ----------
    gram : (n, n) ndarray
        Symmetric positive semi-definite matrix.

    Returns
    -------
    (n, n) ndarray
        The floored inverse (zeros when ``gram`` is zero).
    """
    e, v = np.linalg.eigh(gram)
    top = e.max(initial=0.0)
    if not top > 0:
        return np.zeros_like(gram)
    return (v / np.maximum(e, _EIG_FLOOR * top)) @ v.T


def weighted_pinv(A, weights=None):
    """Return ``(A^T W A)^-1 A^T W``, W = diag(weights) (identity if None), floored.

    Parameters
    ----------
    A : (J, I) ndarray
        Mixing matrix.
    weights : (J,) ndarray, optional
        Channel weights, ``1 / sigma_j^2``.

    Returns
    -------
    (I, J) ndarray
    """
    Aw = A.T if weights is None else A.T * weights
    return floored_inverse(Aw @ A) @ Aw


def mixing_ls(Xd, Sd):
    """Solve ``A = Xd Sd^T (Sd Sd^T)^-1`` on the detail coefficients (floored).

    Parameters
    ----------
    Xd : (J, n) ndarray
        Detail coefficients of the data.
    Sd : (I, n) ndarray
        Detail coefficients of the sources.

    Returns
    -------
    (J, I) ndarray
    """
    # (Sd Xd^T)^T: OpenBLAS runs this orientation of the skinny product faster.
    # float32 coefficients: sgemm, then the small (J, I) and (I, I) in float64.
    SX = (Sd @ Xd.T).astype(np.float64, copy=False)
    return SX.T @ floored_inverse((Sd @ Sd.T).astype(np.float64, copy=False))


def unit_columns(A, rng):
    """Scale A's columns to unit L2 norm in place.

    A null column gets a random non-negative direction drawn from ``rng``.
    """
    norms = np.linalg.norm(A, axis=0)
    dead = ~(norms > 0)
    if dead.any():
        A[:, dead] = np.abs(rng.standard_normal((A.shape[0], int(dead.sum()))))
        norms[dead] = np.linalg.norm(A[:, dead], axis=0)
    A /= norms
    return A


def nonneg_columns(A):
    """Flip each column of A (in place) so that its sum is positive, clip at zero."""
    A *= np.where(A.sum(axis=0) < 0, -1.0, 1.0)
    np.maximum(A, 0.0, out=A)
    return A


class SourceStep:
    """The source update: weighted least squares then (reweighted) thresholding.

    Parameters
    ----------
    Xw : (J, nscales + 1, P) ndarray
        Starlet coefficients of the data (details then the coarse plane),
        float64 or float32: the sources' coefficients take its dtype (the
        pseudo-inverse, computed in float64, is cast to it for the product, an
        sgemm for float32).
    noise : (J,) ndarray or None
        Noise std per channel (the least-squares weights ``1 / noise**2``); None
        estimates each source's noise by the MAD.
    norms : (>= nscales,) ndarray
        L2 norms of the starlet filters per scale
        (:func:`~sgmca_fast.starlet.scale_norms`).
    k : float
        Thresholds are k times the noise std of each source and scale.
    l1 : bool
        Soft (True) or hard (False) thresholding.
    nonneg_S : bool
        Zero the coefficients where the source is negative (:meth:`full`).
    variance_map : (J, P) ndarray, optional
        Per-voxel noise variance: the thresholds are then set per pixel from it
        (:func:`~sgmca_fast._noisemap.map_thresholds`); ``noise`` still weights
        the least squares.
    coarse : bool, optional
        False: Xw holds the detail planes only, (J, nscales, P) (the iterations
        never read the coarse plane; :meth:`full` then needs it given).
    """

    def __init__(self, Xw, noise, norms, k, l1, nonneg_S, variance_map=None,
                 coarse=True):
        self.Xw = Xw
        self.coarse = coarse
        self.nscales = Xw.shape[1] - (1 if coarse else 0)
        self.noise = noise
        self.weights = None if noise is None else 1.0 / noise**2
        self.norms = norms[: self.nscales]
        self.k = k
        self.l1 = l1
        self.nonneg_S = nonneg_S
        self.variance_map = variance_map

    def pinv(self, A):
        """``(A^T W A)^-1 A^T W`` with floored eigenvalues: (I, J)."""
        return weighted_pinv(A, self.weights)

    def __call__(self, A, K, prev_detail, out):
        """Thresholded detail coefficients (I, nscales, P) into out.

        K < 1 keeps at most that fraction of the coefficients above the noise
        threshold; prev_detail (or None) turns on the l1 reweighting. Returns the
        pseudo-inverse (I, J) used.
        """
        ns = self.nscales
        M = self.pinv(A)
        J, _, P = self.Xw.shape
        np.matmul(M.astype(self.Xw.dtype, copy=False),
                  self.Xw[:, :ns].reshape(J, ns * P), out=out.reshape(-1, ns * P))
        self.threshold(M, out, K, prev_detail)
        return M

    def threshold(self, M, out, K, prev_detail):
        """Threshold least-squares detail coefficients ``out`` (I, nscales, P).

        ``out`` holds ``M Xd`` (made here, or streamed: :mod:`sgmca_fast.
        _stream`); it is thresholded in place as :meth:`__call__` does.
        """
        P = out.shape[-1]
        rows = out.reshape(-1, P)  # (I * nscales, P), a view
        if self.variance_map is not None:
            map_thresholds(self, M, rows, K,
                           None if prev_detail is None else prev_detail.reshape(-1, P))
            return
        if self.noise is not None:
            row_std = np.sqrt((M**2) @ self.noise**2)
            kstd = self.k * (row_std[:, None] * self.norms[None, :]).ravel()
        else:
            kstd = self.k * _kernels.mad_std(rows)
        thr = _kernels.support_thresholds(rows, kstd, K) if K < 1 else kstd
        reweight = prev_detail is not None
        _kernels.threshold(
            rows,
            thr,
            prev=prev_detail.reshape(-1, P) if reweight else None,
            kstd=kstd if reweight else None,
            hard=not self.l1,
            out=rows,
        )

    def full(self, M, detail, coarse=None):
        """All planes (I, nscales + 1, P): thresholded details plus the coarse plane.

        ``coarse`` (I, P): the sources' coarse plane when it is known (streamed);
        None: ``M`` times the data's.
        """
        if coarse is None and not self.coarse:
            raise ValueError("this source update has no coarse plane: give it")
        n, ns, P = detail.shape
        full = np.empty((n, ns + 1, P), self.Xw.dtype)
        full[:, :-1] = detail
        full[:, -1] = (M.astype(self.Xw.dtype, copy=False) @ self.Xw[:, -1]
                       if coarse is None else coarse)
        if self.nonneg_S:
            _kernels.nonneg_sources(full)
        return full


def final_sources(step, A, prev, out):
    """Run the final stage: the sources from a fixed A (docs/algorithm.md, sec. 3).

    All significant coefficients are kept (K = 1), reweighted by ``prev``, the
    coarse plane is added and the starlet inverted.

    Parameters
    ----------
    step : SourceStep
        The source update on the data's coefficients.
    A : (J, I) ndarray
        Mixing matrix, unit columns.
    prev : (I, nscales, P) ndarray
        Detail coefficients of the previous estimate (the reweighting).
    out : (I, nscales, P) ndarray
        Buffer for the new detail coefficients (overwritten).

    Returns
    -------
    S : (I, P) ndarray
        Sources in the direct domain, of the coefficients' dtype.
    """
    M = step(A, 1.0, prev, out)
    return starlet.inverse(step.full(M, out), axis=1)
