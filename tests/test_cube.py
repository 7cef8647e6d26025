"""sgmca_fast.cube: FITS cubes with variance, missing voxels and coordinates.

References are independent of the code: FITS files are made by hand with astropy,
spectral coordinates are computed from the header with the FITS linear formula,
world coordinates of the output maps are compared with astropy's evaluation of the
input header.
"""

import csv
import mmap
import subprocess
import sys

import numpy as np
import pytest

from sgmca_fast import __version__
from sgmca_fast._validation import InputError
from sgmca_fast.cube import (
    Cube,
    SpectralAxis,
    read_fits_cube,
    read_spectra_csv,
    write_fits_sources,
    write_spectra_csv,
)

fits = pytest.importorskip("astropy.io.fits")
WCS = pytest.importorskip("astropy.wcs").WCS

J, H, W = 7, 12, 10
RNG = np.random.default_rng(13)

# (CTYPE3, CUNIT3, CRVAL3, step, CRPIX3, how the step is written)
SPECTRAL = {
    "keV": ("ENER", "keV", 0.5, 0.1, 1.0, "CDELT3"),
    "Angstrom-CD": ("WAVE", "Angstrom", 4750.0, 1.25, 3.0, "CD3_3"),
    "Hz": ("FREQ", "Hz", 1.42e9, -2.5e4, 4.5, "CDELT3"),
    "Angstrom-PC": ("AWAV", "Angstrom", 6000.0, 0.8, 2.0, "PC3_3"),
}


def cube_header(kind="Angstrom-CD", shape=(J, H, W)):
    ctype, unit, crval, step, crpix, how = SPECTRAL[kind]
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = 350.85, 58.815
    h["CRPIX1"], h["CRPIX2"] = 5.5, 6.0
    h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
    h["CTYPE3"], h["CUNIT3"] = ctype, unit
    h["CRVAL3"], h["CRPIX3"] = crval, crpix
    if how == "CD3_3":
        h["CD1_1"], h["CD1_2"] = -5.5e-5, 1.0e-5
        h["CD2_1"], h["CD2_2"] = 1.0e-5, 5.5e-5
        h["CD3_3"] = step
    else:
        h["CDELT1"], h["CDELT2"] = -5.5e-5, 5.5e-5
        if how == "PC3_3":
            h["CDELT3"], h["PC3_3"] = 2.0, step / 2.0
        else:
            h["CDELT3"] = step
    h["BUNIT"] = "erg/s/cm2/Angstrom"
    h["OBJECT"] = "test field"
    return h


def expected_values(kind, n=J):
    _, _, crval, step, crpix, _ = SPECTRAL[kind]
    i = np.arange(n)
    return crval + (i + 1 - crpix) * step


def write_file(path, data, header=None, extensions=(), primary_empty=False):
    """A FITS file: the cube in the primary HDU (or in extension 1), then others."""
    if primary_empty:
        hdus = [fits.PrimaryHDU(), fits.ImageHDU(data, header, name="DATA")]
    else:
        hdus = [fits.PrimaryHDU(data, header)]
    for name, values in extensions:
        hdus.append(fits.ImageHDU(values, name=name))
    fits.HDUList(hdus).writeto(path)
    return path


def nan_border_cube(border=2):
    data = RNG.normal(size=(J, H, W)).astype(np.float32)
    data[:, :border, :] = np.nan
    data[:, :, -border:] = np.nan
    return data


# ------------------------------------------------------------- spectral axis


@pytest.mark.parametrize("kind", sorted(SPECTRAL))
def test_spectral_axis_from_header_in_header_units(kind, tmp_path):
    path = write_file(tmp_path / "c.fits", np.zeros((J, H, W)), cube_header(kind))
    cube = read_fits_cube(path)
    ctype, unit = SPECTRAL[kind][:2]
    axis = cube.spectral_axis
    assert axis.unit == unit and axis.ctype == ctype
    np.testing.assert_allclose(axis.values, expected_values(kind), rtol=1e-14)
    assert cube.spectral_label == axis.label


