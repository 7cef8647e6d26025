"""Spectrum identification and model-to-spectrum mapping (the paper's Algorithm 2).

See docs/algorithm.md, section 3: each semi-blind iteration maps the columns of the
least-squares A to the models before projecting them on their manifolds.
"""

from itertools import product

import numpy as np

__all__ = ["identify"]

_MU_STEP = 0.1


def _mu_grid(n_identified: int) -> np.ndarray:
    """Weights mu in {0, 0.1, ..., 1}^n with sum(mu) < 1, as rows (n_mu, n)."""
    if n_identified == 0:
        return np.zeros((1, 0))
    steps = np.arange(int(round(1 / _MU_STEP)) + 1)
    grid = np.array(list(product(steps, repeat=n_identified)), dtype=float)
    grid = grid[grid.sum(axis=1) < round(1 / _MU_STEP)]
    return grid * _MU_STEP


def identify(A, models, counts, *, nonneg=True, min_sum=0.5):
    """Greedily map spectra (columns of A) to spectral models.

    At each step, every unassigned column ``a_i`` minus every combination
    ``M mu`` of the projections picked so far (mu on a 0.1 grid, sum < 1) is
    fast-projected on every model that still has room; the (column, model) pair
    with the smallest relative error ``||s - P(s)|| / ||s||`` is taken, and its
    projection joins ``M``. All candidates for one model go through one batched
    ``fast_project`` call.

    Parameters
    ----------
    A : (J, I) ndarray
        Least-squares estimate of the mixing matrix.
    models : list of IAEModel
        Candidate models (distinct).
    counts : list of int
        How many columns each model takes.
    nonneg : bool, optional
        Skip candidates whose channel sum is at most ``min_sum`` (the mixing
        matrix is non-negative, so such spectra are interference).
    min_sum : float, optional
        Threshold of that test, for unit-norm columns.

    Returns
    -------
    mapping : list
        For each column, the index of its model in ``models``, or None.
    lambdas : list
        For each column, the latent weights (N,) of its fast projection, or None.
    rel_errors : list
        For each column, the relative projection error that won, or None.
    cleaned : list
        For each column, the interference-free spectrum ``a_i - M mu`` that won
        (J,), or None.
    """
    n_sources = A.shape[1]
    mapping = [None] * n_sources
    lambdas = [None] * n_sources
    rel_errors = [None] * n_sources
    cleaned = [None] * n_sources
    room = list(counts)
    picked = np.zeros((A.shape[0], 0))
    for _ in range(sum(counts)):
        free = [i for i in range(n_sources) if mapping[i] is None]
        mus = _mu_grid(picked.shape[1])
        # candidates[c] = a_i - picked @ mu for every (free i, mu)
        cand = (A[:, free].T[:, None, :] - (mus @ picked.T)[None, :, :]).reshape(
            -1, A.shape[0]
        )
        source_of = np.repeat(free, len(mus))
        valid = np.linalg.norm(cand, axis=1) > 0
        if nonneg:
            valid &= cand.sum(axis=1) > min_sum
        if not valid.any():
            valid[:] = np.linalg.norm(cand, axis=1) > 0
            if not valid.any():
                break
        best = (np.inf, None, None, None, None)
        for m, model in enumerate(models):
            if room[m] == 0:
                continue
            proj = model.fast_project(cand[valid])  # (spectra, lambdas, amplitude)
            err = np.linalg.norm(cand[valid] - proj[0], axis=1)
            err /= np.linalg.norm(cand[valid], axis=1)
            err = np.where(np.isfinite(err), err, np.inf)
            c = int(np.argmin(err))
            if err[c] < best[0]:
                best = (err[c], m, np.flatnonzero(valid)[c], proj, c)
        err, m, c_full, proj, c = best
        if m is None:
            break
        i = int(source_of[c_full])
        mapping[i] = m
        lambdas[i] = np.asarray(proj[1][c], dtype=float)
        rel_errors[i] = float(err)
        cleaned[i] = cand[c_full]
        room[m] -= 1
        picked = np.column_stack([picked, proj[0][c]])
    return mapping, lambdas, rel_errors, cleaned
