"""Built-in synthetic data: X-ray-like spectra, Cas A-like sources and mixtures.

Everything here is made from a seed with numpy and scipy, so a new user can run the
whole pipeline without downloading anything. The data imitate the Cassiopeia A toy
model of the sGMCA paper (shared/data/casa): four sources (synchrotron, thermal, two
iron lines) observed on 75 channels between 0.5 and 8 keV, but with a *toy*
instrument response and simple analytic emission models instead of the Chandra
response and APEC. They are meant for demos, tests and benchmarks, not for physics.

Spectral families (each spectrum normalised to unit sum, like the Cas A files):

``"sync"``
    Absorbed power law, photon index ``gamma`` and absorbing column ``nh``.
``"thermal"``
    Bremsstrahlung-like continuum of temperature ``kt`` plus emission lines at fixed
    energies whose equivalent widths follow the temperature, absorbed by ``nh``.
``"gauss"``
    One Gaussian emission line, centre ``center``, width ``sigma`` proportional to
    the centre, no continuum.

``load_casa`` reads the paper's Cas A folder when a user has it.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

__all__ = [
    "FAMILIES",
    "CasaData",
    "Mixture",
    "apply_response",
    "effective_area",
    "energy_grid",
    "load_casa",
    "make_demo_mixture",
    "make_family",
    "make_mixture",
    "make_sources",
    "make_spectra_sets",
    "photoabsorption",
    "resolution_fwhm",
]

FAMILIES = ("gauss", "sync", "thermal")
"""Names of the built-in spectral families, sorted."""

# Photo-absorption cross-section per hydrogen atom at 1 keV (cm^2), the order of
# magnitude of Morrison & McCammon (1983); sigma(E) = _SIGMA_1KEV * E**(-8/3).
_SIGMA_1KEV = 2.4e-22
_FINE_STEP = 0.005  # keV, integration step of the continuum (< 1/10 of the FWHM)

# Thermal lines: (label, energy keV, temperature of peak emission keV, peak
# equivalent width keV, intrinsic sigma keV). Strengths are log-normal in kT, so
# He-like lines peak cooler than H-like ones and Fe-K needs the hottest plasma.
_THERMAL_LINES = (
    ("Fe-L", 1.00, 0.70, 0.15, 0.08),
    ("Mg XI", 1.35, 0.60, 0.10, 0.0),
    ("Si XIII", 1.86, 0.90, 0.60, 0.0),
    ("Si XIV", 2.006, 1.80, 0.20, 0.0),
    ("S XV", 2.46, 1.30, 0.40, 0.0),
    ("S XVI", 2.62, 2.50, 0.15, 0.0),
    ("Ar XVII", 3.12, 1.80, 0.15, 0.0),
    ("Ca XIX", 3.90, 2.50, 0.15, 0.0),
    ("Fe XXV K", 6.70, 4.50, 0.80, 0.0),
)
_LINE_LOG_WIDTH = 0.6  # width of the log-normal strength curves, in ln(kT)
_CONTINUUM_INDEX = 1.4  # photon spectrum E**-1.4 exp(-E/kT): Gaunt factor ~ E**-0.4

# Default parameter ranges of the families (uniform draws).
_RANGES = {
    "sync": {"gamma_range": (1.8, 3.2), "nh_range": (0.5, 2.5)},
    "thermal": {"kt_range": (0.5, 4.0), "nh_range": (0.5, 2.5)},
    # Lines 2.2-4.1 channels wide (rms, observed), like those of the Cas A files.
    "gauss": {"center_range": (3.5, 7.5), "width_ratio": 0.06},
}


# --------------------------------------------------------------------------------------
# Energy grid and toy instrument response
# --------------------------------------------------------------------------------------


def _check_grid(n_channels, e_min, e_max) -> tuple[int, float, float]:
    if isinstance(n_channels, bool) or not isinstance(n_channels, (int, np.integer)):
        raise TypeError(
            f"n_channels must be an integer, got {type(n_channels).__name__}"
        )
    if n_channels < 2:
        raise ValueError(f"n_channels must be at least 2, got {n_channels}")
    e_min, e_max = float(e_min), float(e_max)
    if not (np.isfinite(e_min) and np.isfinite(e_max) and 0 < e_min < e_max):
        raise ValueError(
            f"need 0 < e_min < e_max (keV), got e_min={e_min}, e_max={e_max}"
        )
    return int(n_channels), e_min, e_max


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
    edges = _edges(*_check_grid(n_channels, e_min, e_max))
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
        Photon energies in keV (> 0).

    Returns
    -------
    fwhm : ndarray
        Full width at half maximum in keV, same shape as ``energy``.
    """
    e = np.asarray(energy, dtype=np.float64)
    return 0.15 * np.sqrt(e / 6.0)


_FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


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
    n_channels, e_min, e_max = _check_grid(n_channels, e_min, e_max)
    if continuum is None and lines is None:
        raise ValueError("give a continuum, lines, or both")
    out = None
    if continuum is not None:
        e, matrix = _continuum_response(n_channels, e_min, e_max)
        flux = np.atleast_2d(np.asarray(continuum(e), dtype=np.float64))
        if flux.shape[-1] != e.size:
            raise ValueError(
                f"continuum(E) must return shape (n, {e.size}), got {flux.shape}"
            )
        out = flux @ matrix
    if lines is not None:
        energies, sigmas, fluxes = (np.asarray(a, dtype=np.float64) for a in lines)
        energies, sigmas, fluxes = np.broadcast_arrays(
            np.atleast_2d(energies), np.atleast_2d(sigmas), np.atleast_2d(fluxes)
        )
        edges = _edges(n_channels, e_min, e_max)
        width = np.hypot(resolution_fwhm(energies) * _FWHM_TO_SIGMA, sigmas)
        z = (edges - energies[..., None]) / width[..., None]
        redist = np.diff(ndtr(z), axis=-1)  # (n, L, J)
        counts = np.einsum("nl,nlj->nj", fluxes * effective_area(energies), redist)
        out = counts if out is None else out + counts
    return out


# --------------------------------------------------------------------------------------
# Spectral families
# --------------------------------------------------------------------------------------


def _sync(params, grid):
    gamma, nh = params["gamma"], params["nh"]

    def continuum(e):
        return e ** -gamma[:, None] * photoabsorption(e, nh)

    return apply_response(continuum, **grid)


def _line_strengths(kt) -> np.ndarray:
    """Equivalent widths (n, L) in keV of the thermal lines at temperatures kt."""
    peak = np.array([line[2] for line in _THERMAL_LINES])
    ew_max = np.array([line[3] for line in _THERMAL_LINES])
    x = np.log(kt[:, None] / peak) / _LINE_LOG_WIDTH
    return ew_max * np.exp(-0.5 * x**2)


def _thermal(params, grid):
    kt, nh = params["kt"], params["nh"]
    line_e = np.array([line[1] for line in _THERMAL_LINES])
    line_s = np.array([line[4] for line in _THERMAL_LINES])

    def photon_continuum(e):
        return e**-_CONTINUUM_INDEX * np.exp(-e / kt[:, None])

    def continuum(e):
        return photon_continuum(e) * photoabsorption(e, nh)

    # line flux = equivalent width x unabsorbed continuum at the line, then absorbed
    fluxes = (
        _line_strengths(kt) * photon_continuum(line_e) * photoabsorption(line_e, nh)
    )
    return apply_response(continuum, (line_e, line_s, fluxes), **grid)


def _gauss(params, grid):
    center, sigma = params["center"], params["sigma"]
    return apply_response(
        None, (center[:, None], sigma[:, None], np.ones((center.size, 1))), **grid
    )


def _draw_sync(rng, n, gamma_range, nh_range):
    return {
        "gamma": rng.uniform(*gamma_range, size=n),
        "nh": rng.uniform(*nh_range, size=n),
    }


def _draw_thermal(rng, n, kt_range, nh_range):
    # temperatures uniform in log: line ratios change with ln(kT)
    log_kt = rng.uniform(np.log(kt_range[0]), np.log(kt_range[1]), size=n)
    return {"kt": np.exp(log_kt), "nh": rng.uniform(*nh_range, size=n)}


def _draw_gauss(rng, n, center_range, width_ratio):
    center = rng.uniform(*center_range, size=n)
    return {"center": center, "sigma": width_ratio * center}


def _anchor_params(name, opts):
    """Parameters of the anchors: corners of the parameter ranges."""
    if name == "gauss":
        # The lowest, middle and highest centres: with only the two ends, an IAE
        # must move a line across 40 channels by interpolating between two
        # distant bumps (median SAD 25.5 dB on the validation set, against 28.1 dB with
        # the middle one, same training).
        low, high = opts["center_range"]
        center = np.array([low, 0.5 * (low + high), high], dtype=np.float64)
        return {"center": center, "sigma": opts["width_ratio"] * center}
    first = "gamma" if name == "sync" else "kt"
    (a0, a1), (n0, n1) = opts[f"{first}_range"], opts["nh_range"]
    # hard-or-hot and unabsorbed, soft-or-cool and unabsorbed, hard-or-hot and
    # absorbed (for sync the low index is the hard end, for thermal the high kT)
    if name == "sync":
        a = np.array([a0, a1, a0])
    else:
        a = np.array([a1, a0, a1])
    return {first: a, "nh": np.array([n0, n0, n1])}


_EVALUATE = {"sync": _sync, "thermal": _thermal, "gauss": _gauss}
_DRAW = {"sync": _draw_sync, "thermal": _draw_thermal, "gauss": _draw_gauss}