def test_axis_labels_and_columns():
    assert SpectralAxis([1.0, 2.0], "keV", "ENER").label == "Energy (keV)"
    assert SpectralAxis([1.0], "Angstrom", "WAVE").column == "wavelength_Angstrom"
    assert SpectralAxis([1.0], "Angstrom", "AWAV").label == "Air wavelength (Angstrom)"
    assert SpectralAxis([1.0], "Hz", "FREQ-W2F").label == "Frequency (Hz)"
    assert SpectralAxis.from_values([1.0], "keV").ctype == "ENER"
    assert SpectralAxis.from_values([1.0], "nm").ctype == "WAVE"
    assert SpectralAxis.from_values([1.0]).label == "Channel"
    with pytest.raises(ValueError, match="contain NaN or inf"):
        SpectralAxis([1.0, np.nan], "keV", "ENER")


def test_non_linear_spectral_axis(tmp_path):
    # WAVE-LOG: lambda = CRVAL exp((p - CRPIX) CDELT / CRVAL) (FITS paper III)
    h = cube_header("Angstrom-CD")
    h["CTYPE3"] = "WAVE-LOG"
    path = write_file(tmp_path / "log.fits", np.zeros((J, H, W)), h)
    axis = read_fits_cube(path).spectral_axis
    p = np.arange(J) + 1.0
    expected = 4750.0 * np.exp((p - 3.0) * 1.25 / 4750.0)
    np.testing.assert_allclose(axis.values, expected, rtol=1e-13)


def test_invalid_spectral_unit_is_a_note_not_an_error(tmp_path):
    h = cube_header("keV")
    h["CUNIT3"] = "KEV"
    path = write_file(tmp_path / "c.fits", np.zeros((J, H, W)), h)
    cube = read_fits_cube(path)
    assert cube.spectral_axis is None and cube.spectral_label == "Channel"
    assert len(cube.notes) == 1 and "KEV" in cube.notes[0]
    assert cube.celestial is not None  # the image WCS does not depend on axis 3


def test_no_wcs_at_all(tmp_path):
    path = write_file(tmp_path / "c.fits", np.ones((J, H, W)))
    cube = read_fits_cube(path)
    assert cube.spectral_axis is None and cube.celestial is None
    np.testing.assert_array_equal(cube.channel_values, np.arange(J))
    assert cube.unit == "" and cube.variance is None and cube.mask is None


# ------------------------------------------------------------ reading a cube


def test_nan_border_and_error_extension(tmp_path):
    data = nan_border_cube()
    err = RNG.uniform(0.5, 2.0, size=data.shape).astype(np.float32)
    path = write_file(tmp_path / "c.fits", data, cube_header(), primary_empty=True,
                      extensions=[("ERR", err), ("WMAP", np.ones_like(err))])
    cube = read_fits_cube(path)
    np.testing.assert_array_equal(cube.data, data)
    np.testing.assert_allclose(cube.variance, err.astype(np.float64) ** 2,
                               rtol=1e-6)
    assert cube.variance_source == "ERR extension (HDU 2), squared"
    assert cube.unit == "erg/s/cm2/Angstrom"
    np.testing.assert_array_equal(cube.missing(), np.isnan(data))
    info = cube.missing_info
    n_border = H * W - (H - 2) * (W - 2)
    assert info.n_missing == J * n_border
    assert info.n_empty_pixels == n_border
    assert info.dead_channels == () and info.n_scattered == 0


def test_variance_extension_is_preferred_to_error(tmp_path):
    data = RNG.normal(size=(J, H, W))
    var = RNG.uniform(1, 2, size=data.shape)
    path = write_file(tmp_path / "c.fits", data, cube_header(),
                      extensions=[("ERR", np.sqrt(var) * 7), ("stat", var)])
    cube = read_fits_cube(path)
    np.testing.assert_array_equal(cube.variance, var)
    assert cube.variance_source == "STAT extension (HDU 2)"
    assert read_fits_cube(path, variance_ext=None).variance is None
    np.testing.assert_allclose(read_fits_cube(path, variance_ext="ERR").variance,
                               49 * var, rtol=1e-12)


def test_one_variance_per_channel(tmp_path):
    var = np.linspace(1.0, 30.0, J) ** 2
    path = write_file(tmp_path / "c.fits", np.ones((J, H, W)), cube_header(),
                      extensions=[("VARIANCE", var)])
    cube = read_fits_cube(path)
    np.testing.assert_array_equal(cube.variance, var)


