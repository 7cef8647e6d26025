"""The ONNX graph of an IAE network (docs/algorithm.md sections 4 and 5).

One graph with three float64 inputs and the outputs of :data:`TASKS`:

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
linear activations). The ``fast_*`` outputs are the fast projection; the
``start_*`` outputs are where the least-squares projection starts (fast weights
moved onto ``sum(lambda) = 1``, with g, dg/dt, z and dz/dt there). Each layer is
``Gemm (h W + b) -> activation (-> Add r * h)``, the leaky ReLU written
``z * da`` with ``da = Where(z > 0, 1, slope)``. Weights, anchor codes, anchors,
the interpolator matrix and the training spectra (if any) are initializers.

The numpy definition of the same quantities is :class:`._network.Network`; the
file format around this graph (metadata, versions) is ``_format.py``.
"""

from __future__ import annotations

import numpy as np

from ._network import AMPLITUDE_FLOOR, LEAKY_SLOPE, SIMPLEX_EPS, Network

__all__ = ["IR_VERSION", "OPSET", "PRODUCER", "TASKS", "build"]

OPSET = 17
IR_VERSION = 8
PRODUCER = "sgmca-fast"
DOC = ("Interpolatory autoencoder (sgmca-fast): encoder, decoder, generator "
       "g(lambda) with its Jacobian, fast projection.")

