"""Several blind starts (``separate(starts=N)``, sgmca_fast._starts)."""

import naive
import numpy as np
import pytest

from sgmca_fast import _starts, gmca, metrics, separate, starlet
from sgmca_fast._sources import SourceStep
from sgmca_fast._stages import Problem
from sgmca_fast._validation import InputError


def two_lines(seed, d):
    """Two Gaussian lines d channels apart and a slope, sparse sources, 60 dB.

    32 x 32 pixels, 60 coefficients per source (:func:`sparse_lines`). With d =
    2.5 and seed 1, GMCA from the PCA start merges the two lines.
    """
    return sparse_lines(seed, d, size=32, n=60)


def per_source_sad(A0, A):
    return metrics.sad(A0, metrics.match(A0, A)[0], per_source=True)


def test_a_start_that_does_not_merge_the_lines_wins():
    X, A0, sigma = two_lines(1, 2.5)
    single = gmca(X, 3, noise_std=sigma, random_state=0)
    assert per_source_sad(A0, single.A).min() < 5  # the PCA start merges
    res = gmca(X, 3, noise_std=sigma, random_state=0, starts=2)
    record = res.history["starts"]
    assert [r["name"] for r in record] == ["pca", "pursuit"]
    assert [r["chosen"] for r in record] == [False, True]
    assert record[1]["objective"] < record[0]["objective"]
    assert per_source_sad(A0, res.A).min() > 15
    # the PCA start's run is the single run, bit for bit
    np.testing.assert_array_equal(record[0]["A"], single.A)
    np.testing.assert_array_equal(record[1]["A"], res.A)
    assert res.n_iter["blind"] == record[1]["n_iter"]
    assert len(res.history["delta_S"]) == record[1]["n_iter"]


def test_when_the_pca_start_wins_the_result_is_the_single_run():
    X, A0, sigma = two_lines(3, 1.5)
    single = gmca(X, 3, noise_std=sigma, random_state=0)
    res = gmca(X, 3, noise_std=sigma, random_state=0, starts=2)
    assert res.history["starts"][0]["chosen"]
    assert "starts" not in single.history
    np.testing.assert_array_equal(res.A, single.A)
    np.testing.assert_array_equal(res.S, single.S)
    for key in ("stage", "delta_S", "delta_A", "cond_A"):
        assert res.history[key] == single.history[key]


