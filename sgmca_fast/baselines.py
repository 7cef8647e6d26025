"""Baselines the paper compares sGMCA with: NMF, nearest-neighbour sGMCA, oracles.

Every function returns a :class:`~sgmca_fast.Separation` like
:func:`~sgmca_fast.separate` (unit-norm columns of A, sources S shaped like the
data's pixels), so the same metrics and reports apply to all methods:

- :func:`gmca`: blind GMCA, the package's own (re-exported).
- :func:`hals_nmf`: non-negative matrix factorisation by HALS (scikit-learn's
  coordinate-descent solver, which is the fast HALS of Cichocki and Phan).
- :func:`sparse_nmf`: NMF with an L1 penalty on the sources, multiplicative
  updates (scikit-learn's ``'mu'`` solver).
- :class:`NearestNeighbourModel`: a spectral "model" whose projection is the
  nearest spectrum of a training set; given to :func:`~sgmca_fast.separate` in
  place of the IAE models it runs the paper's nearest-neighbour sGMCA.
- :func:`oracle_sources` and :func:`oracle_mixing`: the oracle bounds, S from the
  true A and A from the true S.

scikit-learn is an optional extra (``pip install 'sgmca-fast[baselines]'``); it is
imported by the NMF functions only.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from . import _checks, starlet
from ._solver import Separation, gmca
from ._sources import SourceStep, final_sources, weighted_pinv
from ._validation import (
    InputError,
    boolean,
    choice,
    integer,
    real,
    real_array,
)
from .iae._project import ProjectionResult

__all__ = [
    "NearestNeighbourModel",
    "gmca",
    "hals_nmf",
    "oracle_mixing",
    "oracle_sources",
    "sparse_nmf",
]



# --------------------------------------------------------------------------------
# validation and helpers
# --------------------------------------------------------------------------------


def _as_data(X, name="X"):
    """(J, P) float64 view of a (J, H, W) or (J, P) array and the pixel shape."""
    arr = _checks.data(X, name)
    return arr.reshape(arr.shape[0], -1), arr.shape[1:]


def _normalise(A, S):
    """Scale A to unit L2 columns and S's rows by the norms (A S unchanged)."""
    norms = np.linalg.norm(A, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    return A / norms, S * norms[:, None]


def _result(A, S, pix_shape, n_iter, t0, **history):
    n_src = A.shape[1]
    total = time.perf_counter() - t0
    return Separation(
        A=A,
        S=S.reshape((n_src,) + tuple(pix_shape)),
        mapping=[None] * n_src,
        model_fit=[None] * n_src,
        n_iter=n_iter,
        history=history,
        timings={"total": total},
    )


# --------------------------------------------------------------------------------
# NMF
# --------------------------------------------------------------------------------


def _nmf(X, n_sources, solver, alpha, max_iter, tol, random_state):
    try:
        from sklearn.decomposition import NMF
        from sklearn.exceptions import ConvergenceWarning
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the NMF baselines need scikit-learn: pip install 'sgmca-fast[baselines]'"
        ) from None
    t0 = time.perf_counter()
    x, pix_shape = _as_data(X)
    n_sources = _checks.n_sources(n_sources, x.shape[0])
    max_iter = integer(max_iter, "max_iter", minimum=1)
    tol = real(tol, "tol", low=0.0)
    # NMF needs non-negative data: the noise makes faint pixels negative, and a
    # clip at 0 touches only those (a shift would add a constant to every pixel,
    # which NMF would have to model with an extra component).
    n_clipped = int(np.count_nonzero(x < 0))
    x = np.maximum(x, 0.0)
    # sklearn's 'mu' objective is 0.5 ||X - W H||^2 + alpha_H * n_samples * |H|_1
    # with X (n_samples, n_features) = (J, P): divide by J so that alpha is the
    # plain L1 weight of 0.5 ||X - A S||^2 + alpha |S|_1.
    model = NMF(
        n_components=n_sources,
        init="nndsvda",
        solver=solver,
        beta_loss="frobenius",
        tol=tol,
        max_iter=max_iter,
        random_state=random_state,
        alpha_W=0.0,
        alpha_H=alpha / x.shape[0],
        l1_ratio=1.0,
    )
    with warnings.catch_warnings():
        # A run stopped by max_iter is the baseline as configured: its iteration
        # count goes into n_iter instead of a warning.
        warnings.simplefilter("ignore", ConvergenceWarning)
        A = model.fit_transform(x)
    S = model.components_
    A, S = _normalise(A, S)
    return _result(
        A,
        S,
        pix_shape,
        {"nmf": int(model.n_iter_)},
        t0,
        converged=int(model.n_iter_) < max_iter,
        clipped_fraction=n_clipped / x.size,
        reconstruction_err=float(model.reconstruction_err_),
    )


