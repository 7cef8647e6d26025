"""Missing data in the solver: NaN voxels and the user's mask.

What is missing is split three ways (``docs/solver.md``, "Missing data and fixed
spectra"):

- whole missing channels are dropped from the fit; the spectra keep all J rows
  (a modelled column's rows come from its manifold, a free column's are the linear
  interpolation of its observed rows across the channel axis);
- whole missing pixels at the border are cropped: the fit runs on the bounding box
  of the observed pixels and the sources are NaN outside it (unknown there);
- the remaining (scattered) missing voxels are filled from the current mixing
  matrix every few iterations, EM-style: each takes the least-squares model
  ``A pinv(A) x`` of its pixel (:class:`Fill`), and the starlet coefficients of
  the affected channels are updated by the transform of the fill's change (the
  starlet is linear). The first fill, before any A exists, is the mean of the
  observed neighbours; kept as it is, it fails (bench/missing_data.py
  --fill-every 0).

Complete data never enter this module beyond :func:`read`.
"""

from dataclasses import dataclass

import numpy as np

from . import starlet
from ._validation import InputError, InputTypeError, real_array

__all__ = ["Fill", "MissingSummary", "Plan", "Runtime", "read", "runtime"]

# The fill of the scattered voxels is refreshed from the model every this many
# source updates (a forward transform of the affected channels each time);
# bench/missing_data.py --fill-every measures the alternatives.
FILL_EVERY = 10
_PASSES = 5  # EM passes per refresh (the holes' share of a pixel's fit is small)

_SHAPE_TEXT = "a cube (J, H, W) or a matrix (J, P)"


@dataclass(frozen=True)
class MissingSummary:
    """What :func:`~sgmca_fast.separate` treated as missing.

    Attributes
    ----------
    n_missing : int
        Voxels missing in X (NaN or masked).
    fraction : float
        ``n_missing / X.size``.
    dropped_channels : tuple of int
        Channels with no observed voxel, dropped from the fit.
    box : tuple of (int, int)
        Half-open ``(start, stop)`` of the pixels fitted along each pixel axis
        (rows, columns; or samples): the bounding box of the observed pixels.
        The sources are NaN outside it.
    n_filled : int
        Missing voxels inside the box, in the kept channels: filled in the fit
        from the current model.
    """

    n_missing: int
    fraction: float
    dropped_channels: tuple
    box: tuple
    n_filled: int

    def __str__(self):
        box = " x ".join(f"[{a}:{b}]" for a, b in self.box)
        return (
            f"{self.n_missing} missing voxels ({100 * self.fraction:.1f}%): "
            f"{len(self.dropped_channels)} channels dropped, pixels cropped to "
            f"{box}, {self.n_filled} voxels filled from the model"
        )


def read(X, mask, dtype=np.float64):
    """Check the data and the mask; return (X, missing) with NaN allowed.

    Parameters
    ----------
    X : (J, H, W) or (J, P) array_like
        Data; NaN marks a missing voxel; a numpy masked array's mask counts too.
    mask : bool array_like of X's shape, or None
        True where a voxel is missing.
    dtype : {numpy.float64, numpy.float32}, optional
        The working precision X is returned in.

    Returns
    -------
    X : ndarray
        Of ``dtype``, NaN where missing (a view of the input when nothing is
        missing and it already has that dtype).
    missing : bool ndarray or None
        None when nothing is missing.

    Raises
    ------
    InputError
        inf in X, a mask of another shape, every voxel missing, or (float32)
        values beyond float32's range.
    """
    masked = None
    if np.ma.isMaskedArray(X):
        masked = np.ma.getmaskarray(X)
        X = np.ma.getdata(X)
    X = real_array(X, "X", ndim=(2, 3), finite=False, shape_text=_SHAPE_TEXT,
                   keep_float32=dtype == np.float32)
    if X.dtype != dtype:
        _check_range(X, dtype)
        X = X.astype(dtype)
    finite = np.isfinite(X)
    if finite.all() and mask is None and (masked is None or not masked.any()):
        return X, None  # complete data: no copy
    if np.isinf(X).any():
        raise InputError("X contains inf values (NaN marks missing data; inf does not)")
    missing = ~finite
    if masked is not None:
        missing |= masked
    if mask is not None:
        mask_arr = np.asarray(mask)
        if mask_arr.dtype != bool:
            raise InputTypeError(
                f"mask must be a boolean array (True = missing), got dtype "
                f"{mask_arr.dtype}"
            )
        if mask_arr.shape != X.shape:
            raise InputError(
                f"mask must have X's shape {X.shape}, got {mask_arr.shape}"
            )
        missing |= mask_arr
    if not missing.any():
        return X, None
    if missing.all():
        raise InputError("X has no observed voxel: every value is NaN or masked")
    return X, missing


