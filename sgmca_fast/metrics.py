"""Separation metrics: permutation/sign matching, SAD and BSS-eval SDR/SIR/SNR/SAR.

These follow the authors' evaluation code (``utils.py`` of the sGMCA repository)
so that numbers compare with the paper, with two documented departures:

- The interference term uses the correct projection of each estimated source on
  the span of the true sources, ``S S0^T (S0 S0^T)^-1 S0``. The authors' code
  computes ``solve(S0 S0^T, S0 S^T) S0``, i.e. the coefficient matrix transposed;
  the two coincide when the coefficient matrix is symmetric and agree closely
  when the separation is good.
- The noise term is the BSS-eval one: the projection on the span of the true
  sources and the noise rows together, minus the projection on the true
  sources (the noise rows orthogonalised against the sources). The authors'
  code projects on each noise row separately, which assumes the noise rows are
  mutually orthogonal and orthogonal to the sources.

Angles are computed as ``2 atan2(||u - v||, ||u + v||)`` for unit vectors u, v:
mathematically equal to ``arccos(clip(<u, v>, -1, 1))`` but accurate for tiny
angles, where the arccos of a cosine rounded to 1 loses half the digits.

Every metric is invariant to the scale of each array it takes. Each array is
first multiplied by a power of two that brings its largest entry near 1 (exact,
so ordinary data keep their results bit for bit), and every tolerance is
relative: data of any finite float64 magnitude, 1e-300 or 1e300, give the same
numbers. See docs/algorithm.md, section 6.
"""

import math

import numpy as np

from ._validation import InputError, real_array

__all__ = ["bss_eval", "evaluate", "match", "sad"]

# Floor of a spectral angle (rad), so a perfect estimate has a finite SAD:
# -10 log10(1e-12) = 120 dB is the largest SAD reported.
MIN_ANGLE = 1e-12

# Relative eigenvalue below which a direction of the noise Gram matrix is dropped.
_GRAM_CUTOFF = 1e-12

# Columns and rows are normalised by max(norm, _TINY_NORM), as the authors do,
# after their matrix is rescaled to a largest |entry| in [0.5, 1) (``_rescaled``):
# a floor relative to the matrix, so that any finite scale gives the same metrics.
_TINY_NORM = 1e-9


# --------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------


def _mixing_pair(A0, A):
    A0 = real_array(A0, "A0", ndim=2, shape_text="2-D (channels J, sources I)")
    A = real_array(A, "A")
    if A.shape != A0.shape:
        raise InputError(
            f"A must have the shape of A0 {A0.shape} (channels J, sources I), got "
            f"{A.shape}"
        )
    n_chan, n_src = A0.shape
    if n_src < 1 or n_chan < n_src:
        raise InputError(
            f"A0 must have at least as many channels as sources (J >= I >= 1), got "
            f"J={n_chan}, I={n_src}"
        )
    return A0, A


def _source_rows(value, name, n_src=None, pix_shape=None):
    """(I, P) float64 view of (I, P) or (I, H, W) sources, and the pixel shape."""
    arr = real_array(value, name, ndim=(2, 3), shape_text="(I, P) or (I, H, W)")
    if n_src is not None and arr.shape[0] != n_src:
        raise InputError(
            f"{name} must have {n_src} rows (one per source), got shape {arr.shape}"
        )
    if pix_shape is not None and arr.shape[1:] != pix_shape:
        raise InputError(
            f"{name} must have pixel shape {pix_shape}, got shape {arr.shape}"
        )
    return arr.reshape(arr.shape[0], -1), arr.shape[1:]


def _rescaled(arr):
    """``arr`` times the power of two that brings its largest |entry| into [0.5, 1).

    Every metric is invariant to the scale of each of its arrays, so this changes
    no result, but it keeps sums of squares away from overflow (data of order
    1e160) and underflow (1e-300), and makes the floors below relative to the
    array's magnitude. A power of two is exact: ordinary-scale results keep their
    bits.
    """
    peak = float(np.max(np.abs(arr), initial=0.0))
    if peak == 0.0:
        return arr
    return np.ldexp(arr, -math.frexp(peak)[1])


