import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sgmca_fast import plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def truth():
    rng = np.random.default_rng(0)
    A0 = rng.random((20, 3)) + 0.01
    S0 = rng.random((3, 12, 12))
    return A0, S0


def _estimate(A0, S0):
    perm = [2, 0, 1]
    scale = np.array([0.5, 2.0, 3.0])
    A = A0[:, perm] * scale
    S = S0[perm] / scale[:, None, None]
    return A + 1e-3, S


def _check_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG)
    assert len(data) > 5000
    assert plt.get_fignums() == []  # no pyplot figure left open


def test_align_undoes_permutation_and_scale(truth):
    A0, S0 = truth
    A, S = _estimate(A0, S0)
    Aa, Sa = plots.align(A, S, A0)
    np.testing.assert_allclose(Aa, A0, atol=5e-3)
    np.testing.assert_allclose(Aa @ Sa.reshape(3, -1), A @ S.reshape(3, -1))
    Au, _ = plots.align(A)
    np.testing.assert_allclose(Au.sum(axis=0), 1.0)


def test_spectra_figure(tmp_path, truth):
    A0, S0 = truth
    A, _ = _estimate(A0, S0)
    fig = plots.plot_spectra({"one": A, "two": A * 1.1}, A0, names=["a", "b", "c"],
                             energy=np.linspace(0.5, 8, 20), path=tmp_path / "s.png")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 6  # spectra row and ratio row
    assert fig.axes[0].get_yscale() == "log"
    _check_png(tmp_path / "s.png")
    fig = plots.plot_spectra(A, path=tmp_path / "blind.png")
    assert len(fig.axes) == 3
    _check_png(tmp_path / "blind.png")
    with pytest.raises(ValueError, match="already exists"):
        plots.plot_spectra(A, path=tmp_path / "blind.png")
    with pytest.raises(ValueError, match="energy must have shape"):
        plots.plot_spectra(A, energy=np.ones(3))


def test_sources_figure(tmp_path, truth):
    A0, S0 = truth
    A, S = _estimate(A0, S0)
    fig = plots.plot_sources(S, S0, A=A, A0=A0, path=tmp_path / "src.png")
    assert len([ax for ax in fig.axes if ax.images]) == 9  # truth, estimate, error
    _check_png(tmp_path / "src.png")
    fig = plots.plot_sources(S, path=tmp_path / "est.png", names=["x", "y", "z"])
    assert len([ax for ax in fig.axes if ax.images]) == 3
    _check_png(tmp_path / "est.png")
    with pytest.raises(ValueError, match=r"S must be \(I, H, W\) images"):
        plots.plot_sources(S.reshape(3, -1))


def test_history_figure(tmp_path):
    n_blind, n_semi = 30, 8
    history = {
        "stage": ["blind"] * n_blind + ["semiblind"] * n_semi,
        "delta_S": list(np.logspace(0, -6, n_blind + n_semi)),
        "delta_A": list(np.logspace(-1, -7, n_blind + n_semi)),
        "cond_A": list(np.linspace(3, 4, n_blind + n_semi)),
        "reseeded": [(2, 1)],
    }
    fig = plots.plot_history(history, path=tmp_path / "h.png", title="t")
    assert len(fig.axes) == 3
    assert fig.axes[0].get_yscale() == "log"
    assert fig.axes[2].get_yscale() == "linear"  # cond(A) within a decade
    _check_png(tmp_path / "h.png")


def test_spectra_on_a_physical_axis(truth):
    from sgmca_fast.cube import SpectralAxis

    A0, _ = truth
    wave = np.linspace(4750.0, 9350.0, 20)
    axis = SpectralAxis(wave, "Angstrom", "AWAV")
    fig = plots.plot_spectra(A0, A0, spectral_axis=axis)
    bottom = fig.axes[-1]
    assert bottom.get_xlabel() == "Air wavelength (Angstrom)"
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_xdata(), wave)
    assert plots.plot_spectra(A0).axes[0].get_xlabel() == "Channel"
    with pytest.raises(ValueError, match="the spectral axis has 3 values for 20"):
        plots.plot_spectra(A0, spectral_axis=SpectralAxis(np.ones(3)))
    with pytest.raises(ValueError, match="give energy or spectral_axis, not both"):
        plots.plot_spectra(A0, energy=wave, spectral_axis=axis)


def test_sources_on_the_sky_and_blank_where_nan(tmp_path, truth):
    pytest.importorskip("astropy")
    from astropy.visualization.wcsaxes import WCSAxes
    from astropy.wcs import WCS

    A0, S0 = truth
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [350.85, 58.8]
    wcs.wcs.cdelt = [-1e-3, 1e-3]
    S = S0.copy()
    S[:, :2] = np.nan  # a border left out of the fit
    fig = plots.plot_sources(S, A=A0, wcs=wcs, path=tmp_path / "m.png")
    _check_png(tmp_path / "m.png")
    maps = [ax for ax in fig.axes if isinstance(ax, WCSAxes)]
    assert len(maps) == 3
    bottom_left = maps[-3]  # one row, three sources: labels on the first map
    assert (bottom_left.coords[0].get_axislabel(),
            bottom_left.coords[1].get_axislabel()) == ("RA", "Dec")
    assert maps[1].coords[1].get_axislabel() == ""
    plain = plots.plot_sources(S, A=A0)
    assert not any(isinstance(ax, WCSAxes) for ax in plain.axes)
    with pytest.raises(ValueError, match="wcs must be a celestial"):
        plots.plot_sources(S, wcs=WCS(naxis=3))
