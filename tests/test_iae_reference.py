"""Import of the authors' pickles through the restricted unpickler."""

import pickle

import numpy as np
import pytest

from sgmca_fast.iae import IAEModel, from_reference


@pytest.mark.parametrize(
    ("family", "n_anchors", "name"),
    [("sync", 3, "model_sync"), ("thermal", 3, "model_thermal"),
     ("gauss", 2, "model_gauss_100k")],
)
def test_from_reference(family, n_anchors, name, reference_models_dir):
    m = from_reference(reference_models_dir / f"model_{family}.pkl")
    assert isinstance(m, IAEModel)
    assert (m.n_anchors, m.n_channels, m.n_layers) == (n_anchors, 75, 4)
    assert m.name == name
    assert m.activation == "leaky_relu" and m.simplex
    assert m.res_factor == 0.1 and m.reg_inv == 1e-8 and m.reg_parameter == 0.1
    assert m.metadata["code_version"] == "version_Feb_15th_2021"
    assert m.encoder_weights[0].dtype == np.float64


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        # Would create a file when unpickled by a plain pickle.load.
        return (open, (self.path, "w"))


class _Shell:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        import os

        return (os.system, (f"touch '{self.path}'",))


def test_refuses_other_globals(tmp_path):
    marker = tmp_path / "created-by-pickle"
    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"AnchorPoints": _Evil(str(marker))}))
    with pytest.raises(
        pickle.UnpicklingError, match=r"refusing global '(io|builtins)\.open'"
    ):
        from_reference(bad)
    assert not marker.exists()
    bad.write_bytes(pickle.dumps({"Params": [_Shell(str(marker))]}))
    with pytest.raises(
        pickle.UnpicklingError, match=r"refusing global '(posix|os|nt)\.system'"
    ):
        from_reference(bad)
    assert not marker.exists()


def test_refuses_getattr_and_eval(tmp_path):
    bad = tmp_path / "evil.pkl"
    # protocol 0 GLOBAL opcode for builtins.eval, then a REDUCE.
    bad.write_bytes(b"cbuiltins\neval\n(S'1+1'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="refusing global 'builtins.eval'"):
        from_reference(bad)


def test_bad_contents(tmp_path):
    f = tmp_path / "list.pkl"
    f.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="expected a dict of model fields, got list"):
        from_reference(f)
    f.write_bytes(pickle.dumps({"AnchorPoints": np.ones((2, 3))}))
    with pytest.raises(
        ValueError, match=r"missing key\(s\) \['Params', 'active_forward'"
    ):
        from_reference(f)
    f.write_bytes(b"\x80\x03}q\x00(X")
    with pytest.raises(ValueError, match="cannot read the pickle"):
        from_reference(f)


def test_roundtrip_of_a_plain_dict(tmp_path):
    rng = np.random.default_rng(0)
    params = {}
    for ell in range(3):
        params[f"Wt{ell}"] = rng.standard_normal((5, 5)).astype(np.float32)
        params[f"bt{ell}"] = np.zeros(5, np.float32)
        params[f"Wp{ell}"] = rng.standard_normal((5, 5)).astype(np.float32)
        params[f"bp{ell}"] = np.zeros(5, np.float32)
    d = {"fname": "m", "AnchorPoints": rng.random((2, 5)), "Params": params,
         "nlayers": 3, "active_forward": "tanh", "active_backward": "tanh",
         "res_factor": 0.2, "reg_inv": 1e-6, "simplex": True, "nneg_output": False,
         "reg_parameter": np.float64(0.5), "cost_weight": None}
    f = tmp_path / "m.pkl"
    f.write_bytes(pickle.dumps(d, protocol=3))
    m = from_reference(f)
    assert m.activation == "tanh" and m.res_factor == 0.2 and m.reg_parameter == 0.5
    np.testing.assert_array_equal(m.encoder_weights[1], params["Wt1"])
    d["active_backward"] = "lRelu"
    f.write_bytes(pickle.dumps(d, protocol=3))
    with pytest.raises(ValueError, match="encoder activation 'tanh' and decoder"):
        from_reference(f)