def _check_range(X, dtype):
    """Refuse data that would overflow ``dtype`` (max and min: no temporary)."""
    big = float(np.finfo(dtype).max)
    if X.size and (X.max() > big or X.min() < -big):
        raise InputError(
            f"X has values beyond the range of {np.dtype(dtype).name} (|x| > "
            f"{big:.3g}, or inf); use dtype=None (float64)")


def _box(observed_pixels):
    """Half-open bounding box of the True entries, one (start, stop) per axis."""
    box = []
    for axis in range(observed_pixels.ndim):
        other = tuple(a for a in range(observed_pixels.ndim) if a != axis)
        idx = np.flatnonzero(observed_pixels.any(axis=other))
        box.append((int(idx[0]), int(idx[-1]) + 1))
    return tuple(box)


def _neighbour_mean(X, holes):
    """Fill the holes (in place) with the mean of their observed neighbours.

    A window of one sample each side along the pixel axes, widened until every
    hole has an observed neighbour; the channel's mean as a last resort.
    """
    pix_axes = tuple(range(1, X.ndim))
    todo = holes.copy()
    X[todo] = 0.0
    for width in (1, 2, 4, 8):
        if not todo.any():
            return
        known = (~todo).astype(float)
        total = np.zeros_like(X)
        count = np.zeros_like(X)
        pad = [(0, 0)] + [(width, width)] * len(pix_axes)
        Xp = np.pad(X * known, pad)
        Kp = np.pad(known, pad)
        for shift in np.ndindex(*(2 * width + 1,) * len(pix_axes)):
            sl = (slice(None),) + tuple(
                slice(s, s + n) for s, n in zip(shift, X.shape[1:], strict=True)
            )
            total += Xp[sl]
            count += Kp[sl]
        done = todo & (count > 0)
        X[done] = total[done] / count[done]
        todo &= ~done
    if todo.any():
        chan_mean = np.array([X[j][~holes[j]].mean() if (~holes[j]).any() else 0.0
                              for j in range(X.shape[0])])
        X[todo] = np.broadcast_to(
            chan_mean.reshape((-1,) + (1,) * len(pix_axes)), X.shape
        )[todo]


class Plan:
    """How the missing voxels of one cube are treated: rows kept, box, holes.

    Parameters
    ----------
    missing : bool ndarray, X's shape
        True where a voxel is missing (not all True).
    """

    def __init__(self, missing):
        self.shape = missing.shape
        J = missing.shape[0]
        pix_axes = tuple(range(1, missing.ndim))
        dead = missing.all(axis=pix_axes)
        self.rows = np.flatnonzero(~dead)
        self.dead = np.flatnonzero(dead)
        observed = ~missing[self.rows].all(axis=0)
        self.box = _box(observed)
        self.slices = tuple(slice(a, b) for a, b in self.box)
        self.holes = missing[(self.rows,) + self.slices]
        self.summary = MissingSummary(
            n_missing=int(missing.sum()),
            fraction=float(missing.mean()),
            dropped_channels=tuple(int(j) for j in self.dead),
            box=self.box,
            n_filled=int(self.holes.sum()),
        )
        self.all_rows = len(self.rows) == J

    @property
    def pixel_shape(self):
        """Shape of the fitted pixels (the box)."""
        return tuple(b - a for a, b in self.box)

    def reduce(self, X):
        """Return the data the fit sees: kept channels, the box, holes filled."""
        Xr = np.array(X[(self.rows,) + self.slices], dtype=np.float64)
        if self.holes.any():
            _neighbour_mean(Xr, self.holes)
        return Xr

    def channels(self, values):
        """Per-channel values (J,) restricted to the kept channels (None stays)."""
        return None if values is None else values[self.rows]

    def full_gram(self, xx):
        """``Xd Xd^T`` of the kept channels embedded in a (J, J) matrix (zeros)."""
        if self.all_rows:
            return xx
        J = self.shape[0]
        out = np.zeros((J, J))
        out[np.ix_(self.rows, self.rows)] = xx
        return out

    def expand(self, S):
        """Place sources on the box (I, *box) in the full image, NaN outside."""
        if S.shape[1:] == self.shape[1:]:
            return S
        out = np.full((S.shape[0],) + self.shape[1:], np.nan)
        out[(slice(None),) + self.slices] = S
        return out

    def fit_rows(self, A):
        """Return the rows of A for the kept channels (A when none is dropped)."""
        return A if self.all_rows else A[self.rows]

    def full_rows(self, A_obs, A_prev, modelled):
        """Complete the least-squares mixing matrix with the dropped channels' rows.

        Parameters
        ----------
        A_obs : (J_kept, I) ndarray
            Least squares on the kept channels.
        A_prev : (J, I) ndarray
            The previous mixing matrix.
        modelled : sequence of bool
            Columns that follow a model: their dropped rows are the previous
            (manifold) rows, scaled to the new column by least squares on the
            kept rows; the others are linearly interpolated across channels
            (constant beyond the first and last kept channel).

        Returns
        -------
        (J, I) ndarray
        """
        if self.all_rows:
            return A_obs
        J, n = self.shape[0], A_obs.shape[1]
        A = np.empty((J, n))
        A[self.rows] = A_obs
        for i in range(n):
            if modelled[i]:
                prev = A_prev[self.rows, i]
                c = float(prev @ A_obs[:, i]) / max(float(prev @ prev), 1e-300)
                A[self.dead, i] = c * A_prev[self.dead, i]
            else:
                A[self.dead, i] = np.interp(self.dead, self.rows, A_obs[:, i])
        return A


