import os
import stat

import numpy as np
import pytest

from sgmca_fast import _io


@pytest.fixture
def cube():
    return np.random.default_rng(0).random((6, 5, 4))


def test_npy_round_trip(tmp_path, cube):
    np.save(tmp_path / "x.npy", cube)
    out = _io.read_cube(tmp_path / "x.npy")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, cube)


def test_channel_axis_moved_first(tmp_path, cube):
    np.save(tmp_path / "x.npy", np.moveaxis(cube, 0, -1))
    out = _io.read_cube(tmp_path / "x.npy", channel_axis=-1)
    np.testing.assert_array_equal(out, cube)
    with pytest.raises(ValueError, match="channel axis 3 out of range"):
        _io.read_cube(tmp_path / "x.npy", channel_axis=3)


def test_npz_single_and_keyed(tmp_path, cube):
    np.savez(tmp_path / "one.npz", data=cube)
    np.testing.assert_array_equal(_io.read_cube(tmp_path / "one.npz"), cube)
    np.savez(tmp_path / "two.npz", X=cube, other=np.ones(3))
    np.testing.assert_array_equal(_io.read_cube(tmp_path / "two.npz", key="X"), cube)
    with pytest.raises(ValueError, match=r"two\.npz: holds 2 arrays .*name the one"):
        _io.read_cube(tmp_path / "two.npz")
    with pytest.raises(ValueError, match=r"no array named 'Y'; found \['X', 'other'\]"):
        _io.read_cube(tmp_path / "two.npz", key="Y")


def test_integer_cube_becomes_float(tmp_path):
    np.save(tmp_path / "i.npy", np.arange(24, dtype=np.int16).reshape(2, 3, 4))
    assert _io.read_cube(tmp_path / "i.npy").dtype == np.float64


def test_fits_round_trip(tmp_path, cube):
    pytest.importorskip("astropy")
    from astropy.io import fits

    fits.PrimaryHDU(cube.astype(np.float32)).writeto(tmp_path / "x.fits")
    np.testing.assert_allclose(_io.read_cube(tmp_path / "x.fits"), cube, rtol=1e-6)
    path = _io.write_fits(tmp_path / "est.fits", {"A": np.ones((6, 2)), "S": cube[:2]})
    est = _io.read_estimate(path)
    np.testing.assert_array_equal(est["A"], np.ones((6, 2)))
    np.testing.assert_array_equal(est["S"], cube[:2])


def test_csv_spectra_with_header(tmp_path):
    (tmp_path / "s.csv").write_text("c0,c1,c2\n1,2,3\n4,5,6\n\n")
    np.testing.assert_array_equal(
        _io.read_spectra(tmp_path / "s.csv"), [[1, 2, 3], [4, 5, 6]]
    )
    (tmp_path / "bad.csv").write_text("1,2,3\n4,x,6\n")
    with pytest.raises(ValueError, match=r"bad\.csv: line 2 is not numeric"):
        _io.read_spectra(tmp_path / "bad.csv")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    with pytest.raises(ValueError, match="rows have different lengths"):
        _io.read_spectra(tmp_path / "ragged.csv")


def test_one_spectrum_is_one_row(tmp_path):
    np.save(tmp_path / "s.npy", np.ones(7))
    assert _io.read_spectra(tmp_path / "s.npy").shape == (1, 7)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("x.npy", b"not numpy at all", r"x\.npy: not a readable \.npy file"),
        ("x.npz", b"PK garbage", r"x\.npz: not a readable \.npz archive"),
        ("x.fits", b"SIMPLE garbage", r"x\.fits: not a readable FITS file"),
        ("x.dat", b"1 2 3", r"x\.dat: unknown file type '\.dat'"),
    ],
)
def test_unreadable_files(tmp_path, name, content, message):
    if name.endswith(".fits"):
        pytest.importorskip("astropy")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=message):
        _io.read_cube(tmp_path / name)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.npy: no such file"):
        _io.read_cube(tmp_path / "nope.npy")