def _family_options(name, options) -> dict:
    if name not in _RANGES:
        raise ValueError(
            f"unknown spectral family {name!r}; choose one of {sorted(_RANGES)}"
        )
    opts = dict(_RANGES[name])
    unknown = sorted(set(options) - set(opts))
    if unknown:
        raise TypeError(
            f"unexpected option(s) {unknown} for family {name!r}; "
            f"valid options are {sorted(opts)}"
        )
    opts.update(options)
    for key, value in opts.items():
        if key.endswith("_range"):
            lo, hi = (float(v) for v in value)
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo <= hi):
                raise ValueError(
                    f"{key} must be (low, high) with 0 < low <= high, got {value}"
                )
            opts[key] = (lo, hi)
        else:
            value = float(value)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{key} must be a positive number, got {value}")
            opts[key] = value
    return opts


def _grid_dict(n_channels, e_min, e_max) -> dict:
    keys = ("n_channels", "e_min", "e_max")
    return dict(zip(keys, _check_grid(n_channels, e_min, e_max), strict=True))


def _evaluate(name, params, grid) -> np.ndarray:
    spectra = _EVALUATE[name](params, grid)
    return spectra / spectra.sum(axis=1, keepdims=True)


def make_family(
    name: str,
    n: int,
    random_state=None,
    n_channels: int = 75,
    e_min: float = 0.5,
    e_max: float = 8.0,
    **options,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Draw spectra of one built-in family, through the toy response.

    Parameters are drawn uniformly in their ranges (``kt`` uniformly in log).

    ``"sync"`` (absorbed power law)
        Photon spectrum E^-gamma exp(-N_H sigma(E)) (:func:`photoabsorption`).
        Options ``gamma_range=(1.8, 3.2)`` (photon index) and ``nh_range=(0.5, 2.5)``
        (1e22 cm^-2). Parameters returned: ``gamma``, ``nh``.
    ``"thermal"`` (thermal plasma)
        Continuum E^-1.4 exp(-E / kT) (bremsstrahlung with a Gaunt factor
        ~ E^-0.4), plus lines of Fe-L (1.0 keV, a blend of width 0.08 keV), Mg XI
        (1.35), Si XIII (1.86), Si XIV (2.01), S XV (2.46), S XVI (2.62), Ar XVII
        (3.12), Ca XIX (3.9) and Fe XXV (6.7 keV). Each line's equivalent width is a
        log-normal function of kT peaking at its own temperature (0.6 keV for Mg to
        4.5 keV for Fe-K), so line ratios trace the temperature. Everything is
        absorbed by N_H. Options ``kt_range=(0.5, 4.0)`` (keV) and
        ``nh_range=(0.5, 2.5)`` (1e22 cm^-2). Parameters returned: ``kt``, ``nh``.
    ``"gauss"`` (one emission line)
        A Gaussian line of centre ``center`` and intrinsic width
        ``sigma = width_ratio * center`` (keV), no continuum, no absorption.
        Options ``center_range=(3.5, 7.5)`` (keV: from Ca to beyond Fe-K, so the two
        lines of a mixture can be up to 40 channels apart) and ``width_ratio=0.06``
        (observed rms widths of 2.2 to 4.1 channels; the Cas A lines: 2.4 to 4.1).
        Parameters returned: ``center``, ``sigma``. The observed line is wider
        than ``sigma`` by the instrument resolution, added in quadrature.

    Parameters
    ----------
    name : {"gauss", "sync", "thermal"}
        The family.
    n : int
        Number of spectra (>= 0).
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator of the parameter draws.
    n_channels, e_min, e_max : optional
        The channel grid (:func:`energy_grid`), keV.
    **options
        The family's parameter ranges, listed above.

    Returns
    -------
    spectra : (n, J) ndarray
        Spectra in counts per channel, each normalised to unit sum (L1).
    params : dict of str to (n,) ndarray
        The parameters of each spectrum, in the units above.
    """
    opts = _family_options(name, options)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    grid = _grid_dict(n_channels, e_min, e_max)
    rng = np.random.default_rng(random_state)
    params = _DRAW[name](rng, int(n), **opts)
    if n == 0:
        return np.zeros((0, grid["n_channels"])), params
    return _evaluate(name, params, grid), params


def make_spectra_sets(
    name: str,
    random_state=0,
    n_train: int = 600,
    n_valid: int = 200,
    n_channels: int = 75,
    e_min: float = 0.5,
    e_max: float = 8.0,
    **options,
) -> dict[str, np.ndarray]:
    """Anchors, training and validation spectra of a family, like the Cas A files.

    The anchors sit at corners of the parameter ranges so that they are as different
    as possible and not collinear: for ``"sync"`` and ``"thermal"`` (two
    parameters) (hard, low N_H), (soft, low N_H), (hard, high N_H), where hard
    means low photon index or high temperature; for ``"gauss"`` the lowest, middle
    and highest centres (the Cas A files have only the two ends). Train and
    validation spectra are independent draws of :func:`make_family` from one
    generator. The built-in data of the package (demo, shipped models) are these
    sets with the default ``random_state=0``; draw a test set with another seed.

    Parameters
    ----------
    name : {"gauss", "sync", "thermal"}
        The family.
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator (default 0: the package's built-in sets).
    n_train, n_valid : int, optional
        Sizes of the training and validation sets.
    n_channels, e_min, e_max : optional
        The channel grid (:func:`energy_grid`), keV.
    **options
        Parameter ranges of the family, as in :func:`make_family`.

    Returns
    -------
    sets : dict
        ``"anchors"`` (N, J), ``"train"`` (n_train, J) and ``"valid"`` (n_valid, J)
        arrays, every row of unit sum; N = 3.
    """
    opts = _family_options(name, options)
    grid = _grid_dict(n_channels, e_min, e_max)
    rng = np.random.default_rng(random_state)
    anchors = _evaluate(name, _anchor_params(name, opts), grid)
    train, _ = make_family(name, n_train, rng, **grid, **options)
    valid, _ = make_family(name, n_valid, rng, **grid, **options)
    return {"anchors": anchors, "train": train, "valid": valid}


# --------------------------------------------------------------------------------------
# Source images
# --------------------------------------------------------------------------------------


def _splat(image, y, x, weights):
    """Add point weights at fractional pixel positions (bilinear)."""
    h, w = image.shape
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = y - y0, x - x0
    for dy, dx, wt in (
        (0, 0, (1 - fy) * (1 - fx)),
        (0, 1, (1 - fy) * fx),
        (1, 0, fy * (1 - fx)),
        (1, 1, fy * fx),
    ):
        yy, xx = y0 + dy, x0 + dx
        ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
        np.add.at(image, (yy[ok], xx[ok]), (weights * wt)[ok])


def _blobs(size, y, x, sigma, amp):
    """Sum of isotropic Gaussians (pixels), each drawn on its own patch."""
    image = np.zeros((size, size))
    for yc, xc, s, a in zip(y, x, sigma, amp, strict=True):
        r = int(np.ceil(4 * s))
        ya, yb = max(int(yc) - r, 0), min(int(yc) + r + 2, size)
        xa, xb = max(int(xc) - r, 0), min(int(xc) + r + 2, size)
        if ya >= yb or xa >= xb:
            continue
        gy = np.exp(-0.5 * ((np.arange(ya, yb) - yc) / s) ** 2)
        gx = np.exp(-0.5 * ((np.arange(xa, xb) - xc) / s) ** 2)
        image[ya:yb, xa:xb] += a * np.outer(gy, gx)
    return image


def _filaments(rng, size, cy, cx, radius, count, inside):
    """Thin curved filaments: rim arcs (inside=False) or interior wisps."""
    image = np.zeros((size, size))
    step = 0.3  # pixels between splatted points
    for _ in range(count):
        if inside:
            # a smooth random walk started inside the shell
            rho = radius * np.sqrt(rng.uniform(0.0, 0.8))
            phi = rng.uniform(0, 2 * np.pi)
            length = radius * rng.uniform(0.2, 0.6)
            npts = max(int(length / step), 2)
            heading = rng.uniform(0, 2 * np.pi)
            turn = np.cumsum(rng.normal(0, 0.02 * 128 / size, npts))
            ang = heading + np.cumsum(turn) * step / max(radius, 1) * 20
            ys = cy + rho * np.sin(phi) + np.cumsum(np.sin(ang)) * step
            xs = cx + rho * np.cos(phi) + np.cumsum(np.cos(ang)) * step
        else:
            # an arc just inside the outer edge, slightly wavy in radius
            phi0 = rng.uniform(0, 2 * np.pi)
            span = rng.uniform(0.3, 1.2)
            npts = max(int(span * radius / step), 2)
            phi = phi0 + np.linspace(0, span, npts)
            wave = 0.02 * np.sin(phi * rng.integers(3, 9) + rng.uniform(0, 6.3))
            rho = radius * (rng.uniform(0.9, 0.96) + wave)
            ys, xs = cy + rho * np.sin(phi), cx + rho * np.cos(phi)
        taper = np.sin(np.linspace(0, np.pi, ys.size)) ** 0.5  # fade at both ends
        # nothing beyond the forward shock
        taper *= np.hypot(ys - cy, xs - cx) < 0.98 * radius
        _splat(image, ys, xs, rng.uniform(0.3, 1.0) * taper)
    return ndimage.gaussian_filter(image, max(0.5, 0.6 * size / 128))


def _soft_floor(image, fraction):
    """Subtract a fraction of the maximum and clip: compact support, zero sky."""
    return np.maximum(image - fraction * image.max(), 0.0)


def make_sources(size: int = 128, random_state=None) -> np.ndarray:
    """Four source images that look like the Cas A templates, sparse in starlets.

    Drawn in a frame scaled with ``size`` (the same picture at any size), on a zero
    background:

    0. synchrotron: a projected spherical shell (limb-brightened), modulated in
       azimuth, with thin arcs at the forward shock and thin interior filaments;
    1. thermal: a clumpy shell of Gaussian clumps inside the forward shock,
       gathered in a few azimuthal sectors;
    2. iron I and 3. iron II: clusters of compact knots in different sectors.

    Each image is non-negative with unit L2 norm. Smooth blobs and thin filaments
    on an empty sky make most starlet detail coefficients negligible.

    Parameters
    ----------
    size : int, optional
        Height and width in pixels (>= 16).
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator.

    Returns
    -------
    sources : (4, size, size) ndarray
        float64 images, rows of unit L2 norm, in the order sync, thermal, Fe I, Fe II.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"size must be an integer, got {type(size).__name__}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    size = int(size)
    rng = np.random.default_rng(random_state)
    c = (size - 1) / 2
    cy, cx = c + rng.uniform(-0.02, 0.02, 2) * size
    radius = 0.44 * size
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    rho = np.hypot(yy - cy, xx - cx)

    # synchrotron: thin-shell projection sqrt(R^2 - r^2) - sqrt(r_in^2 - r^2)
    r_in = 0.8 * radius
    shell = np.sqrt(np.maximum(radius**2 - rho**2, 0)) - np.sqrt(
        np.maximum(r_in**2 - rho**2, 0)
    )
    shell /= shell.max()
    # patchy brightness: a smooth log-normal random field
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), 0.06 * size)
    sync = shell * np.exp(0.5 * field / field.std())
    rim = _filaments(rng, size, cy, cx, radius, 14, inside=False)
    wisps = _filaments(rng, size, cy, cx, radius, 25, inside=True)
    sync = (
        ndimage.gaussian_filter(sync, 0.5)
        + 1.5 * rim / rim.max()
        + 0.8 * wisps / wisps.max()
    )

    def clusters(n_clusters, n_knots, sectors, spread, knot_sigma, r_range):
        ys, xs, ss, amps = [], [], [], []
        for k in range(n_clusters):
            ang = sectors[k % len(sectors)] + rng.normal(0, 0.25)
            rr = radius * rng.uniform(*r_range)
            y0, x0 = cy + rr * np.sin(ang), cx + rr * np.cos(ang)
            sd = spread * size * rng.uniform(0.6, 1.4)
            ys.append(y0 + rng.normal(0, sd, n_knots))
            xs.append(x0 + rng.normal(0, sd, n_knots))
            ss.append(knot_sigma * size * rng.uniform(0.5, 1.5, n_knots))
            amps.append(rng.lognormal(0, 0.5, n_knots))
        return _blobs(size, *(np.concatenate(v) for v in (ys, xs, ss, amps)))

    base = rng.uniform(0, 2 * np.pi)
    # thermal clumps along the reverse-shock region, in three broad sectors
    thermal_sectors = base + np.array([0.0, 2.2, 4.0])
    therm = clusters(9, 12, thermal_sectors, 0.06, 0.025, (0.55, 0.85))
    # iron knots: Fe I near the thermal sectors' gaps, Fe II on the other side
    fe1 = clusters(4, 18, base + np.array([1.1, 3.1]), 0.035, 0.012, (0.3, 0.8))
    fe2 = clusters(3, 18, base + np.array([5.2, 0.5]), 0.03, 0.012, (0.4, 0.9))
    images = np.stack(
        [
            _soft_floor(sync, 0.02),
            _soft_floor(therm, 0.05),
            _soft_floor(fe1, 0.05),
            _soft_floor(fe2, 0.05),
        ]
    )
    return images / np.linalg.norm(images.reshape(4, -1), axis=1)[:, None, None]


