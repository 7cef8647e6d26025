"""Noise level and number of sources estimated from the data themselves.

:func:`estimate_noise_std` gives one Gaussian noise std per channel, from the median
absolute deviation (MAD) of the finest starlet detail scale of each channel
(docs/algorithm.md, section 1): at that scale smooth or sparse signals leave most
coefficients near zero, so the MAD measures the noise. :func:`estimate_n_sources`
counts the sources as the eigenvalues of the noise-whitened data that rise above the
Marchenko-Pastur edge of pure noise, or with HySime's criterion (Bioucas-Dias and
Nascimento 2008, IEEE TGRS 46, 2435).

Missing voxels are NaN values of ``X`` or True values of ``mask`` (inf is an error).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from . import starlet
from ._validation import InputError, InputTypeError, choice, integer, real_array

__all__ = ["NSourcesEstimate", "estimate_n_sources", "estimate_noise_std"]

_MAD_TO_STD = 0.6744897501960817  # MAD of a unit Gaussian: Phi^-1(3/4)
_SUPPORT = 5  # samples spanned by the scale-0 B3 kernel [1, 4, 6, 4, 1] / 16
# Relative std of the MAD estimate of sigma on the finest starlet scale of white
# noise, times sqrt(number of coefficients): measured on 400 draws of 128 x 128
# noise, 1.25 for images and 1.32 for 1-D signals (1.17 for independent samples;
# neighbouring coefficients share samples).
_MAD_SPREAD = 1.3
_MAX_ROUNDS = 5  # count / re-estimate rounds when the noise is estimated
_SHAPE_TEXT = "a cube (J, H, W) or a matrix (J, P)"
_EIGH_MAX = 1000  # channels: above, the refinement's top directions by Lanczos


def _data_and_missing(X, mask, keep_float32=False) -> tuple[np.ndarray, np.ndarray]:
    """X as float64 (float32 kept if asked) and the map of its missing voxels."""
    x = real_array(X, "X", ndim=(2, 3), finite=False, shape_text=_SHAPE_TEXT,
                   keep_float32=keep_float32)
    if np.any(np.isinf(x)):
        raise InputError(
            "X contains inf values; only NaN (or mask=True) marks missing data"
        )
    missing = np.isnan(x)
    if mask is not None:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise InputTypeError(
                f"mask must be a boolean array (True = missing), got dtype {m.dtype}"
            )
        if m.shape != x.shape:
            raise InputError(
                f"mask must have the shape of X {x.shape}, got shape {m.shape}"
            )
        missing = missing | m
    return x, missing


def _axis_kind(axis_kind, ndim: int) -> str:
    kind = choice(axis_kind, "axis_kind", ("auto", "1d", "2d"))
    if kind == "auto":
        return "2d" if ndim == 3 else "1d"
    if kind == "2d" and ndim != 3:
        raise InputError(
            "axis_kind='2d' needs a cube (J, H, W); a matrix (J, P) has no image "
            "axes: use '1d' or 'auto'"
        )
    return kind


def _median_filled(x, missing) -> np.ndarray:
    """X with each channel's missing voxels set to the median of its present ones."""
    present = np.where(missing, np.nan, x)
    with warnings.catch_warnings():  # all-NaN channels: NaN median, handled later
        warnings.simplefilter("ignore", RuntimeWarning)
        fill = np.nanmedian(present.reshape(x.shape[0], -1), axis=1)
    fill = np.where(np.isnan(fill), 0.0, fill).astype(x.dtype, copy=False)
    return np.where(missing, fill.reshape((-1,) + (1,) * (x.ndim - 1)), x)


def _finest_scale(filled, missing, kind) -> tuple[np.ndarray, np.ndarray, float]:
    """Finest detail scale of each channel, its usable coefficients, its noise norm.

    ``filled`` is X with its missing voxels filled; a coefficient is usable when no
    missing voxel and no image border lies within the kernel's support (the mirror
    boundary changes the noise variance there).
    """
    x = filled
    if kind == "2d":
        w0 = starlet.forward(filled, 1)[:, 0]
        size = (1, _SUPPORT, _SUPPORT)
        norm = starlet.scale_norms(x.shape[1:], 1)[0]
    else:  # along the last axis: pixels of a matrix, rows of a cube
        w0 = starlet.forward1d(filled, 1)[..., 0, :]
        size = (1,) * (x.ndim - 1) + (_SUPPORT,)
        norm = starlet.scale_norms((x.shape[-1],), 1)[0]
    # cval=1: samples beyond the edges count as missing, which drops the border
    bad = ndimage.maximum_filter(missing.astype(np.uint8), size=size,
                                 mode="constant", cval=1).astype(bool)
    return w0, ~bad, float(norm)


