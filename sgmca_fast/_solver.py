"""The separation solver: GMCA (blind) and sGMCA (semi-blind with learned spectra).

:func:`separate` is the paper's Algorithm 1 (``docs/algorithm.md``, sections 2 and
3): the data are checked, transformed to the starlet domain once, then the blind,
semi-blind and final stages (:mod:`sgmca_fast._stages`) work on the transform
coefficients: least squares with BLAS (:mod:`sgmca_fast._sources`), thresholds
from Numba kernels, the spectral constraints through the IAE models, and the
recovery rules of :mod:`sgmca_fast._recovery`.
"""

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import (
    _checks,
    _confidence,
    _fixed,
    _missing,
    _noisemap,
    _poisson,
    _starts,
    _stream,
    _subspace,
    _validation,
    starlet,
)
from ._config import thread_limits
from ._sources import SourceStep, unit_columns
from ._stages import (
    Constraints,
    Problem,
    Recorder,
    final_stage,
    no_blind_stage,
    refit_stage,
    semiblind_stage,
    skip_semiblind,
)
from ._validation import InputError, InputTypeError, boolean, integer, real, real_array

__all__ = ["Separation", "gmca", "separate"]

# Data whose largest magnitude lies beyond 2**+-_SAFE_EXPONENT are scaled by a power
# of two inside (exact), so that Xd Xd^T and the normal matrices neither overflow
# nor underflow; at ordinary magnitudes nothing is scaled. In float32 (largest
# 2**128) the bound is 2**+-30, so that the sgemm of Sd Xd^T (magnitude squared
# times the pixels) stays finite.
_SAFE_EXPONENT = {np.float64: 100, np.float32: 30}


@dataclass
class Separation:
    """Result of :func:`separate`.

    Attributes
    ----------
    A : (J, I) ndarray
        Mixing matrix; each column is a spectrum. Modelled columns lie on their
        model's manifold (unit L2 norm); the others have norm at most 1.
    S : (I, H, W) or (I, P) ndarray
        Sources, in the data's units divided by those of A; float64, or float32
        with ``dtype=np.float32``.
    mapping : list of str or None
        For each source, the name of the model its spectrum follows, or None.
    model_fit : list of float or None
        For each modelled source, the relative distance ``||a - P(a)|| / ||a||``
        between its last least-squares spectrum and its projection on the model's
        manifold: a small value (a few 1e-2) says the spectrum is well explained by
        the model, a large one flags a doubtful identification.
    n_iter : dict
        Iterations run by each stage: ``"blind"``, ``"semiblind"``.
    history : dict of lists
        Per iteration: ``"stage"``, ``"delta_S"``, ``"delta_A"``, ``"cond_A"``;
        and ``"reseeded"``: (semi-blind iteration, column) for each column that
        was found to duplicate another and restarted from the residual (a lost
        source; see the user guide). With ``separate(starts=N)``, N > 1, also
        ``"starts"``: per blind start a dict (``name``, ``residual``, the
        criterion, ``objective``, ``max_cos``, ``n_iter``, ``pixels`` per
        scale, ``A`` the start's blind-stage end (J, I), ``chosen``; with
        ``start_iter`` or ``start_sample`` > 1 these are its trial's: after
        ``start_iter`` iterations, or on the sample); the other lists are the
        kept start's run on all the data.
    dtype : str
        The working precision of the data-sized arrays, ``"float64"`` (the
        default) or ``"float32"`` (``separate(dtype=np.float32)``: X, its
        starlet coefficients, the sources' buffers and S in single precision;
        A and every small matrix in float64; docs/solver.md, "float32").
    timings : dict
        Seconds spent in ``"transform"``, ``"setup"`` (``Xd Xd^T``, or finding
        the channel subspace and projecting the data on it), ``"blind"``,
        ``"semiblind"``, ``"final"`` and ``"total"``.
    missing : MissingSummary or None
        What was treated as missing (voxels, dropped channels, the pixel box
        fitted); None for complete data.
    fixed : list of int
        The sources whose spectra were held fixed (mapping entry ``"fixed"``;
        their columns of A are the given spectra, bit for bit).
    noise_std : (J,) ndarray or None
        The noise std per channel used, in the data's units: as given, from the
        variance (the square root of each channel's median variance over the
        pixels) or estimated from the data; None with ``noise_std="mad"``.
    n_sources_estimate : NSourcesEstimate or None
        With ``n_sources="auto"``, the count and its evidence (the whitened
        eigenvalues, the noise floor, one line of text); else None.
    subspace : dict or None
        With a channel subspace: ``rank``, ``n_signal`` (whitened eigenvalues
        above the noise floor, for ``"auto"``), ``floor``, ``method``
        (``"gram"`` or ``"randomized"``), ``reason`` (one line) and
        ``singular_values`` of the whitened detail coefficients; else None.
    confidence : (I,) ndarray or None
        For each source, a value in [0, 1] from what the solver knows (model
        fit, near-parallel columns, the noise-limited accuracy of its spectrum,
        unexplained energy, recovery rules), a logistic combination fitted to
        the probability that its SAD is at least 20 dB on the validation
        protocol; it ranks sources, a low value flagging a likely failure
        (docs/solver.md and docs/results.md, "Confidence per source"); None
        from the baselines.
    """

    A: np.ndarray
    S: np.ndarray
    mapping: list
    model_fit: list
    n_iter: dict
    history: dict = field(repr=False)
    timings: dict = field(repr=False)
    missing: object = None
    fixed: list = field(default_factory=list)
    noise_std: np.ndarray | None = field(default=None, repr=False)
    n_sources_estimate: object = field(default=None, repr=False)
    subspace: dict | None = field(default=None, repr=False)
    confidence: np.ndarray | None = None
    dtype: str = field(default="float64", repr=False)


