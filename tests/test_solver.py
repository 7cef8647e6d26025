from pathlib import Path

import numpy as np
import pytest

import sgmca_fast
from sgmca_fast import datasets, gmca, metrics, separate
from sgmca_fast.iae import from_reference

CASA = Path(__file__).resolve().parents[2] / "shared" / "data" / "casa"


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
def casa_models():
    if not CASA.is_dir():
        pytest.fail(f"the Cas A data are expected at {CASA}")
    return {
        name: from_reference(CASA / "reference_models" / f"model_{name}.pkl")
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
    step = sgmca_fast._solver._SourceStep(
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


def test_sgmca_beats_gmca_on_cropped_casa(casa_models):
    casa = datasets.load_casa(CASA)
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


def test_fixed_mapping_is_kept(casa_models):
    casa = datasets.load_casa(CASA)
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
        ({"X": np.full((5, 8, 8), np.nan)}, "NaN or inf"),
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
        ({"K_max": 1.5}, "K_max must be in"),
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


def test_a_duplicated_column_is_replaced_by_the_lost_spectrum():
    # Data made of three sources; the estimate describes source 0 twice.
    rng = np.random.default_rng(8)
    A0 = np.abs(rng.standard_normal((20, 3)))
    A0 /= np.linalg.norm(A0, axis=0)
    S0 = rng.standard_normal((3, 5000)) * [[1.0], [0.8], [0.6]]
    Xd = A0 @ S0 + 0.01 * rng.standard_normal((20, 5000))
    A = A0[:, [0, 1, 0]].copy()
    A[:, 2] = 0.999 * A[:, 2] + 0.02 * A0[:, 1]
    A[:, 2] /= np.linalg.norm(A[:, 2])
    decoys = np.abs(rng.standard_normal((30, 20)))
    decoys /= np.linalg.norm(decoys, axis=1, keepdims=True)
    candidates = np.vstack([decoys, A0[:, 2]])
    col = sgmca_fast._solver._reseed_lost_source(A, Xd @ Xd.T, candidates)
    assert col in (0, 2)
    np.testing.assert_allclose(A[:, col], A0[:, 2])
    # Distinct columns are left alone.
    B = A0.copy()
    assert sgmca_fast._solver._reseed_lost_source(B, Xd @ Xd.T, candidates) is None
    np.testing.assert_array_equal(B, A0)
