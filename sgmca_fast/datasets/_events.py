"""Simulated photon event lists: a mixture A S turned into one row per photon.

The layout is that of an X-ray event list (Chandra-like): a FITS binary table
``EVENTS`` with sky pixel columns ``X``, ``Y``, the energy ``ENERGY`` in eV and
optionally ``PI``, and the sky WCS in the columns' ``TCTYPn``/``TCRVLn``/
``TCDLTn``/``TCRPXn``/``TCUNIn`` keywords, so that
:func:`sgmca_fast.events.bin_events` reads it like an observation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._validation import InputError, choice, integer, real, real_array
from ._instrument import _edges

_EVENTS_PER_BLOCK = 1 << 22  # events made at a time (bounds the work arrays)
_CAS_A = (350.8500, 58.8150)  # deg, ICRS: the default sky position (RA, Dec)
_ACIS_PIXEL = 0.492  # arcsec: a Chandra ACIS sky pixel
_SKY_SIZE = 8192  # sky pixels per axis (TLMAX), like ACIS


@dataclass(frozen=True, eq=False)
class SimulatedEvents:
    """An event list made by :func:`simulate_events`, with its truth.

    Attributes
    ----------
    table : astropy.io.fits.BinTableHDU
        The event list, EXTNAME ``EVENTS``: columns ``X``, ``Y`` (sky pixels),
        ``ENERGY`` (eV) and, with ``pi_gain``, ``PI``.
    intensity : (J, H, W) ndarray
        The expected counts per voxel, lambda = A S scaled to ``n_photons``.
    counts : (J, H, W) ndarray of int64
        The counts drawn per voxel: binning the table on ``energy_edges`` and
        ``box`` with ``binning`` gives exactly this cube.
    energy_edges : (J + 1,) ndarray
        Channel edges in keV.
    box : tuple of float
        ``(x0, x1, y0, y1)``: the sky pixel box the image covers.
    binning : int
        Sky pixels per image pixel, per axis.
    path : pathlib.Path or None
        The FITS file written, if any.
    """

    table: object
    intensity: np.ndarray
    counts: np.ndarray
    energy_edges: np.ndarray
    box: tuple
    binning: int
    path: Path | None

    @property
    def n_events(self) -> int:
        """Number of rows (photons) of the table."""
        return int(self.table.header["NAXIS2"])


def _intensity(sources, spectra, n_photons):
    S = real_array(sources, "sources", ndim=3, shape_text="(I, H, W)")
    A = real_array(spectra, "spectra", ndim=2, shape_text="(J, I)")
    if A.shape[1] != S.shape[0]:
        raise InputError(f"spectra (J, I) must have one column per source: got "
                         f"{A.shape} for {S.shape[0]} sources")
    if (S < 0).any() or (A < 0).any():
        raise InputError("sources and spectra must be non-negative (an intensity)")
    lam = (A @ S.reshape(S.shape[0], -1)).reshape((A.shape[0],) + S.shape[1:])
    total = lam.sum()
    if not total > 0:
        raise InputError("the mixture A S is zero everywhere: no photon to draw")
    return lam * (n_photons / total)


def _check_edges(energy_edges, n_channels):
    if energy_edges is None:
        return _edges(n_channels, 0.5, 8.0)
    edges = real_array(energy_edges, "energy_edges", ndim=1)
    if edges.size != n_channels + 1 or edges[0] <= 0 or np.any(np.diff(edges) <= 0):
        raise InputError(f"energy_edges must be {n_channels + 1} increasing "
                         f"positive energies (keV) for {n_channels} channels, got "
                         f"{edges.size} values")
    return edges


def _cast_inside(values, low, high, dtype):
    """Cast to ``dtype``, nudging values that rounding put outside [low, high)."""
    out = values.astype(dtype)
    for side, bound, outside in ((np.inf, low, lambda v, b: v < b),
                                 (-np.inf, high, lambda v, b: v >= b)):
        bad = outside(out.astype(np.float64), bound)
        if bad.any():
            edge = np.asarray(bound[bad]).astype(dtype)
            edge = np.where(outside(edge.astype(np.float64), bound[bad]),
                            np.nextafter(edge, dtype(side)), edge)
            out[bad] = edge if side < 0 else np.maximum(out[bad], edge)
    return out


def _fill(columns, start, vox, shape, edges, origin, binning, rng, pi_gain):
    """Make the events of voxels ``vox`` and write them from row ``start``."""
    j, h, w = np.unravel_index(vox, shape)
    n = vox.size
    stop = start + n
    u = rng.random((3, n))
    for name, index, o in (("X", w, origin[0]), ("Y", h, origin[1])):
        low = o + index * float(binning)
        high = low + binning
        col = columns[name]
        col[start:stop] = _cast_inside(low + u[0 if name == "X" else 1] * binning,
                                       low, high, col.dtype.type)
    low, high = edges[j] * 1e3, edges[j + 1] * 1e3  # eV, as bin_events compares
    energy = _cast_inside(low + u[2] * (high - low), low, high,
                          columns["ENERGY"].dtype.type)
    columns["ENERGY"][start:stop] = energy
    if pi_gain is not None:
        columns["PI"][start:stop] = np.rint(energy / pi_gain)
    return stop


def _sky_columns(crval, pixel_deg):
    """Column keywords of X and Y: the sky WCS (TCTYPn, TCRVLn, ...) and limits."""
    crpix = _SKY_SIZE / 2 + 0.5
    return {name: {"coord_type": ctype, "coord_unit": "deg", "coord_ref_point": crpix,
                   "coord_ref_value": value, "coord_inc": step}
            for name, ctype, value, step in (("X", "RA---TAN", crval[0], -pixel_deg),
                                             ("Y", "DEC--TAN", crval[1], pixel_deg))}


def _events_header(fits, origin, size, binning, n_photons, total, pi_gain):
    header = fits.Header()
    header["EXTNAME"] = "EVENTS"
    header["RADESYS"] = "ICRS"
    header["TELESCOP"] = "SIMULATED"
    header["NPHOT"] = (float(n_photons), f"photons in all ({total})")
    header["IMGX0"] = (origin[0], "sky x of the simulated image's left edge")
    header["IMGY0"] = (origin[1], "sky y of the simulated image's bottom edge")
    header["IMGBIN"] = (binning, "sky pixels per image pixel")
    header["IMGSIZE"] = (f"{size[1]}x{size[0]}", "simulated image, W x H")
    if pi_gain is not None:
        header["PI_GAIN"] = (pi_gain, "eV per PI channel: E = PI * gain")
    return header


def _draw_counts(rng, lam, n_photons, total):
    if total == "exact":
        if n_photons != int(n_photons):
            raise InputError(f"total='exact' needs a whole number of photons, got "
                             f"{n_photons}")
        p = lam.reshape(-1) / lam.sum()
        return rng.multinomial(int(n_photons), p).reshape(lam.shape)
    return rng.poisson(lam)


def _origin(origin, shape, binning):
    if origin is None:
        centre = _SKY_SIZE / 2 + 0.5
        return tuple(math.floor(centre - n * binning / 2 + 0.5) - 0.5
                     for n in (shape[2], shape[1]))
    try:
        x0, y0 = origin
    except (TypeError, ValueError):
        raise InputError(f"origin must be (x0, y0) in sky pixels, got "
                         f"{origin!r}") from None
    return real(x0, "origin x0"), real(y0, "origin y0")


def simulate_events(sources, spectra, n_photons, *, energy_edges=None,
                    total: str = "expected", binning: int = 1, origin=None,
                    crval=_CAS_A, pixel_arcsec: float = _ACIS_PIXEL,
                    pi_gain: float | None = None, dtype: str = "float32",
                    shuffle: bool = True, path=None, force: bool = False,
                    random_state=None) -> SimulatedEvents:
    """Turn a mixture A S into a photon event list (a FITS table, one row a photon).

    The intensity lambda = A S (expected counts per voxel) is scaled to
    ``n_photons`` in all; each voxel's count is drawn from the Poisson law of its
    lambda (``total="expected"``: the total is then Poisson too) or the counts
    are multinomial with exactly ``n_photons`` (``total="exact"``). Each photon
    gets a sky position uniform within its pixel and an energy uniform within
    its channel (the spectra are known per channel only), so binning the table
    on the same channels and pixels gives back the drawn counts exactly, and
    their law is Poisson(lambda) per voxel.

    Parameters
    ----------
    sources : (I, H, W) array_like
        Non-negative source images (e.g. the Cas A templates of
        :func:`load_casa`, or :func:`make_sources`).
    spectra : (J, I) array_like
        Non-negative spectra, one column per source, on the channels of
        ``energy_edges`` (e.g. rows of :func:`make_family`, transposed).
    n_photons : float
        Total number of photons, expected or exact.
    energy_edges : (J + 1,) array_like, optional
        Channel edges in keV; default J equal channels over 0.5-8 keV, those of
        :func:`energy_grid` (J).
    total : {"expected", "exact"}, optional
        Poisson per voxel, or exactly ``n_photons`` (an integer).
    binning : int, optional
        Sky pixels per image pixel, per axis (``bin_events(binning=...)``
        undoes it).
    origin : (2,) sequence of float, optional
        Sky pixel coordinates ``(x0, y0)`` of the image's lower-left corner
        (a pixel edge, e.g. 3923.5); default: the image centred on the sky's
        reference pixel 4096.5.
    crval : (2,) sequence of float, optional
        RA and Dec (deg, ICRS) at the reference pixel; default Cas A.
    pixel_arcsec : float, optional
        Sky pixel size in arcsec (0.492, Chandra ACIS).
    pi_gain : float, optional
        Add a ``PI`` column (int32), ``round(ENERGY / pi_gain)`` (eV per
        channel, e.g. 14.6).
    dtype : {"float32", "float64"}, optional
        Type of the X, Y and ENERGY columns (Chandra uses float32).
    shuffle : bool, optional
        Shuffle the rows (event lists are in time order, not voxel order).
    path : str or os.PathLike, optional
        Also write the event list there (FITS, atomic).
    force : bool, optional
        Replace an existing ``path``.
    random_state : None, int or numpy.random.Generator, optional
        Seed of the counts, the positions, the energies and the order.

    Returns
    -------
    SimulatedEvents
        The table and its truth: ``intensity`` lambda (J, H, W), the drawn
        ``counts`` (J, H, W), ``energy_edges``, the sky ``box``.
    """
    from astropy.io import fits

    n_photons = real(n_photons, "n_photons", low=0.0, low_open=True)
    total = choice(total, "total", ("expected", "exact"))
    binning = integer(binning, "binning", minimum=1)
    dtype = np.dtype(choice(dtype, "dtype", ("float32", "float64")))
    lam = _intensity(sources, spectra, n_photons)
    edges = _check_edges(energy_edges, lam.shape[0])
    origin = _origin(origin, lam.shape, binning)
    ra, dec = (real(v, "crval") for v in crval)
    pixel_deg = real(pixel_arcsec, "pixel_arcsec", low=0.0, low_open=True) / 3600
    if pi_gain is not None:
        pi_gain = real(pi_gain, "pi_gain", low=0.0, low_open=True)
    rng = np.random.default_rng(random_state)

    counts = _draw_counts(rng, lam, n_photons, total)
    columns = _make_columns(rng, counts, edges, origin, binning, dtype, pi_gain)
    if shuffle:
        order = rng.permutation(int(counts.sum()))
        for name in columns:
            columns[name] = columns[name][order]
        del order
    sky = _sky_columns((ra, dec), pixel_deg)
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name=name, format=_FORMATS[col.dtype.str[1:]], array=col,
                     unit="eV" if name == "ENERGY" else None,
                     **sky.get(name, {}))
         for name, col in columns.items()],
        header=_events_header(fits, origin, lam.shape[1:], binning, n_photons,
                              total, pi_gain))
    _sky_limits(table.header)
    if path is not None:
        from .._io import atomic_write

        hdus = fits.HDUList([fits.PrimaryHDU(), table])
        path = atomic_write(path, lambda tmp: hdus.writeto(tmp, overwrite=True),
                            force)
    H, W = lam.shape[1:]
    box = (origin[0], origin[0] + W * binning, origin[1], origin[1] + H * binning)
    return SimulatedEvents(table, lam, counts, edges, box, binning, path)


_FORMATS = {"f4": "E", "f8": "D", "i4": "J"}


def _sky_limits(header):
    for n in (1, 2):
        header[f"TLMIN{n}"] = 0.5
        header[f"TLMAX{n}"] = _SKY_SIZE + 0.5


def _make_columns(rng, counts, edges, origin, binning, dtype, pi_gain):
    """Allocate the columns and fill them, a block of voxels at a time."""
    n = int(counts.sum())
    columns = {name: np.empty(n, dtype=dtype) for name in ("X", "Y", "ENERGY")}
    if pi_gain is not None:
        columns["PI"] = np.empty(n, dtype=np.int32)
    vox = np.flatnonzero(counts)
    per = counts.reshape(-1)[vox]
    ends = np.cumsum(per)
    start, first = 0, 0
    while first < vox.size:
        # voxels up to about _EVENTS_PER_BLOCK events (at least one voxel)
        last = max(first + 1, int(np.searchsorted(ends, ends[first] - per[first]
                                                  + _EVENTS_PER_BLOCK, "right")))
        block = np.repeat(vox[first:last], per[first:last])
        start = _fill(columns, start, block, counts.shape, edges, origin, binning,
                      rng, pi_gain)
        first = last
    return columns
