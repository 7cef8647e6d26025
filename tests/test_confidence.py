"""The confidence per source: its features against direct numpy, its range, and
that it ranks a failure built on purpose below a clean separation."""

import json

import numpy as np
import pytest
from test_solver import sparse_problem as _solver_problem  # tests/ on the path

from sgmca_fast import _confidence, gmca, starlet


def sparse_problem(seed):
    """A sparse mixture at 40 dB: X, A0, S0, sigma (tests/test_solver.py)."""
    return _solver_problem(snr_db=40.0, seed=seed)


def details(X, nscales=2):
    return starlet.forward(X, nscales)[:, :nscales].reshape(X.shape[0], -1)


def test_max_abs_cos_matches_pairwise_loop():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((9, 5)) * rng.random(5)
    got = _confidence.max_abs_cos(A)
    for i in range(5):
        ref = max(abs(A[:, i] @ A[:, j]) / np.linalg.norm(A[:, i])
                  / np.linalg.norm(A[:, j]) for j in range(5) if j != i)
        assert got[i] == pytest.approx(ref, rel=1e-12)


def test_features_against_direct_numpy():
    X, A0, S0, sigma = sparse_problem(seed=2)
    J, n_src = A0.shape
    A = A0 * np.array([1.0, 0.5, 2.0])  # non-unit columns
    S = S0 / np.array([1.0, 0.5, 2.0])[:, None, None]
    feats = _confidence.features(A, S, details(X), 2, noise_std=sigma,
                                 model_fit=[0.01, None, 0.2], reseeded=[(3, 2)],
                                 restarted=True)
    # the noise-limited spectral error: perturb the data by noise draws and
    # refit A by least squares on the detail maps (Monte Carlo reference)
    rng = np.random.default_rng(3)
    Sd = details(S)
    pinv = np.linalg.pinv(Sd)
    errs = []
    for _ in range(200):
        N = sigma * rng.standard_normal(X.shape)
        dA = details(N) @ pinv  # (J, I)
        errs.append(np.sum(dA**2, axis=0) / np.sum(A**2, axis=0))
    ref_sad = -10 * np.log10(np.sqrt(np.mean(errs, axis=0)))
    # the formula treats the detail coefficients of the noise as independent;
    # the starlet planes are correlated, which makes it ~0.3 dB optimistic
    np.testing.assert_allclose(feats["noise_sad"], ref_sad, atol=0.5)
    energy = np.sum(A**2, axis=0) * np.sum(Sd**2, axis=1)
    np.testing.assert_allclose(feats["share"], energy / energy.sum(), rtol=1e-10)
    dens = np.abs(Sd).sum(axis=1) / (np.sqrt(Sd.shape[1])
                                     * np.linalg.norm(Sd, axis=1))
    np.testing.assert_allclose(feats["density"], dens, rtol=1e-10)
    np.testing.assert_allclose(feats["log_fit"][[0, 2]], np.log10([0.01, 0.2]))
    np.testing.assert_array_equal(feats["reseeded"], [0, 0, 1])
    np.testing.assert_array_equal(feats["restarted"], [1, 1, 1])
    # with the true A the only energy off span(A) is noise: ratio close to 1
    assert abs(feats["log_unexplained"][0]) < 0.05


def test_noise_estimated_from_the_residual_when_not_given():
    X, A0, S0, sigma = sparse_problem(seed=4)
    given = _confidence.features(A0, S0, details(X), 2, noise_std=sigma)
    est = _confidence.features(A0, S0, details(X), 2)
    np.testing.assert_allclose(est["noise_sad"], given["noise_sad"], atol=0.5)


def test_unexplained_energy_sees_a_missing_source():
    X, A0, S0, sigma = sparse_problem(seed=5)
    Xd = details(X)
    full = _confidence.features(A0, S0, Xd, 2, noise_std=sigma)
    part = _confidence.features(A0[:, :2], S0[:2], Xd, 2, noise_std=sigma)
    assert part["log_unexplained"][0] > full["log_unexplained"][0] + 1.0


