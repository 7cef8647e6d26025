"""Event lists to count cubes: exact binning, sky WCS, Poisson round trip, checks.

References are independent of the code: event tables are made by hand with
astropy, counts are compared with ``np.histogramdd`` on the same events, world
coordinates with astropy's evaluation of the table's own keywords, and the
simulated counts with the Poisson law of their intensity.
"""

import numpy as np
import pytest

from sgmca_fast import cli, datasets, events
from sgmca_fast._validation import InputError, InputTypeError
from sgmca_fast.cube import Cube, read_fits_cube

fits = pytest.importorskip("astropy.io.fits")
WCS = pytest.importorskip("astropy.wcs").WCS
stats = pytest.importorskip("scipy.stats")

# Each statistical test rejects at 2e-6 (two-sided): with the fixed seeds the
# results are deterministic, and a false failure after a legitimate change of the
# random stream has a probability below 1e-5 for the whole module.
ALPHA = 2e-6

SKY = {"x": ("RA---TAN", 83.63, -1.3e-4, 4096.5),
       "y": ("DEC--TAN", 22.01, 1.4e-4, 4100.25)}


def table(x, y, energy, unit="eV", pi=None, sky=True, name="EVENTS"):
    """An event table made by hand, with the sky WCS in the column keywords."""
    cols = []
    for axis, values in (("x", x), ("y", y)):
        extra = {}
        if sky:
            ctype, crval, cdelt, crpix = SKY[axis]
            extra = {"coord_type": ctype, "coord_ref_value": crval,
                     "coord_inc": cdelt, "coord_ref_point": crpix,
                     "coord_unit": "deg"}
        cols.append(fits.Column(name=axis.upper(), format="D", array=values,
                                **extra))
    cols.append(fits.Column(name="ENERGY", format="D", array=energy, unit=unit))
    if pi is not None:
        cols.append(fits.Column(name="PI", format="J", array=pi))
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["EXTNAME"] = name
    return hdu