class Fill:
    """The EM fill of the scattered missing voxels from the current A.

    At each refresh, a hole takes the value of the least-squares model
    ``A pinv(A) x`` of its pixel (the sources of that pixel fitted to all its
    channels, the filled ones included); a few such passes converge to the fit
    of the observed channels alone, the weighted least squares of that pixel.
    The sparse (thresholded) sources are not used: they keep only part of the
    significant coefficients while the fit runs, so they would pull the holes
    towards zero.

    Parameters
    ----------
    plan : Plan
    Xw : (J_kept, nscales + 1, P) ndarray
        Starlet coefficients of the reduced data; updated in place.
    X : (J_kept, *box) ndarray
        The reduced data with the first fill; its holes are updated in place.
    nscales : int
    every : int, optional
        Refresh every this many calls (default :data:`FILL_EVERY`).
    """

    def __init__(self, plan, Xw, X, nscales, every=None):
        holes = plan.holes.reshape(plan.holes.shape[0], -1)
        self.chan = np.flatnonzero(holes.any(axis=1))
        self.c, self.p = np.nonzero(holes[self.chan])
        self.pix, self.at = np.unique(self.p, return_inverse=True)
        self.X = X.reshape(X.shape[0], -1)
        self.Xw = Xw
        self.nscales = nscales
        self.pixel_shape = X.shape[1:]
        self.every = FILL_EVERY if every is None else every
        self.calls = 0

    def refresh(self, pb, A_fit, state, force=False):
        """Every ``every`` calls (or when forced): refill the holes from A.

        The change of the fill is transformed and added to the coefficients of
        the affected channels, and ``pb.xx`` recomputed.
        """
        self.calls += 1
        if not force and self.calls % self.every:
            return
        M = pb.step.pinv(A_fit)
        rows = self.chan[self.c]
        old = self.X[rows, self.p]
        A_h = A_fit[rows]
        for _ in range(_PASSES):
            S_pix = M @ self.X[:, self.pix]  # (I, n_pix)
            self.X[rows, self.p] = np.einsum("ni,in->n", A_h, S_pix[:, self.at])
        D = np.zeros((len(self.chan), self.X.shape[1]))
        D[self.c, self.p] = self.X[rows, self.p] - old
        D = D.reshape((len(self.chan),) + self.pixel_shape)
        if D.ndim == 3:
            dw = starlet.forward(D, self.nscales).reshape(len(self.chan),
                                                          self.nscales + 1, -1)
        else:
            dw = starlet.forward1d(D, self.nscales)
        self.Xw[self.chan] += dw
        Xd = pb.Xd
        pb.xx = pb.missing.plan.full_gram(Xd @ Xd.T)


class Runtime:
    """What the stages need about missing data: the plan and the EM fill (or None)."""

    def __init__(self, plan, fill):
        self.plan = plan
        self.fill = fill


def runtime(plan, Xw, X, nscales):
    """Build the :class:`Runtime` of a plan on the reduced data's coefficients."""
    fill = Fill(plan, Xw, X, nscales) if plan.summary.n_filled else None
    return Runtime(plan, fill)
