"""Numba kernels of the GMCA source update: MAD, support thresholds, thresholding.

Each ``_name`` function is a private jitted kernel: it takes float32 or float64
C-contiguous arrays and an ``out`` buffer, is parallel over rows only, and never
raises. The public wrapper of the same name without the underscore validates and
converts its input (float32 stays float32, any other real dtype becomes float64;
C order), sets the Numba thread count from
:func:`sgmca_fast.get_num_threads` and calls the kernel. Rows are the
(source, detail scale) pairs of the starlet coefficients, so ``R`` is small (a
few to a few tens) and ``P`` large (the pixels).

Dtype policy: the data rows keep their precision (the selection scratch and
thresholded outputs are of the data's dtype), the per-row results (MAD std,
thresholds) are float64, and every sum over the pixels (the non-negativity
totals, the relative change) is accumulated in float64.

Non-finite values are not checked here (the solver validates its data once);
with NaN in a row the results of that row are unspecified, but no kernel loops
forever or raises.
"""

import numba
import numpy as np
from numba import njit, prange

from ._config import get_num_threads
from ._validation import (
    InputError,
    InputTypeError,
    boolean,
    integer,
    real,
    real_array,
)

__all__ = [
    "mad_std",
    "nonneg_sources",
    "relative_change",
    "support_thresholds",
    "threshold",
]

# fastmath without "nnan" and "ninf": NaN and inf keep their IEEE meaning.
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}

# median(|x - median(x)|) / _MAD_SCALE estimates the std of Gaussian noise.
_MAD_SCALE = 0.6745

# Rows shorter than this use a plain quickselect; longer ones select within a
# bracket of +- _BRACKET_WIDTH * sqrt(m) ranks around the target in a sample of
# m = P^(2/3) values (at least 5 standard deviations of the sample rank; a miss,
# ~1e-6 likely for values in random order, falls back to the quickselect).
_SAMPLE_MIN_N = 2048
_BRACKET_WIDTH = 2.5

# Pixels per parallel task of the non-negativity step.
_NONNEG_BLOCK = 4096


# --------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------


@njit(cache=True, fastmath=_FASTMATH)
def _select(a, n, k):
    """Return the k-th smallest of ``a[:n]``, partially ordering ``a`` in place.

    Hoare quickselect with a median-of-three pivot: expected O(n), no sort.
    On return ``a[:k] <= a[k] <= a[k + 1:n]``. Returns ``a[k]``.
    """
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        # median of three: a[lo] <= a[mid] <= a[hi]
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while pivot < a[j]:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        # now a[lo:j + 1] <= pivot <= a[i:hi + 1] and a[j + 1:i] == pivot
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@njit(cache=True, fastmath=_FASTMATH)
def _select_pair(a, n, k, need_below):
    """Order statistics k - 1 and k of ``a[:n]`` by quickselect, in place.

    Returns ``(below, at)``: ``at`` the k-th smallest (0-based) and ``below`` the
    (k - 1)-th when ``need_below`` (then k >= 1), else ``at`` again.
    """
    at = _select(a, n, k)
    below = at
    if need_below:
        # after the selection a[:k] holds the k smallest: below is their maximum
        below = a[0]
        for p in range(1, k):
            if a[p] > below:
                below = a[p]
    return below, at


@njit(cache=True, fastmath=_FASTMATH)
def _fill(row, mode, center, buf):
    """Write the values to select from into ``buf``.

    mode 0: ``row``; mode 1: ``|row - center|``; mode 2: ``|row|``.
    """
    n = row.shape[0]
    if mode == 0:
        for p in range(n):
            buf[p] = row[p]
    elif mode == 1:
        for p in range(n):
            buf[p] = abs(row[p] - center)
    else:
        for p in range(n):
            buf[p] = abs(row[p])


