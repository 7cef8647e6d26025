"""Import the IAE models pickled by the sGMCA authors, through a restricted unpickler.

The authors' files are Python pickles of a dict of numpy arrays and settings. A
pickle can name any importable callable, so it is read here by an unpickler whose
``find_class`` accepts the numpy array reconstruction globals and plain builtin
types and refuses everything else before anything is called.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle

import numpy as np

from .._validation import InputError
from ._model import IAEModel

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar

__all__ = ["from_reference"]

# (module, name) pairs a pickle of numpy arrays needs; numpy 2 serves numpy.core as
# an alias of numpy._core, so both spellings resolve to the same objects.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}
_NUMPY_OBJECTS = {
    "_reconstruct": _reconstruct,
    "scalar": scalar,
    "ndarray": np.ndarray,
    "dtype": np.dtype,
}
# Builtins that only build plain data; never eval/exec/getattr/__import__ & co.
_BUILTIN_GLOBALS = {
    "bool",
    "bytearray",
    "bytes",
    "complex",
    "dict",
    "float",
    "frozenset",
    "int",
    "list",
    "set",
    "slice",
    "str",
    "tuple",
}

_ACTIVATION_NAMES = {
    "lRelu": "leaky_relu",
    "Relu": "relu",
    "tanh": "tanh",
    "linear": "linear",
}


class RefusedGlobalError(pickle.UnpicklingError):
    """A pickle named a global outside the allowed numpy and builtin ones."""


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array globals and data builtins."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return _NUMPY_OBJECTS[name]
        if module in ("builtins", "__builtin__") and name in _BUILTIN_GLOBALS:
            return getattr(builtins, name)
        raise RefusedGlobalError(
            f"refusing global '{module}.{name}': only numpy arrays and builtin data "
            "types may be unpickled"
        )


def _safe_load(data: bytes):
    return _RestrictedUnpickler(io.BytesIO(data)).load()


def _as_float_array(value, key: str, path: str, ndim: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != ndim or not np.issubdtype(arr.dtype, np.number):
        raise InputError(
            f"{path}: {key} must be a numeric array with {ndim} dimension(s), got "
            f"shape {arr.shape} and dtype {arr.dtype}"
        )
    return arr.astype(np.float64)


def _json_value(value):
    """Turn a pickled setting into a JSON-able value (None if it is not plain)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, np.ndarray) and value.size <= 64:
        return value.tolist()
    return None


def from_reference(path: str | os.PathLike) -> IAEModel:
    """Import an IAE model pickled by the sGMCA authors.

    Parameters
    ----------
    path : str or path-like
        A ``model_*.pkl`` file of the authors' public code (a dict with keys
        ``AnchorPoints``, ``Params``, ``nlayers``, ``active_forward``,
        ``res_factor``, ``reg_inv``, ``simplex``, ...).

    Returns
    -------
    model : IAEModel
        The model in float64, with the numpy run-time path.

    Raises
    ------
    pickle.UnpicklingError
        If the pickle names any global other than numpy's array reconstruction
        and builtin data types (nothing it names is called).
    InputError
        (a ValueError) If the file is not such a dict or a field has the wrong
        type or shape.
    """
    path = os.fspath(path)
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        obj = _safe_load(data)
    except RefusedGlobalError:
        raise
    except Exception as err:  # truncated or not a pickle at all
        raise InputError(f"{path}: cannot read the pickle ({err})") from err
    if not isinstance(obj, dict):
        raise InputError(
            f"{path}: expected a dict of model fields, got {type(obj).__name__}"
        )
    required = ("AnchorPoints", "Params", "nlayers", "active_forward", "res_factor")
    missing = [k for k in required if k not in obj]
    if missing:
        raise InputError(f"{path}: missing key(s) {sorted(missing)}")
    params = obj["Params"]
    if not isinstance(params, dict):
        raise InputError(f"{path}: Params must be a dict")
    n_layers = int(obj["nlayers"])
    enc_w, enc_b, dec_w, dec_b = [], [], [], []
    for lst, key, ndim in (
        (enc_w, "Wt", 2),
        (enc_b, "bt", 1),
        (dec_w, "Wp", 2),
        (dec_b, "bp", 1),
    ):
        for layer in range(n_layers):
            name = f"{key}{layer}"
            if name not in params:
                raise InputError(f"{path}: Params is missing {name!r}")
            lst.append(_as_float_array(params[name], f"Params[{name!r}]", path, ndim))
    forward = obj["active_forward"]
    backward = obj.get("active_backward", forward)
    if forward != backward:
        raise InputError(
            f"{path}: encoder activation {forward!r} and decoder activation "
            f"{backward!r} differ; only one activation per model is supported"
        )
    if forward not in _ACTIVATION_NAMES:
        raise InputError(
            f"{path}: unknown activation {forward!r}; expected one of "
            f"{sorted(_ACTIVATION_NAMES)}"
        )
    if obj.get("nneg_output", False):
        raise InputError(f"{path}: models with nneg_output=True are not supported")
    settings = {}
    for key, value in obj.items():
        if key in ("AnchorPoints", "Params"):
            continue
        jv = _json_value(value)
        if jv is not None or value is None:
            settings[key] = jv
    settings["source"] = "sGMCA authors' reference model"
    settings["source_file"] = os.path.basename(path)
    name = obj.get("fname", "")
    name = os.path.basename(str(name)) if name is not None else ""
    return IAEModel(
        _as_float_array(obj["AnchorPoints"], "AnchorPoints", path, 2),
        enc_w,
        enc_b,
        dec_w,
        dec_b,
        activation=_ACTIVATION_NAMES[forward],
        res_factor=float(obj["res_factor"]),
        simplex=bool(obj.get("simplex", True)),
        reg_inv=float(obj.get("reg_inv", 1e-8)),
        reg_parameter=float(obj.get("reg_parameter", 0.1)),
        name=name,
        metadata=settings,
    )
