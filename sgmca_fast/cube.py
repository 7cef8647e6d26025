"""Spectral cubes with their noise, missing voxels and coordinates, to and from FITS.

:class:`Cube` holds the data ``(J, H, W)`` (or ``(J, P)``), channels first, with what
real cubes carry beside it: a variance (one value per channel or per voxel), a mask
of missing voxels (NaN voxels are missing too), the spectral coordinate of the
channels (:class:`SpectralAxis`, in the file's own units: keV, Angstrom, Hz) and the
WCS of the image plane. :meth:`Cube.check` counts the missing voxels
(:class:`MissingSummary`) in one streamed pass.

:func:`read_fits_cube` reads all of that from one FITS file, memory-mapped so that
a cube bigger than memory is not loaded; :func:`write_fits_sources` writes source
maps that keep the input's celestial WCS and record the package version and the
parameters; :func:`write_spectra_csv` and :func:`read_spectra_csv` write and read
spectra with their spectral coordinate.

FITS needs astropy (the ``fits`` extra); :meth:`Cube.from_array`,
:meth:`SpectralAxis.from_values` and the CSV functions do not.
"""

from ._cube import Cube, MissingSummary, SpectralAxis
from ._cube_files import (
    read_fits_cube,
    read_spectra_csv,
    write_fits_sources,
    write_spectra_csv,
)

__all__ = [
    "Cube",
    "MissingSummary",
    "SpectralAxis",
    "read_fits_cube",
    "read_spectra_csv",
    "write_fits_sources",
    "write_spectra_csv",
]