@njit(cache=True, fastmath=_FASTMATH)
def _bracketed(buf, n, k, need_below, sample):
    """Order statistics k (and k - 1) of ``buf[:n]`` by sampling; destroys buf.

    A strided sample of ``buf`` gives two values bracketing the k-th smallest;
    one pass counts the values below the bracket and moves those inside it to
    the front of ``buf``; a quickselect on that short prefix finishes. About
    one pass over the data instead of the several (with swaps) of a
    quickselect on all of it. Returns ``(ok, below, at)``; ``ok`` is False when
    the bracket missed (rare; the caller then falls back to a quickselect).
    """
    m = sample.shape[0]
    stride = n / m
    for s in range(m):
        sample[s] = buf[int(s * stride)]
    centre = (k + 0.5) * m / n
    delta = _BRACKET_WIDTH * np.sqrt(m) + 1.0
    s_lo = int(centre - delta)
    s_hi = int(centre + delta) + 1
    lo = -np.inf
    hi = np.inf
    if s_lo > 0:
        lo = _select(sample, m, s_lo)
    else:
        s_lo = 0
    if s_hi < m - 1:
        # after the first selection sample[s_lo:] holds the larger values
        hi = _select(sample[s_lo:], m - s_lo, s_hi - s_lo)
    n_below = 0
    n_in = 0
    # branch-free compaction: about half the values fall below the bracket in
    # random order, a branch on it would be mispredicted half the time
    for p in range(n):
        v = buf[p]
        buf[n_in] = v  # n_in <= p: overwrites a value already read
        n_below += 1 if v < lo else 0
        n_in += (1 if v >= lo else 0) & (1 if v <= hi else 0)
    first = k - 1 if need_below else k
    if n_below > first or k >= n_below + n_in:
        return False, 0.0, 0.0
    below, at = _select_pair(buf, n_in, k - n_below, need_below)
    return True, below, at


@njit(cache=True, fastmath=_FASTMATH)
def _order_stat(row, mode, center, k, need_below, buf, sample):
    """k-th smallest (0-based) of the mode-transformed row (see ``_fill``).

    Returns ``(below, at)``: the (k - 1)-th (when ``need_below``, k >= 1) and
    the k-th smallest. ``buf`` is scratch of the row's length, ``sample``
    scratch of the sample size (0 for short rows: plain quickselect).
    """
    n = row.shape[0]
    _fill(row, mode, center, buf)
    if sample.shape[0] > 0:
        ok, below, at = _bracketed(buf, n, k, need_below, sample)
        if ok:
            return below, at
        _fill(row, mode, center, buf)
    return _select_pair(buf, n, k, need_below)


@njit(cache=True, fastmath=_FASTMATH)
def _median(row, mode, center, buf, sample):
    """Median of the mode-transformed row, as numpy.median."""
    n = row.shape[0]
    below, at = _order_stat(row, mode, center, n >> 1, (n & 1) == 0, buf, sample)
    if n & 1:
        return at
    return 0.5 * (np.float64(below) + np.float64(at))  # no float32 rounding


@njit(cache=True, fastmath=_FASTMATH)
def _sample_size(n):
    """Sample size of the bracketed selection, 0 when a plain one is cheaper."""
    if n < _SAMPLE_MIN_N:
        return 0
    return int(n ** (2.0 / 3.0))


@njit(cache=True)
def _task_buffers(n_threads, x):
    """Tasks (one per thread, at most one per row of x) and their scratch rows.

    Returns ``n_tasks`` and, per task, a copy buffer of a row of ``x`` and a
    sample buffer for the bracketed selection, reused for all the task's rows;
    both of x's dtype (the selection only compares and moves values).
    """
    n_rows, n_pix = x.shape
    n_tasks = max(min(n_threads, n_rows), 0)
    return (n_tasks, np.empty((n_tasks, n_pix), x.dtype),
            np.empty((n_tasks, _sample_size(n_pix)), x.dtype))


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _mad_std(x, n_threads, out):
    """Robust std per row: median(|x - median(x)|) / 0.6745.

    Parameters
    ----------
    x : (R, P) float32 or float64 C-contiguous array, P >= 1
    n_threads : int >= 1
        Threads in use: one scratch row each (numba.get_num_threads() inside
        the kernel would prevent caching).
    out : (R,) float64 array, written
    """
    n_rows = x.shape[0]
    n_tasks, scratch, samples = _task_buffers(n_threads, x)
    for task in prange(n_tasks):
        for r in range(task, n_rows, n_tasks):
            med = _median(x[r], 0, 0.0, scratch[task], samples[task])
            out[r] = _median(x[r], 1, med, scratch[task], samples[task]) / _MAD_SCALE


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _support_thresholds(x, thr, fraction, min_count, n_threads, out):
    """Per row, the kval-th largest |x|, kval = max(int(fraction * npix), min_count).

    Parameters
    ----------
    x : (R, P) float32 or float64 C-contiguous array, P >= 1
    thr : (R,) float64 array
        Current thresholds; npix = #{|x_r| > thr_r}.
    fraction : float >= 0
    min_count : int >= 1
    n_threads : int >= 1
    out : (R,) float64 array, written
        kval > P gives the smallest |x_r|.
    """
    n_rows, n_pix = x.shape
    n_tasks, scratch, samples = _task_buffers(n_threads, x)
    for task in prange(n_tasks):
        buf = scratch[task]
        sample = samples[task]
        for r in range(task, n_rows, n_tasks):
            row = x[r]
            t = thr[r]
            npix = 0
            for p in range(n_pix):
                if abs(row[p]) > t:
                    npix += 1
            kval = max(int(fraction * npix), min_count)
            kval = min(kval, n_pix)
            # the kval-th largest is the (n_pix - kval)-th smallest (0-based)
            _, out[r] = _order_stat(row, 2, 0.0, n_pix - kval, False, buf, sample)