def _scale_exponent(X):
    """Return e such that ``X * 2**-e`` peaks in [0.5, 1), or 0 at ordinary scales.

    Ordinary: the largest magnitude is within ``2**+-_SAFE_EXPONENT`` of X's
    dtype.
    """
    top = float(np.max(np.abs(X), initial=0.0))
    e = math.frexp(top)[1]
    return e if abs(e) > _SAFE_EXPONENT[X.dtype.type] else 0


def _starlet_coefficients(X, nscales):
    """(J, nscales + 1, P) starlet transform of a cube (2-D) or a matrix (1-D)."""
    J = X.shape[0]
    if X.ndim == 3:
        return starlet.forward(X, nscales).reshape(J, nscales + 1, -1)
    return starlet.forward1d(X, nscales)


def _initial_A(A_init, xx, n_sources, rng, sub=None):
    """Return the user's A or the PCA of the detail coefficients, with unit columns.

    With a subspace ``sub``, the PCA is computed within it (:meth:`~._subspace.
    Subspace.pca`).
    """
    if A_init is not None:
        A = A_init
    elif sub is not None:
        A = sub.pca(n_sources)
    else:
        A = np.linalg.eigh(xx)[1][:, ::-1][:, :n_sources].copy()
    return unit_columns(A, rng)


def _check_A_init(A_init, shape):
    if A_init is None:
        return None
    A_init = np.array(real_array(A_init, "A_init", finite=False))
    if A_init.shape != shape:
        raise InputError(
            f"A_init must have shape (J, I) = {shape}, got {A_init.shape}"
        )
    if not np.all(np.isfinite(A_init)):
        raise InputError("A_init contains NaN or inf values")
    return A_init