def small_problem(seed=0, J=6, n=2, size=16, noise=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((J, size, size)) + 3.0 * (rng.random((J, size, size)) > 0.9)
    Xw = starlet.forward(X, 2).reshape(J, 3, -1)
    Xd = Xw[:, :2].reshape(J, -1)
    sigma = rng.uniform(0.5, 1.5, J) if noise else None
    norms = starlet.scale_norms((size, size), 2)
    step = SourceStep(Xw, sigma, norms, 1.5, True, False)
    pb = Problem(Xd, Xd @ Xd.T, step, n, 0.5, True, np.random.default_rng(1))
    return pb, Xw, sigma, norms[:2], rng


def test_objective_against_numpy():
    pb, Xw, sigma, norms, rng = small_problem()
    A = rng.random((6, 2))
    A /= np.linalg.norm(A, axis=0)
    got = _starts.objective(pb, A)
    W = np.diag(1.0 / sigma**2)
    M = np.linalg.solve(A.T @ W @ A, A.T @ W)
    row_std = np.sqrt((M**2) @ sigma**2)  # (I,)
    obj = 0.0
    res = 0.0
    for s in range(2):
        std_s = row_std * norms[s]
        Ss = naive.threshold(M @ Xw[:, s], 1.5 * std_s)
        R = Xw[:, s] - A @ Ss
        res += 0.5 * np.sum((R / (sigma[:, None] * norms[s])) ** 2)
        obj += 1.5 * np.sum(np.abs(Ss) / std_s[:, None])
    cos = abs(A[:, 0] @ A[:, 1])
    np.testing.assert_allclose(got["objective"], obj + res, rtol=1e-10)
    np.testing.assert_allclose(got["residual"], res / Xw[:, :2].size, rtol=1e-10)
    np.testing.assert_allclose(got["max_cos"], cos, rtol=1e-12)


def test_pursuit_start_against_numpy():
    pb, Xw, _, _, _ = small_problem(seed=3, n=3)
    _, starts = _starts.start_matrices(pb, np.eye(6)[:, :3], 2)
    R = Xw[:, :2].reshape(6, -1).copy()
    cols = []
    for _ in range(3):  # successive projections, the residual deflated each time
        c = int(np.argmax(np.sum(R**2, axis=0)))
        cols.append(Xw[:, :2].reshape(6, -1)[:, c].copy())
        u = R[:, c] / np.linalg.norm(R[:, c])
        R -= np.outer(u, u @ R)
    A = np.column_stack(cols)
    A *= np.where(A.sum(axis=0) < 0, -1.0, 1.0)
    A = np.maximum(A, 0.0)
    np.testing.assert_allclose(starts[1], A / np.linalg.norm(A, axis=0), atol=1e-12)


def test_random_starts_come_from_the_run_s_rng():
    pb, *_ = small_problem(n=3)
    first = np.linalg.qr(np.random.default_rng(9).standard_normal((6, 3)))[0]
    names, a = _starts.start_matrices(pb, first, 4)
    assert names == ["pca", "pursuit", "random", "random"]
    pb.rng = np.random.default_rng(1)
    _, b = _starts.start_matrices(pb, first, 4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a[2], a[3])
    for A in a[1:]:
        assert np.all(A >= 0)
        np.testing.assert_allclose(np.linalg.norm(A, axis=0), 1.0)


def _no_call(info):
    raise AssertionError("validation must come before any iteration")


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"starts": 0}, InputError, "starts must be at least 1"),
        ({"starts": 2.0}, TypeError, "starts must be an integer"),
        ({"starts": True}, TypeError, "starts must be an integer"),
        ({"starts": 2, "mask": np.eye(8, dtype=bool)[None].repeat(5, 0)},
         InputError, "starts=2 needs complete data"),
        ({"starts": 3, "fixed": {0: np.ones(5)}}, InputError,
         "starts=3 needs complete data and no fixed"),
        ({"starts": 3, "start_sample": 0}, InputError,
         "start_sample must be at least 1"),
        ({"start_sample": 8.0}, TypeError, "start_sample must be an integer"),
        ({"starts": 3, "start_iter": 100}, InputError,
         "start_iter must be at most 99"),
        ({"starts": 3, "start_iter": 0}, InputError, "start_iter must be at least 1"),
        ({"starts": 3, "start_iter": 20, "start_sample": 8}, InputError,
         "start_iter and start_sample > 1 are two kinds"),
    ],
)
def test_starts_is_checked_before_any_work(kwargs, error, match):
    X = np.random.default_rng(0).random((5, 8, 8))
    with pytest.raises(error, match=match):
        separate(X, 3, callback=_no_call, **kwargs)


def sparse_lines(seed, d, size=64, n=400):
    """Two Gaussian lines d channels apart and a slope, sparse sources, 60 dB.

    ``size`` x ``size`` pixels, ``n`` coefficients per source. With d = 2.5 and
    seed 39 (the defaults' sizes), GMCA from the PCA start merges the two lines
    (on all the pixels and on every 8th: 512 pixels a scale, the trial of the
    start).

    Returns X (16, size, size), A0 (16, 3), the noise std.
    """
    rng = np.random.default_rng(seed)
    J = 16
    x = np.arange(J)
    c0 = rng.uniform(4, J - 6)
    A0 = np.column_stack([np.exp(-0.5 * ((x - c0) / 2.0) ** 2),
                          np.exp(-0.5 * ((x - c0 - d) / 2.0) ** 2),
                          np.linspace(1, 0.2, J)])
    A0 /= np.linalg.norm(A0, axis=0)
    S0 = np.zeros((3, size, size))
    for i in range(3):
        idx = rng.choice(size * size, size=n, replace=False)
        S0[i].flat[idx] = rng.exponential(1.0, n) + 0.5
    X = np.einsum("ji,ihw->jhw", A0, S0)
    sigma = np.sqrt(np.mean(X**2) * 1e-6)
    return X + sigma * rng.standard_normal(X.shape), A0, sigma


def _count_updates(monkeypatch):
    """Count the source updates by the number of pixels they see."""
    calls = {}
    original = SourceStep.__call__

    def counted(self, A, K, prev, out):
        P = out.shape[-1]
        calls[P] = calls.get(P, 0) + 1
        return original(self, A, K, prev, out)

    monkeypatch.setattr(SourceStep, "__call__", counted)
    return calls