@njit(cache=True, inline="always")
def _shrink(v, t, hard):
    """Hard (keep) or soft (shrink by t) thresholding of one coefficient."""
    if abs(v) <= t:
        return 0.0
    if hard:
        return v
    return v - t if v > 0.0 else v + t


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _threshold(x, thr, prev, kstd, reweight, hard, out):
    """Soft or hard thresholding per row, optionally reweighted by ``prev``.

    Parameters
    ----------
    x : (R, P) float32 or float64 C-contiguous array
    thr : (R,) float64 array
    prev : (R, P) C-contiguous array of x's dtype
        Previous thresholded coefficients; read only if ``reweight``.
    kstd : (R,) float64 array
        Reweighting scale; read only if ``reweight``. 0 means no reweighting.
    reweight, hard : bool
    out : (R, P) C-contiguous array of x's dtype, written; may be ``x`` or ``prev``
    """
    n_rows, n_pix = x.shape
    for r in prange(n_rows):
        row = x[r]
        dst = out[r]
        t0 = thr[r]
        if reweight and kstd[r] != 0.0:
            inv = 1.0 / kstd[r]
            weights = prev[r]
            for p in range(n_pix):
                dst[p] = _shrink(row[p], t0 / (abs(weights[p]) * inv + 1.0), hard)
        else:
            for p in range(n_pix):
                dst[p] = _shrink(row[p], t0, hard)


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _nonneg_sources(w, block, n_threads):
    """Zero ``w[i, :, p]`` wherever ``sum_s w[i, s, p] < 0``, in place.

    Parameters
    ----------
    w : (I, nplanes, P) float32 or float64 C-contiguous array, modified (the
        per-pixel totals are float64)
    block : int >= 1
        Pixels per work item; items are (source, pixel block) pairs, dealt
        round-robin to the threads.
    n_threads : int >= 1
    """
    n_src, n_planes, n_pix = w.shape
    n_blocks = (n_pix + block - 1) // block
    n_items = n_src * n_blocks
    n_tasks = min(n_threads, n_items)
    if n_tasks < 1:
        return
    totals = np.empty((n_tasks, block))
    for task in prange(n_tasks):
        total = totals[task]
        for item in range(task, n_items, n_tasks):
            i = item // n_blocks
            start = (item % n_blocks) * block
            stop = min(start + block, n_pix)
            size = stop - start
            planes = w[i, :, start:stop]
            # plane-major loops over a block that stays in cache: contiguous and
            # vectorised, unlike a loop over the planes of each pixel
            first = planes[0]
            for p in range(size):
                total[p] = first[p]
            for s in range(1, n_planes):
                plane = planes[s]
                for p in range(size):
                    total[p] += plane[p]
            for s in range(n_planes):
                plane = planes[s]
                for p in range(size):
                    # a select rather than a branch, so the loop vectorises
                    v = plane[p]
                    plane[p] = 0.0 if total[p] < 0.0 else v


@njit(cache=True, parallel=True, fastmath=_FASTMATH)
def _relative_change(new, old, out):
    """Per row: out[r, 0] = ||new_r - old_r||^2, out[r, 1] = ||new_r||^2.

    ``new`` and ``old`` share one dtype (float32 or float64); the squares and
    sums are float64 (float32 sums over millions of pixels would lose digits).
    """
    n_rows, n_pix = new.shape
    for r in prange(n_rows):
        a = new[r]
        b = old[r]
        diff = 0.0
        norm = 0.0
        for p in range(n_pix):
            va = np.float64(a[p])
            d = va - np.float64(b[p])
            diff += d * d
            norm += va * va
        out[r, 0] = diff
        out[r, 1] = norm


# --------------------------------------------------------------------------------
# wrappers
# --------------------------------------------------------------------------------