def test_separation_confidence_in_range_and_duplicate_scores_lower():
    X, A0, S0, sigma = sparse_problem(seed=6)
    clean = gmca(X, 3, noise_std=sigma, random_state=0)
    assert clean.confidence.shape == (3,)
    assert np.all((clean.confidence >= 0) & (clean.confidence <= 1))
    # a failure built on purpose: two identical columns of A (one source twice,
    # another lost), the sources refitted by least squares on the detail maps
    A_bad = A0.copy()
    A_bad[:, 2] = A_bad[:, 1]
    Xd = details(X)
    S_bad = np.linalg.lstsq(A_bad, X.reshape(X.shape[0], -1), rcond=None)[0]
    bad = _confidence.confidence(A_bad, S_bad.reshape(S0.shape), Xd, 2,
                                 noise_std=sigma)
    good = _confidence.confidence(A0, S0, Xd, 2, noise_std=sigma)
    assert bad[1:].max() < good.min()


def test_a_source_of_pure_noise_scores_lowest():
    X, A0, S0, sigma = sparse_problem(seed=7)
    rng = np.random.default_rng(8)
    A = np.column_stack([A0, rng.random(A0.shape[0])])
    S = np.concatenate([S0, sigma * rng.standard_normal((1,) + S0.shape[1:])])
    conf = _confidence.confidence(A, S, details(X), 2, noise_std=sigma)
    assert conf[3] < conf[:3].min()


def test_score_is_the_logistic_of_the_weighted_features():
    rng = np.random.default_rng(9)
    feats = {name: rng.standard_normal(4) for name in _confidence.FEATURES}
    w = rng.standard_normal(len(_confidence.FEATURES))
    c, s = rng.standard_normal(w.size), rng.random(w.size) + 0.5
    z = 0.3 + sum(w[j] * (feats[n] - c[j]) / s[j]
                  for j, n in enumerate(_confidence.FEATURES))
    np.testing.assert_allclose(_confidence.score(feats, w, 0.3, c, s),
                               1 / (1 + np.exp(-z)), rtol=1e-12)


def test_json_and_cli_show_the_confidence(tmp_path, capsys):
    from sgmca_fast import cli

    X, *_ = sparse_problem(seed=10)
    cube = tmp_path / "cube.npy"
    np.save(cube, X)
    out = tmp_path / "out"
    assert cli.main(["separate", str(cube), "-n", "3", "-o", str(out),
                     "--no-figures"]) == 0
    text = capsys.readouterr().out
    assert text.count("confidence ") == 3
    assert cli.main(["separate", str(cube), "-n", "3", "-o", str(out),
                     "--no-figures", "--json", "--force"]) == 0
    summary = json.loads(capsys.readouterr().out)
    conf = summary["confidence"]
    assert len(conf) == 3 and all(0 <= c <= 1 for c in conf)


def test_spectra_figure_titles_show_the_confidence_in_the_truth_order():
    pytest.importorskip("matplotlib")
    from sgmca_fast import plots

    rng = np.random.default_rng(11)
    A0 = rng.random((10, 3)) + 0.1
    A = A0[:, [2, 0, 1]]  # estimate columns permuted
    fig = plots.plot_spectra(A, A0, confidence=[0.1, 0.5, 0.9])
    titles = [ax.get_title() for ax in fig.axes[:3]]
    # true column 0 is estimate 1 (0.5), 1 is 2 (0.9), 2 is 0 (0.1)
    assert [t.splitlines()[-1] for t in titles] == [
        "confidence 0.50", "confidence 0.90", "confidence 0.10"]
    with pytest.raises(ValueError, match=r"confidence must have shape \(3,\)"):
        plots.plot_spectra(A, A0, confidence=[0.1, 0.5])