def test_dq_extension_is_the_mask(tmp_path):
    data = np.ones((J, H, W))
    dq = np.zeros((J, H, W), dtype=np.int32)
    dq[2, 3, 4] = 1
    dq[5, 0, 0] = 512
    path = write_file(tmp_path / "c.fits", data, cube_header(),
                      extensions=[("DQ", dq)])
    cube = read_fits_cube(path)
    assert cube.mask_source == "DQ extension (HDU 1), nonzero"
    np.testing.assert_array_equal(cube.missing(), dq != 0)
    assert cube.missing_info.n_scattered == 2
    assert read_fits_cube(path, dq_ext=None).missing() is None


def test_degenerate_stokes_axis_is_dropped(tmp_path):
    h = cube_header("Hz")
    data = RNG.normal(size=(1, J, H, W))
    path = write_file(tmp_path / "c.fits", data, h)
    cube = read_fits_cube(path)
    assert cube.data.shape == (J, H, W)
    np.testing.assert_allclose(cube.spectral_axis.values, expected_values("Hz"),
                               rtol=1e-14)


def _is_memory_mapped(array):
    base = array
    while base is not None:
        if isinstance(base, (np.memmap, mmap.mmap)):
            return True
        base = getattr(base, "base", None)
    return False


def test_data_is_memory_mapped_not_loaded(tmp_path):
    shape = (40, 128, 128)  # 2.6 MB of float32
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    path = write_file(tmp_path / "big.fits", data, cube_header(shape=shape),
                      extensions=[("VARIANCE", np.ones(shape, np.float32))])
    cube = read_fits_cube(path)
    assert _is_memory_mapped(cube.data) and _is_memory_mapped(cube.variance)
    # usable after the file was closed by the reader
    assert cube.data[39, 127, 127] == data[39, 127, 127]


@pytest.mark.parametrize(
    ("extensions", "match"),
    [
        ([("VARIANCE", np.ones((J, H, W - 1)))],
         r"c\.fits: variance must have one value per channel \(7,\) or the "
         r"data's shape \(7, 12, 10\), got shape \(7, 12, 9\)"),
        ([("VAR", -np.ones((J, H, W)))],
         r"c\.fits: variance must be positive where data is present, got 840 "
         r"voxel\(s\) <= 0 \(first at channel 0, pixel \(0, 0\)\)"),
        ([("VAR", np.r_[np.ones(J - 1), 0.0])],
         r"c\.fits: variance must be positive, got 0\.0 for channel 6"),
        ([("DQ", np.zeros((J, H), np.int16))], r"c\.fits: mask must be a bool"),
    ],
)
def test_bad_extensions_are_input_errors(tmp_path, extensions, match):
    from sgmca_fast._validation import InputError

    path = write_file(tmp_path / "c.fits", np.ones((J, H, W)), cube_header(),
                      extensions=extensions)
    with pytest.raises(InputError, match=match):
        read_fits_cube(path)


def test_infinite_data_is_an_error_nan_is_not(tmp_path):
    from sgmca_fast._validation import InputError

    data = np.ones((J, H, W))
    data[1, 2, 3] = np.nan
    data[4, 5, 6] = -np.inf
    path = write_file(tmp_path / "c.fits", data, cube_header())
    with pytest.raises(InputError, match=r"1 infinite voxel\(s\) .*first at "
                       r"channel 4, pixel \(5, 6\)"):
        read_fits_cube(path)
    cube = read_fits_cube(path, check=False)  # lazy: nothing read yet
    assert cube.missing_info is None