def estimate_noise_std(X, mask=None, axis_kind: str = "auto",
                       rank: int = 0) -> np.ndarray:
    """Per-channel Gaussian noise std, from the MAD of the finest starlet scale.

    For each channel j, ``sigma_j = MAD(w0_j) / 0.6745 / norm_0``, where w0_j is
    the finest detail scale of the channel's image (or signal), MAD the median
    absolute deviation from the median, and ``norm_0`` the std of that scale for
    unit white noise (:func:`sgmca_fast.starlet.scale_norms`). Coefficients within
    two samples of the border or of a missing voxel are left out, so missing data
    and the mirror boundary do not bias the estimate.

    When the noise also varies across pixels, the estimate is the channel's median
    level (the MAD of the mixture), not its mean or its r.m.s.; give the variance
    map to the solver instead when it is known. Sources with much energy on the
    finest scale (sharp edges or point sources covering most pixels) bias the
    estimate up; ``rank`` removes that bias when the data are a mixture of a
    known number of sources.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        The data: J channels of H x W images or of P pixels. NaN marks missing
        voxels; inf is an error. float32 data are worked on in float32 (no
        float64 copy of the cube; the J x J products and the result in float64);
        other dtypes in float64.
    mask : (J, H, W) or (J, P) bool array_like, optional
        True where a voxel is missing (in addition to the NaN voxels).
    axis_kind : {"auto", "2d", "1d"}, optional
        ``"2d"``: the 2-D starlet of each channel image (cubes only). ``"1d"``: the
        1-D starlet along the last axis (the P pixels of a matrix, in their order,
        or the rows of a cube). ``"auto"`` (default): ``"2d"`` for cubes, ``"1d"``
        for matrices.
    rank : int, optional
        Number of spectral components (sources) to remove from the finest scale
        before the MAD (0, the default: none). The sources' finest-scale
        coefficients span ``rank`` directions of the channel space; their top
        singular directions are removed and the residual's MAD corrected for the
        noise removed with them, iterated until the estimate changes by less than
        0.2%. Missing voxels are then filled from the low-rank fit.

    Returns
    -------
    noise_std : (J,) ndarray of float64
        In the units of X. NaN for a channel with no usable coefficient (all or
        nearly all its voxels missing, e.g. a dead channel), with a
        ``RuntimeWarning`` that lists those channels.

    Raises
    ------
    InputError
        If no channel has a usable coefficient (images smaller than 5 x 5, or
        everything missing).
    """
    x, missing = _data_and_missing(X, mask, keep_float32=True)
    kind = _axis_kind(axis_kind, x.ndim)
    sigma, counts = _noise_std_and_counts(x, missing, kind)
    dead = counts == 0
    rank = integer(rank, "rank", minimum=0, maximum=int(np.sum(~dead)) - 1)
    if rank:
        sigma = _refine_low_rank(x, missing, sigma, rank, kind)
    if dead.any():
        listed = np.flatnonzero(dead)
        shown = ", ".join(str(j) for j in listed[:10])
        more = f" and {listed.size - 10} more" if listed.size > 10 else ""
        warnings.warn(
            f"{listed.size} channel(s) have no usable coefficient (all or nearly all "
            f"voxels missing): channels {shown}{more}; their noise std is NaN",
            RuntimeWarning, stacklevel=2,
        )
    return sigma


