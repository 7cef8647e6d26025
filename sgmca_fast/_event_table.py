"""Reading photon event tables: the HDU, the columns and their units, chunks.

Private to :mod:`sgmca_fast.events`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._cube_files import _need_astropy
from ._io import MissingFileError
from ._validation import InputError, InputTypeError, real

_UNITS_PER_KEV = {"ev": 1e3, "kev": 1.0}


@dataclass(frozen=True)
class _Layout:
    """Where the X, Y and energy values are in the table and what they mean."""

    x: str
    y: str
    energy: str
    x_index: int  # 1-based FITS column numbers, for the TCxxxn keywords
    y_index: int
    per_kev: float  # column units per keV: 1000 for eV, 1000 / gain for PI
    n_rows: int


def _pick_table(hdul, ext, source):
    if ext is not None:
        try:
            hdu = hdul[ext]
        except (KeyError, IndexError):
            raise InputError(f"{source}: no HDU {ext!r}; found "
                             f"{[h.name for h in hdul]}") from None
        if not _is_table(hdu):
            raise InputError(f"{source}: HDU {ext!r} is not a binary table")
        return hdu
    tables = [h for h in hdul if _is_table(h)]
    named = [h for h in tables if h.name.upper() == "EVENTS"]
    if not (named or tables):
        raise InputError(f"{source}: no binary table (event list) in the file; "
                         f"found {[h.name for h in hdul]}")
    return (named or tables)[0]


def _is_table(hdu):
    return type(hdu).__name__ == "BinTableHDU"


def _column(names, wanted, what, source):
    upper = {n.upper(): n for n in names}
    if not isinstance(wanted, str):
        raise InputTypeError(f"{what} column name must be a string, got {wanted!r}")
    if wanted.upper() not in upper:
        raise InputError(f"{source}: no {what} column {wanted!r}; the table has "
                         f"{list(names)}")
    real_name = upper[wanted.upper()]
    return real_name, list(names).index(real_name) + 1


def _layout(hdu, columns, gain, source, notes):
    names = list(hdu.columns.names)
    if columns is None:
        columns = ("X", "Y", "ENERGY" if gain is None else "PI")
    if isinstance(columns, str) or len(columns) != 3:
        raise InputError(f"columns must be three names (x, y, energy or PI), got "
                         f"{columns!r}")
    x, xi = _column(names, columns[0], "x", source)
    y, yi = _column(names, columns[1], "y", source)
    try:
        energy, ei = _column(names, columns[2], "PI" if gain else "energy", source)
    except InputError as exc:
        if gain is None and "PI" in (n.upper() for n in names):
            raise InputError(f"{exc}; for PI channels give the gain (eV per "
                             "channel, e.g. 14.6 for Chandra ACIS)") from None
        raise
    if gain is not None:
        per_kev = 1e3 / real(gain, "gain (eV per channel)", low=0.0, low_open=True)
    else:
        unit = str(hdu.header.get(f"TUNIT{ei}", "")).strip()
        if not unit:
            unit = "eV"
            notes.append(f"column {energy} has no unit (TUNIT{ei}): read as eV")
        if unit.lower() not in _UNITS_PER_KEV:
            raise InputError(f"{source}: column {energy} is in {unit!r}; energies "
                             "must be in eV or keV (or give a PI column and a gain)")
        per_kev = _UNITS_PER_KEV[unit.lower()]
    return _Layout(x, y, energy, xi, yi, per_kev, int(hdu.header.get("NAXIS2", 0)))


def _chunks(hdu, layout, chunk_rows):
    """Yield (x, y, energy in column units) float64 arrays, chunk by chunk."""
    data = hdu.data
    for i0 in range(0, layout.n_rows, chunk_rows):
        rows = data[i0:i0 + chunk_rows]  # a view: only these rows are read
        yield tuple(np.asarray(rows.field(name), dtype=np.float64)
                    for name in (layout.x, layout.y, layout.energy))



def _open(events, ext):
    """Return (HDUList to close or None, the table HDU, a name for messages)."""
    fits = _need_astropy("events")
    if isinstance(events, fits.BinTableHDU):
        return None, events, "events table"
    if isinstance(events, fits.HDUList):
        return None, _pick_table(events, ext, "events"), "events"
    if not isinstance(events, (str, os.PathLike)):
        raise InputTypeError("events must be a FITS file name, an HDUList or a "
                             f"BinTableHDU, got {type(events).__name__}")
    path = Path(events)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        hdul = fits.open(path, memmap=True)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a readable FITS file ({exc})") from None
    try:
        return hdul, _pick_table(hdul, ext, path), str(path)
    except (OSError, ValueError, TypeError) as exc:
        hdul.close()
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable FITS file ({exc})") from None
    except BaseException:
        hdul.close()
        raise
