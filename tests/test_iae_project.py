"""Fast and least-squares projections on IAE models."""

import naive  # tests/naive.py (pytest's pythonpath)
import numpy as np
import pytest

from sgmca_fast.iae import IAEModel, ProjectionResult, from_reference


def tiny_model(activation="tanh", seed=0, simplex=True):
    return IAEModel(*naive.random_iae_parts(8, 3, 3, seed), activation=activation,
                    simplex=simplex)

def reference(casa_dir, family):
    return from_reference(casa_dir / "reference_models" / f"model_{family}.pkl")


def feasible_start_residual(m, a):
    """Residual where project starts: fast lambda moved to sum one, best rho."""
    lam = m.fast_project(a)[1]
    lam = lam + (1 - lam.sum(axis=1, keepdims=True)) / m.n_anchors
    g = m.generate(lam)
    rho = np.maximum((a * g).sum(1), 0) / (g * g).sum(1)
    return np.linalg.norm(a - rho[:, None] * g, axis=1)


def test_fast_project_formula():
    m = tiny_model()
    a = np.random.default_rng(1).random((4, 8)) * 3
    spectra, lam, amp = m.fast_project(a)
    amp0 = np.abs(a).sum(1) / np.abs(m.anchors).sum(1).mean()
    lam0 = m.interpolate(m.encode(a / amp0[:, None]))
    y = m.generate(lam0)
    amp_ = (y * a).sum(1) / np.maximum((y * y).sum(1), 1e-3)
    np.testing.assert_allclose(lam, lam0, rtol=1e-12)
    np.testing.assert_allclose(amp, amp_, rtol=1e-12)
    np.testing.assert_allclose(spectra, amp_[:, None] * y, rtol=1e-12)
    s1, l1, a1 = m.fast_project(a[0])
    assert s1.shape == (8,) and l1.shape == (3,) and isinstance(a1, float)


@pytest.mark.parametrize("activation", ["tanh", "leaky_relu"])
def test_recovers_generated_spectrum_tiny(activation):
    m = tiny_model(activation)
    rng = np.random.default_rng(2)
    lam_true = rng.dirichlet(3 * np.ones(3), size=5)
    a = 3.0 * m.generate(lam_true)
    # Start a little away so the solver has work to do.
    res = m.project(a, lambda0=lam_true + 0.05 * np.array([1.0, -0.5, -0.5]))
    np.testing.assert_allclose(res.rho, 3.0, rtol=1e-7)
    np.testing.assert_allclose(res.lambdas, lam_true, atol=1e-6)
    assert np.all(res.residual <= 1e-7 * np.linalg.norm(a, axis=1))
    assert res.converged.all() and res.n_iter.max() < 50


@pytest.mark.parametrize("family", ["sync", "thermal", "gauss"])
def test_recovers_generated_spectrum_reference(family, casa_dir):
    m = reference(casa_dir, family)
    valid = np.load(casa_dir / f"spectra_{family}.npz")["train"][::60]
    lam_true = m.project(valid).lambdas  # on-manifold points of the family
    a = 3.0 * m.generate(lam_true)
    res = m.project(a)
    np.testing.assert_allclose(res.rho, 3.0, rtol=1e-6)
    np.testing.assert_allclose(res.lambdas, lam_true, atol=1e-5)
    np.testing.assert_allclose(res.lambdas.sum(1), 1.0, atol=1e-12)
    assert np.all(res.residual <= 1e-6 * np.linalg.norm(a, axis=1))


@pytest.mark.parametrize("family", ["sync", "thermal"])
def test_never_worse_than_start(family, casa_dir):
    m = reference(casa_dir, family)
    a = np.load(casa_dir / f"spectra_{family}.npz")["valid"]
    res = m.project(a)
    fast = np.linalg.norm(a - m.fast_project(a)[0], axis=1)
    assert np.all(res.residual <= feasible_start_residual(m, a) * (1 + 1e-12))
    # fast_project's weights sum to s / (s + 1e-3), off the constraint set: it
    # may beat the constrained optimum by that margin, no more.
    assert np.mean(res.residual <= fast) >= 0.95
    assert np.all(res.residual <= fast * (1 + 1e-3))
    np.testing.assert_allclose(res.lambdas.sum(1), 1.0, atol=1e-12)
    assert np.all(res.rho >= 0)
    np.testing.assert_allclose(
        res.residual, np.linalg.norm(a - res.spectra, axis=1), rtol=1e-10
    )
    np.testing.assert_allclose(np.linalg.norm(res.unit_spectra, axis=1), 1.0)
    np.testing.assert_allclose(res.spectra, res.rho[:, None] * m.generate(res.lambdas))


