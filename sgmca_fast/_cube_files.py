"""Cubes from FITS files; source maps to FITS and spectra to CSV, with coordinates.

Public through :mod:`sgmca_fast.cube`. Needs astropy for FITS (imported inside the
functions, so the package imports without it).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._cube import _QUANTITIES, Cube, SpectralAxis, _quiet_wcs
from ._io import atomic_write
from ._validation import InputError
from ._version import __version__

__all__ = ["read_fits_cube", "read_spectra_csv", "write_fits_sources",
           "write_spectra_csv"]

_VARIANCE_NAMES = ("VARIANCE", "VAR", "STAT")  # in order of preference
_ERROR_NAMES = ("ERR", "ERROR")  # standard deviations: squared into variances
_DQ_NAMES = ("DQ",)
_CELESTIAL_PREFIXES = ("RA--", "DEC-", "GLON", "GLAT", "ELON", "ELAT", "SLON",
                       "SLAT", "HPLN", "HPLT")


def _need_astropy(what):
    try:
        from astropy.io import fits
    except ImportError:
        raise InputError(
            f"{what}: FITS needs astropy: pip install 'sgmca-fast[fits]'"
        ) from None
    return fits


# ------------------------------------------------------------------ reading FITS


def _cube_axes(hdu):
    """Count the FITS axes of an image HDU once trailing axes of length 1 go."""
    header = hdu.header
    shape = [int(header.get(f"NAXIS{i}", 0))
             for i in range(1, int(header.get("NAXIS", 0)) + 1)]
    while len(shape) > 3 and shape[-1] == 1:
        shape.pop()
    return len(shape)


def _squeeze(data, ndim):
    """Drop leading numpy axes of length 1 (e.g. a STOKES axis) without a copy."""
    while data.ndim > ndim and data.shape[0] == 1:
        data = data[0]
    return data


def _hdu_list_text(hdul):
    def what(h):
        if not h.is_image:
            return "table"
        return str(h.shape) if h.shape else "no data"

    return ", ".join(f"{i} {h.name or '(no name)'} {what(h)}"
                     for i, h in enumerate(hdul))


def _pick_hdu(hdul, ext, path):
    if ext is not None:
        index = _index_of(hdul, ext, "", path)
        if not hdul[index].is_image or _cube_axes(hdul[index]) != 3:
            raise InputError(f"{path}: HDU {ext!r} is not a 3-D image, its shape "
                             f"is {hdul[index].shape}")
        return index
    for index, hdu in enumerate(hdul):
        if hdu.is_image and _cube_axes(hdu) == 3:
            return index
    raise InputError(f"{path}: no 3-D image HDU (a cube with channels on FITS "
                     f"axis 3); found {_hdu_list_text(hdul)}")


def _find_extension(hdul, skip, names):
    """Return the first image HDU (not ``skip``) named one of ``names``, or None.

    ``names`` are tried in order, so a VARIANCE extension wins over an ERR one.
    """
    for name in names:
        for index, hdu in enumerate(hdul):
            if index != skip and hdu.is_image and hdu.name.upper() == name:
                return index
    return None


def _index_of(hdul, ext, what, path):
    try:
        return hdul.index_of(ext)
    except (KeyError, IndexError):
        raise InputError(f"{path}: no {what}HDU {ext!r}; found "
                         f"{_hdu_list_text(hdul)}") from None


def _read_variance(hdul, data_index, variance_ext, path):
    """Return the variance and where it came from, or (None, None)."""
    if variance_ext is None or variance_ext is False:
        return None, None
    if isinstance(variance_ext, str) and variance_ext.lower() == "auto":
        index = _find_extension(hdul, data_index, _VARIANCE_NAMES + _ERROR_NAMES)
        if index is None:
            return None, None
    else:
        index = _index_of(hdul, variance_ext, "variance ", path)
    hdu = hdul[index]
    name = hdu.name.upper()
    if hdu.data is None or not hdu.is_image:
        raise InputError(f"{path}: HDU {index} ({name}) holds no image")
    values = _squeeze(hdu.data, 3)
    if name in _ERROR_NAMES:
        return np.square(values), f"{name} extension (HDU {index}), squared"
    return values, f"{name} extension (HDU {index})"


def _spatial_wcs(header, notes):
    """Return the WCS of FITS axes 1 and 2, or None when the header has none."""
    if not any(f"{k}{i}" in header for k in ("CTYPE", "CRVAL") for i in (1, 2)):
        return None
    try:
        wcs = _quiet_wcs(header, [1, 2])
    except Exception as exc:  # astropy/wcslib raise several types
        notes.append("celestial WCS ignored: " + " ".join(str(exc).split()))
        return None
    return wcs


def _check_axis_order(header, path):
    ctype3 = str(header.get("CTYPE3", "")).upper()
    if ctype3.startswith(_CELESTIAL_PREFIXES):
        raise InputError(f"{path}: FITS axis 3 is {ctype3.strip()!r}, a sky axis; "
                         "channels must be FITS axis 3 (numpy axis 0)")


def read_fits_cube(path, ext=None, variance_ext="auto", dq_ext="auto",
                   check: bool = True) -> Cube:
    """Read a spectral cube, its variance, mask and coordinates from a FITS file.

    The data is memory-mapped when the file allows it (uncompressed, no
    ``BSCALE``/``BZERO`` scaling): it is read from disk only when used.

    Parameters
    ----------
    path : str or os.PathLike
        FITS file.
    ext : int or str, optional
        The HDU of the cube; by default the first image HDU with 3 axes (trailing
        FITS axes of length 1, such as STOKES, are dropped). Channels are FITS
        axis 3 (numpy axis 0).
    variance_ext : "auto", int, str or None, optional
        "auto" takes the first image extension named VARIANCE, VAR or STAT, else
        ERR or ERROR (standard deviations, squared); None reads no variance. Its
        shape is the data's or one value per channel.
    dq_ext : "auto", int, str or None, optional
        "auto" takes an extension named DQ as the mask: any nonzero flag marks the
        voxel missing. None reads no mask.
    check : bool, optional
        Check the values (inf data, variance <= 0) in one streamed pass and set
        :attr:`Cube.missing_info`.

    Returns
    -------
    Cube
        With ``source``, ``variance_source``, ``mask_source`` and ``notes`` set.

    Raises
    ------
    InputError
        The file is not a readable FITS file, holds no 3-D image, its variance or
        mask has another shape, its values are invalid, or astropy is missing.
    FileNotFoundError
        No such file.
    """
    path = Path(path)
    fits = _need_astropy(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        hdul = fits.open(path, memmap=True, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a readable FITS file ({exc})") from None
    # Arrays taken from a memory-mapped file stay valid after close().
    with hdul:
        index = _pick_hdu(hdul, ext, path)
        hdu = hdul[index]
        header = hdu.header.copy()
        _check_axis_order(header, path)
        data = _squeeze(hdu.data, 3)
        variance, variance_source = _read_variance(hdul, index, variance_ext, path)
        mask = mask_source = None
        if dq_ext is not None:
            where = (_find_extension(hdul, index, _DQ_NAMES) if dq_ext == "auto"
                     else _index_of(hdul, dq_ext, "mask ", path))
            if where is not None and hdul[where].data is not None:
                mask = _squeeze(hdul[where].data, 3)
                mask_source = f"{hdul[where].name} extension (HDU {where}), nonzero"
    notes = []
    try:
        axis = SpectralAxis.from_header(header, 3)
    except InputError as exc:
        axis = None
        notes.append(f"spectral axis ignored, channels are numbered: {exc}")
    cube = Cube(data, variance, mask, axis, _spatial_wcs(header, notes),
                unit=str(header.get("BUNIT", "")).strip(), header=header,
                source=str(path), variance_source=variance_source,
                mask_source=mask_source, notes=notes)
    if check:
        cube.missing_info = cube.check()
    return cube


# ---------------------------------------------------------------------- writing


def _history_lines(parameters, history):
    lines = [f"sgmca-fast {__version__}"]
    lines += [str(line) for line in history]
    for name, value in (parameters or {}).items():
        lines.append(f"{name} = {value!r}")
    return lines


def _maps_header(fits, cube, shape, names):
    """Make the maps header: the cube's image WCS and a source-number axis."""
    header = fits.Header()
    if cube is not None and cube.celestial is not None:
        if shape != cube.spatial_shape:
            raise InputError(f"source maps of shape {shape} do not match the "
                             f"cube's image {cube.spatial_shape}")
        wcs = cube.celestial.sub([1, 2, 0])  # 0: a new linear axis
        wcs.wcs.ctype[2] = "SOURCE"
        wcs.wcs.crpix[2] = wcs.wcs.crval[2] = 1.0  # source 1 at pixel 1, step 1
        header.update(wcs.to_header())
    if cube is not None:
        if cube.unit:
            header["BUNIT"] = cube.unit
        for key in ("OBJECT", "TELESCOP", "INSTRUME", "DATE-OBS"):
            if cube.header is not None and key in cube.header:
                header[key] = cube.header[key]
    for i, name in enumerate(names or (), start=1):
        header[f"SRCNAME{i}" if i < 10 else f"HIERARCH SRCNAME{i}"] = str(name)
    return header


