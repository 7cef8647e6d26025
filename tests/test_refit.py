"""The final refit of the spectra (``separate(..., refit_spectra=True)``)."""

import numpy as np
import pytest
from test_missing import angles, mixture  # tests/ is on pytest's path

from sgmca_fast import gmca, separate
from sgmca_fast._sources import SourceStep, mixing_ls
from sgmca_fast._stages import Problem, State, refit_stage
from sgmca_fast._validation import InputError


def _problem(seed=0, J=10, n_sources=3, nscales=2, P=3000, sigma=0.2):
    """A Problem on noise-free coefficients Xw = A S of sparse sources (S >= 2)."""
    rng = np.random.default_rng(seed)
    A = np.abs(rng.standard_normal((J, n_sources)))
    A /= np.linalg.norm(A, axis=0)
    Sw = np.where(rng.random((n_sources, nscales + 1, P)) < 0.15,
                  2 + rng.exponential(size=(n_sources, nscales + 1, P)), 0.0)
    Sw[1] += 0.5 * Sw[0]  # overlapping sources: shrinkage leaks between them
    Xw = np.einsum("ji,isp->jsp", A, Sw)
    step = SourceStep(Xw, np.full(J, sigma), np.ones(nscales + 1), 3.0, True, False)
    Xd = Xw[:, :nscales].reshape(J, -1)
    pb = Problem(Xd, Xd @ Xd.T, step, n_sources, 0.5, True, rng)
    detail = Sw[:, :nscales].copy()
    state = State(A.copy(), detail, np.zeros_like(detail), [None] * n_sources,
                  [None] * n_sources)
    return pb, state, A, Sw[:, :nscales].reshape(n_sources, -1)


def test_refit_from_the_true_spectra_gives_them_back_exactly():
    """Noise-free data, A = the truth: the debiased sources are the true ones on
    their support, so the least-squares spectra are exactly the true ones; the
    soft-thresholded (shrunk) sources alone would give biased spectra."""
    pb, state, A0, S_true = _problem()
    state, moved = refit_stage(pb, state)
    np.testing.assert_allclose(state.A, A0, atol=1e-10)
    np.testing.assert_allclose(moved, 0.0, atol=1e-4)
    shrunk = state.detail.reshape(A0.shape[1], -1)  # the thresholded sources
    assert np.abs(shrunk - S_true).max() > 0.1  # they are shrunk ...
    biased = mixing_ls(pb.Xd, shrunk)
    biased /= np.linalg.norm(biased, axis=0)
    assert np.abs(biased - A0).max() > 1e-3  # ... and give biased spectra


def test_refit_moves_a_perturbed_column_towards_the_truth_and_reports_the_angle():
    pb, state, A0, _ = _problem(seed=1)
    A = A0.copy()
    A[:, 2] += 0.05 * np.abs(np.random.default_rng(2).standard_normal(A.shape[0]))
    A /= np.linalg.norm(A, axis=0)
    state.A = A.copy()
    state, moved = refit_stage(pb, state)
    assert angles(A0, state.A).max() < angles(A0, A).max() / 2
    # the reported angles: numpy's, between the columns before and after
    expected = np.degrees(np.arccos(np.clip(np.sum(A * state.A, axis=0), -1, 1)))
    np.testing.assert_allclose(moved, expected, atol=1e-9)


def test_refit_spectra_in_separate_keeps_held_spectra_and_is_off_by_default():
    X, A0, S0, sigma = mixture(0)
    plain = gmca(X, 3, noise_std=sigma, random_state=0)
    assert "refit" not in plain.history
    given = A0[:, 1].copy()
    res = gmca(X, 3, noise_std=sigma, random_state=0, fixed={1: given},
               refit_spectra=True)
    assert res.A[:, 1].tobytes() == given.tobytes()
    assert len(res.history["refit"]) == 3
    assert res.history["refit"][1] == pytest.approx(0.0, abs=1e-6)
    refit = gmca(X, 3, noise_std=sigma, random_state=0, refit_spectra=True)
    # on this well-separated mixture the refit is at least as close to the truth
    assert angles(A0, refit.A).max() <= angles(A0, plain.A).max() + 1e-3


def test_refit_spectra_must_be_a_boolean():
    X, _, _, sigma = mixture(0)
    with pytest.raises(InputError, match="refit_spectra"):
        separate(X, 3, noise_std=sigma, refit_spectra="yes")
