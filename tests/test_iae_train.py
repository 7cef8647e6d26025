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


def test_without_validation_holds_out_by_default():
    X, A, _ = _toy()
    model = train(
        X, A, n_layers=2, max_epochs=5, lbfgs_iter=5, random_state=0, progress=False
    )
    h, meta = model.history, model.metadata["training"]
    assert meta["validation"] == "held_out"
    assert meta["n_valid"] == len(meta["validation_rows"]) == np.ceil(
        meta["validation_fraction"] * 40) > 0
    assert np.all(np.isfinite(h["valid_loss"]))
    assert h["best_loss"] == pytest.approx(np.min(h["valid_loss"]))


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


# ----------------------------------------------------------------------------
# held-out spectra for early stopping (validation_fraction)


def _tiny(**kwargs):
    X, A, _ = _toy()
    opts = dict(n_layers=2, max_epochs=12, lbfgs_iter=6, random_state=3,
                progress=False)
    opts.update(kwargs)
    return X, A, train(X, A, **opts)


def test_held_out_split_size_seed_and_disjoint():
    X, A, model = _tiny(validation_fraction=0.2)
    meta = model.metadata["training"]
    held = np.asarray(meta["validation_rows"])
    assert meta["validation"] == "held_out"
    assert meta["validation_fraction"] == 0.2
    assert held.size == 8 == meta["n_valid"]  # ceil(0.2 * 40)
    assert meta["n_train"] == 32
    assert np.all(np.diff(held) > 0) and held.min() >= 0 and held.max() < 40
    # the model keeps all the spectra it was given
    np.testing.assert_array_equal(model.training_spectra, X)
    # same seed, same rows; other seeds, other rows
    _, _, again = _tiny(validation_fraction=0.2)
    assert again.metadata["training"]["validation_rows"] == held.tolist()
    others = {tuple(_tiny(validation_fraction=0.2, random_state=s, max_epochs=1,
                          lbfgs_iter=1)[2].metadata["training"]["validation_rows"])
              for s in range(4, 8)}
    assert len(others | {tuple(held)}) >= 4
    # ceil of the fraction, at least one row
    _, _, small = _tiny(validation_fraction=0.01, max_epochs=1, lbfgs_iter=1)
    assert len(small.metadata["training"]["validation_rows"]) == 1


def test_held_out_rows_are_random_uniform():
    # split_rows draws uniformly among the rows: over many seeds, every row is
    # held out about fraction of the time
    X, A, _ = _toy(n=20)
    counts = np.zeros(20)
    for seed in range(400):
        fit, held = _train.split_rows(X, A, 0.25, np.random.default_rng(seed))
        assert held.size == 5 and fit.size == 15
        assert np.intersect1d(fit, held).size == 0
        np.testing.assert_array_equal(np.union1d(fit, held), np.arange(20))
        counts[held] += 1
    # binomial(400, 0.25): mean 100, std 8.7
    assert counts.min() > 60 and counts.max() < 140


def test_anchors_are_never_held_out():
    X, A, _ = _toy(n=10)
    Xa = np.vstack([X[:4], A, X[4:]])  # rows 4, 5, 6 are the anchors
    for seed in range(30):
        fit, held = _train.split_rows(Xa, A, 0.6, np.random.default_rng(seed))
        assert not set(held.tolist()) & {4, 5, 6}
        assert {4, 5, 6} <= set(fit.tolist())
    # 10 eligible rows of 13: holding out ceil(0.8 * 13) = 11 is impossible
    with pytest.raises(ValueError, match=r"validation_fraction=0.8 would hold out "
                       r"11 of the 13 training spectra \(10 of them not anchors\)"):
        train(Xa, A, validation_fraction=0.8, progress=False)