def _noise_std_and_counts(x, missing, kind) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel MAD noise std (NaN where unusable) and usable coefficient counts."""
    w0, usable, norm = _finest_scale(_median_filled(x, missing), missing, kind)
    counts = usable.reshape(x.shape[0], -1).sum(axis=1)
    dead = counts == 0
    if dead.all():
        raise InputError(
            f"no usable finest-scale coefficient in any channel of X {x.shape}: "
            "every coefficient is within 2 samples of the border or of a missing "
            "voxel (images must be at least 5 x 5, signals at least 5 long)"
        )
    sigma = np.full(x.shape[0], np.nan)
    sigma[~dead] = _mad(w0, usable, ~dead) / norm
    return sigma, counts


def _mad(w, usable, rows) -> np.ndarray:
    """MAD std (MAD / 0.6745) of each selected row of w over its usable entries."""
    live = np.where(usable, w, np.nan).reshape(w.shape[0], -1)[rows]
    centre = np.nanmedian(live, axis=1, keepdims=True)
    return np.nanmedian(np.abs(live - centre), axis=1) / _MAD_TO_STD


def _top_eigvecs(y, rank) -> tuple[np.ndarray, np.ndarray]:
    """Top ``rank`` left singular vectors of y (J, n) and all eigenvalues of y y^T.

    From the smaller Gram matrix (cheaper than an SVD of the long matrix); the
    eigenvalues are in decreasing order, min(J, n) of them.
    """
    if y.shape[0] <= y.shape[1]:
        # float32 y: the Gram by sgemm, its eigenvectors in float64
        eig, vec = np.linalg.eigh((y @ y.T).astype(np.float64, copy=False))
        return vec[:, ::-1][:, :rank], eig[::-1].copy()
    eig, vec = np.linalg.eigh(y.T @ y)
    eig, vec = eig[::-1].copy(), vec[:, ::-1][:, :rank]
    u = y @ vec / np.sqrt(np.maximum(eig[:rank], np.finfo(float).tiny))
    return u, eig


def _low_rank_fit(y, rank) -> tuple[np.ndarray, np.ndarray]:
    """Best rank-``rank`` approximation of y (J, n), of y's dtype, and leverages."""
    u = _top_eigvecs(y, rank)[0]
    ud = u.astype(y.dtype, copy=False)
    return ud @ (ud.T @ y), np.sum(u**2, axis=1)


def _refine_low_rank(x, missing, sigma, rank, kind, n_iter=10, tol=2e-3):
    """Per-channel MAD std after removing the rank-``rank`` spectral subspace.

    The sources' finest-scale coefficients are ``A w0(S)``, of rank I in the
    channel axis: removing the top ``rank`` singular directions of the whitened
    coefficients leaves noise, whose per-channel variance shrinks by the channel's
    leverage (hence the division by sqrt(1 - leverage)). Missing voxels are filled
    from the low-rank fit of the whitened data, so every coefficient column exists;
    the MAD still uses only the usable coefficients. Iterated from ``sigma`` (live
    channels only: a zero std, a constant or quantised channel, stays zero) until
    the relative change is below ``tol``.
    """
    live = sigma > 0  # False for NaN
    if live.sum() <= rank:
        return sigma
    xs, miss = x[live], missing[live]
    shape_j = (-1,) + (1,) * (x.ndim - 1)
    filled = _median_filled(xs, miss)
    s = sigma[live].copy()
    dt = x.dtype  # float32 data: the cube-sized arrays stay float32
    for _ in range(n_iter):
        sd = s.astype(dt, copy=False)
        white = (filled / sd.reshape(shape_j)).reshape(s.size, -1)
        fit = _low_rank_fit(white, rank)[0].reshape(xs.shape) * sd.reshape(shape_j)
        filled = np.where(miss, fit, xs)
        w0, usable, norm = _finest_scale(filled, miss, kind)
        factor = _refine_factor(w0, usable, s, norm, rank)
        s = s * factor
        if np.max(np.abs(factor - 1)) < tol:
            break
    out = sigma.copy()  # NaN and zero channels as they were
    out[live] = s
    return out


def _refine_factor(w0, usable, s, norm, rank) -> np.ndarray:
    """One round of the low-rank refinement: the factor on each channel's std.

    ``w0`` (J, ...) the finest-scale coefficients of the live channels, ``usable``
    their usable entries (same shape), ``s`` (J,) the current std, ``norm`` the
    scale's noise norm: the MAD of the whitened coefficients with their top
    ``rank`` directions removed, divided by sqrt(1 - leverage).
    """
    # float32 coefficients stay float32 (the divisor cast to their dtype)
    white_w0 = w0.reshape(s.size, -1) / (s[:, None] * norm).astype(w0.dtype,
                                                                    copy=False)
    fit_w0, leverage = _low_rank_fit(white_w0, rank)
    resid = (white_w0 - fit_w0).reshape(usable.shape)
    return _mad(resid, usable, slice(None)) / np.sqrt(1 - leverage)