def test_cheap_trials_pick_a_start_that_does_not_merge_the_lines(monkeypatch):
    X, A0, sigma = sparse_lines(39, 2.5)
    single = gmca(X, 3, noise_std=sigma, random_state=0)
    assert per_source_sad(A0, single.A).min() < 5  # the PCA start merges
    calls = _count_updates(monkeypatch)
    res = gmca(X, 3, noise_std=sigma, random_state=0, starts=3, start_sample=8)
    record = res.history["starts"]
    assert [r["name"] for r in record] == ["pca", "pursuit", "random"]
    assert sum(r["chosen"] for r in record) == 1 and not record[0]["chosen"]
    assert per_source_sad(A0, res.A).min() > 15
    # the PCA trial merges too: the sample sees what the whole data does
    assert per_source_sad(A0, record[0]["A"]).min() < 5
    # every 8th of the 64 * 64 pixels, the same ones at both scales
    assert [r["pixels"] for r in record] == [512] * 3
    # the cost: the trials' iterations and one update each to score them on
    # the sample; on all the data the winner's blind stage and the final stage
    assert calls == {512: sum(r["n_iter"] for r in record) + 3,
                     4096: res.n_iter["blind"] + 1}
    assert len(res.history["delta_S"]) == res.n_iter["blind"]
    assert set(res.history["stage"]) == {"blind"}


def test_start_sample_does_nothing_with_one_start():
    X, _, sigma = sparse_lines(11, 2.5, size=32, n=100)
    a = gmca(X, 3, noise_std=sigma, random_state=0)
    b = gmca(X, 3, noise_std=sigma, random_state=0, start_sample=8)
    np.testing.assert_array_equal(a.A, b.A)
    np.testing.assert_array_equal(a.S, b.S)
    assert a.history["delta_S"] == b.history["delta_S"]


def test_trial_problem_against_numpy():
    pb, Xw, sigma, norms, rng = small_problem(seed=2, n=2)
    trial = _starts.trial_problem(pb, 3)
    np.testing.assert_array_equal(trial.Xd, Xw[:, :2, ::3].reshape(6, -1))
    A = rng.random((6, 2))
    A /= np.linalg.norm(A, axis=0)
    out = np.empty(trial.detail_shape())
    trial.step(A, 1.0, None, out)
    W = np.diag(1.0 / sigma**2)
    M = np.linalg.solve(A.T @ W @ A, A.T @ W)
    row_std = np.sqrt((M**2) @ sigma**2)
    for s in range(2):
        want = naive.threshold(M @ Xw[:, s, ::3], 1.5 * row_std * norms[s])
        np.testing.assert_allclose(out[:, s], want, rtol=1e-10, atol=1e-12)
    assert trial.rng is pb.rng and trial.xx is pb.xx


def test_cheap_trials_in_the_channel_subspace_and_streamed(tmp_path):
    X, A0, sigma = sparse_lines(39, 2.5)
    single = gmca(X, 3, noise_std=sigma, random_state=0, subspace=6)
    assert per_source_sad(A0, single.A).min() < 5
    res = gmca(X, 3, noise_std=sigma, random_state=0, subspace=6, starts=3,
               start_sample=8)
    assert per_source_sad(A0, res.A).min() > 15
    assert [r["pixels"] for r in res.history["starts"]] == [512] * 3
    np.save(tmp_path / "x.npy", X)
    streamed = gmca(np.load(tmp_path / "x.npy", mmap_mode="r"), 3, noise_std=sigma,
                    random_state=0, subspace=6, starts=3, start_sample=8)
    assert streamed.subspace["streamed"]
    assert ([r["chosen"] for r in streamed.history["starts"]]
            == [r["chosen"] for r in res.history["starts"]])
    np.testing.assert_allclose(streamed.A, res.A, atol=1e-8)


def test_short_trials_continue_the_winner_to_its_uninterrupted_run(monkeypatch):
    X, A0, sigma = sparse_lines(39, 2.5)
    full = gmca(X, 3, noise_std=sigma, random_state=0, starts=3)
    calls = _count_updates(monkeypatch)
    res = gmca(X, 3, noise_std=sigma, random_state=0, starts=3, start_iter=40)
    record = res.history["starts"]
    assert [r["n_iter"] for r in record] == [40, 40, 40]
    assert [r["pixels"] for r in record] == [4096] * 3
    i = [r["chosen"] for r in record].index(True)
    assert i != 0 and per_source_sad(A0, res.A).min() > 15
    assert per_source_sad(A0, record[0]["A"]).min() < 5  # PCA merges by then
    # the winner's stage is its whole run from its start, bit for bit
    np.testing.assert_array_equal(res.A, full.history["starts"][i]["A"])
    assert res.n_iter["blind"] == full.history["starts"][i]["n_iter"]
    assert len(res.history["delta_S"]) == res.n_iter["blind"]
    # 3 trials of 40, a score each, the winner's other iterations, the final stage
    assert calls == {4096: 3 * 40 + 3 + (res.n_iter["blind"] - 40) + 1}