def test_early_stopping_on_held_out_spectra():
    X, A, model = _tiny(validation_fraction=0.25, max_epochs=25, lbfgs_iter=10)
    h, meta = model.history, model.metadata["training"]
    held = np.asarray(meta["validation_rows"])
    fit = np.setdiff1d(np.arange(len(X)), held)
    # the best epoch is the one of least held-out loss ...
    assert np.all(np.isfinite(h["valid_loss"]))
    assert h["best_epoch"] == int(np.argmin(h["valid_loss"]))
    assert h["best_loss"] == h["valid_loss"].min()
    # ... and the held-out loss and SAD of the returned model are those of the
    # held-out rows, computed here directly from the model's weights
    V = X[held]

    def stack(h_, ws, bs, rs):
        for w, b, rr in zip(ws, bs, rs, strict=True):
            z = h_ @ w + b
            h_ = np.where(z > 0, z, 0.01 * z) + rr * h_
        return h_

    res = [0.1 * (2 ** (i / 1) - 1) for i in range(2)]
    P = stack(V, model.encoder_weights, model.encoder_biases, res)
    E = stack(A, model.encoder_weights, model.encoder_biases, res)
    lam = P @ E.T @ np.linalg.inv(E @ E.T + 1e-8 * np.eye(len(A)))
    lam = lam / (lam.sum(axis=1, keepdims=True) + 1e-3)
    B = lam @ E
    loss = np.linalg.norm(P - B) + 0.1 * np.linalg.norm(
        stack(B, model.decoder_weights, model.decoder_biases, res[::-1]) - V)
    np.testing.assert_allclose(h["best_loss"], loss / np.sqrt(len(V)), rtol=1e-9)
    # the held-out loss is not the training loss
    assert not np.isclose(h["valid_loss"][0], h["train_loss"][0])
    # the same as training on the other rows with the held-out ones as valid
    direct = train(X[fit], A, X[held], n_layers=2, max_epochs=25, lbfgs_iter=10,
                   random_state=3, progress=False)
    for w1, w2 in zip(model.encoder_weights + model.decoder_biases,
                      direct.encoder_weights + direct.decoder_biases, strict=True):
        np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(h["valid_loss"], direct.history["valid_loss"])
    assert direct.metadata["training"]["validation"] == "given"
    assert direct.metadata["training"]["validation_rows"] == []


def test_early_stopping_on_held_out_stops_at_the_patience():
    # a step size too large for the toy family: the held-out loss stops
    # improving, and training must stop `patience` epochs after its minimum
    X, A, _ = _toy()
    kw = dict(n_layers=2, optimizer="adam", max_epochs=400, learning_rate=0.05,
              random_state=0, progress=False)
    model = train(X, A, patience=5, **kw)
    h = model.history
    vl = h["valid_loss"]
    assert model.metadata["training"]["validation"] == "held_out"
    assert h["stopped_early"] and len(vl) < 401
    # the first epoch e with e - argmin(valid_loss[:e + 1]) == 5, found here
    # from the recorded held-out losses
    gaps = np.arange(len(vl)) - np.array([np.argmin(vl[: e + 1])
                                          for e in range(len(vl))])
    assert int(np.flatnonzero(gaps == 5)[0]) == len(vl) - 1
    assert h["best_epoch"] == int(np.argmin(vl)) == len(vl) - 6
    # stopping does not change the trajectory: a more patient run goes through
    # the same epochs, then on
    longer = train(X, A, patience=50, **kw).history["valid_loss"]
    assert len(longer) > len(vl)
    np.testing.assert_array_equal(longer[: len(vl)], vl)


def test_defaults_are_the_documented_ones():
    import inspect
    import re

    doc = train.__doc__
    for name, value in inspect.signature(train).parameters.items():
        if value.default is inspect.Parameter.empty or value.default is None:
            continue
        m = re.search(rf"^    {name}(?:, \w+)? : [^\n]*default ([^\n]+)$", doc, re.M)
        if m is None:  # documented together with the next parameter
            m = re.search(rf"^    \w+, {name} : [^\n]*default [^\n]* and ([^\n]+)$",
                          doc, re.M)
        assert m is not None, name
        first = m.group(1).split(" and ")[0].strip("'")
        assert first == str(value.default) or float(first) == value.default, name


