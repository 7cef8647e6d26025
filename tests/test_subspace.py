"""The channel subspace: lower/lift, the rank, both eigen paths, the solver on it."""

import numpy as np
import pytest

from sgmca_fast import _subspace, gmca, separate, starlet
from sgmca_fast._validation import InputError


def mixture(seed, J=24, n_src=3, side=64, sigma=None, noise=0.01):
    """Sparse spiky sources, positive smooth spectra, per-channel white noise.

    Returns X, A, S and the per-channel noise std (``noise`` times X's std,
    varying by a factor up to 2 across channels unless ``sigma`` is given).
    """
    rng = np.random.default_rng(seed)
    on = rng.random((n_src, side, side)) < 0.05
    S = np.where(on, 5.0 * rng.laplace(size=on.shape), 0.0)
    centres = rng.uniform(0, J, n_src)
    A = np.exp(-0.5 * ((np.arange(J)[:, None] - centres) / 3.0) ** 2) + 0.1
    A /= np.linalg.norm(A, axis=0)
    X = np.einsum("ji,ihw->jhw", A, S)
    if sigma is None:
        sigma = noise * X.std() * rng.uniform(1.0, 2.0, J)
    X = X + sigma[:, None, None] * rng.standard_normal(X.shape)
    return X, A, S, sigma


def details(X, nscales=2):
    return starlet.forward(X, nscales)[:, :nscales].reshape(X.shape[0], nscales, -1)


def principal_angles(U, V):
    """Sine of the largest principal angle between the column spans (numpy)."""
    qu, qv = np.linalg.qr(U)[0], np.linalg.qr(V)[0]
    return float(np.linalg.norm(qv - qu @ (qu.T @ qv), 2))


def test_basis_lower_and_lift_match_numpy():
    X, _, _, sigma = mixture(0)
    Xd = details(X)
    sub = _subspace.reduce(Xd, 5, noise_std=sigma)
    # The basis: the top left singular vectors of the whitened details (SVD).
    Y = Xd.reshape(X.shape[0], -1) / sigma[:, None]
    U, s, _ = np.linalg.svd(Y, full_matrices=False)
    assert principal_angles(sub.basis, U[:, :5]) < 1e-9
    np.testing.assert_allclose(sub.singular_values[:5], s[:5], rtol=1e-10)
    np.testing.assert_allclose(sub.xx, Xd.reshape(X.shape[0], -1)
                               @ Xd.reshape(X.shape[0], -1).T, rtol=1e-12)
    M = np.random.default_rng(1).standard_normal((X.shape[0], 3, 7))
    expected = np.einsum("jr,jab->rab", sub.basis, M / sigma[:, None, None])
    np.testing.assert_allclose(sub.lower(M), expected, rtol=1e-12, atol=1e-12)
    b = np.random.default_rng(2).standard_normal((5, 4))
    np.testing.assert_allclose(sub.lift(b), np.diag(sigma) @ sub.basis @ b,
                               rtol=1e-12)


