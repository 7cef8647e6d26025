import numpy as np
import pytest

import sgmca_fast
from sgmca_fast import datasets, gmca, metrics, separate
from sgmca_fast.iae import from_reference


def sparse_problem(J=12, n_src=3, size=32, snr_db=60.0, seed=0):
    """Sources with few non-zero pixels at distinct places, random positive A."""
    rng = np.random.default_rng(seed)
    S0 = np.zeros((n_src, size, size))
    for i in range(n_src):
        idx = rng.choice(size * size, size=40, replace=False)
        S0[i].flat[idx] = rng.exponential(1.0, 40) + 0.5
    A0 = rng.random((J, n_src)) + 0.05
    A0 /= np.linalg.norm(A0, axis=0)
    X = np.einsum("ji,ihw->jhw", A0, S0)
    sigma = np.sqrt(np.mean(X**2) * 10 ** (-snr_db / 10))
    return X + sigma * rng.standard_normal(X.shape), A0, S0, sigma


def binned(sources, factor):
    """Sum factor x factor blocks: a smaller image of the whole remnant."""
    i, h, w = sources.shape
    h, w = h // factor * factor, w // factor * factor
    s = sources[:, :h, :w].reshape(i, h // factor, factor, w // factor, factor)
    return s.sum(axis=(2, 4))


def matched_sad(A0, A):
    return metrics.sad(A0, metrics.match(A0, A)[0])


@pytest.fixture(scope="module")
def casa_models(reference_models_dir):
    return {
        name: from_reference(reference_models_dir / f"model_{name}.pkl")
        for name in ("sync", "thermal", "gauss")
    }


def test_gmca_recovers_a_sparse_mixture():
    X, A0, S0, sigma = sparse_problem()
    res = gmca(X, 3, noise_std=sigma)
    assert res.A.shape == (12, 3) and res.S.shape == (3, 32, 32)
    assert matched_sad(A0, res.A) > 25
    assert res.mapping == [None] * 3
    assert res.n_iter["semiblind"] == 0 and res.n_iter["blind"] >= 100
    assert len(res.history["delta_S"]) == res.n_iter["blind"]
    np.testing.assert_allclose(np.linalg.norm(res.A, axis=0), 1.0)
    assert np.all(res.A >= 0)


def test_gmca_without_noise_level_uses_mad():
    X, A0, _, _ = sparse_problem(seed=1)
    assert matched_sad(A0, gmca(X, 3).A) > 15


def test_matrix_data_use_the_1d_starlet():
    X, A0, _, sigma = sparse_problem(seed=2)
    res = gmca(X.reshape(12, -1), 3, noise_std=sigma)
    assert res.S.shape == (3, 32 * 32)
    assert matched_sad(A0, res.A) > 15


def test_per_channel_noise_weights_the_least_squares():
    # The weighted pseudo-inverse must equal the independent weighted lstsq.
    rng = np.random.default_rng(3)
    A = rng.random((6, 2))
    sigma = np.array([0.1, 1.0, 2.0, 0.5, 0.3, 3.0])
    x = rng.standard_normal(6)
    step = sgmca_fast._sources.SourceStep(
        np.zeros((6, 3, 4)), sigma, np.ones(3), 3.0, True, False
    )
    expected = np.linalg.lstsq(A / sigma[:, None], x / sigma, rcond=None)[0]
    np.testing.assert_allclose(step.pinv(A) @ x, expected, rtol=1e-10)


def test_per_channel_noise_helps_with_bad_channels():
    X, A0, _, sigma = sparse_problem(J=16, snr_db=50.0, seed=4)
    rng = np.random.default_rng(5)
    sig = np.full(16, sigma)
    sig[:4] = 30 * sigma  # four very noisy channels
    Xn = X + rng.standard_normal(X.shape) * np.sqrt(sig**2 - sigma**2)[:, None, None]
    weighted = gmca(Xn, 3, noise_std=sig)
    flat = gmca(Xn, 3, noise_std=float(np.sqrt(np.mean(sig**2))))
    assert matched_sad(A0, weighted.A) > matched_sad(A0, flat.A)


def test_callback_sees_every_iteration_and_can_stop():
    X, _, _, sigma = sparse_problem()
    seen = []

    def callback(info):
        seen.append((info["stage"], info["iteration"], info["A"].shape))
        return info["iteration"] >= 4

    res = gmca(X, 3, noise_std=sigma, callback=callback)
    assert res.n_iter["blind"] == 5
    assert seen == [("blind", i, (12, 3)) for i in range(5)]


def test_sgmca_beats_gmca_on_cropped_casa(casa, casa_models):
    sources = binned(casa.sources, 3)
    fam = casa.families
    models = {casa_models["sync"]: 1, casa_models["thermal"]: 1,
              casa_models["gauss"]: 2}
    gains = []
    for seed in (0, 1):
        mix = datasets.make_mixture(
            sources,
            [fam["sync"]["valid"], fam["thermal"]["valid"], fam["gauss"]["valid"],
             fam["gauss"]["valid"]],
            snr_db=40.0,
            random_state=seed,
        )
        blind = gmca(mix.X, 4, noise_std=mix.noise_std)
        semi = separate(mix.X, 4, models, noise_std=mix.noise_std)
        sad_semi = matched_sad(mix.A0, semi.A)
        gains.append(sad_semi - matched_sad(mix.A0, blind.A))
        assert sad_semi > 18
        assert sorted(semi.mapping) == sorted(
            [casa_models[n].name for n in ("sync", "thermal", "gauss", "gauss")]
        )
        assert all(f is not None and f < 0.05 for f in semi.model_fit)
    assert np.median(gains) > 5


def test_fixed_mapping_is_kept(casa, casa_models):
    fam = casa.families
    mix = datasets.make_mixture(
        binned(casa.sources, 5),
        [fam["sync"]["valid"], fam["thermal"]["valid"], fam["gauss"]["valid"],
         fam["gauss"]["valid"]],
        random_state=3,
    )
    sync, thermal = casa_models["sync"], casa_models["thermal"]
    res = separate(mix.X, 4, {sync: 1, thermal: 1}, mapping={2: sync, 0: thermal.name},
                   noise_std=mix.noise_std, max_iter_semiblind=3)
    assert res.mapping == [thermal.name, None, sync.name, None]
    assert res.n_iter["semiblind"] == 3


class _FakeModel:
    def __init__(self, name, n_channels):
        self.name, self.n_channels = name, n_channels

    def fast_project(self, a):
        raise AssertionError("validation must come before any work")

    project = fast_project


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"X": np.full((5, 8, 8), np.nan)}, "no observed voxel"),
        ({"X": np.zeros((2, 8, 8))}, "2 channels, fewer than n_sources = 3"),
        ({"n_sources": 0}, "n_sources must be at least 1"),
        ({"X": np.zeros((5, 4, 4, 4))}, "cube"),
        ({"models": {_FakeModel("m", 7): 1}}, "model 'm' has 7 channels but X has 5"),
        ({"models": {_FakeModel("a", 5): 2, _FakeModel("b", 5): 2}},
         "take 4 sources in all but n_sources is 3"),
        ({"models": {_FakeModel("a", 5): 1}, "mapping": {7: "a"}},
         "mapping names source 7"),
        ({"models": {_FakeModel("a", 5): 1}, "mapping": {0: "zz"}},
         "mapping names model 'zz'"),
        ({"models": {_FakeModel("a", 5): 2}, "mapping": {0: "a"}},
         "ties 1 source"),
        ({"mapping": {0: "a"}}, "mapping was given without models"),
        ({"noise_std": [1.0, 2.0]}, "one value per channel"),
        ({"noise_std": -1.0}, "finite and positive"),
        ({"K_max": 1.5}, "K_max must be <= 1"),
        ({"A_init": np.ones((4, 3))}, "A_init must have shape"),
    ],
)
def test_bad_input_is_refused_before_any_work(kwargs, match):
    args = {"X": np.ones((5, 8, 8)), "n_sources": 3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        separate(args.pop("X"), args.pop("n_sources"), **args)


def test_bad_types():
    with pytest.raises(TypeError, match="n_sources must be an integer"):
        separate(np.ones((5, 8, 8)), 2.0)
    with pytest.raises(TypeError, match="real numeric array"):
        separate(np.full((5, 8, 8), "a"), 2)
    with pytest.raises(TypeError, match="gmca\\(\\) takes no 'models'"):
        gmca(np.ones((5, 8, 8)), 2, models={})


# --------------------------------------------------------------------------------
# gap 3: data without detail coefficients
# --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "X",
    [
        np.zeros((6, 16, 16)),
        np.ones((6, 16, 16)),
        np.arange(6.0)[:, None, None] * 0.1 + np.zeros((6, 16, 16)),  # per channel
        np.full((6, 64), 3.7),  # (J, P) data, 1-D starlet
    ],
)
def test_data_without_detail_are_refused(X):
    with pytest.raises(ValueError, match="no structure to separate"):
        gmca(X, 2)
    with pytest.raises(ValueError, match="no structure to separate"):
        separate(X, 2, noise_std=0.1)


