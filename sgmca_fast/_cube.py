"""The spectral cube in memory: data, variance, missing voxels, coordinates.

Public through :mod:`sgmca_fast.cube`; the FITS and CSV files are in
``_cube_files``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ._validation import InputError, InputTypeError

__all__ = ["Cube", "MissingSummary", "SpectralAxis"]

# FITS spectral types (first four letters of CTYPE3) -> quantity name
_QUANTITIES = {
    "ENER": "energy",
    "WAVE": "wavelength",
    "AWAV": "air wavelength",
    "FREQ": "frequency",
    "WAVN": "wavenumber",
    "VRAD": "radio velocity",
    "VOPT": "optical velocity",
    "VELO": "velocity",
    "ZOPT": "redshift",
    "BETA": "beta",
}
# astropy physical type of a unit -> FITS spectral type, for plain arrays
_TYPE_OF_UNIT = {"energy": "ENER", "length": "WAVE", "frequency": "FREQ",
                 "wavenumber": "WAVN", "speed": "VELO"}
_BLOCK_VOXELS = 1 << 23  # voxels per block of channels in a streamed pass


def _quiet_wcs(header, naxis):
    """Make the WCS of some axes of ``header``, hiding notes on fixed keywords."""
    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        # e.g. DATE-OBS reformatted or 'angstroms' -> 'Angstrom': nothing to act on
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, naxis=naxis)


# ----------------------------------------------------------------- spectral axis


@dataclass(frozen=True, eq=False)
class SpectralAxis:
    """The physical coordinate of each channel.

    Parameters
    ----------
    values : (J,) ndarray
        Channel centres, in ``unit``.
    unit : str
        Unit as written in the file, e.g. ``"keV"``, ``"Angstrom"``, ``"Hz"``;
        ``""`` for a dimensionless coordinate.
    ctype : str
        FITS spectral type (``"ENER"``, ``"WAVE"``, ``"AWAV"``, ``"FREQ"``, ...) or
        ``""`` when unknown.
    """

    values: np.ndarray
    unit: str = ""
    ctype: str = ""

    def __post_init__(self):
        values = np.asarray(self.values)
        if values.dtype.kind not in "iuf" or values.ndim != 1 or values.size == 0:
            raise InputError(
                "spectral axis values must be a non-empty 1-D real array, got "
                f"shape {values.shape} and dtype {values.dtype}"
            )
        if not np.all(np.isfinite(values)):
            raise InputError("spectral axis values contain NaN or inf")
        for name in ("unit", "ctype"):
            if not isinstance(getattr(self, name), str):
                raise InputTypeError(f"spectral axis {name} must be a string, "
                                     f"got {getattr(self, name)!r}")
        values = values.astype(np.float64)
        values.flags.writeable = False
        object.__setattr__(self, "values", values)

    def __len__(self) -> int:
        return self.values.size

    def __eq__(self, other) -> bool:
        if not isinstance(other, SpectralAxis):
            return NotImplemented
        return ((self.unit, self.ctype) == (other.unit, other.ctype)
                and np.array_equal(self.values, other.values))

    __hash__ = None

    @property
    def quantity(self) -> str:
        """The coordinate's name, e.g. ``"energy"`` (``"channel"`` when unknown)."""
        return _QUANTITIES.get(self.ctype[:4].upper(), "spectral coordinate"
                               if self.ctype else "channel")

    @property
    def label(self) -> str:
        """Figure axis label, e.g. ``"Energy (keV)"``."""
        text = self.quantity.capitalize()
        return f"{text} ({self.unit})" if self.unit else text

    @property
    def column(self) -> str:
        """Table column name, e.g. ``"energy_keV"``."""
        name = self.quantity.replace(" ", "_")
        return f"{name}_{self.unit}" if self.unit else name

    @classmethod
    def from_values(cls, values, unit: str = "", ctype: str | None = None
                    ) -> SpectralAxis:
        """Make an axis from a plain array of channel centres.

        Parameters
        ----------
        values : (J,) array_like
            Channel centres, in ``unit``.
        unit : str, optional
            Their unit, e.g. ``"keV"``.
        ctype : str, optional
            FITS spectral type; by default guessed from the unit when astropy is
            installed (energy -> ``"ENER"``, length -> ``"WAVE"``, frequency ->
            ``"FREQ"``), else ``""``.
        """
        if ctype is None:
            ctype = _guess_ctype(unit)
        return cls(values, unit, ctype)

    @classmethod
    def from_header(cls, header, axis: int = 3) -> SpectralAxis | None:
        """Read the coordinate of FITS axis ``axis`` from a header (needs astropy).

        Uses ``CTYPEn``, ``CRVALn``, ``CDELTn`` or ``CDn_n`` (or ``PCn_n`` times
        ``CDELTn``), ``CRPIXn`` and ``CUNITn`` through astropy.wcs, so non-linear
        spectral axes (``WAVE-LOG``, ``FREQ-W2F``, ...) are evaluated too.
        The values are given in the header's ``CUNITn`` (astropy works in SI).

        Parameters
        ----------
        header : astropy.io.fits.Header
        axis : int, optional
            FITS axis number (1-based); the channels of a cube are axis 3.

        Returns
        -------
        SpectralAxis or None
            None when the header describes no coordinate on that axis.

        Raises
        ------
        InputError
            When the keywords do not make a valid coordinate (e.g. a unit that is
            not one, or of the wrong kind for ``CTYPEn``).
        """
        n = int(header.get(f"NAXIS{axis}", 0))
        keys = [f"{k}{axis}" for k in ("CTYPE", "CRVAL", "CDELT")] + [
            f"CD{axis}_{axis}"]
        if n < 1 or not any(k in header for k in keys):
            return None
        sub = _axis_header(header, axis)
        try:
            wcs = _quiet_wcs(sub, None)
            si = np.asarray(wcs.pixel_to_world_values(np.arange(n)), dtype=float)
        except Exception as exc:  # astropy/wcslib raise several types
            message = " ".join(str(exc).split())
            raise InputError(f"the axis {axis} coordinate keywords are not valid "
                             f"({message})") from None
        ctype = str(header.get(f"CTYPE{axis}", "")).strip()
        unit = str(header.get(f"CUNIT{axis}", "")).strip()
        values, unit = _to_header_unit(wcs, sub, si, wcs.world_axis_units[0], unit)
        return cls(values, unit, ctype)