@thread_limits()
def separate(
    X,
    n_sources,
    models=None,
    *,
    noise_std=None,
    variance=None,
    noise="gaussian",
    mask=None,
    fixed=None,
    nscales=2,
    k=3.0,
    K_max=0.5,
    nonneg_A=True,
    nonneg_S=False,
    l1=True,
    A_init=None,
    mapping=None,
    max_iter_semiblind=50,
    tol_semiblind=1e-6,
    refit_spectra=False,
    random_state=None,
    progress=False,
    callback=None,
    subspace=None,
    stream=None,
    dtype=None,
    starts=1,
    blind_stage=True,
    start_sample=1,
    start_iter=None,
) -> Separation:
    """Separate X = A S + N with sGMCA (GMCA when no model is given).

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data: J channels, each an image (2-D starlet) or a vector of P samples
        (1-D starlet along the samples). NaN voxels (and a masked array's masked
        ones) are missing data; inf is refused. Not constant in every channel;
        any finite magnitude (the solver rescales inside).
    n_sources : int or "auto"
        Number of sources I (1 <= I <= J). ``"auto"`` estimates it from the
        noise-whitened data (:func:`sgmca_fast.noise.estimate_n_sources`, with the
        given noise or variance, else the noise estimated) and keeps the evidence
        in ``n_sources_estimate``; with models it must find at least their count.
    models : dict {IAEModel: int} or list of (IAEModel, int), optional
        Spectral models and how many sources follow each. None runs GMCA alone.
    noise_std : float, (J,) array_like or "mad", optional
        Standard deviation of the Gaussian noise, one value or one per channel (then
        the least squares are weighted by 1 / sigma_j^2 and the thresholds follow).
        None (default, with no ``variance``): each channel's std is estimated from
        the data (:func:`sgmca_fast.noise.estimate_noise_std`, the MAD of the
        finest starlet scale with the sources' n_sources spectral directions
        removed) and used as known; for photon counts (non-negative whole numbers,
        at least 1% of the voxels 0) the Poisson r.m.s. ``sqrt(mean count)`` of
        each channel instead. ``"mad"``: no per-channel level; each source's
        thresholds come from the MAD of its own coefficients (the former default).
    variance : float, (J,) or X's shape array_like, optional
        Noise variance (units of X squared), instead of ``noise_std``: finite and
        > 0. A number or one per channel is exactly ``noise_std=sqrt(variance)``.
        A cube (J, H, W) (or (J, P)) that varies across the pixels weights the
        least squares by each channel's median variance and sets the thresholds
        per pixel: k times ``sqrt(sum_j M_ij^2 v_j(p))`` times the starlet scale
        norm, M the weighted pseudo-inverse.
    noise : {"gaussian", "poisson"}, optional
        The noise law. ``"gaussian"`` (default): Gaussian noise of the given or
        estimated level. ``"poisson"``: X holds photon counts (non-negative whole
        numbers, NaN for missing voxels); the solver runs twice with a noise
        variance that follows the intensity, first the counts smoothed over
        5 x 5 pixels, then the first run's model ``A S`` (reweighted least
        squares; docs/solver.md, "Photon counts"). ``noise_std`` and
        ``variance`` must then be None; ``timings["passes"]`` gives each run.
    mask : bool array_like of X's shape, optional
        True where a voxel is missing (with the NaN of X). Whole missing
        channels are dropped, the pixels cropped to the box of the observed
        ones (S is NaN outside), scattered missing voxels filled from the
        current model during the fit (see ``Separation.missing``).
    fixed : dict {int: (J,) array_like}, optional
        Spectra held fixed (measured or theoretical): the column stays exactly
        as given in A (not normalised), takes no part in the identification,
        and the other columns are fitted given it. Fixed plus modelled sources
        at most n_sources; no fixed source in ``mapping``.
    nscales : int, optional
        Detail scales of the starlet, with ``2**nscales`` at most the smallest
        image side (P for (J, P) data).
    k : float, optional
        Thresholds are k times the noise std of each source and scale (finite, > 0).
    K_max : float, optional
        Largest fraction of the significant coefficients kept while the blind stage
        ramps up (0 < K_max <= 1).
    nonneg_A, nonneg_S : bool, optional
        Non-negative spectra (default) / sources.
    l1 : bool, optional
        Soft (True) or hard (False) thresholding.
    A_init : (J, I) array_like, optional
        Starting mixing matrix instead of the PCA of the detail coefficients.
    mapping : dict {int: IAEModel or str}, optional
        Fix which source follows which model (by object or name) instead of the
        automatic identification; it must give each model its count.
    max_iter_semiblind : int, optional
        Maximum iterations of the semi-blind stage (>= 0; 0: GMCA only).
    tol_semiblind : float, optional
        The semi-blind stage stops when ``||S - S_prev|| / ||S||`` falls below this
        (finite, >= 0).
    refit_spectra : bool, optional
        After the last iteration, refit every free spectrum by least squares to
        the sources debiased on their support (the coefficients the thresholds
        keep, at their least-squares values), leaving the models' manifolds where
        the data pull: more accurate spectra when every source is well above the
        noise (Cas A at 40 dB, k = 1: median SAD +1.5 dB), less accurate for faint
        sources beside bright ones (k = 0.01: -1.2 dB), so off by default
        (docs/results.md, "Refitted spectra"). ``history["refit"]`` gives the
        angle (degrees) each column moved; ``model_fit`` stays that of the
        constrained spectra.
    random_state : int or numpy.random.Generator, optional
        Seeds the random choices: a direction for a column that vanishes, and the
        samples of a manifold with more than 3 anchors.
    progress : bool, optional
        Show a progress bar (tqdm).
    callback : callable, optional
        Called after each iteration with a dict (``stage``, ``iteration``, ``A``,
        ``delta_S``); a true return value stops the current stage.
    subspace : None, "auto" or int, optional
        Iterate on the data projected once on their leading principal channel
        subspace (:mod:`sgmca_fast._subspace`, docs/solver.md "Channel
        subspace"): r x P reduced coefficients instead of J x P, with every
        spectral constraint applied to the full J-channel spectra and the final
        sources computed from the full data. ``"auto"``: r from the
        noise-whitened spectrum with a safety margin; an int: that rank
        (n_sources <= r <= J). None (default): the full space. Complete data
        only, no per-voxel variance, no fixed spectra; ``"auto"`` needs a noise
        level (not ``noise_std="mad"``). What was chosen is in
        ``Separation.subspace``.
    stream : bool, optional
        Read X in blocks instead of into memory (:mod:`sgmca_fast._stream`,
        docs/solver.md "Cubes bigger than memory"): None (default) streams a
        ``np.memmap``, a dask array (its blocks computed on the active
        scheduler) or a ``sgmca_fast._stream.OnDisk``, unless a mask, a
        per-voxel variance, fixed spectra, ``noise="poisson"``,
        ``noise_std="mad"``, ``n_sources="auto"`` or
        ``dtype=np.float32`` is asked for (the cube is then read into memory);
        True streams any array (and refuses those);
        False reads it. Streamed: complete data, ``subspace`` None means
        ``"auto"``.
    dtype : None, numpy.float32, numpy.float64, "float32" or "float64", optional
        Working precision of the data-sized arrays. None (default) and float64:
        double precision throughout. float32: X (converted once, as it is
        read; float32 input is used as it is), its starlet coefficients (the
        C kernels' float32 path), the sources' coefficient buffers, the
        thresholding (Numba kernels) and the products ``pinv(A) Xd`` and
        ``Sd Xd^T`` (sgemm) are single precision, half the memory; A,
        ``Xd Xd^T`` (accumulated in float64), the pseudo-inverses,
        thresholds, manifold projections and confidence features stay
        float64; S is float32 (docs/solver.md, "float32"). Not available
        with missing data, a per-voxel variance map or ``noise="poisson"``.
        Recorded in ``Separation.dtype``.
    starts : int, optional
        Runs of the blind stage (>= 1; default 1, the PCA start alone). With
        N > 1: the PCA start (or ``A_init``), a greedy pursuit over the data's
        detail coefficients, then N - 2 random rotations of the first start's
        columns drawn from ``random_state``; the run kept is the one leaving the
        least data energy unexplained with the final stage's thresholds (K = 1),
        the others are dropped (docs/solver.md, "Several blind starts"). Costs
        about N blind stages. Each start's score is in
        ``Separation.history["starts"]``. More than 1 needs complete data and
        no fixed spectra; with ``noise="poisson"`` only the first pass runs
        several.
    blind_stage : bool, optional
        False skips the blind stage and starts from ``A_init`` (required): with
        models the semi-blind stage refines it; without (GMCA) the result is the
        sources given ``A_init``: the final stage, its reweighting led by a
        first estimate at the same thresholds. For an A already
        separated, e.g. from a previous run on the same field; ``noise="poisson"``
        skips it in its later passes with models (docs/solver.md, "Photon
        counts").
    start_sample : int, optional
        With ``starts`` > 1: 1 (default) runs each start's whole blind stage on
        all the data. s > 1 tries each start on every s-th pixel of the detail
        planes (the whole blind stage there, about 1 / s of its cost), keeps the
        start whose trial leaves the least unexplained energy on that sample, and
        runs the blind stage on all the data from that start only: about
        ``1 + starts / s`` blind stages instead of ``starts`` (docs/solver.md,
        "Cheap trials of the starts"). Ignored with ``starts=1``.
    start_iter : int, optional
        With ``starts`` > 1: each start's trial is the first ``start_iter``
        (1-99) iterations of its blind stage on all the data, scored there;
        the winner's stage then continues to its end (the run it would have
        made alone), the others are dropped: about ``1 + (starts - 1) *
        start_iter / 100`` blind stages. Not with ``start_sample`` > 1.
        Ignored with ``starts=1``.

    Returns
    -------
    Separation
        Mixing matrix, sources, mapping, per-source model fit, history, timings.

    Raises
    ------
    InputError
        (a ``ValueError``) inf in X, a mask of another shape, no observed
        voxel, data without detail coefficients, a bad fixed spectrum,
        fewer channels than sources, a parameter out of range, a model whose
        channel count differs from J, a bad mapping, more modelled sources
        than n_sources (or than ``"auto"`` found), both noise_std and variance,
        a variance of the wrong shape or not finite and positive, a subspace
        with missing data, a variance map, fixed spectra or (``"auto"``)
        ``noise_std="mad"``, a subspace rank out of range; with
        ``noise="poisson"``, negative counts or values with a fraction; an
        unknown dtype, or float32 with missing data, a variance map or
        ``noise="poisson"``; ``starts`` below 1, or above 1 with missing data or
        fixed spectra; ``start_sample`` below 1, ``start_iter`` outside 1-99
        or with ``start_sample`` > 1; ``blind_stage=False`` without ``A_init``
        or with ``starts`` above 1.
    InputTypeError
        (also a ``TypeError``) a parameter of the wrong type.
    """
    dtype = _validation.float_dtype(dtype, "dtype")
    # A memory-mapped or dask cube is streamed unless it needs what only the
    # in-memory solver does (missing data, "auto", float32, ...): then it is
    # read in.
    if _stream.is_lazy(X, stream) and (stream is not None or not _stream.refusals(
            n_sources, {"noise": noise, "mask": mask, "fixed": fixed,
                        "variance": variance, "noise_std": noise_std,
                        "dtype": dtype, "refit_spectra": refit_spectra})):
        return _stream.separate(
            Separation, X, n_sources, models, noise_std=noise_std, variance=variance,
            noise=noise, mask=mask, fixed=fixed, nscales=nscales, k=k, K_max=K_max,
            nonneg_A=nonneg_A, nonneg_S=nonneg_S, l1=l1, A_init=A_init,
            mapping=mapping, max_iter_semiblind=max_iter_semiblind,
            refit_spectra=refit_spectra,
            tol_semiblind=tol_semiblind, random_state=random_state,
            progress=progress, callback=callback, subspace=subspace, dtype=dtype,
            starts=starts, start_sample=start_sample,
            start_iter=start_iter, blind_stage=blind_stage)
    if _validation.choice(noise, "noise", ("gaussian", "poisson")) == "poisson":
        _refuse_float32(dtype, 'noise="poisson"')
        return _poisson.separate_counts(
            separate, X, n_sources, models, noise_std=noise_std, variance=variance,
            mask=mask, A_init=A_init, fixed=fixed, nscales=nscales, k=k,
            K_max=K_max, nonneg_A=nonneg_A, nonneg_S=nonneg_S, l1=l1,
            mapping=mapping, max_iter_semiblind=max_iter_semiblind,
            refit_spectra=refit_spectra,
            tol_semiblind=tol_semiblind, random_state=random_state,
            progress=progress, callback=callback, subspace=subspace, starts=starts,
            start_sample=start_sample, start_iter=start_iter,
            blind_stage=blind_stage)
    t_start = time.perf_counter()
    X, missing = _missing.read(X, mask, dtype)
    if missing is not None:
        _refuse_float32(dtype, "missing data (NaN or mask)")
    plan = None if missing is None else _missing.Plan(missing)
    J = X.shape[0]
    n_sources = _checks.n_sources(n_sources, J)
    nscales = _checks.nscales(nscales, X.shape[1:] if plan is None
                              else plan.pixel_shape)
    k = real(k, "k", low=0.0, low_open=True)
    K_max = real(K_max, "K_max", low=0.0, low_open=True, high=1.0)
    nonneg_A = boolean(nonneg_A, "nonneg_A")
    nonneg_S = boolean(nonneg_S, "nonneg_S")
    l1 = boolean(l1, "l1")
    progress = boolean(progress, "progress")
    noise_std, variance = _noisemap.check_noise(noise_std, variance, X.shape)
    if variance is not None and variance.ndim > 1:
        _refuse_float32(dtype, "a per-voxel variance map")
    n_sources, n_estimate = _noisemap.resolve_n_sources(n_sources, X, noise_std,
                                                        variance, models, missing)
    A_init = _check_A_init(A_init, (J, n_sources))
    max_iter_semiblind = integer(max_iter_semiblind, "max_iter_semiblind", 0)
    tol_semiblind = real(tol_semiblind, "tol_semiblind", low=0.0)
    refit_spectra = boolean(refit_spectra, "refit_spectra")
    model_list, counts = _checks.model_list(models, J, n_sources)
    mapped = _checks.mapping_indices(mapping, model_list, counts, n_sources)
    held = _fixed.check(fixed, J, n_sources, sum(counts), mapped)
    starts = _starts.check(starts, missing=missing is not None, held=held)
    start_sample, start_iter = _starts.check_trial(start_sample, start_iter)
    blind_stage = _checks.blind_stage(blind_stage, A_init, starts)
    sub_rank = _subspace.check(subspace, J, n_sources, missing=missing is not None,
                               variance=variance, held=held, noise_std=noise_std)
    noise = _noisemap.noise_plan(X, noise_std, variance, n_sources, missing,
                                 n_estimate)
    callback = _checks.callback_or_none(callback)
    rng = _checks.rng(random_state)

    noise_used = noise.std  # reported for all J channels
    if plan is not None:  # the fitted channels and pixels, holes filled at first
        X = plan.reduce(X)
        noise = noise.reduced(plan)
    # Any finite magnitude: scale by an exact power of two, restore S at the end.
    e = _scale_exponent(X)
    if e:
        X = np.ldexp(X, -e)
    Xw = _starlet_coefficients(X, nscales)
    Xd = Xw[:, :nscales].reshape(X.shape[0], -1)  # a view: no copy
    _checks.detail_energy(Xd, X)
    t_transform = time.perf_counter()

    scaled = noise.scaled(e)
    norms = starlet.scale_norms(X.shape[1:], nscales)
    step = SourceStep(Xw, scaled.std, norms, k, l1, nonneg_S, scaled.variance_map)
    sub = None
    if sub_rank is None:
        # float32: accumulated in float64 by column blocks (PCA start, recovery)
        xx = Xd @ Xd.T if Xd.dtype == np.float64 else _subspace._gram(Xd)
        pb = Problem(Xd, xx, step, n_sources, K_max, nonneg_A, rng)
    else:
        sub = _subspace.reduce(Xw[:, :nscales], sub_rank, noise_std=scaled.std,
                               n_min=n_sources, image_shape=X.shape[1:],
                               estimated=noise.origin == "estimated",
                               random_state=rng)
        xx = sub.xx
        pb = _subspace.problem(sub, Xw, step, Problem(None, xx, None, n_sources,
                                                      K_max, nonneg_A, rng))
    t_subspace = time.perf_counter()
    if plan is not None:
        pb.missing = _missing.runtime(plan, Xw, X, nscales)
        xx = pb.xx = plan.full_gram(xx)
    pb.held = held
    rec = Recorder(progress, callback)

    if sub is not None:
        A0 = _initial_A(A_init, None, n_sources, rng, sub)
    elif held is None:
        A0 = _initial_A(A_init, xx, n_sources, rng)
    else:
        A0 = held.initial_A(A_init, xx, n_sources, rng)
    if blind_stage:
        state, start_record = _starts.blind(pb, A0, starts, rec, start_sample,
                                            start_iter)
    else:
        state = no_blind_stage(pb, A0, estimate=not (model_list
                                                      and max_iter_semiblind > 0))
        start_record = None
    n_blind = state.n_iter
    t_blind = time.perf_counter()

    restarted = False
    if model_list and max_iter_semiblind > 0:
        cons = Constraints.build(model_list, counts, mapped, max_iter_semiblind,
                                 tol_semiblind, rng)
        state, restarted = semiblind_stage(pb, cons, state, rec)
    else:
        state = skip_semiblind(state)
    refit = None
    if refit_spectra:
        state, refit = refit_stage(pb, state)
    t_semi = time.perf_counter()
    rec.close()

    S = final_stage(pb, state).reshape((n_sources,) + X.shape[1:])
    confidence = _confidence.confidence(
        pb.fit_rows(state.A), S, Xd, nscales, noise_std=scaled.std,
        model_fit=state.fit,
        reseeded=state.reseeded, restarted=restarted)
    if e:
        S = np.ldexp(S, e)
    if plan is not None:
        S = plan.expand(S)
    t_end = time.perf_counter()

    return Separation(
        A=state.A,
        S=S,
        mapping=state.mapping if held is None else held.label(state.mapping),
        model_fit=state.fit,
        n_iter={"blind": n_blind, "semiblind": state.n_iter},
        history={**rec.history, "reseeded": state.reseeded, "restarted": restarted,
                 **({} if start_record is None else {"starts": start_record}),
                 **({} if refit is None else {"refit": refit})},
        timings={
            "transform": t_transform - t_start,
            "setup": t_subspace - t_transform,
            "blind": t_blind - t_subspace,
            "semiblind": t_semi - t_blind,
            "final": t_end - t_semi,
            "total": t_end - t_start,
        },
        missing=None if plan is None else plan.summary,
        fixed=[] if held is None else list(held.index),
        noise_std=noise_used,
        n_sources_estimate=n_estimate,
        subspace=None if sub is None else sub.summary(),
        confidence=confidence,
        dtype=np.dtype(dtype).name,
    )


def _refuse_float32(dtype, what):
    """Refuse ``dtype=float32`` with an option that has no float32 path."""
    if dtype == np.float32:
        raise InputError(f"dtype=float32 is not available with {what}; use "
                         "dtype=None (float64)")


def gmca(X, n_sources, **kwargs) -> Separation:
    """Blind separation with GMCA: :func:`separate` without spectral models.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data.
    n_sources : int or "auto"
        Number of sources.
    **kwargs
        Any keyword of :func:`separate` except ``models`` and ``mapping``;
        e.g. ``starts=3`` runs the blind stage from three starts and keeps the
        one that explains the data best (it keeps GMCA from merging two
        sources on Cas A draws where the PCA start does: docs/results.md,
        "Several blind starts").

    Returns
    -------
    Separation
    """
    for name in ("models", "mapping"):
        if name in kwargs:
            raise InputTypeError(f"gmca() takes no {name!r}; use separate()")
    return separate(X, n_sources, None, **kwargs)