def test_one_textured_channel_is_enough():
    X = np.ones((6, 16, 16))
    X[2] += np.random.default_rng(0).standard_normal((16, 16))
    assert gmca(X, 1).A.shape == (6, 1)


# --------------------------------------------------------------------------------
# gap 4: any finite magnitude
# --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unit_run():
    X, _, _, sigma = sparse_problem(seed=6)
    return X, sigma, gmca(X, 3, noise_std=sigma, random_state=0)


@pytest.mark.parametrize("scale", [1e154, 1e-150, 2.0**-900, 1e300, 2.0**600])
def test_gmca_is_scale_equivariant(unit_run, scale):
    X, sigma, ref = unit_run
    res = gmca(X * scale, 3, noise_std=sigma * scale, random_state=0)
    np.testing.assert_allclose(res.A, ref.A, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.S / scale, ref.S, rtol=1e-10,
                               atol=1e-10 * np.abs(ref.S).max())
    assert res.n_iter == ref.n_iter


def test_mad_thresholds_are_scale_equivariant_too():
    X, _, _, _ = sparse_problem(seed=7)
    ref = gmca(X, 3, random_state=0)
    res = gmca(X * 1e-280, 3, random_state=0)
    np.testing.assert_allclose(res.A, ref.A, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.S * 1e280, ref.S, rtol=1e-8,
                               atol=1e-8 * np.abs(ref.S).max())


