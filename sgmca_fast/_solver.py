"""The separation solver: GMCA (blind) and sGMCA (semi-blind with learned spectra).

The data are transformed to the starlet domain once; every iteration then works on
the transform coefficients: least squares with BLAS, thresholds from Numba kernels,
and the spectral constraints through the IAE models. See ALGORITHM.md, sections 2-3.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from . import _kernels, starlet
from ._identify import identify

__all__ = ["Separation", "gmca", "separate"]

_EIG_FLOOR = 1e-9  # eigenvalues of the normal matrices floored at this * max
_IT_MIN = 100  # GMCA: minimum blind iterations; the K ramp lasts it_min / 2
_BLIND_TOL = 1e-2  # GMCA: blind stage stops when delta_S falls below this
_DUPLICATE_COS = 0.99  # sGMCA: columns this aligned describe one source twice
_RESEED_GAIN = 1.2  # ... and a candidate explaining this much more replaces one
_MIN_SLIVER = 0.05  # norm of a column's part outside the others' span worth counting
_NOISE_MARGIN = 10.0  # a lost source carries this much more than a noise direction
_MAX_RESEEDS = 3
_FIT_DOUBTFUL = 0.05  # sGMCA: a modelled spectrum this far from its manifold


@dataclass
class Separation:
    """Result of :func:`separate`.

    Attributes
    ----------
    A : (J, I) ndarray
        Mixing matrix; each column is a spectrum. Modelled columns lie on their
        model's manifold (unit L2 norm); the others have norm at most 1.
    S : (I, H, W) or (I, P) ndarray
        Sources, in the data's units divided by those of A.
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
        source; see the user guide).
    timings : dict
        Seconds spent in ``"transform"``, ``"blind"``, ``"semiblind"``, ``"final"``
        and ``"total"``.
    """

    A: np.ndarray
    S: np.ndarray
    mapping: list
    model_fit: list
    n_iter: dict
    history: dict = field(repr=False)
    timings: dict = field(repr=False)


def _floored_inverse(gram):
    """Inverse of a symmetric PSD matrix with eigenvalues floored at 1e-9 * max."""
    e, v = np.linalg.eigh(gram)
    top = e.max(initial=0.0)
    if not top > 0:
        return np.zeros_like(gram)
    return (v / np.maximum(e, _EIG_FLOOR * top)) @ v.T


def _weighted_pinv(A, weights=None):
    """Return (A^T W A)^-1 A^T W, W = diag(weights) (identity if None), floored."""
    Aw = A.T if weights is None else A.T * weights
    return _floored_inverse(Aw @ A) @ Aw


def _unit_columns(A, rng):
    """Scale columns to unit L2 norm; a null column gets a random direction."""
    norms = np.linalg.norm(A, axis=0)
    dead = ~(norms > 0)
    if dead.any():
        A[:, dead] = np.abs(rng.standard_normal((A.shape[0], int(dead.sum()))))
        norms[dead] = np.linalg.norm(A[:, dead], axis=0)
    A /= norms
    return A


def _nonneg_columns(A):
    """Flip each column so that its sum is positive, then clip at zero."""
    A *= np.where(A.sum(axis=0) < 0, -1.0, 1.0)
    np.maximum(A, 0.0, out=A)
    return A


def _cond(A):
    s = np.linalg.svd(A, compute_uv=False)
    return float(s[0] / s[-1]) if s[-1] > 0 else np.inf


def _check_models(models, n_channels, n_sources):
    """Return (list of models, list of counts) from the ``models`` argument."""
    if models is None:
        return [], []
    items = list(models.items()) if isinstance(models, dict) else list(models)
    out_models, counts = [], []
    for item in items:
        try:
            model, count = item
        except (TypeError, ValueError):
            raise TypeError(
                "models must be a dict {IAEModel: number of sources} or a list of "
                f"(IAEModel, count) pairs, got an item {item!r}"
            ) from None
        if not hasattr(model, "fast_project") or not hasattr(model, "project"):
            raise TypeError(
                f"models keys must be IAE models, got {type(model).__name__}"
            )
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)):
            raise TypeError(f"model counts must be integers, got {count!r}")
        if count < 1:
            raise ValueError(f"each model must take at least 1 source, got {count}")
        if model.n_channels != n_channels:
            raise ValueError(
                f"model {model.name!r} has {model.n_channels} channels but X has "
                f"{n_channels}"
            )
        out_models.append(model)
        counts.append(int(count))
    if sum(counts) > n_sources:
        raise ValueError(
            f"the models take {sum(counts)} sources in all but n_sources is "
            f"{n_sources}"
        )
    return out_models, counts


def _check_mapping(mapping, models, counts, n_sources):
    """Turn a user mapping {source index: model or name} into model indices."""
    names = [m.name for m in models]
    fixed = [None] * n_sources
    for source, target in dict(mapping).items():
        if (
            isinstance(source, bool)
            or not isinstance(source, (int, np.integer))
            or not 0 <= source < n_sources
        ):
            raise ValueError(
                f"mapping names source {source!r}, but sources are 0..{n_sources - 1}"
            )
        if any(target is m for m in models):
            index = next(i for i, m in enumerate(models) if m is target)
        elif isinstance(target, str) and target in names:
            index = names.index(target)
        else:
            shown = target if isinstance(target, str) else type(target).__name__
            raise ValueError(
                f"mapping names model {shown!r} for source {source}, which is not in "
                f"models (known: {sorted(names)})"
            )
        fixed[int(source)] = index
    used = [fixed.count(i) for i in range(len(models))]
    for i, (n_used, n_wanted) in enumerate(zip(used, counts, strict=True)):
        if n_used != n_wanted:
            raise ValueError(
                f"mapping ties {n_used} source(s) to model {names[i]!r}, which the "
                f"models argument gives {n_wanted}"
            )
    return fixed


def _check_noise(noise_std, n_channels):
    if noise_std is None:
        return None
    sigma = np.asarray(noise_std, dtype=float)
    if sigma.ndim == 0:
        sigma = np.full(n_channels, float(sigma))
    if sigma.shape != (n_channels,):
        raise ValueError(
            f"noise_std must be a scalar or have one value per channel "
            f"({n_channels},), got shape {sigma.shape}"
        )
    if not (np.all(np.isfinite(sigma)) and np.all(sigma > 0)):
        raise ValueError("noise_std must be finite and positive")
    return sigma


def _validate(X, n_sources, nscales, k, K_max, A_init):
    X = np.asarray(X)
    if not np.issubdtype(X.dtype, np.number) or np.iscomplexobj(X):
        raise TypeError(f"X must be a real numeric array, got dtype {X.dtype}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim not in (2, 3):
        raise ValueError(
            f"X must be a cube (J, H, W) or a matrix (J, P), got shape {X.shape}"
        )
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or inf values")
    if isinstance(n_sources, bool) or not isinstance(n_sources, (int, np.integer)):
        raise TypeError(f"n_sources must be an integer, got {n_sources!r}")
    if n_sources < 1:
        raise ValueError(f"n_sources must be at least 1, got {n_sources}")
    if X.shape[0] < n_sources:
        raise ValueError(
            f"X has {X.shape[0]} channels, fewer than n_sources = {n_sources}"
        )
    starlet._check_nscales(nscales)
    if not k > 0:
        raise ValueError(f"k must be positive, got {k}")
    if not 0 < K_max <= 1:
        raise ValueError(f"K_max must be in (0, 1], got {K_max}")
    if A_init is not None:
        A_init = np.array(A_init, dtype=np.float64)
        if A_init.shape != (X.shape[0], n_sources):
            raise ValueError(
                f"A_init must have shape (J, I) = {(X.shape[0], n_sources)}, got "
                f"{A_init.shape}"
            )
        if not np.all(np.isfinite(A_init)):
            raise ValueError("A_init contains NaN or inf values")
    return X, A_init


class _SourceStep:
    """The source update: weighted least squares then (reweighted) thresholding."""

    def __init__(self, Xw, noise, norms, k, l1, nonneg_S):
        self.Xw = Xw  # (J, nscales + 1, P) starlet coefficients of the data
        self.nscales = Xw.shape[1] - 1
        self.noise = noise
        self.weights = None if noise is None else 1.0 / noise**2
        self.norms = norms[: self.nscales]
        self.k = k
        self.l1 = l1
        self.nonneg_S = nonneg_S

    def pinv(self, A):
        """(A^T W A)^-1 A^T W with floored eigenvalues: (I, J)."""
        return _weighted_pinv(A, self.weights)

    def __call__(self, A, K, prev_detail, out):
        """Thresholded detail coefficients (I, nscales, P) into out.

        K < 1 keeps at most that fraction of the coefficients above the noise
        threshold; prev_detail (or None) turns on the l1 reweighting.
        """
        ns = self.nscales
        M = self.pinv(A)
        J, _, P = self.Xw.shape
        np.matmul(M, self.Xw[:, :ns].reshape(J, ns * P), out=out.reshape(-1, ns * P))
        rows = out.reshape(-1, P)  # (I * nscales, P), a view
        if self.noise is not None:
            row_std = np.sqrt((M**2) @ self.noise**2)
            kstd = self.k * (row_std[:, None] * self.norms[None, :]).ravel()
        else:
            kstd = self.k * _kernels.mad_std(rows)
        thr = _kernels.support_thresholds(rows, kstd, K) if K < 1 else kstd
        reweight = prev_detail is not None
        _kernels.threshold(
            rows,
            thr,
            prev=prev_detail.reshape(-1, P) if reweight else None,
            kstd=kstd if reweight else None,
            hard=not self.l1,
            out=rows,
        )
        return M

    def full(self, M, detail):
        """All planes (I, nscales + 1, P): thresholded details plus the coarse plane."""
        J, nplanes, P = self.Xw.shape
        full = np.empty((M.shape[0], nplanes, P))
        full[:, :-1] = detail
        full[:, -1] = M @ self.Xw[:, -1]
        if self.nonneg_S:
            _kernels.nonneg_sources(full)
        return full


def _mixing_ls(Xd, Sd):
    """Solve A = Xd Sd^T (Sd Sd^T)^-1 on the detail coefficients (floored)."""
    # (Sd Xd^T)^T: OpenBLAS runs this orientation of the skinny product faster.
    return (Sd @ Xd.T).T @ _floored_inverse(Sd @ Sd.T)


def _manifold_samples(model, rng, n_max=600):
    """Unit-norm spectra spread over a model's manifold.

    The model's training spectra when it keeps them; otherwise the generator on a
    grid of latent weights running a quarter beyond the anchors on each side
    (the IAE extrapolates), or on random weights for N > 3 anchors.
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


