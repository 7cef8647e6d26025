"""The starlet transform: isotropic undecimated B3-spline wavelet ("a trous").

The kernel is h = [1, 4, 6, 4, 1] / 16, separable, with holes of 2**j samples at
scale j and mirror boundaries (scipy.ndimage mode ``'mirror'``). The forward
transform returns ``nscales`` detail planes followed by the coarse plane; the
inverse is the sum over the plane axis. See docs/algorithm.md, section 1.
"""

from functools import lru_cache

import numpy as np

from . import _starlet
from ._config import get_num_threads
from ._validation import InputError, integer, real_array

__all__ = ["forward", "forward1d", "inverse", "scale_norms"]


def _as_real_array(x, name: str) -> np.ndarray:
    """Return x as a C-contiguous float32 or float64 array (other dtypes: float64)."""
    return np.ascontiguousarray(real_array(x, name, finite=False, keep_float32=True))


def _check_nscales(nscales) -> int:
    """Return ``nscales`` as an int after checking it is an integer >= 1."""
    return integer(nscales, "nscales", minimum=1)


def forward(x, nscales: int) -> np.ndarray:
    """Starlet transform of images, batched over all leading axes.

    Parameters
    ----------
    x : (..., H, W) array_like
        Images. float32 stays float32; any other real dtype is computed in float64.
        H and W must both be at least 2.
    nscales : int
        Number of detail scales (>= 1). Scales whose kernel spans more than the image
        are still exact: the mirror boundary is applied repeatedly.

    Returns
    -------
    w : (..., nscales + 1, H, W) ndarray
        Detail planes w_0 .. w_{nscales-1}, then the coarse plane; same dtype as the
        computation. ``inverse(w)`` gives x back.
    """
    x = _as_real_array(x, "x")
    nscales = _check_nscales(nscales)
    if x.ndim < 2:
        raise InputError(
            f"x must have at least 2 dimensions (..., H, W), got shape {x.shape}; "
            "use forward1d for 1-D signals"
        )
    h, w = x.shape[-2:]
    if h < 2 or w < 2:
        raise InputError(f"images must be at least 2 x 2 samples, got {h} x {w}")
    lead = x.shape[:-2]
    flat = x.reshape((-1, h, w))
    out = np.empty((flat.shape[0], nscales + 1, h, w), dtype=x.dtype)
    _starlet.forward2d(flat, out, nscales, get_num_threads())
    return out.reshape(lead + (nscales + 1, h, w))


def forward1d(x, nscales: int) -> np.ndarray:
    """Starlet transform of 1-D signals along the last axis.

    Parameters
    ----------
    x : (..., n) array_like
        Signals, n >= 2. float32 stays float32; other real dtypes become float64.
    nscales : int
        Number of detail scales (>= 1).

    Returns
    -------
    w : (..., nscales + 1, n) ndarray
        Detail planes then the coarse plane.
    """
    x = _as_real_array(x, "x")
    nscales = _check_nscales(nscales)
    if x.ndim < 1:
        raise InputError("x must have at least 1 dimension (..., n), got a scalar")
    n = x.shape[-1]
    if n < 2:
        raise InputError(f"signals must have at least 2 samples, got {n}")
    lead = x.shape[:-1]
    flat = x.reshape((-1, n))
    out = np.empty((flat.shape[0], nscales + 1, n), dtype=x.dtype)
    _starlet.forward1d(flat, out, nscales, get_num_threads())
    return out.reshape(lead + (nscales + 1, n))


def inverse(w, axis: int = -3) -> np.ndarray:
    """Inverse starlet transform: the sum over the plane axis.

    Parameters
    ----------
    w : ndarray
        Coefficients from :func:`forward` (``(..., nscales + 1, H, W)``, plane axis
        -3, the default) or from :func:`forward1d` (``(..., nscales + 1, n)``: pass
        ``axis=-2``).
    axis : int, optional
        The plane axis.

    Returns
    -------
    x : ndarray
        The reconstruction, with the plane axis removed; same dtype as w.
    """
    w = _as_real_array(w, "w")
    if w.ndim < 1:
        raise InputError("w must be an array of transform planes, got a scalar")
    axis = axis if axis >= 0 else w.ndim + axis
    if not 0 <= axis < w.ndim:
        raise InputError(f"axis {axis} is out of range for w of shape {w.shape}")
    lead, nplanes, trail = w.shape[:axis], w.shape[axis], w.shape[axis + 1 :]
    flat = w.reshape((int(np.prod(lead, dtype=np.int64)), nplanes, -1))
    out = np.empty((flat.shape[0], flat.shape[2]), dtype=w.dtype)
    _starlet.inverse(flat, out, get_num_threads())
    return out.reshape(lead + trail)


@lru_cache(maxsize=64)
def _scale_norms(shape: tuple, nscales: int) -> np.ndarray:
    dirac = np.zeros(shape)
    dirac[tuple(n // 2 for n in shape)] = 1.0
    planes = forward(dirac, nscales) if len(shape) == 2 else forward1d(dirac, nscales)
    norms = np.sqrt((planes**2).reshape(nscales + 1, -1).sum(axis=1))
    norms.setflags(write=False)
    return norms


def scale_norms(shape, nscales: int) -> np.ndarray:
    """L2 norm of each plane's filter, to carry a white-noise std into the transform.

    White noise of std sigma has std ``sigma * scale_norms(shape, nscales)[j]`` in
    plane j (away from the borders).

    Parameters
    ----------
    shape : tuple of int
        ``(H, W)`` for images or ``(n,)`` for 1-D signals; the norms are those of a
        Dirac at the centre of such an array.
    nscales : int
        Number of detail scales.

    Returns
    -------
    norms : (nscales + 1,) ndarray of float64
        Read-only; the last entry is the coarse plane's.
    """
    shape = tuple(int(n) for n in np.atleast_1d(shape))
    nscales = _check_nscales(nscales)
    if len(shape) not in (1, 2):
        raise InputError(f"shape must be (H, W) or (n,), got {shape}")
    if min(shape) < 2:
        raise InputError(f"every axis needs at least 2 samples, got shape {shape}")
    return _scale_norms(shape, nscales)
