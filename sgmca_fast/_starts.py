"""Several starts of the blind stage, the winner chosen from the data alone.

GMCA from the PCA of the detail coefficients can end with two sources merged in
one column (two close iron lines, or synchrotron and thermal) and another column
spent on what is left: a local minimum of its objective. :func:`blind` runs the
blind stage from a few cheap starts besides the PCA one and keeps the run that
leaves the least data energy unexplained at the final stage's thresholds
(docs/solver.md, "Several blind starts"; docs/results.md measures the criterion).

The starts, in order:

- ``"pca"``: the PCA of ``Xd Xd^T`` (or the user's ``A_init``), the start of a
  single run;
- ``"pursuit"``: a greedy pursuit over the data's detail coefficients (the
  successive projection algorithm of separable NMF: the column of ``Xd`` with
  the most energy outside the span of those chosen, I times); a sparse source
  has coefficients where it dominates, and there the column is its spectrum;
- ``"random"``: random unit combinations of the first start's columns (for the
  PCA start, of the I leading principal directions; a Haar-random rotation
  drawn from the run's ``rng``), made non-negative.

With ``start_sample=s`` > 1 each start is first tried on a sample of the data:
the whole blind stage on every s-th pixel of the detail planes (about 1 / s of
its cost), scored on that sample; only the winning start then runs the blind
stage on all the data (docs/solver.md, "Cheap trials of the starts").
"""

import dataclasses

import numpy as np

from . import _kernels
from ._sources import SourceStep, nonneg_columns, unit_columns
from ._stages import _IT_MIN, blind_stage
from ._validation import InputError, integer

__all__ = ["blind", "check", "check_trial", "objective", "start_matrices",
           "trial_problem"]


def check(starts, *, missing=False, held=None):
    """Return ``starts`` as an int >= 1; more than one needs complete data, no held.

    Raises
    ------
    InputError
        ``starts`` below 1, or above 1 with missing data or fixed spectra.
    InputTypeError
        Not an integer.
    """
    starts = integer(starts, "starts", 1)
    if starts > 1 and (missing or held is not None):
        raise InputError(f"starts={starts} needs complete data and no fixed spectra "
                         "(missing data or fixed spectra: starts=1)")
    return starts


def check_trial(start_sample, start_iter):
    """Return ``(start_sample, start_iter)`` checked: an int >= 1, None or an int.

    ``start_iter`` is at least 1 and below the blind stage's 100 iterations;
    it and ``start_sample`` > 1 exclude each other.

    Raises
    ------
    InputError
        Out of range, or both given.
    InputTypeError
        Not integers.
    """
    start_sample = integer(start_sample, "start_sample", 1)
    if start_iter is not None:
        start_iter = integer(start_iter, "start_iter", 1, _IT_MIN - 1)
        if start_sample > 1:
            raise InputError("start_iter and start_sample > 1 are two kinds of "
                             "trial of the starts: give one of them")
    return start_sample, start_iter


def trial_problem(pb, sample):
    """Return the Problem on every ``sample``-th pixel of the detail planes.

    The same pixels at every scale (raster order of the flattened image), so a
    source keeps its coefficients' statistics; the thresholds' noise levels and
    the K fraction do not depend on the pixel count. A per-voxel variance map
    is sampled alike. The copy costs 1 / sample of the coefficients.

    Parameters
    ----------
    pb : Problem
    sample : int
        >= 1.

    Returns
    -------
    Problem
        ``Xd`` (m, nscales * ceil(P / sample)) and ``step`` on the sample; every
        other field (``xx``, ``rng``, the subspace) is ``pb``'s.
    """
    step = pb.step
    ns = step.nscales
    Xw = np.ascontiguousarray(step.Xw[:, :ns, ::sample])
    vmap = step.variance_map
    if vmap is not None:
        vmap = np.ascontiguousarray(vmap[:, ::sample])
    trial = SourceStep(Xw, step.noise, step.norms, step.k, step.l1, step.nonneg_S,
                       vmap, coarse=False)
    return dataclasses.replace(pb, Xd=Xw.reshape(Xw.shape[0], -1), step=trial)


