"""sgmca_fast.metrics on hand-worked cases and against tests/naive.py."""

import naive  # tests/naive.py (pytest's pythonpath)
import numpy as np
import pytest

from sgmca_fast import metrics


def _orthonormal(n_rows, n_pix, seed=0):
    """n_rows orthonormal rows of length n_pix."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n_pix, n_rows)))
    return q.T.copy()


def _rotated(angle, n_chan=5, n_src=3):
    """A0 = first unit vectors, A = each column rotated by `angle` toward another."""
    eye = np.eye(n_chan)
    A0 = eye[:, :n_src]
    A = np.cos(angle) * A0 + np.sin(angle) * eye[:, n_src : 2 * n_src]
    return A0, A


def test_public_all():
    assert metrics.__all__ == ["bss_eval", "evaluate", "match", "sad"]


# ------------------------------------------------------------------- SAD


def test_sad_known_angle_is_10_db():
    A0, A = _rotated(0.1, n_chan=6, n_src=3)
    assert metrics.sad(A0, A) == pytest.approx(10.0, abs=1e-12)
    np.testing.assert_allclose(metrics.sad(A0, A, per_source=True), 10.0, atol=1e-12)


def test_sad_mean_inside_log():
    A0 = np.eye(4)[:, :2]
    A = A0.copy()
    A[:, 0] = [np.cos(0.1), 0, np.sin(0.1), 0]
    A[:, 1] = [0, np.cos(0.01), 0, np.sin(0.01)]
    np.testing.assert_allclose(metrics.sad(A0, A, per_source=True), [10.0, 20.0])
    assert metrics.sad(A0, A) == pytest.approx(-10 * np.log10(0.055), abs=1e-12)


def test_sad_perfect_is_finite_floor():
    A0 = np.random.default_rng(0).random((8, 3))
    assert metrics.sad(A0, 2.5 * A0) == pytest.approx(-10 * np.log10(metrics.MIN_ANGLE))
    assert metrics.sad(A0, A0) == 120.0


def test_sad_matches_arccos_formula():
    rng = np.random.default_rng(1)
    A0 = rng.random((20, 4))
    A = A0 + 0.05 * rng.standard_normal((20, 4))
    assert metrics.sad(A0, A) == pytest.approx(naive.sad_arccos(A0, A), rel=1e-10)


def test_sad_zero_column_is_orthogonal():
    A0 = np.eye(3)[:, :2]
    A = A0.copy()
    A[:, 1] = 0.0
    per = metrics.sad(A0, A, per_source=True)
    assert per[1] == pytest.approx(-10 * np.log10(np.pi / 2))


# ----------------------------------------------------------------- match


def test_match_recovers_permutation_sign_and_sources():
    rng = np.random.default_rng(2)
    A0 = rng.random((10, 4))
    S0 = rng.standard_normal((4, 6, 7))
    perm = np.array([2, 0, 3, 1])  # estimate k is true source perm_inv...
    signs = np.array([1.0, -1.0, -1.0, 1.0])
    scale = np.array([2.0, 0.5, 3.0, 1.0])
    # estimated column k holds true column order[k]
    order = np.argsort(perm)
    A = A0[:, order] * signs * scale
    S = S0[order] * (signs / scale)[:, None, None]
    A_m, S_m, p = metrics.match(A0, A, S)
    np.testing.assert_array_equal(p, perm)
    np.testing.assert_allclose(A_m, A0 * scale[perm], rtol=1e-15)
    np.testing.assert_allclose(S_m, S0 / scale[perm][:, None, None], rtol=1e-15)
    assert S_m.shape == S0.shape
    np.testing.assert_allclose(A_m @ S_m.reshape(4, -1), A0 @ S0.reshape(4, -1))


def test_match_without_sources():
    A0 = np.eye(4)[:, :3]
    A_m, S_m, p = metrics.match(A0, -A0[:, ::-1])
    assert S_m is None
    np.testing.assert_array_equal(p, [2, 1, 0])
    np.testing.assert_array_equal(A_m, A0)


def test_match_greedy_on_duplicates():
    A0 = np.eye(4)[:, :3]
    # estimate 0 is closest to both true 0 and true 1 -> argmax has a duplicate
    A = np.array(
        [
            [0.71, 0.60, 0.05],
            [0.69, 0.10, 0.05],
            [0.10, 0.79, 0.99],
            [0.00, 0.00, 0.00],
        ]
    )
    cross = np.abs(A / np.linalg.norm(A, axis=0))
    assert np.argmax(cross[0, :]) == np.argmax(cross[1, :]) == 0
    _, _, p = metrics.match(A0, A)
    # greedy by decreasing |entry|: (2, 2), (0, 0), then (1, 1) is the best left
    np.testing.assert_array_equal(p, [0, 1, 2])


def test_match_errors():
    A0 = np.ones((4, 2))
    with pytest.raises(ValueError, match=r"A must have the shape of A0 \(4, 2\)"):
        metrics.match(A0, np.ones((4, 3)))
    with pytest.raises(ValueError, match="J >= I >= 1"):
        metrics.match(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="A contains NaN or inf values"):
        metrics.match(A0, np.full((4, 2), np.nan))
    with pytest.raises(TypeError, match="A0 must be a real numeric array"):
        metrics.match(A0.astype(complex), A0)
    with pytest.raises(ValueError, match=r"S must be \(I, P\) or \(I, H, W\) with I=2"):
        metrics.match(A0, A0, np.ones((3, 5)))


# -------------------------------------------------------------- BSS eval


def test_bss_eval_perfect():
    S0 = np.random.default_rng(3).standard_normal((3, 500))
    res = metrics.bss_eval(S0, 4.0 * S0)
    assert res["SDR"] > 200 and res["SIR"] > 200 and res["SAR"] > 200
    assert res["SNR"] == np.inf


def test_bss_eval_known_leakage_sir_20db():
    S0 = _orthonormal(3, 1000)
    S = S0 + 0.1 * np.roll(S0, 1, axis=0)
    res = metrics.bss_eval(S0, 5.0 * S)
    assert res["SIR"] == pytest.approx(20.0, abs=1e-9)
    assert res["SDR"] == pytest.approx(20.0, abs=1e-9)
    assert res["SAR"] > 200


def test_bss_eval_asymmetric_leakage_uses_correct_projection():
    S0 = _orthonormal(2, 400, seed=4)
    S = S0.copy()
    S[0] += 0.1 * S0[1]  # only source 0 leaks
    # target 1/1.01 + 1, interference 0.01/1.01 -> 10 log10(201)
    expected = 10 * np.log10(201.0)
    assert metrics.bss_eval(S0, S)["SIR"] == pytest.approx(expected, abs=1e-9)
    assert metrics.bss_eval(S0, S)["SAR"] > 200
    # the authors' transposed projection books the leak on source 1; summed over
    # the sources (orthonormal here) SIR and SDR agree, but the misplaced part
    # shows up as artefacts
    authors = naive.authors_source_eval(S0, S)
    assert authors["SIR"] == pytest.approx(expected, abs=1e-9)
    assert authors["SAR"] < 30


def test_bss_eval_agrees_with_authors_when_good():
    rng = np.random.default_rng(5)
    S0 = rng.standard_normal((4, 2000))
    S = (
        S0
        + 0.01 * rng.standard_normal((4, 4)) @ S0
        + 1e-3 * rng.standard_normal(S0.shape)
    )
    authors = naive.authors_source_eval(S0, S)
    res = metrics.bss_eval(S0, S)
    assert res["SDR"] == pytest.approx(authors["SDR"], abs=1e-9)  # same target
    assert res["SIR"] == pytest.approx(authors["SIR"], abs=0.5)
    # the authors' artefacts also hold the misplaced part of the interference
    # (orthogonal to the true artefacts), so their SAR can only be lower
    assert authors["SAR"] < res["SAR"]


def test_bss_eval_known_noise_snr_20db():
    basis = _orthonormal(4, 800, seed=6)
    S0, n = basis[:3], basis[3]
    S = S0 + 0.1 * n
    res = metrics.bss_eval(S0, S, noise=n[None, :])
    assert res["SNR"] == pytest.approx(20.0, abs=1e-9)
    assert res["SDR"] == pytest.approx(20.0, abs=1e-9)
    assert res["SIR"] > 200 and res["SAR"] > 200


def test_bss_eval_noise_rows_orthogonalised_against_sources():
    rng = np.random.default_rng(7)
    basis = _orthonormal(4, 600, seed=7)
    S0, n = basis[:3], basis[3]
    # several noise rows that mix the sources and the pure-noise direction
    noise = rng.standard_normal((6, 3)) @ S0 + np.outer(rng.standard_normal(6), n)
    res = metrics.bss_eval(
        S0.reshape(3, 20, 30),
        (S0 + 0.1 * n).reshape(3, 20, 30),
        noise=noise.reshape(6, 20, 30),
    )
    assert res["SNR"] == pytest.approx(20.0, abs=1e-9)


def test_bss_eval_artefacts_only_sar_20db():
    basis = _orthonormal(5, 700, seed=8)
    S0, e, n = basis[:3], basis[3], basis[4]
    S = S0 + 0.1 * e
    res = metrics.bss_eval(S0, S)
    assert res["SAR"] == pytest.approx(20.0, abs=1e-9)
    assert res["SDR"] == pytest.approx(20.0, abs=1e-9)
    assert res["SIR"] > 200 and res["SNR"] == np.inf
    res = metrics.bss_eval(S0, S, noise=n[None])  # noise orthogonal to the error
    assert res["SAR"] == pytest.approx(20.0, abs=1e-9)
    assert res["SNR"] > 200


def test_bss_eval_matches_naive_random():
    rng = np.random.default_rng(9)
    S0 = rng.standard_normal((3, 300))
    noise = rng.standard_normal((5, 300))
    S = (
        S0
        + 0.2 * rng.standard_normal((3, 3)) @ S0
        + 0.1 * rng.standard_normal((3, 5)) @ noise
    )
    S += 0.05 * rng.standard_normal(S.shape)
    for nz in (None, noise):
        got = metrics.bss_eval(S0, S, noise=nz)
        expected = naive.bss_eval(S0, S, noise=nz)
        for key in ("SDR", "SIR", "SNR", "SAR"):
            assert got[key] == pytest.approx(expected[key], rel=1e-9), key


def test_bss_eval_image_shapes_equal_flat():
    rng = np.random.default_rng(10)
    S0 = rng.standard_normal((2, 8, 9))
    S = S0 + 0.1 * rng.standard_normal(S0.shape)
    assert metrics.bss_eval(S0, S) == metrics.bss_eval(
        S0.reshape(2, -1), S.reshape(2, -1)
    )


def test_bss_eval_errors():
    S0 = np.ones((2, 10))
    with pytest.raises(ValueError, match=r"S must have 2 rows \(one per source\)"):
        metrics.bss_eval(S0, np.ones((3, 10)))
    with pytest.raises(ValueError, match=r"S must have pixel shape \(10,\)"):
        metrics.bss_eval(S0, np.ones((2, 11)))
    with pytest.raises(ValueError, match=r"noise must have pixel shape \(10,\)"):
        metrics.bss_eval(S0, S0, noise=np.ones((4, 9)))
    with pytest.raises(ValueError, match="S0 contains NaN or inf values"):
        metrics.bss_eval(np.full((2, 10), np.inf), S0)
    with pytest.raises(ValueError, match=r"S0 must be \(I, P\) or \(I, H, W\)"):
        metrics.bss_eval(np.ones(10), np.ones(10))
    with pytest.raises(ValueError, match="rows .* must be linearly independent"):
        metrics.bss_eval(S0, S0)


# --------------------------------------------------------------- evaluate


def test_evaluate_permuted_flipped_estimate():
    rng = np.random.default_rng(11)
    A0 = rng.random((12, 3))
    S0 = rng.standard_normal((3, 10, 10))
    order = [1, 2, 0]
    A = A0[:, order] * [-2.0, 1.0, 0.5]
    S = S0[order] / np.array([-2.0, 1.0, 0.5])[:, None, None]
    res = metrics.evaluate(A0, S0, A, S)
    assert set(res) == {"SAD", "SDR", "SIR", "SNR", "SAR", "SAD_per_source"}
    assert res["SAD"] == pytest.approx(120.0, abs=1e-6)
    assert res["SAD_per_source"] == pytest.approx([120.0] * 3, abs=1e-6)
    assert res["SDR"] > 200 and res["SIR"] > 200 and res["SAR"] > 200
    assert res["SNR"] == np.inf


def test_evaluate_sources_subset():
    A0, A = _rotated(0.1, n_chan=6, n_src=3)
    S0 = _orthonormal(3, 400, seed=12)
    S = S0.copy()
    S[0] += 0.1 * S0[1]  # only source 0 leaks
    all_src = metrics.evaluate(A0, S0, A, S)
    assert all_src["SAD"] == pytest.approx(10.0, abs=1e-9)
    assert all_src["SIR"] == pytest.approx(10 * np.log10(302.0), abs=1e-9)
    only = metrics.evaluate(A0, S0, A, S, sources=[0])
    assert only["SIR"] == pytest.approx(20.0, abs=1e-9)
    assert only["SAD"] == pytest.approx(10.0, abs=1e-9)  # SAD over all sources
    rest = metrics.evaluate(A0, S0, A, S, sources=(1, 2))
    assert rest["SIR"] > 200


def test_evaluate_with_noise():
    basis = _orthonormal(4, 500, seed=13)
    S0, n = basis[:3], basis[3]
    A0 = np.random.default_rng(13).random((8, 3))
    res = metrics.evaluate(A0, S0, A0, S0 + 0.1 * n, noise=np.outer(np.ones(8), n))
    assert res["SNR"] == pytest.approx(20.0, abs=1e-9)


def test_evaluate_errors():
    A0 = np.random.default_rng(14).random((5, 2))
    S0 = np.random.default_rng(15).random((2, 30))
    with pytest.raises(ValueError, match=r"S0 must have 2 rows \(the columns of A0\)"):
        metrics.evaluate(A0, np.ones((3, 30)), A0, np.ones((3, 30)))
    with pytest.raises(
        ValueError, match=r"sources must be distinct indices in \[0, 1\]"
    ):
        metrics.evaluate(A0, S0, A0, S0, sources=[0, 2])
    with pytest.raises(ValueError, match="sources must be distinct indices"):
        metrics.evaluate(A0, S0, A0, S0, sources=[1, 1])
    with pytest.raises(ValueError, match="sources must be a non-empty sequence"):
        metrics.evaluate(A0, S0, A0, S0, sources=[])
    with pytest.raises(ValueError, match=r"A must have the shape of A0 \(5, 2\)"):
        metrics.evaluate(A0, S0, A0[:4], S0)


# ------------------------------------------------------- scale equivariance


def _noisy_case():
    """A permuted, flipped estimate with leakage, noise and artefacts (scale 1)."""
    rng = np.random.default_rng(16)
    A0 = rng.random((8, 3))
    A = A0 + 0.05 * rng.standard_normal((8, 3))
    S0 = rng.standard_normal((3, 400))
    noise = 0.1 * rng.standard_normal((8, 400))
    S = (
        S0
        + 0.1 * rng.standard_normal((3, 3)) @ S0
        + 0.05 * rng.standard_normal(S0.shape)
        + 0.3 * rng.standard_normal((3, 8)) @ noise
    )
    order, signs = [2, 0, 1], np.array([1.0, -1.0, 1.0])
    return A0, S0, A[:, order] * signs, S[order] * signs[:, None], noise


def _assert_same_metrics(got, expected):
    assert set(got) == set(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-10, err_msg=key)


@pytest.mark.parametrize("scale", [1e160, 1e-24, 1e-300, 3.0e307, 5e-308])
def test_metrics_are_scale_equivariant(scale):
    """Every metric is invariant to the scale of its data: any finite float64 scale.

    The original code gave NaN at 1e160 (overflowing sums of squares) and refused
    1e-24 as "not linearly independent" (an absolute floor).
    """
    A0, S0, A, S, noise = _noisy_case()
    c = scale
    expected = metrics.evaluate(A0, S0, A, S, noise=noise, sources=[0, 2])
    assert np.all(np.isfinite([expected[k] for k in ("SDR", "SIR", "SNR", "SAR")]))
    _assert_same_metrics(
        metrics.evaluate(c * A0, c * S0, c * A, c * S, noise=c * noise, sources=[0, 2]),
        expected,
    )
    A_m, S_m, perm = metrics.match(A0, A, S)
    A_c, S_c, perm_c = metrics.match(c * A0, c * A, c * S)
    np.testing.assert_array_equal(perm_c, perm)
    np.testing.assert_allclose(A_c / c, A_m, rtol=1e-10)
    np.testing.assert_allclose(S_c / c, S_m, rtol=1e-10)
    _assert_same_metrics(
        metrics.bss_eval(c * S0, c * S_m, noise=c * noise),
        metrics.bss_eval(S0, S_m, noise=noise),
    )
    np.testing.assert_allclose(
        metrics.sad(c * A0, c * A_m, per_source=True),
        metrics.sad(A0, A_m, per_source=True),
        rtol=1e-10,
    )


def test_metrics_each_array_at_its_own_scale():
    """The truth, the estimate and the noise may each have any scale."""
    A0, S0, A, S, noise = _noisy_case()
    expected = metrics.evaluate(A0, S0, A, S, noise=noise)
    _assert_same_metrics(
        metrics.evaluate(1e-200 * A0, 1e150 * S0, 1e250 * A, 1e-280 * S,
                         noise=1e-30 * noise),
        expected,
    )


def test_scale_equivariance_matches_naive_at_scale_one():
    """At scale 1 the case is an ordinary one: the direct formulas agree."""
    A0, S0, A, S, noise = _noisy_case()
    _, S_m, _ = metrics.match(A0, A, S)
    got = metrics.bss_eval(S0, S_m, noise=noise)
    expected = naive.bss_eval(S0, S_m, noise=noise)
    for key in ("SDR", "SIR", "SNR", "SAR"):
        assert got[key] == pytest.approx(expected[key], rel=1e-9), key


def test_tiny_but_independent_sources_are_accepted():
    """Linear independence is judged relative to the sources' own magnitude."""
    S0 = _orthonormal(2, 50, seed=17)
    res = metrics.bss_eval(1e-24 * S0, S0 + 0.1 * S0[::-1])
    assert res["SIR"] == pytest.approx(20.0, abs=1e-9)
    with pytest.raises(ValueError, match="linearly independent"):
        metrics.bss_eval(1e-24 * np.vstack([S0[0], S0[0]]), S0)