def _guess_ctype(unit: str) -> str:
    if not unit:
        return ""
    try:
        import astropy.units as u

        kind = u.Unit(unit).physical_type
    except (ImportError, ValueError):
        return ""
    # a PhysicalType equals each of its names ("energy/torque/work" == "energy")
    return next((c for name, c in _TYPE_OF_UNIT.items() if kind == name), "")


def _axis_header(header, axis: int):
    """Return a one-axis header: the keywords of FITS axis ``axis`` as axis 1."""
    from astropy.io import fits

    sub = fits.Header()
    sub["NAXIS"] = 1
    sub["NAXIS1"] = int(header[f"NAXIS{axis}"])
    for key in ("CTYPE", "CUNIT", "CRVAL", "CDELT", "CRPIX", "CNAME"):
        if f"{key}{axis}" in header:
            sub[f"{key}1"] = header[f"{key}{axis}"]
    for key in ("CD", "PC"):
        if f"{key}{axis}_{axis}" in header:
            sub[f"{key}1_1"] = header[f"{key}{axis}_{axis}"]
    for key in ("SPECSYS", "RESTFRQ", "RESTWAV", "RESTFREQ", "MJD-OBS", "DATE-OBS"):
        if key in header:
            sub[key] = header[key]
    return sub


def _to_header_unit(wcs, sub, si, si_unit: str, unit: str):
    """Convert wcslib's SI values back to the header's unit, with wcslib's factor.

    wcslib and astropy.units use different physical constants (the electron-volt
    differs by 8e-8), so the factor is the one wcslib applied to ``CRVALn`` (or
    to the step when ``CRVALn`` is 0), read from the WCS it set up.
    """
    if not unit or not si_unit:
        return si, unit or si_unit
    w = wcs.wcs
    ref = float(sub.get("CRVAL1", 0.0))
    step = float(sub["CD1_1"] if "CD1_1" in sub else sub.get("CDELT1", 1.0))
    if ref != 0:
        factor = w.crval[0] / ref
    else:
        factor = (w.cd[0, 0] if w.has_cd() else w.cdelt[0]) / step
    if not np.isfinite(factor) or factor == 0:
        return si, si_unit
    # undo the last-bit error of the trip through SI (4750 -> 4749.999...)
    return np.array([float(f"{v:.15g}") for v in si / factor]), unit


