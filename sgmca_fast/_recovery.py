"""Recovery rules of the semi-blind stage: reseed a lost source, restart a doubtful run.

Both use only ``xx = Xd Xd^T`` (J x J), the data energy per spectral direction,
so they cost no pass over the data. ``docs/solver.md`` says when they act and why;
the semi-blind stage itself is ``docs/algorithm.md``, section 3.
"""

import numpy as np

__all__ = [
    "MAX_RESEEDS",
    "is_doubtful",
    "manifold_samples",
    "model_pursuit",
    "reseed_lost_source",
    "worst_fit",
]

_DUPLICATE_COS = 0.99  # columns this aligned describe one source twice
_RESEED_GAIN = 1.2  # ... and a candidate explaining this much more replaces one
_MIN_SLIVER = 0.05  # norm of a column's part outside the others' span worth counting
_NOISE_MARGIN = 10.0  # a lost source carries this much more than a noise direction
MAX_RESEEDS = 3  # reseeds allowed per semi-blind run
_FIT_DOUBTFUL = 0.05  # a modelled spectrum this far from its manifold


def manifold_samples(model, rng, n_max=600):
    """Unit-norm spectra spread over a model's manifold.

    The model's training spectra when it keeps them; otherwise the generator on a
    grid of latent weights running a quarter beyond the anchors on each side
    (the IAE extrapolates), or on random weights for N > 3 anchors (which draws
    from ``rng``).

    Returns
    -------
    (n, J) ndarray
        Unit rows.
    """
    g = getattr(model, "training_spectra", None)
    if g is not None:
        g = np.asarray(g, dtype=float)
        norms = np.linalg.norm(g, axis=1)
        return g[norms > 0] / norms[norms > 0, None]
    n = model.n_anchors
    if n <= 3:
        t = np.linspace(-0.25, 1.25, 31 if n == 3 else n_max)
        grid = np.array(np.meshgrid(*([t] * (n - 1)))).reshape(n - 1, -1).T
        lam = np.column_stack([grid, 1.0 - grid.sum(axis=1)])
        lam = lam[lam.min(axis=1) >= -0.25]
    else:
        lam = rng.dirichlet(np.ones(n), size=n_max) * 1.5 - 0.5 / n
    g = np.atleast_2d(model.generate(lam))
    norms = np.linalg.norm(g, axis=1)
    return g[norms > 0] / norms[norms > 0, None]


def worst_fit(fit):
    """Return the largest model fit of a run (0 when no source is modelled)."""
    return max((f for f in fit if f is not None), default=0.0)


def is_doubtful(fit):
    """Tell whether a modelled spectrum ends farther than 0.05 from its manifold.

    ``fit`` is the per-source relative distance of ``Separation.model_fit``
    (None for unmodelled sources); such a run is restarted from
    :func:`model_pursuit`.
    """
    return worst_fit(fit) > _FIT_DOUBTFUL


def _energy_gain(q, cand, xx):
    """Return the energy ``u^T xx u / u^T u`` of each candidate's part u off span(q).

    ``cand`` holds unit spectra as rows (n, J); a part too thin to be more than
    rounding (squared norm <= 1e-12) gets gain 0.
    """
    u = cand.T - q @ (q.T @ cand.T)  # (J, n)
    norm2 = np.sum(u * u, axis=0)
    return np.sum(u * (xx @ u), axis=0) / np.where(norm2 > 1e-12, norm2, np.inf)


def _basis(cols, J):
    """Orthonormal basis (J, k) of the span of the chosen columns."""
    return np.linalg.qr(np.column_stack(cols))[0] if cols else np.zeros((J, 0))


