"""Photon counts: sGMCA under Poisson noise by reweighted least squares.

:func:`separate_counts` is what ``separate(..., noise="poisson")`` runs. Poisson
counts x ~ P(lambda) have variance lambda, so the Gaussian solver is run with a
noise variance that follows the intensity (iteratively reweighted least squares
with the model's variance, as pGMCA linearises the Poisson likelihood; the
choice and what it measured are in docs/solver.md, "Photon counts"):

1. pass 1: the Gaussian solver with ``variance=`` the counts smoothed by a
   ``BOX`` x ``BOX`` mean in each channel (the local intensity without a model),
   floored;
2. each further pass: the solver again from the previous pass's mixing matrix,
   with ``variance = max(A S, FLOOR * mean count)`` from the previous model.

The variance map gives both the least-squares weights (each channel's median
variance) and the per-pixel thresholds ``k sigma(p)`` of the source update
(:mod:`sgmca_fast._noisemap`). The sources returned are then made once more from
the last A (:func:`channel_sources`): with one threshold per source and scale
from each channel's mean model variance, which keeps the bright pixels'
coefficients that per-pixel thresholds shrink or cut (docs/results.md, "Photon
counts: the final sources").
"""

from dataclasses import replace

import numpy as np
from scipy import ndimage

from ._validation import InputError, integer, real_array

__all__ = ["BOX", "FINAL_HARD", "FLOOR", "PASSES", "channel_sources",
           "check_counts", "model_variance", "separate_counts", "smoothed_variance"]

BOX = 5
"""Side (pixels) of the box mean that estimates the intensity for pass 1."""

FLOOR = 0.1
"""Variance floor, as a fraction of the mean count per voxel: a pixel whose model
is zero still has a finite weight (its counts, if any, are not infinitely
significant)."""

PASSES = 2
"""Solver runs by default: the smoothed counts, then one model reweighting."""

PIXEL_WEIGHTS = False
"""Divide each pixel by its noise scale (:func:`pixel_scale`) before each pass."""

FINAL_HARD = False
"""Hard thresholds for the final sources (:func:`channel_sources`): their
least-squares values on their support, without the soft thresholds' shrinkage.
False: soft, reweighted as the solver's final stage is."""

# what the final sources' run takes from the caller's keywords (the rest, e.g.
# models, fixed spectra or starts, concerns A, which it keeps)
_FINAL_KEYWORDS = ("nscales", "k", "nonneg_S", "random_state")


def check_counts(X):
    """Check photon counts for the Poisson solver and return them as float64.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Counts (photons per voxel): non-negative whole numbers, any integer or
        float dtype; NaN (or a masked array's masked entries) marks a missing
        voxel.

    Returns
    -------
    (J, H, W) or (J, P) ndarray of float64
        The counts, NaN where missing.

    Raises
    ------
    InputError
        Negative values, values with a fraction (not counts), inf.
    """
    if np.ma.isMaskedArray(X):
        X = np.ma.asarray(X, dtype=np.float64).filled(np.nan)
    X = np.array(real_array(X, "X", finite=False), dtype=np.float64)
    observed = X[~np.isnan(X)]
    if np.isinf(observed).any():
        raise InputError("X holds inf values; counts must be finite")
    negative = int(np.count_nonzero(observed < 0))
    if negative:
        raise InputError(f"noise='poisson' needs photon counts, but X holds "
                         f"{negative} negative value(s) (min {observed.min():g})")
    fraction = int(np.count_nonzero(observed != np.floor(observed)))
    if fraction:
        raise InputError(
            f"noise='poisson' needs photon counts, but X holds {fraction} value(s) "
            "that are not whole numbers; for scaled or background-subtracted "
            "data use noise='gaussian' with variance= (e.g. the scaled counts "
            "times the scale)")
    return X


def variance_floor(X, observed):
    """Return the variance floor: FLOOR times the mean count of the observed voxels."""
    mean = float(X[observed].mean()) if observed.any() else 0.0
    return FLOOR * mean if mean > 0 else 1.0


