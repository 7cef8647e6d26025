"""The stages of sGMCA: blind (GMCA), semi-blind (with recovery), final.

Each stage is one function from a :class:`State` to the next; what they all read
(the data's coefficients, the source update, the settings) is a :class:`Problem`.
The algorithm is ``docs/algorithm.md``, sections 2 (blind stage) and 3
(semi-blind and final stages); the recovery rules are in
:mod:`sgmca_fast._recovery`.
"""

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from . import _kernels
from ._identify import identify
from ._recovery import (
    MAX_RESEEDS,
    is_doubtful,
    manifold_samples,
    model_pursuit,
    reseed_lost_source,
    worst_fit,
)
from ._sources import SourceStep, final_sources, mixing_ls, nonneg_columns, unit_columns

__all__ = [
    "Constraints",
    "Problem",
    "Recorder",
    "State",
    "blind_stage",
    "final_stage",
    "no_blind_stage",
    "refit_stage",
    "semiblind_stage",
]

_IT_MIN = 100  # GMCA: minimum blind iterations; the K ramp lasts it_min / 2
_BLIND_TOL = 1e-2  # GMCA: blind stage stops when delta_S falls below this


@dataclass
class Problem:
    """What every stage reads: the data's detail coefficients and the settings.

    Attributes
    ----------
    Xd : (J, nscales * P) ndarray
        Detail coefficients of the data (a view of the transform).
    xx : (J, J) ndarray
        ``Xd Xd^T``: the PCA start and the recovery rules use it.
    step : SourceStep
        The source update on the data's coefficients.
    n_sources : int
        I.
    K_max : float
        Largest fraction of significant coefficients kept while K ramps up.
    nonneg_A : bool
        Non-negative spectra.
    rng : numpy.random.Generator
        The run's only source of random draws.
    missing : _missing.Runtime or None
        Dropped channels and the EM fill of scattered missing voxels
        (:mod:`sgmca_fast._missing`); None for complete data. ``xx`` is then
        (J, J) with zero rows for the dropped channels.
    held : _fixed.Held or None
        Spectra held fixed (:mod:`sgmca_fast._fixed`).
    subspace : _subspace.Subspace or None
        The channel subspace (:mod:`sgmca_fast._subspace`): ``Xd`` and ``step``
        are then on the r reduced coordinates, while A keeps its J channels (it
        is lowered for the source update, the least-squares mixing matrix is
        lifted) and ``xx`` is J x J.
    final_step : SourceStep or None
        The final stage's source update when it differs from ``step`` (the full
        J-channel data with a subspace); None: ``step``.
    """

    Xd: np.ndarray
    xx: np.ndarray
    step: SourceStep
    n_sources: int
    K_max: float
    nonneg_A: bool
    rng: np.random.Generator
    missing: object = None
    held: object = None
    subspace: object = None
    final_step: object = None

    def detail_shape(self):
        """(I, nscales, P): the shape of the sources' detail coefficients."""
        step = self.step
        return (self.n_sources, step.nscales, step.Xw.shape[2])

    @property
    def dtype(self):
        """The coefficients' dtype (float64, or float32 with ``dtype=``)."""
        return self.step.Xw.dtype

    def sources(self, A, K, state):
        """Swap the state's buffers, update the sources into ``state.detail``.

        Returns delta_S, the relative change from the previous sources.
        """
        if self.subspace is not None:
            A = self.subspace.lower(A)
        if self.missing is not None:
            A = self.fit_rows(A)
            if self.missing.fill is not None:
                self.missing.fill.refresh(self, A, state)
        state.prev, state.detail = state.detail, state.prev
        reweight = K >= self.K_max
        self.step(A, K, state.prev if reweight else None, state.detail)
        P = state.detail.shape[-1]
        return _kernels.relative_change(
            state.detail.reshape(-1, P), state.prev.reshape(-1, P)
        )

    def mixing(self, state, debias_held=False):
        """Least-squares mixing matrix (J, I) from the sources' details.

        Held columns are the user's spectra; the dropped channels' rows are
        completed by :meth:`~._missing.Plan.full_rows`. ``debias_held`` (the
        semi-blind stage): the held sources enter debiased on their support
        (:meth:`~._fixed.Held.debiased`).
        """
        Sd = state.detail.reshape(self.n_sources, -1)
        if self.subspace is not None:
            return self.subspace.lift(mixing_ls(self.Xd, Sd))
        if self.missing is None and self.held is None:
            return mixing_ls(self.Xd, Sd)
        plan = None if self.missing is None else self.missing.plan
        rows = None if plan is None or plan.all_rows else plan.rows
        if self.held is None:
            A = mixing_ls(self.Xd, Sd)
        else:
            if debias_held:
                M = self.step.pinv(self.fit_rows(state.A))
                Sd = self.held.debiased(Sd, M, self.Xd)
            A = self.held.mixing(self.Xd, Sd, rows)
        if plan is not None:
            modelled = [m is not None for m in state.mapping]
            A = plan.full_rows(A, state.A, modelled)
        if self.held is not None:
            self.held.insert(A)
        return A

    def fit_rows(self, A):
        """Return the rows of A for the channels in the fit (all when complete)."""
        return A if self.missing is None else self.missing.plan.fit_rows(A)

    def tidy(self, A):
        """Non-negative (when asked), unit columns; held columns put back."""
        if self.nonneg_A:
            A = nonneg_columns(A)
        A = unit_columns(A, self.rng)
        if self.held is not None:
            self.held.insert(A)
        return A


