"""Cubes not in memory: the streamed passes against numpy and the in-memory solver."""

import numpy as np
import pytest
from test_subspace import details, mixture

from sgmca_fast import _stream, _subspace, noise, separate, starlet
from sgmca_fast._validation import InputError

SMALL_BLOCK = 150_000  # bytes: a 64 x 64 cube of 24 channels is read in many blocks


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(_stream, "BLOCK_BYTES", SMALL_BLOCK)


@pytest.fixture
def cube():
    X, A, S, sigma = mixture(0, J=24, n_src=3, side=64)
    return X, A, sigma


def test_gram_and_sketch_products_match_numpy(cube, small_blocks):
    X = cube[0]
    Xd = details(X).reshape(X.shape[0], -1)
    data = _stream._Details(_stream.Cube(X), 2, 0)
    assert len(_stream.Cube(X).row_strips(4, 6)) > 4  # strips with a halo
    np.testing.assert_allclose(data.gram(), Xd @ Xd.T, rtol=1e-12)
    rng = np.random.default_rng(3)
    scale, Q = rng.uniform(0.5, 2.0, X.shape[0]), rng.standard_normal((24, 5))
    Y = Xd / scale[:, None]
    np.testing.assert_allclose(data.apply_gram(scale, Q), Y @ (Y.T @ Q), rtol=1e-11)


def test_gram_of_signals_matches_numpy(small_blocks):
    X = np.random.default_rng(4).standard_normal((6, 400)).cumsum(axis=1)
    Xd = starlet.forward1d(X, 3)[:, :3].reshape(6, -1)
    gram = _stream._Details(_stream.Cube(X), 3, 0).gram()
    np.testing.assert_allclose(gram, Xd @ Xd.T, rtol=1e-12)


def test_noise_std_matches_the_in_memory_estimate(cube, small_blocks):
    X = cube[0]
    survey = _stream._survey(_stream.Cube(X), 2)
    np.testing.assert_allclose(survey["sigma"], noise.estimate_noise_std(X),
                               rtol=1e-12)
    c = {"noise_std": None, "variance": None, "n_sources": 3}
    sigma, origin = _stream._noise(c, survey, X.shape[0])
    assert origin == "estimated"
    np.testing.assert_allclose(sigma, noise.estimate_noise_std(X, rank=3),
                               rtol=1e-12)


def test_noise_refinement_on_a_subset_of_rows(cube, monkeypatch):
    """Half the rows kept: within 3 x 1.3 / sqrt(1920 coefficients) = 9%.

    (1.3 / sqrt(n): the MAD's relative spread, noise._MAD_SPREAD; measured 3.7%
    at most over the 24 channels.)
    """
    X = cube[0]
    monkeypatch.setattr(_stream, "REFINE_BYTES", 32 * 24 * 64 * 8)
    survey = _stream._survey(_stream.Cube(X), 2)
    assert survey["kept"].shape == (24, 32 * 64)
    c = {"noise_std": None, "variance": None, "n_sources": 3}
    sigma = _stream._noise(c, survey, X.shape[0])[0]
    exact = noise.estimate_noise_std(X, rank=3)
    assert np.max(np.abs(sigma / exact - 1)) < 0.09
    assert not np.allclose(sigma, exact, rtol=1e-6)  # a subset, not all rows


def test_projection_matches_lower(cube, small_blocks):
    X, _, sigma = cube
    sub = _subspace.reduce(details(X), 5, noise_std=sigma)
    W = (sub.basis / sub.scale[:, None]).T
    c = _stream.Cube(X)
    blocks = c.channel_blocks(4)
    assert len(blocks) > 2
    Zw = c.run(_stream._project_block, blocks, lambda i: (2, W[:, blocks[i]], 0),
               "sum")
    Xd = starlet.forward(X, 2).reshape(24, 3, -1)[:, :2]
    np.testing.assert_allclose(Zw, sub.lower(Xd), rtol=1e-11, atol=1e-12)


