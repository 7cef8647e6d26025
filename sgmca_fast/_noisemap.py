"""The solver's noise: given, from a variance map, or estimated; the source count.

:func:`noise_plan` turns the ``noise_std`` / ``variance`` arguments of
:func:`~sgmca_fast.separate` into a :class:`NoisePlan`: one noise std per channel
(the least-squares weights ``1 / sigma_j^2``) and, when the variance varies across
the image, the per-pixel variance map from which the thresholds are set
(:func:`map_thresholds`). With no noise information the per-channel std is
estimated from the data (:func:`sgmca_fast.noise.estimate_noise_std`, with the
sources' subspace removed). :func:`resolve_n_sources` handles
``n_sources="auto"`` (:func:`sgmca_fast.noise.estimate_n_sources`).

Thresholds with a noise map (``docs/algorithm.md``, section 2): the noise of
source i at pixel p after the pseudo-inverse M is
``sigma_i(p)^2 = sum_j M_ij^2 v_j(p)``; at starlet scale s it is
``sigma_i(p) * norm_s`` (exact when the map is constant over the scale's kernel,
close for smooth maps). Soft or hard thresholding at ``k sigma(p)`` is
``sigma(p) * threshold(x / sigma(p), k)``, so the rows are normalised, thresholded
by the usual kernels with a constant ``k`` (the K-fraction selection and the
reweighting then count in units of the local noise) and scaled back.
"""

from dataclasses import dataclass

import numpy as np

from . import _kernels, _poisson, noise
from ._checks import model_list, noise_levels
from ._validation import InputError, real_array

__all__ = ["NoisePlan", "map_thresholds", "noise_plan", "resolve_n_sources"]

# An estimated channel std below this fraction of the median std (a noise-free or
# quantised channel) is raised to it: the weights 1 / sigma^2 must stay finite.
_FLOOR = 1e-6
# The fraction of empty voxels from which non-negative whole numbers are taken for
# photon counts (count_std): Cas A at 1e5-1e9 photons has 99-35% empty voxels.
COUNT_ZEROS = 0.01


@dataclass
class NoisePlan:
    """What the solver knows of the noise.

    Attributes
    ----------
    std : (J,) ndarray or None
        Noise std per channel, in the data's units (the least-squares weights are
        ``1 / std**2``); None for the per-source MAD (``noise_std="mad"``).
    variance_map : (J, P) ndarray or None
        Per-voxel noise variance when it varies across the pixels, else None.
    origin : str
        ``"given"``, ``"variance"``, ``"estimated"`` or ``"mad"``.
    """

    std: np.ndarray | None
    variance_map: np.ndarray | None
    origin: str

    def reduced(self, plan):
        """Return the plan for the channels and pixels a missing-data plan fits.

        Parameters
        ----------
        plan : sgmca_fast._missing.Plan
            The kept channels (``rows``) and the pixel box (``slices``).
        """
        std = None if self.std is None else self.std[plan.rows]
        vmap = None
        if self.variance_map is not None:
            full = self.variance_map.reshape(plan.shape)
            vmap = full[(plan.rows,) + plan.slices].reshape(len(plan.rows), -1)
        return NoisePlan(std, vmap, self.origin)

    def scaled(self, e):
        """Return the plan for the data multiplied by ``2**-e`` (exact)."""
        if not e:
            return self
        return NoisePlan(
            None if self.std is None else np.ldexp(self.std, -e),
            None if self.variance_map is None else np.ldexp(self.variance_map, -2 * e),
            self.origin,
        )


def check_noise(noise_std, variance, shape):
    """Check ``noise_std`` / ``variance`` (no estimate yet).

    Returns
    -------
    noise_std : (J,) ndarray, "mad" or None
    variance : (J,) or X-shaped ndarray, or None
    """
    J = shape[0]
    if noise_std is not None and variance is not None:
        raise InputError("give noise_std or variance, not both")
    if isinstance(noise_std, str):
        if noise_std != "mad":
            raise InputError(
                f"noise_std must be a number, one value per channel, None or 'mad', "
                f"got {noise_std!r}"
            )
        return "mad", None
    if noise_std is not None:
        return noise_levels(noise_std, J), None
    if variance is None:
        return None, None
    var = real_array(variance, "variance", finite=False)
    if var.ndim == 0:
        var = np.full(J, float(var))
    if var.shape != (J,) and var.shape != tuple(shape):
        raise InputError(
            f"variance must be a number, one value per channel ({J},) or the shape "
            f"of X {tuple(shape)}, got shape {var.shape}"
        )
    if not (np.all(np.isfinite(var)) and np.all(var > 0)):
        raise InputError("variance must be finite and positive")
    return None, var