def random_events(n=20000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(4000, 4060, n)
    y = rng.uniform(4010, 4050, n)
    e = rng.uniform(300.0, 9000.0, n)  # eV, wider than the band
    # events exactly on interior and outer edges of the grids used below
    x[:5] = [4010.5, 4013.5, 4049.5, 4051.0, 4010.5]
    y[:5] = [4020.5, 4023.5, 4044.5, 4020.5, 4040.0]
    e[:5] = [500.0, 7000.0, 500.0 + 6500.0 / 13, 650.0, 6999.999]
    e[5] = np.nan
    return x, y, e


def reference(x, y, e_kev, e_edges, x0, y0, b, W, H):
    """np.histogramdd on half-open bins: drop values on the last edges first."""
    xe = x0 + b * np.arange(W + 1)
    ye = y0 + b * np.arange(H + 1)
    keep = (e_kev < e_edges[-1]) & (x < xe[-1]) & (y < ye[-1]) & np.isfinite(e_kev)
    counts, _ = np.histogramdd(np.column_stack([e_kev, y, x])[keep],
                               bins=(e_edges, ye, xe))
    return counts.astype(np.int64)


# ----------------------------------------------------------------- exact binning


@pytest.mark.parametrize("log", [False, True])
@pytest.mark.parametrize("unit", ["eV", "keV"])
@pytest.mark.parametrize("chunk_rows", [events.CHUNK_ROWS, 997])
def test_binning_is_exact_against_histogramdd(log, unit, chunk_rows):
    x, y, e = random_events()
    scale = 1.0 if unit == "eV" else 1e-3
    hdu = table(x, y, e * scale, unit=unit)
    cube = events.bin_events(hdu, energy=(0.5, 7.0), channels=13, log=log,
                             binning=3, box=(4010.5, 4050.5, 4020.5, 4045.5),
                             chunk_rows=chunk_rows)
    e_edges = (np.geomspace if log else np.linspace)(0.5, 7.0, 14)
    # the box is cut to whole binned pixels: 13 x 8 pixels of 3
    ref = reference(x, y, e * 1e-3 if unit == "eV" else e * scale, e_edges,
                    4010.5, 4020.5, 3, 13, 8)
    assert cube.data.dtype == np.int32
    assert cube.data.shape == (13, 8, 13)
    np.testing.assert_array_equal(cube.data, ref)
    assert cube.header["EV_ROWS"] == x.size
    assert cube.header["EV_KEPT"] == ref.sum()
    in_band = np.count_nonzero((e * 1e-3 >= 0.5) & (e * 1e-3 < 7.0))
    assert cube.header["EV_BAND"] == in_band
    assert any("cut to whole binned pixels" in n for n in cube.notes)
    np.testing.assert_allclose(
        cube.spectral_axis.values,
        np.sqrt(e_edges[1:] * e_edges[:-1]) if log
        else 0.5 * (e_edges[1:] + e_edges[:-1]), rtol=1e-14)


def test_pi_channels_with_a_gain():
    x, y, e = random_events(seed=1)
    pi = np.rint(np.nan_to_num(e) / 14.6).astype(np.int32)
    hdu = table(x, y, e, pi=pi)
    cube = events.bin_events(hdu, energy=(0.5, 7.0), channels=10, gain=14.6,
                             box=(4000.5, 4059.5, 4010.5, 4049.5), binning=1)
    ref = reference(x, y, pi * 14.6e-3, np.linspace(0.5, 7.0, 11), 4000.5,
                    4010.5, 1, 59, 39)
    np.testing.assert_array_equal(cube.data, ref)


def test_default_box_covers_every_event_of_the_band():
    x, y, e = random_events(seed=2)
    cube = events.bin_events(table(x, y, e), energy=(0.5, 7.0), channels=4,
                             binning=4)
    e_kev = e * 1e-3
    assert cube.header["EV_KEPT"] == np.count_nonzero((e_kev >= 0.5) & (e_kev < 7))
    # the pixel edges are half-integers at the outermost events' pixels
    assert cube.header["SKYX0"] == np.floor(x.min() + 0.5) - 0.5


def test_columns_can_be_renamed_and_are_case_insensitive():
    x, y, e = random_events(seed=3)
    hdu = fits.BinTableHDU.from_columns([
        fits.Column(name="skyx", format="D", array=x),
        fits.Column(name="SKYY", format="D", array=y),
        fits.Column(name="Energy", format="D", array=e, unit="eV")])
    renamed = events.bin_events(hdu, columns=("SKYX", "skyy", "energy"),
                                channels=5, box=(4000.5, 4040.5, 4010.5, 4030.5))
    ref = reference(x, y, e * 1e-3, np.linspace(0.5, 7, 6), 4000.5, 4010.5, 1,
                    40, 20)
    np.testing.assert_array_equal(renamed.data, ref)
    assert any("no sky WCS" in n for n in renamed.notes)
    assert renamed.celestial is None


# ----------------------------------------------------------------------- WCS


def reference_world(x, y):
    """astropy's evaluation of the table keywords at sky pixel coordinates."""
    header = fits.Header()
    for n, axis in ((1, "x"), (2, "y")):
        ctype, crval, cdelt, crpix = SKY[axis]
        header[f"CTYPE{n}"], header[f"CRVAL{n}"] = ctype, crval
        header[f"CDELT{n}"], header[f"CRPIX{n}"] = cdelt, crpix
        header[f"CUNIT{n}"] = "deg"
    # FITS pixel p (1-based, the column's value) is astropy's p - 1
    return np.array(WCS(header).pixel_to_world_values(x - 1.0, y - 1.0))


@pytest.mark.parametrize("binning", [1, 4, 5])
def test_binned_pixel_centre_has_the_world_position_of_its_events(binning,
                                                                  tmp_path):
    x0, y0, W, H = 4070.5, 4080.5, 9, 7
    ix, iy = np.meshgrid(np.arange(W), np.arange(H))
    ix, iy = ix.ravel(), iy.ravel()
    # four events per binned pixel, symmetric about its centre
    dx = np.array([-0.3, 0.3, -0.3, 0.3]) * binning
    dy = np.array([-0.2, -0.2, 0.2, 0.2]) * binning
    cx = x0 + binning * (ix + 0.5)
    cy = y0 + binning * (iy + 0.5)
    x = (cx[:, None] + dx).ravel()
    y = (cy[:, None] + dy).ravel()
    hdu = table(x, y, np.full(x.size, 1000.0))
    cube = events.bin_events(hdu, channels=2, binning=binning,
                             box=(x0, x0 + W * binning, y0, y0 + H * binning))
    assert np.all(cube.data.sum(axis=0) == 4)
    mean_x = x.reshape(-1, 4).mean(axis=1)
    mean_y = y.reshape(-1, 4).mean(axis=1)
    expected = reference_world(mean_x, mean_y)
    got = np.array(cube.celestial.pixel_to_world_values(ix, iy))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)
    # the same through the written file
    path = events.write_counts_cube(tmp_path / "c.fits", cube)
    back = read_fits_cube(path)
    got = np.array(back.celestial.pixel_to_world_values(ix, iy))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)