# --------------------------------------------------------------------------------------
# Mixtures
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Mixture:
    """A simulated mixture X = A0 S0 + N and its ground truth.

    Attributes
    ----------
    X : (J, H, W) ndarray
        Observed data, A0 S0 + N (or (J, P) when the sources were given as (I, P)).
    A0 : (J, I) ndarray
        True mixing matrix: the drawn spectra as columns, each of unit sum.
    S0 : (I, H, W) ndarray
        True sources: unit-L2 rows, times k for the scaled ones.
    N : (J, H, W) ndarray
        The Gaussian noise that was added.
    noise_std : float
        ``std(N)``: the noise level to give the solver.
    names : tuple of str
        Source names.
    indices : tuple of int
        Row of each spectrum in its family array.
    """

    X: np.ndarray
    A0: np.ndarray
    S0: np.ndarray
    N: np.ndarray
    noise_std: float
    names: tuple[str, ...]
    indices: tuple[int, ...] = field(default=())


def _unique_rows(family: np.ndarray) -> np.ndarray:
    """Return the index of the first occurrence of each distinct row, sorted."""
    _, first = np.unique(family, axis=0, return_index=True)
    return np.sort(first)


def _pick_pair(rng, family, candidates, delta) -> tuple[int, int]:
    """Two distinct rows whose peak channels differ by the value closest to delta."""
    peaks = np.argmax(family[candidates], axis=1)
    gap = np.abs(peaks[:, None] - peaks[None, :]).astype(np.float64)
    np.fill_diagonal(gap, np.inf)
    err = np.abs(gap - delta)
    i, j = np.nonzero(err == err.min())
    k = rng.integers(i.size)
    pair = [int(candidates[i[k]]), int(candidates[j[k]])]
    return pair[0], pair[1]


