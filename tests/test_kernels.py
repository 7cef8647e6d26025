"""The Numba kernels against the plain numpy versions in tests/naive.py."""

import naive  # tests/naive.py (pytest's pythonpath)
import numpy as np
import pytest

import sgmca_fast
from sgmca_fast import _kernels

# short rows use a plain quickselect, rows from 2048 on a sampled bracket
LENGTHS = [1, 2, 3, 4, 7, 10, 101, 1000, 1001, 2048, 5000, 5001]

# The data dtypes the kernels keep (float32 in, float32 buffers; the references
# of tests/naive.py compute in float64 from the same values). One tolerance per
# dtype: float64 to rounding, float32 a few of its ulps (eps 1.2e-7) in the MAD
# (the median of float32 deviations) and in a thresholded value.
DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-14, np.float32: 1e-6}


def _rows(n_pix, seed=0, n_rows=5):
    """Random rows with ties (rounded values), one all-zero row, one constant row."""
    rng = np.random.default_rng(seed + n_pix)
    x = rng.standard_normal((n_rows, n_pix))
    x[1] = np.round(x[1] * 2) / 2  # many ties
    x[2] = 0.0
    x[3] = 1.5
    return x


@pytest.fixture
def one_thread():
    before = sgmca_fast.get_num_threads()
    sgmca_fast.set_num_threads(1)
    yield
    sgmca_fast.set_num_threads(before)


# ---------------------------------------------------------------- mad_std


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_pix", LENGTHS)
def test_mad_std_matches_numpy(n_pix, dtype):
    x = _rows(n_pix).astype(dtype)
    x_before = x.copy()
    got = _kernels.mad_std(x)
    assert got.dtype == np.float64 and got.shape == (x.shape[0],)
    np.testing.assert_allclose(got, naive.mad_std(x), rtol=RTOL[dtype], atol=0)
    np.testing.assert_array_equal(x, x_before)  # input untouched


def test_mad_std_many_rows_out_buffer_and_threads(one_thread):
    x = np.random.default_rng(1).laplace(size=(17, 500))
    out = np.full(17, np.nan)
    res = _kernels.mad_std(x, out=out)
    assert res is out
    np.testing.assert_allclose(out, naive.mad_std(x), rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.int64])
def test_mad_std_converts_dtype_and_order(dtype):
    x = (np.random.default_rng(2).standard_normal((30, 6)) * 10).astype(dtype).T
    got = _kernels.mad_std(x)
    rtol = RTOL.get(dtype, 1e-14)
    np.testing.assert_allclose(got, naive.mad_std(x.astype(np.float64)), rtol=rtol)