# ---------------------------------------------------------------------- the cube


@dataclass(frozen=True)
class MissingSummary:
    """How many voxels of a cube are missing, and how they are spread.

    Attributes
    ----------
    n_channels, n_pixels : int
        The cube's size ``J`` and ``P = H W``.
    n_missing : int
        Missing voxels in all.
    dead_channels : tuple of int
        Channels (0-based) where every pixel is missing.
    n_empty_pixels : int
        Pixels where every channel is missing.
    n_scattered : int
        Missing voxels in neither a dead channel nor an empty pixel.
    """

    n_channels: int
    n_pixels: int
    n_missing: int
    dead_channels: tuple[int, ...]
    n_empty_pixels: int
    n_scattered: int

    def __str__(self) -> str:
        total = self.n_channels * self.n_pixels
        if self.n_missing == 0:
            return f"no voxel is missing ({total:,} voxels)"
        parts = []
        if self.dead_channels:
            shown = ", ".join(str(c) for c in self.dead_channels[:8])
            more = ", ..." if len(self.dead_channels) > 8 else ""
            parts.append(f"{len(self.dead_channels)} whole channel(s) "
                         f"({shown}{more}; from 0)")
        if self.n_empty_pixels:
            parts.append(f"{self.n_empty_pixels:,} whole pixel(s)")
        if self.n_scattered:
            parts.append(f"{self.n_scattered:,} scattered voxel(s)")
        return (f"{self.n_missing:,} of {total:,} voxels "
                f"({100 * self.n_missing / total:.3g}%) are missing: "
                + ", ".join(parts))