def _pursuit(Xd, n_sources):
    """Greedy pursuit: I columns of Xd, each the most energetic off the others' span.

    Parameters
    ----------
    Xd : (m, n) ndarray
        Detail coefficients (channels or reduced coordinates by coefficients).
    n_sources : int

    Returns
    -------
    (m, n_sources) ndarray
        The chosen columns (not normalised).
    """
    energy = np.einsum("ij,ij->j", Xd, Xd, dtype=np.float64)
    Q = np.zeros((Xd.shape[0], 0))
    cols = []
    for _ in range(n_sources):
        if Q.shape[1]:
            proj = (Q.T @ Xd).astype(np.float64, copy=False)  # (k, n)
            rest = energy - np.einsum("ij,ij->j", proj, proj)
        else:
            rest = energy
        c = int(np.argmax(rest))
        col = np.asarray(Xd[:, c], dtype=np.float64)
        cols.append(col)
        u = col - Q @ (Q.T @ col)
        nu = np.linalg.norm(u)
        if nu > 0:
            Q = np.column_stack([Q, u / nu])
    return np.column_stack(cols)


def _random(basis, rng):
    """Random combinations (J, I) of an orthonormal basis (J, I): a Haar rotation."""
    n = basis.shape[1]
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return basis @ (q * np.sign(np.diag(r)))  # Haar-random rotation


def start_matrices(pb, A_first, n_starts):
    """Return the starts' names and (J, I) unit-column matrices.

    Parameters
    ----------
    pb : Problem
        Complete data, no spectra held fixed (``pb.subspace`` may be set: the
        pursuit then runs on the reduced coefficients and is lifted).
    A_first : (J, I) ndarray
        The first start (the PCA one or the user's), unit columns.
    n_starts : int
        How many (>= 1); the random ones draw from ``pb.rng``.

    Returns
    -------
    names : list of str
    starts : list of (J, I) ndarray
    """
    names, starts = ["pca"], [A_first]
    if n_starts == 1:
        return names, starts
    sub = pb.subspace
    A = _pursuit(pb.Xd, pb.n_sources)
    A = sub.lift(A) if sub is not None else A
    names.append("pursuit")
    starts.append(A)
    basis = np.linalg.qr(A_first)[0]  # the first start's span (PCA: principal)
    for _ in range(n_starts - 2):
        names.append("random")
        starts.append(_random(basis, pb.rng))
    for A in starts[1:]:
        if pb.nonneg_A:
            nonneg_columns(A)
        unit_columns(A, pb.rng)
    return names, starts


def _row_std(pb, M, rows):
    """Noise std of each source row (I * nscales,) as the thresholds use it."""
    step = pb.step
    if step.noise is not None:
        return (np.sqrt((M**2) @ step.noise**2)[:, None]
                * step.norms[None, :]).ravel()
    return _kernels.mad_std(rows)


def objective(pb, A, detail=None):
    """GMCA's objective in noise units at A, with the final stage's thresholds.

    ``0.5 * sum_(j,s) ||R_js||^2 / (sigma_j n_s)^2 + k * sum_(i,s) ||S_is||_1 /
    sigma_is``: ``S`` the sources' detail coefficients of a source update from
    A at K = 1 (every significant coefficient, soft thresholds k sigma_is, as
    the final stage, without the reweighting), ``R = Xd - A S`` the residual,
    ``n_s`` the starlet filter norm of scale s, sigma_j the noise std of
    channel j and sigma_is that of source i at scale s (``sqrt(sum_j M_ij^2
    sigma_j^2) n_s``, M the weighted pseudo-inverse of A): the negative
    log-likelihood of Gaussian noise plus the l1 prior whose soft threshold is
    k sigma_is. With the subspace, the reduced coefficients are whitened
    (sigma_j = 1). With ``noise_std="mad"`` the sigmas are the MAD of the
    residual's and the sources' rows.

    Parameters
    ----------
    pb : Problem
    A : (J, I) ndarray
        Mixing matrix, unit columns.
    detail : (I, nscales, P) ndarray, optional
        Sources' detail coefficients to score instead of the K = 1 update
        (e.g. the blind stage's last ones).

    Returns
    -------
    dict
        ``"objective"``, ``"residual"`` (the first term divided by the number
        of coefficients: 0.5 for a residual of pure noise) and ``"max_cos"``
        (largest |cos| between two columns of A).
    """
    step = pb.step
    Al = A if pb.subspace is None else pb.subspace.lower(A)
    ns = step.nscales
    if detail is None:
        detail = np.empty(pb.detail_shape(), pb.dtype)
        M = step(Al, 1.0, None, detail)
    else:
        M = step.pinv(Al)
    P = detail.shape[-1]
    R = np.asarray(pb.Xd, dtype=np.float64) - Al @ detail.reshape(-1, ns * P)
    R = R.reshape(R.shape[0], ns, P)
    if pb.subspace is not None:
        chan = np.ones(R.shape[0])
    elif step.noise is not None:
        chan = step.noise
    else:
        chan = _kernels.mad_std(R.reshape(R.shape[0], -1))
    res2 = np.einsum("jsp,jsp->js", R, R) / (chan[:, None] * step.norms[None, :])**2
    rows = detail.reshape(-1, P)
    std = _row_std(pb, M, rows)
    l1 = np.sum(np.abs(rows), axis=1, dtype=np.float64)
    fit = 0.5 * float(np.sum(res2))
    penalty = step.k * float(np.sum(l1 / np.maximum(std, 1e-300)))
    An = A / np.maximum(np.linalg.norm(A, axis=0), 1e-300)
    cos = np.abs(An.T @ An)
    np.fill_diagonal(cos, 0.0)
    return {"objective": fit + penalty, "residual": fit / R.size,
            "max_cos": float(cos.max(initial=0.0))}