def test_mad_std_adversarial_orders():
    n = 2000
    rows = np.stack(
        [
            np.arange(n, dtype=float),
            np.arange(n, dtype=float)[::-1],
            np.tile([0.0, 1.0], n // 2),
            np.r_[np.zeros(n - 1), 1.0],
        ]
    )
    np.testing.assert_allclose(_kernels.mad_std(rows), naive.mad_std(rows), rtol=1e-14)


def test_mad_std_sorted_and_structured_long_rows():
    n = 30_000
    ramp = np.arange(n, dtype=float)
    rows = np.stack(
        [
            ramp,
            ramp[::-1],
            np.sin(ramp / 50.0),  # smooth image-like structure
            np.r_[np.zeros(n - 10), np.ones(10)],
            np.round(np.random.default_rng(3).standard_normal(n), 1),  # ties
            np.zeros(n),
        ]
    )
    np.testing.assert_allclose(_kernels.mad_std(rows), naive.mad_std(rows), rtol=1e-14)


@pytest.mark.parametrize("n_pix", [2048, 9999, 10_000])
def test_selection_fallback_when_sample_misleads(n_pix):
    # put large values exactly at the strided sample positions: the bracket from
    # the sample misses the true order statistics and the kernel must fall back
    m = int(n_pix ** (2.0 / 3.0))
    x = np.random.default_rng(4).random((2, n_pix))
    positions = (np.arange(m) * (n_pix / m)).astype(int)
    x[:, positions] = 100.0 + np.arange(m)
    x[1, positions] *= -1
    np.testing.assert_allclose(_kernels.mad_std(x), naive.mad_std(x), rtol=1e-14)
    thr = np.full(2, 0.5)
    np.testing.assert_array_equal(
        _kernels.support_thresholds(x, thr, 0.5), naive.support_thresholds(x, thr, 0.5)
    )


def test_mad_std_errors():
    with pytest.raises(ValueError, match=r"x must be 2-D \(rows, pixels\), got shape"):
        _kernels.mad_std(np.ones(5))
    with pytest.raises(ValueError, match="x must have at least one column"):
        _kernels.mad_std(np.ones((3, 0)))
    with pytest.raises(TypeError, match="x must be a real numeric array"):
        _kernels.mad_std(np.ones((2, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"out must have shape \(3,\), got \(4,\)"):
        _kernels.mad_std(np.ones((3, 4)), out=np.empty(4))
    with pytest.raises(TypeError, match="out must have dtype float64, got float32"):
        _kernels.mad_std(np.ones((3, 4)), out=np.empty(3, dtype=np.float32))


# ------------------------------------------------------ support_thresholds


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_pix", LENGTHS)
@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 0.5, 1.0])
def test_support_thresholds_matches_sort(n_pix, fraction, dtype):
    x = _rows(n_pix, seed=3).astype(dtype)
    thr = np.array([0.5, 0.2, 0.0, 1.0, 3.0])
    got = _kernels.support_thresholds(x, thr, fraction)
    expected = naive.support_thresholds(x, thr, fraction)
    assert got.dtype == np.float64
    # an order statistic of |x|: one of the data's values, exact in any dtype
    np.testing.assert_array_equal(got, expected)


def test_support_thresholds_is_partition_value():
    x = np.random.default_rng(4).standard_normal((6, 1000))
    thr = np.full(6, 1.0)
    fraction, min_count = 0.25, 5
    got = _kernels.support_thresholds(x, thr, fraction, min_count=min_count)
    ax = np.abs(x)
    for r in range(6):
        npix = int(np.sum(ax[r] > thr[r]))
        kval = max(int(fraction * npix), min_count)
        expected = np.partition(ax[r], ax.shape[1] - kval)[ax.shape[1] - kval]
        assert got[r] == expected
        # exactly kval coefficients are >= the new threshold (no ties here)
        assert np.sum(ax[r] >= got[r]) == kval


def test_support_thresholds_min_count_and_short_rows():
    x = np.array([[0.0, 0.0, 0.0], [1.0, -2.0, 3.0], [5.0, 4.0, -6.0]])
    # npix small -> kval = min_count = 5 > P = 3 -> the smallest |x|
    got = _kernels.support_thresholds(x, 0.5, 0.5, min_count=5)
    np.testing.assert_array_equal(got, [0.0, 1.0, 4.0])
    got = _kernels.support_thresholds(x, 0.5, 0.5, min_count=1)
    np.testing.assert_array_equal(got, [0.0, 3.0, 6.0])  # kval = 1 -> the largest


def test_support_thresholds_out_and_threads(one_thread):
    x = np.random.default_rng(5).standard_normal((9, 333))
    thr = np.linspace(0.1, 2, 9)
    out = np.empty(9)
    assert _kernels.support_thresholds(x, thr, 0.4, 3, out=out) is out
    np.testing.assert_array_equal(out, naive.support_thresholds(x, thr, 0.4, 3))


def test_support_thresholds_errors():
    x = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"thr must be a scalar or have shape \(2,\)"):
        _kernels.support_thresholds(x, [1.0, 2.0, 3.0], 0.5)
    with pytest.raises(ValueError, match="fraction must be >= 0.0, got -0.1"):
        _kernels.support_thresholds(x, 1.0, -0.1)
    with pytest.raises(TypeError, match="fraction must be a real number, got '0.5'"):
        _kernels.support_thresholds(x, 1.0, "0.5")
    with pytest.raises(ValueError, match="min_count must be at least 1, got 0"):
        _kernels.support_thresholds(x, 1.0, 0.5, min_count=0)
    with pytest.raises(TypeError, match="min_count must be an integer, got 2.0"):
        _kernels.support_thresholds(x, 1.0, 0.5, min_count=2.0)
    with pytest.raises(ValueError, match="x must be 2-D"):
        _kernels.support_thresholds(np.ones((2, 2, 2)), 1.0, 0.5)