def _top_directions(gram, rank) -> np.ndarray:
    """Top ``rank`` eigenvectors (J, rank) of a symmetric PSD (J, J) matrix.

    ``eigh`` (as :func:`_top_eigvecs`) up to 1000 channels; Lanczos
    (``scipy.sparse.linalg.eigsh``) above, where a full ``eigh`` a round would
    cost of order J^3.
    """
    if gram.shape[0] <= _EIGH_MAX:
        return np.linalg.eigh(gram)[1][:, ::-1][:, :rank]
    from scipy.sparse.linalg import eigsh

    start = np.ones(gram.shape[0])  # deterministic
    eig, vec = eigsh(gram, k=rank, which="LA", v0=start)
    return vec[:, np.argsort(eig)[::-1]]


def _refine_fixed(w0, usable, sigma, norm, rank, n_iter=10, tol=2e-3):
    """:func:`_refine_low_rank` for complete data from their finest scale ``w0``.

    Without missing voxels the finest scale does not change between rounds, so
    the refinement needs only ``w0`` (J, n) and its usable entries (J, n): all
    the coefficients, or a subset of pixels (what a streamed pass keeps). Its
    Gram matrix is made once (each round whitens it), and the residual is formed
    a few channels at a time: beyond w0, memory of order ``rank`` x n.
    """
    live = sigma > 0  # False for NaN
    if live.sum() <= rank:
        return sigma
    w, ok = (w0, usable) if live.all() else (w0[live], usable[live])
    gram = w @ w.T
    s = sigma[live].copy()
    step = max(1, 2**22 // max(w.shape[1], 1))  # channels per residual block
    for _ in range(n_iter):
        scale = s * norm
        u = _top_directions(gram / np.outer(scale, scale), rank)
        coef = (u / scale[:, None]).T @ w  # u^T of the whitened w0, (rank, n)
        factor = np.empty(s.size)
        for a in range(0, s.size, step):
            b = slice(a, a + step)
            resid = w[b] / scale[b, None] - u[b] @ coef
            factor[b] = _mad(resid, ok[b], slice(None))
        factor /= np.sqrt(1 - np.sum(u**2, axis=1))
        s = s * factor
        if np.max(np.abs(factor - 1)) < tol:
            break
    out = sigma.copy()
    out[live] = s
    return out


@dataclass(frozen=True)
class NSourcesEstimate:
    """The number of sources found by :func:`estimate_n_sources`, with its evidence.

    Attributes
    ----------
    n_sources : int
        The estimate.
    eigenvalues : (min(J', P'),) ndarray
        Eigenvalues of the whitened ``Y Y^T`` (sum of squares over the P' pixels
        used, in units of the noise variance), in decreasing order; pure noise gives
        values near P'.
    threshold : float
        The noise floor: eigenvalues above it count as sources.
    evidence : str
        One line saying what was counted against what.
    method : str
        ``"mp"`` or ``"hysime"``.
    n_channels, n_pixels : int
        J' and P', the channels and pixels used (complete, not dead).
    noise_std : (J,) ndarray or None
        With the noise estimated (neither ``noise_std`` nor ``variance`` given):
        the per-channel std, in the data's units, that the count whitened with
        (NaN for dead channels); :func:`sgmca_fast.separate` with
        ``n_sources="auto"`` uses it instead of estimating the noise again.
        None when the noise was given.
    noise_rank : int
        The spectral directions removed before that noise estimate (the
        ``rank`` of :func:`estimate_noise_std`; 0 for the plain MAD).
    """

    n_sources: int
    eigenvalues: np.ndarray
    threshold: float
    evidence: str
    method: str
    n_channels: int
    n_pixels: int
    noise_std: np.ndarray | None = None
    noise_rank: int = 0


def _per_channel(value, name: str, n_channels: int) -> np.ndarray:
    """Return a scalar or (J,) noise level as a (J,) float64 array (NaN allowed)."""
    arr = real_array(value, name, ndim=(0, 1), finite=False,
                     shape_text="a number or one value per channel (J,)")
    if arr.ndim == 1 and arr.shape[0] != n_channels:
        raise InputError(f"{name} must have one value per channel ({n_channels}), "
                         f"got {arr.shape[0]}")
    return np.broadcast_to(arr, (n_channels,)).astype(np.float64)


def _noise_cube(x, missing, noise_std, variance):
    """Per-voxel noise std (a broadcast view) and the missing map updated with it."""
    shape_j = (-1,) + (1,) * (x.ndim - 1)
    if variance is not None:
        var = real_array(variance, "variance", finite=False)
        if var.ndim <= 1:
            var = _per_channel(var, "variance", x.shape[0]).reshape(shape_j)
        elif var.shape != x.shape:
            raise InputError("variance must be a number, one value per channel "
                             f"or the shape of X {x.shape}, got shape {var.shape}")
        std = np.sqrt(np.broadcast_to(var, x.shape))
        missing = missing | np.isnan(std)
        where = "variance"
    else:
        sigma = _per_channel(noise_std, "noise_std", x.shape[0])
        std = np.broadcast_to(sigma.reshape(shape_j), x.shape)
        missing = missing | np.isnan(std)
        where = "noise_std"
    used = std[~missing]
    if used.size and not (np.all(np.isfinite(used)) and used.min() > 0):
        raise InputError(f"the noise level ({where}) must be positive and finite "
                         "on the voxels used; a zero or estimated-zero level "
                         "(constant or quantised channels) cannot be whitened: "
                         "pass noise_std or variance")
    return std, missing


def _whitened_matrix(x, std, missing) -> tuple[np.ndarray, int]:
    """Whitened (J', P') matrix of the complete pixels of the live channels."""
    n_chan = x.shape[0]
    miss = missing.reshape(n_chan, -1)
    live = ~miss.all(axis=1)
    complete = ~miss[live].any(axis=0)
    y = (x.reshape(n_chan, -1)[live][:, complete]
         / std.reshape(n_chan, -1)[live][:, complete])
    if min(y.shape) < 2:
        raise InputError(
            f"only {y.shape[1]} pixel(s) have every one of the {y.shape[0]} live "
            "channels present; at least 2 complete pixels and 2 channels are needed "
            "(drop the channels with many missing voxels)"
        )
    return y, int(n_chan - live.sum())


def _mp_floor(n_chan: int, n_pix: int, count) -> float:
    """Top eigenvalue of a whitened white-noise Gram matrix, with margins.

    Johnstone's (2001) centring and scale of the Tracy-Widom law (its 99th
    percentile, 2.02), times 1 + z s where s is the relative error of an estimated
    variance (2 x the MAD spread / sqrt(count)) and z = sqrt(2 ln J) the typical
    largest of J standard errors: the top noise eigenvalue scales with the
    largest per-channel error.
    """
    a, b = math.sqrt(n_pix - 0.5), math.sqrt(n_chan - 0.5)
    centre = (a + b) ** 2
    scale = (a + b) * (1 / a + 1 / b) ** (1 / 3)
    floor = centre + 2.02 * scale
    if count is not None:
        floor *= 1 + math.sqrt(2 * math.log(n_chan)) * 2 * _MAD_SPREAD / math.sqrt(
            count)
    return floor


def estimate_n_sources(X, noise_std=None, variance=None, mask=None,
                       max_sources: int | None = None, method: str = "mp",
                       axis_kind: str = "auto") -> NSourcesEstimate:
    """Count the sources: eigenvalues of the noise-whitened data above the floor.

    Each voxel is divided by its noise std, so that pure noise becomes white with
    unit variance; the eigenvalues of ``Y Y^T`` over the P' complete pixels are then
    compared with the noise floor:

    ``"mp"`` (default)
        The largest eigenvalue of white noise: the Marchenko-Pastur edge
        ``(sqrt(P') + sqrt(J'))**2`` plus the Tracy-Widom 99th percentile, and,
        when the noise is estimated, a margin for the estimate's error. Sources
        whose whitened energy is below about ``sqrt(J' P')`` cannot be told from
        noise by any second-order method and are not counted.
    ``"hysime"``
        HySime's criterion (Bioucas-Dias and Nascimento 2008) in whitened
        coordinates: an eigen-direction counts when its power exceeds twice its
        noise power, ``eigenvalue > 2 P'``. It keeps the subspace that minimises
        the projection error, not every detectable source: weak sources are left
        out.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        The data. NaN marks missing voxels.
    noise_std : float or (J,) array_like, optional
        Gaussian noise std per channel (units of X); NaN marks a dead channel.
    variance : float, (J,) or the shape of X, array_like, optional
        Noise variance per channel or per voxel (units of X squared); NaN marks a
        missing voxel. Give ``noise_std`` or ``variance``, not both; with neither,
        the noise is estimated with :func:`estimate_noise_std`, first plain, then
        with ``rank`` set to the count found, until the count is stable.
    mask : bool array_like of the shape of X, optional
        True where a voxel is missing.
    max_sources : int, optional
        Upper bound on the answer (default: no bound but min(J', P') - 1).
    method : {"hysime", "mp"}, optional
        The noise floor, above.
    axis_kind : {"auto", "2d", "1d"}, optional
        The starlet used to estimate the noise (:func:`estimate_noise_std`).

    Returns
    -------
    NSourcesEstimate
        The count, the whitened eigenvalues, the floor and a line of evidence.

    Notes
    -----
    Channels that are entirely missing (or whose noise is NaN) are dropped; then
    only the pixels where every remaining channel is present are used, so
    scattered missing voxels cost whole pixels: with many of them, drop the worst
    channels first.
    """
    x, missing = _data_and_missing(X, mask)
    kind = _axis_kind(axis_kind, x.ndim)
    method = choice(method, "method", ("hysime", "mp"))
    if max_sources is not None:
        max_sources = integer(max_sources, "max_sources", minimum=1)
    if noise_std is not None and variance is not None:
        raise InputError("give noise_std or variance, not both")
    if noise_std is not None or variance is not None:
        std, used = _noise_cube(x, missing, noise_std, variance)
        return _count(x, std, used, None, method, max_sources)
    # Estimated noise: the plain MAD is biased up by the sources' fine structure;
    # re-estimate it with the counted sources removed until the count is stable.
    plain, counts = _noise_std_and_counts(x, missing, kind)
    count = int(counts[counts > 0].min())
    sigma, rank = plain, 0
    for _ in range(_MAX_ROUNDS):
        std, used = _noise_cube(x, missing, sigma, None)
        found = dataclasses.replace(_count(x, std, used, count, method, max_sources),
                                    noise_std=sigma, noise_rank=rank)
        if found.n_sources in (rank, 0) or found.n_sources >= np.sum(counts > 0):
            break
        rank = found.n_sources
        sigma = _refine_low_rank(x, missing, plain, rank, kind)
    return found


def _count(x, std, missing, count, method, max_sources) -> NSourcesEstimate:
    """Count the whitened eigenvalues above the floor; ``count`` as _mp_floor's."""
    y, n_dead = _whitened_matrix(x, std, missing)
    n_chan, n_pix = y.shape
    eig = _top_eigvecs(y, 0)[1]
    cap = min(n_chan, n_pix) - 1
    if max_sources is not None:
        cap = min(cap, max_sources)
    floor = _mp_floor(n_chan, n_pix, count) if method == "mp" else 2.0 * n_pix
    above = int(np.sum(eig > floor))
    n = min(above, cap)
    noise_text = "estimated" if count is not None else "given"
    evidence = (
        f"{n} source(s): {above} whitened eigenvalue(s) above the "
        f"{'Marchenko-Pastur edge' if method == 'mp' else 'HySime floor 2P'} "
        f"{floor:.4g} (J={n_chan} channels, P={n_pix} complete pixels, noise "
        f"{noise_text}"
        + (f", {n_dead} dead channel(s) dropped" if n_dead else "")
        + f"); next eigenvalue {eig[n]:.4g} = {eig[n] / floor:.3g} x floor"
        + (f"; capped at max_sources={cap}" if above > cap else "")
    )
    return NSourcesEstimate(n_sources=n, eigenvalues=eig, threshold=float(floor),
                            evidence=evidence, method=method, n_channels=n_chan,
                            n_pixels=n_pix)
