"""An example FITS cube like a real one: WCS, missing voxels, a variance extension.

The demo mixture's sources and spectra (:func:`make_sources`, the built-in
families), observed as an X-ray-like cube would be: a celestial WCS (RA/Dec,
tangent projection), an energy axis in keV, NaN borders where the detector saw
nothing, scattered NaN voxels (bad pixels), and Gaussian noise whose standard
deviation changes across channels and across the image, given as a VARIANCE
extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import InputError, integer, real
from ._families import builtin_sets
from ._images import make_sources
from ._instrument import energy_grid
from ._mixtures import make_mixture

_NAMES = ("sync", "thermal", "fe1", "fe2")
_CENTRE = (350.85, 58.815)  # RA, Dec (deg) of Cas A
_PIXEL_ARCSEC = 2.0
_FLUX = 1.0e4  # total counts of a unit source with a unit-sum spectrum
_CHANNEL_RANGE = 10.0  # largest / smallest noise std across channels
_IMAGE_RANGE = 2.0  # noise std at the image corners / at the centre


@dataclass(frozen=True, eq=False)
class ExampleCube:
    """The cube made by :func:`make_example_cube` and its ground truth.

    Attributes
    ----------
    cube : sgmca_fast.cube.Cube
        The observed cube (J, H, W), float32, NaN where missing, with its
        variance (J, H, W), spectral axis (keV) and, with astropy, celestial WCS.
        Read back from ``path`` when a file was written.
    A0 : (J, I) ndarray
        True spectra (unit sum), one column per source.
    S0 : (I, H, W) ndarray
        True source maps, in counts: ``A0 S0`` is the noiseless cube.
    N : (J, H, W) ndarray
        The noise that was added (also where the voxel is then missing).
    noise_std : (J, H, W) ndarray
        Its standard deviation (the square root of the VARIANCE extension).
    missing : (J, H, W) bool ndarray
        The voxels set to NaN: the border and the scattered bad voxels.
    names : tuple of str
        Source names.
    path : pathlib.Path or None
        The FITS file written, if any.
    """

    cube: object
    A0: np.ndarray
    S0: np.ndarray
    N: np.ndarray
    noise_std: np.ndarray
    missing: np.ndarray
    names: tuple[str, ...]
    path: Path | None


def _header_cards(shape, energy):
    """FITS keywords of the cube: sky WCS on axes 1-2, energy (keV) on axis 3."""
    J, H, W = shape
    step = _PIXEL_ARCSEC / 3600.0
    return [
        ("WCSAXES", 3, "number of WCS axes"),
        ("CTYPE1", "RA---TAN", "right ascension, tangent projection"),
        ("CUNIT1", "deg", ""),
        ("CRPIX1", (W + 1) / 2, ""),
        ("CRVAL1", _CENTRE[0], ""),
        ("CDELT1", -step, ""),
        ("CTYPE2", "DEC--TAN", "declination, tangent projection"),
        ("CUNIT2", "deg", ""),
        ("CRPIX2", (H + 1) / 2, ""),
        ("CRVAL2", _CENTRE[1], ""),
        ("CDELT2", step, ""),
        ("CTYPE3", "ENER", "energy of the channel centres"),
        ("CUNIT3", "keV", ""),
        ("CRPIX3", 1.0, ""),
        ("CRVAL3", float(energy[0]), ""),
        ("CDELT3", float(energy[1] - energy[0]), ""),
        ("RADESYS", "ICRS", ""),
        ("BUNIT", "count", "counts per channel and pixel"),
        ("OBJECT", "sgmca-fast example", ""),
        ("TELESCOP", "SIMULATED", ""),
    ]


def _noise_std(clean, snr_db):
    """Noise std (J, H, W): a channel profile times an image profile, at snr_db."""
    J, H, W = clean.shape
    level = np.sqrt(np.maximum(clean.reshape(J, -1).mean(axis=1), 0.0))
    level = np.clip(level / level.max(), 1.0 / _CHANNEL_RANGE, 1.0)
    y, x = np.mgrid[:H, :W]
    r2 = ((y - (H - 1) / 2) ** 2 + (x - (W - 1) / 2) ** 2) / (
        ((H - 1) / 2) ** 2 + ((W - 1) / 2) ** 2)
    image = 1.0 + (_IMAGE_RANGE - 1.0) * r2  # rising towards the corners
    shape = level[:, None, None] * image[None]
    scale = np.sqrt(np.sum(clean**2) / np.sum(shape**2) * 10 ** (-snr_db / 10))
    return shape * scale


def _missing(rng, shape, border, bad_fraction):
    J, H, W = shape
    missing = rng.random(shape) < bad_fraction
    if border:
        missing[:, :border] = missing[:, -border:] = True
        missing[:, :, :border] = missing[:, :, -border:] = True
    return missing


def _write(path, data, variance, cards, history, force):
    from .. import _io

    fits = _io.astropy_fits(Path(path))
    header = fits.Header()
    for key, value, comment in cards:
        header[key] = (value, comment)
    for line in history:
        header.add_history(line)
    primary = fits.PrimaryHDU(data, header)
    var_header = header.copy()
    var_header["BUNIT"] = "count2"
    var = fits.ImageHDU(variance, var_header, name="VARIANCE")

    def write(tmp):
        fits.HDUList([primary, var]).writeto(tmp, overwrite=True)

    return _io.atomic_write(path, write, force)


def _in_memory_cube(data, variance, energy, cards):
    from ..cube import Cube, SpectralAxis

    celestial = header = None
    try:
        from astropy.io import fits
        from astropy.wcs import WCS
    except ImportError:
        pass
    else:
        header = fits.Header()
        for key, value, comment in cards:
            header[key] = (value, comment)
        celestial = WCS(header, naxis=[1, 2])
    axis = SpectralAxis(energy, "keV", "ENER")
    return Cube(data, variance, None, axis, celestial, unit="count", header=header,
                variance_source="the noise variance (in memory)")


def make_example_cube(path=None, *, size: int = 48, snr_db: float = 30.0,
                      border: int = 3, bad_fraction: float = 0.01,
                      random_state=0, force: bool = False) -> ExampleCube:
    """Make a small X-ray-like FITS cube with a WCS, NaN voxels and a variance.

    The four sources of :func:`make_demo_mixture` (sync, thermal, fe1, fe2), their
    spectra drawn from the built-in families on 75 channels of 0.1 keV from 0.5 to
    8 keV, in counts (a unit source gives 1e4 counts). The Gaussian noise has a
    standard deviation that follows the square root of each channel's mean signal
    (a 10x range across channels) times an image profile rising to 2x at the
    corners, scaled so that the whole cube has signal-to-noise ratio ``snr_db``.
    Then a border of ``border`` pixels is NaN in every channel, and a fraction
    ``bad_fraction`` of the voxels is NaN at random, in the data and in the
    variance alike.

    The file (with ``path``, needs astropy) has the data in the primary HDU,
    float32, FITS axes RA---TAN, DEC--TAN (2 arcsec pixels centred on Cas A)
    and ENER (keV), ``BUNIT = 'count'``, and the noise variance as the image
    extension ``VARIANCE``.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Write the cube there as FITS (``.fits``); by default only in memory.
    size : int, optional
        Image side in pixels (at least 16).
    snr_db : float, optional
        Signal-to-noise ratio of the whole cube, in dB.
    border : int, optional
        Width of the NaN border in pixels (0: none), less than a quarter of
        ``size``.
    bad_fraction : float, optional
        Fraction of voxels set to NaN at random, in [0, 0.5).
    random_state : None, int or numpy.random.Generator, optional
        Seed of the sources, spectra, noise and bad voxels.
    force : bool, optional
        Replace an existing ``path``.

    Returns
    -------
    ExampleCube
        The cube (read back from the file when written) and the truth.
    """
    size = integer(size, "size", minimum=16)
    snr_db = real(snr_db, "snr_db")
    border = integer(border, "border", minimum=0)
    if 4 * border >= size:
        raise InputError(f"border must be less than a quarter of size ({size}), "
                         f"got {border}")
    bad_fraction = real(bad_fraction, "bad_fraction", low=0.0, high=0.5,
                        high_open=True)
    rng = np.random.default_rng(random_state)
    sources = make_sources(size, rng)
    mix = make_mixture(sources, [builtin_sets(n)["valid"] for n in
                                 ("sync", "thermal", "gauss", "gauss")],
                       snr_db=np.inf, names=_NAMES, random_state=rng)
    S0 = mix.S0 * _FLUX
    clean = mix.X * _FLUX
    std = _noise_std(clean, snr_db)
    noise = rng.standard_normal(clean.shape) * std
    missing = _missing(rng, clean.shape, border, bad_fraction)
    data = np.where(missing, np.nan, clean + noise).astype(np.float32)
    variance = np.where(missing, np.nan, std**2).astype(np.float32)
    energy = energy_grid(clean.shape[0])
    cards = _header_cards(data.shape, energy)
    if path is not None:
        from ..cube import read_fits_cube

        history = [f"sgmca_fast.datasets.make_example_cube(size={size}, "
                   f"snr_db={snr_db:g}, border={border}, "
                   f"bad_fraction={bad_fraction:g}, random_state={random_state!r})"]
        path = _write(path, data, variance, cards, history, force)
        cube = read_fits_cube(path)
    else:
        cube = _in_memory_cube(data, variance, energy, cards)
    return ExampleCube(cube, mix.A0, S0, noise, std, missing, _NAMES, path)