@pytest.mark.parametrize("family", ["sync", "gauss"])
def test_optimal_against_scipy_least_squares(family, casa_dir):
    """The stopping rules (including the final step, evaluated without its
    Jacobian) stop at the optimum an independent solver finds."""
    from scipy.optimize import least_squares

    m = reference(casa_dir, family)
    a = np.load(casa_dir / f"spectra_{family}.npz")["train"][::40]
    res = m.project(a)
    start = m.fast_project(a)[1]
    start = start + (1 - start.sum(axis=1, keepdims=True)) / m.n_anchors
    n = m.n_anchors
    for i, spectrum in enumerate(a):

        def resid(p, spectrum=spectrum):
            lam = np.append(p[:-1], 1.0 - p[:-1].sum())
            return p[-1] * m.generate(lam) - spectrum

        p0 = np.append(start[i, : n - 1], res.rho[i])
        ref = least_squares(resid, p0, xtol=1e-15, ftol=1e-15, gtol=1e-15)
        best = np.linalg.norm(ref.fun)
        assert res.residual[i] <= best * (1 + 1e-7), (i, res.residual[i], best)


def test_far_from_manifold(casa_dir):
    m = reference(casa_dir, "sync")
    sync = np.load(casa_dir / "spectra_sync.npz")["valid"][:10]
    therm = np.load(casa_dir / "spectra_thermal.npz")["valid"][:10]
    gauss = np.load(casa_dir / "spectra_gauss.npz")["train"][:10]
    rng = np.random.default_rng(3)
    a = np.vstack([
        0.5 * sync + 0.5 * therm,
        therm,
        gauss * 5,
        sync + 0.02 * rng.standard_normal(sync.shape),
        rng.standard_normal((5, 75)),
    ])
    res = m.project(a)
    assert all(np.all(np.isfinite(getattr(res, f))) for f in
               ("spectra", "lambdas", "rho", "residual", "unit_spectra"))
    assert np.all(res.residual <= feasible_start_residual(m, a) * (1 + 1e-12))
    assert np.all(res.residual <= np.linalg.norm(a, axis=1) * (1 + 1e-12))


def test_zero_and_negative_input():
    m = tiny_model("leaky_relu")
    a = np.zeros((2, 8))
    a[1] = -np.abs(np.random.default_rng(4).random(8)) - m.generate(
        np.full(3, 1 / 3)
    )
    res = m.project(a)
    assert np.all(res.rho == 0)
    np.testing.assert_array_equal(res.spectra, 0.0)
    np.testing.assert_allclose(res.residual, np.linalg.norm(a, axis=1))
    assert np.all(np.isfinite(res.lambdas)) and np.all(np.isfinite(res.unit_spectra))
    s, lam, amp = m.fast_project(np.zeros(8))
    assert np.all(np.isfinite(lam)) and amp == 0.0


def test_single_spectrum_and_options():
    m = tiny_model()
    a = 2 * m.generate(np.array([0.2, 0.3, 0.5]))
    res = m.project(a)
    assert isinstance(res, ProjectionResult)
    assert res.spectra.shape == (8,) and res.lambdas.shape == (3,)
    assert np.ndim(res.rho) == 0 and np.ndim(res.residual) == 0
    start = m.project(a, max_iter=0)
    assert start.n_iter == 0 and start.residual >= res.residual
    empty = m.project(np.zeros((0, 8)))
    assert empty.spectra.shape == (0, 8) and empty.lambdas.shape == (0, 3)


def test_not_simplex():
    m = tiny_model(simplex=False)
    lam_true = np.array([[0.3, 0.9, -0.1]])
    a = 2.0 * m.generate(lam_true)
    res = m.project(a, lambda0=lam_true + 0.02)
    # With free weights the amplitude and the weights trade off; the fit is exact.
    assert res.residual[0] <= 1e-8 * np.linalg.norm(a)


def test_project_validation():
    m = tiny_model()
    with pytest.raises(ValueError, match="lambda0 has 1 rows, expected 2"):
        m.project(np.ones((2, 8)), lambda0=np.ones((1, 3)) / 3)
    with pytest.raises(ValueError, match="lambda0 has 2 anchor weights, expected 3"):
        m.project(np.ones((2, 8)), lambda0=np.ones((2, 2)))
    with pytest.raises(ValueError, match="max_iter must be a non-negative integer"):
        m.project(np.ones(8), max_iter=-1)
    with pytest.raises(ValueError, match="a holds NaN or infinite values"):
        m.project(np.full(8, np.inf))
    with pytest.raises(ValueError, match="rho0 holds NaN"):
        m.project(np.ones(8), rho0=np.nan)


def test_small_solver_against_numpy():
    from sgmca_fast.iae._project import _solve_shifted

    rng = np.random.default_rng(7)
    for d in (1, 2, 3, 5):
        m = rng.standard_normal((d, d))
        hess = m @ m.T  # symmetric positive semi-definite, like a Gauss-Newton matrix
        rhs = rng.standard_normal(d)
        out, work = np.empty(d), np.empty((d, d + 1))
        _solve_shifted(hess, 0.1, rhs, out, work)
        np.testing.assert_allclose(out, np.linalg.solve(hess + 0.1 * np.eye(d), rhs),
                                   rtol=1e-10)
        # A matrix needing row exchanges (zero leading pivot).
        perm = np.eye(d)[::-1] + 0.0
        if d > 1:
            _solve_shifted(perm, 0.0, rhs, out, work)
            np.testing.assert_allclose(out, np.linalg.solve(perm, rhs), rtol=1e-12)
        # A null matrix gives no step rather than NaN.
        _solve_shifted(np.zeros((d, d)), 0.0, rhs, out, work)
        np.testing.assert_array_equal(out, 0.0)


