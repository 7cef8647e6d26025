"""Photon event lists to count cubes: read, filter, bin, in one streamed pass.

X-ray observations come as event lists: a FITS binary table with one row per
detected photon, its sky position (columns ``X``, ``Y``, in sky pixels) and its
energy (``ENERGY`` in eV, or ``PI`` channels and a gain). :func:`bin_events`
turns such a table into a count cube ``(J, H, W)``: energy channels uniform or
logarithmic in a band, a spatial binning factor, a box on the sky, with the sky
WCS of the table's ``TCTYPn``/``TCRVLn``/``TCDLTn``/``TCRPXn``/``TCUNIn``
keywords carried to the binned image and the energy axis as a
:class:`~sgmca_fast.cube.SpectralAxis` in keV. The table is memory-mapped and
read in chunks of rows, so the memory is the cube plus one chunk whatever the
number of events. :func:`write_counts_cube` writes the cube as FITS;
:func:`check_counts` is the check of count data (non-negative integers).

Conventions
-----------
- Sky pixel coordinates are those of the ``X``/``Y`` columns: the FITS
  convention, where the pixel of integer coordinate ``i`` spans
  ``[i - 0.5, i + 0.5)`` and the table's ``TCRPXn`` is such a coordinate.
- Every bin is half-open, ``[low, high)``, in energy and on the sky (events on
  the upper edge of the band or of the box are left out).
- A ``PI`` channel ``c`` has the energy ``c * gain`` (eV).
- Counts are int32: exact up to 2**31 - 1 per voxel (float32 stops being exact
  at 2**24 = 1.7e7, which a bright pixel of a 1e8-photon observation can reach)
  at half the memory of int64 or float64.

FITS needs astropy (the ``fits`` extra), imported inside the functions.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._cube import Cube, SpectralAxis
from ._cube_files import _need_astropy
from ._event_sky import _binned_wcs, _data_box, _grid, _pixel_box, _sky_wcs
from ._event_table import _chunks, _layout, _open
from ._io import atomic_write
from ._validation import InputError, InputTypeError, boolean, integer, real
from ._version import __version__

__all__ = [
    "CHUNK_ROWS",
    "MAX_VOXELS",
    "bin_events",
    "check_counts",
    "energy_edges",
    "write_counts_cube",
]

CHUNK_ROWS = 1 << 21
"""Rows read at a time (2,097,152: about 150 MB of work arrays per chunk)."""

MAX_VOXELS = 1 << 28
"""Largest cube :func:`bin_events` makes by default (1 GiB of int32 counts)."""

_COUNT_DTYPE = np.int32
_KEPT_HEADER_KEYS = ("TELESCOP", "INSTRUME", "DETNAM", "OBJECT", "OBS_ID",
                     "DATE-OBS", "DATE-END", "EXPOSURE", "LIVETIME", "ONTIME")


# ------------------------------------------------------------------ counts check


def check_counts(X, name: str = "X") -> np.ndarray:
    """Check that an array holds photon counts: finite non-negative integers.

    Integer dtypes pass when no value is negative; float arrays pass when every
    value is finite, non-negative and integral (a float cube of counts read from a
    file). Nothing is converted.

    Parameters
    ----------
    X : array_like
        Counts, any shape (e.g. a cube ``(J, H, W)``), in photons.
    name : str, optional
        Its name, for the messages.

    Returns
    -------
    ndarray
        ``X`` as an array (no copy when it already is one).

    Raises
    ------
    InputTypeError
        Not a real numeric array (bool, complex, strings and objects are refused).
    InputError
        Empty, NaN or inf values, negative values or values with a fraction.
    """
    X = np.asarray(X)
    if X.dtype.kind not in "iuf":
        raise InputTypeError(f"{name} must be an array of counts (integers), got "
                             f"dtype {X.dtype}")
    if X.size == 0:
        raise InputError(f"{name} is empty (shape {X.shape})")
    if X.dtype.kind == "f":
        finite = np.isfinite(X)
        if not finite.all():
            raise InputError(f"{name} holds {int(X.size - finite.sum())} NaN or "
                             "inf value(s); counts must be finite")
        fraction = X != np.floor(X)
        if fraction.any():
            first = X.flat[int(np.argmax(fraction))]
            raise InputError(f"{name} holds {int(fraction.sum())} value(s) that are "
                             f"not whole numbers (e.g. {first}); counts are integers")
    if X.dtype.kind != "u":
        negative = X < 0
        if negative.any():
            raise InputError(f"{name} holds {int(negative.sum())} negative "
                             f"value(s) (minimum {X.min()}); counts are >= 0")
    return X


# ---------------------------------------------------------------------- energy


def energy_edges(band=(0.5, 7.0), channels: int = 75, log: bool = False
                 ) -> np.ndarray:
    """Edges of energy channels uniform (or logarithmic) in a band.

    Parameters
    ----------
    band : (2,) sequence of float, optional
        ``(e_min, e_max)`` in keV, ``0 < e_min < e_max``.
    channels : int, optional
        Number of channels ``J``.
    log : bool, optional
        Channels of equal width in log(E) (a constant ratio) instead of in E.

    Returns
    -------
    edges : (J + 1,) ndarray
        In keV, increasing; channel ``j`` is ``[edges[j], edges[j + 1])``.
    """
    e_min, e_max = _band(band)
    channels = integer(channels, "channels", minimum=1)
    log = boolean(log, "log")
    if log:
        return np.geomspace(e_min, e_max, channels + 1)
    return np.linspace(e_min, e_max, channels + 1)


def _band(band):
    try:
        e_min, e_max = band
    except (TypeError, ValueError):
        raise InputError(f"energy band must be (e_min, e_max) in keV, got "
                         f"{band!r}") from None
    e_min = real(e_min, "energy band minimum (keV)", low=0.0, low_open=True)
    e_max = real(e_max, "energy band maximum (keV)")
    if not e_max > e_min:
        raise InputError(f"energy band must have e_min < e_max (keV), got "
                         f"{e_min}:{e_max}")
    return e_min, e_max


def _spectral_axis(edges, log):
    centres = np.sqrt(edges[:-1] * edges[1:]) if log else 0.5 * (edges[:-1]
                                                                  + edges[1:])
    return SpectralAxis(centres, "keV", "ENER-LOG" if log else "ENER")


def _spectral_cards(axis, edges, log):
    """FITS axis 3 keywords of the channel centres (exact for both kinds).

    Linear: ``ENER``, ``CDELT3`` the width. Logarithmic: ``ENER-LOG`` (FITS WCS
    paper III), E(p) = CRVAL3 exp(CDELT3 (p - CRPIX3) / CRVAL3), which gives the
    geometric centres ``c_j = c_0 r**j`` with ``CDELT3 = c_0 ln r``.
    """
    c0 = float(axis.values[0])
    if log:
        step = c0 * math.log(edges[1] / edges[0])
    else:
        step = float(edges[1] - edges[0])
    return [("CTYPE3", axis.ctype, "energy of the channel centres"),
            ("CUNIT3", "keV", ""), ("CRPIX3", 1.0, ""), ("CRVAL3", c0, "keV"),
            ("CDELT3", step, "keV" + (" (log axis: c0 ln r)" if log else ""))]


# ------------------------------------------------------------------- binning


def _bin_index(values, edges):
    """Bin of each value in ``[edges[k], edges[k+1])``; -1 outside (NaN too)."""
    k = np.searchsorted(edges, values, side="right") - 1
    k[(k >= edges.size - 1) | np.isnan(values)] = -1
    return k


def _add_counts(flat, index):
    """Add one count per entry of ``index`` to ``flat`` (int32), memory-frugally.

    A bincount over the whole cube costs a cube-sized int64 temporary, so for a
    cube larger than the chunk the indices are sorted and the runs counted.
    """
    if index.size == 0:
        return
    if flat.size <= 4 * index.size:
        flat += np.bincount(index, minlength=flat.size).astype(flat.dtype,
                                                                copy=False)
        return
    index = np.sort(index)
    starts = np.flatnonzero(np.concatenate(([True], index[1:] != index[:-1])))
    runs = np.diff(np.append(starts, index.size))
    flat[index[starts]] += runs.astype(flat.dtype)


def _accumulate(hdu, layout, edges, chunk_rows, shape):
    """Bin every chunk into a new int32 cube; return it and (rows, in band)."""
    counts = np.zeros(shape, dtype=_COUNT_DTYPE)
    flat = counts.reshape(-1)
    e_edges, x_edges, y_edges = edges
    n_rows = n_band = 0
    for x, y, e in _chunks(hdu, layout, chunk_rows):
        n_rows += x.size
        j = _bin_index(e, e_edges)
        n_band += int(np.count_nonzero(j >= 0))
        iy = _bin_index(y, y_edges)
        ix = _bin_index(x, x_edges)
        keep = (j >= 0) & (iy >= 0) & (ix >= 0)
        _add_counts(flat, (j[keep] * shape[1] + iy[keep]) * shape[2] + ix[keep])
    return counts, n_rows, n_band


def bin_events(events, *, energy=(0.5, 7.0), channels: int = 75,
               log: bool = False, binning: int = 1, box=None, world_box=None,
               columns=None, gain: float | None = None, ext=None,
               chunk_rows: int = CHUNK_ROWS, max_voxels: int = MAX_VOXELS
               ) -> Cube:
    """Bin a photon event list into a count cube with its sky WCS and energy axis.

    Parameters
    ----------
    events : str, os.PathLike, astropy.io.fits.HDUList or BinTableHDU
        The event list: a FITS binary table, one row per photon. From a file it
        is memory-mapped and read ``chunk_rows`` rows at a time.
    energy : (2,) sequence of float, optional
        Energy band ``(e_min, e_max)`` in keV; events outside are dropped.
    channels : int, optional
        Number of energy channels ``J``.
    log : bool, optional
        Channels of equal width in log(E) (written as ``CTYPE3 = 'ENER-LOG'``).
    binning : int, optional
        Spatial binning factor: each cube pixel is ``binning x binning`` sky
        pixels.
    box : (4,) sequence of float, optional
        ``(x0, x1, y0, y1)``: the sky pixel box kept (edges; pixel ``i`` spans
        ``[i - 0.5, i + 0.5)``), cut to whole binned pixels from ``(x0, y0)``.
        By default the pixels touched by the events of the band (an extra pass).
    world_box : (4,) sequence of float, optional
        ``(lon0, lon1, lat0, lat1)`` in degrees (e.g. RA and Dec): the box of
        sky pixels covering it, through the table's WCS (no wrap at RA = 0).
    columns : (3,) sequence of str, optional
        Column names of x, y and energy; default ``("X", "Y", "ENERGY")``, or
        ``("X", "Y", "PI")`` with a ``gain``. Case-insensitive.
    gain : float, optional
        eV per PI channel: the third column is then a PI channel ``c`` of energy
        ``c * gain``. Without it the energy column's ``TUNITn`` says eV or keV
        (eV when absent, with a note).
    ext : int or str, optional
        The table's HDU; default EXTNAME ``EVENTS``, else the first binary table.
    chunk_rows : int, optional
        Rows read at a time.
    max_voxels : int, optional
        Refuse a larger cube (use ``binning`` or ``box``).

    Returns
    -------
    Cube
        ``data`` (J, H, W) int32 counts (H along the y column, W along x);
        ``spectral_axis`` the channel centres in keV (geometric centres for
        ``log``); ``celestial`` the binned sky WCS (None without TCTYPn);
        ``unit`` ``"count"``; ``header`` the FITS header of the cube, with
        ``EV_ROWS`` (rows read), ``EV_BAND`` (rows in the band), ``EV_KEPT``
        (rows binned), the energy edges (``E_MIN``, ``E_MAX``, ``ELOG``) and
        provenance; ``notes`` what was assumed.

    Raises
    ------
    InputError
        Unreadable file, no table or column, an energy unit other than eV/keV,
        an empty box, a cube over ``max_voxels``.
    """
    channels = integer(channels, "channels", minimum=1)
    binning = integer(binning, "binning", minimum=1)
    chunk_rows = integer(chunk_rows, "chunk_rows", minimum=1)
    max_voxels = integer(max_voxels, "max_voxels", minimum=1)
    kev_edges = energy_edges(energy, channels, log)
    hdul, hdu, source = _open(events, ext)
    try:
        return _bin_table(hdu, source, kev_edges, log, binning, box, world_box,
                          columns, gain, chunk_rows, max_voxels)
    finally:
        if hdul is not None:
            hdul.close()


def _bin_table(hdu, source, kev_edges, log, binning, box, world_box, columns,
               gain, chunk_rows, max_voxels):
    notes = []
    layout = _layout(hdu, columns, gain, source, notes)
    wcs = _sky_wcs(hdu.header, layout, notes)
    sky_box = _pixel_box(box, world_box, wcs, source)
    cover = sky_box is None
    if cover:
        sky_box = _data_box(hdu, layout, kev_edges, chunk_rows, source)
    x_edges, y_edges = _grid(sky_box, binning, notes, cover)
    shape = (kev_edges.size - 1, y_edges.size - 1, x_edges.size - 1)
    if math.prod(shape) > max_voxels:
        raise InputError(f"{source}: the cube would be {shape} = "
                         f"{math.prod(shape):,} voxels, more than max_voxels = "
                         f"{max_voxels:,}; bin more (binning) or give a box")
    # compare in the column's own unit: the edges are rounded once, not each event
    edges = (kev_edges * layout.per_kev, x_edges, y_edges)
    counts, n_rows, n_band = _accumulate(hdu, layout, edges, chunk_rows, shape)
    celestial = _binned_wcs(wcs, x_edges[0], y_edges[0], binning)
    axis = _spectral_axis(kev_edges, log)
    header = _cube_header(hdu.header, celestial, axis, kev_edges, log, notes)
    header["EV_ROWS"] = (n_rows, "rows of the event list read")
    header["EV_BAND"] = (n_band, "rows in the energy band")
    header["EV_KEPT"] = (int(counts.sum(dtype=np.int64)), "rows binned")
    header["BINNING"] = (binning, "sky pixels per cube pixel, per axis")
    header["SKYX0"] = (float(x_edges[0]), "sky x of the cube's left pixel edge")
    header["SKYY0"] = (float(y_edges[0]), "sky y of the cube's bottom pixel edge")
    header.add_history(f"sgmca-fast {__version__} bin_events {source}: columns "
                       f"{layout.x}, {layout.y}, {layout.energy}")
    return Cube(counts, spectral_axis=axis, celestial=celestial, unit="count",
                header=header, source=source, notes=notes)


def _cube_header(table_header, celestial, axis, kev_edges, log, notes):
    from astropy.io import fits

    header = fits.Header()
    if celestial is not None:
        header.update(celestial.to_header())
    header["WCSAXES"] = 3
    for key, value, comment in _spectral_cards(axis, kev_edges, log):
        header[key] = (value, comment)
    header["BUNIT"] = "count"
    header["E_MIN"] = (float(kev_edges[0]), "keV, lower edge of the band")
    header["E_MAX"] = (float(kev_edges[-1]), "keV, upper edge of the band")
    header["ELOG"] = (bool(log), "channels uniform in log(E)")
    for key in _KEPT_HEADER_KEYS:
        if key in table_header:
            header[key] = table_header[key]
    for note in notes:
        header.add_comment(note)
    return header


# -------------------------------------------------------------------- writing


def _ebounds(fits, kev_edges):
    """OGIP-style EBOUNDS table: the exact edges of every channel, in keV."""
    n = kev_edges.size - 1
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="CHANNEL", format="J", array=np.arange(n)),
        fits.Column(name="E_MIN", format="D", unit="keV", array=kev_edges[:-1]),
        fits.Column(name="E_MAX", format="D", unit="keV", array=kev_edges[1:]),
    ])
    table.header["EXTNAME"] = "EBOUNDS"
    return table


def write_counts_cube(path, cube: Cube, *, force: bool = False) -> Path:
    """Write a count cube made by :func:`bin_events` as FITS.

    The primary HDU is the cube (int32, FITS axes x, y, energy) with the sky WCS
    on axes 1-2 and the channel centres on axis 3 (``ENER``, or ``ENER-LOG`` for
    logarithmic channels, read back by :func:`sgmca_fast.cube.read_fits_cube`);
    an ``EBOUNDS`` table holds the exact channel edges (``E_MIN``, ``E_MAX`` in
    keV). Written under a temporary name and renamed.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.fits`` file.
    cube : Cube
        With the ``header`` :func:`bin_events` made (``E_MIN``, ``E_MAX``,
        ``ELOG`` give the edges).
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    fits = _need_astropy(path)
    if not isinstance(cube, Cube) or cube.header is None or "ELOG" not in (
            cube.header):
        raise InputError("write_counts_cube needs a Cube made by bin_events")
    data = check_counts(cube.data, "counts")
    header = cube.header
    kev_edges = energy_edges((header["E_MIN"], header["E_MAX"]), cube.n_channels,
                             bool(header["ELOG"]))
    hdus = fits.HDUList([fits.PrimaryHDU(np.asarray(data, dtype=_COUNT_DTYPE),
                                         header), _ebounds(fits, kev_edges)])

    def write(tmp):
        hdus.writeto(tmp, overwrite=True, output_verify="exception")

    return atomic_write(path, write, force)