@dataclass
class State:
    """The solver's state between iterations and stages.

    Attributes
    ----------
    A : (J, I) ndarray
        Mixing matrix, unit columns.
    detail, prev : (I, nscales, P) ndarray
        Current and previous detail coefficients of the sources (two buffers
        swapped at each iteration; nothing else grows), of the data's dtype.
    mapping : list of str or None
        Model name of each source (semi-blind stage), or None.
    fit : list of float or None
        Relative distance of each modelled spectrum to its manifold, or None.
    n_iter : int
        Iterations run by the stage that made this state.
    reseeded : list of (int, int)
        (semi-blind iteration, column) of each lost source reseeded.
    """

    A: np.ndarray
    detail: np.ndarray
    prev: np.ndarray
    mapping: list
    fit: list
    n_iter: int = 0
    reseeded: list = field(default_factory=list)


@dataclass
class Constraints:
    """The semi-blind stage's settings: models, mapping, recovery candidates.

    Attributes
    ----------
    models : list of IAEModel
    counts : list of int
        Sources per model.
    fixed : list or None
        Model index of each source given by the user's mapping, or None for the
        automatic identification.
    samples : list of (n_m, J) ndarray
        Unit spectra of each model's manifold (:func:`~._recovery.manifold_samples`).
    max_iter : int
    tol : float
        Stop when delta_S falls below this (from the second iteration).
    """

    models: list
    counts: list
    fixed: list
    samples: list
    max_iter: int
    tol: float

    @classmethod
    def build(cls, models, counts, fixed, max_iter, tol, rng):
        """Draw the manifold samples (from ``rng`` for models with N > 3 anchors)."""
        samples = [manifold_samples(m, rng) for m in models]
        return cls(models, counts, fixed, samples, max_iter, tol)

    @property
    def candidates(self):
        """All models' samples stacked (n, J): what a lost source is reseeded from."""
        return np.vstack(self.samples)


class Recorder:
    """History of the iterations, the progress bar and the user's callback."""

    def __init__(self, progress, callback):
        self.new_history()
        self.callback = callback
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=2 * _IT_MIN, desc="GMCA", unit="it", leave=False)

    def new_history(self):
        """Start an empty history (one per blind start, :mod:`~._starts`)."""
        self.history = {"stage": [], "delta_S": [], "delta_A": [], "cond_A": []}

    def start(self, description, total):
        """Reset the progress bar for a new stage."""
        if self.bar is not None:
            self.bar.reset(total=total)
            self.bar.set_description(description)

    def close(self):
        """Close the progress bar."""
        if self.bar is not None:
            self.bar.close()

    def record(self, stage, it, A_new, A_old, delta_S):
        """Store one iteration; return True when the callback asks to stop."""
        h = self.history
        h["stage"].append(stage)
        h["delta_S"].append(delta_S)
        h["delta_A"].append(
            float(np.linalg.norm(A_new - A_old) / max(np.linalg.norm(A_new), 1e-300))
        )
        h["cond_A"].append(_cond(A_new))
        if self.bar is not None:
            self.bar.update()
            self.bar.set_postfix(delta_S=f"{delta_S:.1e}")
        if self.callback is not None:
            return bool(
                self.callback(
                    {"stage": stage, "iteration": it, "A": A_new, "delta_S": delta_S}
                )
            )
        return False


