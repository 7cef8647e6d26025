"""Photon counts: separate(..., noise="poisson") and --noise poisson."""

import json

import numpy as np
import pytest

from sgmca_fast import _poisson, cli, metrics, separate
from sgmca_fast._validation import InputError


def sad(A0, A):
    """SAD (dB) after matching the columns."""
    return metrics.sad(A0, metrics.match(A0, A)[0])


def blob_counts(seed, photons=3e4, J=8, n_src=2, size=32):
    """Counts of a mixture of Gaussian blobs of a wide range of brightness.

    Returns counts (J, size, size) int64, A0 (J, n_src), the intensity.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    S0 = np.zeros((n_src, size, size))
    for i in range(n_src):
        for _ in range(6):
            cy, cx = rng.uniform(3, size - 3, 2)
            width = rng.uniform(0.7, 2.0)
            S0[i] += 10 ** rng.uniform(0, 3) * np.exp(
                -((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * width**2))
    A0 = rng.random((J, n_src)) ** 2 + 0.02
    A0 /= np.linalg.norm(A0, axis=0)
    lam = np.einsum("ji,ihw->jhw", A0, S0)
    lam *= photons / lam.sum()
    return rng.poisson(lam), A0, lam


def box_mean_loops(X, box):
    """Each channel's box mean with mirrored borders, by explicit loops."""
    J, H, W = X.shape
    r = box // 2
    out = np.empty(X.shape)

    def mirror(i, n):  # scipy's "mirror": d c b | a b c d | c b a
        i = abs(i)
        return 2 * (n - 1) - i if i > n - 1 else i

    for j in range(J):
        for y in range(H):
            for x in range(W):
                vals = [X[j, mirror(y + dy, H), mirror(x + dx, W)]
                        for dy in range(-r, r + 1) for dx in range(-r, r + 1)]
                out[j, y, x] = np.mean(vals)
    return out


def test_smoothed_variance_is_the_floored_box_mean():
    rng = np.random.default_rng(0)
    X = rng.poisson(rng.gamma(0.3, 2.0, (3, 9, 11))).astype(float)
    floor = _poisson.FLOOR * X.mean()
    expected = np.maximum(box_mean_loops(X, _poisson.BOX), floor)
    np.testing.assert_allclose(_poisson.smoothed_variance(X), expected, rtol=1e-12)
    # a missing voxel is left out of its neighbours' means
    Y = X.copy()
    Y[1, 4, 5] = np.nan
    got = _poisson.smoothed_variance(Y)
    window = Y[1, 2:7, 3:8]
    assert np.isclose(got[1, 4, 5], max(np.nanmean(window),
                                        _poisson.FLOOR * np.nanmean(Y)))


class FakeSolver:
    """Records what each pass is given; returns a fixed model A S."""

    def __init__(self, A, S):
        self.A, self.S, self.calls = A, S, []

    def __call__(self, X, n_sources, models, **kwargs):
        from sgmca_fast._solver import Separation

        self.calls.append({**kwargs, "X": X, "models": models})
        return Separation(A=self.A, S=self.S, mapping=[None] * self.A.shape[1],
                          model_fit=[None] * self.A.shape[1], n_iter={},
                          history={}, timings={"total": 1.5})


def test_each_pass_reweights_with_the_previous_model():
    rng = np.random.default_rng(1)
    A = rng.random((4, 2))
    S = rng.normal(1.0, 1.0, (2, 6, 7))  # negative parts: the floor takes over
    X = rng.poisson(3.0, (4, 6, 7))
    solve = FakeSolver(A, S)
    res = _poisson.separate_counts(solve, X, 2, None, passes=3, k=2.0,
                                   final_sources=False)
    assert len(solve.calls) == 3
    first = solve.calls[0]
    np.testing.assert_allclose(first["variance"],
                               np.maximum(box_mean_loops(X.astype(float), 5),
                                          0.1 * X.mean()))
    assert first["A_init"] is None and first["k"] == 2.0
    model = np.einsum("ji,ihw->jhw", A, S)
    for later in solve.calls[1:]:
        np.testing.assert_allclose(later["variance"],
                                   np.maximum(model, 0.1 * X.mean()))
        assert later["A_init"] is A
    assert res.timings["total"] == 4.5 and res.history["passes"] == 3


def test_pixel_weights_divide_each_pixel_by_its_noise_scale():
    rng = np.random.default_rng(4)
    A = rng.random((3, 2))
    S = rng.random((2, 5, 6))
    X = rng.poisson(4.0, (3, 5, 6)).astype(float)
    solve = FakeSolver(A, S)
    res = _poisson.separate_counts(solve, X, 2, None, passes=2, pixel_weights=True,
                                   final_sources=False)
    floor = 0.1 * X.mean()
    var1 = np.maximum(box_mean_loops(X, 5), floor)
    w1 = np.sqrt(var1.mean(axis=0))  # the root of each pixel's mean variance
    np.testing.assert_allclose(solve.calls[0]["X"], X / w1)
    np.testing.assert_allclose(solve.calls[0]["variance"], var1 / w1**2)
    # pass 2: the model of pass 1, whose S is the solver's S times w1
    var2 = np.maximum(np.einsum("ji,ihw->jhw", A, S * w1), floor)
    w2 = np.sqrt(var2.mean(axis=0))
    np.testing.assert_allclose(solve.calls[1]["variance"], var2 / w2**2)
    np.testing.assert_allclose(res.S, S * w2)


