"""Missing data in the solver: NaN voxels, masks, dead channels, borders."""

from itertools import permutations

import numpy as np
import pytest

from sgmca_fast import _missing, gmca, separate


def mixture(seed, J=16, n_src=3, side=64, noise=0.01):
    """Sparse spiky sources, smooth positive spectra (Gaussian bumps), white noise."""
    rng = np.random.default_rng(seed)
    S = np.zeros((n_src, side, side))
    for i in range(n_src):
        on = rng.random((side, side)) < 0.05
        S[i][on] = 5.0 * rng.laplace(size=int(on.sum()))
    ch = np.arange(J)
    A = np.column_stack([np.exp(-0.5 * ((ch - c) / 3.0) ** 2) + 0.1
                         for c in rng.uniform(0, J, n_src)])
    A /= np.linalg.norm(A, axis=0)
    X = (A @ S.reshape(n_src, -1)).reshape(J, side, side)
    sigma = noise * X.std()
    return X + sigma * rng.standard_normal(X.shape), A, S, sigma


def angles(A0, A):
    """Angles (rad) between true and estimated spectra, best permutation (numpy)."""
    c = np.abs(A0.T @ A) / np.outer(np.linalg.norm(A0, axis=0),
                                   np.linalg.norm(A, axis=0))
    n = A0.shape[1]
    best = max(permutations(range(n)), key=lambda p: sum(c[i, p[i]] for i in range(n)))
    return np.arccos(np.minimum([c[i, best[i]] for i in range(n)], 1.0))


def holes(shape, fraction, seed):
    return np.random.default_rng(1000 + seed).random(shape) < fraction


def test_scattered_missing_close_to_complete_data():
    # 5% of the voxels missing at random: the spectra are as good as with the
    # complete data, to within the noise's own spread (the complete-data error).
    worst_complete, worst_missing = [], []
    for seed in range(3):
        X, A0, _, sigma = mixture(seed)
        Xm = X.copy()
        Xm[holes(X.shape, 0.05, seed)] = np.nan
        worst_complete.append(angles(A0, gmca(X, 3, noise_std=sigma,
                                              random_state=0).A).max())
        res = gmca(Xm, 3, noise_std=sigma, random_state=0)
        worst_missing.append(angles(A0, res.A).max())
        assert res.missing.n_filled == int(np.isnan(Xm).sum())
        assert np.all(np.isfinite(res.S))
    assert np.median(worst_missing) <= 2.0 * np.median(worst_complete)


def test_a_fixed_fill_is_not_enough():
    # The first fill (neighbour mean) kept for the whole run fails on spiky
    # sources; the EM refresh is what makes the fit right (same data as above).
    X, A0, _, sigma = mixture(0)
    X[holes(X.shape, 0.05, 0)] = np.nan
    saved = _missing.FILL_EVERY
    try:
        _missing.FILL_EVERY = 10**9
        frozen = angles(A0, gmca(X, 3, noise_std=sigma, random_state=0).A).max()
    finally:
        _missing.FILL_EVERY = saved
    em = angles(A0, gmca(X, 3, noise_std=sigma, random_state=0).A).max()
    assert em < 0.01 < frozen


def test_dead_channels_dropped_and_interpolated():
    X, A0, _, sigma = mixture(0)
    X[[5, 9]] = np.nan
    res = gmca(X, 3, noise_std=sigma, random_state=0)
    assert res.missing.dropped_channels == (5, 9)
    assert res.missing.n_filled == 0
    assert res.missing.n_missing == 2 * 64 * 64
    assert np.all(np.isfinite(res.A))
    # Free spectra: a dropped channel is the mean of its two neighbours.
    for j in (5, 9):
        np.testing.assert_allclose(res.A[j], (res.A[j - 1] + res.A[j + 1]) / 2,
                                   rtol=1e-12)
    # On the kept channels, as good as GMCA run on those channels alone would be
    # (both about 3e-3 rad); the interpolated rows add their own error.
    keep = [j for j in range(16) if j not in (5, 9)]
    assert angles(A0[keep], res.A[keep]).max() < 0.01
    assert angles(A0, res.A).max() < 0.05


def test_nan_border_cropped_and_reported():
    X, A0, S0, sigma = mixture(2)
    X[:, :6] = np.nan
    X[:, :, -3:] = np.nan
    res = gmca(X, 3, noise_std=sigma, random_state=0)
    assert res.missing.box == ((6, 64), (0, 61))
    assert res.missing.dropped_channels == ()
    assert np.all(np.isnan(res.S[:, :6])) and np.all(np.isnan(res.S[:, :, -3:]))
    assert np.all(np.isfinite(res.S[:, 6:, :-3]))
    assert angles(A0, res.A).max() < 0.01
    assert "cropped to [6:64] x [0:61]" in str(res.missing)


def test_one_dimensional_data_cropped():
    X, A0, _, sigma = mixture(0)
    X = X.reshape(16, -1)[:, :2048].copy()
    X[:, :100] = np.nan
    res = gmca(X, 3, noise_std=sigma, random_state=0)
    assert res.missing.box == ((100, 2048),)
    assert np.all(np.isnan(res.S[:, :100])) and np.all(np.isfinite(res.S[:, 100:]))


def test_masked_array_and_mask_argument():
    X, _, _, sigma = mixture(0)
    m = holes(X.shape, 0.03, 0)
    m[:, :4] = True
    with_nan = X.copy()
    with_nan[m] = np.nan
    ref = gmca(with_nan, 3, noise_std=sigma, random_state=0)
    for kwargs in ({"X": np.ma.masked_array(X, mask=m)}, {"X": X, "mask": m}):
        res = gmca(kwargs.pop("X"), 3, noise_std=sigma, random_state=0, **kwargs)
        assert res.missing.n_missing == int(m.sum())
        np.testing.assert_array_equal(res.A, ref.A)
        np.testing.assert_array_equal(res.S, ref.S)


def test_complete_data_bit_identical_with_empty_mask():
    X, _, _, sigma = mixture(3, side=32)
    ref = gmca(X, 3, noise_std=sigma, random_state=0)
    assert ref.missing is None and ref.fixed == []
    for res in (gmca(X, 3, noise_std=sigma, random_state=0,
                     mask=np.zeros(X.shape, bool)),
                gmca(np.ma.masked_array(X, mask=False), 3, noise_std=sigma,
                     random_state=0)):
        assert res.missing is None
        np.testing.assert_array_equal(res.A, ref.A)
        np.testing.assert_array_equal(res.S, ref.S)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X": np.full((5, 8, 8), np.inf)}, ValueError, "inf"),
        ({"mask": np.zeros((5, 8, 7), bool)}, ValueError, "mask must have X's shape"),
        ({"mask": np.zeros((5, 8, 8))}, TypeError, "mask must be a boolean array"),
        ({"mask": np.ones((5, 8, 8), bool)}, ValueError, "no observed voxel"),
    ],
)
def test_missing_data_errors(kwargs, error, match):
    args = {"X": np.random.default_rng(0).random((5, 8, 8)), **kwargs}
    if match == "inf":
        args["X"][0, 0, 0] = np.nan  # inf is refused even beside missing voxels
    with pytest.raises(error, match=match):
        separate(args.pop("X"), 3, **args)