def make_mixture(
    sources,
    spectra: Sequence,
    *,
    snr_db: float = 40.0,
    k: float = 1.0,
    delta: float | None = None,
    scaled: Sequence[int] = (1, 2, 3),
    names: Sequence[str] | None = None,
    random_state=None,
) -> Mixture:
    """Mix sources with spectra drawn from families, following the paper's protocol.

    The protocol of the sGMCA paper (shared/data/casa/README.md): sources scaled to
    unit L2 rows; one spectrum drawn at random from each family; the sources listed
    in ``scaled`` multiplied by ``k``; X = A0 S0;
    N = randn * sqrt(mean(X**2) * 10**(-snr_db / 10)), so that
    10 log10(||A0 S0||^2 / ||N||^2) is ``snr_db`` up to the noise's own fluctuation.

    Families are matched by content: when the same family (e.g. the Gaussian lines)
    serves several sources, its draws are distinct spectra. With ``delta``, exactly
    one family must serve exactly two sources; its two spectra are the pair whose
    peak channels (argmax) differ by the available value closest to ``delta``,
    drawn at random among the ties, in random order.

    Parameters
    ----------
    sources : (I, H, W) or (I, P) array_like
        Source images; each row is rescaled to unit L2 norm.
    spectra : sequence of I (n_i, J) array_like
        For each source, the family to draw its spectrum from (rows are spectra,
        used as given: the built-in ones have unit sum).
    snr_db : float, optional
        Signal-to-noise ratio in dB (``inf`` for no noise).
    k : float, optional
        Amplitude ratio (> 0) applied to the sources listed in ``scaled``.
    delta : float, optional
        Wanted distance in channels between the peaks of the two spectra drawn from
        the same family.
    scaled : sequence of int, optional
        Indices of the sources multiplied by ``k`` (default thermal and both lines).
    names : sequence of I str, optional
        Source names (default ``"source_0"``, ...).
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator of the spectrum draws and of the noise.

    Returns
    -------
    Mixture
        X, A0, S0, N, noise_std, names and the drawn rows ``indices``.
    """
    s = np.asarray(sources, dtype=np.float64)
    if s.ndim not in (2, 3):
        raise ValueError(
            f"sources must have shape (I, H, W) or (I, P), got shape {s.shape}"
        )
    n_src = s.shape[0]
    if not np.all(np.isfinite(s)):
        raise ValueError("sources contain NaN or inf")
    norms = np.linalg.norm(s.reshape(n_src, -1), axis=1)
    if np.any(norms == 0):
        raise ValueError(
            f"source(s) {np.flatnonzero(norms == 0).tolist()} are all zero"
        )
    s = s / norms.reshape((-1,) + (1,) * (s.ndim - 1))

    if isinstance(spectra, np.ndarray) and spectra.ndim == 2:
        raise TypeError(
            "spectra must be a sequence of I 2-D arrays (one family per source), "
            "got a single 2-D array"
        )
    families = [np.asarray(f, dtype=np.float64) for f in spectra]
    if len(families) != n_src:
        raise ValueError(
            f"got {len(families)} spectral families for {n_src} sources; "
            "give one (n, J) array per source"
        )
    for i, f in enumerate(families):
        if f.ndim != 2 or f.shape[0] == 0:
            raise ValueError(
                f"spectra[{i}] must be a non-empty (n, J) array, got shape {f.shape}"
            )
        if f.shape[1] != families[0].shape[1]:
            raise ValueError(
                f"all families must have the same number of channels: spectra[0] "
                f"has {families[0].shape[1]}, spectra[{i}] has {f.shape[1]}"
            )
        if not np.all(np.isfinite(f)):
            raise ValueError(f"spectra[{i}] contains NaN or inf")

    scaled = tuple(int(i) for i in scaled)
    bad = [i for i in scaled if not -n_src <= i < n_src]
    if bad:
        raise ValueError(f"scaled indices {bad} out of range for {n_src} sources")
    k = float(k)
    if not (np.isfinite(k) and k > 0):
        raise ValueError(f"k must be a positive finite number, got {k}")
    snr_db = float(snr_db)
    if np.isnan(snr_db) or snr_db == -np.inf:
        raise ValueError(f"snr_db must be a number or +inf, got {snr_db}")
    if names is None:
        names = tuple(f"source_{i}" for i in range(n_src))
    names = tuple(str(n) for n in names)
    if len(names) != n_src:
        raise ValueError(f"got {len(names)} names for {n_src} sources")

    # group the sources that share a family (same content)
    groups: list[list[int]] = []
    for i, f in enumerate(families):
        for g in groups:
            if families[g[0]] is f or np.array_equal(families[g[0]], f):
                g.append(i)
                break
        else:
            groups.append([i])
    if delta is not None:
        delta = float(delta)
        if not (np.isfinite(delta) and delta >= 0):
            raise ValueError(f"delta must be a non-negative number, got {delta}")
        shared = [g for g in groups if len(g) > 1]
        if len(shared) != 1 or len(shared[0]) != 2:
            raise ValueError(
                "delta needs exactly one family shared by exactly two sources "
                f"(the two lines); got sources grouped as {groups}"
            )

    rng = np.random.default_rng(random_state)
    indices = [0] * n_src
    for g in groups:
        fam = families[g[0]]
        if len(g) == 1:
            indices[g[0]] = int(rng.integers(fam.shape[0]))
            continue
        candidates = _unique_rows(fam)
        if candidates.size < len(g):
            raise ValueError(
                f"spectra[{g[0]}] has {candidates.size} distinct spectra but serves "
                f"{len(g)} sources {g}, which need distinct draws"
            )
        if delta is not None:
            picks = _pick_pair(rng, fam, candidates, delta)
        else:
            picks = rng.choice(candidates, size=len(g), replace=False)
        for i, p in zip(g, picks, strict=True):
            indices[i] = int(p)

    a0 = np.stack([families[i][indices[i]] for i in range(n_src)], axis=1)
    factor = np.ones(n_src)
    factor[list(scaled)] = k
    s0 = s * factor.reshape((-1,) + (1,) * (s.ndim - 1))
    x = (a0 @ s0.reshape(n_src, -1)).reshape((a0.shape[0],) + s0.shape[1:])
    noise_scale = np.sqrt(np.mean(x**2) * 10 ** (-snr_db / 10))
    noise = rng.standard_normal(x.shape) * noise_scale
    return Mixture(
        X=x + noise,
        A0=a0,
        S0=s0,
        N=noise,
        noise_std=float(np.std(noise)),
        names=names,
        indices=tuple(indices),
    )


