"""Cubes bigger than memory: the solver's passes over data read in blocks.

:func:`separate` is :func:`sgmca_fast.separate` for a cube that is not in memory
(a ``np.memmap``, a dask array, an :class:`OnDisk` array such as a FITS HDU opened
with ``memmap=True``). The data are read in blocks of at most ``BLOCK_BYTES``
(float64, with their starlet transform) and never held whole; what is held is the
reduced coefficients ``Z = V^T D^-1 Xw`` (r x (nscales + 1) x P) of the channel
subspace (:mod:`sgmca_fast._subspace`) and a block. The passes
(docs/solver.md, "Cubes bigger than memory"):

1. channel blocks (whole images): each channel's largest magnitude, its noise std
   (the MAD of the finest starlet scale, :func:`sgmca_fast.noise.
   estimate_noise_std`), the finest-scale coefficients of a bounded set of pixel
   rows for the low-rank refinement of that estimate, the detail energy;
2. the subspace: ``Xd Xd^T`` from strips of image rows with a halo (all channels,
   exact: the starlet of a strip equals the full one away from its cut edges), or
   above ``GRAM_MAX_CHANNELS`` the randomized range finder, each of its products
   ``Y Y^T Q`` two passes over channel blocks;
3. channel blocks: ``Z`` accumulated, ``Z += V_b^T D_b^-1 Xw_b``;
4. the iterations on Z (the subspace Problem, as in memory);
5. channel blocks: ``[M; Q^T] X`` (M the weighted pseudo-inverse of the final A,
   Q an orthonormal basis of its columns) in the pixel domain; the starlet is
   linear and per channel, so the transform of ``M X`` is ``M Xw`` and the final
   stage thresholds it as in memory; ``Q^T X`` gives the confidence's unexplained
   energy.

With a dask array every block's work is a task on the active scheduler (a
``distributed`` cluster included) and only the small results and Z come back.
"""

import math
import operator
import sys
import time

import numpy as np

from . import _checks, _confidence, _starts, _subspace, _validation, starlet
from ._noisemap import check_noise
from ._sources import SourceStep, unit_columns, weighted_pinv
from ._stages import (
    Constraints,
    Problem,
    Recorder,
    no_blind_stage,
    semiblind_stage,
    skip_semiblind,
)
from ._validation import InputError, InputTypeError, boolean, integer, real, real_array
from .noise import _mad, _refine_fixed

__all__ = ["BLOCK_BYTES", "Cube", "OnDisk", "is_lazy", "separate"]

# Bytes of one block in float64 with its starlet planes (at least one channel or
# one row of pixels is read, whatever this says).
BLOCK_BYTES = 256 * 2**20
# Bytes of finest-scale coefficients kept for the low-rank noise refinement: all
# of them when they fit (then the estimate is the in-memory one), else evenly
# spaced pixel rows.
REFINE_BYTES = 128 * 2**20
_SAFE_EXPONENT = 100  # as sgmca_fast._solver: data scaled by 2**-e beyond 2**+-100
_BORDER = 2  # finest-scale coefficients this close to the border are not used
_COLUMNS = 2**16  # columns of one product added into a running sum


class OnDisk:
    """Marks an array-like that ``separate`` reads in blocks (not in memory).

    Parameters
    ----------
    array : array_like with ``shape``, ``dtype`` and slicing
        E.g. the data of a FITS HDU opened with ``memmap=True``, an h5py
        dataset, a zarr array; (J, H, W) or (J, P).
    """

    def __init__(self, array):
        self.array = array
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, index):
        return self.array[index]


def _is_dask(X):
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(X, da.Array)


def is_lazy(X, stream=None):
    """Whether ``separate`` takes the streamed path for X.

    A ``np.memmap``, a dask array or an :class:`OnDisk`; ``stream=True`` forces
    it (any array), ``stream=False`` forbids it (the data are read into memory).
    """
    if stream is not None:
        return boolean(stream, "stream")
    return isinstance(X, (np.memmap, OnDisk)) or _is_dask(X)


