"""Reading an IAE model file: :func:`load`."""

from __future__ import annotations

import os

from .._validation import InputError
from ._checks import check_threads
from ._format import FORMAT_VERSION, read
from ._generator import BACKENDS
from ._graph import build
from ._model import IAEModel
from ._runtime import OrtGenerator, build_sessions, cached_sessions

__all__ = ["load"]


def load(path, num_threads: int | None = None, *, backend: str = "onnxruntime",
         cache: bool = True) -> IAEModel:
    """Read a model written by :meth:`IAEModel.save` (any format version).

    Parameters
    ----------
    path : str or path-like
        An ``.onnx`` file.
    num_threads : int, optional
        onnxruntime intra-op threads; default 1, for use inside iterative loops.
    backend : {"onnxruntime", "numpy"}, optional
        What runs the projections. onnxruntime runs the file's graph (an older
        format's weights through today's graph).
    cache : bool, optional
        Reuse the onnxruntime sessions built by an earlier load of the same file
        (same path, modification time and size) and thread count.

    Returns
    -------
    model : IAEModel
        Its ``encode``, ``decode``, ``generate``, ... stay the numpy reference
        definition whatever the backend.

    Raises
    ------
    InputError
        If the file is not ONNX, is truncated or corrupt, is an ONNX model
        without sgmca-fast IAE metadata, or its metadata are of the wrong type,
        out of range or at odds with its weights (the message names the file).
    """
    threads = check_threads(num_threads)
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    path = os.fspath(path)
    stat = os.stat(path)
    with open(path, "rb") as fh:
        data = fh.read()
    proto, meta, arrays = read(data, path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size)

    def generator(network):
        # An older file's graph lacks today's run-time outputs: run today's
        # graph, built from the file's weights.
        current = meta["format_version"] == FORMAT_VERSION

        def make_proto():
            return proto if current else build(network)

        try:
            sessions = (cached_sessions(key, make_proto, threads) if cache
                        else build_sessions(make_proto(), threads))
        except Exception as err:
            raise InputError(
                f"{path}: onnxruntime cannot run the model: {err}"
            ) from err
        return OrtGenerator(network, sessions)

    try:
        model = IAEModel(
            arrays["anchors"],
            [arrays[f"enc_W{i}"] for i in range(meta["n_layers"])],
            [arrays[f"enc_b{i}"] for i in range(meta["n_layers"])],
            [arrays[f"dec_W{i}"] for i in range(meta["n_layers"])],
            [arrays[f"dec_b{i}"] for i in range(meta["n_layers"])],
            activation=meta["activation"],
            res_factor=meta["res_factor"],
            simplex=meta["simplex"],
            reg_inv=meta["reg_inv"],
            reg_parameter=meta.get("reg_parameter", 0.1),
            name=meta.get("name") or "",
            metadata=meta.get("training") or {},
            training_spectra=arrays.get("training_spectra"),
            backend=generator if backend == "onnxruntime" else "numpy",
        )
    except InputError as err:
        if str(err).startswith(path):
            raise
        raise InputError(f"{path}: inconsistent IAE model: {err}") from err
    model.source = path
    model.package_version = meta.get("package_version")
    return model