def _use_threads():
    """Apply the package's thread setting to Numba; return the count in use."""
    n = min(get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    return n


def _as_float2d(value, name, dtype=None):
    """C-contiguous (R, P) copy or view of ``value``, float32 kept, else float64.

    ``dtype`` forces that dtype instead (a copy when it differs).
    """
    arr = real_array(value, name, ndim=2, finite=False, keep_float32=True,
                     shape_text="2-D (rows, pixels)")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return np.ascontiguousarray(arr)


def _pixel_rows(x):
    """``x`` as float32/float64 C-contiguous (R, P) rows with at least one pixel."""
    x = _as_float2d(x, "x")
    if x.shape[1] < 1:
        raise InputError(f"x must have at least one column, got shape {x.shape}")
    return x


def _as_rows(value, name, n_rows):
    """Float64 (R,) array from a scalar or a length-R vector."""
    arr = real_array(value, name, finite=False)
    if arr.ndim == 0:
        return np.full(n_rows, float(arr))
    if arr.shape != (n_rows,):
        raise InputError(
            f"{name} must be a scalar or have shape ({n_rows},) (one value per "
            f"row of x), got shape {arr.shape}"
        )
    return np.ascontiguousarray(arr)


def _writeable_float(arr, name, why="", dtypes=(np.float32, np.float64)):
    """Check that ``arr`` is a C-contiguous writeable ndarray of one of ``dtypes``.

    A buffer the kernel writes into cannot be converted, only refused: ``why``
    says so in the messages (e.g. ``" (modified in place)"``).
    """
    if not isinstance(arr, np.ndarray):
        raise InputTypeError(f"{name} must be a numpy array, got {type(arr).__name__}")
    if arr.dtype not in dtypes:
        wanted = " or ".join(np.dtype(d).name for d in dtypes)
        raise InputTypeError(f"{name} must have dtype {wanted}{why}, got {arr.dtype}")
    if not arr.flags.c_contiguous or not arr.flags.writeable:
        raise InputError(f"{name} must be a writeable C-contiguous array{why}")


def _check_out(out, shape, dtype=np.float64):
    """Return ``out`` (or a new ``dtype`` buffer) after checking it can be written."""
    if out is None:
        return np.empty(shape, dtype)
    _writeable_float(out, "out", dtypes=(dtype,))
    if out.shape != shape:
        raise InputError(f"out must have shape {shape}, got {out.shape}")
    return out


def mad_std(x, out=None):
    """Robust standard deviation of each row: the MAD divided by 0.6745.

    ``median(|x_r - median(x_r)|) / 0.6745``, exact, by selection on a
    per-thread scratch copy (``x`` is not modified): expected linear time, no
    sort. Rows of 2048 values or more first bracket the median with a strided
    sample and select among the few values inside the bracket (falling back to
    a quickselect of the whole row if the bracket misses). Even row lengths take
    the mean of the two middle values, as :func:`numpy.median`.

    Parameters
    ----------
    x : (R, P) array_like
        Real values, P >= 1; float32 is used as it is, other dtypes are
        converted to float64 (C order if needed).
    out : (R,) ndarray of float64, optional
        Output buffer.

    Returns
    -------
    std : (R,) ndarray of float64
        ``out`` if given.

    Notes
    -----
    docs/algorithm.md, section 2; the authors' code divides by 0.6735.
    """
    x = _pixel_rows(x)
    out = _check_out(out, (x.shape[0],))
    _mad_std(x, _use_threads(), out)
    return out


def support_thresholds(x, thr, fraction, min_count=5, out=None):
    """Thresholds that keep at most a fraction of the coefficients above ``thr``.

    For each row r: ``npix = #{|x_r| > thr_r}``,
    ``kval = max(int(fraction * npix), min_count)`` and the new threshold is the
    kval-th largest ``|x_r|`` (1-based; the smallest ``|x_r|`` when kval > P).
    Exact, by selection (as in :func:`mad_std`), not a full sort.

    Parameters
    ----------
    x : (R, P) array_like
        Real coefficients, P >= 1 (float32 is used as it is, other dtypes
        become float64).
    thr : float or (R,) array_like
        Current thresholds, one per row.
    fraction : float
        Fraction K >= 0 of the ``npix`` coefficients to keep (GMCA calls this
        while K < 1).
    min_count : int, optional
        Minimum kval, >= 1.
    out : (R,) ndarray of float64, optional
        Where to write the new thresholds.

    Returns
    -------
    thr_new : (R,) ndarray of float64
        The new threshold of each row (the array ``out`` when it is given).
    """
    x = _pixel_rows(x)
    n_rows = x.shape[0]
    thr = _as_rows(thr, "thr", n_rows)
    fraction = real(fraction, "fraction", low=0.0)
    min_count = integer(min_count, "min_count", minimum=1)
    out = _check_out(out, (n_rows,))
    _support_thresholds(x, thr, fraction, min_count, _use_threads(), out)
    return out


def threshold(x, thr, *, prev=None, kstd=None, hard=False, out=None):
    """Soft or hard thresholding of each row, optionally reweighted (L1 reweighting).

    The threshold of coefficient (r, p) is ``t = thr_r``, or with reweighting
    ``t = thr_r / (|prev_rp| / kstd_r + 1)`` (``kstd_r == 0`` means no
    reweighting for that row). Soft: ``sign(x) * max(|x| - t, 0)``; hard:
    ``x`` where ``|x| > t``, else 0.

    Parameters
    ----------
    x : (R, P) array_like
        Real coefficients: float32 stays float32 (and so does the result),
        other dtypes become float64.
    thr : float or (R,) array_like
        Thresholds, >= 0.
    prev : (R, P) array_like, optional
        Previous thresholded coefficients (converted to x's dtype); give it
        together with ``kstd``.
    kstd : float or (R,) array_like, optional
        Scale of the reweighting (k times the noise std), >= 0.
    hard : bool, optional
        Hard instead of soft thresholding.
    out : (R, P) ndarray of x's dtype (float32 or float64), optional
        Output buffer; may be ``x`` itself (in place) when ``x`` is a
        C-contiguous float32 or float64 array.

    Returns
    -------
    y : (R, P) ndarray of x's dtype
        ``out`` if given.
    """
    x = _as_float2d(x, "x")
    n_rows = x.shape[0]
    thr = _as_rows(thr, "thr", n_rows)
    if np.any(thr < 0):
        raise InputError(f"thr must be >= 0, got minimum {thr.min()}")
    if (prev is None) != (kstd is None):
        raise InputError(
            "prev and kstd must be given together (reweighting) or both omitted, "
            f"got prev={'None' if prev is None else 'array'} and "
            f"kstd={'None' if kstd is None else 'array'}"
        )
    hard = boolean(hard, "hard")
    reweight = prev is not None
    if reweight:
        prev = _as_float2d(prev, "prev", dtype=x.dtype)
        if prev.shape != x.shape:
            raise InputError(
                f"prev must have the shape of x {x.shape}, got {prev.shape}"
            )
        kstd = _as_rows(kstd, "kstd", n_rows)
        if np.any(kstd < 0):
            raise InputError(f"kstd must be >= 0, got minimum {kstd.min()}")
    else:
        prev, kstd = x, thr  # not read by the kernel
    out = _check_out(out, x.shape, x.dtype)
    _use_threads()
    _threshold(x, thr, prev, kstd, reweight, hard, out)
    return out


def nonneg_sources(w):
    """Zero the starlet coefficients where the reconstructed source is negative.

    For each source i and pixel p, if ``sum_s w[i, s, p] < 0`` (the inverse
    starlet is the sum of the planes) then ``w[i, :, p] = 0``. One pass, in place.

    Parameters
    ----------
    w : (I, nplanes, P) ndarray of float32 or float64
        Starlet coefficients of I sources (detail scales and coarse scale),
        C-contiguous and writeable; modified in place. The per-pixel sums are
        float64 either way.

    Returns
    -------
    w : (I, nplanes, P) ndarray
        The same array.
    """
    _writeable_float(w, "w", why=" (it is modified in place)")
    if w.ndim != 3:
        raise InputError(
            f"w must be 3-D (sources, planes, pixels), got {w.ndim}-D with shape "
            f"{w.shape}"
        )
    if w.size:  # the kernel reads plane 0
        _nonneg_sources(w, _NONNEG_BLOCK, _use_threads())
    return w


def relative_change(new, old):
    """Relative change ``||new - old|| / ||new||`` (Frobenius norms), in one pass.

    Parameters
    ----------
    new, old : (R, P) array_like
        Arrays of one shape (e.g. successive thresholded coefficients); used as
        they are when both are float32 (the sums are float64 either way), else
        converted to float64.

    Returns
    -------
    change : float
        0 when both are zero; inf when only ``new`` is zero.
    """
    new = _as_float2d(new, "new")
    old = _as_float2d(old, "old")
    if old.dtype != new.dtype:  # one float32, one not: both in float64
        new = new.astype(np.float64)
        old = old.astype(np.float64)
    if old.shape != new.shape:
        raise InputError(
            f"old must have the shape of new {new.shape}, got {old.shape}"
        )
    sums = np.empty((new.shape[0], 2))
    _use_threads()
    _relative_change(new, old, sums)
    diff, norm = sums.sum(axis=0)
    if norm == 0.0:
        return 0.0 if diff == 0.0 else float("inf")
    return float(np.sqrt(diff / norm))