def model_pursuit(xx, samples, counts, n_sources, nonneg_A, given=None):
    """Build a mixing matrix from the models' spectra that best explain the data.

    Greedy pursuit in the spectral domain: each step adds, among the samples of
    the models that still have room, the spectrum whose part orthogonal to the
    columns chosen so far carries the most data energy ``u^T Xd Xd^T u``; the
    unmodelled columns are the leading directions of what is left.

    Parameters
    ----------
    xx : (J, J) ndarray
        ``Xd Xd^T``.
    samples : list of (n_m, J) ndarray
        Unit spectra of each model (:func:`manifold_samples`).
    counts : list of int
        Sources per model.
    n_sources : int
        Columns of the result.
    nonneg_A : bool
        Clip the unmodelled columns at zero.
    given : (J, f) ndarray, optional
        Spectra already in the mixing matrix (held fixed): the pursuit starts
        with them in the basis and does not return them.

    Returns
    -------
    (J, n_sources) ndarray
        Unit columns: the modelled ones first, in the order chosen.
    """
    J = xx.shape[0]
    room = list(counts)
    cols = [] if given is None else [g / np.linalg.norm(g) for g in given.T]
    n_given = len(cols)
    n_sources += n_given
    for _ in range(sum(counts)):
        q = _basis(cols, J)
        best = (-np.inf, None)
        for m, cand in enumerate(samples):
            if room[m] == 0 or len(cand) == 0:
                continue
            gain = _energy_gain(q, cand, xx)
            c = int(np.argmax(gain))
            if gain[c] > best[0]:
                best = (gain[c], m, cand[c])
        if best[1] is None:
            break
        room[best[1]] -= 1
        cols.append(best[2])
    while len(cols) < n_sources:
        q = _basis(cols, J)
        rest = xx - q @ (q.T @ xx)
        rest = rest - (rest @ q) @ q.T
        v = np.linalg.eigh(rest)[1][:, -1]
        v = v if v.sum() >= 0 else -v
        if nonneg_A:
            v = np.maximum(v, 0.0)
        cols.append(v / max(np.linalg.norm(v), 1e-300))
    return np.column_stack(cols[n_given:])


def reseed_lost_source(A, xx, candidates, protected=None):
    """Replace a duplicated column by the candidate spectrum that explains most data.

    Two columns of A pointing the same way (|cos| > 0.99) describe one source
    twice, so another source is missing. For each of the two, the spectrum s among
    ``candidates`` that most increases the data energy explained by the other
    columns plus s, ``u^T Xd Xd^T u`` with ``u`` the unit part of s orthogonal to
    them, replaces it if that beats keeping the duplicate by 20% and carries ten
    times the energy of a noise direction (the median eigenvalue of Xd Xd^T).

    Parameters
    ----------
    A : (J, I) ndarray
        Mixing matrix, unit columns; modified in place when a column is replaced.
    xx : (J, J) ndarray
        ``Xd Xd^T``.
    candidates : (n, J) ndarray
        Unit spectra, e.g. samples of the models' manifolds.
    protected : list of int, optional
        Columns never replaced (spectra held fixed, of any norm); a column
        duplicating one of them is.

    Returns
    -------
    int or None
        The column replaced, or None.
    """
    cos = np.abs(A.T @ A)
    if protected:
        norms = np.linalg.norm(A, axis=0)
        cos /= np.outer(norms, norms)
    np.fill_diagonal(cos, 0.0)
    i, j = np.unravel_index(np.argmax(cos), cos.shape)
    if cos[i, j] <= _DUPLICATE_COS or len(candidates) == 0:
        return None
    # Energy of one direction of pure noise: the median eigenvalue of Xd Xd^T.
    noise_floor = float(np.median(np.linalg.eigvalsh(xx)))
    best = (0.0, None, None)
    for col in (i, j):
        if protected and col in protected:
            continue
        q = np.linalg.qr(np.delete(A, col, axis=1))[0]
        gain = _energy_gain(q, candidates, xx)
        # What the duplicate itself adds, along its part outside the others' span
        # (none when that part is too thin to be more than rounding).
        v = A[:, col] - q @ (q.T @ A[:, col])
        keep = v @ xx @ v / (v @ v) if v @ v > _MIN_SLIVER**2 else 0.0
        c = int(np.argmax(gain))
        needed = max(_RESEED_GAIN * keep, _NOISE_MARGIN * noise_floor)
        if gain[c] > needed and gain[c] > best[0]:
            best = (gain[c], col, c)
    _, col, c = best
    if col is None:
        return None
    A[:, col] = candidates[c]
    return int(col)
