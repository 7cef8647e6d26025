"""ONNX export of IAE models and their onnxruntime run-time path.

One ``.onnx`` file holds one graph with three float64 inputs and several outputs:

==============  ==========  =================================================
input           shape       outputs
==============  ==========  =================================================
``x``           (k, J)      ``encoded``, ``fast_spectra``, ``fast_lambdas``,
                            ``fast_amplitude``, ``start_lambdas``,
                            ``start_generated``, ``start_tangents_free``,
                            ``start_preactivations``,
                            ``start_preactivation_tangents``
``code``        (k, J')     ``decoded``
``lambdas``     (k, N)      ``generated``, ``jacobian``, ``tangents_free``,
                            ``preactivations``, ``preactivation_tangents``
==============  ==========  =================================================

``encoded = phi(x)``, ``decoded = psi(code)``, ``generated = g(lambdas)``,
``jacobian = dg/dlambda`` (k, J, N), propagated forward through the decoder
layers as ONNX ops (tangent rows ``dh' = act'(z) * (dh W) + r dh``), and
``tangents_free = (dg/dlambda E)^T`` (k, d, J), the derivatives along the free
directions ``E`` of the projection as rows (``E`` spans the sum-zero subspace;
initializer ``free_codes = E^T PhiE``). ``preactivations`` (k, P) are the
decoder's ``z = h W + b``, every layer side by side (P = the sum of the layer
widths), and ``preactivation_tangents`` (k, d, P) their derivatives along ``E``
as rows: the projection uses them to know how far g stays affine (piecewise-
linear activations). The ``fast_*`` outputs are the fast projection of
ALGORITHM.md section 4; the ``start_*`` outputs are where
:meth:`IAEModel.project` starts (fast weights moved onto ``sum(lambda) = 1``, with
g, dg/dt, z and dz/dt there). Each layer is ``Gemm (h W + b) -> activation (-> Add
r * h)``, the leaky ReLU written ``z * da`` with ``da = Where(z > 0, 1, slope)``
(onnxruntime has no float64 LeakyRelu kernel and would expand it into three
passes); weights, anchor codes, anchors, the interpolator matrix and the training
spectra (if any) are initializers; the settings are JSON in ``metadata_props``
under ``sgmca_fast.iae``, with ``format_version`` 3 (format 2 had no
pre-activation outputs, format 1 had the free derivatives as a (k, J, d)
``jacobian_free``; such files still load, and run the current graph built from
their weights).

At load time the graph is split (in memory) into one small model per task, each
with one cached ``InferenceSession`` per file and thread count, so a call never
runs the branches it does not need.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from .._io import atomic_write
from ._model import IAEModel, as_batch

__all__ = ["attach_runtime", "build_model_proto", "load", "save"]

OPSET = 17
IR_VERSION = 8
METADATA_KEY = "sgmca_fast.iae"
# 2: free derivatives as rows, ``tangents_free``; 3: the decoder's pre-activations.
FORMAT_VERSION = 3
_READABLE_VERSIONS = (1, 2, 3)
PRODUCER = "sgmca-fast"

# The tasks a loaded model runs, as (inputs, outputs) of the full graph.
_TASKS = {
    "encode": (["x"], ["encoded"]),
    "decode": (["code"], ["decoded"]),
    "generate": (["lambdas"], ["generated"]),
    "jacobian": (["lambdas"], ["generated", "jacobian"]),
    "fast": (["x"], ["fast_spectra", "fast_lambdas", "fast_amplitude"]),
    "generate_free": (["lambdas"], ["generated", "tangents_free", "preactivations",
                                    "preactivation_tangents"]),
    "start": (["x"], ["start_lambdas", "start_generated", "start_tangents_free",
                      "start_preactivations", "start_preactivation_tangents"]),
}

_SESSIONS: dict = {}
_SESSIONS_LOCK = threading.Lock()


def _package_version() -> str:
    try:
        from .._version import __version__
    except ImportError:  # pragma: no cover - uncompiled sources
        return "unknown"
    return __version__


class _GraphBuilder:
    """Collects nodes and initializers with unique names."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes = []
        self.initializers = []
        self._names: set[str] = set()
        self._consts: dict = {}

    def name(self, base: str) -> str:
        candidate, i = base, 0
        while candidate in self._names:
            i += 1
            candidate = f"{base}_{i}"
        self._names.add(candidate)
        return candidate

    def init(self, name: str, value) -> str:
        name = self.name(name)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def const(self, value: float) -> str:
        """Return a float64 scalar initializer, shared between uses."""
        key = ("f", float(value))
        if key not in self._consts:
            self._consts[key] = self.init(f"c_{value:g}", np.array(value, np.float64))
        return self._consts[key]

    def ints(self, values) -> str:
        key = ("i", tuple(values))
        if key not in self._consts:
            label = "_".join(str(v) for v in values)
            self._consts[key] = self.init(f"axes_{label}", np.array(values, np.int64))
        return self._consts[key]

    def op(self, op_type: str, inputs, output: str | None = None, **attrs) -> str:
        out = output if output is not None else self.name(op_type.lower())
        if output is not None:
            self._names.add(output)
        self.nodes.append(
            self.helper.make_node(op_type, list(inputs), [out], name=out, **attrs)
        )
        return out


