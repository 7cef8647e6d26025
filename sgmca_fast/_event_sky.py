"""The sky side of binning events: the table's WCS, the binned WCS, the box.

Private to :mod:`sgmca_fast.events`. Sky pixel coordinates are those of the
event table's x and y columns (FITS convention: pixel ``i`` spans
``[i - 0.5, i + 0.5)``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ._event_table import _chunks
from ._validation import InputError, real

_WCS_HEADER_KEYS = ("RADESYS", "EQUINOX", "MJD-OBS", "DATE-OBS")


def _sky_wcs(header, layout, notes):
    """Make the WCS of the sky pixel coordinates (X, Y) from the columns' keywords."""
    from astropy.wcs import WCS, FITSFixedWarning

    cards = {}
    for axis, n in ((1, layout.x_index), (2, layout.y_index)):
        for short, long in (("TCTYP", "CTYPE"), ("TCRVL", "CRVAL"),
                            ("TCDLT", "CDELT"), ("TCRPX", "CRPIX"),
                            ("TCUNI", "CUNIT")):
            if f"{short}{n}" in header:
                cards[f"{long}{axis}"] = header[f"{short}{n}"]
    if not any(k.startswith("CTYPE") for k in cards):
        notes.append("no sky WCS (TCTYPn keywords of the x and y columns): the "
                     "cube has pixel coordinates only")
        return None
    for key in _WCS_HEADER_KEYS:
        if key in header:
            cards[key] = header[key]
    if "RADECSYS" in header and "RADESYS" not in cards:
        cards["RADESYS"] = header["RADECSYS"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)
            wcs = WCS(cards, naxis=2)
            wcs.wcs.set()
    except Exception as exc:  # astropy/wcslib raise several types
        notes.append("sky WCS ignored: " + " ".join(str(exc).split()))
        return None
    return wcs


def _binned_wcs(wcs, x0, y0, factor):
    """Make the WCS of the binned image whose pixel edges start at sky (x0, y0).

    Binned FITS pixel p (1-based) has its centre at sky coordinate
    ``x0 + factor (p - 1/2)``; keeping the world coordinates of every sky
    position gives ``CRPIX' = (CRPIX - x0) / factor + 1/2`` and
    ``CDELT' = factor CDELT`` (or the CD/PC matrix scaled).
    """
    if wcs is None:
        return None
    out = wcs.deepcopy()
    w = out.wcs
    w.crpix = [(w.crpix[0] - x0) / factor + 0.5, (w.crpix[1] - y0) / factor + 0.5]
    if w.has_cd():
        w.cd = w.cd * factor
    else:
        w.cdelt = np.asarray(w.cdelt) * factor
    w.set()
    return out


# ----------------------------------------------------------------------- box


def _edge_below(v):
    """Return the pixel edge (half-integer) at or below sky coordinate v."""
    return math.floor(v + 0.5) - 0.5


def _pixel_box(box, world_box, wcs, source):
    """Return the box (x0, x1, y0, y1) in sky pixels, or None for the data range."""
    if box is not None and world_box is not None:
        raise InputError("give box or world_box, not both")
    if world_box is not None:
        if wcs is None:
            raise InputError(f"{source}: world_box needs a sky WCS, and the table "
                             "has none (TCTYPn keywords)")
        lon0, lon1, lat0, lat1 = _four(world_box, "world_box")
        lon = np.array([lon0, lon1, lon0, lon1, 0.5 * (lon0 + lon1)])
        lat = np.array([lat0, lat0, lat1, lat1, 0.5 * (lat0 + lat1)])
        px, py = wcs.world_to_pixel_values(lon, lat)
        px, py = np.asarray(px) + 1.0, np.asarray(py) + 1.0  # 0-based -> sky
        if not (np.all(np.isfinite(px)) and np.all(np.isfinite(py))):
            raise InputError(f"world_box {world_box!r} is not on the sky of the "
                             "table's projection")
        return (_edge_below(px.min()), _edge_below(px.max()) + 1.0,
                _edge_below(py.min()), _edge_below(py.max()) + 1.0)
    if box is None:
        return None
    x0, x1, y0, y1 = _four(box, "box")
    if not (x1 > x0 and y1 > y0):
        raise InputError(f"box must have x0 < x1 and y0 < y1, got {box!r}")
    return x0, x1, y0, y1


def _four(values, name):
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != 4:
        raise InputError(f"{name} must be four numbers (x0, x1, y0, y1), got "
                         f"{values!r}")
    return tuple(real(v, name) for v in values)


def _data_box(hdu, layout, kev_edges, chunk_rows, source):
    """Box of the events in the band: edges of the outermost pixels they touch."""
    low, high = kev_edges[0] * layout.per_kev, kev_edges[-1] * layout.per_kev
    lo = np.array([np.inf, np.inf])
    hi = -lo
    for x, y, e in _chunks(hdu, layout, chunk_rows):
        keep = (e >= low) & (e < high) & np.isfinite(x) & np.isfinite(y)
        if keep.any():
            lo = np.minimum(lo, [x[keep].min(), y[keep].min()])
            hi = np.maximum(hi, [x[keep].max(), y[keep].max()])
    if not np.all(np.isfinite(lo)):
        raise InputError(f"{source}: no event in the energy band "
                         f"{kev_edges[0]:g}-{kev_edges[-1]:g} keV")
    return (_edge_below(lo[0]), _edge_below(hi[0]) + 1.0,
            _edge_below(lo[1]), _edge_below(hi[1]) + 1.0)


def _grid(box, factor, notes, cover=False):
    """Spatial edges: whole binned pixels from (x0, y0), inside the box.

    With ``cover`` (the box of the data), the last pixels reach beyond the box
    instead, so that no event is cut.
    """
    x0, x1, y0, y1 = box
    whole = math.ceil if cover else math.floor
    width = whole((x1 - x0) / factor - (1e-9 if cover else -1e-9))
    height = whole((y1 - y0) / factor - (1e-9 if cover else -1e-9))
    if width < 1 or height < 1:
        raise InputError(f"the box {x0:g}:{x1:g},{y0:g}:{y1:g} is smaller than one "
                         f"binned pixel ({factor} sky pixels)")
    if not cover and (x0 + width * factor, y0 + height * factor) != (x1, y1):
        notes.append(f"box cut to whole binned pixels: x {x0:g}:"
                     f"{x0 + width * factor:g}, y {y0:g}:{y0 + height * factor:g}")
    return (x0 + factor * np.arange(width + 1, dtype=np.float64),
            y0 + factor * np.arange(height + 1, dtype=np.float64))