def decoder_signs(m, lam):
    """Signs of the decoder's pre-activations h W + b, from the layer formula."""
    return np.sign(naive.decoder_preactivations(m, lam))


def test_within_piece_against_activation_patterns():
    """A step is judged free of kinks exactly when no activation changes along
    it, and then g is affine over it with the derivatives at its start."""
    from sgmca_fast.iae._project import _within_piece

    m = tiny_model("leaky_relu")
    rng = np.random.default_rng(8)
    lam = rng.dirichlet(3 * np.ones(3), size=40)
    g, tangents, z, dz = m.generator.generate_free(lam)
    verdicts = []
    for i in range(lam.shape[0]):
        step = rng.standard_normal(2) * 10.0 ** rng.uniform(-2, 1.5)
        inside = _within_piece(z[i], dz[i], step, np.empty(z.shape[1]))
        path = lam[i] + np.linspace(0, 1, 201)[:, None] * (m.network.free_basis @ step)
        patterns = decoder_signs(m, path)
        assert inside == bool(np.all(patterns == patterns[0])), i
        if inside:
            np.testing.assert_allclose(m.generate(path[-1]), g[i] + step @ tangents[i],
                                       rtol=1e-12, atol=1e-14)
        verdicts.append(inside)
    assert 5 < sum(verdicts) < 35  # both outcomes were exercised


def test_steps_inside_a_piece_need_no_evaluation(monkeypatch):
    m = tiny_model("leaky_relu")
    rng = np.random.default_rng(9)
    lam_true = rng.dirichlet(3 * np.ones(3), size=6)
    a = 2.0 * m.generate(lam_true)
    start = lam_true + 1e-7 * np.array([1.0, -0.5, -0.5])
    assert np.all(decoder_signs(m, start) == decoder_signs(m, lam_true))
    calls = []
    for name in ("generate_free", "generate", "start"):
        original = getattr(m.generator, name)

        def counted(*args, original=original, name=name):
            calls.append(name)
            return original(*args)

        monkeypatch.setattr(m.generator, name, counted)
    res = m.project(a, lambda0=start)
    assert calls == ["generate_free"]  # the start, nothing after
    assert res.converged.all() and np.all(res.n_iter >= 1)
    np.testing.assert_allclose(res.lambdas, lam_true, atol=1e-9)
    np.testing.assert_allclose(res.rho, 2.0, rtol=1e-9)


def test_large_batches_are_split(monkeypatch):
    """A batch above the chunk size gives what each spectrum gives on its own."""
    from sgmca_fast.iae import _project

    m = tiny_model("leaky_relu")
    rng = np.random.default_rng(10)
    a = m.generate(rng.dirichlet(np.ones(3), size=7)) + 0.01 * rng.random((7, 8))
    lam0 = rng.dirichlet(np.ones(3), size=7)
    monkeypatch.setattr(_project, "_CHUNK", 3)
    for start in (None, lam0):
        batch = m.project(a, lambda0=start)
        for i in range(7):
            one = m.project(a[i], lambda0=None if start is None else start[i])
            for field in ("spectra", "lambdas", "rho", "residual", "unit_spectra"):
                got, want = getattr(batch, field)[i], getattr(one, field)
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
            assert batch.n_iter[i] == one.n_iter
            assert batch.converged[i] == one.converged


def test_unit_held_at_zero_is_no_kink():
    """A decoder unit with zero weights and bias stays at 0: steps stay free."""
    from sgmca_fast.iae._project import _within_piece

    base = tiny_model("leaky_relu")
    dec_w = [w.copy() for w in base.decoder_weights]
    dec_b = [b.copy() for b in base.decoder_biases]
    dec_w[1][:, 2] = 0.0
    dec_b[1][2] = 0.0
    m = IAEModel(base.anchors, base.encoder_weights, base.encoder_biases, dec_w, dec_b,
                 activation="leaky_relu")
    lam = np.array([[0.3, 0.3, 0.4]])
    _, _, z, dz = m.generator.generate_free(lam)
    assert z[0, 8 + 2] == 0.0 and np.all(dz[0, :, 8 + 2] == 0.0)
    step = np.array([1e-3, -2e-3])
    path = lam + np.linspace(0, 1, 101)[:, None] * (m.network.free_basis @ step)
    patterns = decoder_signs(m, path)
    assert np.all(patterns == patterns[0])
    assert _within_piece(z[0], dz[0], step, np.empty(z.shape[1]))
