"""Thread settings shared by the C kernels, the Numba kernels and onnxruntime."""

import os

__all__ = ["get_num_threads", "set_num_threads"]

_ENV_VAR = "SGMCA_FAST_NUM_THREADS"

# The OpenMP runtime (the C starlet and Numba's default threading layer) spins
# waiting threads by default; on a busy machine that turns each short parallel
# region into milliseconds of waiting. Passive waiting costs microseconds instead.
# A value the user set is kept; it must be set before the runtime starts.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def _initial_threads() -> int:
    value = os.environ.get(_ENV_VAR, "")
    if value.strip():
        try:
            n = int(value)
        except ValueError:
            raise ValueError(
                f"{_ENV_VAR} must be a positive integer, got {value!r}"
            ) from None
        if n >= 1:
            return n
        raise ValueError(f"{_ENV_VAR} must be a positive integer, got {value!r}")
    return os.cpu_count() or 1


_num_threads = _initial_threads()


def get_num_threads() -> int:
    """Return the number of threads the compiled kernels use.

    Returns
    -------
    n : int
        Threads for the starlet (OpenMP), the Numba kernels and onnxruntime. The
        default is the environment variable ``SGMCA_FAST_NUM_THREADS`` when set,
        else the number of CPUs.
    """
    return _num_threads


def set_num_threads(n: int) -> None:
    """Set the number of threads the compiled kernels use.

    Parameters
    ----------
    n : int
        A positive thread count; it applies to calls made after this one.
    """
    # imported here: importing the package must not import numpy (see __init__)
    from ._validation import integer

    global _num_threads
    _num_threads = integer(n, "n", minimum=1)
