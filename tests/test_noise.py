"""Noise std and number of sources estimated from the data (sgmca_fast.noise)."""

import numpy as np
import pytest
from scipy.ndimage import convolve1d

from sgmca_fast import noise
from sgmca_fast._validation import InputError, InputTypeError

KERNEL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
# Std of the finest starlet scale for unit white noise, from the kernel itself:
# w0 = x - h2 * x with h2 the 5 x 5 outer product; away from the borders.
H2 = np.outer(KERNEL, KERNEL)
DELTA = np.zeros((5, 5))
DELTA[2, 2] = 1.0
NORM0_2D = np.sqrt(np.sum((DELTA - H2) ** 2))
NORM0_1D = np.sqrt(np.sum((np.eye(5)[2] - KERNEL) ** 2))


def reference_mad_std(cube, missing=None):
    """Independent numpy/scipy reference: MAD of the interior finest scale."""
    j = cube.shape[0]
    missing = np.zeros(cube.shape, bool) if missing is None else missing
    out = np.empty(j)
    for c in range(j):
        img = np.where(missing[c], np.nanmedian(np.where(missing[c], np.nan, cube[c])),
                       cube[c])
        smooth = convolve1d(convolve1d(img, KERNEL, axis=0, mode="mirror"), KERNEL,
                            axis=1, mode="mirror")
        w0 = img - smooth
        ok = np.ones(img.shape, bool)
        ok[:2], ok[-2:], ok[:, :2], ok[:, -2:] = False, False, False, False
        for y, x in zip(*np.nonzero(missing[c]), strict=True):
            ok[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3] = False
        v = w0[ok]
        out[c] = np.median(np.abs(v - np.median(v))) / 0.6744897501960817 / NORM0_2D
    return out


def smooth_cube(rng, j=6, size=96):
    """Ramps (no finest-scale content) plus a wide bump (very little)."""
    yy, xx = np.mgrid[0:size, 0:size]
    bump = 0.5 * np.exp(-((yy - 40.0) ** 2 + (xx - 55.0) ** 2) / (2 * 30.0**2))
    return rng.uniform(1, 10, (j, 1, 1)) * (yy + 2 * xx) / size + bump


def test_white_noise_with_30x_range_is_recovered():
    rng = np.random.default_rng(0)
    sigma = np.geomspace(0.01, 0.3, 6)
    x = smooth_cube(rng) + sigma[:, None, None] * rng.standard_normal((6, 96, 96))
    est = noise.estimate_noise_std(x)
    assert est.shape == (6,)
    np.testing.assert_allclose(est, sigma, rtol=0.04)
    np.testing.assert_allclose(est, reference_mad_std(x), rtol=1e-10)


def test_matrix_uses_the_1d_starlet_along_pixels():
    rng = np.random.default_rng(1)
    sigma = np.array([0.5, 2.0, 7.0])
    x = np.linspace(0, 1, 5000) ** 2 + sigma[:, None] * rng.standard_normal((3, 5000))
    est = noise.estimate_noise_std(x)
    np.testing.assert_allclose(est, sigma, rtol=0.05)
    w0 = x - convolve1d(x, KERNEL, axis=1, mode="mirror")
    w0 = w0[:, 2:-2]
    ref = (np.median(np.abs(w0 - np.median(w0, 1, keepdims=True)), 1)
           / 0.6744897501960817 / NORM0_1D)
    np.testing.assert_allclose(est, ref, rtol=1e-10)


def test_nan_border_and_scattered_nans_are_left_out():
    rng = np.random.default_rng(2)
    sigma = np.geomspace(0.01, 0.3, 6)
    x = smooth_cube(rng) + sigma[:, None, None] * rng.standard_normal((6, 96, 96))
    x[:, :10] = np.nan
    x[:, :, -7:] = np.nan
    scattered = rng.random(x.shape) < 0.01
    x[scattered] = 1e6  # garbage under the mask must not matter
    est = noise.estimate_noise_std(x, mask=scattered)
    np.testing.assert_allclose(est, sigma, rtol=0.05)
    missing = np.isnan(x) | scattered
    np.testing.assert_allclose(est, reference_mad_std(np.where(missing, np.nan, x),
                                                      missing), rtol=1e-10)


def test_dead_channel_is_nan_with_a_warning():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 32, 32))
    x[2] = np.nan
    with pytest.warns(RuntimeWarning, match="channels 2; their noise std is NaN"):
        est = noise.estimate_noise_std(x)
    assert np.isnan(est[2]) and np.all(np.isfinite(est[[0, 1, 3]]))


def test_rank_removes_the_bias_of_sharp_sources():
    rng = np.random.default_rng(4)
    j, p = 40, 64
    sources = (rng.random((3, p, p)) < 0.3) * rng.exponential(1.0, (3, p, p))
    mixing = rng.uniform(0, 1, (j, 3))
    sigma = np.full(j, 0.01)
    x = np.einsum("ji,ihw->jhw", mixing, sources) + 0.01 * rng.standard_normal(
        (j, p, p))
    plain = noise.estimate_noise_std(x)
    assert np.median(plain / sigma) > 2  # point-like sources swamp the plain MAD
    np.testing.assert_allclose(noise.estimate_noise_std(x, rank=3), sigma, rtol=0.1)


def mixture(rng, n_src, j=40, p=4000, sigma=0.05, weak=1.0):
    a = rng.uniform(0, 1, (j, n_src))
    s = rng.exponential(1.0, (n_src, p)) * (rng.random((n_src, p)) < 0.2)
    s[-1] *= weak
    return a @ s + sigma * rng.standard_normal((j, p))