def hals_nmf(
    X, n_sources: int, *, max_iter: int = 500, tol: float = 1e-4, random_state=None
) -> Separation:
    """Non-negative matrix factorisation by HALS (the paper's first blind baseline).

    Solves ``min_{A >= 0, S >= 0} ||X - A S||_F^2`` with scikit-learn's NMF, solver
    ``'cd'`` (coordinate descent on one row/column at a time: the fast HALS of
    Cichocki and Phan), initialised by NNDSVDa. Negative data values (the noise in
    faint pixels) are clipped at 0 first; the fraction clipped is in
    ``history["clipped_fraction"]``.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data, J channels.
    n_sources : int
        Number of sources I (1 <= I <= J).
    max_iter : int, optional
        Maximum number of iterations.
    tol : float, optional
        scikit-learn's stopping tolerance.
    random_state : None, int or numpy.random.Generator, optional
        Seed (NNDSVDa is deterministic; it only matters for its ties).

    Returns
    -------
    Separation
        A (J, I) with unit L2 columns, S (I, H, W) or (I, P) non-negative (scaled
        by the column norms so A S is the NMF's fit); ``n_iter["nmf"]`` and
        ``history["converged"]`` say whether ``max_iter`` stopped the run.

    Raises
    ------
    ImportError
        scikit-learn is not installed.
    """
    return _nmf(X, n_sources, "cd", 0.0, max_iter, tol, _sk_seed(random_state))


def sparse_nmf(
    X,
    n_sources: int,
    *,
    alpha: float = 1e-7,
    max_iter: int = 500,
    tol: float = 1e-4,
    random_state=None,
) -> Separation:
    """Sparse NMF: L1 on the sources, multiplicative updates (the paper's SNMF).

    Solves ``min_{A >= 0, S >= 0} 0.5 ||X - A S||_F^2 + alpha ||S||_1`` with
    scikit-learn's NMF, solver ``'mu'`` (Lee-Seung multiplicative updates),
    initialised by NNDSVDa. scikit-learn scales the penalty by the number of rows
    of X; ``alpha`` is passed divided by J so it is the plain weight above.
    Negative data values are clipped at 0 first (see :func:`hals_nmf`).

    Nothing bounds the norm of A's columns during the fit, so the penalty can be
    partly absorbed by growing A and shrinking S; the paper notes that this
    baseline is very sensitive to ``alpha`` and uses a single "globally good"
    value, 1e-7 in its own data units.

    Parameters
    ----------
    X, n_sources, max_iter, tol, random_state
        As in :func:`hals_nmf`.
    alpha : float, optional
        L1 weight on the sources (>= 0), in the units of the objective above.

    Returns
    -------
    Separation
        As :func:`hals_nmf`.

    Raises
    ------
    ImportError
        scikit-learn is not installed.
    """
    alpha = real(alpha, "alpha", low=0.0)
    return _nmf(X, n_sources, "mu", alpha, max_iter, tol, _sk_seed(random_state))