def make_demo_mixture(
    size: int = 128,
    snr_db: float = 40.0,
    random_state=0,
    *,
    k: float = 1.0,
    delta: float | None = None,
) -> Mixture:
    """Make the built-in demo: Cas A-like sources mixed with built-in spectra.

    Sources from :func:`make_sources`; spectra drawn from the validation splits of
    ``make_spectra_sets(name)`` (default seed 0) for sync, thermal, gauss, gauss;
    then :func:`make_mixture`. Source names: ``("sync", "thermal", "fe1", "fe2")``.

    Parameters
    ----------
    size : int, optional
        Image height and width in pixels (>= 16).
    snr_db : float, optional
        Signal-to-noise ratio in dB.
    random_state : None, int or numpy.random.Generator, optional
        Seed of the images, the spectrum draws and the noise.
    k : float, optional
        Amplitude ratio of the thermal and both line sources.
    delta : float, optional
        Distance in channels between the two line peaks (closest available).

    Returns
    -------
    Mixture
        With X (75, size, size), A0 (75, 4), S0 (4, size, size).
    """
    rng = np.random.default_rng(random_state)
    sources = make_sources(size, rng)
    valid = {
        name: _builtin_sets(name)["valid"] for name in ("sync", "thermal", "gauss")
    }
    return make_mixture(
        sources,
        [valid["sync"], valid["thermal"], valid["gauss"], valid["gauss"]],
        snr_db=snr_db,
        k=k,
        delta=delta,
        names=("sync", "thermal", "fe1", "fe2"),
        random_state=rng,
    )


