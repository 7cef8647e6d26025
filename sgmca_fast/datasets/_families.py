"""Spectral families: analytic X-ray emission models drawn through the toy instrument.

Each family has a photon model, a way to draw its parameters, anchor parameters at
the corners of its ranges and default ranges, gathered in one registry,
``_FAMILY``; :data:`FAMILIES` lists its names. Spectra are normalised to unit sum,
like the files of the paper's Cas A folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np

from .._validation import InputError, InputTypeError, choice, integer, real
from ._instrument import apply_response, grid_options, photoabsorption

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


# ------------------------------------------------------------------ photon models


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


# ------------------------------------------------------------- parameter draws


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


# ----------------------------------------------------------------------- anchors


def _corner_anchors(opts, first, hard_is_low):
    """Anchor at three corners of the two parameter ranges.

    Hard-or-hot and unabsorbed, soft-or-cool and unabsorbed, hard-or-hot and
    absorbed: for sync the low index is the hard end, for thermal the high kT.
    """
    (a0, a1), (n0, n1) = opts[f"{first}_range"], opts["nh_range"]
    a = np.array([a0, a1, a0]) if hard_is_low else np.array([a1, a0, a1])
    return {first: a, "nh": np.array([n0, n0, n1])}


def _gauss_anchors(opts):
    # The lowest, middle and highest centres: with only the two ends, an IAE must
    # move a line across 40 channels by interpolating between two distant bumps
    # (median SAD 25.5 dB on the validation set, against 28.1 dB with the middle
    # one, same training).
    low, high = opts["center_range"]
    center = np.array([low, 0.5 * (low + high), high], dtype=np.float64)
    return {"center": center, "sigma": opts["width_ratio"] * center}


# ---------------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Family:
    """One spectral family: photon model, parameter draws, anchors, default ranges."""

    spectra: Callable  # (params, grid) -> (n, J) counts per channel
    draw: Callable  # (rng, n, **options) -> params
    anchors: Callable  # (options) -> params of the anchors
    options: dict  # default options: uniform ranges (and the gauss width ratio)


# In the order of the paper (and of its Cas A folder): sync, thermal, gauss.
_FAMILY = {
    "sync": _Family(
        _sync,
        _draw_sync,
        partial(_corner_anchors, first="gamma", hard_is_low=True),
        {"gamma_range": (1.8, 3.2), "nh_range": (0.5, 2.5)},
    ),
    "thermal": _Family(
        _thermal,
        _draw_thermal,
        partial(_corner_anchors, first="kt", hard_is_low=False),
        {"kt_range": (0.5, 4.0), "nh_range": (0.5, 2.5)},
    ),
    # Lines 2.2-4.1 channels wide (rms, observed), like those of the Cas A files.
    "gauss": _Family(
        _gauss,
        _draw_gauss,
        _gauss_anchors,
        {"center_range": (3.5, 7.5), "width_ratio": 0.06},
    ),
}

FAMILIES = tuple(sorted(_FAMILY))
"""Names of the built-in spectral families, sorted."""


# ------------------------------------------------------------------------ checks


def _positive_range(value, name: str) -> tuple[float, float]:
    """Check a ``(low, high)`` option with 0 < low <= high; return it as floats."""
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise InputTypeError(
            f"{name} must be a pair (low, high), got {value!r}"
        ) from None
    lo, hi = real(lo, name), real(hi, name)
    if not 0 < lo <= hi:
        raise InputError(
            f"{name} must be (low, high) with 0 < low <= high, got {value}"
        )
    return lo, hi


def _family_options(name, options) -> dict:
    """Return the family's default options updated with ``options``, checked."""
    opts = dict(_FAMILY[choice(name, "spectral family", _FAMILY)].options)
    unknown = sorted(set(options) - set(opts))
    if unknown:
        raise InputTypeError(
            f"unexpected option(s) {unknown} for family {name!r}; "
            f"valid options are {sorted(opts)}"
        )
    opts.update(options)
    for key, value in opts.items():
        if key.endswith("_range"):
            opts[key] = _positive_range(value, key)
        else:
            opts[key] = real(value, key, low=0.0, low_open=True)
    return opts


def _evaluate(name, params, grid) -> np.ndarray:
    spectra = _FAMILY[name].spectra(params, grid)
    return spectra / spectra.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------ public draws


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
        The family (one of :data:`FAMILIES`).
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
    n = integer(n, "n", minimum=0)
    grid = grid_options(n_channels, e_min, e_max)
    rng = np.random.default_rng(random_state)
    params = _FAMILY[name].draw(rng, n, **opts)
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
        The family (one of :data:`FAMILIES`).
    random_state : None, int or numpy.random.Generator, optional
        Seed or generator (default 0: the package's built-in sets).
    n_train, n_valid : int, optional
        Sizes (>= 0) of the training and validation sets.
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
    n_train = integer(n_train, "n_train", minimum=0)
    n_valid = integer(n_valid, "n_valid", minimum=0)
    grid = grid_options(n_channels, e_min, e_max)
    rng = np.random.default_rng(random_state)
    anchors = _evaluate(name, _FAMILY[name].anchors(opts), grid)
    train, _ = make_family(name, n_train, rng, **grid, **options)
    valid, _ = make_family(name, n_valid, rng, **grid, **options)
    return {"anchors": anchors, "train": train, "valid": valid}


@lru_cache(maxsize=len(FAMILIES))
def builtin_sets(name: str) -> dict[str, np.ndarray]:
    """``make_spectra_sets(name)`` computed once, read-only: the package's own sets."""
    sets = make_spectra_sets(name)
    for value in sets.values():
        value.setflags(write=False)
    return sets