def _unit_columns(A):
    A = _rescaled(A)
    return A / np.maximum(_TINY_NORM, np.linalg.norm(A, axis=0))


def _unit_rows(S):
    S = _rescaled(S)
    return S / np.maximum(_TINY_NORM, np.linalg.norm(S, axis=1))[:, None]


def _db(num, den):
    """10 log10(num / den) with the limits made explicit (no warnings)."""
    if den <= 0.0:
        return np.inf if num > 0.0 else np.nan
    if num <= 0.0:
        return -np.inf
    return float(10.0 * np.log10(num / den))


# --------------------------------------------------------------------------------
# public
# --------------------------------------------------------------------------------


def match(A0, A, S=None):
    """Fix the permutation and the signs of an estimate against the truth.

    The columns of A0 and A are unit-normalised and matched through
    ``|pinv(A0) A|``: each true column i takes the estimated column with the
    largest entry of row i; if two true columns pick the same estimate, pairs are
    taken greedily by decreasing entry instead. Matched columns (and the rows of
    S) whose correlation with the true column is negative are flipped.

    Parameters
    ----------
    A0 : (J, I) array_like
        True mixing matrix, J >= I.
    A : (J, I) array_like
        Estimated mixing matrix.
    S : (I, P) or (I, H, W) array_like, optional
        Estimated sources, reordered and flipped like the columns of A.

    Returns
    -------
    A : (J, I) ndarray
        Estimated columns in the order of A0, signs fixed (norms unchanged).
    S : (I, P) or (I, H, W) ndarray or None
        The sources in the same order and signs, None if S was not given.
    perm : (I,) ndarray of int
        ``perm[i]`` is the index of the estimated column matched with true
        column i: ``A_out = A[:, perm] * signs``.
    """
    A0, A = _mixing_pair(A0, A)
    n_src = A0.shape[1]
    if S is not None:
        S_arr = real_array(S, "S")
        if S_arr.ndim not in (2, 3) or S_arr.shape[0] != n_src:
            raise InputError(
                f"S must be (I, P) or (I, H, W) with I={n_src} rows, got shape "
                f"{S_arr.shape}"
            )
    cross = np.abs(np.linalg.pinv(_unit_columns(A0)) @ _unit_columns(A))
    perm = np.argmax(cross, axis=1)
    if np.unique(perm).size != n_src:
        perm = np.full(n_src, -1)
        taken = np.zeros(n_src, dtype=bool)
        order = np.argsort(-cross, axis=None, kind="stable")
        for true_i, est_i in zip(*np.unravel_index(order, cross.shape), strict=True):
            if perm[true_i] < 0 and not taken[est_i]:
                perm[true_i] = est_i
                taken[est_i] = True
    # signs from the rescaled matrices: the products of the originals may overflow
    A_out = A[:, perm]
    signs = np.sum(_rescaled(A_out) * _rescaled(A0), axis=0)
    signs = np.where(signs < 0, -1.0, 1.0)
    A_out *= signs
    S_out = None
    if S is not None:
        S_out = S_arr[perm] * signs.reshape((n_src,) + (1,) * (S_arr.ndim - 1))
    return A_out, S_out, perm


def sad(A0, A, per_source=False):
    """Spectral angle distance (SAD) in dB.

    ``SAD = -10 log10(mean_i angle(A0_i, A_i))`` (the mean inside the log, as in
    the authors' code), angles in radians; ``per_source=True`` gives
    ``-10 log10(angle_i)`` per column. No matching is done: call :func:`match`
    first. Each angle is floored at ``MIN_ANGLE`` (1e-12 rad), so a perfect
    estimate gives 120 dB rather than inf. A zero column counts as orthogonal
    (pi / 2).

    Parameters
    ----------
    A0 : (J, I) array_like
        True mixing matrix.
    A : (J, I) array_like
        Estimated mixing matrix, columns in the order of A0.
    per_source : bool, optional
        Return the SAD of each column instead of the overall value.

    Returns
    -------
    sad : float or (I,) ndarray
        In dB; larger is better.
    """
    A0, A = _mixing_pair(A0, A)
    angles = _angles(A0, A)
    if per_source:
        return -10.0 * np.log10(angles)
    return float(-10.0 * np.log10(np.mean(angles)))