def _activation(gb: _GraphBuilder, z: str, activation: str, with_grad: bool):
    """Activation of ``z`` and, if asked, its derivative (None when it is 1).

    onnxruntime has no float64 kernel for LeakyRelu (it expands the function
    into three passes over the data), so the leaky ReLU is written as
    ``max(z, 0.01 z)`` or, with its derivative ``da``, as ``z * da``.
    """
    if activation in ("leaky_relu", "relu"):
        slope = 0.01 if activation == "leaky_relu" else 0.0
        if not with_grad:
            if slope == 0.0:
                return gb.op("Relu", [z]), None
            return gb.op("Max", [z, gb.op("Mul", [z, gb.const(slope)])]), None
        pos = gb.op("Greater", [z, gb.const(0.0)])
        da = gb.op("Where", [pos, gb.const(1.0), gb.const(slope)])
        return gb.op("Mul", [z, da]), da
    if activation == "tanh":
        a = gb.op("Tanh", [z])
        if not with_grad:
            return a, None
        return a, gb.op("Sub", [gb.const(1.0), gb.op("Mul", [a, a])])
    return z, None


def _layers(gb, h, weights, biases, factors, activation, tangents=(), record=None):
    """Chain of residual layers; optionally push tangents (rows) forward too.

    Each tangent starts as a (d, J) initializer shared by the batch and becomes
    (k, d, J') at the first layer whose activation derivative depends on ``h``.
    With a list ``record``, every layer appends its pre-activation ``z``, the
    derivative rows ``dz`` of the last tangent and whether they are still
    shared, (d, J').
    """
    tangents = list(tangents)
    shared = True  # tangents still (d, J'), the same for the whole batch
    for w, b, r in zip(weights, biases, factors, strict=True):
        z = gb.op("Gemm", [h, w, b])  # h @ w + b, the bias added by the GEMM
        a, da = _activation(gb, z, activation, bool(tangents))
        if da is not None:
            da3 = gb.op("Unsqueeze", [da, gb.ints([1])])  # (k, 1, J')
        for i, tangent in enumerate(tangents):
            dz = gb.op("MatMul", [tangent, w])  # (k, d, J') or (d, J')
            if record is not None and i == len(tangents) - 1:
                record.append((z, dz, shared))
            if da is not None:
                dz = gb.op("Mul", [da3, dz])
            if r != 0:
                dz = gb.op("Add", [dz, gb.op("Mul", [tangent, gb.const(r)])])
            tangents[i] = dz
        shared = shared and da is None
        if r != 0:
            a = gb.op("Add", [a, gb.op("Mul", [h, gb.const(r)])])
        h = a
    return h, tangents


def _batched(gb, tangent, h0):
    """Expand a (d, J) tangent shared by the batch to (k, d, J) (k: rows of h0)."""
    batch = gb.op("Shape", [h0], start=0, end=1)
    full = gb.op("Concat", [batch, gb.op("Shape", [tangent])], axis=0)
    return gb.op("Expand", [tangent, full])


