"""IAEModel: numpy forward path against the documented formulas, validation."""

import naive  # tests/naive.py (pytest's pythonpath)
import numpy as np
import pytest

from sgmca_fast.iae import IAEModel, from_reference


def tiny_model(activation="leaky_relu", n_anchors=3, n_channels=6, n_layers=3,
               simplex=True, seed=0):
    return IAEModel(
        *naive.random_iae_parts(n_channels, n_anchors, n_layers, seed),
        activation=activation, simplex=simplex, name="tiny", metadata={"seed": seed},
    )

def direct_forward(pkl_dict, x, lam):
    """The formulas of docs/algorithm.md section 4, written out once more."""
    p = pkl_dict["Params"]
    L = pkl_dict["nlayers"]
    r = [pkl_dict["res_factor"] * (2 ** (ell / (L - 1)) - 1) for ell in range(L)]

    def lrelu(z):
        return np.where(z > 0, z, 0.01 * z)

    def phi(h):
        for ell in range(L):
            h = lrelu(h @ p[f"Wt{ell}"].astype(float) + p[f"bt{ell}"]) + r[ell] * h
        return h

    def psi(h):
        for ell in range(L):
            z = h @ p[f"Wp{ell}"].astype(float) + p[f"bp{ell}"]
            h = lrelu(z) + r[L - 1 - ell] * h
        return h

    anchors = pkl_dict["AnchorPoints"]
    phi_e = phi(anchors)
    n = anchors.shape[0]
    lam_x = phi(x) @ phi_e.T @ np.linalg.inv(
        phi_e @ phi_e.T + pkl_dict["reg_inv"] * np.eye(n)
    )
    lam_x = lam_x / (lam_x.sum(axis=1, keepdims=True) + 1e-3)
    return phi(x), phi_e, lam_x, psi(lam_x @ phi_e), psi(lam @ phi_e)


@pytest.mark.parametrize("family", ["sync", "thermal", "gauss"])
def test_reference_forward_matches_formulas(family, casa_dir, reference_models_dir):
    from sgmca_fast.iae._reference import _safe_load

    path = reference_models_dir / f"model_{family}.pkl"
    raw = _safe_load(path.read_bytes())
    model = from_reference(path)
    x = np.load(casa_dir / f"spectra_{family}.npz")["train"][:7]
    lam = np.random.default_rng(1).dirichlet(np.ones(model.n_anchors), size=7)
    code, phi_e, lam_x, rec, gen = direct_forward(raw, x, lam)
    assert model.activation == "leaky_relu"
    assert model.n_layers == 4 and model.n_channels == 75
    np.testing.assert_allclose(model.encode(x), code, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.anchor_codes, phi_e, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.interpolate(code), lam_x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        model.decode(model.interpolate(code) @ model.anchor_codes), rec,
        rtol=1e-9, atol=1e-14,
    )
    np.testing.assert_allclose(model.generate(lam), gen, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "relu", "linear"])
def test_activations_and_shapes(activation):
    m = tiny_model(activation)
    assert m.residual_factors[0] == 0
    np.testing.assert_allclose(m.residual_factors, 0.1 * (2 ** (np.arange(3) / 2) - 1))
    np.testing.assert_allclose(m.residual_factors, naive.iae_residual_factors(0.1, 3))
    x = np.random.default_rng(2).random((5, 6))
    assert m.encode(x).shape == (5, 6)
    assert m.encode(x[0]).shape == (6,)
    lam = m.interpolate(m.encode(x))
    assert lam.shape == (5, 3)
    # "Not really a projection": sum = s / (s + 1e-3).
    codes = m.anchor_codes
    interp = codes.T @ np.linalg.inv(codes @ codes.T + m.reg_inv * np.eye(3))
    s = (m.encode(x) @ interp).sum(axis=1)
    np.testing.assert_allclose(lam.sum(axis=1), s / (s + 1e-3))
    g, jac = m.generate_with_jacobian(lam)
    assert g.shape == (5, 6) and jac.shape == (5, 6, 3)
    assert g.dtype == np.float64 and jac.dtype == np.float64
    np.testing.assert_allclose(g, m.generate(lam), rtol=1e-14)


@pytest.mark.parametrize("activation", ["leaky_relu", "tanh", "relu", "linear"])
def test_jacobian_vs_finite_differences(activation):
    m = tiny_model(activation, n_channels=8, seed=3)
    lam = np.random.default_rng(4).dirichlet(np.ones(3), size=4)
    _, jac = m.generate_with_jacobian(lam)
    h = 1e-6
    fd = np.empty_like(jac)
    for n in range(3):
        e = np.zeros(3)
        e[n] = h
        fd[:, :, n] = (m.generate(lam + e) - m.generate(lam - e)) / (2 * h)
    err = np.linalg.norm(jac - fd) / np.linalg.norm(jac)
    assert err <= 1e-6