def test_world_box_keeps_every_event_inside_it():
    x, y, e = random_events(seed=4)
    lon, lat = reference_world(x, y)
    box = (83.637, 83.641, 21.999, 22.001)
    inside = ((lon >= box[0]) & (lon <= box[1]) & (lat >= box[2]) & (lat <= box[3])
              & (e >= 500) & (e < 7000))
    assert 100 < inside.sum() < x.size / 2
    cube = events.bin_events(table(x, y, e), channels=3, world_box=box)
    # whole sky pixels covering the box: everything inside, a little beyond
    assert inside.sum() <= cube.header["EV_KEPT"] < 1.5 * inside.sum()


# ---------------------------------------------------------- simulation round trip


def small_truth(J=5, size=6, seed=0):
    rng = np.random.default_rng(seed)
    S = rng.uniform(0.5, 1.5, (2, size, size))
    A = rng.uniform(0.5, 1.5, (J, 2))
    return S, A


def test_simulated_events_bin_back_to_the_drawn_counts(tmp_path):
    S, A = small_truth(J=8, size=10)
    edges = events.energy_edges((0.5, 8.0), 8, log=True)
    sim = datasets.simulate_events(S, A, 5e4, energy_edges=edges, binning=3,
                                   pi_gain=14.6, random_state=3,
                                   path=tmp_path / "ev.fits")
    assert sim.n_events == sim.counts.sum()
    np.testing.assert_allclose(sim.intensity.sum(), 5e4)
    lam = np.einsum("ji,ihw->jhw", A, S)
    np.testing.assert_allclose(sim.intensity, lam * 5e4 / lam.sum(), rtol=1e-12)
    cube = events.bin_events(sim.path, energy=(0.5, 8.0), channels=8, log=True,
                             binning=3, box=sim.box, chunk_rows=4096)
    np.testing.assert_array_equal(cube.data, sim.counts)
    with fits.open(sim.path) as hdul:
        assert hdul["EVENTS"].columns["ENERGY"].unit == "eV"
        assert hdul["EVENTS"].header["TCTYP1"] == "RA---TAN"
        assert hdul["EVENTS"].columns["X"].format == "E"  # float32


def test_exact_total_draws_exactly_n_photons():
    S, A = small_truth()
    sim = datasets.simulate_events(S, A, 12345, total="exact", random_state=0)
    assert sim.n_events == 12345 == sim.counts.sum()
    with pytest.raises(InputError, match="whole number of photons"):
        datasets.simulate_events(S, A, 10.5, total="exact")


def chi2_two_sided(value, dof):
    return 2 * min(stats.chi2.sf(value, dof), stats.chi2.cdf(value, dof))


@pytest.fixture(scope="module")
def draws():
    """200 binned cubes simulated from one intensity (every lambda >= 20)."""
    S, A = small_truth()
    rng = np.random.default_rng(20240515)
    edges = events.energy_edges((0.5, 8.0), 5)
    cubes = []
    for _ in range(200):
        sim = datasets.simulate_events(S, A, 5 * 36 * 40.0, energy_edges=edges,
                                       random_state=rng)
        cube = events.bin_events(sim.table, energy=(0.5, 8.0), channels=5,
                                 box=sim.box)
        cubes.append(cube.data)
    return np.array(cubes, dtype=np.float64), sim.intensity


