"""separate(dtype=np.float32): single precision for the data-sized arrays.

The references are the float64 solver on the same mixture (a second code path
through the same algorithm: the agreement is what float32 rounding allows) and
the buffers' dtypes seen by the kernels and the memory traced per iteration
(tracemalloc), which a float64 copy of the data or of the sources would raise.
"""

import tracemalloc

import numpy as np
import pytest

from sgmca_fast import SGMCA, _kernels, _stages, datasets, gmca, metrics, separate
from sgmca_fast._validation import InputError
from sgmca_fast.data import builtin_models

SIZE = 64


@pytest.fixture(scope="module")
def mix():
    return datasets.make_demo_mixture(size=SIZE, snr_db=40, random_state=0)


@pytest.fixture(scope="module")
def models():
    built = builtin_models()
    return {built["sync"]: 1, built["thermal"]: 1, built["gauss"]: 2}


@pytest.fixture(scope="module")
def runs(mix, models):
    """sGMCA on the demo mixture in float64 and in float32, same seed."""
    return {dt: separate(mix.X, 4, models, noise_std=mix.noise_std, random_state=0,
                         dtype=dt)
            for dt in (np.float64, np.float32)}


def max_angle(A, B):
    """Largest angle (radians) between corresponding columns of A and B."""
    cos = np.sum(A * B, axis=0) / (np.linalg.norm(A, axis=0)
                                   * np.linalg.norm(B, axis=0))
    return float(np.max(np.arccos(np.clip(cos, -1.0, 1.0))))


def test_sgmca_float32_agrees_with_float64(mix, runs):
    r64, r32 = runs[np.float64], runs[np.float32]
    assert r32.S.dtype == np.float32 and r32.A.dtype == np.float64
    assert r64.S.dtype == np.float64
    assert (r32.dtype, r64.dtype) == ("float32", "float64")
    assert r32.mapping == r64.mapping and r32.n_iter == r64.n_iter
    # same start, same decisions: the spectra differ by float32 rounding only
    assert max_angle(r32.A, r64.A) < 1e-3  # radians (0.06 degree)
    S64 = r64.S.reshape(4, -1)
    rel = np.linalg.norm(r32.S.reshape(4, -1) - S64, axis=1) / np.linalg.norm(
        S64, axis=1)
    assert rel.max() < 1e-3
    e64 = metrics.evaluate(mix.A0, mix.S0, r64.A, r64.S, noise=mix.N)
    e32 = metrics.evaluate(mix.A0, mix.S0, r32.A, r32.S, noise=mix.N)
    assert abs(e32["SAD"] - e64["SAD"]) < 0.05  # dB; the issue asks 0.2
    assert abs(e32["SDR"] - e64["SDR"]) < 0.05
    assert r32.confidence.dtype == np.float64
    np.testing.assert_allclose(r32.confidence, r64.confidence, atol=1e-3)


def _record_dtypes(monkeypatch):
    """Record the dtypes of every array handed to the iterations' kernels."""
    seen = []

    def wrap(module, name):
        original = getattr(module, name)

        def spy(*args, **kwargs):
            seen.extend((name, a.dtype) for a in (*args, *kwargs.values())
                        if isinstance(a, np.ndarray) and a.ndim >= 2)
            return original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)

    for name in ("threshold", "relative_change", "support_thresholds",
                 "mad_std"):
        wrap(_kernels, name)
    wrap(_stages, "mixing_ls")
    return seen


@pytest.mark.parametrize("subspace", [None, 8])
@pytest.mark.parametrize("noise", ["given", "mad"])
def test_no_float64_data_sized_array_in_the_iterations(mix, monkeypatch, subspace,
                                                       noise):
    seen = _record_dtypes(monkeypatch)
    X = mix.X.astype(np.float32)
    J, P = X.shape[0], X[0].size
    detail32 = 4 * 2 * P * 4  # the sources' detail buffer (I, nscales, P), float32
    growth = []

    def callback(info):
        current, peak = tracemalloc.get_traced_memory()
        if info["iteration"] > 0:
            growth.append(peak - last[0])
        last[0] = current
        tracemalloc.reset_peak()

    last = [0]
    tracemalloc.start()
    try:
        res = gmca(X, 4, noise_std=mix.noise_std if noise == "given" else "mad",
                   random_state=0, dtype=np.float32, subspace=subspace,
                   callback=callback)
    finally:
        tracemalloc.stop()
    assert res.S.dtype == np.float32
    assert seen and {dt for _, dt in seen} == {np.dtype(np.float32)}, seen[:5]
    # within an iteration nothing near the size of the sources' buffer in
    # float64 (2 * detail32) is allocated, let alone the data's (J / 4 times more)
    assert len(growth) > 50
    assert max(growth) < 1.5 * detail32, (max(growth), detail32, J)


def test_subspace_float32_agrees_with_float64(mix):
    kw = {"noise_std": mix.noise_std, "random_state": 0, "subspace": "auto"}
    r64 = gmca(mix.X, 4, **kw)
    r32 = gmca(mix.X, 4, dtype="float32", **kw)
    assert r32.S.dtype == np.float32
    assert r32.subspace["rank"] == r64.subspace["rank"]
    assert max_angle(r32.A, r64.A) < 1e-3