def test_zero_variance_is_allowed_only_on_missing_voxels(tmp_path):
    data = np.ones((J, H, W))
    var = np.ones((J, H, W))
    data[3, 4, 5] = np.nan
    var[3, 4, 5] = 0.0
    var[0, 0, 0] = np.nan  # no information: missing
    var[6, 0, 1] = np.inf  # infinite noise: missing too
    path = write_file(tmp_path / "c.fits", data, cube_header(),
                      extensions=[("VARIANCE", var)])
    expected = np.isnan(data) | ~np.isfinite(var)
    np.testing.assert_array_equal(read_fits_cube(path).missing(), expected)
    var[2, 2, 2] = -np.inf
    with pytest.raises(ValueError, match=r"1 voxel\(s\) <= 0 \(first at channel 2, "
                       r"pixel \(2, 2\)\)"):
        Cube.from_array(data, variance=var).check()


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: write_file(p, np.ones((H, W))), r"no 3-D image HDU .* found 0 "
         r"PRIMARY \(12, 10\)"),
        (lambda p: p.write_text("not fits"), "not a readable FITS file"),
    ],
)
def test_files_without_a_cube(tmp_path, make, match):
    from sgmca_fast._validation import InputError

    path = tmp_path / "c.fits"
    make(path)
    with pytest.raises(InputError, match=match):
        read_fits_cube(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_fits_cube(tmp_path / "absent.fits")


def test_channels_must_be_axis_3(tmp_path):
    from sgmca_fast._validation import InputError

    h = cube_header()
    h["CTYPE3"], h["CTYPE1"] = "RA---TAN", "WAVE"
    path = write_file(tmp_path / "c.fits", np.ones((J, H, W)), h)
    with pytest.raises(InputError, match="FITS axis 3 is 'RA---TAN', a sky axis"):
        read_fits_cube(path)


def test_without_astropy_fits_says_how_to_install(tmp_path):
    code = (
        "import sys; sys.modules['astropy'] = None\n"
        "import numpy as np\n"
        "from sgmca_fast.cube import Cube, SpectralAxis, read_fits_cube\n"
        "X = np.ma.masked_array(np.ones((3, 4, 5)), mask=np.zeros((3, 4, 5)))\n"
        "X.mask[1, 2, 3] = True\n"
        "c = Cube.from_array(X, spectral_axis=SpectralAxis([1., 2., 3.], 'keV', "
        "'ENER'))\n"
        "print(c.check().n_missing, c.spectral_label)\n"
        "try:\n"
        "    read_fits_cube('x.fits')\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True, cwd=tmp_path)
    assert out.stdout.splitlines() == [
        "1 Energy (keV)",
        "x.fits: FITS needs astropy: pip install 'sgmca-fast[fits]'",
    ]


# ---------------------------------------------------------- plain-array cubes


def test_missing_summary_counts_match_numpy():
    X = RNG.normal(size=(J, H, W))
    X[:, :2, :] = np.nan  # border rows
    X[[1, 4], :, :] = np.nan  # dead channels
    X[3, 7, 7] = X[5, 8, 2] = np.nan  # scattered
    mask = np.zeros(X.shape, dtype=bool)
    mask[6, 9, 9] = True
    cube = Cube.from_array(X, mask=mask)
    missing = np.isnan(X) | mask
    info = cube.check()
    assert info.n_missing == missing.sum()
    assert info.dead_channels == tuple(np.flatnonzero(missing.all(axis=(1, 2))))
    assert info.n_empty_pixels == missing.all(axis=0).sum()
    assert info.n_scattered == 3
    assert str(info) == (f"{missing.sum()} of {X.size} voxels "
                         f"({100 * missing.sum() / X.size:.3g}%) are missing: 2 "
                         "whole channel(s) (1, 4; from 0), 20 whole pixel(s), 3 "
                         "scattered voxel(s)")
    np.testing.assert_array_equal(cube.missing(), missing)


def test_missing_is_none_when_complete_and_blocks_cover_all(monkeypatch):
    from sgmca_fast import _cube

    monkeypatch.setattr(_cube, "_BLOCK_VOXELS", 2 * H * W)  # blocks of 2 channels
    X = RNG.normal(size=(J, H * W))
    assert Cube.from_array(X).missing() is None
    X[J - 1, 5] = np.nan  # in the last, partial block
    assert Cube.from_array(X).missing().sum() == 1


def test_from_array_keeps_the_array_and_checks_shapes():
    X = np.ones((J, H, W), dtype=np.float32)
    cube = Cube.from_array(X, variance=np.ones((J, 1, 1)))
    assert cube.data is X and cube.variance.shape == (J,)
    assert cube.spatial_shape == (H, W) and cube.n_pixels == H * W
    with pytest.raises(ValueError, match=r"spectral axis has 2 values for 7"):
        Cube.from_array(X, spectral_axis=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"cube \(J, H, W\) or a matrix"):
        Cube.from_array(np.ones(5))
    with pytest.raises(TypeError, match="real numeric array, got dtype complex"):
        Cube.from_array(X.astype(complex))


# ----------------------------------------------------------------- writing


def test_source_maps_keep_the_world_coordinates(tmp_path):
    header = cube_header("Angstrom-CD")
    path = write_file(tmp_path / "c.fits", nan_border_cube(), header)
    cube = read_fits_cube(path)
    S = RNG.normal(size=(3, H, W)).astype(np.float32)
    A = RNG.uniform(size=(J, 3))
    out = write_fits_sources(tmp_path / "maps.fits", S, cube, spectra=A,
                             names=["gas", "stars", "sky"],
                             parameters={"n_sources": 3, "model": "sync"},
                             history=["command: separate c.fits"],
                             keywords={"SGMCAMAX": 100})
    with fits.open(out) as hdul:
        maps, table = hdul[0], hdul["SPECTRA"]
        np.testing.assert_array_equal(maps.data, S)
        head = maps.header
        # reference: astropy's evaluation of the *input* header, axes 1-2
        ref = WCS(header).celestial
        got = WCS(head).celestial
        x, y = np.array([0, 3, 9, 4.5]), np.array([0, 11, 2, 6.25])
        np.testing.assert_allclose(got.pixel_to_world_values(x, y),
                                   ref.pixel_to_world_values(x, y), rtol=1e-13)
        assert head["CTYPE3"] == "SOURCE" and head["NAXIS3"] == 3
        assert head["BUNIT"] == "erg/s/cm2/Angstrom"
        assert head["OBJECT"] == "test field" and head["SRCNAME2"] == "stars"
        assert head["SGMCAMAX"] == 100
        history = [str(h) for h in head["HISTORY"]]
        assert history == [f"sgmca-fast {__version__}",
                           "command: separate c.fits", "n_sources = 3",
                           "model = 'sync'"]
        assert table.columns.names == ["WAVELENGTH", "gas", "stars", "sky"]
        assert table.header["TUNIT1"] == "Angstrom"
        np.testing.assert_allclose(table.data["WAVELENGTH"],
                                   expected_values("Angstrom-CD"), rtol=1e-14)
        np.testing.assert_array_equal(table.data["stars"], A[:, 1])


def test_source_maps_without_cube_and_shape_errors(tmp_path):
    out = write_fits_sources(tmp_path / "m.fits", np.ones((2, 5)),
                             spectra=np.ones((4, 2)))
    with fits.open(out) as hdul:
        assert "CTYPE1" not in hdul[0].header
        np.testing.assert_array_equal(hdul[1].data["CHANNEL"], np.arange(4))
    cube = read_fits_cube(write_file(tmp_path / "c.fits", np.ones((J, H, W)),
                                     cube_header()))
    with pytest.raises(ValueError, match=r"maps of shape \(4, 4\) do not match"):
        write_fits_sources(tmp_path / "x.fits", np.ones((2, 4, 4)), cube)
    with pytest.raises(ValueError, match=r"spectra must be \(J, 2\)"):
        write_fits_sources(tmp_path / "x.fits", np.ones((2, H, W)), cube,
                           spectra=np.ones((J, 3)))
    assert not (tmp_path / "x.fits").exists()


def test_spectra_csv_round_trip(tmp_path):
    axis = SpectralAxis(expected_values("keV"), "keV", "ENER")
    A = RNG.uniform(size=(J, 2))
    path = write_spectra_csv(tmp_path / "A.csv", A, axis, names=["iron", "sync"])
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["energy_keV", "iron", "sync"]
    assert [float(r[0]) for r in rows[1:]] == list(expected_values("keV"))
    A2, axis2, names = read_spectra_csv(path)
    np.testing.assert_array_equal(A2, A)  # repr round-trips a float exactly
    assert axis2 == axis
    assert (axis2.unit, axis2.ctype, names) == ("keV", "ENER", ["iron", "sync"])
    path = write_spectra_csv(tmp_path / "B.csv", A)
    A3, axis3, names3 = read_spectra_csv(path)
    np.testing.assert_array_equal(A3, A)
    assert axis3 is None and names3 == ["source1", "source2"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken(self, name, **kwargs):
        with open(name, "wb") as fh:
            fh.write(b"SIMPLE  =  half a file")
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", broken)
    # _io reports a failed write as bad input, naming the file and the OS error.
    with pytest.raises(InputError, match="m.fits: cannot be written .disk full"):
        write_fits_sources(tmp_path / "m.fits", np.ones((2, 3, 3)))
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_kept_without_force(tmp_path):
    path = tmp_path / "A.csv"
    path.write_text("old")
    with pytest.raises(ValueError, match="already exists; use --force"):
        write_spectra_csv(path, np.ones((3, 1)))
    assert path.read_text() == "old"
    write_spectra_csv(path, np.ones((3, 1)), force=True)
    assert path.read_text().startswith("channel,source1")
