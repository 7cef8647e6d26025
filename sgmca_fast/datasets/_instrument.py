"""The toy X-ray instrument: channel grid, effective area, resolution, absorption.

A smooth stand-in for a Chandra ACIS-S response, used to fold the analytic photon
spectra of :mod:`._families` into counts per channel. A toy, not the real response:
no edges, no calibration.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.special import ndtr

from .._validation import InputError, integer, real

# Photo-absorption cross-section per hydrogen atom at 1 keV (cm^2), the order of
# magnitude of Morrison & McCammon (1983); sigma(E) = _SIGMA_1KEV * E**(-8/3).
_SIGMA_1KEV = 2.4e-22
_FINE_STEP = 0.005  # keV, integration step of the continuum (< 1/10 of the FWHM)
_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def check_grid(n_channels, e_min, e_max) -> tuple[int, float, float]:
    """Validate a channel grid; return ``(n_channels, e_min, e_max)`` as int, floats."""
    n_channels = integer(n_channels, "n_channels", minimum=2)
    e_min, e_max = real(e_min, "e_min"), real(e_max, "e_max")
    if not 0 < e_min < e_max:
        raise InputError(
            f"need 0 < e_min < e_max (keV), got e_min={e_min}, e_max={e_max}"
        )
    return n_channels, e_min, e_max


def grid_options(n_channels, e_min, e_max) -> dict:
    """Return the validated grid as keyword arguments of :func:`apply_response`."""
    keys = ("n_channels", "e_min", "e_max")
    return dict(zip(keys, check_grid(n_channels, e_min, e_max), strict=True))


def energy_grid(
    n_channels: int = 75, e_min: float = 0.5, e_max: float = 8.0
) -> np.ndarray:
    """Channel centre energies of the built-in spectra.

    The band [e_min, e_max] is cut into ``n_channels`` bins of equal width, like
    Chandra ACIS spectra, whose pulse-height channels are linear in energy (14.6 eV)
    and are usually grouped by a fixed number of channels. The default gives 75 bins
    of 0.1 keV between 0.5 and 8 keV.

    Parameters
    ----------
    n_channels : int, optional
        Number of channels J (>= 2).
    e_min, e_max : float, optional
        Band edges in keV, 0 < e_min < e_max.

    Returns
    -------
    energies : (J,) ndarray
        Bin centres in keV, increasing.
    """
    edges = _edges(*check_grid(n_channels, e_min, e_max))
    return 0.5 * (edges[:-1] + edges[1:])


def _edges(n_channels: int, e_min: float, e_max: float) -> np.ndarray:
    return np.linspace(e_min, e_max, n_channels + 1)


def effective_area(energy) -> np.ndarray:
    """Toy effective area: a smooth curve shaped like Chandra ACIS-S.

    A(E) = 700 cm^2 * (E / 1.5)^-0.3 / ((1 + (0.9 / E)^4) (1 + (E / 6)^4)): it rises
    from ~60 cm^2 at 0.5 keV to a peak of ~650 cm^2 near 1.5 keV and falls to ~150
    cm^2 at 8 keV. There are no edges: it is a toy, not the real response.

    Parameters
    ----------
    energy : array_like
        Photon energies in keV (> 0).

    Returns
    -------
    area : ndarray
        Effective area in cm^2, same shape as ``energy``.
    """
    e = np.asarray(energy, dtype=np.float64)
    return 700.0 * (e / 1.5) ** -0.3 / ((1.0 + (0.9 / e) ** 4) * (1.0 + (e / 6.0) ** 4))


def resolution_fwhm(energy) -> np.ndarray:
    """Toy energy resolution: FWHM = 0.15 keV * sqrt(E / 6 keV).

    The Fano-limited CCD law (FWHM ~ sqrt(E)), scaled to the ~150 eV of ACIS at
    6 keV. The redistribution is Gaussian with sigma = FWHM / 2.3548.

    Parameters
    ----------
    energy : array_like
        Photon energies in keV (> 0), of any shape: the FWHM is computed
        element-wise.

    Returns
    -------
    fwhm : ndarray
        Full width at half maximum in keV, same shape as ``energy``.
    """
    e = np.asarray(energy, dtype=np.float64)
    return 0.15 * np.sqrt(e / 6.0)


def photoabsorption(energy, nh) -> np.ndarray:
    """Transmission of an absorbing column: exp(-N_H sigma(E)).

    A simple analytic cross-section per hydrogen atom,
    sigma(E) = 2.4e-22 cm^2 * (E / 1 keV)^(-8/3), the order of magnitude and slope
    of Morrison & McCammon (1983) without their edges.

    Parameters
    ----------
    energy : (M,) array_like
        Photon energies in keV (> 0).
    nh : float or (n,) array_like
        Absorbing columns in units of 1e22 cm^-2.

    Returns
    -------
    transmission : (M,) or (n, M) ndarray
        Fraction of photons transmitted, in (0, 1]; (n, M) when ``nh`` is 1-D.
    """
    e = np.asarray(energy, dtype=np.float64)
    nh = np.asarray(nh, dtype=np.float64)
    tau = (nh[..., None] * 1e22 * _SIGMA_1KEV) * e ** (-8.0 / 3.0)
    return np.exp(-tau)


@lru_cache(maxsize=8)
def _continuum_response(n_channels: int, e_min: float, e_max: float):
    """Fine energy grid (M,) keV and matrix (M, J): counts per unit flux density."""
    edges = _edges(n_channels, e_min, e_max)
    lo = max(0.05, e_min - 0.3)
    hi = e_max + 0.5
    m = int(np.ceil((hi - lo) / _FINE_STEP))
    fine_edges = np.linspace(lo, hi, m + 1)
    e = 0.5 * (fine_edges[:-1] + fine_edges[1:])
    de = np.diff(fine_edges)
    sigma = resolution_fwhm(e) * _FWHM_TO_SIGMA
    z = (edges[None, :] - e[:, None]) / sigma[:, None]
    redist = np.diff(ndtr(z), axis=1)
    matrix = (effective_area(e) * de)[:, None] * redist
    e.setflags(write=False)
    matrix.setflags(write=False)
    return e, matrix


def _fold_continuum(continuum, n_channels, e_min, e_max) -> np.ndarray:
    e, matrix = _continuum_response(n_channels, e_min, e_max)
    flux = np.atleast_2d(np.asarray(continuum(e), dtype=np.float64))
    if flux.shape[-1] != e.size:
        raise InputError(
            f"continuum(E) must return shape (n, {e.size}), got {flux.shape}"
        )
    return flux @ matrix


def _fold_lines(lines, n_channels, e_min, e_max) -> np.ndarray:
    energies, sigmas, fluxes = (np.asarray(a, dtype=np.float64) for a in lines)
    energies, sigmas, fluxes = np.broadcast_arrays(
        np.atleast_2d(energies), np.atleast_2d(sigmas), np.atleast_2d(fluxes)
    )
    edges = _edges(n_channels, e_min, e_max)
    width = np.hypot(resolution_fwhm(energies) * _FWHM_TO_SIGMA, sigmas)
    z = (edges - energies[..., None]) / width[..., None]
    redist = np.diff(ndtr(z), axis=-1)  # (n, L, J)
    return np.einsum("nl,nlj->nj", fluxes * effective_area(energies), redist)


def apply_response(
    continuum=None,
    lines=None,
    *,
    n_channels: int = 75,
    e_min: float = 0.5,
    e_max: float = 8.0,
) -> np.ndarray:
    """Fold photon spectra through the toy instrument response.

    Counts in channel j = integral of F(E) A(E) R(E, j) dE, with A the
    :func:`effective_area` and R(E, j) the fraction of a photon of energy E that a
    Gaussian of FWHM :func:`resolution_fwhm` puts in channel j (photons falling
    outside the band are lost). The continuum is integrated on a 5 eV grid; lines
    are Gaussians of intrinsic width ``sigma``, folded analytically (the area is
    taken at the line centre).

    Parameters
    ----------
    continuum : callable, optional
        ``continuum(E)`` with E an (M,) array of energies in keV returns the photon
        flux density (n, M) in photons cm^-2 s^-1 keV^-1, for n spectra.
    lines : tuple of three array_like, optional
        ``(energies, sigmas, fluxes)``: line centres in keV, intrinsic Gaussian
        widths in keV (0 for a narrow line) and line fluxes in photons cm^-2 s^-1.
        Each is (L,) or (n, L); they broadcast to (n, L).
    n_channels, e_min, e_max : optional
        The channel grid, as in :func:`energy_grid`.

    Returns
    -------
    counts : (n, J) ndarray
        Count rate per channel in counts s^-1.
    """
    grid = check_grid(n_channels, e_min, e_max)
    if continuum is None and lines is None:
        raise InputError("give a continuum, lines, or both")
    out = None
    if continuum is not None:
        out = _fold_continuum(continuum, *grid)
    if lines is not None:
        counts = _fold_lines(lines, *grid)
        out = counts if out is None else out + counts
    return out
