"""The solver's noise: variance maps, the default estimate, n_sources="auto"."""

import numpy as np
import pytest

from sgmca_fast import datasets, gmca, metrics, noise, separate, starlet
from sgmca_fast._sources import SourceStep


def sparse_mixture(J=12, n_src=3, size=32, sigma=None, seed=0, snr_db=40.0):
    """Sparse non-negative sources, random positive A; noise std per voxel ``sigma``.

    ``sigma`` is a (J, H, W) or (J, 1, 1) array of noise std, or None for white
    noise at ``snr_db``. Returns X, A0, the noise std used.
    """
    rng = np.random.default_rng(seed)
    S0 = np.zeros((n_src, size, size))
    for i in range(n_src):
        idx = rng.choice(size * size, size=60, replace=False)
        S0[i].flat[idx] = rng.exponential(1.0, 60) + 0.5
    A0 = rng.random((J, n_src)) + 0.05
    A0 /= np.linalg.norm(A0, axis=0)
    X = np.einsum("ji,ihw->jhw", A0, S0)
    if sigma is None:
        sigma = np.full((J, 1, 1), np.sqrt(np.mean(X**2) * 10 ** (-snr_db / 10)))
    return X + sigma * rng.standard_normal(X.shape), A0, sigma


def smooth_map(size, ratio=3.0):
    """A smooth (size, size) map from 1 to ``ratio`` (a diagonal ramp)."""
    yy, xx = np.mgrid[0:size, 0:size]
    return ratio ** ((yy + xx) / (2.0 * (size - 1)))


def test_per_channel_variance_is_noise_std_bit_for_bit():
    sigma = np.linspace(0.005, 0.05, 12)[:, None, None]
    X, _, _ = sparse_mixture(sigma=sigma, seed=3)
    var = np.linspace(0.005, 0.05, 12) ** 2
    a = separate(X, 3, variance=var, random_state=0)
    b = separate(X, 3, noise_std=np.sqrt(var), random_state=0)
    assert np.array_equal(a.A, b.A) and np.array_equal(a.S, b.S)
    assert np.array_equal(a.noise_std, np.sqrt(var))
    # a scalar, and a cube constant over the image, are the same
    c = separate(X, 3, variance=np.broadcast_to(var[:, None, None], X.shape),
                 random_state=0)
    assert np.array_equal(a.A, c.A) and np.array_equal(a.S, c.S)
    d = separate(X, 3, variance=0.02**2, random_state=0)
    e = separate(X, 3, noise_std=0.02, random_state=0)
    assert np.array_equal(d.S, e.S)