def test_non_numeric_nan_and_ndim(tmp_path):
    np.save(tmp_path / "s.npy", np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(ValueError, match=r"s\.npy: holds <U1 values, not real"):
        _io.read_cube(tmp_path / "s.npy")
    np.save(tmp_path / "c.npy", np.ones((2, 2, 2), dtype=complex))
    with pytest.raises(ValueError, match="not real numbers"):
        _io.read_cube(tmp_path / "c.npy")
    bad = np.ones((3, 4, 4))
    bad[1, 2, 2] = np.nan
    bad[2, 0, 0] = np.inf
    np.save(tmp_path / "nan.npy", bad)
    # a cube's NaN voxels are missing data, inf is an error; spectra take neither
    with pytest.raises(ValueError, match=r"nan\.npy: contains 1 infinite value"):
        _io.read_cube(tmp_path / "nan.npy")
    with pytest.raises(ValueError, match=r"nan\.npy: contains 2 NaN or inf value"):
        _io.read_spectra(tmp_path / "nan.npy")
    bad[2, 0, 0] = 1.0
    np.save(tmp_path / "nan.npy", bad)
    read = _io.read_cube(tmp_path / "nan.npy")
    assert np.isnan(read[1, 2, 2]) and np.count_nonzero(np.isnan(read)) == 1
    np.save(tmp_path / "flat.npy", np.ones(5))
    with pytest.raises(ValueError, match=r"must have 2 or 3 dimensions.*\(5,\)"):
        _io.read_cube(tmp_path / "flat.npy")
    np.save(tmp_path / "s4.npy", np.ones((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="2-D .*spectra.*got shape"):
        _io.read_spectra(tmp_path / "s4.npy")


def test_pickles_are_refused(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"o\.npy: not a readable \.npy file"):
        _io.read_cube(tmp_path / "o.npy")


def test_write_npz_and_read_estimate(tmp_path, cube):
    A = np.ones((6, 2))
    path = _io.write_npz(tmp_path / "e.npz", {"A": A, "S": cube[:2],
                                              "mapping": np.array(["a", ""])})
    est = _io.read_estimate(path)
    assert sorted(est) == ["A", "S"]
    with np.load(path, allow_pickle=False) as data:
        assert list(data["mapping"]) == ["a", ""]
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode & stat.S_IRGRP, oct(mode)  # not the 0600 of a temporary file
    _io.write_npz(tmp_path / "bad.npz", {"A": A})
    with pytest.raises(ValueError, match=r"bad\.npz: missing array\(s\) \['S'\]"):
        _io.read_estimate(tmp_path / "bad.npz")
    _io.write_npz(tmp_path / "wrong.npz", {"A": A, "S": cube[:3]})
    with pytest.raises(ValueError, match="S must be .* with I = 2"):
        _io.read_estimate(tmp_path / "wrong.npz")


def test_overwrite_refused_without_force(tmp_path):
    path = _io.write_npz(tmp_path / "e.npz", {"A": np.zeros(2)})
    with pytest.raises(ValueError, match=r"e\.npz: already exists; use --force"):
        _io.write_npz(path, {"A": np.ones(2)})
    _io.write_npz(path, {"A": np.ones(2)}, force=True)
    with np.load(path) as data:
        np.testing.assert_array_equal(data["A"], np.ones(2))


def test_missing_output_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="output folder does not exist"):
        _io.write_npz(tmp_path / "no" / "e.npz", {"A": np.zeros(2)})


def test_interrupted_write_leaves_nothing(tmp_path):
    def write(tmp):
        with open(tmp, "w") as fh:
            fh.write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _io.atomic_write(tmp_path / "out.txt", write)
    assert list(tmp_path.iterdir()) == []
    # an existing file survives a failed replacement untouched
    (tmp_path / "out.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        _io.atomic_write(tmp_path / "out.txt", write, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
    assert (tmp_path / "out.txt").read_text() == "old"


def test_csv_round_trip(tmp_path):
    A = np.random.default_rng(1).random((5, 3))
    path = _io.write_csv(tmp_path / "A.csv", A, ["a", "b", "c"])
    assert path.read_text().splitlines()[0] == "a,b,c"
    np.testing.assert_array_equal(_io.read_spectra(path), A)  # exact: repr floats
    with pytest.raises(ValueError, match="already exists"):
        _io.write_csv(path, A)


def test_read_mask(tmp_path):
    flags = np.array([[0, 4], [1, 0]], dtype=np.int16)  # e.g. DQ bits
    np.save(tmp_path / "dq.npy", flags)
    np.testing.assert_array_equal(_io.read_mask(tmp_path / "dq.npy"),
                                  [[False, True], [True, False]])
    np.save(tmp_path / "b.npy", np.array([True, False]))
    np.testing.assert_array_equal(_io.read_mask(tmp_path / "b.npy"), [True, False])
    np.save(tmp_path / "n.npy", np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match=r"n\.npy: a mask holds booleans or "
                                         "integer flags, not NaN"):
        _io.read_mask(tmp_path / "n.npy")
    np.save(tmp_path / "s.npy", np.array(["x"]))
    with pytest.raises(ValueError, match=r"s\.npy: a mask holds booleans"):
        _io.read_mask(tmp_path / "s.npy")


def test_read_estimate_of_a_sources_file(tmp_path):
    pytest.importorskip("astropy")
    from sgmca_fast import cube

    rng = np.random.default_rng(1)
    A, S = rng.random((9, 2)), rng.random((2, 5, 6))
    S[:, 0, 0] = np.nan  # a pixel left out of the fit
    axis = cube.SpectralAxis.from_values(np.linspace(1, 2, 9), "keV", "ENER")
    data = cube.Cube.from_array(np.ones((9, 5, 6)), spectral_axis=axis)
    path = cube.write_fits_sources(tmp_path / "s.fits", S, data, spectra=A)
    est = _io.read_estimate(path)
    np.testing.assert_array_equal(est["A"], A)
    np.testing.assert_array_equal(est["S"], S)