def _spectra_table(fits, A, axis, names):
    columns = []
    if axis is not None:
        if len(axis) != A.shape[0]:
            raise InputError(f"the spectral axis has {len(axis)} values for "
                             f"{A.shape[0]} channels of the spectra")
        columns.append(fits.Column(name=axis.quantity.upper().replace(" ", "_"),
                                   format="D", unit=axis.unit or None,
                                   array=axis.values))
    else:
        columns.append(fits.Column(name="CHANNEL", format="J",
                                   array=np.arange(A.shape[0])))
    for i, name in enumerate(_source_names(names, A.shape[1])):
        columns.append(fits.Column(name=name, format="D", array=A[:, i]))
    table = fits.BinTableHDU.from_columns(columns)
    table.header["EXTNAME"] = "SPECTRA"
    return table


def _source_names(names, n):
    if names is None:
        return [f"source{i + 1}" for i in range(n)]
    names = [str(s) for s in names]
    if len(names) != n or len(set(names)) != n:
        raise InputError(f"need {n} distinct source names, got {names}")
    return names


def write_fits_sources(path, S, cube: Cube | None = None, *, spectra=None,
                       names: Sequence[str] | None = None,
                       parameters: Mapping | None = None,
                       history: Sequence[str] = (),
                       keywords: Mapping | None = None,
                       force: bool = False) -> Path:
    """Write source maps (and their spectra) as FITS, keeping the cube's WCS.

    The primary HDU holds the maps ``(I, H, W)``: FITS axes 1 and 2 carry the
    cube's celestial WCS, axis 3 numbers the sources from 1 (``CTYPE3 =
    'SOURCE'``). Its header records ``BUNIT``, the source names (``SRCNAMEi``),
    HISTORY cards with the package version, ``history`` and one line per
    parameter, and ``keywords``. With ``spectra``, a BINTABLE extension
    ``SPECTRA`` has the spectral coordinate (named after the axis, its unit as
    ``TUNIT1``; ``CHANNEL`` without an axis) and one column per source. The file
    is written under a temporary name and renamed.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.fits`` file.
    S : (I, H, W) or (I, P) array_like
        Source maps, in the data's unit.
    cube : Cube, optional
        The input cube (WCS, unit, spectral axis, a few identity keywords).
    spectra : (J, I) array_like, optional
        Mixing matrix, one column per source.
    names : sequence of str, optional
        Source names (columns of the table).
    parameters : mapping, optional
        Run parameters, written as HISTORY ``name = value`` lines.
    history : sequence of str, optional
        More HISTORY lines.
    keywords : mapping of str to scalar, optional
        More header keywords.
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    fits = _need_astropy(path)
    S = np.asarray(S)
    if S.dtype.kind not in "iuf" or S.ndim not in (2, 3):
        raise InputError(f"source maps must be a real (I, H, W) or (I, P) array, "
                         f"got shape {S.shape} and dtype {S.dtype}")
    if S.dtype != np.float32:
        S = S.astype(np.float64, copy=False)
    if names is not None:
        names = _source_names(names, S.shape[0])
    header = _maps_header(fits, cube, S.shape[1:], names)
    for line in _history_lines(parameters, history):
        header.add_history(line)
    try:
        for key, value in (keywords or {}).items():
            long = len(key) > 8 and not key.upper().startswith("HIERARCH ")
            header[f"HIERARCH {key}" if long else key] = value
    except (ValueError, KeyError) as exc:
        raise InputError(f"keyword not writable to FITS: {exc}") from None
    hdus = [fits.PrimaryHDU(S, header)]
    if spectra is not None:
        spectra = np.asarray(spectra, dtype=np.float64)
        if spectra.ndim != 2 or spectra.shape[1] != S.shape[0]:
            raise InputError(f"spectra must be (J, {S.shape[0]}), one column per "
                             f"source map, got shape {spectra.shape}")
        axis = cube.spectral_axis if cube is not None else None
        hdus.append(_spectra_table(fits, spectra, axis, names))

    def write(tmp):
        fits.HDUList(hdus).writeto(tmp, overwrite=True, output_verify="exception")

    return atomic_write(path, write, force)


def write_spectra_csv(path, A, spectral_axis: SpectralAxis | None = None,
                      names: Sequence[str] | None = None,
                      force: bool = False) -> Path:
    """Write spectra as CSV: the spectral coordinate, then one column per source.

    The header line names the coordinate with its unit (``energy_keV``,
    ``wavelength_Angstrom``; ``channel`` without an axis) and the sources. Written
    under a temporary name and renamed.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.csv`` file.
    A : (J, I) array_like
        Spectra, one column per source (e.g. the mixing matrix).
    spectral_axis : SpectralAxis, optional
    names : sequence of str, optional
        Source names; ``source1``, ``source2``, ... by default.
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    pathlib.Path
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2:
        raise InputError(f"spectra must be a matrix (J, I), got shape {A.shape}")
    J = A.shape[0]
    if spectral_axis is None:
        first, coordinate = "channel", [str(j) for j in range(J)]
    else:
        if len(spectral_axis) != J:
            raise InputError(f"the spectral axis has {len(spectral_axis)} values "
                             f"for {J} channels")
        first = spectral_axis.column
        coordinate = [repr(float(v)) for v in spectral_axis.values]
    header = [first] + _source_names(names, A.shape[1])

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for c, row in zip(coordinate, A, strict=True):
                writer.writerow([c] + [repr(float(v)) for v in row])

    return atomic_write(path, write, force)


