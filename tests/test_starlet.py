import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import convolve1d

from sgmca_fast import get_num_threads, set_num_threads, starlet
from sgmca_fast._validation import InputError

REPO = Path(__file__).resolve().parents[1]
TOL = {np.float64: 1e-12, np.float32: 2e-5}


def _dilated_kernel(j):
    kernel = np.zeros(4 * 2**j + 1)
    kernel[:: 2**j] = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    return kernel


def direct_starlet(x, nscales, axes=(-2, -1)):
    """Independent reference: scipy.ndimage with mirror boundaries."""
    c = np.asarray(x, dtype=np.float64)
    planes = []
    for j in range(nscales):
        smooth = c
        for axis in axes:
            smooth = convolve1d(smooth, _dilated_kernel(j), axis=axis, mode="mirror")
        planes.append(c - smooth)
        c = smooth
    planes.append(c)
    return np.stack(planes, axis=axes[0] - 1 if axes[0] < 0 else axes[0])


SHAPES_2D = [(2, 2), (3, 5), (16, 16), (17, 9), (33, 64), (4, 11, 13), (2, 3, 8, 7)]


@pytest.mark.parametrize("shape", SHAPES_2D)
@pytest.mark.parametrize("nscales", [1, 2, 3, 5])
def test_forward_matches_direct_implementation(shape, nscales):
    x = np.random.default_rng(0).standard_normal(shape)
    ours = starlet.forward(x, nscales)
    assert ours.shape == shape[:-2] + (nscales + 1,) + shape[-2:]
    np.testing.assert_allclose(ours, direct_starlet(x, nscales), rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 8, 75, 101])
@pytest.mark.parametrize("nscales", [1, 2, 4])
def test_forward1d_matches_direct_implementation(n, nscales):
    x = np.random.default_rng(1).standard_normal((3, n))
    ours = starlet.forward1d(x, nscales)
    assert ours.shape == (3, nscales + 1, n)
    ref = direct_starlet(x, nscales, axes=(-1,))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_policy_and_exact_reconstruction(dtype):
    x = np.random.default_rng(2).standard_normal((3, 20, 31)).astype(dtype)
    w = starlet.forward(x, 3)
    assert w.dtype == dtype
    back = starlet.inverse(w)
    assert back.dtype == dtype
    np.testing.assert_allclose(back, x, rtol=0, atol=TOL[dtype] * 10)
    np.testing.assert_allclose(
        w, direct_starlet(x, 3), rtol=0, atol=TOL[dtype] * np.abs(x).max()
    )
    w1 = starlet.forward1d(x, 2)
    assert w1.dtype == dtype
    np.testing.assert_allclose(starlet.inverse(w1, axis=-2), x, atol=TOL[dtype] * 10)


def test_integer_input_is_computed_in_float64():
    x = np.arange(30).reshape(5, 6)
    w = starlet.forward(x, 2)
    assert w.dtype == np.float64
    np.testing.assert_allclose(w, direct_starlet(x.astype(float), 2), atol=1e-12)


def test_non_contiguous_input():
    base = np.random.default_rng(3).standard_normal((40, 50))
    x = base[::2, ::-3].T  # strided, reversed, transposed
    np.testing.assert_allclose(
        starlet.forward(x, 2), direct_starlet(x, 2), rtol=0, atol=1e-12
    )


def test_linearity():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((2, 2, 19, 23))
    lhs = starlet.forward(2.5 * x - 0.5 * y, 3)
    rhs = 2.5 * starlet.forward(x, 3) - 0.5 * starlet.forward(y, 3)
    np.testing.assert_allclose(lhs, rhs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("threads", [1, 2])
def test_thread_count_does_not_change_results(threads):
    x = np.random.default_rng(5).standard_normal((5, 21, 22))
    previous = get_num_threads()
    set_num_threads(threads)
    try:
        np.testing.assert_allclose(starlet.forward(x, 2), direct_starlet(x, 2),
                                   atol=1e-12)
    finally:
        set_num_threads(previous)


def test_scale_norms_match_white_noise_std():
    rng = np.random.default_rng(6)
    noise = rng.standard_normal((4, 256, 256)) * 3.0
    w = starlet.forward(noise, 3)
    norms = starlet.scale_norms((256, 256), 3)
    assert norms.shape == (4,)
    empirical = w[:, :, 16:-16, 16:-16].std(axis=(0, 2, 3))  # away from borders
    np.testing.assert_allclose(empirical[:3], 3.0 * norms[:3], rtol=0.02)
    # Known B3-spline starlet values (Starck & Murtagh).
    np.testing.assert_allclose(norms[:3], [0.8907963, 0.2006638, 0.0855075], rtol=1e-6)


def test_scale_norms_1d():
    rng = np.random.default_rng(7)
    noise = rng.standard_normal((200, 2000))
    w = starlet.forward1d(noise, 2)
    norms = starlet.scale_norms((2000,), 2)
    np.testing.assert_allclose(w[:, :2, 20:-20].std(axis=(0, 2)), norms[:2], rtol=0.02)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: starlet.forward(np.zeros((4, 4)), 0), "nscales must be at least 1"),
        (lambda: starlet.forward(np.zeros((1, 4)), 2), "at least 2 x 2"),
        (lambda: starlet.forward(np.zeros(8), 2), "at least 2 dimensions"),
        (lambda: starlet.forward1d(np.zeros(1), 2), "at least 2 samples"),
        (
            lambda: starlet.forward(np.zeros((4, 4)), 2.0),
            "nscales must be an integer, got 2.0",
        ),
        (lambda: starlet.forward(np.array([["a", "b"]]), 1), "numeric array"),
        (lambda: starlet.scale_norms((1, 8), 2), "at least 2 samples"),
    ],
)
def test_bad_input(call, match):
    # an InputError (a ValueError), so that the command line reports it as such
    with pytest.raises(InputError, match=match):
        call()


def test_c_api_from_plain_c(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("a C compiler is needed to test the C API")
    exe = tmp_path / "c_api_demo"
    subprocess.run(
        [cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
         "-I", str(REPO / "csrc"), str(REPO / "tests" / "c_api_demo.c"),
         str(REPO / "csrc" / "starlet.c"), "-lm", "-o", str(exe)],
        check=True,
    )
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True)
    word, centre, message = out.stdout.split(" ", 2)
    assert word == "ok"
    assert "at least 2 samples" in message
    h, w = 7, 10
    x = np.sin(0.37 * np.arange(h * w)) + 0.01 * np.arange(h * w)
    ref = direct_starlet(x.reshape(h, w), 3)[0, h // 2, w // 2]
    assert abs(float(centre) - ref) < 1e-12


@pytest.mark.parametrize(
    ("n", "error", "match"),
    [(0, InputError, "n must be at least 1, got 0"),
     (2.0, TypeError, "n must be an integer, got 2.0"),
     (True, TypeError, "n must be an integer, got True")],
)
def test_set_num_threads_refuses(n, error, match):
    before = get_num_threads()
    with pytest.raises(error, match=match):
        set_num_threads(n)
    assert get_num_threads() == before