def test_round_trip_counts_follow_the_poisson_law(draws):
    N, lam = draws
    assert lam.min() >= 20  # so that Pearson's statistic is chi-square
    n, V = N.shape[0], lam.size
    pearson = np.sum((N - lam) ** 2 / lam)
    assert chi2_two_sided(pearson, n * V) > ALPHA
    # the statistic has power: a 5% error on the intensity is rejected
    assert chi2_two_sided(np.sum((N - 1.05 * lam) ** 2 / (1.05 * lam)),
                          n * V) < ALPHA
    # per-voxel means
    z2 = np.sum((N.mean(axis=0) - lam) ** 2 / (lam / n))
    assert chi2_two_sided(z2, V) > ALPHA
    # dispersion index: the sample variance over the mean is 1 for Poisson
    dispersion = np.sum((n - 1) * N.var(axis=0, ddof=1) / lam)
    assert chi2_two_sided(dispersion, V * (n - 1)) > ALPHA
    index = N.var(axis=0, ddof=1) / N.mean(axis=0)
    assert abs(index.mean() - 1) < 5 * np.sqrt(2 / (n - 1) / V)


# ------------------------------------------------------------------ FITS output


def test_count_cube_fits_file_keeps_counts_axes_and_edges(tmp_path):
    from sgmca_fast import _io

    x, y, e = random_events(seed=5)
    for log in (False, True):
        cube = events.bin_events(table(x, y, e), channels=7, log=log, binning=2)
        path = events.write_counts_cube(tmp_path / f"c{log}.fits", cube)
        back = read_fits_cube(path)
        np.testing.assert_array_equal(back.data, cube.data)
        assert back.unit == "count"
        assert back.spectral_axis.ctype == ("ENER-LOG" if log else "ENER")
        np.testing.assert_allclose(back.spectral_axis.values,
                                   cube.spectral_axis.values, rtol=1e-13)
        with fits.open(path) as hdul:
            bounds = hdul["EBOUNDS"].data
            edges = (np.geomspace if log else np.linspace)(0.5, 7.0, 8)
            np.testing.assert_array_equal(bounds["E_MIN"], edges[:-1])
            np.testing.assert_array_equal(bounds["E_MAX"], edges[1:])
        # integer cubes are valid input of the readers: float64, same values
        X = _io.read_cube(path)
        assert X.dtype == np.float64
        np.testing.assert_array_equal(X, cube.data)


# ---------------------------------------------------------------- count checks


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int32, np.int64,
                                   np.float32, np.float64])
def test_check_counts_accepts_non_negative_integers(dtype):
    X = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    assert events.check_counts(X) is X


@pytest.mark.parametrize("values, message", [
    ([0, -1, 3], "1 negative value"),
    ([0.0, 1.5, 2.0], "not whole numbers"),
    ([0.0, np.nan], "NaN or inf"),
    ([0.0, np.inf], "NaN or inf"),
    ([], "empty"),
])
def test_check_counts_refuses_what_is_not_counts(values, message):
    with pytest.raises(InputError, match=message):
        events.check_counts(np.array(values), "counts")


@pytest.mark.parametrize("values", [[True, False], [1 + 0j]])
def test_check_counts_refuses_other_types(values):
    with pytest.raises(InputTypeError, match="array of counts"):
        events.check_counts(np.array(values))


def test_integer_count_cubes_are_valid_everywhere():
    from sgmca_fast import gmca

    rng = np.random.default_rng(0)
    X = rng.poisson(50.0, (6, 16, 16)).astype(np.int32)
    cube = Cube.from_array(X)
    assert cube.data.dtype == np.int32 and cube.check().n_missing == 0
    a = gmca(X, 2, random_state=0)
    b = gmca(X.astype(np.float64), 2, random_state=0)
    np.testing.assert_array_equal(a.A, b.A)


# ------------------------------------------------------------------- bad input