def _sk_seed(random_state):
    """scikit-learn wants an int or a RandomState: draw one from a Generator."""
    random_state = _checks.random_state(
        random_state, (np.random.Generator, np.random.RandomState)
    )
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**31 - 1))
    return random_state


# --------------------------------------------------------------------------------
# nearest-neighbour "model"
# --------------------------------------------------------------------------------


class NearestNeighbourModel:
    """A spectral model whose projection is the nearest spectrum of a training set.

    Duck-types the part of :class:`~sgmca_fast.iae.IAEModel` the solver uses, so
    ``separate(X, n, {NearestNeighbourModel(train_sync, "sync"): 1, ...})`` runs
    the paper's nearest-neighbour sGMCA: at every iteration each modelled column
    of A is replaced by its closest training spectrum. "Closest" is by angle
    (largest cosine); the amplitude is then the least-squares one,
    ``rho = max(0, <a, g> / ||g||^2)``, as in the manifold projection.

    The latent "weights" of a spectrum are its row index in the training set, as a
    float in an (k, 1) array: :meth:`generate` maps them back to the rows.

    Parameters
    ----------
    spectra : (n, J) array_like
        Training spectra, one a row, finite, none all zero.
    name : str, optional
        Family name (e.g. ``"sync"``), reported in ``Separation.mapping``.

    Attributes
    ----------
    name : str
    n_channels : int
        J.
    n_anchors : int
        1 (the index of the nearest spectrum).
    training_spectra : (n, J) ndarray
        The spectra as given (read-only); the solver samples the "manifold" from
        them when it restarts a lost source.
    """

    def __init__(self, spectra, name: str = "") -> None:
        arr = np.array(spectra, dtype=np.float64, copy=True)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise InputError(
                f"spectra must be a non-empty 2-D (n, J) array, got shape {arr.shape}"
            )
        if not np.all(np.isfinite(arr)):
            raise InputError("spectra contain NaN or inf values")
        norms = np.linalg.norm(arr, axis=1)
        if np.any(norms == 0):
            raise InputError(
                f"spectra rows {np.flatnonzero(norms == 0).tolist()[:5]} are all zero"
            )
        arr.setflags(write=False)
        self.name = str(name)
        self.training_spectra = arr
        self.n_channels = arr.shape[1]
        self.n_anchors = 1
        self._unit = arr / norms[:, None]
        self._norm2 = norms**2

    def __repr__(self) -> str:
        return (
            f"NearestNeighbourModel(name={self.name!r}, n_spectra="
            f"{self.training_spectra.shape[0]}, n_channels={self.n_channels})"
        )

    def _batch(self, a):
        arr = np.asarray(a, dtype=np.float64)
        single = arr.ndim == 1
        arr = np.atleast_2d(arr)
        if arr.ndim != 2 or arr.shape[1] != self.n_channels:
            raise InputError(
                f"a must have shape (k, J) or (J,) with J={self.n_channels}, got "
                f"shape {np.shape(a)}"
            )
        return arr, single

    def _nearest(self, arr):
        """Row index, spectrum and amplitude of the nearest training spectrum."""
        # argmax of the cosine: the norm of each a is common to its row
        index = np.argmax(arr @ self._unit.T, axis=1)
        g = self.training_spectra[index]
        rho = np.maximum(np.sum(arr * g, axis=1) / self._norm2[index], 0.0)
        return index, g, rho

    def fast_project(self, a):
        """Nearest training spectrum of each row, times its best amplitude.

        The same interface as :meth:`IAEModel.fast_project
        <sgmca_fast.iae.IAEModel.fast_project>`.

        Takes the spectra ``a``, (k, J) or (J,), one per row, and returns
        ``(spectra, lambdas, amplitude)``: ``rho * g`` with g the nearest
        training spectrum, the row index of g in the training set (as float,
        (k, 1) or (1,)) and ``rho >= 0``.
        """
        arr, single = self._batch(a)
        index, g, rho = self._nearest(arr)
        spectra = rho[:, None] * g
        lam = index[:, None].astype(np.float64)
        if single:
            return spectra[0], lam[0], float(rho[0])
        return spectra, lam, rho

    def project(self, a, lambda0=None, rho0=None, **kwargs) -> ProjectionResult:
        """Projection on the training set: the exact nearest neighbour.

        The search is exhaustive, so ``lambda0``, ``rho0`` and any keyword of
        :meth:`IAEModel.project <sgmca_fast.iae.IAEModel.project>` (``max_iter``,
        ``tol``) are accepted and ignored.

        Parameters
        ----------
        a : (k, J) or (J,) array_like
            Spectra, one a row.
        lambda0, rho0 : optional
            Ignored.
        **kwargs
            Ignored.

        Returns
        -------
        ProjectionResult
            ``spectra = rho g``, ``lambdas`` the row indices (k, 1), ``rho``,
            ``residual = ||a - rho g||``, ``n_iter`` zeros, ``unit_spectra =
            g / ||g||`` (a training row itself, up to its norm), ``converged``
            all True; 1-D input drops the batch axis.
        """
        arr, single = self._batch(a)
        index, g, rho = self._nearest(arr)
        spectra = rho[:, None] * g
        fields = {
            "spectra": spectra,
            "lambdas": index[:, None].astype(np.float64),
            "rho": rho,
            "residual": np.linalg.norm(arr - spectra, axis=1),
            "n_iter": np.zeros(arr.shape[0], dtype=np.int64),
            "unit_spectra": self._unit[index],
            "converged": np.ones(arr.shape[0], dtype=bool),
        }
        if single:
            fields = {key: value[0] for key, value in fields.items()}
        return ProjectionResult(**fields)

    def generate(self, lambdas) -> np.ndarray:
        """Training spectra from their "latent weights" (row indices).

        Parameters
        ----------
        lambdas : (k, 1) or (1,) array_like
            Row indices (rounded to the nearest integer and clipped to the set).

        Returns
        -------
        spectra : (k, J) or (J,) ndarray
        """
        lam = np.asarray(lambdas, dtype=np.float64)
        single = lam.ndim == 1
        lam = np.atleast_2d(lam)
        if lam.shape[1] != 1:
            raise InputError(f"lambdas must have shape (k, 1), got {np.shape(lambdas)}")
        index = np.clip(np.rint(lam[:, 0]), 0, len(self.training_spectra) - 1)
        out = self.training_spectra[index.astype(np.intp)].copy()
        return out[0] if single else out