def _worst_fit(fit):
    """Return the largest model fit of a run (0 when no source is modelled)."""
    return max((f for f in fit if f is not None), default=0.0)


def _model_pursuit(xx, samples, counts, n_sources, nonneg_A):
    """Build a mixing matrix from the models' spectra that best explain the data.

    Greedy pursuit in the spectral domain: each step adds, among the samples of
    the models that still have room, the spectrum whose part orthogonal to the
    columns chosen so far carries the most data energy ``u^T Xd Xd^T u``; the
    unmodelled columns are the leading directions of what is left. Uses only
    Xd Xd^T (J x J). Returns (J, n_sources) unit columns.
    """
    J = xx.shape[0]
    room = list(counts)
    cols = []
    for _ in range(sum(counts)):
        q = np.linalg.qr(np.column_stack(cols))[0] if cols else np.zeros((J, 0))
        best = (-np.inf, None)
        for m, cand in enumerate(samples):
            if room[m] == 0 or len(cand) == 0:
                continue
            u = cand.T - q @ (q.T @ cand.T)
            norm2 = np.sum(u * u, axis=0)
            energy = np.sum(u * (xx @ u), axis=0)
            gain = energy / np.where(norm2 > 1e-12, norm2, np.inf)
            c = int(np.argmax(gain))
            if gain[c] > best[0]:
                best = (gain[c], m, cand[c])
        if best[1] is None:
            break
        room[best[1]] -= 1
        cols.append(best[2])
    while len(cols) < n_sources:
        q = np.linalg.qr(np.column_stack(cols))[0] if cols else np.zeros((J, 0))
        rest = xx - q @ (q.T @ xx)
        rest = rest - (rest @ q) @ q.T
        v = np.linalg.eigh(rest)[1][:, -1]
        v = v if v.sum() >= 0 else -v
        if nonneg_A:
            v = np.maximum(v, 0.0)
        cols.append(v / max(np.linalg.norm(v), 1e-300))
    return np.column_stack(cols)