@dataclass
class Cube:
    """A spectral cube, channels first, with its noise, mask and coordinates.

    Parameters
    ----------
    data : (J, H, W) or (J, P) ndarray
        The cube, real numbers; NaN voxels are missing, inf is an error. Kept as
        given (a ``numpy.memmap`` or a memory-mapped FITS array stays on disk).
    variance : None, (J,) or data-shaped ndarray, optional
        Noise variance, one value per channel or per voxel. NaN or +inf variance
        marks a voxel as missing; negative variance, and zero variance of a voxel
        that is not missing, are errors.
    mask : None or data-shaped ndarray, optional
        True (or nonzero, e.g. data-quality flags) where a voxel is missing.
    spectral_axis : SpectralAxis, optional
        Coordinate of the channels; None means channel numbers.
    celestial : astropy.wcs.WCS, optional
        WCS of the image plane (FITS axes 1 and 2), for ``(J, H, W)`` cubes.
    unit : str, optional
        Unit of the data (FITS ``BUNIT``).
    header : astropy.io.fits.Header, optional
        Header of the HDU the cube was read from.
    source : str, optional
        Where the cube came from (a file name), for messages.
    variance_source : str, optional
        Where the variance came from, e.g. ``"VARIANCE extension (HDU 2)"``.
    mask_source : str, optional
        Where the mask came from, e.g. ``"DQ extension (HDU 3)"``.
    notes : list of str, optional
        Things a reader should tell the user (e.g. a spectral axis it ignored).
    missing_info : MissingSummary, optional
        Set by :func:`read_fits_cube` when it checked the cube.
    """

    data: np.ndarray
    variance: np.ndarray | None = None
    mask: np.ndarray | None = None
    spectral_axis: SpectralAxis | None = None
    celestial: object = None
    unit: str = ""
    header: object = None
    source: str = ""
    variance_source: str | None = None
    mask_source: str | None = None
    notes: list = field(default_factory=list)
    missing_info: MissingSummary | None = None

    def __post_init__(self):
        self.data = _checked_data(self.data, self._name("data"))
        self.variance = _checked_variance(self.variance, self.data.shape,
                                          self._name("variance"))
        if self.mask is not None:
            self.mask = np.asanyarray(self.mask)
            if self.mask.shape != self.data.shape or self.mask.dtype.kind not in "biu":
                raise InputError(
                    f"{self._name('mask')} must be a bool (or integer flag) array "
                    f"of the data's shape {self.data.shape}, got shape "
                    f"{self.mask.shape} and dtype {self.mask.dtype}")
        if self.spectral_axis is not None:
            if not isinstance(self.spectral_axis, SpectralAxis):
                raise InputTypeError("spectral_axis must be a SpectralAxis, got "
                                     f"{type(self.spectral_axis).__name__}")
            if len(self.spectral_axis) != self.n_channels:
                raise InputError(
                    f"the spectral axis has {len(self.spectral_axis)} values for "
                    f"{self.n_channels} channels")

    def _name(self, what: str) -> str:
        return f"{self.source}: {what}" if self.source else what

    @classmethod
    def from_array(cls, X, variance=None, mask=None, spectral_axis=None,
                   unit: str = "") -> Cube:
        """Make a cube from plain arrays (no astropy needed).

        Parameters
        ----------
        X : (J, H, W) or (J, P) array_like
            The data, channels first; NaN voxels are missing. A numpy masked array
            gives its mask too.
        variance : None, (J,) or X-shaped array_like, optional
        mask : None or X-shaped bool array_like, optional
            True where a voxel is missing (combined with a masked array's mask).
        spectral_axis : SpectralAxis or (J,) array_like, optional
            Channel coordinates; a plain array gives a unitless axis (use
            :meth:`SpectralAxis.from_values` to give the unit).
        unit : str, optional
            Unit of the data.

        Returns
        -------
        Cube
        """
        if np.ma.isMaskedArray(X):
            own = np.ma.getmaskarray(X)
            mask = own if mask is None else own | np.asarray(mask, dtype=bool)
            X = np.ma.getdata(X)
        if spectral_axis is not None and not isinstance(spectral_axis, SpectralAxis):
            spectral_axis = SpectralAxis(spectral_axis)
        return cls(X, variance, mask, spectral_axis, unit=unit)

    @property
    def n_channels(self) -> int:
        """Number of channels ``J``."""
        return self.data.shape[0]

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """``(H, W)`` or ``(P,)``."""
        return self.data.shape[1:]

    @property
    def n_pixels(self) -> int:
        """Number of pixels ``P``."""
        return int(np.prod(self.spatial_shape))

    @property
    def channel_values(self) -> np.ndarray:
        """``(J,)`` channel coordinates: the spectral axis, else 0, 1, ..."""
        if self.spectral_axis is None:
            return np.arange(self.n_channels, dtype=np.float64)
        return self.spectral_axis.values

    @property
    def spectral_label(self) -> str:
        """Figure axis label of the channels, e.g. ``"Energy (keV)"``."""
        return "Channel" if self.spectral_axis is None else self.spectral_axis.label

    def missing(self) -> np.ndarray | None:
        """Voxels that are missing: NaN data, the mask, NaN or infinite variance.

        Returns
        -------
        (J, H, W) or (J, P) bool ndarray, or None
            None when no voxel is missing. Memory beyond the result: one block
            of channels and one count per pixel.

        Raises
        ------
        InputError
            On infinite data or invalid variance (see :class:`Cube`).
        """
        return _scan(self, store=True)[1]

    def check(self) -> MissingSummary:
        """Check the values in one streamed pass and count the missing voxels.

        Memory beyond the cube: one block of channels and one count per pixel.

        Returns
        -------
        MissingSummary
            Its ``str`` is the one line the command line prints.

        Raises
        ------
        InputError
            On infinite data or invalid variance (see :class:`Cube`).
        """
        return _scan(self)[0]


def _checked_data(data, name):
    data = np.asanyarray(data)
    if data.dtype.kind not in "iuf":
        raise InputTypeError(f"{name} must be a real numeric array, got dtype "
                             f"{data.dtype}")
    if data.ndim not in (2, 3) or 0 in data.shape:
        raise InputError(f"{name} must be a cube (J, H, W) or a matrix (J, P), "
                         f"got shape {data.shape}")
    return data


def _checked_variance(variance, shape, name):
    if variance is None:
        return None
    variance = np.asanyarray(variance)
    if variance.dtype.kind not in "iuf":
        raise InputTypeError(f"{name} must be a real numeric array, got dtype "
                             f"{variance.dtype}")
    if variance.shape == (shape[0],) + (1,) * (len(shape) - 1):
        variance = variance.reshape(shape[0])
    if variance.shape not in (shape, (shape[0],)):
        raise InputError(f"{name} must have one value per channel ({shape[0]},) "
                         f"or the data's shape {shape}, got shape {variance.shape}")
    return variance


