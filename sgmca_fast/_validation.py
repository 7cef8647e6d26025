"""Checks of user input, shared by every public entry point.

Each check validates one argument and returns it in canonical form (a Python int or
float, a float64 array). Its error names the argument, says what was expected and
what was received. Errors are :class:`InputError` (a ``ValueError``) or
:class:`InputTypeError` (also a ``TypeError``), so that callers such as the command
line can tell bad input, reported in one line, from a bug, reported with its
traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

__all__ = [
    "InputError",
    "InputTypeError",
    "boolean",
    "choice",
    "float_dtype",
    "integer",
    "real",
    "real_array",
]


class InputError(ValueError):
    """A value, a shape or a file given by the user is not acceptable."""


class InputTypeError(InputError, TypeError):
    """An argument given by the user has the wrong type."""


def _is_integer(value) -> bool:
    return not isinstance(value, (bool, np.bool_)) and isinstance(
        value, (int, np.integer)
    )


def integer(value, name: str, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """Return ``value`` as an int after checking its type and range.

    Parameters
    ----------
    value : int
        The argument (Python or numpy integer; bool is refused).
    name : str
        Its name, for the message.
    minimum, maximum : int, optional
        Inclusive bounds.

    Returns
    -------
    int
    """
    if not _is_integer(value):
        raise InputTypeError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {value}")
    return int(value)


def real(value, name: str, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False,
         finite: bool = True) -> float:
    """Return ``value`` as a float after checking its type and range.

    Parameters
    ----------
    value : float
        The argument (a Python or numpy real number; bool is refused).
    name : str
        Its name, for the message.
    low, high : float, optional
        Bounds, inclusive unless ``low_open`` / ``high_open``.
    low_open, high_open : bool, optional
        Make the corresponding bound strict.
    finite : bool, optional
        Refuse inf (NaN is always refused).

    Returns
    -------
    float
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise InputTypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        wanted = "a finite number" if finite else "a number"
        raise InputError(f"{name} must be {wanted}, got nan")
    if finite and math.isinf(value):
        raise InputError(f"{name} must be a finite number, got {value}")
    if low is not None and (value <= low if low_open else value < low):
        raise InputError(f"{name} must be {'>' if low_open else '>='} {low}, "
                         f"got {value}")
    if high is not None and (value >= high if high_open else value > high):
        raise InputError(f"{name} must be {'<' if high_open else '<='} {high}, "
                         f"got {value}")
    return value


def boolean(value, name: str) -> bool:
    """Return ``value`` as a bool; only True and False (numpy's too) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise InputTypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def choice(value, name: str, options: Iterable[str]) -> str:
    """Return ``value`` if it is one of ``options``; the error lists them sorted."""
    options = sorted(options)
    if not isinstance(value, str) or value not in options:
        raise InputError(f"{name} must be one of {options}, got {value!r}")
    return value


_FLOAT_DTYPES = {"float32": np.float32, "float64": np.float64}


def float_dtype(value, name: str = "dtype") -> type:
    """Return ``np.float32`` or ``np.float64`` for a working precision argument.

    Parameters
    ----------
    value : None, numpy.float32, numpy.float64, numpy.dtype or str
        None means float64; the strings ``"float32"`` and ``"float64"`` and the
        equal numpy dtypes are accepted.
    name : str, optional
        Its name, for the message.

    Returns
    -------
    type
        ``np.float32`` or ``np.float64``.
    """
    if value is None:
        return np.float64
    if isinstance(value, str):
        if value in _FLOAT_DTYPES:
            return _FLOAT_DTYPES[value]
    else:
        try:
            dt = np.dtype(value)
        except TypeError:
            dt = None
        if dt is not None and dt.name in _FLOAT_DTYPES:
            return _FLOAT_DTYPES[dt.name]
    raise InputError(f"{name} must be one of None, {sorted(_FLOAT_DTYPES)} (or "
                     f"numpy.float32, numpy.float64), got {value!r}")


def real_array(x, name: str, *, ndim: int | tuple[int, ...] | None = None,
               finite: bool = True, keep_float32: bool = False,
               shape_text: str | None = None) -> np.ndarray:
    """Return ``x`` as a real float array after checking dtype, dimensions, values.

    Parameters
    ----------
    x : array_like
        The argument. Booleans and integers are converted; complex and
        non-numeric dtypes are refused. A masked array with masked entries is
        refused (its mask would otherwise be silently dropped).
    name : str
        Its name, for the message.
    ndim : int or tuple of int, optional
        Accepted numbers of dimensions.
    finite : bool, optional
        Refuse NaN and inf.
    keep_float32 : bool, optional
        Keep float32 input in float32 (otherwise everything becomes float64).
    shape_text : str, optional
        How the expected shape is described in the ndim error, e.g.
        ``"a cube (J, H, W) or a matrix (J, P)"``.

    Returns
    -------
    ndarray
        float64 (or float32 with ``keep_float32``); a view when no conversion is
        needed.
    """
    if np.ma.isMaskedArray(x):
        n_masked = int(np.ma.count_masked(x))
        if n_masked:
            raise InputError(
                f"{name} is a masked array with {n_masked} masked value(s); masked "
                "(missing) values are not supported: fill them or pass the "
                "complete data"
            )
        x = np.ma.getdata(x)
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InputTypeError(
            f"{name} must be a real numeric array, got dtype {arr.dtype}"
        )
    if not (keep_float32 and arr.dtype == np.float32):
        arr = arr.astype(np.float64, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            wanted = shape_text or " or ".join(f"{n}-D" for n in allowed)
            raise InputError(f"{name} must be {wanted}, got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or inf values")
    return arr
