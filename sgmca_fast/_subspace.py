"""The channel subspace: the solver's iterations on r x P reduced coefficients.

:func:`reduce` finds, once, the leading principal subspace of the noise-whitened
detail coefficients ``Y = D^-1 Xd`` (D the diagonal of the per-channel noise std):
from the Gram matrix ``Xd Xd^T`` and ``eigh`` for up to ``GRAM_MAX_CHANNELS``
channels, from a randomized range finder with power iterations (Halko, Martinsson
and Tropp 2011, SIAM Review 53, 217, algorithms 4.3-4.4 and 5.3) above, so that no
product of order J^2 P or J^3 is made for many channels. The rank ``"auto"`` is the
number of whitened eigenvalues above the noise floor (the Marchenko-Pastur edge of
:func:`sgmca_fast.noise.estimate_n_sources`, for the correlated samples of the
starlet detail planes) plus a safety margin, and at least the number of sources.

The returned :class:`Subspace` maps spectra between the J channels and the r
coordinates: ``lower(M) = V^T D^-1 M`` and ``lift(b) = D V b`` with V (J, r)
orthonormal. In the reduced coordinates the noise is white with unit variance, so
the solver's weighted least squares (weights ``1 / sigma_j^2``) become plain ones
and equal the full-space ones whenever ``D^-1 A`` lies in the subspace
(docs/solver.md, "Channel subspace").
"""

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from . import starlet
from ._sources import SourceStep
from ._validation import InputError, choice, integer
from .noise import _mp_floor

__all__ = ["GRAM_MAX_CHANNELS", "Columns", "Subspace", "reduce", "reduce_data"]

GRAM_MAX_CHANNELS = 1000  # above this, the randomized range finder
_BLOCK_BYTES = 64 * 2**20  # column blocks of the data read at a time
_POWER_ITER = 3  # power iterations of the range finder
_OVERSAMPLE = 10  # extra sketch columns beyond the rank sought
# The final stage's sources from the full J-channel data with the lifted A
# (True) or from the reduced coefficients (False); docs/solver.md measures both.
FINAL_FULL = True


def _margin(n_signal):
    """Safety margin added to the count of eigenvalues above the noise floor."""
    return max(2, math.ceil(0.5 * n_signal))


@dataclass(frozen=True)
class Subspace:
    """A channel subspace and the maps between J channels and r coordinates.

    Attributes
    ----------
    basis : (J, r) ndarray
        Orthonormal basis V of the subspace, in whitened coordinates.
    scale : (J,) ndarray
        The whitening: the noise std per channel D (ones when no noise level).
    rank : int
        r.
    n_signal : int or None
        Whitened eigenvalues above the noise floor (``rank="auto"``), else None.
    floor : float or None
        The noise floor those eigenvalues were compared with.
    singular_values : (k,) ndarray
        Leading singular values of the whitened detail coefficients computed
        (all J with the Gram matrix; the sketch's with the randomized path).
    method : str
        ``"gram"`` or ``"randomized"``.
    reason : str
        One line saying how r was chosen.
    xx : (J, J) ndarray
        ``Xd Xd^T``: exact with the Gram matrix; with the randomized path its
        part in the subspace plus the expected noise energy outside it.
    """

    basis: np.ndarray
    scale: np.ndarray
    rank: int
    n_signal: int | None
    floor: float | None
    singular_values: np.ndarray
    method: str
    reason: str
    xx: np.ndarray

    def lower(self, M):
        """Reduced coordinates ``V^T D^-1 M``: (J, ...) -> (r, ...).

        Read in blocks of columns, so a memory-mapped M is read once in chunks.
        A float32 M gives float32 coordinates (the data's reduced coefficients
        with ``dtype=np.float32``); any other dtype float64.
        """
        M = np.asarray(M)
        J = M.shape[0]
        flat = M.reshape(J, -1)
        # float32 data stay float32 (an sgemm); anything else float64
        dtype = np.float32 if M.dtype == np.float32 else np.float64
        W = (self.basis / self.scale[:, None]).T.astype(dtype, copy=False)  # (r, J)
        out = np.empty((self.rank, flat.shape[1]), dtype)
        for cols in _blocks(flat):
            np.matmul(W, flat[:, cols], out=out[:, cols])
        return out.reshape((self.rank,) + M.shape[1:])

    def lift(self, b):
        """Spectra in J channels ``D V b``: (r, I) -> (J, I)."""
        return self.scale[:, None] * (self.basis @ b)

    def pca(self, n):
        """Return the plain (unwhitened) PCA start within the subspace, (J, n).

        The top n directions of ``xx`` over span(D V), from the generalized
        eigenproblem ``(L^T xx L) w = lambda (L^T L) w``, L = D V: the full
        space's PCA start when the noise is the same in every channel, and
        close to it otherwise (its leading directions are the signal's).
        """
        from scipy.linalg import eigh

        L = self.scale[:, None] * self.basis
        w = eigh(L.T @ self.xx @ L, L.T @ L)[1]
        return L @ w[:, ::-1][:, :n]

    def summary(self):
        """Return the dict reported in ``Separation.subspace``."""
        return {"rank": self.rank, "n_signal": self.n_signal, "floor": self.floor,
                "method": self.method, "reason": self.reason,
                "singular_values": self.singular_values.copy()}