def _angles(A0, A):
    u = _unit_columns(A0)
    v = _unit_columns(A)
    angles = 2.0 * np.arctan2(
        np.linalg.norm(u - v, axis=0), np.linalg.norm(u + v, axis=0)
    )
    return np.maximum(angles, MIN_ANGLE)


def _bss_energies(S0, S, noise):
    """Per-source energies (target, interference, noise, artefacts) of unit-norm S.

    S0 and S are (I, P) float64, noise (K, P) float64 or None. Returns four (I,)
    arrays.
    """
    S = _unit_rows(S)
    n_src, n_pix = S0.shape
    if n_pix < n_src:
        raise InputError(
            f"S0 must have at least as many pixels as sources, got shape {S0.shape}"
        )
    # orthonormal basis Q0 (P, I) of the true sources: S0^T = Q0 R0
    Q0, R0 = np.linalg.qr(_rescaled(S0).T)
    diag = np.abs(np.diag(R0))
    # relative test (no absolute floor): any scale of S0 is accepted
    if diag.min() <= n_pix * np.finfo(float).eps * diag.max():
        raise InputError("S0 rows (true sources) must be linearly independent")
    coef = S @ Q0  # (I, I): P_S0 s_i = coef[i] @ Q0.T
    # target: projection on s0_i, whose coordinates in Q0 are R0[:, i]
    alpha = np.einsum("ij,ji->i", coef, R0) / np.sum(R0 * R0, axis=0)
    e_target = alpha[:, None] * R0.T  # coordinates in Q0
    e_interf = coef - e_target
    residual = S - coef @ Q0.T
    noise_energy = np.zeros(n_src)
    if noise is not None:
        noise = _rescaled(noise)
        # noise rows orthogonalised against the sources (twice, for stability)
        n_perp = noise - (noise @ Q0) @ Q0.T
        n_perp -= (n_perp @ Q0) @ Q0.T
        # projection on span(n_perp) through its (K, K) Gram matrix: one BLAS
        # pass over the (K, P) rows, far cheaper than a (P, K) QR for K = 75
        gram = n_perp @ n_perp.T
        lam, vec = np.linalg.eigh(gram)
        # directions holding less than 1e-12 of the noise energy outside the
        # sources are rounding, not noise: drop them
        keep = lam > _GRAM_CUTOFF * float(np.sum(noise * noise))
        if np.any(keep):
            lam, vec = lam[keep], vec[:, keep]
            # coordinates of the residual in the orthonormal basis
            # lam^-1/2 vec^T n_perp of span(n_perp)
            coef_n = (residual @ n_perp.T) @ vec / np.sqrt(lam)
            noise_energy = np.sum(coef_n * coef_n, axis=1)
            residual = residual - (coef_n / np.sqrt(lam)) @ (vec.T @ n_perp)
    return (
        np.sum(e_target * e_target, axis=1),
        np.sum(e_interf * e_interf, axis=1),
        noise_energy,
        np.sum(residual * residual, axis=1),
    )


def _ratios(target, interf, noise, artif, has_noise):
    t, i, n, a = (float(np.sum(e)) for e in (target, interf, noise, artif))
    return {
        "SDR": _db(t, i + n + a),
        "SIR": _db(t, i),
        "SNR": _db(t + i, n) if has_noise else np.inf,
        "SAR": _db(t + i + n, a),
    }