def _preactivation_outputs(gb, record, h0, name, tangent_name):
    """Pre-activations of every layer side by side (k, P), and their rows (k, d, P)."""
    gb.op("Concat", [z for z, _, _ in record], name, axis=1)
    dzs = [_batched(gb, dz, h0) if shared else dz for _, dz, shared in record]
    gb.op("Concat", dzs, tangent_name, axis=2)


def _jacobian_output(gb, tangent, h0, activation, name, rows=False):
    """(k, d, J) tangent rows -> output ``name``: (k, J, d), or as is if ``rows``."""
    if activation == "linear":
        # The tangent never met a batch-dependent derivative: it is still (d, J).
        tangent = _batched(gb, tangent, h0)
    if rows:
        gb.op("Identity", [tangent], name)
    else:
        gb.op("Transpose", [tangent], name, perm=[0, 2, 1])


def _metadata(model: IAEModel) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "package_version": _package_version(),
        "name": model.name,
        **model._settings(),
        "reg_inv": model.reg_inv,
        "has_training_spectra": model.training_spectra is not None,
        "training": model.metadata,
    }


def build_model_proto(model: IAEModel):
    """Build the ``onnx.ModelProto`` of a model (checked with ``onnx.checker``).

    Parameters
    ----------
    model : IAEModel

    Returns
    -------
    proto : onnx.ModelProto
    """
    import onnx
    from onnx import TensorProto, helper

    try:
        meta_json = json.dumps(_metadata(model), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model metadata must be JSON-able: {err}") from err
    gb = _GraphBuilder()
    for reserved in ("x", "code", "lambdas"):
        gb._names.add(reserved)
    enc_w = [gb.init(f"enc_W{i}", w) for i, w in enumerate(model.encoder_weights)]
    enc_b = [gb.init(f"enc_b{i}", b) for i, b in enumerate(model.encoder_biases)]
    dec_w = [gb.init(f"dec_W{i}", w) for i, w in enumerate(model.decoder_weights)]
    dec_b = [gb.init(f"dec_b{i}", b) for i, b in enumerate(model.decoder_biases)]
    gb.init("anchors", model.anchors)
    codes = gb.init("anchor_codes", model.anchor_codes)
    interp = gb.init("interp_matrix", model._interp_matrix)
    if model.training_spectra is not None:
        gb.init("training_spectra", model.training_spectra)
    r_enc = [float(v) for v in model.residual_factors]
    r_dec = r_enc[::-1]
    act = model.activation

    # Encoder and decoder on their own inputs.
    enc, _ = _layers(gb, "x", enc_w, enc_b, r_enc, act)
    gb.op("Identity", [enc], "encoded")
    dec, _ = _layers(gb, "code", dec_w, dec_b, r_dec, act)
    gb.op("Identity", [dec], "decoded")
    # Generator and its Jacobians: h0 = lambda PhiE; tangents dh0 = PhiE (N, J')
    # for dg/dlambda and E^T PhiE (d, J') for dg/dt along the free directions E.
    free_codes = gb.init("free_codes", model._free_basis.T @ model.anchor_codes)
    h0 = gb.op("MatMul", ["lambdas", codes])
    record = []
    gen, (tan, tan_free) = _layers(
        gb, h0, dec_w, dec_b, r_dec, act, tangents=(codes, free_codes), record=record
    )
    gb.op("Identity", [gen], "generated")
    _jacobian_output(gb, tan, h0, act, "jacobian")
    _jacobian_output(gb, tan_free, h0, act, "tangents_free", rows=True)
    _preactivation_outputs(gb, record, h0, "preactivations", "preactivation_tangents")
    # Fast projection.
    axis1 = gb.ints([1])
    amp0 = gb.op(
        "Div",
        [gb.op("ReduceSum", [gb.op("Abs", ["x"]), axis1], keepdims=1),
         gb.const(model._anchor_scale)],
    )
    amp0 = gb.op("Where", [gb.op("Greater", [amp0, gb.const(0.0)]), amp0,
                           gb.const(1.0)])
    code_x, _ = _layers(gb, gb.op("Div", ["x", amp0]), enc_w, enc_b, r_enc, act)
    lam = gb.op("MatMul", [code_x, interp])
    if model.simplex:
        total = gb.op("ReduceSum", [lam, axis1], keepdims=1)
        lam = gb.op("Div", [lam, gb.op("Add", [total, gb.const(1e-3)])])
    gb.op("Identity", [lam], "fast_lambdas")
    y, _ = _layers(gb, gb.op("MatMul", [lam, codes]), dec_w, dec_b, r_dec, act)
    yx = gb.op("ReduceSum", [gb.op("Mul", [y, "x"]), axis1], keepdims=1)
    yy = gb.op("ReduceSum", [gb.op("Mul", [y, y]), axis1], keepdims=1)
    amp = gb.op("Div", [yx, gb.op("Max", [yy, gb.const(1e-3)])])
    gb.op("Mul", [y, amp], "fast_spectra")
    gb.op("Squeeze", [amp, axis1], "fast_amplitude")
    # Start of the least-squares projection: the fast weights moved onto
    # sum(lambda) = 1, with g and dg/dt there (one call instead of two).
    if model.simplex:
        total = gb.op("ReduceSum", [lam, axis1], keepdims=1)
        shift = gb.op("Div", [gb.op("Sub", [gb.const(1.0), total]),
                              gb.const(float(model.n_anchors))])
        lam = gb.op("Add", [lam, shift])
    gb.op("Identity", [lam], "start_lambdas")
    h0s = gb.op("MatMul", [lam, codes])
    record = []
    gen_s, (tan_s,) = _layers(gb, h0s, dec_w, dec_b, r_dec, act, tangents=(free_codes,),
                              record=record)
    gb.op("Identity", [gen_s], "start_generated")
    _jacobian_output(gb, tan_s, h0s, act, "start_tangents_free", rows=True)
    _preactivation_outputs(gb, record, h0s, "start_preactivations",
                           "start_preactivation_tangents")

    dbl = TensorProto.DOUBLE
    J, N, Jc = model.n_channels, model.n_anchors, model.code_size
    d = model._free_basis.shape[1]
    P = sum(w.shape[1] for w in model.decoder_weights)
    inputs = [
        helper.make_tensor_value_info("x", dbl, ["n_x", J]),
        helper.make_tensor_value_info("code", dbl, ["n_code", Jc]),
        helper.make_tensor_value_info("lambdas", dbl, ["n_lambdas", N]),
    ]
    outputs = [
        helper.make_tensor_value_info("encoded", dbl, ["n_x", Jc]),
        helper.make_tensor_value_info("decoded", dbl, ["n_code", J]),
        helper.make_tensor_value_info("generated", dbl, ["n_lambdas", J]),
        helper.make_tensor_value_info("jacobian", dbl, ["n_lambdas", J, N]),
        helper.make_tensor_value_info("fast_spectra", dbl, ["n_x", J]),
        helper.make_tensor_value_info("fast_lambdas", dbl, ["n_x", N]),
        helper.make_tensor_value_info("fast_amplitude", dbl, ["n_x"]),
        helper.make_tensor_value_info("tangents_free", dbl, ["n_lambdas", d, J]),
        helper.make_tensor_value_info("start_lambdas", dbl, ["n_x", N]),
        helper.make_tensor_value_info("start_generated", dbl, ["n_x", J]),
        helper.make_tensor_value_info("start_tangents_free", dbl, ["n_x", d, J]),
        helper.make_tensor_value_info("preactivations", dbl, ["n_lambdas", P]),
        helper.make_tensor_value_info("preactivation_tangents", dbl,
                                      ["n_lambdas", d, P]),
        helper.make_tensor_value_info("start_preactivations", dbl, ["n_x", P]),
        helper.make_tensor_value_info("start_preactivation_tangents", dbl,
                                      ["n_x", d, P]),
    ]
    graph = helper.make_graph(
        gb.nodes,
        f"iae_{model.name}" if model.name else "iae",
        inputs,
        outputs,
        initializer=gb.initializers,
    )
    proto = helper.make_model(
        graph,
        producer_name=PRODUCER,
        producer_version=_package_version(),
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=(
            "Interpolatory autoencoder (sgmca-fast): encoder, decoder, generator "
            "g(lambda) with its Jacobian, fast projection."
        ),
    )
    proto.ir_version = IR_VERSION
    helper.set_model_props(proto, {METADATA_KEY: meta_json})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def save(model: IAEModel, path) -> None:
    """Write a model as one ONNX file, atomically (temporary name, then rename).

    Parameters
    ----------
    model : IAEModel
    path : str or path-like
    """
    data = build_model_proto(model).SerializeToString()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), force=True)