def smoothed_variance(X, observed=None):
    """Return pass 1's variance: each channel's counts smoothed by a BOX mean, floored.

    Parameters
    ----------
    X : (J, H, W) or (J, P) ndarray
        Counts (NaN where missing).
    observed : bool ndarray of X's shape, optional
        True where a voxel is observed (default: not NaN). Missing voxels are
        left out of the means (normalised convolution).

    Returns
    -------
    ndarray of X's shape
        Variance estimate (counts^2 = counts), finite and >= the floor
        (``FLOOR`` times the mean count) everywhere, missing voxels included.
    """
    if observed is None:
        observed = ~np.isnan(X)
    filled = np.where(observed, X, 0.0)
    weight = observed.astype(np.float64)
    if X.ndim == 3:
        size = (1, BOX, BOX)
        total = ndimage.uniform_filter(filled, size, mode="mirror")
        count = ndimage.uniform_filter(weight, size, mode="mirror")
    else:  # (J, P): the same number of voxels along the samples
        total = ndimage.uniform_filter1d(filled, BOX * BOX, axis=1, mode="mirror")
        count = ndimage.uniform_filter1d(weight, BOX * BOX, axis=1, mode="mirror")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 1e-12, total / np.maximum(count, 1e-12), 0.0)
    return np.maximum(mean, variance_floor(X, observed))


def model_variance(A, S, floor):
    """Return a further pass's variance: the model intensity ``A S``, floored.

    Parameters
    ----------
    A : (J, I) ndarray
        Mixing matrix of the previous pass.
    S : (I, H, W) or (I, P) ndarray
        Its sources, in counts per unit of A (NaN outside the fitted box).
    floor : float
        Smallest variance (counts).

    Returns
    -------
    (J, H, W) or (J, P) ndarray
        ``max(A S, floor)``, the floor where S is NaN.
    """
    n_src = S.shape[0]
    model = (A @ S.reshape(n_src, -1)).reshape((A.shape[0],) + S.shape[1:])
    return np.where(np.isnan(model), floor, np.maximum(model, floor))


def pixel_scale(var):
    """Return each pixel's noise scale: the root of its mean variance over channels.

    Parameters
    ----------
    var : (J, H, W) or (J, P) ndarray
        Variance (counts), positive.

    Returns
    -------
    (1, H, W) or (1, P) ndarray
        ``sqrt(mean_j var)``, to divide the data by (broadcasts over channels).
    """
    return np.sqrt(var.mean(axis=0, keepdims=True))


def channel_sources(solve, X, result, var, observed, mask=None, hard=None, **kwargs):
    """Return the sources (I, ...) given ``result.A``, thresholded per channel.

    The Gaussian solver's final stage alone (``blind_stage=False`` from
    ``result.A``) with ``variance=`` each channel's mean of ``var`` over its
    observed voxels (hard thresholds when :data:`FINAL_HARD`). Per-pixel
    thresholds follow the Poisson variance, so they are highest in the bright
    pixels, where the sources' coefficients carry most of their energy; at 1e7 and
    1e8 photons on Cas A they cost 1-3 dB of SDR against one level per channel
    (docs/results.md, "Photon counts: the final sources").

    Parameters
    ----------
    solve : callable
        The Gaussian solver (as for :func:`separate_counts`).
    X : (J, H, W) or (J, P) ndarray
        Counts, NaN where missing.
    result : Separation
        The last pass's result: its A is kept.
    var : ndarray of X's shape
        The last model's variance (:func:`model_variance`).
    observed : bool ndarray of X's shape
        True where a voxel is observed.
    mask : optional
        The caller's mask, passed on.
    hard : bool, optional
        Hard thresholds; None: :data:`FINAL_HARD`.
    **kwargs
        The caller's keywords; only ``nscales``, ``k``, ``nonneg_S`` and
        ``random_state`` are used.

    Returns
    -------
    S : ndarray
        The sources, of ``result.S``'s shape.
    seconds : float
        The run's time.
    """
    var_channel = np.array([v[o].mean() if o.any() else 1.0 for v, o in
                            zip(var.reshape(var.shape[0], -1),
                                observed.reshape(var.shape[0], -1), strict=True)])
    final = solve(X, result.A.shape[1], None, variance=var_channel, mask=mask,
                  A_init=result.A, blind_stage=False,
                  l1=not (FINAL_HARD if hard is None else hard),
                  **{key: kwargs[key] for key in _FINAL_KEYWORDS if key in kwargs})
    return final.S, final.timings["total"]