@lru_cache(maxsize=3)
def _builtin_sets(name: str) -> dict[str, np.ndarray]:
    sets = make_spectra_sets(name)
    for value in sets.values():
        value.setflags(write=False)
    return sets


# --------------------------------------------------------------------------------------
# The Cas A folder of the paper
# --------------------------------------------------------------------------------------

_CASA_SOURCES = ("sync", "therm", "fe1", "fe2")
_CASA_FAMILIES = ("sync", "thermal", "gauss")
_VALID_FRACTION = 0.8


@dataclass(frozen=True, eq=False)
class CasaData:
    """Contents of a Cas A folder (see :func:`load_casa`).

    Attributes
    ----------
    sources : (4, H, W) ndarray
        Spatial templates sync, therm, fe1, fe2, each of unit L2 norm (346 x 346 in
        the paper's folder).
    names : tuple of str
        ``("sync", "therm", "fe1", "fe2")``.
    families : dict of str to dict of str to ndarray
        ``"sync"``, ``"thermal"``, ``"gauss"`` -> ``{"anchors": (N, J),
        "train": (n, J), "valid": (m, J)}``.
    reference_models : dict of str to pathlib.Path
        Family name -> the authors' model pickle, for those present.
    path : pathlib.Path
        The folder read.
    """

    sources: np.ndarray
    names: tuple[str, ...]
    families: dict[str, dict[str, np.ndarray]]
    reference_models: dict[str, Path]
    path: Path