def test_fixed_spectra_and_1d_data_in_float32(mix):
    X = mix.X.reshape(mix.X.shape[0], -1)  # (J, P): the 1-D starlet
    kw = {"noise_std": mix.noise_std, "random_state": 0,
          "fixed": {0: mix.A0[:, 0]}}
    r64 = gmca(X, 4, **kw)
    r32 = gmca(X, 4, dtype=np.float32, **kw)
    assert r32.S.dtype == np.float32 and r32.S.shape == (4, X.shape[1])
    np.testing.assert_array_equal(r32.A[:, 0], mix.A0[:, 0])
    assert max_angle(r32.A, r64.A) < 1e-3


def test_default_is_float64_bit_for_bit(mix):
    kw = {"noise_std": mix.noise_std, "random_state": 3}
    base = gmca(mix.X, 4, **kw)
    assert base.dtype == "float64" and base.S.dtype == np.float64
    for dt in (np.float64, "float64", np.dtype("float64")):
        other = gmca(mix.X, 4, dtype=dt, **kw)
        np.testing.assert_array_equal(other.A, base.A)
        np.testing.assert_array_equal(other.S, base.S)
        assert other.history["delta_S"] == base.history["delta_S"]


def test_float32_input_with_default_dtype_is_float64(mix):
    # dtype=None means float64 whatever the input's dtype (today's behaviour)
    kw = {"noise_std": mix.noise_std, "random_state": 0}
    res = gmca(mix.X.astype(np.float32), 4, **kw)
    assert res.dtype == "float64" and res.S.dtype == np.float64


@pytest.mark.parametrize("bad", ["float16", "f4", np.int32, np.float16, 32, "double"])
def test_bad_dtype_is_refused(mix, bad):
    match = (r"dtype must be one of None, \['float32', 'float64'\] \(or "
             r"numpy.float32, numpy.float64\), got ")
    with pytest.raises(InputError, match=match):
        gmca(mix.X, 4, dtype=bad)


def test_float32_refuses_what_has_no_float32_path(mix):
    X = mix.X.copy()
    X[0, 0, 0] = np.nan
    with pytest.raises(InputError, match=r"dtype=float32 is not available with "
                       r"missing data \(NaN or mask\); use dtype=None"):
        gmca(X, 4, dtype=np.float32)
    with pytest.raises(InputError, match="not available with a per-voxel variance"):
        gmca(mix.X, 4, variance=np.ones(mix.X.shape), dtype=np.float32)
    with pytest.raises(InputError, match='not available with noise="poisson"'):
        gmca(np.ones_like(mix.X), 4, noise="poisson", dtype=np.float32)


def test_data_beyond_float32_range_are_refused(mix):
    with pytest.raises(InputError, match=r"X has values beyond the range of "
                       r"float32 \(\|x\| > 3.4e\+38, or inf\); use dtype=None"):
        gmca(mix.X * 1e40, 4, dtype=np.float32)


def test_rescaled_float32_data_stay_finite(mix):
    # magnitudes beyond float32's safe range are scaled by a power of two inside
    kw = {"noise_std": mix.noise_std * 2.0**60, "random_state": 0}
    big = gmca(mix.X * 2.0**60, 4, dtype=np.float32, **kw)
    ref = gmca(mix.X, 4, dtype=np.float32, noise_std=mix.noise_std, random_state=0)
    assert np.all(np.isfinite(big.S))
    assert max_angle(big.A, ref.A) < 1e-6
    np.testing.assert_allclose(big.S / 2.0**60, ref.S, rtol=1e-5, atol=1e-6)


def test_estimator_dtype(mix):
    X, shape = SGMCA.cube_to_samples(mix.X)
    kw = {"noise_std": mix.noise_std, "image_shape": shape, "random_state": 0}
    e32 = SGMCA(4, dtype="float32", **kw).fit(X)
    e64 = SGMCA(4, **kw).fit(X)
    assert e32.sources_.dtype == np.float32 and e32.mixing_.dtype == np.float64
    assert e32.get_params()["dtype"] == "float32"
    assert max_angle(e32.mixing_, e64.mixing_) < 1e-3


def _traced_peak(fn, *args, **kwargs):
    """Peak numpy memory (bytes, tracemalloc) of one call above what was held."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        fn(*args, **kwargs)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("rank", [0, 4])
def test_noise_estimate_of_float32_data(mix, rank):
    from sgmca_fast.noise import estimate_noise_std

    X32 = mix.X.astype(np.float32)
    X64 = X32.astype(np.float64)  # the same values: only the arithmetic differs
    s32 = estimate_noise_std(X32, rank=rank)
    s64 = estimate_noise_std(X64, rank=rank)
    assert s32.dtype == np.float64
    # a median of float32-rounded residuals: 1e-3, against the MAD's own
    # statistical spread of 1.3 / sqrt(64 * 64) = 2%
    np.testing.assert_allclose(s32, s64, rtol=1e-3)
    # worked on in float32: no float64 copy of the cube, so about half the peak
    assert _traced_peak(estimate_noise_std, X32, rank=rank) < 0.6 * _traced_peak(
        estimate_noise_std, X64, rank=rank)