def test_reference_jacobian_vs_finite_differences(reference_models_dir):
    m = from_reference(reference_models_dir / "model_thermal.pkl")
    lam = np.random.default_rng(5).dirichlet(np.ones(3), size=3)
    _, jac = m.generate_with_jacobian(lam)
    h = 1e-6
    for n in range(3):
        e = np.zeros(3)
        e[n] = h
        fd = (m.generate(lam + e) - m.generate(lam - e)) / (2 * h)
        err = np.linalg.norm(jac[:, :, n] - fd) / np.linalg.norm(jac[:, :, n])
        assert err <= 1e-6


def test_input_validation():
    m = tiny_model()
    with pytest.raises(ValueError, match="x has 5 channels, expected 6"):
        m.encode(np.ones((2, 5)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        m.encode(np.full((2, 6), np.nan))
    with pytest.raises(ValueError, match=r"must have shape \(k, J\)"):
        m.encode(np.ones((2, 3, 6)))
    with pytest.raises(ValueError, match="lambdas has 2 anchor weights, expected 3"):
        m.generate(np.ones((1, 2)))
    with pytest.raises(TypeError, match="must be a real array"):
        m.encode("abc")


def test_constructor_validation():
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((4, 4)) for _ in range(2)]
    b = [np.zeros(4) for _ in range(2)]
    anchors = rng.random((2, 4))
    with pytest.raises(ValueError, match="unknown activation 'softplus'"):
        IAEModel(anchors, w, b, w, b, activation="softplus")
    with pytest.raises(ValueError, match=r"anchors must be a 2-D \(N, J\) array"):
        IAEModel(anchors[0], w, b, w, b)
    with pytest.raises(ValueError, match="encoder weight 0 has 4 rows, expected 5"):
        IAEModel(rng.random((2, 5)), w, b, w, b)
    with pytest.raises(ValueError, match="encoder has 2 layers, decoder has 1"):
        IAEModel(anchors, w, b, w[:1], b[:1])
    with pytest.raises(ValueError, match=r"decoder bias 1 must have shape \(4,\)"):
        IAEModel(anchors, w, b, w, [np.zeros(4), np.zeros(3)])
    with pytest.raises(ValueError, match="encoder layer 1 holds non-finite"):
        IAEModel(anchors, [w[0], w[1] * np.inf], b, w, b)
    m = IAEModel(anchors, w, b, w, b, metadata={"epochs": 3})
    assert m.metadata == {"epochs": 3} and m.backend == "numpy"
    assert m.generator.name == "numpy"
    assert m.anchor_codes.shape == (2, 4) and not m.anchors.flags.writeable


def test_leaky_slope_is_the_documented_one():
    """The network's leaky ReLU has slope 0.01 below zero (the authors' models)."""
    from sgmca_fast.iae import _network

    z = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]])
    np.testing.assert_array_equal(_network.activate(z, "leaky_relu"),
                                  naive.ACTIVATIONS["leaky_relu"](z))
    np.testing.assert_array_equal(_network.slope(z, None, "leaky_relu"),
                                  [[0.01, 0.01, 0.01, 1.0, 1.0]])


def test_settings_are_public():
    m = tiny_model("tanh")
    assert m.settings() == {
        "n_channels": 6, "n_anchors": 3, "n_layers": 3, "code_size": 6,
        "activation": "tanh", "res_factor": 0.1, "simplex": True,
        "reg_parameter": 0.1,
    }


@pytest.mark.parametrize("backend", ["numpy", "onnxruntime"])
def test_backend_chosen_at_construction(backend):
    """The projections run through the backend given to the constructor."""
    rng = np.random.default_rng(6)
    base = tiny_model("leaky_relu")
    m = base.with_backend(backend)
    assert m.backend == backend and m.generator.name == backend
    x = rng.random((4, 6))
    np.testing.assert_allclose(m.fast_project(x)[0], base.fast_project(x)[0],
                               rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(m.project(x).residual, base.project(x).residual,
                               rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError, match="backend must be one of"):
        base.with_backend("torch")


def test_both_backends_speak_the_generator_protocol():
    """Every evaluation the projection may ask for, same numbers either way."""
    from sgmca_fast.iae._generator import EVALUATIONS

    m = tiny_model("tanh")
    ort = m.with_onnxruntime()
    rng = np.random.default_rng(7)
    x, lam = rng.random((3, 6)), rng.dirichlet(np.ones(3), size=3)
    inputs = {"encode": x, "decode": m.encode(x), "generate": lam,
              "generate_with_jacobian": lam, "generate_free": lam, "start": x,
              "fast_project": x}
    assert set(inputs) == set(EVALUATIONS)
    for name, arg in inputs.items():
        want, got = getattr(m.generator, name)(arg), getattr(ort.generator, name)(arg)
        if not isinstance(want, tuple):
            want, got = (want,), (got,)
        for w, g in zip(want, got, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-14)