# ---------------------------------------------------------------------- load
_REQUIRED_META = (
    "format_version",
    "n_channels",
    "n_anchors",
    "n_layers",
    "activation",
    "res_factor",
    "simplex",
    "reg_inv",
)


def _parse(data: bytes, where: str):
    """Parse and validate an IAE ONNX file; return (proto, metadata, arrays)."""
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load_model_from_string(data)
    except Exception as err:
        raise ValueError(
            f"{where}: not a readable ONNX file (truncated or corrupt?): "
            f"{type(err).__name__}: {err}"
        ) from err
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ValueError(
            f"{where}: not an sgmca-fast IAE model: its metadata_props have no "
            f"{METADATA_KEY!r} entry (another ONNX model, or a truncated file)"
        )
    try:
        meta = json.loads(props[METADATA_KEY])
    except ValueError as err:
        raise ValueError(f"{where}: corrupt {METADATA_KEY!r} metadata: {err}") from err
    if not isinstance(meta, dict):
        raise ValueError(f"{where}: corrupt {METADATA_KEY!r} metadata: not an object")
    missing = [k for k in _REQUIRED_META if k not in meta]
    if missing:
        raise ValueError(f"{where}: IAE metadata is missing {sorted(missing)}")
    if meta["format_version"] not in _READABLE_VERSIONS:
        raise ValueError(
            f"{where}: IAE format version {meta['format_version']!r} is not "
            f"supported (expected one of {_READABLE_VERSIONS})"
        )
    try:
        onnx.checker.check_model(proto)
    except Exception as err:
        raise ValueError(f"{where}: invalid ONNX model: {err}") from err
    arrays = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    return proto, meta, arrays