def test_errors_name_the_problem(tmp_path):
    x, y, e = random_events(seed=6)
    hdu = table(x, y, e)
    with pytest.raises(InputError, match="no energy column 'EN'"):
        events.bin_events(hdu, columns=("X", "Y", "EN"))
    with pytest.raises(InputError, match="give the gain"):
        events.bin_events(table(x, y, e, pi=np.zeros(x.size, np.int32)),
                          columns=("X", "Y", "PHA"))
    with pytest.raises(InputError, match="eV or keV"):
        events.bin_events(table(x, y, e, unit="J"))
    with pytest.raises(InputError, match="smaller than one binned pixel"):
        events.bin_events(hdu, binning=8, box=(4000.5, 4005.5, 4010.5, 4030.5))
    with pytest.raises(InputError, match="more than max_voxels"):
        events.bin_events(hdu, max_voxels=1000)
    with pytest.raises(InputError, match="not both"):
        events.bin_events(hdu, box=(1, 2, 1, 2), world_box=(1, 2, 1, 2))
    with pytest.raises(InputError, match="needs a sky WCS"):
        events.bin_events(table(x, y, e, sky=False), world_box=(1, 2, 1, 2))
    with pytest.raises(InputError, match="e_min < e_max"):
        events.bin_events(hdu, energy=(7, 0.5))
    with pytest.raises(InputError, match="no event in the energy band"):
        events.bin_events(hdu, energy=(20, 30))
    with pytest.raises(InputError, match="channels must be at least 1"):
        events.bin_events(hdu, channels=0)
    image = tmp_path / "image.fits"
    fits.PrimaryHDU(np.zeros((3, 3))).writeto(image)
    with pytest.raises(InputError, match="no binary table"):
        events.bin_events(image)
    with pytest.raises(FileNotFoundError, match="no such file"):
        events.bin_events(tmp_path / "missing.fits")


def test_no_events_extension_falls_back_to_the_first_table():
    x, y, e = random_events(seed=7)
    hdul = fits.HDUList([fits.PrimaryHDU(), table(x, y, e, name="OTHER")])
    cube = events.bin_events(hdul, channels=3)
    assert cube.header["EV_ROWS"] == x.size


# ------------------------------------------------------------- command line


def test_command_line_bins_a_file(tmp_path, capsys):
    S, A = small_truth(J=4, size=8)
    sim = datasets.simulate_events(S, A, 2e4, binning=4, random_state=1,
                                   path=tmp_path / "events.fits")
    out = tmp_path / "cube.fits"
    args = ["bin", str(sim.path), "--energy", "0.5:8", "--channels", "4", "--bin",
            "4", "--box", ",".join(f"{a}:{b}" for a, b in
                                   (sim.box[:2], sim.box[2:])), "-o", str(out)]
    assert cli.main(args) == 0
    assert f"{sim.n_events:,} photons read" in capsys.readouterr().out
    np.testing.assert_array_equal(read_fits_cube(out).data, sim.counts)
    assert cli.main(args) == 2  # exists, no --force
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["bin", str(sim.path), "--energy", "0.5", "-o",
                     str(tmp_path / "x.fits")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "sgmca-fast: error: --energy must be EMIN:EMAX (keV), got '0.5'"
    assert cli.main(["bin", str(sim.path), "-o", str(tmp_path / "x.npy")]) == 2
    assert "written as FITS" in capsys.readouterr().err


def test_workflow_summary_counts(tmp_path):
    from sgmca_fast import workflows

    x, y, e = random_events(seed=8)
    path = tmp_path / "ev.fits"
    fits.HDUList([fits.PrimaryHDU(), table(x, y, e)]).writeto(path)
    run = workflows.bin_events(path, tmp_path / "c.fits", energy=(1.0, 5.0),
                               channels=6, box=(4005.5, 4025.5, 4015.5, 4035.5))
    e_kev = e * 1e-3
    band = (e_kev >= 1) & (e_kev < 5)
    box = band & (x >= 4005.5) & (x < 4025.5) & (y >= 4015.5) & (y < 4035.5)
    assert (run.n_rows, run.n_band, run.n_kept) == (x.size, band.sum(), box.sum())
    assert run.shape == (6, 20, 20)
    assert run.to_dict()["command"] == "bin"