def test_power_of_two_scales_are_exact(unit_run):
    X, sigma, ref = unit_run
    res = gmca(X * 2.0**-700, 3, noise_std=sigma * 2.0**-700, random_state=0)
    np.testing.assert_array_equal(res.A, ref.A)
    np.testing.assert_array_equal(res.S * 2.0**700, ref.S)


# --------------------------------------------------------------------------------
# gap 6: every parameter checked before any work
# --------------------------------------------------------------------------------


def _no_call(info):
    raise AssertionError("validation must come before any iteration")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_iter_semiblind": -1}, ValueError, "max_iter_semiblind must be at least"),
        ({"max_iter_semiblind": 1.5}, TypeError, "max_iter_semiblind must be an int"),
        ({"nscales": 4}, ValueError, "nscales = 4 is too large for images of 8"),
        ({"X": np.ones((5, 64)), "nscales": 7}, ValueError, "of 64 samples"),
        ({"nscales": 0}, ValueError, "nscales must be at least 1"),
        ({"nscales": 2.0}, TypeError, "nscales must be an integer"),
        ({"k": np.inf}, ValueError, "k must be a finite number"),
        ({"k": 0.0}, ValueError, "k must be > 0"),
        ({"k": "3"}, TypeError, "k must be a real number"),
        ({"K_max": 0.0}, ValueError, "K_max must be > 0"),
        ({"K_max": np.nan}, ValueError, "K_max must be a finite number"),
        ({"tol_semiblind": np.nan}, ValueError, "tol_semiblind must be a finite"),
        ({"tol_semiblind": -1e-3}, ValueError, "tol_semiblind must be >= 0"),
        ({"nonneg_A": "yes"}, TypeError, "nonneg_A must be True or False"),
        ({"nonneg_S": 1}, TypeError, "nonneg_S must be True or False"),
        ({"l1": None}, TypeError, "l1 must be True or False"),
        ({"progress": "no"}, TypeError, "progress must be True or False"),
        ({"random_state": "x"}, TypeError, "random_state must be None, a non-neg"),
        ({"random_state": -2}, ValueError, "random_state must be at least 0"),
        ({"callback": 3}, TypeError, "callback must be callable"),
        ({"A_init": np.full((5, 3), "a")}, TypeError, "A_init must be a real"),
        ({"A_init": np.full((5, 3), np.inf)}, ValueError, "A_init contains NaN"),
        ({"noise_std": np.inf}, ValueError, "finite and positive"),
        # a masked array's masked values are missing data now (tests/test_missing.py)
        ({"mask": np.zeros((5, 8), bool)}, ValueError, "mask must have X's shape"),
    ],
)
def test_every_parameter_is_checked_before_any_work(kwargs, error, match):
    rng = np.random.default_rng(0)
    args = {"X": rng.random((5, 8, 8)), "n_sources": 3, "callback": _no_call}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        separate(args.pop("X"), args.pop("n_sources"), **args)


def test_a_masked_array_without_masked_values_is_its_data():
    X, _, _, sigma = sparse_problem(seed=2)
    ref = gmca(X, 3, noise_std=sigma, random_state=0)
    res = gmca(np.ma.masked_array(X, mask=False), 3, noise_std=sigma, random_state=0)
    np.testing.assert_array_equal(res.A, ref.A)


def test_input_errors_have_the_input_error_types():
    from sgmca_fast._validation import InputError, InputTypeError

    X = np.random.default_rng(0).random((5, 8, 8))
    with pytest.raises(InputError):
        separate(X, 3, max_iter_semiblind=-1)
    with pytest.raises(InputError):
        separate(np.ones((5, 8, 8)), 3)
    with pytest.raises(InputTypeError):
        separate(X, 3, mapping={0: "a"}, models=[(_FakeModel("a", 5), 1.0)])
    with pytest.raises(InputTypeError):
        gmca(X, 3, mapping={})
