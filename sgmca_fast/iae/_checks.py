"""Checks of what users give the IAE code: batches of spectra, layers, thread counts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._validation import InputError, InputTypeError, integer

__all__ = ["as_batch", "check_layers", "check_threads"]


def as_batch(x, width: int, what: str, dims: str) -> tuple[np.ndarray, bool]:
    """Validate ``x`` as (k, width) finite float64; also accept one row (width,).

    Parameters
    ----------
    x : array_like
    width : int
        Required number of columns.
    what : str
        Name of the argument, for messages.
    dims : str
        Its shape in words, e.g. ``"k, J"``.

    Returns
    -------
    arr : (k, width) ndarray
    single : bool
        Whether the input was 1-D.
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise InputTypeError(
            f"{what} must be a real array, got {type(x).__name__}"
        ) from err
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise InputError(
            f"{what} must have shape ({dims}) or ({dims.split(',')[-1].strip()},), "
            f"got shape {np.shape(x)}"
        )
    if arr.shape[1] != width:
        raise InputError(
            f"{what} has {arr.shape[1]} {_unit(dims)}, expected {width} "
            f"(the model's {_unit(dims)} count); received shape {np.shape(x)}"
        )
    if not np.isfinite(arr).all():
        raise InputError(f"{what} holds NaN or infinite values")
    return arr, single


def _unit(dims: str) -> str:
    last = dims.split(",")[-1].strip()
    return {"J": "channels", "N": "anchor weights", "Jc": "code entries"}.get(
        last, "columns"
    )


def check_layers(weights, biases, what: str, first_width: int | None):
    """Validate a stack of layers; return read-only float64 copies (two tuples).

    Parameters
    ----------
    weights, biases : sequences of arrays, (J_l, J_l+1) and (J_l+1,)
    what : str
        ``"encoder"`` or ``"decoder"``, for messages.
    first_width : int or None
        Required rows of the first weight.
    """
    if not isinstance(weights, Sequence) or not isinstance(biases, Sequence):
        raise InputTypeError(f"{what} weights and biases must be lists of arrays")
    if len(weights) == 0 or len(weights) != len(biases):
        raise InputError(
            f"{what}: expected the same positive number of weights and biases, got "
            f"{len(weights)} weights and {len(biases)} biases"
        )
    ws, bs = [], []
    width = first_width
    for layer, (w, b) in enumerate(zip(weights, biases, strict=True)):
        w = np.array(w, dtype=np.float64, copy=True)
        b = np.array(b, dtype=np.float64, copy=True)
        if w.ndim != 2:
            raise InputError(
                f"{what} weight {layer} must be 2-D (J_l, J_l+1), got shape {w.shape}"
            )
        if b.shape != (w.shape[1],):
            raise InputError(
                f"{what} bias {layer} must have shape ({w.shape[1]},), got {b.shape}"
            )
        if width is not None and w.shape[0] != width:
            raise InputError(
                f"{what} weight {layer} has {w.shape[0]} rows, expected {width} "
                "(the width of the previous layer)"
            )
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise InputError(f"{what} layer {layer} holds non-finite values")
        width = w.shape[1]
        w.setflags(write=False)
        b.setflags(write=False)
        ws.append(w)
        bs.append(b)
    return tuple(ws), tuple(bs)


def check_threads(num_threads) -> int:
    """Onnxruntime intra-op threads: a positive integer, 1 for None."""
    if num_threads is None:
        return 1
    return integer(num_threads, "num_threads", minimum=1)