@pytest.mark.parametrize("method", ["mp", "hysime"])
@pytest.mark.parametrize("n_src", [1, 3, 6])
def test_counts_sources_with_known_noise(n_src, method):
    x = mixture(np.random.default_rng(n_src), n_src)
    est = noise.estimate_n_sources(x, noise_std=0.05, method=method)
    assert est.n_sources == n_src
    assert est.eigenvalues[n_src - 1] > est.threshold > est.eigenvalues[n_src]
    assert est.evidence.startswith(f"{n_src} source(s)")


def test_pure_noise_has_no_source_and_the_mp_edge():
    rng = np.random.default_rng(5)
    j, p = 50, 3000
    est = noise.estimate_n_sources(rng.standard_normal((j, p)), noise_std=1.0)
    assert est.n_sources == 0
    edge = (np.sqrt(p) + np.sqrt(j)) ** 2
    assert edge < est.threshold < 1.02 * edge
    assert abs(est.eigenvalues[0] / edge - 1) < 0.02


def test_mp_sees_a_source_that_hysime_leaves_out():
    # whitened eigenvalue between the MP edge (~1.14 P) and HySime's 2 P
    rng = np.random.default_rng(6)
    j, p = 40, 4000
    s = np.ones(p) * np.sqrt(0.5 / j)
    x = np.outer(np.ones(j), s) * 1.0 + rng.standard_normal((j, p))
    assert noise.estimate_n_sources(x, noise_std=1.0).n_sources == 1
    assert noise.estimate_n_sources(x, noise_std=1.0, method="hysime").n_sources == 0


def test_variance_cube_whitens_voxel_noise():
    rng = np.random.default_rng(7)
    j, h = 30, 40
    std = np.geomspace(0.01, 0.3, j)[:, None, None] * np.linspace(1, 3, h)[None, :,
                                                                          None]
    std = np.broadcast_to(std, (j, h, h))
    a = rng.uniform(0, 1, (j, 2))
    s = rng.exponential(1.0, (2, h, h))
    x = np.einsum("ji,ihw->jhw", a, s) + std * rng.standard_normal((j, h, h))
    assert noise.estimate_n_sources(x, variance=std**2).n_sources == 2


def test_estimated_noise_and_missing_voxels():
    rng = np.random.default_rng(8)
    j, h = 30, 64
    a = rng.uniform(0, 1, (j, 3))
    yy, xx = np.mgrid[0:h, 0:h]
    s = np.stack([np.exp(-((yy - c) ** 2 + (xx - 20 - c / 2) ** 2) / 60.0)
                  for c in (15, 30, 45)])
    x = np.einsum("ji,ihw->jhw", a, s) + 0.01 * rng.standard_normal((j, h, h))
    x[:, :5] = np.nan
    x[4] = np.nan
    est = noise.estimate_n_sources(x, mask=rng.random(x.shape) < 0.001)
    assert est.n_sources == 3
    assert est.n_channels == j - 1
    assert "1 dead channel(s) dropped" in est.evidence


def test_max_sources_caps_the_count():
    x = mixture(np.random.default_rng(9), 5)
    est = noise.estimate_n_sources(x, noise_std=0.05, max_sources=2)
    assert est.n_sources == 2 and "capped at max_sources=2" in est.evidence


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"X": np.ones(5)}, InputError, r"X must be a cube \(J, H, W\) or a matrix"),
    ({"X": np.full((3, 8), np.inf)}, InputError, "X contains inf values"),
    ({"X": np.ones((3, 8)), "mask": np.zeros((3, 8))}, InputTypeError,
     "mask must be a boolean array"),
    ({"X": np.ones((3, 8)), "mask": np.zeros((3, 9), bool)}, InputError,
     r"mask must have the shape of X \(3, 8\)"),
    ({"X": np.ones((3, 8)), "axis_kind": "2d"}, InputError,
     "axis_kind='2d' needs a cube"),
    ({"X": np.ones((3, 8)), "axis_kind": "3d"}, InputError,
     r"axis_kind must be one of \['1d', '2d', 'auto'\]"),
    ({"X": np.ones((3, 4, 4))}, InputError, "no usable finest-scale coefficient"),
])
def test_noise_std_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        noise.estimate_noise_std(**kwargs)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"noise_std": 1.0, "variance": 1.0}, "give noise_std or variance, not both"),
    ({"noise_std": [1.0, 2.0]}, r"noise_std must have one value per channel \(3\)"),
    ({"noise_std": 0.0}, "must be positive and finite"),
    ({"variance": np.ones((3, 7))}, "variance must be a number, one value per"),
    ({"noise_std": 1.0, "method": "pca"}, r"method must be one of \['hysime', 'mp'\]"),
    ({"noise_std": 1.0, "max_sources": 0}, "max_sources must be at least 1"),
])
def test_n_sources_errors(kwargs, match):
    x = np.random.default_rng(0).standard_normal((3, 50))
    with pytest.raises(InputError, match=match):
        noise.estimate_n_sources(x, **kwargs)


def test_rank_leaves_a_constant_channel_at_zero():
    """A noise-free constant channel keeps std 0; the others are still refined."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((6, 48, 48)) * np.arange(1.0, 7.0)[:, None, None]
    X[2] = 5.0
    sigma = noise.estimate_noise_std(X, rank=1)
    assert sigma[2] == 0.0
    live = np.array([0, 1, 3, 4, 5])
    np.testing.assert_allclose(sigma[live], np.arange(1.0, 7.0)[live], rtol=0.12)
