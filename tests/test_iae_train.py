import numpy as np
import pytest

from sgmca_fast.iae import _train
from sgmca_fast.iae._train import train

ACTIVATIONS = ["leaky_relu", "linear", "relu", "tanh"]


def _toy(n=40, J=8, N=3, seed=0):
    """Unit-sum toy spectra: smooth bumps whose centre moves with a parameter."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 1.0, J)

    def spectra(t):
        s = np.exp(-0.5 * ((grid[None, :] - t[:, None]) / 0.3) ** 2) + 0.1
        return s / s.sum(axis=1, keepdims=True)

    anchors = spectra(np.linspace(0.2, 0.8, N))
    X = spectra(rng.uniform(0.2, 0.8, n))
    V = spectra(rng.uniform(0.2, 0.8, n // 2))
    return X, anchors, V


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(("n_layers", "n_anchors"), [(2, 2), (3, 3), (4, 2)])
def test_gradient_matches_finite_differences(activation, n_layers, n_anchors):
    rng = np.random.default_rng(1)
    J = 6
    spec = _train._Spec(
        n_features=J,
        n_layers=n_layers,
        activation=activation,
        res_factor=0.1,
        reg_parameter=0.3,
        bias_scale=0.5,
    )
    # generic weights (far from identity) so every term contributes
    theta = _train._init_params(spec, rng, scale=0.5)
    theta += 0.1 * rng.standard_normal(theta.size)
    X = rng.random((5, J))
    A = rng.random((n_anchors, J))
    _, grad, _ = _train._loss_grad(theta, spec, X, A)
    h = 1e-6
    fd = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        fp = _train._loss_grad(theta + e, spec, X, A, need_grad=False)[0]
        fm = _train._loss_grad(theta - e, spec, X, A, need_grad=False)[0]
        fd[i] = (fp - fm) / (2 * h)
    err = np.linalg.norm(grad - fd) / np.linalg.norm(fd)
    assert err <= 1e-5


def test_loss_matches_documented_formula():
    # the loss written out from docs/algorithm.md section 4, independently of
    # _loss_grad
    rng = np.random.default_rng(2)
    J, L, r = 5, 3, 0.2
    spec = _train._Spec(J, L, "tanh", r, 0.7, bias_scale=0.3)
    theta = _train._init_params(spec, rng, scale=0.5)
    theta += 0.1 * rng.standard_normal(theta.size)
    X, A = rng.random((4, J)), rng.random((2, J))
    ew, eb, dw, db = spec.weights(theta)
    res = [r * (2 ** (i / (L - 1)) - 1) for i in range(L)]

    def stack(h, ws, bs, rs):
        for w, b, rr in zip(ws, bs, rs, strict=True):
            h = np.tanh(h @ w + b) + rr * h
        return h

    P, E = stack(X, ew, eb, res), stack(A, ew, eb, res)
    lam = P @ E.T @ np.linalg.inv(E @ E.T + 1e-8 * np.eye(2))
    lam = lam / (lam.sum(axis=1, keepdims=True) + 1e-3)
    B = lam @ E
    expected = np.linalg.norm(P - B) + 0.7 * np.linalg.norm(
        stack(B, dw, db, res[::-1]) - X
    )
    got = _train._loss_grad(theta, spec, X, A, need_grad=False)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def _small_train(**kwargs):
    X, A, V = _toy()
    opts = dict(
        n_layers=2, max_epochs=30, lbfgs_iter=20, random_state=0, progress=False
    )
    opts.update(kwargs)
    return train(X, A, V, **opts)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "adam+lbfgs"])
def test_deterministic_for_a_seed(optimizer):
    m1 = _small_train(optimizer=optimizer)
    m2 = _small_train(optimizer=optimizer)
    for w1, w2 in zip(
        m1.encoder_weights + m1.decoder_biases,
        m2.encoder_weights + m2.decoder_biases,
        strict=True,
    ):
        np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(m1.history["valid_loss"], m2.history["valid_loss"])
    m3 = _small_train(optimizer=optimizer, random_state=1)
    assert not np.array_equal(m1.encoder_weights[0], m3.encoder_weights[0])


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "adam+lbfgs"])
def test_loss_decreases_and_history(optimizer):
    model = _small_train(optimizer=optimizer, max_epochs=60, lbfgs_iter=60)
    h = model.history
    n = len(h["epoch"])
    assert n >= 2
    for key in ("train_loss", "valid_loss", "valid_sad"):
        assert h[key].shape == (n,)
        assert np.all(np.isfinite(h[key]))
    assert h["best_loss"] == pytest.approx(h["valid_loss"].min())
    assert h["best_loss"] < 0.5 * h["valid_loss"][0]
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert set(h["phase"]) <= {"adam", "lbfgs"}
    assert h["seconds"] > 0


def test_returns_model_that_fits_the_toy_family():
    X, A, V = _toy()
    model = _small_train(optimizer="adam+lbfgs", max_epochs=200, lbfgs_iter=50)
    assert model.name == ""
    np.testing.assert_array_equal(model.training_spectra, X)
    np.testing.assert_array_equal(model.anchors, A)
    assert model.metadata["training"]["optimizer"] == "adam+lbfgs"
    # the model's own forward pass agrees with the training code's
    spec = _train._Spec(
        A.shape[1], 2, "leaky_relu", 0.1, 0.1, bias_scale=_train._bias_scale(A)
    )
    theta = _train._pack(
        model.encoder_weights,
        [b / spec.bias_scale for b in model.encoder_biases],
        model.decoder_weights,
        [b / spec.bias_scale for b in model.decoder_biases],
    )
    net = _train._network(theta, spec, A)
    np.testing.assert_allclose(model.encode(V), net.encode(V), rtol=1e-10, atol=1e-14)
    sad = _train.sad_rows(V, net.fast_project(V)[0])
    np.testing.assert_allclose(sad, -10 * np.log10(np.arccos(np.clip(
        np.sum(V * model.fast_project(V)[0], axis=1)
        / np.linalg.norm(V, axis=1) / np.linalg.norm(model.fast_project(V)[0], axis=1),
        -1, 1))), rtol=1e-6)
    assert np.median(sad) > 15.0
    assert model.history["valid_sad"][model.history["best_epoch"]] == pytest.approx(
        np.median(sad)
    )


def test_early_stopping_keeps_best():
    model = _small_train(
        optimizer="adam", max_epochs=400, patience=3, learning_rate=0.05
    )
    h = model.history
    assert h["stopped_early"]
    assert len(h["epoch"]) < 401
    assert len(h["epoch"]) - 1 - h["best_epoch"] == 3
    assert h["best_loss"] == h["valid_loss"].min()


def test_progress_bar_can_be_shown(capsys):
    _small_train(max_epochs=2, lbfgs_iter=2, progress=True)
    assert "IAE" in capsys.readouterr().err


def test_without_validation_monitors_training_loss():
    X, A, _ = _toy()
    model = train(
        X, A, n_layers=2, max_epochs=5, lbfgs_iter=5, random_state=0, progress=False
    )
    h = model.history
    assert np.all(np.isnan(h["valid_loss"]))
    assert h["best_loss"] == pytest.approx(np.min(h["train_loss"]))


def test_input_validation():
    X, A, V = _toy()
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="train contains NaN or inf"):
        train(bad, A)
    with pytest.raises(ValueError, match="anchors contains NaN or inf"):
        train(X, np.where(A > 0.2, np.inf, A))
    with pytest.raises(ValueError, match="train has 7 channels but anchors have 8"):
        train(X[:, :7], A)
    with pytest.raises(ValueError, match="valid has 7 channels but anchors have 8"):
        train(X, A, V[:, :7])
    with pytest.raises(ValueError, match="anchors must hold at least 2 spectra"):
        train(X, A[:1])
    with pytest.raises(ValueError, match="train must be 2-D"):
        train(X[0], A)
    with pytest.raises(ValueError, match=r"activation must be one of \['leaky_relu'"):
        train(X, A, activation="sigmoid")
    with pytest.raises(ValueError, match=r"optimizer must be one of \['adam'"):
        train(X, A, optimizer="sgd")
    with pytest.raises(ValueError, match="max_epochs must be at least 1"):
        train(X, A, max_epochs=0)
    with pytest.raises(TypeError, match="n_layers must be an integer"):
        train(X, A, n_layers=2.0)
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        train(X, A, learning_rate=-1.0)
    with pytest.raises(TypeError, match="train must be a real numeric array"):
        train([["a", "b"]], A)