def separate_counts(solve, X, n_sources, models=None, *, passes=PASSES,
                    pixel_weights=PIXEL_WEIGHTS, noise_std=None, variance=None,
                    mask=None, A_init=None, final_sources=True, **kwargs):
    """Separate a cube of photon counts: the Gaussian solver, reweighted.

    Parameters
    ----------
    solve : callable
        The Gaussian solver, ``solve(X, n_sources, models, variance=...,
        mask=..., A_init=..., **kwargs)`` returning a ``Separation``
        (``sgmca_fast._solver.separate`` passes itself).
    X : (J, H, W) or (J, P) array_like
        Counts (see :func:`check_counts`).
    n_sources : int or "auto"
        Number of sources; "auto" is resolved by pass 1.
    models : dict or list, optional
        Spectral models, as for ``separate``.
    passes : int, optional
        Solver runs (>= 1): 1 is the smoothed-counts variance alone.
    pixel_weights : bool, optional
        Run each pass on ``X / w`` with ``w`` each pixel's noise scale
        (:func:`pixel_scale`; ``X / w = A (S / w)`` keeps the mixing matrix), so
        that the mixing update, which weights every pixel alike, sees noise of
        about one level; S is scaled back.
    noise_std, variance
        Must be None: the noise comes from the counts.
    mask : bool array_like of X's shape, optional
        True where a voxel is missing.
    A_init : (J, I) array_like, optional
        Starting mixing matrix of pass 1.
    final_sources : bool, optional
        Replace the last pass's sources by :func:`channel_sources` (the
        default); False returns them as the last pass made them.
    **kwargs
        Every other keyword of ``separate``.

    Returns
    -------
    Separation
        The last pass's result (its A, mapping, model fit and confidence), with
        the sources of :func:`channel_sources`; ``timings["total"]`` is the time
        of all passes and the final sources, ``timings["passes"]`` each pass's,
        ``timings["final_sources"]`` the last step's, ``history["passes"]`` the
        number of passes.

    Raises
    ------
    InputError
        ``noise_std`` or ``variance`` given, counts that are not counts
        (:func:`check_counts`), ``passes`` < 1, and whatever ``separate`` refuses.
    """
    if noise_std is not None or variance is not None:
        raise InputError("noise='poisson' takes the noise from the counts: give "
                         "neither noise_std nor variance")
    passes = integer(passes, "passes", 1)
    X = check_counts(X)
    observed = ~np.isnan(X)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape == X.shape:
            observed &= ~mask.astype(bool)
    # (a mask of another shape is refused by the solver, before any work)
    floor = variance_floor(X, observed)
    var = smoothed_variance(X, observed)
    seconds, estimate = [], None
    for _ in range(passes):
        if pixel_weights:  # X / w = A (S / w): the same A, flatter noise
            w = pixel_scale(var)
            result = solve(X / w, n_sources, models, variance=var / w**2,
                           mask=mask, A_init=A_init, **kwargs)
            result = replace(result, S=result.S * w)
        else:
            result = solve(X, n_sources, models, variance=var, mask=mask,
                           A_init=A_init, **kwargs)
        seconds.append(result.timings["total"])
        estimate = estimate or result.n_sources_estimate  # "auto": pass 1's
        n_sources = result.A.shape[1]
        A_init = result.A
        if "starts" in kwargs:  # the later passes refine the first's A
            kwargs["starts"] = 1
        if models and kwargs.get("max_iter_semiblind", 1) > 0:
            # sGMCA: pass 1's A is separated; the semi-blind stage refines it
            # under the new variance (a second blind stage gained nothing)
            kwargs["blind_stage"] = False
        var = model_variance(result.A, result.S, floor)
    S, seconds_final = result.S, 0.0
    if final_sources:
        S, seconds_final = channel_sources(solve, X, result, var, observed, mask,
                                           **kwargs)
    timings = {**result.timings, "total": float(sum(seconds) + seconds_final),
               "passes": seconds, "final_sources": seconds_final}
    history = {**result.history, "passes": passes}
    return replace(result, S=S, timings=timings, history=history,
                   n_sources_estimate=estimate)