def noise_plan(X, noise_std, variance, n_sources, missing=None, estimate=None):
    """Return the :class:`NoisePlan` of checked noise arguments (:func:`check_noise`).

    Parameters
    ----------
    X : (J, ...) ndarray
        The data (for the estimate and the map's shape).
    noise_std : (J,) ndarray, "mad" or None
    variance : (J,) or X-shaped ndarray, or None
    n_sources : int
        The sources' count: their subspace is removed before the noise estimate.
    missing : bool ndarray of X's shape, optional
        True where a voxel is missing: left out of the estimate.
    estimate : sgmca_fast.noise.NSourcesEstimate, optional
        The count of ``n_sources="auto"``: when it estimated the noise with
        ``n_sources`` directions removed (the count settled), that estimate is
        used rather than made again.
    """
    J = X.shape[0]
    if isinstance(noise_std, str):
        return NoisePlan(None, None, "mad")
    if noise_std is not None:
        return NoisePlan(noise_std, None, "given")
    if variance is None:
        counts = count_std(X, missing)
        if counts is not None:
            return NoisePlan(counts, None, "estimated")
        if (estimate is not None and estimate.noise_std is not None
                and estimate.noise_rank == _rank(n_sources, X, missing)):
            return NoisePlan(_floored(_quietest_for_constant(estimate.noise_std), X),
                             None, "estimated")
        return NoisePlan(estimated_std(X, n_sources, missing), None, "estimated")
    if variance.ndim == 1:
        return NoisePlan(np.sqrt(variance), None, "variance")
    vmap = variance.reshape(J, -1)
    level = np.median(vmap, axis=1)
    if np.all(vmap == level[:, None]):  # constant over the image: one per channel
        return NoisePlan(np.sqrt(level), None, "variance")
    return NoisePlan(np.sqrt(level), vmap, "variance")


def estimated_std(X, n_sources, missing=None):
    """Per-channel noise std of X, with ``n_sources`` directions removed first.

    The plain MAD of the finest scale is biased up by the sources' own fine
    structure at high SNR; removing their subspace (``rank``) leaves the noise.
    """
    rank = _rank(n_sources, X, missing)
    if missing is None:
        sigma = noise.estimate_noise_std(X, rank=rank)
    else:  # dead channels are not fitted: their std stays NaN
        rows = np.flatnonzero(~missing.all(axis=tuple(range(1, X.ndim))))
        sigma = np.full(X.shape[0], np.nan)
        sigma[rows] = noise.estimate_noise_std(X[rows], mask=missing[rows], rank=rank)
    return _floored(_quietest_for_constant(sigma), X)


def _quietest_for_constant(sigma):
    """Give a constant channel (estimated std 0) the quietest other channel's std.

    A std of 0 says nothing was measured (an empty channel of a count cube, a
    constant one), not that the channel is exact: floored at 1e-6 of the
    median, it would get a weight 1e12 times the others' and pin every
    spectrum to zero there, against the manifold and the other channels.
    """
    positive = sigma[sigma > 0]
    if positive.size == 0:
        return sigma
    return np.where(sigma == 0, positive.min(), sigma)