# --------------------------------------------------------------- threshold


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("reweight", [False, True])
@pytest.mark.parametrize("n_pix", [1, 10, 1001])
def test_threshold_matches_numpy(hard, reweight, n_pix, dtype):
    rng = np.random.default_rng(6 + n_pix)
    x = rng.standard_normal((5, n_pix)).astype(dtype)
    x[2] = 0.0
    thr = np.array([0.5, 0.0, 1.0, 0.3, np.inf])
    kw = {}
    if reweight:
        kw = {"prev": rng.standard_normal((5, n_pix)).astype(dtype),
              "kstd": [1.0, 2.0, 0.5, 0.0, 3]}
    expected = naive.threshold(x, thr, hard=hard, **kw)
    got = _kernels.threshold(x, thr, hard=hard, **kw)
    assert got is not x
    assert got.dtype == dtype
    np.testing.assert_allclose(got, expected, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hard", [False, True])
def test_threshold_in_place(hard, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 300)).astype(dtype)
    prev = rng.standard_normal((4, 300)).astype(dtype)
    expected = naive.threshold(x, 0.7, prev=prev, kstd=2.1, hard=hard)
    res = _kernels.threshold(x, 0.7, prev=prev, kstd=2.1, hard=hard, out=x)
    assert res is x and x.dtype == dtype
    np.testing.assert_allclose(x, expected, rtol=RTOL[dtype], atol=0)


def test_threshold_kstd_zero_means_no_reweighting():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3, 50))
    prev = rng.standard_normal((3, 50))
    plain = _kernels.threshold(x, 0.5)
    reweighted = _kernels.threshold(x, 0.5, prev=prev, kstd=0.0)
    np.testing.assert_array_equal(plain, reweighted)
    assert np.all(np.isfinite(reweighted))