def blind(pb, A_first, n_starts, rec, sample=1, until=None):
    """Run the blind stage from each start; keep the least unexplained energy.

    The criterion is the residual term of :func:`objective` (the data's detail
    coefficients left unexplained by A and its K = 1 sources, in noise units):
    on Cas A it ranked the starts better than the whole objective, whose l1
    term favours a run that merges two sources (docs/results.md, "Several
    blind starts").

    Parameters
    ----------
    pb : Problem
    A_first : (J, I) ndarray
        The PCA (or user's) start, unit columns.
    n_starts : int
        1: the single run of :func:`~._stages.blind_stage`, nothing else done.
    rec : Recorder
        Its history ends as the winner's (its run on all the data).
    sample : int, optional
        1: each start runs the blind stage on all the data and the winner's run
        is kept. s > 1: each start's trial runs it on every s-th pixel
        (:func:`trial_problem`) and is scored there; the blind stage then runs
        on all the data from the winning trial's end only.
    until : int, optional
        Each start's trial is the first ``until`` iterations of its blind stage
        on all the data, scored there; the winner's stage then continues to its
        end (the same run as without the stop), the others are dropped. Not
        with ``sample`` > 1.

    Returns
    -------
    state : State
        The winner's end (ties go to the earlier start).
    record : list of dict or None
        Per start: ``name``, ``objective``, ``residual``, ``max_cos``,
        ``n_iter`` (its trial's iterations), ``pixels`` (its trial's pixels per
        scale), ``A`` (its trial's end, (J, I)) and ``chosen``; None for one
        start.
    """
    if n_starts == 1:
        return blind_stage(pb, A_first, rec), None
    names, starts = start_matrices(pb, A_first, n_starts)
    trial_pb = pb if sample == 1 else trial_problem(pb, sample)
    record, best = [], None
    for name, A0 in zip(names, starts, strict=True):
        rec.new_history()
        rec.start(f"GMCA ({name})" if sample == 1 and until is None
                  else f"GMCA trial ({name})", 2 * _IT_MIN if until is None else until)
        # its own buffers: the losers' are freed
        state = blind_stage(trial_pb, A0.copy(), rec, until)
        score = objective(trial_pb, state.A)
        record.append({"name": name, **score, "n_iter": state.n_iter,
                       "pixels": trial_pb.step.Xw.shape[2], "A": state.A.copy(),
                       "chosen": False})
        if best is None or score["residual"] < best[0]:
            best = (score["residual"], len(record) - 1, state, rec.history)
    _, i, state, rec.history = best
    record[i]["chosen"] = True
    if until is not None and state.n_iter == until:  # not stopped by the callback
        del best
        rec.start(f"GMCA ({names[i]})", 2 * _IT_MIN)
        state = blind_stage(pb, None, rec, state=state)
    elif sample > 1:
        # From the winning trial's end, not its start: a start's path on all the
        # data can part from its path on the sample (docs/results.md).
        del best, state  # the trials' buffers
        rec.new_history()
        rec.start(f"GMCA ({names[i]})", 2 * _IT_MIN)
        state = blind_stage(pb, record[i]["A"].copy(), rec)
    return state, record