# The tasks a runtime runs, as (inputs, outputs) of the graph.
TASKS = {
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
    ``max(z, LEAKY_SLOPE z)`` or, with its derivative ``da``, as ``z * da``.
    """
    if activation in ("leaky_relu", "relu"):
        slope = LEAKY_SLOPE if activation == "leaky_relu" else 0.0
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


def _fast_and_start(gb, net: Network, enc_w, enc_b, dec_w, dec_b, codes, free_codes,
                    interp):
    """Add the fast projection of ``x`` and the start of the least-squares one."""
    r_enc = [float(v) for v in net.residual_factors]
    r_dec = r_enc[::-1]
    act = net.activation
    axis1 = gb.ints([1])
    amp0 = gb.op(
        "Div",
        [gb.op("ReduceSum", [gb.op("Abs", ["x"]), axis1], keepdims=1),
         gb.const(net.anchor_scale)],
    )
    amp0 = gb.op("Where", [gb.op("Greater", [amp0, gb.const(0.0)]), amp0,
                           gb.const(1.0)])
    code_x, _ = _layers(gb, gb.op("Div", ["x", amp0]), enc_w, enc_b, r_enc, act)
    lam = gb.op("MatMul", [code_x, interp])
    if net.simplex:
        total = gb.op("ReduceSum", [lam, axis1], keepdims=1)
        lam = gb.op("Div", [lam, gb.op("Add", [total, gb.const(SIMPLEX_EPS)])])
    gb.op("Identity", [lam], "fast_lambdas")
    y, _ = _layers(gb, gb.op("MatMul", [lam, codes]), dec_w, dec_b, r_dec, act)
    yx = gb.op("ReduceSum", [gb.op("Mul", [y, "x"]), axis1], keepdims=1)
    yy = gb.op("ReduceSum", [gb.op("Mul", [y, y]), axis1], keepdims=1)
    amp = gb.op("Div", [yx, gb.op("Max", [yy, gb.const(AMPLITUDE_FLOOR)])])
    gb.op("Mul", [y, amp], "fast_spectra")
    gb.op("Squeeze", [amp, axis1], "fast_amplitude")
    # Start of the least-squares projection: the fast weights moved onto
    # sum(lambda) = 1, with g and dg/dt there (one call instead of two).
    if net.simplex:
        total = gb.op("ReduceSum", [lam, axis1], keepdims=1)
        shift = gb.op("Div", [gb.op("Sub", [gb.const(1.0), total]),
                              gb.const(float(net.anchors.shape[0]))])
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


def _value_infos(net: Network):
    """Return the graph's inputs and outputs: (k, .) float64, k symbolic."""
    from onnx import TensorProto, helper

    dbl = TensorProto.DOUBLE
    N, J = net.anchors.shape
    Jc = net.anchor_codes.shape[1]
    d = net.free_basis.shape[1]
    P = sum(w.shape[1] for w in net.decoder_weights)

    def info(name, *dims):
        return helper.make_tensor_value_info(name, dbl, list(dims))

    inputs = [info("x", "n_x", J), info("code", "n_code", Jc),
              info("lambdas", "n_lambdas", N)]
    outputs = [
        info("encoded", "n_x", Jc),
        info("decoded", "n_code", J),
        info("generated", "n_lambdas", J),
        info("jacobian", "n_lambdas", J, N),
        info("fast_spectra", "n_x", J),
        info("fast_lambdas", "n_x", N),
        info("fast_amplitude", "n_x"),
        info("tangents_free", "n_lambdas", d, J),
        info("start_lambdas", "n_x", N),
        info("start_generated", "n_x", J),
        info("start_tangents_free", "n_x", d, J),
        info("preactivations", "n_lambdas", P),
        info("preactivation_tangents", "n_lambdas", d, P),
        info("start_preactivations", "n_x", P),
        info("start_preactivation_tangents", "n_x", d, P),
    ]
    return inputs, outputs


def build(net: Network, *, name: str = "", training_spectra=None,
          props: dict | None = None, producer_version: str = "unknown"):
    """Build the ``onnx.ModelProto`` of a network (checked with ``onnx.checker``).

    Parameters
    ----------
    net : Network
    name : str, optional
        Family name (the graph is called ``iae_{name}``).
    training_spectra : (M, J) ndarray, optional
        Stored as an initializer.
    props : dict of str to str, optional
        ``metadata_props`` of the model.
    producer_version : str, optional

    Returns
    -------
    proto : onnx.ModelProto
    """
    import onnx
    from onnx import helper

    gb = _GraphBuilder()
    for reserved in ("x", "code", "lambdas"):
        gb._names.add(reserved)
    enc_w = [gb.init(f"enc_W{i}", w) for i, w in enumerate(net.encoder_weights)]
    enc_b = [gb.init(f"enc_b{i}", b) for i, b in enumerate(net.encoder_biases)]
    dec_w = [gb.init(f"dec_W{i}", w) for i, w in enumerate(net.decoder_weights)]
    dec_b = [gb.init(f"dec_b{i}", b) for i, b in enumerate(net.decoder_biases)]
    gb.init("anchors", net.anchors)
    codes = gb.init("anchor_codes", net.anchor_codes)
    interp = gb.init("interp_matrix", net.interp_matrix)
    if training_spectra is not None:
        gb.init("training_spectra", training_spectra)
    r_enc = [float(v) for v in net.residual_factors]
    r_dec = r_enc[::-1]
    act = net.activation

    # Encoder and decoder on their own inputs.
    enc, _ = _layers(gb, "x", enc_w, enc_b, r_enc, act)
    gb.op("Identity", [enc], "encoded")
    dec, _ = _layers(gb, "code", dec_w, dec_b, r_dec, act)
    gb.op("Identity", [dec], "decoded")
    # Generator and its Jacobians: h0 = lambda PhiE; tangents dh0 = PhiE (N, J')
    # for dg/dlambda and E^T PhiE (d, J') for dg/dt along the free directions E.
    free_codes = gb.init("free_codes", net.free_basis.T @ net.anchor_codes)
    h0 = gb.op("MatMul", ["lambdas", codes])
    record = []
    gen, (tan, tan_free) = _layers(
        gb, h0, dec_w, dec_b, r_dec, act, tangents=(codes, free_codes), record=record
    )
    gb.op("Identity", [gen], "generated")
    _jacobian_output(gb, tan, h0, act, "jacobian")
    _jacobian_output(gb, tan_free, h0, act, "tangents_free", rows=True)
    _preactivation_outputs(gb, record, h0, "preactivations", "preactivation_tangents")
    _fast_and_start(gb, net, enc_w, enc_b, dec_w, dec_b, codes, free_codes, interp)

    inputs, outputs = _value_infos(net)
    graph = helper.make_graph(gb.nodes, f"iae_{name}" if name else "iae", inputs,
                              outputs, initializer=gb.initializers)
    proto = helper.make_model(
        graph,
        producer_name=PRODUCER,
        producer_version=producer_version,
        opset_imports=[helper.make_opsetid("", OPSET)],
        doc_string=DOC,
    )
    proto.ir_version = IR_VERSION
    if props:
        helper.set_model_props(proto, props)
    onnx.checker.check_model(proto, full_check=True)
    return proto