def _compare(full, streamed, rtol=1e-9):
    np.testing.assert_allclose(streamed.A, full.A, rtol=rtol, atol=rtol)
    scale = np.abs(full.S).max()
    np.testing.assert_allclose(streamed.S, full.S, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(streamed.noise_std, full.noise_std, rtol=1e-12)
    np.testing.assert_allclose(streamed.confidence, full.confidence, rtol=1e-8)
    assert streamed.subspace["rank"] == full.subspace["rank"]
    if full.subspace["floor"] is None:  # a given rank: no noise floor
        assert streamed.subspace["floor"] is None
    else:
        assert streamed.subspace["floor"] == pytest.approx(full.subspace["floor"],
                                                           rel=1e-12)
    assert streamed.n_iter == full.n_iter


@pytest.mark.parametrize("given", [False, True])
def test_streamed_separate_equals_the_in_memory_subspace_run(cube, small_blocks,
                                                             given):
    """Same rank, same seed: same A, S (the final stage from M X) and confidence."""
    X, A, sigma = cube
    kw = {"noise_std": sigma if given else None, "random_state": 1}
    full = separate(X, 3, subspace="auto", **kw)
    streamed = separate(X, 3, subspace="auto", stream=True, **kw)
    _compare(full, streamed)
    assert streamed.subspace["streamed"]["dask"] is False


def test_streamed_randomized_path_equals_in_memory(cube, small_blocks, monkeypatch):
    monkeypatch.setattr(_subspace, "GRAM_MAX_CHANNELS", 10)
    X = cube[0]
    full = separate(X, 3, subspace=6, random_state=2)
    streamed = separate(X, 3, subspace=6, stream=True, random_state=2)
    assert streamed.subspace["method"] == "randomized"
    _compare(full, streamed, rtol=1e-8)


def test_streamed_signals_and_float32_memmap(tmp_path, small_blocks):
    rng = np.random.default_rng(5)
    S = np.where(rng.random((2, 2000)) < 0.05, rng.laplace(size=(2, 2000)), 0.0)
    A = np.abs(rng.standard_normal((12, 2)))
    X = (A @ S + 0.01 * rng.standard_normal((12, 2000))).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    Xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    full = separate(X, 2, subspace=4, random_state=0)
    streamed = separate(Xm, 2, subspace=4, random_state=0)  # a memmap: streamed
    assert streamed.subspace is not None and "streamed" in streamed.subspace
    _compare(full, streamed)


def test_memmap_fits_and_dask_give_the_ndarray_result(cube, tmp_path, small_blocks):
    X = cube[0]
    ref = separate(X, 3, stream=True, random_state=4)
    np.save(tmp_path / "x.npy", X)
    _compare(ref, separate(np.load(tmp_path / "x.npy", mmap_mode="r"), 3,
                           random_state=4), rtol=1e-12)
    fits = pytest.importorskip("astropy.io.fits")
    fits.PrimaryHDU(X).writeto(tmp_path / "x.fits")
    with fits.open(tmp_path / "x.fits", memmap=True) as hdul:
        got = separate(_stream.OnDisk(hdul[0].data), 3, random_state=4)
    _compare(ref, got, rtol=1e-12)
    da = pytest.importorskip("dask.array")
    import dask

    with dask.config.set(scheduler="threads"):
        got = separate(da.from_array(X, chunks=(5, 64, 64)), 3, random_state=4)
    assert got.subspace["streamed"]["dask"] is True
    _compare(ref, got, rtol=1e-12)


def test_dask_on_a_distributed_cluster(cube, small_blocks):
    distributed = pytest.importorskip("distributed",
                                      reason="dask.distributed is not installed")
    da = pytest.importorskip("dask.array")
    X = cube[0]
    ref = separate(X, 3, stream=True, random_state=4)
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2,
                            dashboard_address=None) as client:
        Xd = da.from_array(X, chunks=(8, 64, 64))
        got = separate(Xd, 3, random_state=4)
        assert client.run_on_scheduler(lambda dask_scheduler: len(
            dask_scheduler.task_prefixes)) > 0  # the tasks ran on the cluster
    _compare(ref, got, rtol=1e-12)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"mask": np.zeros((24, 64, 64), bool)}, "a mask"),
    ({"variance": np.ones((24, 64, 64))}, "per-voxel variance"),
    ({"fixed": {0: np.ones(24)}}, r"fixed spectra \(fixed=\)"),
    ({"noise": "poisson"}, "noise='poisson'"),
    ({"noise_std": "mad", "subspace": 5}, "noise_std='mad'"),
    ({"n_sources": "auto"}, "n_sources='auto'"),
    ({"dtype": np.float32}, "dtype=float32"),
    ({"k": -1.0}, "k"),
    ({"subspace": 2}, "subspace"),
    ({"A_init": np.ones((3, 3))}, r"A_init must have shape \(J, I\)"),
])
def test_refused_before_any_read(cube, monkeypatch, kwargs, match):
    def no_read(self, index):
        raise AssertionError("data read before the checks")

    monkeypatch.setattr(_stream.Cube, "read", no_read)
    kwargs = {"n_sources": 3, **kwargs}
    with pytest.raises(InputError, match=match):
        separate(cube[0], stream=True, **kwargs)


def test_streamed_refusal_names_the_fix(cube):
    with pytest.raises(InputError, match=r"is streamed and cannot be used with "
                       r"a mask.*np\.asarray\(X\), or stream=False"):
        separate(cube[0], 3, mask=np.zeros((24, 64, 64), bool), stream=True)


@pytest.mark.parametrize("kwargs", [{"n_sources": "auto"},
                                    {"mask": np.zeros((24, 64, 64), bool)},
                                    {"dtype": np.float32}])
def test_a_memmap_needing_the_in_memory_solver_is_read_in(cube, tmp_path, kwargs):
    """stream=None: a memmap with options only the in-memory solver has runs
    there (as before streaming existed) and gives the ndarray's result."""
    path = tmp_path / "cube.npy"
    np.save(path, cube[0])
    kwargs = {"n_sources": 3, **kwargs}
    ref = separate(cube[0], random_state=0, **kwargs)
    got = separate(np.load(path, mmap_mode="r"), random_state=0, **kwargs)
    assert got.subspace is None  # the full space: not streamed
    np.testing.assert_array_equal(got.A, ref.A)
    np.testing.assert_array_equal(got.S, ref.S)