def _reseed_lost_source(A, xx, candidates):
    """Replace a duplicated column by the candidate spectrum that explains most data.

    Two columns of A pointing the same way (|cos| > _DUPLICATE_COS) describe one
    source twice, so another source is missing. For each of the two, the spectrum
    s among ``candidates`` (unit rows, e.g. samples of the models' manifolds) that
    most increases the data energy explained by the other columns plus s,
    ``u^T Xd Xd^T u`` with ``u`` the unit part of s orthogonal to them, replaces it
    if that beats keeping the duplicate by 20% and carries ten times the energy of a
    noise direction (the median eigenvalue of Xd Xd^T). Needs only Xd Xd^T (no
    pass over the data). Returns the column index replaced, or None.
    """
    cos = np.abs(A.T @ A)
    np.fill_diagonal(cos, 0.0)
    i, j = np.unravel_index(np.argmax(cos), cos.shape)
    if cos[i, j] <= _DUPLICATE_COS or len(candidates) == 0:
        return None
    # Energy of one direction of pure noise: the median eigenvalue of Xd Xd^T.
    noise_floor = float(np.median(np.linalg.eigvalsh(xx)))
    best = (0.0, None, None)
    for col in (i, j):
        q = np.linalg.qr(np.delete(A, col, axis=1))[0]
        u = candidates.T - q @ (q.T @ candidates.T)  # (J, n_candidates)
        norm2 = np.sum(u * u, axis=0)
        gain = np.sum(u * (xx @ u), axis=0) / np.where(norm2 > 1e-12, norm2, np.inf)
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