def _read_npz(path: Path, keys: Sequence[str], optional: Sequence[str] = ()):
    if not path.is_file():
        raise FileNotFoundError(f"missing file {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
        # ValueError: neither .npz nor .npy, numpy would need pickle to go on
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: not an .npz archive (it holds a single array)")
    with data:
        missing = [key for key in keys if key not in data.files]
        if missing:
            raise ValueError(
                f"{path}: missing key(s) {missing}; found {sorted(data.files)}"
            )
        out = {}
        for key in list(keys) + [key for key in optional if key in data.files]:
            try:
                out[key] = data[key]
            except (OSError, EOFError, ValueError, zipfile.BadZipFile) as exc:
                # object arrays (they need pickle) and damaged members
                raise ValueError(f"{path}: key {key!r} cannot be read: {exc}") from None
    for key, value in out.items():
        if not (
            np.issubdtype(value.dtype, np.floating)
            or np.issubdtype(value.dtype, np.integer)
        ):
            raise ValueError(
                f"{path}: key {key!r} must hold real numbers, got dtype {value.dtype}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{path}: key {key!r} contains NaN or inf")
        out[key] = value.astype(np.float64, copy=False)
    return out


def load_casa(path) -> CasaData:
    """Read a folder laid out like the paper's Cas A data (shared/data/casa).

    Expected files: ``sources.npz`` (keys ``sync``, ``therm``, ``fe1``, ``fe2``,
    2-D images of one shape) and ``spectra_{sync,thermal,gauss}.npz`` (keys
    ``anchors``, ``train`` and optionally ``valid``, 2-D with one channel count);
    optionally ``reference_models/model_{name}.pkl``, which are listed, not read.
    Arrays are read with ``allow_pickle=False``.

    A family without ``valid`` (the Gaussian lines in the paper's folder) is split
    as ``train[:int(0.8 * n)]`` for training and ``train[int(0.8 * n):]`` for
    validation (480 / 120 for the 600 Gaussian spectra); the rest of the project
    uses this split.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.

    Returns
    -------
    CasaData
        Sources normalised to unit L2 rows, the spectral families and the reference
        model paths.

    Raises
    ------
    FileNotFoundError
        The folder or one of the files is missing (the message names it).
    ValueError
        A file is unreadable, lacks a key, or holds arrays of the wrong shape, type
        or values (the message names the file and the key).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Cas A folder not found: {folder}")

    src_file = folder / "sources.npz"
    src = _read_npz(src_file, _CASA_SOURCES)
    shape = src[_CASA_SOURCES[0]].shape
    for key in _CASA_SOURCES:
        img = src[key]
        if img.ndim != 2 or img.shape != shape:
            raise ValueError(
                f"{src_file}: key {key!r} must be a 2-D image of shape {shape} like "
                f"{_CASA_SOURCES[0]!r}, got shape {img.shape}"
            )
        if np.linalg.norm(img) == 0:
            raise ValueError(f"{src_file}: key {key!r} is all zero")
    sources = np.stack([src[key] for key in _CASA_SOURCES])
    sources /= np.linalg.norm(sources.reshape(len(_CASA_SOURCES), -1), axis=1)[
        :, None, None
    ]

    families = {}
    n_channels = None
    for name in _CASA_FAMILIES:
        file = folder / f"spectra_{name}.npz"
        sets = _read_npz(file, ("anchors", "train"), optional=("valid",))
        for key, value in sets.items():
            if value.ndim != 2 or value.shape[0] == 0:
                raise ValueError(
                    f"{file}: key {key!r} must be a non-empty 2-D (n, J) array, got "
                    f"shape {value.shape}"
                )
            if n_channels is None:
                n_channels = value.shape[1]
            if value.shape[1] != n_channels:
                raise ValueError(
                    f"{file}: key {key!r} has {value.shape[1]} channels, expected "
                    f"{n_channels} like the other spectra"
                )
        if "valid" not in sets:
            train = sets["train"]
            cut = int(_VALID_FRACTION * train.shape[0])
            if cut == 0 or cut == train.shape[0]:
                raise ValueError(
                    f"{file}: key 'train' has {train.shape[0]} spectra, too few to "
                    "split into train and valid"
                )
            sets["train"], sets["valid"] = train[:cut], train[cut:]
        families[name] = {key: sets[key] for key in ("anchors", "train", "valid")}

    models = {}
    for name in _CASA_FAMILIES:
        model = folder / "reference_models" / f"model_{name}.pkl"
        if model.is_file():
            models[name] = model
    return CasaData(
        sources=sources,
        names=_CASA_SOURCES,
        families=families,
        reference_models=models,
        path=folder,
    )