def test_nan_is_refused_in_the_first_pass(cube):
    X = cube[0].copy()
    X[3, 10, 10] = np.nan
    with pytest.raises(InputError, match="NaN or inf values: missing data are not "
                       "streamed"):
        separate(X, 3, stream=True)


def test_data_are_read_in_bounded_blocks(cube, small_blocks, monkeypatch):
    """Every read is at most BLOCK_BYTES with its planes; none is the whole cube."""
    X = cube[0]
    sizes = []
    read = _stream.Cube.read

    def recording(self, index):
        block = read(self, index)
        sizes.append(block.nbytes)
        return block

    monkeypatch.setattr(_stream.Cube, "read", recording)
    separate(X, 3, stream=True, random_state=0)
    assert len(sizes) > 20
    # at most the budget, or the smallest strip: 6 rows and 6 of halo each side
    assert max(sizes) <= max(SMALL_BLOCK, 18 * 24 * 64 * 8)
    assert max(sizes) < X.nbytes / 3
    # pass 1, the Gram strips (with their halo), the projection and the final pass
    assert sum(sizes) >= 4 * X.nbytes


def test_read_cube_memory_maps_npy_and_fits(cube, tmp_path):
    from sgmca_fast import _io

    X = cube[0].astype(np.float32)
    np.save(tmp_path / "x.npy", np.moveaxis(X, 0, -1))  # channels last
    got = _io.read_cube(tmp_path / "x.npy", channel_axis=-1, mmap=True)
    assert isinstance(got, np.memmap) and got.dtype == np.float32
    np.testing.assert_array_equal(got, X)
    fits = pytest.importorskip("astropy.io.fits")
    fits.PrimaryHDU(X).writeto(tmp_path / "x.fits")
    got = _io.read_cube(tmp_path / "x.fits", mmap=True)
    assert not got.flags.owndata and got.dtype.kind == "f"
    np.testing.assert_array_equal(got, X)


@pytest.mark.parametrize("suffix", [".npy", ".fits"])
def test_separate_file_streams_big_complete_cubes(cube, tmp_path, monkeypatch,
                                                  suffix):
    from sgmca_fast import _workflow_separate, workflows

    X = cube[0]
    path = tmp_path / f"x{suffix}"
    if suffix == ".npy":
        np.save(path, X)
    else:
        pytest.importorskip("astropy.io.fits").PrimaryHDU(X).writeto(path)
    monkeypatch.setattr(_workflow_separate, "STREAM_BYTES", 0)  # every file is big
    lines = []
    run = workflows.separate_file(path, tmp_path / "out", n_sources=3,
                                  figures=False, log=lines.append)
    assert "cube: streamed in blocks, not read into memory" in lines
    ref = separate(X, 3, stream=True, random_state=0)
    _compare(ref, run.result, rtol=1e-12)
    X[0, 0, 0] = np.nan  # missing data: read into memory, not streamed
    np.save(tmp_path / "nan.npy", X)
    lines = []
    run = workflows.separate_file(tmp_path / "nan.npy", tmp_path / "out2",
                                  n_sources=3, figures=False, log=lines.append)
    assert not any("streamed" in line for line in lines)
    assert run.result.missing is not None


def test_noise_refinement_by_lanczos_equals_eigh(cube, monkeypatch):
    """Above _EIGH_MAX channels the top directions come from eigsh: same std."""
    X = cube[0]
    survey = _stream._survey(_stream.Cube(X), 2)
    args = (survey["kept"], survey["usable"], survey["sigma"], survey["norm0"], 3)
    exact = noise._refine_fixed(*args)
    monkeypatch.setattr(noise, "_EIGH_MAX", 5)
    np.testing.assert_allclose(noise._refine_fixed(*args), exact, rtol=1e-9)


def test_noise_from_a_subset_of_rows_widens_the_floor(cube, monkeypatch):
    """The floor's margin follows the coefficients the noise came from."""
    X = cube[0]
    full = separate(X, 3, subspace="auto", random_state=0)
    monkeypatch.setattr(_stream, "REFINE_BYTES", 16 * 24 * 64 * 8)  # 16 rows
    streamed = separate(X, 3, stream=True, random_state=0)
    wider = _subspace.noise_floor(24, (64, 64), 2, count=16 * 60)
    assert streamed.subspace["floor"] == pytest.approx(wider, rel=1e-12)
    assert streamed.subspace["floor"] > 1.01 * full.subspace["floor"]


@pytest.mark.parametrize("power", [300, -300])
def test_extreme_magnitudes_are_rescaled_as_in_memory(cube, small_blocks, power):
    X = np.ldexp(cube[0], power)
    full = separate(X, 3, subspace=5, random_state=0)
    streamed = separate(X, 3, subspace=5, stream=True, random_state=0)
    _compare(full, streamed)
    assert np.all(np.isfinite(streamed.S)) and np.abs(streamed.S).max() > 0
