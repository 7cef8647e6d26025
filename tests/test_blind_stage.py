"""separate(..., blind_stage=False): start from A_init without the blind stage."""

import numpy as np
import pytest
from test_solver import binned, casa_models, matched_sad, sparse_problem  # noqa: F401
from test_stream import _compare

from sgmca_fast import _poisson, datasets, gmca, separate, starlet
from sgmca_fast._validation import InputError, InputTypeError


def soft(x, t):
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def test_gmca_without_blind_stage_is_the_sources_given_A():
    """White noise of known std: S is the starlet planes of pinv(A) X soft-
    thresholded at t / (|first| / t + 1), ``first`` the planes soft-thresholded
    at t (the reweighting), plus the coarse plane, summed back; A is A_init."""
    X, A0, _, sigma = sparse_problem(J=10, n_src=3, size=32, snr_db=30.0, seed=2)
    k, nscales = 3.0, 2
    res = gmca(X, 3, noise_std=sigma, A_init=A0, blind_stage=False, k=k,
               nscales=nscales)
    M = np.linalg.pinv(A0)
    planes = starlet.forward(np.einsum("ij,jhw->ihw", M, X), nscales)
    norms = starlet.scale_norms(X.shape[1:], nscales)
    row_std = sigma * np.sqrt((M**2).sum(axis=1))  # the noise of each row of M X
    for s in range(nscales):
        t = k * row_std[:, None, None] * norms[s]
        first = soft(planes[:, s], t)
        planes[:, s] = soft(planes[:, s], t / (np.abs(first) / t + 1.0))
    expected = planes.sum(axis=1)  # the starlet's inverse: the sum of its planes
    np.testing.assert_allclose(res.S, expected, rtol=1e-9,
                               atol=1e-10 * np.abs(expected).max())
    np.testing.assert_allclose(res.A, A0, rtol=0, atol=1e-15)
    assert res.n_iter == {"blind": 0, "semiblind": 0}
    assert res.history["delta_S"] == []


def test_sgmca_refines_a_given_A_without_the_blind_stage(casa, casa_models):  # noqa: F811
    fam = casa.families
    mix = datasets.make_mixture(
        binned(casa.sources, 3),
        [fam["sync"]["valid"], fam["thermal"]["valid"], fam["gauss"]["valid"],
         fam["gauss"]["valid"]], snr_db=40.0, random_state=0)
    models = {casa_models["sync"]: 1, casa_models["thermal"]: 1,
              casa_models["gauss"]: 2}
    # a perturbed truth: within reach of the semi-blind stage, not the answer
    rng = np.random.default_rng(0)
    A_start = np.abs(mix.A0 + 0.05 * rng.standard_normal(mix.A0.shape))
    res = separate(mix.X, 4, models, noise_std=mix.noise_std, A_init=A_start,
                   blind_stage=False)
    assert res.n_iter["blind"] == 0 and res.n_iter["semiblind"] >= 2
    assert set(res.history["stage"]) == {"semiblind"}
    assert matched_sad(mix.A0, res.A) > matched_sad(mix.A0, A_start) + 3
    assert matched_sad(mix.A0, res.A) > 18


def test_streamed_path_skips_the_blind_stage_too():
    X, A0, _, sigma = sparse_problem(J=16, n_src=3, size=64, snr_db=40.0, seed=3)
    kw = {"noise_std": sigma, "subspace": 5, "A_init": A0, "blind_stage": False,
          "random_state": 1}
    full = separate(X, 3, **kw)
    streamed = separate(X, 3, stream=True, **kw)
    assert streamed.n_iter["blind"] == 0
    _compare(full, streamed)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"blind_stage": False}, InputError, "give A_init"),
    ({"blind_stage": False, "A_init": "A", "starts": 2}, InputError,
     "starts=2 needs blind_stage=True"),
    ({"blind_stage": "no", "A_init": "A"}, InputTypeError, "blind_stage"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_blind_stage_errors(kwargs, error, match, stream):
    X, A0, _, sigma = sparse_problem(J=8, n_src=2, size=32, seed=4)
    if kwargs.get("A_init") == "A":
        kwargs = {**kwargs, "A_init": A0}
    with pytest.raises(error, match=match):
        separate(X, 2, noise_std=sigma, subspace=4 if stream else None,
                 stream=stream or None, **kwargs)


class RecordingSolver:
    """Records the keywords of each pass; returns a fixed A and S."""

    def __init__(self, A, S):
        self.A, self.S, self.calls = A, S, []

    def __call__(self, X, n_sources, models, **kwargs):
        from sgmca_fast._solver import Separation

        self.calls.append(kwargs)
        return Separation(A=self.A, S=self.S, mapping=[None] * self.A.shape[1],
                          model_fit=[None] * self.A.shape[1], n_iter={},
                          history={}, timings={"total": 1.0})


@pytest.mark.parametrize("models, max_iter, later_blind", [
    ({"a model": 2}, 50, False),  # sGMCA: the semi-blind stage refines pass 1's A
    (None, 50, True),  # GMCA: nothing after the blind stage would refine A
    ({"a model": 2}, 0, True),  # no semi-blind iterations: GMCA again
])
def test_poisson_later_passes_skip_the_blind_stage_with_models(models, max_iter,
                                                               later_blind):
    rng = np.random.default_rng(1)
    A, S = rng.random((4, 2)), rng.random((2, 6, 7))
    solve = RecordingSolver(A, S)
    _poisson.separate_counts(solve, rng.poisson(3.0, (4, 6, 7)), 2, models,
                             passes=3, max_iter_semiblind=max_iter, starts=1,
                             final_sources=False)
    assert solve.calls[0].get("blind_stage", True) is True
    assert [c.get("blind_stage", True) for c in solve.calls[1:]] == [later_blind] * 2