def count_std(X, missing=None):
    """Per-channel Gaussian std of a photon-count cube, or None for other data.

    Photon counts (non-negative whole numbers with at least ``COUNT_ZEROS`` of
    the observed voxels empty) have variance equal to their intensity: the
    channel's noise std is ``sqrt(mean count)``, the r.m.s. of the Poisson noise
    over its pixels, floored at ``sqrt(0.1 x the cube's mean count)`` like
    ``noise="poisson"`` (an empty channel must not get an infinite weight).
    The MAD of the finest scale fails on such cubes: where most voxels hold 0 or
    1 count it read 0.4 to 1e-6 of this level on Cas A counts (docs/solver.md,
    "Photon counts"). Integer data without empty voxels (detector units with a
    bias) are not taken for counts. Dead channels (all missing) get NaN.
    """
    observed = None if missing is None else ~missing
    values = X if observed is None else X[observed]  # a copy only with holes
    # cheapest test first: most data that are not counts have a negative value
    if (values.size == 0 or values.min() < 0
            or np.count_nonzero(values == 0) < COUNT_ZEROS * values.size
            or not np.array_equal(values, np.floor(values))):
        return None
    if observed is None:
        observed = np.ones(X.shape, bool)
    J = X.shape[0]
    total = np.where(observed, X, 0.0).reshape(J, -1).sum(axis=1)
    n_obs = observed.reshape(J, -1).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n_obs  # NaN for a dead channel
    floor = _poisson.variance_floor(X, observed)
    return np.sqrt(np.where(n_obs > 0, np.maximum(mean, floor), np.nan))


def _rank(n_sources, X, missing):
    """Directions removed before the noise estimate: n_sources, at most J' - 1."""
    live = X.shape[0] if missing is None else int(
        np.sum(~missing.all(axis=tuple(range(1, X.ndim)))))
    return min(int(n_sources), live - 1)


def _floored(sigma, X):
    """Raise each channel's std to at least 1e-6 of the median (finite weights)."""
    level = np.nanmedian(sigma)
    if not level > 0:
        level = float(np.nanstd(X)) or 1.0
    return np.maximum(sigma, _FLOOR * level)


def resolve_n_sources(n_sources, X, noise_std, variance, models, missing=None):
    """Return (n_sources, NSourcesEstimate or None) for an int or ``"auto"``.

    Parameters
    ----------
    n_sources : int or "auto"
    X : (J, ...) ndarray
    noise_std, variance
        As checked by :func:`check_noise`.
    models : dict or list or None
        The solver's models argument: auto must give at least their count.
    """
    if not (isinstance(n_sources, str) and n_sources == "auto"):
        return n_sources, None
    std = None if isinstance(noise_std, str) else noise_std
    found = noise.estimate_n_sources(X, noise_std=std, variance=variance,
                                     mask=missing)
    n_models = _model_count(models, X.shape[0])
    if found.n_sources < max(n_models, 1):
        need = f"the models take {n_models}" if n_models else "at least 1 is needed"
        raise InputError(
            f"n_sources='auto' found {found.n_sources} source(s) but {need}: "
            f"{found.evidence}. Give n_sources as a number"
        )
    return found.n_sources, found


def _model_count(models, J):
    if models is None:
        return 0
    return sum(model_list(models, J, J)[1])


def map_thresholds(step, M, rows, K, prev):
    """Threshold the rows (I * nscales, P) in place at k sigma_i(p) norm_s.

    Parameters
    ----------
    step : SourceStep
        Gives ``variance_map`` (J, P), ``norms``, ``k``, ``l1``.
    M : (I, J) ndarray
        The weighted pseudo-inverse that made the rows.
    rows : (I * nscales, P) ndarray
        Least-squares detail coefficients, thresholded in place.
    K : float
        Fraction of significant coefficients kept (< 1 while K ramps up).
    prev : (I * nscales, P) ndarray or None
        Previous thresholded coefficients: the l1 reweighting.
    """
    P = rows.shape[1]
    # a null row of M (a vanished source) has rows of zeros: keep 0 / tiny = 0
    sigma = np.maximum(np.sqrt((M**2) @ step.variance_map), np.finfo(float).tiny)
    scale = (sigma[:, None, :] * step.norms[None, :, None]).reshape(-1, P)
    np.divide(rows, scale, out=rows)
    kstd = np.full(rows.shape[0], step.k)
    thr = _kernels.support_thresholds(rows, kstd, K) if K < 1 else kstd
    _kernels.threshold(
        rows,
        thr,
        prev=None if prev is None else prev / scale,
        kstd=None if prev is None else kstd,
        hard=not step.l1,
        out=rows,
    )
    np.multiply(rows, scale, out=rows)
