"""The IAE file format: one ONNX model with the settings as JSON metadata.

The file holds the graph of ``_graph.py`` (weights, anchors, anchor codes, the
interpolator matrix and any training spectra are its initializers) and, in its
``metadata_props`` under ``sgmca_fast.iae``, a JSON object: the model's
settings (:meth:`IAEModel.settings`), ``reg_inv``, ``name``, ``training``,
``has_training_spectra``, ``package_version`` and ``format_version``:

- 3 (written today): the graph has the decoder's pre-activation outputs;
- 2: no pre-activation outputs;
- 1: the free derivatives as a (k, J, d) ``jacobian_free``.

Files of every version load; an older file's weights are run through the graph
built today. Reading validates every metadata field (type, range and agreement
with the initializers) before anything is built from it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from .._io import atomic_write
from .._validation import InputError, boolean, choice, integer, real
from ._graph import build
from ._network import ACTIVATIONS, Network

__all__ = ["FORMAT_VERSION", "METADATA_KEY", "metadata", "model_proto", "read",
           "write"]

METADATA_KEY = "sgmca_fast.iae"
# 2: free derivatives as rows, ``tangents_free``; 3: the decoder's pre-activations.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)
_REQUIRED = ("format_version", "n_channels", "n_anchors", "n_layers", "activation",
             "res_factor", "simplex", "reg_inv")
_LAYER_NAME = re.compile(r"(enc|dec)_[Wb](\d+)$")


def package_version() -> str:
    """Return the installed package's version ("unknown" from uncompiled sources)."""
    try:
        from .._version import __version__
    except ImportError:  # pragma: no cover - uncompiled sources
        return "unknown"
    return __version__


def metadata(settings: dict, *, name: str, reg_inv: float,
             has_training_spectra: bool, training: dict) -> dict:
    """Return the JSON object stored in a file, from a model's settings."""
    return {
        "format_version": FORMAT_VERSION,
        "package_version": package_version(),
        "name": name,
        **settings,
        "reg_inv": reg_inv,
        "has_training_spectra": has_training_spectra,
        "training": training,
    }


def model_proto(net: Network, meta: dict, training_spectra=None):
    """Return the ``onnx.ModelProto`` of a network with its metadata (a file's)."""
    try:
        meta_json = json.dumps(meta, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise InputError(f"model metadata must be JSON-able: {err}") from err
    return build(net, name=meta.get("name", ""), training_spectra=training_spectra,
                 props={METADATA_KEY: meta_json}, producer_version=package_version())


def write(proto, path) -> None:
    """Write an ONNX model atomically (temporary name, then rename)."""
    data = proto.SerializeToString()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), force=True)


def read(data: bytes, where: str):
    """Parse and validate an IAE ONNX file; return (proto, metadata, arrays).

    Raises
    ------
    InputError
        Not ONNX, truncated, not an IAE model, an unsupported version, or a
        metadata field of the wrong type, out of range or at odds with the
        initializers (the message names the file and the field).
    """
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load_model_from_string(data)
    except Exception as err:
        raise InputError(
            f"{where}: not a readable ONNX file (truncated or corrupt?): "
            f"{type(err).__name__}: {err}"
        ) from err
    meta = _metadata_object(proto, where)
    try:
        onnx.checker.check_model(proto)
    except Exception as err:
        raise InputError(f"{where}: invalid ONNX model: {err}") from err
    arrays = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    _check_fields(meta, where)
    _check_against_arrays(meta, arrays, where)
    return proto, meta, arrays


def _metadata_object(proto, where: str) -> dict:
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise InputError(
            f"{where}: not an sgmca-fast IAE model: its metadata_props have no "
            f"{METADATA_KEY!r} entry (another ONNX model, or a truncated file)"
        )
    try:
        meta = json.loads(props[METADATA_KEY])
    except ValueError as err:
        raise InputError(f"{where}: corrupt {METADATA_KEY!r} metadata: {err}") from err
    if not isinstance(meta, dict):
        raise InputError(f"{where}: corrupt {METADATA_KEY!r} metadata: not an object")
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise InputError(f"{where}: IAE metadata is missing {sorted(missing)}")
    version = meta["format_version"]
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise InputError(
            f"{where}: IAE format version {version!r} is not supported (expected "
            f"one of {READABLE_VERSIONS})"
        )
    return meta