def separate(
    X,
    n_sources,
    models=None,
    *,
    noise_std=None,
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
    random_state=None,
    progress=False,
    callback=None,
) -> Separation:
    """Separate X = A S + N with sGMCA (GMCA when no model is given).

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data: J channels, each an image (2-D starlet) or a vector of P samples
        (1-D starlet along the samples). Must be finite.
    n_sources : int
        Number of sources I (1 <= I <= J).
    models : dict {IAEModel: int} or list of (IAEModel, int), optional
        Spectral models and how many sources follow each. None runs GMCA alone.
    noise_std : float or (J,) array_like, optional
        Standard deviation of the Gaussian noise, one value or one per channel (then
        the least squares are weighted by 1 / sigma_j^2 and the thresholds follow).
        None estimates the noise in each source by the MAD.
    nscales : int, optional
        Detail scales of the starlet.
    k : float, optional
        Thresholds are k times the noise std of each source and scale.
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
        Maximum iterations of the semi-blind stage (0: GMCA only).
    tol_semiblind : float, optional
        The semi-blind stage stops when ``||S - S_prev|| / ||S||`` falls below this.
    random_state : int or numpy.random.Generator, optional
        Seeds the only random choice: a direction for a column that vanishes.
    progress : bool, optional
        Show a progress bar (tqdm).
    callback : callable, optional
        Called after each iteration with a dict (``stage``, ``iteration``, ``A``,
        ``delta_S``); a true return value stops the current stage.

    Returns
    -------
    Separation
        Mixing matrix, sources, mapping, per-source model fit, history, timings.

    Raises
    ------
    ValueError
        NaN or inf in X, fewer channels than sources, a model whose channel count
        differs from J, a bad mapping, or more modelled sources than n_sources.
    """
    t_start = time.perf_counter()
    X, A_init = _validate(X, n_sources, nscales, k, K_max, A_init)
    J = X.shape[0]
    model_list, counts = _check_models(models, J, n_sources)
    fixed = None
    if mapping is not None:
        if not model_list:
            raise ValueError("mapping was given without models")
        fixed = _check_mapping(mapping, model_list, counts, n_sources)
    noise = _check_noise(noise_std, J)
    rng = np.random.default_rng(random_state)

    image_shape = X.shape[1:]
    P = int(np.prod(image_shape))
    if X.ndim == 3:
        Xw = starlet.forward(X, nscales).reshape(J, nscales + 1, P)
    else:
        Xw = starlet.forward1d(X, nscales)
    norms = starlet.scale_norms(image_shape, nscales)
    Xd = Xw[:, :nscales].reshape(J, nscales * P)  # a view: no copy
    t_transform = time.perf_counter()

    step = _SourceStep(Xw, noise, norms, k, l1, nonneg_S)
    detail = np.zeros((n_sources, nscales, P))
    prev = np.zeros_like(detail)
    history = {"stage": [], "delta_S": [], "delta_A": [], "cond_A": []}

    xx = Xd @ Xd.T
    if A_init is not None:
        A = A_init
    else:
        A = np.linalg.eigh(xx)[1][:, ::-1][:, :n_sources].copy()
    A = _unit_columns(A, rng)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=2 * _IT_MIN, desc="GMCA", unit="it", leave=False)

    def record(stage, it, A_new, A_old, delta_S):
        history["stage"].append(stage)
        history["delta_S"].append(delta_S)
        history["delta_A"].append(
            float(np.linalg.norm(A_new - A_old) / max(np.linalg.norm(A_new), 1e-300))
        )
        history["cond_A"].append(_cond(A_new))
        if bar is not None:
            bar.update()
            bar.set_postfix(delta_S=f"{delta_S:.1e}")
        if callback is not None:
            return bool(
                callback(
                    {"stage": stage, "iteration": it, "A": A_new, "delta_S": delta_S}
                )
            )
        return False

    # Blind stage (GMCA).
    n_blind = 0
    for it in range(2 * _IT_MIN):
        K = min(K_max / (_IT_MIN / 2 - 1) * (it + 1), K_max)
        reweight = K >= K_max
        prev, detail = detail, prev
        step(A, K, prev if reweight else None, detail)
        delta_S = _kernels.relative_change(
            detail.reshape(-1, P), prev.reshape(-1, P)
        )
        A_old = A
        A = _mixing_ls(Xd, detail.reshape(n_sources, -1))
        if nonneg_A:
            A = _nonneg_columns(A)
        A = _unit_columns(A, rng)
        n_blind = it + 1
        if record("blind", it, A, A_old, delta_S):
            break
        if n_blind >= _IT_MIN and delta_S <= _BLIND_TOL:
            break
    t_blind = time.perf_counter()

    # Semi-blind stage (sGMCA).
    def semiblind(A, detail, prev):
        """Run the semi-blind iterations from A; returns the final state."""
        state = {"mapping": [None] * n_sources, "fit": [None] * n_sources,
                 "n_iter": 0, "reseeded": []}
        if bar is not None:
            bar.reset(total=max_iter_semiblind)
            bar.set_description("sGMCA")
        for it in range(max_iter_semiblind):
            prev, detail = detail, prev
            step(A, K_max, prev, detail)
            delta_S = _kernels.relative_change(
                detail.reshape(-1, P), prev.reshape(-1, P)
            )
            A_ls = _mixing_ls(Xd, detail.reshape(n_sources, -1))
            A_new, assign, fit = _constrain(
                A_ls, model_list, counts, fixed, nonneg_A, rng
            )
            if len(state["reseeded"]) < _MAX_RESEEDS:
                col = _reseed_lost_source(A_new, xx, candidates)
                if col is not None:
                    state["reseeded"].append((it, col))
            state["n_iter"] = it + 1
            stop = record("semiblind", it, A_new, A, delta_S)
            A = A_new
            state["mapping"] = [None if m is None else model_list[m].name
                                for m in assign]
            state["fit"] = fit
            # delta_S compares with an S made before any constraint at it = 0.
            if stop or (it >= 1 and delta_S <= tol_semiblind):
                break
        state.update(A=A, detail=detail, prev=prev)
        return state

    result = {"A": A, "detail": detail, "prev": prev, "mapping": [None] * n_sources,
              "fit": [None] * n_sources, "n_iter": 0, "reseeded": []}
    restarted = False
    if model_list and max_iter_semiblind > 0:
        samples = [_manifold_samples(m, rng) for m in model_list]
        candidates = np.vstack(samples)
        blind_detail = detail.copy()
        result = semiblind(A, detail, prev)
        if fixed is None and _worst_fit(result["fit"]) > _FIT_DOUBTFUL:
            # A doubtful end (a source far from its model): start again from the
            # spectra of the models that best explain the data, keep the better.
            A_pursuit = _model_pursuit(xx, samples, counts, n_sources, nonneg_A)
            retry = semiblind(A_pursuit, blind_detail, blind_detail.copy())
            restarted = True
            if _worst_fit(retry["fit"]) < _worst_fit(result["fit"]):
                result = retry
    A, detail, prev = result["A"], result["detail"], result["prev"]
    result_mapping, model_fit = result["mapping"], result["fit"]
    n_semi, reseeded = result["n_iter"], result["reseeded"]
    t_semi = time.perf_counter()
    if bar is not None:
        bar.close()

    # Final stage: all significant coefficients, reweighted, then the inverse.
    prev, detail = detail, prev
    M = step(A, 1.0, prev, detail)
    S = starlet.inverse(step.full(M, detail), axis=1)
    S = S.reshape((n_sources,) + image_shape)
    t_end = time.perf_counter()

    return Separation(
        A=A,
        S=S,
        mapping=result_mapping,
        model_fit=model_fit,
        n_iter={"blind": n_blind, "semiblind": n_semi},
        history={**history, "reseeded": reseeded, "restarted": restarted},
        timings={
            "transform": t_transform - t_start,
            "blind": t_blind - t_transform,
            "semiblind": t_semi - t_blind,
            "final": t_end - t_semi,
            "total": t_end - t_start,
        },
    )


def _constrain(A_ls, models, counts, fixed, nonneg_A, rng):
    """Apply the spectral constraints to the least-squares mixing matrix.

    As in the authors' code, every column is first made non-negative (when asked)
    and scaled to unit norm, which is its projection on the unit ball up to the
    scale that S absorbs; modelled columns then go to their manifold (unit norm).
    Returns the new A, the model index of each column (or None) and the relative
    distance of each modelled column to its manifold.
    """
    A = A_ls.copy()
    if nonneg_A:
        A = _nonneg_columns(A)
    A = _unit_columns(A, rng)
    if fixed is None:
        assign, lambdas, _, cleaned = identify(A, models, counts, nonneg=nonneg_A)
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


def gmca(X, n_sources, **kwargs) -> Separation:
    """Blind separation with GMCA: :func:`separate` without spectral models.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data.
    n_sources : int
        Number of sources.
    **kwargs
        Any keyword of :func:`separate` except ``models`` and ``mapping``.

    Returns
    -------
    Separation
    """
    for name in ("models", "mapping"):
        if name in kwargs:
            raise TypeError(f"gmca() takes no {name!r}; use separate()")
    return separate(X, n_sources, None, **kwargs)