def test_validation_fraction_zero_trains_on_everything():
    X, A, model = _tiny(validation_fraction=0.0)
    h, meta = model.history, model.metadata["training"]
    assert meta["validation"] == "none" and meta["validation_rows"] == []
    assert meta["n_train"] == 40 and meta["n_valid"] == 0
    assert np.all(np.isnan(h["valid_loss"])) and np.all(np.isnan(h["valid_sad"]))
    assert h["best_loss"] == pytest.approx(np.min(h["train_loss"]))
    # entry 0 is the full training loss of the initial model: all 40 rows
    spec = _train._Spec(8, 2, "leaky_relu", 0.1, 0.1, bias_scale=_train._bias_scale(A))
    theta0 = _train._init_params(spec, np.random.default_rng(3), 0.1)
    full = _train._loss_grad(theta0, spec, X, A, need_grad=False)[0] / np.sqrt(40)
    assert h["train_loss"][0] == pytest.approx(full, rel=1e-12)


def test_valid_given_ignores_validation_fraction():
    X, A, V = _toy()
    m1 = train(X, A, V, n_layers=2, max_epochs=8, lbfgs_iter=4, random_state=0,
               progress=False, validation_fraction=0.5)
    m2 = train(X, A, V, n_layers=2, max_epochs=8, lbfgs_iter=4, random_state=0,
               progress=False, validation_fraction=0.0)
    for w1, w2 in zip(m1.encoder_weights + m1.decoder_weights,
                      m2.encoder_weights + m2.decoder_weights, strict=True):
        np.testing.assert_array_equal(w1, w2)
    assert m1.metadata["training"]["n_train"] == 40
    assert m1.metadata["training"]["validation_fraction"] == 0.0


def test_validation_fraction_errors():
    X, A, _ = _toy()
    with pytest.raises(ValueError, match=r"validation_fraction must be < 1"):
        train(X, A, validation_fraction=1.0)
    with pytest.raises(ValueError, match=r"validation_fraction must be >= 0"):
        train(X, A, validation_fraction=-0.1)
    with pytest.raises(TypeError, match="validation_fraction must be a real number"):
        train(X, A, validation_fraction="0.1")
    with pytest.raises(ValueError, match=r"validation_fraction=0.5 would hold out 1 "
                       r"of the 1 training spectra"):
        train(X[:1], A, validation_fraction=0.5, progress=False)


@pytest.mark.parametrize("with_valid", [True, False])
def test_training_with_valid_or_no_fraction_is_unchanged(with_valid):
    # numbers recorded with the training code before validation_fraction existed
    # (git show ee61892:sgmca_fast/iae/_train.py, same call): an explicit valid,
    # or validation_fraction=0 without one, must train exactly as it did
    X, A, V = _toy()
    kwargs = {} if with_valid else {"validation_fraction": 0.0}
    model = train(X, A, V if with_valid else None, n_layers=2, max_epochs=30,
                  lbfgs_iter=20, random_state=0, progress=False, **kwargs)
    h = model.history
    np.testing.assert_allclose(
        h["train_loss"][[0, 10, 30, -1]],
        [0.018506946051798034, 0.00857543518936978, 0.007878073928569877,
         0.0019153151655587704], rtol=1e-9)
    if with_valid:
        np.testing.assert_allclose(
            h["valid_loss"][[0, 10, 30, -1]],
            [0.019693028508885418, 0.009264194492419494, 0.008571137834353508,
             0.002151623705598853], rtol=1e-9)
    assert len(h["epoch"]) == 51 and h["best_epoch"] == 50
    assert model.decoder_biases[1].sum() == pytest.approx(-0.002740522557086455,
                                                          rel=1e-8)
    assert model.encoder_weights[0][2, 3] == pytest.approx(-0.04691875798412971,
                                                           rel=1e-9)
