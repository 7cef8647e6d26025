"""ONNX export: onnxruntime against numpy, round trip, bad files."""

import json

import naive  # tests/naive.py (pytest's pythonpath)
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from sgmca_fast._validation import InputError
from sgmca_fast.iae import IAEModel, from_reference, load
from sgmca_fast.iae._format import METADATA_KEY
from sgmca_fast.iae._graph import IR_VERSION, OPSET

RTOL = 1e-6  # onnxruntime vs numpy, float64


def tiny_model(activation="leaky_relu", n_layers=3, simplex=True, seed=0):
    return IAEModel(
        *naive.random_iae_parts(7, 3, n_layers, seed), activation=activation,
        simplex=simplex, name="tiny",
        metadata={"seed": seed, "epochs": 12, "note": "test"},
    )

def close(a, b):
    scale = max(np.max(np.abs(b)), 1e-300)
    assert np.max(np.abs(a - b)) <= RTOL * scale


def check_runtime_matches_numpy(m, saved, x, lam):
    rt = saved.generator
    assert rt.name == "onnxruntime"
    close(rt.encode(x), m.encode(x))
    close(rt.decode(m.encode(x)), m.decode(m.encode(x)))
    close(rt.generate(lam), m.generate(lam))
    g, jac = rt.generate_with_jacobian(lam)
    g0, jac0 = m.generate_with_jacobian(lam)
    close(g, g0)
    close(jac, jac0)
    for got, want in zip(saved.fast_project(x), m.fast_project(x), strict=True):
        close(np.asarray(got), np.asarray(want))
    g, tangents_free, pre, pre_tangents = rt.generate_free(lam)  # rows: (k, d, .)
    close(g, g0)
    basis = m.network.free_basis
    close(tangents_free, np.swapaxes(jac0 @ basis, 1, 2))
    close(pre, naive.decoder_preactivations(m, lam))
    # Pre-activations are smooth in lambda: central differences (exact for the
    # piecewise-linear activations away from their kinks).
    eps = 1e-6
    for p, direction in enumerate(basis.T):
        diff = (naive.decoder_preactivations(m, lam + eps * direction)
                - naive.decoder_preactivations(m, lam - eps * direction)) / (2 * eps)
        assert np.max(np.abs(pre_tangents[:, p] - diff)) <= 1e-7 * np.max(np.abs(diff))
    for got, want in zip(rt.start(x), m.network.start(x), strict=True):
        close(got, want)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "relu", "linear"])
@pytest.mark.parametrize("simplex", [True, False])
def test_onnxruntime_matches_numpy(tmp_path, activation, simplex):
    m = tiny_model(activation, simplex=simplex)
    path = tmp_path / "tiny.onnx"
    m.save(path)
    saved = load(path)
    assert saved.backend == "onnxruntime"
    rng = np.random.default_rng(1)
    x = rng.random((5, 7))
    lam = rng.dirichlet(np.ones(3), size=4)
    check_runtime_matches_numpy(m, saved, x, lam)


@pytest.mark.parametrize("family", ["sync", "thermal", "gauss"])
def test_reference_models_through_onnx(tmp_path, family, casa_dir,
                                       reference_models_dir):
    m = from_reference(reference_models_dir / f"model_{family}.pkl")
    path = tmp_path / f"{family}.onnx"
    m.save(path)
    saved = load(path)
    x = np.load(casa_dir / f"spectra_{family}.npz")["train"][:20]
    lam = np.random.default_rng(2).dirichlet(np.ones(m.n_anchors), size=6)
    check_runtime_matches_numpy(m, saved, x, lam)
    a = saved.project(x)
    b = m.project(x)
    np.testing.assert_allclose(a.residual, b.residual, rtol=1e-6)


def test_round_trip_keeps_everything(tmp_path):
    m = tiny_model("tanh", n_layers=4)
    m.training_spectra = np.random.default_rng(3).random((11, 7))
    path = tmp_path / "m.onnx"
    m.save(path)
    assert not [p for p in tmp_path.iterdir() if p.name != "m.onnx"]  # no temp left
    s = load(path, num_threads=2)
    for attr in ("n_anchors", "n_channels", "n_layers", "activation", "res_factor",
                 "simplex", "reg_inv", "reg_parameter", "name", "metadata"):
        assert getattr(s, attr) == getattr(m, attr), attr
    np.testing.assert_array_equal(s.anchors, m.anchors)
    np.testing.assert_array_equal(s.anchor_codes, m.anchor_codes)
    np.testing.assert_array_equal(s.training_spectra, m.training_spectra)
    for a, b in zip(s.encoder_weights + s.decoder_biases,
                    m.encoder_weights + m.decoder_biases, strict=True):
        np.testing.assert_array_equal(a, b)
    proto = onnx.load(str(path))
    assert proto.producer_name == "sgmca-fast" and proto.producer_version
    assert proto.ir_version == IR_VERSION
    assert [o.version for o in proto.opset_import if o.domain == ""] == [OPSET]
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[METADATA_KEY])
    assert meta["n_channels"] == 7 and meta["training"]["epochs"] == 12
    assert meta["package_version"]
    names = {t.name for t in proto.graph.initializer}
    assert {"anchors", "anchor_codes", "training_spectra", "enc_W0", "dec_b3"} <= names
    assert {o.name for o in proto.graph.output} >= {
        "encoded", "decoded", "generated", "jacobian"
    }
    onnx.checker.check_model(proto, full_check=True)
    # A second load of the same file reuses the cached sessions.
    assert load(path, num_threads=2).generator._sessions is s.generator._sessions
    assert load(path).generator._sessions is not s.generator._sessions
    assert load(path, 2, cache=False).generator._sessions is not s.generator._sessions