def _model_from_parts(meta: dict, arrays: dict, where: str) -> IAEModel:
    n_layers = int(meta["n_layers"])
    names = ["anchors"] + [
        f"{p}{i}" for p in ("enc_W", "enc_b", "dec_W", "dec_b") for i in range(n_layers)
    ]
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ValueError(f"{where}: initializer(s) missing: {missing}")
    try:
        model = IAEModel(
            arrays["anchors"],
            [arrays[f"enc_W{i}"] for i in range(n_layers)],
            [arrays[f"enc_b{i}"] for i in range(n_layers)],
            [arrays[f"dec_W{i}"] for i in range(n_layers)],
            [arrays[f"dec_b{i}"] for i in range(n_layers)],
            activation=meta["activation"],
            res_factor=meta["res_factor"],
            simplex=meta["simplex"],
            reg_inv=meta["reg_inv"],
            reg_parameter=meta.get("reg_parameter", 0.1),
            name=meta.get("name", ""),
            metadata=meta.get("training") or {},
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: inconsistent IAE model: {err}") from err
    if (model.n_channels, model.n_anchors) != (meta["n_channels"], meta["n_anchors"]):
        raise ValueError(
            f"{where}: metadata says {meta['n_channels']} channels and "
            f"{meta['n_anchors']} anchors, the weights hold {model.n_channels} and "
            f"{model.n_anchors}"
        )
    if "training_spectra" in arrays:
        model.training_spectra = np.asarray(arrays["training_spectra"], np.float64)
    model.package_version = meta.get("package_version")
    return model


def _session_options(num_threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = num_threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3  # unused initializers are not worth a warning
    return so


def _check_threads(num_threads) -> int:
    if num_threads is None:
        return 1
    if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)):
        raise TypeError(
            f"num_threads must be an integer or None, got {type(num_threads).__name__}"
        )
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return int(num_threads)


