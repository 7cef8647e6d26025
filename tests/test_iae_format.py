"""Crafted IAE files: every metadata field is checked against the graph, fast.

Reliability gap 5 of issue 11: ``n_layers=[1]`` gave a traceback and
``n_layers=10**6`` looped for seconds building names. Each bad field must raise
an input error (``InputError``, a ValueError) naming the file and the field,
before anything is built from the file.
"""

import json
import time

import naive  # tests/naive.py (pytest's pythonpath)
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from sgmca_fast.iae import IAEModel, load

KEY = "sgmca_fast.iae"
FAST = 2.0  # seconds: parsing a tiny file and refusing it takes milliseconds


def tiny_model(with_spectra=False):
    model = IAEModel(*naive.random_iae_parts(5, 3, 2), name="tiny")
    if with_spectra:
        model.training_spectra = np.random.default_rng(1).random((4, 5))
    return model

def crafted(tmp_path, edit_meta=None, edit_graph=None):
    """A saved tiny model with its metadata (and graph) edited; its path."""
    proto = tiny_model().to_onnx()
    meta = json.loads(proto.metadata_props[0].value)
    if edit_meta is not None:
        edit_meta(meta)
    proto.metadata_props[0].value = json.dumps(meta)
    if edit_graph is not None:
        edit_graph(proto.graph)
    path = tmp_path / "crafted.onnx"
    onnx.save(proto, str(path))
    return path


def refused(path, pattern, backend="onnxruntime"):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=pattern) as info:
        load(path) if backend == "onnxruntime" else load(path, backend=backend)
    assert time.perf_counter() - t0 < FAST
    # An InputError (or its InputTypeError): the type the CLI maps to exit 2.
    assert "InputError" in [c.__name__ for c in type(info.value).__mro__]
    return str(info.value)


def setter(field, value):
    def edit(meta):
        meta[field] = value
    return edit


BAD_FIELDS = [
    ("n_layers", [1]),
    ("n_layers", 10**6),
    ("n_layers", 0),
    ("n_layers", 1),  # fewer than the graph holds
    ("n_layers", 3),  # more than the graph holds
    ("n_layers", "2"),
    ("n_layers", True),
    ("n_layers", 2.0),
    ("n_channels", [5]),
    ("n_channels", 6),
    ("n_channels", -1),
    ("n_anchors", 2),
    ("n_anchors", None),
    ("code_size", 4),
    ("code_size", "5"),
    ("activation", "softplus"),
    ("activation", 3),
    ("res_factor", "0.1"),
    ("res_factor", -1.0),
    ("res_factor", None),
    ("simplex", "yes"),
    ("simplex", 1),
    ("reg_inv", -1e-8),
    ("reg_inv", [1e-8]),
    ("reg_parameter", -0.5),
    ("reg_parameter", {}),
    ("name", 3),
    ("package_version", 1.0),
    ("training", [1, 2]),
    ("has_training_spectra", "no"),
    ("has_training_spectra", True),  # the graph holds none
]


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS)
@pytest.mark.parametrize("backend", ["onnxruntime", "numpy"])
def test_bad_metadata_field(tmp_path, field, value, backend):
    path = crafted(tmp_path, setter(field, value))
    message = refused(path, rf"crafted\.onnx: .*'{field}'", backend)
    assert len(message) < 400  # one line a user can read, not a list of names


@pytest.mark.parametrize("value", ["3", True, 3.5, None, 99])
def test_bad_format_version(tmp_path, value):
    path = crafted(tmp_path, setter("format_version", value))
    refused(path, r"crafted\.onnx: IAE format version .* is not supported")


def test_metadata_not_an_object(tmp_path):
    path = crafted(tmp_path)
    proto = onnx.load(str(path))
    proto.metadata_props[0].value = "[1, 2]"
    onnx.save(proto, str(path))
    refused(path, r"crafted\.onnx: corrupt 'sgmca_fast\.iae' metadata: not an obj")


def replace_initializer(name, value):
    def edit(graph):
        for i, t in enumerate(graph.initializer):
            if t.name == name:
                graph.initializer[i].CopyFrom(numpy_helper.from_array(value, name))
    return edit


@pytest.mark.parametrize(("name", "value", "pattern"), [
    ("anchors", np.ones((2, 5)), r"'n_anchors' and 'n_channels'"),
    ("enc_W0", np.ones((4, 5)), r"'n_channels'|encoder weight 0"),
    ("enc_W1", np.ones(5), r"enc_W1 must be a real 2-D array"),
    ("dec_b0", np.ones((5, 1)), r"dec_b0 must be a real 1-D array"),
    ("dec_W1", np.ones((5, 4)), r"inconsistent IAE model: decoder"),
])
def test_initializers_against_metadata(tmp_path, name, value, pattern):
    path = crafted(tmp_path, edit_graph=replace_initializer(name, value))
    refused(path, rf"crafted\.onnx: .*({pattern})")


def test_training_spectra_of_the_wrong_width(tmp_path):
    proto = tiny_model(with_spectra=True).to_onnx()
    replace_initializer("training_spectra", np.ones((3, 4)))(proto.graph)
    path = tmp_path / "crafted.onnx"
    onnx.save(proto, str(path))
    refused(path, r"crafted\.onnx: training_spectra must have shape \(M, 5\)")


def test_untouched_file_loads_with_both_backends(tmp_path):
    """The checks refuse nothing a saved model holds (against crafted() itself)."""
    path = crafted(tmp_path)
    x = np.random.default_rng(1).random((4, 5))
    ort, ref = load(path), load(path, backend="numpy")
    assert (ort.backend, ref.backend) == ("onnxruntime", "numpy")
    np.testing.assert_allclose(ort.fast_project(x)[0], ref.fast_project(x)[0],
                               rtol=1e-9, atol=1e-15)