def _first(flags, shape, offset=0):
    """'channel j, pixel (y, x)' of the first True of a block, for messages."""
    where = np.unravel_index(int(np.argmax(flags)), shape)
    return f"channel {where[0] + offset}, pixel {tuple(int(i) for i in where[1:])}"


def _check_channel_variance(variance, name):
    """Check a per-channel variance: errors for <= 0; NaN/+inf channels are missing."""
    v = np.asarray(variance, dtype=np.float64)
    bad = (v <= 0) | np.isneginf(v)
    if bad.any():
        j = int(np.argmax(bad))
        raise InputError(f"{name} must be positive, got {v[j]} for channel {j} "
                         f"({int(bad.sum())} channel(s) <= 0)")
    return np.isnan(v) | np.isposinf(v)


def _scan_block(cube, j0, j1, dead_variance):
    """Flag the missing voxels of channels j0:j1; raise on inf data or bad variance."""
    d = np.asarray(cube.data[j0:j1])
    if d.dtype.kind == "f":
        miss = ~np.isfinite(d)  # the fast test; NaN and inf are told apart below
        if miss.any():
            inf = miss & ~np.isnan(d)
            if inf.any():
                raise InputError(
                    f"{cube._name('data')} holds {int(inf.sum())} infinite voxel(s) "
                    f"in channels {j0}-{j1 - 1} (first at "
                    f"{_first(inf, d.shape, j0)}); inf is an error (NaN voxels are "
                    "treated as missing)")
    else:
        miss = np.zeros(d.shape, dtype=bool)
    if cube.mask is not None:
        miss |= np.asarray(cube.mask[j0:j1]) != 0
    if dead_variance is not None:
        miss[dead_variance[j0:j1]] = True
    elif cube.variance is not None:
        v = np.asarray(cube.variance[j0:j1])
        if v.dtype.kind == "f":
            unknown = ~np.isfinite(v)
            if unknown.any():  # NaN or +inf: no information; -inf fails below
                miss |= unknown & ~np.isneginf(v)
        low = v <= 0
        if low.any():
            bad = low & ((v < 0) | ~miss)
            if bad.any():
                raise InputError(
                    f"{cube._name('variance')} must be positive where data is "
                    f"present, got {int(bad.sum())} voxel(s) <= 0 (first at "
                    f"{_first(bad, d.shape, j0)}); a zero variance is an infinite "
                    "weight: mark such voxels missing (NaN or mask) instead")
    return miss


def _scan(cube, store=False):
    """Check values and count missing voxels in one pass over blocks of channels.

    Returns the :class:`MissingSummary` and, with ``store``, the missing voxels
    (None when there are none). That array is allocated zeroed at the first block
    with a missing voxel and written only in such blocks, so the pages of the
    complete blocks are never touched.
    """
    out = None
    J, P = cube.n_channels, cube.n_pixels
    dead_variance = None
    if cube.variance is not None and cube.variance.ndim == 1:
        dead_variance = _check_channel_variance(cube.variance,
                                                cube._name("variance"))
    per_channel = np.zeros(J, dtype=np.int64)
    per_pixel = np.zeros(P, dtype=np.int64)
    step = max(1, _BLOCK_VOXELS // max(P, 1))
    for j0 in range(0, J, step):
        j1 = min(J, j0 + step)
        miss = _scan_block(cube, j0, j1, dead_variance)
        flat = miss.reshape(j1 - j0, P)
        per_channel[j0:j1] = np.count_nonzero(flat, axis=1)
        if per_channel[j0:j1].any():
            per_pixel += np.count_nonzero(flat, axis=0)
        if store and per_channel[j0:j1].any():
            if out is None:
                out = np.zeros(cube.data.shape, dtype=bool)
            out[j0:j1] = miss
    dead = np.flatnonzero(per_channel == P)
    empty = int(np.count_nonzero(per_pixel == J))
    n_missing = int(per_channel.sum())
    covered = dead.size * P + empty * J - dead.size * empty
    return MissingSummary(J, P, n_missing, tuple(int(j) for j in dead), empty,
                          n_missing - covered), out