def _blocks(flat):
    """Slices of column blocks of about ``_BLOCK_BYTES`` of a (J, n) array."""
    J, n = flat.shape
    width = max(1, _BLOCK_BYTES // (8 * max(J, 1)))
    return [slice(c, min(c + width, n)) for c in range(0, n, width)]


def _gram(Xd):
    """``Xd Xd^T`` accumulated over column blocks (J, J)."""
    xx = np.zeros((Xd.shape[0],) * 2)
    for cols in _blocks(Xd):
        block = np.asarray(Xd[:, cols], dtype=np.float64)
        xx += block @ block.T
    return xx


def _apply_gram(Xd, scale, Q):
    """``Y Y^T Q`` for ``Y = D^-1 Xd``, in one pass over column blocks of Xd."""
    Qs = Q / scale[:, None]
    out = np.zeros_like(Q)
    for cols in _blocks(Xd):
        block = np.asarray(Xd[:, cols], dtype=np.float64)
        out += block @ (block.T @ Qs)
    return out / scale[:, None]


class Columns:
    """The detail coefficients' products for :func:`reduce_data`, from an array.

    Parameters
    ----------
    flat : (J, n) array_like
        Detail coefficients, any column order (an ndarray or a memory-mapped
        array: read in column blocks).
    """

    def __init__(self, flat):
        self.flat = flat

    def gram(self):
        """``Xd Xd^T`` (J, J)."""
        return _gram(self.flat)

    def apply_gram(self, scale, Q):
        """``Y Y^T Q`` (J, k) for ``Y = D^-1 Xd``, D = diag(scale)."""
        return _apply_gram(self.flat, scale, Q)


def _randomized(data, J, scale, k, rng):
    """Top-k eigenpairs of ``Y Y^T`` by subspace iteration from a Gaussian sketch.

    ``data`` gives ``apply_gram`` (:class:`Columns`). Returns the eigenvalues
    (k,) in decreasing order and the vectors (J, k).
    """
    k = min(k, J)
    Q = np.linalg.qr(rng.standard_normal((J, k)))[0]
    for _ in range(_POWER_ITER):
        Q = np.linalg.qr(data.apply_gram(scale, Q))[0]
    H = data.apply_gram(scale, Q)
    T = Q.T @ H
    eig, W = np.linalg.eigh((T + T.T) / 2)
    return eig[::-1].copy(), Q @ W[:, ::-1]


def noise_floor(n_channels, image_shape, nscales, count=None):
    """Top eigenvalue of ``Y Y^T`` for unit white noise on the detail planes.

    The detail coefficients of white noise are correlated (within a scale and
    across scales): with column covariance C, the top eigenvalue of ``Y Y^T``
    is about ``(tr C / n_eff) mp(J, n_eff)``, ``n_eff = tr(C)^2 / ||C||_F^2``
    and mp the Marchenko-Pastur edge with the Tracy-Widom margin of
    :func:`sgmca_fast.noise.estimate_n_sources` (and its margin for an
    estimated noise when ``count``, the coefficients per channel of the
    estimate, is given). ``tr C`` and ``||C||_F`` come from the power spectrum
    of the starlet filters (a delta transformed, then Parseval).

    Parameters
    ----------
    n_channels : int
    image_shape : (H, W) or (P,) tuple
    nscales : int
    count : int, optional

    Returns
    -------
    float
    """
    size = 2 ** (nscales + 3) + 1
    if len(image_shape) == 2:
        delta = np.zeros((size, size))
        delta[size // 2, size // 2] = 1.0
        g = starlet.forward(delta, nscales)[:nscales]
        power = np.sum(np.abs(np.fft.fft2(g, s=(2 * size, 2 * size))) ** 2, axis=0)
    else:
        delta = np.zeros(size)
        delta[size // 2] = 1.0
        g = starlet.forward1d(delta, nscales)[:nscales]
        power = np.sum(np.abs(np.fft.fft(g, n=2 * size)) ** 2, axis=0)
    n_pix = math.prod(image_shape)
    trace = n_pix * power.mean()  # P sum_s ||g_s||^2
    frob2 = n_pix * np.mean(power**2)  # P sum_{s,t} ||g_s * g_t||^2
    n_eff = trace**2 / frob2
    return float(trace / n_eff * _mp_floor(n_channels, n_eff, count))


def _check_rank(rank, n_min, J):
    if isinstance(rank, str):
        choice(rank, "subspace", ("auto",))
        return "auto"
    return integer(rank, "subspace", minimum=n_min, maximum=J)


def reduce(Xd, rank="auto", *, noise_std=None, n_min=1, image_shape=None,
           estimated=False, method="auto", random_state=None):
    """Find the leading principal subspace of the noise-whitened detail coefficients.

    Parameters
    ----------
    Xd : (J, nscales, P) array_like
        Detail coefficients of the data (a view of the transform, or a
        memory-mapped array: read in column blocks).
    rank : "auto" or int, optional
        r; ``"auto"``: the whitened eigenvalues above the noise floor
        (:func:`noise_floor`) plus ``max(2, ceil(count / 2))``, at least
        ``n_min`` and at most J. Needs ``noise_std``.
    noise_std : (J,) ndarray, optional
        Noise std per channel (units of X), the whitening; None: no whitening.
    n_min : int, optional
        The smallest rank (the number of sources).
    image_shape : (H, W) or (P,) tuple, optional
        The pixels behind P (2-D or 1-D starlet), for the noise floor; default
        ``(P,)``.
    estimated : bool, optional
        The noise std was estimated from the data (a wider floor).
    method : {"auto", "gram", "randomized"}, optional
        ``"auto"``: the Gram matrix up to ``GRAM_MAX_CHANNELS`` channels.
    random_state : int or numpy.random.Generator, optional
        The randomized path's sketch.

    Returns
    -------
    Subspace

    Raises
    ------
    InputError
        A rank below ``n_min`` or above J, ``"auto"`` without a noise level,
        an unknown method, noise std not finite and positive.
    """
    if Xd.ndim != 3:
        raise InputError(f"Xd must be (J, nscales, P), got shape {Xd.shape}")
    J, nscales, P = Xd.shape
    return reduce_data(Columns(Xd.reshape(J, nscales * P)), Xd.shape, rank,
                       noise_std=noise_std, n_min=n_min, image_shape=image_shape,
                       estimated=estimated, method=method, random_state=random_state)


def reduce_data(data, shape, rank="auto", *, noise_std=None, n_min=1,
                image_shape=None, estimated=False, method="auto",
                random_state=None, count=None):
    """:func:`reduce` from the products of the detail coefficients only.

    Parameters
    ----------
    data : object
        ``gram()`` -> ``Xd Xd^T`` (J, J) and ``apply_gram(scale, Q)`` -> ``Y Y^T
        Q`` (J, k) (:class:`Columns` for an array; the streamed passes of
        :mod:`sgmca_fast._stream` for a cube that is not in memory).
    shape : (J, nscales, P) tuple
        The shape of the detail coefficients.
    rank, noise_std, n_min, image_shape, estimated, method, random_state
        As :func:`reduce`.
    count : int, optional
        With ``estimated``: the coefficients per channel the noise was
        estimated from, for the floor's margin (default P, all of them).

    Returns
    -------
    Subspace
    """
    J, nscales, P = shape
    rank = _check_rank(rank, n_min, J)
    method = choice(method, "method", ("auto", "gram", "randomized"))
    if rank == "auto" and noise_std is None:
        raise InputError("subspace='auto' needs a noise level per channel (the "
                         "whitening); with noise_std='mad' give the rank as a number")
    scale = np.ones(J) if noise_std is None else np.asarray(noise_std, float)
    if scale.shape != (J,) or not (np.all(np.isfinite(scale)) and scale.min() > 0):
        raise InputError("the subspace's noise std must be (J,), finite and > 0")
    if method == "auto":
        method = "gram" if J <= GRAM_MAX_CHANNELS else "randomized"
    floor = None
    if rank == "auto":
        count = (P if count is None else count) if estimated else None
        floor = noise_floor(J, image_shape or (P,), nscales, count)
    if method == "gram":
        xx = data.gram()
        eig, vec = np.linalg.eigh(xx / np.outer(scale, scale))
        eig, vec = eig[::-1], vec[:, ::-1]
    else:
        rng = np.random.default_rng(random_state)
        k = (rank if rank != "auto" else n_min + 2 * _margin(n_min)) + _OVERSAMPLE
        while True:
            eig, vec = _randomized(data, J, scale, k, rng)
            if rank != "auto" or k >= J or np.sum(eig > floor) + _margin(
                    int(np.sum(eig > floor))) < k - _OVERSAMPLE:
                break
            k *= 2
    if rank == "auto":
        n_signal = int(np.sum(eig > floor))
        r = min(J, max(n_min, n_signal + _margin(n_signal)))
        reason = (f"rank {r}: {n_signal} whitened eigenvalue(s) above the noise "
                  f"floor {floor:.4g} plus a margin of {_margin(n_signal)}, at "
                  f"least the {n_min} source(s)")
    else:
        n_signal, r = None, rank
        reason = f"rank {r}: given"
    r = min(r, vec.shape[1])
    V = np.ascontiguousarray(vec[:, :r])
    if method == "randomized":
        norms = starlet.scale_norms(image_shape or (P,), nscales)[:nscales]
        xx = _low_rank_gram(V, eig[:r], scale, P * float(np.sum(norms**2)))
    return Subspace(basis=V, scale=scale, rank=r, n_signal=n_signal, floor=floor,
                    singular_values=np.sqrt(np.maximum(eig, 0.0)), method=method,
                    reason=reason, xx=xx)


def _low_rank_gram(V, eig, scale, c):
    """``Xd Xd^T`` from its subspace part plus white noise outside it.

    ``D (V diag(eig) V^T + c (I - V V^T)) D`` with c the expected energy of a
    pure-noise direction (P times the sum of the squared scale norms).
    """
    DV = scale[:, None] * V
    return DV @ ((eig - c)[:, None] * DV.T) + np.diag(c * scale**2)


def check(subspace, n_channels, n_sources, *, missing, variance, held, noise_std):
    """Check the solver's ``subspace`` argument against the rest (no work yet).

    Returns
    -------
    None, "auto" or int
        The rank asked for.

    Raises
    ------
    InputError
        Not None, "auto" or an int in [n_sources, J]; or used with missing
        data, a per-voxel variance, fixed spectra, or "auto" with
        ``noise_std="mad"``.
    """
    if subspace is None:
        return None
    rank = _check_rank(subspace, n_sources, n_channels)
    clash = [text for flag, text in (
        (missing, "missing data (NaN or mask)"),
        (variance is not None and np.ndim(variance) > 1, "a per-voxel variance"),
        (held is not None, "fixed spectra (fixed=)"),
    ) if flag]
    if clash:
        raise InputError(f"subspace={subspace!r} cannot be used with {clash[0]}; "
                         "use subspace=None")
    if rank == "auto" and isinstance(noise_std, str):
        raise InputError("subspace='auto' needs a noise level per channel (the "
                         "whitening); with noise_std='mad' give the rank as a number")
    return rank


def problem(sub, Xw, full_step, template):
    """Return the solver's Problem on the reduced coefficients of Xw.

    Parameters
    ----------
    sub : Subspace
    Xw : (J, nscales + 1, P) ndarray
        The data's starlet coefficients.
    full_step : SourceStep
        The source update on the full data: the final stage's.
    template : Problem
        The settings (``xx`` J x J, ``n_sources``, ...); its ``Xd`` and
        ``step`` are replaced.
    """
    return reduced_problem(sub, sub.lower(Xw), full_step, template,
                           full_step if FINAL_FULL else None)


def reduced_problem(sub, Zw, like, template, final_step=None):
    """Return the solver's Problem on given reduced coefficients Zw.

    Parameters
    ----------
    sub : Subspace
    Zw : (r, nscales + 1, P) or (r, nscales, P) ndarray
        ``sub.lower`` of the data's starlet coefficients, or of their detail
        planes only (the iterations do not read the coarse plane).
    like : SourceStep
        The full data's source update: its settings (a noise level or not,
        nscales, the scale norms, k, l1, nonneg_S) are the reduced one's.
    template : Problem
        As :func:`problem`.
    final_step : SourceStep, optional
        The final stage's source update (None: the reduced one).
    """
    nscales = like.nscales
    unit = None if like.noise is None else np.ones(sub.rank)
    step = SourceStep(Zw, unit, like.norms, like.k, like.l1, like.nonneg_S,
                      coarse=Zw.shape[1] > nscales)
    Zd = Zw[:, :nscales].reshape(sub.rank, -1)
    return dataclasses.replace(template, Xd=Zd, step=step, subspace=sub,
                               final_step=final_step)
