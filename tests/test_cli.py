"""The command line, run as a user runs it: a subprocess on small files."""

import json
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from sgmca_fast import cli, datasets

SIZE = 32  # pixels: keeps each separation well under a few seconds


def run(*args, cwd=None):
    # Never from the repository root: ``python -m`` puts the working folder first on
    # sys.path, where the uncompiled sources would shadow the installed package.
    return subprocess.run(
        [sys.executable, "-m", "sgmca_fast.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd or tempfile.gettempdir(), timeout=300,
    )


class Result:
    """What an in-process run of main() returned and printed."""

    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def call(capsys):
    """Run main() in this process (fast: no interpreter start) like run()."""

    def call(*args):
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call


def assert_user_error(result, *fragments):
    """Exit 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("sgmca-fast: error: "), err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small demo mixture saved as a cube and a truth file."""
    folder = tmp_path_factory.mktemp("cli")
    mix = datasets.make_demo_mixture(size=SIZE, random_state=1)
    np.save(folder / "cube.npy", mix.X)
    np.savez(folder / "truth.npz", A=mix.A0, S=mix.S0, N=mix.N)
    return folder, mix


def test_help_lists_commands(capsys):
    result = run("--help")
    assert result.returncode == 0
    for command in ("demo", "train", "separate", "evaluate", "info"):
        assert command in result.stdout
    with pytest.raises(SystemExit):
        cli.main(["separate", "--help"])
    assert "NAME=PATH.onnx[:COUNT]" in capsys.readouterr().out


def test_user_error_as_a_process(tmp_path):
    result = run("separate", tmp_path / "missing.npy", "-n", 4, "-o", tmp_path / "o")
    assert_user_error(result, "missing.npy", "no such file")


def test_demo(tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "--out", out, "--size", SIZE, "--seed", 3)
    assert result.returncode == 0, result.stderr
    assert "sGMCA" in result.stdout and "GMCA" in result.stdout
    assert "SAD (dB)" in result.stdout
    summary = json.loads((out / "metrics.json").read_text())
    for method in ("sGMCA", "GMCA"):
        assert set(summary["metrics"][method]) >= {"SAD", "SDR", "SIR", "SNR", "SAR"}
    with np.load(out / "sgmca.npz", allow_pickle=False) as est:
        assert est["A"].shape == (75, 4) and est["S"].shape == (4, SIZE, SIZE)
        assert sorted(est["mapping"]) == ["gauss", "gauss", "sync", "thermal"]
    for name in ("spectra", "sources_sgmca", "sources_gmca", "convergence_sgmca"):
        assert (out / f"{name}.png").stat().st_size > 5000
    # a second run refuses to overwrite, names the file, and --force allows it
    again = run("demo", "--out", out, "--size", SIZE, "--quiet")
    assert_user_error(again, "truth.npz", "already exists", "--force")

    # evaluate reads what the demo wrote
    result = run("evaluate", out / "sgmca.npz", out / "truth.npz", "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert len(scores["SAD_per_source"]) == 4
    assert isinstance(scores["SNR"], float)  # the truth holds the noise
    table = run("evaluate", out / "gmca.npz", out / "truth.npz")
    assert table.returncode == 0 and "SAR (dB)" in table.stdout


def test_separate_builtin_models_json(tmp_path, data):
    folder, mix = data
    out = tmp_path / "res"
    result = run(
        "separate", folder / "cube.npy", "-n", 4, "--model", "sync",
        "--model", "thermal", "--model", "gauss:2", "-o", out, "--json",
        "--noise-std", mix.noise_std, "--max-iter", 10, "--truth",
        folder / "truth.npz",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["method"] == "sGMCA"
    assert sorted(summary["mapping"]) == ["gauss", "gauss", "sync", "thermal"]
    assert summary["metrics"]["SAD"] > 5
    assert json.loads((out / "summary.json").read_text()) == summary
    with np.load(out / "estimate.npz", allow_pickle=False) as est:
        assert est["S"].shape == (4, SIZE, SIZE)
        A = est["A"]
    csv = np.loadtxt(out / "A.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(csv[:, 0], np.arange(75))  # no spectral axis
    np.testing.assert_allclose(csv[:, 1:], A)
    for name in ("spectra", "sources", "convergence"):
        assert (out / f"{name}.png").stat().st_size > 5000


def test_separate_gmca_to_files(tmp_path, data):
    folder, _ = data
    np.savez(tmp_path / "cube.npz", X=np.moveaxis(np.load(folder / "cube.npy"), 0, -1))
    result = run(
        "separate", tmp_path / "cube.npz", "--key", "X", "--channel-axis", -1,
        "-n", 4, "--gmca-only", "-o", tmp_path / "out.npz", "--no-figures",
    )
    assert result.returncode == 0, result.stderr
    assert "GMCA: 4 sources" in result.stdout
    assert (tmp_path / "out_A.csv").is_file()
    assert not (tmp_path / "out_spectra.png").exists()
    again = [*result.args[3:], "--quiet"]  # the same command, quietly
    assert_user_error(run(*again), "out.npz", "already exists", "--force")
    forced = run(*again, "--force")
    assert forced.returncode == 0, forced.stderr
    assert forced.stdout == ""
    pytest.importorskip("astropy")
    result = run("separate", folder / "cube.npy", "-n", 3, "-o", tmp_path / "o.fits",
                 "--quiet", "--no-figures")
    assert result.returncode == 0, result.stderr
    from sgmca_fast import _io

    est = _io.read_estimate(tmp_path / "o.fits")
    assert est["A"].shape == (75, 3) and est["S"].shape == (3, SIZE, SIZE)


def test_info_builtin_and_file():
    result = run("info", "gauss", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["family"] == "gauss"
    assert (info["n_channels"], info["n_anchors"]) == (75, 3)
    assert info["training"]
    text = run("info", "sync")
    assert text.returncode == 0 and "n_anchors" in text.stdout


def test_train(tmp_path):
    sets = datasets.make_spectra_sets("gauss", n_train=30, n_valid=10)
    np.savez(tmp_path / "gauss.npz", **sets)
    out = tmp_path / "m.onnx"
    result = run("train", tmp_path / "gauss.npz", "-o", out, "--max-epochs", 3,
                 "--lbfgs-iter", 2, "--name", "lines", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "validation_sad" in summary
    info = json.loads(run("info", out, "--json").stdout)
    assert info["family"] == "lines" and info["n_anchors"] == 3
    # spectra in a CSV file, anchors as row numbers, no validation set
    np.savetxt(tmp_path / "s.csv", sets["train"], delimiter=",")
    result = run("train", tmp_path / "s.csv", "--anchors", "0,5", "-o",
                 tmp_path / "m2.onnx", "--max-epochs", 2, "--lbfgs-iter", 1, "--quiet")
    assert result.returncode == 0, result.stderr
    assert "median training SAD" in result.stdout


def test_train_errors(tmp_path, call):
    sets = datasets.make_spectra_sets("gauss", n_train=10, n_valid=2)
    np.savetxt(tmp_path / "s.csv", sets["train"], delimiter=",")
    (tmp_path / "m2.onnx").write_bytes(b"old")
    again = call("train", tmp_path / "s.csv", "--anchors", "0,5", "-o",
                 tmp_path / "m2.onnx")
    assert_user_error(again, "m2.onnx", "already exists")
    bad = call("train", tmp_path / "s.csv", "--anchors", "0,99", "-o",
               tmp_path / "m3.onnx")
    assert_user_error(bad, "row(s) [99] out of range", "s.csv")
    bad = call("train", tmp_path / "s.csv", "-o", tmp_path / "m3.onnx")
    assert_user_error(bad, "s.csv", "no anchors")
    np.save(tmp_path / "a.npy", np.ones((2, 7)))
    bad = call("train", tmp_path / "s.csv", "--anchors", tmp_path / "a.npy", "-o",
               tmp_path / "m3.onnx")
    assert_user_error(bad, "7 channels", "75")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    (folder / "garbage.npy").write_bytes(b"\x00not an array")
    np.save(folder / "text.npy", np.array([["a"] * 4] * 4))
    inf = np.ones((8, 16, 16))
    inf[3, 4, 5] = np.inf
    np.save(folder / "inf.npy", inf)
    np.save(folder / "few.npy", np.random.default_rng(0).random((3, 16, 16)))
    np.save(folder / "j60.npy", np.random.default_rng(0).random((60, 16, 16)))
    np.save(folder / "flat.npy", np.ones(10))
    return folder


@pytest.mark.parametrize(
    ("cube", "extra", "fragments"),
    [
        ("missing.npy", [], ["missing.npy", "no such file"]),
        ("garbage.npy", [], ["garbage.npy", "not a readable .npy file"]),
        ("text.npy", [], ["text.npy", "not real numbers"]),
        ("inf.npy", [], ["inf.npy", "1 infinite value(s)", "NaN marks a missing"]),
        ("flat.npy", [], ["flat.npy", "2 or 3 dimensions"]),
        ("few.npy", [], ["few.npy", "3 channels, fewer than the 4 sources"]),
        ("j60.npy", ["--model", "gauss"], ["gauss.onnx", "75 channels", "has 60"]),
        ("j60.npy", ["--model", "no/such.onnx"], ["such.onnx", "model file not found"]),
    ],
)
def test_separate_bad_input(tmp_path, call, bad_files, cube, extra, fragments):
    result = call("separate", bad_files / cube, "-n", 4, *extra, "-o", tmp_path / "o")
    assert_user_error(result, *fragments)


@pytest.mark.parametrize(
    ("models", "fragments"),
    [
        (["gauss:5"], ["add up to 5 sources but -n is 4"]),
        (["sync:2", "thermal:3"], ["add up to 5 sources but -n is 4"]),
        (["gauss:x"], ["COUNT 'x' is not an integer"]),
        (["gauss:0"], ["COUNT must be at least 1"]),
        (["gauss", "gauss"], ["two models are named 'gauss'"]),
    ],
)
def test_separate_bad_counts(tmp_path, call, data, models, fragments):
    folder, _ = data
    args = [a for m in models for a in ("--model", m)]
    result = call("separate", folder / "cube.npy", "-n", 4, *args, "-o", tmp_path / "o")
    assert_user_error(result, *fragments)


def test_separate_refuses_existing_output(tmp_path, call, data):
    folder, _ = data
    (tmp_path / "o.npz").write_bytes(b"keep me")
    result = call("separate", folder / "cube.npy", "-n", 2, "-o", tmp_path / "o.npz")
    assert_user_error(result, "o.npz", "already exists", "--force")
    assert (tmp_path / "o.npz").read_bytes() == b"keep me"


def test_evaluate_and_info_errors(tmp_path, call, data):
    folder, _ = data
    np.savez(tmp_path / "noS.npz", A=np.ones((75, 4)))
    result = call("evaluate", tmp_path / "noS.npz", folder / "truth.npz")
    assert_user_error(result, "noS.npz", "missing array(s) ['S']")
    np.savez(tmp_path / "small.npz", A=np.ones((75, 3)), S=np.ones((3, SIZE, SIZE)))
    result = call("evaluate", tmp_path / "small.npz", folder / "truth.npz")
    assert_user_error(result, "small.npz", "(75, 3)", "(75, 4)")
    result = call("evaluate", folder / "truth.npz", tmp_path / "nothere.npz")
    assert_user_error(result, "nothere.npz", "no such file")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    result = call("info", tmp_path / "bad.onnx")
    assert_user_error(result, "bad.onnx", "not a readable ONNX file")
    result = call("info", tmp_path / "none.onnx")
    assert_user_error(result, "none.onnx", "not found")


# ------------------------------------------------------------------- real cubes


@pytest.fixture(scope="module")
def fits_cube(tmp_path_factory):
    """A complete example FITS cube (no NaN) with its VARIANCE extension."""
    pytest.importorskip("astropy")
    folder = tmp_path_factory.mktemp("fits")
    example = datasets.make_example_cube(folder / "c.fits", size=SIZE, border=0,
                                         bad_fraction=0.0, random_state=2)
    return folder, example


def test_separate_fits_keeps_coordinates(tmp_path, call, fits_cube):
    from astropy.io import fits
    from astropy.wcs import WCS

    folder, example = fits_cube
    out = tmp_path / "e.fits"
    result = call("separate", folder / "c.fits", "-n", 3, "--variance", "none",
                  "--noise-std", 1.0, "-o", out, "--no-figures")
    assert result.returncode == 0, result.stderr
    assert f"missing data: no voxel is missing ({75 * SIZE * SIZE:,} voxels)" \
        in result.stdout
    assert "noise: given: --noise-std 1" in result.stdout
    with fits.open(out) as hdul:
        header = hdul[0].header
        sky = WCS(header).celestial
        ref = example.cube.celestial
        # the same pixel is the same sky position as in the cube
        np.testing.assert_allclose(sky.pixel_to_world_values(0, SIZE - 1),
                                   ref.pixel_to_world_values(0, SIZE - 1))
        assert header["BUNIT"] == "count"
        history = "\n".join(str(v) for v in header["HISTORY"])
        assert "sgmca-fast" in history and "noise = 'given: --noise-std 1'" in history
        energy = np.asarray(hdul["SPECTRA"].data["ENERGY"])
    np.testing.assert_allclose(energy, datasets.energy_grid(75), rtol=1e-12)
    csv = np.loadtxt(tmp_path / "e_A.csv", delimiter=",", skiprows=1)
    assert (tmp_path / "e_A.csv").read_text().startswith("energy_keV,source_0")
    np.testing.assert_allclose(csv[:, 0], energy, rtol=1e-12)
    # evaluate reads the sources file (maps + SPECTRA table)
    from sgmca_fast import _io

    est = _io.read_estimate(out)
    np.testing.assert_allclose(est["A"], csv[:, 1:], rtol=1e-12)
    assert est["S"].shape == (3, SIZE, SIZE)


def test_separate_mask_and_variance_files_are_checked(tmp_path, call, fits_cube,
                                                      data):
    folder, _ = fits_cube
    np.save(tmp_path / "m.npy", np.zeros((75, 4, 4), dtype=bool))
    result = call("separate", folder / "c.fits", "-n", 3, "--mask",
                  tmp_path / "m.npy", "-o", tmp_path / "o")
    assert_user_error(result, "m.npy", "the mask has shape (75, 4, 4)",
                      f"(75, {SIZE}, {SIZE})")
    np.save(tmp_path / "s.npy", np.array(["a"] * 75))
    result = call("separate", folder / "c.fits", "-n", 3, "--mask",
                  tmp_path / "s.npy", "-o", tmp_path / "o")
    assert_user_error(result, "s.npy", "booleans or integer flags")
    result = call("separate", folder / "c.fits", "-n", 3, "--variance", "NOPE",
                  "-o", tmp_path / "o")
    assert_user_error(result, "c.fits", "no variance HDU 'NOPE'", "1 VARIANCE")
    cube_npy = data[0] / "cube.npy"
    result = call("separate", cube_npy, "-n", 3, "--variance", "v.npy", "-o",
                  tmp_path / "o")
    assert_user_error(result, "--variance v.npy: no such file")
    np.save(tmp_path / "v.npy", np.ones(7))
    result = call("separate", cube_npy, "-n", 3, "--variance", tmp_path / "v.npy",
                  "-o", tmp_path / "o")
    assert_user_error(result, "variance must have one value per channel (75,)")


def test_separate_fixed_spectra_are_checked(tmp_path, call, data):
    from sgmca_fast import cube

    cube_npy = data[0] / "cube.npy"
    result = call("separate", cube_npy, "-n", 3, "--fixed", "x=none.csv", "-o",
                  tmp_path / "o")
    assert_user_error(result, "none.csv", "no such file")
    cube.write_spectra_csv(tmp_path / "short.csv", np.ones((7, 1)))
    result = call("separate", cube_npy, "-n", 3, "--fixed",
                  f"x={tmp_path / 'short.csv'}", "-o", tmp_path / "o")
    assert_user_error(result, "short.csv", "7 channels but the cube has 75")
    cube.write_spectra_csv(tmp_path / "two.csv", np.ones((75, 2)), names=["a", "b"])
    result = call("separate", cube_npy, "-n", 3, "--fixed",
                  f"x={tmp_path / 'two.csv'}", "-o", tmp_path / "o")
    assert_user_error(result, "two.csv", "holds 2 spectra", "--fixed COLUMN=FILE")
    result = call("separate", cube_npy, "-n", 3, "--fixed",
                  f"b={tmp_path / 'two.csv'}", "--model", "gauss:3", "-o",
                  tmp_path / "o")
    assert_user_error(result, "add up to 4 sources but -n is 3")


def test_fixed_spectrum_on_another_axis_is_refused(tmp_path, call, fits_cube):
    from sgmca_fast import cube

    folder, _ = fits_cube
    axis = cube.SpectralAxis.from_values(np.arange(75.0), "eV", "ENER")
    cube.write_spectra_csv(tmp_path / "ev.csv", np.ones((75, 1)), axis)
    result = call("separate", folder / "c.fits", "-n", 3, "--fixed",
                  f"x={tmp_path / 'ev.csv'}", "-o", tmp_path / "o")
    assert_user_error(result, "ev.csv", "energy_eV column is not the cube's",
                      "energy_keV")


def test_n_auto_parses(capsys, tmp_path, data):
    with pytest.raises(SystemExit) as exc:
        cli.main(["separate", str(data[0] / "cube.npy"), "-n", "lots", "-o",
                  str(tmp_path / "o")])
    assert exc.value.code == 2
    assert "not an integer: 'lots'" in capsys.readouterr().err


def test_separate_dtype_float32(tmp_path, call, data):
    # --dtype float32 reaches separate(dtype=): the estimate's S is float32 and
    # its spectra agree with the default (float64) run of the same command
    folder, mix = data
    base = ["separate", folder / "cube.npy", "-n", 4, "--gmca-only", "--no-figures",
            "--noise-std", mix.noise_std, "--quiet"]
    assert call(*base, "-o", tmp_path / "f64.npz").returncode == 0
    result = call(*base, "-o", tmp_path / "f32.npz", "--dtype", "float32")
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "f32.npz") as f32, np.load(tmp_path / "f64.npz") as f64:
        assert f32["S"].dtype == np.float32 and f64["S"].dtype == np.float64
        np.testing.assert_allclose(f32["A"], f64["A"], atol=1e-4)
    with pytest.raises(SystemExit):
        cli.main([*map(str, base), "-o", str(tmp_path / "x.npz"), "--dtype", "half"])


def test_separate_subspace(tmp_path, call, data):
    # --subspace R reaches separate(subspace=R): the same A as the Python call
    from sgmca_fast import gmca

    folder, mix = data
    base = ["separate", folder / "cube.npy", "-n", 4, "--gmca-only", "--no-figures",
            "--noise-std", mix.noise_std, "--quiet", "--seed", 0]
    result = call(*base, "-o", tmp_path / "sub.npz", "--subspace", 6)
    assert result.returncode == 0, result.stderr
    ref = gmca(np.load(folder / "cube.npy"), 4, noise_std=mix.noise_std,
               random_state=0, subspace=6)
    with np.load(tmp_path / "sub.npz") as est:
        np.testing.assert_allclose(est["A"], ref.A, rtol=1e-12)
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            cli.main([*map(str, base), "-o", str(tmp_path / "x.npz"),
                      "--subspace", bad])


def test_separate_refit_spectra(tmp_path, call, data):
    # --refit-spectra reaches separate(refit_spectra=True): the same A as the
    # Python call, different from the run without it
    from sgmca_fast import gmca

    folder, mix = data
    base = ["separate", folder / "cube.npy", "-n", 4, "--gmca-only", "--no-figures",
            "--noise-std", mix.noise_std, "--quiet", "--seed", 0]
    result = call(*base, "-o", tmp_path / "refit.npz", "--refit-spectra")
    assert result.returncode == 0, result.stderr
    cube = np.load(folder / "cube.npy")
    ref = gmca(cube, 4, noise_std=mix.noise_std, random_state=0, refit_spectra=True)
    plain = gmca(cube, 4, noise_std=mix.noise_std, random_state=0)
    with np.load(tmp_path / "refit.npz") as est:
        np.testing.assert_allclose(est["A"], ref.A, rtol=1e-12)
        assert np.abs(est["A"] - plain.A).max() > 1e-8