@pytest.mark.parametrize("hard", [True, False])
def test_final_sources_use_each_channels_mean_model_variance(hard, monkeypatch):
    monkeypatch.setattr(_poisson, "FINAL_HARD", hard)
    rng = np.random.default_rng(6)
    A = rng.random((4, 2))
    S = rng.normal(1.0, 1.0, (2, 6, 7))
    X = rng.poisson(3.0, (4, 6, 7)).astype(float)
    X[2, 1, 1] = np.nan  # a missing voxel: left out of its channel's mean
    solve = FakeSolver(A, S)
    res = _poisson.separate_counts(solve, X, 2, {"a model": 2}, passes=2, k=2.5,
                                   nonneg_S=True, random_state=3, fixed=None,
                                   starts=1)
    assert len(solve.calls) == 3
    final = solve.calls[-1]
    floor = 0.1 * np.nanmean(X)
    var = np.maximum(np.einsum("ji,ihw->jhw", A, S), floor)
    var[np.isnan(X)] = np.nan
    np.testing.assert_allclose(final["variance"],
                               np.nanmean(var.reshape(4, -1), axis=1), rtol=1e-12)
    assert final["models"] is None and final["A_init"] is A
    assert final["blind_stage"] is False and final["l1"] is (not hard)
    assert (final["k"], final["nonneg_S"], final["random_state"]) == (2.5, True, 3)
    assert "fixed" not in final and "starts" not in final
    assert res.S is S and res.timings["final_sources"] == 1.5


def weighted_ls(A, X, var):
    """Sources given A: per-channel weights 1 / median variance, by numpy."""
    w = 1.0 / np.median(var.reshape(var.shape[0], -1), axis=1)
    Xf = X.reshape(X.shape[0], -1)
    S = np.linalg.solve(A.T @ (w[:, None] * A), A.T @ (w[:, None] * Xf))
    return S.reshape((A.shape[1],) + X.shape[1:])


def test_second_pass_is_the_weighted_least_squares_of_the_first_model():
    X, A0, _ = blob_counts(2, photons=2e5, J=6, size=24)
    X = X.astype(float)
    X[:, 0, 0] = 50.0  # a bright corner: pass 1's weights differ from the mean's
    # every spectrum fixed and (almost) no threshold: each pass is least squares
    res = separate(X, 2, noise="poisson", fixed={0: A0[:, 0], 1: A0[:, 1]},
                   k=1e-9, nonneg_S=False)
    floor = 0.1 * X.mean()
    S1 = weighted_ls(A0, X, np.maximum(box_mean_loops(X, 5), floor))
    var2 = np.maximum(np.einsum("ji,ihw->jhw", A0, S1), floor)
    S2 = weighted_ls(A0, X, var2)
    # the sources returned: weighted by each channel's mean of pass 2's model
    var3 = np.maximum(np.einsum("ji,ihw->jhw", A0, S2), floor)
    w = 1.0 / var3.reshape(var3.shape[0], -1).mean(axis=1)
    Xf = X.reshape(X.shape[0], -1)
    S3 = np.linalg.solve(A0.T @ (w[:, None] * A0), A0.T @ (w[:, None] * Xf))
    np.testing.assert_allclose(res.S, S3.reshape(S2.shape), rtol=1e-6,
                               atol=1e-6 * np.abs(res.S).max())
    np.testing.assert_array_equal(res.A, A0)
    assert len(res.timings["passes"]) == 2
    assert res.timings["total"] == pytest.approx(
        sum(res.timings["passes"]) + res.timings["final_sources"])
    # the passes' own sources: pass 2's weighted least squares
    passes = _poisson.separate_counts(separate, X, 2, fixed={0: A0[:, 0],
                                                             1: A0[:, 1]},
                                      k=1e-9, nonneg_S=False, final_sources=False)
    np.testing.assert_allclose(passes.S, S2, rtol=1e-6,
                               atol=1e-6 * np.abs(S2).max())


@pytest.mark.parametrize("X, kwargs, match", [
    ([[[1, -2]], [[3, 4]]], {}, "1 negative value"),
    ([[[1, 2.5]], [[3, 4]]], {}, "not whole numbers"),
    ([[[1, np.inf]], [[3, 4]]], {}, "inf values"),
    ([[[1, 2]], [[3, 4]]], {"noise_std": 1.0}, "neither noise_std nor variance"),
    ([[[1, 2]], [[3, 4]]], {"variance": 1.0}, "neither noise_std nor variance"),
])
def test_counts_errors(X, kwargs, match):
    with pytest.raises(InputError, match=match):
        separate(np.array(X), 1, noise="poisson", **kwargs)


def test_unknown_noise_lists_the_choices():
    X, _, _ = blob_counts(0, size=8)
    with pytest.raises(InputError,
                       match=r"noise must be one of \['gaussian', 'poisson'\], "
                             r"got 'bogus'"):
        separate(X, 2, noise="bogus")


def test_command_line_separates_counts(tmp_path, capsys):
    X, A0, _ = blob_counts(3, photons=2e5, size=32)
    cube = tmp_path / "counts.npy"
    np.save(cube, X.astype(np.int32))
    out = tmp_path / "est"
    assert cli.main(["separate", str(cube), "-n", "2", "--noise", "poisson",
                     "-o", str(out), "--no-figures", "--json", "--gmca-only"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert "Poisson" in summary["noise"]
    A = np.load(out / "estimate.npz")["A"]
    assert sad(A0, A) > 15.0
    capsys.readouterr()
    assert cli.main(["separate", str(cube), "-n", "2", "--noise", "poisson",
                     "--noise-std", "1", "-o", str(tmp_path / "e2")]) == 2
    assert "give no --noise-std" in capsys.readouterr().err
    np.save(cube, -X)
    assert cli.main(["separate", str(cube), "-n", "2", "--noise", "poisson",
                     "-o", str(tmp_path / "e3")]) == 2
    assert "negative value" in capsys.readouterr().err
