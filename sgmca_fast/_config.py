"""One thread policy for the C kernels, Numba, onnxruntime and BLAS.

The package's thread count (:func:`get_num_threads`) is used by the starlet's
OpenMP loops, the Numba kernels and onnxruntime. While :func:`separate` runs,
:func:`thread_limits` also caps the BLAS and OpenMP pools of the process
(numpy's OpenBLAS or MKL, through threadpoolctl when it is installed) at the
same count, so that no library starts more threads than the CPUs this process
may use: each oversubscribed thread costs far more on a shared machine than it
gains on an idle one (docs/solver.md, "Threads").
"""

import contextlib
import os

__all__ = ["get_num_threads", "set_num_threads", "thread_limits"]

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
    return available_cpus()


def available_cpus() -> int:
    """Return the number of CPUs this process may run on.

    The CPU affinity mask (what ``taskset``, a batch scheduler or a container
    allows) where the platform has one, else ``os.cpu_count()``.
    """
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # not on Linux
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


class thread_limits(contextlib.ContextDecorator):
    """Run a block (or a decorated function) under one thread count for all libraries.

    Parameters
    ----------
    n : int, optional
        Threads for the block; default :func:`get_num_threads`. Inside it,
        :func:`get_num_threads` returns ``n``; the BLAS and OpenMP thread pools
        loaded in the process are capped at ``n`` too when threadpoolctl is
        installed (without it, only the package's own kernels follow ``n``).
        Everything is restored on exit, also on error.

    Examples
    --------
    >>> with sgmca_fast.thread_limits(1):      # doctest: +SKIP
    ...     result = sgmca_fast.separate(X, 4)
    """

    def __init__(self, n: int | None = None):
        if n is not None:
            from ._validation import integer

            n = integer(n, "n", minimum=1)
        self.n = n
        self._saved = []

    def _recreate_cm(self):
        # a fresh instance per decorated call: calls may nest
        return type(self)(self.n)

    def __enter__(self):
        global _num_threads
        n = _num_threads if self.n is None else self.n
        pools = None
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            pass
        else:
            pools = threadpool_limits(limits=n)
        self._saved.append((_num_threads, pools))
        _num_threads = n
        return self

    def __exit__(self, *exc):
        global _num_threads
        _num_threads, pools = self._saved.pop()
        if pools is not None:
            pools.restore_original_limits()
        return False
