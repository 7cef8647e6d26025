"""Spectra held fixed in the solver (``fixed={source: spectrum}``)."""

from types import SimpleNamespace

import numpy as np
import pytest
from test_missing import angles, mixture  # tests/ is on pytest's path

from sgmca_fast import _recovery, gmca, separate


def test_fixed_spectrum_bit_identical_and_others_as_good():
    worse = []
    for seed in range(3):
        X, A0, S0, sigma = mixture(seed)
        given = 2.5 * A0[:, 1]  # any scale: the source absorbs it
        res = gmca(X, 3, noise_std=sigma, random_state=0, fixed={1: given})
        assert res.A[:, 1].tobytes() == given.tobytes()
        assert res.fixed == [1]
        assert res.mapping == [None, "fixed", None]
        free = gmca(X, 3, noise_std=sigma, random_state=0)
        # The other two sources, matched to their true spectra (numpy angles).
        others = angles(A0[:, [0, 2]], res.A[:, [0, 2]]).max()
        without = np.sort(angles(A0, free.A))[-2:].max()
        worse.append(others - without)
        # S absorbs the scale: the source is the true one over 2.5.
        s1 = res.S[1].ravel()
        ref = S0[1].ravel() / 2.5
        assert np.corrcoef(s1, ref)[0, 1] > 0.99
    assert np.median(worse) <= 1e-3


def test_model_pursuit_skips_given_spectra():
    rng = np.random.default_rng(0)
    spectra = np.abs(rng.standard_normal((20, 3)))
    spectra /= np.linalg.norm(spectra, axis=0)
    coeffs = rng.standard_normal((3, 500)) * np.array([[10.0], [5.0], [3.0]])
    Xd = spectra @ coeffs
    decoys = np.abs(rng.standard_normal((30, 20)))
    decoys /= np.linalg.norm(decoys, axis=1, keepdims=True)
    samples = [np.vstack([decoys, spectra[:, 1]])]
    A = _recovery.model_pursuit(Xd @ Xd.T, samples, [1], 2, nonneg_A=False,
                                given=spectra[:, :1])
    assert A.shape == (20, 2)
    np.testing.assert_allclose(A[:, 0], spectra[:, 1])  # the model's best sample
    # The free column lies in the data's span, off the given spectrum.
    q = np.linalg.qr(spectra)[0]
    np.testing.assert_allclose(q @ (q.T @ A[:, 1]), A[:, 1], atol=1e-8)


def test_reseed_never_replaces_a_protected_column():
    rng = np.random.default_rng(1)
    A0 = np.abs(rng.standard_normal((15, 3)))
    A0 /= np.linalg.norm(A0, axis=0)
    Xd = A0 @ (rng.standard_normal((3, 400)) * 5)
    A = np.column_stack([3.0 * A0[:, 0], A0[:, 0], A0[:, 1]])  # column 1 duplicates 0
    col = _recovery.reseed_lost_source(A, Xd @ Xd.T, A0[:, 2][None, :],
                                       protected=[0])
    assert col == 1
    np.testing.assert_array_equal(A[:, 0], 3.0 * A0[:, 0])
    np.testing.assert_array_equal(A[:, 1], A0[:, 2])


def _fake(name):
    """A stand-in model: the checks must refuse before any method is called."""
    return SimpleNamespace(name=name, n_channels=5, fast_project=None, project=None)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"fixed": [np.ones(5)]}, TypeError, "fixed must be a dict"),
        ({"fixed": {3: np.ones(5)}}, ValueError, "fixed names source 3"),
        ({"fixed": {0: np.ones(4)}}, ValueError, r"fixed\[0\] must have one value"),
        ({"fixed": {0: np.r_[np.nan, np.ones(4)]}}, ValueError, "NaN or inf"),
        ({"fixed": {1: np.zeros(5)}}, ValueError, r"fixed\[1\] is all zero"),
        ({"fixed": {0: np.ones(5)}, "models": [(_fake("m"), 1)],
          "mapping": {0: "m"}}, ValueError, "both in fixed and in mapping"),
        ({"fixed": {0: np.ones(5), 1: np.ones(5)},
          "models": [(_fake("m"), 2)]}, ValueError,
         "fixed holds 2 source.* the models take 2, more than n_sources = 3"),
    ],
)
def test_fixed_errors(kwargs, error, match):
    X = np.random.default_rng(0).random((5, 8, 8))
    with pytest.raises(error, match=match):
        separate(X, 3, **kwargs)


def test_debiased_held_source_gives_the_exact_free_columns():
    """Noise-free X = A S: a soft-thresholded held source, debiased on its
    support, lets the mixing update return the true free columns; with the
    shrunk source the free columns absorb what the shrinkage left out."""
    from sgmca_fast._fixed import Held
    from sgmca_fast._sources import weighted_pinv

    rng = np.random.default_rng(4)
    J, n = 12, 4000
    A = np.abs(rng.standard_normal((J, 3)))
    A /= np.linalg.norm(A, axis=0)
    S = np.where(rng.random((3, n)) < 0.2, 2 + rng.exponential(size=(3, n)), 0.0)
    S[1] += 0.5 * S[0]  # the held source overlaps the first one
    X = A @ S
    shrunk = S.copy()
    shrunk[1] = np.sign(S[1]) * np.maximum(np.abs(S[1]) - 1.0, 0)  # soft, t = 1 < 2
    held = Held({1: A[:, 1]})
    debiased = held.debiased(shrunk, weighted_pinv(A), X)
    np.testing.assert_allclose(debiased[1], S[1], atol=1e-10)
    np.testing.assert_array_equal(debiased[[0, 2]], shrunk[[0, 2]])
    np.testing.assert_allclose(held.mixing(X, debiased), A, atol=1e-10)
    assert np.abs(held.mixing(X, shrunk) - A).max() > 1e-2
