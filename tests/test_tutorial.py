"""docs/tutorial.md runs: its marked code blocks, in order, in an empty folder.

Python blocks run in one namespace in this process (like a notebook), bash blocks
in a shell whose ``sgmca-fast`` is this Python's command line. Then the outputs
are checked: they exist, the FITS maps keep the cube's sky WCS, and the spectra
and figures use the physical energy axis.
"""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TUTORIAL = Path(__file__).resolve().parent.parent / "docs" / "tutorial.md"
_BLOCK = re.compile(r"<!-- tutorial -->\s*\n```(python|bash)\n(.*?)\n```", re.S)

pytest.importorskip("astropy")
pytest.importorskip("matplotlib")


def blocks(text):
    """The marked (language, code) blocks of a Markdown text, in order."""
    return [(m[1], m[2]) for m in _BLOCK.finditer(text)]


def test_blocks_are_found():
    text = "<!-- tutorial -->\n```python\nx = 1\n```\n```bash\nno\n```\n" \
           "<!-- tutorial -->\n```bash\necho hi\n```\n"
    assert blocks(text) == [("python", "x = 1"), ("bash", "echo hi")]
    found = blocks(TUTORIAL.read_text())
    kinds = [kind for kind, _ in found]
    assert kinds.count("bash") >= 2 and kinds.count("python") >= 3


def _shim(folder: Path) -> dict:
    """An environment whose ``sgmca-fast`` runs this interpreter's package."""
    bin_dir = folder / ".bin"
    bin_dir.mkdir()
    script = bin_dir / "sgmca-fast"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -P -m sgmca_fast.cli '
                      '"$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Run the tutorial once; return its folder and the Python namespace."""
    folder = tmp_path_factory.mktemp("tutorial")
    env = _shim(folder)
    namespace = {"__name__": "__tutorial__"}
    here = os.getcwd()
    os.chdir(folder)
    try:
        for number, (kind, code) in enumerate(blocks(TUTORIAL.read_text()), 1):
            if kind == "python":
                exec(compile(code, f"tutorial block {number}", "exec"), namespace)
            else:
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", code],
                                      cwd=folder, env=env, capture_output=True,
                                      text=True, timeout=300)
                assert done.returncode == 0, (
                    f"block {number} failed:\n{code}\n{done.stdout}\n{done.stderr}")
                namespace[f"_stdout_{number}"] = done.stdout + done.stderr
    finally:
        os.chdir(here)
    return folder, namespace