def _cond(A):
    s = np.linalg.svd(A, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else np.inf


def _empty_state(pb, A):
    """Return a state at A with zeroed source buffers, before any iteration."""
    return State(A, np.zeros(pb.detail_shape(), pb.dtype),
                 np.zeros(pb.detail_shape(), pb.dtype),
                 [None] * pb.n_sources, [None] * pb.n_sources)


def blind_stage(pb, A, rec, until=None, state=None):
    """GMCA from A: at least 100 iterations while K ramps up to K_max.

    Parameters
    ----------
    pb : Problem
    A : (J, I) ndarray
        Starting mixing matrix, unit columns (unused when ``state`` is given).
    rec : Recorder
    until : int, optional
        Stop after this many iterations (a trial of a start, :mod:`~._starts`).
    state : State, optional
        A stage stopped by ``until``, continued where it stopped: the result is
        the uninterrupted run's.

    Returns
    -------
    State
    """
    if state is None:
        state = _empty_state(pb, A)
    for it in range(state.n_iter, 2 * _IT_MIN if until is None else until):
        K = min(pb.K_max / (_IT_MIN / 2 - 1) * (it + 1), pb.K_max)
        delta_S = pb.sources(state.A, K, state)
        A_old = state.A
        state.A = pb.tidy(pb.mixing(state))
        state.n_iter = it + 1
        if rec.record("blind", it, state.A, A_old, delta_S):
            break
        if state.n_iter >= _IT_MIN and delta_S <= _BLIND_TOL:
            break
    return state


def no_blind_stage(pb, A, estimate=False):
    """Return the state that stands for a skipped blind stage (``blind_stage=False``).

    The next stage starts from A with empty source buffers, so its first source
    update is thresholded without reweighting, as the blind stage's first is.

    Parameters
    ----------
    pb : Problem
    A : (J, I) ndarray
        The user's mixing matrix (``A_init``), unit columns.
    estimate : bool, optional
        Fill the buffers with the sources of A at K = 1, not reweighted: when
        the final stage comes next (GMCA), its reweighting then has a previous
        estimate, as after a blind stage.

    Returns
    -------
    State
        With ``n_iter`` 0.
    """
    state = _empty_state(pb, A)
    if estimate:
        pb.sources(A, 1.0, state)  # reweights by the zero buffer: plain thresholds
    return state


def _semiblind_run(pb, cons, A, detail, prev, rec):
    """One run of the semi-blind iterations from A, reseeding lost sources."""
    state = State(A, detail, prev, [None] * pb.n_sources, [None] * pb.n_sources)
    rec.start("sGMCA", cons.max_iter)
    candidates = cons.candidates
    for it in range(cons.max_iter):
        delta_S = pb.sources(state.A, pb.K_max, state)
        A_new, assign, fit = constrain(pb.mixing(state, debias_held=True),
                                       cons.models, cons.counts,
                                       cons.fixed, pb.nonneg_A, pb.rng, pb.held)
        if len(state.reseeded) < MAX_RESEEDS:
            col = reseed_lost_source(A_new, pb.xx, candidates,
                                     None if pb.held is None else pb.held.index)
            if col is not None:
                state.reseeded.append((it, col))
        state.n_iter = it + 1
        stop = rec.record("semiblind", it, A_new, state.A, delta_S)
        state.A = A_new
        state.mapping = [None if m is None else cons.models[m].name for m in assign]
        state.fit = fit
        # delta_S compares with an S made before any constraint at it = 0.
        if stop or (it >= 1 and delta_S <= cons.tol):
            break
    return state


def semiblind_stage(pb, cons, blind, rec):
    """Run sGMCA from the blind stage's state, restarting a doubtful run once.

    When the automatic identification ends with a spectrum far from its model
    (:func:`~._recovery.is_doubtful`), the stage runs again from the models'
    spectra that best explain the data (:func:`~._recovery.model_pursuit`) and
    the run with the smaller worst fit is kept.

    Parameters
    ----------
    pb : Problem
    cons : Constraints
    blind : State
        The blind stage's end; its buffers are reused.
    rec : Recorder

    Returns
    -------
    state : State
        The kept run's end.
    restarted : bool
    """
    blind_detail = blind.detail.copy()
    result = _semiblind_run(pb, cons, blind.A, blind.detail, blind.prev, rec)
    if cons.fixed is not None or not is_doubtful(result.fit):
        return result, False
    A_pursuit = _pursuit(pb, cons)
    retry = _semiblind_run(pb, cons, A_pursuit, blind_detail, blind_detail.copy(),
                           rec)
    if worst_fit(retry.fit) < worst_fit(result.fit):
        result = retry
    return result, True


def _pursuit(pb, cons):
    """Return the restart's A: the model pursuit, after any held spectra."""
    if pb.held is None:
        return model_pursuit(pb.xx, cons.samples, cons.counts, pb.n_sources,
                             pb.nonneg_A)
    free = pb.held.free(pb.n_sources)
    A = np.empty((pb.xx.shape[0], pb.n_sources))
    A[:, free] = model_pursuit(pb.xx, cons.samples, cons.counts, len(free),
                               pb.nonneg_A, given=pb.held.spectra)
    return pb.held.insert(A)


def skip_semiblind(blind):
    """Return the state GMCA alone hands to the final stage (no semi-blind step)."""
    return dataclasses.replace(blind, n_iter=0, reseeded=[])


def refit_stage(pb, state):
    """Refit the spectra to the sources debiased on their support (``refit_spectra``).

    The sources are updated from the current A as the final stage does (every
    significant coefficient, reweighted), and each source's coefficients are
    replaced by their least-squares values ``M Xd`` where they are non-zero, so
    the soft thresholds' shrinkage does not bias the fit; the free spectra are
    then the least-squares ones for those sources, non-negative and of unit
    norm when asked, no longer projected on their manifolds (held spectra stay).

    Parameters
    ----------
    pb : Problem
    state : State
        The last stage's end; its buffers are updated as by one iteration.

    Returns
    -------
    state : State
        With the refitted A.
    angles : list of float
        The angle (degrees) each column of A moved.
    """
    A_old = state.A
    pb.sources(A_old, 1.0, state)
    if pb.subspace is not None:
        A_step = pb.subspace.lower(A_old)
    else:
        A_step = pb.fit_rows(A_old)
    M = pb.step.pinv(A_step).astype(pb.Xd.dtype, copy=False)
    Sd = state.detail.reshape(pb.n_sources, -1)
    debiased = np.where(Sd != 0, M @ pb.Xd, 0).reshape(state.detail.shape)
    state.A = pb.tidy(pb.mixing(dataclasses.replace(state, detail=debiased)))
    cos = np.clip(np.sum(state.A * A_old, axis=0), -1.0, 1.0)
    return state, [float(v) for v in np.degrees(np.arccos(cos))]


def final_stage(pb, state):
    """Return the sources (I, P) from the final A: every significant coefficient."""
    A = pb.fit_rows(state.A)
    if pb.missing is not None and pb.missing.fill is not None:
        pb.missing.fill.refresh(pb, A, state, force=True)
    if pb.final_step is not None:
        return final_sources(pb.final_step, A, state.detail, state.prev)
    if pb.subspace is not None:
        A = pb.subspace.lower(A)
    return final_sources(pb.step, A, state.detail, state.prev)


def constrain(A_ls, models, counts, fixed, nonneg_A, rng, held=None):
    """Apply the spectral constraints to the least-squares mixing matrix.

    As in the authors' code, every column is first made non-negative (when asked)
    and scaled to unit norm, which is its projection on the unit ball up to the
    scale that S absorbs; modelled columns then go to their manifold (unit norm).
    Held columns (``held``, :class:`~._fixed.Held`) are left out of all this and
    put back as given.

    Returns
    -------
    A : (J, I) ndarray
    assign : list
        The model index of each column, or None.
    fit : list
        The relative distance of each modelled column to its manifold, or None.
    """
    A = A_ls.copy()
    if nonneg_A:
        A = nonneg_columns(A)
    A = unit_columns(A, rng)
    if held is not None:
        held.insert(A)
    if fixed is None:
        assign, lambdas, cleaned = _identify_free(A, models, counts, nonneg_A, held)
    else:
        assign, lambdas, cleaned = fixed, [None] * A.shape[1], [None] * A.shape[1]
    fit = [None] * A.shape[1]
    for m, model in enumerate(models):
        cols = [i for i, a in enumerate(assign) if a == m]
        if not cols:
            continue
        lam0 = None
        if all(lambdas[i] is not None for i in cols):
            lam0 = np.array([lambdas[i] for i in cols])
        # Project the spectrum freed of the interference that the identification
        # found (a_i - M mu), not the raw column: leakage of a bright source would
        # otherwise pull a faint source's spectrum off its own manifold.
        spectra = np.array([A[:, i] if cleaned[i] is None else cleaned[i]
                            for i in cols])
        res = model.project(spectra, lambda0=lam0)
        for c, i in enumerate(cols):
            fit[i] = float(res.residual[c] / max(np.linalg.norm(spectra[c]), 1e-300))
            A[:, i] = res.unit_spectra[c]
    return A, assign, fit


def _identify_free(A, models, counts, nonneg_A, held):
    """Identification (Algorithm 2) over the columns that are not held."""
    if held is None:
        assign, lambdas, _, cleaned = identify(A, models, counts, nonneg=nonneg_A)
        return assign, lambdas, cleaned
    free = held.free(A.shape[1])
    out = [[None] * A.shape[1] for _ in range(3)]
    found = identify(A[:, free], models, counts, nonneg=nonneg_A)
    for lst, part in zip(out, (found[0], found[1], found[3]), strict=True):
        for c, i in enumerate(free):
            lst[i] = part[c]
    return tuple(out)
