"""What ``sgmca-fast separate`` reads: the cube, its mask and variance, fixed spectra.

A FITS cube is read with :func:`sgmca_fast.cube.read_fits_cube` (variance or error
extension, DQ mask, spectral axis, celestial WCS, memory-mapped); an ``.npy`` or
``.npz`` cube (or a FITS matrix) as a plain array, NaN marking missing voxels.
``--mask`` and ``--variance`` files add to that, and ``--fixed`` spectra are read
with :func:`sgmca_fast.cube.read_spectra_csv`. Every problem is an
:class:`~sgmca_fast._validation.InputError` naming the file or option.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import _io
from ._validation import InputError

__all__ = ["FixedSpectrum", "fill_unknown_variance", "read_input_cube",
           "read_fixed"]

_SPECTRAL_RTOL = 1e-6  # relative gap tolerated between two files' spectral axes


@dataclass(frozen=True, eq=False)
class FixedSpectrum:
    """A spectrum held fixed in the separation (``--fixed NAME=FILE``).

    Attributes
    ----------
    name : str
        Label of the source in the outputs.
    path : pathlib.Path
        The CSV file it came from.
    spectrum : (J,) ndarray
        The spectrum, one value per channel of the cube.
    """

    name: str
    path: Path
    spectrum: np.ndarray


def _as_channels_first(array, channel_axis, ndim):
    """Move the channel axis of a side file first when it has the cube's layout."""
    if array.ndim == ndim and channel_axis != 0:
        return np.moveaxis(array, channel_axis, 0)
    return array


def _variance_option(variance, fits: bool):
    """Split ``--variance`` into (extension for read_fits_cube, file to read)."""
    if variance is None:
        return "auto", None
    text = str(variance)
    if text.lower() == "none":
        return None, None
    if Path(text).is_file():
        return None, Path(text)
    if fits and not any(text.lower().endswith(s) for s in
                        (".npy", ".npz", ".csv", *_io.FITS_SUFFIXES)):
        return text, None  # an extension name (or number) of the FITS cube
    raise _io.MissingFileError(
        f"--variance {text}: no such file" + (" nor extension of the cube"
                                              if fits else ""))


def _read_fits(path, key, variance_ext):
    """Read a FITS cube; a FITS matrix (J, P) falls back to the plain reader."""
    from .cube import Cube, read_fits_cube

    try:
        return read_fits_cube(path, ext=key, variance_ext=variance_ext, check=False)
    except InputError as exc:
        try:
            X = _io.read_cube(path, key)
        except InputError:
            raise exc from None
        if X.ndim != 2:
            raise
        return Cube(X, source=str(path))


def read_input_cube(path, key=None, channel_axis: int = 0, mask=None,
                    variance=None, mmap: bool = False):
    """Read the cube of ``separate`` with what comes beside it; count the missing.

    Parameters
    ----------
    path : str or os.PathLike
        ``.npy``, ``.npz`` or FITS cube, (J, H, W) or (J, P) once the channels
        are first.
    key : str, optional
        Array of an ``.npz`` or HDU of a FITS cube.
    channel_axis : int, optional
        Axis of the channels in the file; a FITS cube read with its coordinates
        has them on FITS axis 3, so another value reads it as a plain array.
    mask : str or os.PathLike, optional
        File of a boolean or integer array of the cube's shape (nonzero:
        missing), added to the cube's own (NaN voxels, a DQ extension).
    variance : str or os.PathLike, optional
        File of the noise variance, (J,) or the cube's shape; for a FITS cube
        also an extension name; ``"none"`` reads none. Default: a FITS cube's
        VARIANCE, VAR, STAT, ERR or ERROR extension, when it has one.
    mmap : bool, optional
        Memory-map a .npy cube instead of reading it (a FITS cube with its
        coordinates is memory-mapped anyway).

    Returns
    -------
    sgmca_fast.cube.Cube
        With ``missing_info`` set, ``variance_source`` and ``mask_source``
        saying where they came from, ``notes`` what the reader assumed.
    """
    from .cube import Cube

    path = Path(path)
    if not path.exists():
        raise _io.MissingFileError(f"{path}: no such file")
    fits = _io.is_fits(path)
    variance_ext, variance_file = _variance_option(variance, fits)
    notes = []
    if fits and channel_axis == 0:
        _io.astropy_fits(path)
        cube = _read_fits(path, key, variance_ext)
    else:
        if fits:
            notes.append("--channel-axis given: the FITS coordinates are not used")
        if variance_ext not in ("auto", None):
            raise InputError(f"--variance {variance}: no such file")
        cube = Cube(_io.read_cube(path, key, channel_axis, mmap=mmap),
                    source=str(path))
    changes = {"notes": [*cube.notes, *notes]}
    if mask is not None:
        m = _as_channels_first(_io.read_mask(mask), channel_axis, cube.data.ndim)
        if m.shape != cube.data.shape:
            raise InputError(f"{mask}: the mask has shape {m.shape}, the cube "
                             f"{cube.data.shape}")
        own = cube.mask
        changes["mask"] = m if own is None else (np.asarray(own) != 0) | m
        changes["mask_source"] = f"{mask} (--mask)" + (
            f" and {cube.mask_source}" if own is not None else "")
    if variance_file is not None:
        v = _io.read_array(variance_file, allow_nan=True)
        changes["variance"] = _as_channels_first(v, channel_axis, cube.data.ndim)
        changes["variance_source"] = f"{variance_file} (--variance)"
    cube = replace(cube, **changes)
    cube.missing_info = cube.check()
    return cube