# --------------------------------------------------------------------------------
# oracles
# --------------------------------------------------------------------------------


def oracle_sources(
    X,
    A0,
    noise_std=None,
    *,
    method: str = "threshold",
    nscales: int = 2,
    k: float = 3.0,
    l1: bool = True,
    nonneg_S: bool = False,
) -> Separation:
    """Estimate the sources from the true mixing matrix: the oracle bound on S.

    ``method="threshold"`` (default, the paper's oracle GMCA) runs the solver's
    final stage with A fixed at A0: in the starlet domain, the (noise-weighted)
    least squares ``pinv(A0) X``, then soft thresholding of the detail scales at
    k times the noise std of each source and scale (from ``noise_std`` as the
    solver does, or from the MAD when it is None), once plainly and once
    reweighted by that first estimate (the solver's final stage reweights by
    the previous iteration), coarse scale kept, then the inverse starlet.
    ``method="lstsq"`` returns the plain least squares ``pinv(A0) X`` (exact on
    noiseless data).

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data; a (J, P) matrix uses the 1-D starlet along the samples.
    A0 : (J, I) array_like
        True mixing matrix (any column norms; A of the result is A0 with unit
        columns).
    noise_std : float or (J,) array_like, optional
        Noise standard deviation per channel; weights the least squares and sets
        the thresholds. None: unweighted, thresholds from the MAD.
    method : {"lstsq", "threshold"}, optional
        See above.
    nscales : int, optional
        Detail scales of the starlet.
    k : float, optional
        Threshold in units of the noise std.
    l1 : bool, optional
        Soft (True) or hard (False) thresholding.
    nonneg_S : bool, optional
        Zero the coefficients where the reconstructed source is negative.

    Returns
    -------
    Separation
        A = A0 with unit columns, S (I, H, W) or (I, P) in the units of that A.
    """
    t0 = time.perf_counter()
    method = choice(method, "method", ("lstsq", "threshold"))
    x, pix_shape = _as_data(X)
    A = np.array(real_array(A0, "A0", finite=False))
    if A.ndim != 2 or A.shape[0] != x.shape[0] or A.shape[1] > x.shape[0]:
        raise InputError(
            f"A0 must have shape (J, I) with J={x.shape[0]} and I <= J, got "
            f"{A.shape}"
        )
    if not np.all(np.isfinite(A)):
        raise InputError("A0 contains NaN or inf values")
    norms = np.linalg.norm(A, axis=0)
    if np.any(norms == 0):
        raise InputError(f"A0 columns {np.flatnonzero(norms == 0).tolist()} are zero")
    A = A / norms
    J, n_src = A.shape
    sigma = _checks.noise_levels(noise_std, J)
    if method == "lstsq":
        M = weighted_pinv(A, None if sigma is None else 1.0 / sigma**2)
        return _result(A, M @ x, pix_shape, {"oracle": 1}, t0)

    P = x.shape[1]
    shape = tuple(pix_shape) if len(pix_shape) == 2 else (P,)
    nscales = _checks.nscales(nscales, shape)
    k = real(k, "k", low=0.0, low_open=True)
    l1 = boolean(l1, "l1")
    nonneg_S = boolean(nonneg_S, "nonneg_S")
    if len(shape) == 2:
        xw = starlet.forward(x.reshape((J,) + shape), nscales).reshape(J, -1, P)
    else:
        xw = starlet.forward1d(x, nscales)
    # The solver's final stage with A fixed, reweighted by a first estimate.
    step = SourceStep(xw, sigma, starlet.scale_norms(shape, nscales), k, l1, nonneg_S)
    first = np.empty((n_src, nscales, P))
    step(A, 1.0, None, first)
    S = final_sources(step, A, first, np.empty_like(first))
    return _result(A, S, pix_shape, {"oracle": 1}, t0)