def _check_fields(meta: dict, where: str) -> None:
    """Type and range of every field, each error naming the file and the field."""
    def field(key):
        return f"{where}: IAE metadata field {key!r}"

    for key in ("n_channels", "n_anchors", "n_layers"):
        integer(meta[key], field(key), minimum=1)
    if "code_size" in meta:
        integer(meta["code_size"], field("code_size"), minimum=1)
    choice(meta["activation"], field("activation"), ACTIVATIONS)
    for key in ("res_factor", "reg_inv", "reg_parameter"):
        if key in meta:
            real(meta[key], field(key), low=0.0)
    boolean(meta["simplex"], field("simplex"))
    if "has_training_spectra" in meta:
        boolean(meta["has_training_spectra"], field("has_training_spectra"))
    for key in ("name", "package_version"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise InputError(f"{field(key)} must be a string, got {meta[key]!r}")
    if meta.get("training") is not None and not isinstance(meta["training"], dict):
        raise InputError(f"{field('training')} must be an object, got "
                         f"{meta['training']!r}")


def _check_against_arrays(meta: dict, arrays: dict, where: str) -> None:
    """Check the counts and shapes the metadata give against the initializers."""
    n_layers, n_channels = meta["n_layers"], meta["n_channels"]
    in_file = {}
    for name in arrays:
        match = _LAYER_NAME.match(name)
        if match:
            in_file.setdefault(match.group(1), set()).add(int(match.group(2)))
    for part in ("enc", "dec"):
        count = len(in_file.get(part, ()))
        if count != n_layers or any(
            f"{part}_{p}{i}" not in arrays for p in "Wb" for i in range(n_layers)
        ):
            raise InputError(
                f"{where}: IAE metadata field 'n_layers' is {n_layers}, but the "
                f"graph holds {part}oder layers {sorted(in_file.get(part, ()))} "
                f"(expected {part}_W0, {part}_b0 ... {part}_b{n_layers - 1})"
            )
    _check_shape(arrays, "anchors", (meta["n_anchors"], n_channels), where,
                 "'n_anchors' and 'n_channels'")
    for part in ("enc", "dec"):
        for i in range(n_layers):
            for p, ndim in (("W", 2), ("b", 1)):
                name = f"{part}_{p}{i}"
                if arrays[name].ndim != ndim or arrays[name].dtype.kind not in "fiu":
                    raise InputError(
                        f"{where}: initializer {name} must be a real {ndim}-D array, "
                        f"got shape {arrays[name].shape} and dtype {arrays[name].dtype}"
                    )
    if arrays["enc_W0"].shape[0] != n_channels:
        raise InputError(
            f"{where}: IAE metadata field 'n_channels' is {n_channels}, but the "
            f"encoder's first weight has {arrays['enc_W0'].shape[0]} rows"
        )
    code = arrays[f"enc_W{n_layers - 1}"].shape[1]
    if meta.get("code_size", code) != code:
        raise InputError(
            f"{where}: IAE metadata field 'code_size' is {meta['code_size']}, but "
            f"the encoder's last weight has {code} columns"
        )
    if meta.get("has_training_spectra") and "training_spectra" not in arrays:
        raise InputError(
            f"{where}: IAE metadata field 'has_training_spectra' is true, but the "
            "graph holds no training_spectra initializer"
        )
    if "training_spectra" in arrays:
        spectra = arrays["training_spectra"]
        if spectra.ndim != 2 or spectra.shape[1] != n_channels:
            raise InputError(
                f"{where}: training_spectra must have shape (M, {n_channels}) "
                f"('n_channels'), got {spectra.shape}"
            )


def _check_shape(arrays, name, shape, where, fields):
    if name not in arrays:
        raise InputError(f"{where}: initializer(s) missing: [{name!r}]")
    if np.shape(arrays[name]) != shape:
        raise InputError(
            f"{where}: IAE metadata fields {fields} give {name} the shape {shape}, "
            f"the graph holds {np.shape(arrays[name])}"
        )