class _OrtRuntime:
    """The onnxruntime path of a model: one small session per task."""

    def __init__(self, sessions: dict, model: IAEModel) -> None:
        self._sessions = sessions
        self._n_channels = model.n_channels
        self._n_anchors = model.n_anchors
        self._code_size = model.code_size

    def _run(self, task: str, feed: np.ndarray):
        (name,), outs = _TASKS[task]
        return self._sessions[task].run(outs, {name: feed})

    def encode(self, x):
        arr, single = as_batch(x, self._n_channels, "x", "k, J")
        out = self._run("encode", arr)[0]
        return out[0] if single else out

    def decode(self, code):
        arr, single = as_batch(code, self._code_size, "code", "k, Jc")
        out = self._run("decode", arr)[0]
        return out[0] if single else out

    def generate(self, lam: np.ndarray, jacobian: bool):
        lam = np.ascontiguousarray(lam)
        if jacobian:
            g, jac = self._run("jacobian", lam)
            return g, jac
        return self._run("generate", lam)[0], None

    def generate_free(self, lam: np.ndarray):
        return tuple(self._run("generate_free", np.ascontiguousarray(lam)))

    def start(self, arr: np.ndarray):
        return tuple(self._run("start", np.ascontiguousarray(arr)))

    def fast(self, arr: np.ndarray):
        return tuple(self._run("fast", np.ascontiguousarray(arr)))


def _build_sessions(proto, num_threads: int) -> dict:
    import onnxruntime as ort
    from onnx.utils import Extractor

    extractor = Extractor(proto)
    so = _session_options(num_threads)
    sessions = {}
    for task, (ins, outs) in _TASKS.items():
        sub = extractor.extract_model(ins, outs)
        sub.ir_version = proto.ir_version
        del sub.opset_import[:]
        sub.opset_import.extend(proto.opset_import)
        sessions[task] = ort.InferenceSession(
            sub.SerializeToString(), sess_options=so,
            providers=["CPUExecutionProvider"],
        )
    return sessions


def load(path, num_threads: int | None = None) -> IAEModel:
    """Read a model written by :meth:`IAEModel.save`; it runs through onnxruntime.

    Parameters
    ----------
    path : str or path-like
        An ``.onnx`` file.
    num_threads : int, optional
        onnxruntime intra-op threads; default 1, for use inside iterative loops.

    Returns
    -------
    model : IAEModel
        Its ``fast_project`` and ``project`` run through onnxruntime (CPU
        provider); the numpy methods ``encode``, ``decode``, ``generate``, ...
        stay available as the reference definition.

    Raises
    ------
    ValueError
        If the file is not ONNX, is truncated or corrupt, or is an ONNX model
        without sgmca-fast IAE metadata (the message names the file).
    """
    threads = _check_threads(num_threads)
    path = os.fspath(path)
    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_mtime_ns, stat.st_size, threads)
    with _SESSIONS_LOCK:
        cached = _SESSIONS.get(key)
    if cached is None:
        with open(path, "rb") as fh:
            data = fh.read()
        proto, meta, arrays = _parse(data, path)
        parsed = _model_from_parts(meta, arrays, path)  # validate before the sessions
        if meta["format_version"] != FORMAT_VERSION:
            # An older file's graph lacks today's run-time outputs: run the
            # current graph, built from the file's weights.
            proto = build_model_proto(parsed)
        try:
            sessions = _build_sessions(proto, threads)
        except Exception as err:
            raise ValueError(
                f"{path}: onnxruntime cannot run the model: {err}"
            ) from err
        cached = (meta, arrays, sessions)
        with _SESSIONS_LOCK:
            _SESSIONS[key] = cached
    meta, arrays, sessions = cached
    model = _model_from_parts(meta, arrays, path)
    model._runtime = _OrtRuntime(sessions, model)
    model._source = path
    return model


def attach_runtime(model: IAEModel, num_threads: int | None = None) -> IAEModel:
    """Copy of an in-memory model running through onnxruntime (session in memory).

    Parameters
    ----------
    model : IAEModel
    num_threads : int, optional
        intra-op threads (default 1).

    Returns
    -------
    model : IAEModel
    """
    threads = _check_threads(num_threads)
    proto = build_model_proto(model)
    copy = IAEModel(
        model.anchors,
        list(model.encoder_weights),
        list(model.encoder_biases),
        list(model.decoder_weights),
        list(model.decoder_biases),
        activation=model.activation,
        res_factor=model.res_factor,
        simplex=model.simplex,
        reg_inv=model.reg_inv,
        reg_parameter=model.reg_parameter,
        name=model.name,
        metadata=model.metadata,
    )
    copy.training_spectra = model.training_spectra
    copy._runtime = _OrtRuntime(_build_sessions(proto, threads), copy)
    return copy