def oracle_mixing(X, S0) -> Separation:
    """Estimate the mixing matrix from the true sources: the oracle bound on A.

    Least squares in the direct domain, ``A = X S0^T (S0 S0^T)^-1`` (exact on
    noiseless data), then unit columns, the norms moved into the sources so that
    ``A S`` is the least-squares fit.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data.
    S0 : (I, H, W) or (I, P) array_like
        True sources, with the pixel shape of X and linearly independent rows.

    Returns
    -------
    Separation
        A (J, I) unit columns, S = S0 rows scaled by the column norms of the
        least-squares A.
    """
    t0 = time.perf_counter()
    x, pix_shape = _as_data(X)
    s0 = real_array(S0, "S0", finite=False)
    if s0.ndim not in (2, 3) or int(np.prod(s0.shape[1:])) != x.shape[1]:
        raise InputError(
            f"S0 must be (I, H, W) or (I, P) with the {x.shape[1]} pixels of X, got "
            f"shape {s0.shape}"
        )
    s = s0.reshape(s0.shape[0], -1)
    if not np.all(np.isfinite(s)):
        raise InputError("S0 contains NaN or inf values")
    gram = s @ s.T
    if np.linalg.matrix_rank(gram) < s.shape[0]:
        raise InputError("S0 rows are linearly dependent: A is not identifiable")
    A = np.linalg.solve(gram, s @ x.T).T
    A, S = _normalise(A, s)
    return _result(A, S, pix_shape, {"oracle": 1}, t0)
