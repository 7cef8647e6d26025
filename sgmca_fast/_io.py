"""Reading cubes and spectra, writing estimates: the file formats of the command line.

Inputs: ``.npy``, ``.npz`` (one array, or the one named by ``key``), FITS (needs
astropy, the ``fits`` extra) and, for spectra, ``.csv``. Every read checks that the
file exists, is readable, holds real numbers and has the expected number of
dimensions; inf is always an error, NaN too except in a cube (:func:`read_cube`),
where it marks a missing voxel. A mask (:func:`read_mask`) holds booleans or
integer flags. A failure raises :class:`~sgmca_fast._validation.InputError`
(:class:`MissingFileError`, also a ``FileNotFoundError``, for a missing file) whose
message starts with the file name. ``np.load`` is always called with
``allow_pickle=False``.

Outputs are written atomically (through a temporary name, renamed at the end) and
an existing output is refused unless ``force=True``; :func:`check_writable` and
:func:`check_folder` find unwritable outputs before any work. That machinery lives
in ``_atomic`` and is re-exported here.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ._atomic import (
    FITS_SUFFIXES,
    MissingFileError,
    astropy_fits,
    atomic_write,
    check_folder,
    check_writable,
    is_fits,
    remove_stale_temporaries,
)
from ._validation import InputError, InputTypeError

__all__ = [
    "FITS_SUFFIXES",
    "MissingFileError",
    "atomic_write",
    "check_folder",
    "check_writable",
    "is_fits",
    "read_array",
    "read_cube",
    "read_estimate",
    "read_mask",
    "read_spectra",
    "remove_stale_temporaries",
    "write_csv",
    "write_fits",
    "write_npy",
    "write_npz",
]

_NUMPY_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile)


def _kind(path: Path) -> str:
    name = path.name.lower()
    if is_fits(name):
        return "fits"
    for suffix in (".npy", ".npz", ".csv", ".txt"):
        if name.endswith(suffix):
            return suffix[1:]
    raise InputError(
        f"{path}: unknown file type {path.suffix or '(no extension)'!r}; expected "
        "one of .csv, .fits, .npy, .npz"
    )


def _need_file(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    return path


def _read_npy(path: Path, mmap_mode=None) -> np.ndarray:
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except _NUMPY_ERRORS as exc:
        raise InputError(f"{path}: not a readable .npy file ({exc})") from None


def _read_npz(path: Path, key: str | None) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except _NUMPY_ERRORS as exc:
        raise InputError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: not an .npz archive (it holds a single array)")
    with data:
        names = sorted(data.files)
        if key is None:
            if len(names) != 1:
                raise InputError(
                    f"{path}: holds {len(names)} arrays {names}; name the one to "
                    "read (key)"
                )
            key = names[0]
        elif key not in data.files:
            raise InputError(f"{path}: no array named {key!r}; found {names}")
        try:
            return data[key]
        except _NUMPY_ERRORS as exc:
            raise InputError(f"{path}: array {key!r} cannot be read ({exc})") from None


def _read_fits(path: Path, key: str | None, memmap: bool = False) -> np.ndarray:
    fits = astropy_fits(path)
    try:
        # arrays of a memory-mapped file stay valid after close()
        with fits.open(path, memmap=memmap) as hdul:
            if key is not None:
                try:
                    hdu = hdul[int(key) if key.isdigit() else key]
                except (KeyError, IndexError):
                    found = [h.name for h in hdul]
                    raise InputError(
                        f"{path}: no HDU named {key!r}; found {found}"
                    ) from None
            else:
                hdu = next((h for h in hdul if h.data is not None), None)
                if hdu is None:
                    raise InputError(f"{path}: no HDU holds data")
            data = hdu.data
            if data is None:
                raise InputError(f"{path}: HDU {key!r} holds no data")
            if getattr(data.dtype, "names", None):
                raise InputError(
                    f"{path}: HDU {hdu.name!r} is a table, not an image array"
                )
            return data if memmap else np.array(data)
    except (OSError, TypeError) as exc:
        raise InputError(f"{path}: not a readable FITS file ({exc})") from None


def _read_csv(path: Path) -> np.ndarray:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable text file ({exc})") from None
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if not rows:  # a header line
                continue
            raise InputError(
                f"{path}: line {number} is not numeric: {','.join(cells)[:60]!r}"
            ) from None
    if not rows:
        raise InputError(f"{path}: holds no numeric rows")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputError(f"{path}: rows have different lengths {sorted(widths)}")
    return np.array(rows, dtype=np.float64)


def _read_raw(path, key: str | None) -> np.ndarray:
    """Read one array as stored (any dtype) from .npy, .npz, .csv or FITS."""
    path = _need_file(path)
    kind = _kind(path)
    if kind == "npy":
        value = _read_npy(path)
        if key is not None:
            raise InputError(f"{path}: a .npy file holds one array; key is not used")
    elif kind == "npz":
        value = _read_npz(path, key)
    elif kind == "fits":
        value = _read_fits(path, key)
    else:
        value = _read_csv(path)
    value = np.asarray(value)
    if value.size == 0:
        raise InputError(f"{path}: the array is empty (shape {value.shape})")
    return value


def read_array(path, key: str | None = None, *, allow_nan: bool = False
               ) -> np.ndarray:
    """Read one real array from .npy, .npz, .csv or FITS, as float64.

    Parameters
    ----------
    path : str or os.PathLike
        The file; its type follows the extension.
    key : str, optional
        The array of an .npz with several arrays, or the HDU (name or index) of a
        FITS file (default: the first HDU with data).
    allow_nan : bool, optional
        Accept NaN values (missing data); inf is refused anyway.

    Returns
    -------
    array : ndarray of float64

    Raises
    ------
    MissingFileError
        The file does not exist.
    InputError
        Unreadable, unknown type, non-numeric (complex, strings, objects), inf,
        or NaN values (without ``allow_nan``); the message names the file.
    """
    value = _read_raw(path, key)
    if value.dtype.kind not in "iuf":
        raise InputError(f"{path}: holds {value.dtype} values, not real numbers")
    value = value.astype(np.float64, copy=False)
    if allow_nan:
        bad = int(np.count_nonzero(np.isinf(value)))
        if bad:
            raise InputError(f"{path}: contains {bad} infinite value(s); inf is an "
                             "error (NaN marks a missing value)")
    elif not np.all(np.isfinite(value)):
        bad = int(np.count_nonzero(~np.isfinite(value)))
        raise InputError(f"{path}: contains {bad} NaN or inf value(s)")
    return value


def read_mask(path, key: str | None = None) -> np.ndarray:
    """Read a mask of missing values: booleans or flags, nonzero = missing.

    Parameters
    ----------
    path : str or os.PathLike
        .npy, .npz, .csv or FITS file (e.g. a data-quality extension).
    key : str, optional
        Array of an .npz or HDU of a FITS file.

    Returns
    -------
    mask : ndarray of bool
        True where the value is missing.

    Raises
    ------
    InputError
        Unreadable, or values that are not booleans, integers or finite numbers.
    """
    value = _read_raw(path, key)
    if value.dtype.kind not in "biuf":
        raise InputError(f"{path}: a mask holds booleans or integer flags, not "
                         f"{value.dtype} values")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise InputError(f"{path}: a mask holds booleans or integer flags, not "
                         "NaN or inf")
    return value != 0


def read_cube(path, key: str | None = None, channel_axis: int = 0, *,
              mmap: bool = False) -> np.ndarray:
    """Read a data cube, channels first: (J, H, W), or (J, P) for a matrix.

    NaN values are kept: they mark missing voxels. Infinite values are an error.
    With ``mmap`` a .npy or FITS cube is memory-mapped, not read: the values are
    then checked by whoever reads them (``separate`` streams a ``np.memmap``;
    give it ``stream=True`` for the FITS one, a plain array on the mapped file).

    Parameters
    ----------
    path : str or os.PathLike
        .npy, .npz or FITS file.
    key : str, optional
        Array of an .npz or HDU of a FITS file.
    channel_axis : int, optional
        Axis of the channels in the file (negative values count from the end); it
        is moved first. FITS cubes read through astropy are (J, H, W) when
        NAXIS3 is the energy axis, the usual layout.
    mmap : bool, optional
        Memory-map a .npy (``np.load(mmap_mode="r")``) or FITS
        (``memmap=True``) cube in its own dtype, read-only; an .npz is read.

    Returns
    -------
    X : (J, H, W) or (J, P) ndarray of float64 (memory-mapped: the file's dtype)
    """
    kind = _kind(_need_file(path)) if mmap else None
    if kind in ("npy", "fits"):
        cube = _mapped(Path(path), key, kind)
    else:
        cube = read_array(path, key, allow_nan=True)
    if cube.ndim not in (2, 3):
        raise InputError(
            f"{path}: a cube must have 2 or 3 dimensions (channels, then pixels), "
            f"got shape {cube.shape}"
        )
    if not -cube.ndim <= channel_axis < cube.ndim:
        raise InputError(
            f"{path}: channel axis {channel_axis} out of range for shape {cube.shape}"
        )
    if kind in ("npy", "fits"):
        return np.moveaxis(cube, channel_axis, 0)  # a view: nothing read
    return np.ascontiguousarray(np.moveaxis(cube, channel_axis, 0))


def _mapped(path: Path, key: str | None, kind: str) -> np.ndarray:
    """Return the memory-mapped array of a .npy or FITS file, its dtype checked."""
    if kind == "npy":
        if key is not None:
            raise InputError(f"{path}: a .npy file holds one array; key is not used")
        cube = _read_npy(path, mmap_mode="r")
    else:
        cube = _read_fits(path, key, memmap=True)
    if cube.dtype.kind not in "iuf":
        raise InputError(f"{path}: holds {cube.dtype} values, not real numbers")
    return cube


def read_spectra(path, key: str | None = None) -> np.ndarray:
    """Read spectra, one a row: (n, J).

    Parameters
    ----------
    path : str or os.PathLike
        .npy, .npz, .csv (one spectrum a line, an optional header line) or FITS.
    key : str, optional
        Array of an .npz or HDU of a FITS file.

    Returns
    -------
    spectra : (n, J) ndarray of float64
        A single 1-D spectrum is returned as one row.
    """
    spectra = read_array(path, key)
    if spectra.ndim == 1:
        spectra = spectra[None, :]
    if spectra.ndim != 2:
        raise InputError(
            f"{path}: spectra must be a 2-D (n_spectra, n_channels) array, got "
            f"shape {spectra.shape}"
        )
    return spectra


def read_estimate(path) -> dict[str, np.ndarray]:
    """Read a mixing matrix and sources written by :func:`write_npz`/`write_fits`.

    Parameters
    ----------
    path : str or os.PathLike
        .npz with arrays ``A`` (J, I) and ``S`` (I, H, W) or (I, P), and
        optionally ``N`` (the noise, J channels); or a FITS file with HDUs named
        ``A``, ``S`` (and ``N``), or one written by
        :func:`sgmca_fast.cube.write_fits_sources` (maps in the primary HDU,
        spectra in the SPECTRA table).

    Returns
    -------
    arrays : dict
        ``"A"``, ``"S"`` and, when present, ``"N"``, all float64; S may hold NaN
        (pixels left out of a separation).
    """
    path = _need_file(path)
    keys = ["A", "S"]
    present = member_names(path)
    missing = [k for k in keys if k not in present]
    if missing and _kind(path) == "fits" and "SPECTRA" in present:
        out = _read_sources_fits(path)
    elif missing:
        raise InputError(
            f"{path}: missing array(s) {missing}; found {sorted(present)} (an "
            "estimate or truth file holds A (J, I) and S (I, H, W))"
        )
    else:
        if "N" in present:
            keys.append("N")
        out = {k: read_array(path, k, allow_nan=k == "S") for k in keys}
    A, S = out["A"], out["S"]
    if A.ndim != 2:
        raise InputError(f"{path}: A must be 2-D (J, I), got shape {A.shape}")
    if S.ndim not in (2, 3) or S.shape[0] != A.shape[1]:
        raise InputError(
            f"{path}: S must be (I, H, W) or (I, P) with I = {A.shape[1]} (the "
            f"columns of A), got shape {S.shape}"
        )
    return out


def _read_sources_fits(path: Path) -> dict[str, np.ndarray]:
    """Read A and S from a file of :func:`sgmca_fast.cube.write_fits_sources`.

    The maps are the primary HDU; the spectra are the columns of the SPECTRA
    table after the first (the spectral coordinate).
    """
    fits = astropy_fits(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            S = hdul[0].data
            table = hdul["SPECTRA"]
            if S is None or not isinstance(table, fits.BinTableHDU):
                raise InputError(f"{path}: expected source maps in the primary HDU "
                                 "and a SPECTRA table")
            columns = table.columns.names[1:]
            A = np.stack([np.asarray(table.data[c], dtype=np.float64)
                          for c in columns], axis=1)
            S = np.array(S, dtype=np.float64)
    except (OSError, TypeError, KeyError, ValueError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"{path}: not a readable sources file ({exc})") from None
    return {"A": A, "S": S}


def member_names(path: Path) -> set[str]:
    """Names of the arrays in an ``.npz`` archive, or of the HDUs of a FITS file."""
    kind = _kind(path)
    if kind == "npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                return set(data.files)
        except (*_NUMPY_ERRORS, AttributeError, TypeError) as exc:
            raise InputError(f"{path}: not a readable .npz archive ({exc})") from None
    if kind == "fits":
        fits = astropy_fits(path)
        try:
            with fits.open(path, memmap=False) as hdul:
                return {h.name.upper() for h in hdul if h.name}
        except (OSError, TypeError) as exc:
            raise InputError(f"{path}: not a readable FITS file ({exc})") from None
    raise InputError(f"{path}: an estimate must be an .npz or FITS file")


def _check_arrays(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind == "O":
            raise InputTypeError(
                f"array {name!r} has dtype object, which is not written"
            )
        out[str(name)] = value
    return out


def write_npy(path, array, force: bool = False) -> Path:
    """Write one numeric array as ``.npy``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.npy``).
    array : array_like
        Numeric array (read back with :func:`read_array`).
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    path : pathlib.Path
    """
    array = _check_arrays({"array": array})["array"]

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)

    return atomic_write(path, write, force)


def write_npz(path, arrays: Mapping[str, np.ndarray], force: bool = False) -> Path:
    """Write named arrays as a compressed .npz, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.npz``).
    arrays : mapping of str to array_like
        Numeric or string arrays (no objects: files are read without pickle).
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    path : pathlib.Path
    """
    arrays = _check_arrays(arrays)

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    return atomic_write(path, write, force)


def write_fits(path, arrays: Mapping[str, np.ndarray], force: bool = False) -> Path:
    """Write named numeric arrays as image HDUs of one FITS file, atomically.

    The first array goes to the primary HDU (named after it with ``EXTNAME``), the
    others to image extensions; the channel axis of A and S stays first in numpy
    order (the last FITS axis). Needs astropy.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.fits``).
    arrays : mapping of str to array_like
        Numeric arrays.
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    path : pathlib.Path
    """
    fits = astropy_fits(Path(path))
    arrays = _check_arrays(arrays)
    hdus = []
    for i, (name, value) in enumerate(arrays.items()):
        if value.dtype.kind not in "iuf":
            raise InputTypeError(
                f"array {name!r} of dtype {value.dtype} cannot go to FITS"
            )
        cls = fits.PrimaryHDU if i == 0 else fits.ImageHDU
        hdu = cls(data=np.asarray(value, dtype=np.float64))
        hdu.header["EXTNAME"] = name.upper()
        hdus.append(hdu)

    def write(tmp):
        fits.HDUList(hdus).writeto(tmp, overwrite=True)

    return atomic_write(path, write, force)


def write_csv(
    path, A, header: Sequence[str] | None = None, force: bool = False
) -> Path:
    """Write a matrix as CSV (one row per line, ``header`` as the first line).

    Parameters
    ----------
    path : str or os.PathLike
        Output file.
    A : (J, I) array_like
        The matrix, e.g. the mixing matrix: one line per channel, one column per
        source.
    header : sequence of str, optional
        Column names.
    force : bool, optional
        Replace an existing file.

    Returns
    -------
    path : pathlib.Path
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2:
        raise InputError(f"a CSV matrix must be 2-D, got shape {A.shape}")
    if header is not None and len(header) != A.shape[1]:
        raise InputError(f"got {len(header)} column names for {A.shape[1]} columns")

    def write(tmp):
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            if header is not None:
                writer.writerow(list(header))
            for row in A:
                writer.writerow([repr(float(v)) for v in row])

    return atomic_write(path, write, force)