def _axis_of_column(name: str, values):
    """Return the SpectralAxis a coordinate column name describes, or None."""
    if name == "channel":
        return None
    for ctype, quantity in _QUANTITIES.items():
        stem = quantity.replace(" ", "_")
        if name == stem or name.startswith(stem + "_"):
            return SpectralAxis(values, name[len(stem) + 1:], ctype)
    raise KeyError(name)


def read_spectra_csv(path):
    """Read a CSV written by :func:`write_spectra_csv` (or any numeric table).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    A : (J, I) ndarray
        Spectra, one column per source.
    spectral_axis : SpectralAxis or None
        From the first column when its name is a coordinate (``energy_keV``,
        ``channel``, ...); otherwise every column is a spectrum.
    names : list of str or None
        The source columns' names, None without a header line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable text file ({exc})") from None
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip()]
    header = None
    if rows:
        try:
            float(rows[0][0])
        except ValueError:
            header = [c.strip() for c in rows.pop(0)]
    try:
        table = np.array([[float(c) for c in r] for r in rows], dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{path}: not a numeric table ({exc})") from None
    if table.ndim != 2 or table.size == 0:
        raise InputError(f"{path}: holds no table of numbers (rows of equal length)")
    if header is None:
        return table, None, None
    if len(header) != table.shape[1]:
        raise InputError(f"{path}: {len(header)} column names for "
                         f"{table.shape[1]} columns")
    try:
        axis = _axis_of_column(header[0], table[:, 0])
    except KeyError:
        return table, None, header
    return table[:, 1:], axis, header[1:]