class Cube:
    """A (J, H, W) or (J, P) cube read in float64 blocks; nothing is read here.

    Parameters
    ----------
    X : ndarray, np.memmap, dask array or OnDisk
    """

    def __init__(self, X):
        data = X.array if isinstance(X, OnDisk) else X
        dtype = np.dtype(getattr(data, "dtype", None) or np.float64)
        if not hasattr(data, "shape") or not hasattr(data, "__getitem__"):
            raise InputTypeError("X must be an array with a shape for the streamed "
                                 f"path, got {type(X).__name__}")
        if dtype.kind not in "iuf":
            raise InputTypeError(f"X must be real numbers, got dtype {dtype}")
        self.shape = tuple(int(n) for n in data.shape)
        if len(self.shape) not in (2, 3):
            raise InputError("X must be a cube (J, H, W) or a matrix (J, P), got "
                             f"shape {self.shape}")
        self.data = data
        self.dask = _is_dask(data)
        self.J = self.shape[0]
        self.pixel_shape = self.shape[1:]
        self.P = math.prod(self.pixel_shape)

    def read(self, index):
        """Return the block ``X[index]`` as float64 (converted block by block)."""
        return np.asarray(self.data[index], dtype=np.float64)

    def channel_blocks(self, planes):
        """Slices of channels whose ``planes`` float64 images fit BLOCK_BYTES."""
        width = max(1, BLOCK_BYTES // (8 * planes * self.P))
        return [slice(a, min(a + width, self.J)) for a in range(0, self.J, width)]

    def row_strips(self, planes, halo):
        """(read, keep) slices of strips along axis 1 with ``halo`` rows each side.

        ``read`` is the index of the block read (all channels), ``keep`` the
        slice of its rows that belong to the strip: ``halo`` rows at least, so
        that at most two thirds of what is read is halo.
        """
        n = self.shape[1]
        row = 8 * planes * self.J * (self.P // n)
        height = max(halo, 1, BLOCK_BYTES // row - 2 * halo)
        out = []
        for a in range(0, n, height):
            b = min(a + height, n)
            lo, hi = max(0, a - halo), min(n, b + halo)
            out.append(((slice(None), slice(lo, hi)), slice(a - lo, b - lo)))
        return out

    def run(self, func, blocks, args, combine):
        """Apply ``func(block, *args(i))`` to each block and combine the results.

        ``combine``: ``"sum"`` (added up; ``func`` then takes ``out=``, the
        running sum it adds to, or None) or ``"list"``. With a dask array each
        call is a task on the active scheduler and the partial sums are added in
        a tree; else the blocks are read one at a time.
        """
        if self.dask:
            import dask

            tasks = [dask.delayed(func, pure=True)(self.data[b], *args(i))
                     for i, b in enumerate(blocks)]
            if combine == "sum":
                while len(tasks) > 1:  # a tree: partial sums stay on the workers
                    pairs = [tasks[i:i + 2] for i in range(0, len(tasks), 2)]
                    tasks = [p[0] if len(p) == 1 else
                             dask.delayed(operator.add, pure=True)(*p) for p in pairs]
                return dask.compute(tasks[0])[0]
            return list(dask.compute(*tasks))
        total, out = None, []
        for i, b in enumerate(blocks):
            if combine == "list":
                out.append(func(self.read(b), *args(i)))
            else:  # added into the first result in place: one copy, no temporary
                total = func(self.read(b), *args(i), out=total)
        return total if combine == "sum" else out


def _transform(x, nscales):
    """(b, nscales + 1, P') starlet coefficients of a block of images or rows."""
    if x.ndim == 3:
        return starlet.forward(x, nscales).reshape(x.shape[0], nscales + 1, -1)
    return starlet.forward1d(x, nscales)


def _scaled(x, e):
    """``x * 2**-e`` (exact), x itself at ordinary magnitudes (no copy)."""
    return np.ldexp(x, -e) if e else x


def _interior(pixel_shape):
    """Return True where a finest-scale coefficient is 2 samples off the border."""
    inner = np.zeros(pixel_shape, dtype=bool)
    inner[tuple(slice(_BORDER, n - _BORDER) for n in pixel_shape)] = True
    return inner


def _survey_block(x, nscales, rows, norm0):
    """Pass 1 on a channel block x (b, ...): magnitudes, noise, finest scale kept.

    Returns (top, finite, sigma, kept, energy, energy_exp, detail_top): per
    channel the largest magnitude, whether all is finite, the MAD noise std,
    the finest-scale coefficients of the pixel ``rows`` (b, n), the detail
    energy ``sum Xd^2`` times ``2**(-2 energy_exp)`` (so it cannot overflow) and
    the largest detail magnitude.
    """
    b = x.shape[0]
    flat = x.reshape(b, -1)
    finite = bool(np.all(np.isfinite(flat)))
    top = (np.maximum(flat.max(axis=1, initial=0.0), -flat.min(axis=1, initial=0.0))
           if finite else np.zeros(b))  # max |x| without a copy of the block
    if not finite:
        return top, False, None, None, None, None, None
    w = _transform(x, nscales)
    w0 = w[:, 0].reshape(x.shape)
    sigma = _mad(w0, _interior(x.shape[1:]), slice(None)) / norm0
    kept = w0[:, rows].reshape(b, -1).copy()
    detail = w[:, :nscales].reshape(b, -1)
    detail_top = float(max(detail.max(initial=0.0), -detail.min(initial=0.0)))
    # squares overflow only beyond 2**500: scale (a copy) only then
    energy_exp = math.frexp(detail_top)[1] if detail_top > 2.0**500 else 0
    detail = _scaled(detail, energy_exp)
    energy = np.einsum("bi,bi->b", detail, detail)
    return top, True, sigma, kept, energy, energy_exp, detail_top


def _add_product(out, W, x):
    """``out += W x`` (m, n) in column chunks: no (m, n) temporary."""
    if out is None:
        out = np.zeros((W.shape[0], x.shape[1]))
    step = _COLUMNS
    for c in range(0, x.shape[1], step):
        out[:, c:c + step] += W @ x[:, c:c + step]
    return out


def _gram_strip(x, nscales, keep, e, out=None):
    """``Xd Xd^T`` (J, J) of a strip x (J, rows + halo, ...), its ``keep`` rows."""
    w = _transform(_scaled(x, e), nscales)
    J = x.shape[0]
    d = w[:, :nscales].reshape((J, nscales) + x.shape[1:])[:, :, keep]
    d = d.reshape(J, -1)
    return d @ d.T if out is None else np.add(out, d @ d.T, out=out)


def _sketch_left(x, nscales, scale, Q, e, out=None):
    """``Y_b^T Q_b`` (nscales P, k) of a channel block, ``Y = D^-1 Xd``."""
    d = _transform(_scaled(x, e), nscales)[:, :nscales].reshape(x.shape[0], -1)
    part = d.T @ (Q / scale[:, None])
    return part if out is None else np.add(out, part, out=out)


def _sketch_right(x, nscales, scale, T, e):
    """``Y_b T`` (b, k) of a channel block."""
    d = _transform(_scaled(x, e), nscales)[:, :nscales].reshape(x.shape[0], -1)
    return (d @ T) / scale[:, None]


def _project_block(x, nscales, W, e, out=None):
    """``W_b Xd_b`` (r, nscales, P) of a channel block, W_b (r, b), into out.

    The detail planes only: the iterations never read the coarse plane, and
    the final stage takes its own from the data.
    """
    w = _transform(_scaled(x, e), nscales)[:, :nscales].reshape(x.shape[0], -1)
    flat = None if out is None else out.reshape(W.shape[0], -1)
    return _add_product(flat, W, w).reshape((W.shape[0], nscales, -1))


def _mix_block(x, M, e, out=None):
    """``M_b X_b`` (m, P) of a channel block in the pixel domain, M_b (m, b)."""
    return _add_product(out, M, _scaled(x, e).reshape(x.shape[0], -1))


class _Details:
    """The detail coefficients' products (``_subspace.reduce_data``), streamed."""

    def __init__(self, cube, nscales, e):
        self.cube, self.nscales, self.e = cube, nscales, e

    def gram(self):
        """``Xd Xd^T`` from strips of rows with a halo (exact)."""
        ns = self.nscales
        strips = self.cube.row_strips(ns + 2, 2 * (2**ns - 1))
        return self.cube.run(_gram_strip, [s[0] for s in strips],
                             lambda i: (ns, strips[i][1], self.e), "sum")

    def apply_gram(self, scale, Q):
        """``Y Y^T Q`` in two passes over channel blocks."""
        ns, cube = self.nscales, self.cube
        blocks = cube.channel_blocks(ns + 2)
        T = cube.run(_sketch_left, blocks,
                     lambda i: (ns, scale[blocks[i]], Q[blocks[i]], self.e), "sum")
        if cube.dask:
            import dask

            T = dask.delayed(T)  # one copy in the graph, not one a task
        parts = cube.run(_sketch_right, blocks,
                         lambda i: (ns, scale[blocks[i]], T, self.e), "list")
        return np.concatenate(parts, axis=0)


def refusals(n_sources, kw):
    """Return the options the streamed path cannot take, as texts (empty: none).

    ``kw`` holds :func:`sgmca_fast.separate`'s keywords (missing ones take
    their defaults); ``subspace=None`` is refused only when present, i.e.
    after :func:`separate` has turned the default None into ``"auto"``.
    """
    return [text for flag, text in (
        (kw.get("noise", "gaussian") != "gaussian", f"noise={kw.get('noise')!r}"),
        (kw.get("mask") is not None, "a mask (missing data)"),
        (kw.get("fixed") is not None, "fixed spectra (fixed=)"),
        (np.ndim(kw.get("variance")) > 1, "a per-voxel variance"),
        (isinstance(kw.get("noise_std"), str), f"noise_std={kw.get('noise_std')!r}"),
        (isinstance(n_sources, str), f"n_sources={n_sources!r}"),
        (kw.get("subspace", "auto") is None, "subspace=None (the full space)"),
        (kw.get("dtype") not in (None, np.float64), "dtype=float32"),
        (bool(kw.get("refit_spectra", False)), "refit_spectra=True"),
    ) if flag]


def _check(cube, n_sources, models, kw):
    """Check the arguments (nothing read); return the checked settings."""
    refused = refusals(n_sources, kw)
    if refused:
        raise InputError(
            f"a cube that is not in memory ({type(cube.data).__name__}) is streamed "
            f"and cannot be used with {refused[0]}: load it into memory "
            "(np.asarray(X), or stream=False) for that, or give a number of "
            "sources, a noise level per channel or none, and a channel subspace "
            "('auto' or a rank)")
    J = cube.J
    c = dict(n_sources=_checks.n_sources(n_sources, J),
             nscales=_checks.nscales(kw["nscales"], cube.pixel_shape),
             k=real(kw["k"], "k", low=0.0, low_open=True),
             K_max=real(kw["K_max"], "K_max", low=0.0, low_open=True, high=1.0),
             max_iter=integer(kw["max_iter_semiblind"], "max_iter_semiblind", 0),
             tol=real(kw["tol_semiblind"], "tol_semiblind", low=0.0),
             callback=_checks.callback_or_none(kw["callback"]),
             starts=_starts.check(kw.get("starts", 1)),
             trial=_starts.check_trial(kw.get("start_sample", 1),
                                       kw.get("start_iter")),
             rng=_checks.rng(kw["random_state"]))
    for name in ("nonneg_A", "nonneg_S", "l1", "progress"):
        c[name] = boolean(kw[name], name)
    c["noise_std"], c["variance"] = check_noise(kw["noise_std"], kw["variance"],
                                                cube.shape)
    c["models"], c["counts"] = _checks.model_list(models, J, c["n_sources"])
    c["mapped"] = _checks.mapping_indices(kw["mapping"], c["models"], c["counts"],
                                          c["n_sources"])
    c["rank"] = _subspace.check(kw["subspace"], J, c["n_sources"], missing=False,
                                variance=c["variance"], held=None,
                                noise_std=c["noise_std"])
    A_init = kw["A_init"]
    if A_init is not None:
        A_init = np.array(real_array(A_init, "A_init"))
        if A_init.shape != (J, c["n_sources"]):
            raise InputError(f"A_init must have shape (J, I) = {(J, c['n_sources'])}"
                             f", got {A_init.shape}")
    c["A_init"] = A_init
    c["blind_stage"] = _checks.blind_stage(kw.get("blind_stage", True), A_init,
                                           c["starts"])
    return c


def _survey(cube, nscales):
    """Pass 1: (top, sigma, kept finest scale, its usable mask, energy, detail top)."""
    inner = _interior(cube.pixel_shape)
    if not inner.any():
        raise InputError(f"no usable finest-scale coefficient in X {cube.shape}: "
                         "images must be at least 5 x 5, signals at least 5 long")
    n = cube.shape[1]
    per_row = cube.P // n
    n_rows = max(1, REFINE_BYTES // (8 * cube.J * per_row))
    rows = (np.arange(n) if n_rows >= n else np.unique(np.linspace(
        _BORDER, n - 1 - _BORDER, n_rows).round().astype(int)))
    norm0 = float(starlet.scale_norms(cube.pixel_shape, 1)[0])
    blocks = cube.channel_blocks(nscales + 2)
    parts = cube.run(_survey_block, blocks, lambda i: (nscales, rows, norm0), "list")
    if not all(p[1] for p in parts):
        raise InputError("X contains NaN or inf values: missing data are not "
                         "streamed; load the cube into memory (np.asarray(X)) to "
                         "treat NaN as missing")
    top = float(max(p[0].max(initial=0.0) for p in parts))
    ex = max(p[5] for p in parts)
    energy = sum(float(np.sum(np.ldexp(p[4], 2 * (p[5] - ex)))) for p in parts)
    return dict(top=top, sigma=np.concatenate([p[2] for p in parts]),
                kept=np.concatenate([p[3] for p in parts]),
                usable=np.broadcast_to(inner[rows].reshape(1, -1),
                                       (cube.J, rows.size * per_row)),
                energy=(energy, ex), detail_top=max(p[6] for p in parts),
                norm0=norm0,
                # behind the refined estimate: a subset of rows is a wider floor
                count=cube.P if rows.size == n else int(inner[rows].sum()))


def _noise(c, survey, J):
    """Return the noise std per channel (data units) and where it came from."""
    if c["noise_std"] is not None:
        return c["noise_std"], "given"
    if c["variance"] is not None:
        return np.sqrt(c["variance"]), "variance"
    rank = min(c["n_sources"], J - 1)
    # All rows kept: the in-memory estimate. A subset of rows: its relative error
    # is about 1.3 / sqrt(coefficients kept per channel) (noise._MAD_SPREAD); the
    # plain MAD of all rows is no better a start (biased by the sources).
    sigma = _refine_fixed(survey["kept"], survey["usable"], survey["sigma"],
                          survey["norm0"], rank)
    # as _noisemap's floor: finite weights for a noise-free or quantised channel
    level = np.nanmedian(sigma)
    return np.maximum(sigma, 1e-6 * (level if level > 0 else 1.0)), "estimated"


def _final(cube, c, A, sigma, state, nscales, e, energy):
    """Pass 5: the final stage's sources (I, P) and the off-span detail energy."""
    n = A.shape[1]
    M = weighted_pinv(A, 1.0 / sigma**2)  # the final SourceStep's pinv
    Q = np.linalg.qr(A)[0]
    stack = np.vstack([M, Q.T])  # (2I, J)
    blocks = cube.channel_blocks(2)
    Y = cube.run(_mix_block, blocks, lambda i: (stack[:, blocks[i]], e), "sum")
    Y = Y.reshape((2 * n,) + cube.pixel_shape)
    # one transform at a time: (n, nscales + 1, P) is the largest array here
    off = energy - float(np.sum(_transform(Y[n:], nscales)[:, :nscales] ** 2))
    Yw = _transform(Y[:n], nscales)
    del Y
    step = SourceStep(Yw, sigma, starlet.scale_norms(cube.pixel_shape, nscales),
                      c["k"], c["l1"], c["nonneg_S"])
    out = state.prev
    out[...] = Yw[:, :nscales]
    step.threshold(M, out, 1.0, state.detail)
    state.detail = state.prev = None  # the reweighting's last use
    full = step.full(M, out, coarse=Yw[:, -1])
    del Yw, out
    return starlet.inverse(full, axis=1), off


def separate(result_type, X, n_sources, models=None, **kw):
    """:func:`sgmca_fast.separate` on a cube read in blocks (module docstring).

    Parameters
    ----------
    result_type : type
        ``sgmca_fast.Separation`` (passed in: this module sits below the solver).
    X : np.memmap, dask array, OnDisk or ndarray, (J, H, W) or (J, P)
        Complete data (no NaN); any real dtype, converted to float64 a block at a
        time.
    n_sources : int
    models : as :func:`sgmca_fast.separate`
    **kw
        Every keyword of :func:`sgmca_fast.separate`. ``subspace`` None (its
        default) becomes ``"auto"``.

    Returns
    -------
    Separation

    Raises
    ------
    InputError
        Before any read: missing data (a mask), a per-voxel variance, fixed
        spectra, ``noise="poisson"``, ``noise_std="mad"``, ``n_sources="auto"``,
        and the checks of the in-memory solver; during the first pass, NaN or
        inf in X, or data without detail.
    """
    t0 = time.perf_counter()
    cube = Cube(X)
    kw["noise"] = _validation.choice(kw.get("noise", "gaussian"), "noise",
                                     ("gaussian", "poisson"))
    kw["subspace"] = "auto" if kw.get("subspace") is None else kw["subspace"]
    c = _check(cube, n_sources, models, kw)
    n, ns, rng = c["n_sources"], c["nscales"], c["rng"]

    survey = _survey(cube, ns)
    _checks.detail_energy(np.array([survey["detail_top"]]), np.array([survey["top"]]))
    sigma, origin = _noise(c, survey, cube.J)
    del survey["kept"]
    e = math.frexp(survey["top"])[1]
    e = e if abs(e) > _SAFE_EXPONENT else 0
    scaled = np.ldexp(sigma, -e)
    energy = math.ldexp(survey["energy"][0], 2 * (survey["energy"][1] - e))
    t1 = time.perf_counter()

    sub = _subspace.reduce_data(
        _Details(cube, ns, e), (cube.J, ns, cube.P), c["rank"], noise_std=scaled,
        n_min=n, image_shape=cube.pixel_shape, estimated=origin == "estimated",
        random_state=rng, count=survey["count"])
    W = (sub.basis / sub.scale[:, None]).T  # lower(): V^T D^-1, (r, J)
    blocks = cube.channel_blocks(ns + 2)
    Zd = cube.run(_project_block, blocks, lambda i: (ns, W[:, blocks[i]], e), "sum")
    norms = starlet.scale_norms(cube.pixel_shape, ns)
    like = SourceStep(Zd, scaled, norms, c["k"], c["l1"], c["nonneg_S"],
                      coarse=False)  # the settings of the reduced update
    pb = _subspace.reduced_problem(sub, Zd, like, Problem(
        None, sub.xx, None, n, c["K_max"], c["nonneg_A"], rng))
    del Zd, like
    t2 = time.perf_counter()

    rec = Recorder(c["progress"], c["callback"])
    A0 = sub.pca(n) if c["A_init"] is None else c["A_init"]
    if c["blind_stage"]:
        state, start_record = _starts.blind(pb, unit_columns(A0, rng), c["starts"],
                                            rec, *c["trial"])
    else:
        estimate = not (c["models"] and c["max_iter"] > 0)
        state = no_blind_stage(pb, unit_columns(A0, rng), estimate)
        start_record = None
    n_blind = state.n_iter
    t3 = time.perf_counter()
    restarted = False
    if c["models"] and c["max_iter"] > 0:
        cons = Constraints.build(c["models"], c["counts"], c["mapped"], c["max_iter"],
                                 c["tol"], rng)
        state, restarted = semiblind_stage(pb, cons, state, rec)
    else:
        state = skip_semiblind(state)
    rec.close()
    del pb  # the reduced coefficients: the final pass reads the data again
    t4 = time.perf_counter()

    S, off = _final(cube, c, state.A, scaled, state, ns, e, energy)
    S = S.reshape((n,) + cube.pixel_shape)
    confidence = _confidence.confidence(
        state.A, S, None, ns, noise_std=scaled, model_fit=state.fit,
        reseeded=state.reseeded, restarted=restarted, off_energy=off)
    if e:
        S = np.ldexp(S, e)
    t5 = time.perf_counter()
    summary = sub.summary()
    summary["streamed"] = {"block_bytes": BLOCK_BYTES, "dask": cube.dask}
    return result_type(
        A=state.A, S=S, mapping=state.mapping, model_fit=state.fit,
        n_iter={"blind": n_blind, "semiblind": state.n_iter},
        history={**rec.history, "reseeded": state.reseeded, "restarted": restarted,
                 **({} if start_record is None else {"starts": start_record})},
        timings={"transform": t1 - t0, "setup": t2 - t1, "blind": t3 - t2,
                 "semiblind": t4 - t3, "final": t5 - t4, "total": t5 - t0},
        noise_std=sigma, subspace=summary, confidence=confidence)
