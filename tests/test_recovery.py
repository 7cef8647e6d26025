"""The recovery rules of the semi-blind stage, on constructed spectra and energies."""

import numpy as np
import pytest

from sgmca_fast import _recovery


def unit_cols(a):
    return a / np.linalg.norm(a, axis=0)


@pytest.fixture(scope="module")
def three_sources():
    """Known spectra A0 (20, 3) and the detail energy xx = Xd Xd^T of their mix."""
    rng = np.random.default_rng(8)
    A0 = unit_cols(np.abs(rng.standard_normal((20, 3))))
    S0 = rng.standard_normal((3, 5000)) * [[1.0], [0.8], [0.6]]
    Xd = A0 @ S0 + 0.01 * rng.standard_normal((20, 5000))
    decoys = np.abs(rng.standard_normal((30, 20)))
    decoys /= np.linalg.norm(decoys, axis=1, keepdims=True)
    return A0, Xd @ Xd.T, decoys


def test_a_duplicated_column_is_replaced_by_the_lost_spectrum(three_sources):
    A0, xx, decoys = three_sources
    # The estimate describes source 0 twice (cos > 0.99) and misses source 2.
    A = A0[:, [0, 1, 0]].copy()
    A[:, 2] = 0.999 * A[:, 2] + 0.02 * A0[:, 1]
    A[:, 2] /= np.linalg.norm(A[:, 2])
    assert abs(A[:, 0] @ A[:, 2]) > 0.99
    candidates = np.vstack([decoys, A0[:, 2]])
    col = _recovery.reseed_lost_source(A, xx, candidates)
    assert col in (0, 2)
    np.testing.assert_allclose(A[:, col], A0[:, 2])
    other = 2 if col == 0 else 0
    np.testing.assert_array_equal(A[:, 1], A0[:, 1])  # the others untouched
    assert abs(A[:, other] @ A0[:, 0]) > 0.99


def test_distinct_columns_are_left_alone(three_sources):
    A0, xx, decoys = three_sources
    B = A0.copy()
    assert _recovery.reseed_lost_source(B, xx, np.vstack([decoys, A0[:, 2]])) is None
    np.testing.assert_array_equal(B, A0)


def test_no_swap_when_no_candidate_carries_more_than_noise():
    # Two sources, both present once each, plus a duplicate of the first: every
    # candidate direction outside their span holds only noise, so nothing moves.
    rng = np.random.default_rng(3)
    A0 = unit_cols(np.abs(rng.standard_normal((15, 2))))
    Xd = A0 @ rng.standard_normal((2, 4000)) + 1e-3 * rng.standard_normal((15, 4000))
    A = A0[:, [0, 1, 0]].copy()
    decoys = unit_cols(np.abs(rng.standard_normal((15, 40)))).T
    before = A.copy()
    assert _recovery.reseed_lost_source(A, Xd @ Xd.T, decoys) is None
    np.testing.assert_array_equal(A, before)
    assert _recovery.reseed_lost_source(A, Xd @ Xd.T, np.zeros((0, 15))) is None


def test_pursuit_recovers_the_spectra_that_carry_the_energy(three_sources):
    A0, xx, decoys = three_sources
    # Model 0 holds source 0 among decoys, model 1 holds sources 1 and 2.
    samples = [np.vstack([decoys[:10], A0[:, 0]]),
               np.vstack([A0[:, 1], decoys[10:], A0[:, 2]])]
    A = _recovery.model_pursuit(xx, samples, [1, 2], 3, nonneg_A=True)
    assert A.shape == (20, 3)
    # The brightest first; each column is exactly one of the true spectra.
    np.testing.assert_allclose(A[:, 0], A0[:, 0])
    found = sorted(int(np.argmax(np.abs(A0.T @ A[:, c]))) for c in range(3))
    assert found == [0, 1, 2]
    for c in range(3):
        assert np.max(np.abs(A0.T @ A[:, c])) == pytest.approx(1.0, abs=1e-12)


def test_pursuit_fills_unmodelled_columns_with_the_leading_residual(three_sources):
    A0, xx, decoys = three_sources
    samples = [np.vstack([decoys, A0[:, 0]])]
    A = _recovery.model_pursuit(xx, samples, [1], 3, nonneg_A=False)
    np.testing.assert_allclose(np.linalg.norm(A, axis=0), 1.0)
    np.testing.assert_allclose(A[:, 0], A0[:, 0])
    # Columns 1 and 2 span what is left: the residual energy off span(A0[:, 0]).
    q = np.linalg.qr(A0[:, :1])[0]
    rest = xx - q @ (q.T @ xx)
    rest -= (rest @ q) @ q.T
    top2 = np.linalg.eigh(rest)[1][:, -2:]
    proj = top2 @ (top2.T @ A[:, 1:])
    np.testing.assert_allclose(proj, A[:, 1:], atol=1e-6)


def test_doubtful_fit_rule():
    assert _recovery.worst_fit([None, None]) == 0.0
    assert _recovery.worst_fit([0.01, None, 0.2]) == 0.2
    assert not _recovery.is_doubtful([0.01, None, 0.049])
    assert _recovery.is_doubtful([0.01, None, 0.051])
    assert not _recovery.is_doubtful([None])


class _Model:
    def __init__(self, n_anchors, spectra=None):
        self.n_anchors = n_anchors
        if spectra is not None:
            self.training_spectra = spectra

    def generate(self, lam):
        # A linear "generator": the anchors are the first N unit vectors.
        return np.column_stack([lam, np.ones(len(lam))])


def test_manifold_samples_are_unit_rows():
    train = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])
    out = _recovery.manifold_samples(_Model(2, train), np.random.default_rng(0))
    np.testing.assert_allclose(out, [[0.6, 0.8], [1.0, 0.0]])
    # Without training spectra: the generator on a grid of latent weights
    # from -0.25 to 1.25 per anchor.
    grid = _recovery.manifold_samples(_Model(2), np.random.default_rng(0), n_max=7)
    lam = np.linspace(-0.25, 1.25, 7)
    g = np.column_stack([lam, 1 - lam, np.ones(7)])
    np.testing.assert_allclose(grid, g / np.linalg.norm(g, axis=1, keepdims=True))