def bss_eval(S0, S, noise=None):
    """BSS-eval source metrics SDR, SIR, SNR and SAR in dB.

    Each estimated source, normalised to unit norm, is split into orthogonal
    parts: the target (projection on its true source), the interference
    (projection on the span of all true sources minus the target), the noise
    (projection on the span of the noise rows orthogonalised against the true
    sources) and the artefacts (the rest). Energies are summed over the sources
    before the ratios::

        SDR = 10 log10(sum |target|^2 / sum |interf + noise + artef|^2)
        SIR = 10 log10(sum |target|^2 / sum |interf|^2)
        SNR = 10 log10(sum |target + interf|^2 / sum |noise|^2)
        SAR = 10 log10(sum |target + interf + noise|^2 / sum |artef|^2)

    The interference uses the projection ``S S0^T (S0 S0^T)^-1 S0``, not the
    transposed coefficients of the authors' code (see the module notes). A zero
    denominator gives inf (nan if the numerator is zero too).

    Parameters
    ----------
    S0 : (I, P) or (I, H, W) array_like
        True sources, linearly independent rows.
    S : (I, P) or (I, H, W) array_like
        Estimated sources in the order of S0 (see :func:`match`).
    noise : (K, P) or (K, H, W) array_like, optional
        The noise N of the data X = A S + N (e.g. (75, 346, 346)). Without it
        the noise term is zero and SNR is inf.

    Returns
    -------
    metrics : dict
        ``{"SDR", "SIR", "SNR", "SAR"}`` as floats in dB.
    """
    S0, S, noise = _check_sources(S0, S, noise)
    return _ratios(*_bss_energies(S0, S, noise), has_noise=noise is not None)


def _check_sources(S0, S, noise):
    S0, pix_shape = _source_rows(S0, "S0")
    S, _ = _source_rows(S, "S", n_src=S0.shape[0], pix_shape=pix_shape)
    if noise is not None:
        noise, _ = _source_rows(noise, "noise", pix_shape=pix_shape)
        if noise.shape[0] < 1:
            raise InputError(f"noise must have at least one row, got {noise.shape}")
    return S0, S, noise


def evaluate(A0, S0, A, S, noise=None, sources=None):
    """All the paper's metrics of an estimate, after permutation/sign matching.

    Parameters
    ----------
    A0 : (J, I) array_like
        True mixing matrix, J >= I.
    S0 : (I, P) or (I, H, W) array_like
        True sources.
    A : (J, I) array_like
        Estimated mixing matrix, in any column order and signs.
    S : (I, P) or (I, H, W) array_like
        Estimated sources, rows in the order of the columns of A.
    noise : (K, P) or (K, H, W) array_like, optional
        Noise of the data, for the SNR (see :func:`bss_eval`).
    sources : sequence of int, optional
        Indices of the true sources the source metrics (SDR, SIR, SNR, SAR) are
        summed over, e.g. ``[1, 2, 3]`` for the paper's unbalanced case. The
        interference still counts leakage from all true sources. SAD always
        covers all sources.

    Returns
    -------
    metrics : dict
        ``"SAD"``, ``"SDR"``, ``"SIR"``, ``"SNR"``, ``"SAR"`` (float, dB) and
        ``"SAD_per_source"`` (list of float, dB, in the order of A0).
    """
    A0, A = _mixing_pair(A0, A)
    n_src = A0.shape[1]
    S0_rows, S_rows, noise = _check_sources(S0, S, noise)
    if S0_rows.shape[0] != n_src:
        raise InputError(
            f"S0 must have {n_src} rows (the columns of A0), got shape {np.shape(S0)}"
        )
    if sources is None:
        keep = np.arange(n_src)
    else:
        keep = np.asarray(sources)
        if keep.ndim != 1 or keep.size == 0 or keep.dtype.kind not in "iu":
            raise InputError(
                f"sources must be a non-empty sequence of source indices, got "
                f"{sources!r}"
            )
        if keep.min() < 0 or keep.max() >= n_src or np.unique(keep).size != keep.size:
            raise InputError(
                f"sources must be distinct indices in [0, {n_src - 1}], got {sources!r}"
            )
    A, S_rows, _ = match(A0, A, S_rows)
    angles = _angles(A0, A)
    energies = _bss_energies(S0_rows, S_rows, noise)
    result = {"SAD": float(-10.0 * np.log10(np.mean(angles)))}
    result.update(_ratios(*(e[keep] for e in energies), has_noise=noise is not None))
    result["SAD_per_source"] = [float(v) for v in -10.0 * np.log10(angles)]
    return result