def test_cli_outputs_keep_coordinates(ran):
    from astropy.io import fits
    from astropy.wcs import WCS

    folder, _ = ran
    for name in ("estimate.fits", "A.csv", "spectra.png", "sources.png",
                 "convergence.png"):
        assert (folder / "out" / name).stat().st_size > 0, name
    with fits.open(folder / "cube.fits") as cube, \
            fits.open(folder / "out" / "estimate.fits") as est:
        sky_in = WCS(cube[0].header).celestial
        sky_out = WCS(est[0].header).celestial
        assert sky_out.wcs.ctype[0] == "RA---TAN"
        # the same pixel is the same point of the sky
        np.testing.assert_allclose(sky_out.pixel_to_world_values(3, 7),
                                   sky_in.pixel_to_world_values(3, 7))
        assert est[0].data.shape == (4, 32, 32)
        assert est[0].header["BUNIT"] == "count"
        history = " ".join(str(v) for v in est[0].header["HISTORY"])
        assert "sgmca-fast" in history and "n_sources" in history
        table = est["SPECTRA"]
        assert table.columns.names[0] == "ENERGY"
        assert table.columns[0].unit == "keV"
        energy = np.asarray(table.data["ENERGY"])
    # independent reference: the channel centres the header describes
    np.testing.assert_allclose(energy, 0.55 + 0.1 * np.arange(75), rtol=1e-9)
    first = (folder / "out" / "A.csv").read_text().splitlines()[0]
    assert first.split(",")[0] == "energy_keV"
    csv = np.loadtxt(folder / "out" / "A.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv[:, 0], energy, rtol=1e-12)


def test_cli_reports_missing_noise_auto_and_fixed(ran):
    folder, namespace = ran
    said = "\n".join(v for k, v in namespace.items() if k.startswith("_stdout_"))
    example = namespace["example"]
    n_missing = int(example.missing.sum())
    assert f"missing data: {n_missing:,} of {75 * 32 * 32:,} voxels" in said
    assert "noise: variance: VARIANCE extension (HDU 1)" in said
    summary = json.loads((folder / "auto.json").read_text())
    assert summary["missing"]["n_missing"] == n_missing
    assert summary["n_sources_estimate"]["evidence"]
    assert summary["fixed"] == [{"source": 0, "name": "sync",
                                 "file": "sync.csv"}]
    assert summary["spectral_axis"]["unit"] == "keV"
    with np.load(folder / "auto" / "estimate.npz") as est:
        # the fixed spectrum comes back bit for bit
        np.testing.assert_array_equal(est["A"][:, 0], example.A0[:, 0])


def test_python_outputs(ran):
    from astropy.io import fits
    from astropy.wcs import WCS

    folder, namespace = ran
    for name in ("spectra.png", "maps.png", "maps.fits", "spectra.csv"):
        assert (folder / name).stat().st_size > 0, name
    with fits.open(folder / "maps.fits") as maps:
        assert WCS(maps[0].header).celestial.wcs.ctype[1] == "DEC--TAN"
    assert "SAD" in namespace["scores"] and np.isfinite(namespace["scores"]["SAD"])


def test_example_cube_truth_and_file(tmp_path):
    from sgmca_fast import datasets

    ex = datasets.make_example_cube(tmp_path / "c.fits", size=20, border=2,
                                    bad_fraction=0.05, snr_db=25.0,
                                    random_state=3)
    c = ex.cube
    data = np.asarray(c.data, dtype=np.float64)
    assert data.shape == (75, 20, 20) and c.data.dtype.kind == "f"
    clean = np.einsum("ji,ihw->jhw", ex.A0, ex.S0)
    # the data are the truth plus the noise, float32, NaN exactly where missing
    np.testing.assert_array_equal(np.isnan(data), ex.missing)
    np.testing.assert_allclose(data[~ex.missing], (clean + ex.N)[~ex.missing],
                               rtol=1e-6, atol=1e-4 * np.abs(clean).max())
    assert ex.missing[:, :2].all() and ex.missing[:, :, -2:].all()
    inner = ex.missing[:, 2:-2, 2:-2]
    assert 0.03 < inner.mean() < 0.07
    var = np.asarray(c.variance, dtype=np.float64)
    np.testing.assert_allclose(var[~ex.missing], ex.noise_std[~ex.missing] ** 2,
                               rtol=1e-6)
    snr = 10 * np.log10(np.sum(clean**2) / np.sum(ex.noise_std**2))
    assert snr == pytest.approx(25.0, abs=1e-9)
    ratio = ex.noise_std.max(axis=(1, 2)) / ex.noise_std.max(axis=(1, 2)).min()
    assert 9.0 < ratio.max() <= 10.0 + 1e-9
    assert c.variance_source == "VARIANCE extension (HDU 1)"
    assert c.spectral_axis.label == "Energy (keV)"
    np.testing.assert_allclose(c.spectral_axis.values, datasets.energy_grid(75),
                               rtol=1e-12)
    assert c.celestial.wcs.ctype[0] == "RA---TAN" and c.unit == "count"
    assert c.missing_info.n_missing == int(ex.missing.sum())
    again = datasets.make_example_cube(size=20, border=2, bad_fraction=0.05,
                                       snr_db=25.0, random_state=3)
    np.testing.assert_array_equal(again.cube.data, data.astype(np.float32))
    with pytest.raises(ValueError, match="border must be less than a quarter"):
        datasets.make_example_cube(size=20, border=5)