def _soft(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


@pytest.fixture
def mapped_step():
    """A SourceStep with a variance cube varying 3x across the image."""
    rng = np.random.default_rng(5)
    J, size, ns = 6, 32, 2
    X = rng.standard_normal((J, size, size))
    var = (np.linspace(1, 4, J)[:, None, None] * smooth_map(size)[None]) ** 2
    Xw = starlet.forward(X, ns).reshape(J, ns + 1, -1)
    norms = starlet.scale_norms((size, size), ns)
    level = np.median(var.reshape(J, -1), axis=1)
    step = SourceStep(Xw, np.sqrt(level), norms, 2.0, True, False,
                      var.reshape(J, -1))
    A = np.abs(rng.standard_normal((J, 3)))
    A /= np.linalg.norm(A, axis=0)
    # independent references: the weighted pseudo-inverse and sigma_i(p)
    W = np.diag(1 / level)
    M = np.linalg.solve(A.T @ W @ A, A.T @ W)
    sig = np.sqrt(np.einsum("ij,jp->ip", M**2, var.reshape(J, -1)))
    thr = 2.0 * sig[:, None, :] * norms[None, :ns, None]  # (I, ns, P)
    ls = np.einsum("ij,jsp->isp", M, Xw[:, :ns])
    return step, A, M, ls, thr


def test_variance_cube_thresholds_per_pixel(mapped_step):
    step, A, M, ls, thr = mapped_step
    assert thr.max() / thr.min() > 3  # the map varies 3x, the channels too
    out = np.empty_like(ls)
    M_used = step(A, 1.0, None, out)
    np.testing.assert_allclose(M_used, M, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out, _soft(ls, thr), rtol=1e-10, atol=1e-12)


def test_variance_cube_reweighting_and_support(mapped_step):
    step, A, _, ls, thr = mapped_step
    prev = np.random.default_rng(9).standard_normal(ls.shape)
    out = np.empty_like(ls)
    step(A, 1.0, prev, out)
    # l1 reweighting in units of the local noise: t = thr / (|prev| / thr + 1)
    np.testing.assert_allclose(out, _soft(ls, thr / (np.abs(prev) / thr + 1)),
                               rtol=1e-10, atol=1e-12)
    # K < 1: keep the K fraction of the coefficients above k sigma(p), by SNR
    K = 0.3
    step(A, K, None, out)
    snr = np.abs(ls / thr).reshape(-1, ls.shape[-1])  # in units of the threshold
    expected = np.empty_like(snr)
    for r, row in enumerate(snr):
        kval = min(max(int(K * np.sum(row > 1.0)), 5), row.size)
        t_n = np.sort(row)[::-1][kval - 1]
        expected[r] = _soft(ls.reshape(snr.shape)[r],
                            t_n * thr.reshape(snr.shape)[r])
    np.testing.assert_allclose(out.reshape(snr.shape), expected, rtol=1e-10,
                               atol=1e-12)


def test_variance_cube_separates_and_reports_the_channel_level():
    size = 32
    std = np.linspace(0.001, 0.01, 12)[:, None, None] * smooth_map(size)[None]
    X, A0, _ = sparse_mixture(sigma=std, seed=4)
    res = separate(X, 3, variance=std**2, random_state=0)
    np.testing.assert_allclose(
        res.noise_std, np.sqrt(np.median((std**2).reshape(12, -1), axis=1)))
    # per-channel noise gives 18.6-21.3 dB on seeds 0-3 here, the per-source MAD 15-16.5
    assert metrics.sad(A0, metrics.match(A0, res.A)[0]) > 17.5


def test_default_estimates_the_per_channel_noise():
    """Known noise 10x across channels: the estimate used is within a few %."""
    sigma = np.geomspace(0.003, 0.03, 12)[:, None, None]
    errors = []
    for seed in range(3):
        X, _, _ = sparse_mixture(size=64, sigma=sigma, seed=seed)
        res = gmca(X, 3, random_state=0)
        errors.append(res.noise_std / sigma.ravel() - 1)
    errors = np.abs(np.array(errors))
    # the plain MAD (rank=0) is 18% to 330% too high on these spiky sources
    assert np.median(errors) < 0.03 and errors.max() < 0.15


def test_count_cubes_take_the_poisson_std():
    """Photon counts: each channel's std is sqrt(mean count), not the MAD (which
    reads 0 here: most finest-scale coefficients are exactly 0)."""
    rng = np.random.default_rng(5)
    rate = np.array([0.02, 0.05, 0.2, 1.0, 3.0, 0.0])
    lam = rate[:, None, None] * (1 + smooth_map(64))[None]
    X = rng.poisson(lam).astype(float)
    X[1, :4, :4] = np.nan  # missing voxels are left out of the mean
    res = gmca(X, 2, nscales=2, max_iter_semiblind=0, random_state=0)
    mean = np.nanmean(X.reshape(6, -1), axis=1)
    expected = np.sqrt(np.maximum(mean, 0.1 * np.nanmean(X)))
    np.testing.assert_allclose(res.noise_std, expected, rtol=1e-12)
    # the MAD of the finest scale reads a fraction of it
    assert noise.estimate_noise_std(np.nan_to_num(X))[0] < 0.5 * expected[0]


def test_integer_data_without_empty_voxels_are_not_counts():
    """Detector units with a bias (integers, no zero): the MAD estimate stays."""
    X, _, _ = sparse_mixture(size=64, sigma=np.full((12, 1, 1), 0.01), seed=6)
    X = np.round(1000 + 300 * X)  # noise std 3 units
    res = gmca(X, 3, random_state=0)
    # rounding adds 1/12 to the variance; sqrt(1000) would be 31.6
    np.testing.assert_allclose(res.noise_std, np.sqrt(9 + 1 / 12), rtol=0.15)


def test_an_empty_channel_gets_the_quietest_level():
    """An empty channel of a count cube is not exact: no 1e12-times weight."""
    X, _, _ = sparse_mixture(seed=2)
    X[5] = 0.0
    res = gmca(X, 3, random_state=0)
    others = np.delete(res.noise_std, 5)
    assert res.noise_std[5] == others.min() and others.min() > 0


def test_mad_keeps_the_per_source_estimate():
    X, A0, _ = sparse_mixture(seed=1)
    res = gmca(X, 3, noise_std="mad", random_state=0)
    assert res.noise_std is None
    assert metrics.sad(A0, metrics.match(A0, res.A)[0]) > 15


@pytest.mark.parametrize("n_src", [2, 3, 4, 5, 6])
def test_auto_counts_the_sources(n_src):
    for seed in range(2):
        X, A0, sigma = sparse_mixture(J=16, n_src=n_src, seed=10 * n_src + seed,
                                      snr_db=30.0)
        res = gmca(X, "auto", random_state=0)
        assert res.A.shape == (16, n_src), res.n_sources_estimate.evidence
        assert res.n_sources_estimate.n_sources == n_src
        known = gmca(X, "auto", noise_std=float(sigma.ravel()[0]), random_state=0)
        assert known.n_sources_estimate.n_sources == n_src
        assert "source(s)" in res.n_sources_estimate.evidence
    assert gmca(X, 2).n_sources_estimate is None


def test_auto_estimates_the_noise_once(monkeypatch):
    from sgmca_fast import noise

    X, _, sigma = sparse_mixture(J=16, n_src=3, seed=31, snr_db=30.0)
    # the reference: the noise estimate with the sources' 3 directions removed
    reference = noise.estimate_noise_std(X, rank=3)
    calls = []
    real = noise.estimate_noise_std
    monkeypatch.setattr(noise, "estimate_noise_std",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    res = gmca(X, "auto", random_state=0)
    assert res.n_sources_estimate.n_sources == 3
    assert res.n_sources_estimate.noise_rank == 3
    assert calls == []  # the count's own estimate is passed on
    np.testing.assert_allclose(res.noise_std, reference, rtol=1e-12)
    np.testing.assert_allclose(res.noise_std, sigma.ravel(), rtol=0.15)
    assert gmca(X, 3, random_state=0).noise_std is not None and calls == [1]
    given = noise.estimate_n_sources(X, noise_std=float(sigma.ravel()[0]))
    assert given.noise_std is None and given.noise_rank == 0


class _FakeModel:
    def __init__(self, name, n_channels):
        self.name, self.n_channels = name, n_channels

    def project(self, *a, **k):
        raise AssertionError("not called")

    fast_project = project


def test_auto_below_the_models_count_is_an_error():
    X, _, _ = sparse_mixture(J=16, n_src=2, seed=2)
    with pytest.raises(ValueError, match=r"found 2 source\(s\) but the models take 3"):
        separate(X, "auto", [(_FakeModel("a", 16), 3)])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"noise_std": 0.1, "variance": 0.01}, "give noise_std or variance, not both"),
        ({"variance": np.ones(4)}, r"variance must be a number, one value per channel "
                                   r"\(12,\) or the shape of X \(12, 32, 32\), got "
                                   r"shape \(4,\)"),
        ({"variance": np.ones((12, 32))}, r"got shape \(12, 32\)"),
        ({"variance": -1.0}, "variance must be finite and positive"),
        ({"variance": np.zeros((12, 32, 32))}, "variance must be finite and positive"),
        ({"variance": np.full(12, np.nan)}, "variance must be finite and positive"),
        ({"noise_std": "median"}, "noise_std must be a number, one value per "
                                  "channel, None or 'mad', got 'median'"),
    ],
)
def test_noise_errors(kwargs, match):
    X, _, _ = sparse_mixture()
    with pytest.raises(ValueError, match=match):
        separate(X, 3, **kwargs)


def test_auto_with_bad_count_text_is_an_error():
    X, _, _ = sparse_mixture()
    with pytest.raises(ValueError, match="n_sources"):
        separate(X, "many")


def test_casa_like_mixture_counts(casa):
    """The Cas A mixture of the benchmarks (4 sources, 40 dB) is counted right."""
    fam = casa.families
    mix = datasets.make_mixture(
        casa.sources, [fam["sync"]["valid"], fam["thermal"]["valid"],
                       fam["gauss"]["valid"], fam["gauss"]["valid"]],
        snr_db=40.0, random_state=0)
    res = gmca(mix.X, "auto", max_iter_semiblind=0, random_state=0)
    assert res.n_sources_estimate.n_sources == 4