def test_threshold_values_by_hand():
    x = np.array([[-3.0, -1.0, 0.0, 1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(
        _kernels.threshold(x, 1.0), [[-2.0, 0.0, 0.0, 0.0, 1.0, 2.0]]
    )
    np.testing.assert_array_equal(
        _kernels.threshold(x, 1.0, hard=True), [[-3.0, 0.0, 0.0, 0.0, 2.0, 3.0]]
    )
    # |prev| / kstd = 1 -> threshold halved
    prev = np.full_like(x, -2.0)
    np.testing.assert_array_equal(
        _kernels.threshold(x, 2.0, prev=prev, kstd=2.0),
        [[-2.0, 0.0, 0.0, 0.0, 1.0, 2.0]],
    )


@pytest.mark.parametrize(("dtype", "kept"), [(np.float32, np.float32),
                                             (np.float16, np.float64),
                                             (np.int32, np.float64)])
def test_threshold_dtype_policy(dtype, kept):
    # float32 is kept, any other real dtype computed in float64; a float64 prev
    # with float32 x follows x
    rng = np.random.default_rng(9)
    x = (rng.standard_normal((3, 40)) * 4).astype(dtype)
    prev = rng.standard_normal((3, 40))
    got = _kernels.threshold(x, [0.1, 0.2, 0.3], prev=prev, kstd=1.0)
    assert got.dtype == kept
    expected = naive.threshold(x, [0.1, 0.2, 0.3], prev=prev.astype(kept), kstd=1.0)
    np.testing.assert_allclose(got, expected, rtol=RTOL[kept])


def test_threshold_errors():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="prev and kstd must be given together"):
        _kernels.threshold(x, 1.0, prev=x)
    with pytest.raises(ValueError, match=r"prev must have the shape of x \(2, 3\)"):
        _kernels.threshold(x, 1.0, prev=np.ones((2, 4)), kstd=1.0)
    with pytest.raises(ValueError, match=r"kstd must be a scalar or have shape \(2,\)"):
        _kernels.threshold(x, 1.0, prev=x, kstd=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="thr must be >= 0"):
        _kernels.threshold(x, [-1.0, 1.0])
    with pytest.raises(ValueError, match="kstd must be >= 0"):
        _kernels.threshold(x, 1.0, prev=x, kstd=-1.0)
    with pytest.raises(TypeError, match="hard must be True or False, got .yes."):
        _kernels.threshold(x, 1.0, hard="yes")
    with pytest.raises(TypeError, match="out must have dtype float64, got float32"):
        _kernels.threshold(x, 1.0, out=np.ones((2, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="out must have dtype float32, got float64"):
        _kernels.threshold(x.astype(np.float32), 1.0, out=np.ones((2, 3)))
    with pytest.raises(ValueError, match="out must be a writeable C-contiguous"):
        _kernels.threshold(x, 1.0, out=np.ones((3, 2)).T)
    with pytest.raises(ValueError, match="x must be 2-D"):
        _kernels.threshold(np.ones(3), 1.0)


# ---------------------------------------------------------- nonneg_sources


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape", [(1, 1, 1), (4, 3, 1000), (2, 2, 9000), (3, 1, 4097), (2, 5, 8192)]
)
def test_nonneg_sources_matches_numpy(shape, dtype):
    w = np.random.default_rng(10).standard_normal(shape).astype(dtype)
    w[0, :, 0] = [1.0, -1.0] + [0.0] * (shape[1] - 2) if shape[1] >= 2 else [0.0]
    # the reference sums the planes in float64, as the kernel does: the same
    # pixels are zeroed and the others kept bit for bit
    expected = naive.nonneg_sources(w)
    res = _kernels.nonneg_sources(w)
    assert res is w and w.dtype == dtype
    np.testing.assert_array_equal(w, expected)
    assert np.all(w.sum(axis=1) >= -1e-12)


def test_nonneg_sources_threads(one_thread):
    w = np.random.default_rng(11).standard_normal((3, 3, 5000))
    expected = naive.nonneg_sources(w)
    np.testing.assert_array_equal(_kernels.nonneg_sources(w), expected)


def test_nonneg_sources_empty():
    for shape in [(0, 3, 5), (2, 0, 5), (2, 3, 0)]:
        w = np.ones(shape)
        assert _kernels.nonneg_sources(w) is w


def test_nonneg_sources_errors():
    with pytest.raises(TypeError, match="w must be a numpy array, got list"):
        _kernels.nonneg_sources([[[1.0]]])
    with pytest.raises(TypeError, match="w must have dtype float32 or float64"):
        _kernels.nonneg_sources(np.ones((1, 1, 2), dtype=np.float16))
    with pytest.raises(ValueError, match="w must be 3-D"):
        _kernels.nonneg_sources(np.ones((2, 2)))
    with pytest.raises(ValueError, match="w must be a writeable C-contiguous"):
        _kernels.nonneg_sources(np.ones((2, 2, 3)).transpose(2, 1, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (8, 1000)])
def test_relative_change_matches_numpy(shape, dtype):
    rng = np.random.default_rng(11)
    new, old = rng.standard_normal((2,) + shape).astype(dtype)
    # reference in float64 from the same values: the kernel accumulates in
    # float64 whatever the dtype, so the tolerance is float64's
    new64, old64 = new.astype(np.float64), old.astype(np.float64)
    expected = np.linalg.norm(new64 - old64) / np.linalg.norm(new64)
    assert _kernels.relative_change(new, old) == pytest.approx(expected, rel=1e-12)


def test_relative_change_mixed_dtypes_in_float64():
    rng = np.random.default_rng(12)
    new = rng.standard_normal((3, 50)).astype(np.float32)
    old = rng.standard_normal((3, 50))
    expected = np.linalg.norm(new - old) / np.linalg.norm(new.astype(np.float64))
    assert _kernels.relative_change(new, old) == pytest.approx(expected, rel=1e-12)


def test_relative_change_of_zero_arrays():
    zero = np.zeros((2, 5))
    assert _kernels.relative_change(zero, zero) == 0.0
    assert _kernels.relative_change(zero, np.ones((2, 5))) == np.inf
    with pytest.raises(ValueError, match="old must have the shape of new"):
        _kernels.relative_change(zero, np.zeros((2, 4)))