def test_in_memory_session():
    m = tiny_model()
    ort_m = m.with_onnxruntime()
    x = np.random.default_rng(4).random((3, 7))
    assert ort_m.backend == "onnxruntime" and m.backend == "numpy"
    check_runtime_matches_numpy(m, ort_m, x, m.fast_project(x)[1])


def test_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a protobuf \xff\xfe" * 10)
    with pytest.raises(InputError, match=r"bad\.onnx: not a readable ONNX file"):
        load(bad)


def test_truncated(tmp_path):
    path = tmp_path / "m.onnx"
    tiny_model().save(path)
    data = path.read_bytes()
    for cut in (len(data) // 3, len(data) - 40, 100):
        trunc = tmp_path / "trunc.onnx"
        trunc.write_bytes(data[:cut])
        with pytest.raises(
            InputError, match=r"trunc\.onnx: (not a readable ONNX file \(truncated"
            r"|not an sgmca-fast IAE model.*truncated)",
        ):
            load(trunc)


def test_onnx_without_metadata(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.DOUBLE, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    other = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(other))
    with pytest.raises(
        ValueError,
        match=r"other\.onnx: not an sgmca-fast IAE model: .*'sgmca_fast\.iae'",
    ):
        load(other)


def test_broken_metadata(tmp_path):
    path = tmp_path / "m.onnx"
    tiny_model().save(path)
    proto = onnx.load(str(path))
    meta = json.loads(proto.metadata_props[0].value)
    del meta["activation"]
    proto.metadata_props[0].value = json.dumps(meta)
    onnx.save(proto, str(path))
    with pytest.raises(InputError, match=r"m\.onnx: IAE metadata is missing \['act"):
        load(path)
    proto.metadata_props[0].value = "{not json"
    onnx.save(proto, str(path))
    with pytest.raises(InputError, match=r"m\.onnx: corrupt 'sgmca_fast\.iae' meta"):
        load(path)


def test_format_1_file_runs_current_graph(tmp_path):
    """A format-1 file (free Jacobian as (k, J, d), no row outputs) still loads."""
    m = tiny_model("leaky_relu")
    proto = m.to_onnx()
    meta = json.loads(proto.metadata_props[0].value)
    meta["format_version"] = 1
    proto.metadata_props[0].value = json.dumps(meta)
    kept = [o for o in proto.graph.output if "tangents_free" not in o.name]
    del proto.graph.output[:]
    proto.graph.output.extend(kept)
    old = tmp_path / "old.onnx"
    onnx.save(proto, str(old))
    x = np.random.default_rng(6).random((3, 7))
    check_runtime_matches_numpy(m, load(old), x, m.fast_project(x)[1])
    meta["format_version"] = 99
    proto.metadata_props[0].value = json.dumps(meta)
    onnx.save(proto, str(old))
    with pytest.raises(InputError, match=r"old\.onnx: IAE format version 99 is not"):
        load(old)


def test_channel_mismatch(tmp_path):
    path = tmp_path / "m.onnx"
    tiny_model().save(path)
    m = load(path)
    with pytest.raises(ValueError, match="a has 9 channels, expected 7"):
        m.project(np.ones((2, 9)))
    with pytest.raises(ValueError, match="a has 6 channels, expected 7"):
        m.fast_project(np.ones(6))


def test_missing_file_and_threads(tmp_path):
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "nope.onnx")
    path = tmp_path / "m.onnx"
    tiny_model().save(path)
    with pytest.raises(InputError, match="num_threads must be at least 1, got 0"):
        load(path, num_threads=0)
    with pytest.raises(TypeError, match="num_threads must be an integer"):
        load(path, num_threads=1.5)
    with pytest.raises(InputError, match="backend must be one of"):
        load(path, backend="torch")