def fill_unknown_variance(variance):
    """Give a finite value to the NaN or +inf variance of missing voxels.

    Those voxels are passed to the solver as missing (``mask``), so their value
    only has to be harmless: the median of the finite variance. The array is
    copied only when it holds such values.

    Parameters
    ----------
    variance : None, (J,) or (J, H, W) ndarray

    Returns
    -------
    variance : ndarray or None
    unknown : bool
        Whether some values were replaced.
    """
    if variance is None:
        return None, False
    v = np.asarray(variance)
    finite = np.isfinite(v)
    if finite.all():
        return v, False
    if not finite.any():
        raise InputError("the variance is NaN or infinite everywhere")
    return np.where(finite, v, np.median(v[finite])), True


def _parse_fixed(spec: str):
    name, sep, where = str(spec).partition("=")
    if not sep:
        name, where = Path(spec).stem, spec
    name, where = name.strip(), where.strip()
    if not name:
        raise InputError(f"--fixed {spec!r}: empty NAME before '='")
    if not where:
        raise InputError(f"--fixed {spec!r}: no spectrum file after '='")
    return name, Path(where)


def _pick_column(A, names, name, path):
    if A.shape[1] == 1:
        return A[:, 0]
    if names is not None and name in names:
        return A[:, names.index(name)]
    shown = names if names is not None else f"{A.shape[1]} unnamed columns"
    raise InputError(f"{path}: holds {A.shape[1]} spectra ({shown}); name the one "
                     "to hold fixed: --fixed COLUMN=FILE")


def _check_axis(axis, cube, path):
    """Refuse a spectrum whose spectral coordinate is not the cube's."""
    own = cube.spectral_axis
    if axis is None or own is None:
        return
    same = axis.unit == own.unit and np.allclose(
        axis.values, own.values, rtol=_SPECTRAL_RTOL, atol=0.0)
    if not same:
        raise InputError(
            f"{path}: its {axis.column} column is not the cube's spectral axis "
            f"({own.column}, {own.values[0]:g} to {own.values[-1]:g})")


def read_fixed(specs, cube) -> list[FixedSpectrum]:
    """Read the ``--fixed NAME=FILE`` spectra and check them against the cube.

    Parameters
    ----------
    specs : sequence of str
        ``NAME=FILE.csv`` (or ``FILE.csv``, named after the file). The CSV has
        one spectrum, or several columns of which NAME is one; a first column
        named like a spectral coordinate (``energy_keV``, as
        :func:`sgmca_fast.cube.write_spectra_csv` writes) must match the cube's.
    cube : sgmca_fast.cube.Cube

    Returns
    -------
    list of FixedSpectrum
    """
    from .cube import read_spectra_csv

    out, seen = [], set()
    for spec in specs:
        name, path = _parse_fixed(spec)
        if name in seen:
            raise InputError(f"--fixed {spec!r}: two fixed spectra are named "
                             f"{name!r}")
        seen.add(name)
        if not path.is_file():
            raise _io.MissingFileError(f"{path}: no such file (--fixed {spec})")
        A, axis, names = read_spectra_csv(path)
        spectrum = _pick_column(A, names, name, path)
        if spectrum.shape[0] != cube.n_channels:
            raise InputError(f"{path}: the spectrum has {spectrum.shape[0]} "
                             f"channels but the cube has {cube.n_channels}")
        if not np.all(np.isfinite(spectrum)) or not np.any(spectrum):
            raise InputError(f"{path}: the spectrum must be finite and not all "
                             "zero")
        _check_axis(axis, cube, path)
        out.append(FixedSpectrum(name, path, np.ascontiguousarray(spectrum)))
    return out