def test_lower_in_blocks_equals_one_product(monkeypatch):
    X, _, _, sigma = mixture(1)
    sub = _subspace.reduce(details(X), 4, noise_std=sigma)
    whole = sub.lower(X)
    monkeypatch.setattr(_subspace, "_BLOCK_BYTES", 8 * X.shape[0] * 100)
    assert len(_subspace._blocks(X.reshape(X.shape[0], -1))) > 10
    np.testing.assert_allclose(sub.lower(X), whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_rank_auto_finds_the_true_rank(seed):
    X, _, _, sigma = mixture(seed, J=30, n_src=3, noise=0.05)
    sub = _subspace.reduce(details(X), "auto", noise_std=sigma, n_min=1,
                           image_shape=X.shape[1:])
    assert sub.n_signal == 3
    assert sub.rank == 3 + _subspace._margin(3)
    assert str(sub.rank) in sub.reason


def test_rank_auto_on_pure_noise_counts_nothing():
    # The noise floor of correlated detail coefficients is not crossed by noise.
    counts = []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        sigma = rng.uniform(0.5, 2.0, 40)
        X = sigma[:, None, None] * rng.standard_normal((40, 64, 64))
        sub = _subspace.reduce(details(X), "auto", noise_std=sigma,
                               image_shape=X.shape[1:])
        counts.append(sub.n_signal)
        assert sub.singular_values[0] ** 2 > 0.8 * sub.floor  # not a loose floor
    assert counts == [0] * 5


def test_randomized_path_matches_eigh():
    X, _, _, sigma = mixture(2, J=60, n_src=4, noise=0.02)
    Xd = details(X)
    gram = _subspace.reduce(Xd, "auto", noise_std=sigma, image_shape=X.shape[1:],
                            method="gram")
    rand = _subspace.reduce(Xd, "auto", noise_std=sigma, image_shape=X.shape[1:],
                            method="randomized", random_state=0)
    assert rand.method == "randomized" and gram.method == "gram"
    assert rand.n_signal == gram.n_signal == 4
    # The signal directions agree closely; the margin's noise directions need not.
    assert principal_angles(gram.basis[:, :4], rand.basis[:, :4]) < 1e-3
    np.testing.assert_allclose(rand.singular_values[:4], gram.singular_values[:4],
                               rtol=1e-6)
    # The randomized xx is exact on the subspace: V^T D^-1 xx D^-1 V = diag(eig).
    W = rand.basis / sigma[:, None]
    np.testing.assert_allclose(W.T @ rand.xx @ W,
                               np.diag(rand.singular_values[:rand.rank] ** 2),
                               rtol=1e-8, atol=1e-6 * rand.singular_values[0] ** 2)


def test_noiseless_low_rank_reduced_solver_equals_full_space():
    # Rank-3 data: the subspace holds all of it, so the reduced iterations are the
    # full-space ones (whitened with one noise level for all channels).
    X, A0, _, _ = mixture(3, J=20, n_src=3, sigma=np.zeros(20))
    sigma = 1e-6 * X.std()
    full = gmca(X, 3, noise_std=sigma, random_state=0)
    red = gmca(X, 3, noise_std=sigma, random_state=0, subspace=3)
    assert red.subspace["rank"] == 3 and full.subspace is None
    np.testing.assert_allclose(red.A, full.A, atol=1e-8)
    np.testing.assert_allclose(red.S, full.S, atol=1e-8 * np.abs(full.S).max())


def test_auto_subspace_close_to_full_space_with_noise():
    # Noisy data: the reduced run's spectra are as good as the full space's.
    worst_full, worst_red = [], []
    for seed in range(3):
        X, A0, _, sigma = mixture(seed, noise=0.02)
        for out, kw in ((worst_full, {}), (worst_red, {"subspace": "auto"})):
            A = gmca(X, 3, noise_std=sigma, random_state=0, **kw).A
            cos = np.abs(A0.T @ A).max(axis=1)
            out.append(float(np.arccos(np.minimum(cos, 1.0)).max()))
    assert np.median(worst_red) <= 1.5 * np.median(worst_full)


def test_subspace_reported_and_default_off():
    X, _, _, sigma = mixture(4)
    res = gmca(X, 3, noise_std=sigma, random_state=0, subspace="auto")
    info = res.subspace
    assert info["n_signal"] == 3 and info["rank"] >= 3 and info["method"] == "gram"
    assert info["singular_values"].shape == (X.shape[0],)
    assert res.A.shape == (X.shape[0], 3) and res.S.shape == (3, 64, 64)
    assert "setup" in res.timings


@pytest.mark.parametrize("kwargs, match", [
    ({"subspace": 2}, "subspace must be"),
    ({"subspace": 25}, "subspace must be"),
    ({"subspace": "full"}, "subspace"),
    ({"subspace": "auto", "noise_std": "mad"}, "needs a noise level"),
    ({"subspace": "auto", "mask": "holes"}, "missing data"),
    ({"subspace": "auto", "variance": "map"}, "per-voxel variance"),
    ({"subspace": 3, "fixed": "one"}, "fixed spectra"),
])
def test_subspace_errors(kwargs, match):
    X, A0, _, sigma = mixture(5)
    kwargs = dict(kwargs)
    kwargs.setdefault("noise_std", sigma)
    if kwargs.get("mask") == "holes":
        kwargs["mask"] = np.zeros(X.shape, bool)
        kwargs["mask"][0, 0, 0] = True
    if kwargs.get("variance") == "map":
        del kwargs["noise_std"]
        kwargs["variance"] = np.ones(X.shape) * (1 + np.arange(64) / 64)
    if kwargs.get("fixed") == "one":
        kwargs["fixed"] = {0: A0[:, 0]}
    with pytest.raises(InputError, match=match):
        separate(X, 3, **kwargs)


def test_one_dimensional_data_on_a_subspace():
    # (J, P) data, 1-D starlet: the rank and the spectra as with images.
    X, A0, _, sigma = mixture(6, noise=0.02)
    X = X.reshape(X.shape[0], -1)
    res = gmca(X, 3, noise_std=sigma, random_state=0, subspace="auto")
    assert res.subspace["n_signal"] == 3 and res.S.shape == (3, X.shape[1])
    full = gmca(X, 3, noise_std=sigma, random_state=0)
    for A in (res.A, full.A):
        cos = np.abs(A0.T @ A).max(axis=1)
        assert np.arccos(np.minimum(cos, 1.0)).max() < 0.05


def test_pca_start_is_the_full_space_pca():
    # One noise level: the start within the subspace spans the top directions of
    # Xd Xd^T (numpy eigh), as the full-space solver's PCA start does.
    X, _, _, _ = mixture(7, noise=0.02)
    Xd = details(X)
    sub = _subspace.reduce(Xd, 6, noise_std=np.full(X.shape[0], 0.3))
    flat = Xd.reshape(X.shape[0], -1)
    top = np.linalg.eigh(flat @ flat.T)[1][:, ::-1][:, :3]
    assert principal_angles(top, sub.pca(3)) < 1e-9
